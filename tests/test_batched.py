"""Arrays of rank 3 and 4 with NumPy semantics, against hand-written NumPy.

For each construct the loss is sum(W * f(...)) with a fixed random weight W of f's shape, so the
derived gradient is a general VJP. Derived, verified matrix forms (read back with
`form_function`) are compared with VJP formulas written here (np.einsum, np.swapaxes, explicit
sums over broadcast axes); each of those formulas is itself checked against central differences
of a NumPy forward written here, never against derivkit's own lowering.

  * property tests (Hypothesis, derandomized) over concrete shapes of rank 3 and 4 with axes of
    size 1: batched `@` with broadcast batch axes and vector operands, .mT / swapaxes / transpose
    / .T, every reduction over any axis with and without keepdims, softmax and log_softmax over
    any axis, elementwise broadcasting against lower-rank arrays;
  * a table of named constructs over symbolic shapes (b, t, d, ...), also through the lowered
    module;
  * mutations: a MatMul rule that transposes the wrong axes, and claims that transpose the wrong
    axes or drop the batch sum, are caught;
  * bad input through the CLI: exit 2, one line, no traceback.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from derivkit import api
from derivkit.cli.app import app
from derivkit.lang import ir
from derivkit.lowering import module
from derivkit.lowering.forms import call_form, form_function

DIM = st.integers(1, 3)
RANK = st.integers(3, 4)
RTOL, ATOL = 1e-9, 1e-11            # derived form vs closed-form reference (both float64, exact maths)
FD_RTOL, FD_ATOL = 1e-5, 1e-7       # closed-form reference vs central differences


# ---------------------------------------------------------------- helpers
def _text(shape: tuple) -> str:
    return ",".join(str(d) for d in shape) or "scalar"


def _key(shapes: dict[str, tuple | str]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v if isinstance(v, str) else _text(v)) for k, v in shapes.items())


@cache
def _derivation(expr: str, shapes: tuple[tuple[str, str], ...], wrt: tuple[str, ...]):
    """(recipe, derivation) of `expr` through the library API, derived once per test session."""
    declared = dict(shapes)
    return (api.recipe_from_expression(expr, list(wrt), declared),
            api.derive_expression(expr, list(wrt), declared))


@cache
def _derive(expr: str, shapes: tuple[tuple[str, str], ...], wrt: tuple[str, ...]):
    """{wrt: (matrix text, NumPy callable)} for the derived gradients of `expr`; every form
    derivkit printed must be verified."""
    declared = dict(shapes)
    recipe, derivation = _derivation(expr, shapes, wrt)
    out = {}
    for dv in derivation.derivatives:
        assert dv.matrix is not None, (expr, declared, dv.wrt)
        assert dv.matrix.verification.verified, (expr, declared, dv.wrt, dv.matrix)
        if dv.index is not None:
            assert dv.index.verification.verified, (expr, declared, dv.wrt, dv.index)
        out[dv.wrt] = (dv.matrix.text, form_function(recipe, dv.matrix.text))
    assert set(out) == set(wrt), (expr, sorted(out))
    return out


def _numeric_gradient(forward, values: dict[str, np.ndarray], name: str, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar `forward(**values)` in every entry of values[name]."""
    x0 = np.array(values[name], dtype=np.float64)
    grad = np.zeros(x0.shape)
    flat = grad.reshape(-1)
    for i in range(x0.size):
        plus, minus = x0.copy().reshape(-1), x0.copy().reshape(-1)
        plus[i] += h
        minus[i] -= h
        f_plus = forward(**{**values, name: plus.reshape(x0.shape)})
        f_minus = forward(**{**values, name: minus.reshape(x0.shape)})
        flat[i] = (f_plus - f_minus) / (2 * h)
    return grad


