"""Option values are coerced without Pydantic (`derivkit.cli.coerce`): same values and types as
Typer's own coercion, one-line usage errors, and no Pydantic import in a command's process."""

from __future__ import annotations

import os
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import pytest
import typer

from derivkit.cli.app import app
from derivkit.cli.coerce import plain_coercion


class Colour(str, Enum):
    red = "red"
    blue = "blue"


def _probe_app(seen: dict) -> typer.Typer:
    probe = typer.Typer()

    @probe.command()
    def run(
        name: Annotated[str, typer.Argument()],
        count: Annotated[int, typer.Option(min=1)] = 1,
        scale: Annotated[Optional[float], typer.Option()] = None,
        colour: Annotated[Colour, typer.Option(case_sensitive=False)] = Colour.red,
        out: Annotated[Optional[Path], typer.Option(dir_okay=False)] = None,
        tag: Annotated[Optional[list[str]], typer.Option()] = None,
        loud: Annotated[bool, typer.Option()] = False,
    ) -> None:
        seen.update(name=name, count=count, scale=scale, colour=colour, out=out, tag=tag,
                    loud=loud)

    @probe.callback()
    def main() -> None:
        pass

    return probe


def _invoke(args: list[str]) -> tuple[int, dict, str]:
    """(0 or 2, the values the command saw, the usage error's message)."""
    seen: dict = {}
    command = typer.main.get_command(_probe_app(seen))
    for each in (command, *command.commands.values()):
        plain_coercion(each)
        plain_coercion(each)   # a second call changes nothing
    try:
        command.main(args=args, prog_name="probe", standalone_mode=False)
    except Exception as exc:   # Typer's vendored Click UsageError
        assert hasattr(exc, "format_message"), exc
        return 2, seen, exc.format_message()
    return 0, seen, ""


def test_values_have_the_declared_types(tmp_path):
    code, seen, output = _invoke(["run", "x", "--count", "3", "--scale", "0.5", "--colour", "BLUE",
                                  "--out", str(tmp_path / "f.txt"), "--tag", "a", "--tag", "b",
                                  "--loud"])
    assert code == 0, output
    assert seen == {"name": "x", "count": 3, "scale": 0.5, "colour": Colour.blue,
                    "out": tmp_path / "f.txt", "tag": ["a", "b"], "loud": True}
    assert type(seen["count"]) is int and isinstance(seen["out"], Path)


def test_defaults_pass_through():
    code, seen, output = _invoke(["run", "x"])
    assert code == 0, output
    assert seen == {"name": "x", "count": 1, "scale": None, "colour": Colour.red, "out": None,
                    "tag": None, "loud": False}


@pytest.mark.parametrize("args, says", [
    (["--count", "x"], "'x' is not an integer"),
    (["--count", "0"], "0 is less than the smallest allowed, 1"),
    (["--scale", "big"], "'big' is not a number"),
    (["--colour", "green"], "'green' is not one of 'red', 'blue'"),
])
def test_bad_values_say_what_is_wrong(args, says):
    code, seen, output = _invoke(["run", "x", *args])
    assert code == 2 and not seen
    assert says in output


def test_directory_for_a_file_option_is_refused(tmp_path):
    code, seen, output = _invoke(["run", "x", "--out", str(tmp_path)])
    assert code == 2 and not seen and "is a directory" in output


@pytest.mark.parametrize("args, says", [
    (["check", "linear", "--seed", "-1"], "--seed': -1 is less than the smallest allowed, 0"),
    (["check", "linear", "--timeout", "soon"], "--timeout': 'soon' is not a number"),
    (["check", "linear", "--mode", "fast"], "'fast' is not one of 'auto', 'directional', 'full'"),
])
def test_derivkit_usage_errors_are_one_line(runner, args, says):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr


def test_a_command_does_not_import_pydantic(tmp_path):
    """Typer's own coercion imports Pydantic and builds an adapter per option (~0.25 s)."""
    code = ("import sys\nfrom derivkit.cli import app\n"
            "try:\n    app(args=sys.argv[1:], prog_name='derivkit')\nexcept SystemExit:\n    pass\n"
            "print('@@', sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))")
    for args in (["list"], ["check", "--help"], ["check", "linear", "--seed", "x"]):
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, cwd=tmp_path, env=dict(os.environ, NO_COLOR="1"))
        assert "@@ []" in proc.stdout, proc.stdout[-500:] + proc.stderr
