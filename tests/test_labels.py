"""Integer inputs (class labels) and NumPy's integer indexing (issue 13): `--shape y=m:int`,
`one_hot(y, k)`, `Z[arange(m), y]`, `z[i]` and `z[2]`; cross-entropy with class labels reads as
in NumPy and derives to the textbook (softmax(Z) − one_hot(y, k)) / m. Each gradient is compared
with hand-written NumPy at sampled labels; bad uses are one-line input errors."""

from __future__ import annotations

import numpy as np
import pytest

from derivkit import api
from derivkit.errors import DerivkitError
from derivkit.lang import recipes
from derivkit.lowering.forms import form_function
from derivkit.lowering.module import load


def _softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


CE = "-sum(log_softmax(Z)[arange(m), y]) / m"
CE_SHAPES = {"Z": "m,k", "y": "m:int"}


def test_cross_entropy_with_class_labels_is_the_textbook_form():
    d = api.derive_expression(CE, ["Z"], CE_SHAPES)
    (dv,) = d.derivatives
    assert dv.matrix.text == "(softmax(Z) - one_hot(y, k)) / m"
    assert dv.matrix.verification.verified
    rng = np.random.default_rng(0)
    Z, y = rng.normal(size=(5, 4)), np.array([0, 3, 1, 1, 2])
    grad = form_function(api.recipe_from_expression(CE, ["Z"], CE_SHAPES), dv.matrix.text)
    np.testing.assert_allclose(grad(Z=Z, y=y), (_softmax(Z) - np.eye(4)[y]) / 5, rtol=1e-13)
    module = load(api.lower_expression(CE, ["Z"], CE_SHAPES))
    want = -np.mean(np.log(_softmax(Z))[np.arange(5), y])
    np.testing.assert_allclose(module["forward"](Z=Z, y=y), want, rtol=1e-13)
    np.testing.assert_allclose(module["grad_Z"](Z=Z, y=y), (_softmax(Z) - np.eye(4)[y]) / 5,
                               rtol=1e-13)
    assert api.check_expression(CE, ["Z"], CE_SHAPES).passed


def test_a_wrong_claim_with_labels_is_refuted():
    verdict = api.verify_expression(CE, "(softmax(Z) - one_hot(y, k)) / (2 * m)", ["Z"], CE_SHAPES)
    assert verdict.verdict == "refuted", verdict


def test_a_constant_index_shifts_the_sizes_it_is_checked_at():
    """-log(softmax(z)[2]) needs n ≥ 3: verified and checked at sizes from 3 up; --size n=2 is
    an input error."""
    d = api.derive_expression("-log(softmax(z)[2])", ["z"], {"z": "n"})
    (dv,) = d.derivatives
    assert dv.matrix.verification.verified
    assert min(s["n"] for s in dv.matrix.verification.sizes) >= 3
    grad = form_function(api.recipe_from_expression("-log(softmax(z)[2])", ["z"], {"z": "n"}),
                         dv.matrix.text)
    z = np.array([0.3, -1.0, 2.0, 0.5])
    np.testing.assert_allclose(grad(z=z), _softmax(z) - np.eye(4)[2], rtol=1e-13)
    assert api.check_expression("-log(softmax(z)[2])", ["z"], {"z": "n"}).passed
    with pytest.raises(DerivkitError, match="n must be at least 3"):
        api.check_expression("-log(softmax(z)[2])", ["z"], {"z": "n"}, sizes={"n": 2})


def test_a_label_input_indexes_a_vector():
    shapes = {"z": "n", "i": "scalar:int"}
    d = api.derive_expression("-log(softmax(z)[i])", ["z"], shapes)
    grad = form_function(api.recipe_from_expression("-log(softmax(z)[i])", ["z"], shapes),
                         d.derivatives[0].matrix.text)
    z = np.array([0.3, -1.0, 2.0])
    np.testing.assert_allclose(grad(z=z, i=np.array(1)), _softmax(z) - np.eye(3)[1], rtol=1e-13)


def test_one_hot_by_name_and_in_a_recipe(tmp_path):
    (tmp_path / "ce-labels.toml").write_text(
        'name = "ce-labels"\nsummary = "softmax regression with class labels"\n'
        'forward = "-sum(log_softmax(X @ W)[arange(m), y]) / m"\noutput = "L"\n'
        '[inputs]\nX = "m,n"\nW = "n,k"\ny = "m:int"\n', encoding="utf-8")
    recipe = recipes.load("ce-labels", [tmp_path])
    assert recipe.wrt == ("X", "W")   # the labels are never differentiated
    d = api.derive_recipe("ce-labels", recipe_dirs=[tmp_path])
    by = {dv.wrt: dv.matrix for dv in d.derivatives}
    assert by["W"].text == "X.T @ (softmax(X @ W) - one_hot(y, k)) / m" and by["W"].verification.verified
    assert api.check_recipe("ce-labels", recipe_dirs=[tmp_path]).passed