def _check(expr: str, shapes: dict[str, tuple | str], values: dict[str, np.ndarray],
           reference: dict[str, np.ndarray], forward) -> None:
    """The derived gradient of `expr` w.r.t. every name in `reference` equals it; the reference
    equals central differences of the hand-written `forward`."""
    derived = _derive(expr, _key(shapes), tuple(reference))
    for name, want in reference.items():
        text, fn = derived[name]
        got = np.asarray(call_form(fn, values, {}))
        assert got.shape == np.shape(values[name]), (expr, name, text, got.shape)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{expr} d/d{name} = {text}")
        np.testing.assert_allclose(want, _numeric_gradient(forward, values, name), rtol=FD_RTOL,
                                   atol=FD_ATOL, err_msg=f"hand-written reference of {expr} d/d{name}")


def _unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum g over the axes that broadcasting to g.shape added (leading) or stretched (size 1)."""
    g = np.asarray(g)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, want in enumerate(shape):
        if want == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _values(rng: np.random.Generator, shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
    return {k: np.asarray(rng.standard_normal(s)) for k, s in shapes.items()}


# ---------------------------------------------------------------- batched @
def _matmul_vjp(A: np.ndarray, B: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dA, dB) for sum(W * (A @ B)) as NumPy's matmul: a vector is a row (left) or a column
    (right), leading axes are a broadcast batch; each gradient is summed over the batch axes its
    operand was broadcast along."""
    a2 = A[None, :] if A.ndim == 1 else A
    b2 = B[:, None] if B.ndim == 1 else B
    w2 = np.expand_dims(W, -2) if A.ndim == 1 else W
    w2 = np.expand_dims(w2, -1) if B.ndim == 1 else w2
    dA = _unbroadcast(np.einsum("...ij,...kj->...ik", w2, b2), a2.shape)
    dB = _unbroadcast(np.einsum("...ki,...kj->...ij", a2, w2), b2.shape)
    return (dA[0] if A.ndim == 1 else dA), (dB[:, 0] if B.ndim == 1 else dB)


@st.composite
def matmul_shapes(draw) -> tuple[tuple, tuple]:
    """(A's shape, B's shape) for A @ B with at least one operand of rank 3 or 4: the operands
    keep a suffix of a batch of 1-2 axes (none, some or all), any batch axis may be 1 (broadcast);
    one operand may be a vector."""
    n, k, m = draw(DIM), draw(DIM), draw(DIM)
    batch = tuple(draw(st.lists(DIM, min_size=1, max_size=2)))
    kind = draw(st.sampled_from(["stack@stack", "stack@stack", "vector@stack", "stack@vector"]))

    def leading(at_least: int) -> tuple:
        keep = draw(st.integers(at_least, len(batch)))
        return tuple(1 if draw(st.booleans()) else d for d in batch[len(batch) - keep:])

    if kind == "vector@stack":
        return (k,), leading(1) + (k, m)
    if kind == "stack@vector":
        return leading(1) + (n, k), (k,)
    a, b = leading(0) + (n, k), leading(0) + (k, m)
    if max(len(a), len(b)) < 3:      # neither has a batch axis: give A the whole batch
        a = batch + (n, k)
    return a, b


@settings(derandomize=True, max_examples=8, deadline=None)
@given(shapes=matmul_shapes(), seed=st.integers(0, 2**16))
@example(shapes=((2, 1, 3, 4), (5, 4, 2)), seed=0)       # batch axes 2×1 and 5 broadcast to 2×5
@example(shapes=((3, 4), (2, 4, 5)), seed=1)             # a matrix against a stack: dA sums over it
@example(shapes=((3,), (2, 1, 3, 2)), seed=2)            # vector @ stack
@example(shapes=((2, 1, 2, 3), (3,)), seed=3)            # stack @ vector
def test_batched_matmul_broadcasts_its_batch_axes(shapes, seed):
    a, b = shapes
    w = np.matmul(np.zeros(a), np.zeros(b)).shape      # NumPy's output shape: W's
    rng = np.random.default_rng(seed)
    values = _values(rng, {"A": a, "B": b, "W": w})
    dA, dB = _matmul_vjp(values["A"], values["B"], values["W"])
    _check("sum(W * (A @ B))", {"A": a, "B": b, "W": w}, values, {"A": dA, "B": dB},
           lambda A, B, W: np.sum(W * np.matmul(A, B)))


