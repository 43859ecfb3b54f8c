"""Lowering: IR -> plain, vectorised NumPy source, and callables built from it.

The printers here turn IR into NumPy expressions: `NumpyPrinter` for lowered modules and forms,
`BatchedNumpyPrinter` (complex-safe, a leading batch axis) for checks, `StackedNumpyPrinter`
for Jacobians evaluated from a VJP. Functions are assembled, audited and built by
`derivkit.lowering.emit`, never from user text. Softmax is lowered in its stable form
exp(x − max x) / Σ exp(x − max x), which is the same function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any, ClassVar, cast

from ..lang import ir
from ..lang.ops import BY_NODE, ELEMENTWISE, render
from ..lang.printing import ADD, ATOM, MUL, NEG, POSTFIX, LanguagePrinter, reduction_keywords, shape_tuple
from . import emit
from .stable import SHIFTED


class NumpyPrinter(LanguagePrinter):
    """NumPy source for an IR expression; named nodes are referenced by name. `np` is the name
    NumPy is bound to (`_np` where a user name is `np`, see `derivkit.lowering.emit`)."""

    def __init__(self, np: str = "np") -> None:
        self.np = np

    def _Const(self, n: ir.Const) -> tuple[str, int]:
        v = n.value
        if isinstance(v, ir.NamedNumber):
            return f"{self.np}.{v.name}", ATOM
        text = repr(float(v)) if isinstance(v, Fraction) else repr(v)
        return text, (NEG if text.startswith("-") else ATOM)

    def _DimSize(self, n: ir.DimSize) -> tuple[str, int]:
        return n.name, ATOM

    def _Eye(self, n: ir.Eye) -> tuple[str, int]:
        return f"{self.np}.eye({n.n})", ATOM

    def _Ones(self, n: ir.Ones) -> tuple[str, int]:
        return f"{self.np}.ones({shape_tuple(n.shape)})", ATOM

    def _Binary(self, n: ir.Binary) -> tuple[str, int]:
        if n.op == "**" and isinstance(n.b, ir.Const) and n.b.value == 2:
            return f"{self.np}.square({self(n.a)})", ATOM
        return super()._Binary(n)

    def _Apply(self, n: ir.Apply) -> tuple[str, int]:
        fn = ELEMENTWISE[n.fn]
        return render(fn.numpy, fn, self(n.a), [self(p) for p in n.params], np=self.np), ATOM

    def _Compare(self, n: ir.Compare) -> tuple[str, int]:
        return f"({self.wrap(n.a, ADD)} {n.op} {self.wrap(n.b, ADD)})", ATOM

    def _Where(self, n: ir.Where) -> tuple[str, int]:
        return f"{self.np}.where({self(n.cond)}, {self(n.a)}, {self(n.b)})", ATOM

    def _Extreme(self, n: ir.Extreme) -> tuple[str, int]:
        extra = reduction_keywords(n.axis, n.keepdims)
        return f"{self.np}.{n.fn}({self(n.a)}{extra})", ATOM

    def _OneHot(self, n: ir.OneHot) -> tuple[str, int]:
        return f"{self.np}.eye({self.dim_text(n.k)})[{self.label_text(n.a)}]", POSTFIX

    def dim_text(self, d: ir.Dim) -> str:
        return str(d)

    def label_text(self, n: ir.Node) -> str:
        """Labels index arrays: a constant label prints as an integer (2, not 2.0)."""
        if isinstance(n, ir.Const) and isinstance(n.value, Fraction) and n.value.denominator == 1:
            return str(n.value.numerator)
        return self(n)

    def _Sum(self, n: ir.Sum) -> tuple[str, int]:
        a = n.a
        if (n.axis is None and not n.keepdims and isinstance(a, ir.Binary) and a.op == "*"
                and a.a.rank == 1 and a.b.rank == 1):
            return f"{self.wrap(a.a, MUL)} @ {self.wrap(a.b, MUL, strict=True)}", MUL  # ⟨a, b⟩
        extra = reduction_keywords(n.axis, n.keepdims)
        return f"{self.np}.sum({self(n.a)}{extra})", ATOM

    def _matrix_op(self, n: ir.Node) -> tuple[str, int]:
        args = dict(zip("ab", (self(a) for a in n.args)))
        return BY_NODE[type(n)].numpy.format(np=self.np, **args), ATOM

    def _Transpose(self, n: ir.Transpose) -> tuple[str, int]:
        if n.rank > 2:   # NumPy >= 2's .mT, spelled for every supported NumPy
            return f"{self.np}.swapaxes({self(n.a)}, -1, -2)", ATOM
        return super()._Transpose(n)

    def _Permute(self, n: ir.Permute) -> tuple[str, int]:
        return f"{self.np}.transpose({self(n.a)}, {n.axes})", ATOM

    def _Reshape(self, n: ir.Reshape) -> tuple[str, int]:
        return f"{self.np}.reshape({self(n.a)}, {shape_tuple(n.shape)})", ATOM

    def _Broadcast(self, n: ir.Broadcast) -> tuple[str, int]:
        return f"{self.np}.broadcast_to({self(n.a)}, {shape_tuple(n.shape)})", ATOM

    def _ExpandDims(self, n: ir.ExpandDims) -> tuple[str, int]:
        return f"{self.np}.expand_dims({self(n.a)}, {n.axis})", ATOM

    def _Macro(self, n: ir.Macro) -> tuple[str, int]:
        x = self(n.operands[0])
        kw = dict(n.kwargs)
        if n.fn == "softmax":
            axis = kw.get("axis", -1)
            return f"_softmax({x}, axis={axis})", ATOM
        if n.fn in REDUCTION_CALLS:   # its keywords as printed: axis, keepdims, ddof
            extra = "".join(f", {k}={v}" for k, v in n.kwargs)
            return f"{REDUCTION_CALLS[n.fn].format(np=self.np)}({x}{extra})", ATOM
        if n.fn == "take":   # x[i]; X[arange(m), y] without printing X twice
            x, labels = self(n.operands[0]), self.label_text(n.operands[1])
            if n.operands[0].rank == 1:
                return f"{self.np}.take({x}, {labels})", ATOM
            return (f"{self.np}.squeeze({self.np}.take_along_axis({x}, {self.np}.expand_dims("
                    f"{labels}, 1), axis=1), 1)"), ATOM
        if n.fn in ("clip", "maximum", "minimum"):
            return f"{self.np}.{n.fn}({', '.join(self(o) for o in n.operands)})", ATOM
        if n.fn == SHIFTED:   # exp(x) up to a factor the formula is invariant to (derivkit.lowering.stable)
            extra = "".join(f", {k}={v}" for k, v in n.kwargs) + (", keepdims=True" if n.kwargs else "")
            return f"{self.np}.exp({x} - {self.np}.max({x}{extra}))", ATOM
        return self.p(n.expansion)  # pragma: no cover

    #: node type -> its rule (explicit dispatch; tests check every node type is covered)
    RULES: ClassVar[dict[type, Callable[..., Any]]] = {**LanguagePrinter.RULES,
        ir.Const: _Const,
        ir.DimSize: _DimSize,
        ir.Eye: _Eye,
        ir.Ones: _Ones,
        ir.Binary: _Binary,
        ir.Apply: _Apply,
        ir.Compare: _Compare,
        ir.Where: _Where,
        ir.Sum: _Sum,
        ir.Extreme: _Extreme,
        ir.OneHot: _OneHot,
        ir.Trace: _matrix_op,
        ir.Det: _matrix_op,
        ir.Inv: _matrix_op,
        ir.Diag: _matrix_op,
        ir.Outer: _matrix_op,
        ir.Broadcast: _Broadcast,
        ir.ExpandDims: _ExpandDims,
        ir.Macro: _Macro,
        ir.Transpose: _Transpose,
        ir.Permute: _Permute,
        ir.Reshape: _Reshape,
    }


def dims_prelude(inputs: dict[str, tuple], alias: str = "np",
                 products: dict[str, tuple[ir.Dim, ...]] | None = None) -> list[tuple[str, str]]:
    """(dimension, expression) binding each symbolic dimension to the size of the first input
    that has it; then each factor of a declared product (e = h·d) that no input has, as the
    product's size divided by its other factors (d = e // h)."""
    lines, bound = [], set()
    for name, shape in inputs.items():
        for axis, d in enumerate(shape):
            if isinstance(d, str) and d not in bound:
                bound.add(d)
                lines.append((d, f"{alias}.shape({name})[{axis}]"))
    for d, factors in (products or {}).items():
        unbound = [f for f in factors if isinstance(f, str) and f not in bound]
        if d in bound and len(unbound) == 1:
            others = [str(f) for f in factors if f != unbound[0]]
            lines.append((unbound[0], f"{d} // " + (others[0] if len(others) == 1
                                                      else "(" + " * ".join(others) + ")")))
            bound.add(unbound[0])
    return lines


