"""Simplify IR expressions (derivatives) into readable closed forms.

Two mechanisms, both sound rewrites of NumPy semantics:
- structural rules on array operations: (Aᵀ)ᵀ = A, (AB)ᵀ = BᵀAᵀ, I A = A, diag(c) 𝟙 = c,
  diag(c) a bᵀ = (c ⊙ a) bᵀ, Σ(c·x) = c·Σx for a scalar c, ...;
- elementwise arithmetic (+ − ⊙ / ** over broadcastable operands) is a commutative algebra, so a
  maximal arithmetic subtree ("cluster") is mapped to a SymPy expression whose symbols stand for
  its non-arithmetic operands, simplified there (factor / cancel / factor_terms, smallest wins),
  and mapped back. Named nodes (a recipe's output such as p = exp(z)/Σexp(z)) are substituted
  back in, also inside clusters when their definition is a monomial (e = p·Σexp(z)).

The result is not trusted because of this module: every printed form is verified separately.
SymPy's factor/cancel can take very long on large clusters: each call runs under a per-call
time limit (`derivkit.limits.time_limit`: SIGALRM, main thread only) and all of them under a
budget per derivative; past it the unsimplified (still exact) cluster is kept and `timed_out` is
set, so callers can say so. The command's own budget (`--timeout`) encloses these limits and is
never swallowed here: it surfaces as `BudgetExceeded`, not `_TimeUp`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import ClassVar

import sympy as sp

from ..lang import ir
from ..lang.parse import mean, softmax
from ..limits import _TimeUp, time_limit
from .elementwise import SYMPY_NUMBERS, definition
from .to_ir import Unmappable, to_ir

MAX_FACTOR_OPS = 80
EXPAND_MAX_OPS = 12   # a sum's operand is expanded into terms (to sum them one by one) up to this
BUDGET_S = 10.0       # all SymPy simplification of one derivative
CALL_LIMIT_S = 2.0    # one factor/cancel call


ARITH = (ir.Binary, ir.Neg)


def _sym_number(value: Fraction | float | ir.NamedNumber) -> sp.Expr:
    if isinstance(value, ir.NamedNumber):
        return SYMPY_NUMBERS[value.name]
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    return sp.Float(value)


class Simplifier:
    def __init__(self, named: dict[ir.Node, str] | None = None, budget_s: float | None = None) -> None:
        self.budget_s = BUDGET_S if budget_s is None else budget_s
        self.deadline = time.monotonic() + self.budget_s
        self.timed_out = False
        self.named: dict[ir.Node, ir.Var] = {}
        for node, name in (named or {}).items():
            self.named[node] = ir.Var(name, node.shape, "named")
        self.defined: dict[ir.Node, ir.Node] = {}   # a name -> its definition (the macro, if one)
        for node, v in self.named.items():
            if isinstance(node, ir.Macro) or v not in self.defined:
                self.defined[v] = node
        self.memo: dict[ir.Node, ir.Node] = {}
        self.leaf_syms: dict[ir.Node, sp.Symbol] = {}
        self.sym_nodes: dict[sp.Symbol, ir.Node] = {}
        self._monomials: list[tuple[sp.Symbol, sp.Expr]] | None = None

    # ------------------------------------------------------------------ entry
    def __call__(self, node: ir.Node) -> ir.Node:
        out = self.simp(node)
        for _ in range(3):   # an identity's result may show another (Σ P = 1, then P ⊙ 0)
            rewritten = _identities(out, self.defined)
            if rewritten == out:
                break
            out = self.simp(rewritten)
        return _fold_transposes(out)

    def simp(self, node: ir.Node) -> ir.Node:
        if node in self.named:
            return self.named[node]
        if node in self.memo:
            return self.memo[node]
        out = self._simp(node)
        if out in self.named:
            out = self.named[out]
        self.memo[node] = out
        return out

    def _simp(self, n: ir.Node) -> ir.Node:
        if isinstance(n, ARITH):
            return self.cluster(n)
        if isinstance(n, ir.Macro) or not n.args:
            return n
        args = tuple(self.simp(a) for a in n.args)
        n = n.with_args(*args) if args != n.args else n
        rule = self.STRUCTURAL.get(type(n))
        if rule is not None:
            out = rule(self, n)
            if out is not n:
                return self.simp(out)
        return n

    # ------------------------------------------------------------------ structural rules
    def _Transpose(self, n: ir.Transpose) -> ir.Node:
        a = n.a
        if is_zero(a):
            return ir.broadcast_to(ir.ZERO, n.shape) if n.shape else ir.ZERO
        if a.rank <= 1:
            return a
        if isinstance(a, ir.Transpose):
            return a.a
        if isinstance(a, (ir.Eye, ir.Diag)) and a.rank == 2:
            return a
        if isinstance(a, ir.Outer):
            return ir.outer(a.b, a.a)
        if isinstance(a, ir.MatMul) and a.a.rank >= 2 and a.b.rank >= 2:   # matrix by matrix
            return ir.matmul(ir.transpose(a.b), ir.transpose(a.a))
        if isinstance(a, ir.Neg):
            return ir.neg(ir.transpose(a.a))
        if isinstance(a, ir.Binary) and a.op in "+-" and a.a.rank >= 2 and a.b.rank >= 2:
            # (A ± B)ᵀ = Aᵀ ± Bᵀ only where that removes transposes (diag(p) − p pᵀ)
            pushed = self.simp(ir.binary(a.op, ir.transpose(a.a), ir.transpose(a.b)))
            return pushed if ir.count_ops(pushed) < ir.count_ops(n) else n
        if isinstance(a, ir.Binary) and a.op in "*/" and a.b.rank == 0:
            return ir.binary(a.op, ir.transpose(a.a), a.b)
        if isinstance(a, ir.Binary) and a.op == "*" and a.a.rank == 0:
            return ir.mul(a.a, ir.transpose(a.b))
        if isinstance(a, ir.Broadcast) and a.a.rank == 0:
            return ir.broadcast_to(a.a, n.shape)
        return n

    def _MatMul(self, n: ir.MatMul) -> ir.Node:
        a, b = n.a, n.b
        if is_zero(a) or is_zero(b):
            return ir.broadcast_to(ir.ZERO, n.shape) if n.shape else ir.ZERO
        if isinstance(a, ir.Eye):
            return b
        if isinstance(b, ir.Eye):
            return a
        for side in (0, 1):
            x = (a, b)[side]
            if isinstance(x, ir.Neg):
                return ir.neg(ir.matmul(*((x.a, b) if side == 0 else (a, x.a))))
            if isinstance(x, ir.Binary) and x.op in "*/" and x.b.rank == 0 and x.a.rank:
                inner = ir.matmul(*((x.a, b) if side == 0 else (a, x.a)))
                return ir.binary(x.op, inner, x.b)
            if isinstance(x, ir.Binary) and x.op == "*" and x.a.rank == 0 and x.b.rank:
                inner = ir.matmul(*((x.b, b) if side == 0 else (a, x.b)))
                return ir.mul(x.a, inner)
        if isinstance(a, ir.Diag) and a.rank == 2:
            c = a.a
            if isinstance(b, ir.Diag) and b.rank == 2:
                return ir.diag(ir.mul(c, b.a))
            if isinstance(b, (ir.Ones,)) or (isinstance(b, ir.Broadcast) and ir.is_const(b.a, 1)):
                return c if b.rank == 1 else n
            if b.rank == 1:
                return ir.mul(c, b)
            if isinstance(b, ir.Outer):
                return ir.outer(ir.mul(c, b.a), b.b)
        if isinstance(b, ir.Diag) and b.rank == 2:
            if a.rank == 1:
                return ir.mul(a, b.a)
            if isinstance(a, ir.Outer):
                return ir.outer(a.a, ir.mul(a.b, b.a))
        if a.rank == 1 and b.rank == 2:
            return ir.matmul(ir.transpose(b), a)
        if isinstance(a, ir.Outer) and b.rank == 1:
            return ir.mul(a.a, ir.sum_(ir.mul(a.b, b)))
        return n

    def _Diag(self, n: ir.Diag) -> ir.Node:
        a = n.a
        if a.rank == 1 and isinstance(a, ir.Broadcast) and a.a.rank == 0:
            return ir.mul(a.a, ir.eye(a.shape[0])) if not ir.is_const(a.a, 1) else ir.eye(a.shape[0])
        if a.rank == 1 and isinstance(a, ir.Ones):
            return ir.eye(a.shape[0])
        if a.rank == 2 and isinstance(a, ir.Diag):
            return a.a
        return n

    def _Broadcast(self, n: ir.Broadcast) -> ir.Node:
        if isinstance(n.a, ir.Broadcast):
            return ir.broadcast_to(n.a.a, n.shape)
        if n.a.shape == n.shape:
            return n.a
        return n

    def _Sum(self, n: ir.Sum) -> ir.Node:
        a = n.a
        if is_zero(a):
            return ir.broadcast_to(ir.ZERO, n.shape) if n.shape else ir.ZERO
        if isinstance(a, ir.Broadcast) and a.a.rank == 0 and n.axis is None and not n.keepdims:
            return ir.mul(a.a, self._count(a.shape))
        if isinstance(a, ir.Ones) and n.axis is None and not n.keepdims:
            return self._count(a.shape)
        if _sums_softmax_to_one(n, self.defined.get(a, a)):   # Σ_j softmax(z)_j = 1
            return ir.broadcast_to(ir.ONE, n.shape) if n.shape else ir.ONE
        if isinstance(a, ir.OneHot) and (n.axis == a.rank - 1 or (a.rank == 1 and n.axis is None)):
            return ir.broadcast_to(ir.ONE, n.shape) if n.shape else ir.ONE   # one 1 per row
        if _sums_centred_to_zero(n, self.defined.get(a, a)):   # Σ_j (x − mean(x))_j = 0
            return ir.broadcast_to(ir.ZERO, n.shape) if n.shape else ir.ZERO
        if isinstance(a, ARITH):
            expr = self.to_sym(a)
            content, primitive = expr.as_content_primitive()
            if isinstance(expr, sp.Add) and content != 1:   # Σ(2a − 2b) = 2 Σ(a − b)
                return ir.mul(self._from(content),
                              ir.sum_(self.from_sym(primitive, a.shape), n.axis, n.keepdims))
            terms = sp.Add.make_args(expr)
            if len(terms) == 1 and expr.has(sp.Add) and sp.count_ops(expr) <= EXPAND_MAX_OPS:
                terms = sp.Add.make_args(sp.expand(expr))   # Σ P ⊙ (c − G) = c Σ P − Σ P ⊙ G
            if len(terms) > 1:   # Σ(a + b) = Σa + Σb, where a term's sum then simplifies
                split: ir.Node | None = None
                for t in terms:
                    part = self.simp(ir.sum_(self.from_sym(t, a.shape), n.axis, n.keepdims))
                    split = part if split is None else ir.add(split, part)
                assert split is not None
                split = self.simp(split)
                if ir.count_ops(split) < ir.count_ops(n):
                    return split
            coeff, factors = expr.as_coeff_mul()
            scalar = [f for f in factors if self._constant_along(f, a.rank, n.axis, n.keepdims)]
            if coeff != 1 or scalar:
                rest = sp.Mul(*[f for f in factors if f not in scalar])
                inner = self.from_sym(rest, a.shape)
                if inner.rank == 0:
                    return n  # nothing array-valued left to sum; keep as is
                outer_factor = self._from(sp.Mul(coeff, *scalar))
                return ir.mul(outer_factor, ir.sum_(inner, n.axis, n.keepdims))
        return n

    def _Where(self, n: ir.Where) -> ir.Node:
        if n.a == n.b:
            return ir.broadcast_to(n.a, n.shape)
        if ir.is_const(n.b, 0) and not ir.is_const(n.a, 1):
            return ir.mul(n.a, ir.where(n.cond, ir.ONE, ir.ZERO))
        return n

    @staticmethod
    def _count(shape: ir.Shape) -> ir.Node:
        out: ir.Node | None = None
        for d in shape:
            term = ir.const(d) if isinstance(d, int) else ir.DimSize(d)
            out = term if out is None else ir.mul(out, term)
        return out or ir.ONE


    #: node type -> its structural rule; a node type without one is kept as it is (its
    #: operands simplified), and elementwise arithmetic goes to `cluster` instead
    STRUCTURAL: ClassVar[dict[type, Callable[..., ir.Node]]] = {
        ir.Transpose: _Transpose, ir.MatMul: _MatMul, ir.Diag: _Diag, ir.Broadcast: _Broadcast,
        ir.Sum: _Sum, ir.Where: _Where,
    }

    # ------------------------------------------------------------------ clusters
    def _leaf(self, node: ir.Node) -> sp.Symbol:
        if node not in self.leaf_syms:
            if isinstance(node, ir.DimSize):
                sym = sp.Symbol(node.name, positive=True, integer=True)
            else:
                label = node.name if isinstance(node, ir.Var) else type(node).__name__.lower()
                sym = sp.Symbol(f"_{len(self.leaf_syms):03d}_{label}", real=True)
            self.leaf_syms[node] = sym
            self.sym_nodes[sym] = node
        return self.leaf_syms[node]

    def _constant_along(self, e: sp.Expr, rank: int, axis: int | None, keepdims: bool) -> bool:
        """Can factor `e` move out of a sum over `axis` of a rank-`rank` array? Yes if it is a
        scalar, or if every leaf lacks `axis` (broadcast along it), or (keepdims) has size 1
        there."""
        if not all(s in self.sym_nodes for s in e.free_symbols):
            return False
        shapes = [self.sym_nodes[s].shape for s in e.free_symbols]
        if all(len(sh) == 0 for sh in shapes):
            return True
        if axis is None:
            return False
        for sh in shapes:
            offset = rank - len(sh)
            if axis < offset:
                continue   # no such axis: broadcast along it
            if not keepdims or sh[axis - offset] != 1:
                return False
        return True

    def to_sym(self, n: ir.Node, *, raw: bool = False) -> sp.Expr:
        if n in self.named and not raw:
            return self._leaf(self.named[n])
        if isinstance(n, ir.Binary):
            a, b = self.to_sym(n.a), self.to_sym(n.b)
            return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
                    "/": lambda: a / b, "**": lambda: a ** b}[n.op]()
        if isinstance(n, ir.Neg):
            return -self.to_sym(n.a)
        if isinstance(n, ir.Const):
            return _sym_number(n.value)
        if isinstance(n, ir.Broadcast):
            return self.to_sym(n.a)
        if isinstance(n, ir.ExpandDims) and n.axis == 0:
            return self.to_sym(n.a)   # a leading axis of 1: what NumPy's broadcasting adds anyway
        if isinstance(n, ir.ExpandDims) and isinstance(n.a, ir.Broadcast) and n.a.a.rank == 0:
            return self.to_sym(n.a.a)   # a scalar, broadcast and reshaped: the scalar
        if isinstance(n, ir.Ones):
            return sp.Integer(1)
        if isinstance(n, ir.Apply) and isinstance(n.a, ir.Const) and all(
                isinstance(p, ir.Const) for p in n.params):   # log(e) = 1, exp(0) = 1
            value = definition(n.fn, _sym_number(n.a.value),
                               tuple(_sym_number(p.value) for p in n.params if isinstance(p, ir.Const)))
            if value.is_Rational:
                return value
        s = self.simp(n)
        if isinstance(s, (ir.Binary, ir.Neg, ir.Const, ir.Broadcast, ir.Ones)):
            return self.to_sym(s)
        return self._leaf(s)

    def cluster(self, n: ir.Node) -> ir.Node:
        expr = self.to_sym(n)
        expr = self._substitute_named(expr)
        best: ir.Node | None = None
        best_cost: int | None = None
        means = self._means(expr)
        variants = [expr] + ([expr.xreplace(means)] if means else [])
        for cand in (c for v in variants for c in self._candidates(v)):
            try:
                node = self.from_sym(cand, n.shape)
            except Unmappable:
                continue
            cost = ir.count_ops(node)
            if best_cost is None or cost < best_cost:   # best is None exactly when best_cost is
                best, best_cost = node, cost
        if best is None:  # pragma: no cover - from_sym maps every candidate we build
            return n
        return best

    def _means(self, expr: sp.Expr) -> dict[sp.Symbol, sp.Expr]:
        """{Σx: N·mean(x)} for each sum leaf of `expr` whose count N (the size summed over)
        `expr` also uses: the variant where N cancels reads mean(x) (Σ(g ⊙ U) U / (n H²) =
        U mean(g ⊙ U) / H²)."""
        out: dict[sp.Symbol, sp.Expr] = {}
        for sym in expr.free_symbols:
            node = self.sym_nodes.get(sym)
            if not isinstance(node, ir.Sum):
                continue
            m = mean(node.a, node.axis, node.keepdims)
            assert isinstance(m, ir.Macro) and isinstance(m.expansion, ir.Binary)
            if m.expansion.a != node:
                continue
            count = self.to_sym(m.expansion.b)
            if count.free_symbols and count.free_symbols <= expr.free_symbols:
                out[sym] = count * self._leaf(m)
        return out

    def _candidates(self, expr: sp.Expr) -> Iterator[sp.Expr]:
        yield expr
        if sp.count_ops(expr) > MAX_FACTOR_OPS:
            return
        for f in (sp.factor_terms, sp.factor, sp.cancel,
                  lambda e: sp.factor_terms(sp.expand(e))):
            out = self._timed(f, expr)
            if out is not None:
                yield out

    def _timed(self, f: Callable[[sp.Expr], sp.Expr], expr: sp.Expr) -> sp.Expr | None:
        """f(expr) within the budget, or None (and `timed_out`) if there is no time left."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.timed_out = True
            return None
        try:
            with time_limit(min(CALL_LIMIT_S, left)):
                return f(expr)
        except _TimeUp:
            self.timed_out = True
            return None

    def _named_monomials(self) -> list[tuple[sp.Symbol, sp.Expr]]:
        """For each named node whose definition is an arithmetic monomial c·Π leafᵏ:
        (one leaf L with k = ±1, L expressed through the name)."""
        if self._monomials is None:
            self._monomials = []
            for node, var in list(self.named.items()):
                if not isinstance(node, ARITH):
                    continue
                d = self.to_sym(node, raw=True)
                if not isinstance(d, (sp.Mul, sp.Pow)):
                    continue
                name_sym = self._leaf(var)
                powers = d.as_powers_dict()
                arrays = [s for s, k in powers.items() if isinstance(s, sp.Symbol) and
                          s in self.sym_nodes and abs(k) == 1 and self.sym_nodes[s].rank]
                for leaf in arrays:
                    k = powers[leaf]
                    rest = d / leaf ** k
                    self._monomials.append((leaf, (name_sym / rest) ** k))
                    break
        return self._monomials

    def _substitute_named(self, expr: sp.Expr) -> sp.Expr:
        for leaf, value in self._named_monomials():
            if expr.has(leaf):
                cand = self._timed(sp.cancel, expr.subs(leaf, value)) \
                    if sp.count_ops(expr) <= MAX_FACTOR_OPS else expr.subs(leaf, value)
                if cand is not None and not cand.has(leaf) and sp.count_ops(cand) <= sp.count_ops(expr):
                    expr = cand
        return expr

    # ------------------------------------------------------------------ back to IR
    def from_sym(self, e: sp.Expr, shape: ir.Shape) -> ir.Node:
        node = self._from(e)
        if node.shape != tuple(shape):
            node = ir.broadcast_to(node, tuple(shape))
        return node

    def _from(self, e: sp.Expr) -> ir.Node:
        return to_ir(e, self.sym_nodes)

