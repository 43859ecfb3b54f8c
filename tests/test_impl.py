"""`derivkit check NAME --impl FILE.py:FUNCTION`: a user's hand-written backward function checked
against finite differences and derivkit's derivation, with its mistakes named.

The implementations are in tests/impl_examples/, written by hand with independent NumPy
formulas. Expected diagnoses come from what each file does wrong, never from derivkit's output."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from conftest import optional
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from derivkit import api
from derivkit.audit.diagnose import LOW_PRECISION
from derivkit.audit.impl import check as check_impl
from derivkit.checking import runner as check_runner
from derivkit.cli.app import app
from derivkit.errors import DerivkitError
from derivkit.lang import recipes

# No test here changes how derivkit derives: derivations are shared across the session (conftest).
pytestmark = pytest.mark.usefixtures("shared_derivations")

EXAMPLES = Path(__file__).resolve().parent / "impl_examples"
FAST = dict(mode="full")   # every entry, no directional repeat: one result per input


def _spec(file: str, function: str) -> str:
    return f"{EXAMPLES / file}:{function}"


def _run(name: str, file: str, function: str, **options):
    return api.check_implementation(_spec(file, function), name, **{**FAST, **options})


def _by_wrt(tc) -> dict:
    return {r.wrt: r for r in tc.results}


def _names(result) -> list[str]:
    """The mistakes named (a wrong shape, stated first when there is one, aside)."""
    return [d.name for d in result.diagnoses if d.name != "wrong shape"]


def _mistakes(result) -> list:
    return [d for d in result.diagnoses if d.name != "wrong shape"]


def _line_of(file: str, text: str) -> int:
    """1-based line of the first line containing `text` in an example file."""
    lines = (EXAMPLES / file).read_text().splitlines()
    return next(i + 1 for i, line in enumerate(lines) if text in line)


# ---------------------------------------------------------------------------- correct ones pass

@pytest.mark.parametrize("name,file,function", [
    ("linear", "linear.py", "correct_tuple"),
    ("linear", "linear.py", "correct_dict"),
    ("linear", "linear.py", "correct_kwargs"),
    ("mse", "mse.py", "correct"),
    ("mse", "mse.py", "correct_with_g"),
    ("softmax", "softmax.py", "correct"),
    ("relu", "relu.py", "correct"),
    ("mlp3", "mlp3.py", "correct"),
])
def test_a_correct_implementation_passes_without_diagnoses(name, file, function):
    tc = _run(name, file, function, mode="auto")
    assert tc.passed and tc.error is None
    assert tc.implementation.endswith(f"{file}:{function}")
    assert {r.wrt for r in tc.results} == set(recipes.load(name).wrt)
    for r in tc.results:
        assert r.passed and r.diagnoses == ()
        assert r.max_rel_error_vs_derived is not None and r.max_rel_error_vs_derived < 1e-10


def test_only_the_users_gradients_are_checked():
    """With an implementation, derivkit's own forms and the Jacobian kind are not checked."""
    tc = _run("softmax", "softmax.py", "correct", mode="auto")
    assert {(r.kind, r.wrt) for r in tc.results} == {("vjp", "z")}
    own = api.check_recipe("softmax", mode="full")
    assert {r.kind for r in own.results} == {"jacobian", "vjp"}   # unchanged without one


def test_an_empty_implementations_dict_checks_derivkits_own_forms():
    tc = check_runner.check(recipes.load("linear"), mode="full", implementations={})
    assert {r.wrt for r in tc.results} == {"X", "W", "b"} and tc.passed


def test_with_wrt_one_array_or_the_full_tuple():
    for function in ("weight_only", "correct_tuple"):
        tc = api.check_implementation(_spec("linear.py", function), "linear", wrt=["W"], **FAST)
        assert tc.passed and [r.wrt for r in tc.results] == ["W"]


def test_a_callable_is_accepted_from_python():
    recipe = recipes.load("linear")
    tc = check_impl(recipe, lambda X, W, b, G: (G @ W.T, X.T @ G, G.sum(axis=0)), **FAST)
    assert tc.passed


# ---------------------------------------------------------------------------- wrong ones fail, named

