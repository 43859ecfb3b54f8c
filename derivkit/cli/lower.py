"""`derivkit lower`: write a recipe's or an expression's verified derivatives as a standalone
NumPy module (`forward`, `vjp_x`, and `grad_x` or `jacobian_x` where they apply), or with
`--target torch` as a `torch.autograd.Function` whose backward is the verified one.

Like `derive`, the command only parses options, calls `derivkit.api` and prints the result:
the source (Rich syntax highlighting on a terminal, plain otherwise) or, with `-o FILE`, one
line saying what was written. A form that is not verified is refused by the library with a
DerivkitError (exit 2, mapped in `derivkit.cli`); nothing is written then.

FILE is written by `derivkit.render.outfile.write_output`: atomically (a temporary file in the same
folder, renamed), never through a symbolic link, never to a FIFO, device or folder.

Registered on the app by `derivkit.cli` through `register(app)`; this module does not import
`derivkit.cli` at import time (that would be circular), and nothing heavy at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..render.outfile import check_output, write_output
from .options import (
    DEFAULT_TIMEOUT,
    ExprOption,
    ParamOption,
    RecipesOption,
    ShapeOption,
    TimeoutOption,
    WrtOption,
)

TARGETS = {"numpy": "NumPy", "torch": "PyTorch"}

HELP = ("Write the verified derivatives as a standalone NumPy module.\n\n"
        "The module imports only NumPy and has keyword-only functions forward(...), vjp_x(..., "
        "upstream) for every differentiated input x, grad_x(...) when the output is a scalar "
        "and jacobian_x(...) when output and x are vectors. Its docstring states the forward, "
        "each function's formula and how it was verified. A form that is not verified is "
        "never written (exit code 2). With --target torch: a torch.autograd.Function per recipe "
        "(and a function calling its .apply) whose backward is the verified one.")

EPILOG = ("Examples:\n\n"
          "derivkit lower linear -o linear_grads.py\n\n"
          "derivkit lower softmax\n\n"
          "derivkit lower linear --target torch -o linear_torch.py\n\n"
          "derivkit lower --expr \"trace(A @ X)\" --wrt X --shape A=n,n --shape X=n,n "
          "-o trace.py\n\n"
          "Exit codes: 0 written or printed, 2 usage or input error (also: a form not verified, "
          "or FILE exists without --force).")


def lower_command(
    name: Annotated[Optional[str], typer.Argument(
        metavar="NAME", show_default=False,
        help="A recipe to lower (see 'derivkit list'). Give NAME or --expr, not both.")] = None,
    expr: ExprOption = None,
    wrt: WrtOption = None,
    shape: ShapeOption = None,
    param: ParamOption = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", metavar="FILE", dir_okay=False, show_default=False,
        help="Write the module to FILE (e.g. linear_grads.py) instead of printing it.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite FILE if it exists (a symbolic link is replaced, never written "
                        "through).")] = False,
    target: Annotated[str, typer.Option(
        "--target", metavar="numpy|torch", show_default=False,
        help="What to write: numpy (the default; functions forward, vjp_x, ...) or torch (a "
             "torch.autograd.Function and a plain function calling it; running it needs torch, "
             "writing it does not).")] = "numpy",
    recipes: RecipesOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Write verified derivatives as a standalone NumPy module (help text: HELP)."""
    from .values import parse_target

    names, shapes, params = parse_target(name, expr, wrt, shape, param,
                                         "e.g. 'derivkit lower linear -o linear_grads.py'")
    if target not in TARGETS:
        from ..errors import DerivkitError

        raise DerivkitError(f"--target: {target!r} is not a target", "give numpy or torch")
    if output is not None:
        check_output(output, force=force)     # refuse early: the derivation takes a while

    from .. import api

    other = {} if target == "numpy" else {"target": target}   # numpy: the api's default
    if name:
        lowered = api.lower_recipe(name, recipe_dirs=recipes or None, wrt=names or None, **other)
    else:
        lowered = api.lower_expression(expr, names, shapes, params, **other)

    if output is None:
        from ..render.lower_render import print_source

        print_source(lowered.source)
        return
    write_output(output, lowered.source, force=force)   # checks the path again, atomic
    from ..render.text import visible

    typer.echo(visible(f"wrote {output}: {lowered.target} as a {TARGETS[target]} module with "
                       f"{', '.join(lowered.functions)}"))


def register(app: typer.Typer) -> None:
    """Add `lower` to the derivkit app."""
    app.command("lower", help=HELP, epilog=EPILOG)(lower_command)
