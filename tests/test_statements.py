"""Named steps in an expression: `--expr "S = Q @ K.T / sqrt(d); P = softmax(S); sum(P * G)"`
is a composite recipe whose steps keep the user's names (issue 12, item 1: the first step)."""

from __future__ import annotations

import numpy as np
import pytest

from derivkit import api
from derivkit.cli import app
from derivkit.errors import DerivkitError, ExpressionError
from derivkit.lang.parse import split_statements

ATTENTION = "S = Q @ K.T / sqrt(d); P = softmax(S); sum((P @ V) * G)"
SHAPES = {"Q": "t,d", "K": "t,d", "V": "t,d", "G": "t,d"}


def test_split_statements():
    assert split_statements("sum(x)") == ([], "sum(x)")
    assert split_statements(ATTENTION) == (
        [("S", "Q @ K.T / sqrt(d)"), ("P", "softmax(S)")], "sum((P @ V) * G)")
    assert split_statements("H = tanh(x);sum(H);") == ([("H", "tanh(x)")], "sum(H)")
    assert split_statements("A = where(x >= 0, x, 0); sum(A)")[0] == [("A", "where(x >= 0, x, 0)")]


@pytest.mark.parametrize("text, words", [
    ("H = tanh(x)", "no output"),
    ("H = tanh(x); I = H", "must be the output's expression"),
    ("H = tanh(x); sum(H); I = H", "not an assignment"),
    ("tanh(x); sum(x)", "not an assignment"),
    ("H = x;; sum(H)", "empty statement"),
    ("x == 1; sum(x)", "not an assignment"),
])
def test_malformed_statements_are_expression_errors(text, words):
    if words == "no output":   # a lone assignment has no ';': it is one (bad) expression
        with pytest.raises(DerivkitError):
            api.derive_expression(text, ["x"], {"x": "n"})
        return
    with pytest.raises(ExpressionError, match=words):
        split_statements(text)


def test_named_steps_become_a_composite_with_the_users_names():
    recipe = api.recipe_from_expression(ATTENTION, ["Q", "V"], SHAPES)
    assert [name for name, _ in recipe.steps] == ["S", "P", "f"]
    assert recipe.output == "f"


def test_the_backward_pass_keeps_the_users_names_and_every_line_is_verified():
    derivation = api.derive_expression("H = tanh(X @ W); sum(H * T)", ["W"],
                                       {"X": "m,n", "W": "n,k", "T": "m,k"})
    lines = {c.lhs: c for c in derivation.chain}
    assert set(lines) == {"ΔH", "∂f/∂W"}
    assert lines["ΔH"].form.text == "T"
    assert all(c.form.verification.verified for c in derivation.chain)
    (dv,) = derivation.derivatives
    assert dv.matrix is not None and dv.matrix.verification.verified


def test_named_steps_check_against_finite_differences_and_a_hand_written_gradient():
    shapes = {"X": "m,n", "W": "n,k", "T": "m,k"}
    tc = api.check_expression("H = tanh(X @ W); sum(H * T)", ["W"], shapes, sizes={"m": 5, "n": 3, "k": 4})
    assert tc.passed
    # the derived form, lowered, against NumPy written by hand: Xᵀ (T ⊙ (1 − H²))
    from derivkit.lowering.forms import form_function

    recipe = api.recipe_from_expression("H = tanh(X @ W); sum(H * T)", ["W"], shapes)
    (dv,) = api.derive_expression("H = tanh(X @ W); sum(H * T)", ["W"], shapes).derivatives
    rng = np.random.default_rng(0)
    X, W, T = rng.standard_normal((5, 3)), rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    H = np.tanh(X @ W)
    np.testing.assert_allclose(form_function(recipe, dv.matrix.text)(X=X, W=W, T=T),
                               X.T @ (T * (1 - H**2)), rtol=1e-12)


def test_a_step_passed_straight_to_log_samples_its_input_positive():
    recipe = api.recipe_from_expression("L = log(x); sum(L)", ["x"], {"x": "n"})
    assert recipe.input("x").domain == "positive"


def test_the_output_name_avoids_the_users_names():
    recipe = api.recipe_from_expression("f = x * x; sum(f)", ["x"], {"x": "n"})
    assert recipe.steps[0][0] == "f" and recipe.output == "fout"


