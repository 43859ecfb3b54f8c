"""JSON for `derivkit check`: one document on stdout, plain data, stable keys (new keys may be
added; existing ones keep their meaning).

Numbers that JSON cannot hold are written as `render.json_doc` writes them everywhere
("Infinity", "-Infinity", "NaN").

Also home of the small helpers the check renderers share (verdicts, number formatting); like the
other renderers it only reads `derivkit.results` and imports neither SymPy nor NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..markup.html import fmt_num
from ..results import CheckReport, CheckResult, Diagnosis, TargetCheck, WorstEntry
from .json_doc import NAN, NONFINITE, dumps, json_float  # noqa: F401 - shared with the check renderers

# ---------------------------------------------------------------------------- verdicts

def result_passed(r: CheckResult) -> bool:
    return bool(r.passed)


def within_tolerance(r: CheckResult) -> bool:
    """The compared values agreed, though the result may have failed for another reason (a
    user's implementation that modified its inputs in place)."""
    return bool(r.passed) or (bool(r.worst) and math.isfinite(float(r.max_abs_error))
                              and float(r.worst[0].abs_error) <= float(r.worst[0].tolerance))


def target_passed(t: TargetCheck) -> bool:
    """A target passes only if the engine says so, nothing went wrong loading or checking it,
    and every one of its results passed."""
    return bool(t.passed) and t.error is None and all(result_passed(r) for r in t.results)


def report_passed(report: CheckReport) -> bool:
    return bool(report.passed) and all(target_passed(t) for t in report.targets)


def wrong_shape(r: CheckResult) -> tuple[str, str] | None:
    """("yours (3, 5)", "expected (5, 3)") of a --impl result diagnosed "wrong shape"."""
    for d in r.diagnoses:
        if d.name == "wrong shape" and ", " in d.detail:
            yours, _, expected = d.detail.partition("), ")
            return yours + ")", expected
    return None


# ---------------------------------------------------------------------------- numbers

def fmt_index(index: Iterable[int]) -> str:
    """(2, 3) -> '[2, 3]'; () -> '[]' (a scalar)."""
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


# ---------------------------------------------------------------------------- data

def _ints(values: Iterable[int]) -> list[int]:
    return [int(v) for v in values]


def entry_data(e: WorstEntry) -> dict:
    return {"index": _ints(e.index), "derived": json_float(e.derived),
            "numeric": json_float(e.numeric), "abs_error": json_float(e.abs_error),
            "tolerance": json_float(e.tolerance)}


def diagnosis_data(d: Diagnosis) -> dict:
    return {"name": d.name, "detail": d.detail}


def result_data(r: CheckResult) -> dict:
    return {
        "wrt": r.wrt,
        "kind": r.kind,
        "shape": _ints(r.shape),
        "mode": r.mode,
        "method": r.method,
        "step": json_float(r.step),
        "fd_error_estimate": json_float(r.fd_error_estimate),
        "max_abs_error": json_float(r.max_abs_error),
        "max_rel_error": json_float(r.max_rel_error),
        "rtol": json_float(r.rtol),
        "atol": json_float(r.atol),
        "n_evals": int(r.n_evals),
        "passed": result_passed(r),
        "worst": [entry_data(e) for e in r.worst],
        "directions": int(r.directions),
        "localised": [entry_data(e) for e in r.localised],
        "detection": r.detection,
        "seconds": json_float(r.seconds),
        "notes": list(r.notes),
        "diagnoses": [diagnosis_data(d) for d in r.diagnoses],
        "max_rel_error_vs_derived": json_float(r.max_rel_error_vs_derived),
    }


def target_data(t: TargetCheck) -> dict:
    return {
        "target": t.target,
        "passed": target_passed(t),
        "seed": int(t.seed),
        "dtype": t.dtype,
        "sizes": {str(k): int(v) for k, v in dict(t.sizes or {}).items()},
        "results": [result_data(r) for r in t.results],
        "conventions": list(t.conventions),
        "error": t.error,
        "seconds": json_float(t.seconds),
        "implementation": t.implementation,
    }


def report_data(report: CheckReport) -> dict:
    targets = [target_data(t) for t in report.targets]
    return {
        "passed": report_passed(report),
        "n_targets": len(targets),
        "n_passed": sum(1 for t in targets if t["passed"]),
        "targets": targets,
        "seconds": json_float(report.seconds),
    }


__all__ = [
    "diagnosis_data",
    "dumps",
    "entry_data",
    "fmt_index",
    "fmt_num",
    "json_float",
    "report_data",
    "report_passed",
    "result_data",
    "result_passed",
    "target_data",
    "target_passed",
    "within_tolerance",
]
