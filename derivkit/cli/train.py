"""`derivkit train`: gradient descent on a seeded synthetic regression task with the derived,
verified, lowered gradients of a composite recipe (`mlp3` by default).

The command parses options, calls `derivkit.training.train` (a transient Rich progress bar on stderr
while training, only on an interactive terminal, never with --json) and hands the result to
`derivkit.render.train_render`.

Exit codes: 0 trained; 2 usage or input error (a DerivkitError, mapped in `derivkit.cli`, e.g. a
recipe without steps). Registered by `derivkit.cli` through `register(app)`; nothing heavy is
imported at module level (`derivkit train --help` imports no NumPy/SymPy).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, cast

import typer

from .options import DEFAULT_TIMEOUT, RecipesOption, TimeoutOption

if TYPE_CHECKING:
    from rich.console import Console

    from ..lang.recipes import Recipe
    from ..training import TrainResult

HELP = ("Train a composite recipe's network by gradient descent with derivkit's gradients.\n\n"
        "Builds a seeded synthetic regression task (X ~ N(0,1), targets from a random teacher "
        "network of the same architecture plus a little noise, a random student), then runs "
        "full-batch gradient descent with the derived, verified backward pass lowered to NumPy, "
        "and prints the loss per epoch. --use-updated-weights updates the last layer first and "
        "backpropagates through the updated weights (the backprop tutorial's warning), and "
        "reports how far the lower layers' gradients are from the true ones.")

EPILOG = ("Examples:\n\n"
          "derivkit train\n\n"
          "derivkit train mlp3 --epochs 300 --lr 0.1 --size m=128\n\n"
          "derivkit train mlp3 --use-updated-weights\n\n"
          "derivkit train mlp3 --json\n\n"
          "Exit codes: 0 trained, 2 usage or input error (e.g. a recipe without [[steps]]).")



def train_command(
    name: Annotated[str, typer.Argument(
        metavar="NAME", help="A composite recipe ([[steps]] ending in a scalar loss).")] = "mlp3",
    epochs: Annotated[int, typer.Option(
        "--epochs", min=1, help="Number of full-batch gradient-descent steps.")] = 200,
    lr: Annotated[float, typer.Option(
        "--lr", metavar="FLOAT", help="Learning rate (> 0).")] = 0.05,
    seed: Annotated[int, typer.Option(
        "--seed", min=0, help="Seed of the data, the teacher and the student's initial "
                              "weights.")] = 0,
    size: Annotated[Optional[list[str]], typer.Option(
        "--size", metavar="DIM=N",
        help="Size of a dimension, e.g. m=64 (repeatable). Default: 64 for the sample "
             "dimension, 8 for every other.")] = None,
    use_updated_weights: Annotated[bool, typer.Option(
        "--use-updated-weights",
        help="Reproduce the tutorial's mistake: update the last layer first, then "
             "backpropagate through its updated weights; report the lower layers' gradient "
             "error.")] = False,
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print plain JSON on stdout (losses, final loss, deviations).")] = False,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", metavar="FILE.svg", show_default=False,
        help="Also write the loss curve (and, with --use-updated-weights, the gradient "
             "deviation) as an SVG image to FILE.svg.")] = None,
    recipes: RecipesOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Train a composite recipe's network by gradient descent (help text: HELP)."""
    from ..api import load_recipe
    from ..training import train
    from .values import parse_sizes

    sizes = parse_sizes(size)
    recipe = load_recipe(name, cast("list[str | Path] | None", recipes or None))
    options: dict[str, Any] = dict(epochs=epochs, lr=lr, seed=seed, sizes=sizes or None,
                   use_updated_weights=use_updated_weights)
    if plot is not None:    # refused before training (not .svg, a folder, no such folder, a link)
        from ..render.train_svg import check_plot_path

        check_plot_path(plot)
    if json_out:
        result = train(recipe, **options)
        from ..render.train_render import train_json

        _write_plot(plot, result)
        typer.echo(train_json(result))
        return
    from ..render.rich_render import make_console
    from ..render.train_render import render_train

    result = _train_with_progress(recipe, train, options, make_console(stderr=True))
    render_train(make_console(), result)
    _write_plot(plot, result)


def _write_plot(plot: Path | None, result: TrainResult) -> None:
    """--plot: the SVG written atomically, one line on stderr (stdout may be JSON)."""
    if plot is None:
        return
    from ..render.text import visible
    from ..render.train_svg import write_train_svg

    write_train_svg(plot, result)
    typer.echo(visible(f"wrote {plot}: the loss curve as SVG"), err=True)


def _train_with_progress(recipe: Recipe, train: Callable[..., TrainResult], options: dict[str, Any],
                         console: Console) -> TrainResult:
    """train(...) with a transient progress bar on stderr when it is an interactive terminal."""
    if not console.is_interactive:
        return train(recipe, **options)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("training {task.description}", markup=False), BarColumn(),
               MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}", markup=False),
               TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        from ..render.text import visible

        task = progress.add_task(visible(recipe.name), total=options["epochs"], loss="…")

        def callback(epoch: int, loss: float) -> None:
            progress.update(task, completed=epoch, loss=f"{loss:.4g}")

        return train(recipe, progress=callback, **options)


def register(app: typer.Typer) -> None:
    """Add `train` to the derivkit app."""
    app.command("train", help=HELP, epilog=EPILOG)(train_command)
