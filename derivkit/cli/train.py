"""`derivkit train`: gradient descent on a seeded synthetic regression task with the derived,
verified, lowered gradients of a composite recipe (`mlp3` by default).

The command parses options, calls `derivkit.train.train` and prints the losses: a transient Rich
progress bar on stderr while training (only on an interactive terminal, never with --json), then
the loss per epoch as a small chart drawn with plain characters (no plotting library), the first
and last loss and, with --use-updated-weights, how far the lower layers' gradients were from the
true ones. `--json` prints one plain JSON document instead.

Exit codes: 0 trained; 2 usage or input error (a DerivkitError, mapped in `derivkit.cli`, e.g. a
recipe without steps). Registered by `derivkit.cli` through `register(app)`; nothing heavy is
imported at module level (`derivkit train --help` imports no NumPy/SymPy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, cast

import typer

from .options import DEFAULT_TIMEOUT, RecipesOption, TimeoutOption

if TYPE_CHECKING:
    from rich.console import Console

    from ..lang.recipes import Recipe
    from ..train import TrainResult

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

WARNING = ("The tutorial's warning: backpropagate with the weights of the forward pass — "
           "Δ_A2 = Δ_Z3 W3 must use W3 from before its update; with W3 already updated the "
           "layers below get the gradient of a different network, not of the loss being "
           "minimised.")


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
    recipes: RecipesOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Train a composite recipe's network by gradient descent (help text: HELP)."""
    from .values import parse_sizes
    from ..lang.recipes import load
    from ..train import train

    sizes = parse_sizes(size)
    recipe = load(name, cast("list[str | Path] | None", recipes or None))
    options: dict[str, Any] = dict(epochs=epochs, lr=lr, seed=seed, sizes=sizes or None,
                   use_updated_weights=use_updated_weights)
    if json_out:
        result = train(recipe, **options)
        typer.echo(_dumps(result))
        return
    from ..render.rich_render import make_console

    result = _train_with_progress(recipe, train, options, make_console(stderr=True))
    _render(make_console(), result)


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


def loss_chart(losses: Iterable[float], width: int = 60, height: int = 8, first: int = 0) -> list[str]:
    """The losses as a small plot drawn with plain characters: one '*' per column (evenly spaced
    epochs, the first and the last included), a log-scale y axis when every loss is positive.
    `losses[k]` is the loss after `first + k` epochs."""
    values = [float(v) for v in losses]
    if not values:
        return []
    cols = min(width, len(values))
    n = len(values)
    points = [values[round(c * (n - 1) / (cols - 1))] if cols > 1 else values[0]
              for c in range(cols)]
    log = min(points) > 0
    scale = [math.log10(p) if log else p for p in points]
    lo, hi = min(scale), max(scale)
    span = hi - lo or 1.0
    rows = [[" "] * cols for _ in range(height)]
    for c, v in enumerate(scale):
        r = round((hi - v) / span * (height - 1))
        rows[r][c] = "*"
    top, bottom = f"{max(points):.3g}", f"{min(points):.3g}"
    pad = max(len(top), len(bottom))
    lines = []
    for r, row in enumerate(rows):
        label = top if r == 0 else bottom if r == height - 1 else ""
        lines.append(f"{label:>{pad}} |{''.join(row)}")
    lines.append(f"{'':>{pad}} +{'-' * cols}")
    start, last = str(first), str(first + len(values) - 1)
    axis = start if cols == 1 else start + " " * max(1, cols - len(start) - len(last)) + last
    lines.append(f"{'':>{pad}}  {axis}  epoch" + ("  (log scale)" if log else ""))
    return lines


def _fmt_pct(value: float) -> str:
    return f"{100 * value:.3g}%" if math.isfinite(value) else str(value)


def _render(console: Console, result: TrainResult) -> None:
    from rich.text import Text

    from ..render.text import visible_data

    result = visible_data(result)   # names come from recipe files and options: shown visibly

    sizes = ", ".join(f"{k}={v}" for k, v in result.sizes.items())
    console.print(Text(f"train {result.recipe}: {result.epochs} epoch{'s' if result.epochs != 1 else ''}, lr {result.lr:g}, "
                       f"seed {result.seed}, sizes {sizes}", style="bold"))
    console.print(Text("loss after each epoch:"))
    for line in loss_chart(list(result.losses) + [result.final_loss]):
        console.print(Text(line), no_wrap=True, overflow="ignore", crop=False)
    ratio = result.final_loss / result.initial_loss if result.initial_loss else math.nan
    console.print(Text(f"loss: first {result.initial_loss:.6g} → last {result.final_loss:.6g} "
                       f"(×{ratio:.3g})"))
    if result.use_updated_weights and result.mean_deviation is None:
        console.print(Text(f"{', '.join(result.last_layer)} updated first, but no layer below "
                           "has a parameter to differentiate: no gradient was backpropagated "
                           "through an updated weight.", style="yellow"))
    elif result.use_updated_weights:
        top = ", ".join(result.last_layer)
        # not None: some layer below has a deviation (the branch above)
        mean, worst = cast(float, result.mean_deviation), cast(float, result.max_deviation)
        per = "; ".join(f"{w} mean {_fmt_pct(sum(v) / len(v))}, max {_fmt_pct(max(v))}"
                        for w, v in result.deviations.items() if v)
        console.print(Text(f"{top} updated before backpropagating: the lower layers' gradients "
                           f"deviate from the true ones by mean {_fmt_pct(mean)}, "
                           f"max {_fmt_pct(worst)} (‖g_used − g_true‖/‖g_true‖)",
                           style="yellow"))
        if per:
            console.print(Text(f"  {per}", style="dim"))
        console.print(Text(WARNING))


def result_data(result: TrainResult) -> dict[str, Any]:
    """Plain JSON-ready data of a TrainResult (deviations: null unless --use-updated-weights)."""
    updated = result.use_updated_weights
    return {
        "recipe": result.recipe,
        "epochs": result.epochs,
        "lr": result.lr,
        "seed": result.seed,
        "sizes": dict(result.sizes),
        "use_updated_weights": updated,
        "losses": list(result.losses),
        "initial_loss": result.initial_loss,
        "final_loss": result.final_loss,
        "last_layer": list(result.last_layer) if updated else None,
        "deviations": {w: list(v) for w, v in result.deviations.items()} if updated else None,
        "mean_deviation": result.mean_deviation if updated else None,
        "max_deviation": result.max_deviation if updated else None,
    }


def _dumps(result: TrainResult) -> str:
    from ..render.json_doc import dumps

    return dumps(result_data(result))


def register(app: typer.Typer) -> None:
    """Add `train` to the derivkit app."""
    app.command("train", help=HELP, epilog=EPILOG)(train_command)