def _fold_transposes(node: ir.Node) -> ir.Node:
    """Aᵀ Bᵀ = (B A)ᵀ, bottom-up, so a run of transposed factors is one transpose: Bᵀ Aᵀ Dᵀ
    prints as (D A B)ᵀ. Presentation only: `simp` pushes transposes inwards again."""
    memo: dict[ir.Node, ir.Node] = {}

    def fold(n: ir.Node) -> ir.Node:
        if n in memo:
            return memo[n]
        out = n
        if n.args and not isinstance(n, ir.Macro):
            args = tuple(fold(a) for a in n.args)
            out = n.with_args(*args) if args != n.args else n
            if isinstance(out, ir.MatMul) and isinstance(out.a, ir.Transpose) \
                    and isinstance(out.b, ir.Transpose) and out.a.rank == out.b.rank == 2:
                out = ir.transpose(_matmul_left(out.b.a, out.a.a))
        memo[n] = out
        return out

    return fold(node)


def _matmul_left(a: ir.Node, b: ir.Node) -> ir.Node:
    """a b as one chain of matrices multiplied left to right, so it prints unparenthesised."""
    def factors(n: ir.Node) -> list[ir.Node]:
        if isinstance(n, ir.MatMul) and n.a.rank == n.b.rank == 2:
            return factors(n.a) + factors(n.b)
        return [n]

    chain = factors(a) + factors(b)
    out = chain[0]
    for f in chain[1:]:
        out = ir.matmul(out, f)
    return out