# ---------------------------------------------------------------- transposes
@st.composite
def transposes(draw, kind: str) -> tuple[tuple, str, tuple, object]:
    """(shape, the spelling `kind` of a transpose, the permutation it means, NumPy's forward)."""
    shape = tuple(draw(st.lists(DIM, min_size=3, max_size=4)))
    r = len(shape)
    swap_last = tuple(range(r - 2)) + (r - 1, r - 2)
    if kind == ".mT":
        return shape, "X.mT", swap_last, lambda X: np.swapaxes(X, -1, -2)
    if kind == "swapaxes(X, -1, -2)":
        return shape, "swapaxes(X, -1, -2)", swap_last, lambda X: np.swapaxes(X, -1, -2)
    if kind == "swapaxes(X, i, j)":
        i, j = draw(st.integers(-r, r - 1)), draw(st.integers(-r, r - 1))
        perm = list(range(r))
        perm[i % r], perm[j % r] = perm[j % r], perm[i % r]
        return shape, f"swapaxes(X, {i}, {j})", tuple(perm), lambda X: np.swapaxes(X, i, j)
    if kind == "transpose(X, axes)":
        perm = tuple(draw(st.permutations(range(r))))
        return shape, f"transpose(X, {perm})", perm, lambda X: np.transpose(X, perm)
    reverse = tuple(reversed(range(r)))
    if kind == ".T":
        return shape, "X.T", reverse, lambda X: X.T
    return shape, "transpose(X)", reverse, lambda X: np.transpose(X)


TRANSPOSES = [".mT", "swapaxes(X, -1, -2)", "swapaxes(X, i, j)", "transpose(X, axes)", ".T", "transpose(X)"]


