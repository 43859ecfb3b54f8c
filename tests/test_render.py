"""Renderers read only `derivkit.results`; tested here on hand-built results (no engine needed)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import make_linear_derivation
from rich.console import Console

from derivkit.lang.shapes import fmt_size_list as format_sizes
from derivkit.render import FORMS, form_selection
from derivkit.render.json_render import derivation_data, dumps, recipes_data
from derivkit.render.rich_render import equation, render_derivation, render_recipes
from derivkit.results import RecipeSummary, Verification

ANSI = "\x1b["


def _render(derivation, form=None, **console_kwargs) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=100, highlight=False, **console_kwargs)
    render_derivation(console, derivation, form)
    return buf.getvalue()


# ---------------------------------------------------------------------------- JSON

def test_json_derivation_has_the_required_keys(softmax_derivation):
    data = json.loads(dumps(derivation_data(softmax_derivation)))
    assert data["target"] == "softmax"
    (d,) = data["derivatives"]
    assert d["wrt"] == "z"
    assert d["kind"] == "jacobian"
    assert d["index_form"] == "p[i]*(delta(i,j) - p[j])"
    assert d["matrix_form"] == "diag(p) - outer(p, p)"
    assert d["latex"] == r"\frac{\partial p}{\partial z} = \operatorname{diag}(p) - p p^{T}"
    assert d["verified"] is True
    assert d["verified_at"] == [{"n": 2}, {"n": 3}, {"n": 4}]
    assert data["params"] == {"alpha": 0.01}
    assert data["verified"] is True


def test_json_without_matrix_form_uses_the_index_equation():
    data = derivation_data(make_linear_derivation(with_matrix=False))
    (d,) = data["derivatives"]
    assert d["matrix_form"] is None
    assert d["matrix"] is None
    assert d["latex"].startswith(r"\frac{\partial Y_{i j}}{\partial W_{r s}} = ")
    assert d["verified_at"] == [{"m": 2, "n": 3, "k": 4}, {"m": 3, "n": 4, "k": 5}]


def test_json_unverified_form_is_reported_unverified():
    data = derivation_data(make_linear_derivation(matrix_verified=False))
    (d,) = data["derivatives"]
    assert d["verified"] is False
    assert data["verified"] is False
    assert d["matrix"]["verification"] == {"verified": False, "method": "none", "sizes": [],
                                           "detail": "simplification was inconclusive"}
    assert d["index"]["verification"]["verified"] is True
    assert d["verified_at"] == []


def test_json_is_plain_serialisable_and_has_no_markup(linear_derivation):
    text = dumps(derivation_data(linear_derivation))
    assert ANSI not in text
    data = json.loads(text)
    assert data["inputs"][0] == {"name": "X", "shape": "m×n", "dims": ["m", "n"], "domain": "real"}
    assert data["derivatives"][0]["shape"] == ["n", "k"]
    assert data["derivatives"][0]["upstream"] == "G"


def test_json_recipes():
    data = recipes_data([RecipeSummary("linear", "Affine", (("X", "m×n"), ("W", "n×k")), ("W",), None)])
    assert data == {"recipes": [{"name": "linear", "summary": "Affine",
                                 "inputs": {"X": "m×n", "W": "n×k"}, "wrt": ["W"], "path": None}]}


# ---------------------------------------------------------------------------- Rich

def test_rich_shows_index_and_matrix_forms_with_their_verification(linear_derivation):
    out = _render(linear_derivation)
    assert "∂Y[i,j]/∂W[r,s] = X[i,r]⋅δ[j,s]" in out      # brackets are text, not Rich markup
    assert "∂L/∂W = Xᵀ⋅G" in out
    assert out.count("✓ verified symbolically at (m, n, k) = (2, 3, 4), (3, 4, 5)") == 2
    assert "NOT VERIFIED" not in out
    assert "LaTeX" not in out                               # only with --form latex|all
    assert "upstream gradient G = ∂L/∂Y" in out
    assert "Y = X⋅W + b" in out
    assert "One sample per row of X." in out and "The Matrix Cookbook" in out


def test_rich_unverified_form_is_loud():
    out = _render(make_linear_derivation(matrix_verified=False))
    assert "✗ NOT VERIFIED: simplification was inconclusive" in out
    assert "NOT VERIFIED: treat them as unconfirmed" in out
    assert "All" not in out.splitlines()[-1]


def test_rich_missing_matrix_form_is_said_plainly():
    out = _render(make_linear_derivation(with_matrix=False))
    assert "no closed matrix form obtained; see the index form" in out


@pytest.mark.parametrize("form, present, absent", [
    ("index", ["∂Y[i,j]/∂W[r,s] = "], ["∂L/∂W = ", "LaTeX"]),
    ("matrix", ["∂L/∂W = Xᵀ⋅G"], ["∂Y[i,j]/∂W[r,s] = ", "LaTeX"]),
    ("latex", [r"\frac{\partial L}{\partial W} = X^{T} G",
               r"\frac{\partial Y_{i j}}{\partial W_{r s}} = X_{i r} \delta_{j s}"], ["Xᵀ⋅G"]),
    ("all", ["∂L/∂W = Xᵀ⋅G", "∂Y[i,j]/∂W[r,s] = ", r"\frac{\partial L}{\partial W} = X^{T} G"], []),
])
def test_rich_form_selection(linear_derivation, form, present, absent):
    out = _render(linear_derivation, form)
    for text in present:
        assert text in out
    for text in absent:
        assert text not in out
    assert "✓ verified" in out          # every shown form carries its verification


def test_form_selection_covers_every_choice():
    for form in (None, *FORMS):
        forms, notations = form_selection(form)
        assert forms and notations
    with pytest.raises(ValueError):
        form_selection("pretty")


def test_multiline_forward_is_aligned(softmax_derivation):
    out = _render(softmax_derivation)
    assert "  p =     exp(z)  " not in out
    lines = out.splitlines()
    bar = next(i for i, line in enumerate(lines) if "───────────" in line and "p = " in line)
    assert "exp(z)" in lines[bar - 1] and "sum(exp(z))" in lines[bar + 1]


def test_equation_helper():
    assert equation("y", "x + 1") == "y = x + 1"
    assert equation(None, "x") == "x"
    assert equation("y", "a\n─\nb") == "    a\ny = ─\n    b"


def test_format_sizes():
    assert format_sizes([{"n": 2}, {"n": 3}]) == "n = 2, 3"
    assert format_sizes([{"m": 2, "n": 3}]) == "(m, n) = (2, 3)"
    assert format_sizes([]) == ""
    assert format_sizes([{"m": 2}, {"n": 3}]) == "m=2; n=3"


def test_no_ansi_when_not_a_terminal(linear_derivation):
    out = _render(make_linear_derivation(matrix_verified=False))
    assert ANSI not in out


def test_colour_on_a_terminal_and_none_with_no_color(linear_derivation):
    coloured = _render(linear_derivation, force_terminal=True, color_system="standard")
    assert ANSI in coloured
    plain = _render(linear_derivation, force_terminal=True, color_system="standard",
                    _environ={"NO_COLOR": "1"})
    assert "\x1b[3" not in plain and "\x1b[9" not in plain   # no foreground colours


def test_recipes_table_lists_names_unwrapped():
    buf = io.StringIO()
    summaries = [RecipeSummary("leaky-relu", "Leaky ReLU " * 10, (("x", "n"),), ("x",), None)]
    render_recipes(Console(file=buf, width=60), summaries)
    out = buf.getvalue()
    assert "leaky-relu" in out
    assert "1 recipe(s)" in out


def test_derivative_without_any_form_is_not_verified():
    from dataclasses import replace

    r = make_linear_derivation()
    r = replace(r, derivatives=(replace(r.derivatives[0], index=None, matrix=None),))
    out = _render(r)
    assert "index form: not obtained" in out
    assert "no closed matrix form obtained" in out
    assert "NOT VERIFIED" in out.splitlines()[-1]
    assert derivation_data(r)["derivatives"][0]["verified"] is False


def test_lhs_already_in_the_form_is_not_repeated():
    """The engine writes `Form.latex` and `forward_pretty` as whole equations and puts its own
    sentence in `Verification.detail`; nothing may be printed twice."""
    from dataclasses import replace

    r = make_linear_derivation(matrix_verified=False)
    d = r.derivatives[0]
    bad = Verification(False, "none", ({"m": 2, "n": 3, "k": 4},),
                       "NOT VERIFIED: disagrees with the element-wise derivation at m = 2")
    good = Verification(True, "symbolic", ({"m": 2, "n": 3, "k": 4},), "verified symbolically at m = 2")
    d = replace(d, matrix=replace(d.matrix, latex=r"\frac{\partial L}{\partial W} = X^{T} G",
                                  verification=bad),
                index=replace(d.index, verification=good))
    r = replace(r, forward_pretty="Y = X⋅W + b", derivatives=(d,))
    out = _render(r, "all")
    assert "Y = Y =" not in out and "Y = X⋅W + b" in out
    assert out.count(r"\frac{\partial L}{\partial W} =") == 1
    assert "✗ NOT VERIFIED: disagrees with the element-wise derivation at m = 2" in out
    assert out.count("NOT VERIFIED") == 2            # the form's line and the summary line
    assert "✓ verified symbolically at m = 2" in out
    assert derivation_data(r)["derivatives"][0]["latex"] == r"\frac{\partial L}{\partial W} = X^{T} G"


def test_long_notes_wrap_under_their_text():
    from dataclasses import replace

    r = replace(make_linear_derivation(), notes=("word " * 40,))
    lines = _render(r).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  • word"))
    assert lines[start + 1].startswith("    word")


def test_one_json_writer_with_one_convention_for_non_finite_numbers():
    import ast
    import json
    import math

    from derivkit.render import json_doc

    doc = json_doc.dumps({"x": [math.inf, -math.inf, math.nan, 1.5], "t": (1, 2), 3: "\x1b"})
    assert json.loads(doc) == {"x": ["Infinity", "-Infinity", "NaN", 1.5], "t": [1, 2], "3": "\x1b"}
    package = Path(json_doc.__file__).parent.parent
    writers = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                     for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
                     if isinstance(n, ast.Attribute) and n.attr == "dumps"
                     and isinstance(n.value, ast.Name) and n.value.id == "json")
    assert writers == ["render/json_doc.py"]
