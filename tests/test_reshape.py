"""reshape between shapes of the same symbolic size: splitting heads (b×t×e -> b×t×h×d with a
recipe's [dims] e = "h*d"), its gradient against hand-written NumPy, and the input errors."""

from __future__ import annotations

import numpy as np
import pytest

from derivkit import api
from derivkit.cli.app import app
from derivkit.lowering import module

HEADS = """name = "heads"
summary = "split heads, attend within each"
output = "L"
wrt = ["X"]
[[steps]]
name = "Z"
expr = "transpose(reshape(X, (b, t, {h}, d)), (0, 2, 1, 3))"
[[steps]]
name = "L"
expr = "sum(W * tanh(Z @ Z.mT))"
[inputs]
X = "b,t,e"
W = "{w}"
[dims]
e = "{h}*d"
"""


def _recipe_dir(tmp_path, h="h", w="b,h,t,t"):
    (tmp_path / "heads.toml").write_text(HEADS.format(h=h, w=w), encoding="utf-8")
    return [tmp_path]


def _reference(X, W, h):
    """∂/∂X of Σ W ⊙ tanh(Z Zᵀ), Z the heads of X, by hand: the head split undone on ΔZ."""
    b, t, e = X.shape
    Z = X.reshape(b, t, h, e // h).transpose(0, 2, 1, 3)
    S = np.einsum("bhtd,bhsd->bhts", Z, Z)
    dS = W * (1 - np.tanh(S) ** 2)
    dZ = np.einsum("bhts,bhsd->bhtd", dS, Z) + np.einsum("bhst,bhsd->bhtd", dS, Z)
    return dZ.transpose(0, 2, 1, 3).reshape(b, t, e)


@pytest.mark.parametrize("h, w", [("h", "b,h,t,t"), ("2", "b,2,t,t")])
def test_split_heads_gradient_matches_hand_written_numpy(tmp_path, h, w):
    dirs = _recipe_dir(tmp_path, h, w)
    d = api.derive_recipe("heads", recipe_dirs=dirs)
    (dv,) = d.derivatives
    assert dv.matrix.verification.verified
    assert all(c.form.verification.verified for c in d.chain)
    fns = module.load(api.lower_recipe("heads", recipe_dirs=dirs))
    rng = np.random.default_rng(3)
    heads = 2 if h == "2" else 3
    X, W = rng.standard_normal((2, 4, heads * 5)), rng.standard_normal((2, heads, 4, 4))
    want = _reference(X, W, heads)
    np.testing.assert_allclose(fns["grad_X"](X=X, W=W), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fns["backward"](X=X, W=W)[0], want, rtol=1e-12, atol=1e-12)


def test_sizes_of_a_declared_product_are_its_factors_product(tmp_path):
    d = api.derive_recipe("heads", recipe_dirs=_recipe_dir(tmp_path))
    sizes = d.derivatives[0].matrix.verification.sizes
    assert sizes and all(s["e"] == s["h"] * s["d"] for s in sizes)


def test_check_passes_and_a_wrong_reshape_gradient_is_caught(tmp_path):
    dirs = _recipe_dir(tmp_path)
    assert api.check_recipe("heads", recipe_dirs=dirs).passed
    dS = "(W * (1 - tanh(Z @ Z.mT)**2) + (W * (1 - tanh(Z @ Z.mT)**2)).mT)"
    right = f"reshape(transpose({dS} @ Z, (0, 2, 1, 3)), (b, t, e))"
    wrong = f"reshape({dS} @ Z, (b, t, e))"   # the head split undone without its transpose
    assert api.verify_recipe("heads", right, recipe_dirs=dirs).verdict == "verified"
    assert api.verify_recipe("heads", wrong, recipe_dirs=dirs).verdict == "refuted"


@pytest.mark.parametrize("args, words", [
    (["derive", "--expr", "sum(reshape(X, (k, n))) + sum(y)", "--wrt", "X", "--shape", "X=n,m",
      "--shape", "y=k"],
     "do not have the same size"),
    (["derive", "--expr", "sum(reshape(X, (2, 4)))", "--wrt", "X", "--shape", "X=3,3"],
     "do not have the same size"),
    (["derive", "--expr", "sum(reshape(X, m))", "--wrt", "X", "--shape", "X=m"],
     "must be a tuple"),
])
def test_bad_reshape_is_one_line_exit_2(runner, args, words):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_concrete_reshape_needs_no_declaration():
    d = api.derive_expression("sum(W * reshape(X, (2, 3)))", ["X"], {"X": "6", "W": "2,3"})
    assert d.derivatives[0].matrix.text == "reshape(W, (6,))"
    assert d.derivatives[0].matrix.verification.verified


@pytest.mark.parametrize("dims, words", [
    ('e = "hd"', "must be a product"),
    ('e = "h*e2"\ne2 = "a*b"', "is itself a product"),
    ('X = "h*d"', "already the name of a value"),
])
def test_bad_dims_table_is_a_recipe_error(tmp_path, runner, dims, words):
    text = HEADS.format(h="h", w="b,h,t,t").replace('e = "h*d"\n', dims + "\n")
    (tmp_path / "heads.toml").write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["derive", "heads", "--recipes", str(tmp_path)])
    assert result.exit_code == 2 and words in result.output, result.output


def test_factors_no_input_has_cannot_be_split(tmp_path, runner):
    _recipe_dir(tmp_path, "h", "b,q,t,t")
    result = runner.invoke(app, ["derive", "heads", "--recipes", str(tmp_path)])
    assert result.exit_code == 2 and "cannot be split at run time" in result.output


def test_size_of_a_product_is_set_by_its_factors(tmp_path, runner):
    _recipe_dir(tmp_path)
    result = runner.invoke(app, ["check", "heads", "--recipes", str(tmp_path), "--size", "e=6"])
    assert result.exit_code == 2 and "set by its factors" in result.output, result.output
