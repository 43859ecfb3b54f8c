"""The op table and the visitors: every IR node type has a rule in every visitor, and every
elementwise function in `derivkit.lang.ops` is exercised here, automatically, the moment it is
added: its derived gradient against the derivative of its own definition taken numerically at
30 digits (mpmath), its real and complex-safe lowerings against each other, its printing."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from functools import cache

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from derivkit import api
from derivkit.derivation import explicit, index, vjp
from derivkit.derivation.elementwise import T, definition
from derivkit.lang import ir, printing
from derivkit.lang.ops import ELEMENTWISE, MATRIX_OPS
from derivkit.lowering import source
from derivkit.lowering.forms import form_function

NODE_TYPES = [c for c in vars(ir).values()
              if isinstance(c, type) and issubclass(c, ir.Node) and c is not ir.Node
              and dataclasses.is_dataclass(c)]
VISITORS = [printing.LanguagePrinter, printing.PrettyPrinter, printing.LatexPrinter,
            source.NumpyPrinter, source.BatchedNumpyPrinter, source.StackedNumpyPrinter,
            index.IndexEvaluator, explicit.Explicit]


def test_the_node_list_is_the_ir():
    assert len(NODE_TYPES) >= 21 and {ir.Var, ir.MatMul, ir.Inv, ir.Macro} <= set(NODE_TYPES)


@pytest.mark.parametrize("visitor", VISITORS, ids=lambda v: v.__name__)
def test_every_visitor_has_a_rule_for_every_node_type(visitor):
    missing = [t.__name__ for t in NODE_TYPES if t not in visitor.RULES]
    assert missing == []
    assert all(callable(rule) for rule in visitor.RULES.values())


def test_every_operation_has_a_vjp_rule():
    operations = [t for t in NODE_TYPES if t._children]
    assert len(operations) >= 14
    assert [t.__name__ for t in operations if t not in vjp.RULES] == []


def test_a_visitor_without_a_rule_fails_loudly():
    class Partial(printing.LanguagePrinter):
        RULES = {k: v for k, v in printing.LanguagePrinter.RULES.items() if k is not ir.Inv}

    with pytest.raises(KeyError):
        Partial()(ir.inv(ir.Var("A", ("n", "n"))))


# ---------------------------------------------------------------- each elementwise entry
NAMES = sorted(ELEMENTWISE)


@cache
def _gradient(name: str):
    """derivkit's gradient of sum(f(x)) wrt x, lowered to NumPy."""
    recipe = api.recipe_from_expression(f"sum({name}(x))", ["x"], {"x": "n"})
    derivation = api.derive_expression(f"sum({name}(x))", ["x"], {"x": "n"})
    (dv,) = derivation.derivatives
    assert dv.matrix is not None and dv.matrix.verification.verified
    return form_function(recipe, dv.matrix.text)


def _reference_derivative(name: str, t: float) -> float:
    """d/dt of the entry's own definition, at its default parameters, numerically (30 digits)."""
    fn = ELEMENTWISE[name]
    expr = definition(name, T, tuple(sp.Float(v) for v in fn.defaults.values()))
    f = sp.lambdify(T, expr, modules="mpmath")
    with mpmath.workdps(30):
        return float(mpmath.diff(f, mpmath.mpf(t)))


def _points(name: str):
    fn = ELEMENTWISE[name]
    values = st.floats(0.1, 4.0) if fn.domain == "positive" else st.floats(-4.0, 4.0)
    if fn.kink is not None:
        values = values.filter(lambda v: abs(v - fn.kink) > 0.05)
    return st.lists(values, min_size=1, max_size=5)


@pytest.mark.parametrize("name", NAMES)
def test_each_function_gradient_is_the_derivative_of_its_definition(name):
    grad = _gradient(name)

    @settings(max_examples=12, deadline=None)
    @given(_points(name))
    def check(values):
        x = np.array(values)
        got = grad(x=x)
        want = np.array([_reference_derivative(name, v) for v in values])
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)

    check()


