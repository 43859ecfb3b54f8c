"""Renderers: one per audience. `rich_render` prints for people, `json_render` for machines.

Both only read the frozen dataclasses of `derivkit.results`; neither imports SymPy or NumPy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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


def format_sizes(sizes: Iterable[Mapping[str, object]] | None) -> str:
    """[{'n': 2}, {'n': 3}] -> 'n = 2, 3'; [{'m': 2, 'n': 3}, {'m': 3, 'n': 4}] ->
    '(m, n) = (2, 3), (3, 4)'; [] -> ''."""
    sizes = [dict(s) for s in sizes or ()]
    if not sizes:
        return ""
    keys = list(sizes[0])
    if all(list(s) == keys for s in sizes):
        if len(keys) == 1:
            return f"{keys[0]} = " + ", ".join(str(s[keys[0]]) for s in sizes)
        if keys:
            head = "(" + ", ".join(keys) + ")"
            return head + " = " + ", ".join("(" + ", ".join(str(s[k]) for k in keys) + ")"
                                            for s in sizes)
        return ""
    return "; ".join(", ".join(f"{k}={v}" for k, v in s.items()) for s in sizes)
