"""`derivkit check --format github`: GitHub Actions workflow commands for a CI log.

One `::error title=derivkit check RECIPE::message` line per failed derivative check (or per
target that could not be checked), which GitHub shows as an annotation on the run, then the
summary line as plain text. A passing run prints only the summary line. Reads only results.

Escaping follows GitHub's runner (`toolkit/packages/core/src/command.ts`): in the message `%`,
CR and LF are written `%25`, `%0D`, `%0A`; in a property value (the title) also `:` and `,`
(`%3A`, `%2C`). User text (recipe names, error messages) first passes through
`render.text.visible`, so no control character reaches the log; and since every annotation is
one line that begins with `::error`, text from a recipe file cannot start a workflow command of
its own (nothing it contains can begin a line).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..lang.shapes import fmt_sizes
from ..results import CheckReport, CheckResult, TargetCheck
from .check_json import fmt_num, result_passed, target_passed, within_tolerance, wrong_shape
from .text import visible_data


def escape_data(text: str) -> str:
    """A workflow command's message: %, CR and LF escaped."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: as a message, and `:` and `,` escaped too."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error_command(title: str, message: str) -> str:
    return f"::error title={escape_property(title)}::{escape_data(message)}"


def _tol(value: float | None) -> str:
    return fmt_num(value, 1)


def _result_message(t: TargetCheck, r: CheckResult) -> str:
    whose = f"your ∂/∂{r.wrt}" if t.implementation else f"∂/∂{r.wrt}"
    how = ("matches finite differences but fails" if within_tolerance(r)
           else "does not match finite differences")
    where = f" at {fmt_sizes(t.sizes)}" if t.sizes else ""
    worst = ""
    if r.worst and not within_tolerance(r):
        e = r.worst[0]
        label = "direction" if r.mode == "directional" else "entry"
        worst = (f"; worst {label} {list(e.index)}: derived {fmt_num(e.derived, 6)}, numeric "
                 f"{fmt_num(e.numeric, 6)}")
    diagnoses = "".join(f"; diagnosis: {d.name}" for d in r.diagnoses)
    shapes = wrong_shape(r)
    if shapes:   # the shapes say it all; the errors are inf and the tolerances nan
        return f"{whose} ({r.kind}, {r.mode}) has the wrong shape: {', '.join(shapes)}{where}{diagnoses}"
    return (f"{whose} ({r.kind}, {r.mode}) {how}: max relative error {fmt_num(r.max_rel_error)}, "
            f"max absolute error {fmt_num(r.max_abs_error)}, tolerance rtol {_tol(r.rtol)}, atol "
            f"{_tol(r.atol)}{where} (seed {t.seed}, {t.dtype}){worst}{diagnoses}")


def target_annotations(t: TargetCheck) -> Iterator[str]:
    """The `::error` lines of one target: one per failed result, or one if it could not be
    checked or failed without a failed result."""
    t = visible_data(t)
    title = f"derivkit check {t.target}"
    if t.error is not None:
        yield error_command(title, f"{t.target} could not be checked: {t.error}")
    failed = [r for r in t.results if not result_passed(r)]
    for r in failed:
        yield error_command(title, _result_message(t, r))
    if t.error is None and not failed and not target_passed(t):
        yield error_command(title, f"{t.target} did not pass")


def summary(outcome: TargetCheck | CheckReport) -> str:
    """The one plain summary line."""
    if isinstance(outcome, CheckReport):
        n = len(outcome.targets)
        ok = sum(1 for t in outcome.targets if target_passed(t))
        return f"{'✓' if ok == n and n else '✗'} derivkit check: {ok}/{n} targets passed"
    t = visible_data(outcome)
    n = len(t.results)
    bad = sum(1 for r in t.results if not result_passed(r))
    if target_passed(t):
        return f"✓ derivkit check {t.target}: all {n} derivative check(s) passed"
    if t.error is not None:
        return f"✗ derivkit check {t.target}: could not be checked"
    return f"✗ derivkit check {t.target}: {bad} of {n} derivative check(s) failed"


def github_lines(outcome: TargetCheck | CheckReport) -> list[str]:
    """Every line of `--format github`: the annotations of failures, then the summary."""
    targets = outcome.targets if isinstance(outcome, CheckReport) else (outcome,)
    lines = [line for t in targets for line in target_annotations(t)]
    lines.append(summary(outcome))
    return lines


__all__ = ["error_command", "escape_data", "escape_property", "github_lines",
           "target_annotations"]
