"""Reverse mode on the IR: the cotangent (∂L/∂node given ∂L/∂out = seed) of every node.

Each array operation has one VJP rule below (the matrix-calculus identities: for C = A B,
Ā = C̄ Bᵀ and B̄ = Aᵀ C̄; for c = Σ a, ā = c̄ 𝟙; ...). Elementwise functions have no rule here:
their derivative comes from `derivkit.lang.ops.derivative`, i.e. from differentiating the
function's SymPy definition. Macros (softmax, mean) are differentiated through their expansion,
so their derivatives are derived, never stated. Broadcasting is undone by summing (NumPy rules).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy as sp

from ..lang import ir
from ..lang.ops import BY_NODE, Cotangents
from ..lang.shapes import Shape
from . import elementwise
from .to_ir import Unmappable, to_ir


def unbroadcast(x: ir.Node, shape: Shape) -> ir.Node:
    """Sum `x` over the axes that broadcasting added or stretched to reach x.shape from `shape`."""
    shape = tuple(shape)
    if not shape and x.rank:
        return ir.sum_(x)
    while x.rank > len(shape):
        x = ir.sum_(x, 0)
    for axis, (have, want) in enumerate(zip(x.shape, shape)):
        if want == 1 and have != 1:
            x = ir.sum_(x, axis, keepdims=True)
    return x


def _elementwise_derivative(node: ir.Apply) -> ir.Node:
    """f'(a) for node = f(a), as IR, built from the SymPy-derived rule."""
    rule = elementwise.derivative(node.fn)
    if rule.function:   # another table function of the same argument (softplus' = σ)
        return ir.apply(rule.function, node.a)
    mapping: dict[sp.Symbol, ir.Node] = {elementwise.T: node.a, elementwise.S: node}
    for sym, p in zip(rule.params, node.params):
        mapping[sym] = p
    return from_scalar_sympy(rule.expr, mapping)


def from_scalar_sympy(expr: sp.Expr, mapping: dict[sp.Symbol, ir.Node]) -> ir.Node:
    """An elementwise SymPy expression in the mapped symbols, as IR (broadcasting)."""
    try:
        return to_ir(expr, mapping)
    except Unmappable:
        raise NotImplementedError(f"cannot express {expr} in the IR") from None


#: (node, its cotangent) -> [(operand, its cotangent)]; `node` is of the type the rule is registered for
Rule = Callable[[Any, ir.Node], Cotangents]


def _binary(n: ir.Binary, g: ir.Node) -> Cotangents:
    a, b = n.a, n.b
    if n.op == "+":
        return [(a, unbroadcast(g, a.shape)), (b, unbroadcast(g, b.shape))]
    if n.op == "-":
        return [(a, unbroadcast(g, a.shape)), (b, unbroadcast(ir.neg(g), b.shape))]
    if n.op == "*":
        return [(a, unbroadcast(ir.mul(g, b), a.shape)), (b, unbroadcast(ir.mul(g, a), b.shape))]
    if n.op == "/":
        return [(a, unbroadcast(ir.div(g, b), a.shape)),
                (b, unbroadcast(ir.neg(ir.div(ir.mul(g, n), b)), b.shape))]
    # a ** b
    da = ir.mul(g, ir.mul(b, ir.power(a, ir.sub(b, ir.ONE))))
    db = ir.mul(g, ir.mul(n, ir.apply("log", a)))
    return [(a, unbroadcast(da, a.shape)), (b, unbroadcast(db, b.shape))]


def _matmul(n: ir.MatMul, g: ir.Node) -> Cotangents:
    """C = A B: Ā = C̄ Bᵀ, B̄ = Aᵀ C̄, matrix by matrix over a batch, summed over the batch axes
    an operand was broadcast along."""
    a, b = n.a, n.b
    if a.rank >= 2 and b.rank >= 2:
        return [(a, unbroadcast(ir.matmul(g, ir.transpose(b)), a.shape)),
                (b, unbroadcast(ir.matmul(ir.transpose(a), g), b.shape))]
    if a.rank == 1 and b.rank == 2:      # (n,) @ (n,k) -> (k,)
        return [(a, ir.matmul(b, g)), (b, ir.outer(a, g))]
    if a.rank == 2 and b.rank == 1:      # (m,n) @ (n,) -> (m,)
        return [(a, ir.outer(g, b)), (b, ir.matmul(ir.transpose(a), g))]
    if a.rank == 1 and b.rank == 1:      # (n,) @ (n,) -> ()
        return [(a, ir.mul(g, b)), (b, ir.mul(g, a))]
    column = ir.expand_dims(g, g.rank)   # a stack of matrices and a vector: ḡ as a column
    if a.rank == 1:                      # (n,) @ (…,n,k) -> (…,k)
        row = ir.expand_dims(g, g.rank - 1)
        return [(a, unbroadcast(ir.sum_(ir.matmul(b, column), -1), a.shape)),
                (b, unbroadcast(ir.mul(ir.expand_dims(a, 1), row), b.shape))]
    return [(a, unbroadcast(ir.mul(column, b), a.shape)),          # (…,m,n) @ (n,) -> (…,m)
            (b, unbroadcast(ir.sum_(ir.mul(column, a), -2), b.shape))]


