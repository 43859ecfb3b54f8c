"""Text for people: help shown exactly as written (no Rich markup eaten), shell completion,
long lines wrapped at word boundaries with a hanging indent, no trailing spaces in piped output,
and the verdict column kept on narrow terminals."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest
from rich.console import Console
from rich.text import Text
from test_cli_check import make_report, make_target

from derivkit.cli.app import app
from derivkit.results import TargetCheck, Verification

# ---------------------------------------------------------------------------- help as written

#: A token holding a bracket, as it stands between spaces in help text.
_BRACKETED = re.compile(r"[^\s\[\]]*\[[^\s]*")


def _help_sources():
    import typer

    root = typer.main.get_command(app)
    yield [], root
    for name, command in root.commands.items():
        yield [name], command


def _sources_of(command) -> list[str]:
    texts = [command.help or "", command.epilog or ""]
    texts += [getattr(p, "help", None) or "" for p in command.params]
    return texts


@pytest.mark.parametrize("path, command", list(_help_sources()),
                         ids=lambda v: "/".join(v) if isinstance(v, list) else "")
def test_help_shows_every_bracketed_token_verbatim(runner, path, command):
    tokens = {t.strip('".,;:') for text in _sources_of(command) for t in _BRACKETED.findall(text)}
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
    assert result.exit_code == 0, result.output
    for token in tokens:
        assert token in result.output, (path, token)


def test_help_examples_with_brackets(runner):
    verify = runner.invoke(app, ["verify", "--help"], env={"COLUMNS": "250"}).output
    assert 'p[i]*(delta(i,j) - p[j])' in verify and "X[i,r]*delta(j,s)" in verify
    train = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "250"}).output
    assert "[[steps]]" in train and "[]" not in train


def test_escape_markup_matches_rich():
    from rich.markup import escape, render

    from derivkit.cli.app import escape_markup

    for text in ("p[i]*(delta(i,j) - p[j])", "[[steps]]", "[bold]x[/bold]", "a\\[b]", "end\\",
                 "[1, 2]", "[#fff]", "no brackets"):
        assert render(escape_markup(text)).plain == text
        if not text.endswith("\\"):     # Rich's escape doubles a final backslash; shown, it is one
            assert escape_markup(text) == escape(text)


# ---------------------------------------------------------------------------- completion

def test_show_completion_prints_a_bash_script(runner):
    result = runner.invoke(app, ["--show-completion", "bash"])
    assert result.exit_code == 0, result.output
    assert "_DERIVKIT_COMPLETE=complete_bash" in result.stdout
    assert "complete -o default -F" in result.stdout and "derivkit" in result.stdout


def test_completion_protocol_completes_options_without_heavy_imports(tmp_path):
    code = ("import sys\nfrom derivkit.cli import app\n"
            "try:\n    app(args=[], prog_name='derivkit')\nexcept SystemExit:\n    pass\n"
            "print('@@', sorted(m for m in sys.modules if m.split('.')[0] in ('sympy', 'numpy')))")
    env = dict(os.environ, _DERIVKIT_COMPLETE="complete_bash", COMP_WORDS="derivkit check --al",
               COMP_CWORD="2")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=env)
    lines = proc.stdout.splitlines()
    assert "--all" in lines, proc.stdout + proc.stderr
    assert "@@ []" in lines, proc.stdout
    env.update(COMP_WORDS="derivkit ver", COMP_CWORD="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=env)
    assert "verify" in proc.stdout.splitlines()


# ---------------------------------------------------------------------------- wrapping

LONG = ("verified symbolically at n = 2; verified numerically at (d0, d1, d2, d3, m) = (2, 3, "
        "4, 5, 6), (3, 4, 5, 6, 2): agrees to 6.0e-41 with the forward differentiated at 60 "
        "digits along four random directions, including the shape check of every intermediate")


def _console(width: int) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, highlight=False, no_color=True), out


def _assert_words_whole(out: str, source: str, width: int) -> None:
    assert max(len(line) for line in out.splitlines()) <= width, out
    tokens = set(out.split())
    for word in source.split():
        assert word in tokens, (word, out)


@pytest.mark.parametrize("width", [60, 80, 120])
def test_verification_lines_wrap_at_words_with_a_hanging_indent(width):
    from dataclasses import replace

    from conftest import make_linear_derivation

    from derivkit.render.rich_render import render_derivation

    derivation = make_linear_derivation()
    (d,) = derivation.derivatives
    form = replace(d.matrix, verification=Verification(True, "symbolic", (), LONG))
    derivation = replace(derivation, derivatives=(replace(d, matrix=form),))
    console, out = _console(width)
    render_derivation(console, derivation, "matrix")
    text = out.getvalue()
    _assert_words_whole(text, LONG, width)
    lines = text.splitlines()
    first = next(k for k, line in enumerate(lines) if line.startswith("    ✓ verified symbolically"))
    assert lines[first + 1].startswith("      ") and lines[first + 1][6] != " "   # hanging


@pytest.mark.parametrize("width", [60, 80, 120])
def test_check_lines_wrap_at_words(width):
    from derivkit.render.check_rich import render_report

    name = "a-recipe-with-a-rather-long-name-for-its-shape"
    report = make_report(make_target(name, failing=True),
                         make_target("broken", error="recipes/broken.toml: " + LONG))
    console, out = _console(width)
    render_report(console, report)
    text = out.getvalue()
    _assert_words_whole(text, LONG, width)
    header = f"✗ {name}: ∂/∂W (vjp) does not match finite differences"
    _assert_words_whole(text, header, width)
    lines = text.splitlines()
    for start in (f"✗ {name}:", "✗ broken: could not check:"):
        k = next(k for k, line in enumerate(lines) if line.startswith(start))
        if len(lines[k]) + 1 + len(lines[k + 1].split()[0]) > width:   # it did wrap
            assert lines[k + 1].startswith("  ") and lines[k + 1][2] != " ", lines[k:k + 2]


def test_wrap_spans():
    from derivkit.render.rich_render import Hanging, wrap_spans

    plain = "the shape of every intermediate"
    assert [plain[a:b] for a, b in wrap_spans(plain, 10, 8)] == [
        "the shape", "of every", "intermed", "iate"]   # only a word longer than a line is cut
    console, out = _console(14)
    console.print(Hanging(Text("  ✓ " + plain), indent=0, hang=4))
    assert out.getvalue().splitlines() == ["  ✓ the shape", "    of every", "    intermedia",
                                           "    te"]


def test_cli_check_status_lines_are_not_split_at_60_columns(runner, monkeypatch):
    import derivkit.api as api

    monkeypatch.setattr(api, "check_recipe", lambda name, **o: make_target(name, failing=True))
    out = runner.invoke(app, ["check", "failing"], env={"COLUMNS": "60"}).stdout
    _assert_words_whole(out, "✗ 1 of 3 derivative check(s) FAILED: the derived formula and "
                             "finite differences disagree.", 60)
    assert "\n  differences disagree." in out or "\n  finite differences disagree." in out


# ---------------------------------------------------------------------------- piped output

def _no_trailing_space(out: str) -> None:
    assert out.strip()
    bad = [line for line in out.splitlines() if line != line.rstrip()]
    assert not bad, bad


@pytest.fixture
def fake_checks(monkeypatch):
    import derivkit.api as api

    monkeypatch.setattr(api, "check_recipe", lambda name, **o: make_target(name, failing=True))
    report = make_report(make_target("linear"), make_target("softmax", failing=True),
                         make_target("broken", error="bad"))
    monkeypatch.setattr(api, "check_all", lambda **o: report)


@pytest.mark.parametrize("args", [["check", "linear"], ["check", "--all"], ["list"]])
def test_piped_output_has_no_trailing_spaces(runner, fake_checks, args):
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 1), result.output
    _no_trailing_space(result.stdout)


@pytest.mark.usefixtures("shared_derivations")
def test_piped_derive_has_no_trailing_spaces(runner):
    result = runner.invoke(app, ["derive", "softmax"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    _no_trailing_space(result.stdout)


@pytest.mark.parametrize("args", [["--help"], [], ["check", "--help"], ["verify", "-h"],
                                  ["train", "--help"]])
def test_piped_help_has_no_trailing_spaces(runner, args):
    result = runner.invoke(app, args, env={"COLUMNS": "100"})
    assert result.exit_code in (0, 2), result.output
    assert "Usage" in result.stdout
    _no_trailing_space(result.stdout)


def test_trailing_space_writer():
    from derivkit.render.rich_render import NoTrailingSpace

    out = io.StringIO()
    stream = NoTrailingSpace(out)
    stream.write("a  b   \n  \nc \x1b[0m  \x1b[1m \nd ")
    stream.flush()
    assert out.getvalue() == "a  b\n\nc\x1b[0m\x1b[1m\nd"
    stream.write(" e\n")
    assert out.getvalue() == "a  b\n\nc\x1b[0m\x1b[1m\nd  e\n"   # held back, then needed
    assert not stream.isatty()


# ---------------------------------------------------------------------------- narrow terminals

VERDICT = re.compile(r"(✓ pass|✗ FAIL|✗ ERROR)$")


@pytest.mark.parametrize("columns", ["60", "40"])
def test_narrow_terminal_keeps_the_verdict_of_every_row(runner, fake_checks, columns):
    every = runner.invoke(app, ["check", "--all"], env={"COLUMNS": columns}).stdout
    rows = [line for line in every.splitlines() if VERDICT.search(line)]
    assert len(rows) == 7, every      # 3 + 3 results and the broken target
    assert sum("✗ FAIL" in r for r in rows) == 1 and sum("✗ ERROR" in r for r in rows) == 1
    assert "verdict" in every
    one = runner.invoke(app, ["check", "linear"], env={"COLUMNS": columns}).stdout
    rows = [line for line in one.splitlines() if VERDICT.search(line)]
    assert [r.split()[0] for r in rows] == ["X", "W", "b"], one
    assert max(len(line) for line in (every + one).splitlines()) <= int(columns)


@pytest.mark.parametrize("columns", ["60", "40"])
def test_narrow_summary_rows_still_tell_full_from_directional(runner, monkeypatch, columns):
    """Found in review: without the mode column, each derivative showed as two identical rows."""
    from test_cli_check import make_result

    import derivkit.api as api

    both = TargetCheck(target="linear", passed=True, seed=0, dtype="float64", sizes={"m": 3},
                       results=(make_result("W"), make_result("W", mode="directional")))
    monkeypatch.setattr(api, "check_all", lambda **o: make_report(both))
    every = runner.invoke(app, ["check", "--all"], env={"COLUMNS": columns}).stdout
    rows = [line for line in every.splitlines() if "✓ pass" in line]
    assert len(rows) == 2 and "full" in rows[0] and "directional" in rows[1], every


@pytest.mark.parametrize("columns", ["40", "80"])
def test_list_fits_and_keeps_its_summaries_readable(runner, columns):
    """Found in review: piped at 80 columns the summary column was 4 characters wide."""
    out = runner.invoke(app, ["list"], env={"COLUMNS": columns}).stdout
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= int(columns), out
    if columns == "80":
        assert any("Affine layer Y = X W + b" in line for line in lines), out   # unbroken
