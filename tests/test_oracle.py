"""The high-precision oracle: the forward differentiated numerically at 60 digits, independent of
the derivation. A wrong form must fail it (a factor 1.001, a transpose, a dropped term) with no
help from the symbolic comparison; a right one passes at three or more size assignments."""

from __future__ import annotations

import mpmath
import pytest
import sympy as sp

from derivkit import api
from derivkit.derivation import elementwise
from derivkit.derivation.crosscheck import IndexForm, size_assignments
from derivkit.derivation.index import index_symbol
from derivkit.derivation.oracle import MP, Oracle
from derivkit.derivation.verify import Budget, index_check, matrix_check
from derivkit.lang import ir
from derivkit.lang.ops import ELEMENTWISE
from derivkit.lang.program import program

ATTENTION = ("sum((softmax(Q @ K.T / sqrt(d)) @ V) * G)", {"Q": "m,d", "K": "n,d", "V": "n,e", "G": "m,e"})


def _oracle(expr: str, shapes: dict[str, str], wrt: list[str]) -> tuple[Oracle, dict[str, ir.Var]]:
    r = api.recipe_from_expression(expr, wrt, shapes)
    prog = program(r)
    dims = sorted({d for i in r.inputs for d in i.shape if isinstance(d, str)})
    oracle = Oracle(prog.out, {i.name: (i.shape, i.domain) for i in r.inputs},
                    {p.name: p.default for p in r.params}, dict(prog.inlined), None,
                    size_assignments(dims))
    return oracle, {i.name: prog.scope.var(i.name) for i in r.inputs}


def _attention_dq(v: dict[str, ir.Var], *, drop: bool = False) -> ir.Node:
    """ΔS K/√d with ΔS = P ⊙ (G Vᵀ − (P ⊙ G Vᵀ)𝟙), written by hand."""
    sqrt_d = ir.apply("sqrt", ir.DimSize("d"))
    s = ir.div(ir.matmul(v["Q"], ir.transpose(v["K"])), sqrt_d)
    e = ir.apply("exp", s)
    p = ir.div(e, ir.sum_(e, 1, True))
    dp = ir.matmul(v["G"], ir.transpose(v["V"]))
    ds = ir.mul(p, dp if drop else ir.sub(dp, ir.sum_(ir.mul(p, dp), 1, True)))
    return ir.div(ir.matmul(ds, v["K"]), sqrt_d)


def _check(oracle: Oracle, wrt: str, form: ir.Node):
    return matrix_check(oracle, None, Budget(), "gradient", wrt, form, None)


def test_the_attention_gradient_agrees_at_every_size_assignment():
    oracle, v = _oracle(*ATTENTION, ["Q"])
    ver = _check(oracle, "Q", _attention_dq(v))
    assert ver.verified and ver.method == "oracle" and len(ver.sizes) >= 3
    assert "verified numerically at (d, e, m, n) = (2, 3, 4, 5)" in ver.detail


@pytest.mark.parametrize("mutation", ["factor", "dropped-term", "transpose"])
def test_a_wrong_form_fails_the_oracle_alone(mutation):
    oracle, v = _oracle(*ATTENTION, ["Q", "K"])
    if mutation == "factor":
        ver = _check(oracle, "Q", ir.mul(_attention_dq(v), ir.const(1.001)))
    elif mutation == "dropped-term":
        ver = _check(oracle, "Q", _attention_dq(v, drop=True))
    else:   # ∂/∂K = ΔSᵀ Q/√d written as ΔS Q/√d needs m = n: refused by the shapes
        oracle, v = _oracle("trace(A @ X)", {"A": "n,n", "X": "n,n"}, ["X"])
        ver = _check(oracle, "X", v["A"])   # the right answer is Aᵀ
    assert not ver.verified
    assert ver.detail.startswith("NOT VERIFIED: disagrees with the forward differentiated numerically")


def test_a_one_part_in_a_trillion_error_is_caught():
    oracle, v = _oracle("sum(exp(x) * y)", {"x": "n", "y": "n"}, ["x"])
    good = ir.mul(ir.apply("exp", v["x"]), v["y"])
    assert _check(oracle, "x", good).verified
    assert not _check(oracle, "x", ir.mul(good, ir.const(1 + 1e-12))).verified


def test_index_forms_are_evaluated_by_walking_their_sums():
    """∂Σ(XW)/∂W_rs = Σ_i X_ir, and a wrong index (X_is) fails."""
    oracle, _ = _oracle("sum(X @ W)", {"X": "m,n", "W": "n,k"}, ["W"])
    i, r, s = (index_symbol(c) for c in "irs")
    m = sp.Symbol("m", positive=True, integer=True)
    x = sp.IndexedBase("X")
    right = IndexForm(sp.Sum(x[i, r], (i, 0, m - 1)), (), (r, s))
    wrong = IndexForm(sp.Sum(x[i, s], (i, 0, m - 1)), (), (r, s))
    budget = Budget(0.0)   # no symbolic comparison: the oracle decides alone
    assert index_check(oracle, None, budget, "W", right, None).verified
    assert not index_check(oracle, None, budget, "W", wrong, None).verified


def test_a_forward_singular_everywhere_is_reported_not_verified():
    d = api.derive_expression("trace(inv(outer(x, x)))", ["x"], {"x": "n"})
    ver = d.derivatives[0].matrix.verification
    assert not ver.verified and "inverts a singular matrix" in ver.detail


def test_a_forward_real_only_for_positive_inputs_is_sampled_there_and_says_so():
    d = api.derive_expression("sum(x**(1/2))", ["x"], {"x": "n"})
    ver = d.derivatives[0].matrix.verification
    assert ver.verified and "inputs positive" in ver.detail


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_every_elementwise_definition_evaluates_numerically(name):
    """The op table's definitions, called with mpmath for `sympy`, agree with SymPy's own value."""
    fn = ELEMENTWISE[name]
    params = [mpmath.mpf(default) for _, default in fn.params]
    for t in ("0.7", "-0.45", "1.3"):
        if fn.domain == "positive" and t.startswith("-"):
            continue
        want = elementwise.definition(name, elementwise.T, tuple(
            elementwise.param_symbol(p) for p in fn.param_names)).subs(
            {elementwise.T: sp.Rational(t), **{elementwise.param_symbol(p): sp.Float(d, 40)
                                               for p, d in fn.params}}).evalf(40)
        with mpmath.workdps(40):
            got = fn.definition(MP, mpmath.mpf(t), *params)
            assert abs(got - mpmath.mpf(str(want))) < mpmath.mpf("1e-30"), (name, t)


def test_a_difference_too_coarse_at_60_digits_is_checked_again_finer():
    """L = Σ sin(x) + 1e25·n: at 60 digits the central difference keeps only ~1e-15 of its
    value, so the oracle checks again at 100 digits with a finer step (and says so); a wrong
    form still fails there."""
    oracle, v = _oracle("sum(sin(x) + 1e25)", {"x": "n"}, ["x"])
    good = ir.apply("cos", v["x"])
    ver = _check(oracle, "x", good)
    assert ver.verified and "at 100 digits" in ver.detail
    assert not _check(oracle, "x", ir.mul(good, ir.const(1 + 1e-12))).verified


def test_a_forward_too_large_to_resolve_is_not_verified_and_says_why():
    oracle, v = _oracle("sum(sin(x) + 1e60)", {"x": "n"}, ["x"])
    ver = _check(oracle, "x", ir.apply("cos", v["x"]))
    assert not ver.verified and "too large to differentiate" in ver.detail
