"""`derivkit train --plot FILE.svg`: the loss curve of a `TrainResult` as a standalone SVG.

Hand-written SVG, no plotting library: axes, ticks at round numbers (1, 2 or 5 × 10ⁿ; decades on
a log scale) and light grid lines, a title naming the recipe and a subtitle with the run's
settings, an accessible `<title>`/`<desc>` (`role="img"`), a `viewBox` so it scales, a white
background (readable on a dark page), no script, no style sheet, no external resource.

- The loss: the point at epoch k is the loss after k updates (`losses[k]`; the last point,
  at `epochs`, is `final_loss`), the same series as the terminal chart.
- The y axis is logarithmic when the series spans more than two decades (max/min > 100, every
  value > 0), linear otherwise; the axis label says which ("loss (log scale)").
- With `--use-updated-weights` (`result.use_updated_weights` and some lower-layer deviation), a
  second series on its own right-hand axis: the relative deviation ‖g_used − g_true‖/‖g_true‖
  of the lower layers' gradients, mean over those parameters, in %, at epoch k the gradient
  computed from the same weights as the loss at k; a legend names both series and their axes.
  Non-finite deviations (a zero true gradient) are left out of the line.
- More than `MAX_POINTS` epochs: evenly spaced epochs, the first and last included.

Every string from the result (the recipe's name, parameter and dimension names) goes through
`render.text.visible` (control characters and bidi overrides as visible escapes) and the tree is
built with `xml.etree.ElementTree`, which escapes `<`, `&` and quotes, so a hostile recipe name
can neither break the document nor add markup to it.

Reads only the `TrainResult` (`derivkit.training`); written atomically through
`render.outfile.write_output`, like `--junit`.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DerivkitError
from ..lang.shapes import fmt_sizes
from .junit import xml_text
from .text import visible

if TYPE_CHECKING:
    from ..training import TrainResult

SVG_NS = "http://www.w3.org/2000/svg"
WIDTH, HEIGHT = 720, 420
MAX_POINTS = 1200           # points per polyline at most (the plot is ~600 px wide)
LOG_SPAN = 100.0            # log scale when max/min exceeds this (two decades)
MAX_TITLE = 70              # characters of the recipe name shown in the visible title
LOSS_COLOUR = "#1f5fa8"
DEVIATION_COLOUR = "#c0392b"
OPTION = "--plot"


@dataclass(frozen=True)
class Scale:
    """A value axis: `lo`..`hi` mapped onto the pixels `px_lo`..`px_hi` (log10 of the values on
    a log scale), with tick values at round numbers."""

    lo: float
    hi: float
    log: bool
    ticks: tuple[float, ...]
    px_lo: float = 0.0
    px_hi: float = 1.0

    def at(self, px_lo: float, px_hi: float) -> Scale:
        return Scale(self.lo, self.hi, self.log, self.ticks, px_lo, px_hi)

    def px(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        lo, hi = (math.log10(self.lo), math.log10(self.hi)) if self.log else (self.lo, self.hi)
        return self.px_lo + (v - lo) / (hi - lo) * (self.px_hi - self.px_lo)


def uses_log_scale(values: Sequence[float]) -> bool:
    """Log scale when every value is positive and the values span more than two decades."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > LOG_SPAN


def _nice_step(raw: float) -> float:
    mag = 10.0 ** math.floor(math.log10(raw))
    norm = raw / mag
    return (1 if norm < 1.5 else 2 if norm < 3 else 5 if norm < 7 else 10) * mag


def value_scale(values: Sequence[float], *, target_ticks: int = 5) -> Scale:
    """An axis covering `values` (finite ones), its ends at round numbers."""
    finite = [v for v in values if math.isfinite(v)] or [0.0, 1.0]
    lo, hi = min(finite), max(finite)
    if uses_log_scale(finite):
        dlo, dhi = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        every = max(1, math.ceil((dhi - dlo) / 8))
        dlo -= (dlo % every)
        dhi += (-dhi) % every
        return Scale(10.0 ** dlo, 10.0 ** dhi, True,
                     tuple(10.0 ** k for k in range(dlo, dhi + 1, every)))
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step((hi - lo) / target_ticks)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    ticks = tuple(_round_to_step(k * step, step) for k in range(first, last + 1))
    return Scale(ticks[0], ticks[-1], False, ticks)


def _round_to_step(value: float, step: float) -> float:
    digits = max(0, -math.floor(math.log10(step)))
    return round(value, digits + 1)


