"""Confirm derived forms against the element-wise derivation at small concrete sizes.

For each size assignment (distinct values per dimension, so a transposed formula cannot pass on
a square shape), the forward is evaluated on symbol arrays and differentiated entry by entry
(`explicit`). A matrix-form VJP/gradient is compared with ∂⟨G, out⟩/∂x_e for every entry e, a
matrix Jacobian with ∂out_o/∂x_e for every (o, e), and an index form by substituting every
concrete index tuple. A form is verified only if every entry agrees at every size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from ..lang import ir
from ..lang.ops import ELEMENTWISE
from ..lang.shapes import DECLARED, fmt_sizes
from ..results import Verification
from . import elementwise
from .explicit import EXACT, Explicit, Undefined, symbol_array, zero_test
from .index import dim_symbol, transparent
from .simplify import _TimeUp, time_limit

MAX_ENTRIES = 400  # n_out * n_in per size assignment
MAX_COST = 20_000  # estimated SymPy nodes in the explicit forward at the smallest sizes
BUDGET_S = 30.0     # per form; sizes not reached in time are reported as skipped
UNFINISHED = "NOT VERIFIED: the element-wise comparison did not finish"
UNDEFINED = "NOT VERIFIED: the forward is undefined at"

#: One size assignment's evaluation: sizes, env, ex (Explicit), out, x, and the truths (vjp, jac)
_Context = dict[str, Any]


@dataclass
class IndexForm:
    expr: sp.Expr
    out_idx: tuple[sp.Symbol, ...]
    in_idx: tuple[sp.Symbol, ...]
    opaque: dict = field(default_factory=dict)


@dataclass
class Problem:
    """What one derivative is about: out = forward(inputs), differentiated w.r.t. `wrt`."""

    out: ir.Node
    inputs: dict[str, tuple[ir.Shape, str]]   # name -> (shape, domain)
    params: tuple[str, ...]
    named: dict[str, ir.Node]        # name -> definition
    wrt: ir.Var
    upstream: ir.Var | None          # None for scalar outputs
    param_values: dict[str, float] = field(default_factory=dict)   # bound parameters (else symbols)
    # inputs that stand for a value of the other inputs (a backward line's H = √(mean(U²) + ε),
    # held constant where it is an operand, a function where it is differentiated): their
    # symbols are replaced by that value after differentiation, in truth and form alike
    consistent: dict[str, ir.Node] = field(default_factory=dict)


def size_assignments(dims: list[str], heavy: bool = False,
                     minimum: dict[str, int] | None = None,
                     products: dict[str, tuple[ir.Dim, ...]] | None = None) -> list[dict[str, int]]:
    """Small sizes, distinct per dimension, at a few assignments; a dimension with a least size
    (`minimum`, e.g. n ≥ 3 for z[2]) is shifted up to it; a declared product (`products`,
    e = h·d) is its factors' product."""
    if products:
        return [ir.with_products(a, products)
                for a in size_assignments(ir.free_dims(dims, products), heavy, minimum)]
    if not dims:
        return [{}]
    minimum = minimum or {}
    values = [2, 3] if heavy else ([2, 3, 4] if len(dims) <= 3 else list(range(2, 2 + len(dims))))
    out = []
    for t in range(len(values) if heavy or len(dims) > 1 else 3):
        out.append({d: values[(i + t) % len(values)] for i, d in enumerate(dims)})
    out = [{d: v + max(0, minimum.get(d, 0) - 2) for d, v in a.items()} for a in out]
    uniq = []
    for a in out:
        if a not in uniq:
            uniq.append(a)
    return uniq


