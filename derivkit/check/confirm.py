"""Confirm derived forms against finite differences where element-wise symbolic verification is
too large (deep compositions such as a 3-layer network): the engine marks such a form
`PENDING`, and `confirm` runs the full check (every entry, complex step or central differences
with Richardson) at several size assignments, distinct per dimension."""

from __future__ import annotations

import time
from dataclasses import replace

from ..derive.engine import derive
from ..lang.recipes import Recipe
from ..lang.shapes import DECLARED, fmt_size_list, fmt_sizes
from ..results import PENDING, Derivation, Derivative, Verification
from .runner import check


def derive_confirmed(recipe: Recipe) -> Derivation:
    """`derive(recipe)` with every pending form confirmed numerically."""
    return confirm(recipe, derive(recipe))


def confirm(recipe: Recipe, derivation: Derivation) -> Derivation:
    """`derivation` with every form whose verification is `PENDING` checked numerically."""
    if not any(_pending(dv) for dv in derivation.derivatives):
        return derivation
    started = time.perf_counter()
    derivatives = tuple(_confirmed(recipe, derivation, dv) if _pending(dv) else dv
                        for dv in derivation.derivatives)
    return replace(derivation, derivatives=derivatives,
                   elapsed_s=derivation.elapsed_s + time.perf_counter() - started)


def _pending(dv: Derivative) -> bool:
    return dv.matrix is not None and dv.matrix.verification.method == PENDING


def _confirmed(recipe: Recipe, derivation: Derivation, dv: Derivative) -> Derivative:
    assert dv.matrix is not None
    return replace(dv, matrix=replace(dv.matrix, verification=_confirm_form(recipe, derivation, dv)))


def _confirm_form(recipe: Recipe, derivation: Derivation, dv: Derivative) -> Verification:
    assert dv.matrix is not None
    pending = dv.matrix.verification
    assignments, reason = list(pending.sizes), pending.detail
    single = replace(recipe, wrt=(dv.wrt,))
    alone = replace(derivation, derivatives=(dv,), conventions=(), warnings=())
    worst, method = 0.0, ""
    done: list[dict[str, int]] = []
    for k, sizes in enumerate(assignments):
        tc = check(single, mode="full", sizes=sizes, seed=k, derivation=alone)
        for r in tc.results:
            if not r.passed:
                e = r.worst[0] if r.worst else None
                where = f" at {list(e.index)}: derived {e.derived:.6g}, numeric {e.numeric:.6g}" if e else ""
                return Verification(False, "none", tuple(done + [sizes]),
                                    f"NOT VERIFIED: disagrees with finite differences at "
                                    f"{fmt_sizes(sizes, spaced=True, empty=DECLARED)}{where} ({reason})")
            worst = max(worst, r.max_rel_error)
            method = r.method
        done.append(sizes)
    at = (fmt_sizes(assignments[0], spaced=True) if len(assignments) == 1 else
          fmt_size_list(assignments))
    return Verification(True, "finite-differences", tuple(done),
                        f"verified numerically against finite differences ({method}, every entry, "
                        f"max relative error {worst:.1e}) at {at}; {reason}")
