"""The transformer's elementwise functions (issue 13) against hand-written NumPy: erf, gelu
(exact), gelu_tanh, log1p, expm1, softplus, square, and the constants pi and e. Each forward as
lowered, and each derived gradient, is compared with an independent reference written here from
the textbook formula (math.erf, PyTorch's GELU formulas), at ordinary and at large inputs, in
float64 and float32 (a gradient must be finite where the forward is)."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derivkit import api
from derivkit.derivation import elementwise
from derivkit.lang import ir
from derivkit.lang.parse import Scope, parse
from derivkit.lang.printing import language, latex, pretty
from derivkit.lowering.forms import form_function
from derivkit.lowering.module import load
from derivkit.lowering.source import compile_function, function_source

_erf = np.vectorize(math.erf)
SQRT_2_PI = math.sqrt(2.0 / math.pi)


def _phi(x):   # the standard normal density
    return np.exp(-x * x / 2.0) / math.sqrt(2.0 * math.pi)


def _gelu_tanh_u(x):
    return SQRT_2_PI * (x + 0.044715 * x ** 3)


#: name -> (forward, derivative), hand-written
REFERENCE = {
    "erf": (_erf, lambda x: 2.0 / math.sqrt(math.pi) * np.exp(-x * x)),
    "gelu": (lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
             lambda x: 0.5 * (1.0 + _erf(x / math.sqrt(2.0))) + x * _phi(x)),
    "gelu_tanh": (lambda x: 0.5 * x * (1.0 + np.tanh(_gelu_tanh_u(x))),
                  lambda x: 0.5 * (1.0 + np.tanh(_gelu_tanh_u(x)))
                  + 0.5 * x * (1.0 - np.tanh(_gelu_tanh_u(x)) ** 2) * SQRT_2_PI
                  * (1.0 + 3.0 * 0.044715 * x * x)),
    "log1p": (lambda x: np.log(1.0 + x), lambda x: 1.0 / (1.0 + x)),
    "expm1": (lambda x: np.exp(x) - 1.0, np.exp),
    "softplus": (lambda x: np.log(1.0 + np.exp(x)), lambda x: 1.0 / (1.0 + np.exp(-x))),
    "square": (lambda x: x * x, lambda x: 2.0 * x),
}
NAMES = sorted(REFERENCE)
X = np.array([-3.1, -2.6, -2.4, -1.0, -0.2, 0.0, 0.3, 1.1, 2.49, 2.51, 3.7])
POSITIVE = np.array([0.01, 0.3, 1.1, 2.5, 7.0])


def _points(name: str) -> np.ndarray:
    return POSITIVE if name == "log1p" else X


@cache
def _lowered(name: str):
    """(forward, gradient) of sum(f(x) * g) as derivkit lowers them (the gradient from the
    printed, verified matrix form)."""
    expr, wrt, shapes = f"sum({name}(x) * g)", ["x"], {"x": "n", "g": "n"}
    derivation = api.derive_expression(expr, wrt, shapes)
    (dv,) = derivation.derivatives
    assert dv.matrix is not None and dv.matrix.verification.verified, dv.matrix
    recipe = api.recipe_from_expression(expr, wrt, shapes)
    node = parse(f"{name}(x)", Scope({"x": ("n",)}, {}))
    forward = compile_function("f", function_source("f", ["x"], node, {"x": ("n",)}, {}, {}))
    return forward, form_function(recipe, dv.matrix.text)


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_gradient_match_hand_written_numpy(name):
    forward, gradient = _lowered(name)
    x = _points(name)
    g = np.linspace(0.5, 1.5, x.size)
    f_ref, d_ref = REFERENCE[name]
    np.testing.assert_allclose(forward(x=x), f_ref(x), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(gradient(x=x, g=g), g * d_ref(x), rtol=1e-12, atol=1e-15)


def test_the_comparison_catches_a_wrong_gradient():
    _, gradient = _lowered("gelu")
    wrong = 1.001 * gradient(x=X, g=np.ones_like(X))
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(wrong, REFERENCE["gelu"][1](X), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_finite_at_large_inputs(name, dtype):
    """Where the forward is finite, so is the gradient (no exp of an unshifted input)."""
    forward, gradient = _lowered(name)
    x = (np.array([1e-3, 30.0, 80.0, 700.0]) if name == "log1p"
         else np.array([-800.0, -80.0, -30.0, 30.0, 80.0])).astype(dtype)
    with np.errstate(over="ignore"):
        value = forward(x=x)
    finite = np.isfinite(value)
    assert finite.any()
    grad = gradient(x=x, g=np.ones_like(x))
    assert np.all(np.isfinite(grad[finite])), (name, x[finite], grad[finite])


def test_softplus_derivative_is_sigmoid_and_erf_is_a_sympy_function():
    assert elementwise.derivative("softplus").function == "sigmoid"
    d = api.derive_expression("sum(softplus(x))", ["x"], {"x": "n"})
    assert d.derivatives[0].matrix.text == "sigmoid(x)"


def test_a_mutated_rule_is_not_verified(monkeypatch):
    """gelu's rule off by a factor: derive says NOT VERIFIED, it does not print it as fact."""
    import dataclasses

    import sympy as sp

    from derivkit.derivation import vjp

    rule = elementwise.derivative("gelu")
    wrong = dataclasses.replace(rule, expr=rule.expr * sp.Rational(1001, 1000))
    monkeypatch.setattr(vjp.elementwise, "derivative", lambda fn: wrong if fn == "gelu"
                        else elementwise.derivative(fn))
    d = api.derive_expression("sum(gelu(x) * g)", ["x"], {"x": "n", "g": "n"})
    forms = [f for dv in d.derivatives for f in (dv.matrix, dv.index) if f is not None]
    assert forms and not any(f.verification.verified for f in forms)


