"""Elementwise functions: each is a SymPy definition f(t; params). Derivatives are derived.

Nothing here states a derivative: `derivative(fn)` differentiates the definition with SymPy,
and, where the result can be written more simply through the function's own value s = f(t)
(exp' = s, tanh' = 1 − s², sigmoid' = s(1 − s)), rewrites it that way only after proving
f'(t) − h(f(t)) = 0 symbolically. Non-elementwise functions (softmax, mean) are macros
defined in `derivkit.lang.parse` from these and the array operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

T = sp.Symbol("t", real=True)
S = sp.Symbol("s", real=True)


@dataclass(frozen=True)
class Elementwise:
    name: str
    params: tuple[str, ...] = ()
    domain: str = "real"     # where the definition is real: real | positive
    doc: str = ""


FUNCTIONS: dict[str, Elementwise] = {
    "exp": Elementwise("exp", doc="exp(t)"),
    "log": Elementwise("log", domain="positive", doc="natural logarithm, t > 0"),
    "sqrt": Elementwise("sqrt", domain="positive", doc="square root, t > 0"),
    "abs": Elementwise("abs", doc="|t|; derivative sign(t), 0 at t = 0"),
    "sign": Elementwise("sign", doc="sign(t)"),
    "tanh": Elementwise("tanh", doc="hyperbolic tangent"),
    "sigmoid": Elementwise("sigmoid", doc="1 / (1 + exp(−t))"),
    "relu": Elementwise("relu", doc="t where t > 0, else 0"),
    "leaky_relu": Elementwise("leaky_relu", ("alpha",), (0.01,),
                              doc="t where t ≥ 0, else alpha·t"),
}


def param_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def definition(fn: str, t: sp.Expr = T, params: tuple = ()) -> sp.Expr:
    """f(t; params) as a SymPy expression."""
    if fn == "exp":
        return sp.exp(t)
    if fn == "log":
        return sp.log(t)
    if fn == "sqrt":
        return sp.sqrt(t)
    if fn == "abs":
        return sp.Abs(t)
    if fn == "sign":
        return sp.sign(t)
    if fn == "tanh":
        return sp.tanh(t)
    if fn == "sigmoid":
        return 1 / (1 + sp.exp(-t))
    if fn == "relu":
        return sp.Piecewise((t, t > 0), (0, True))
    if fn == "leaky_relu":
        (alpha,) = params or (param_symbol("alpha"),)
        return sp.Piecewise((t, t >= 0), (alpha * t, True))
    raise KeyError(fn)


def _symbols(fn: str) -> tuple[sp.Symbol, ...]:
    return tuple(param_symbol(p) for p in FUNCTIONS[fn].params)


@dataclass(frozen=True)
class DerivativeRule:
    """f'(t) = expr, where expr may use T (the argument), S (the value f(t)) and params."""

    fn: str
    expr: sp.Expr
    uses_value: bool
    params: tuple[sp.Symbol, ...]


@lru_cache(maxsize=None)
def derivative(fn: str) -> DerivativeRule:
    params = _symbols(fn)
    t = sp.Symbol("t", positive=True) if FUNCTIONS[fn].domain == "positive" else T
    f = definition(fn, t, params)
    fprime = sp.diff(f, t)
    if fprime.has(sp.DiracDelta):  # sign': 0 wherever it is defined (almost everywhere)
        fprime = fprime.replace(sp.DiracDelta, lambda *a: sp.Integer(0))
    best = fprime
    uses_value = False
    if not f.has(sp.Piecewise, sp.Abs, sp.sign):
        for candidate in _in_terms_of_value(f, fprime, t):
            if uses_value and candidate is _SOLVED:
                break  # a proven direct rewrite exists; skip solving s = f(t)
            if candidate is _SOLVED:
                continue
            if sp.count_ops(candidate) < sp.count_ops(best) and _proved_equal(
                    fprime, candidate.subs(S, f), t):
                best, uses_value = candidate, True
    best = best.subs(t, T) if t != T else best
    return DerivativeRule(fn, _tidy(best), uses_value, params)


_SOLVED = object()  # marker between the direct candidates and the solved ones


def _in_terms_of_value(f: sp.Expr, fprime: sp.Expr, t: sp.Symbol):
    """Candidates h(s) with f'(t) = h(f(t)): f(t) replaced by s where it appears in f'(t),
    then f'(t) at t = f⁻¹(s) from solving s = f(t)."""
    direct = fprime.subs(f, S)
    if not direct.has(t):
        yield direct
        yield sp.factor(direct)
    yield _SOLVED
    for s_sym in (S, sp.Symbol("s", positive=True)):
        try:
            roots = sp.solve(sp.Eq(s_sym, f), t)
        except (NotImplementedError, ValueError, TypeError):  # pragma: no cover - sympy limits
            continue
        for root in roots:
            cand = sp.simplify(fprime.subs(t, root))
            if cand.has(t):
                continue
            yield cand.subs(s_sym, S)
            yield sp.factor(cand.subs(s_sym, S))


def _proved_equal(a: sp.Expr, b: sp.Expr, t: sp.Symbol) -> bool:
    diff = sp.simplify(a - b)
    return diff == 0


def _tidy(expr: sp.Expr) -> sp.Expr:
    """−s(s − 1) -> s(1 − s): absorb a leading −1 into an Add factor."""
    if isinstance(expr, sp.Mul):
        coeff, rest = expr.as_coeff_mul()
        if coeff == -1:
            for i, factor in enumerate(rest):
                if isinstance(factor, sp.Add):
                    flipped = list(rest)
                    flipped[i] = sp.expand(-factor)
                    return sp.Mul(*flipped, evaluate=False)
    return expr


def kinks(fn: str) -> list[sp.Expr]:
    """Points where the definition switches branch (piecewise functions only)."""
    f = definition(fn, T, _symbols(fn))
    points: list[sp.Expr] = []
    for rel in f.atoms(sp.Rel):
        if rel.has(T):
            sol = sp.solve(sp.Eq(rel.lhs, rel.rhs), T)
            points.extend(p for p in sol if p not in points)
    if fn == "abs":
        points.append(sp.Integer(0))
    return points


@dataclass(frozen=True)
class KinkConvention:
    fn: str
    at: sp.Expr
    value: sp.Expr
    left: sp.Expr
    right: sp.Expr

    def sentence(self) -> str:
        return (f"{self.fn}'({self.at}) = {self.value}: at the kink derivkit uses the derivative of "
                f"the branch that holds at {self.at} (one-sided derivatives: {self.left} from the "
                f"left, {self.right} from the right); finite differences cannot decide this value, "
                f"so checks sample away from {self.at}")


@lru_cache(maxsize=None)
def kink_conventions(fn: str) -> tuple[KinkConvention, ...]:
    """The derivative's value at each kink, and the one-sided limits, computed from the rule."""
    rule = derivative(fn)
    f = definition(fn, T, rule.params)
    fprime = rule.expr.subs(S, f) if rule.uses_value else rule.expr
    eps = sp.Symbol("eps", positive=True)
    out = []
    for k in kinks(fn):
        at = fprime.subs(T, k)
        left = sp.limit(fprime.subs(T, k - eps), eps, 0, "+")
        right = sp.limit(fprime.subs(T, k + eps), eps, 0, "+")
        out.append(KinkConvention(fn, k, at, left, right))
    return tuple(out)