@pytest.mark.parametrize("kind", TRANSPOSES)
@settings(derandomize=True, max_examples=5, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_transposes_of_a_stack_are_numpys(kind, data, seed):
    shape, spelling, perm, numpy_forward = data.draw(transposes(kind), label="case")
    w = numpy_forward(np.zeros(shape)).shape
    assert w == tuple(shape[p] for p in perm)
    rng = np.random.default_rng(seed)
    values = _values(rng, {"X": shape, "W": w})
    want = np.transpose(values["W"], np.argsort(perm))       # the inverse permutation
    _check(f"sum(W * {spelling})", {"X": shape, "W": w}, values, {"X": want},
           lambda X, W: np.sum(W * numpy_forward(X)))


# ---------------------------------------------------------------- reductions
def _lse(X, axis=None, keepdims=False):
    top = np.max(X, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(X - top), axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)


#: name -> NumPy's forward (hand-written where NumPy has none)
REDUCTIONS = {
    "sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "var": np.var, "std": np.std,
    "logsumexp": _lse,
    "norm": lambda X, axis=None, keepdims=False: np.sqrt(np.sum(X * X, axis=axis, keepdims=keepdims)),
}


def _reduction_vjp(fn: str, X: np.ndarray, W: np.ndarray, axis: int | None, keepdims: bool) -> np.ndarray:
    """d sum(W * fn(X, axis, keepdims)) / dX, written from the textbook formulas."""
    axes = tuple(range(X.ndim)) if axis is None else (axis % X.ndim,)
    count = math.prod(X.shape[a] for a in axes)
    w = W if keepdims else np.expand_dims(W, axes)     # W with the reduced axes as size 1
    mean = X.sum(axis=axes, keepdims=True) / count
    if fn == "sum":
        local = np.ones_like(X)
    elif fn == "mean":
        local = np.full_like(X, 1.0 / count)
    elif fn in ("max", "min"):
        hit = (X == getattr(np, fn)(X, axis=axes, keepdims=True)).astype(float)
        local = hit / hit.sum(axis=axes, keepdims=True)
    elif fn == "logsumexp":
        e = np.exp(X - X.max(axis=axes, keepdims=True))
        local = e / e.sum(axis=axes, keepdims=True)
    elif fn == "var":
        local = 2.0 * (X - mean) / count
    elif fn == "std":
        sd = np.sqrt(((X - mean) ** 2).sum(axis=axes, keepdims=True) / count)
        local = (X - mean) / (count * sd)
    else:   # norm
        local = X / np.sqrt((X * X).sum(axis=axes, keepdims=True))
    return w * local


@st.composite
def stack_and_axis(draw, none_ok: bool = True) -> tuple[tuple, int | None]:
    """(a shape of rank 3 or 4 with axes of size 1, an axis of it: negative, positive or None)."""
    shape = tuple(draw(st.lists(DIM, min_size=3, max_size=4)))
    axes = st.integers(-len(shape), len(shape) - 1)
    return shape, draw(st.one_of(st.none(), axes) if none_ok else axes)


@settings(derandomize=True, max_examples=6, deadline=None)
@given(case=stack_and_axis(), fn=st.sampled_from(sorted(REDUCTIONS)), keepdims=st.booleans(),
       seed=st.integers(0, 2**16))
@example(case=((2, 1, 3), -2), fn="sum", keepdims=False, seed=0)          # over an axis of size 1
@example(case=((2, 3, 1, 2), 1), fn="mean", keepdims=True, seed=1)
@example(case=((2, 1, 3, 2), -1), fn="max", keepdims=True, seed=2)
@example(case=((3, 1, 2), 0), fn="min", keepdims=False, seed=3)
@example(case=((2, 3, 1, 2), -3), fn="logsumexp", keepdims=True, seed=4)
@example(case=((3, 2, 2), 0), fn="std", keepdims=False, seed=5)
@example(case=((1, 2, 3), None), fn="var", keepdims=True, seed=6)
@example(case=((2, 2, 1, 3), 3), fn="norm", keepdims=False, seed=7)
def test_reductions_over_any_axis_of_a_stack(case, fn, keepdims, seed):
    shape, axis = case
    count = math.prod(shape) if axis is None else shape[axis]
    assume(not (fn == "std" and count == 1))    # sqrt(0): not differentiable
    kw = ("" if axis is None else f", axis={axis}") + (", keepdims=True" if keepdims else "")
    forward = REDUCTIONS[fn]
    w = np.shape(forward(np.zeros(shape), axis=axis, keepdims=keepdims))
    rng = np.random.default_rng(seed)
    values = _values(rng, {"X": shape, "W": w})
    want = _reduction_vjp(fn, values["X"], values["W"], axis, keepdims)
    _check(f"sum(W * {fn}(X{kw}))", {"X": shape, "W": w}, values, {"X": want},
           lambda X, W: np.sum(W * forward(X, axis=axis, keepdims=keepdims)))


@settings(derandomize=True, max_examples=4, deadline=None)
@given(case=stack_and_axis(), fn=st.sampled_from(["softmax", "log_softmax"]), seed=st.integers(0, 2**16))
@example(case=((2, 1, 3), 0), fn="softmax", seed=0)
@example(case=((2, 3, 1, 2), -3), fn="log_softmax", seed=1)
def test_softmax_and_log_softmax_over_any_axis(case, fn, seed):
    shape, axis = case
    ax = -1 if axis is None else axis           # softmax(X) is over the last axis, as SciPy's
    spelling = f"{fn}(X)" if axis is None else f"{fn}(X, axis={axis})"
    rng = np.random.default_rng(seed)
    values = _values(rng, {"X": shape, "W": shape})
    X, W = values["X"], values["W"]
    P = _softmax(X, ax)
    if fn == "softmax":
        want = P * (W - (W * P).sum(axis=ax, keepdims=True))
        forward = lambda X, W: np.sum(W * _softmax(X, ax))
    else:
        want = W - P * W.sum(axis=ax, keepdims=True)
        forward = lambda X, W: np.sum(W * (X - _lse(X, axis=ax, keepdims=True)))
    _check(f"sum(W * {spelling})", {"X": shape, "W": shape}, values, {"X": want}, forward)


# ---------------------------------------------------------------- elementwise broadcasting
@st.composite
def broadcast_pairs(draw) -> tuple[tuple, tuple]:
    """(X's shape of rank 3 or 4, Y's shape of rank 0..4) that broadcast, with axes of size 1."""
    out = tuple(draw(st.lists(DIM, min_size=3, max_size=4)))
    x = tuple(1 if draw(st.integers(0, 3)) == 0 else d for d in out)
    rank = draw(st.integers(0, len(out)))
    y = tuple(1 if draw(st.booleans()) else d for d in out[len(out) - rank:])
    return x, y


#: op -> (d(a op b)/da, d(a op b)/db)
PARTIALS = {
    "+": (lambda a, b: np.ones_like(a * b), lambda a, b: np.ones_like(a * b)),
    "-": (lambda a, b: np.ones_like(a * b), lambda a, b: -np.ones_like(a * b)),
    "*": (lambda a, b: b * np.ones_like(a), lambda a, b: a * np.ones_like(b)),
    "/": (lambda a, b: 1.0 / b * np.ones_like(a), lambda a, b: -a / b**2),
}
OPS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


@settings(derandomize=True, max_examples=8, deadline=None)
@given(shapes=broadcast_pairs(), op=st.sampled_from(sorted(PARTIALS)), x_first=st.booleans(),
       seed=st.integers(0, 2**16))
@example(shapes=((2, 1, 3, 2), (2,)), op="+", x_first=True, seed=0)
@example(shapes=((2, 1, 3), (4, 1)), op="*", x_first=False, seed=1)
@example(shapes=((1, 3, 1, 2), (3, 1)), op="/", x_first=True, seed=2)
@example(shapes=((2, 2, 1), ()), op="-", x_first=False, seed=3)
def test_elementwise_broadcasting_against_lower_rank(shapes, op, x_first, seed):
    x, y = shapes
    w = np.broadcast_shapes(x, y)
    rng = np.random.default_rng(seed)
    values = _values(rng, {"X": x, "Y": y, "W": w})
    first, second = ("X", "Y") if x_first else ("Y", "X")
    if op == "/":    # the denominator away from 0
        values[second] = np.abs(values[second]) + 0.5
    a, b = values[first], values[second]
    da, db = PARTIALS[op]
    W = values["W"]
    want = {first: _unbroadcast(W * da(a, b), np.shape(a)), second: _unbroadcast(W * db(a, b), np.shape(b))}
    fn = OPS[op]
    _check(f"sum(W * ({first} {op} {second}))", {"X": x, "Y": y, "W": w}, values, want,
           lambda X, Y, W: np.sum(W * fn(*((X, Y) if x_first else (Y, X)))))


# ---------------------------------------------------------------- a table of named constructs
#: id -> (expression, symbolic shapes, {wrt: hand-written gradient(values)}, NumPy forward)
TABLE = {
    "attention scores Q @ K.mT": (
        "sum(W * (Q @ K.mT))", {"Q": "b,t,d", "K": "b,s,d", "W": "b,t,s"},
        {"Q": lambda v: np.einsum("bts,bsd->btd", v["W"], v["K"]),
         "K": lambda v: np.einsum("bts,btd->bsd", v["W"], v["Q"])},
        lambda Q, K, W: np.sum(W * np.einsum("btd,bsd->bts", Q, K))),
    "heads split: transpose(X, (0, 2, 1, 3))": (
        "sum(W * transpose(X, (0, 2, 1, 3)))", {"X": "b,t,h,d", "W": "b,h,t,d"},
        {"X": lambda v: np.einsum("bhtd->bthd", v["W"])},
        lambda X, W: np.sum(W * np.einsum("bthd->bhtd", X))),
    ".T of a rank-4 array": (
        "sum(W * X.T)", {"X": "b,t,h,d", "W": "d,h,t,b"},
        {"X": lambda v: np.einsum("dhtb->bthd", v["W"])},
        lambda X, W: np.sum(W * np.einsum("bthd->dhtb", X))),
    "softmax over the middle axis": (
        "sum(W * softmax(X, axis=1))", {"X": "b,t,d", "W": "b,t,d"},
        {"X": lambda v: (P := _softmax(v["X"], 1)) * (v["W"] - np.einsum("btd,btd->bd", v["W"], P)[:, None])},
        lambda X, W: np.sum(W * np.exp(X) / np.exp(X).sum(axis=1, keepdims=True))),
    "stack @ vector": (
        "sum(W * (X @ v))", {"X": "b,t,d", "v": "d", "W": "b,t"},
        {"X": lambda v: np.einsum("bt,d->btd", v["W"], v["v"]),
         "v": lambda v: np.einsum("bt,btd->d", v["W"], v["X"])},
        lambda X, v, W: np.sum(W * np.einsum("btd,d->bt", X, v))),
    "matrix @ stack (A's gradient sums over b)": (
        "sum(W * (A @ B))", {"A": "t,d", "B": "b,d,s", "W": "b,t,s"},
        {"A": lambda v: np.einsum("bts,bds->td", v["W"], v["B"]),
         "B": lambda v: np.einsum("td,bts->bds", v["A"], v["W"])},
        lambda A, B, W: np.sum(W * np.einsum("td,bds->bts", A, B))),
    "logsumexp over the batch axis": (
        "sum(W * logsumexp(X, axis=0))", {"X": "b,t,d", "W": "t,d"},
        {"X": lambda v: v["W"][None] * _softmax(v["X"], 0)},
        lambda X, W: np.sum(W * np.log(np.exp(X).sum(axis=0)))),
}
SIZES = ({"b": 2, "t": 3, "s": 2, "d": 1, "h": 2}, {"b": 1, "t": 2, "s": 3, "d": 3, "h": 1})


@cache
def _lowered(name: str):
    expr, shapes, reference, _ = TABLE[name]
    return module.load(module.lower(*_derivation(expr, _key(shapes), tuple(reference))))


@pytest.mark.parametrize("sizes", SIZES, ids=["sizes0", "sizes1"])
@pytest.mark.parametrize("name", sorted(TABLE))
def test_named_constructs_match_hand_written_gradients(name, sizes):
    expr, shapes, reference, forward = TABLE[name]
    rng = np.random.default_rng(len(name))
    values = _values(rng, {k: tuple(sizes[d] for d in v.split(",")) for k, v in shapes.items()})
    want = {wrt: ref(values) for wrt, ref in reference.items()}
    _check(expr, shapes, values, want, forward)
    lowered = _lowered(name)     # the generated module: its forward and its grad_<x>
    np.testing.assert_allclose(call_form(lowered["forward"], values, {}), forward(**values), rtol=1e-12)
    for wrt, grad in want.items():
        np.testing.assert_allclose(call_form(lowered[f"grad_{wrt}"], values, {}), grad, rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------- mutations must be caught
MM_EXPR, MM_SHAPES = "sum(W * (A @ B))", {"A": "2,3,3", "B": "3,3", "W": "2,3,3"}   # B broadcast over 2


def _mm_values(seed: int = 0) -> dict[str, np.ndarray]:
    return _values(np.random.default_rng(seed), {"A": (2, 3, 3), "B": (3, 3), "W": (2, 3, 3)})


def test_a_matmul_rule_that_transposes_the_wrong_axes_is_not_verified(monkeypatch):
    """The MatMul VJP with .T (every axis reversed) where it needs .mT: the shapes still fit
    (all axes 2) but derive must say NOT VERIFIED, and the comparison must fail."""
    from derivkit.derivation import vjp

    good = vjp.RULES[ir.MatMul]

    def wrong_axes(n, g):
        if n.a.rank < 3 or n.b.rank < 3:
            return good(n, g)
        reverse = lambda x: ir.permute(x, tuple(reversed(range(x.rank))))
        return [(n.a, ir.matmul(g, reverse(n.b))), (n.b, ir.matmul(reverse(n.a), g))]

    monkeypatch.setitem(vjp.RULES, ir.MatMul, wrong_axes)
    expr, shapes = "sum(W * (A @ B))", {"A": "2,2,2", "B": "2,2,2", "W": "2,2,2"}
    derivation = api.derive_expression(expr, ["A", "B"], shapes)
    recipe = api.recipe_from_expression(expr, ["A", "B"], shapes)
    values = _values(np.random.default_rng(5), {"A": (2, 2, 2), "B": (2, 2, 2), "W": (2, 2, 2)})
    dA, dB = _matmul_vjp(values["A"], values["B"], values["W"])
    assert {dv.wrt for dv in derivation.derivatives} == {"A", "B"}
    for dv in derivation.derivatives:
        assert "transpose(" in dv.matrix.text, dv.matrix.text     # the mutated rule was used
        assert not dv.matrix.verification.verified, dv.matrix
        assert dv.matrix.verification.detail.startswith(
            "NOT VERIFIED: disagrees with the forward differentiated numerically"), dv.matrix
        got = call_form(form_function(recipe, dv.matrix.text), values, {})
        assert not np.allclose(got, dA if dv.wrt == "A" else dB, rtol=1e-6, atol=1e-8), dv.matrix.text
    assert not derivation.verified


def test_a_gradient_with_its_batch_axes_swapped_is_refuted_and_fails_the_comparison():
    """Take the derived, verified dA of a batched matmul and swap its batch axis with a matrix
    axis (a wrong transpose that keeps the shape: all axes 2): `verify` refutes it with a
    counterexample and the comparison with the hand-written VJP fails."""
    expr, shapes = "sum(W * (A @ B))", {"A": "2,2,2", "B": "1,2,2", "W": "2,2,2"}
    (text, fn) = _derive(expr, _key(shapes), ("A",))["A"]
    values = _values(np.random.default_rng(3), {"A": (2, 2, 2), "B": (1, 2, 2), "W": (2, 2, 2)})
    dA, _ = _matmul_vjp(values["A"], values["B"], values["W"])
    np.testing.assert_allclose(call_form(fn, values, {}), dA, rtol=RTOL, atol=ATOL)
    assert api.verify_expression(expr, text, ["A"], shapes).verified
    for mutated in (f"swapaxes({text}, 0, 1)", f"transpose({text}, (2, 1, 0))"):
        verdict = api.verify_expression(expr, mutated, ["A"], shapes)
        assert verdict.verdict == "refuted" and verdict.counterexample is not None, (mutated, verdict)
        got = call_form(form_function(api.recipe_from_expression(expr, ["A"], shapes), mutated), values, {})
        assert not np.allclose(got, dA, rtol=1e-6, atol=1e-8), mutated


@pytest.mark.parametrize("claim, how", [
    ("sum(A.mT @ W, axis=0)", "verified"),     # the right one: B was broadcast over the batch
    ("mean(A.mT @ W, axis=0)", "symbolic"),    # the batch sum replaced by a mean: same shape
    ("sum(A @ W, axis=0)", "symbolic"),        # A's matrices not transposed
    ("A.mT @ W", "shapes"),                    # the batch sum dropped: 2×3×3, not B's 3×3
])
def test_claims_that_drop_the_batch_sum_are_refuted(claim, how):
    verdict = api.verify_expression(MM_EXPR, claim, ["B"], MM_SHAPES)
    if how == "verified":
        assert verdict.verified, verdict
        return
    assert verdict.verdict == "refuted" and verdict.method == how, verdict
    if how == "symbolic":
        ce = verdict.counterexample
        assert ce is not None and ce.claimed != pytest.approx(ce.true)
        values = _mm_values()
        _, dB = _matmul_vjp(values["A"], values["B"], values["W"])
        recipe = api.recipe_from_expression(MM_EXPR, ["B"], MM_SHAPES)
        assert not np.allclose(call_form(form_function(recipe, claim), values, {}), dB, rtol=1e-6, atol=1e-8)
    else:
        assert "3×3" in verdict.reason and "2×3×3" in verdict.reason


# ---------------------------------------------------------------- regressions
@pytest.mark.parametrize("fn, shape, axis", [("max", "2,1,3", 1), ("min", "1,2,2,2", 0),
                                             ("max", "1,1,1", None)])
def test_max_over_an_axis_of_one_entry(fn, shape, axis):
    """Each slice has one entry, so it is its own max: the gradient is W with that axis back.
    (Was an internal error: TypeError 'mpf' object is not iterable, in explicit.reduce_extreme.)"""
    dims = tuple(int(d) for d in shape.split(","))
    w = () if axis is None else dims[:axis] + dims[axis + 1:]
    values = _values(np.random.default_rng(0), {"X": dims, "W": w})
    kw = "" if axis is None else f", axis={axis}"
    _check(f"sum(W * {fn}(X{kw}))", {"X": dims, "W": w}, values,
           {"X": np.broadcast_to(values["W"] if axis is None else np.expand_dims(values["W"], axis), dims)},
           lambda X, W: np.sum(W * getattr(np, fn)(X, axis=axis)))


# ---------------------------------------------------------------- bad input through the CLI
def _one_error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("derivkit: error: "), err
    assert "Traceback" not in result.output and "Traceback" not in err
    return err.strip()


def _derive_cli(runner, expr: str, *shapes: str):
    args = ["derive", "--expr", expr, "--wrt", shapes[0].split("=")[0]]
    for s in shapes:
        args += ["--shape", s]
    return runner.invoke(app, args)


def test_a_shape_of_rank_5_is_refused(runner):
    line = _one_error_line(_derive_cli(runner, "sum(X)", "X=2,1,2,1,2"))
    assert "--shape" in line and "rank 5" in line and "rank 4 at most" in line


def test_transpose_axes_that_are_not_a_permutation_are_refused(runner):
    line = _one_error_line(_derive_cli(runner, "sum(transpose(X, (0, 0, 1)))", "X=2,3,4"))
    assert "transpose" in line and "not a permutation" in line and "(0, 0, 1)" in line


@pytest.mark.parametrize("expr, fn, axis", [
    ("sum(X, axis=3)", "sum", "3"), ("sum(mean(X, axis=-4, keepdims=True))", "mean", "-4"),
    ("sum(softmax(X, axis=3))", "softmax", "3"), ("sum(log_softmax(X, axis=-4))", "log_softmax", "-4"),
    ("sum(swapaxes(X, 0, 3))", "swapaxes", "3"), ("sum(transpose(X, (0, 1, 3)))", "transpose", "3"),
    ("sum(max(X, axis=7))", "max", "7"),
])
def test_an_axis_out_of_range_for_a_rank_3_array_is_refused(runner, expr, fn, axis):
    line = _one_error_line(_derive_cli(runner, expr, "X=2,3,4"))
    assert f"{fn}: axis {axis} is out of range for an array of rank 3" in line


@pytest.mark.parametrize("a, b, says", [
    ("2,3,4", "5,4,2", "2 and 5 (2 ≠ 5)"),
    ("2,1,3,4", "3,5,4,2", "2×1 and 3×5 (2 ≠ 3)"),
    ("b,3,4", "c,4,2", "b and c (b ≠ c)"),
])
def test_batch_axes_that_do_not_broadcast_in_matmul_are_refused(runner, a, b, says):
    line = _one_error_line(_derive_cli(runner, "sum(A @ B)", f"A={a}", f"B={b}"))
    assert "the batch axes of '@'" in line and says in line


def test_the_batch_axes_error_names_the_operands_shapes(runner):
    """As the core-axis error of '@' and the error of '+' do (it named only the batch axes)."""
    line = _one_error_line(_derive_cli(runner, "sum(A @ B)", "A=2,3,4", "B=5,4,2"))
    assert "2×3×4 @ 5×4×2" in line