@pytest.mark.parametrize("function", ["transposed_w", "transposed_w_parenthesised"])
def test_transposed_weight_gradient_is_named(function):
    tc = _run("linear", "linear.py", function)
    by = _by_wrt(tc)
    assert not tc.passed and not by["W"].passed
    assert [d.name for d in by["W"].diagnoses] == ["wrong shape", "transposed"]
    assert "transposed" in by["W"].diagnoses[1].detail
    assert by["X"].passed and by["b"].passed and not by["X"].diagnoses


def test_transposed_on_square_sizes_is_named_from_the_values():
    tc = _run("linear", "linear.py", "transposed_w", sizes={"n": 4, "k": 4})
    w = _by_wrt(tc)["W"]
    assert not w.passed and w.max_rel_error > 1e-3 and _names(w) == ["transposed"]


def test_stray_factor_two():
    w = _by_wrt(_run("linear", "linear.py", "stray_two"))["W"]
    assert not w.passed and _names(w) == ["stray factor 2"]


def test_sign_flipped():
    x = _by_wrt(_run("linear", "linear.py", "negated_x"))["X"]
    assert not x.passed and _names(x) == ["sign flipped"]


def test_bias_summed_over_the_wrong_axis():
    b = _by_wrt(_run("linear", "linear.py", "bias_wrong_axis"))["b"]
    assert not b.passed and _names(b) == ["summed over the wrong axis"]
    assert "axis 1 instead of axis 0" in _mistakes(b)[0].detail


def test_bias_summed_over_the_wrong_axis_on_square_sizes():
    """Same shape (m = k), so only the values can tell."""
    b = _by_wrt(_run("linear", "linear.py", "bias_wrong_axis", sizes={"m": 4, "k": 4}))["b"]
    assert not b.passed and _names(b) == ["summed over the wrong axis"]


def test_bias_with_keepdims_is_named():
    b = _by_wrt(_run("linear", "linear.py", "bias_keepdims"))["b"]
    assert not b.passed and _names(b) == ["kept the summed axis"]


def test_mse_missing_the_batch_average():
    tc = _run("mse", "mse.py", "mean_over_features_only")
    (y,) = tc.results
    assert not y.passed and _names(y) == ["missing 1/m averaging"]
    m = tc.sizes["m"]
    assert f"m = {m}" in y.diagnoses[0].detail and "batch dimension" in y.diagnoses[0].detail


def test_mse_missing_the_mean_over_every_entry():
    (y,) = _run("mse", "mse.py", "no_mean_at_all").results
    assert not y.passed and _names(y) == ["missing 1/(m·d) averaging"]


def test_softmax_sign_flipped():
    (z,) = _run("softmax", "softmax.py", "sign_flipped").results
    assert not z.passed and _names(z) == ["sign flipped"]


def test_softmax_notes_formula_fails_but_is_not_guessed_at():
    """The notes' wrong line is none of the recognised mistakes: a failure, no diagnosis."""
    (z,) = _run("softmax", "softmax.py", "notes_formula").results
    assert not z.passed and z.diagnoses == ()
    assert z.max_rel_error_vs_derived > 1e-3


def test_expression_batched_softmax_summed_over_the_wrong_axis():
    args = dict(expr="softmax(Z)", shapes={"Z": "m,n"}, wrt=["Z"], **FAST)
    bad = api.check_implementation(_spec("softmax.py", "batched_wrong_axis"), **args)
    (z,) = bad.results
    assert not z.passed and _names(z) == ["summed over the wrong axis"]
    assert "axis 0 instead of axis 1" in z.diagnoses[0].detail
    assert api.check_implementation(_spec("softmax.py", "batched_correct"), **args).passed


def test_mlp3_uses_w3_after_its_update():
    tc = _run("mlp3", "mlp3.py", "updated_w3")
    by = _by_wrt(tc)
    assert by["W3"].passed and by["b3"].passed          # the last layer's own gradients are right
    for w in ("W1", "b1", "W2", "b2"):
        assert not by[w].passed and _names(by[w]) == ["uses an updated weight"], w
        detail = by[w].diagnoses[0].detail
        assert "W3" in detail and "learning rate ≈ 0.1" in detail and "before its update" in detail


