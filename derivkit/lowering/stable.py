"""Stable exponentials in lowered formulas.

A derivative through softmax is often printed over exp(Z), e.g.
    ∂f/∂Z = exp(Z) ⊙ (C − (C ⊙ exp(Z)) 𝟙 / (exp(Z) 𝟙)) / (exp(Z) 𝟙),
the same function as the forward's stable softmax, but exp(Z) overflows once Z passes ~88
(float32) or ~710 (float64). Such a formula is homogeneous of degree 0 in exp(Z) along the
softmax axis: scaling exp(Z) by any positive c, constant along that axis, leaves it unchanged.
There `shift_exponentials` has the lowering evaluate exp(Z − max Z) along that axis instead
(c = exp(−max Z)): the same value, and no entry of the shifted exponential exceeds 1.

`degree(node, e, axis)` is k when node(c·e) = c^k ⊙ node(e) for every such c (None when this
cannot be shown by the rules below), c having the shape of e with `axis` set to 1 (a scalar
for axis None).
"""

from __future__ import annotations

from fractions import Fraction

from ..lang import ir

SHIFTED = "exp_shifted"   # the macro the NumPy printer lowers to exp(x − max(x, axis))


def shift_exponentials(body: ir.Node) -> ir.Node:
    """`body` with each exp(Z) it is invariant to scaling (along some axis) marked for the
    shifted evaluation."""
    exps = [n for n in ir.walk(body) if isinstance(n, ir.Apply) and n.fn == "exp" and n.rank]
    for e in exps:
        for axis in ((e.rank - 1, 0, None) if e.rank == 2 else (None,)):
            if degree(body, e, axis, {}) == 0 and ir.depends_on(body, e):
                kwargs = () if axis is None else (("axis", axis),)
                body = ir.substitute(body, {e: ir.macro(SHIFTED, (e.a,), e, kwargs)})
                break
    return body


def _scalable(shape: ir.Shape, e: ir.Node, axis: int | None) -> bool:
    """c (shape of e, 1 along axis) broadcasts onto `shape` as a per-slice factor."""
    if axis is None:
        return True
    return len(shape) == e.rank and all(s == t for i, (s, t) in enumerate(zip(shape, e.shape))
                                        if i != axis)


def degree(n: ir.Node, e: ir.Node, axis: int | None, memo: dict[ir.Node, int | None]) -> int | None:
    if n in memo:
        return memo[n]
    if n == e:
        out: int | None = 1
    elif not ir.depends_on(n, e):
        out = 0
    else:
        out = _degree(n, e, axis, memo)
        if out and not _scalable(n.shape, e, axis):
            out = None
    memo[n] = out
    return out


def _degree(n: ir.Node, e: ir.Node, axis: int | None, memo: dict[ir.Node, int | None]) -> int | None:
    def d(x: ir.Node) -> int | None:
        return degree(x, e, axis, memo)

    if isinstance(n, ir.Binary):
        a, b = d(n.a), d(n.b)
        if a is None or (b is None and n.op != "**"):
            return None
        if n.op in "+-":
            return a if a == b else None
        if n.op == "*" and b is not None:   # b is None only for '**'
            return a + b
        if n.op == "/" and b is not None:
            return a - b
        if n.op == "**" and isinstance(n.b, ir.Const) and b == 0:
            if isinstance(n.b.value, ir.NamedNumber):
                return None
            p = Fraction(n.b.value)
            return int(a * p) if (a * p).denominator == 1 else None
        return 0 if a == 0 and b == 0 else None
    if isinstance(n, ir.Neg):
        return d(n.a)
    if isinstance(n, ir.Sum):
        a = d(n.a)
        if a == 0 or axis is None:
            return a
        return a if n.keepdims and n.axis == axis else None
    if isinstance(n, ir.Broadcast):
        return d(n.a)
    if isinstance(n, ir.Macro):
        return d(n.expansion)
    if isinstance(n, ir.MatMul):
        a, b = d(n.a), d(n.b)
        if a is None or b is None:
            return None
        if axis is None or (b == 0 and axis == n.a.rank - 1 == 1):   # rows of A scale rows
            return a + b
        return 0 if a == b == 0 else None
    if axis is None and isinstance(n, (ir.Transpose, ir.Trace, ir.Diag, ir.ExpandDims)):
        return d(n.args[0])
    if axis is None and isinstance(n, ir.Outer):
        a, b = d(n.a), d(n.b)
        return None if a is None or b is None else a + b
    return 0 if all(d(c) == 0 for c in n.args) else None
