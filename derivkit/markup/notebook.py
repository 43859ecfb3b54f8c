"""LaTeX and Markdown of results for notebooks (`_repr_latex_`, `_repr_markdown_`).

A notebook typesets these with MathJax/KaTeX. User text outside formulas is escaped for its
context: `\\text{…}` gets LaTeX's specials escaped (`tex_text`), Markdown gets every ASCII
punctuation character backslash-escaped (`md_text`), so a name or a note can neither close the
formula nor start markup or HTML. Results are read by duck typing, as in `html`."""

from __future__ import annotations

import re
from typing import Any

from .escape import visible
from .html import (
    KIND_LABELS,
    derivation_headline,
    fmt_num,
    report_headline,
    target_headline,
    target_passed,
    tex_name,
    with_lhs,
)

#: inside \text{…} MathJax reads `$` as math and braces as grouping, and escapes are not
#: portable between MathJax, KaTeX and LaTeX: specials are written as their full-width forms.
_TEX_SPECIAL = {"\\": "＼", "{": "｛", "}": "｝", "$": "＄", "&": "＆", "#": "＃", "%": "％",
                "^": "＾", "~": "～"}
_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")


def tex_text(value: object) -> str:
    """`value` as the argument of `\\text{…}` (LaTeX's specials as full-width look-alikes)."""
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in visible(value))


def md_text(value: object) -> str:
    """`value` as literal Markdown text (no emphasis, link, HTML or math)."""
    return _MD_SPECIAL.sub(r"\\\1", visible(value))


def _formula(latex: str) -> str:
    """A formula for `$$…$$`: a `$` could only end the display math early."""
    return visible(latex).replace("$", r"\$")


def _aligned_line(equation: str) -> str:
    """`lhs = rhs` as an aligned line `lhs &= rhs` (at the first ` = `)."""
    return equation.replace(" = ", " &= ", 1) if " = " in equation else equation


def _derivation_equations(d: Any) -> list[str]:
    """Every equation of a derivation, each tagged when it is not verified."""
    lines = d.forward_latex.split(r" \\ ")
    for step in d.chain:
        tag = "" if step.form.verification.verified else r" \quad \text{(NOT VERIFIED)}"
        lines.append(step.form.latex + tag)
    for x in d.derivatives:
        for lhs, form in ((x.index_lhs_latex, x.index), (x.lhs_latex, x.matrix)):
            if form is not None:
                tag = "" if form.verification.verified else r" \quad \text{(NOT VERIFIED)}"
                lines.append(with_lhs(lhs, form.latex) + tag)
    return lines


def derivation_latex(d: Any) -> str:
    body = r" \\ ".join(_aligned_line(_formula(line)) for line in _derivation_equations(d))
    return f"$$\\begin{{aligned}} {body} \\end{{aligned}}$$"


def derivation_markdown(d: Any) -> str:
    headline = derivation_headline(d)[1]
    title = md_text(d.target) + (f": {md_text(d.summary)}" if d.summary else "")
    out = [f"**{title}**", "", md_text(headline), "", f"$$\n{_formula(d.forward_latex)}\n$$"]
    for step in d.chain:
        out += ["", f"$$\n{_formula(step.form.latex)}\n$$"]
    for x in d.derivatives:
        out += ["", f"*{md_text(x.lhs_pretty)}*, {md_text(KIND_LABELS.get(x.kind, x.kind))}"]
        for lhs, form in ((x.index_lhs_latex, x.index), (x.lhs_latex, x.matrix)):
            if form is not None:
                mark = "✓" if form.verification.verified else "**✗ NOT VERIFIED**"
                out += ["", f"$$\n{_formula(with_lhs(lhs, form.latex))}\n$$", "", mark]
    return "\n".join(out) + "\n"


