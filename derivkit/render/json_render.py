"""JSON for machines: plain data, no colour, no markup. Keys are stable; new keys may be added."""

from __future__ import annotations

from collections.abc import Iterable

from ..results import Derivation, Derivative, Form, RecipeSummary, Verification, with_lhs  # noqa: F401
from .json_doc import dumps, plain  # noqa: F401 - dumps: the CLI writes these documents with it


def recipes_data(summaries: Iterable[RecipeSummary]) -> dict:
    return {"recipes": [{"name": s.name, "summary": s.summary,
                         "inputs": {name: shape for name, shape in s.inputs},
                         "wrt": list(s.wrt), "path": s.path}
                        for s in summaries]}


def _verification(v: Verification) -> dict:
    return {"verified": bool(v.verified), "method": v.method, "sizes": plain(list(v.sizes)),
            "detail": v.detail}


def _form(f: Form | None) -> dict | None:
    if f is None:
        return None
    return {"text": f.text, "pretty": f.pretty, "latex": f.latex,
            "verification": _verification(f.verification)}


def equation_latex(d: Derivative) -> str:
    """The derivative as one LaTeX equation: the matrix form if obtained, else the index form."""
    return d.latex


def derivative_data(d: Derivative) -> dict:
    return {
        "wrt": d.wrt,
        "kind": d.kind,
        "index_form": d.index_form,
        "matrix_form": d.matrix_form,
        "latex": d.latex,
        "verified": d.verified,
        "verified_at": plain(list(d.verified_at)),
        "lhs": d.lhs,
        "lhs_latex": d.lhs_latex,
        "index_lhs": d.index_lhs_pretty,
        "index_lhs_latex": d.index_lhs_latex,
        "upstream": d.upstream,
        "shape": plain(list(d.shape)),
        "index": _form(d.index),
        "matrix": _form(d.matrix),
        "notes": list(d.notes),
    }


def derivation_data(r: Derivation) -> dict:
    return {
        "target": r.target,
        "summary": r.summary,
        "forward": r.forward,
        "intermediates": dict(r.intermediates),
        "forward_pretty": r.forward_pretty,
        "forward_latex": r.forward_latex,
        "output": r.output,
        "output_shape": r.output_shape_text,
        "inputs": [{"name": i.name, "shape": i.shape_text, "dims": plain(list(i.shape)),
                    "domain": i.domain} for i in r.inputs],
        "params": {name: plain(value) for name, value in r.params},
        "verified": r.verified,
        "derivatives": [derivative_data(d) for d in r.derivatives],
        "chain": [{"lhs": c.lhs, "name": c.name, "target": c.target, "kind": c.kind,
                   "shape": c.shape_text, "text": c.form.text, "name_text": c.name_text,
                   "pretty": c.form.pretty, "latex": c.form.latex,
                   "verified": c.form.verification.verified,
                   "verification": {"method": c.form.verification.method,
                                    "sizes": plain(list(c.form.verification.sizes)),
                                    "detail": c.form.verification.detail}} for c in r.chain],
        "conventions": list(r.conventions),
        "notes": list(r.notes),
        "references": list(r.references),
        "warnings": list(r.warnings),
        "elapsed_s": plain(r.elapsed_s),
    }
