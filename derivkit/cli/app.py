"""The command line: Typer commands that declare options, call `derivkit.api`, and hand the result
to one renderer (Rich for people, JSON for machines).

Exit codes: 0 success; 1 a check failed (later commands); 2 a usage or input error. Every
`DerivkitError` becomes one line on stderr and exit 2, in `_DerivkitGroup.invoke` only.

Module-level imports stay light (no SymPy, NumPy or engine) so that `derivkit --help`,
`derivkit --version` and `derivkit list` start fast; the api is imported inside commands.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, cast

import typer
from typer.core import TyperGroup

from ..errors import DerivkitError
from .options import (
    DEFAULT_TIMEOUT,
    ExprOption,
    ParamOption,
    RecipesOption,
    ShapeOption,
    TimeoutOption,
    WrtOption,
)

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
DEBUG_ENV = "DERIVKIT_DEBUG"


def _visible(line: str) -> str:
    """An error line as shown: user text in it (a path, a quoted option value) cannot drive the
    terminal; control characters appear as visible escapes (`render.text.visible`)."""
    from ..render.text import visible

    return visible(line)


_RESOURCE = {
    RecursionError: "the input is nested too deeply to process (Python's recursion limit); "
                    "write it with less nesting, or split it into steps",
    MemoryError: "out of memory: the input or its sizes are too large for this machine; use "
                 "smaller --size values, or split the expression into steps",
}


def _is_cli_control_flow(exc: Exception) -> bool:
    """Exit, Abort, usage errors: raised by Typer (which vendors Click) for Typer to handle."""
    return type(exc).__module__.split(".")[0] in ("typer", "click")


#: What Rich reads as a markup tag (`rich.markup.escape`'s pattern): `[i]`, `[steps]`, `[/]`.
_MARKUP_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def escape_markup(text: str) -> str:
    """`text` with everything Rich would read as markup escaped (as `rich.markup.escape` does,
    without importing Rich): shown exactly as written."""
    return _MARKUP_TAG.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", text)


def _help_as_written(command: Any) -> None:
    """Typer shows help text as Rich markup (`rich_markup_mode`), which would eat the brackets of
    examples (`p[i]*(delta(i,j) - p[j])` shown as `p*(delta(i,j) - p)`, `[[steps]]` as `[]`):
    every help text, epilog and option help is escaped once, so it is shown as written."""
    if getattr(command, "_derivkit_help_escaped", False):
        return
    for attr in ("help", "epilog", "short_help"):
        value = getattr(command, attr, None)
        if isinstance(value, str):
            setattr(command, attr, escape_markup(value))
    for param in getattr(command, "params", ()):
        if isinstance(getattr(param, "help", None), str):
            param.help = escape_markup(param.help)
    command._derivkit_help_escaped = True


def _help_without_trailing_spaces() -> None:
    """Typer prints help through a Rich console of its own, which pads every panel line with
    spaces: piped (not a terminal), its lines are written without them, as derivkit's own
    output is (`render.rich_render.NoTrailingSpace`)."""
    import typer.rich_utils as rich_utils

    make = getattr(rich_utils, "_get_rich_console", None)
    if make is None or getattr(make, "_derivkit", False):
        return

    def console(stderr: bool = False) -> Any:
        from ..render.rich_render import NoTrailingSpace

        made = make(stderr)
        if not made.is_terminal:
            made.file = NoTrailingSpace(made.file)
        return made

    console._derivkit = True   # type: ignore[attr-defined]
    rich_utils._get_rich_console = console


class _DerivkitGroup(TyperGroup):
    """The one place where errors become exit codes: library input errors (DerivkitError) and
    command-line usage errors are one line on stderr and exit 2; bugs are one line and exit 3."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        from .coerce import plain_coercion

        for command in (self, *self.commands.values()):
            plain_coercion(command)
            _help_as_written(command)
        argv = sys.argv[1:] if args is None else list(args)
        if not argv or {"-h", "--help"} & set(argv):
            _help_without_trailing_spaces()
        if not standalone_mode:
            return super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                standalone_mode=False, windows_expand_args=windows_expand_args,
                                **extra)
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, windows_expand_args=windows_expand_args,
                              **extra)
        except Exception as exc:
            # bare `derivkit`: show the help
            if type(exc).__name__ == "NoArgsIsHelpError" and hasattr(exc, "format_message"):
                typer.echo(exc.format_message())
                sys.exit(EXIT_USAGE)
            if hasattr(exc, "format_message") and _is_cli_control_flow(exc):
                ctx = getattr(exc, "ctx", None)
                where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
                message = " ".join(exc.format_message().split())
                typer.echo(_visible(f"derivkit: error: {message}{where}"), err=True)
                sys.exit(EXIT_USAGE)
            if type(exc).__name__ == "Abort":
                typer.echo("derivkit: aborted", err=True)
                sys.exit(EXIT_CHECK_FAILED)
            raise
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)

    def invoke(self, ctx: Any) -> Any:   # Any: Click's Context (Typer's vendored copy, by version)
        from ..limits import command_scope

        try:
            with command_scope():   # the --timeout budget (started as it is parsed) ends here
                return super().invoke(ctx)
        except DerivkitError as exc:   # BudgetExceeded (--timeout) included
            typer.echo(_visible(f"derivkit: error: {exc.one_line(cli=True)}"), err=True)
            raise typer.Exit(EXIT_USAGE) from None
        except (RecursionError, MemoryError) as exc:   # safety net: limits should come first
            if os.environ.get(DEBUG_ENV):
                raise
            kind = RecursionError if isinstance(exc, RecursionError) else MemoryError
            typer.echo(f"derivkit: error: {_RESOURCE[kind]}", err=True)
            raise typer.Exit(EXIT_USAGE) from None
        except Exception as exc:  # a bug in derivkit, not bad input
            if os.environ.get(DEBUG_ENV) or _is_cli_control_flow(exc):
                raise
            detail = " ".join(str(exc).split())[:200]
            typer.echo(_visible(f"derivkit: internal error: {type(exc).__name__}: {detail} (a bug in "
                                f"derivkit; rerun with {DEBUG_ENV}=1 for the traceback and report "
                                "it)"), err=True)
            raise typer.Exit(EXIT_INTERNAL) from None


