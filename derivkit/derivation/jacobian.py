"""Closed-form Jacobians of vector -> vector maps, read off the VJP.

The VJP v(g) = Jᵀ g is linear in the upstream gradient g (n,). `coefficient(v, g)` returns the
matrix M with v = M g by structural rules (g ↦ I, c ⊙ L ↦ diag(c) M_L, c·⟨r, g⟩ ↦ c rᵀ, A L ↦
A M_L, ...); the Jacobian is Mᵀ, simplified (diag(p) − p pᵀ for softmax). Returns None when the
VJP has a form these rules do not cover: the caller then says no closed Jacobian was obtained.
"""

from __future__ import annotations

from ..lang import ir


class _NoForm(Exception):
    pass


def _mm(a: ir.Node, b: ir.Node) -> ir.Node:
    """a @ b, distributed over sums in b so diag/outer rules can fire term by term."""
    if isinstance(b, ir.Binary) and b.op in "+-":
        return ir.binary(b.op, _mm(a, b.a), _mm(a, b.b))
    if isinstance(b, ir.Neg):
        return ir.neg(_mm(a, b.a))
    return ir.matmul(a, b)


def coefficient(v: ir.Node, g: ir.Node) -> ir.Node | None:
    try:
        return _coeff(v, g)
    except _NoForm:
        return None


def _coeff(e: ir.Node, g: ir.Node) -> ir.Node:
    n = g.shape[0]
    if e == g:
        return ir.eye(n)
    if not ir.depends_on(e, g):
        raise _NoForm("affine part")
    if isinstance(e, ir.Neg):
        return ir.neg(_coeff(e.a, g))
    if isinstance(e, ir.Binary):
        da, db = ir.depends_on(e.a, g), ir.depends_on(e.b, g)
        if e.op in "+-":
            parts = [(_coeff_broadcast(x, e, g) if dep else None) for x, dep in ((e.a, da), (e.b, db))]
            if parts[0] is None or parts[1] is None:
                raise _NoForm("affine part")
            return ir.binary(e.op, parts[0], parts[1])
        if e.op == "*" and da != db:
            lin, c = (e.a, e.b) if da else (e.b, e.a)
            return _scaled(lin, c, g, n)
        if e.op == "/" and da and not db:
            return _scaled(e.a, ir.div(ir.ONE, e.b), g, n)
        raise _NoForm("nonlinear")
    if isinstance(e, ir.MatMul) and not ir.depends_on(e.a, g) and e.a.rank == 2 and e.b.rank == 1:
        return _mm(e.a, _coeff(e.b, g))
    if isinstance(e, ir.Where) and ir.is_const(e.b, 0) and not ir.depends_on(e.cond, g):
        return _mm(ir.diag(ir.where(e.cond, ir.ONE, ir.ZERO)), _coeff(e.a, g))
    if isinstance(e, ir.Broadcast) and e.a.rank == 0:
        return ir.outer(ir.ones(e.shape), _row(e.a, g))
    raise _NoForm(type(e).__name__)


def _coeff_broadcast(x: ir.Node, parent: ir.Node, g: ir.Node) -> ir.Node:
    """Coefficient of operand x of a vector sum; a scalar x is implicitly broadcast (x 𝟙)."""
    if x.rank == 0 and parent.rank == 1:
        return ir.outer(ir.ones(parent.shape), _row(x, g))
    return _coeff(x, g)


def _scaled(lin: ir.Node, c: ir.Node, g: ir.Node, n: ir.Dim) -> ir.Node:
    """Coefficient of c ⊙ lin, where lin is linear in g and c is not."""
    if lin.rank == 1 and c.rank == 0:
        return ir.mul(c, _coeff(lin, g))
    if lin.rank == 1 and c.rank == 1:
        return _mm(ir.diag(c), _coeff(lin, g))
    if lin.rank == 0 and c.rank == 1:
        return ir.outer(c, _row(lin, g))
    raise _NoForm("scaling")


def _row(s: ir.Node, g: ir.Node) -> ir.Node:
    """r with s = ⟨r, g⟩ for a scalar s linear in g."""
    if isinstance(s, ir.Sum) and s.axis is None and s.a.rank == 1:
        return ir.matmul(ir.transpose(_coeff(s.a, g)), ir.ones(s.a.shape))
    if isinstance(s, ir.Neg):
        return ir.neg(_row(s.a, g))
    if isinstance(s, ir.Binary):
        da, db = ir.depends_on(s.a, g), ir.depends_on(s.b, g)
        if s.op in "+-" and da and db:
            return ir.binary(s.op, _row(s.a, g), _row(s.b, g))
        if s.op == "*" and da != db:
            lin, c = (s.a, s.b) if da else (s.b, s.a)
            if c.rank == 0:
                return ir.mul(c, _row(lin, g))
        if s.op == "/" and da and not db and s.b.rank == 0:
            return ir.div(_row(s.a, g), s.b)
    if isinstance(s, ir.MatMul) and s.a.rank == 1 and s.b.rank == 1:
        lin, u = (s.b, s.a) if ir.depends_on(s.b, g) else (s.a, s.b)
        return ir.matmul(ir.transpose(_coeff(lin, g)), u)
    raise _NoForm("row")


def jacobian(vjp_expr: ir.Node, g: ir.Var) -> ir.Node | None:
    """J (n_out × n_in) with vjp = Jᵀ g, unsimplified; None if not obtained."""
    m = coefficient(vjp_expr, g)
    return None if m is None else ir.transpose(m)