def size_lines(inputs: dict[str, tuple], alias: str, roots: list[ir.Node]) -> list[tuple[str, str]]:
    """The `dims_prelude` lines binding the sizes printed `roots` read (and, for a factor
    d = e // h of a declared product, the product e it is computed from)."""
    dims = dims_used(roots)
    products = ir.size_products(roots)
    dims |= {d for d in products if any(f in dims for f in products[d])}
    return [(d, e) for d, e in dims_prelude(inputs, alias, products) if d in dims]


def user_names(inputs: dict[str, tuple], *more: Iterable[str]) -> set[str]:
    """Every user name a generated function sees: inputs, their dimensions, and `more`."""
    names = set(inputs) | {d for shape in inputs.values() for d in shape if isinstance(d, str)}
    for group in more:
        names |= set(group)
    return names


def printed_nodes(root: ir.Node) -> list[ir.Node]:
    """Every distinct subtree the printers print."""
    return ir.postorder([root], ir.printed_children)


#: reductions defined as macros, lowered as this one call with the macro's keywords
REDUCTION_CALLS = {"mean": "{np}.mean", "logsumexp": "_logsumexp", "var": "{np}.var",
                   "std": "{np}.std", "norm": "{np}.linalg.norm"}

#: macros NumpyPrinter lowers as one NumPy call (any other prints its expansion)
NATIVE_MACROS = frozenset({"softmax", *REDUCTION_CALLS, "clip", "maximum", "minimum", "take", SHIFTED})


