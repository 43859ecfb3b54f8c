"""The cross-check must reject wrong formulas: mutated forms, wrong rules, wrong derivatives."""

from __future__ import annotations

from fractions import Fraction

import pytest
import sympy as sp

from derivkit import api
from derivkit.derivation import elementwise as functions
from derivkit.derivation import engine
from derivkit.derivation import vjp as vjp_mod
from derivkit.derivation.crosscheck import IndexForm, Problem, Verifier
from derivkit.derivation.index import index_symbol
from derivkit.lang import ir, recipes
from derivkit.lang.program import program
from derivkit.lowering import forms


def _verifier(name: str, wrt: str) -> tuple[Verifier, recipes.Recipe]:
    recipe = recipes.load(name)
    prog = program(recipe)
    scope, out = prog.scope, prog.out
    up = None if out.rank == 0 else ir.Var(recipe.upstream, out.shape, "upstream")
    problem = Problem(out, {i.name: (i.shape, i.domain) for i in recipe.inputs},
                      tuple(p.name for p in recipe.params), {recipe.output: out}, scope.var(wrt), up)
    return Verifier(problem), recipe


def _form(recipe, text):
    node, _, _ = forms.parse_form(recipe, text)
    # the upstream gradient parses as an input; make it the verifier's upstream variable
    out = program(recipe).out
    if out.rank:
        node = ir.substitute(node, {ir.Var(recipe.upstream, out.shape, "input"):
                                    ir.Var(recipe.upstream, out.shape, "upstream")})
    return node


@pytest.mark.parametrize("name,wrt,kind,good,bad", [
    # SymPy's silent softmax error: the −p⟨g, p⟩ term dropped
    ("softmax", "z", "vjp", "p * (g - sum(g * p))", "p * g"),
    ("softmax", "z", "jacobian", "diag(p) - outer(p, p)", "diag(p)"),
    # one factor off by 0.1 %
    ("linear", "W", "vjp", "X.T @ G", "X.T @ G * 1.001"),
    ("mse", "Y", "gradient", "2 * (Y - T) / (m * d)", "2 * (Y - T) / m"),       # missing 1/d
    ("mse-half", "Y", "gradient", "(Y - T) / m", "(T - Y) / m"),                 # sign flip
    ("sigmoid", "x", "vjp", "g * s * (1 - s)", "g * s"),
    ("relu", "x", "vjp", "g * where(x > 0, 1, 0)", "g * where(x < 0, 1, 0)"),
    ("leaky-relu", "x", "vjp", "g * where(x >= 0, 1, alpha)", "g * where(x >= 0, alpha, 1)"),
])
def test_verifier_accepts_the_right_form_and_rejects_a_mutant(name, wrt, kind, good, bad):
    verifier, recipe = _verifier(name, wrt)
    ok = verifier.check_matrix(kind, _form(recipe, good))
    assert ok.verified, ok.detail
    wrong = verifier.check_matrix(kind, _form(recipe, bad))
    assert not wrong.verified
    assert wrong.detail.startswith("NOT VERIFIED")


def test_transposed_form_is_caught_because_sizes_are_distinct_and_entries_symbolic():
    d = api.derive_expression("trace(A @ X)", ["X"], {"A": "n,n", "X": "n,n"})
    assert d.derivatives[0].matrix.text == "A.T"
    recipe = api.recipe_from_expression("trace(A @ X)", ["X"], {"A": "n,n", "X": "n,n"})
    prog = program(recipe)
    scope, out = prog.scope, prog.out
    verifier = Verifier(Problem(out, {"A": (("n", "n"), "real"), "X": (("n", "n"), "real")}, (),
                                {"f": out}, scope.var("X"), None))
    assert not verifier.check_matrix("gradient", scope.var("A")).verified  # A instead of Aᵀ


