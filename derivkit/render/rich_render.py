"""Rich output for people. Every piece of data is printed as `Text`, never as markup, so a
formula such as `X[i,j]` is shown as written, and every result passes through
`render.text.visible_data` first, so control characters and escape sequences in user text (a
recipe's summary, notes, file paths) are shown as visible escapes (`\\x1b`), never obeyed by the
terminal. Colour follows the terminal: none when stdout is
not a terminal, none when NO_COLOR is set (Rich decides; nothing here forces it)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any, cast

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from ..lang.shapes import fmt_shape, fmt_size_list
from ..results import Derivation, Derivative, Form, RecipeSummary, Verification
from . import form_selection
from .json_render import equation_latex, with_lhs
from .text import visible_data

KIND_LABELS = {
    "jacobian": "Jacobian",
    "vjp": "vector-Jacobian product (backprop)",
    "gradient": "gradient",
}
METHOD_WORDS = {"symbolic": "symbolically", "numeric": "numerically (40-digit arithmetic)"}


def make_console(*, stderr: bool = False) -> Console:
    """A console for people. When stdout is not a terminal (a pipe, a file, a CI log) the lines
    it writes end without the spaces Rich pads tables and paragraphs with."""
    if stderr or _isatty(sys.stdout):
        return Console(stderr=stderr, highlight=False)
    return Console(file=cast(IO[str], NoTrailingSpace(sys.stdout)), highlight=False)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


_TRAILING = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)\Z")
_PENDING = re.compile(r"(?:[ \t]|\x1b\[[0-9;]*m)*\Z")


class NoTrailingSpace:
    """A text stream that writes every line to `stream` without the spaces and tabs that end it
    (before any closing colour codes). A line's end is held back until it is known to be one."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        data = self._pending + text
        head, newline, tail = data.rpartition("\n")
        if newline:
            lines = head.split("\n")
            self.stream.write("\n".join(_strip_end(line) for line in lines) + "\n")
            data = tail
        cut = _PENDING.search(data)
        keep = cut.start() if cut else len(data)
        if keep:
            self.stream.write(data[:keep])
        self._pending = data[keep:]
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:   # encoding, fileno, ...: the stream's
        return getattr(self.stream, name)


def _strip_end(line: str) -> str:
    while True:
        stripped = _TRAILING.sub(r"\1", line)
        if stripped == line:
            return line
        line = stripped


# ---------------------------------------------------------------------------- wrapping

class Hanging:
    """Text wrapped at word boundaries to the width it is given, its first line indented by
    `indent` and the lines after it by `indent + hang` (a hanging indent). A word longer than a
    line is the only thing ever broken. Each line of a multi-line text is wrapped alike."""

    def __init__(self, text: Text | str, indent: int = 0, hang: int = 2) -> None:
        self.text = text if isinstance(text, Text) else Text(text)
        self.indent = indent
        self.hang = hang

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        width = options.max_width
        first = max(1, width - self.indent)
        rest = max(1, width - self.indent - self.hang)
        for paragraph in self.text.split("\n", allow_blank=True):
            for k, (start, end) in enumerate(wrap_spans(paragraph.plain, first, rest)):
                pad = self.indent + (self.hang if k else 0)
                line = Text(" " * pad, end="\n", no_wrap=True, overflow="ignore")
                line.append_text(paragraph[start:end])
                line.rstrip()
                yield line


