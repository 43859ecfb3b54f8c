"""Lowering: IR -> plain, vectorised NumPy source, and callables built from it.

One printer (`NumpyPrinter`) is the only lowering path; `compile_function` builds a Python
function from the printed source of an IR that derivkit itself constructed (every name in it is
a validated identifier), never from user text. Softmax is lowered in its stable form
exp(x − max x) / Σ exp(x − max x), which is the same function.
"""

from __future__ import annotations

from fractions import Fraction

from . import ir
from .printing import ADD, ATOM, MUL, NEG, LanguagePrinter

NP_FN = {"exp": "np.exp", "log": "np.log", "sqrt": "np.sqrt", "abs": "np.abs", "sign": "np.sign",
         "tanh": "np.tanh"}


def _shape_tuple(shape) -> str:
    dims = [str(d) for d in shape]
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


class NumpyPrinter(LanguagePrinter):
    """NumPy source for an IR expression; named nodes are referenced by name."""

    def _Const(self, n):
        v = n.value
        text = repr(float(v)) if isinstance(v, Fraction) else repr(v)
        return text, (NEG if text.startswith("-") else ATOM)

    def _DimSize(self, n):
        return n.name, ATOM

    def _Eye(self, n):
        return f"np.eye({n.n})", ATOM

    def _Ones(self, n):
        return f"np.ones({_shape_tuple(n.shape)})", ATOM

    def _Binary(self, n):
        if n.op == "**" and isinstance(n.b, ir.Const) and n.b.value == 2:
            return f"np.square({self(n.a)})", ATOM
        return super()._Binary(n)

    def _Apply(self, n):
        x = self(n.a)
        if n.fn in NP_FN:
            return f"{NP_FN[n.fn]}({x})", ATOM
        if n.fn == "sigmoid":
            return f"np.exp(-np.logaddexp(0.0, -({x})))", ATOM
        if n.fn == "relu":
            return f"np.maximum({x}, 0.0)", ATOM
        if n.fn == "leaky_relu":
            return f"_leaky_relu({x}, {self(n.params[0])})", ATOM
        raise NotImplementedError(n.fn)  # pragma: no cover - every FUNCTIONS entry is covered

    def _Compare(self, n):
        return f"({self.wrap(n.a, ADD)} {n.op} {self.wrap(n.b, ADD)})", ATOM

    def _Where(self, n):
        return f"np.where({self(n.cond)}, {self(n.a)}, {self(n.b)})", ATOM

    def _Sum(self, n):
        a = n.a
        if (n.axis is None and not n.keepdims and isinstance(a, ir.Binary) and a.op == "*"
                and a.a.rank == 1 and a.b.rank == 1):
            return f"{self.wrap(a.a, MUL)} @ {self.wrap(a.b, MUL, strict=True)}", MUL  # ⟨a, b⟩
        extra = ("" if n.axis is None else f", axis={n.axis}") + (", keepdims=True" if n.keepdims else "")
        return f"np.sum({self(n.a)}{extra})", ATOM

    def _Trace(self, n):
        return f"np.trace({self(n.a)})", ATOM

    def _Det(self, n):
        return f"np.linalg.det({self(n.a)})", ATOM

    def _Inv(self, n):
        return f"np.linalg.inv({self(n.a)})", ATOM

    def _Diag(self, n):
        return f"np.diag({self(n.a)})", ATOM

    def _Outer(self, n):
        return f"np.outer({self(n.a)}, {self(n.b)})", ATOM

    def _Broadcast(self, n):
        return f"np.broadcast_to({self(n.a)}, {_shape_tuple(n.shape)})", ATOM

    def _ExpandDims(self, n):
        return f"np.expand_dims({self(n.a)}, {n.axis})", ATOM

    def _Macro(self, n):
        x = self(n.operands[0])
        kw = dict(n.kwargs)
        if n.fn == "softmax":
            axis = kw.get("axis", -1)
            return f"_softmax({x}, axis={axis})", ATOM
        if n.fn == "mean":
            extra = "".join(f", {k}={v}" for k, v in n.kwargs)
            return f"np.mean({x}{extra})", ATOM
        return self.p(n.expansion)  # pragma: no cover


HELPERS = '''\
def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _leaky_relu(x, alpha):
    return np.where(x >= 0, x, alpha * x)
'''

numpy_source = NumpyPrinter()


def dims_prelude(inputs: dict[str, tuple]) -> list[str]:
    """Lines binding each symbolic dimension to the size of the first input that has it."""
    lines, bound = [], set()
    for name, shape in inputs.items():
        for axis, d in enumerate(shape):
            if isinstance(d, str) and d not in bound:
                bound.add(d)
                lines.append(f"{d} = np.shape({name})[{axis}]")
    return lines


