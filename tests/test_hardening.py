"""Hostile and broken input through the whole CLI (issue 6).

Properties: nothing a user passes is executed; every bad input ends with exit 2 and one line on
stderr ("derivkit: error: ...", naming the file and line for recipes, the column for
expressions), never a traceback and never a partial result presented as a pass; resource limits
answer with a message instead of a hang; a broken recipe does not stop `check --all`.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derivkit.cli.app import app

PACKAGE = Path(__file__).resolve().parent.parent / "derivkit"
RECIPES = Path(__file__).resolve().parent.parent / "recipes"
FUZZ = settings(max_examples=50, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture
def cli(runner, tmp_path, monkeypatch):
    """Invoke the CLI in an empty working directory; fail if any file appears there."""
    monkeypatch.chdir(tmp_path)

    def invoke(args):
        before = set(os.listdir(tmp_path))
        result = runner.invoke(app, args)
        assert set(os.listdir(tmp_path)) == before, "the command created files"
        return result
    return invoke


def assert_input_error(result, *, contains: str | None = None) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    err = result.stderr
    assert err.count("\n") == 1 and err.startswith("derivkit: error: "), err
    assert "Traceback" not in err + result.stdout
    assert "✓" not in result.stdout and "passed" not in result.stdout   # no partial "pass"
    if contains:
        assert contains in err, err
    return err


def assert_clean(result) -> None:
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    if result.exit_code == 2:
        assert_input_error(result)


# ---------------------------------------------------------------- known attack strings
ATTACKS = [
    "__import__('os').system('touch pwned')",
    "().__class__.__bases__[0].__subclasses__()",
    "x.__class__",
    "getattr(x, 'T')",
    "eval('1')",
    "exec('import os')",
    "open('pwned', 'w')",
    "(lambda: 0)()",
    "[t for t in ().__class__.__mro__]",
    "x if x else x",
    "x[0:2]",
    "x.real",
    "f'{x}'",
    "x := 1",
    "sum(x, axis=__import__('os'))",
    "leaky_relu(x, alpha=__import__('os'))",
    "\\\\",
    "x\x00",
    "sum(x);import os",
    "__builtins__",
    "globals()",
    "sympy.sqrt(x)",
    "np.sum(x)",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_strings_as_expressions_are_rejected(cli, attack):
    for command in ("derive", "check", "lower"):
        err = assert_input_error(cli([command, "--expr", attack, "--wrt", "x", "--shape", "x=n"]))
        assert "pwned" not in os.listdir(".")
        assert len(err) < 400


@pytest.mark.parametrize("attack", ATTACKS + ["p[i].__class__", "p[__import__('os')]",
                                              "delta(i, __import__('os'))", "sum(p[i], p)"])
def test_attack_strings_as_claims_are_rejected(cli, attack):
    assert_input_error(cli(["verify", "softmax", "--claim", attack]))


@pytest.mark.parametrize("args", [
    ["derive", "--expr", "sum(x)", "--wrt", "x", "--shape", "__import__('os')=n"],
    ["derive", "--expr", "sum(x)", "--wrt", "x", "--shape", "x=__import__('os')"],
    ["derive", "--expr", "sum(x)", "--wrt", "x;rm -rf /", "--shape", "x=n"],
    ["derive", "--expr", "sum(x)", "--wrt", "x", "--shape", "x=n", "--param", "a=__import__"],
    ["derive", "--expr", "sum(__x)", "--wrt", "__x", "--shape", "__x=n"],
    ["derive", "../../etc/passwd"],
    ["derive", "softmax; rm -rf /"],
    ["check", "linear", "--size", "m=__import__('os')"],
    ["check", "linear", "--size", "m=-1"],
    ["check", "linear", "--size", "m=1e9"],
    ["check", "linear", "--size", "q=3"],
])
def test_symbol_and_option_injection_is_rejected(cli, args):
    assert_input_error(cli(args))


# ---------------------------------------------------------------- resource limits
def test_ten_megabyte_expression_is_refused_quickly(cli):
    huge = "x + " * (10 * 2**20 // 4) + "x"
    err = assert_input_error(cli(["derive", "--expr", huge, "--wrt", "x", "--shape", "x=n"]))
    assert "characters long" in err and "limit" in err


def test_ten_megabyte_claim_is_refused(cli):
    assert_input_error(cli(["verify", "softmax", "--claim", "p[i]*" * (2 * 2**20) + "1"]),
                       contains="limit")


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
def test_deeply_nested_parentheses(cli, depth):
    text = "(" * depth + "x" + ")" * depth
    for r in (cli(["derive", "--expr", text, "--wrt", "x", "--shape", "x=n"]),
              cli(["verify", "softmax", "--claim", "(" * depth + "p[i]" + ")" * depth])):
        err = assert_input_error(r)
        assert "nests deeper" in err or "the limit is" in err


def test_deep_nesting_without_parentheses(cli):
    text = "-" * 5000 + "x"
    assert_clean(cli(["derive", "--expr", f"sum({text})", "--wrt", "x", "--shape", "x=n"]))
    text = "exp(" * 200 + "x" + ")" * 200
    assert_input_error(cli(["derive", "--expr", text, "--wrt", "x", "--shape", "x=n"]))


def test_sizes_whose_jacobian_does_not_fit_in_memory(cli):
    assert_input_error(cli(["check", "linear", "--wrt", "W", "--mode", "full", "--size", "m=1000",
                            "--size", "n=4000", "--size", "k=4000"]), contains="GiB")
    assert_input_error(cli(["check", "linear", "--size", "m=1000000", "--size", "n=1000000",
                            "--size", "k=3"]), contains="GiB")


def test_simplification_time_budget_falls_back_to_a_verified_form(monkeypatch):
    from derivkit import api
    from derivkit.derivation import simplify

    monkeypatch.setattr(simplify, "BUDGET_S", 0.0)
    d = api.derive_recipe("softmax")
    assert any("time budget" in w for w in d.warnings)
    assert d.verified                       # less simplified, still verified
    full = api.derive_recipe("sigmoid")     # sanity: the budget is per derivation, restored
    monkeypatch.undo()
    assert not any("time budget" in w for w in api.derive_recipe("sigmoid").warnings)
    assert full.verified


def test_a_single_sympy_call_is_interrupted(monkeypatch):
    import time as _time

    from derivkit.derivation import simplify

    monkeypatch.setattr(simplify, "CALL_LIMIT_S", 0.2)
    s = simplify.Simplifier()
    started = _time.monotonic()
    assert s._timed(lambda e: _time.sleep(5), None) is None
    assert _time.monotonic() - started < 2 and s.timed_out


# ---------------------------------------------------------------- numerical edge cases
def test_forward_not_finite_at_the_sampled_points_is_reported(cli):
    assert_input_error(cli(["check", "--expr", "sum(log(x - 3))", "--wrt", "x", "--shape", "x=n"]),
                       contains="not finite")


def test_always_singular_inverse_is_reported_not_verified(cli):
    r = cli(["derive", "--expr", "trace(inv(outer(x, x)))", "--wrt", "x", "--shape", "x=n"])
    assert r.exit_code == 1 and "singular" in r.stdout and "NOT VERIFIED" in r.stdout


def test_a_derivative_that_is_zero_everywhere_is_reported(cli):
    r = cli(["derive", "--expr", "sum(softmax(x))", "--wrt", "x", "--shape", "x=n", "--json"])
    assert r.exit_code == 0
    assert any("zero everywhere" in w for w in json.loads(r.stdout)["warnings"])


# ---------------------------------------------------------------- fuzzing
junk = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60)
TOKENS = ["p", "z", "g", "i", "j", "k", "n", "[", "]", ",", "(", ")", "*", "+", "-", "/", "**",
          "@", ".T", "delta", "sum", "where", "exp", "1", "2", "0.5", ">", "__class__", ".", "_",
          "lambda", ":", "'", "x", "diag", "outer", "=", " "]


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=14).map("".join))
def test_fuzz_claim_language_token_soup(cli, text):
    assert_clean(cli(["verify", "softmax", "--claim", text]))


@FUZZ
@given(junk)
def test_fuzz_claim_language_junk(cli, text):
    assert_clean(cli(["verify", "linear", "--wrt", "W", "--claim", text]))


@FUZZ
@given(st.lists(st.sampled_from(["x", "W", "(", ")", "@", "*", "+", "sum", "exp", "log", ".T",
                                 "relu", ",", "axis=", "0", "1", "__", "[", "]", " "]),
                max_size=14).map("".join))
def test_fuzz_expression_language_token_soup(cli, text):
    assert_clean(cli(["derive", "--expr", text, "--wrt", "x", "--shape", "x=n",
                      "--shape", "W=n,n"]))


# --- recipe files
def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            return "nan" if v != v else ("inf" if v > 0 else "-inf")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def to_toml(data: dict) -> str:
    return "\n".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in data.items()) + "\n"


scalars = st.one_of(junk, st.integers(-10**20, 10**20), st.floats(), st.booleans())
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["x", "y", "__x", "n"]), inner,
                                                 max_size=3)), max_leaves=6)
FIELDS = ["name", "summary", "forward", "inputs", "params", "wrt", "output", "upstream", "domain",
          "steps", "notes"]
recipe_dicts = st.fixed_dictionaries(
    {"name": st.just("fuzz"), "summary": st.just("s"),
     "forward": st.sampled_from(["sum(x * x)", "relu(x)", "x @ W", "sum(q)", "x.__class__", ""]),
     "inputs": st.one_of(st.just({"x": "n"}), st.dictionaries(
         st.sampled_from(["x", "W", "__x", "x y"]), st.one_of(st.sampled_from(["n", "n,n", "0", "m,"]),
                                                              scalars), max_size=2))},
    optional={k: values for k in FIELDS[4:]}) | st.dictionaries(st.sampled_from(FIELDS), values,
                                                                 max_size=5)


@FUZZ
@given(recipe_dicts)
def test_fuzz_recipe_files(cli, tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("recipes")
    path = folder / "fuzz.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    r = cli(["derive", "fuzz", "--recipes", str(folder)])
    assert_clean(r)
    if r.exit_code == 2 and "fuzz.toml" in r.stderr:
        assert re.search(r"fuzz\.toml(:\d+)?: ", r.stderr)


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_recipe_bytes(cli, tmp_path_factory, blob):
    folder = tmp_path_factory.mktemp("recipes")
    (folder / "fuzz.toml").write_bytes(blob)
    r = cli(["derive", "fuzz", "--recipes", str(folder)])
    assert_input_error(r, contains="fuzz.toml")


# ---------------------------------------------------------------- broken recipes: file and line
BROKEN = {
    "syntax": ('name = "syntax"\nsummary = "s\nforward = "sum(x)"\n', 2),
    "type": ('name = "type"\nsummary = "s"\nforward = "sum(x)"\n\n[inputs]\nx = "n"\n\n[params]\n'
             'alpha = "big"\n', 9),
    "expr": ('name = "expr"\nsummary = "s"\n\nforward = "sum(x) + q"\n[inputs]\nx = "n"\n', 4),
    "ident": ('name = "ident"\nsummary = "s"\nforward = "sum(x)"\n[inputs]\n"__class__" = "n"\n', 5),
    "shape": ('name = "shape"\nsummary = "s"\nforward = "sum(x)"\n[inputs]\nx = "n,,m"\n', 5),
    "step": ('name = "step"\nsummary = "s"\n[[steps]]\nname = "A"\nexpr = "x * 2"\n[[steps]]\n'
             'name = "L"\nexpr = "sum(A.__class__)"\n[inputs]\nx = "n"\n', 8),
    "domain": ('name = "domain"\nsummary = "s"\nforward = "sum(x)"\n[inputs]\nx = "n"\n[domain]\n'
               'x = "complex"\n', 7),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_recipe_names_file_and_line(cli, tmp_path, name):
    text, line = BROKEN[name]
    (tmp_path / "rec").mkdir(exist_ok=True)
    path = tmp_path / "rec" / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    err = assert_input_error(cli(["derive", name, "--recipes", str(tmp_path / "rec")]))
    assert f"{path}:{line}:" in err, err


def test_broken_recipes_do_not_stop_check_all(cli, tmp_path, builtin_recipes):
    builtin_recipes("relu", "linear")      # two built-ins; test_checker checks all of them
    folder = tmp_path / "rec"
    folder.mkdir()
    for name, (text, _) in BROKEN.items():
        (folder / f"{name}.toml").write_text(text, encoding="utf-8")
    (folder / "good.toml").write_text((RECIPES / "relu.toml").read_text().replace(
        'name = "relu"', 'name = "good"'), encoding="utf-8")
    r = cli(["check", "--all", "--recipes", str(folder), "--json"])
    assert r.exit_code == 1
    targets = {t["target"]: t for t in json.loads(r.stdout)["targets"]}
    assert set(targets) == {"good", "relu", "linear", *BROKEN}
    assert targets["good"]["passed"] and targets["relu"]["passed"] and targets["linear"]["passed"]
    for name, (_, line) in BROKEN.items():
        assert not targets[name]["passed"]
        assert f"{name}.toml:{line}" in targets[name]["error"], targets[name]["error"]


# ---------------------------------------------------------------- nothing user-written is run
def test_no_eval_exec_sympify_of_text_in_the_package():
    """Static audit: eval/parse_expr/lambdify are never called; sympify only with strict=True
    (which refuses strings); exec/compile only in the one emitter of generated code (emit.py,
    after its ast audit) and the user's own --impl file is imported, never exec'd as text."""
    allowed_exec = {"emit.py"}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            where = f"{path.name}:{node.lineno}"
            assert name not in ("eval", "parse_expr", "lambdify", "__import__"), where
            if isinstance(f, ast.Name) and name in ("exec", "compile"):   # not re.compile
                assert path.name in allowed_exec, where
            if name in ("sympify", "S"):
                assert any(k.arg == "strict" for k in node.keywords), where


def test_check_refuses_an_inverse_that_is_singular_at_the_sample(cli):
    assert_input_error(cli(["check", "--expr", "trace(inv(outer(x, x)))", "--wrt", "x",
                            "--shape", "x=n"]), contains="singular")
    assert cli(["check", "--expr", "trace(inv(A))", "--wrt", "A", "--shape", "A=n,n"]).exit_code == 0


def test_check_reports_a_zero_derivative(cli):
    r = cli(["check", "--expr", "sum(softmax(x))", "--wrt", "x", "--shape", "x=n", "--json"])
    assert r.exit_code == 0 and "zero everywhere" in r.stdout


def test_an_internal_error_in_one_recipe_does_not_stop_check_all(monkeypatch, builtin_recipes):
    from derivkit import api
    from derivkit.checking import runner

    builtin_recipes("linear", "relu", "softmax")   # test_checker checks every built-in

    real = runner.check

    def flaky(recipe, **kw):
        if recipe.name == "relu":
            raise RuntimeError("boom")
        return real(recipe, **kw)

    monkeypatch.setattr(runner, "check", flaky)
    report = api.check_all()
    by = {t.target: t for t in report.targets}
    assert not report.passed and not by["relu"].passed
    assert "internal error: RuntimeError: boom" in by["relu"].error and "relu.toml" in by["relu"].error
    assert sorted(by) == ["linear", "relu", "softmax"]
    assert by["softmax"].passed and by["linear"].passed


def test_huge_exponents_are_refused(cli):
    assert_input_error(cli(["derive", "--expr", "sum((x+1)**600)", "--wrt", "x", "--shape", "x=n"]),
                       contains="exponent 600")
    assert_input_error(cli(["verify", "--expr", "sum(x**2)", "--wrt", "x", "--shape", "x=n",
                            "--claim", "2*x + (x+1)**100000"]), contains="exponent")
    assert cli(["derive", "--expr", "sum((x+1)**3)", "--wrt", "x", "--shape", "x=n"]).exit_code == 0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_recipe_folder_with_a_fifo_or_a_device(cli, tmp_path):
    folder = tmp_path / "rec"
    folder.mkdir()
    os.mkfifo(folder / "fifo.toml")
    assert_input_error(cli(["derive", "fifo", "--recipes", str(folder)]), contains="regular file")
    (folder / "fifo.toml").unlink()
    if Path("/dev/zero").exists():
        (folder / "zero.toml").symlink_to("/dev/zero")
        assert_input_error(cli(["derive", "zero", "--recipes", str(folder)]), contains="regular file")


def test_upstream_name_may_not_be_a_step_or_the_output(cli, tmp_path):
    folder = tmp_path / "rec"
    folder.mkdir()
    (folder / "col.toml").write_text(
        'name = "col"\nsummary = "s"\nupstream = "A"\n[[steps]]\nname = "A"\nexpr = "2*x"\n'
        '[[steps]]\nname = "B"\nexpr = "sum(A*x)"\n[inputs]\nx = "n"\n', encoding="utf-8")
    assert_input_error(cli(["check", "col", "--recipes", str(folder)]), contains="col.toml:3:")


def test_singular_matrix_inside_det_is_reported(cli):
    assert_input_error(cli(["check", "--expr", "det(outer(x, x))", "--wrt", "x", "--shape", "x=n"]),
                       contains="singular")


def test_nested_time_limits_rearm_the_outer_one():
    import time as _time

    from derivkit.derivation.simplify import _TimeUp, time_limit

    started = _time.monotonic()
    with pytest.raises(_TimeUp):
        with time_limit(0.6):
            with pytest.raises(_TimeUp):
                with time_limit(0.1):
                    _time.sleep(1)
            _time.sleep(2)
    assert _time.monotonic() - started < 1.5