app = typer.Typer(
    name="derivkit",
    cls=_DerivkitGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Derive matrix-calculus gradients symbolically from a forward definition, check every "
         "printed form against the forward differentiated numerically at 60 digits (and "
         "symbolically where that finishes), and print them in index "
         "form, matrix form and LaTeX.",
    epilog="Examples:\n\n"
           "derivkit list\n\n"
           "derivkit derive softmax\n\n"
           "derivkit derive --expr \"trace(A @ X)\" --wrt X --shape A=n,n --shape X=n,n\n\n"
           "derivkit check linear --size m=64 --size n=128 --size k=64\n\n"
           "derivkit check --all --json\n\n"
           "derivkit lower linear -o linear_grads.py\n\n"
           "derivkit verify linear --wrt W --claim \"X.T @ G\"\n\n"
           "Exit codes: 0 ok, 1 a check failed (e.g. a form NOT VERIFIED), 2 usage or input "
           "error, 3 internal error.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)


class FormChoice(str, Enum):
    index = "index"   # type: ignore[assignment]  # a member named like str.index; only .value is used
    matrix = "matrix"
    latex = "latex"
    all = "all"


def _version_callback(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"derivkit {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version_callback, is_eager=True,
        help="Print derivkit's version and exit.")] = False,
) -> None:
    """Derive matrix-calculus gradients symbolically from a forward definition, check every
    printed form against the forward differentiated numerically at 60 digits, and print them."""


JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print plain JSON on stdout (no colour, no markup) for machines.")]


@app.command(
    "list",
    epilog="Examples:\n\n"
           "derivkit list\n\n"
           "derivkit list --recipes ./my-recipes --json",
)
def list_command(recipes: RecipesOption = None, json_out: JsonOption = False) -> None:
    """List the recipes: name, summary, inputs with shapes, and what is differentiated."""
    from .. import api

    summaries = api.list_recipes(cast("list[str | Path] | None", recipes or None))
    if json_out:
        from ..render.json_render import dumps, recipes_data

        typer.echo(dumps(recipes_data(summaries)))
        return
    from ..render.rich_render import make_console, render_recipes

    render_recipes(make_console(), summaries)


