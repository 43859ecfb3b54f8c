"""Every recipe: derived, every form verified, and its matrix forms equal to independent
hand-written NumPy formulas and to central finite differences on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
import transformer_ref
from conftest import recipe_params

from derivkit import api
from derivkit.lang import recipes
from derivkit.lowering import forms

RECIPES = [r.name for r in recipes.load_all()]

# No test here changes how derivkit derives: derivations are shared across the session (conftest).
pytestmark = pytest.mark.usefixtures("shared_derivations")


def _sample(shape, domain, rng):
    x = rng.standard_normal(shape)
    if domain == "positive":
        return np.abs(x) + 0.5
    if domain == "nonzero":
        return np.where(x >= 0, 1, -1) * (np.abs(x) + 0.1)
    return x


def _inputs(recipe, rng, sizes):
    vals = {}
    for spec in recipe.inputs:
        shape = tuple(d if isinstance(d, int) else sizes[d] for d in spec.shape)
        vals[spec.name] = _sample(shape, spec.domain, rng)
    return vals


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def _mlp3_backprop(v, p):
    """Hand-written backprop for recipes/mlp3.toml (weights out × in, one sample per row)."""
    a = p["alpha"]

    def leaky(z):
        return np.where(z >= 0, z, a * z)

    def dleaky(z):
        return np.where(z >= 0, 1.0, a)

    X, T = v["X"], v["T"]
    Z1 = X @ v["W1"].T + v["b1"]
    A1 = leaky(Z1)
    Z2 = A1 @ v["W2"].T + v["b2"]
    A2 = leaky(Z2)
    Z3 = A2 @ v["W3"].T + v["b3"]
    Y = leaky(Z3)
    m = X.shape[0]
    d3 = (Y - T) / m * dleaky(Z3)          # Δ at Z3
    d2 = (d3 @ v["W3"]) * dleaky(Z2)       # uses W3 before any update
    d1 = (d2 @ v["W2"]) * dleaky(Z1)
    return {"W3": d3.T @ A2, "b3": d3.sum(0), "W2": d2.T @ A1, "b2": d2.sum(0),
            "W1": d1.T @ X, "b1": d1.sum(0)}


# Independent references, written by hand from textbooks (not from derivkit's output):
# name -> (kind, wrt) -> f(values, upstream, params)
REFERENCE = {
    "linear": {
        ("vjp", "X"): lambda v, G, p: G @ v["W"].T,
        ("vjp", "W"): lambda v, G, p: v["X"].T @ G,
        ("vjp", "b"): lambda v, G, p: G.sum(axis=0),
    },
    "softmax": {
        ("jacobian", "z"): lambda v, g, p: (np.diag(_softmax(v["z"]))
                                            - np.outer(_softmax(v["z"]), _softmax(v["z"]))),
        ("vjp", "z"): lambda v, g, p: (np.diag(_softmax(v["z"]))
                                       - np.outer(_softmax(v["z"]), _softmax(v["z"]))).T @ g,
    },
    "relu": {
        ("jacobian", "x"): lambda v, g, p: np.diag((v["x"] > 0).astype(float)),
        ("vjp", "x"): lambda v, g, p: g * (v["x"] > 0),
    },
    "leaky-relu": {
        ("jacobian", "x"): lambda v, g, p: np.diag(np.where(v["x"] >= 0, 1.0, p["alpha"])),
        ("vjp", "x"): lambda v, g, p: g * np.where(v["x"] >= 0, 1.0, p["alpha"]),
    },
    "mse": {("gradient", "Y"): lambda v, g, p: 2 * (v["Y"] - v["T"]) / v["Y"].size},
    "mse-half": {("gradient", "Y"): lambda v, g, p: (v["Y"] - v["T"]) / v["Y"].shape[0]},
    "sigmoid": {
        ("jacobian", "x"): lambda v, g, p: np.diag(_sig(v["x"]) * (1 - _sig(v["x"]))),
        ("vjp", "x"): lambda v, g, p: g * _sig(v["x"]) * (1 - _sig(v["x"])),
    },
    "tanh": {
        ("jacobian", "x"): lambda v, g, p: np.diag(1 - np.tanh(v["x"]) ** 2),
        ("vjp", "x"): lambda v, g, p: g * (1 - np.tanh(v["x"]) ** 2),
    },
    "mlp3": {("gradient", w): (lambda w: lambda v, g, p: _mlp3_backprop(v, p)[w])(w)
             for w in ("W1", "b1", "W2", "b2", "W3", "b3")},
    "transformer-block": {("gradient", w): (lambda w: lambda v, g, p: transformer_ref.backward(v, p)[w])(w)
                          for w in ("X", "Wq", "Wk", "Wv", "Wo", "W1", "W2", "Wu", "g1", "g2")},
    "attention-batched": {
        ("vjp", w): (lambda w: lambda v, G, p: transformer_ref.attention_batched_vjp(v, G)[w])(w)
        for w in ("Q", "K", "V")},
}
COMPOSITES = {"mlp3", "transformer-block"}  # verified by the oracle, not element-wise (too large)
BATCHED = {"attention-batched"}   # index forms too; matrix forms by the oracle (b·t·t exponentials)


@pytest.fixture(scope="module")
def derivations():

    from conftest import ByName

    return ByName(api.derive_recipe)   # each derived on first use: one worker derives the heavy one


def test_every_builtin_recipe_has_an_independent_reference():
    assert set(RECIPES) <= set(REFERENCE), "add a hand-written reference for each built-in recipe"


@pytest.mark.parametrize("name", recipe_params(RECIPES))
def test_every_form_is_verified(derivations, name):
    d = derivations[name]
    assert d.derivatives
    for dv in d.derivatives:
        assert dv.matrix is not None and dv.matrix.verification.verified, dv.matrix
        assert len(dv.matrix.verification.sizes) >= 3
        assert "verified numerically at" in dv.matrix.verification.detail   # the oracle, always
        if name in COMPOSITES:
            assert dv.matrix.verification.method == "oracle"
            continue
        assert dv.index is not None and dv.index.verification.verified, dv.index
        assert dv.matrix.verification.method == ("oracle" if name in BATCHED else "symbolic")


@pytest.mark.parametrize("name", recipe_params(RECIPES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matrix_forms_match_hand_written_numpy(derivations, name, seed):
    recipe = recipes.load(name)
    rng = np.random.default_rng(seed)
    sizes = {"m": 4, "n": 3, "k": 5, "d": 2, "d0": 3, "d1": 5, "d2": 4, "d3": 2, "t": 4, "f": 3,
             "v": 5, "b": 3}
    values = _inputs(recipe, rng, sizes)
    params = {p.name: p.default for p in recipe.params}
    out = forms.forward_function(recipe)(**values)
    upstream = rng.standard_normal(np.shape(out))
    for dv in derivations[name].derivatives:
        f = forms.form_function(recipe, dv.matrix.text)
        kwargs = dict(values)
        if dv.kind == "vjp":
            kwargs[recipe.upstream] = upstream
        got = np.broadcast_to(f(**kwargs), dv_shape(dv, values, out))
        want = REFERENCE[name][(dv.kind, dv.wrt)](values, upstream, params)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"{name} {dv.kind} {dv.wrt}")


def dv_shape(dv, values, out):
    x = np.shape(values[dv.wrt])
    return np.shape(out) + x if dv.kind == "jacobian" else x


@pytest.mark.parametrize("name", recipe_params(RECIPES))
def test_matrix_forms_match_finite_differences(derivations, name):
    recipe = recipes.load(name)
    rng = np.random.default_rng(7)
    values = _inputs(recipe, rng, {"m": 3, "n": 4, "k": 2, "d": 5, "d0": 3, "d1": 5, "d2": 4,
                                   "d3": 2, "t": 3, "f": 4, "v": 2, "b": 2})
    fwd = forms.forward_function(recipe)
    out = fwd(**values)
    upstream = rng.standard_normal(np.shape(out))
    for dv in derivations[name].derivatives:
        if dv.kind == "jacobian":
            continue
        f = forms.form_function(recipe, dv.matrix.text)
        kwargs = dict(values)
        if dv.kind == "vjp":
            kwargs[recipe.upstream] = upstream
        got = np.broadcast_to(f(**kwargs), np.shape(values[dv.wrt]))
        weight = upstream if dv.kind == "vjp" else 1.0
        x0 = values[dv.wrt]
        num = np.zeros_like(x0)
        for idx in np.ndindex(*x0.shape):
            h = 1e-6 * max(1.0, abs(x0[idx]))
            plus, minus = dict(values), dict(values)
            plus[dv.wrt] = x0.copy()
            plus[dv.wrt][idx] += h
            minus[dv.wrt] = x0.copy()
            minus[dv.wrt][idx] -= h
            num[idx] = np.sum(weight * (fwd(**plus) - fwd(**minus))) / (2 * h)
        np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-8)


def test_index_forms_of_the_classics():
    """The index forms the issue names, as derived (compared as canonical text)."""
    lin = {dv.wrt: dv for dv in api.derive_recipe("linear").derivatives}
    assert lin["W"].index.text == "X[i,r]*delta(j,s)"
    assert lin["W"].matrix.text == "X.T @ G"
    assert lin["X"].matrix.text == "G @ W.T"
    assert lin["b"].matrix.text == "sum(G, axis=0)"
    soft = {dv.kind: dv for dv in api.derive_recipe("softmax").derivatives}
    assert soft["jacobian"].index.text == "p[i]*(delta(i,j) - p[j])"
    assert soft["jacobian"].matrix.text == "diag(p) - outer(p, p)"
    assert soft["vjp"].matrix.text == "p * (g - sum(g * p))"


def test_kink_conventions_are_computed_and_stated():
    relu = api.derive_recipe("relu")
    assert any("relu'(0) = 0" in c for c in relu.conventions)
    leaky = api.derive_recipe("leaky-relu")
    assert any("leaky_relu'(0) = 1" in c and "alpha from the left" in c for c in leaky.conventions)


@pytest.mark.parametrize("expr,wrt,shapes,expected", [
    ("trace(A @ X)", "X", {"A": "n,n", "X": "n,n"}, "A.T"),
    ("log(det(X))", "X", {"X": "n,n"}, "inv(X).T"),
    ("sum(X * X)", "X", {"X": "m,n"}, "2 * X"),
    ("x @ A @ x", "x", {"A": "n,n", "x": "n"}, "(A.T + A) @ x"),
])
def test_user_expressions(expr, wrt, shapes, expected):
    d = api.derive_expression(expr, [wrt], shapes)
    (dv,) = d.derivatives
    assert dv.kind == "gradient"
    assert dv.matrix.text == expected
    assert dv.verified


def test_sympy_pitfalls_are_right_here():
    """Cases SymPy's matrix calculus gets wrong (0 for log det, exp trace): derived correctly."""
    d = api.derive_expression("exp(trace(X))", ["X"], {"X": "n,n"})
    assert d.derivatives[0].matrix.text == "f * eye(n)" and d.verified
    d = api.derive_expression("sum(softmax(z) * y)", ["z"], {"z": "n", "y": "n"})
    assert d.verified


def test_scalar_rules_keep_float_constants_exact():
    """A float in an elementwise derivative (e.g. 0.5) is lowered as 0.5, not rounded."""
    import sympy as sp

    from derivkit.derivation.vjp import from_scalar_sympy
    from derivkit.lang import ir

    t = sp.Symbol("t", real=True)
    x = ir.Var("x", ("n",))
    node = from_scalar_sympy(sp.Float(0.5) * t + sp.Rational(1, 3), {t: x})
    consts = sorted(float(n.value) for n in ir.walk(node) if isinstance(n, ir.Const))
    assert consts == [1 / 3, 0.5]