def explicit_cost(node: ir.Node, sizes: dict[str, int]) -> int:
    """Estimated number of SymPy nodes in the element-wise forward (all entries) at `sizes`:
    a product contracting k terms repeats its operands k times, a kink function holds its
    argument twice (condition and value), a sum over N entries repeats its summand N times."""
    def dim(d: ir.Dim) -> int:
        return d if isinstance(d, int) else sizes[d]

    def entries(n: ir.Node) -> int:
        return int(np.prod([dim(d) for d in n.shape] or [1]))

    memo: dict[ir.Node, int] = {}
    for n in ir.walk(node):
        a = [memo[c] for c in n.args]
        if isinstance(n, ir.MatMul):
            size = dim(n.a.shape[-1]) * (a[0] + a[1] + 1)
        elif isinstance(n, ir.Apply):
            size = (2 * a[0] + 3) if ELEMENTWISE[n.fn].kink is not None else a[0] + 1
            size += sum(a[1:])
        elif isinstance(n, ir.Sum):
            size = max(1, entries(n.a) // max(1, entries(n))) * a[0]
        elif isinstance(n, ir.Trace):
            size = dim(n.a.shape[0]) * a[0]
        elif isinstance(n, (ir.Extreme, ir.OneHot, ir.Reshape)):   # piecewise in every entry, or
            # a reshape's index arithmetic (quotients and remainders): the oracle decides
            size = 10**12
        elif isinstance(n, (ir.Det, ir.Inv)):
            k = dim(n.a.shape[0])
            size = k ** 3 * a[0]
        else:
            size = sum(a) + 1
        memo[n] = min(size, 10**12)
    return memo[node] * entries(node)


def describe_sizes(sizes: list[dict[str, int]], method: str) -> str:
    how = "symbolically" if method == EXACT else "numerically (40-digit arithmetic at random points)"
    if not sizes or sizes == [{}]:
        return f"verified {how} at the declared sizes"
    dims = list(sizes[0])
    if len(dims) == 1:
        return f"verified {how} at {dims[0]} = {', '.join(str(s[dims[0]]) for s in sizes)}"
    tuples = ", ".join("(" + ", ".join(str(s[d]) for d in dims) + ")" for s in sizes)
    return f"verified {how} at ({', '.join(dims)}) = {tuples}"


@dataclass(frozen=True)
class Mismatch:
    """Where a form disagrees with the element-wise derivation: the size assignment, the entry
    (the form's index, or output index + input index for a Jacobian), both sides as SymPy
    expressions in the entry symbols of `env` (name -> object array of symbols)."""

    sizes: dict[str, int]
    entry: tuple[int, ...]
    derived: sp.Expr
    truth: sp.Expr
    env: dict[str, np.ndarray]


class _Mismatch(Exception):
    def __init__(self, message: str, entry: tuple[int, ...] = (), derived: sp.Expr | None = None,
                 truth: sp.Expr | None = None) -> None:
        super().__init__(message)
        self.entry, self.derived, self.truth = entry, derived, truth


class _OutOfTime(Exception):
    pass


class Verifier:
    def __init__(self, problem: Problem, budget_s: float = BUDGET_S,
                 assignments: list[dict[str, int]] | None = None) -> None:
        self.p = problem
        self.budget_s = budget_s
        self.max_sizes: int | None = None   # compare at the first this many assignments (None: all)
        self.deadline = 0.0
        self.mismatch: Mismatch | None = None   # the first disagreement of the last check
        self.dims = sorted(ir.dims_used(problem.out) | {d for shape, _ in problem.inputs.values()
                                                        for d in shape if isinstance(d, str)})
        every = [problem.out, *problem.consistent.values()]   # a line's step definitions too
        heavy = any(isinstance(n, (ir.Det, ir.Inv)) for n in ir.walk(problem.out))
        candidates = (size_assignments(self.dims, heavy, ir.minimum_sizes(every), ir.size_products(every))
                      if assignments is None else assignments)
        self.assignments = [a for a in candidates if self._entries(a) <= MAX_ENTRIES]
        if not self.assignments:
            self.assignments = [{d: 2 for d in self.dims}]
        self._cache: dict[int, _Context] = {}
        self.cost = max(explicit_cost(n, self.assignments[0]) for n in every)
        self.feasible = self.cost <= MAX_COST

    def _entries(self, sizes: dict[str, int]) -> int:
        def count(shape: ir.Shape) -> int:
            return int(np.prod([d if isinstance(d, int) else sizes[d] for d in shape] or [1]))
        return count(self.p.out.shape) * count(self.p.wrt.shape)

    def _context(self, k: int) -> _Context:
        if k in self._cache:
            return self._cache[k]
        sizes = self.assignments[k]
        env: dict[str, np.ndarray] = {}
        for name, (shape, domain) in self.p.inputs.items():
            env[name] = symbol_array(name, tuple(d if isinstance(d, int) else sizes[d] for d in shape),
                                     domain)
        for name in self.p.params:
            value = (_rational(self.p.param_values[name]) if name in self.p.param_values
                     else elementwise.param_symbol(name))
            env[name] = np.asarray(value, dtype=object)
        if self.p.upstream is not None:
            up = self.p.upstream
            env[up.name] = symbol_array(up.name, tuple(d if isinstance(d, int) else sizes[d]
                                                       for d in up.shape))
        ex = Explicit(sizes, env, self.p.named)
        out = ex.ev(self.p.out)
        ctx = {"sizes": sizes, "env": env, "ex": ex, "out": out, "x": env[self.p.wrt.name]}
        self._cache[k] = ctx
        return ctx

    def _vjp_truth(self, ctx: _Context) -> np.ndarray:
        if "vjp" not in ctx:
            out, x = ctx["out"], ctx["x"]
            if self.p.upstream is None:
                s = out.item()
            else:
                s = sp.Add(*(ctx["env"][self.p.upstream.name] * out).ravel().tolist())
            truth = np.empty(x.shape, dtype=object)
            for e in np.ndindex(*x.shape):
                self._tick()
                truth[e] = sp.diff(s, x[e])
            ctx["vjp"] = np.asarray(self._consistent(ctx, truth), dtype=object)
        return ctx["vjp"]

    def _jac_truth(self, ctx: _Context) -> np.ndarray:
        if "jac" not in ctx:
            out, x = ctx["out"], ctx["x"]
            jac = np.empty(out.shape + x.shape, dtype=object)
            for o in np.ndindex(*out.shape):
                for e in np.ndindex(*x.shape):
                    self._tick()
                    jac[o + e] = sp.diff(out[o], x[e])
            ctx["jac"] = jac
        return ctx["jac"]

    # ------------------------------------------------------------------ per form
    def check_matrix(self, kind: str, form: ir.Node) -> Verification:
        return self._run(lambda ctx: self._matrix_at(ctx, kind, form))

    def check_index(self, form: IndexForm) -> Verification:
        return self._run(lambda ctx: self._index_at(ctx, form))

    def _run(self, at: Callable[[_Context], str]) -> Verification:
        methods = []
        self.mismatch = None
        self.deadline = time.monotonic() + self.budget_s
        done: list[dict[str, int]] = []
        for k in range(min(len(self.assignments), self.max_sizes or len(self.assignments))):
            try:
                with time_limit(max(0.01, self.deadline - time.monotonic())):
                    ctx = self._context(k)
                    methods.append(at(ctx))
                done.append(self.assignments[k])
            except _Mismatch as exc:
                if exc.derived is not None:
                    self.mismatch = Mismatch(self.assignments[k], exc.entry, exc.derived,
                                             exc.truth, self._context(k)["env"])
                return Verification(False, "none", tuple(self.assignments[:k + 1]),
                                    f"NOT VERIFIED: disagrees with the element-wise derivation at "
                                    f"{fmt_sizes(self.assignments[k], spaced=True, empty=DECLARED)}: {exc}")
            except (_OutOfTime, _TimeUp):
                break
            except Undefined as exc:
                return Verification(False, "none", tuple(self.assignments[:k + 1]),
                                    f"{UNDEFINED} "
                                    f"{fmt_sizes(self.assignments[k], spaced=True, empty=DECLARED)}: {exc}")
        if not done:
            return Verification(False, "none", (), f"{UNFINISHED} within the {self.budget_s:.2g} s "
                                                   f"budget")
        method = EXACT if all(m == EXACT for m in methods) else "numeric"
        detail = describe_sizes(done, method)
        if len(done) < min(len(self.assignments), self.max_sizes or len(self.assignments)):
            skipped = [a for a in self.assignments[:self.max_sizes or None] if a not in done]
            left = "; ".join(fmt_sizes(a, spaced=True, empty=DECLARED) for a in skipped)
            detail += (f" (not checked at {left}: "
                       f"{self.budget_s:.1g} s budget reached)")
        return Verification(True, method, tuple(done), detail)

    def _tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise _OutOfTime()

    def _compare(self, derived: np.ndarray, truth: np.ndarray, where: str) -> str:
        worst = EXACT
        for idx in np.ndindex(*truth.shape):
            self._tick()
            d = sp.sympify(derived[idx], strict=True) - sp.sympify(truth[idx], strict=True)
            try:   # one entry's algebra may not outlast the budget either
                with time_limit(max(0.05, self.deadline - time.monotonic())):
                    verdict = zero_test(d)
            except _TimeUp:
                raise _OutOfTime() from None
            if verdict is None:
                raise _Mismatch(f"{where} {list(idx)}: derived {_short(derived[idx])}, "
                                f"element-wise {_short(truth[idx])}", tuple(int(i) for i in idx),
                                sp.sympify(derived[idx], strict=True), sp.sympify(truth[idx], strict=True))
            if verdict != EXACT:
                worst = verdict
        return worst

    def _consistent(self, ctx: _Context, values: np.ndarray) -> np.ndarray:
        if not self.p.consistent:
            return values
        if "consistent" not in ctx:
            mapping: dict[Any, Any] = {}
            for name, definition in self.p.consistent.items():
                for sym, val in zip(np.asarray(ctx["env"][name]).ravel(),
                                    np.asarray(ctx["ex"].ev(definition)).ravel()):
                    # in forward order: a later value's definition may use an earlier one
                    mapping[sym] = sp.sympify(val, strict=True).xreplace(mapping)
            ctx["consistent"] = mapping
        mapping = ctx["consistent"]
        out = np.frompyfunc(lambda v: sp.sympify(v, strict=True).xreplace(mapping), 1, 1)(values)
        return np.asarray(out, dtype=object)

    def _matrix_at(self, ctx: _Context, kind: str, form: ir.Node) -> str:
        value = self._consistent(ctx, ctx["ex"].ev(form))
        if kind == "jacobian":
            truth = self._jac_truth(ctx)
            value = np.broadcast_to(value, truth.shape)
            return self._compare(value, truth, "entry")
        truth = self._vjp_truth(ctx)
        value = np.broadcast_to(value, truth.shape)
        return self._compare(value, truth, "entry")

    def _index_at(self, ctx: _Context, form: IndexForm) -> str:
        scalar_out = self.p.upstream is None
        truth = self._vjp_truth(ctx) if scalar_out else self._jac_truth(ctx)
        lookup = make_lookup(ctx["env"], ctx["ex"], self.p.named, form)
        derived = index_entries(form, ctx["sizes"], () if scalar_out else ctx["out"].shape,
                                ctx["x"].shape, lookup)
        return self._compare(derived, truth, "index")


def index_entries(form: IndexForm, sizes: dict[str, int], out_shape: tuple[int, ...],
                  x_shape: tuple[int, ...], lookup: Callable[[sp.Basic], Any]) -> np.ndarray:
    """The index form at every concrete entry (output index + input index): indices and
    dimensions substituted, sums carried out, arrays read through `lookup`."""
    base = {dim_symbol(d): sp.Integer(v) for d, v in sizes.items()}
    derived = np.empty(tuple(out_shape) + tuple(x_shape), dtype=object)
    for o in np.ndindex(*out_shape):
        for e in np.ndindex(*x_shape):
            sub = dict(base)
            sub.update({s: sp.Integer(v) for s, v in zip(form.out_idx, o)})
            sub.update({s: sp.Integer(v) for s, v in zip(form.in_idx, e)})
            val = form.expr.xreplace(sub)
            if val.has(sp.Sum, sp.Product):
                val = val.doit()
            val = transparent(val)
            val = val.xreplace({a: lookup(a) for a in val.atoms(sp.Indexed)})
            val = val.xreplace({s: lookup(s) for s in val.free_symbols if lookup(s) is not None})
            derived[o + e] = val
    return derived


def make_lookup(env: dict[str, np.ndarray], ex: Explicit, named: dict[str, ir.Node], form: IndexForm
                ) -> Callable[[sp.Basic], Any]:
    """atom -> its value: A[i, j] (concrete indices) from `env`, a named output or an opaque
    node of the form; a scalar symbol likewise; None for anything else (left as is)."""

    def arrays(name: str) -> np.ndarray | None:
        if name in env:
            return env[name]
        if name in named:
            return ex.ev(named[name])
        return None

    opaque_by_label = {str(getattr(b, "label", b)): n for b, n in form.opaque.items()}

    def lookup(atom: sp.Basic) -> Any:
        if isinstance(atom, sp.Indexed):
            label = str(atom.base.label)
            arr = arrays(label)
            if arr is None and label in opaque_by_label:
                arr = ex.ev(opaque_by_label[label])
            if arr is None:
                raise _Mismatch(f"index form names unknown array {label}")
            return arr[tuple(int(i) for i in atom.indices)]
        if isinstance(atom, sp.Symbol):
            if atom.name in opaque_by_label:
                return ex.ev(opaque_by_label[atom.name]).item()
            arr = arrays(atom.name)
            if arr is not None and np.ndim(arr) == 0:
                return np.asarray(arr).item()
        return None

    return lookup


def _rational(value: float) -> sp.Rational:
    from fractions import Fraction

    f = Fraction(repr(float(value)))
    return sp.Rational(f.numerator, f.denominator)


def _short(e: object) -> str:
    text = str(e)
    return text if len(text) <= 80 else text[:77] + "..."
