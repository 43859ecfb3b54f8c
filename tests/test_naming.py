"""A plain forward becomes a program of the values a person names (S, P, H, U, A), its backward
program is shown line by line, and forms use those names (listed as `intermediates`)."""

from __future__ import annotations

import numpy as np
import pytest

from derivkit import api
from derivkit.lang import ir
from derivkit.lang.parse import Scope
from derivkit.lang.program import length, program
from derivkit.lowering import module

ATTENTION = ("sum((softmax(Q @ K.T / sqrt(d)) @ V) * G)", {"Q": "m,d", "K": "n,d", "V": "n,e", "G": "m,e"})


_DERIVED: dict[tuple[str, tuple[str, ...]], tuple] = {}


def _derive_and_lower(expr: str, wrt: list[str], shapes: dict[str, str]):
    """(derivation, lowered module) of `expr`, once per module (with the budgets users get: no
    symbolic label is compared here)."""
    from conftest import user_budgets

    from derivkit.derivation.engine import derive
    from derivkit.lowering.module import lower

    key = (expr, tuple(wrt))
    if key not in _DERIVED:
        with user_budgets():
            recipe = api.recipe_from_expression(expr, wrt, shapes)
            d = derive(recipe)
            _DERIVED[key] = (d, lower(recipe, d))
    return _DERIVED[key]


def _names(expr: str, shapes: dict[str, str]) -> dict[str, str]:
    from derivkit.lang.printing import language

    r = api.recipe_from_expression(expr, [next(iter(shapes))], shapes)
    return {k: language(v) for k, v in program(r).definitions.items()}


def test_attention_is_named_as_in_the_flashattention_paper():
    assert _names(*ATTENTION) == {"S": "Q @ K.T / sqrt(d)", "P": "softmax(S)", "f": "sum(P @ V * G)"}


def test_stacked_layers_chains_and_shared_values_get_names():
    assert list(_names("sum(tanh(tanh(X @ W1) @ W2))", {"X": "m,n", "W1": "n,a", "W2": "a,b"})) == [
        "H", "H2", "f"]
    assert list(_names("sum(X @ W1 @ W2 @ W3)", {"X": "m,a", "W1": "a,b", "W2": "b,c", "W3": "c,d"})) == [
        "A", "A2", "f"]
    assert _names("sum((x - mean(x)) * (x - mean(x)))", {"x": "n"}) == {
        "U": "x - mean(x)", "f": "sum(U * U)"}


def test_a_function_of_an_input_alone_stays_inline():
    assert list(_names("sum(exp(x) * y)", {"x": "n", "y": "n"})) == ["f"]
    assert list(_names("sum(X @ W + b)", {"X": "m,n", "W": "n,k", "b": "k"})) == ["f"]


def test_names_clash_with_nothing_declared():
    names = _names("sum(softmax(P @ H) * S)", {"P": "m,n", "H": "n,k", "S": "m,k"})
    assert list(names) == ["S2", "P2", "f"] and names["P2"] == "softmax(S2)"


def test_the_backward_program_of_attention_is_the_textbook_one():
    d, _ = _derive_and_lower(ATTENTION[0], ["Q", "K", "V"], ATTENTION[1])
    lines = {c.name: c.name_text for c in d.chain}
    assert lines == {"dP": "G @ V.T", "dS": "P * (dP - sum(P * dP, axis=1, keepdims=True))",
                     "dQ": "dS @ K / sqrt(d)", "dK": "dS.T @ Q / sqrt(d)", "dV": "P.T @ G"}
    assert all(c.form.verification.verified for c in d.chain) and d.verified
    assert dict(d.intermediates) == {"S": "Q @ K.T / sqrt(d)", "P": "softmax(S)"}


def _length(text: str, shapes: dict[str, str], intermediates: dict[str, str]) -> int:
    return length(text, Scope({n: tuple(s.split(",")) for n, s in shapes.items()}, {}), intermediates)


