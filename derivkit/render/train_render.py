"""`derivkit train` for people and machines: the loss per epoch as a small chart drawn with plain
characters (no plotting library), the first and last loss and, with --use-updated-weights, how far
the lower layers' gradients were from the true ones; or one plain JSON document."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from ..lang.shapes import fmt_sizes
from .json_doc import dumps
from .text import visible_data

if TYPE_CHECKING:
    from rich.console import Console

    from ..training import TrainResult

WARNING = ("The tutorial's warning: backpropagate with the weights of the forward pass — "
           "Δ_A2 = Δ_Z3 W3 must use W3 from before its update; with W3 already updated the "
           "layers below get the gradient of a different network, not of the loss being "
           "minimised.")


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


def render_train(console: Console, result: TrainResult) -> None:
    from rich.text import Text

    from .rich_render import Hanging

    result = visible_data(result)   # names come from recipe files and options: shown visibly

    sizes = fmt_sizes(result.sizes)
    plural = "s" if result.epochs != 1 else ""
    console.print(Hanging(Text(f"train {result.recipe}: {result.epochs} epoch{plural}, lr "
                               f"{result.lr:g}, seed {result.seed}, sizes {sizes}", style="bold")))
    console.print(Text("loss after each epoch:"))
    for line in loss_chart(list(result.losses) + [result.final_loss]):
        console.print(Text(line), no_wrap=True, overflow="ignore", crop=False)
    ratio = result.final_loss / result.initial_loss if result.initial_loss else math.nan
    console.print(Text(f"loss: first {result.initial_loss:.6g} → last {result.final_loss:.6g} "
                       f"(×{ratio:.3g})"))
    if result.use_updated_weights and result.mean_deviation is None:
        console.print(Hanging(Text(f"{', '.join(result.last_layer)} updated first, but no layer "
                                   "below has a parameter to differentiate: no gradient was "
                                   "backpropagated through an updated weight.", style="yellow")))
    elif result.use_updated_weights:
        top = ", ".join(result.last_layer)
        # not None: some layer below has a deviation (the branch above)
        mean, worst = cast(float, result.mean_deviation), cast(float, result.max_deviation)
        per = "; ".join(f"{w} mean {_fmt_pct(sum(v) / len(v))}, max {_fmt_pct(max(v))}"
                        for w, v in result.deviations.items() if v)
        console.print(Hanging(Text(f"{top} updated before backpropagating: the lower layers' "
                                   f"gradients deviate from the true ones by mean "
                                   f"{_fmt_pct(mean)}, max {_fmt_pct(worst)} "
                                   "(‖g_used − g_true‖/‖g_true‖)", style="yellow")))
        if per:
            console.print(Hanging(Text(per, style="dim"), indent=2))
        console.print(Hanging(Text(WARNING)))


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


def train_json(result: TrainResult) -> str:
    return dumps(result_data(result))