def _identities(node: ir.Node, defined: dict[ir.Node, ir.Node] | None = None) -> ir.Node:
    """The identities a person uses, applied where they shorten a form:
    exp(z) / Σ exp(z) = softmax(z) (over the last axis, or all of a vector; times a factor r too),
    r·e / (1 + e) = r·σ(z) for e = exp(z) (or a name for it),
    Σ x / N = mean(x) (N the size summed over),
    Σ_j softmax(z)_j = 1 (for sums the elementwise algebra rebuilt over a softmax's name), and
    A C + B C = (A + B) C, C A + C B = C (A + B)."""
    defined = defined or {}
    mapping: dict[ir.Node, ir.Node] = {}
    # a macro's own expansion (softmax's exp(z)/Σexp(z)) is not rewritten into the macro
    expansions = {n.expansion for n in ir.walk(node) if isinstance(n, ir.Macro)}
    for n in ir.walk(node):
        if n in expansions:
            continue
        if isinstance(n, ir.Sum) and _sums_softmax_to_one(n, defined.get(n.a, n.a)):
            mapping[n] = ir.broadcast_to(ir.ONE, n.shape) if n.shape else ir.ONE
        elif isinstance(n, ir.Binary) and n.op == "/" and _is_softmax(n.a, n.b):
            assert isinstance(n.a, ir.Apply)
            mapping[n] = softmax(n.a.a)
        elif isinstance(n, ir.Binary) and n.op == "/" and isinstance(n.a, ir.Binary) \
                and n.a.op == "*" and (e := next((f for f in (n.a.b, n.a.a)
                                                 if _is_softmax(f, n.b)), None)) is not None:
            assert isinstance(e, ir.Apply)   # r ⊙ exp(z) / Σ exp(z) = r ⊙ softmax(z)
            r = n.a.a if e is n.a.b else n.a.b
            mapping[n] = ir.mul(r, softmax(e.a))
        elif isinstance(n, ir.Binary) and n.op == "/" and (s := _sigmoid(n, defined)):
            mapping[n] = s
        elif isinstance(n, ir.Binary) and n.op == "/" and isinstance(n.a, ir.Sum) \
                and isinstance(m := mean(n.a.a, n.a.axis, n.a.keepdims), ir.Macro) \
                and m.expansion == n:
            mapping[n] = m
        elif isinstance(n, ir.Binary) and n.op == "+" and isinstance(n.a, ir.MatMul) \
                and isinstance(n.b, ir.MatMul) and n.a.shape == n.b.shape:
            a, b = n.a, n.b
            if a.b == b.b and a.a.shape == b.a.shape:
                mapping[n] = ir.matmul(ir.add(a.a, b.a), a.b)
            elif a.a == b.a and a.b.shape == b.b.shape:
                mapping[n] = ir.matmul(a.a, ir.add(a.b, b.b))
    return ir.substitute(node, mapping) if mapping else node


