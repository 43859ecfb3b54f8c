"""`derivkit check` as a CI gate: --quiet, --format github (GitHub Actions annotations), an
unknown --size name refused, a --shape whose dimensions are not separated by commas refused.

The CLI tests replace `derivkit.api.check_*` by stand-ins returning hand-built results (from
test_cli_check), so they test the plumbing and the renderers without the numerical engine."""

from __future__ import annotations

import pytest
from test_cli_check import make_report, make_target

from derivkit.cli.app import app
from derivkit.errors import DerivkitError, ShapeError


@pytest.fixture
def fake(monkeypatch):
    """check_recipe: 'failing' fails one check; check_all returns `fake.report`."""
    import derivkit.api as api

    class State:
        report = make_report(make_target("linear"), make_target("softmax"))
        calls: list = []

    State.calls = []

    def check_recipe(name, **options):
        State.calls.append(name)
        return make_target(name, failing=name == "failing")

    def check_all(*, recipe_dirs=None, progress=None, **options):
        State.calls.append("all")
        return State.report

    monkeypatch.setattr(api, "check_recipe", check_recipe)
    monkeypatch.setattr(api, "check_all", check_all)
    return State


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    err = result.stderr
    assert err.count("\n") == 1 and err.startswith("derivkit: error: "), err
    return err


def _failing_report():
    return make_report(make_target("linear"), make_target("softmax", failing=True),
                       make_target("broken", error="recipes/broken.toml: bad forward"))


# ---------------------------------------------------------------------------- --quiet

@pytest.mark.parametrize("flag", ["--quiet", "-q"])
def test_quiet_all_passing_prints_only_the_summary_line(runner, fake, flag):
    result = runner.invoke(app, ["check", "--all", flag])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [result.stdout.strip()]
    assert result.stdout.startswith("✓ 2/2 targets passed")


def test_quiet_all_failing_prints_failures_and_the_summary_only(runner, fake):
    fake.report = _failing_report()
    result = runner.invoke(app, ["check", "--all", "-q"])
    assert result.exit_code == 1
    out = result.stdout
    assert "softmax: ∂/∂W (vjp) does not match finite differences" in out
    assert "broken: could not check" in out and "bad forward" in out
    assert "verdict" not in out and "✓ pass" not in out       # no summary table
    assert "linear" not in out                                # a passing target is not shown
    assert out.rstrip().splitlines()[-1].startswith("✗ 1/3 targets passed")
    loud = runner.invoke(app, ["check", "--all"]).stdout
    assert len(out.splitlines()) < len(loud.splitlines())


def test_quiet_one_target(runner, fake):
    passing = runner.invoke(app, ["check", "linear", "-q"])
    assert passing.exit_code == 0
    assert passing.stdout.strip().splitlines() == [
        "✓ All 3 derivative check(s) passed against finite differences."]
    failing = runner.invoke(app, ["check", "failing", "-q"], env={"COLUMNS": "120"})
    assert failing.exit_code == 1
    lines = failing.stdout.rstrip().splitlines()
    assert lines[0] == "✗ failing: ∂/∂W (vjp) does not match finite differences"
    assert lines[-1].startswith("✗ 1 of 3 derivative check(s) FAILED")
    assert "Notes" not in failing.stdout and "evals" not in failing.stdout


# ---------------------------------------------------------------------------- --format github