@app.command(
    "derive",
    epilog="Examples:\n\n"
           "derivkit derive softmax\n\n"
           "derivkit derive linear --wrt W --form all\n\n"
           "derivkit derive --expr \"trace(A @ X)\" --wrt X --shape A=n,n --shape X=n,n\n\n"
           "derivkit derive --expr \"leaky_relu(x, alpha)\" --wrt x --shape x=n "
           "--param alpha=0.1 --json",
)
def derive_command(
    name: Annotated[Optional[str], typer.Argument(
        metavar="NAME", show_default=False,
        help="A recipe to derive (see 'derivkit list'). Give NAME or --expr, not both.")] = None,
    expr: ExprOption = None,
    wrt: WrtOption = None,
    shape: ShapeOption = None,
    param: ParamOption = None,
    form: Annotated[Optional[FormChoice], typer.Option(
        "--form", case_sensitive=False, show_default=False,
        help="What to show: index, matrix, latex, or all (index + matrix + LaTeX). "
             "Default: the index and matrix forms.")] = None,
    json_out: JsonOption = False,
    html: Annotated[Optional[Path], typer.Option(
        "--html", metavar="FILE", dir_okay=False, show_default=False,
        help="Also write one self-contained HTML page to FILE: the formulas rendered (MathML), "
             "the backward program and every verification; no script, nothing fetched.")] = None,
    recipes: RecipesOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Derive a recipe's or an expression's gradients, verified, in index/matrix/LaTeX form.

    Every printed form is compared with the forward differentiated numerically at 60 digits at
    three or more small sizes, and element-wise symbolically where that finishes; a form that
    could not be confirmed is labelled NOT VERIFIED."""
    from .values import parse_target

    names, shapes, params = parse_target(
        name, expr, wrt, shape, param,
        "e.g. 'derivkit derive softmax'; 'derivkit list' shows the recipes")
    if html is not None:   # refused before deriving (a symlink, a FIFO, no such folder)
        from ..render.html_render import check_html_path

        check_html_path(html)

    from .. import api

    if name:
        result = api.derive_recipe(name, recipe_dirs=recipes or None, wrt=names or None)
    else:
        result = api.derive_expression(expr, names, shapes, params)
    if html is not None:
        from ..render.html_render import write_derivation_page

        write_derivation_page(html, result)

    if json_out:
        from ..render.json_render import derivation_data, dumps

        typer.echo(dumps(derivation_data(result)))
    else:
        from ..render.rich_render import make_console, render_derivation

        render_derivation(make_console(), result, form.value if form else None)
    if not result.verified:
        raise typer.Exit(EXIT_CHECK_FAILED)


# `derivkit check` lives in its own module (light at import time, like this one).
from . import check as _cli_check  # noqa: E402

_cli_check.register(app)

from . import lower as _cli_lower  # noqa: E402 - `derivkit lower`, its own module too

_cli_lower.register(app)

from . import train as _cli_train  # noqa: E402 - `derivkit train`, its own module too

_cli_train.register(app)

from . import verify as _cli_verify  # noqa: E402 - `derivkit verify`, its own module too

_cli_verify.register(app)


def main() -> None:
    """Console-script entry point (`derivkit`, `python -m derivkit`)."""
    try:
        app(prog_name="derivkit")
    except SystemExit as exc:
        _end(exc.code)
    _end(0)


def _end(code: str | int | None) -> None:
    """Exit with `code`. Once SymPy is loaded, Python's teardown of its object graph takes about
    0.3 s: with the output flushed and the exit handlers run, the process ends without it."""
    if "sympy" not in sys.modules:
        sys.exit(code)
    if code is None:
        code = EXIT_OK
    elif not isinstance(code, int):   # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:   # a reader that stopped early (`| head`): nothing more to say
        pass
    try:
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    import atexit

    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
