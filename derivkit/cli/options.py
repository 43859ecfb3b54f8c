"""Option declarations shared by the commands that take a target (derive, check, lower)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ExprOption = Annotated[Optional[str], typer.Option(
    "--expr", "-e", metavar="TEXT",
    help="A forward expression in NumPy syntax, e.g. \"sum((X @ W - T)**2)\"; needs --wrt and a "
         "--shape for every input.")]
WrtOption = Annotated[Optional[list[str]], typer.Option(
    "--wrt", metavar="NAME",
    help="Input to differentiate with respect to (repeatable or comma-separated). Required with "
         "--expr; with NAME it restricts the recipe's inputs.")]
ShapeOption = Annotated[Optional[list[str]], typer.Option(
    "--shape", metavar="NAME=DIMS",
    help="Shape of an --expr input, e.g. X=m,n (matrix), x=n (vector), c=scalar. Repeatable.")]
ParamOption = Annotated[Optional[list[str]], typer.Option(
    "--param", metavar="NAME=VALUE",
    help="A scalar parameter and its value, e.g. alpha=0.1 (with --expr; 'check' also takes it "
         "with NAME to override the recipe's default). Repeatable.")]
RecipesOption = Annotated[Optional[list[str]], typer.Option(
    "--recipes", metavar="DIR",
    help="Extra folder of recipe TOML files (repeatable); a recipe there replaces a built-in one "
         "of the same name. Also read from $DERIVKIT_RECIPES.")]


DEFAULT_TIMEOUT = 60.0   # = derivkit.limits.DEFAULT_TIMEOUT_S


def _start_budget(ctx: typer.Context, value: float) -> float:
    """`--timeout` starts the command's wall-clock budget as it is parsed; it ends with the
    command (`derivkit.cli._DerivkitGroup.invoke` holds the `command_scope`)."""
    from .. import limits

    if ctx.resilient_parsing:   # completion / --help: nothing runs
        return value
    limits.start_budget(value, ctx.info_name or "derivkit")
    return value


TimeoutOption = Annotated[float, typer.Option(
    "--timeout", metavar="S", callback=_start_budget,
    help="Wall-clock budget of the whole command in seconds: past it, derivkit stops with exit "
         "code 2 and says what was too large.")]
