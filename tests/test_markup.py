"""Rendered maths: LaTeX -> MathML (`derivkit.markup.mathml`), the HTML of results and the
self-contained page (`markup.html`), the notebook's LaTeX and Markdown (`markup.notebook`), the
Jupyter display methods of the results, and `derive/check --html FILE`.

The notebook itself (executed with nbclient) is tests/test_notebook.py; the page in a real
browser is tests/test_browser.py."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from conftest import make_linear_derivation, make_softmax_derivation, recipe_params
from hypothesis import given
from hypothesis import strategies as st

from derivkit.markup import escape, html, notebook
from derivkit.markup.mathml import MATHML_NS, to_mathml
from derivkit.results import (
    CheckReport,
    CheckResult,
    ClaimVerdict,
    Counterexample,
    Diagnosis,
    TargetCheck,
    WorstEntry,
)

M = "{" + MATHML_NS + "}"
HOSTILE = "<script>alert('x')</script>&amp;\"\x1b[2K\x1b[32m✓ fake\u202e\x00\x07"


def parse(latex: str) -> ET.Element:
    """The MathML of `latex`, parsed as XML (fails the test if it is not well-formed)."""
    return ET.fromstring(to_mathml(latex))


def body(latex: str) -> ET.Element:
    """The translated formula: <math><semantics><mrow>THIS…"""
    root = parse(latex)
    return root.find(f"{M}semantics/{M}mrow")


def tags(latex: str) -> list[str]:
    return [e.tag.removeprefix(M) for e in body(latex).iter()]


def texts(latex: str, tag: str) -> list[str]:
    return [e.text or "" for e in body(latex).iter(M + tag)]


# ---------------------------------------------------------------------------- constructs

def test_math_element_display_and_annotation():
    root = parse(r"\frac{a}{b}")
    assert root.tag == M + "math" and root.get("display") == "block"
    ann = root.find(f"{M}semantics/{M}annotation")
    assert ann.get("encoding") == "application/x-tex" and ann.text == r"\frac{a}{b}"
    assert ET.fromstring(to_mathml("x", display=False)).get("display") == "inline"


@pytest.mark.parametrize("latex, expected", [
    (r"\frac{\partial L}{\partial W}", "mfrac"),
    (r"\sqrt{d}", "msqrt"),
    (r"\sqrt[3]{x}", "mroot"),
    (r"x^{2}", "msup"),
    (r"x_{i}", "msub"),
    (r"x_{i}^{2}", "msubsup"),
    (r"\sum_{l=0}^{t - 1} x_{l}", "munderover"),
    (r"\max_{\text{axis}=1}\left(X\right)", "munder"),
    (r"\begin{cases} 1 & x > 0 \\ 0 & \text{otherwise} \end{cases}", "mtable"),
    (r"\hat{x}", "mover"),
    (r"a \, b", "mspace"),
    (r"\text{for}\: x", "mtext"),
])
def test_constructs(latex, expected):
    assert expected in tags(latex)


def test_double_subscript_nests():
    """The engine writes W_{1}_{ij} for an index of W₁: a subscript of a subscripted name."""
    outer = body(r"W_{1}_{ij}").find(M + "msub")
    assert outer is not None and outer[0].tag == M + "msub"
    assert [e.text for e in outer[0]] == ["W", "1"]


@pytest.mark.parametrize("latex, symbol", [
    (r"{X}^{\top}", "⊤"), (r"a \odot b", "⊙"), (r"a \otimes b", "⊗"), (r"a \cdot b", "⋅"),
    (r"x \geq 0", "≥"), (r"x \leq 0", "≤"), (r"a - b", "−"), (r"\left\langle g, p \right\rangle", "⟨"),
])
def test_operators(latex, symbol):
    assert symbol in texts(latex, "mo")


@pytest.mark.parametrize("latex, identifier", [
    (r"\partial L", "∂"), (r"\delta_{i j}", "δ"), (r"\alpha", "α"), (r"\epsilon", "ϵ"),
    (r"\sigma\left(x\right)", "σ"), (r"\pi", "π"), (r"\exp\left(x\right)", "exp"),
    (r"\tanh\left(x\right)", "tanh"),
])
def test_identifiers(latex, identifier):
    assert identifier in texts(latex, "mi")


def test_upright_names_and_styled_digits():
    e = body(r"\operatorname{leaky\_relu}\left(x\right) + \mathrm{Yhat} + \Delta_{P}")
    upright = {m.text: m.get("mathvariant") for m in e.iter(M + "mi")}
    assert upright["leaky_relu"] == "normal" and upright["Yhat"] == "normal"
    assert upright["Δ"] == "normal"          # capital Greek upright, as in TeX
    assert texts(r"\mathbf{1}^{\top} G", "mn") == ["𝟏"]      # MATHEMATICAL BOLD DIGIT ONE
    assert texts(r"\mathbb{1}\left[x > 0\right]", "mn") == ["𝟙", "0"]   # DOUBLE-STRUCK ONE


def test_fences_stretch_and_match():
    mos = body(r"\left(\frac{a}{b}\right)").iter(M + "mo")
    fences = [(m.text, m.get("form"), m.get("stretchy")) for m in mos]
    assert fences == [("(", "prefix", "true"), (")", "postfix", "true")]
    assert [m.text for m in body(r"\left|x\right|").iter(M + "mo")] == ["|", "|"]
    assert [m.text for m in body(r"\left. x \right|").iter(M + "mo")] == ["|"]   # \left. is nothing


def test_cases_rows_and_cells():
    table = body(r"\begin{cases} 1 & x \geq 0 \\\alpha & \text{otherwise} \end{cases}").find(
        f".//{M}mtable")
    rows = table.findall(M + "mtr")
    assert len(rows) == 2 and all(len(r.findall(M + "mtd")) == 2 for r in rows)
    assert rows[1].find(f".//{M}mi").text == "α"


def test_top_level_line_breaks_are_table_rows():
    """A composite's forward is one step per line (`S = … \\\\ P = …`)."""
    table = body(r"S = Q K \\ P = \operatorname{softmax}\left(S\right) \\ O = P V").find(M + "mtable")
    assert table is not None and len(table.findall(M + "mtr")) == 3


