"""The CLI: exit codes (0 ok, 1 a check failed, 2 usage/input error), one-line errors on stderr,
help with examples, JSON for machines. Tests marked "engine" need derivkit/derivation/engine.py."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import RECIPES

from derivkit.cli.app import app

ANSI = "\x1b["
RECIPE_NAMES = sorted(p.stem for p in RECIPES.glob("*.toml"))

# No test here changes how derivkit derives: derivations are shared across the session (conftest).
pytestmark = pytest.mark.usefixtures("shared_derivations")


def _command_names() -> list[str]:
    import typer

    group = typer.main.get_command(app)
    return sorted(group.commands)


def _one_error_line(result) -> str:
    """The whole stderr is one line starting 'derivkit: error: '; no traceback."""
    err = result.stderr
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    assert err.startswith("derivkit: error: "), err
    assert "Traceback" not in result.output
    return err.strip()


# ---------------------------------------------------------------------------- top level

def test_version(runner):
    from derivkit import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"derivkit {__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", __version__)


def test_no_arguments_shows_help(runner):
    result = runner.invoke(app, [])
    assert "Usage" in result.output
    assert result.exit_code in (0, 2)   # Click >= 8.2 exits 2 for no_args_is_help


def test_top_level_help_has_examples(runner):
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Examples" in result.output
    assert "derivkit derive softmax" in result.output
    for name in _command_names():
        assert name in result.output


@pytest.mark.parametrize("command", ["list", "derive"])
def test_every_command_help_has_an_example(runner, command):
    assert command in _command_names()
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Examples" in result.output
    assert f"derivkit {command}" in result.output


def test_every_command_has_help_text():
    import typer

    for name, command in typer.main.get_command(app).commands.items():
        assert command.help, f"command {name!r} has no help"
        assert command.epilog and "derivkit " + name in command.epilog, name


def test_unknown_command_is_a_usage_error(runner):
    result = runner.invoke(app, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in _one_error_line(result)


def test_python_dash_m(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "derivkit", "--version"], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("derivkit ")


@pytest.mark.parametrize("args, code", [
    (["derive", "linear", "--json"], 0),                                    # sympy loaded, passes
    (["verify", "softmax", "--wrt", "z", "--claim", "p * (1 - p)"], 1),    # a check failed
    (["derive", "--expr", "sum(x)", "--wrt", "y", "--shape", "x=n"], 2),    # bad input
])
def test_the_process_ends_with_the_exit_code_and_all_its_output(tmp_path, args, code):
    """Once SymPy is loaded, `main` ends the process without Python's teardown: the status, the
    whole of stdout (a pipe: block-buffered) and stderr must survive it."""
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "derivkit", *args], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == code, proc.stderr
    if code == 0:
        assert json.loads(proc.stdout)["target"] == "linear"
    elif code == 2:
        assert proc.stderr.startswith("derivkit: error: ") and proc.stderr.count("\n") == 1
    else:
        assert "REFUTED" in proc.stdout and "Counterexample" in proc.stdout, proc.stdout


# ---------------------------------------------------------------------------- list

def test_list_shows_every_recipe(runner):
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for name in RECIPE_NAMES:
        assert name in result.stdout
    assert ANSI not in result.stdout


def test_list_json(runner):
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    names = [r["name"] for r in data["recipes"]]
    assert names == RECIPE_NAMES
    linear = next(r for r in data["recipes"] if r["name"] == "linear")
    assert linear["inputs"] == {"X": "m×n", "W": "n×k", "b": "k"}
    assert linear["wrt"] == ["X", "W", "b"]
    assert ANSI not in result.stdout


def test_list_with_extra_folder(runner, tmp_path):
    (tmp_path / "double.toml").write_text(
        'name = "double"\nsummary = "Twice x"\nforward = "2*x"\n[inputs]\nx = "n"\n')
    result = runner.invoke(app, ["list", "--json", "--recipes", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "double" in [r["name"] for r in json.loads(result.stdout)["recipes"]]


def test_list_broken_toml_names_the_file(runner, tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "broken"\nsummary = \n')
    result = runner.invoke(app, ["list", "--recipes", str(tmp_path)])
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert str(bad) in line and "not valid TOML" in line


def test_list_missing_folder(runner, tmp_path):
    result = runner.invoke(app, ["list", "--recipes", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in _one_error_line(result)


# ---------------------------------------------------------------------------- derive: usage

def test_derive_needs_name_or_expr(runner):
    result = runner.invoke(app, ["derive"])
    assert result.exit_code == 2
    assert "give a recipe NAME or --expr" in _one_error_line(result)


def test_derive_name_and_expr_together(runner):
    result = runner.invoke(app, ["derive", "softmax", "--expr", "x"])
    assert result.exit_code == 2
    assert "not both" in _one_error_line(result)


@pytest.mark.parametrize("spec, words", [
    ("X=", "nothing after '='"),
    ("X", "is not NAME=VALUE"),
    ("=n", "is not a plain name"),
    ("X=n,,n", "malformed shape"),
    ("X=n,n,n,n,n", "rank 5"),
    ("X=0", "at least 1"),
])
def test_derive_malformed_shape(runner, spec, words):
    result = runner.invoke(app, ["derive", "--expr", "sum(X)", "--wrt", "X", "--shape", spec])
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert "--shape" in line and words in line


@pytest.mark.parametrize("spec, words", [
    ("alpha", "is not NAME=VALUE"),
    ("alpha=fast", "is not a number"),
    ("alpha=nan", "finite"),
])
def test_derive_malformed_param(runner, spec, words):
    result = runner.invoke(app, ["derive", "--expr", "alpha*sum(x)", "--wrt", "x",
                                 "--shape", "x=n", "--param", spec])
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert "--param" in line and words in line


def test_derive_duplicate_shape(runner):
    result = runner.invoke(app, ["derive", "--expr", "sum(X)", "--wrt", "X",
                                 "--shape", "X=n", "--shape", "X=m"])
    assert result.exit_code == 2
    assert "twice" in _one_error_line(result)


def test_derive_recipe_rejects_shape(runner):
    result = runner.invoke(app, ["derive", "softmax", "--shape", "z=n"])
    assert result.exit_code == 2
    assert "--expr only" in _one_error_line(result)


def test_derive_bad_form_is_a_usage_error(runner):
    result = runner.invoke(app, ["derive", "softmax", "--form", "pretty"])
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert "--form" in line and "'pretty' is not one of" in line


# ---------------------------------------------------------------------------- derive: engine

def test_unknown_recipe_suggests(runner):
    result = runner.invoke(app, ["derive", "sofmax"])
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert "unknown recipe 'sofmax'" in line
    assert "did you mean 'softmax'" in line


def test_wrt_not_an_input(runner):
    result = runner.invoke(app, ["derive", "linear", "--wrt", "Q"])
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert "'Q'" in line and "not an input" in line


def test_expr_without_wrt(runner):
    result = runner.invoke(app, ["derive", "--expr", "sum(x)", "--shape", "x=n"])
    assert result.exit_code == 2
    assert "--wrt" in _one_error_line(result)


def test_derive_softmax_json(runner):
    result = runner.invoke(app, ["derive", "softmax", "--json"])
    assert result.exit_code == 0, result.output
    assert ANSI not in result.stdout
    data = json.loads(result.stdout)
    assert data["target"] == "softmax"
    assert data["derivatives"], data
    for d in data["derivatives"]:
        assert d["wrt"] == "z"
        assert d["kind"] in ("jacobian", "vjp", "gradient")
        for key in ("index_form", "matrix_form", "latex", "verified", "verified_at"):
            assert key in d
        assert isinstance(d["index_form"], str) and d["index_form"]
        assert d["matrix_form"] is None or isinstance(d["matrix_form"], str)
        assert isinstance(d["latex"], str) and "=" in d["latex"]
        assert isinstance(d["verified"], bool)
        assert isinstance(d["verified_at"], list)
        assert all(isinstance(s, dict) and all(isinstance(v, int) for v in s.values())
                   for s in d["verified_at"])


def test_derive_linear_says_verified(runner):
    result = runner.invoke(app, ["derive", "linear"])
    assert result.exit_code == 0, result.output
    assert "verified" in result.stdout
    assert "NOT VERIFIED" not in result.stdout
    assert "Y = Y =" not in result.stdout
    assert ANSI not in result.stdout
    for wrt in ("X", "W", "b"):
        assert f"∂{wrt}" in result.stdout or f"/∂{wrt}" in result.stdout


def test_derive_latex_is_not_doubled(runner):
    result = runner.invoke(app, ["derive", "linear", "--wrt", "W", "--form", "latex"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count(r"\frac{\partial L}{\partial W} =") == 1
    data = json.loads(runner.invoke(app, ["derive", "linear", "--wrt", "W", "--json"]).stdout)
    assert data["derivatives"][0]["latex"].count("=") == 1


def test_derive_linear_wrt_restricts(runner):
    result = runner.invoke(app, ["derive", "linear", "--wrt", "W", "--json"])
    assert result.exit_code == 0, result.output
    assert [d["wrt"] for d in json.loads(result.stdout)["derivatives"]] == ["W"]


def test_derive_expression_trace(runner):
    result = runner.invoke(app, ["derive", "--expr", "trace(A @ X)", "--wrt", "X",
                                 "--shape", "A=n,n", "--shape", "X=n,n", "--json"])
    assert result.exit_code == 0, result.output
    (d,) = json.loads(result.stdout)["derivatives"]
    assert d["wrt"] == "X" and d["kind"] == "gradient"


def test_derive_expression_outside_the_language(runner):
    result = runner.invoke(app, ["derive", "--expr", "import os", "--wrt", "x", "--shape", "x=n"])
    assert result.exit_code == 2
    _one_error_line(result)


# ---------------------------------------------------------------------------- README sync

README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_sections() -> dict[str, str]:
    """'### `derivkit NAME`' headings under '## Commands' -> the text of that section."""
    text = README.read_text(encoding="utf-8")
    commands = text.split("\n## Commands", 1)[1].split("\n## ", 1)[0]
    parts = re.split(r"^### `derivkit ([a-z-]+)`\s*$", commands, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_readme_documents_exactly_the_cli_commands():
    assert sorted(_readme_sections()) == _command_names()


@pytest.mark.parametrize("command", _command_names())
def test_readme_documents_every_option_and_gives_an_example(command):
    import typer

    section = _readme_sections()[command]
    cli_command = typer.main.get_command(app).commands[command]
    for param in cli_command.params:
        for opt in param.opts:
            if opt.startswith("--") and opt != "--help":
                assert f"`{opt}" in section, f"README section of {command!r} lacks {opt}"
    assert re.search(rf"^derivkit {command}\b", section, flags=re.M), "no example line"


def test_readme_quick_start_is_what_ci_runs():
    text = README.read_text(encoding="utf-8")
    quick = text.split("## Quick start", 1)[1].split("```", 2)[1].strip().splitlines()
    assert quick == ['pip install -e ".[test]" && derivkit check --all', "python -m pytest"]
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    ci_lines = [ln.strip() for ln in ci.splitlines()
                if ln.strip() and not ln.startswith(("#", "set ", "cd "))]
    gates = ["ruff check", "mypy", "lint-imports"]   # the README's Development section
    development = text.split("## Development", 1)[1].split("```", 2)[1].strip().splitlines()
    assert all(g in development for g in gates)
    assert ci_lines[-5:] == [quick[0], *gates, quick[1]]
    # before it, only the optional tools the browser and PyTorch tests need, and the switch that
    # makes their absence a failure rather than a skip (README, Development)
    prelude = ci_lines[:-5]
    assert all("chromium" in ln or "torch" in ln for ln in prelude[:-1]), prelude
    assert prelude[-1] == "export DERIVKIT_CI=1" and "DERIVKIT_CI=1" in development_text(text)


def development_text(text: str) -> str:
    return text.split("## Development", 1)[1]


def test_readme_examples_parse(runner):
    """Every example line in the command reference is accepted by the CLI's parser."""
    import shlex

    import typer

    group = typer.main.get_command(app)
    for command, section in _readme_sections().items():
        for line in re.findall(rf"^derivkit {command}\b.*$", section, flags=re.M):
            args = shlex.split(line)[1:]
            ctx = group.make_context("derivkit", list(args), resilient_parsing=True)
            sub = group.commands[args[0]]
            sub.make_context(args[0], args[1:], parent=ctx)   # raises on an unknown option


