"""Index (element-wise) forms with Kronecker deltas, e.g. ∂Y_ij/∂W_rs = X_ir δ_js.

An IR expression is evaluated at symbolic indices into a SymPy scalar with explicit sums
(`IndexEvaluator`). Evaluating the VJP with the upstream gradient replaced by a unit tensor,
g_ab = δ_ai δ_bj, gives the Jacobian entry ∂out_ij/∂in_rs. Sums against deltas are contracted
by `contract` (Σ_k f(k) δ_kr = f(r), valid because r ranges over the same dimension as k; done
here rather than by SymPy, whose `Sum.doit` leaves Piecewise range conditions behind), then each
term's deltas are used to rename input indices to output indices, and the result is factored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import sympy as sp
from sympy.printing.str import StrPrinter

from ..lang import ir
from ..lang.printing import GREEK, language
from ..lang.shapes import Dim, Shape
from . import elementwise

FACTOR_LIMIT_S = 2.0   # one factor() of an index form; past it the unfactored form is kept
CMP = {">": sp.StrictGreaterThan, ">=": sp.GreaterThan, "<": sp.StrictLessThan,
       "<=": sp.LessThan, "==": sp.Eq}
Indices = tuple[sp.Expr, ...]   # index symbols (or expressions), one per axis


class Where(sp.Function):
    """where(cond, a, b) in index forms: a Piecewise that SymPy will not fold. Sum's constructor
    folds a Piecewise that mentions a summation index out of the sum, and `piecewise_fold`
    recurses into inner sums without respecting their bound indices, so Σ_l B_kl·relu(y_l)
    came back as Piecewise((Σ_l B_kl y_l, y_l > 0), ...) with l unbound. Where(c, a, b) is
    opaque to both; it evaluates to a or b once c is decided, and rewrites to Piecewise."""

    nargs = 3
    is_commutative = True   # else factor() treats it as a non-commutative symbol and drops it

    def _eval_is_real(self) -> bool | None:
        return self.args[1].is_real and self.args[2].is_real

    @classmethod
    def eval(cls, c: sp.Basic, a: sp.Expr, b: sp.Expr) -> sp.Expr | None:
        if c is sp.true:
            return a
        if c is sp.false:
            return b
        return None

    def _eval_rewrite_as_Piecewise(self, c: sp.Basic, a: sp.Expr, b: sp.Expr, **kwargs: Any) -> sp.Expr:
        return Where(c, a, b)

    def _latex(self, printer: Any) -> str:
        return printer._print(sp.Piecewise((self.args[1], self.args[0]), (self.args[2], True)))


def opaque(e: sp.Expr) -> sp.Expr:
    """Every Piecewise((a, c), (b, True)) in e as Where(c, a, b) (innermost first)."""
    def conv(p: sp.Piecewise) -> sp.Expr:
        if len(p.args) == 2 and p.args[1].cond == sp.true:
            return Where(p.args[0].cond, p.args[0].expr, p.args[1].expr)
        return p
    return e.replace(lambda x: isinstance(x, sp.Piecewise), conv) if e.has(sp.Piecewise) else e


def transparent(e: sp.Expr) -> sp.Expr:
    """Where -> Piecewise; only for expressions without sums (see Where)."""
    return e.replace(lambda x: isinstance(x, Where), lambda x: sp.Piecewise(
        (x.args[1], x.args[0]), (x.args[2], True))) if e.has(Where) else e


def dim_symbol(d: object) -> sp.Expr:   # a Dim (object: audit.claims passes its Use.dim)
    return sp.Integer(d) if isinstance(d, int) else sp.Symbol(d, positive=True, integer=True)


def index_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, integer=True, nonnegative=True)


def fresh_names(preferred: str, count: int, taken: set[str]) -> list[str]:
    """`count` distinct index names not in `taken`: the preferred letters first, then the
    other lower-case letters, then a1, b1, …, a2, … (never exhausted)."""
    import itertools
    import string

    def candidates() -> Iterator[str]:
        yield from preferred
        yield from "ijklrsuvabcdtwpq" + string.ascii_lowercase
        for k in itertools.count(1):
            yield from (f"{c}{k}" for c in string.ascii_lowercase)

    out: list[str] = []
    for name in candidates():
        if len(out) == count:
            break
        if name not in taken and name not in out:
            out.append(name)
    return out


class IndexEvaluator:
    """IR -> SymPy scalar at given index symbols. `seed` (if any) evaluates to a unit tensor
    at `seed_at`; opaque array nodes (an inverse, a determinant) become IndexedBases listed in `opaque`."""

    def __init__(self, taken: set[str], seed: ir.Var | None = None, seed_at: Indices = ()) -> None:
        self.seed = seed
        self.seed_at = seed_at
        self.taken = set(taken)
        self.counter = 0
        self.opaque: dict[sp.Basic, ir.Node] = {}
        self.sums: dict[sp.Symbol, sp.Expr] = {}  # dummy -> upper bound

    def dummy(self, dim: Dim) -> sp.Symbol:
        name = fresh_names("klabcduvwq", 1, self.taken)[0]
        self.taken.add(name)
        self.counter += 1
        sym = index_symbol(name)
        self.sums[sym] = dim_symbol(dim) - 1
        return sym

    def summed(self, body: sp.Expr, dummies: list[tuple[sp.Symbol, Dim]]) -> sp.Expr:
        for d, dim in dummies:
            body = sp.Sum(body, (d, 0, dim_symbol(dim) - 1))
        return body

    @staticmethod
    def _align(operand_shape: Shape, node_shape: Shape, idx: Indices) -> Indices:
        """Indices for a broadcast operand (NumPy right alignment, size-1 dims -> 0)."""
        off = len(node_shape) - len(operand_shape)
        out = []
        for k, d in enumerate(operand_shape):
            out.append(sp.Integer(0) if (d == 1 and node_shape[off + k] != 1) else idx[off + k])
        return tuple(out)

    def ev(self, n: ir.Node, idx: Indices) -> sp.Expr:
        return self.RULES[type(n)](self, n, tuple(idx))

    def arr(self, name: str, idx: Indices) -> sp.Expr:
        if not idx:
            return sp.Symbol(name, real=True)
        return sp.IndexedBase(name, real=True)[idx]

    def _Var(self, n: ir.Var, idx: Indices) -> sp.Expr:
        if self.seed is not None and n == self.seed:
            out = sp.Integer(1)
            for a, b in zip(idx, self.seed_at):
                out *= sp.KroneckerDelta(a, b)
            return out
        return self.arr(n.name, idx)

    def _Const(self, n: ir.Const, idx: Indices) -> sp.Expr:
        from .simplify import _sym_number
        return _sym_number(n.value)

    def _DimSize(self, n: ir.DimSize, idx: Indices) -> sp.Expr:
        return dim_symbol(n.name)

    def _Eye(self, n: ir.Eye, idx: Indices) -> sp.Expr:
        return sp.KroneckerDelta(idx[0], idx[1])

    def _Ones(self, n: ir.Ones, idx: Indices) -> sp.Expr:
        return sp.Integer(1)

    def _Binary(self, n: ir.Binary, idx: Indices) -> sp.Expr:
        a = self.ev(n.a, self._align(n.a.shape, n.shape, idx))
        b = self.ev(n.b, self._align(n.b.shape, n.shape, idx))
        return {"+": a + b, "-": a - b, "*": a * b, "/": a / b, "**": a ** b}[n.op]

    def _Neg(self, n: ir.Neg, idx: Indices) -> sp.Expr:
        return -self.ev(n.a, idx)

    def _MatMul(self, n: ir.MatMul, idx: Indices) -> sp.Expr:
        """(A B)[…, i, j] = Σ_k A[…, i, k] B[…, k, j], batch indices aligned as broadcast."""
        a, b = n.a, n.b
        k = self.dummy(a.shape[-1])
        if a.rank == 1 and b.rank == 1:
            ia, ib = (k,), (k,)
        elif a.rank == 1:
            ia, ib = (k,), self._batch(b, n, idx[:-1]) + (k, idx[-1])
        elif b.rank == 1:
            ia, ib = self._batch(a, n, idx[:-1]) + (idx[-1], k), (k,)
        else:
            batch = idx[:-2]
            ia = self._batch(a, n, batch) + (idx[-2], k)
            ib = self._batch(b, n, batch) + (k, idx[-1])
        return self.summed(self.ev(a, ia) * self.ev(b, ib), [(k, a.shape[-1])])

    def _batch(self, operand: ir.Node, n: ir.MatMul, batch: Indices) -> Indices:
        """The batch indices of a matmul operand (its axes before the matrix), broadcast."""
        own = operand.shape[:-2]
        return self._align(own, n.shape[:len(batch)], batch)

    def _Transpose(self, n: ir.Transpose, idx: Indices) -> sp.Expr:
        if len(idx) < 2:
            return self.ev(n.a, idx)
        return self.ev(n.a, idx[:-2] + (idx[-1], idx[-2]))

    def _Permute(self, n: ir.Permute, idx: Indices) -> sp.Expr:
        return self.ev(n.a, tuple(idx[k] for k in ir.inverse_axes(n.axes)))

    def _Reshape(self, n: ir.Reshape, idx: Indices) -> sp.Expr:
        raise NotImplementedError("reshape has no index form here")   # the oracle decides

    def _Apply(self, n: ir.Apply, idx: Indices) -> sp.Expr:
        params = tuple(self.ev(p, ()) for p in n.params)
        return opaque(elementwise.definition(n.fn, self.ev(n.a, idx), params))

    def _Compare(self, n: ir.Compare, idx: Indices) -> sp.Expr:
        a = self.ev(n.a, self._align(n.a.shape, n.shape, idx))
        b = self.ev(n.b, self._align(n.b.shape, n.shape, idx))
        return CMP[n.op](a, b)

    def _Where(self, n: ir.Where, idx: Indices) -> sp.Expr:
        c = self.ev(n.cond, self._align(n.cond.shape, n.shape, idx))
        a = self.ev(n.a, self._align(n.a.shape, n.shape, idx))
        b = self.ev(n.b, self._align(n.b.shape, n.shape, idx))
        return Where(c, a, b)

    def _Sum(self, n: ir.Sum, idx: Indices) -> sp.Expr:
        a = n.a
        axes = range(a.rank) if n.axis is None else [n.axis]
        dummies = {ax: self.dummy(a.shape[ax]) for ax in axes}
        inner, it = [], iter(idx)
        for ax in range(a.rank):
            if ax in dummies:
                inner.append(dummies[ax])
                if n.keepdims:
                    next(it)
            else:
                inner.append(next(it))
        return self.summed(self.ev(a, tuple(inner)), [(dummies[ax], a.shape[ax]) for ax in axes])

    def _OneHot(self, n: ir.OneHot, idx: Indices) -> sp.Expr:
        raise NotImplementedError("one_hot has no index form here")

    def _Extreme(self, n: ir.Extreme, idx: Indices) -> sp.Expr:
        raise NotImplementedError(f"{n.fn} over an axis has no index form here")

    def _Trace(self, n: ir.Trace, idx: Indices) -> sp.Expr:
        k = self.dummy(n.a.shape[0])
        return self.summed(self.ev(n.a, (k, k)), [(k, n.a.shape[0])])

    def _opaque(self, n: ir.Node, label: str, idx: Indices) -> sp.Expr:
        base = sp.IndexedBase(label, real=True) if idx else sp.Symbol(label, real=True)
        self.opaque[base] = n
        return base[idx] if idx else base

    def _Det(self, n: ir.Det, idx: Indices) -> sp.Expr:
        return self._opaque(n, language(n), ())

    def _Inv(self, n: ir.Inv, idx: Indices) -> sp.Expr:
        return self._opaque(n, language(n), idx)

    def _Diag(self, n: ir.Diag, idx: Indices) -> sp.Expr:
        if n.a.rank == 1:
            return self.ev(n.a, (idx[0],)) * sp.KroneckerDelta(idx[0], idx[1])
        return self.ev(n.a, (idx[0], idx[0]))

    def _Outer(self, n: ir.Outer, idx: Indices) -> sp.Expr:
        return self.ev(n.a, (idx[0],)) * self.ev(n.b, (idx[1],))

    def _Broadcast(self, n: ir.Broadcast, idx: Indices) -> sp.Expr:
        return self.ev(n.a, self._align(n.a.shape, n.shape, idx))

    def _ExpandDims(self, n: ir.ExpandDims, idx: Indices) -> sp.Expr:
        return self.ev(n.a, tuple(i for k, i in enumerate(idx) if k != n.axis))

    def _Macro(self, n: ir.Macro, idx: Indices) -> sp.Expr:
        return self.ev(n.expansion, idx)

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


# ---------------------------------------------------------------- delta contraction
def contract(e: sp.Expr) -> sp.Expr:
    """Eliminate Σ_k … δ_kr … by substituting k = r; drop sums whose summand is free of k
    (multiplying by the range length)."""
    if isinstance(e, sp.Sum):
        body = contract(e.function)
        for (k, lo, hi) in reversed(e.limits):
            body = _contract_one(body, k, lo, hi)
        return body
    if not e.args or isinstance(e, (sp.Indexed, sp.IndexedBase, sp.Symbol)):
        return e
    return e.func(*[contract(a) for a in e.args])


def _contract_one(body: sp.Expr, k: sp.Symbol, lo: sp.Expr, hi: sp.Expr) -> sp.Expr:
    out = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(body, deep=False, mul=True, multinomial=False,
                                           power_exp=False, power_base=False, log=False)):
        if not term.has(k):
            out += term * (hi - lo + 1)
            continue
        delta = next((f for f in sp.Mul.make_args(term) if isinstance(f, sp.KroneckerDelta)
                      and k in f.args and not (f.args[0] == f.args[1])), None)
        if delta is not None:
            other = delta.args[1] if delta.args[0] == k else delta.args[0]
            if not other.has(k):
                out += (term / delta).subs(k, other)
                continue
        out += sp.Sum(term, (k, lo, hi))
    return out


def _expand_products(e: sp.Expr) -> sp.Expr:
    """Distribute products over sums only: exp(Σ…) must not become Π exp(…)."""
    return sp.expand(e, deep=False, mul=True, multinomial=False, power_exp=False,
                     power_base=False, log=False)


def canonical(e: sp.Expr, preference: list[sp.Symbol]) -> sp.Expr:
    """Within each term, δ_ab means a = b: rename the later-preferred index to the earlier
    one outside the delta (p_j δ_ij -> p_i δ_ij); square deltas collapse; then factor."""
    rank = {s: i for i, s in enumerate(preference)}
    terms = []
    for term in sp.Add.make_args(_expand_products(e)):
        factors = list(sp.Mul.make_args(term))
        deltas = [f for f in factors if isinstance(f, sp.KroneckerDelta)]
        rest = sp.Mul(*[f for f in factors if not isinstance(f, sp.KroneckerDelta)])
        kept: list[sp.Expr] = []
        for d in deltas:
            a, b = d.args
            if a == b:
                continue
            if a in rank and b in rank:
                keep, drop = (a, b) if rank[a] <= rank[b] else (b, a)
                rest = rest.subs(drop, keep)
                kept = [x.subs(drop, keep) if x.has(drop) else x for x in kept]
                kept.append(sp.KroneckerDelta(keep, drop, evaluate=False) if keep != drop else 1)
            else:
                kept.append(d)
        uniq = []
        for d in kept:
            if d != 1 and d not in uniq:
                uniq.append(d)
        terms.append(rest * sp.Mul(*uniq))
    total = sp.Add(*terms)
    candidates = [total]
    if sp.count_ops(total) <= 120:
        from .simplify import _TimeUp, time_limit

        for f in (sp.factor_terms, sp.factor):
            try:
                with time_limit(FACTOR_LIMIT_S):
                    candidates.append(f(total))
            except _TimeUp:
                pass
            except Exception:  # pragma: no cover - sympy limits on exotic expressions
                pass
    candidates = [_fold_products(c) for c in candidates]
    return min(candidates, key=lambda x: (sp.count_ops(x), len(str(x))))


def _fold_products(e: sp.Expr) -> sp.Expr:
    """Π_k exp(f_k) -> exp(Σ_k f_k) (SymPy's factor/expand produce the former)."""
    return e.replace(lambda x: isinstance(x, sp.Product) and isinstance(x.function, sp.exp),
                     lambda x: sp.exp(sp.Sum(x.function.args[0], *x.limits)))


# ---------------------------------------------------------------- printers
def _is_neg(t: sp.Expr) -> bool:
    c, _ = t.as_coeff_Mul()
    return bool(c.is_Number and c < 0)


class _IndexPrinter(StrPrinter):
    printmethod = "_derivkit_index"  # not SymPy's own _sympystr methods
    mul_sep = "*"
    delta_fmt = "delta({0},{1})"

    def _order(self, factors: list[sp.Expr]) -> list[sp.Expr]:
        def key(f: sp.Expr) -> tuple[int, str]:
            if f.is_Number:
                return (0, "")
            if isinstance(f, sp.KroneckerDelta):
                return (5, str(f))
            if isinstance(f, sp.Add):
                return (4, str(f))
            if isinstance(f, (sp.Piecewise, Where)):
                return (2, str(f))
            return (1, str(f))
        return sorted(factors, key=key)

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        terms = list(expr.as_ordered_terms())
        terms.sort(key=_is_neg)
        out = ""
        for i, t in enumerate(terms):
            if _is_neg(t):
                out += (" - " if i else "-") + self._print_term(-t)
            else:
                out += (" + " if i else "") + self._print_term(t)
        return out

    def _print_term(self, t: sp.Expr) -> str:
        s = self._print(t)
        return s

    def _print_Mul(self, expr: sp.Mul) -> str:
        c, _ = expr.as_coeff_Mul()
        if c.is_Number and c < 0:
            inner = self._print(-expr)
            return "-" + (f"({inner})" if isinstance(-expr, sp.Add) else inner)
        num, den = [], []
        for f in sp.Mul.make_args(expr):
            base, k = f.as_base_exp()
            if k.is_Number and k < 0:
                den.append(base ** -k)
            else:
                num.append(f)
        top = self._join(num) if num else "1"
        if not den:
            return top
        if len(num) == 1 and isinstance(num[0], sp.Add):
            top = f"({top})"
        bottom = self._join(den)
        if len(den) > 1 or isinstance(den[0], (sp.Add, sp.Mul)):
            bottom = f"({bottom})"
        return f"{top}/{bottom}"

    def _join(self, factors: list[sp.Expr]) -> str:
        parts = []
        for f in self._order(factors):
            s = self._print(f)
            if isinstance(f, sp.Add) and len(factors) > 1:
                s = f"({s})"
            parts.append(s)
        return self.mul_sep.join(parts)

    def _print_KroneckerDelta(self, expr: sp.KroneckerDelta) -> str:
        return self.delta_fmt.format(*[self._print(a) for a in expr.args])

    def _print_Indexed(self, expr: sp.Indexed) -> str:
        return f"{expr.base.label}[{','.join(self._print(i) for i in expr.indices)}]"

    def _print_Sum(self, expr: sp.Sum) -> str:
        body = self._print(expr.function)
        ks = ",".join(self._print(lim[0]) for lim in expr.limits)
        return f"sum({body}, {ks})"

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        (a, c), *rest = expr.args
        b = rest[0][0] if rest else sp.nan
        return f"where({self._print(c)}, {self._print(a)}, {self._print(b)})"

    def _print_Relational(self, expr: sp.Rel) -> str:
        return f"{self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)}"

    def _print_Where(self, expr: Where) -> str:
        c, a, b = expr.args
        return self._print_Piecewise(sp.Piecewise((a, c), (b, True)))


class TextPrinter(_IndexPrinter):
    """The claim language: X[i,r]*delta(j,s); parses back through derivkit.audit.claims."""


class PrettyIndexPrinter(_IndexPrinter):
    mul_sep = " "
    delta_fmt = "δ_{0}{1}"

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return GREEK.get(expr.name, expr.name)

    def _print_Indexed(self, expr: sp.Indexed) -> str:
        idx = [self._print(i) for i in expr.indices]
        label = str(expr.base.label)
        if all(len(i) == 1 for i in idx) and label.isalnum():
            return f"{GREEK.get(label, label)}_{''.join(idx)}"
        return f"{label}[{','.join(idx)}]"

    def _print_KroneckerDelta(self, expr: sp.KroneckerDelta) -> str:
        a, b = (self._print(x) for x in expr.args)
        return f"δ_{a}{b}" if len(a) == len(b) == 1 else f"δ[{a},{b}]"

    def _print_Sum(self, expr: sp.Sum) -> str:
        ks = ",".join(self._print(lim[0]) for lim in expr.limits)
        return f"Σ_{ks} ({self._print(expr.function)})"

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        (a, c), *rest = expr.args
        b = rest[0][0] if rest else sp.nan
        if a == 1 and b == 0:
            return f"[{self._print(c)}]"
        return f"({self._print(a)} if {self._print(c)} else {self._print(b)})"

    def _print_Relational(self, expr: sp.Rel) -> str:
        op = {">=": "≥", "<=": "≤"}.get(expr.rel_op, expr.rel_op)
        return f"{self._print(expr.lhs)} {op} {self._print(expr.rhs)}"

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        return super()._print_Add(expr).replace(" - ", " − ").replace("-", "−", 1) \
            if super()._print_Add(expr).startswith("-") else super()._print_Add(expr).replace(" - ", " − ")

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        base, k = expr.as_base_exp()
        if k.is_Integer and k > 0:
            sup = str(k).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
            b = self._print(base)
            return (f"({b})" if isinstance(base, (sp.Add, sp.Mul)) else b) + sup
        return super()._print_Pow(expr, rational)


def to_text(e: sp.Expr) -> str:
    return TextPrinter().doprint(e)


def to_pretty(e: sp.Expr) -> str:
    return PrettyIndexPrinter().doprint(e).replace("*", "·")


def to_latex(e: sp.Expr) -> str:
    return sp.latex(e, mul_symbol=None)