def test_unknown_commands_degrade_to_text():
    e = body(r"\foo{x} + \weird")
    assert [m.text for m in e.iter(M + "mtext")] == [r"\foo", r"\weird"]
    assert "x" in texts(r"\foo{x}", "mi")


# ---------------------------------------------------------------------------- hostile input

@pytest.mark.parametrize("latex", [
    HOSTILE, r"\mathrm{" + HOSTILE + "}", r"\text{" + HOSTILE + "}", r"\operatorname{<b>}",
    "{{{", "}}}", r"\left(", r"\right)", r"\frac{a}", "^", "_", "\\", r"\begin{cases} a &",
    r"\end{cases}", r"\sqrt[", r"\left", "x^", r"\text{", "{" * 5000, r"\left(" * 3000,
    r"\frac" * 2000 + "x", "x_" * 3000, "&&\\\\&", "]]]", r"\begin{<script>}x\end{<script>}",
])
def test_hostile_or_malformed_input_is_wellformed_and_inert(latex):
    """Never raises; always well-formed XML; nothing of the source becomes an element or an
    attribute; control and bidi characters only as visible escapes."""
    out = to_mathml(latex)
    root = ET.fromstring(out)
    allowed = {"math", "semantics", "annotation", "mrow", "mi", "mo", "mn", "mtext", "mspace",
               "mfrac", "msqrt", "mroot", "msub", "msup", "msubsup", "munder", "mover",
               "munderover", "mtable", "mtr", "mtd"}
    assert {e.tag.removeprefix(M) for e in root.iter()} <= allowed
    assert "<script" not in out and "\x1b" not in out and "\u202e" not in out and "\x00" not in out


def test_hostile_text_is_shown_not_obeyed():
    root = parse(r"\text{" + HOSTILE + "}")
    shown = "".join(e.text or "" for e in root.iter(M + "mtext"))
    assert "<script>" in shown and "\\x1b[2K" in shown and "\\u202e" in shown
    assert root.find(f"{M}semantics/{M}annotation").text.startswith(r"\text{<script>")


@given(st.lists(st.sampled_from(list("\\{}^_&[]()|.,=+-*/<>'\"ab1 ") + [
    "\\frac", "\\left", "\\right", "\\begin{cases}", "\\end{cases}", "\\sqrt", "\\text",
    "\\\\", "\\mathbf", "\x1b", "\u202e"]), max_size=60).map("".join))
def test_any_input_translates_to_wellformed_xml(latex):
    ET.fromstring(to_mathml(latex))