def epoch_scale(epochs: int) -> Scale:
    """The x axis: epochs 0..epochs, ticks at round whole numbers."""
    hi = max(epochs, 1)
    step = 1.0 if hi <= 8 else max(1.0, _nice_step(hi / 6))
    ticks = tuple(float(k * step) for k in range(int(hi // step) + 1))
    return Scale(0.0, float(hi), False, ticks)


def fmt_tick(value: float, scale: Scale) -> str:
    """A tick label that reads back as its value (float(label) == value, to display precision)."""
    if scale.log:
        k = round(math.log10(value))
        return f"{10.0 ** k:g}" if -4 <= k <= 5 else f"1e{k}"
    if value == 0:
        return "0"
    step = scale.ticks[1] - scale.ticks[0] if len(scale.ticks) > 1 else abs(value)
    big = max(abs(scale.lo), abs(scale.hi))
    if 1e-4 <= step and big < 1e6:
        digits = max(0, -math.floor(math.log10(step) + 1e-9))
        return f"{value:.{digits}f}"
    digits = max(1, math.floor(math.log10(big)) - math.floor(math.log10(step)) + 1)
    return f"{value:.{digits}g}"


def loss_series(result: TrainResult) -> list[tuple[int, float]]:
    """(epoch, loss after that many updates): `losses` then `final_loss`."""
    values = list(result.losses) + [result.final_loss]
    return list(enumerate(values))


def deviation_series(result: TrainResult) -> list[tuple[int, float]]:
    """(epoch, mean relative deviation of the lower layers' gradients, in %) for the gradients
    computed at epoch k (from the weights whose loss is `losses[k]`); empty unless the run used
    updated weights. Non-finite means are left out."""
    series = [v for v in result.deviations.values() if v]
    if not result.use_updated_weights or not series:
        return []
    n = min(len(v) for v in series)
    out = []
    for k in range(n):
        mean = sum(v[k] for v in series) / len(series)
        if math.isfinite(mean):
            out.append((k, 100.0 * mean))
    return out


def _thin(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    n = len(points)
    if n <= MAX_POINTS:
        return points
    keep = sorted({round(i * (n - 1) / (MAX_POINTS - 1)) for i in range(MAX_POINTS)})
    return [points[i] for i in keep]


def _clean(text: object) -> str:
    """User text as one visible line that XML 1.0 can hold."""
    return xml_text(visible(text))


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_").replace("_", "-"): str(v)
                                     for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def _f(value: float) -> str:
    return f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.3g}%" if math.isfinite(value) else str(value)


def train_svg(result: TrainResult) -> str:
    """The SVG document (text, with an XML declaration) of a training run's loss curve."""
    name = _clean(result.recipe)
    losses = loss_series(result)
    deviations = deviation_series(result)
    lower = [_clean(w) for w, v in result.deviations.items() if v]
    two = bool(deviations)

    left, right = 78.0, (78.0 if two else 24.0)
    top, bottom = (84.0 if two else 64.0), HEIGHT - 56.0
    x_scale = epoch_scale(result.epochs).at(left, WIDTH - right)
    y_scale = value_scale([v for _, v in losses]).at(bottom, top)

    plural = "s" if result.epochs != 1 else ""
    settings = _clean(f"{result.epochs} epoch{plural}, lr {result.lr:g}, seed {result.seed}, "
                      f"sizes {fmt_sizes(result.sizes)}")
    scale_word = "log" if y_scale.log else "linear"
    desc = (f"Line chart of the training loss of recipe {name} after each epoch of full-batch "
            f"gradient descent ({settings}), on a {scale_word} scale: from "
            f"{result.initial_loss:.4g} at epoch 0 to {result.final_loss:.4g} at epoch "
            f"{result.epochs}.")
    if two:
        desc += (f" Second line, right axis: the lower layers' gradients ({', '.join(lower)}) "
                 f"computed through the already updated {', '.join(_clean(w) for w in result.last_layer)}"
                 f" deviate from the true ones by mean {_pct(result.mean_deviation)}, max "
                 f"{_pct(result.max_deviation)} (relative, mean over those parameters per epoch).")

    svg = ET.Element("svg", {"xmlns": SVG_NS, "version": "1.1", "width": str(WIDTH),
                             "height": str(HEIGHT), "viewBox": f"0 0 {WIDTH} {HEIGHT}",
                             "role": "img", "aria-labelledby": "derivkit-train-title "
                                                               "derivkit-train-desc",
                             "font-family": "sans-serif", "font-size": "12"})
    _el(svg, "title", f"derivkit train {name}: loss per epoch", id="derivkit-train-title")
    _el(svg, "desc", desc, id="derivkit-train-desc")
    _el(svg, "rect", width=WIDTH, height=HEIGHT, fill="#ffffff")
    _el(svg, "text", f"derivkit train {_short(name, MAX_TITLE)}: loss per epoch", x=left, y=24,
        font_size=16, font_weight="bold", fill="#222222", class_="title")
    _el(svg, "text", settings, x=left, y=44, fill="#555555", class_="subtitle")

    # grid and axes
    grid = _el(svg, "g", class_="grid", stroke="#e3e3e3", stroke_width=1)
    for t in y_scale.ticks:
        y = y_scale.px(t)
        _el(grid, "line", x1=_f(left), x2=_f(WIDTH - right), y1=_f(y), y2=_f(y))
    _el(svg, "rect", x=_f(left), y=_f(top), width=_f(WIDTH - right - left),
        height=_f(bottom - top), fill="none", stroke="#888888", class_="frame")

    xa = _el(svg, "g", class_="axis x", fill="#333333")
    for t in x_scale.ticks:
        x = x_scale.px(t)
        tick = _el(xa, "g", class_="tick")
        _el(tick, "line", x1=_f(x), x2=_f(x), y1=_f(bottom), y2=_f(bottom + 5), stroke="#888888")
        _el(tick, "text", fmt_tick(t, x_scale), x=_f(x), y=_f(bottom + 18), text_anchor="middle")
    _el(xa, "text", "epoch", x=_f((left + WIDTH - right) / 2), y=_f(HEIGHT - 14),
        text_anchor="middle", class_="label")

    _y_axis(svg, y_scale, left, -1, f"loss ({scale_word} scale)", "y", top, bottom)
    _polyline(svg, losses, x_scale, y_scale, LOSS_COLOUR, "series loss")

    if two:
        d_scale = value_scale([v for _, v in deviations]).at(bottom, top)
        d_word = "log" if d_scale.log else "linear"
        _y_axis(svg, d_scale, WIDTH - right, 1,
                f"gradient deviation, % ({d_word} scale)", "y2", top, bottom)
        _polyline(svg, deviations, x_scale, d_scale, DEVIATION_COLOUR, "series deviation",
                  dash="6 4")
        legend = _el(svg, "g", class_="legend", fill="#333333")
        who = _short(", ".join(lower), 40)
        for i, (label, colour, dash) in enumerate((
                ("loss (left axis)", LOSS_COLOUR, None),
                (f"deviation of {who} gradients, mean (right axis)", DEVIATION_COLOUR, "6 4"))):
            y, x = 64.0, left + 150 * i
            _el(legend, "line", x1=_f(x), x2=_f(x + 24), y1=_f(y), y2=_f(y), stroke=colour,
                stroke_width=2, stroke_dasharray=dash)
            _el(legend, "text", label, x=_f(x + 30), y=_f(y + 4))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(svg, encoding="unicode") + "\n")


def _y_axis(svg: ET.Element, scale: Scale, x: float, side: int, label: str, cls: str,
            top: float, bottom: float) -> None:
    axis = _el(svg, "g", class_=f"axis {cls}", fill="#333333")
    for t in scale.ticks:
        y = scale.px(t)
        tick = _el(axis, "g", class_="tick")
        _el(tick, "line", x1=_f(x), x2=_f(x + 5 * side), y1=_f(y), y2=_f(y), stroke="#888888")
        _el(tick, "text", fmt_tick(t, scale), x=_f(x + 8 * side), y=_f(y + 4),
            text_anchor="start" if side > 0 else "end")
    lx, ly = x + (60 if side > 0 else 56) * side, (top + bottom) / 2
    _el(axis, "text", label, x=_f(lx), y=_f(ly), text_anchor="middle", class_="label",
        transform=f"rotate({90 * side} {_f(lx)} {_f(ly)})")


def _polyline(svg: ET.Element, points: list[tuple[int, float]], x_scale: Scale, y_scale: Scale,
              colour: str, cls: str, dash: str | None = None) -> None:
    text = " ".join(f"{_f(x_scale.px(k))},{_f(y_scale.px(v))}" for k, v in _thin(points))
    _el(svg, "polyline", points=text, fill="none", stroke=colour, stroke_width=2,
        stroke_linejoin="round", stroke_dasharray=dash, class_=cls)


def check_plot_path(path: str | Path) -> None:
    """Refuse a --plot destination before training: not ending in .svg, a folder, a missing
    folder, a link, a FIFO (the rules of `render.outfile`; an existing regular file is
    overwritten, as --junit does). Raises DerivkitError (exit 2, one line)."""
    from .outfile import check_output

    path = Path(path)
    check_output(path, force=False, overwrite=True, option=OPTION)
    if path.suffix.lower() != ".svg":
        raise DerivkitError(f"{OPTION} {visible(repr(str(path)))}: the plot is written as SVG; "
                            "give a file name ending in .svg", "e.g. --plot loss.svg")


def write_train_svg(path: str | Path, result: TrainResult) -> None:
    """Write `train_svg(result)` to `path` atomically (`render.outfile.write_output`), replacing
    a regular file, never through a symbolic link. An unwritable path is a DerivkitError."""
    from .outfile import write_output

    check_plot_path(path)
    write_output(path, train_svg(result), force=False, overwrite=True, option=OPTION)


__all__ = ["Scale", "check_plot_path", "deviation_series", "epoch_scale", "fmt_tick",
           "loss_series", "train_svg", "uses_log_scale", "value_scale", "write_train_svg"]
