"""`derivkit check`: exit codes (0 pass, 1 a check failed, 2 usage/input error), options handed to
the api, the Rich, JSON and JUnit outputs, the progress bar of --all.

Most tests replace `derivkit.api.check_*` by a stand-in returning hand-built results, so they test
the CLI's plumbing and the renderers without the numerical engine. Tests marked "engine" run the
real checker (derivkit/checking/runner.py)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from derivkit.cli.app import app
from derivkit.results import CheckReport, CheckResult, TargetCheck, WorstEntry

ANSI = "\x1b["

# No test here changes how derivkit derives: derivations are shared across the session (conftest).
pytestmark = pytest.mark.usefixtures("shared_derivations")


# ---------------------------------------------------------------------------- hand-built results

def make_result(wrt: str = "W", *, passed: bool = True, mode: str = "full", kind: str = "vjp",
                max_rel: float = 2e-16, notes: tuple[str, ...] = ()) -> CheckResult:
    worst = (WorstEntry((1, 2), 0.5, 0.4995, 5e-4, 1e-12),) if not passed else \
        (WorstEntry((0, 0), 1.0, 1.0, 1e-16, 1e-12),)
    localised = (WorstEntry((3, 1), 2.0, 2.1, 0.1, 1e-12),) if (not passed and mode == "directional") else ()
    return CheckResult(
        wrt=wrt, kind=kind, shape=(3, 4), mode=mode, method="complex-step", step=1e-20,
        fd_error_estimate=1e-16, max_abs_error=5e-4 if not passed else 1e-16,
        max_rel_error=1e-3 if not passed else max_rel, rtol=3.6e-15, atol=1e-12, n_evals=12,
        passed=passed, worst=worst, directions=8 if mode == "directional" else 0,
        localised=localised,
        detection=("8 random directions: a single entry off by 1e-12 is caught with probability "
                   "≥ 99%") if mode == "directional" else "",
        seconds=0.01, notes=notes)


def make_target(name: str = "linear", *, failing: bool = False, error: str | None = None,
                conventions: tuple[str, ...] = ()) -> TargetCheck:
    if error is not None:
        return TargetCheck(target=name, passed=False, seed=0, dtype="float64", sizes={},
                           results=(), error=error)
    results = (make_result("X"), make_result("W", passed=not failing, mode="directional"),
               make_result("b", notes=("numerical VJP for a seeded random upstream u",)))
    return TargetCheck(target=name, passed=not failing, seed=0, dtype="float64",
                       sizes={"m": 3, "n": 4, "k": 5}, results=results, conventions=conventions,
                       seconds=0.05)


def make_report(*targets: TargetCheck) -> CheckReport:
    return CheckReport(passed=all(t.passed for t in targets), targets=tuple(targets), seconds=0.2)


@pytest.fixture
def fake_check(monkeypatch):
    """Stand-in api: a recipe named 'failing' fails one check, 'unknown' is an input error,
    'crash' is a bug; check_all returns `fake_check.report` (default: two passing targets)."""
    import derivkit.api as api
    from derivkit.errors import UnknownRecipeError

    class Calls(list):
        report = make_report(make_target("linear"), make_target("softmax"))

    calls = Calls()

    def check_recipe(name, *, recipe_dirs=None, wrt=None, params=None, **options):
        calls.append(("recipe", name, recipe_dirs, wrt, params, options))
        if name == "unknown":
            raise UnknownRecipeError("unknown", ["linear", "softmax"])
        if name == "crash":
            raise ZeroDivisionError("division by zero")
        return make_target(name, failing=name == "failing",
                           conventions=("relu'(0) = 0: the branch holding at 0",))

    def check_expression(expr, wrt, shapes, params=None, **options):
        calls.append(("expr", expr, wrt, shapes, params, options))
        return make_target("expr")

    def check_all(*, recipe_dirs=None, progress=None, **options):
        calls.append(("all", recipe_dirs, progress, options))
        for t in calls.report.targets:
            if progress is not None:
                progress(t.target)
        return calls.report

    monkeypatch.setattr(api, "check_recipe", check_recipe)
    monkeypatch.setattr(api, "check_expression", check_expression)
    monkeypatch.setattr(api, "check_all", check_all)
    return calls


def _one_error_line(result) -> str:
    err = result.stderr
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("derivkit: error: "), err
    assert "Traceback" not in result.output
    return err.strip()


def _strict_json(text: str):
    """json.loads that refuses NaN/Infinity literals (not JSON)."""
    def refuse(name):
        raise ValueError(f"non-JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


# ---------------------------------------------------------------------------- exit codes

def test_a_passing_check_exits_0(runner, fake_check):
    result = runner.invoke(app, ["check", "linear"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_a_failing_check_exits_1_and_says_so(runner, fake_check):
    result = runner.invoke(app, ["check", "failing"])
    assert result.exit_code == 1
    assert "✗ FAIL" in result.stdout
    assert "1 of 3 derivative check(s) FAILED" in result.stdout


def test_a_failing_check_exits_1_with_json_and_junit_too(runner, fake_check, tmp_path):
    junit = tmp_path / "out.xml"
    result = runner.invoke(app, ["check", "failing", "--json", "--junit", str(junit)])
    assert result.exit_code == 1
    assert _strict_json(result.stdout)["passed"] is False
    assert junit.exists()


def test_engine_says_passed_but_a_result_failed_is_still_a_failure(runner, fake_check, monkeypatch):
    """The verdict is recomputed from the results: a target cannot pass with a failed check."""
    import derivkit.api as api

    bad = replace(make_target("linear", failing=True), passed=True)
    monkeypatch.setattr(api, "check_recipe", lambda name, **kw: bad)
    result = runner.invoke(app, ["check", "linear", "--json"])
    assert result.exit_code == 1
    assert _strict_json(result.stdout)["passed"] is False


@pytest.mark.parametrize("args", [
    ["check"],                                               # no target
    ["check", "linear", "--all"],                            # two targets
    ["check", "linear", "--expr", "sum(x)", "--wrt", "x", "--shape", "x=n"],
    ["check", "linear", "--shape", "X=m,n"],                 # --shape needs --expr
    ["check", "--all", "--wrt", "W"],                        # --wrt is for one target
    ["check", "--all", "--param", "alpha=0.1"],
    ["check", "linear", "--size", "m=x"],
    ["check", "linear", "--size", "m"],
    ["check", "linear", "--size", "m=0"],
    ["check", "linear", "--size", "m=-3"],
    ["check", "linear", "--size", "m=3", "--size", "m=4"],
    ["check", "linear", "--size", "2m=3"],
    ["check", "linear", "--mode", "bogus"],
    ["check", "linear", "--dtype", "float16"],
    ["check", "linear", "--seed", "-1"],
    ["check", "linear", "--seed", "x"],
    ["check", "linear", "--directions", "0"],
    ["check", "linear", "--rtol", "-1e-6"],
    ["check", "linear", "--rtol", "nan"],
    ["check", "linear", "--atol", "inf"],
    ["check", "linear", "--wrt", "W-1"],
    ["check", "unknown"],                                    # DerivkitError from the api
])
def test_usage_and_input_errors_exit_2_with_one_line(runner, fake_check, args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    _one_error_line(result)
    assert result.stdout == ""


def test_usage_errors_are_reported_before_any_check_runs(runner, fake_check, tmp_path):
    missing = tmp_path / "no-such-folder" / "out.xml"
    result = runner.invoke(app, ["check", "linear", "--junit", str(missing)])
    assert result.exit_code == 2
    assert "does not exist" in _one_error_line(result)
    result = runner.invoke(app, ["check", "--all", "--mode", "bogus"])
    assert result.exit_code == 2
    assert fake_check == []


def test_junit_path_that_is_a_folder_is_a_usage_error(runner, fake_check, tmp_path):
    result = runner.invoke(app, ["check", "linear", "--junit", str(tmp_path)])
    assert result.exit_code == 2
    _one_error_line(result)


def test_unknown_recipe_message(runner, fake_check):
    result = runner.invoke(app, ["check", "unknown"])
    assert _one_error_line(result).startswith("derivkit: error: unknown recipe 'unknown'")


def test_internal_error_is_exit_3(runner, fake_check, monkeypatch):
    monkeypatch.delenv("DERIVKIT_DEBUG", raising=False)
    result = runner.invoke(app, ["check", "crash"])
    assert result.exit_code == 3
    assert result.stderr.startswith("derivkit: internal error: ZeroDivisionError")


# ---------------------------------------------------------------------------- options -> api

def test_options_reach_the_api(runner, fake_check, tmp_path):
    result = runner.invoke(app, [
        "check", "linear", "--wrt", "W,b", "--size", "m=64", "--size", "n=128", "--mode", "full",
        "--seed", "7", "--dtype", "float32", "--rtol", "1e-4", "--atol", "1e-6",
        "--directions", "3", "--recipes", str(tmp_path), "--param", "alpha=0.2"])
    assert result.exit_code == 0, result.output
    assert fake_check == [("recipe", "linear", [str(tmp_path)], ["W", "b"], {"alpha": 0.2},
                           {"mode": "full", "sizes": {"m": 64, "n": 128}, "seed": 7,
                            "dtype": "float32", "rtol": 1e-4, "atol": 1e-6, "directions": 3})]


def test_defaults_reach_the_api(runner, fake_check):
    assert runner.invoke(app, ["check", "linear"]).exit_code == 0
    assert fake_check == [("recipe", "linear", None, None, None,
                           {"mode": "auto", "sizes": None, "seed": 0, "dtype": "float64",
                            "rtol": None, "atol": None, "directions": 8})]


def test_mode_and_dtype_are_case_insensitive(runner, fake_check):
    result = runner.invoke(app, ["check", "linear", "--mode", "Directional", "--dtype", "FLOAT32"])
    assert result.exit_code == 0, result.output
    assert fake_check[-1][-1]["mode"] == "directional" and fake_check[-1][-1]["dtype"] == "float32"


def test_expression_options_reach_the_api(runner, fake_check):
    result = runner.invoke(app, ["check", "--expr", "alpha * sum(tanh(X @ w))", "--wrt", "w",
                                 "--shape", "X=m,n", "--shape", "w=n", "--param", "alpha=0.5",
                                 "--size", "m=5"])
    assert result.exit_code == 0, result.output
    kind, expr, wrt, shapes, params, options = fake_check[-1]
    assert (kind, expr, wrt, shapes, params) == ("expr", "alpha * sum(tanh(X @ w))", ["w"],
                                                 {"X": "m,n", "w": "n"}, {"alpha": 0.5})
    assert options["sizes"] == {"m": 5}


def test_all_options_reach_the_api(runner, fake_check, tmp_path):
    result = runner.invoke(app, ["check", "--all", "--recipes", str(tmp_path), "--size", "n=16",
                                 "--json"])
    assert result.exit_code == 0, result.output
    kind, dirs, progress, options = fake_check[-1]
    assert (kind, dirs, progress) == ("all", [str(tmp_path)], None)   # no progress with --json
    assert options["sizes"] == {"n": 16}


# ---------------------------------------------------------------------------- JSON

RESULT_TYPES = {"wrt": str, "shape": list, "mode": str, "method": str, "step": float,
                "max_abs_error": float, "max_rel_error": float, "rtol": float, "atol": float,
                "n_evals": int, "passed": bool, "worst": list}


def _assert_target_json(data: dict) -> None:
    assert isinstance(data["target"], str)
    assert isinstance(data["passed"], bool)
    assert isinstance(data["seed"], int) and not isinstance(data["seed"], bool)
    assert data["dtype"] in ("float64", "float32")
    assert isinstance(data["results"], list)
    for r in data["results"]:
        for key, kind in RESULT_TYPES.items():
            assert isinstance(r[key], kind) or (kind is float and isinstance(r[key], (int, str))), \
                (key, r[key])
        assert all(isinstance(n, int) for n in r["shape"])
        assert not isinstance(r["n_evals"], bool)
        for w in r["worst"]:
            assert all(isinstance(i, int) for i in w["index"])
            assert isinstance(w["derived"], float) and isinstance(w["numeric"], float)


def test_json_for_one_target_has_the_documented_keys_and_types(runner, fake_check):
    result = runner.invoke(app, ["check", "failing", "--json"], env={"FORCE_COLOR": "1"})
    assert ANSI not in result.stdout
    data = _strict_json(result.stdout)
    _assert_target_json(data)
    assert data["target"] == "failing" and data["passed"] is False
    assert data["sizes"] == {"m": 3, "n": 4, "k": 5}
    w = data["results"][1]
    assert (w["wrt"], w["kind"], w["mode"], w["passed"]) == ("W", "vjp", "directional", False)
    assert w["shape"] == [3, 4]
    assert w["worst"] == [{"index": [1, 2], "derived": 0.5, "numeric": 0.4995, "abs_error": 5e-4,
                           "tolerance": 1e-12}]
    assert w["localised"][0]["index"] == [3, 1]
    assert "99%" in w["detection"]
    assert data["conventions"] == ["relu'(0) = 0: the branch holding at 0"]
    assert data["error"] is None


def test_json_writes_non_finite_numbers_as_fixed_strings(runner, fake_check, monkeypatch):
    import derivkit.api as api

    t = make_target("linear")
    odd = replace(t.results[0], max_rel_error=math.inf, max_abs_error=math.nan, passed=False,
                  worst=(WorstEntry((0,), -math.inf, 1.0, math.inf, 1e-12),))
    monkeypatch.setattr(api, "check_recipe",
                        lambda name, **kw: replace(t, passed=False, results=(odd,)))
    result = runner.invoke(app, ["check", "linear", "--json"])
    assert result.exit_code == 1
    r = _strict_json(result.stdout)["results"][0]
    assert (r["max_rel_error"], r["max_abs_error"]) == ("Infinity", "NaN")
    assert (r["worst"][0]["derived"], r["worst"][0]["abs_error"]) == ("-Infinity", "Infinity")
    assert math.isinf(float(r["max_rel_error"])) and math.isnan(float(r["max_abs_error"]))


def test_json_for_all_is_a_list_of_targets(runner, fake_check):
    fake_check.report = make_report(make_target("linear"), make_target("softmax", failing=True),
                                    make_target("broken", error="recipes/broken.toml: bad forward"))
    result = runner.invoke(app, ["check", "--all", "--json"])
    assert result.exit_code == 1
    data = _strict_json(result.stdout)
    assert data["passed"] is False
    assert [t["target"] for t in data["targets"]] == ["linear", "softmax", "broken"]
    assert [t["passed"] for t in data["targets"]] == [True, False, False]
    for t in data["targets"]:
        _assert_target_json(t)
    assert data["targets"][2]["error"] == "recipes/broken.toml: bad forward"
    assert data["targets"][2]["results"] == []


def test_all_passes_only_if_every_target_passes(runner, fake_check):
    result = runner.invoke(app, ["check", "--all", "--json"])
    assert result.exit_code == 0
    assert _strict_json(result.stdout)["passed"] is True
    fake_check.report = make_report(make_target("linear"), make_target("broken", error="no"))
    assert runner.invoke(app, ["check", "--all"]).exit_code == 1


# ---------------------------------------------------------------------------- JUnit

def _junit(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return root


def test_junit_one_testcase_per_result(runner, fake_check, tmp_path):
    out = tmp_path / "derivkit.xml"
    result = runner.invoke(app, ["check", "failing", "--junit", str(out)])
    assert result.exit_code == 1
    root = _junit(out)
    cases = root.findall(".//testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("derivkit.failing", "X vjp full"), ("derivkit.failing", "W vjp directional"),
        ("derivkit.failing", "b vjp full")]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "0")
    failure = cases[1].find("failure")
    assert failure is not None and cases[0].find("failure") is None
    assert "max relative error 1.00e-03" in failure.get("message")
    assert "[1, 2]: 5.000000e-01 vs 4.995000e-01" in failure.text      # the worst entry
    assert "[3, 1]" in failure.text                                      # localised
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["seed"] == "0" and props["dtype"] == "float64" and props["sizes"] == "m=3, n=4, k=5"


def test_junit_for_all_has_a_suite_per_target_and_errors(runner, fake_check, tmp_path):
    fake_check.report = make_report(make_target("linear"),
                                    make_target("broken", error="recipes/broken.toml: bad"))
    out = tmp_path / "all.xml"
    result = runner.invoke(app, ["check", "--all", "--junit", str(out), "--json"])
    assert result.exit_code == 1
    root = _junit(out)
    assert [s.get("name") for s in root.findall("testsuite")] == ["derivkit.linear", "derivkit.broken"]
    (error_case,) = [c for c in root.iter("testcase") if c.find("error") is not None]
    assert error_case.get("classname") == "derivkit.broken"
    assert error_case.find("error").text == "recipes/broken.toml: bad"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "0", "1")


def test_junit_survives_hostile_text(runner, fake_check, tmp_path, monkeypatch):
    """Markup, quotes and characters XML cannot hold (control characters) still give valid XML."""
    import derivkit.api as api

    nasty = 'x < y & "z" ]]> \x00\x01\x1b[31m </failure>'
    t = make_target("linear", failing=True)
    bad = replace(t.results[1], wrt=nasty, notes=(nasty,), detection=nasty)
    monkeypatch.setattr(api, "check_recipe", lambda name, **kw: replace(
        t, results=(bad,), conventions=(nasty,), error=nasty))
    out = tmp_path / "nasty.xml"
    result = runner.invoke(app, ["check", "linear", "--junit", str(out)])
    assert result.exit_code == 1
    root = _junit(out)
    case = root.find(".//testcase")
    assert case.get("name").startswith('x < y & "z" ]]> ')
    assert "</failure>" in case.find("failure").text
    assert root.find(".//error") is not None


def test_junit_renderer_directly():
    from derivkit.render.junit import junit_xml, xml_text

    lone = make_target("\udcff", error="file \udcff.toml: \ud800 \x00")   # undecodable file name
    root = ET.fromstring(junit_xml(lone))
    assert root.find(".//testcase").get("classname") == "derivkit.\ufffd"
    assert xml_text("a\x00b\ud800c\td") == "a\ufffdb\ufffdc\td"

    single = ET.fromstring(junit_xml(make_target("linear")))
    assert single.get("tests") == "3" and single.get("failures") == "0"
    assert single.find(".//testcase/system-out") is not None
    empty = ET.fromstring(junit_xml(make_report()))
    assert empty.get("tests") == "0"


# ---------------------------------------------------------------------------- Rich output

def test_human_output_for_one_target(runner, fake_check):
    result = runner.invoke(app, ["check", "failing"])
    out = result.stdout
    assert ANSI not in out
    for text in ("failing", "seed 0, float64, sizes m=3, n=4, k=5", "wrt", "kind", "step",
                 "max error", "tolerance", "evals", "verdict", "✓ pass", "✗ FAIL",
                 "abs 5.00e-04", "rel 1.00e-03", "rtol 3.6e-15", "atol 1e-12", "complex step"):
        assert text in out, text
    assert "does not match finite differences" in out
    assert "worst directions" in out and "[1, 2]" in out and "4.995000e-01" in out
    assert "localised to these Jacobian entries" in out and "[3, 1]" in out
    assert "caught with probability" in out                       # detection
    assert "numerical VJP for a seeded random upstream u" in out  # notes
    assert "Conventions" in out and "relu'(0) = 0" in out


def test_human_output_passing(runner, fake_check):
    out = runner.invoke(app, ["check", "linear"]).stdout
    assert "✓ All 3 derivative check(s) passed" in out
    assert "✗" not in out


def test_human_output_for_all(runner, fake_check):
    fake_check.report = make_report(make_target("linear"), make_target("softmax", failing=True),
                                    make_target("broken", error="recipes/broken.toml: bad forward"))
    result = runner.invoke(app, ["check", "--all"])
    assert result.exit_code == 1
    out = result.stdout
    for text in ("recipe", "wrt", "mode/method", "max rel err", "rtol/atol", "verdict",
                 "W (vjp)", "✗ ERROR", "recipes/broken.toml: bad forward"):
        assert text in out.replace("\n", " ") or text in out, text
    assert out.rstrip().splitlines()[-1].startswith("✗ 1/3 targets passed")
    assert "softmax: ∂/∂W (vjp) does not match finite differences" in out


def test_all_passing_last_line(runner, fake_check):
    result = runner.invoke(app, ["check", "--all"])
    assert result.exit_code == 0
    assert result.stdout.rstrip().splitlines()[-1].startswith("✓ 2/2 targets passed")


def test_human_output_fits_80_columns_without_cropping(runner, fake_check):
    out = runner.invoke(app, ["check", "failing"], env={"COLUMNS": "80"}).stdout
    assert "…" not in out
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 80


def _colour_codes(text: str) -> list[str]:
    """SGR parameters that set a colour (30-38, 40-48, 90-97, 100-107)."""
    found = []
    for params in re.findall(r"\x1b\[([0-9;]*)m", text):
        for p in params.split(";"):
            if p and (30 <= int(p) <= 48 or 90 <= int(p) <= 107):
                found.append(p)
    return found


def test_no_colour_when_piped_and_with_no_color(runner, fake_check):
    piped = runner.invoke(app, ["check", "failing"])
    assert ANSI not in piped.stdout
    forced = runner.invoke(app, ["check", "failing"], env={"FORCE_COLOR": "1"})
    assert _colour_codes(forced.stdout), "FORCE_COLOR should give colour (sanity check)"
    no_color = runner.invoke(app, ["check", "failing"], env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert _colour_codes(no_color.stdout) == []
    all_piped = runner.invoke(app, ["check", "--all"])
    assert ANSI not in all_piped.stdout and ANSI not in all_piped.stderr


# ---------------------------------------------------------------------------- progress

def test_all_passes_a_progress_callback(runner, fake_check):
    result = runner.invoke(app, ["check", "--all"])
    assert result.exit_code == 0
    progress = fake_check[-1][2]
    assert callable(progress)
    assert result.stderr == ""          # not a terminal: the callback draws nothing


def test_progress_bar_on_a_terminal_goes_to_stderr(runner, fake_check):
    env = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "NO_COLOR": "1"}
    result = runner.invoke(app, ["check", "--all"], env=env)
    assert result.exit_code == 0, result.output
    assert "checking" in result.stderr          # the bar was drawn (then cleared: transient)
    assert "checking" not in result.stdout
    assert "2/2 targets passed" in result.stdout


def test_progress_callback_counts_recipes():
    from rich.console import Console

    from derivkit.render.check_rich import progress_callback

    console = Console(force_terminal=True, force_interactive=True, width=80, record=True)
    with progress_callback(console, 2) as callback:
        callback("linear")
        callback("softmax")
    quiet = Console(force_terminal=False, force_interactive=False)
    with progress_callback(quiet, 2) as callback:
        assert callback("linear") is None


# ---------------------------------------------------------------------------- help and import cost

def test_check_help_has_examples(runner):
    result = runner.invoke(app, ["check", "--help"])
    assert result.exit_code == 0
    assert "Examples" in result.output and "derivkit check softmax" in result.output
    assert "derivkit check --all" in result.output


@pytest.mark.parametrize("args", [["--help"], ["check", "--help"]])
def test_check_help_does_not_import_heavy_modules(args, tmp_path):
    code = ("import sys\nfrom derivkit.cli import app\n"
            "try:\n    app(args=sys.argv[1:], prog_name='derivkit')\nexcept SystemExit:\n    pass\n"
            "print('@@', sorted(m for m in sys.modules if m.split('.')[0] in ('sympy', 'numpy') "
            "or m.startswith('derivkit.checking')))")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=tmp_path, env=dict(os.environ, NO_COLOR="1"))
    assert "@@ []" in proc.stdout, proc.stdout[-500:] + proc.stderr


def test_pre_commit_hook_file():
    text = (Path(__file__).resolve().parent.parent / ".pre-commit-hooks.yaml").read_text()
    assert "- id: derivkit-check" in text
    assert "entry: derivkit check --all" in text
    assert "language: python" in text and "pass_filenames: false" in text
    files = re.search(r"^\s*files: '(.*)'$", text, flags=re.M).group(1)
    assert re.search(files, "recipes/relu.toml") and re.search(files, "lib/recipes/x.toml")
    assert not re.search(files, "pyproject.toml")


# ---------------------------------------------------------------------------- the real checker

def test_engine_check_softmax_passes(runner):
    result = runner.invoke(app, ["check", "softmax"])
    assert result.exit_code == 0, result.output
    assert "✓ pass" in result.stdout and "✗" not in result.stdout


@pytest.mark.xdist_group("transformer-block")   # the worker that has derived it
def test_engine_check_all_json_every_target_passes(runner):
    result = runner.invoke(app, ["check", "--all", "--json"])
    assert result.exit_code == 0, result.output
    data = _strict_json(result.stdout)
    assert data["passed"] is True and data["targets"]
    for t in data["targets"]:
        _assert_target_json(t)
        assert t["passed"] is True and t["results"], t["target"]


def test_engine_check_expression_with_sizes_and_junit(runner, tmp_path):
    out = tmp_path / "expr.xml"
    result = runner.invoke(app, ["check", "--expr", "sum(tanh(X @ w))", "--wrt", "w",
                                 "--shape", "X=m,n", "--shape", "w=n", "--size", "m=6",
                                 "--size", "n=5", "--mode", "full", "--json", "--junit", str(out)])
    assert result.exit_code == 0, result.output
    data = _strict_json(result.stdout)
    assert data["sizes"] == {"m": 6, "n": 5}
    assert [(r["wrt"], r["mode"], r["shape"]) for r in data["results"]] == [("w", "full", [5])]
    assert _junit(out).get("failures") == "0"


def test_engine_all_with_a_broken_recipe_fails_and_names_it(runner, tmp_path, builtin_recipes):
    """Two built-ins and a broken recipe: the broken one alone fails, and is named (every
    built-in passing `check --all` is test_engine_check_all_json_every_target_passes)."""
    builtin_recipes("linear", "softmax")
    (tmp_path / "broken.toml").write_text(
        'name = "broken"\nsummary = "Unknown function"\nforward = "frob(x)"\n[inputs]\nx = "n"\n')
    out = tmp_path / "all.xml"
    result = runner.invoke(app, ["check", "--all", "--recipes", str(tmp_path), "--json",
                                 "--junit", str(out)])
    assert result.exit_code == 1, result.output
    data = _strict_json(result.stdout)
    assert sorted(t["target"] for t in data["targets"]) == ["broken", "linear", "softmax"]
    broken = next(t for t in data["targets"] if t["target"] == "broken")
    assert broken["passed"] is False and "frob" in broken["error"]
    assert [t["target"] for t in data["targets"] if not t["passed"]] == ["broken"]
    assert _junit(out).get("errors") == "1"


def test_engine_gate_fails_on_a_wrong_rule_and_shows_it(runner, monkeypatch, tmp_path):
    """The real checker with a linear-layer VJP whose entry [1, 2] is 0.1 % off: exit 1, the
    entry named in the table, the JSON and the JUnit failure."""
    import derivkit.api as api
    from derivkit.checking import runner as check_runner
    from derivkit.lang import recipes

    def vjp_w(X, W, b, G):
        out = X.T @ G
        out[1, 2] *= 1.001
        return out

    def wrong_check_recipe(name, *, recipe_dirs=None, wrt=None, params=None, **options):
        return check_runner.check(recipes.load(name), implementations={("vjp", "W"): vjp_w},
                                  **options)

    monkeypatch.setattr(api, "check_recipe", wrong_check_recipe)
    human = runner.invoke(app, ["check", "linear", "--mode", "full"])
    assert human.exit_code == 1, human.output
    assert "✗ FAIL" in human.stdout and "linear: ∂/∂W (vjp) does not match" in human.stdout
    assert "[1, 2]" in human.stdout
    out = tmp_path / "wrong.xml"
    as_json = runner.invoke(app, ["check", "linear", "--json", "--junit", str(out)])
    assert as_json.exit_code == 1
    data = _strict_json(as_json.stdout)
    (w,) = [r for r in data["results"] if r["wrt"] == "W" and r["mode"] == "full"]
    assert w["passed"] is False and w["worst"][0]["index"] == [1, 2]
    assert all(r["passed"] for r in data["results"] if r["wrt"] != "W")
    failures = [c for c in _junit(out).iter("testcase") if c.find("failure") is not None]
    assert failures and all(c.get("name").startswith("W vjp ") for c in failures)
    assert "[1, 2]" in failures[0].find("failure").text


def test_engine_unknown_size_name_is_a_usage_error(runner):
    result = runner.invoke(app, ["check", "softmax", "--size", "q=3"])
    assert result.exit_code == 2
    _one_error_line(result)


def test_junit_names_are_unique_with_both_modes(runner, tmp_path):
    """auto mode checks each input fully and along directions: two test cases, two names."""
    out = tmp_path / "linear.xml"
    assert runner.invoke(app, ["check", "linear", "--junit", str(out)]).exit_code == 0
    names = [(c.get("classname"), c.get("name")) for c in _junit(out).iter("testcase")]
    assert len(names) == len(set(names)) == 6
    assert ("derivkit.linear", "W vjp directional") in names and ("derivkit.linear", "W vjp full") in names


@pytest.mark.parametrize("args", [["-h"], ["check", "-h"], ["derive", "-h"]])
def test_short_help_option(runner, args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "Usage" in result.output