def test_escape_categories_are_the_terminal_sanitisers():
    from derivkit.render.text import ESCAPED_CATEGORIES, visible

    assert escape.ESCAPED_CATEGORIES == ESCAPED_CATEGORIES
    for s in (HOSTILE, "tab\there", "Δ∂ᵀ中文", "\U000e0041"):
        assert escape.visible(s) == visible(s)
    assert escape.text("<a href='x'>&</a>") == "&lt;a href=&#x27;x&#x27;&gt;&amp;&lt;/a&gt;"


# ---------------------------------------------------------------------------- every recipe

def _latex_strings(d) -> list[str]:
    out = [d.forward_latex]
    for x in d.derivatives:
        out += [x.lhs_latex] + ([x.index_lhs_latex] if x.index_lhs_latex else [])
        out += [f.latex for f in (x.index, x.matrix) if f is not None]
    out += [c.form.latex for c in d.chain]
    return out


def _builtin_names() -> list[str]:
    from derivkit.lang.recipes import builtin_dir

    return sorted(p.stem for p in builtin_dir().glob("*.toml"))


@pytest.mark.usefixtures("shared_derivations")
@pytest.mark.parametrize("name", recipe_params(_builtin_names()))
def test_every_recipes_latex_translates_with_known_commands_only(name):
    import derivkit.api as api

    d = api.derive_recipe(name)
    strings = _latex_strings(d)
    assert len(strings) >= 4
    for latex in strings:
        out = to_mathml(latex)
        ET.fromstring(out)
        unknown = re.findall(r"<mtext>(\\[^<]*)</mtext>", out)
        assert not unknown, f"{name}: LaTeX command(s) {unknown} not translated in {latex[:200]}"
        assert "[" not in "".join(re.findall(r"<mtext>(\[[^<]*)</mtext>", out))  # unknown env


# ---------------------------------------------------------------------------- HTML of results

class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs


def html_tags(document: str) -> _Tags:
    p = _Tags()
    p.feed(document)
    return p


def make_check(*, failing: bool = False, target: str = "linear") -> TargetCheck:
    def result(wrt: str, ok: bool) -> CheckResult:
        return CheckResult(
            wrt=wrt, kind="vjp", shape=(3, 4), mode="full", method="complex-step", step=1e-20,
            fd_error_estimate=1e-16, max_abs_error=1e-16 if ok else 5e-4,
            max_rel_error=2e-16 if ok else 1e-3, rtol=3.6e-15, atol=1e-12, n_evals=12, passed=ok,
            worst=(WorstEntry((1, 2), 0.5, 0.4995, 5e-4, 1e-12),),
            diagnoses=() if ok else (Diagnosis("transposed", "your value is the transpose"),))
    return TargetCheck(target=target, passed=not failing, seed=0, dtype="float64",
                       sizes={"m": 3, "n": 4}, results=(result("X", True), result("W", not failing)))


def make_verdict(verdict: str = "refuted") -> ClaimVerdict:
    ce = Counterexample({"n": 2}, {"z": [0.5, -1.25]}, (0, 1), "∂p_0/∂z_1", 0.25, -0.1)
    return ClaimVerdict(target="softmax", wrt="z", claim="diag(p)", form="matrix",
                        reading="∂p/∂z = diag(p), the Jacobian (n×n)", verdict=verdict,
                        reason="the claim differs from the derivation", method="numeric",
                        counterexample=ce if verdict == "refuted" else None,
                        derived="diag(p) - outer(p, p)", derived_pretty="diag(p) - p⋅pᵀ")


def test_derivation_fragment_has_math_and_verification_labels():
    out = html.derivation_html(make_softmax_derivation())
    assert out.count("<math") == 3    # the forward, the index form and the matrix form
    assert "verified symbolically at n = 2, 3, 4" in out
    assert "All 2 form(s) verified" in out
    assert "NOT VERIFIED" not in out


def test_an_unverified_form_is_loudly_not_verified():
    out = html.derivation_html(make_linear_derivation(matrix_verified=False))
    assert '<span class="dk-bad">✗ NOT VERIFIED</span> simplification was inconclusive' in out
    assert "1 of 2 form(s) NOT VERIFIED" in out
    assert "dk-ok" not in out.split("<h4>Matrix form</h4>")[1].split("</section>")[0]