@pytest.mark.parametrize("expr, shapes, wrt, textbook", [
    ("-sum(T * log(softmax(Z)))", {"T": "m,n", "Z": "m,n"}, "Z",
     "softmax(Z) * sum(T, axis=1, keepdims=True) - T"),
    (*ATTENTION, "V", "softmax(Q @ K.T / sqrt(d)).T @ G"),
    (*ATTENTION, "K", "(softmax(Q @ K.T / sqrt(d)) * (G @ V.T - sum(softmax(Q @ K.T / sqrt(d)) * (G @ V.T), "
                      "axis=1, keepdims=True))).T @ Q / sqrt(d)"),
    (*ATTENTION, "Q", "(softmax(Q @ K.T / sqrt(d)) * (G @ V.T - sum(softmax(Q @ K.T / sqrt(d)) * (G @ V.T), "
                      "axis=1, keepdims=True))) @ K / sqrt(d)"),
])
def test_printed_forms_are_no_longer_than_the_textbook_and_equal_to_numpy(expr, shapes, wrt, textbook):
    every = ["Q", "K", "V"] if "Q" in shapes else [wrt]
    d, lowered = _derive_and_lower(expr, every, shapes)
    (dv,) = [dv for dv in d.derivatives if dv.wrt == wrt]
    inter = dict(d.intermediates)
    assert _length(dv.matrix.text, shapes, inter) <= _length(textbook, shapes, {})
    # the lowered form against hand-written NumPy
    rng = np.random.default_rng(0)
    sizes = {"m": 3, "n": 4, "d": 2, "e": 5}
    vals = {k: rng.normal(size=tuple(sizes[c] for c in s.split(","))) for k, s in shapes.items()}
    got = module.load(lowered)[f"grad_{wrt}"](**vals)

    def softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    if "T" in vals:
        want = softmax(vals["Z"]) * vals["T"].sum(axis=1, keepdims=True) - vals["T"]
    else:
        Q, K, V, G = (vals[k] for k in "QKVG")
        P = softmax(Q @ K.T / np.sqrt(2))
        dP = G @ V.T
        dS = P * (dP - (P * dP).sum(axis=1, keepdims=True))
        want = {"Q": dS @ K / np.sqrt(2), "K": dS.T @ Q / np.sqrt(2), "V": P.T @ G}[wrt]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_lower_writes_the_backward_program_reusing_the_forward_values():
    """`backward` is the verified program line by line: softmax evaluated once (in the forward),
    G Vᵀ once, and all three gradients equal hand-written NumPy."""
    import ast

    _, lowered = _derive_and_lower(ATTENTION[0], ["Q", "K", "V"], ATTENTION[1])
    fn = next(f for f in ast.parse(lowered.source).body
              if isinstance(f, ast.FunctionDef) and f.name == "backward")
    assigned = [ast.unparse(s.targets[0]) for s in fn.body if isinstance(s, ast.Assign)]
    assert assigned == ["d", "S", "P", "dP", "dS", "dQ", "dK", "dV"]
    body = ast.unparse(fn)
    assert body.count("_softmax(") == 1 and body.count("G @ V.T") == 1
    rng = np.random.default_rng(3)
    vals = {k: rng.normal(size=s) for k, s in {"Q": (4, 2), "K": (5, 2), "V": (5, 3), "G": (4, 3)}.items()}
    Q, K, V, G = (vals[k] for k in "QKVG")
    S = Q @ K.T / np.sqrt(2)
    P = np.exp(S - S.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    dP = G @ V.T
    dS = P * (dP - (P * dP).sum(axis=1, keepdims=True))
    got = module.load(lowered)["backward"](**vals)
    for g, want in zip(got, [dS @ K / np.sqrt(2), dS.T @ Q / np.sqrt(2), P.T @ G]):
        np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-14)


def test_lower_does_not_write_a_backward_program_with_an_unverified_line():
    """One line not verified (ΔS here): `backward` is not written, and `program_lines` refuses
    naming the line; the closed forms, verified on their own, still are."""
    from dataclasses import replace

    from derivkit.errors import DerivkitError
    from derivkit.lowering.backward import program_lines
    from derivkit.lowering.module import lower
    from derivkit.results import Verification

    d, _ = _derive_and_lower(ATTENTION[0], ["Q", "K", "V"], ATTENTION[1])
    bad = Verification(False, "oracle", (), "NOT VERIFIED: disagrees with the oracle")
    chain = tuple(replace(c, form=replace(c.form, verification=bad)) if c.lhs == "ΔS" else c
                  for c in d.chain)
    broken = replace(d, chain=chain)
    recipe = api.recipe_from_expression(ATTENTION[0], ["Q", "K", "V"], ATTENTION[1])
    with pytest.raises(DerivkitError, match=r"ΔS = .* is NOT VERIFIED"):
        program_lines(recipe, broken)
    lowered = lower(recipe, broken)
    assert "backward" not in lowered.functions and "def backward" not in lowered.source
    assert "grad_Q" in lowered.functions


def test_a_softmax_summed_over_its_axis_is_one():
    d = api.derive_expression("sum(softmax(x))", ["x"], {"x": "n"})
    assert any("zero everywhere" in w for w in d.warnings)


def test_a_line_naming_a_value_of_its_own_step_is_verified():
    """Layer norm: ΔU = (g + ΔH·U/n)/H uses H = √(mean(U²) + ε) both as an operand (held
    constant) and as the step it differentiates."""
    d = api.derive_expression("sum(((x - mean(x)) / sqrt(mean((x - mean(x))**2) + eps)) * g)", ["x"],
                              {"x": "n", "g": "n"}, params={"eps": 1e-5})
    assert [c.lhs for c in d.chain] == ["ΔH", "ΔU", "∂f/∂x"]
    assert all(c.form.verification.verified for c in d.chain), [c.form.verification for c in d.chain]


def _mutated(monkeypatch, node_type, mutate):
    from derivkit.derivation import vjp as vjp_mod

    good = vjp_mod.RULES[node_type]
    monkeypatch.setitem(vjp_mod.RULES, node_type, lambda n, g: mutate(n, g, good(n, g)))


@pytest.mark.parametrize("mutation", ["factor", "dropped-term"])
def test_a_wrong_local_rule_names_the_failing_backward_line(monkeypatch, mutation):
    """A MatMul rule off by 0.1 % makes ΔP = G Vᵀ wrong; a quotient rule that drops the
    denominator's term gives the classic softmax mistake ΔS = P ⊙ ΔP. Either way derive says
    which line is NOT VERIFIED, and check fails."""
    from fractions import Fraction

    if mutation == "factor":
        _mutated(monkeypatch, ir.MatMul, lambda n, g, cts: [
            (c, ir.mul(ir.const(Fraction(1001, 1000)), t)) for c, t in cts])
        bad = "ΔP"
    else:
        _mutated(monkeypatch, ir.Binary, lambda n, g, cts: cts[:1] if n.op == "/" else cts)
        bad = "ΔS"
    from conftest import user_budgets

    with user_budgets():
        d = api.derive_expression(ATTENTION[0], ["Q", "K", "V"], ATTENTION[1])
    lines = {c.lhs: c.form.verification for c in d.chain}
    assert not lines[bad].verified and "NOT VERIFIED" in lines[bad].detail
    assert not d.verified
    with user_budgets():
        result = api.check_expression(ATTENTION[0], ["Q"], ATTENTION[1])
    assert not result.passed
