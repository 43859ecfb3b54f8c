"""`derivkit check`: compare derived derivatives with finite differences of the lowered forward,
for one recipe, one expression or every recipe (`--all`, the CI gate).

Like `derive`, the command only parses options, calls `derivkit.api` and hands the result to a
renderer (Rich for people, JSON and JUnit for machines). Exit codes: 0 every check passed, 1 a
check failed (or a target could not be checked), 2 usage or input error (DerivkitError, mapped in
`derivkit.cli`). Module-level imports stay light: `derivkit --help` must not import NumPy/SymPy.

Registered on the app by `derivkit.cli` through `register(app)`; this module does not import
`derivkit.cli` at import time (that would be circular).
"""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Optional, cast

import typer

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

if TYPE_CHECKING:
    from ..results import CheckReport, TargetCheck

EXIT_CHECK_FAILED = 1   # = derivkit.cli.EXIT_CHECK_FAILED

HELP = ("Check derivatives against finite differences: a recipe, an --expr, or --all recipes.\n\n"
        "Each derivative is derived symbolically, lowered to NumPy and compared with central "
        "differences of the forward, entry by entry (full) or along seeded random directions "
        "(directional), at a tolerance set by the method and dtype. Exit code 1 if any check "
        "fails.\n\n"
        "With --impl FILE.py:FUNCTION your own backward function is checked instead of "
        "derivkit's derivation, against finite differences and the derived form, and a failure "
        "names the mistakes derivkit recognises (transposed, sign flipped, a stray factor, a "
        "missing 1/m, summed over the wrong axis, a weight updated before backpropagating, an "
        "input modified in place). FUNCTION is called with keyword arguments named as the "
        "recipe's inputs (X=, W=, b=), g = ∂L/∂output (or the recipe's own name for it, e.g. "
        "G for linear; for a scalar loss only if it has a parameter g) and any parameters it "
        "accepts (alpha=); it returns one array, a tuple in --wrt order or a dict keyed by input "
        "name. FILE is imported and run as Python: only pass code you trust.")

EPILOG = ("Examples:\n\n"
          "derivkit check softmax\n\n"
          "derivkit check linear --wrt W --mode full --size m=3 --size n=4 --size k=5\n\n"
          "derivkit check --expr \"sum(tanh(X @ w))\" --wrt w --shape X=m,n --shape w=n\n\n"
          "derivkit check --all --recipes ./recipes --junit derivkit.xml\n\n"
          "derivkit check --all --quiet\n\n"
          "derivkit check --all --format github\n\n"
          "derivkit check linear --impl my_backward.py:linear_backward\n\n"
          "Exit codes: 0 every check passed, 1 a check failed (or a recipe could not be "
          "checked), 2 usage or input error.")


class ModeChoice(str, Enum):
    auto = "auto"
    directional = "directional"
    full = "full"


class DtypeChoice(str, Enum):
    float64 = "float64"
    float32 = "float32"


class FormatChoice(str, Enum):
    text = "text"
    json = "json"
    github = "github"


def _tolerance(option: str, value: float | None) -> float | None:
    if value is not None and (not math.isfinite(value) or value < 0):
        raise DerivkitError(f"{option} {value!r}: a tolerance must be a finite number >= 0")
    return value