@pytest.mark.usefixtures("shared_derivations")
def test_derivation_lists_the_backward_program_conventions_notes_references():
    import derivkit.api as api

    d = api.derive_recipe("mlp3")
    out = html.derivation_html(d)
    program = out.split("<h3>Backward program</h3>")[1].split("</ol>")[0]
    assert program.count("<li>") == len(d.chain) and program.count("<math") == len(d.chain)
    for section in ("Conventions", "Notes", "References"):
        assert f"<h3>{section}</h3>" in out


def test_hostile_result_text_is_escaped_everywhere():
    d = replace(make_linear_derivation(), summary=HOSTILE, notes=(HOSTILE,), target=HOSTILE,
                references=(HOSTILE,))
    t = replace(make_check(failing=True), target=HOSTILE, conventions=(HOSTILE,), error=HOSTILE)
    v = replace(make_verdict(), claim=HOSTILE, reading=HOSTILE, wrt=HOSTILE, notes=(HOSTILE,))
    for out in (html.derivation_html(d), html.target_html(t), html.report_html(CheckReport(False, (t,))),
                html.verdict_html(v), html.page(HOSTILE, "")):
        assert "<script" not in out and "\x1b" not in out and "\u202e" not in out and "\x00" not in out
        assert "&lt;script&gt;" in out
        assert "script" not in html_tags(out).tags


def test_check_fragment_table_and_failure_details():
    out = html.target_html(make_check(failing=True))
    table = out.split("<table>")[1].split("</table>")[0]
    assert table.count("<tr>") == 3     # header + one row per result
    assert '<span class="dk-ok">✓ pass</span>' in table and '<span class="dk-bad">✗ FAIL</span>' in table
    assert "diagnosis: transposed" in out and "worst entries" in out
    assert "1 of 2 derivative check(s) FAILED" in out
    assert "All 2 derivative check(s) passed" in html.target_html(make_check())
    rule = ET.fromstring(re.search(r"<math.*?</math>", out).group())   # the pass rule, as maths
    assert rule.find(f".//{M}annotation").text == html.PASS_RULE and "≤" in ET.tostring(rule, "unicode")


def test_report_fragment_one_row_per_check_and_verdict():
    report = CheckReport(False, (make_check(), make_check(failing=True, target="relu")))
    out = html.report_html(report)
    assert "1/2 targets passed" in out and "<h3>What failed</h3>" in out
    summary = out.split("<table>")[1].split("</table>")[0]
    assert summary.count("<tr>") == 5 and summary.count("✗ FAIL") == 1
    assert "2/2 targets passed" in html.report_html(CheckReport(True, (make_check(), make_check())))


def test_verdict_fragment():
    out = html.verdict_html(make_verdict())
    assert "✗ REFUTED" in out and "<math" in out and "Counterexample" in out
    assert "[0.5, -1.25]" in out and "diag(p) - p⋅pᵀ" in out
    assert "✓ VERIFIED" in html.verdict_html(make_verdict("verified"))


def _train_result(**kw):
    from derivkit.training import TrainResult

    values = dict(recipe="mlp3", epochs=3, lr=0.05, seed=0, sizes={"m": 64}, losses=(1.0, 0.5, 0.25),
                  final_loss=0.125)
    values.update(kw)
    return TrainResult(**values)


def test_train_fragment():
    out = html.train_html(_train_result())
    assert "first 1 → last 0.125 (×0.125)" in out and "<polyline" in out
    dev = html.train_html(_train_result(use_updated_weights=True, last_layer=("W3", "b3"),
                                        deviations={"W2": (0.1, 0.3)}))
    assert "W3, b3 updated before backpropagating" in dev and "20%" in dev and "30%" in dev


def test_page_is_self_contained_and_phone_ready():
    out = html.page("derivkit derive softmax", html.derivation_html(make_softmax_derivation()))
    assert out.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    assert '<meta charset="utf-8">' in out
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in out
    parsed = html_tags(out)
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(parsed.tags)
    assert not [a for a, _ in parsed.attrs if a in ("src", "href") or a.startswith("on")]
    assert "url(" not in out and "@import" not in out
    assert ".dk-math{overflow-x:auto" in out and ".dk-wrap{overflow-x:auto" in out


# ---------------------------------------------------------------------------- notebook text

