"""`derivkit verify`: claimed derivatives are verified or refuted with a counterexample.

Every refutation's numbers are recomputed here from the counterexample's input values with
hand-written NumPy formulas (independent of derivkit), so a counterexample cannot be invented.
The seed texts' mistakes (../shared/seeds/README.md) are tests, numbered as there.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derivkit import api
from derivkit.audit.claims import ClaimScope, is_index_claim, parse_index_claim
from derivkit.cli.app import app
from derivkit.errors import DerivkitError, ExpressionError

# No test here changes how derivkit derives: derivations are shared across the session (conftest).
pytestmark = pytest.mark.usefixtures("shared_derivations")


def verify(name, wrt, claim, **kw):
    return api.verify_recipe(name, claim, wrt=[wrt], **kw)


def softmax(z):
    e = np.exp(z - np.max(z))
    return e / e.sum()


# ---------------------------------------------------------------- the seed texts' mistakes
def test_seed_mistake_1_softmax_intermediate_line_is_refuted_at_i_equals_j():
    v = verify("softmax", "z", "p[i]*(1 - delta(i,j)) - p[i]*p[j]")
    assert v.verdict == "refuted" and v.method == "symbolic"
    ce = v.counterexample
    i, j = ce.entry
    assert i == j                                        # the line is wrong on the diagonal
    p = softmax(np.array(ce.values["z"]))
    assert ce.claimed == pytest.approx(-p[i] ** 2)       # what the line says at i = j
    assert ce.true == pytest.approx(p[i] - p[i] ** 2)    # the derivative p_i (1 − p_i)
    assert "g" not in ce.values                          # a Jacobian entry has no upstream
    assert sum(ce.sizes.values()) == 1                   # smallest size: already n = 1


def test_seed_mistake_1_the_correct_softmax_forms_are_verified():
    for claim in ("p[i]*(delta(i,j) - p[j])", "p[i]*delta(i,j) - p[i]*p[j]",
                  "diag(p) - outer(p, p)", "p * (g - sum(g * p))"):
        v = verify("softmax", "z", claim)
        assert v.verdict == "verified", (claim, v.reason)
        assert v.method == "symbolic" and v.numeric


def test_seed_mistake_2_dY_dW_equals_X_is_refuted_with_the_vjp_explanation():
    v = verify("linear", "W", "X")
    assert v.verdict == "refuted" and v.method == "shapes"
    assert "m×k×n×k" in v.reason                         # ∂Y/∂W is a 4-index tensor
    assert "Xᵀ G" in v.reason and "∂L/∂W" in v.reason    # what backprop needs
    assert "G = ∂L/∂Y" in v.reason
    assert verify("linear", "W", "X.T @ G").verified
    assert verify("linear", "X", "G @ W.T").verified     # the notes' ∂L/∂X = ∂L/∂Y Wᵀ
    assert verify("linear", "W", "X[i,r]*delta(j,s)").verified   # ∂Y_ij/∂W_rs = X_ir δ_js


def test_seed_mistake_3_dY_dW_has_four_indices_not_three():
    v = verify("linear", "W", "X[i,r]*delta(j,r)")       # a 3-index reading (m×n×k)
    assert v.verdict == "refuted" and v.method == "shapes"
    assert "3 free indices" in v.reason and "m×k×n×k" in v.reason


def test_seed_mistake_4_kink_conventions_are_stated_not_tested():
    # the notes' ReLU' (0 at 0) and the tutorial's leaky ReLU' (1 at 0) are conventions:
    # away from 0 both sides agree, so claims with either convention are verified ...
    for name, claim in (("relu", "where(x > 0, 1, 0)"), ("relu", "where(x >= 0, 1, 0)"),
                        ("leaky-relu", "where(x >= 0, 1, alpha)"),
                        ("leaky-relu", "where(x > 0, 1, alpha)")):
        v = verify(name, "x", claim)
        assert v.verdict == "verified", (name, claim, v.reason)
        assert any("by derivkit's convention" in n for n in v.notes)
    # ... and a claim that differs from derivkit's convention at the kink says so, without a
    # refutation
    v = verify("relu", "x", "where(x >= 0, 1, 0)")
    assert any("at x = 0 (the kink) the claim gives 1" in n and "gives 0" in n for n in v.notes)
    # the tutorial's typo dσ(y)/y read literally is undefined at the kink: stated
    v = verify("leaky-relu", "x", "leaky_relu(x, alpha) / x")
    assert any("undefined (nan)" in n for n in v.notes)


def test_a_leaky_relu_derivative_without_alpha_is_refuted_on_the_negative_side():
    v = verify("leaky-relu", "x", "where(x > 0, 1, 0)")
    assert v.verdict == "refuted"
    ce = v.counterexample
    k = ce.entry[0]
    x = np.array(ce.values["x"])
    assert x[k] < 0 and ce.claimed == 0 and ce.true == pytest.approx(0.01)


# ---------------------------------------------------------------- counterexamples are real
def test_vjp_counterexample_is_recomputed_from_its_values():
    v = verify("linear", "W", "2 * X.T @ G")             # a stray factor 2
    assert v.verdict == "refuted"
    ce = v.counterexample
    X, G = np.array(ce.values["X"]), np.array(ce.values["G"])
    assert X.shape == (ce.sizes["m"], ce.sizes["n"]) and G.shape == (ce.sizes["m"], ce.sizes["k"])
    assert ce.true == pytest.approx((X.T @ G)[ce.entry])
    assert ce.claimed == pytest.approx(2 * ce.true)
    assert all(s == 1 for s in ce.sizes.values())        # wrong already at 1×1×1


def test_smallest_failing_size_is_reported():
    # 2 (Y − T) is right when m·d = 1 (mean over one entry): the smallest failure has m·d = 2
    v = verify("mse", "Y", "2 * (Y - T)")
    ce = v.counterexample
    assert ce.sizes["m"] * ce.sizes["d"] == 2
    Y, T = np.array(ce.values["Y"]), np.array(ce.values["T"])
    assert ce.true == pytest.approx((2 * (Y - T) / Y.size)[ce.entry])
    assert ce.claimed == pytest.approx((2 * (Y - T))[ce.entry])


def test_elementwise_reading_of_a_non_diagonal_jacobian_is_refuted_off_the_diagonal():
    v = verify("softmax", "z", "p * (1 - p)")
    assert v.verdict == "refuted" and "element-wise" in v.reading
    i, j = v.counterexample.entry
    p = softmax(np.array(v.counterexample.values["z"]))
    assert i != j and v.counterexample.claimed == 0
    assert v.counterexample.true == pytest.approx(-p[i] * p[j])


def test_transposed_claim_is_refuted_with_the_shapes():
    v = verify("linear", "W", "G.T @ X")
    assert v.verdict == "refuted" and v.method == "shapes"
    assert "k×n" in v.reason and "n×k" in v.reason and "transposed" in v.reason


def test_index_claim_with_an_index_over_the_wrong_axis_is_refuted_with_sizes():
    v = verify("linear", "W", "X[r,i]*delta(j,s)")
    assert v.verdict == "refuted" and v.method == "shapes"
    assert "index i" in v.reason and "size m" in v.reason and "size n" in v.reason


@pytest.mark.parametrize("name, wrt, right, wrong", [
    ("linear", "b", "sum(G, axis=0)", "sum(G, axis=0) / m"),
    ("linear", "X", "G @ W.T", "-(G @ W.T)"),
    ("sigmoid", "x", "s * (1 - s)", "s * (1 + s)"),
    ("tanh", "x", "1 - t**2", "1 - t"),
    ("mse-half", "Y", None, None),
])
def test_right_claims_verify_and_mutations_are_refuted(name, wrt, right, wrong):
    if right is None:  # the derivation's own form is a right claim; scaling it makes it wrong
        d = api.derive_recipe(name, wrt=[wrt]).derivatives[0]
        right, wrong = d.matrix.text, f"1.5 * ({d.matrix.text})"
    assert verify(name, wrt, right).verified
    v = verify(name, wrt, wrong)
    assert v.verdict == "refuted" and v.counterexample is not None
    assert v.counterexample.claimed != pytest.approx(v.counterexample.true)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=st.sampled_from([-1, 2, 0.5, 3, -0.25]), which=st.sampled_from(["W", "X", "b"]))
def test_any_constant_factor_is_refuted_with_that_ratio(c, which):
    right = {"W": "X.T @ G", "X": "G @ W.T", "b": "sum(G, axis=0)"}[which]
    v = verify("linear", which, f"{c} * ({right})")
    ce = v.counterexample
    assert v.verdict == "refuted"
    assert ce.claimed == pytest.approx(c * ce.true)


def test_expression_claims():
    v = api.verify_expression("sum(x**2)", "2*x", ["x"], {"x": "n"})
    assert v.verified and "gradient" in v.reading
    v = api.verify_expression("sum(x**2)", "x", ["x"], {"x": "n"})
    assert v.verdict == "refuted"
    assert v.counterexample.true == pytest.approx(2 * np.array(v.counterexample.values["x"])[
        v.counterexample.entry])
    v = api.verify_expression("trace(A @ X)", "A.T", ["X"], {"A": "n,n", "X": "n,n"})
    assert v.verified
    v = api.verify_expression("trace(A @ X)", "A", ["X"], {"A": "n,n", "X": "n,n"})
    assert v.verdict == "refuted"   # square: the shapes fit, the values do not
    A = np.array(v.counterexample.values["A"])
    assert v.counterexample.true == pytest.approx(A.T[v.counterexample.entry])


def test_index_claim_with_a_sum():
    v = api.verify_expression("W @ x", "W[i,j]", ["x"], {"W": "m,n", "x": "n"})
    assert v.verified
    v = api.verify_expression("sum(W @ x)", "sum(W[k,j], k)", ["x"], {"W": "m,n", "x": "n"})
    assert v.verified
    v = api.verify_expression("sum(W @ x)", "sum(W[j,k], k)", ["x"], {"W": "n,n", "x": "n"})
    assert v.verdict == "refuted"


def test_composite_claims_are_checked_against_finite_differences():
    d = api.derive_recipe("mlp3", wrt=["W3"]).derivatives[0]
    v = verify("mlp3", "W3", d.matrix.text)
    assert v.verdict == "verified" and v.method == "finite-differences"
    assert "not compared symbolically" in v.reason
    v = verify("mlp3", "W3", f"2 * ({d.matrix.text})")
    assert v.verdict == "refuted" and v.counterexample is not None
    assert v.counterexample.claimed == pytest.approx(2 * v.counterexample.true, rel=1e-6)


def test_several_inputs_need_wrt():
    with pytest.raises(DerivkitError, match="wrt='X'") as raised:
        api.verify_recipe("linear", "X.T @ G")
    assert "--wrt X" in raised.value.one_line(cli=True)


# ---------------------------------------------------------------- the claim language
@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "().__class__.__bases__[0]", "p.__class__",
    "(lambda: 1)()", "[p for p in z]", "p[i].real", "open('x')", "p[i] if 1 else 0",
    "p[0]", "p[i:j]", "p[i,j]", "sum(p[i])", "delta(i)", "G[i]", "q[i]", "_p[i]",
    "p[i] @ z[j]", "p[i] and 1", "p[__i__]",
])
def test_bad_index_claims_are_expression_errors(text):
    scope = ClaimScope({"p": ("n",), "z": ("n",)}, excluded={"G": "upstream"})
    with pytest.raises(ExpressionError):
        parse_index_claim(text, scope)


def test_index_claim_parse():
    scope = ClaimScope({"X": ("m", "n"), "W": ("n", "k")}, params=("alpha",), dims=("m",))
    c = parse_index_claim("sum(X[i,q]*W[q,j], q) / m + alpha*δ(i,j)", scope)
    assert c.free == ("i", "j")
    assert {u.dim for u in c.uses["q"]} == {"n"}
    assert is_index_claim("p[i]") and is_index_claim("delta(i,j)") and not is_index_claim("X.T @ G")


# ---------------------------------------------------------------- CLI
def test_cli_exit_codes_and_output(runner):
    ok = runner.invoke(app, ["verify", "linear", "--wrt", "W", "--claim", "X.T @ G"])
    assert ok.exit_code == 0 and "VERIFIED" in ok.stdout
    bad = runner.invoke(app, ["verify", "softmax", "--claim", "p[i]*(1 - delta(i,j)) - p[i]*p[j]"])
    assert bad.exit_code == 1 and "REFUTED" in bad.stdout and "Counterexample" in bad.stdout
    for args in (["verify", "linear", "--wrt", "W", "--claim", "X.T @ H"],
                 ["verify", "linear", "--wrt", "W", "--claim", "X.T @"],
                 ["verify", "linear", "--wrt", "W", "--claim", "__import__('os')"],
                 ["verify", "linear", "--wrt", "W", "--claim", "G[i,j]*delta(j,s)"],
                 ["verify", "linear", "--wrt", "W"],
                 ["verify", "linear", "--claim", "X.T @ G"],
                 ["verify", "nosuch", "--claim", "x"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        assert r.stderr.startswith("derivkit: error:")


def test_cli_json(runner):
    r = runner.invoke(app, ["verify", "--expr", "sum(x**2)", "--wrt", "x", "--shape", "x=n",
                            "--claim", "x", "--json"])
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert data["verdict"] == "refuted" and data["verified"] is False
    ce = data["counterexample"]
    x = np.array(ce["values"]["x"])
    assert ce["true"] == pytest.approx(2 * x[tuple(ce["entry"])])
    assert "\x1b[" not in r.stdout


def test_cli_help_lists_verify(runner):
    r = runner.invoke(app, ["verify", "--help"])
    assert r.exit_code == 0 and "--claim" in r.stdout and "index" in r.stdout


# ---------------------------------------------------------------- found by review (regressions)
@pytest.mark.parametrize("name, claim", [
    ("relu", "where(x < -1.5, 1, where(x > 0, 1, 0))"),       # wrong for x < -1.5 only
    ("relu", "where(abs(x - 1) < 0.2, 5, where(x > 0, 1, 0))"),  # wrong on (0.8, 1.2) only
    ("tanh", "where(abs(x) < 2.5, 1 - t**2, 0)"),              # a clipped gradient
])
def test_claims_wrong_on_part_of_the_line_are_refuted(name, claim):
    v = verify(name, "x", claim)
    assert v.verdict == "refuted", v.reason
    ce = v.counterexample
    assert ce.claimed != pytest.approx(ce.true)                # a real witness, not a tie
    x = np.array(ce.values["x"])[ce.entry[0]]
    assert abs(x) > 1.4 or abs(x - 1) < 0.2


def test_claim_wrong_only_at_unusual_sizes_is_refuted():
    v = verify("softmax", "z", "diag(p) - outer(p, p) + (n-2)*(n-3)*(n-4)*outer(p, p)")
    assert v.verdict == "refuted"
    v = verify("softmax", "z", "p[i]*(delta(i,j) - p[j]) + (n-2)*(n-3)*(n-4)")
    assert v.verdict == "refuted"


def test_parameter_values_written_as_numbers_are_verified():
    v = api.verify_expression("sum(a*x)", "2", ["x"], {"x": "n"}, {"a": 2.0})
    assert v.verified and any("a = 2" in n for n in v.notes)
    assert verify("leaky-relu", "x", "where(x > 0, 1, 0.01)").verified
    v = verify("leaky-relu", "x", "where(x > 0, 1, 0.02)")
    assert v.verdict == "refuted" and v.counterexample.true == pytest.approx(0.01)


def test_jacobian_with_respect_to_a_scalar():
    assert api.verify_expression("x*y", "x", ["y"], {"x": "n", "y": "scalar"}).verified
    assert api.verify_expression("c*X", "X", ["c"], {"X": "m,n", "c": "scalar"}).verified
    assert api.verify_expression("c*X", "2*X", ["c"], {"X": "m,n", "c": "scalar"}).verdict == "refuted"