def function_source(fname: str, args: list[str], body: ir.Node, inputs: dict[str, tuple],
                    named: dict[str, ir.Node], params: dict[str, float] | None = None) -> str:
    """Source of `def fname(*, args..., params=defaults): ...; return body`."""
    params = params or {}
    needed: list[str] = []

    def need(node: ir.Node) -> None:
        for n in ir.walk(node):
            if isinstance(n, ir.Var) and n.role == "named" and n.name not in needed:
                need(named[n.name])
                needed.append(n.name)

    need(body)
    dims_needed: set[str] = set()
    for root in [body] + [named[name] for name in needed]:
        for n in ir.walk(root):
            if isinstance(n, ir.DimSize):
                dims_needed.add(n.name)
            elif isinstance(n, ir.Eye) and isinstance(n.n, str):
                dims_needed.add(n.n)
            elif isinstance(n, (ir.Ones, ir.Broadcast)):
                dims_needed.update(d for d in n.shape if isinstance(d, str))
    sig = ", ".join(args + [f"{p}={params[p]!r}" for p in params])
    lines = [f"def {fname}(*, {sig}):"]
    lines += ["    " + ln for ln in dims_prelude(inputs) if ln.split(" = ")[0] in dims_needed]
    for name in needed:
        lines.append(f"    {name} = {numpy_source(named[name])}")
    lines.append(f"    return {numpy_source(body)}")
    return "\n".join(lines) + "\n"


def compile_function(fname: str, source: str):
    """Build the function from derivkit-generated source (see module docstring)."""
    import numpy as np

    namespace: dict = {"np": np}
    code = compile(HELPERS + "\n\n" + source, f"<derivkit:{fname}>", "exec")
    exec(code, namespace)  # noqa: S102 - generated from derivkit's own IR, not from user text
    return namespace[fname]


# ---------------------------------------------------------------- batched, complex-safe lowering
class BatchedNumpyPrinter(NumpyPrinter):
    """NumPy source where the variables in `batched` carry an extra leading axis (a batch of
    perturbed copies), so one call evaluates the forward at many points. Operands are aligned
    by rank (a batched vector meeting a matrix gets its middle axis inserted), transposes swap
    the last two axes, reductions use negative axes, products of vectors use einsum with '...'.
    Every function used is analytic where the math is (sigmoid as 1/(1 + exp(−x))), so complex
    inputs work for complex-step differentiation."""

    def __init__(self, batched: set[str], sizes: dict[str, int] | None = None) -> None:
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
            return f"np.expand_dims({text}, ({axes},))"
        return text

    def _DimSize(self, n):
        return (str(self.sizes[n.name]), ATOM) if n.name in self.sizes else (n.name, ATOM)

    def _Binary(self, n):
        if not self.is_batched(n) or (n.a.rank == n.rank and n.b.rank == n.rank):
            return super()._Binary(n)
        a, b = self.aligned(n.a, n.rank), self.aligned(n.b, n.rank)
        ops = {"+": "np.add", "-": "np.subtract", "*": "np.multiply", "/": "np.divide",
               "**": "np.power"}
        return f"{ops[n.op]}({a}, {b})", ATOM

    def _Compare(self, n):
        a, b = self.aligned(n.a, n.rank), self.aligned(n.b, n.rank)
        return f"(np.real({a}) {n.op} np.real({b}))", ATOM

    def _Where(self, n):
        return (f"np.where({self.aligned(n.cond, n.rank)}, {self.aligned(n.a, n.rank)}, "
                f"{self.aligned(n.b, n.rank)})", ATOM)

    def _MatMul(self, n):
        a, b = n.a, n.b
        if not self.is_batched(n):
            return super()._MatMul(n)
        if a.rank == 2 and b.rank == 2:
            hints = "".join(f", shared_{side}=_real_part.get({x.name!r})" for side, x in
                            (("a", a), ("b", b)) if isinstance(x, ir.Var) and self.is_batched(x))
            return f"_matmul({self(a)}, {self(b)}{hints})", ATOM
        spec = {(1, 2): "...i,...ij->...j", (2, 1): "...ij,...j->...i", (1, 1): "...i,...i->..."}
        return f"np.einsum('{spec[(a.rank, b.rank)]}', {self(a)}, {self(b)})", ATOM

    def _Transpose(self, n):
        if n.a.rank < 2:
            return self.p(n.a)
        if self.is_batched(n):
            return f"np.swapaxes({self(n.a)}, -1, -2)", ATOM
        return super()._Transpose(n)

    def _Apply(self, n):
        if n.fn == "sigmoid":
            return f"(1.0 / (1.0 + np.exp(-({self(n.a)}))))", ATOM
        if n.fn == "relu":
            x = self(n.a)
            return f"np.where(np.real({x}) > 0, {x}, 0.0)", ATOM
        return super()._Apply(n)

    def _axes(self, n: ir.Sum | ir.Macro, axis, rank: int) -> str:
        if axis is None:
            return ", axis=" + (str(tuple(range(-rank, 0))) if rank else "()")
        return f", axis={axis - rank if axis >= 0 else axis}"

    def _Sum(self, n):
        if not self.is_batched(n):
            return super()._Sum(n)
        if n.a.rank == 0:
            return self.p(n.a)
        keep = ", keepdims=True" if n.keepdims else ""
        return f"np.sum({self(n.a)}{self._axes(n, n.axis, n.a.rank)}{keep})", ATOM

    def _Trace(self, n):
        return f"np.trace({self(n.a)}, axis1=-2, axis2=-1)", ATOM

    def _Diag(self, n):
        if not self.is_batched(n):
            return super()._Diag(n)
        if n.a.rank == 1:
            size = n.shape[0]
            size = self.sizes.get(size, size) if isinstance(size, str) else size
            return f"(np.expand_dims({self(n.a)}, -1) * np.eye({size}))", ATOM
        return f"np.diagonal({self(n.a)}, axis1=-2, axis2=-1)", ATOM

    def _Outer(self, n):
        if not self.is_batched(n):
            return super()._Outer(n)
        return f"(np.expand_dims({self(n.a)}, -1) * np.expand_dims({self(n.b)}, -2))", ATOM

    def _Eye(self, n):
        size = self.sizes.get(n.n, n.n) if isinstance(n.n, str) else n.n
        return f"np.eye({size})", ATOM

    def _Ones(self, n):
        dims = ", ".join(str(self.sizes.get(d, d) if isinstance(d, str) else d) for d in n.shape)
        return f"np.ones(({dims},))", ATOM

    def _Broadcast(self, n):
        dims = ", ".join(str(self.sizes.get(d, d) if isinstance(d, str) else d) for d in n.shape)
        if not self.is_batched(n):
            return f"np.broadcast_to({self(n.a)}, ({dims},))", ATOM
        a = self.aligned(n.a, n.rank)
        return f"np.broadcast_to({a}, np.shape({a})[:1] + ({dims},))", ATOM

    def _ExpandDims(self, n):
        if not self.is_batched(n):
            return super()._ExpandDims(n)
        return f"np.expand_dims({self(n.a)}, {n.axis + 1})", ATOM

    def _Macro(self, n):
        if not self.is_batched(n):
            return super()._Macro(n)
        x = self(n.operands[0])
        kw = dict(n.kwargs)
        rank = n.operands[0].rank
        if n.fn == "softmax":
            axis = kw.get("axis", -1)
            return f"_softmax({x}, axis={axis - rank if axis >= 0 else axis})", ATOM
        if n.fn == "mean":
            keep = ", keepdims=True" if kw.get("keepdims") else ""
            return f"np.mean({x}{self._axes(n, kw.get('axis'), rank)}{keep})", ATOM
        return self.p(n.expansion)  # pragma: no cover


