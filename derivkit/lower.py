"""Lowering: IR -> plain, vectorised NumPy source, and callables built from it.

One printer (`NumpyPrinter`) is the only lowering path; `compile_function` builds a Python
function from the printed source of an IR that derivkit itself constructed (every name in it is
a validated identifier), never from user text. Softmax is lowered in its stable form
exp(x − max x) / Σ exp(x − max x), which is the same function.
"""

from __future__ import annotations

from fractions import Fraction

from . import ir
from .printing import ADD, ATOM, MUL, NEG, POSTFIX, POW, LanguagePrinter

NP_FN = {"exp": "np.exp", "log": "np.log", "sqrt": "np.sqrt", "abs": "np.abs", "sign": "np.sign",
         "tanh": "np.tanh"}


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
        return f"np.ones(({', '.join(str(d) for d in n.shape)},))", ATOM

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
        return f"np.broadcast_to({self(n.a)}, ({', '.join(str(d) for d in n.shape)},))", ATOM

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
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _leaky_relu(x, alpha):
    return np.where(x >= 0, x, alpha * x)
'''

numpy_source = NumpyPrinter()
_ = (MUL, POSTFIX, POW)


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