def test_derivation_latex_is_aligned_equations():
    out = notebook.derivation_latex(make_softmax_derivation())
    assert out.startswith(r"$$\begin{aligned}") and out.endswith(r"\end{aligned}$$")
    assert r"\frac{\partial p_{i}}{\partial z_{j}} &= p_{i}" in out
    bad = notebook.derivation_latex(make_linear_derivation(matrix_verified=False))
    assert bad.count(r"\text{(NOT VERIFIED)}") == 1


def test_markdown_headline_and_formulas():
    out = notebook.derivation_markdown(make_softmax_derivation())
    assert out.startswith("**softmax: Softmax of a vector**")
    assert "$$\n\\frac{\\partial p}{\\partial z} = \\operatorname{diag}" in out
    assert "NOT VERIFIED" in notebook.derivation_markdown(make_linear_derivation(matrix_verified=False))


def test_notebook_text_escapes_user_text():
    assert notebook.md_text("*a* <b> [x](y) $z$") == r"\*a\* \<b\> \[x\]\(y\) \$z\$"
    assert notebook.tex_text("a$b{c}\\d") == "a＄b｛c｝＼d"
    t = replace(make_check(), target="<img src=x>$")
    assert not re.search(r"(?<!\\)[<$]", notebook.target_markdown(t))
    assert "$" not in notebook.target_latex(t).strip("$")


# ---------------------------------------------------------------------------- display methods

def test_results_have_jupyter_display_methods():
    d = make_softmax_derivation()
    shown = d._repr_html_()
    assert "<math" in shown and shown.startswith('<div class="tex2jax_ignore mathjax_ignore"><style>')
    assert d._repr_latex_().startswith("$$") and d._repr_markdown_().startswith("**softmax")
    t = make_check(failing=True)
    report = CheckReport(False, (t,))
    v = make_verdict()
    r = _train_result()
    for obj, word in ((t, "FAIL"), (report, "0/1 targets passed"), (v, "REFUTED"), (r, "mlp3")):
        assert word in obj._repr_html_() and obj._repr_latex_().startswith("$$")
        assert word.split()[0].strip("0/1") in obj._repr_markdown_() or word in obj._repr_markdown_()
    assert "<math" in v._repr_html_()


# ---------------------------------------------------------------------------- the CLI

@pytest.mark.usefixtures("shared_derivations")
def test_derive_html_writes_the_page_and_prints_as_usual(runner, tmp_path):
    from derivkit.cli.app import app

    out = tmp_path / "softmax.html"
    result = runner.invoke(app, ["derive", "softmax", "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert "softmax" in result.stdout and "<math" not in result.stdout   # the terminal output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<math") >= 5
    assert "<title>derivkit derive softmax</title>" in page
    assert [p for p in os.listdir(tmp_path)] == ["softmax.html"]   # no temporary file left


@pytest.mark.usefixtures("shared_derivations")
def test_check_html_for_one_recipe_and_for_all(runner, tmp_path, builtin_recipes):
    from derivkit.cli.app import app

    one = tmp_path / "linear.html"
    result = runner.invoke(app, ["check", "linear", "--html", str(one)])
    assert result.exit_code == 0, result.output
    page = one.read_text(encoding="utf-8")
    # X, W and b, each full and directional
    assert "All 6 derivative check(s) passed" in page and page.count("✓ pass") == 6
    builtin_recipes("relu", "linear")
    every = tmp_path / "all.html"
    result = runner.invoke(app, ["check", "--all", "--html", str(every)])
    assert result.exit_code == 0, result.output
    page = every.read_text(encoding="utf-8")
    assert "2/2 targets passed" in page and "<title>derivkit check --all</title>" in page


def test_html_to_a_folder_or_a_link_is_one_error_line_before_any_work(runner, tmp_path, monkeypatch):
    import derivkit.api as api
    from derivkit.cli.app import app

    def boom(*a, **k):
        raise AssertionError("derived before refusing the destination")

    monkeypatch.setattr(api, "derive_recipe", boom)
    monkeypatch.setattr(api, "check_recipe", boom)
    link = tmp_path / "link.html"
    link.symlink_to(tmp_path / "target.html")
    for args in (["derive", "softmax", "--html", str(tmp_path)],
                 ["check", "linear", "--html", str(link)],
                 ["derive", "softmax", "--html", str(tmp_path / "no" / "such.html")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("derivkit: error: ") and "--html" in lines[0]
    assert not (tmp_path / "target.html").exists()