# ---------------------------------------------------------------------------- derive: output path
# The api is replaced by a stand-in, so these check the CLI's plumbing without the engine.

@pytest.fixture
def fake_api(monkeypatch):
    from conftest import make_linear_derivation

    import derivkit.api as api

    calls = []

    def derive_recipe(name, *, recipe_dirs=None, wrt=None):
        calls.append(("recipe", name, recipe_dirs, wrt))
        if name == "broken":
            from derivkit.errors import ExpressionError

            raise ExpressionError("unknown function 'frob'", source="frob(x)", col=0)
        if name == "crash":
            raise ZeroDivisionError("division by zero\nsecond line")
        return make_linear_derivation(matrix_verified=name != "unverified")

    def derive_expression(expr, wrt, shapes, params=None):
        calls.append(("expr", expr, wrt, shapes, params))
        return make_linear_derivation()

    monkeypatch.setattr(api, "derive_recipe", derive_recipe)
    monkeypatch.setattr(api, "derive_expression", derive_expression)
    return calls


def test_cli_passes_options_to_the_api(runner, fake_api, tmp_path):
    result = runner.invoke(app, ["derive", "linear", "--wrt", "W,b", "--wrt", "X",
                                 "--recipes", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert fake_api == [("recipe", "linear", [str(tmp_path)], ["W", "b", "X"])]
    result = runner.invoke(app, ["derive", "--expr", "alpha * sum(X @ W)", "--wrt", "W",
                                 "--shape", "X=m,n", "--shape", "W=n,k", "--param", "alpha=0.5"])
    assert result.exit_code == 0, result.output
    assert fake_api[-1] == ("expr", "alpha * sum(X @ W)", ["W"], {"X": "m,n", "W": "n,k"},
                            {"alpha": 0.5})


def test_cli_derive_renders_for_people(runner, fake_api):
    result = runner.invoke(app, ["derive", "linear"])
    assert result.exit_code == 0
    assert "∂L/∂W = Xᵀ⋅G" in result.stdout and "✓ verified symbolically" in result.stdout
    assert ANSI not in result.stdout
    latex = runner.invoke(app, ["derive", "linear", "--form", "latex"])
    assert r"\frac{\partial L}{\partial W} = X^{T} G" in latex.stdout


def test_cli_unverified_is_a_failed_check_exit_1_and_says_so(runner, fake_api):
    result = runner.invoke(app, ["derive", "unverified"])
    assert result.exit_code == 1
    assert "NOT VERIFIED" in result.stdout
    as_json = runner.invoke(app, ["derive", "unverified", "--json"])
    assert as_json.exit_code == 1
    data = json.loads(as_json.stdout)
    assert data["derivatives"][0]["verified"] is False


def test_cli_internal_error_is_one_line_exit_3(runner, fake_api, monkeypatch):
    monkeypatch.delenv("DERIVKIT_DEBUG", raising=False)
    result = runner.invoke(app, ["derive", "crash"])
    assert result.exit_code == 3
    err = result.stderr
    assert err.count("\n") == 1 and err.endswith("\n")
    assert err.startswith("derivkit: internal error: ZeroDivisionError: division by zero second line")
    assert "DERIVKIT_DEBUG=1" in err
    assert "Traceback" not in result.output


def test_cli_derive_json_is_plain(runner, fake_api):
    result = runner.invoke(app, ["derive", "linear", "--json"], env={"FORCE_COLOR": "1"})
    assert result.exit_code == 0
    assert ANSI not in result.stdout
    assert json.loads(result.stdout)["derivatives"][0]["matrix_form"] == "X.T @ G"


def test_cli_library_error_is_one_line_exit_2(runner, fake_api):
    result = runner.invoke(app, ["derive", "broken"])
    assert result.exit_code == 2
    assert _one_error_line(result) == "derivkit: error: unknown function 'frob' at column 1"
    assert result.stdout == ""