def wrap_spans(plain: str, first: int, rest: int) -> list[tuple[int, int]]:
    """Where `plain` breaks into lines of at most `first` (then `rest`) cells, at spaces; a word
    longer than a line is cut. -> [(start, end)] of each line, its leading spaces dropped
    (except the text's own at the start of the first line)."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    end = used = 0
    width = first
    for match in re.finditer(r"\S+", plain):
        ws, we = match.span()
        if start is None:
            start, end = (0 if not spans else ws), we
            used = cell_len(plain[start:end])
        elif used + cell_len(plain[end:we]) <= width:
            used += cell_len(plain[end:we])
            end = we
        else:
            spans.append((start, end))
            width = rest
            start, end, used = ws, we, cell_len(plain[ws:we])
        while used > width and end - start > 1:    # a word longer than the line
            cut, fill = start, 0
            while cut < end and fill + cell_len(plain[cut]) <= width:
                fill += cell_len(plain[cut])
                cut += 1
            cut = max(cut, start + 1)
            spans.append((start, cut))
            width = rest
            start, used = cut, cell_len(plain[cut:end])
    if start is not None:
        spans.append((start, end))
    return spans or [(0, 0)]


# ---------------------------------------------------------------------------- recipes

def render_recipes(console: Console, summaries: Iterable[RecipeSummary]) -> None:
    shown = visible_data(list(summaries))
    if not shown:
        console.print(Text("no recipes found"))
        return
    table = Table(title=None, show_lines=False, header_style="bold")
    table.add_column("name", no_wrap=True, style="bold cyan")
    wide = console.width >= 64                       # narrower: name and summary only
    table.add_column("summary", min_width=20 if wide else None)   # the room, wrapped
    if wide:
        table.add_column("inputs", no_wrap=True)
        table.add_column("wrt", max_width=16)         # a long list wraps at its commas
    for s in shown:
        inputs = "\n".join(f"{name}: {shape}" for name, shape in s.inputs)
        cells = [Text(s.name), Text(s.summary), Text(inputs), Text(", ".join(s.wrt))]
        table.add_row(*(cells if wide else cells[:2]))
    console.print(table)
    console.print(Text(f"{len(shown)} recipe(s). Derive one with: derivkit derive NAME",
                       style="dim"))


# ---------------------------------------------------------------------------- derivation

def equation(lhs: str | None, rhs: str) -> str:
    """`lhs = rhs`, with `lhs = ` on the middle line when `rhs` is a multi-line pretty form;
    `rhs` as is when it already is an equation for `lhs`."""
    lines = rhs.split("\n")
    if not lhs or any(line.lstrip().startswith(f"{lhs} =") for line in lines):
        return rhs
    if len(lines) == 1:
        return f"{lhs} = {rhs}"
    mid = (len(lines) - 1) // 2
    prefix = f"{lhs} = "
    pad = " " * len(prefix)
    return "\n".join((prefix if k == mid else pad) + line for k, line in enumerate(lines))


def verification_text(v: Verification) -> Text:
    """A green tick only for a confirmed form; anything else is loudly NOT VERIFIED."""
    v = visible_data(v)
    if v.verified:
        line = Text("✓ ", style="bold green")
        if v.detail:            # the engine's own sentence, e.g. "verified symbolically at n = 2, 3"
            line.append(v.detail, style="green")
            return line
        line.append(f"verified {METHOD_WORDS.get(v.method, v.method)}", style="green")
        where = fmt_size_list(v.sizes)
        if where:
            line.append(f" at {where}", style="green")
        return line
    detail = v.detail.strip()
    if detail.upper().startswith("NOT VERIFIED"):
        detail = detail[len("NOT VERIFIED"):].lstrip(" :")
    line = Text("✗ NOT VERIFIED", style="bold red")
    line.append(f": {detail or 'this form could not be confirmed'}",
                style="red")
    line.append(" (do not rely on it)", style="red")
    return line


def _block(console: Console, text: str | Text, indent: int = 4) -> None:
    """Print a formula as is: indented, never wrapped or cropped, no trailing padding."""
    body = text if isinstance(text, Text) else Text(text)
    pad = " " * indent
    lines = body.split("\n", allow_blank=True)
    out = Text("\n").join(Text(pad) + line for line in lines)
    console.print(out, soft_wrap=True)


def _render_form(console: Console, title: str, lhs: str | None, lhs_latex: str | None,
                 form: Form, notations: frozenset[str]) -> None:
    console.print(Text(f"  {title}", style="bold"))
    if "pretty" in notations:
        _block(console, equation(lhs, form.pretty))
    if "latex" in notations:
        _block(console, Text("LaTeX: ", style="dim") + Text(with_lhs(lhs_latex, form.latex)))
    console.print(Hanging(verification_text(form.verification), indent=4, hang=2))


def render_derivative(console: Console, d: Derivative, derivation: Derivation,
                      form: str | None = None) -> None:
    forms, notations = form_selection(form)
    d, derivation = visible_data(d), visible_data(derivation)
    head = Text(d.lhs_pretty, style="bold magenta")
    head.append(f"  {KIND_LABELS.get(d.kind, d.kind)}", style="bold")
    if d.shape:
        head.append(f", shape {fmt_shape(tuple(d.shape))}")
    console.print(Rule(head, align="left"))
    if d.kind == "vjp" and d.upstream:
        console.print(Hanging(Text(f"given the upstream gradient {d.upstream} = "
                                   f"∂L/∂{derivation.output} (same shape as {derivation.output})",
                                   style="dim"), indent=2))
    if "index" in forms:
        if d.index is None:
            console.print(Text("  index form: not obtained", style="bold yellow"))
        else:
            _render_form(console, "index form", d.index_lhs_pretty, d.index_lhs_latex, d.index,
                         notations)
    if "matrix" in forms:
        if d.matrix is None:
            console.print(Text("  matrix form", style="bold"))
            _block(console, Text("no closed matrix form obtained; see the index form",
                                 style="yellow"))
        else:
            _render_form(console, "matrix form", d.lhs_pretty, d.lhs_latex, d.matrix, notations)
    if d.notes:
        console.print(_bullet_grid(d.notes))


def _bullets(console: Console, title: str, items: Iterable[str]) -> None:
    items = list(items)
    if not items:
        return
    console.print(Text(title, style="bold"))
    console.print(_bullet_grid(items))


def _bullet_grid(items: Iterable[str], indent: int = 2) -> Table:
    """Bullets whose wrapped lines hang under the text, not under the bullet."""
    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for item in visible_data(list(items)):
        grid.add_row(" " * indent + "•", Text(item))
    return grid


def render_derivation(console: Console, r: Derivation, form: str | None = None) -> None:
    r = visible_data(r)
    title = Text(r.target, style="bold cyan")
    if r.summary:
        title.append(f": {r.summary}")
    console.print(Hanging(title))
    _block(console, equation(r.output, r.forward_pretty), indent=2)
    console.print()
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim", no_wrap=True)
    facts.add_column()
    for spec in r.inputs:
        domain = "" if spec.domain == "real" else f"  ({spec.domain})"
        facts.add_row("input", Text(f"{spec.name} : {spec.shape_text}{domain}"))
    for name, value in r.params:
        facts.add_row("parameter", Text(f"{name} = {value:g}" if isinstance(value, float)
                                        else f"{name} = {value}"))
    facts.add_row("output", Text(f"{r.output} : {r.output_shape_text}"))
    console.print(Padding(facts, (0, 0, 0, 2), expand=False))
    console.print()
    if r.chain:
        render_chain(console, r, form)
        console.print()
    for d in r.derivatives:
        render_derivative(console, d, r, form)
        console.print()
    for warning in r.warnings:
        console.print(Hanging(Text("warning: ", style="bold yellow") + Text(warning, style="yellow")))
    _bullets(console, "Conventions", r.conventions)
    _bullets(console, "Notes", r.notes)
    _bullets(console, "References", r.references)
    if r.warnings or r.conventions or r.notes or r.references:
        console.print()
    console.print(Hanging(summary_line(r)))


def render_chain(console: Console, r: Derivation, form: str | None = None) -> None:
    """A composite's backward pass, one verified line per Δ or gradient, with its shape."""
    r = visible_data(r)
    console.print(Rule(Text("Backward pass (Δ = ∂L/∂·, each through the next)", style="bold"),
                       align="left", style="dim"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(no_wrap=True)
    for step in r.chain:
        ok = step.form.verification.verified
        mark = Text("✓", style="green") if ok else Text("✗ NOT VERIFIED", style="bold red")
        text = step.form.latex if form == "latex" else f"{step.lhs} = {step.form.pretty}"
        grid.add_row(Text(text), Text(step.shape_text), mark)
    console.print(Padding(grid, (0, 0, 0, 2), expand=False))
    for detail in r.chain_verification():
        console.print(Hanging(Text(detail, style="dim"), indent=2))


def summary_line(r: Derivation) -> Text:
    r = visible_data(r)
    forms = [f for d in r.derivatives for f in (d.index, d.matrix) if f is not None]
    forms += [c.form for c in r.chain]
    bad = [f for f in forms if not f.verification.verified]
    if not r.derivatives:
        return Text("No derivative was derived.", style="bold yellow")
    if bad:
        return Text(f"✗ {len(bad)} of {len(forms)} form(s) NOT VERIFIED: treat them as "
                    "unconfirmed, not as facts.", style="bold red")
    if not r.verified:
        return Text("✗ NOT VERIFIED: a derivative has no form that could be confirmed.",
                    style="bold red")
    symbolic = sum(f.verification.method in ("symbolic", "numeric") for f in forms)
    also = ("" if not symbolic else "; all of them also element-wise symbolically"
            if symbolic == len(forms) else f"; {symbolic} also element-wise symbolically")
    return Text(f"✓ All {len(forms)} form(s) verified against the forward differentiated "
                f"numerically at 60 digits{also}.", style="bold green")


__all__ = [
    "Hanging",
    "NoTrailingSpace",
    "equation",
    "equation_latex",
    "make_console",
    "render_derivation",
    "render_derivative",
    "render_recipes",
    "summary_line",
    "verification_text",
    "wrap_spans",
]