def check_command(
    name: Annotated[Optional[str], typer.Argument(
        metavar="NAME", show_default=False,
        help="A recipe to check (see 'derivkit list'). Give NAME, --expr or --all.")] = None,
    expr: ExprOption = None,
    all_recipes: Annotated[bool, typer.Option(
        "--all", help="Check every recipe on the search path (the CI gate).")] = False,
    wrt: WrtOption = None,
    shape: ShapeOption = None,
    param: ParamOption = None,
    mode: Annotated[ModeChoice, typer.Option(
        "--mode", case_sensitive=False,
        help="full: compare every entry (full Jacobian); directional: compare along seeded "
             "random directions; auto: full where small, directional otherwise.")]
        = ModeChoice.auto,
    size: Annotated[Optional[list[str]], typer.Option(
        "--size", metavar="DIM=N",
        help="Concrete size of a symbolic dimension, e.g. m=64 (repeatable). Default: sizes "
             "chosen by derivkit.")] = None,
    seed: Annotated[int, typer.Option(
        "--seed", min=0, help="Seed of the random inputs and directions.")] = 0,
    dtype: Annotated[DtypeChoice, typer.Option(
        "--dtype", case_sensitive=False,
        help="Floating-point type of the check; tolerances follow it.")] = DtypeChoice.float64,
    rtol: Annotated[Optional[float], typer.Option(
        "--rtol", metavar="FLOAT", show_default=False,
        help="Relative tolerance, overriding the one derived from the method and dtype.")] = None,
    atol: Annotated[Optional[float], typer.Option(
        "--atol", metavar="FLOAT", show_default=False,
        help="Absolute tolerance, overriding the one derived from the method and dtype.")] = None,
    directions: Annotated[int, typer.Option(
        "--directions", metavar="K", min=1,
        help="Number of random directions of a directional check.")] = 8,
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print one JSON document on stdout (no colour) for machines; the same "
                       "as --format json.")] = False,
    output_format: Annotated[Optional[FormatChoice], typer.Option(
        "--format", case_sensitive=False, show_default=False,
        help="text (default): tables for people; json: one JSON document; github: a GitHub "
             "Actions error annotation per failed check, then the summary line.")] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q",
        help="Print only the failures and the summary line (text output).")] = False,
    junit: Annotated[Optional[Path], typer.Option(
        "--junit", metavar="FILE", dir_okay=False,
        help="Also write the results as JUnit XML to FILE, for CI test reports.")] = None,
    html: Annotated[Optional[Path], typer.Option(
        "--html", metavar="FILE", dir_okay=False, show_default=False,
        help="Also write the results as one self-contained HTML page to FILE (no script, "
             "nothing fetched).")] = None,
    recipes: RecipesOption = None,
    impl: Annotated[Optional[str], typer.Option(
        "--impl", metavar="FILE.py:FUNCTION", show_default=False,
        help="Check your own backward function FUNCTION in FILE (keyword arguments: the inputs, "
             "g = ∂L/∂output, parameters; returns one array, a tuple in --wrt order or a dict "
             "by input name). FILE is imported and run as Python: only pass code you "
             "trust.")] = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Check derivatives against finite differences (help text: HELP)."""
    from .values import parse_names, parse_params, parse_shapes, parse_sizes

    given = [what for what, on in (("NAME", name), ("--expr", expr), ("--all", all_recipes)) if on]
    if len(given) > 1:
        raise DerivkitError(f"give one of a recipe NAME, --expr or --all, not {' and '.join(given)}")
    if not given:
        raise DerivkitError("give a recipe NAME, --expr TEXT or --all",
                            "e.g. 'derivkit check softmax'; 'derivkit list' shows the recipes")
    if shape and not expr:
        raise DerivkitError("--shape applies to --expr only",
                            "a recipe declares its own shapes; set sizes with --size m=64")
    if all_recipes and (wrt or param):
        raise DerivkitError(f"{'--wrt' if wrt else '--param'} applies to one target "
                            "(NAME or --expr), not to --all")
    if impl and all_recipes:
        raise DerivkitError("--impl applies to one target (NAME or --expr), not to --all",
                            "e.g. 'derivkit check linear --impl backward.py:linear_backward'")
    fmt = _output_format(json_out, output_format, quiet)
    names = parse_names(wrt)
    shapes = parse_shapes(shape)
    params = parse_params(param)
    if junit is not None:   # refused before any check runs (a symlink, a FIFO, no such folder)
        from ..render.outfile import check_output

        check_output(junit, force=False, overwrite=True, option="--junit")
    if html is not None:
        from ..render.html_render import check_html_path

        check_html_path(html)
    options: dict[str, Any] = dict(mode=mode.value, sizes=parse_sizes(size) or None, seed=seed,
                   dtype=dtype.value, rtol=_tolerance("--rtol", rtol),
                   atol=_tolerance("--atol", atol), directions=directions)

    from .. import api

    outcome: TargetCheck | CheckReport
    if impl:
        outcome = api.check_implementation(impl, name, expr=expr, shapes=shapes,
                                           recipe_dirs=recipes or None, wrt=names or None,
                                           params=params or None, **options)
    elif all_recipes:
        outcome = _check_all(api, recipes, fmt != "text" or quiet, options)
    elif name:
        outcome = api.check_recipe(name, recipe_dirs=recipes or None, wrt=names or None,
                                   params=params or None, **options)
    else:
        outcome = api.check_expression(expr, names, shapes, params or None, **options)

    if junit is not None:
        from ..render.junit import write_junit

        write_junit(junit, outcome)
    if html is not None:
        from ..render.html_render import write_check_page

        write_check_page(html, outcome)
    _render(outcome, fmt, quiet)
    from ..render.check_json import report_passed, target_passed
    from ..results import CheckReport

    ok = report_passed(outcome) if isinstance(outcome, CheckReport) else target_passed(outcome)
    if not ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _output_format(json_out: bool, output_format: FormatChoice | None, quiet: bool) -> str:
    """--format text|json|github; --json is --format json. Contradictions are usage errors."""
    fmt = output_format.value if output_format is not None else None
    if json_out and fmt not in (None, "json"):
        raise DerivkitError(f"--json and --format {fmt} contradict each other",
                            "--json is --format json; give one of them")
    fmt = "json" if json_out else fmt or "text"
    if quiet and fmt == "json":
        raise DerivkitError("--quiet applies to text and github output, not to JSON",
                            "drop --quiet, or use --format github for a CI log")
    return fmt


def _check_all(api: ModuleType, recipes: list[str] | None, plain: bool,
               options: dict[str, Any]) -> CheckReport:
    """api.check_all with a transient progress bar on stderr when it is an interactive terminal
    (never with --json, --format github or --quiet: `plain`)."""
    if plain:
        return api.check_all(recipe_dirs=recipes or None, **options)
    from ..render.check_rich import progress_callback
    from ..render.rich_render import make_console

    console = make_console(stderr=True)
    total = None
    if console.is_interactive:
        from ..lang.recipes import discover, recipe_dirs

        try:   # counts the files without parsing them (a broken one is a failed target later)
            total = len(discover(recipe_dirs(cast("list[str | Path] | None", recipes or None))))
        except DerivkitError:
            total = None
    with progress_callback(console, total) as callback:
        return api.check_all(recipe_dirs=recipes or None, progress=callback, **options)


def _render(outcome: TargetCheck | CheckReport, fmt: str, quiet: bool) -> None:
    from ..results import CheckReport

    if fmt == "json":
        from ..render.check_json import dumps, report_data, target_data

        data = report_data(outcome) if isinstance(outcome, CheckReport) else target_data(outcome)
        typer.echo(dumps(data))
        return
    if fmt == "github":
        from ..render.github import github_lines

        for line in github_lines(outcome):
            typer.echo(line)
        return
    from ..render.check_rich import render_report, render_target
    from ..render.rich_render import make_console

    if isinstance(outcome, CheckReport):
        render_report(make_console(), outcome, quiet=quiet)
    else:
        render_target(make_console(), outcome, quiet=quiet)


def register(app: typer.Typer) -> None:
    """Add `check` to the derivkit app."""
    app.command("check", help=HELP, epilog=EPILOG)(check_command)
