"""JUnit XML for CI systems (GitHub Actions, GitLab, Jenkins read it as test results).

One `<testsuite>` per target and one `<testcase classname="derivkit.<target>"
name="<wrt> <kind> <mode>">` per checked derivative (full and directional checks of one input are
two test cases with different names, never merged by a CI reporter). A failed check carries
`<failure message=...>` with the worst entries (and, for a user's implementation checked with
--impl, the mistakes diagnosed); a target that could not be checked (`TargetCheck.error`) is a
testcase `name="check"` with `<error>`. Seed, dtype and sizes are `<properties>`, so a failure can
be reproduced.

Built with `xml.etree.ElementTree` (which escapes text and attributes). Every string of the
results goes through `render.text.visible` first, as on a terminal: control characters, escape
sequences and bidi overrides in user text (a recipe file's name, an error quoting it) are written
as visible escapes (`\\x1b`, `\\u202e`), so a CI page cannot be made to show a forged line; a lone
surrogate (an undecodable file name) becomes U+FFFD, and so does anything else XML 1.0 cannot
hold (`xml_text`), so the document always parses.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ..lang.shapes import fmt_sizes
from ..results import CheckReport, CheckResult, TargetCheck
from .check_json import fmt_index, fmt_num, result_passed, target_passed, within_tolerance
from .text import visible, visible_data

_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _visible_xml(text: str, *, multiline: bool = False) -> str:
    """`visible` for a JUnit report: an undecodable file name's lone surrogate is U+FFFD."""
    return visible(_SURROGATE.sub("\ufffd", text), multiline=multiline)


def xml_text(value: object) -> str:
    """Any value as text XML 1.0 can hold."""
    return _NOT_XML.sub("\ufffd", str(value))