def test_the_notes_softmax_intermediate_line_is_rejected_as_an_index_form():
    verifier, _ = _verifier("softmax", "z")
    i, j = index_symbol("i"), index_symbol("j")
    p = sp.IndexedBase("p", real=True)
    d = sp.KroneckerDelta
    right = p[i] * (d(i, j) - p[j])
    wrong = p[i] * (1 - d(i, j)) - p[i] * p[j]  # matrix-derivatives-notes.md, seed mistake 1
    assert verifier.check_index(IndexForm(right, (i,), (j,))).verified
    res = verifier.check_index(IndexForm(wrong, (i,), (j,)))
    assert not res.verified and "index [0, 0]" in res.detail


def test_a_wrong_matmul_rule_is_caught_end_to_end(monkeypatch):
    """Inject a VJP rule off by 0.1 % (autograd's test_tests idea): the derivation must not be
    reported as verified, and the CLI must say so."""
    good = vjp_mod.RULES[ir.MatMul]

    def off_by_a_little(n, g):
        return [(child, ir.mul(ir.const(Fraction(1001, 1000)), c)) for child, c in good(n, g)]

    monkeypatch.setitem(vjp_mod.RULES, ir.MatMul, off_by_a_little)
    d = api.derive_recipe("linear")
    by_wrt = {dv.wrt: dv for dv in d.derivatives}
    assert not by_wrt["W"].verified and not by_wrt["X"].verified
    assert by_wrt["b"].verified  # the bias does not go through the matmul
    assert "NOT VERIFIED" in by_wrt["W"].matrix.verification.detail
    assert not d.verified


def test_a_wrong_elementwise_derivative_is_caught(monkeypatch):
    real = functions.derivative

    def wrong(fn):
        rule = real(fn)
        if fn == "sigmoid":  # claim sigmoid' = s (drops the (1 − s))
            return functions.DerivativeRule(fn, functions.S, True, rule.params)
        return rule

    monkeypatch.setattr(functions, "derivative", wrong)
    d = api.derive_recipe("sigmoid")
    assert not d.verified
    assert all(not dv.verified for dv in d.derivatives)


def test_a_wrong_jacobian_simplification_is_caught(monkeypatch):
    """If the simplifier dropped softmax's second term (SymPy's bug), the check must notice."""
    real = engine.Simplifier.__call__

    def drops_a_term(self, node):
        out = real(self, node)
        if isinstance(out, ir.Binary) and out.op == "-" and isinstance(out.a, ir.Diag):
            return out.a  # diag(p) − p pᵀ  ->  diag(p)
        return out

    monkeypatch.setattr(engine.Simplifier, "__call__", drops_a_term)
    jac = next(dv for dv in api.derive_recipe("softmax").derivatives if dv.kind == "jacobian")
    assert jac.matrix.text == "diag(p)"
    assert not jac.matrix.verification.verified


def test_piecewise_inside_a_sum_stays_inside():
    """SymPy's Sum folds a Piecewise that mentions the summation index out of the sum (and
    piecewise_fold ignores inner sums' bound indices): Σ_l B_kl·leaky(y_l) came back with l
    unbound. Found by the random-expression property test; index forms keep such
    conditions opaque (index.Where)."""
    d = api.derive_expression("sum((B @ leaky_relu(y)) * ((A @ x) + (B @ y)))", ["x"],
                              {"A": "n,n", "B": "n,n", "x": "n", "y": "n"})
    (dv,) = d.derivatives
    assert dv.index.verification.verified and "where(y[l] >= 0" in dv.index.text
    v = api.verify_expression("sum(W @ relu(x))", "sum(W[k,j]*where(x[j] > 0, 1, 0), k)", ["x"],
                              {"W": "m,n", "x": "n"})
    assert v.verified
    v = api.verify_expression("sum(W @ relu(x))", "sum(W[k,j]*where(x[k] > 0, 1, 0), k)", ["x"],
                              {"W": "n,n", "x": "n"})
    assert v.verdict == "refuted"


def test_an_index_form_that_is_a_bare_dimension_is_verified():
    """∂Σ(XW + b)/∂b_i = m: substituting m = 3 used to give a Python int (crash)."""
    d = api.derive_expression("sum(X @ W + b)", ["b"], {"X": "m,n", "W": "n,k", "b": "k"})
    assert d.derivatives[0].index.text == "m" and d.verified
