"""User names that collide with generated code, index letters or each other, and the emitter's
audit of generated Python (issue 10): names never give exit 3, a broken module or a wrong
gradient; a Python keyword is refused where it is declared."""

from __future__ import annotations

import keyword

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derivkit import api
from derivkit.checking.runner import check
from derivkit.derivation.engine import derive
from derivkit.errors import DerivkitError, RecipeError
from derivkit.lang.recipes import parse_recipe
from derivkit.lowering import emit, module
from derivkit.lowering.backward import backward_function

# No test here changes how derivkit derives: derivations are shared across the session (conftest).
pytestmark = pytest.mark.usefixtures("shared_derivations")


# ---------------------------------------------------------------------------- the recipe
def _recipe(n: dict[str, str]):
    """H = α X W; P = tanh(H); L = mean((P − T)²), every name chosen by `n`."""
    X, W, T, U, m, d, k, alpha, H, P, L = (n[key] for key in
                                           ("X", "W", "T", "U", "m", "d", "k", "alpha", "H", "P", "L"))
    return parse_recipe({
        "name": "hostile", "summary": "names", "output": L, "wrt": [W],
        "inputs": {X: f"{m},{d}", W: f"{d},{k}", T: f"{m},{k}", U: m},   # U is unused
        "params": {alpha: 0.1},
        "steps": [{"name": H, "expr": f"{alpha} * ({X} @ {W})"},
                  {"name": P, "expr": f"tanh({H})"},
                  {"name": L, "expr": f"mean(({P} - {T})**2)"}],
    }, "hostile")


DEFAULT = dict(X="X", W="W", T="T", U="U", m="m", d="d", k="k", alpha="alpha", H="H", P="P", L="L")


def _hand_written(X, W, T, alpha):
    """The gradient ∂L/∂W of `_recipe`, by hand."""
    P = np.tanh(alpha * (X @ W))
    dP = 2 * (P - T) / P.size
    return alpha * X.T @ (dP * (1 - P**2))


def _values(n: dict[str, str], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n["X"]: rng.normal(size=(4, 3)), n["W"]: rng.normal(size=(3, 5)),
            n["T"]: rng.normal(size=(4, 5)), n["U"]: rng.normal(size=4)}


def _exercise(n: dict[str, str]) -> None:
    """Derive, lower (import and call), check and run the backward pass of `_recipe(n)`."""
    recipe = _recipe(n)
    derivation = derive(recipe)
    assert all(f.verification.verified for dv in derivation.derivatives
               for f in (dv.index, dv.matrix) if f is not None)
    assert all(step.form.verification.verified for step in derivation.chain)
    values = _values(n)
    want = _hand_written(values[n["X"]], values[n["W"]], values[n["T"]], 0.1)
    lowered = module.lower(recipe, derivation)
    fns = module.load(lowered)
    np.testing.assert_allclose(fns[f"grad_{n['W']}"](**values), want, rtol=1e-10, atol=1e-13)
    backward = backward_function(recipe)
    np.testing.assert_allclose(backward(**values)[f"∂{n['L']}/∂{n['W']}"], want, rtol=1e-10, atol=1e-13)
    assert check(recipe, sizes={n["m"]: 3, n["d"]: 2, n["k"]: 4}).passed


# Names that collide with what generated code uses (np, NumPy function names, builtins the
# generated code might call, helper-like and temporary-like names) and with index letters.
COLLIDING = [
    dict(DEFAULT, X="np", W="exp", T="dict"),
    dict(DEFAULT, X="exec", W="sum", T="max", U="print", H="np"),
    dict(DEFAULT, H="Z", P="e", L="t1"),                          # macro and CSE-like names
    dict(DEFAULT, m="s", d="r", k="i", X="j", W="l", alpha="k"),  # index letters everywhere
    dict(DEFAULT, m="np", d="forward", k="grad", H="k"),
]


@pytest.mark.parametrize("names", COLLIDING,
                         ids=lambda n: ",".join(sorted(set(n.values()) - set(DEFAULT.values()))))
def test_colliding_names_derive_lower_check_and_backprop_right(names):
    _exercise(names)