def _check_rows(targets: list[Any]) -> list[str]:
    rows = []
    for t in targets:
        for r in t.results:
            verdict = r"\checkmark" if r.passed else r"\textbf{FAIL}"
            rows.append(rf"\text{{{tex_text(t.target)}}} & \text{{{tex_text(r.wrt)}}} & "
                        rf"\text{{{tex_text(r.kind)}}} & \text{{{tex_text(fmt_num(r.max_rel_error))}}}"
                        rf" & {verdict}")
        if t.error is not None or not t.results:
            rows.append(rf"\text{{{tex_text(t.target)}}} & & & & "
                        + (r"\checkmark" if target_passed(t) else r"\textbf{FAIL}"))
    return rows


def _check_latex(targets: list[Any], headline: str) -> str:
    head = r"\text{recipe} & \text{wrt} & \text{kind} & \text{max rel error} & \text{verdict}"
    rows = r" \\ ".join(_check_rows(targets))
    return (f"$$\\begin{{array}}{{lllrl}} \\multicolumn{{5}}{{l}}{{\\text{{{tex_text(headline)}}}}}"
            f" \\\\ {head} \\\\ \\hline {rows} \\end{{array}}$$")


def target_latex(t: Any) -> str:
    return _check_latex([t], target_headline(t)[1])


def report_latex(report: Any) -> str:
    return _check_latex(list(report.targets), report_headline(report)[1])


def _check_markdown(targets: list[Any], headline: str) -> str:
    lines = [f"**{md_text(headline)}**", "", "| recipe | wrt | kind | max rel error | verdict |",
             "|---|---|---|---:|---|"]
    for t in targets:
        for r in t.results:
            lines.append(f"| {md_text(t.target)} | {md_text(r.wrt)} | {md_text(r.kind)} | "
                         f"{md_text(fmt_num(r.max_rel_error))} | {'✓ pass' if r.passed else '**✗ FAIL**'} |")
        if t.error is not None:
            lines.append(f"| {md_text(t.target)} | | | | **✗ ERROR** {md_text(t.error)} |")
    return "\n".join(lines) + "\n"


def target_markdown(t: Any) -> str:
    return _check_markdown([t], target_headline(t)[1])


def report_markdown(report: Any) -> str:
    return _check_markdown(list(report.targets), report_headline(report)[1])


def verdict_latex(v: Any) -> str:
    word = {"verified": "VERIFIED", "refuted": "REFUTED"}.get(v.verdict, "NOT VERIFIED")
    return (f"$$\\text{{{word}: {tex_text(v.target)}}}\\quad "
            f"\\frac{{\\partial}}{{\\partial {tex_name(v.wrt)}}} \\quad "
            f"\\text{{claim: {tex_text(v.claim)}}}$$")


def verdict_markdown(v: Any) -> str:
    word = {"verified": "✓ VERIFIED", "refuted": "✗ REFUTED"}.get(v.verdict, "? NOT VERIFIED")
    lines = [f"**{word}** {md_text(v.target)}: ∂/∂{md_text(v.wrt)}", "",
             f"- claim: {md_text(v.claim)}", f"- read as: {md_text(v.reading)}"]
    if v.derived_pretty:
        lines.append(f"- derivkit: {md_text(v.derived_pretty)}")
    lines += ["", md_text(v.reason)]
    return "\n".join(lines) + "\n"


def train_latex(result: Any) -> str:
    return (f"$$\\text{{train {tex_text(result.recipe)}: loss }} "
            f"{fmt_num(result.initial_loss, 3)} \\to {fmt_num(result.final_loss, 3)}"
            f"\\quad \\text{{({result.epochs} epochs, lr {result.lr:g})}}$$")


def train_markdown(result: Any) -> str:
    return (f"**train {md_text(result.recipe)}**: {result.epochs} epoch(s), lr {md_text(f'{result.lr:g}')}"
            f"\n\nloss: first {md_text(fmt_num(result.initial_loss, 3))} → last "
            f"{md_text(fmt_num(result.final_loss, 3))}\n")


__all__ = [
    "derivation_latex",
    "derivation_markdown",
    "md_text",
    "report_latex",
    "report_markdown",
    "target_latex",
    "target_markdown",
    "tex_text",
    "train_latex",
    "train_markdown",
    "verdict_latex",
    "verdict_markdown",
]