def _sum(n: ir.Sum, g: ir.Node) -> Cotangents:
    if n.axis is not None and not n.keepdims:
        g = ir.expand_dims(g, n.axis)
    return [(n.a, ir.broadcast_to(g, n.a.shape))]


def _extreme(n: ir.Extreme, g: ir.Node) -> Cotangents:
    """ā = ḡ ⊙ [a = max(a)] / #ties, broadcast back: a tie shares the gradient equally (as
    PyTorch's amax and JAX's max)."""
    kept = ir.extreme(n.fn, n.a, n.axis, keepdims=True)
    hit = ir.where(ir.compare("==", n.a, kept), ir.ONE, ir.ZERO)
    ties = ir.sum_(hit, n.axis, keepdims=True)
    if n.axis is not None and not n.keepdims:
        g = ir.expand_dims(g, n.axis)
    elif n.axis is None and not n.keepdims and n.a.rank:
        g = ir.broadcast_to(g, kept.shape)
    return [(n.a, ir.div(ir.mul(hit, g), ties))]


def _where(n: ir.Where, g: ir.Node) -> Cotangents:
    return [(n.a, unbroadcast(ir.where(n.cond, g, ir.ZERO), n.a.shape)),
            (n.b, unbroadcast(ir.where(n.cond, ir.ZERO, g), n.b.shape))]


RULES: dict[type, Rule] = {
    ir.Binary: _binary,
    ir.Neg: lambda n, g: [(n.a, ir.neg(g))],
    ir.MatMul: _matmul,
    ir.Transpose: lambda n, g: [(n.a, ir.transpose(g))],
    ir.Permute: lambda n, g: [(n.a, ir.permute(g, ir.inverse_axes(n.axes)))],
    ir.Reshape: lambda n, g: [(n.a, ir.Reshape(g, n.a.shape, n.products))],
    ir.Apply: lambda n, g: [(n.a, ir.mul(g, _elementwise_derivative(n)))],
    ir.Sum: _sum,
    ir.Extreme: _extreme,
    ir.Where: _where,
    ir.Compare: lambda n, g: [],  # piecewise constant: zero almost everywhere
    ir.OneHot: lambda n, g: [],   # of integer labels: never differentiated
    **{node: op.vjp for node, op in BY_NODE.items()},   # matrix functions: the op table's rules
    ir.Broadcast: lambda n, g: [(n.a, unbroadcast(g, n.a.shape))],
    ir.ExpandDims: lambda n, g: [(n.a, ir.sum_(g, n.axis))],
    ir.Macro: lambda n, g: [(n.expansion, g)],
}


def cotangents(out: ir.Node, seed: ir.Node, wrt: list[ir.Node]) -> dict[ir.Node, ir.Node]:
    """Cotangent of every node on a path from `wrt` to `out` (unsimplified IR)."""
    order = ir.walk(out)
    targets = set(wrt)
    relevant: set[ir.Node] = set()
    for node in order:  # children first
        if node in targets or any(c in relevant for c in node.args):
            relevant.add(node)
    cot: dict[ir.Node, ir.Node] = {out: seed}
    for node in reversed(order):
        if node not in cot or not node.args:
            continue
        rule = RULES.get(type(node))
        if rule is None:  # pragma: no cover - every non-leaf IR node has a rule
            raise NotImplementedError(f"no derivative rule for {type(node).__name__}")
        for child, contribution in rule(node, cot[node]):
            if child not in relevant:
                continue
            cot[child] = contribution if child not in cot else ir.add(cot[child], contribution)
    return cot


def vjp(out: ir.Node, seed: ir.Node, wrt: ir.Node) -> ir.Node | None:
    """∂⟨seed, out⟩/∂wrt, or None when `out` does not depend on `wrt`."""
    return cotangents(log_softmax_form(out), seed, [wrt]).get(wrt)


def log_softmax_form(node: ir.Node) -> ir.Node:
    """`node` with log(softmax(x)) as log_softmax(x), and log(softmax(x)[…]) as
    log_softmax(x)[…]: the same values, differentiated as a person does (x − logsumexp(x) has
    the gradient g − softmax(x) Σg, with no division by a softmax)."""
    from ..lang.parse import log_softmax, take

    def as_log_softmax(s: ir.Node) -> ir.Node | None:
        if isinstance(s, ir.Macro) and s.fn == "softmax":
            kw = dict(s.kwargs)
            axis = kw.get("axis", -1)
            assert isinstance(axis, int)
            return log_softmax(s.operands[0], axis, explicit_axis="axis" in kw)
        return None

    mapping: dict[ir.Node, ir.Node] = {}
    for n in ir.walk(node):
        if not (isinstance(n, ir.Apply) and n.fn == "log"):
            continue
        inner = n.a
        if (direct := as_log_softmax(inner)) is not None:
            mapping[n] = direct
        elif isinstance(inner, ir.Macro) and inner.fn == "take" \
                and (picked := as_log_softmax(inner.operands[0])) is not None:
            mapping[n] = take(picked, inner.operands[1])
    return ir.substitute(node, mapping) if mapping else node