def dims_used(roots: list[ir.Node]) -> set[str]:
    """Dimensions printed code refers to by name."""
    out: set[str] = set()
    for root in roots:
        for n in ir.postorder([root], lambda m: m.operands if isinstance(m, ir.Macro)
                              and m.fn in NATIVE_MACROS else m.args):
            if isinstance(n, ir.DimSize):
                out.add(n.name)
            elif isinstance(n, ir.Eye) and isinstance(n.n, str):
                out.add(n.n)
            elif isinstance(n, ir.OneHot) and isinstance(n.k, str):
                out.add(n.k)
            elif isinstance(n, (ir.Ones, ir.Broadcast, ir.Reshape)):
                out.update(d for d in n.shape if isinstance(d, str))
    return out


def needed_names(body: ir.Node, named: dict[str, ir.Node]) -> list[str]:
    """The named definitions `body` uses, directly or not, each after those it uses."""
    needed: list[str] = []

    def need(node: ir.Node) -> None:
        for n in ir.walk(node):
            if isinstance(n, ir.Var) and n.role == "named" and n.name not in needed:
                need(named[n.name])
                needed.append(n.name)

    need(body)
    return needed


def function_source(fname: str, args: list[str], body: ir.Node, inputs: dict[str, tuple],
                    named: dict[str, ir.Node], params: dict[str, float] | None = None,
                    alias: str | None = None, doc: list[str] | None = None,
                    printer: NumpyPrinter | None = None) -> str:
    """Source of `def fname(*, args..., params=defaults): ...; return body`. `alias` is NumPy's
    name (by default `np`, unless a user name in scope is `np`)."""
    params = params or {}
    needed = needed_names(body, named)
    alias = alias or emit.numpy_alias(user_names(inputs, args, params, named))
    printer = printer or NumpyPrinter(alias)
    lines = size_lines(inputs, alias, [body] + [named[name] for name in needed])
    lines += [(name, printer(named[name])) for name in needed]
    return emit.function(fname, args, params, lines, printer(body), doc)


def compile_function(fname: str, source: str) -> Callable[..., Any]:
    """The function `fname` of `function_source` output, built by the one emitter."""
    return emit.build(source, fname, alias=emit.alias_in(source))