def test_github_annotations_one_per_failure_then_the_summary(runner, fake):
    fake.report = _failing_report()
    result = runner.invoke(app, ["check", "--all", "--format", "github"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 2 and lines[:2] == errors
    assert errors[0].startswith("::error title=derivkit check softmax::∂/∂W (vjp, directional) "
                                "does not match finite differences: max relative error 1.00e-03")
    assert errors[1] == ("::error title=derivkit check broken::broken could not be checked: "
                         "recipes/broken.toml: bad forward")
    assert lines[2:] == ["✗ derivkit check: 1/3 targets passed"]


def test_github_passing_prints_no_error(runner, fake):
    result = runner.invoke(app, ["check", "--all", "--format", "GitHub"])
    assert result.exit_code == 0
    assert "::error" not in result.stdout
    assert result.stdout.splitlines() == ["✓ derivkit check: 2/2 targets passed"]
    one = runner.invoke(app, ["check", "failing", "--format", "github"])
    assert one.exit_code == 1
    (error,) = [line for line in one.stdout.splitlines() if line.startswith("::")]
    assert error.startswith("::error title=derivkit check failing::∂/∂W (vjp, directional)")
    assert "worst direction [1, 2]" in error


def test_github_escaping_follows_the_runner():
    from derivkit.render.github import error_command, escape_data, escape_property, github_lines

    assert escape_data("50% a\r\nb: c, d") == "50%25 a%0D%0Ab: c, d"
    assert escape_property("50% a\r\nb: c, d") == "50%25 a%0D%0Ab%3A c%2C d"
    assert error_command("t:1,2", "m%\n") == "::error title=t%3A1%2C2::m%25%0A"
    hostile = make_report(make_target("a,b:c%", error="x\n::error title=forged::yes\r%"))
    lines = github_lines(hostile)
    assert len(lines) == 2 and not lines[1].startswith("::")
    assert lines[0].startswith("::error title=derivkit check a%2Cb%3Ac%25::a,b:c%25 could not")
    assert "\n" not in lines[0] and "\r" not in lines[0] and "::error title=forged" in lines[0]


@pytest.mark.parametrize("args", [
    ["--json", "--format", "github"], ["--json", "--format", "text"], ["--json", "-q"],
    ["--format", "json", "--quiet"], ["--format", "xml"],
])
def test_contradictory_output_options_are_usage_errors(runner, fake, args):
    _one_error_line(runner.invoke(app, ["check", "linear", *args]))
    assert fake.calls == []


def test_json_is_format_json(runner, fake):
    a = runner.invoke(app, ["check", "linear", "--json"])
    b = runner.invoke(app, ["check", "linear", "--format", "json"])
    c = runner.invoke(app, ["check", "linear", "--json", "--format", "json"])
    assert a.exit_code == b.exit_code == c.exit_code == 0
    assert a.stdout == b.stdout == c.stdout and a.stdout.startswith("{")


# ---------------------------------------------------------------------------- --size

def test_unknown_size_with_all_is_an_error_naming_every_dimension(runner, builtin_recipes):
    builtin_recipes("relu", "linear")
    result = runner.invoke(app, ["check", "--all", "--size", "q=3", "--size", "m=4"])
    err = _one_error_line(result)
    assert "--size q=3: 'q'" in err and "not a dimension of any recipe" in err
    assert "dimensions: k, m, n" in err and "m=4" not in err


def test_known_sizes_with_all_are_accepted():
    from derivkit.checking.runner import _refuse_unknown_sizes
    from derivkit.lang.recipes import builtin_dir

    paths = [builtin_dir() / "relu.toml", builtin_dir() / "linear.toml"]
    _refuse_unknown_sizes({"m": 4, "k": 2}, paths)       # each names a dimension of some recipe
    with pytest.raises(DerivkitError, match="'d0'"):
        _refuse_unknown_sizes({"d0": 4}, paths)


# ---------------------------------------------------------------------------- --shape

@pytest.mark.parametrize("spec, fixed", [
    ("X=mxn", "X=m,n"), ("X=3x4", "X=3,4"), ("X=m*n", "X=m,n"), ("X=nXd", "X=n,d"),
    ("X=m x n", "X=m,n"), ("X=b,txd", "X=b,t,d"), ("X=axbxc", "X=a,b,c"),
])
def test_shape_dims_not_separated_by_commas_is_refused_with_the_fix(runner, spec, fixed):
    result = runner.invoke(app, ["check", "--expr", "sum(X)", "--wrt", "X", "--shape", spec])
    err = _one_error_line(result)
    assert f"--shape {spec}:" in err and "separate dimensions with a comma" in err
    assert err.rstrip().endswith(fixed), err


@pytest.mark.parametrize("text, shape", [
    ("m,n", ("m", "n")), ("m×n", ("m", "n")), ("batch", ("batch",)), ("dmodel", ("dmodel",)),
    ("maxlen", ("maxlen",)), ("nx", ("nx",)), ("next", ("next",)), ("x", ("x",)), ("3", (3,)),
])
def test_names_are_still_dimensions(text, shape):
    from derivkit.cli.values import parse_shapes
    from derivkit.lang.shapes import parse_shape

    assert parse_shape(text) == shape
    assert parse_shapes([f"X={text}"]) == {"X": text}


def test_recipe_shapes_get_the_fix_where_the_text_is_not_a_name(tmp_path):
    """In a recipe file 'mxn' is a valid dimension name (any identifier is); '3x4', 'm*n' and
    'm x n' are not names, and the error gives the fix."""
    from derivkit.lang.recipes import load_file
    from derivkit.lang.shapes import parse_shape

    with pytest.raises(ShapeError, match="write 'm,n'"):
        parse_shape("m * n")
    assert parse_shape("mxn") == ("mxn",)
    path = tmp_path / "typo.toml"
    path.write_text('name = "typo"\nsummary = "s"\nforward = "sum(X)"\n[inputs]\nX = "3x4"\n')
    with pytest.raises(DerivkitError, match=r"inputs\.X.*separate dimensions with a comma: write '3,4'"):
        load_file(path)


@pytest.mark.usefixtures("shared_derivations")
def test_github_annotation_of_a_wrong_shape_gives_the_shapes(runner, tmp_path):
    """Found in review: the annotation said "inf, rtol nan" where the terminal leads with shapes."""
    impl = tmp_path / "mine.py"
    impl.write_text("def backward(X, W, b, G):\n    return G @ W.T, X.T @ G, G.sum(axis=1)\n",
                    encoding="utf-8")
    result = runner.invoke(app, ["check", "linear", "--impl", f"{impl}:backward", "--format", "github"])
    assert result.exit_code == 1, result.output
    errors = [ln for ln in result.stdout.splitlines() if ln.startswith("::error ")]
    assert errors and all("∂/∂b" in ln for ln in errors)
    assert all("has the wrong shape: yours (4,), expected (3,)" in ln for ln in errors)
    assert not any("nan" in ln for ln in errors)
