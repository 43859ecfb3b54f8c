"""`derivkit verify`: decide whether a claimed derivative (matrix or index form) is right.

Like the other commands it only parses options, calls `derivkit.api` and hands the verdict to a
renderer. Exit codes: 0 verified, 1 refuted or not verified, 2 a claim that does not parse or
names unknown symbols (any DerivkitError, mapped in `derivkit.cli`). Nothing heavy at import.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .options import (
    DEFAULT_TIMEOUT,
    ExprOption,
    ParamOption,
    RecipesOption,
    ShapeOption,
    TimeoutOption,
    WrtOption,
)

EXIT_REFUTED = 1   # = derivkit.cli.EXIT_CHECK_FAILED

HELP = ("Verify a claimed derivative against derivkit's derivation.\n\n"
        "A matrix claim is an expression over the target's inputs, its output(s) and the upstream "
        "gradient (softmax: z, p, g; linear: X, W, b, Y, G), e.g. \"X.T @ G\" (∂L/∂W) or "
        "\"diag(p) - outer(p, p)\" (the Jacobian). An index claim gives one entry with subscripts "
        "and Kronecker deltas, e.g. \"p[i]*(delta(i,j) - p[j])\"; its free indices, "
        "alphabetically, are the output's then the input's. The claim is compared symbolically "
        "at several small sizes and numerically at random points; a wrong claim is refuted with "
        "a counterexample at the smallest size where it fails.")

EPILOG = ("Examples:\n\n"
          "derivkit verify softmax --claim \"p[i]*(delta(i,j) - p[j])\"\n\n"
          "derivkit verify linear --wrt W --claim \"X.T @ G\"\n\n"
          "derivkit verify --expr \"sum(x**2)\" --wrt x --shape x=n --claim \"2*x\"\n\n"
          "Exit codes: 0 verified, 1 refuted (or could not be verified), 2 the claim does not "
          "parse or names unknown symbols.")


def verify_command(
    name: Annotated[Optional[str], typer.Argument(
        metavar="NAME", show_default=False,
        help="A recipe (see 'derivkit list'). Give NAME or --expr.")] = None,
    claim: Annotated[Optional[str], typer.Option(
        "--claim", "-c", metavar="TEXT", show_default=False,
        help="The claimed derivative (required), in matrix form (\"X.T @ G\") or index form "
             "(\"X[i,r]*delta(j,s)\").")] = None,
    expr: ExprOption = None,
    wrt: WrtOption = None,
    shape: ShapeOption = None,
    param: ParamOption = None,
    seed: Annotated[int, typer.Option(
        "--seed", min=0, help="Seed of the random points (counterexample, numeric stage).")] = 0,
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print plain JSON on stdout (no colour, no markup) for machines.")] = False,
    recipes: RecipesOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    from ..errors import DerivkitError
    from .values import parse_target

    if claim is None:
        raise DerivkitError("give the claimed derivative with --claim TEXT",
                            "e.g. --claim \"X.T @ G\"")
    names, shapes, params = parse_target(
        name, expr, wrt, shape, param,
        "e.g. derivkit verify softmax --claim \"diag(p) - outer(p, p)\"")
    from .. import api

    if name:
        verdict = api.verify_recipe(name, claim, recipe_dirs=recipes or None, wrt=names or None,
                                    seed=seed)
    else:
        verdict = api.verify_expression(expr, claim, names, shapes, params, seed=seed)
    if json_out:
        from ..render.json_render import dumps
        from ..render.verify_render import verdict_data

        typer.echo(dumps(verdict_data(verdict)))
    else:
        from ..render.rich_render import make_console
        from ..render.verify_render import render_verdict

        render_verdict(make_console(), verdict)
    if not verdict.verified:
        raise typer.Exit(EXIT_REFUTED)


def register(app: typer.Typer) -> None:
    app.command("verify", help=HELP, epilog=EPILOG)(verify_command)
