"""Hostile text through the whole CLI: exit 2 with one line on stderr, or a real result."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from derivkit.cli.app import app

runner = CliRunner()

junk = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)


def _assert_clean(result) -> None:
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    if result.exit_code == 2:
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("derivkit: error: ")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk)
def test_junk_expression(text):
    _assert_clean(runner.invoke(app, ["derive", "--expr", text, "--wrt", "x", "--shape", "x=n"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk)
def test_junk_shape(text):
    _assert_clean(runner.invoke(app, ["derive", "--expr", "sum(x)", "--wrt", "x", "--shape", f"x={text}"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk)
def test_junk_wrt_and_recipe_name(text):
    _assert_clean(runner.invoke(app, ["derive", "softmax", "--wrt", text]))
    _assert_clean(runner.invoke(app, ["derive", text]))
