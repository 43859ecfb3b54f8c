"""The one SymPy -> IR converter: an elementwise SymPy expression over symbols that stand for IR
nodes, back as IR (NumPy broadcasting between the nodes).

Used by the simplifier (a cluster of elementwise arithmetic simplified in SymPy) and by the VJP
(an elementwise function's derivative rule, derived in SymPy). Terms print positive first, then
subtracted; a product's factors in the order constants, scalars, arrays, sums; negative powers
go to a denominator; Piecewise becomes `where`; a SymPy function that is an op-table entry
(exp, log, tanh, ...) becomes that function. Anything else raises `Unmappable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

import sympy as sp

from ..lang import ir
from ..lang.printing import terminating
from . import elementwise

_CMP = {sp.StrictGreaterThan: ">", sp.GreaterThan: ">=", sp.StrictLessThan: "<", sp.LessThan: "<="}


class Unmappable(Exception):
    """A SymPy expression with no IR counterpart (an unmapped symbol, an unknown function)."""


def ir_number(value: sp.Expr) -> ir.Node:
    if value.is_Integer or value.is_Rational:
        return ir.const(Fraction(int(value.p), int(value.q)))
    return ir.const(float(value))


def to_ir(e: sp.Expr, symbols: Mapping[sp.Expr, ir.Node]) -> ir.Node:
    """`e` as IR, each key of `symbols` standing for its node."""
    if e in symbols:
        return symbols[e]
    if e.is_Number:
        return ir_number(e)
    for name, value in elementwise.SYMPY_NUMBERS.items():
        if e == value:
            return ir.NAMED_NUMBERS[name]
    if isinstance(e, sp.Symbol):
        raise Unmappable(e)
    if isinstance(e, sp.Add):
        terms = list(e.as_ordered_terms())
        pos = [t for t in terms if not _negative(t)]
        negs = [t for t in terms if _negative(t)]
        if not pos:
            total = to_ir(-negs[0], symbols)
            for t in negs[1:]:
                total = ir.add(total, to_ir(-t, symbols))
            return ir.neg(total)
        total = to_ir(pos[0], symbols)
        for t in pos[1:]:
            total = ir.add(total, to_ir(t, symbols))
        for t in negs:
            total = ir.sub(total, to_ir(-t, symbols))
        return total
    if isinstance(e, sp.Mul):
        return _product(e, symbols)
    if isinstance(e, sp.Pow):
        base, exp = e.as_base_exp()
        if exp == sp.Rational(1, 2):
            return ir.apply("sqrt", to_ir(base, symbols))
        if exp.is_Number and exp < 0:
            return ir.div(ir.ONE, to_ir(base ** -exp, symbols))
        return ir.power(to_ir(base, symbols), to_ir(exp, symbols))
    if isinstance(e, sp.Piecewise):
        (value, cond), *rest = e.args
        other = (to_ir(sp.Piecewise(*rest), symbols) if rest and rest[0][1] is not sp.true
                 else to_ir(rest[0][0], symbols))
        return ir.where(_condition(cond, symbols), to_ir(value, symbols), other)
    fn = elementwise.sympy_classes().get(type(e))
    if fn is not None:
        return ir.apply(fn, to_ir(e.args[0], symbols))
    raise Unmappable(e)


def _product(e: sp.Mul, symbols: Mapping[sp.Expr, ir.Node]) -> ir.Node:
    coeff, factors = e.as_coeff_mul()
    if coeff < 0:
        return ir.neg(to_ir(-e, symbols))
    num: list[ir.Node] = []
    den: list[ir.Node] = []
    if coeff != 1:
        c = sp.Rational(coeff) if coeff.is_Rational else coeff
        if c.is_Rational and c.q != 1 and not _long_decimal(c):
            if c.p != 1:
                num.append(ir_number(sp.Integer(c.p)))
            den.append(ir_number(sp.Integer(c.q)))
        else:
            num.append(ir_number(c))
    for f in factors:
        base, exp = f.as_base_exp()
        if exp.is_Number and exp < 0:
            den.append(to_ir(base ** -exp, symbols))
        else:
            num.append(to_ir(f, symbols))
    num.sort(key=_factor_order)
    den.sort(key=_factor_order)
    top = num[0] if num else ir.ONE
    for f in num[1:]:
        top = ir.mul(top, f)
    if not den:
        return top
    bottom = den[0]
    for f in den[1:]:
        bottom = ir.mul(bottom, f)
    return ir.div(top, bottom)


def _long_decimal(c: sp.Rational) -> bool:
    """A coefficient written as the decimal it is (0.044715), not as p/q with q ≥ 1000."""
    return c.q >= 1000 and terminating(int(c.q))


def _condition(c: sp.Basic, symbols: Mapping[sp.Expr, ir.Node]) -> ir.Node:
    if type(c) not in _CMP:
        raise Unmappable(c)
    return ir.compare(_CMP[type(c)], to_ir(c.lhs, symbols), to_ir(c.rhs, symbols))


def _negative(term: sp.Expr) -> bool:
    coeff, _ = term.as_coeff_Mul()
    return bool(coeff.is_Number and coeff < 0)


def _factor_order(node: ir.Node) -> int:
    """constants, then scalar parameters and sizes, other scalars, arrays, sums."""
    if isinstance(node, ir.Const):
        return 0
    if isinstance(node, ir.DimSize) or (isinstance(node, ir.Var) and node.role == "param"):
        return 1
    if node.rank == 0:
        return 2
    if isinstance(node, ir.Binary) and node.op in "+-":
        return 4
    return 3