@pytest.mark.parametrize("expr, words", [
    ("_x = x; sum(_x)", "_x"),
    ("lambda = x; sum(x)", "lambda"),
    ("x = x * 2; sum(x)", "x"),                       # a step named like an input
    ("H = x; H = x; sum(H)", "twice"),
    ("H = sum(x; y); sum(H)", "parse"),
    ("H = __import__('os'); sum(x)", "unknown function '__import__'"),
])
def test_bad_steps_are_one_line_input_errors(runner, expr, words):
    result = runner.invoke(app, ["derive", "--expr", expr, "--wrt", "x", "--shape", "x=n",
                                 "--shape", "y=n"])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("derivkit: error: ")
    assert words in result.stderr and "Traceback" not in result.output


def test_attention_backward_lines_are_flashattentions_and_run_as_hand_written_numpy():
    """ΔP = G Vᵀ, ΔS = P ⊙ (ΔP − (P ⊙ ΔP)𝟙), ΔQ = ΔS K/√d, ΔK = ΔSᵀ Q/√d, ΔV = Pᵀ G, each line
    verified, and the lowered backward pass equals the same written by hand in NumPy."""
    from derivkit.derivation.chain import backward_chain
    from derivkit.lowering.backward import backward_function

    recipe = api.recipe_from_expression(ATTENTION, ["Q", "K", "V"], SHAPES)
    lines = {c.lhs: c for c in backward_chain(recipe)}
    assert {k: c.form.text for k, c in lines.items()} == {
        "ΔP": "G @ V.T",
        "ΔS": "P * (ΔP - sum(P * ΔP, axis=1, keepdims=True))",
        "∂f/∂Q": "ΔS @ K / sqrt(d)",
        "∂f/∂K": "ΔS.T @ Q / sqrt(d)",
        "∂f/∂V": "P.T @ G",
    }
    assert all(c.form.verification.verified for c in lines.values())

    rng = np.random.default_rng(3)
    t, d = 5, 3
    Q, K, V, G = (rng.standard_normal((t, d)) for _ in range(4))
    S = Q @ K.T / np.sqrt(d)
    P = np.exp(S - S.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    dP = G @ V.T
    dS = P * (dP - (P * dP).sum(axis=1, keepdims=True))
    got = backward_function(recipe)(Q=Q, K=K, V=V, G=G)
    np.testing.assert_allclose(got["∂f/∂Q"], dS @ K / np.sqrt(d), rtol=1e-12)
    np.testing.assert_allclose(got["∂f/∂K"], dS.T @ Q / np.sqrt(d), rtol=1e-12)
    np.testing.assert_allclose(got["∂f/∂V"], P.T @ G, rtol=1e-12)


def test_json_chain_lines_carry_ascii_names_that_parse_back(runner):
    import json

    from derivkit.lang.parse import Scope, parse
    from derivkit.lang.shapes import parse_shape

    result = runner.invoke(app, ["derive", "--expr", "dH = tanh(X @ W); sum(dH * T)", "--wrt", "W",
                                 "--shape", "X=m,n", "--shape", "W=n,k", "--shape", "T=m,k", "--json"])
    assert result.exit_code == 0, result.output
    chain = {c["lhs"]: c for c in json.loads(result.stdout)["chain"]}
    assert chain["ΔdH"]["name"] == "ddH" and chain["∂f/∂W"]["name"] == "dW"
    assert chain["∂f/∂W"]["text"].count("ΔdH") == 1
    text = chain["∂f/∂W"]["name_text"]
    assert "Δ" not in text and "ddH" in text
    shapes = {"X": "m,n", "W": "n,k", "T": "m,k", "dH": "m,k", "ddH": "m,k"}
    node = parse(text, Scope({k: parse_shape(v) for k, v in shapes.items()}, {}))
    assert node.shape == ("n", "k")


def test_ascii_names_avoid_the_recipes_names():
    from derivkit.derivation.chain import backward_chain

    recipe = api.recipe_from_expression("H = tanh(X @ W); dH = H * 2; sum(dH)", ["W"],
                                        {"X": "m,n", "W": "n,k"})
    names = {c.lhs: c.name for c in backward_chain(recipe)}
    assert names["ΔH"] == "dH2" and names["ΔdH"] == "ddH" and names["∂f/∂W"] == "dW"