@pytest.mark.parametrize("bad", ["lambda", "None", "True", "if", "class", "import", "def"])
@pytest.mark.parametrize("field", ["X", "U", "m", "alpha", "H", "L"])
def test_python_keywords_are_refused_where_declared(bad, field):
    with pytest.raises(RecipeError, match=f"'{bad}'( of [A-Za-z]+)? is a Python keyword"):
        _recipe(dict(DEFAULT, **{field: bad}))


def test_a_dimension_may_not_share_a_name_with_a_value():
    with pytest.raises(DerivkitError, match="dimension 'n' of x has the name of the input 'n'"):
        api.recipe_from_expression("mean(x) * n", ["x"], {"x": "n", "n": "scalar"})


def test_index_letters_avoid_every_name_in_scope():
    d = api.derive_expression("X @ W", ["W"], {"X": "m,n", "W": "n,s"})
    idx = d.derivatives[0].index_lhs_pretty
    letters = idx.split("_")[1].split("/")[0] + idx.split("_")[-1]
    assert len(set(letters)) == 4 and not set(letters) & {"m", "n", "s"}, idx
    # every single letter taken: index names go on to a1, b1, ...
    names = [c for c in "abcdefghijklmnopqrstuvwxyz" if not keyword.iskeyword(c)]
    shapes = {c: "2" for c in names[2:]} | {"a": "n,q", "b": "q,p"}
    shapes.pop("n"), shapes.pop("q"), shapes.pop("p")
    d = api.derive_expression("sum(a @ b)", ["b"], shapes)
    assert all(f.verification.verified for dv in d.derivatives for f in (dv.index, dv.matrix) if f)


# ---------------------------------------------------------------------------- property
_IDENTS = st.one_of(
    st.sampled_from(["np", "exp", "log", "sum", "dict", "exec", "eval", "len", "print", "forward",
                     "grad", "vjp", "t1", "t2", "e", "pi", "i", "j", "k", "l", "r", "s", "u", "v",
                     "Z", "a", "b", "g", "x", "y", "softmax", "mean", "where", "T"]),
    st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,3}", fullmatch=True).filter(lambda s: not keyword.iskeyword(s)),
)


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(_IDENTS, min_size=11, max_size=11, unique=True))
def test_random_names_never_break_derivkit(idents):
    from conftest import user_budgets

    with user_budgets():   # no label is compared here
        _exercise(dict(zip(DEFAULT, idents)))


# ---------------------------------------------------------------------------- the audit
GOOD = "def f(*, x, alpha=0.5):\n    y = np.exp(x)\n    return _softmax(y * alpha, axis=-1)\n"


def test_emitted_source_passes_the_audit():
    emit.audit("\n\n".join(emit.helper_sources(["_softmax"]) + [GOOD]))
    assert emit.build(GOOD, "f")(x=np.zeros(2)).tolist() == [0.5, 0.5]


@pytest.mark.parametrize("bad", [
    GOOD.replace("np.exp(x)", "np.exp('x')"),                         # a string constant
    GOOD.replace("np.exp(x)", "np.exp(z)"),                           # an unbound name
    GOOD.replace("np.exp(x)", "eval(x)"),                             # a builtin
    GOOD.replace("np.exp(x)", "x.__class__"),                         # an attribute
    GOOD.replace("np.exp(x)", "(lambda: x)()"),                       # a lambda
    GOOD.replace("*, x, alpha", "x, alpha"),                          # positional arguments
    GOOD.replace("alpha=0.5", "alpha=x"),                             # a default that is not a number
    GOOD.replace("    y = np.exp(x)\n", "    import os\n    y = x\n"),  # an import
    GOOD.replace("    y = np.exp(x)\n", "    for y in x:\n        pass\n"),
    "import os\n" + GOOD,
    GOOD + "f()\n",
    "def _softmax(x, axis=-1):\n    return x\n\n\n" + GOOD,              # a helper that is not ours
])
def test_the_audit_refuses_what_the_emitter_does_not_write(bad):
    with pytest.raises(emit.EmitError):
        emit.audit(bad)