def test_the_reference_catches_a_wrong_rule(monkeypatch):
    """The comparison above fails for a gradient that is off (a mutated rule)."""
    x = np.array([0.3, -1.2])
    wrong = 1.001 * _gradient("tanh")(x=x)
    want = np.array([_reference_derivative("tanh", v) for v in x])
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(wrong, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_each_function_prints_and_lowers_from_its_entry(name):
    fn = ELEMENTWISE[name]
    x = ir.Var("x", ("n",))
    node = ir.apply(name, x, tuple(ir.const(v) for v in fn.defaults.values()))
    assert printing.language(node).startswith(f"{name}(x")
    assert printing.pretty(node) and printing.latex(node)
    real = source.NumpyPrinter()(node)
    complex_safe = source.BatchedNumpyPrinter(set())(node)
    assert "x" in real and "x" in complex_safe
    # the real and the complex-safe lowerings are the same function on real inputs
    from derivkit.lowering.source import compile_function, function_source
    values = np.array([0.3, 1.7, 2.5]) if fn.domain == "positive" else np.array([-1.3, 0.4, 2.5])
    lowered = compile_function("f", function_source("f", ["x"], node, {"x": ("n",)}, {}, {}))
    batched = source.batched_function("f", ["x"], node, {"x"}, {"n": 3}, {})
    np.testing.assert_allclose(np.real(batched(x=values[None])[0]), lowered(x=values), rtol=1e-12)


def test_the_simplifier_rules_are_an_explicit_table_of_ir_node_types():
    from derivkit.derivation.simplify import Simplifier

    assert set(Simplifier.STRUCTURAL) <= set(NODE_TYPES) and ir.Transpose in Simplifier.STRUCTURAL
    # (Aᵀ)ᵀ = A through the table
    a = ir.Var("A", ("m", "n"))
    assert Simplifier()(ir.transpose(ir.transpose(a))) == a


# ---------------------------------------------------------------- each matrix function
SHAPES = {"A": "n,n", "G": "n,n", "x": "n", "y": "n"}
#: one forward per matrix function (a new entry without one fails the next test)
USES = {
    "trace": ("trace(A @ A)", ["A"]),
    "det": ("det(A)", ["A"]),
    "inv": ("sum(inv(A) * G)", ["A"]),
    "diag": ("sum(diag(x) @ A) + sum(diag(A) * y)", ["x", "A"]),
    "outer": ("sum(outer(x, y) * A)", ["x", "y"]),
}


def test_every_matrix_function_has_a_use_here():
    assert set(USES) == set(MATRIX_OPS)


@pytest.mark.parametrize("name", sorted(MATRIX_OPS))
def test_each_matrix_function_gradient_passes_the_numerical_check(name):
    expr, wrt = USES[name]
    tc = api.check_expression(expr, wrt, SHAPES, mode="full", seed=1, sizes={"n": 4})
    assert tc.passed and {r.wrt for r in tc.results} == set(wrt)


@pytest.mark.parametrize("name", sorted(MATRIX_OPS))
def test_a_wrong_vjp_rule_of_each_matrix_function_fails_the_check(name, monkeypatch):
    op = MATRIX_OPS[name]

    def off_by_one_percent(n, g):
        return [(child, ir.mul(ir.const(Fraction(101, 100)), cot)) for child, cot in op.vjp(n, g)]

    monkeypatch.setitem(vjp.RULES, op.node, off_by_one_percent)
    expr, wrt = USES[name]
    tc = api.check_expression(expr, wrt, SHAPES, mode="full", seed=1, sizes={"n": 4})
    assert not tc.passed


@pytest.mark.parametrize("printer", [printing.PrettyPrinter, printing.LatexPrinter,
                                     printing.LanguagePrinter], ids=lambda p: p.__name__)
def test_templates_print_each_operand_once(printer):
    """A template using both `{x}` and `{x_atom}` (or `{a}` and `{a_postfix}`) must not print its
    operand twice: nested 24 deep, that would be 2²⁴ prints."""
    node: ir.Node = ir.Var("A", ("n", "n"))
    for k in range(24):
        node = ir.apply("sqrt", node) if k % 2 else ir.inv(node)
    calls = 0

    class Counting(printer):
        def p(self, n: ir.Node) -> tuple[str, int]:
            nonlocal calls
            calls += 1
            return super().p(n)

    Counting()(node)
    assert calls <= 2 * 25
