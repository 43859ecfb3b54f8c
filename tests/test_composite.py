"""Composite recipes: [[steps]] of named intermediates, derived through the chain rule."""

from __future__ import annotations

import numpy as np
import pytest

from derivkit import api
from derivkit.checking import runner
from derivkit.errors import DerivkitError, RecipeError
from derivkit.lang import recipes

# No test here changes how derivkit derives: derivations (mlp3's and the two-layer recipe's) are
# shared across the session (conftest).
pytestmark = pytest.mark.usefixtures("shared_derivations")


def _write(tmp_path, body: str, name: str = "comp"):
    (tmp_path / f"{name}.toml").write_text(body, encoding="utf-8")
    return [tmp_path]


TWO_LAYER = '''name = "comp"
summary = "two tanh layers and a squared error"
wrt = ["W1", "W2"]
[[steps]]
name = "H"
expr = "tanh(X @ W1)"
[[steps]]
name = "Y"
expr = "H @ W2"
[[steps]]
name = "L"
expr = "sum((Y - T)**2) / 2"
[inputs]
X = "m,n"
W1 = "n,h"
W2 = "h,k"
T = "m,k"
'''


@pytest.fixture(scope="module")
def two_layer(tmp_path_factory):
    """The folder holding TWO_LAYER, one for the module: the same recipe (path included) in each
    test, so its derivation is shared."""
    return _write(tmp_path_factory.mktemp("two_layer"), TWO_LAYER)


@pytest.mark.xdist_group("two_layer")   # one worker derives it once
def test_a_users_composite_is_derived_in_terms_of_its_intermediates(two_layer):
    d = api.derive_recipe("comp", recipe_dirs=two_layer)
    forms = {dv.wrt: dv.matrix for dv in d.derivatives}
    assert forms["W2"].text == "H.T @ (Y - T)"
    assert "(1 - H**2)" in forms["W1"].text and "X.T" in forms["W1"].text
    assert all(f.verification.verified for f in forms.values())
    assert d.forward_pretty.splitlines()[0] == "H = tanh(X W1)"


@pytest.mark.xdist_group("two_layer")   # one worker derives it once
def test_composite_gradients_match_hand_written_backprop(two_layer):
    dirs = two_layer
    from derivkit.lowering import forms
    recipe = recipes.load("comp", dirs)
    d = api.derive_recipe("comp", recipe_dirs=dirs)
    rng = np.random.default_rng(0)
    X, W1, W2, T = (rng.standard_normal(s) for s in ((5, 3), (3, 4), (4, 2), (5, 2)))
    H = np.tanh(X @ W1)
    dY = H @ W2 - T
    want = {"W2": H.T @ dY, "W1": X.T @ ((dY @ W2.T) * (1 - H ** 2))}
    for dv in d.derivatives:
        got = forms.form_function(recipe, dv.matrix.text)(X=X, W1=W1, W2=W2, T=T)
        np.testing.assert_allclose(got, want[dv.wrt], rtol=1e-12)


@pytest.mark.xdist_group("two_layer")   # one worker derives it once
def test_a_wrong_intermediate_fails_check(two_layer):
    """Backprop that forgets tanh' at H (a wrong Δ_H) must fail the numerical check."""
    dirs = two_layer
    recipe = recipes.load("comp", dirs)

    def wrong_w1(X, W1, W2, T):
        H = np.tanh(X @ W1)
        return X.T @ ((H @ W2 - T) @ W2.T)  # missing ⊙ (1 − H²)

    tc = runner.check(recipe, mode="full", implementations={("gradient", "W1"): wrong_w1})
    by = {r.wrt: r.passed for r in tc.results}
    assert by == {"W1": False} and not tc.passed   # only the implemented gradient is checked
    assert runner.check(recipe, mode="full").passed   # derivkit's own W1 and W2 pass


def test_mlp3_uses_w3_before_its_update():
    """The tutorial's warning: Δ_A2 = Δ_Z3 W3 with the W3 of the forward pass. A gradient of
    W1 computed with an already-updated W3 is not the gradient, and check says so."""
    recipe = recipes.load("mlp3")

    def leaky(z):
        return np.where(z >= 0, z, 0.01 * z)

    def dleaky(z):
        return np.where(z >= 0, 1.0, 0.01)

    def grad_w1_with_updated_w3(X, T, W1, b1, W2, b2, W3, b3, alpha=0.01):
        Z1 = X @ W1.T + b1
        Z2 = leaky(Z1) @ W2.T + b2
        Z3 = leaky(Z2) @ W3.T + b3
        d3 = (leaky(Z3) - T) / X.shape[0] * dleaky(Z3)
        W3_new = W3 - 0.5 * d3.T @ leaky(Z2)          # updated before backpropagating
        d2 = (d3 @ W3_new) * dleaky(Z2)
        d1 = (d2 @ W2) * dleaky(Z1)
        return d1.T @ X

    tc = runner.check(recipe, mode="full", implementations={("gradient", "W1"): grad_w1_with_updated_w3})
    assert not [r for r in tc.results if r.wrt == "W1"][0].passed
    assert all(r.passed for r in tc.results if r.wrt != "W1")