def test_numpy_alias_steps_aside_for_a_user_name_np():
    lowered = api.lower_expression("sum(np * x)", ["x", "np"], {"np": "n", "x": "n"})
    assert "import numpy as _np" in lowered.source
    fns = module.load(lowered)
    np.testing.assert_array_equal(fns["grad_x"](np=np.arange(3.0), x=np.ones(3)), np.arange(3.0))


def test_generated_code_has_no_string_constants_but_docstrings():
    import ast

    lowered = api.lower_recipe("mlp3")
    tree = ast.parse(lowered.source)
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef)) and emit._is_docstring(n.body[0])}
    all_list = next(n for n in tree.body if isinstance(n, ast.Assign))
    allowed = docs | {id(e) for e in all_list.value.elts}
    helper_docs = {id(n.body[0].value) for n in tree.body if isinstance(n, ast.FunctionDef)}
    strings = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
               and id(n) not in allowed | helper_docs]
    assert strings == []


def test_keyword_names_on_the_command_line_are_one_line_errors(runner):
    from derivkit.cli.app import app

    for args in (["derive", "--expr", "sum(x)", "--wrt", "x", "--shape", "x=n", "--shape", "None=n"],
                 ["check", "--expr", "sum(x)", "--wrt", "x", "--shape", "x=lambda"],
                 ["lower", "--expr", "sum(x)", "--wrt", "x", "--shape", "x=n", "--shape", "True=n"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Python keyword" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------- stable exp
def test_lowered_softmax_gradients_are_as_stable_as_the_forward():
    """The form is printed over exp(Z); the lowered code must not overflow where the forward
    (a max-shifted softmax) does not."""
    lowered = api.lower_expression("sum(softmax(Z) * C)", ["Z"], {"Z": "m,n", "C": "m,n"})
    fns = module.load(lowered)
    rng = np.random.default_rng(1)
    Z, C = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    want = P * (C - (C * P).sum(axis=1, keepdims=True))
    with np.errstate(all="raise"):
        for shift in (0.0, 800.0, -800.0):   # exp(800) overflows float64
            assert np.isfinite(fns["forward"](Z=Z + shift, C=C))
            np.testing.assert_allclose(fns["grad_Z"](Z=Z + shift, C=C), want, rtol=1e-12, atol=1e-15)


def test_only_formulas_invariant_to_the_scaling_are_shifted():
    from derivkit.lang import ir
    from derivkit.lowering.stable import SHIFTED, shift_exponentials

    Z, C = ir.Var("Z", ("m", "n")), ir.Var("C", ("m", "n"))
    x = ir.Var("x", ("n",))
    e, ex = ir.apply("exp", Z), ir.apply("exp", x)
    row = ir.sum_(e, 1, True)

    def shifted(node):
        return [dict(n.kwargs).get("axis") for n in ir.walk(shift_exponentials(node))
                if isinstance(n, ir.Macro) and n.fn == SHIFTED]

    assert shifted(ir.div(ir.mul(e, C), row)) == [1]               # softmax-like, per row
    assert shifted(ir.div(ex, ir.sum_(ex))) == [None]              # a vector's softmax
    assert shifted(ir.mul(e, C)) == []                             # degree 1: not invariant
    assert shifted(ir.div(e, ir.sum_(e, 0, True))) == [0]          # per column
    assert shifted(ir.div(e, ir.sum_(e))) == [None]                # over all entries
    assert shifted(ir.add(ir.div(e, row), e)) == []                # degrees 0 and 1 mixed
    assert shifted(ir.apply("log", ir.div(e, row))) == [1]         # a function of a degree-0 value
    assert shifted(ir.div(ir.apply("log", e), row)) == []          # log(c·e) ≠ log(e)


# ---------------------------------------------------------------------------- every command
def test_colliding_names_through_every_command(runner, tmp_path, monkeypatch):
    """A recipe file whose names collide with generated code and index letters, through list,
    derive, check, lower (import and call), verify and train: exit 0 and right results."""
    import importlib.util

    from derivkit.cli.app import app

    n = dict(DEFAULT, X="np", W="exp", T="dict", U="exec", m="s", d="r", k="i", alpha="e", H="k",
             P="Z", L="t1")
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "hostile.toml").write_text(
        'name = "hostile"\nsummary = "names"\noutput = "t1"\nwrt = ["exp"]\n'
        '[inputs]\nnp = "s,r"\nexp = "r,i"\ndict = "s,i"\nexec = "s"\n[params]\ne = 0.1\n'
        '[[steps]]\nname = "k"\nexpr = "e * (np @ exp)"\n'
        '[[steps]]\nname = "Z"\nexpr = "tanh(k)"\n'
        '[[steps]]\nname = "t1"\nexpr = "mean((Z - dict)**2)"\n', encoding="utf-8")
    assert _recipe(n).steps == parse_recipe(
        __import__("tomllib").loads((folder / "hostile.toml").read_text()), "f").steps
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)   # a stray file written to the working folder would show below

    def ok(*args):
        result = runner.invoke(app, [*args, "--recipes", str(folder)])
        assert result.exit_code == 0, (args, result.output, result.stderr)
        return result

    assert "hostile" in ok("list").stdout
    assert "NOT VERIFIED" not in ok("derive", "hostile").stdout
    ok("check", "hostile")
    out = tmp_path / "grads.py"
    ok("lower", "hostile", "-o", str(out))
    spec = importlib.util.spec_from_file_location("grads", out)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    values = _values(n)
    np.testing.assert_allclose(mod.grad_exp(**values), _hand_written(values["np"], values["exp"],
                                                                    values["dict"], 0.1), rtol=1e-10)
    ok("verify", "hostile", "--claim", "2 * e * np.T @ ((1 - Z**2) * (Z - dict)) / (s * i)")
    ok("train", "hostile", "--epochs", "3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grads.py", "recipes"]
    assert [p.name for p in folder.iterdir()] == ["hostile.toml"]


