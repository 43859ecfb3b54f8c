"""How a printed form is verified, and the sentence that says so.

Every form is compared with the high-precision oracle (`oracle`: the forward alone,
differentiated numerically at 60 digits) at every size assignment, distinct per dimension;
where the element-wise SymPy derivation is small enough (`crosscheck`), the form is also
compared with it symbolically, within a time budget. A form is verified when the oracle agrees
and the symbolic comparison found no disagreement; the label names both, with their sizes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ..lang import ir
from ..limits import _TimeUp
from ..results import Verification
from .crosscheck import UNDEFINED, UNFINISHED, IndexForm, Verifier
from .index import Where
from .oracle import DPS, MP, ORACLE, RELATIONS, Numeric, Oracle, as_mp

SYMBOLIC_BUDGET_S = 0.2   # per input differentiated, shared by its forms' symbolic comparisons
DERIVATION_BUDGET_S = 0.6   # per derivation, all its inputs together
# Above this estimated size of the element-wise forward (`crosscheck.explicit_cost`) the symbolic
# comparison does not finish in such budgets (measured on benchmarks/expressions.toml: cost 989,
# a ReLU MLP, over 10 s; 600, a layer of mlp3, 0.4 s): it is not started.
SYMBOLIC_MAX_COST = 700
LINES_BUDGET_S = 0.1      # per backward program, shared by its lines' symbolic comparisons
# The symbolic comparison is exact at the sizes it runs at; it runs at the first size assignment
# only (the smallest, distinct per dimension); the oracle covers every assignment.
SYMBOLIC_SIZES = 1


class Budget:
    """Seconds left for a group of symbolic comparisons (one input's forms, or one backward
    program's lines), counted from the first."""

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = SYMBOLIC_BUDGET_S if seconds is None else seconds
        self.deadline: float | None = None   # set by the first comparison

    def give(self, verifier: Verifier | None) -> Verifier | None:
        """`verifier` with the time left as its budget, or None when none is left or its
        problem is too large to finish in a budget this short."""
        if verifier is None or verifier.cost > SYMBOLIC_MAX_COST:
            return None
        if self.deadline is None:
            self.deadline = time.monotonic() + self.seconds
        left = self.deadline - time.monotonic()
        if left < 0.05:
            return None
        verifier.budget_s = left
        verifier.max_sizes = SYMBOLIC_SIZES
        return verifier


def combine(numeric: Verification, symbolic: Verification | None) -> Verification:
    """One verdict from the oracle's and (where it ran) the symbolic comparison's."""
    if not numeric.verified:
        return numeric
    if symbolic is None or symbolic.detail.startswith((UNFINISHED, UNDEFINED)):
        return numeric   # not run, not finished within the budget, or at sizes where the
                         # forward is undefined (the oracle chose sizes where it is defined)
    if not symbolic.verified:
        return symbolic
    sizes = tuple(symbolic.sizes) + tuple(s for s in numeric.sizes if s not in symbolic.sizes)
    return Verification(True, symbolic.method, sizes, f"{symbolic.detail}; {numeric.detail}")


def matrix_check(oracle: Oracle, verifier: Verifier | None, budget: Budget, kind: str, wrt: str,
                 form: ir.Node, upstream: ir.Var | None) -> Verification:
    """A matrix form (gradient, VJP or vector Jacobian) against the oracle and, if given, the
    element-wise derivation."""
    if kind == "jacobian":
        assert upstream is not None   # a Jacobian is of a vector output
        numeric = oracle.compare(wrt, lambda k: _dot(oracle.point(k).env[upstream.name],
                                                     oracle.value(k, form)))
    else:
        numeric = oracle.compare(wrt, lambda k: oracle.value(k, form))
    verifier = budget.give(verifier) if numeric.verified else None
    symbolic = _symbolic(verifier.check_matrix, kind, form) if verifier is not None else None
    return combine(numeric, symbolic)


def index_check(oracle: Oracle, verifier: Verifier | None, budget: Budget, wrt: str, form: IndexForm,
                upstream: ir.Var | None) -> Verification:
    """An index form (∂L/∂x_e, or the Jacobian entry ∂out_o/∂x_e contracted with the upstream
    G) against the oracle, then the element-wise derivation."""
    fn = _IndexFunction(form)

    def value(k: int) -> np.ndarray:
        point = oracle.point(k)
        ex = Numeric(point.sizes, point.env, oracle.named)
        x_shape = np.shape(oracle.base(k, wrt))
        out_shape = np.shape(point.values[oracle.out]) if upstream is not None else ()
        opaque = {str(getattr(b, "label", b)): n for b, n in form.opaque.items()}

        def array(name: str) -> Any:
            if name in point.env:   # a scalar input as a number, as a named scalar below
                value = point.env[name]
                return value if np.ndim(value) else np.asarray(value).item()
            value = ex.ev(oracle.named[name] if name in oracle.named else opaque[name])
            return value if value.ndim else value.item()

        args = [array(str(getattr(a, "label", a))) for a in fn.arrays]
        dims = [point.sizes[str(d)] for d in fn.dims]
        numbers = np.empty(tuple(out_shape) + tuple(x_shape), dtype=object)
        for o in np.ndindex(*out_shape):
            for e in np.ndindex(*x_shape):
                numbers[o + e] = as_mp(fn.call(*o, *e, *dims, *args))
        if upstream is None:
            return numbers
        return _dot(point.env[upstream.name], numbers)

    try:
        numeric = oracle.compare(wrt, value)
    except _CannotEvaluate:   # symbolically only, with the time left
        given = budget.give(verifier)
        return _symbolic(given.check_index, form) if given is not None else Verification(
            False, "none", (), f"{UNFINISHED}, and the oracle cannot evaluate this index form")
    given = budget.give(verifier) if numeric.verified else None
    symbolic = _symbolic(given.check_index, form) if given is not None else None
    return combine(numeric, symbolic)


class _IndexFunction:
    """An index form evaluated entry by entry over mpmath numbers, its sums as loops: the SymPy
    tree is turned once into nested Python closures (nothing is compiled from text or
    executed), then called per entry."""

    def __init__(self, form: IndexForm) -> None:
        self.expr = form.expr
        self.idx = (*form.out_idx, *form.in_idx)
        self.data: dict[str, Any] = {}
        labels = {b.label for b in form.expr.atoms(sp.IndexedBase)}
        bases = sorted(form.expr.atoms(sp.IndexedBase), key=str)
        free = {s for s in form.expr.free_symbols
                if isinstance(s, sp.Symbol) and s not in labels and s not in self.idx}
        self.dims = sorted((s for s in free if s.is_integer and s.is_positive), key=str)
        self.arrays = [*bases, *sorted(free - set(self.dims), key=str)]
        self._fn: Callable[[dict[Any, Any]], Any] | None = None

    def call(self, *values: Any) -> Any:
        names = [*self.idx, *self.dims]
        bound: dict[Any, Any] = dict(zip(names, values[:len(names)]))
        self.data = {str(getattr(a, "label", a)): v for a, v in zip(self.arrays, values[len(names):])}
        for a in self.arrays:
            if isinstance(a, sp.Symbol):
                bound[a] = self.data[a.name]
        if self._fn is None:
            self._fn = self._compile(self.expr)
        return self._fn(bound)

    def _compile(self, e: Any) -> Callable[[dict[Any, Any]], Any]:
        """A function of the bound indices and symbols giving e's value."""
        if e.is_Integer:
            v: Any = int(e)
            return lambda b: v
        if e.is_Rational:
            v = mpmath.mpf(e.p) / e.q
            return lambda b: v
        if isinstance(e, sp.Float):   # the decimal it prints as (0.01 is 1/100), as the oracle reads it
            v = mpmath.mpf(str(e))
            return lambda b: v
        if e.is_Number or e.is_NumberSymbol:
            v = mpmath.mpf(sp.Float(e, DPS)._mpf_)
            return lambda b: v
        if e is sp.true or e is sp.false:
            v = bool(e)
            return lambda b: v
        if isinstance(e, sp.Symbol):
            return lambda b: b[e]
        if isinstance(e, sp.Indexed):
            label, idx = str(e.base.label), [self._compile(i) for i in e.indices]
            return lambda b: self.data[label][tuple(i(b) for i in idx)]
        if isinstance(e, sp.Sum):
            return self._sum(self._compile(e.function), list(e.limits))
        if isinstance(e, Where):
            c, x, y = (self._compile(a) for a in e.args)
            return lambda b: x(b) if c(b) else y(b)
        if isinstance(e, sp.Piecewise):
            pieces = [(self._compile(v), self._compile(c)) for v, c in e.args]
            return lambda b: next(v(b) for v, c in pieces if c(b))
        if isinstance(e, sp.KroneckerDelta):
            i, j = (self._compile(a) for a in e.args)
            return lambda b: 1 if i(b) == j(b) else 0
        if isinstance(e, sp.core.relational.Relational):
            rel, lhs, rhs = RELATIONS[e.rel_op], self._compile(e.lhs), self._compile(e.rhs)
            return lambda b: rel(lhs(b), rhs(b))
        args = [self._compile(a) for a in e.args]
        if isinstance(e, sp.Add):
            return lambda b: mpmath.fsum(a(b) for a in args)
        if isinstance(e, sp.Mul):
            def product(b: dict[Any, Any]) -> Any:
                out: Any = 1
                for a in args:
                    out = out * a(b)
                return out
            return product
        if isinstance(e, sp.Pow):
            base, exp = args

            def power(b: dict[Any, Any]) -> Any:
                x = base(b)
                return (mpmath.mpf(x) if isinstance(x, int) else x) ** exp(b)
            return power
        fn = getattr(MP, type(e).__name__, None)   # exp, log, tanh, Abs, sign, ...
        if fn is None:
            raise _CannotEvaluate(type(e).__name__)
        return lambda b: fn(*(a(b) for a in args))

    def _sum(self, body: Callable[[dict[Any, Any]], Any], limits: list[Any]
             ) -> Callable[[dict[Any, Any]], Any]:
        if not limits:
            return body
        (k, lo, hi), rest = limits[0], limits[1:]
        inner, low, high = self._sum(body, rest), self._compile(lo), self._compile(hi)

        def loop(b: dict[Any, Any]) -> Any:
            return mpmath.fsum(inner({**b, k: v}) for v in range(int(low(b)), int(high(b)) + 1))
        return loop


class _CannotEvaluate(Exception):
    """An index form holds a function the walk does not know (checked the slow way)."""


def _symbolic(run: Callable[..., Verification], *args: Any) -> Verification:
    """A symbolic comparison; a time limit that fires as it ends (its SIGALRM delivered after
    the comparison's own handler) counts as not finished."""
    try:
        return run(*args)
    except _TimeUp:
        return Verification(False, "none", (), f"{UNFINISHED} within its budget")


def _dot(g: np.ndarray, jac: np.ndarray) -> np.ndarray:
    return np.tensordot(g, jac, axes=np.ndim(g))


__all__ = ["DERIVATION_BUDGET_S", "LINES_BUDGET_S", "ORACLE", "SYMBOLIC_BUDGET_S", "Budget",
           "combine", "index_check", "matrix_check"]
