"""`derivkit verify` output: Rich for people (user text shown through `render.text.visible`),
plain data for JSON. Reads a ClaimVerdict only."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from ..lang.shapes import fmt_size_list
from ..results import ClaimVerdict
from .rich_render import Hanging, _block, _bullet_grid
from .text import visible_data

VERDICT_STYLE = {"verified": ("✓ VERIFIED", "bold green"), "refuted": ("✗ REFUTED", "bold red"),
                 "not verified": ("? NOT VERIFIED", "bold yellow")}


def verdict_data(v: ClaimVerdict) -> dict:
    from .json_doc import json_float, plain

    ce = v.counterexample
    return {
        "target": v.target, "wrt": v.wrt, "claim": v.claim, "form": v.form, "reading": v.reading,
        "verdict": v.verdict, "verified": v.verified, "reason": v.reason, "method": v.method,
        "sizes": plain(list(v.sizes)), "numeric": v.numeric,
        "counterexample": None if ce is None else {
            "sizes": plain(ce.sizes), "values": plain(ce.values), "entry": list(ce.entry),
            "entry_text": ce.entry_text, "claimed": json_float(ce.claimed), "true": json_float(ce.true)},
        "derived": v.derived, "derived_pretty": v.derived_pretty, "notes": list(v.notes),
        "seconds": round(v.seconds, 4)}


def render_verdict(console: Console, v: ClaimVerdict) -> None:
    v = visible_data(v)   # the claim and names are user text: show control characters visibly
    label, style = VERDICT_STYLE.get(v.verdict, (v.verdict.upper(), "bold"))
    head = Text(f"{label}  ", style=style)
    head.append(f"{v.target}: ∂/∂{v.wrt}", style="bold cyan")
    console.print(head)
    _block(console, Text("claim    ", style="dim") + Text(v.claim), indent=2)
    _block(console, Text("read as  ", style="dim") + Text(v.reading), indent=2)
    if v.derived_pretty:
        _block(console, Text("derivkit ", style="dim") + Text(v.derived_pretty), indent=2)
    console.print()
    _sentence(console, Text(v.reason, style=style.replace("bold ", "")))
    if v.numeric:
        _sentence(console, Text(v.numeric, style="green" if v.verified else ""))
    ce = v.counterexample
    if ce is not None:
        console.print()
        console.print(Text("  Counterexample", style="bold"))
        _block(console, Text(f"sizes    {fmt_size_list([ce.sizes]) or 'as declared'}"))
        for name, value in ce.values.items():
            _block(console, Text(f"{name:<8} {_array(value)}"))
        _block(console, Text(f"entry    {ce.entry_text}"))
        _block(console, Text(f"claimed  {_num(ce.claimed)}", style="red"))
        _block(console, Text(f"true     {_num(ce.true)}", style="green"))
    if v.notes:
        console.print()
        console.print(Text("  Notes", style="bold"))
        console.print(_bullet_grid(v.notes, indent=4))


def _sentence(console: Console, text: Text) -> None:
    """A sentence wraps at word boundaries with a hanging indent; one that embeds a multi-line
    formula is printed as it is (wrapping would break the formula's lines apart)."""
    if "\n" in text.plain:
        _block(console, text, indent=2)
    else:
        console.print(Hanging(text, indent=2))


def _array(value: object) -> str:
    if isinstance(value, list):
        if value and isinstance(value[0], list):
            return "[" + ", ".join(_array(row) for row in value) + "]"
        return "[" + ", ".join(_num(x) for x in value) + "]"
    return _num(value) if isinstance(value, float) else str(value)


def _num(x: float) -> str:
    return "nan" if x != x else f"{x:.6g}"
