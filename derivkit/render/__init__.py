"""Renderers: one per audience. `rich_render` prints for people, `json_render` for machines.

Both only read the frozen dataclasses of `derivkit.results`; neither imports SymPy or NumPy.
"""

from __future__ import annotations

#: Values of `derivkit derive --form`. None (no --form) shows the index and matrix forms.
FORMS = ("index", "matrix", "latex", "all")


def form_selection(form: str | None) -> tuple[frozenset[str], frozenset[str]]:
    """Which forms (index, matrix) and which notations (pretty, latex) a --form value shows."""
    both = frozenset({"index", "matrix"})
    table = {
        None: (both, frozenset({"pretty"})),
        "index": (frozenset({"index"}), frozenset({"pretty"})),
        "matrix": (frozenset({"matrix"}), frozenset({"pretty"})),
        "latex": (both, frozenset({"latex"})),
        "all": (both, frozenset({"pretty", "latex"})),
    }
    if form not in table:
        raise ValueError(f"unknown form {form!r}; expected one of {', '.join(FORMS)}")
    return table[form]