# ---------------------------------------------------------------- batched, complex-safe lowering
class BatchedNumpyPrinter(NumpyPrinter):
    """NumPy source where the variables in `batched` carry an extra leading axis (a batch of
    perturbed copies), so one call evaluates the forward at many points. Operands are aligned
    by rank (a batched vector meeting a matrix gets its middle axis inserted), transposes swap
    the last two axes, reductions use negative axes, products of vectors use einsum with '...'.
    Every function used is analytic where the math is (`numpy_complex` in the op table), so complex
    inputs work for complex-step differentiation."""

    def __init__(self, batched: set[str], sizes: dict[str, int] | None = None, np: str = "np") -> None:
        super().__init__(np)
        self.batched_names = set(batched)
        self.sizes = sizes or {}
        self._memo: dict[ir.Node, bool] = {}

    def is_batched(self, n: ir.Node) -> bool:
        if n not in self._memo:
            if isinstance(n, ir.Var):
                self._memo[n] = n.name in self.batched_names
            elif isinstance(n, ir.Macro):
                self._memo[n] = any(self.is_batched(o) for o in n.operands)
            else:
                self._memo[n] = any(self.is_batched(c) for c in n.args)
        return self._memo[n]

    def aligned(self, operand: ir.Node, rank: int) -> str:
        text = self(operand)
        missing = rank - operand.rank
        if self.is_batched(operand) and missing > 0:
            axes = ", ".join(str(1 + i) for i in range(missing))
            return f"{self.np}.expand_dims({text}, ({axes},))"
        return text

    def _DimSize(self, n: ir.DimSize) -> tuple[str, int]:
        return (str(self.sizes[n.name]), ATOM) if n.name in self.sizes else (n.name, ATOM)

    def dim_text(self, d: ir.Dim) -> str:
        return str(self.sizes.get(d, d)) if isinstance(d, str) else str(d)

    def _Binary(self, n: ir.Binary) -> tuple[str, int]:
        if not self.is_batched(n) or (n.a.rank == n.rank and n.b.rank == n.rank):
            return super()._Binary(n)
        a, b = self.aligned(n.a, n.rank), self.aligned(n.b, n.rank)
        ops = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "**": "power"}
        return f"{self.np}.{ops[n.op]}({a}, {b})", ATOM

    def _Compare(self, n: ir.Compare) -> tuple[str, int]:
        a, b = self.aligned(n.a, n.rank), self.aligned(n.b, n.rank)
        return f"({self.np}.real({a}) {n.op} {self.np}.real({b}))", ATOM

    def _Where(self, n: ir.Where) -> tuple[str, int]:
        return (f"{self.np}.where({self.aligned(n.cond, n.rank)}, {self.aligned(n.a, n.rank)}, "
                f"{self.aligned(n.b, n.rank)})", ATOM)

    def _MatMul(self, n: ir.MatMul) -> tuple[str, int]:
        a, b = n.a, n.b
        if not self.is_batched(n):
            return super()._MatMul(n)
        np_ = self.np
        if n.rank > 2 or max(a.rank, b.rank) > 2:   # stacks: batch axes aligned, then NumPy's
            if a.rank == 1:
                row = f"{np_}.expand_dims({self.aligned(a, b.rank - 1)}, -2)"
                return f"{np_}.squeeze({np_}.matmul({row}, {self(b)}), -2)", ATOM
            if b.rank == 1:
                column = f"{np_}.expand_dims({self.aligned(b, a.rank - 1)}, -1)"
                return f"{np_}.squeeze({np_}.matmul({self(a)}, {column}), -1)", ATOM
            return f"{np_}.matmul({self.aligned(a, n.rank)}, {self.aligned(b, n.rank)})", ATOM
        if a.rank == 2 and b.rank == 2:
            # _real: the batched input's real part, when the caller knows every batch member
            # shares it (complex step: x + i·h·v); products then skip recomputing it
            hints = "".join(f", shared_{side}=_real" for side, x in (("a", a), ("b", b))
                            if isinstance(x, ir.Var) and self.is_batched(x)
                            and len(self.batched_names) == 1)
            return f"_matmul({self(a)}, {self(b)}{hints})", ATOM
        if (a.rank, b.rank) == (1, 2):   # (…, i) @ (…, i, j) -> (…, j)
            return f"{np_}.squeeze({np_}.matmul({np_}.expand_dims({self(a)}, -2), {self(b)}), -2)", ATOM
        if (a.rank, b.rank) == (2, 1):   # (…, i, j) @ (…, j) -> (…, i)
            return f"{np_}.squeeze({np_}.matmul({self(a)}, {np_}.expand_dims({self(b)}, -1)), -1)", ATOM
        return f"{np_}.sum({self.aligned(a, 1)} * {self.aligned(b, 1)}, axis=-1)", ATOM

    def _Transpose(self, n: ir.Transpose) -> tuple[str, int]:
        if n.a.rank < 2:
            return self.p(n.a)
        if self.is_batched(n):
            return f"{self.np}.swapaxes({self(n.a)}, -1, -2)", ATOM
        return super()._Transpose(n)

    def _Permute(self, n: ir.Permute) -> tuple[str, int]:
        if not self.is_batched(n):
            return super()._Permute(n)
        return f"{self.np}.transpose({self(n.a)}, {(0, *(k + 1 for k in n.axes))})", ATOM

    def _Reshape(self, n: ir.Reshape) -> tuple[str, int]:
        dims = ", ".join(self.dim_text(d) for d in n.shape)
        if not self.is_batched(n):
            return f"{self.np}.reshape({self(n.a)}, ({dims},))", ATOM
        return f"{self.np}.reshape({self(n.a)}, (-1, {dims}))", ATOM   # -1: the batch axis

    def _Apply(self, n: ir.Apply) -> tuple[str, int]:
        fn = ELEMENTWISE[n.fn]
        template = fn.numpy_complex or fn.numpy     # analytic in x: complex-step safe
        return render(template, fn, self(n.a), [self(p) for p in n.params], np=self.np), ATOM

    def _axes(self, n: ir.Sum | ir.Macro | ir.Extreme, axis: int | None, rank: int) -> str:
        if axis is None:
            return ", axis=" + (str(tuple(range(-rank, 0))) if rank else "()")
        return f", axis={axis - rank if axis >= 0 else axis}"

    def _Sum(self, n: ir.Sum) -> tuple[str, int]:
        if not self.is_batched(n):
            return super()._Sum(n)
        if n.a.rank == 0:
            return self.p(n.a)
        keep = ", keepdims=True" if n.keepdims else ""
        return f"{self.np}.sum({self(n.a)}{self._axes(n, n.axis, n.a.rank)}{keep})", ATOM

    def _Extreme(self, n: ir.Extreme) -> tuple[str, int]:
        if not self.is_batched(n):
            return super()._Extreme(n)
        keep = ", keepdims=True" if n.keepdims else ""   # real inputs only: not analytic
        return f"{self.np}.{n.fn}({self(n.a)}{self._axes(n, n.axis, n.a.rank)}{keep})", ATOM

    def _Trace(self, n: ir.Trace) -> tuple[str, int]:
        return f"{self.np}.trace({self(n.a)}, axis1=-2, axis2=-1)", ATOM

    def _Diag(self, n: ir.Diag) -> tuple[str, int]:
        if not self.is_batched(n):
            return super()._matrix_op(n)
        if n.a.rank == 1:
            size = n.shape[0]
            size = self.sizes.get(size, size) if isinstance(size, str) else size
            return f"({self.np}.expand_dims({self(n.a)}, -1) * {self.np}.eye({size}))", ATOM
        return f"{self.np}.diagonal({self(n.a)}, axis1=-2, axis2=-1)", ATOM

    def _Outer(self, n: ir.Outer) -> tuple[str, int]:
        if not self.is_batched(n):
            return super()._matrix_op(n)
        return f"({self.np}.expand_dims({self(n.a)}, -1) * {self.np}.expand_dims({self(n.b)}, -2))", ATOM

    def _Eye(self, n: ir.Eye) -> tuple[str, int]:
        size = self.sizes.get(n.n, n.n) if isinstance(n.n, str) else n.n
        return f"{self.np}.eye({size})", ATOM

    def _Ones(self, n: ir.Ones) -> tuple[str, int]:
        dims = ", ".join(self.dim_text(d) for d in n.shape)
        return f"{self.np}.ones(({dims},))", ATOM

    def _Broadcast(self, n: ir.Broadcast) -> tuple[str, int]:
        dims = ", ".join(self.dim_text(d) for d in n.shape)
        if not self.is_batched(n):
            return f"{self.np}.broadcast_to({self(n.a)}, ({dims},))", ATOM
        a = self.aligned(n.a, n.rank)
        return f"{self.np}.broadcast_to({a}, {self.np}.shape({a})[:1] + ({dims},))", ATOM

    def _ExpandDims(self, n: ir.ExpandDims) -> tuple[str, int]:
        if not self.is_batched(n):
            return super()._ExpandDims(n)
        return f"{self.np}.expand_dims({self(n.a)}, {n.axis + 1})", ATOM

    def _Macro(self, n: ir.Macro) -> tuple[str, int]:
        if not self.is_batched(n):
            return super()._Macro(n)
        x = self(n.operands[0])
        kw = dict(n.kwargs)
        rank = n.operands[0].rank
        if n.fn == "softmax":
            axis = cast(int, kw.get("axis", -1))   # the parser's integer axis
            return f"_softmax({x}, axis={axis - rank if axis >= 0 else axis})", ATOM
        if n.fn in ("mean", "logsumexp"):
            keep = ", keepdims=True" if kw.get("keepdims") else ""
            axes = self._axes(n, cast("int | None", kw.get("axis")), rank)
            return f"{REDUCTION_CALLS[n.fn].format(np=self.np)}({x}{axes}{keep})", ATOM
        return self.p(n.expansion)  # pragma: no cover

    #: node type -> its rule (explicit dispatch; tests check every node type is covered)
    RULES: ClassVar[dict[type, Callable[..., Any]]] = {**NumpyPrinter.RULES,
        ir.DimSize: _DimSize,
        ir.Binary: _Binary,
        ir.Compare: _Compare,
        ir.Where: _Where,
        ir.MatMul: _MatMul,
        ir.Transpose: _Transpose,
        ir.Permute: _Permute,
        ir.Reshape: _Reshape,
        ir.Apply: _Apply,
        ir.Sum: _Sum,
        ir.Extreme: _Extreme,
        ir.Trace: _Trace,
        ir.Diag: _Diag,
        ir.Outer: _Outer,
        ir.Eye: _Eye,
        ir.Ones: _Ones,
        ir.Broadcast: _Broadcast,
        ir.ExpandDims: _ExpandDims,
        ir.Macro: _Macro,
    }