@pytest.mark.parametrize("expr, wrt, says", [
    (CE, ["y"], "an integer input (class labels): it cannot be differentiated"),
    ("sum(y * Z)", ["Z"], "'y' is an integer input (class labels)"),
    ("sum(Z[y])", ["Z"], "is not an indexing derivkit knows"),
    ("sum(Z[arange(k), y])", ["Z"], "arange(m)"),
    ("sum(one_hot(Z, k))", ["Z"], "is not a label"),
    ("-log(softmax(z)[-1])", ["z"], "is not a label"),
])
def test_bad_uses_of_labels_are_one_line_input_errors(expr, wrt, says):
    shapes = {"Z": "m,k", "y": "m:int", "z": "n"}
    with pytest.raises(DerivkitError) as info:
        api.derive_expression(expr, wrt, shapes)
    assert says in info.value.one_line()


@pytest.mark.parametrize("expr, shapes, want", [
    ("-log(softmax(z)[2])", {"z": "n"}, "softmax(z) - one_hot(2, n)"),
    ("-sum(log(softmax(X @ W)[arange(m), y]))", {"X": "m,n", "W": "n,k", "y": "m:int"},
     "X.T @ (softmax(X @ W) - one_hot(y, k))"),
])
def test_log_of_a_softmax_is_differentiated_as_log_softmax(expr, shapes, want):
    """log∘softmax: the textbook softmax − one_hot, with no division by a softmax entry."""
    wrt = [n for n in shapes if n in ("z", "W")]
    d = api.derive_expression(expr, wrt, shapes)
    assert d.derivatives[0].matrix.text == want
    assert d.derivatives[0].matrix.verification.verified


@pytest.mark.parametrize("args, says", [
    (["derive", "--expr", CE, "--wrt", "y", "--shape", "Z=m,k", "--shape", "y=m:int"],
     "an integer input (class labels): it cannot be differentiated"),
    (["derive", "--expr", "sum(one_hot(1.5, n) * x)", "--wrt", "x", "--shape", "x=n"],
     "is not a label"),
    (["derive", "--expr", "sum(x, axis=3)", "--wrt", "x", "--shape", "x=n"], "out of range"),
    (["check", "--expr", "-log(softmax(z)[2])", "--wrt", "z", "--shape", "z=n", "--size", "n=2"],
     "n must be at least 3"),
])
def test_cli_bad_label_inputs_exit_2_with_one_line(runner, args, says):
    from derivkit.cli.app import app

    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr


def test_a_recipe_whose_loss_step_takes_labels_derives(tmp_path):
    """A backward line's own check must not evaluate one_hot of symbolic labels (it was an
    internal error): the line goes to the oracle, and a constant label's least size holds."""
    (tmp_path / "ce2.toml").write_text(
        'name = "ce2"\nsummary = "linear layer and cross-entropy with labels"\nwrt = ["W"]\n'
        '[[steps]]\nname = "Z"\nexpr = "X @ W"\n[[steps]]\nname = "L"\n'
        'expr = "-sum(log_softmax(Z)[arange(m), y]) / m"\n'
        '[inputs]\nX = "m,n"\nW = "n,k"\ny = "m:int"\n', encoding="utf-8")
    d = api.derive_recipe("ce2", recipe_dirs=[tmp_path])
    assert all(s.form.verification.verified for s in d.chain)
    d = api.derive_expression("log(softmax(z)[2])", ["z"], {"z": "n"})
    assert d.derivatives[0].matrix.verification.verified


def test_labels_given_to_two_sizes_lie_below_the_smaller():
    shapes = {"z": "n", "w": "p", "y": ":int"}
    assert api.check_expression("z[y] + w[y]", ["z"], shapes, sizes={"n": 2, "p": 9}).passed


@pytest.mark.parametrize("expr, shapes, says", [
    ("z[5]", {"z": "3"}, "label 5 is out of range for 3 entries"),
    ("sum(transpose(X, (0, 5)) @ X)", {"X": "n,n"}, "out of range for an array of rank 2"),
])
def test_out_of_range_labels_and_axes_are_input_errors(expr, shapes, says):
    with pytest.raises(DerivkitError) as info:
        api.derive_expression(expr, [next(iter(shapes))], shapes)
    assert says in info.value.one_line()
