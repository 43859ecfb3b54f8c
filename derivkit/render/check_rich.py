"""Rich output of `derivkit check` for people: a table per target (or one summary table for
`--all`), the worst entries of every failed check, and a verdict line.

Data is printed as `Text`, never as markup, and every result passes through
`render.text.visible_data` first: control characters and escape sequences in user text (a
recipe file's name or path, an error message quoting it) are shown as visible escapes
(`\\x1b`), so the files being judged cannot forge the verdict lines. Colour follows the
terminal: none when stdout is not a terminal, none when NO_COLOR is set (Rich decides; nothing
here forces it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, SupportsFloat

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..lang.shapes import fmt_sizes
from ..results import CheckReport, CheckResult, TargetCheck, WorstEntry
from .check_json import (
    fmt_index,
    fmt_num,
    result_passed,
    target_passed,
    within_tolerance,
    wrong_shape,
)
from .rich_render import Hanging
from .text import visible, visible_data

PASS = ("✓ pass", "bold green")
FAIL = ("✗ FAIL", "bold red")
ERROR = ("✗ ERROR", "bold red")


def _verdict(ok: bool) -> Text:
    return Text(*(PASS if ok else FAIL))


def fmt_tol(value: SupportsFloat | None) -> str:
    """Tolerances are usually round: 1e-06, 1.5e-07 (two significant digits)."""
    text = fmt_num(value, 1)
    return text.replace(".0e", "e") if text[:1].isdigit() else text


def _tolerance(r: CheckResult) -> str:
    return f"{fmt_tol(r.rtol)} / {fmt_tol(r.atol)}"


#: How methods are named for people (the JSON keeps the engine's names).
METHOD_LABELS = {"central": "central", "complex-step": "complex step",
                 "central-richardson": "central + Richardson"}


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _table(**kwargs: Any) -> Table:
    """Compact: a rule under the header, two spaces between columns, no outer edge."""
    return Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False,
                 collapse_padding=True, **kwargs)


def _header(t: TargetCheck) -> Text:
    line = Text(t.target, style="bold cyan")
    facts = [f"seed {t.seed}", t.dtype]
    if t.sizes:
        facts.append(f"sizes {fmt_sizes(t.sizes)}")
    line.append("  " + ", ".join(facts), style="dim")
    if t.implementation:
        line.append("\nyour implementation ", style="bold")
        line.append(t.implementation)
    return line


def _para(console: Console, text: Text | str, indent: int = 2) -> None:
    """A paragraph whose wrapped lines keep the indent."""
    body = text if isinstance(text, Text) else Text(text)
    console.print(Padding(body, (0, 0, 0, indent), expand=False))


# ---------------------------------------------------------------------------- one target

#: Columns given up, in this order, where a terminal is too narrow for the whole table: the
#: first and the verdict column stay.
RESULTS_DROP = ("evals", "step", "kind", "tolerance", "mode/method", "max error")
SUMMARY_DROP = ("rtol/atol", "mode/method", "max rel err")


def results_table(t: TargetCheck, omit: Collection[str] = ()) -> Table:
    """One row per derivative. Pairs are stacked in one cell (mode over method, absolute over
    relative error, rtol over atol) so that every field fits an 80-column terminal; the columns
    named in `omit` are left out (a narrow terminal, `RESULTS_DROP`)."""
    t = visible_data(t)
    table = _table()
    columns: dict[str, dict[str, Any]] = {
               "wrt": dict(no_wrap=True, style="bold magenta"), "kind": dict(no_wrap=True),
               "mode/method": dict(min_width=11), "step": dict(justify="right", no_wrap=True),
               "max error": dict(no_wrap=True), "tolerance": dict(no_wrap=True),
               "evals": dict(justify="right", no_wrap=True), "verdict": dict(no_wrap=True)}
    shown = [name for name in columns if name not in omit]
    for name in shown:
        table.add_column(name, **columns[name])
    for r in t.results:
        ok = result_passed(r)
        errors = Text(f"abs {fmt_num(r.max_abs_error)}\nrel {fmt_num(r.max_rel_error)}",
                      style="" if ok else "red")
        shapes = wrong_shape(r)
        if shapes:   # --impl returned another shape: the shapes, not inf errors and nan tolerances
            errors = Text(f"{shapes[0]}\n{shapes[1].replace('expected', 'want')}", style="red")
        cells: dict[str, Any] = {
            "wrt": Text(r.wrt), "kind": Text(r.kind),
            "mode/method": Text(f"{r.mode}\n{method_label(r.method)}"),
            "step": fmt_num(r.step, 1), "max error": errors,
            "tolerance": Text(f"rtol {fmt_tol(r.rtol)}\natol {fmt_tol(r.atol)}"),
            "evals": str(r.n_evals), "verdict": _verdict(ok)}
        if shapes:
            cells.update({"step": "—", "tolerance": Text("—")})
        table.add_row(*(cells[name] for name in shown))
    return table


def _min_width(console: Console, table: Table) -> int:
    """The narrowest `table` can be without cropping a column that does not wrap."""
    wide = console.options.update_width(10_000)
    natural = narrowest = 0
    for column in table.columns:
        sizes = [Measurement.get(console, wide, cell) for cell in (column.header, *column.cells)]
        widest = max(m.maximum for m in sizes)
        natural += widest
        narrowest += widest if column.no_wrap else max(column.min_width or 0,
                                                       max(m.minimum for m in sizes))
    overhead = Measurement.get(console, wide, table).maximum - natural
    return narrowest + overhead


def fitted(console: Console, build: Callable[[Collection[str]], Table], drop: Iterable[str],
           width: int | None = None) -> Table:
    """`build(omit)` with the columns of `drop` left out, in order, until it fits `width` (the
    console's): on a narrow terminal the verdict column stays whole."""
    width = console.width if width is None else width
    omit: list[str] = []
    table = build(omit)
    for name in drop:
        if _min_width(console, table) <= width:
            break
        omit.append(name)
        table = build(omit)
    return table


def entries_table(entries: tuple[WorstEntry, ...], *, directional: bool = False,
                  yours: bool = False) -> Table:
    """The worst entries; `yours`: the value is a user's (--impl), not derived."""
    table = _table()
    table.add_column("direction" if directional else "index", no_wrap=True)
    table.add_column("yours" if yours else "derived", justify="right", no_wrap=True)
    table.add_column("numeric", justify="right", no_wrap=True)
    table.add_column("|error|", justify="right", no_wrap=True)
    table.add_column("tolerance", justify="right", no_wrap=True)
    for e in entries:
        tol = float(e.tolerance)
        ok = float(e.abs_error) <= tol
        table.add_row(fmt_index(e.index), fmt_num(e.derived, 6), fmt_num(e.numeric, 6),
                      Text(fmt_num(e.abs_error), style="" if ok or math.isnan(tol) else "red"),
                      "—" if math.isnan(tol) else fmt_num(tol))
    return table


def _lines(console: Console, items: Iterable[Text | str], indent: int = 2) -> None:
    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for item in items:
        grid.add_row(" " * indent + "•", item if isinstance(item, Text) else Text(visible(item)))
    console.print(grid)


def render_diagnoses(console: Console, r: CheckResult) -> None:
    """The mistakes recognised in a user's implementation, one per line, name first."""
    r = visible_data(r)
    for d in r.diagnoses:
        _para(console, Text("diagnosis: ", style="bold yellow") + Text(d.name, style="bold")
              + Text(f" — {d.detail}"))


def render_failure(console: Console, t: TargetCheck, r: CheckResult, *,
                   diagnoses: bool = True) -> None:
    """What a person needs to act on a failed check: the mistakes diagnosed in a user's
    implementation, the errors against the tolerance, the worst entries (or directions), and
    for a directional check the entries it was traced to."""
    t, r = visible_data(t), visible_data(r)
    whose = f"your ∂/∂{r.wrt}" if t.implementation else f"∂/∂{r.wrt}"
    agrees = within_tolerance(r)
    how = ("matches finite differences but fails (see the diagnosis)" if agrees else
           "does not match finite differences")
    console.print(Hanging(Text(f"✗ {t.target}: {whose} ({r.kind}) {how}", style="bold red")))
    shapes = wrong_shape(r)
    if shapes:   # the shapes first: no error or tolerance was computed
        _para(console, Text("shape: ", style="bold yellow") + Text(f"{shapes[0]}, {shapes[1]}"))
        from dataclasses import replace

        r = replace(r, diagnoses=tuple(d for d in r.diagnoses if d.name != "wrong shape"))
    if diagnoses:
        render_diagnoses(console, r)
    if shapes:
        return
    _para(console, f"max relative error {fmt_num(r.max_rel_error)}, max absolute error "
                   f"{fmt_num(r.max_abs_error)}; tolerance rtol {fmt_tol(r.rtol)}, atol "
                   f"{fmt_tol(r.atol)} ({r.mode} check, {method_label(r.method)}, step {fmt_num(r.step)}, "
                   f"error estimate of the differences {fmt_num(r.fd_error_estimate)})")
    if r.max_rel_error_vs_derived is not None:
        _para(console, f"against derivkit's derivation: max relative error "
                       f"{fmt_num(r.max_rel_error_vs_derived)}")
    directional = r.mode == "directional"
    if r.worst and not agrees:
        console.print(Text("  worst " + ("directions" if directional else "entries"), style="bold"))
        console.print(Padding(entries_table(r.worst, directional=directional,
                                            yours=bool(t.implementation)), (0, 0, 0, 4), expand=False))
    if r.localised:
        console.print(Hanging(Text("localised to these Jacobian entries (output index, input "
                                   "index)", style="bold"), indent=2))
        console.print(Padding(entries_table(r.localised, yours=bool(t.implementation)), (0, 0, 0, 4),
                              expand=False))


def remarks(results: Iterable[CheckResult]) -> list[Text]:
    """Detection power of each directional check and the engine's notes, labelled by the checks
    they belong to; a note shared by several inputs is given once ("X, W, b (vjp, full): ...")."""
    from ..markup.html import remark_groups

    return [Text(f"{label}: ", style="bold") + Text(note)
            for label, note in remark_groups(visible_data(tuple(results)))]


def render_target(console: Console, t: TargetCheck, *, quiet: bool = False) -> None:
    """The target's table, its failures, notes and verdict line; with `quiet` only the failures
    and the verdict line."""
    t = visible_data(t)
    if not quiet:
        console.print(Hanging(_header(t)))
    if t.results and not quiet:
        console.print(fitted(console, lambda omit: results_table(t, omit), RESULTS_DROP))
    if t.error is not None:
        console.print(Hanging(Text("✗ could not check: ", style="bold red")
                              + Text(t.error, style="red")))
    shown: set[tuple[str, str]] = set()
    for r in t.results:
        if not result_passed(r):   # a derivative's diagnoses once, under its first failed check
            render_failure(console, t, r, diagnoses=(r.wrt, r.kind) not in shown)
            shown.add((r.wrt, r.kind))
    if quiet:
        console.print(Hanging(target_line(t)))
        return
    if t.implementation and t.results:
        console.print(Hanging(derivation_line(t)))
    notes = remarks(t.results)
    if notes:
        console.print(Text("Notes", style="bold"))
        _lines(console, notes)
    if t.conventions:
        console.print(Text("Conventions", style="bold"))
        _lines(console, t.conventions)
    console.print(Hanging(target_line(t)))


def derivation_line(t: TargetCheck) -> Text:
    """--impl: the user's value against derivkit's derived form, per derivative."""
    t = visible_data(t)
    seen: dict[tuple[str, str], float | None] = {}
    for r in t.results:
        seen.setdefault((r.wrt, r.kind), r.max_rel_error_vs_derived)
    parts = [f"{wrt} {fmt_num(err)}" for (wrt, _), err in seen.items()]
    return Text("Against derivkit's derivation (max relative error): ", style="bold") + \
        Text(", ".join(parts))


def target_line(t: TargetCheck) -> Text:
    t = visible_data(t)
    n = len(t.results)
    bad = sum(1 for r in t.results if not result_passed(r))
    if t.error is not None:
        return Text(f"✗ {t.target}: could not be checked.", style="bold red")
    if bad:
        who = "your implementation" if t.implementation else "the derived formula"
        return Text(f"✗ {bad} of {n} derivative check(s) FAILED: {who} and finite "
                    "differences disagree.", style="bold red")
    if not target_passed(t):
        return Text(f"✗ {t.target} did not pass.", style="bold red")
    if not n:
        return Text("No derivative was checked.", style="bold yellow")
    of = " of your implementation" if t.implementation else ""
    return Text(f"✓ All {n} derivative check(s){of} passed against finite differences.",
                style="bold green")


# ---------------------------------------------------------------------------- --all

def summary_table(report: CheckReport, omit: Collection[str] = ()) -> Table:
    """One row per checked derivative of every target (a recipe's name on its first row); the
    columns named in `omit` are left out (a narrow terminal, `SUMMARY_DROP`)."""
    report = visible_data(report)
    table = _table()
    columns: dict[str, dict[str, Any]] = {
               "recipe": dict(no_wrap=True, style="bold cyan"), "wrt": dict(no_wrap=True),
               "mode/method": dict(min_width=11),
               "max rel err": dict(justify="right", no_wrap=True),
               "rtol/atol": dict(justify="right", no_wrap=True), "verdict": dict(no_wrap=True)}
    shown = [name for name in columns if name not in omit]
    for name in shown:
        table.add_column(name, **columns[name])

    def row(*values: Any) -> None:
        cells = dict(zip(columns, values))
        table.add_row(*(cells[name] for name in shown))

    for t in report.targets:
        for k, r in enumerate(t.results):
            # without the mode column (a narrow terminal), the mode joins the derivative's name
            kind = r.kind if "mode/method" in shown else f"{r.kind}, {r.mode}"
            row(Text(t.target if k == 0 else ""), Text(f"{r.wrt} ({kind})"),
                Text(f"{r.mode}\n{method_label(r.method)}"), fmt_num(r.max_rel_error),
                f"{fmt_tol(r.rtol)}\n{fmt_tol(r.atol)}", _verdict(result_passed(r)))
        if t.error is not None:
            row(Text(t.target if not t.results else ""), Text("—"), Text("not checked"), "", "",
                Text(*ERROR))
        elif not t.results:
            row(Text(t.target), Text("—"), Text("nothing checked"), "", "",
                _verdict(target_passed(t)))
    return table


def render_report(console: Console, report: CheckReport, *, quiet: bool = False) -> None:
    """The summary table, every failure and the report line; with `quiet` only the failures
    and the report line."""
    report = visible_data(report)
    if not quiet:
        console.print(fitted(console, lambda omit: summary_table(report, omit), SUMMARY_DROP))
    for t in report.targets:
        if t.error is not None:
            console.print(Hanging(Text(f"✗ {t.target}: could not check: ", style="bold red")
                                  + Text(t.error, style="red")))
        for r in t.results:
            if not result_passed(r):
                render_failure(console, t, r)
        if not target_passed(t) and t.conventions:
            console.print(Text(f"Conventions of {t.target}", style="bold"))
            _lines(console, t.conventions)
    console.print(Hanging(report_line(report)))


def report_line(report: CheckReport) -> Text:
    n = len(report.targets)
    ok = sum(1 for t in report.targets if target_passed(t))
    seeds = sorted({t.seed for t in report.targets})
    dtypes = sorted({t.dtype for t in report.targets})
    where = f" (seed {', '.join(map(str, seeds))}; {', '.join(dtypes)})" if n else ""
    return Text(f"{'✓' if ok == n else '✗'} {ok}/{n} targets passed{where}",
                style="bold green" if ok == n else "bold red")


@contextmanager
def progress_callback(console: Console, total: int | None) -> Iterator[Callable[[str], None]]:
    """A transient progress bar; yields `callback(name)` to call before each recipe. Shows
    nothing unless `console` is an interactive terminal."""
    if not console.is_interactive:
        yield lambda name: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("checking", total=total)
        started = False

        def callback(name: str) -> None:
            nonlocal started
            if started:
                progress.advance(task)
            started = True
            progress.update(task, description=f"checking {visible(name)}")

        yield callback


__all__ = [
    "derivation_line",
    "entries_table",
    "fitted",
    "progress_callback",
    "render_diagnoses",
    "render_failure",
    "render_report",
    "render_target",
    "report_line",
    "results_table",
    "summary_table",
    "target_line",
]
