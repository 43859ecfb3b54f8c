"""Derivatives of the elementwise functions in `derivkit.lang.ops`, derived from their definitions.

Nothing here states a derivative: `derivative(fn)` differentiates the definition with SymPy,
and, where the result can be written more simply through the function's own value s = f(t)
(exp' = s, tanh' = 1 − s², σ' = s(1 − s)), rewrites it that way only after proving
f'(t) − h(f(t)) = 0 symbolically. Non-elementwise functions (softmax, mean) are macros
defined in `derivkit.lang.parse` from these and the array operations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import sympy as sp

from ..lang.ops import ELEMENTWISE

#: the language's named constants (`ir.NAMED_NUMBERS`) as SymPy's exact numbers
SYMPY_NUMBERS = {"pi": sp.pi, "e": sp.E}

T = sp.Symbol("t", real=True)
S = sp.Symbol("s", real=True)


def param_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def definition(fn: str, t: sp.Expr = T, params: tuple = ()) -> sp.Expr:
    """f(t; params) as a SymPy expression (params default to their symbols)."""
    entry = ELEMENTWISE[fn]
    return entry.definition(sp, t, *(params or _symbols(fn)))


def _symbols(fn: str) -> tuple[sp.Symbol, ...]:
    return tuple(param_symbol(p) for p in ELEMENTWISE[fn].param_names)


@dataclass(frozen=True)
class DerivativeRule:
    """f'(t) = expr, where expr may use T (the argument), S (the value f(t)) and params."""

    fn: str
    expr: sp.Expr
    uses_value: bool
    params: tuple[sp.Symbol, ...]
    function: str = ""   # f' is this other table function of t (softplus' = sigmoid); expr is its definition


#: f(t) is solved for t, to write f' through f's value, only for definitions this short: the
#: solve takes seconds on GELU's tanh form and finds nothing there
SOLVE_MAX_OPS = 4


@cache
def derivative(fn: str) -> DerivativeRule:
    params = _symbols(fn)
    t = sp.Symbol("t", positive=True) if ELEMENTWISE[fn].domain == "positive" else T
    f = definition(fn, t, params)
    fprime = sp.diff(f, t)
    if fprime.has(sp.DiracDelta):  # sign': 0 wherever it is defined (almost everywhere)
        fprime = fprime.replace(sp.DiracDelta, lambda *a: sp.Integer(0))
    other = _table_function(fn, fprime, t)
    if other is not None:
        return DerivativeRule(fn, definition(other), False, params, other)
    best = fprime
    uses_value = False
    if not f.has(sp.Piecewise, sp.Abs, sp.sign) and sp.count_ops(f) <= SOLVE_MAX_OPS:
        for candidate in _in_terms_of_value(f, fprime, t):
            if candidate is _SOLVED and (uses_value or sp.count_ops(fprime) <= 2):
                break  # a proven direct rewrite exists, or f' is already short (1/t, −sin t)
            if candidate is _SOLVED:
                continue
            if sp.count_ops(candidate) < sp.count_ops(best) and _proved_equal(
                    fprime, candidate.subs(S, f), t):
                best, uses_value = candidate, True
    best = best.subs(t, T) if t != T else best
    return DerivativeRule(fn, _tidy(best), uses_value, params)


def _table_function(fn: str, fprime: sp.Expr, t: sp.Symbol) -> str | None:
    """Another table function g (no parameters, no kink) with f'(t) = g(t), proved by SymPy
    after agreeing at three points: softplus' = σ. None if there is none."""
    if fprime.free_symbols - {t} or sp.count_ops(fprime) <= 1:
        return None
    points = (sp.Rational(3, 10), sp.Rational(7, 10), sp.Rational(19, 10))
    want = [fprime.subs(t, p).evalf(30) for p in points]
    for name, entry in ELEMENTWISE.items():
        if name == fn or entry.params or entry.kink is not None:
            continue
        g = definition(name, t)
        if g.has(sp.Piecewise, sp.Abs, sp.sign):
            continue
        if all(abs(g.subs(t, p).evalf(30) - w) < sp.Float(1e-25) for p, w in zip(points, want)) \
                and _proved_equal(fprime, g, t):
            return name
    return None


_SOLVED = object()  # marker between the direct candidates and the solved ones


def _in_terms_of_value(f: sp.Expr, fprime: sp.Expr, t: sp.Symbol) -> Iterator[sp.Expr]:   # or _SOLVED
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
    """Points where the derivative jumps: where a piecewise definition switches branch, and the
    table's kink if f' differs on its two sides there (|t| at 0; not sign, whose f' is 0)."""
    f = definition(fn, T, _symbols(fn))
    points: list[sp.Expr] = []
    for rel in f.atoms(sp.Rel):
        if rel.has(T):
            sol = sp.solve(sp.Eq(rel.lhs, rel.rhs), T)
            points.extend(p for p in sol if p not in points)
    kink = ELEMENTWISE[fn].kink
    if kink is not None and sp.nsimplify(kink) not in points:
        at = sp.nsimplify(kink)
        fprime = sp.diff(f, T).replace(sp.DiracDelta, lambda *a: sp.Integer(0))
        eps = sp.Symbol("eps", positive=True)
        left = sp.limit(fprime.subs(T, at - eps), eps, 0, "+")
        right = sp.limit(fprime.subs(T, at + eps), eps, 0, "+")
        if sp.simplify(left - right) != 0:
            points.append(at)
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


@cache
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


@cache
def sympy_classes() -> dict[type, str]:
    """{SymPy function class: table name} for each function whose definition is one SymPy
    function applied to t (exp, log, tanh, Abs, sign; not sqrt, a power, nor σ = 1/(1 + exp(−t)))."""
    out: dict[type, str] = {}
    for name in ELEMENTWISE:
        f = definition(name, T, _symbols(name))
        if isinstance(f, sp.Function) and f.args == (T,):
            out[type(f)] = name
    return out