# ---------------------------------------------------------------- constants pi and e
SCOPE = Scope({"x": ("n",)}, {})


def test_pi_and_e_are_exact_constants():
    node = parse("pi * x + e", SCOPE)
    assert ir.PI in ir.walk(node) and ir.E in ir.walk(node)
    assert language(node) == "pi * x + e"
    assert pretty(node) == "π·x + e" and r"\pi" in latex(node)
    d = api.derive_expression("sum(sin(pi * x) + e ** x)", ["x"], {"x": "n"})
    (dv,) = d.derivatives
    assert dv.matrix.verification.verified and "log" not in dv.matrix.text
    grad = form_function(api.recipe_from_expression("sum(sin(pi * x) + e ** x)", ["x"], {"x": "n"}),
                         dv.matrix.text)
    x = np.array([0.2, -0.7, 1.3])
    np.testing.assert_allclose(grad(x=x), math.pi * np.cos(math.pi * x) + math.e ** x, rtol=1e-13)


def test_a_declared_name_shadows_a_constant():
    scope = Scope({"x": ("n",), "e": ()}, {"pi": 3.0})
    node = parse("pi * x + e", scope)
    assert ir.PI not in ir.walk(node) and ir.E not in ir.walk(node)
    assert {v.name for v in ir.walk(node) if isinstance(v, ir.Var)} == {"pi", "x", "e"}
    shapes = {"x": "n", "e": "scalar"}
    d = api.derive_expression("sum(e * x)", ["x"], shapes)
    grad = form_function(api.recipe_from_expression("sum(e * x)", ["x"], shapes),
                         d.derivatives[0].matrix.text)
    np.testing.assert_allclose(grad(x=np.zeros(3), e=2.5), np.full(3, 2.5))   # the input, not 2.718


@pytest.mark.parametrize("name", ["gelu", "softplus"])
def test_check_passes_with_the_real_only_erf_lowering(name):
    """erf's NumPy lowering is real-only: the check uses central differences for it (and the
    complex step elsewhere), and passes."""
    from derivkit.checking import sampling

    node = parse(f"{name}(x)", SCOPE)
    assert sampling.is_analytic(node) == (name != "gelu")
    result = api.check_expression(f"sum({name}(X @ W) * G)", ["W"],
                                  {"X": "m,n", "W": "n,k", "G": "m,k"})
    assert result.passed and result.results, result
    methods = {r.method for r in result.results}
    assert methods == ({"complex-step"} if name == "softplus" else {"central-richardson"}), methods