def batched_function(fname: str, args: list[str], body: ir.Node, batched: set[str],
                     sizes: dict[str, int], params: dict[str, float] | None = None) -> Callable[..., Any]:
    """A NumPy function of keyword args where `batched` args have a leading batch axis; with
    one batched input, `_real=` may pass its real part shared by the whole batch."""
    params = params or {}
    alias = emit.numpy_alias(set(args) | set(params) | set(sizes))
    printer = BatchedNumpyPrinter(batched, sizes, alias)
    extra = {"_real": None} if len(batched) == 1 else {}
    source = emit.function(fname, list(args) + [f"{k}={v}" for k, v in extra.items()], params, [],
                           printer(body))
    return emit.build(source, fname, alias=alias, batched=True)


class StackedNumpyPrinter(BatchedNumpyPrinter):
    """Real NumPy source (a lowered module's) where the variables in `batched` carry a leading
    stack axis: `jacobian_x` evaluates a vjp at a stack of unit upstream gradients at once."""

    def __init__(self, batched: set[str], np: str = "np") -> None:
        super().__init__(batched, {}, np)

    def _MatMul(self, n: ir.MatMul) -> tuple[str, int]:
        if self.is_batched(n) and n.a.rank == 2 and n.b.rank == 2:
            return f"{self.np}.matmul({self(n.a)}, {self(n.b)})", ATOM
        return super()._MatMul(n)

    def _Apply(self, n: ir.Apply) -> tuple[str, int]:
        return NumpyPrinter._Apply(self, n)   # elementwise: the stack axis changes nothing

    def _Compare(self, n: ir.Compare) -> tuple[str, int]:
        return f"({self.aligned(n.a, n.rank)} {n.op} {self.aligned(n.b, n.rank)})", ATOM

    #: node type -> its rule (explicit dispatch; tests check every node type is covered)
    RULES: ClassVar[dict[type, Callable[..., Any]]] = {**BatchedNumpyPrinter.RULES,
        ir.MatMul: _MatMul,
        ir.Apply: _Apply,
        ir.Compare: _Compare,
    }
