"""Confirm a derived form against finite differences, when element-wise symbolic verification
is too large (deep compositions such as a 3-layer network): the full check (every entry, complex
step or central differences with Richardson) at several size assignments, distinct per
dimension."""

from __future__ import annotations

from types import SimpleNamespace

from ..recipes import Recipe
from ..derive.verify import fmt_sizes
from ..results import Verification


def confirm_numerically(recipe: Recipe, wrt: str, kind: str, text: str,
                        assignments: list[dict[str, int]], reason: str) -> Verification:
    from .runner import check

    fake = SimpleNamespace(derivatives=(SimpleNamespace(wrt=wrt, kind=kind, matrix=SimpleNamespace(
        text=text)),), conventions=())
    from dataclasses import replace

    single = replace(recipe, wrt=(wrt,))
    worst, method, done = 0.0, "", []
    for k, sizes in enumerate(assignments):
        tc = check(single, mode="full", sizes=sizes, seed=k, derivation=fake)
        for r in tc.results:
            if not r.passed:
                e = r.worst[0] if r.worst else None
                where = f" at {list(e.index)}: derived {e.derived:.6g}, numeric {e.numeric:.6g}" if e else ""
                return Verification(False, "none", tuple(done + [sizes]),
                                    f"NOT VERIFIED: disagrees with finite differences at "
                                    f"{fmt_sizes(sizes)}{where} ({reason})")
            worst = max(worst, r.max_rel_error)
            method = r.method
        done.append(sizes)
    dims = list(assignments[0])
    at = (", ".join(f"{d} = {assignments[0][d]}" for d in dims) if len(assignments) == 1 else
          f"({', '.join(dims)}) = " + ", ".join("(" + ", ".join(str(a[d]) for d in dims) + ")"
                                              for a in assignments))
    return Verification(True, "finite-differences", tuple(done),
                        f"verified numerically against finite differences ({method}, every entry, "
                        f"max relative error {worst:.1e}) at {at}; {reason}")