# ---------------------------------------------------------------------------- review findings
def test_what_derive_accepts_check_and_lower_accept():
    """A derived form may exceed the limits on user input (x**64 squared has x**127)."""
    for expr in ("sum((x**64)**2)", "sum(x*x)*1e12"):
        d = api.derive_expression(expr, ["x"], {"x": "n"})
        assert all(f.verification.verified for dv in d.derivatives for f in (dv.index, dv.matrix) if f)
        assert api.check_expression(expr, ["x"], {"x": "n"}).passed
        fns = module.load(api.lower_expression(expr, ["x"], {"x": "n"}))
        x = np.full(2, 0.5)
        want = 128 * x**127 if "64" in expr else 2e12 * x
        np.testing.assert_allclose(fns["grad_x"](x=x), want, rtol=1e-12)


def test_a_jacobian_that_is_zero_has_the_jacobians_shape():
    fns = module.load(api.lower_expression("ones(n)", ["x"], {"x": "n"}))
    np.testing.assert_array_equal(fns["jacobian_x"](x=np.ones(3)), np.zeros((3, 3)))


def test_repeated_wrt_is_one_derivative_and_the_audit_refuses_a_function_twice():
    data = {"name": "r", "summary": "s", "forward": "sum(W * W)", "inputs": {"W": "n"}, "wrt": ["W", "W"]}
    assert parse_recipe(data, "r").wrt == ("W",)
    with pytest.raises(emit.EmitError, match="defined twice"):
        emit.audit(GOOD + "\n\n" + GOOD)


def test_default_output_and_upstream_names_step_aside():
    r = parse_recipe({"name": "r", "summary": "s", "forward": "g * y", "inputs": {"g": "n", "y": "n"}}, "r")
    assert (r.output, r.upstream) == ("yout", "gout")
    d = api.derive_expression("sum(x * x)", ["x"], {"x": "g"})   # a dimension g: upstream renamed
    assert d.derivatives[0].matrix.verification.verified


def test_bytes_that_are_not_text_are_named():
    with pytest.raises(DerivkitError, match="not valid UTF-8 text at column 6"):
        api.derive_expression("sum(x\udcff)", ["x"], {"x": "n"})