BATCH_HELPERS = '''\
def _softmax(x, axis=-1):
    e = np.exp(x - np.max(np.real(x), axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _leaky_relu(x, alpha):
    return np.where(np.real(x) >= 0, x, alpha * x)


def _shared(a):
    """a[0] if every batch member of `a` equals it (the real part of a complex-step batch)."""
    return a[0] if a.ndim == 3 and np.array_equal(a, np.broadcast_to(a[:1], a.shape)) else None


def _matmul(a, b, shared_a=None, shared_b=None):
    """a @ b where one operand may carry a leading batch axis. A complex-step batch is split
    into real and imaginary parts (real GEMMs, not complex ones of four times the work), and a
    real part shared by the whole batch (x + i·h·v has the same real part for every v) is
    multiplied once."""
    if not (np.iscomplexobj(a) or np.iscomplexobj(b)):
        return np.matmul(a, b)
    re_a, re_b = np.real(a), np.real(b)
    sa = shared_a if shared_a is not None else _shared(re_a)
    sb = shared_b if shared_b is not None else _shared(re_b)
    real = np.matmul(re_a if sa is None else sa, re_b if sb is None else sb)
    imag = None
    if np.iscomplexobj(a):
        imag = np.matmul(np.imag(a), re_b if sb is None else sb)
    if np.iscomplexobj(b):
        part = np.matmul(re_a if sa is None else sa, np.imag(b))
        imag = part if imag is None else imag + part
    out = np.empty(np.broadcast_shapes(real.shape, imag.shape), dtype=np.result_type(a, b))
    out.real = real
    out.imag = imag
    return out
'''


def batched_function(fname: str, args: list[str], body: ir.Node, batched: set[str],
                     sizes: dict[str, int], params: dict[str, float] | None = None):
    """A NumPy function of keyword args where `batched` args have a leading batch axis."""
    import numpy as np

    printer = BatchedNumpyPrinter(batched, sizes)
    params = params or {}
    # _real_part: {name: array} when the caller knows a batched input's real part is the same
    # for every batch member (complex step: x + i·h·v); lets products skip recomputing it
    sig = ", ".join(args + [f"{p}={params[p]!r}" for p in params] + ["_real_part={}"])
    source = f"def {fname}(*, {sig}):\n    return {printer(body)}\n"
    namespace: dict = {"np": np}
    exec(compile(BATCH_HELPERS + "\n\n" + source, f"<derivkit:{fname}>", "exec"), namespace)  # noqa: S102
    fn = namespace[fname]
    fn.__source__ = source
    return fn
