"""Identities the simplifier uses to print the textbook's forms, each checked to shorten a form
and to keep its value: Σ(x − mean(x)) = 0, Σ over a sum of terms, Σx / N = mean(x); and every
printed form is verified as its text reads back (`program.reread`)."""

from __future__ import annotations

import numpy as np
import pytest

from derivkit import api
from derivkit.derivation.simplify import simplify
from derivkit.lang import ir
from derivkit.lang.parse import Scope, parse
from derivkit.lang.printing import language
from derivkit.lang.program import reread

SCOPE = Scope({"x": ("n",), "g": ("n",), "X": ("m", "n"), "G": ("m", "n"), "A": ("n", "n"),
               "B": ("n", "m")}, {"eps": 1e-5})


def _simplified(text: str) -> str:
    return language(simplify(parse(text, SCOPE)))


@pytest.mark.parametrize("text, want", [
    ("sum(x - mean(x))", "0"),
    ("sum(g * sum(x) + (x - mean(x)) * sum(g))", "sum(x) * sum(g)"),
    ("sum(X - mean(X, axis=0, keepdims=True), axis=0, keepdims=True)", "0 * ones(1, n)"),
    ("sum(X - mean(X, axis=0), axis=0)", "0 * ones(n)"),
    ("sum(X - mean(X, axis=1, keepdims=True), axis=0)", None),   # not the mean's axis: kept
    ("sum(x) / n", "mean(x)"),
    ("sum(X, axis=0) / m", "mean(X, axis=0)"),
    ("sum(X, axis=1, keepdims=True) / n", "mean(X, axis=1, keepdims=True)"),
    ("sum(X, axis=0) / n", "sum(X, axis=0) / n"),   # n is not the size of axis 0
    ("A.T @ X.T", "(X @ A).T"),   # Aᵀ Bᵀ = (B A)ᵀ: one transpose for a run of them
    ("B.T @ A.T @ A.T @ X.T", "(X @ A @ A @ B).T"),
    ("(B.T @ A.T) @ x", "(A @ B).T @ x"),
    ("X.T @ G", "X.T @ G"),   # one transpose: kept
    ("(X @ A).T @ G", "(X @ A).T @ G"),   # a run inside a longer chain
])
def test_identities_shorten_and_keep_the_value(text, want):
    got = _simplified(text)
    if want is not None:
        assert got == want
    assert ir.operations(parse(got, SCOPE)) <= ir.operations(parse(text, SCOPE))
    rng = np.random.default_rng(0)
    values = {"x": rng.normal(size=4), "g": rng.normal(size=4), "X": rng.normal(size=(3, 4)),
              "G": rng.normal(size=(3, 4)), "A": rng.normal(size=(4, 4)), "B": rng.normal(size=(4, 3))}
    from derivkit.lowering.source import compile_function, function_source

    def run(t: str):
        node = parse(t, SCOPE)
        src = function_source("f", list(values), node, dict(SCOPE.inputs), {}, {"eps": 1e-5})
        return compile_function("f", src)(**values)

    np.testing.assert_allclose(run(got), run(text), rtol=1e-12, atol=1e-12)


def test_a_mean_over_axis_0_prints_its_axis():
    """The printed text must mean what the IR means: mean(dU, axis=0), never mean(dU)."""
    node = simplify(parse("sum(X, axis=0) / m", SCOPE))
    assert reread(node, SCOPE) == node


def test_layer_norm_prints_the_textbook_form():
    d = api.derive_expression("sum(((x - mean(x)) / sqrt(mean((x - mean(x))**2) + eps)) * g)",
                              ["x"], {"x": "n", "g": "n"}, params={"eps": 1e-5})
    (dv,) = d.derivatives
    assert dv.matrix.text == "(g - mean(g) - mean(g * U) * U / H**2) / H"
    assert [c.name_text for c in d.chain][-1] == "dU - mean(dU)"
    assert d.verified


def test_a_printed_constant_is_verified_as_it_reads():
    """leaky ReLU's slope 0.01 is printed as 0.01 and verified as 1/100, as the text reads (the
    oracle reads a float as the decimal it prints as)."""
    d = api.derive_expression("sum(leaky_relu(x) * g)", ["x"], {"x": "n", "g": "n"})
    (dv,) = d.derivatives
    assert "0.01" in dv.matrix.text and dv.matrix.verification.verified