def test_mlp3_in_place_update_is_named_twice_over():
    by = _by_wrt(_run("mlp3", "mlp3.py", "updated_w3_in_place"))
    assert all(not r.passed for r in by.values())
    assert all("modifies an input in place" in _names(r) for r in by.values())
    assert "uses an updated weight" in _names(by["W1"])
    assert "W3" in by["W1"].diagnoses[0].detail


def test_in_place_upstream_change_fails_even_with_right_values():
    (x,) = _run("relu", "relu.py", "in_place").results
    assert not x.passed and _names(x) == ["modifies an input in place"]
    assert "g" in x.diagnoses[0].detail
    assert x.max_rel_error_vs_derived == 0.0 and x.worst[0].abs_error <= x.worst[0].tolerance


def test_weight_update_in_place_names_the_weight():
    by = _by_wrt(_run("linear", "linear.py", "updates_w_in_place"))
    assert all(_names(r) == ["modifies an input in place"] for r in by.values())
    assert "modified W in place" in by["W"].diagnoses[0].detail


def test_float32_still_names_the_mistake():
    w = _by_wrt(_run("linear", "linear.py", "stray_two", dtype="float32"))["W"]
    assert not w.passed and _names(w) == ["stray factor 2"]


# ---------------------------------------------------------------------------- hypothesis

def _products(sizes: dict[str, int]) -> set[float]:
    from itertools import combinations

    out = set()
    dims = list(sizes)
    for n in range(1, len(dims) + 1):
        for group in combinations(dims, n):
            out.add(float(math.prod(sizes[d] for d in group)))
    return out


SIZE = st.integers(min_value=2, max_value=7)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=SIZE, n=SIZE, k=SIZE, choice=st.sampled_from(["-1", "2", "1/2", "dim", "1/dim"]),
       dim=st.sampled_from(["m", "n", "k"]))
def test_named_constant_factors_are_recognised(m, n, k, choice, dim):
    sizes = {"m": m, "n": n, "k": k}
    c = {"-1": -1.0, "2": 2.0, "1/2": 0.5, "dim": float(sizes[dim]),
         "1/dim": 1.0 / sizes[dim]}[choice]
    tc = check_impl(_with_wrt("W"), lambda X, G: c * (X.T @ G), sizes=sizes, **FAST)
    (w,) = tc.results
    assert not w.passed and w.diagnoses
    text = " | ".join(f"{d.name}: {d.detail}" for d in w.diagnoses)
    expected = {"-1": "sign flipped", "2": "stray factor 2", "1/2": "missing factor 2",
                "dim": f"missing 1/{dim} averaging", "1/dim": f"extra 1/{dim}"}[choice]
    assert expected in text, text


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=SIZE, n=SIZE, k=SIZE, c=st.floats(min_value=0.05, max_value=20.0))
@example(m=3, n=4, k=5, c=0.99999)   # the draw that failed 1 run in 10: now excluded, by rule
def test_other_constant_factors_are_stated_as_such(m, n, k, c):
    sizes = {"m": m, "n": n, "k": k}
    named = {2.0, 0.5} | _products(sizes) | {1.0 / p for p in _products(sizes)}
    assume(all(abs(c / v - 1) > 1e-6 for v in named))
    # within the code's own threshold of 1, a factor is rounding ("low precision", tested below)
    assume(abs(c - 1) > LOW_PRECISION)
    (w,) = check_impl(_with_wrt("W"), lambda X, G: c * (X.T @ G), sizes=sizes, **FAST).results
    assert _names(w) == ["off by a constant factor"]
    assert f"{c:.6g}" in w.diagnoses[0].detail


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=SIZE, n=SIZE, k=SIZE)
def test_transposition_and_wrong_axis_at_random_sizes(m, n, k):
    sizes = {"m": m, "n": n, "k": k}
    assume(n != k)   # a square W can equal its transpose only by accident; covered above
    (w,) = check_impl(_with_wrt("W"), lambda X, G: G.T @ X, sizes=sizes, **FAST).results
    assert _names(w) == ["transposed"]
    (b,) = check_impl(_with_wrt("b"), lambda G: G.sum(axis=1), sizes=sizes, **FAST).results
    assert _names(b) == ["summed over the wrong axis"]