def _sigmoid(n: ir.Binary, defined: dict[ir.Node, ir.Node]) -> ir.Node | None:
    """r·e / (1 + e) as r·σ(z), where e is exp(z) or a name defined as exp(z); else None."""
    den = n.b
    if not (isinstance(den, ir.Binary) and den.op == "+"):
        return None
    e = den.a if ir.is_const(den.b, 1) else den.b if ir.is_const(den.a, 1) else None
    z = defined.get(e, e) if e is not None else None
    if not (isinstance(z, ir.Apply) and z.fn == "exp"):
        return None
    sig = ir.apply("sigmoid", z.a)
    if n.a == e:
        return sig
    if isinstance(n.a, ir.Binary) and n.a.op == "*" and e in (n.a.a, n.a.b):
        rest = n.a.b if n.a.a == e else n.a.a
        return ir.mul(rest, sig)
    return None


def _is_softmax(num: ir.Node, den: ir.Node) -> bool:
    """num / den is exp(z) / Σ exp(z) over the axis softmax normalises."""
    while isinstance(den, ir.Broadcast):
        den = den.a
    return (isinstance(num, ir.Apply) and num.fn == "exp" and isinstance(den, ir.Sum)
            and den.a == num and num.rank >= 1 and _over_axis(den, num.rank, -1))