def _el(parent: ET.Element | None, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    clean = {k: xml_text(v) for k, v in attrs.items() if v is not None}
    el = ET.Element(tag, clean) if parent is None else ET.SubElement(parent, tag, clean)
    if text is not None:
        el.text = xml_text(text)
    return el


def _secs(value: float) -> str:
    try:
        return f"{max(float(value), 0.0):.3f}"
    except (TypeError, ValueError):
        return "0.000"


def failure_message(r: CheckResult) -> str:
    """One line, e.g. 'W vjp does not match finite differences: max relative error 1.00e-03, max
    absolute error 5.00e-04 (tolerance rtol 3.55e-15, atol 1.00e-12; full check, complex-step)'."""
    diagnosed = f"; diagnosis: {', '.join(d.name for d in r.diagnoses)}" if r.diagnoses else ""
    how = ("matches finite differences but fails" if within_tolerance(r) else
           "does not match finite differences")
    return (f"{r.wrt} {r.kind} {how}: max relative error "
            f"{fmt_num(r.max_rel_error)}, max absolute error {fmt_num(r.max_abs_error)} (tolerance "
            f"rtol {fmt_num(r.rtol)}, atol {fmt_num(r.atol)}; {r.mode} check, {r.method})"
            f"{diagnosed}")


def failure_detail(r: CheckResult, t: TargetCheck) -> str:
    """The body of a <failure>: worst entries, localised entries, detection power, notes."""
    lines = [failure_message(r),
             f"seed {t.seed}, dtype {t.dtype}" + (f", sizes {fmt_sizes(t.sizes)}" if t.sizes else ""),
             f"step {fmt_num(r.step)}, {r.n_evals} forward evaluations"]
    if t.implementation:
        lines.append(f"implementation {t.implementation}"
                     + ("" if r.max_rel_error_vs_derived is None else
                        f": max relative error against derivkit's derivation "
                        f"{fmt_num(r.max_rel_error_vs_derived)}"))
    lines += [f"diagnosis: {d.name}: {d.detail}" for d in r.diagnoses]
    for title, entries in (("worst entries (index: derived vs numeric, |error|, tolerance)",
                            r.worst),
                           ("localised to Jacobian entries (output index, input index)",
                            r.localised)):
        if entries:
            lines.append(title + ":")
            lines += [f"  {fmt_index(e.index)}: {fmt_num(e.derived, 6)} vs {fmt_num(e.numeric, 6)}, "
                      f"|error| {fmt_num(e.abs_error)}"
                      + ("" if math.isnan(float(e.tolerance)) else f", tolerance {fmt_num(e.tolerance)}")
                      for e in entries]
    if r.detection:
        lines.append(r.detection)
    lines += list(r.notes)
    return "\n".join(lines)


def _testcase(suite: ET.Element, t: TargetCheck, r: CheckResult) -> bool:
    case = _el(suite, "testcase", classname=f"derivkit.{t.target}", name=f"{r.wrt} {r.kind} {r.mode}",
               time=_secs(r.seconds))
    if result_passed(r):
        _el(case, "system-out", f"{r.mode} check, {r.method}: max relative error "
                                f"{fmt_num(r.max_rel_error)} (rtol {fmt_num(r.rtol)}, atol "
                                f"{fmt_num(r.atol)})")
        return True
    _el(case, "failure", failure_detail(r, t), message=failure_message(r), type="CheckFailed")
    return False


def target_suite(t: TargetCheck) -> tuple[ET.Element, int, int, int]:
    """(<testsuite>, tests, failures, errors) for one target."""
    t = visible_data(t, clean=_visible_xml)
    suite = _el(None, "testsuite", name=f"derivkit.{t.target}")
    props = _el(suite, "properties")
    for name, value in (("seed", t.seed), ("dtype", t.dtype), ("sizes", fmt_sizes(t.sizes))):
        _el(props, "property", name=name, value=value)
    if t.implementation:
        _el(props, "property", name="implementation", value=t.implementation)
    for i, convention in enumerate(t.conventions):
        _el(props, "property", name=f"convention.{i + 1}", value=convention)
    tests = failures = errors = 0
    for r in t.results:
        tests += 1
        failures += not _testcase(suite, t, r)
    if t.error is not None:
        tests += 1
        errors += 1
        case = _el(suite, "testcase", classname=f"derivkit.{t.target}", name="check",
                   time=_secs(t.seconds))
        _el(case, "error", t.error, message=" ".join(str(t.error).split())[:500] or "error",
            type="CheckError")
    elif not target_passed(t) and failures == 0:
        # the engine failed the target without a failing result: still a visible failure
        tests += 1
        failures += 1
        case = _el(suite, "testcase", classname=f"derivkit.{t.target}", name="check", time="0.000")
        _el(case, "failure", message="the target did not pass", type="CheckFailed")
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")
    suite.set("time", _secs(t.seconds))
    return suite, tests, failures, errors


def junit_tree(targets: list[TargetCheck] | tuple[TargetCheck, ...],
               seconds: float = 0.0) -> ET.ElementTree[ET.Element]:
    root = _el(None, "testsuites", name="derivkit check")
    totals = [0, 0, 0]
    for t in targets:
        suite, *counts = target_suite(t)
        root.append(suite)
        totals = [a + b for a, b in zip(totals, counts)]
    for key, value in zip(("tests", "failures", "errors"), totals):
        root.set(key, str(value))
    root.set("time", _secs(seconds or sum(float(t.seconds or 0) for t in targets)))
    ET.indent(root)
    return ET.ElementTree(root)


def junit_xml(check: TargetCheck | CheckReport) -> bytes:
    """The JUnit document for one target or for a whole report, as UTF-8 bytes."""
    if isinstance(check, CheckReport):
        tree = junit_tree(check.targets, check.seconds)
    else:
        tree = junit_tree([check], check.seconds)
    return ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(path: str | Path, check: TargetCheck | CheckReport) -> None:
    """Write the JUnit file with `derivkit.render.outfile.write_output`: atomically, overwriting a
    regular file, never through a symbolic link or into a FIFO, device or folder. An unwritable
    path is an input error (exit 2), not a crash."""
    from .outfile import write_output

    write_output(path, junit_xml(check), force=False, overwrite=True, option="--junit")


__all__ = ["failure_message", "junit_tree", "junit_xml", "write_junit", "xml_text"]