@pytest.mark.parametrize("offset,expected", [
    (2.0, "off by a constant factor"), (1.001, "off by a constant factor"),
    (0.5, "low precision"), (0.01, "low precision")])
def test_the_low_precision_threshold_is_the_codes_own(offset, expected):
    """c = 1 ± offset·LOW_PRECISION: beyond the threshold a factor, within it rounding (the
    draw that once made the property above fail: c = 0.99999)."""
    for c in (1 + offset * LOW_PRECISION, 1 - offset * LOW_PRECISION):
        (w,) = check_impl(_with_wrt("W"), lambda X, G: c * (X.T @ G), **FAST).results
        assert _names(w) == [expected], (c, w.diagnoses)


def _with_wrt(w: str):
    from dataclasses import replace

    return replace(recipes.load("linear"), wrt=(w,))


# ---------------------------------------------------------------------------- no guessing

def test_diagnose_says_nothing_for_the_true_value_or_for_noise():
    from derivkit.audit.diagnose import Point, diagnose, true_value
    from derivkit.derivation.engine import derive

    recipe = recipes.load("linear")
    dv = next(d for d in derive(recipe).derivatives if d.wrt == "W")
    rng = np.random.default_rng(7)
    sizes = {"m": 3, "n": 4, "k": 5}
    values = {"X": rng.standard_normal((3, 4)), "W": rng.standard_normal((4, 5)),
              "b": rng.standard_normal(5)}
    point = Point(recipe, "W", dv, values, {}, sizes, np.float64, (4, 5), (3, 5))
    kwargs = dict(values, G=rng.standard_normal((3, 5)))
    T = true_value(point, kwargs)
    np.testing.assert_allclose(T, values["X"].T @ kwargs["G"], rtol=1e-13)
    assert diagnose(point, kwargs, T.copy(), T) == []
    assert diagnose(point, kwargs, rng.standard_normal((4, 5)), T) == []
    assert diagnose(point, kwargs, T * (1 + 1e-3 * rng.standard_normal((4, 5))), T) == []


# ---------------------------------------------------------------------------- the command line

def _one_error_line(result) -> str:
    err = result.stderr
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("derivkit: error: "), err
    assert "Traceback" not in result.output
    return err.strip()


def _cli(runner, *args):
    return runner.invoke(app, ["check", *args])


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "notes.txt").write_text("def backward(X, W, b, G):\n    return X\n")
    (tmp_path / "syntax.py").write_text("import numpy as np\n\ndef backward(X, W, b, G)\n"
                                        "    return X\n")
    (tmp_path / "import_fails.py").write_text("CONFIG = {'lr': 0.1}\nLR = CONFIG['learning_rate']\n"
                                              "\n\ndef backward(X, W, b, G):\n    return X\n")
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(3)\n")
    return tmp_path


@pytest.mark.parametrize("spec,needles", [
    ("{tmp}/missing.py:backward", ["no such file"]),
    ("{tmp}/notes.txt:backward", ["not a .py file"]),
    ("{ex}/linear.py", ["FILE.py:FUNCTION"]),
    ("{ex}/linear.py:", ["FILE.py:FUNCTION"]),
    ("{tmp}:backward", ["not a file"]),
    ("{ex}/linear.py:backwards", ["no function 'backwards'"]),
    ("{ex}/linear.py:correct", ["no function 'correct'", "did you mean"]),
    ("{ex}/linear.py:not_a_function", ["not a function", "int"]),
    ("{tmp}/syntax.py:backward", ["SyntaxError", "syntax.py:3"]),
    ("{tmp}/import_fails.py:backward", ["KeyError", "learning_rate", "import_fails.py:2"]),
    ("{tmp}/exits.py:backward", ["SystemExit"]),
    ("{ex}/linear.py:raises", ["ValueError", "linear.py:{raises_line}"]),
    ("{ex}/linear.py:returns_none", ["returned None", "3 gradients"]),
    ("{ex}/linear.py:returns_two", ["returned 2 value(s)", "expected 3"]),
    ("{ex}/linear.py:returns_dict_without_b", ["without the key 'b'"]),
    ("{ex}/linear.py:returns_text", ["returned a str", "NumPy array"]),
    ("{ex}/linear.py:needs_unknown", ["'lr'"]),
    ("{ex}/linear.py:no_upstream", ["no upstream gradient"]),
])
def test_bad_implementations_are_one_line_exit_2(runner, bad_files, spec, needles):
    raises_line = _line_of("linear.py", "return X @ G")
    text = spec.format(tmp=bad_files, ex=EXAMPLES)
    line = _one_error_line(_cli(runner, "linear", "--impl", text))
    for needle in needles:
        assert needle.format(raises_line=raises_line) in line, line