def _sums_softmax_to_one(n: ir.Sum, a: ir.Node) -> bool:
    """`n` sums `a`, a softmax (its operand, or the name of one), over the axis it normalises
    (the whole vector, or a matrix's axis with keepdims)."""
    if not (isinstance(a, ir.Macro) and a.fn == "softmax"):
        return False
    axis = dict(a.kwargs).get("axis", -1)
    assert isinstance(axis, int)
    return _over_axis(n, a.rank, axis)


def _sums_centred_to_zero(n: ir.Sum, a: ir.Node) -> bool:
    """`n` sums `a` = ±(x − mean(x)) (its operand, or the name of one) over the axis of the mean
    (all of x, or one axis the mean broadcasts back along)."""
    if not (isinstance(a, ir.Binary) and a.op == "-"):
        return False
    for x, m in ((a.a, a.b), (a.b, a.a)):   # x − mean(x), or mean(x) − x
        m = m.a if isinstance(m, ir.Broadcast) else m
        if isinstance(m, ir.Macro) and m.fn == "mean" and m.operands == (x,):
            break
    else:
        return False
    kw = dict(m.kwargs)
    axis, keepdims = kw.get("axis"), kw.get("keepdims", False)
    if axis is None or a.rank == 1:
        return n.axis is None or (a.rank == 1 and n.axis == 0)
    assert isinstance(axis, int)
    # the mean broadcasts back along its axis: kept (keepdims), or the leading axis
    back = bool(keepdims) or axis % a.rank == 0
    return back and n.axis is not None and n.axis % a.rank == axis % a.rank


def _over_axis(n: ir.Sum, rank: int, axis: int) -> bool:
    """`n` sums the axis softmax normalises: all of a vector, or `axis` of a matrix with
    keepdims (the sum broadcasts back)."""
    if rank == 1:
        return n.axis in (None, 0)
    return n.keepdims and n.axis is not None and n.axis % rank == axis % rank


def is_zero(n: ir.Node) -> bool:
    return ir.is_const(n, 0) or (isinstance(n, ir.Broadcast) and ir.is_const(n.a, 0))


def simplify(node: ir.Node, named: dict[ir.Node, str] | None = None) -> ir.Node:
    return Simplifier(named)(node)