@pytest.mark.parametrize("body,match", [
    ('name = "comp"\nsummary = "s"\nforward = "x"\n[[steps]]\nname = "y"\nexpr = "x"\n[inputs]\nx = "n"\n',
     "either 'forward' or"),
    ('name = "comp"\nsummary = "s"\n[[steps]]\nname = "y"\nexpr = "x"\n[[steps]]\nname = "y"\nexpr = "y"\n'
     '[inputs]\nx = "n"\n', "used twice"),
    ('name = "comp"\nsummary = "s"\n[[steps]]\nname = "x"\nexpr = "x"\n[inputs]\nx = "n"\n',
     "name of an input"),
    ('name = "comp"\nsummary = "s"\n[[steps]]\nname = "y"\n[inputs]\nx = "n"\n', "needs name"),
    ('name = "comp"\nsummary = "s"\noutput = "q"\n[[steps]]\nname = "y"\nexpr = "x"\n[inputs]\nx = "n"\n',
     "last step"),
])
def test_malformed_steps_are_named(tmp_path, body, match):
    with pytest.raises(RecipeError, match=match):
        recipes.load("comp", _write(tmp_path, body))


def test_a_step_using_a_later_name_is_an_input_error(tmp_path):
    body = ('name = "comp"\nsummary = "s"\n[[steps]]\nname = "y"\nexpr = "z * 2"\n[[steps]]\n'
            'name = "z"\nexpr = "sum(x)"\n[inputs]\nx = "n"\n')
    with pytest.raises(DerivkitError, match=r"step 'y': unknown name 'z'"):
        api.derive_recipe("comp", recipe_dirs=_write(tmp_path, body))


def test_mlp3_backward_chain_is_the_tutorials_with_shapes_and_every_line_verified():
    from derivkit.derivation import chain

    lines = {s.lhs: s for s in chain.backward_chain(recipes.load("mlp3"))}
    assert lines["ΔZ3"].form.text == "ΔYhat * where(Z3 >= 0, 1, alpha)"
    assert lines["ΔA2"].form.text == "ΔZ3 @ W3"             # W3ᵀ Δ_y in the tutorial's layout
    assert lines["∂L/∂W3"].form.text == "ΔZ3.T @ A2"
    assert lines["∂L/∂b3"].form.text == "sum(ΔZ3, axis=0)"
    assert (lines["ΔA2"].shape_text, lines["∂L/∂W1"].shape_text) == ("m×d2", "d1×d0")
    assert all(s.form.verification.verified for s in lines.values())


def test_backward_function_matches_hand_written_backprop_and_shows_the_updated_w3_error():
    import sys
    from pathlib import Path

    from derivkit.lowering.backward import backward_function
    sys.path.insert(0, str(Path(__file__).parent))
    from test_engine import _mlp3_backprop

    f = backward_function(recipes.load("mlp3"))
    rng = np.random.default_rng(1)
    shapes = {"X": (5, 3), "T": (5, 2), "W1": (4, 3), "b1": (4,), "W2": (6, 4), "b2": (6,),
              "W3": (2, 6), "b3": (2,)}
    v = {k: rng.standard_normal(s) for k, s in shapes.items()}
    out = f(**v)
    ref = _mlp3_backprop(v, {"alpha": 0.01})
    for w in ref:
        np.testing.assert_allclose(out[f"∂L/∂{w}"], ref[w], rtol=1e-12, atol=1e-14)
    stale = f(**v, backward_overrides={"W3": v["W3"] - 0.1 * out["∂L/∂W3"]})
    np.testing.assert_allclose(stale["∂L/∂W3"], out["∂L/∂W3"])     # W3's own gradient unchanged
    assert not np.allclose(stale["∂L/∂W1"], out["∂L/∂W1"])          # the layers below are wrong


def test_derive_mlp3_shows_the_backward_pass_in_text_and_json():
    import json

    from typer.testing import CliRunner

    from derivkit.cli.app import app

    runner = CliRunner()
    text = runner.invoke(app, ["derive", "mlp3"])
    assert text.exit_code == 0, text.output
    assert "Backward pass" in text.stdout and "ΔA2 = ΔZ3 W3" in text.stdout
    assert "∂L/∂W3 = ΔZ3ᵀ A2" in text.stdout
    data = json.loads(runner.invoke(app, ["derive", "mlp3", "--json"]).stdout)
    assert [c["lhs"] for c in data["chain"]][:3] == ["ΔYhat", "ΔZ3", "ΔA2"]
    assert all(c["verified"] for c in data["chain"]) and data["verified"]
