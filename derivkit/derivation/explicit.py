"""Element-wise ground truth at concrete sizes.

Every input becomes a NumPy object array of SymPy symbols (X_0_1, ...), the IR is evaluated with
NumPy's own semantics on those arrays, and derivatives are taken entry by entry with SymPy's
scalar `diff`, which is reliable (unlike its matrix calculus). `zero_test` decides whether a
difference vanishes: exactly where it can (polynomial/rational after writing exponentials as
positive symbols, Piecewise branch by branch), otherwise numerically at random points with
40-digit arithmetic, and it reports which.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from ..lang import ir
from ..lang.ops import ELEMENTWISE
from ..lang.shapes import Dim, Shape
from . import elementwise
from .index import CMP


def symbol_for(domain: str, name: str) -> sp.Symbol:
    if domain == "positive":
        return sp.Symbol(name, positive=True)
    if domain == "nonzero":
        return sp.Symbol(name, real=True, nonzero=True)
    return sp.Symbol(name, real=True)


def symbol_array(name: str, shape: tuple[int, ...], domain: str = "real") -> np.ndarray:
    arr = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        label = "_".join([name, *map(str, idx)]) if idx else name
        arr[idx] = symbol_for(domain, label)
    return arr


def _obj(x: object) -> np.ndarray:
    return np.asarray(x, dtype=object) if not isinstance(x, np.ndarray) or x.dtype != object else x


class Undefined(Exception):
    """The forward is undefined for every input (e.g. the inverse of an always-singular matrix)."""


def reduce_extreme(a: np.ndarray, axis: int | None, keepdims: bool, fn: Callable[..., Any]
                   ) -> np.ndarray:
    """fn(*entries) over `axis` of an object array (all of it when None), as np.max would."""
    if a.ndim == 0:
        return a
    def pick(entries: np.ndarray) -> Any:   # max(x) of one number would iterate over it
        return fn(*entries) if len(entries) > 1 else entries[0]

    if axis is None:
        whole: np.ndarray = np.empty((), dtype=object)
        whole[()] = pick(a.ravel())
        return whole.reshape((1,) * a.ndim) if keepdims else whole
    moved = np.moveaxis(a, axis, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    rows: np.ndarray = np.empty(flat.shape[0], dtype=object)
    for i, row in enumerate(flat):
        rows[i] = pick(row)
    out = rows.reshape(moved.shape[:-1])
    return np.expand_dims(out, axis) if keepdims else out


class Explicit:
    """Evaluate IR on object arrays. `env` maps variable names to arrays; `named` maps the
    names of named nodes (outputs) to their IR definitions."""

    ZERO: ClassVar[Any] = sp.Integer(0)
    ONE: ClassVar[Any] = sp.Integer(1)

    def __init__(self, sizes: dict[str, int], env: dict[str, np.ndarray],
                 named: dict[str, ir.Node] | None = None) -> None:
        self.sizes = sizes
        self.env = env
        self.named = named or {}
        self.memo: dict[ir.Node, np.ndarray] = {}

    def dim(self, d: Dim) -> int:
        return d if isinstance(d, int) else self.sizes[d]

    def shape(self, shape: Shape) -> tuple[int, ...]:
        return tuple(self.dim(d) for d in shape)

    def ev(self, n: ir.Node) -> np.ndarray:
        if n not in self.memo:
            self.memo[n] = _obj(self.RULES[type(n)](self, n))
        return self.memo[n]

    def _Var(self, n: ir.Var) -> np.ndarray:
        if n.name in self.env:
            return self.env[n.name]
        if n.name in self.named:
            return self.ev(self.named[n.name])
        raise KeyError(n.name)

    def _Const(self, n: ir.Const) -> sp.Expr:
        """A constant exactly: a float as the decimal it prints as (0.01 is 1/100), as a printed
        form that says 0.01 reads back and as parameters are read."""
        v = n.value
        if isinstance(v, ir.NamedNumber):
            return elementwise.SYMPY_NUMBERS[v.name]
        if isinstance(v, float):
            v = Fraction(repr(v))
        return sp.Rational(v.numerator, v.denominator) if isinstance(v, Fraction) else sp.Float(v)

    def _DimSize(self, n: ir.DimSize) -> sp.Expr:
        return sp.Integer(self.dim(n.name))

    def _Eye(self, n: ir.Eye) -> np.ndarray:
        k = self.dim(n.n)
        out = np.full((k, k), self.ZERO, dtype=object)
        for i in range(k):
            out[i, i] = self.ONE
        return out

    def _Ones(self, n: ir.Ones) -> np.ndarray:
        return np.full(self.shape(n.shape), self.ONE, dtype=object)

    def _Binary(self, n: ir.Binary) -> np.ndarray:
        a, b = self.ev(n.a), self.ev(n.b)
        if n.op == "+":
            return a + b
        if n.op == "-":
            return a - b
        if n.op == "*":
            return a * b
        if n.op == "/":
            return a / b
        return np.frompyfunc(lambda x, y: x ** y, 2, 1)(a, b)

    def _Neg(self, n: ir.Neg) -> np.ndarray:
        return -self.ev(n.a)

    def _MatMul(self, n: ir.MatMul) -> np.ndarray:
        return np.matmul(self.ev(n.a), self.ev(n.b))

    def _Transpose(self, n: ir.Transpose) -> np.ndarray:
        a = self.ev(n.a)
        return np.swapaxes(a, -1, -2) if a.ndim >= 2 else a

    def _Permute(self, n: ir.Permute) -> np.ndarray:
        return np.transpose(self.ev(n.a), n.axes)

    def _Reshape(self, n: ir.Reshape) -> np.ndarray:
        return np.reshape(self.ev(n.a), self.shape(n.shape))

    def _Apply(self, n: ir.Apply) -> np.ndarray:
        params = [self.ev(p).item() for p in n.params]
        names = ELEMENTWISE[n.fn].param_names
        rule = elementwise.definition(n.fn, elementwise.T,
                                      tuple(elementwise.param_symbol(p) for p in names))
        subs = {elementwise.param_symbol(name): v for name, v in zip(names, params)}

        def f(v: sp.Expr) -> sp.Expr:
            return rule.xreplace({elementwise.T: v, **subs})

        return np.frompyfunc(f, 1, 1)(self.ev(n.a))

    def _Compare(self, n: ir.Compare) -> np.ndarray:
        rel = CMP[n.op]
        return np.frompyfunc(lambda a, b: rel(a, b), 2, 1)(self.ev(n.a), self.ev(n.b))

    def _Where(self, n: ir.Where) -> np.ndarray:
        return np.frompyfunc(lambda c, a, b: sp.Piecewise((a, c), (b, True)), 3, 1)(
            self.ev(n.cond), self.ev(n.a), self.ev(n.b))

    def _Sum(self, n: ir.Sum) -> np.ndarray:
        a = self.ev(n.a)
        if a.ndim == 0:
            return a
        return np.sum(a, axis=n.axis, keepdims=n.keepdims)

    def _OneHot(self, n: ir.OneHot) -> np.ndarray:
        labels = self.ev(n.a)
        k = self.dim(n.k)
        out = np.full(labels.shape + (k,), self.ZERO, dtype=object)
        for idx in np.ndindex(*labels.shape):
            try:
                label = float(labels[idx])
            except TypeError:   # a SymPy symbol: no value to pick by
                raise NotImplementedError("one_hot of a symbolic label") from None
            if not (label.is_integer() and 0 <= label < k):
                raise IndexError(f"label {label:g} is not an integer in 0..{k - 1}")
            out[idx + (int(label),)] = self.ONE
        return out

    def _Extreme(self, n: ir.Extreme) -> np.ndarray:
        return reduce_extreme(self.ev(n.a), n.axis, n.keepdims, self.EXTREMES[n.fn])

    #: max / min of a list of entries (SymPy's here; the oracle's are Python's, on numbers)
    EXTREMES: ClassVar[dict[str, Callable[..., Any]]] = {"max": sp.Max, "min": sp.Min}

    def _Trace(self, n: ir.Trace) -> np.ndarray:
        return np.trace(self.ev(n.a))

    def _Det(self, n: ir.Det) -> sp.Expr:
        return sp.Matrix(self.ev(n.a).tolist()).det(method="berkowitz")

    def _Inv(self, n: ir.Inv) -> np.ndarray:
        m = sp.Matrix(self.ev(n.a).tolist())
        det = sp.expand(m.det(method="berkowitz"))
        if det == 0:
            from ..lang.printing import language

            raise Undefined(f"{language(n)} is the inverse of a matrix that is singular "
                            f"for every input (its determinant is identically 0)")
        return np.array(m.adjugate() / det, dtype=object)

    def _Diag(self, n: ir.Diag) -> np.ndarray:
        a = self.ev(n.a)
        if a.ndim == 1:
            out = np.full((a.shape[0],) * 2, self.ZERO, dtype=object)
            for i in range(a.shape[0]):
                out[i, i] = a[i]
            return out
        return np.array([a[i, i] for i in range(a.shape[0])], dtype=object)

    def _Outer(self, n: ir.Outer) -> np.ndarray:
        return np.multiply.outer(self.ev(n.a), self.ev(n.b))

    def _Broadcast(self, n: ir.Broadcast) -> np.ndarray:
        return np.broadcast_to(self.ev(n.a), self.shape(n.shape))

    def _ExpandDims(self, n: ir.ExpandDims) -> np.ndarray:
        return np.expand_dims(self.ev(n.a), n.axis)

    def _Macro(self, n: ir.Macro) -> np.ndarray:
        return self.ev(n.expansion)

    #: node type -> its rule (explicit dispatch; tests check every node type is covered)
    RULES: ClassVar[dict[type, Callable[..., Any]]] = {
        ir.Var: _Var,
        ir.Const: _Const,
        ir.DimSize: _DimSize,
        ir.Eye: _Eye,
        ir.Ones: _Ones,
        ir.Binary: _Binary,
        ir.Neg: _Neg,
        ir.MatMul: _MatMul,
        ir.Transpose: _Transpose,
        ir.Permute: _Permute,
        ir.Reshape: _Reshape,
        ir.Apply: _Apply,
        ir.Compare: _Compare,
        ir.Where: _Where,
        ir.Sum: _Sum,
        ir.Extreme: _Extreme,
        ir.OneHot: _OneHot,
        ir.Trace: _Trace,
        ir.Det: _Det,
        ir.Inv: _Inv,
        ir.Diag: _Diag,
        ir.Outer: _Outer,
        ir.Broadcast: _Broadcast,
        ir.ExpandDims: _ExpandDims,
        ir.Macro: _Macro,
    }


# ---------------------------------------------------------------- deciding zero
EXACT, NUMERIC = "symbolic", "numeric"


def _exp_to_symbols(e: sp.Expr) -> sp.Expr | None:
    """Write every exp(c·x) as E_x**c (E_x a positive symbol); None if an exponent is not
    a rational multiple of a single symbol."""
    e = sp.expand(e.rewrite(sp.exp), power_exp=True, mul=False, multinomial=False, deep=True)
    mapping = {}
    for atom in e.atoms(sp.exp):
        arg = atom.args[0]
        coeff, rest = arg.as_coeff_Mul()
        if not (isinstance(rest, sp.Symbol) and coeff.is_Rational):
            return None
        mapping[atom] = sp.Symbol(f"E_{rest.name}", positive=True) ** coeff
    return e.xreplace(mapping)


def zero_test(d: sp.Expr, rng: random.Random | None = None) -> str | None:
    """EXACT if d is identically zero by exact algebra, NUMERIC if it vanishes (|d| < 1e-25)
    at random points with 40-digit arithmetic, None if it is not zero."""
    d = sp.sympify(d, strict=True)
    if d == 0:
        return EXACT
    if d.has(sp.Piecewise):
        folded = sp.piecewise_fold(d)
        if isinstance(folded, sp.Piecewise):
            results = [zero_test(branch, rng) for branch, _ in folded.args]
            if all(r == EXACT for r in results):
                return EXACT
        return _numeric_zero(d, rng)
    try:
        if sp.expand(d) == 0:
            return EXACT
        if not d.has(sp.Abs, sp.sign):
            rational = _exp_to_symbols(d) if d.has(sp.exp, sp.tanh, sp.sinh, sp.cosh) else d
            if rational is not None and not rational.has(sp.exp, sp.log, sp.tanh):
                if sp.cancel(sp.together(rational)) == 0:
                    return EXACT
                return None if _numeric_zero(d, rng) is None else NUMERIC
    except (sp.PolynomialError, ZeroDivisionError, TypeError):  # pragma: no cover - defensive
        pass
    return _numeric_zero(d, rng)


def _sample(sym: sp.Symbol, rng: random.Random, wide: bool = False) -> sp.Rational:
    top = 400 if wide else 200
    mag = sp.Rational(rng.randint(50 if not wide else 1, top), 100)
    if sym.is_positive:
        return mag
    if sym.is_nonzero:
        return mag if rng.random() < 0.5 else -mag
    return sp.Rational(rng.randint(-top, top), 100) or sp.Rational(1, 3)


def _breakpoints(d: sp.Expr) -> dict[sp.Symbol, list[sp.Rational]]:
    """Points just either side of where a branch condition of d changes, per symbol: the roots
    of lhs − rhs of each one-symbol relational, and of the arguments of Abs and sign."""
    from .simplify import _TimeUp, time_limit

    found: dict[sp.Symbol, list[sp.Rational]] = {}
    edges = [r.lhs - r.rhs for r in d.atoms(sp.Rel)]
    edges += [a.args[0] for a in d.atoms(sp.Abs, sp.sign)]
    for e in edges[:40]:
        syms = e.free_symbols
        if len(syms) != 1:
            continue
        (s,) = syms
        try:
            with time_limit(0.5):
                roots = sp.solve(e, s)
        except (_TimeUp, NotImplementedError, ValueError, TypeError):
            continue
        for r in roots[:4]:
            try:
                b = float(r)
            except (TypeError, ValueError):
                continue
            step = 1e-3 * max(1.0, abs(b))
            for v in (b - step, b + step):
                q = sp.Rational(round(v * 10**6), 10**6)
                if (s.is_positive and q <= 0) or (s.is_nonzero and q == 0):
                    continue
                found.setdefault(s, []).append(q)
    return found


def sample_points(d: sp.Expr, rng: random.Random | None = None,
                  points: int = 3) -> Iterator[dict[sp.Symbol, sp.Rational]]:
    """Points {symbol: rational} for testing d numerically. With branches (Piecewise, Abs,
    sign), also just either side of every branch boundary and over a wider range, so two
    formulas that differ only on part of the line are told apart."""
    rng = rng or random.Random(0)
    syms = sorted(d.free_symbols, key=lambda s: s.name)
    branches = d.has(sp.Piecewise, sp.Abs, sp.sign)
    near = _breakpoints(d) if branches else {}
    if branches:
        points = max(points, 16 + 2 * sum(len(v) for v in near.values()))
    for k in range(points):
        point: dict[sp.Symbol, sp.Rational] = {}
        for s in syms:
            edge = near.get(s)
            if edge and k % 2 == 1:
                point[s] = edge[(k // 2) % len(edge)]
            else:
                point[s] = _sample(s, rng, wide=k >= 3)
        yield point


def value_at(d: sp.Expr, point: dict) -> sp.Expr | None:
    """d at the point with 40-digit arithmetic; None where it is undefined (nan, zoo)."""
    try:
        value = sp.N(d.xreplace(point), 40)
    except (TypeError, ValueError):  # pragma: no cover
        return None
    if not value.is_number or value.has(sp.nan, sp.zoo):
        return None
    return value


def _numeric_zero(d: sp.Expr, rng: random.Random | None, points: int = 3) -> str | None:
    """NUMERIC if d vanishes (|d| < 1e-25, 40 digits) at every point of `sample_points`."""
    for point in sample_points(d, rng, points):
        value = value_at(d, point)
        if value is None or abs(complex(value)) > 1e-25:
            return None
    return NUMERIC


def witness(d: sp.Expr, rng: random.Random | None = None) -> dict | None:
    """A point of `sample_points` where d is defined and not zero, if any."""
    for point in sample_points(d, rng, 8):
        value = value_at(d, point)
        if value is not None and abs(complex(value)) > 1e-25:
            return point
    return None
