"""The textbook table of issue 12: derivkit's printed gradient of each well-known loss, lowered
and evaluated, equals the hand-written NumPy gradient of tests/textbook.py, and it is no longer
than the textbook's form in operations (`derivkit.lang.program.length`: calls, operators,
transposes, reductions; each named intermediate and repeated subexpression once)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import user_budgets
from test_textbook_refs import BY_NAME, functions, inputs_for

from derivkit import api
from derivkit.derivation.engine import derive
from derivkit.lang.parse import Scope
from derivkit.lang.program import length
from derivkit.lowering import module

# Each is derived with the budgets users get (no label is compared here).
AT_MOST_TEXTBOOK = ["cross_entropy", "bce_logits", "least_squares", "logsumexp", "softmax_regression",
                    "attention", "mlp2_tanh", "ridge", "logdet", "trace_quadratic", "mse",
                    "rms_norm", "logistic_regression", "softplus", "layer_norm_vector"]
LONGER: list[str] = []   # printed forms longer than the textbook's (values still compared)


def _shape(text: str) -> tuple[str, ...]:
    return () if text == "scalar" else tuple(text.split(","))


@pytest.mark.parametrize("name", AT_MOST_TEXTBOOK + LONGER)
def test_printed_gradient_is_the_textbooks_value_and_no_longer(name):
    entry = BY_NAME[name]
    params = entry.get("params")
    with user_budgets():
        recipe = api.recipe_from_expression(entry["expr"], entry["wrt"], entry["shapes"], params)
        d = derive(recipe)
        fns = module.load(module.lower(recipe, d))
    assert d.verified
    arrays = inputs_for(entry)
    _, grad = functions(name)
    want = grad(**arrays, **(params or {}))
    scope = Scope({n: _shape(s) for n, s in entry["shapes"].items()}, dict(params or {}))
    named = dict(d.intermediates)
    if ";" not in d.forward:
        named[d.output] = d.forward
    for dv in d.derivatives:
        got = fns[f"grad_{dv.wrt}"](**arrays)
        np.testing.assert_allclose(got, want[dv.wrt], rtol=1e-9, atol=1e-12, err_msg=dv.wrt)
        ours = length(dv.matrix.text, scope, named)
        book = length(entry["textbook"][dv.wrt], scope)
        if name in AT_MOST_TEXTBOOK:
            assert ours <= book, (dv.wrt, dv.matrix.text, ours, book)
    if d.chain:   # the backward program, lowered: every gradient in one pass
        for dv, got in zip(d.derivatives, fns["backward"](**arrays)):
            np.testing.assert_allclose(got, want[dv.wrt], rtol=1e-9, atol=1e-12, err_msg=f"d{dv.wrt}")