# ---------------------------------------------------------------- reductions and two-argument functions
def _lse(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _softmax_ref(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


RNG = np.random.default_rng(7)
Xm = RNG.normal(size=(3, 5))
Ym = RNG.normal(size=(3, 5))
Gr = RNG.normal(size=3)
xv = RNG.normal(size=6)


def _centred(X, axis):
    return X - X.mean(axis=axis, keepdims=True)


#: (expression, wrt, shapes, inputs, forward, {wrt: gradient}), the references by hand
CASES = {
    "logsumexp": ("logsumexp(x)", {"x": "n"}, {"x": xv}, lambda x: _lse(x),
                  {"x": lambda x: _softmax_ref(x)}),
    "logsumexp_axis": ("sum(logsumexp(X, axis=1) * g)", {"X": "m,n", "g": "m"}, {"X": Xm, "g": Gr},
                       lambda X, g: np.sum(_lse(X, axis=1) * g),
                       {"X": lambda X, g: g[:, None] * _softmax_ref(X, axis=1)}),
    "log_softmax": ("-sum(log_softmax(X) * Y)", {"X": "m,n", "Y": "m,n"}, {"X": Xm, "Y": Ym},
                    lambda X, Y: -np.sum((X - _lse(X, axis=1, keepdims=True)) * Y),
                    {"X": lambda X, Y: _softmax_ref(X) * Y.sum(axis=1, keepdims=True) - Y}),
    "var_ddof1": ("sum(var(X, axis=1, ddof=1) * g)", {"X": "m,n", "g": "m"}, {"X": Xm, "g": Gr},
                  lambda X, g: np.sum(np.var(X, axis=1, ddof=1) * g),
                  {"X": lambda X, g: 2 * g[:, None] * _centred(X, 1) / (X.shape[1] - 1)}),
    "std": ("std(x)", {"x": "n"}, {"x": xv}, lambda x: np.std(x),
            {"x": lambda x: (x - x.mean()) / (x.size * np.std(x))}),
    "norm_vector": ("norm(x)", {"x": "n"}, {"x": xv}, lambda x: np.linalg.norm(x),
                    {"x": lambda x: x / np.linalg.norm(x)}),
    "norm_frobenius": ("norm(X)", {"X": "m,n"}, {"X": Xm}, lambda X: np.linalg.norm(X),
                       {"X": lambda X: X / np.linalg.norm(X)}),
    "clip": ("sum(clip(X, -0.5, 0.5) * Y)", {"X": "m,n", "Y": "m,n"}, {"X": Xm, "Y": Ym},
             lambda X, Y: np.sum(np.clip(X, -0.5, 0.5) * Y),
             {"X": lambda X, Y: Y * ((X >= -0.5) & (X <= 0.5))}),
    "maximum": ("sum(maximum(X, Y))", {"X": "m,n", "Y": "m,n"}, {"X": Xm, "Y": Ym},
                lambda X, Y: np.sum(np.maximum(X, Y)),
                {"X": lambda X, Y: (X > Y) * 1.0, "Y": lambda X, Y: (X <= Y) * 1.0}),
    "max_axis": ("sum(max(X, axis=1) * g)", {"X": "m,n", "g": "m"}, {"X": Xm, "g": Gr},
                 lambda X, g: np.sum(X.max(axis=1) * g),
                 {"X": lambda X, g: g[:, None] * (X == X.max(axis=1, keepdims=True))}),
    "min_all": ("min(X) * 3", {"X": "m,n"}, {"X": Xm}, lambda X: 3 * X.min(),
                {"X": lambda X: 3.0 * (X == X.min())}),
    "stable_softmax": ("sum(exp(x - max(x)) / sum(exp(x - max(x))) * y)", {"x": "n", "y": "n"},
                       {"x": xv, "y": xv[::-1].copy()},
                       lambda x, y: np.sum(_softmax_ref(x) * y),
                       {"x": lambda x, y: _softmax_ref(x) * (y - np.sum(_softmax_ref(x) * y))}),
    "minimum": ("sum(minimum(X, Y) * X)", {"X": "m,n", "Y": "m,n"}, {"X": Xm, "Y": Ym},
                lambda X, Y: np.sum(np.minimum(X, Y) * X),
                {"X": lambda X, Y: np.minimum(X, Y) + X * (X < Y),
                 "Y": lambda X, Y: X * (X >= Y)}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_constructs_match_hand_written_numpy(case):
    expr, shapes, inputs, forward, grads = CASES[case]
    wrt = sorted(grads)
    lowered = api.lower_expression(expr, wrt, shapes)
    from derivkit.lowering.module import load

    module = load(lowered)
    np.testing.assert_allclose(module["forward"](**inputs), forward(**inputs), rtol=1e-12)
    derivation = api.derive_expression(expr, wrt, shapes)
    recipe = api.recipe_from_expression(expr, wrt, shapes)
    for dv in derivation.derivatives:
        assert dv.matrix is not None and dv.matrix.verification.verified, (case, dv.matrix)
        got = form_function(recipe, dv.matrix.text)(**inputs)
        np.testing.assert_allclose(got, grads[dv.wrt](**inputs), rtol=1e-11, atol=1e-13,
                                   err_msg=f"{case}: {dv.matrix.text}")


def test_the_max_shifted_softmax_has_the_softmax_gradient():
    """softmax(X − max(X)) is softmax(X): the shift's own gradient sums to zero along the axis,
    and the printed form is the textbook P ⊙ (G − (G ⊙ P) 𝟙), no max in it."""
    d = api.derive_expression("sum(softmax(X - max(X, axis=-1, keepdims=True)) * G)", ["X"],
                              {"X": "m,n", "G": "m,n"})
    assert d.derivatives[0].matrix.text == "P * (G - sum(G * P, axis=1, keepdims=True))"


def test_max_splits_a_tie_equally():
    """As PyTorch's amax and JAX's max: tied maxima share the gradient."""
    d = api.derive_expression("max(x)", ["x"], {"x": "n"})
    grad = form_function(api.recipe_from_expression("max(x)", ["x"], {"x": "n"}),
                         d.derivatives[0].matrix.text)
    np.testing.assert_allclose(grad(x=np.array([3.0, 1.0, 3.0])), [0.5, 0.0, 0.5])
    assert api.check_expression("sum(max(X, axis=0) * g)", ["X"], {"X": "m,n", "g": "n"}).passed


def test_tie_and_bound_conventions():
    """maximum/minimum: at a tie the gradient goes to the second argument; clip passes the
    gradient at its bounds (lo ≤ x ≤ hi), as PyTorch's clamp."""
    shapes = {"x": "n", "y": "n"}
    x = np.array([1.0, -2.0, 0.5])
    y = np.array([1.0, 3.0, 0.5])   # ties at entries 0 and 2
    d = api.derive_expression("sum(maximum(x, y))", ["x", "y"], shapes)
    recipe = api.recipe_from_expression("sum(maximum(x, y))", ["x", "y"], shapes)
    gx, gy = (form_function(recipe, dv.matrix.text)(x=x, y=y) for dv in d.derivatives)
    np.testing.assert_array_equal(gx, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(gy, [1.0, 1.0, 1.0])
    d = api.derive_expression("sum(clip(x, -1, 1))", ["x"], {"x": "n"})
    grad = form_function(api.recipe_from_expression("sum(clip(x, -1, 1))", ["x"], {"x": "n"}),
                         d.derivatives[0].matrix.text)
    np.testing.assert_array_equal(grad(x=np.array([-1.0, 1.0, 1.5, -3.0, 0.2])), [1, 1, 0, 0, 1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_softmax_and_logsumexp_are_stable_at_large_logits(dtype):
    shapes = {"Z": "m,k", "T": "m,k"}
    module_src = api.lower_expression("-sum(log_softmax(Z) * T)", ["Z"], shapes)
    from derivkit.lowering.module import load

    module = load(module_src)
    Z = np.array([[1000.0, 0.0, -1000.0], [88.0, 89.0, 90.0]], dtype=dtype)
    T = np.eye(3, dtype=dtype)[[0, 2]]
    value = module["forward"](Z=Z, T=T)
    grad = module["grad_Z"](Z=Z, T=T)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, _softmax_ref(Z.astype(float)) - T, atol=1e-6)


@pytest.mark.parametrize("expr, says", [
    ("var(x, ddof=-1)", "ddof must be 0 or more"),
    ("logsumexp(x, axis=1)", "axis"),
    ("log_softmax(s)", "needs a vector or a matrix"),
    ("clip(x, 0)", "takes 3"),
    ("norm(x, ord=2)", "no keyword 'ord'"),
    ("max(s)", "needs a vector or a matrix"),
    ("softmax(x, axis=1)", "softmax: axis 1 is out of range"),
    ("max(x, axis=-2)", "max: axis -2 is out of range"),
])
def test_bad_uses_are_one_line_errors(expr, says):
    from derivkit.errors import DerivkitError

    with pytest.raises(DerivkitError) as info:
        parse(expr, Scope({"x": ("n",), "s": ()}, {}))
    assert says in info.value.one_line()


@pytest.mark.parametrize("text, shown", [
    ("mean(X, axis=1, keepdims=True)", r"\operatorname{mean}_{\text{axis}=1}"),
    ("var(X, axis=0, ddof=1)", r"\operatorname{var}_{\text{axis}=0,\ \text{ddof}=1}"),
    ("softmax(X, axis=0)", r"\operatorname{softmax}_{\text{axis}=0}"),
    ("max(X, axis=0)", r"\max_{\text{axis}=0}"),
    ("log_softmax(X)", r"\operatorname{log\_softmax}\left(X\right)"),
])
def test_latex_shows_the_axis_a_reduction_is_over(text, shown):
    assert shown in latex(parse(text, Scope({"X": ("m", "n")}, {})))


# ---------------------------------------------------------------- every reduction, any axis, size-1 axes
def _expand(G, axis, keepdims):
    return G if keepdims or axis is None else np.expand_dims(G, axis)


def _ref_gradient(fn, X, G, axis, keepdims):
    """∂⟨G, fn(X, axis, keepdims)⟩/∂X by hand."""
    Gb = _expand(G, axis, keepdims)
    N = X.size if axis is None else X.shape[axis]
    mu = X.mean(axis=axis, keepdims=True)
    if fn == "sum":
        return np.broadcast_to(Gb, X.shape) * 1.0
    if fn == "mean":
        return np.broadcast_to(Gb, X.shape) / N
    if fn == "logsumexp":
        e = np.exp(X - X.max(axis=axis, keepdims=True))
        return Gb * e / e.sum(axis=axis, keepdims=True)
    if fn == "var":
        return Gb * 2 * (X - mu) / N
    if fn == "std":
        return Gb * (X - mu) / (N * X.std(axis=axis, keepdims=True))
    if fn == "norm":
        return Gb * X / np.sqrt((X * X).sum(axis=axis, keepdims=True))
    hit = X == X.max(axis=axis, keepdims=True)          # max
    return Gb * hit / hit.sum(axis=axis, keepdims=True)


@cache
def _reduction_gradient(fn, axis, keepdims):
    kw = ("" if axis is None else f", axis={axis}") + (", keepdims=True" if keepdims else "")
    out_shape = {None: "scalar", 0: "n", 1: "m"}[axis] if not keepdims else \
        {None: "1,1", 0: "1,n", 1: "m,1"}[axis]
    expr = f"sum({fn}(X{kw}) * G)"
    shapes = {"X": "m,n", "G": out_shape}
    d = api.derive_expression(expr, ["X"], shapes)
    (dv,) = d.derivatives
    assert dv.matrix.verification.verified, (expr, dv.matrix)
    return form_function(api.recipe_from_expression(expr, ["X"], shapes), dv.matrix.text)


@pytest.mark.parametrize("fn", ["sum", "mean", "logsumexp", "var", "std", "norm", "max"])
@settings(max_examples=5, deadline=None, derandomize=True)
@given(axis=st.sampled_from([None, 0, 1]), keepdims=st.booleans(),
       m=st.integers(1, 3), n=st.integers(1, 3), seed=st.integers(0, 99))
def test_every_reduction_over_any_axis_matches_numpy(fn, axis, keepdims, m, n, seed):
    """Over sizes with axes of 1 (a reduction over one entry): the derived, verified gradient
    equals the hand-written one."""
    if fn in ("var", "std") and (m if axis == 0 else n if axis == 1 else m * n) == 1:
        return   # the variance of one entry is 0: std is not differentiable there
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    out = getattr(np, {"norm": "sum", "logsumexp": "sum"}.get(fn, fn))(X, axis=axis, keepdims=keepdims)
    G = rng.normal(size=np.shape(out))
    got = _reduction_gradient(fn, axis, keepdims)(X=X, G=G)
    np.testing.assert_allclose(np.broadcast_to(got, X.shape), _ref_gradient(fn, X, G, axis, keepdims),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("text, want", [
    ("X.mT", "X.T"), ("swapaxes(X, -1, -2)", "X.T"), ("swapaxes(X, 0, 1)", "X.T"),
    ("transpose(X)", "X.T"), ("transpose(X, (1, 0))", "X.T"), ("transpose(X, axes=(0, 1))", "X"),
    ("transpose(x)", "x"),
])
def test_numpy_transposes_mean_what_numpy_means(text, want):
    """.mT and swapaxes(x, -1, -2) swap the last two axes, transpose(x) reverses them all (for
    the matrices of today's language all three are X.T)."""
    assert language(parse(text, Scope({"X": ("m", "n"), "x": ("n",)}, {}))) == want


@pytest.mark.parametrize("text, says", [
    ("x.mT", "'.mT' needs a matrix"), ("swapaxes(X, 0, 2)", "axis 2 is out of range"),
    ("transpose(X, (0, 0))", "not a permutation"), ("swapaxes(X, 1)", "two axes"),
])
def test_bad_transposes_are_one_line_errors(text, says):
    from derivkit.errors import DerivkitError

    with pytest.raises(DerivkitError) as info:
        parse(text, Scope({"X": ("m", "n"), "x": ("n",)}, {}))
    assert says in info.value.one_line()


def test_clip_with_lo_above_hi_is_numpys():
    """np.clip(x, lo, hi) is min(max(x, lo), hi): with lo > hi every entry is hi."""
    shapes = {"x": "n", "a": "scalar", "b": "scalar"}
    module = load(api.lower_expression("sum(clip(x, a, b))", ["x"], shapes))
    x = np.array([-2.0, 0.5, 3.0])
    assert module["forward"](x=x, a=1.0, b=-1.0) == np.sum(np.clip(x, 1.0, -1.0))
    recipe = api.recipe_from_expression("sum(clip(x, a, b))", ["x"], shapes)
    d = api.derive_expression("sum(clip(x, a, b))", ["x"], shapes)
    grad = form_function(recipe, d.derivatives[0].matrix.text)
    np.testing.assert_array_equal(grad(x=x, a=1.0, b=-1.0), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(grad(x=x, a=-1.0, b=1.0), [0.0, 1.0, 0.0])


def test_a_max_reduction_is_not_checked_across_a_change_of_argmax():
    """Finite differences that move the argmax are no derivative: such stencils are refused
    (the argmax of each max is a switching quantity), never reported as a wrong gradient."""
    from derivkit.errors import DerivkitError

    shapes = {"X": "m,n"}
    try:
        result = api.check_expression("sum(max(X, axis=1))", ["X"], shapes,
                                      sizes={"m": 64, "n": 64}, dtype="float32")
    except DerivkitError as exc:
        assert "avoid every kink" in exc.one_line()
    else:
        assert result.passed


def test_an_index_form_with_a_scalar_input_in_a_sum_is_evaluated():
    """A scalar input inside a summed index form reached mpmath as a 0-d array (internal error)."""
    d = api.derive_expression("sum(softmax(X) * (c - G))", ["X"], {"X": "m,n", "G": "m,n", "c": "scalar"})
    assert all(f.verification.verified for dv in d.derivatives for f in (dv.matrix, dv.index) if f)
