"""HTML for results: fragments for notebooks (`_repr_html_`) and one self-contained page (`--html`).

Formulas are MathML (`mathml.to_mathml`), which browsers render natively: a page has no script,
no external stylesheet, font or image, and inline CSS only, and reads on a phone (formulas and
tables scroll sideways inside their own box; the page itself never does). Results are read by
duck typing (this layer may not import `derivkit.results`): a `Derivation`, a `TargetCheck`, a
`CheckReport`, a `ClaimVerdict` and a `TrainResult`, by their attributes. Every piece of text
goes through `escape.text`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .escape import text as esc
from .mathml import to_mathml

KIND_LABELS = {"jacobian": "Jacobian", "vjp": "vector-Jacobian product (backprop)",
               "gradient": "gradient"}
METHOD_WORDS = {"symbolic": "symbolically", "numeric": "numerically (40-digit arithmetic)"}
CHECK_METHODS = {"central": "central", "complex-step": "complex step",
                 "central-richardson": "central + Richardson"}
VERDICTS = {"verified": ("✓ VERIFIED", "dk-ok"), "refuted": ("✗ REFUTED", "dk-bad"),
            "not verified": ("? NOT VERIFIED", "dk-warn")}

CSS = """
.derivkit{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 overflow-wrap:anywhere;max-width:60rem}
.derivkit h2{font-size:1.35rem;margin:1rem 0 .5rem}
.derivkit h3{font-size:1.1rem;margin:1.25rem 0 .4rem;border-bottom:1px solid #8884}
.derivkit h4{font-size:1rem;margin:.75rem 0 .25rem}
.derivkit .dk-math{overflow-x:auto;overflow-y:hidden;max-width:100%;padding:.2rem 0}
.derivkit math{font-family:"STIX Two Math","Latin Modern Math","DejaVu Math TeX Gyre",math;
 font-size:1.1em}
.derivkit .dk-wrap{overflow-x:auto;max-width:100%}
.derivkit table{border-collapse:collapse;margin:.25rem 0}
.derivkit th,.derivkit td{padding:.2rem .6rem .2rem 0;text-align:left;vertical-align:top;
 white-space:nowrap;border-bottom:1px solid #8883}
.derivkit td.dk-num{text-align:right;font-variant-numeric:tabular-nums}
.derivkit code,.derivkit pre{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.92em}
.derivkit pre{overflow-x:auto;max-width:100%;white-space:pre;margin:.25rem 0}
.derivkit .dk-ok{color:#1a7f37}
.derivkit .dk-bad{color:#fff;background:#b42318;font-weight:700;padding:0 .3em;border-radius:3px}
.derivkit .dk-warn{color:#8a5a00;font-weight:700}
.derivkit .dk-dim{color:#666}
.derivkit .dk-headline{font-weight:700}
.derivkit ol.dk-steps{padding-left:1.5rem}
""".strip()

PAGE_CSS = """
html{-webkit-text-size-adjust:100%;color-scheme:light}
body{margin:0;background:#fff;color:#1b1b1b}
main{padding:.75rem;margin:0 auto;max-width:60rem}
h1{font:700 1.5rem/1.3 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 margin:.5rem 0;overflow-wrap:anywhere}
""".strip()


# ---------------------------------------------------------------------------- small pieces

def math_block(latex: str) -> str:
    return f'<div class="dk-math">{to_mathml(latex, display=True)}</div>'


def with_lhs(lhs: str | None, rhs: str) -> str:
    """`lhs = rhs`, unless `rhs` already is an equation starting with `lhs`."""
    if not lhs or rhs.lstrip().startswith(f"{lhs} ="):
        return rhs
    return f"{lhs} = {rhs}"


def tex_name(name: str) -> str:
    """A name as LaTeX: one letter as is, a longer name upright, LaTeX's specials escaped."""
    special = {"\\": r"\backslash ", "{": r"\{", "}": r"\}", "_": r"\_", "^": r"\hat{}",
               "$": r"\$", "&": r"\&", "#": r"\#", "%": r"\%", "~": r"\sim "}
    body = "".join(special.get(ch, ch) for ch in str(name))
    return body if len(str(name)) == 1 and str(name).isalpha() else rf"\mathrm{{{body}}}"


def esc_lines(value: str) -> str:
    """Multi-line text (a pretty-printed formula) escaped line by line, its newlines kept."""
    return "\n".join(esc(line) for line in str(value).split("\n"))


def fmt_num(value: Any, digits: int = 2) -> str:
    """1.234e-07 -> '1.23e-07'; inf, nan; 0 -> '0'; None -> '—'."""
    if value is None:
        return "—"
    x = float(value)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return "0" if x == 0 else f"{x:.{digits}e}"


def fmt_tol(value: Any) -> str:
    text = fmt_num(value, 1)
    return text.replace(".0e", "e") if text[:1].isdigit() else text


def fmt_sizes(sizes: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in dict(sizes or {}).items())


def fmt_size_list(sizes: Iterable[Mapping[str, Any]] | None) -> str:
    """[{'n': 2}, {'n': 3}] -> 'n = 2, 3'; several names -> '(m, n) = (2, 3), (3, 4)'."""
    rows = [dict(s) for s in sizes or ()]
    if not rows:
        return ""
    keys = list(rows[0])
    if keys and all(list(s) == keys for s in rows):
        if len(keys) == 1:
            return f"{keys[0]} = " + ", ".join(str(s[keys[0]]) for s in rows)
        return ("(" + ", ".join(keys) + ") = "
                + ", ".join("(" + ", ".join(str(s[k]) for k in keys) + ")" for s in rows))
    return "; ".join(fmt_sizes(s) for s in rows)


def _list(title: str, items: Iterable[str], level: int = 3) -> str:
    items = list(items)
    if not items:
        return ""
    lis = "".join(f"<li>{esc(i)}</li>" for i in items)
    return f"<h{level}>{esc(title)}</h{level}><ul>{lis}</ul>"


def _table(head: list[str], rows: list[list[str]], *, numeric: Iterable[int] = ()) -> str:
    """A table in a box that scrolls sideways. Cells are markup (escape them first)."""
    right = set(numeric)
    ths = "".join(f'<th scope="col">{esc(h)}</th>' for h in head)
    body = "".join("<tr>" + "".join(
        f'<td class="dk-num">{c}</td>' if k in right else f"<td>{c}</td>" for k, c in enumerate(r))
        + "</tr>" for r in rows)
    return f'<div class="dk-wrap"><table><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table></div>'


def _pass(ok: bool) -> str:
    return '<span class="dk-ok">✓ pass</span>' if ok else '<span class="dk-bad">✗ FAIL</span>'


def _headline(ok: bool, sentence: str, *, warn: bool = False) -> str:
    cls = "dk-ok" if ok else "dk-warn" if warn else "dk-bad"
    return f'<p class="dk-headline"><span class="{cls}">{esc(sentence)}</span></p>'


def fragment(body: str) -> str:
    """A fragment for a notebook: the body with its own (scoped) stylesheet, in a container
    MathJax skips (`tex2jax_ignore`, `mathjax_ignore`): the maths is MathML already, and text
    from a recipe (`$\\href{javascript:…}{x}$` in a summary) must not be typeset as TeX."""
    return f'<div class="tex2jax_ignore mathjax_ignore"><style>{CSS}</style>{body}</div>'


def page(title: str, body: str) -> str:
    """One self-contained HTML document: inline CSS, no script, nothing fetched."""
    return ("<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(title)}</title>\n"
            f"<style>\n{PAGE_CSS}\n{CSS}\n</style>\n</head>\n<body>\n<main>\n"
            f"<h1>{esc(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n")


# ---------------------------------------------------------------------------- derivations

def verification_html(v: Any) -> str:
    """The label of a form: how it was verified, or a loud NOT VERIFIED."""
    if v.verified:
        detail = v.detail or (f"verified {METHOD_WORDS.get(v.method, v.method)}"
                              + (f" at {fmt_size_list(v.sizes)}" if v.sizes else ""))
        return f'<p class="dk-ok">✓ {esc(detail)}</p>'
    detail = (v.detail or "").strip()
    if detail.upper().startswith("NOT VERIFIED"):
        detail = detail[len("NOT VERIFIED"):].lstrip(" :")
    return (f'<p><span class="dk-bad">✗ NOT VERIFIED</span> '
            f"{esc(detail or 'this form could not be confirmed')} (do not rely on it)</p>")


def derivation_headline(d: Any) -> tuple[bool, str]:
    """(verified, the sentence the terminal ends with)."""
    forms = [f for x in d.derivatives for f in (x.index, x.matrix) if f is not None]
    forms += [c.form for c in d.chain]
    bad = [f for f in forms if not f.verification.verified]
    if not d.derivatives:
        return False, "No derivative was derived."
    if bad:
        return False, (f"✗ {len(bad)} of {len(forms)} form(s) NOT VERIFIED: treat them as "
                       "unconfirmed, not as facts.")
    if not d.verified:
        return False, "✗ NOT VERIFIED: a derivative has no form that could be confirmed."
    symbolic = sum(f.verification.method in ("symbolic", "numeric") for f in forms)
    also = ("" if not symbolic else "; all of them also element-wise symbolically"
            if symbolic == len(forms) else f"; {symbolic} also element-wise symbolically")
    return True, (f"✓ All {len(forms)} form(s) verified against the forward differentiated "
                  f"numerically at 60 digits{also}.")


def _derivative(d: Any, derivation: Any) -> str:
    shape = f", shape {'×'.join(str(s) for s in d.shape)}" if d.shape else ""
    out = [f'<section class="dk-derivative"><h3>{esc(d.lhs_pretty)} — '
           f"{esc(KIND_LABELS.get(d.kind, d.kind))}{esc(shape)}</h3>"]
    if d.kind == "vjp" and d.upstream:
        out.append(f'<p class="dk-dim">given the upstream gradient {esc(d.upstream)} = ∂L/∂'
                   f"{esc(derivation.output)} (same shape as {esc(derivation.output)})</p>")
    if d.index is None:
        out.append('<h4>Index form</h4><p class="dk-warn">not obtained</p>')
    else:
        out.append("<h4>Index form</h4>" + math_block(with_lhs(d.index_lhs_latex, d.index.latex))
                   + verification_html(d.index.verification))
    if d.matrix is None:
        out.append('<h4>Matrix form</h4><p class="dk-warn">no closed matrix form obtained; see '
                   "the index form</p>")
    else:
        out.append("<h4>Matrix form</h4>" + math_block(with_lhs(d.lhs_latex, d.matrix.latex))
                   + verification_html(d.matrix.verification))
    if d.notes:
        out.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in d.notes) + "</ul>")
    out.append("</section>")
    return "".join(out)


def _chain(d: Any) -> str:
    steps = []
    for step in d.chain:
        v = step.form.verification
        mark = ('<span class="dk-ok">✓</span>' if v.verified
                else '<span class="dk-bad">✗ NOT VERIFIED</span>')
        steps.append(f"<li>{math_block(step.form.latex)}<p>"
                     f'<span class="dk-dim">shape {esc(step.shape_text)}</span> {mark}</p></li>')
    details = "".join(f'<p class="dk-dim">{esc(line)}</p>' for line in d.chain_verification())
    return ("<h3>Backward program</h3><p>Δ = ∂L/∂·, each line through the next; the lines run "
            f'in this order.</p><ol class="dk-steps">{"".join(steps)}</ol>{details}')


def derivation_html(d: Any) -> str:
    """A `Derivation`: forward, inputs, the backward program, every derivative's index and
    matrix forms with their verification, conventions, notes and references."""
    ok, headline = derivation_headline(d)
    title = esc(d.target) + (f": {esc(d.summary)}" if d.summary else "")
    facts = [["input", esc(f"{i.name} : {i.shape_text}" + ("" if i.domain == "real"
                                                           else f"  ({i.domain})"))]
             for i in d.inputs]
    facts += [["parameter", esc(f"{n} = {v:g}" if isinstance(v, float) else f"{n} = {v}")]
              for n, v in d.params]
    facts.append(["output", esc(f"{d.output} : {d.output_shape_text}")])
    out = [f'<article class="derivkit dk-derivation"><h2>{title}</h2>', _headline(ok, headline),
           "<h3>Forward</h3>", math_block(d.forward_latex), _table(["", ""], facts)]
    if d.chain:
        out.append(_chain(d))
    out.extend(_derivative(x, d) for x in d.derivatives)
    out.append("".join(f'<p><span class="dk-warn">warning:</span> {esc(w)}</p>' for w in d.warnings))
    out += [_list("Conventions", d.conventions), _list("Notes", d.notes),
            _list("References", d.references), "</article>"]
    return "".join(out)


# ---------------------------------------------------------------------------- checks

def _result_passed(r: Any) -> bool:
    return bool(r.passed)


def target_passed(t: Any) -> bool:
    return bool(t.passed) and t.error is None and all(_result_passed(r) for r in t.results)


def target_headline(t: Any) -> tuple[bool, str]:
    n = len(t.results)
    bad = sum(1 for r in t.results if not _result_passed(r))
    if t.error is not None:
        return False, f"✗ {t.target}: could not be checked."
    if bad:
        who = "your implementation" if t.implementation else "the derived formula"
        return False, (f"✗ {bad} of {n} derivative check(s) FAILED: {who} and finite "
                       "differences disagree.")
    if not target_passed(t):
        return False, f"✗ {t.target} did not pass."
    if not n:
        return False, "No derivative was checked."
    of = " of your implementation" if t.implementation else ""
    return True, f"✓ All {n} derivative check(s){of} passed against finite differences."


def _entries(entries: Iterable[Any], first: str) -> str:
    rows = [[esc("[" + ", ".join(str(int(i)) for i in e.index) + "]"), esc(fmt_num(e.derived, 6)),
             esc(fmt_num(e.numeric, 6)), esc(fmt_num(e.abs_error)), esc(fmt_num(e.tolerance))]
            for e in entries]
    return _table([first, "derived", "numeric", "|error|", "tolerance"], rows, numeric=(1, 2, 3, 4))


def _failure(t: Any, r: Any) -> str:
    whose = f"your ∂/∂{r.wrt}" if t.implementation else f"∂/∂{r.wrt}"
    out = [f'<h4><span class="dk-bad">✗ {esc(t.target)}: {esc(whose)} ({esc(r.kind)}) does not '
           "pass</span></h4>"]
    out += [f"<p><strong>diagnosis: {esc(x.name)}</strong> — {esc(x.detail)}</p>"
            for x in r.diagnoses]
    out.append(f"<p>max relative error {esc(fmt_num(r.max_rel_error))}, max absolute error "
               f"{esc(fmt_num(r.max_abs_error))}; tolerance rtol {esc(fmt_tol(r.rtol))}, atol "
               f"{esc(fmt_tol(r.atol))} ({esc(r.mode)} check, "
               f"{esc(CHECK_METHODS.get(r.method, r.method))}, step {esc(fmt_num(r.step))})</p>")
    if r.worst:
        out.append("<p>worst " + ("directions" if r.mode == "directional" else "entries") + "</p>")
        out.append(_entries(r.worst, "direction" if r.mode == "directional" else "index"))
    if r.localised:
        out.append("<p>localised to these Jacobian entries (output index, input index)</p>")
        out.append(_entries(r.localised, "index"))
    return "".join(out)


def remark_groups(results: Iterable[Any]) -> list[tuple[str, str]]:
    """(label, note) for the detection power of each directional check and the engine's notes,
    a note shared by several inputs given once: ("X, W, b (vjp, full)", note)."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for r in results:
        texts = ([r.detection] if r.detection and r.mode == "directional" else []) + list(r.notes)
        for note in texts:
            wrts = groups.setdefault((note, r.kind, r.mode), [])
            if r.wrt not in wrts:
                wrts.append(r.wrt)
    return [(f"{', '.join(w)} ({kind}, {mode})", note) for (note, kind, mode), w in groups.items()]


def _remarks(results: Iterable[Any]) -> list[str]:
    return [f"{label}: {note}" for label, note in remark_groups(results)]


#: The rule every compared entry is held to (`results.CheckResult`).
PASS_RULE = (r"\left|\text{derived} - \text{numeric}\right| \leq \mathrm{atol} + \mathrm{rtol} "
             r"\cdot \left|\text{numeric}\right|")


def _rule() -> str:
    return ('<p class="dk-dim">A check passes when every compared entry satisfies</p>'
            + math_block(PASS_RULE))


def target_html(t: Any, *, level: int = 2) -> str:
    """A `TargetCheck`: the check table with a verdict per derivative, the failures' worst
    entries and diagnoses, notes and conventions."""
    ok, headline = target_headline(t)
    facts = [f"seed {t.seed}", str(t.dtype)] + ([f"sizes {fmt_sizes(t.sizes)}"] if t.sizes else [])
    out = [f'<section class="derivkit dk-check"><h{level}>{esc(t.target)}</h{level}>',
           f'<p class="dk-dim">{esc(", ".join(facts))}</p>']
    if t.implementation:
        out.append(f"<p>your implementation <code>{esc(t.implementation)}</code></p>")
    out.append(_headline(ok, headline))
    if t.results:
        rows = [[esc(r.wrt), esc(r.kind), esc(r.mode), esc(CHECK_METHODS.get(r.method, r.method)),
                 esc(fmt_num(r.step, 1)), esc(fmt_num(r.max_abs_error)),
                 esc(fmt_num(r.max_rel_error)), esc(fmt_tol(r.rtol)), esc(fmt_tol(r.atol)),
                 esc(r.n_evals), _pass(_result_passed(r))] for r in t.results]
        out.append(_table(["wrt", "kind", "mode", "method", "step", "max abs error",
                           "max rel error", "rtol", "atol", "evals", "verdict"], rows,
                          numeric=(4, 5, 6, 7, 8, 9)))
    if t.error is not None:
        out.append(f'<p><span class="dk-bad">✗ could not check</span> {esc(t.error)}</p>')
    out += [_failure(t, r) for r in t.results if not _result_passed(r)]
    if level == 2 and t.results:
        out.append(_rule())
    out += [_list("Notes", _remarks(t.results), level + 1),
            _list("Conventions", t.conventions, level + 1), "</section>"]
    return "".join(out)


def report_headline(report: Any) -> tuple[bool, str]:
    n = len(report.targets)
    ok = sum(1 for t in report.targets if target_passed(t))
    seeds = sorted({t.seed for t in report.targets})
    dtypes = sorted({str(t.dtype) for t in report.targets})
    where = f" (seed {', '.join(map(str, seeds))}; {', '.join(dtypes)})" if n else ""
    passed = ok == n and bool(report.passed)
    return passed, f"{'✓' if passed else '✗'} {ok}/{n} targets passed{where}"


def report_html(report: Any) -> str:
    """A `CheckReport` (`check --all`): one row per checked derivative of every target, then
    what failed."""
    ok, headline = report_headline(report)
    rows = []
    for t in report.targets:
        for k, r in enumerate(t.results):
            rows.append([f"<strong>{esc(t.target)}</strong>" if k == 0 else "",
                         esc(f"{r.wrt} ({r.kind})"), esc(r.mode),
                         esc(CHECK_METHODS.get(r.method, r.method)), esc(fmt_num(r.max_rel_error)),
                         esc(fmt_tol(r.rtol)), esc(fmt_tol(r.atol)), _pass(_result_passed(r))])
        if t.error is not None:
            rows.append([f"<strong>{esc(t.target)}</strong>", "—", "not checked", "", "", "", "",
                         '<span class="dk-bad">✗ ERROR</span>'])
        elif not t.results:
            rows.append([f"<strong>{esc(t.target)}</strong>", "—", "nothing checked", "", "", "",
                         "", _pass(target_passed(t))])
    out = ['<section class="derivkit dk-report"><h2>Checks</h2>', _headline(ok, headline),
           _table(["recipe", "wrt", "mode", "method", "max rel error", "rtol", "atol", "verdict"],
                  rows, numeric=(4, 5, 6)), _rule()]
    failed = [t for t in report.targets if not target_passed(t)]
    if failed:
        out.append("<h3>What failed</h3>")
        out += [target_html(t, level=4) for t in failed]
    out.append("</section>")
    return "".join(out)


# ---------------------------------------------------------------------------- claims, training

def _number(x: Any) -> str:
    x = float(x)
    return "nan" if x != x else f"{x:.6g}"


def _values(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_values(v) for v in value) + "]"
    return _number(value) if isinstance(value, float) else str(value)


def verdict_html(v: Any) -> str:
    """A `ClaimVerdict`: the verdict, the claim as read, derivkit's own form, the reason and a
    counterexample."""
    label, cls = VERDICTS.get(v.verdict, (str(v.verdict).upper(), "dk-warn"))
    what = to_mathml(rf"\frac{{\partial}}{{\partial {tex_name(v.wrt)}}}", display=False)
    out = [f'<section class="derivkit dk-verdict"><h2><span class="{cls}">{esc(label)}</span> '
           f"{esc(v.target)}: {what}</h2>"]
    rows = [["claim", f"<code>{esc(v.claim)}</code>"], ["read as", esc(v.reading)]]
    if v.derived_pretty:
        rows.append(["derivkit", f"<pre>{esc_lines(v.derived_pretty)}</pre>"
                     if "\n" in v.derived_pretty else f"<code>{esc(v.derived_pretty)}</code>"])
    out.append(_table(["", ""], rows))
    out.append(f'<p class="{"dk-ok" if v.verified else ""}">{esc(v.reason)}</p>')
    if v.numeric:
        out.append(f"<p>{esc(v.numeric)}</p>")
    ce = v.counterexample
    if ce is not None:
        crow = [["sizes", esc(fmt_size_list([ce.sizes]) or "as declared")]]
        crow += [[esc(name), f"<code>{esc(_values(value))}</code>"] for name, value in ce.values.items()]
        crow += [["entry", esc(ce.entry_text)], ["claimed", esc(_number(ce.claimed))],
                 ["true", esc(_number(ce.true))]]
        out.append("<h3>Counterexample</h3>" + _table(["", ""], crow))
    out += [_list("Notes", v.notes), "</section>"]
    return "".join(out)


def _curve(losses: list[float], width: int = 320, height: int = 120) -> str:
    """The losses as an inline SVG polyline (log scale when all are positive)."""
    values = [float(x) for x in losses if math.isfinite(float(x))]
    if len(values) < 2:
        return ""
    log = min(values) > 0
    ys = [math.log10(x) if log else x for x in values]
    lo, hi = min(ys), max(ys)
    span = (hi - lo) or 1.0
    points = " ".join(f"{4 + k * (width - 8) / (len(ys) - 1):.1f},"
                      f"{4 + (hi - y) / span * (height - 8):.1f}" for k, y in enumerate(ys))
    scale = " (log scale)" if log else ""
    return (f'<div class="dk-wrap"><svg xmlns="http://www.w3.org/2000/svg" role="img" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f"<title>loss per epoch{scale}</title>"
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="none" stroke="#8886"/>'
            f'<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="{points}"/></svg>'
            f'</div><p class="dk-dim">loss per epoch{scale}: {esc(_number(max(values)))} at the top, '
            f"{esc(_number(min(values)))} at the bottom</p>")


def train_html(result: Any) -> str:
    """A `TrainResult`: the run, the loss curve, the first and last loss and, with updated
    weights, how far the lower layers' gradients were from the true ones."""
    plural = "s" if result.epochs != 1 else ""
    losses = list(result.losses) + [result.final_loss]
    ratio = result.final_loss / result.initial_loss if result.initial_loss else math.nan
    out = [f'<section class="derivkit dk-train"><h2>train {esc(result.recipe)}</h2>',
           f'<p class="dk-dim">{esc(result.epochs)} epoch{plural}, lr {esc(f"{result.lr:g}")}, '
           f"seed {esc(result.seed)}, sizes {esc(fmt_sizes(result.sizes))}</p>",
           f"<p>loss: first {esc(_number(result.initial_loss))} → last "
           f"{esc(_number(result.final_loss))} (×{esc(f'{ratio:.3g}')})</p>", _curve(losses)]
    if result.use_updated_weights and result.mean_deviation is not None:
        rows = [[esc(w), esc(f"{100 * sum(v) / len(v):.3g}%"), esc(f"{100 * max(v):.3g}%")]
                for w, v in result.deviations.items() if v]
        out.append(f'<p class="dk-warn">{esc(", ".join(result.last_layer))} updated before '
                   "backpropagating: the lower layers' gradients deviate from the true ones "
                   "(‖g_used − g_true‖/‖g_true‖)</p>")
        out.append(_table(["parameter", "mean", "max"], rows, numeric=(1, 2)))
    out.append("</section>")
    return "".join(out)


__all__ = [
    "CSS",
    "derivation_html",
    "fragment",
    "math_block",
    "page",
    "report_html",
    "target_html",
    "train_html",
    "verdict_html",
]