def test_impl_with_all_is_a_usage_error(runner):
    line = _one_error_line(_cli(runner, "--all", "--impl", _spec("linear.py", "correct_tuple")))
    assert "--impl" in line and "--all" in line


def test_cli_passes_and_fails_with_exit_codes(runner):
    ok = _cli(runner, "linear", "--impl", _spec("linear.py", "correct_tuple"))
    assert ok.exit_code == 0, ok.output
    assert "your implementation" in ok.stdout and "passed" in ok.stdout
    bad = _cli(runner, "linear", "--impl", _spec("linear.py", "transposed_w"))
    assert bad.exit_code == 1
    assert "diagnosis: transposed" in " ".join(bad.stdout.split())


def test_cli_options_reach_the_check(runner):
    result = _cli(runner, "linear", "--impl", _spec("linear.py", "correct_tuple"), "--mode",
                  "directional", "--seed", "3", "--size", "m=6", "--wrt", "X,W,b", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["seed"] == 3 and data["sizes"]["m"] == 6
    assert {r["mode"] for r in data["results"]} == {"directional"}


def test_json_has_diagnoses_and_the_implementation(runner):
    spec = _spec("linear.py", "bias_wrong_axis")
    result = _cli(runner, "linear", "--impl", spec, "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["implementation"] == spec and data["passed"] is False
    b = [r for r in data["results"] if r["wrt"] == "b"]
    assert b and all([d["name"] for d in r["diagnoses"]] == ["wrong shape", "summed over the wrong axis"]
                     for r in b)
    assert all(set(d) == {"name", "detail"} for r in b for d in r["diagnoses"])
    assert all(r["diagnoses"] == [] and r["max_rel_error_vs_derived"] < 1e-10
               for r in data["results"] if r["wrt"] != "b")


def test_json_stays_valid_when_the_users_code_prints(runner):
    result = _cli(runner, "linear", "--impl", _spec("linear.py", "chatty"), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["passed"] is True
    assert "computing the backward pass" in result.stderr


def test_junit_failure_names_the_diagnosis(runner, tmp_path):
    out = tmp_path / "impl.xml"
    result = _cli(runner, "linear", "--impl", _spec("linear.py", "stray_two"), "--junit", str(out))
    assert result.exit_code == 1
    root = ET.parse(out).getroot()
    failures = [c.find("failure") for c in root.iter("testcase") if c.find("failure") is not None]
    assert failures and all("stray factor 2" in f.get("message") for f in failures)
    assert "diagnosis: stray factor 2" in failures[0].text
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["implementation"].endswith("linear.py:stray_two")


def test_expression_with_impl_on_the_cli(runner):
    result = _cli(runner, "--expr", "softmax(Z)", "--wrt", "Z", "--shape", "Z=m,n", "--impl",
                  _spec("softmax.py", "batched_wrong_axis"), "--json")
    assert result.exit_code == 1
    (first, *_) = json.loads(result.stdout)["results"]
    assert first["diagnoses"][0]["name"] == "summed over the wrong axis"


def test_help_says_the_file_is_run_as_code(runner):
    result = _cli(runner, "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--impl" in text
    assert "imported and run as Python: only pass code you trust" in text
    assert "g = ∂L/∂output" in text


def test_help_stays_light_with_impl(tmp_path):
    code = ("import sys\nfrom derivkit.cli import app\n"
            "try:\n    app(args=['check', '--help'], prog_name='derivkit')\nexcept SystemExit:\n"
            "    pass\nprint('@@', sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sympy', 'numpy') or m in ('derivkit.audit.impl', 'derivkit.audit.diagnose')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=dict(os.environ, NO_COLOR="1"))
    assert "@@ []" in proc.stdout, proc.stdout[-500:] + proc.stderr


def test_library_errors_are_derivkit_errors():
    with pytest.raises(DerivkitError, match="no such file"):
        api.check_implementation("nowhere.py:f", "linear")


def test_a_float32_result_is_diagnosed_as_low_precision_not_a_factor(tmp_path):
    from derivkit import api

    (tmp_path / "f32.py").write_text("import numpy as np\n\ndef relu_f32(x, g):\n"
                                     "    return (g * (x > 0)).astype(np.float32)\n")
    tc = api.check_implementation(f"{tmp_path / 'f32.py'}:relu_f32", "relu")
    names = {d.name for r in tc.results for d in r.diagnoses}
    assert not tc.passed and names == {"low precision"}


# ---------------------------------------------------------------------------- issue 14
def test_torch_implementation_is_detected_and_stated():
    optional("torch")
    tc = _run("linear", "linear_torch.py", "correct")
    assert tc.passed, tc
    assert all(any("called with torch tensors (float64)" in n for n in r.notes) for r in tc.results)
    numpy_tc = _run("linear", "linear.py", "correct_tuple")   # a NumPy function: no such note
    assert not any("torch" in n for r in numpy_tc.results for n in r.notes)


def test_torch_implementation_mistake_is_caught_and_named():
    optional("torch")
    by = _by_wrt(_run("linear", "linear_torch.py", "sign_flipped_w"))
    assert by["X"].passed and by["b"].passed
    assert not by["W"].passed and _names(by["W"]) == ["sign flipped"]


def test_torch_implementation_on_the_cli_says_so(runner):
    optional("torch")
    ok = _cli(runner, "linear", "--impl", _spec("linear_torch.py", "correct"))
    assert ok.exit_code == 0, ok.output
    assert "called with torch tensors (float64)" in " ".join(ok.stdout.split())


@pytest.mark.parametrize("file", ["linear.py", "linear_torch.py"])
def test_an_unrecognised_upstream_name_is_named_with_the_accepted_ones(runner, tmp_path, file):
    if file == "linear_torch.py":
        optional("torch")
    path = tmp_path / "dy.py"
    path.write_text("def backward(X, W, b, dY):\n    return dY @ W.T, X.T @ dY, dY.sum(axis=0)\n")
    spec = f"{path}:backward" if file == "linear.py" else _spec(file, "upstream_named_dy")
    line = _one_error_line(_cli(runner, "linear", "--impl", spec))
    assert "'dY'" in line and "accepted: X, W, b, g or G" in line and "rename dY to G" in line, line


def test_a_wrong_shape_is_reported_as_shapes_first(runner):
    result = _cli(runner, "linear", "--impl", _spec("linear.py", "transposed_w"))
    assert result.exit_code == 1
    text = result.stdout
    w_rows = [ln for ln in text.splitlines() if ln.startswith("W ")]
    assert w_rows and all("yours (3, 5)" in ln and "inf" not in ln and "nan" not in ln
                          for ln in w_rows), text
    failure = text[text.index("✗ linear: your ∂/∂W"):]
    assert failure.splitlines()[1].strip() == "shape: yours (3, 5), expected (5, 3)", failure
    assert "rtol nan" not in text and "abs inf" not in text
    w = _by_wrt(_run("linear", "linear.py", "transposed_w"))["W"]
    assert w.diagnoses[0].name == "wrong shape" and w.diagnoses[0].detail == "yours (3, 5), expected (5, 3)"


def test_impl_value_columns_say_yours_and_numeric(runner):
    result = _cli(runner, "linear", "--impl", _spec("linear.py", "stray_two"))
    assert result.exit_code == 1
    headers = [ln.split() for ln in result.stdout.splitlines() if "|error|" in ln]
    assert headers and all(h[1] == "yours" and "derived" not in h for h in headers), result.stdout
