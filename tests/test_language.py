"""The restricted parser: valid expressions parse (and print back), everything else is an
ExpressionError naming the problem, and nothing in the text is ever executed."""

from __future__ import annotations

import builtins
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derivkit import api
from derivkit.errors import DerivkitError, ExpressionError
from derivkit.lang import ir, printing
from derivkit.lang.parse import Scope, parse

SCOPE = Scope({"x": ("n",), "y": ("n",), "A": ("n", "n"), "X": ("m", "n"), "W": ("n", "k")},
              {"c": 0.5})

vec = st.recursive(
    st.sampled_from(["x", "y"]),
    lambda inner: st.one_of(
        st.builds(lambda a, b, op: f"({a} {op} {b})", inner, inner, st.sampled_from(["+", "-", "*"])),
        st.builds(lambda f, a: f"{f}({a})", st.sampled_from(
            ["exp", "tanh", "sigmoid", "relu", "softmax", "leaky_relu"]), inner),
        st.builds(lambda a: f"(A @ {a})", inner),
        st.builds(lambda a: f"(A.T @ {a})", inner),
        st.builds(lambda a: f"(c * {a})", inner),
        st.builds(lambda a, k: f"({a} ** {k})", inner, st.sampled_from(["2", "3"]))),
    max_leaves=12)
scalar = st.one_of(st.builds(lambda a: f"sum({a})", vec),
                   st.builds(lambda a, b: f"({a}) @ ({b})", vec, vec),
                   st.builds(lambda a: f"mean({a})", vec))


@settings(max_examples=150, deadline=None)
@given(vec)
def test_random_valid_vector_expressions_parse_and_round_trip(text):
    node = parse(text, SCOPE)
    assert node.shape == ("n",)
    printed = printing.language(node)
    again = parse(printed, SCOPE)
    assert printing.language(again) == printed


@settings(max_examples=100, deadline=None)
@given(scalar)
def test_random_valid_scalar_expressions_parse(text):
    assert parse(text, SCOPE).shape == ()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_junk_is_rejected_cleanly(text):
    try:
        parse(text, SCOPE)
    except DerivkitError as exc:
        assert "\n" not in exc.one_line()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="xyAWc()@*+-/.T_ 0123456789,=[]:'\"lambda", max_size=40))
def test_near_miss_junk_is_rejected_cleanly(text):
    try:
        parse(text, SCOPE)
    except DerivkitError as exc:
        assert exc.one_line()


ATTACKS = [
    "__import__('os').system('touch /tmp/derivkit_pwned')",
    "().__class__.__bases__[0].__subclasses__()",
    "x.__class__",
    "exp.__globals__",
    "(lambda: 1)()",
    "[c for c in x]",
    "eval('1')",
    "exec('import os')",
    "open('/etc/passwd')",
    "x if x else y",
    "f'{x}'",
    "x[0:2]",
    "x[::-1]",
    "(x := y)",
    "sum(*x)",
    "sum(**x)",
    "getattr(x, 'T')",
    "x.T.T.real",
    "1j * x",
    "'abc'",
    "None",
    "True + x",
    "x and y",
    "not x",
    "x // y",
    "x % y",
    "x << 1",
    "~x",
    "x == y",
    "softmax(x, axis=y)",
    "sum(x, axis=5)",
    "leaky_relu(x, alpha=x)",
    "ones(x)",
    "eye(-1)",
]


@pytest.mark.parametrize("text", ATTACKS)
def test_attack_strings_are_input_errors_and_run_nothing(text, monkeypatch):
    called = []
    real_import = builtins.__import__

    def spy(name, *args, **kwargs):
        if name in ("os", "subprocess"):
            called.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", spy)
    with pytest.raises(DerivkitError) as info:
        parse(text, SCOPE)
    assert info.value.one_line()
    assert not called
    assert not os.path.exists("/tmp/derivkit_pwned")


def test_errors_name_the_token_and_column():
    with pytest.raises(ExpressionError, match=r"unknown function 'foo' at column 5"):
        parse("x + foo(x)", SCOPE)
    with pytest.raises(ExpressionError, match=r"unknown name 'q'"):
        parse("x * q", SCOPE)
    with pytest.raises(ExpressionError, match=r"\.shape"):
        parse("x.shape", SCOPE)


def test_shape_mismatch_says_both_shapes():
    with pytest.raises(ExpressionError, match=r"m×n @ m×n \(n ≠ m\)"):
        parse("X @ X", SCOPE)
    with pytest.raises(ExpressionError, match="shapes do not fit for '\\+'"):
        parse("X + W", SCOPE)


def test_limits():
    with pytest.raises(ExpressionError, match="nests deeper"):
        parse("(" * 200 + "x" + ")" * 200, SCOPE)
    with pytest.raises(ExpressionError, match="characters long"):
        parse("x + " * 10_000 + "x", SCOPE)


def test_dimension_names_are_numbers():
    node = parse("sum(x) / n", SCOPE)
    assert any(isinstance(k, ir.DimSize) and k.name == "n" for k in ir.walk(node))
    assert parse("eye(n) @ x", SCOPE).shape == ("n",)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.builds(lambda a: f"sum({a})", st.deferred(lambda: small_vec)),
    st.builds(lambda a, b: f"({a}) @ ({b})", st.deferred(lambda: small_vec), st.deferred(lambda: small_vec)),
))
def test_random_expressions_derive_to_verified_forms(text):
    """Property: for any expression the generator builds, derivkit's derived gradient agrees
    with the element-wise derivation (or derivkit says it could not verify it; it never
    reports a disagreement as verified)."""
    d = api.derive_expression(text, ["x"], {"x": "n", "y": "n", "A": "n,n"})
    for dv in d.derivatives:
        assert dv.matrix is not None
        assert dv.matrix.verification.verified, (text, dv.matrix.text, dv.matrix.verification.detail)
        assert dv.index.verification.verified, (text, dv.index.text, dv.index.verification.detail)


small_vec = st.recursive(
    st.sampled_from(["x", "y"]),
    lambda inner: st.one_of(
        st.builds(lambda a, b, op: f"({a} {op} {b})", inner, inner, st.sampled_from(["+", "-", "*"])),
        st.builds(lambda f, a: f"{f}({a})", st.sampled_from(["exp", "tanh", "sigmoid", "softmax"]), inner),
        st.builds(lambda a: f"(A @ {a})", inner)),
    max_leaves=3)
