"""`derivkit lower`: the generated module, written to a file and really imported, against
independent hand-written NumPy (test_engine's REFERENCE table) on random inputs; its source
(imports, loops, golden bodies, signatures, docstring); the refusal of unverified forms; the CLI."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import transformer_ref
from conftest import recipe_params
from test_engine import REFERENCE, _inputs, _sig, _softmax

from derivkit import api
from derivkit.cli.app import app
from derivkit.errors import DerivkitError
from derivkit.lang import recipes
from derivkit.lowering import module
from derivkit.results import Verification

RECIPES = [r.name for r in recipes.load_all()]
SIZES = {"m": 4, "n": 3, "k": 5, "d": 2, "d0": 3, "d1": 5, "d2": 4, "d3": 2, "t": 4, "f": 3, "v": 5, "b": 3}
ANSI = "\x1b["

# Hand-written forwards (the REFERENCE table has the derivatives).
FORWARD = {
    "linear": lambda v, p: v["X"] @ v["W"] + v["b"],
    "softmax": lambda v, p: _softmax(v["z"]),
    "relu": lambda v, p: np.maximum(v["x"], 0),
    "leaky-relu": lambda v, p: np.where(v["x"] >= 0, v["x"], p["alpha"] * v["x"]),
    "mse": lambda v, p: np.mean((v["Y"] - v["T"]) ** 2),
    "mse-half": lambda v, p: np.sum((v["Y"] - v["T"]) ** 2) / (2 * v["Y"].shape[0]),
    "sigmoid": lambda v, p: _sig(v["x"]),
    "tanh": lambda v, p: np.tanh(v["x"]),
    "mlp3": lambda v, p: _mlp3_loss(v, p),
    "transformer-block": lambda v, p: transformer_ref.forward(v, p)[0],
    "attention-batched": lambda v, p: transformer_ref.attention_batched_forward(v)[0],
}


def _mlp3_loss(v, p):
    def leaky(z):
        return np.where(z >= 0, z, p["alpha"] * z)
    a1 = leaky(v["X"] @ v["W1"].T + v["b1"])
    a2 = leaky(a1 @ v["W2"].T + v["b2"])
    y = leaky(a2 @ v["W3"].T + v["b3"])
    return np.sum((y - v["T"]) ** 2) / (2 * v["X"].shape[0])


@pytest.fixture(scope="module")
def lowered():

    from conftest import ByName

    return ByName(api.lower_recipe)   # each lowered on first use


def import_file(path):
    """A real import of the written file."""
    spec = importlib.util.spec_from_file_location(f"lowered_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_and_import(low, tmp_path):
    path = tmp_path / f"{low.target.replace('-', '_')}_grads.py"
    path.write_text(low.source, encoding="utf-8")
    return import_file(path)


def function_body(source: str, name: str) -> list[str]:
    """The statements of a function, without its docstring, as `ast.unparse` writes them."""
    fn = next(n for n in ast.parse(source).body
              if isinstance(n, ast.FunctionDef) and n.name == name)
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return [ast.unparse(s) for s in body]


# ---------------------------------------------------------------------------- numbers
def test_every_builtin_recipe_has_a_hand_written_forward():
    assert set(RECIPES) <= set(FORWARD)


@pytest.mark.parametrize("name", recipe_params(RECIPES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lowered_module_matches_hand_written_numpy(lowered, name, seed, tmp_path):
    recipe = recipes.load(name)
    mod = write_and_import(lowered[name], tmp_path)
    rng = np.random.default_rng(seed)
    values = _inputs(recipe, rng, SIZES)
    params = {p.name: p.default for p in recipe.params}
    ref = REFERENCE[name]

    out = mod.forward(**values)
    np.testing.assert_allclose(out, FORWARD[name](values, params), rtol=1e-12, atol=1e-14)
    upstream = rng.standard_normal(np.shape(out))
    compared = {"forward"}
    for w in recipe.wrt:
        if np.ndim(out) == 0:
            want = ref[("gradient", w)](values, None, params)
            np.testing.assert_allclose(getattr(mod, f"grad_{w}")(**values), want, rtol=1e-12,
                                       atol=1e-14)
            got = getattr(mod, f"vjp_{w}")(**values, **{recipe.upstream: upstream})
            np.testing.assert_allclose(got, upstream * want, rtol=1e-12, atol=1e-14)
            compared |= {f"grad_{w}", f"vjp_{w}"}
            continue
        got = getattr(mod, f"vjp_{w}")(**values, **{recipe.upstream: upstream})
        assert np.shape(got) == np.shape(values[w])
        np.testing.assert_allclose(got, ref[("vjp", w)](values, upstream, params), rtol=1e-12,
                                   atol=1e-14, err_msg=f"{name} vjp_{w}")
        compared.add(f"vjp_{w}")
        if np.ndim(out) == 1 and np.ndim(values[w]) == 1:
            jac = getattr(mod, f"jacobian_{w}")(**values)
            assert jac.shape == (out.size, values[w].size)
            np.testing.assert_allclose(jac, ref[("jacobian", w)](values, None, params), rtol=1e-12,
                                       atol=1e-14, err_msg=f"{name} jacobian_{w}")
            compared.add(f"jacobian_{w}")
    if len(recipe.wrt) > 0 and "backward" in mod.__all__:
        # the backward program: every gradient (or VJP, given the upstream) in one pass
        scalar = np.ndim(out) == 0
        got = mod.backward(**values) if scalar else mod.backward(**values, **{recipe.upstream: upstream})
        assert len(got) == len(recipe.wrt)
        for w, g in zip(recipe.wrt, got):
            want = ref[("gradient", w)](values, None, params) if scalar else \
                ref[("vjp", w)](values, upstream, params)
            np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-14, err_msg=f"{name} backward: d{w}")
        compared.add("backward")
    assert compared == set(mod.__all__) == set(lowered[name].functions)


def test_parameters_are_keywords_with_the_recipe_default(lowered, tmp_path):
    mod = write_and_import(lowered["leaky-relu"], tmp_path)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(7)
    g = rng.standard_normal(7)
    np.testing.assert_allclose(mod.vjp_x(x=x, g=g), g * np.where(x >= 0, 1.0, 0.01), rtol=1e-12)
    np.testing.assert_allclose(mod.vjp_x(x=x, g=g, alpha=0.3), g * np.where(x >= 0, 1.0, 0.3),
                               rtol=1e-12)
    np.testing.assert_allclose(mod.forward(x=x, alpha=0.3), np.where(x >= 0, x, 0.3 * x),
                               rtol=1e-12)


def test_load_gives_the_same_functions_as_the_file(lowered, tmp_path):
    fns = module.load(lowered["linear"])
    assert list(fns) == ["forward", "vjp_X", "vjp_W", "vjp_b"]
    mod = write_and_import(lowered["linear"], tmp_path)
    rng = np.random.default_rng(5)
    X, W, b, G = (rng.standard_normal(s) for s in [(4, 3), (3, 5), (5,), (4, 5)])
    for name, fn in fns.items():
        kwargs = dict(X=X, W=W, b=b) if name == "forward" else dict(X=X, W=W, b=b, G=G)
        np.testing.assert_array_equal(fn(**kwargs), getattr(mod, name)(**kwargs))
    assert "return X.T @ G" in inspect.getsource(fns["vjp_W"])


def test_trace_expression_gradient_is_a_transpose(tmp_path):
    low = api.lower_expression("trace(A @ X)", ["X"], {"A": "n,n", "X": "n,n"})
    mod = write_and_import(low, tmp_path)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        A, X = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
        np.testing.assert_array_equal(mod.grad_X(A=A, X=X), A.T)
        np.testing.assert_allclose(mod.forward(A=A, X=X), np.trace(A @ X), rtol=1e-12)
        np.testing.assert_allclose(mod.vjp_X(A=A, X=X, g=2.5), 2.5 * A.T, rtol=1e-12)
    assert function_body(low.source, "grad_X") == ["return A.T"]


def test_repeated_subexpressions_are_computed_once(tmp_path):
    low = api.lower_expression("sum(tanh(X @ W) * tanh(X @ W))", ["W"], {"X": "m,n", "W": "n,k"})
    body = function_body(low.source, "grad_W")
    assert body == ["H = np.tanh(X @ W)", "return X.T @ (2.0 * H * (1.0 - np.square(H)))"]
    mod = write_and_import(low, tmp_path)
    rng = np.random.default_rng(0)
    X, W = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    t = np.tanh(X @ W)
    np.testing.assert_allclose(mod.grad_W(X=X, W=W), X.T @ (2 * t * (1 - t**2)), rtol=1e-12)


def test_constant_gradient_has_the_shape_of_the_input(tmp_path):
    mod = write_and_import(api.lower_expression("sum(X)", ["X"], {"X": "m,n"}), tmp_path)
    np.testing.assert_array_equal(mod.grad_X(X=np.zeros((4, 3))), np.ones((4, 3)))


# ---------------------------------------------------------------------------- source
@pytest.mark.parametrize("name", recipe_params(RECIPES))
def test_source_imports_only_numpy_and_has_no_loops(lowered, name):
    tree = ast.parse(lowered[name].source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert [(a.name, a.asname) for a in node.names] == [("numpy", "np")]
        assert not isinstance(node, ast.ImportFrom), ast.unparse(node)
        assert not isinstance(node, (ast.For, ast.AsyncFor, ast.While, ast.comprehension,
                                     ast.Lambda)), ast.unparse(node)
        assert not (isinstance(node, ast.Name) and node.id in ("eval", "exec", "__import__"))
    top = [type(n).__name__ for n in tree.body]
    assert top[0] == "Expr" and top[1] == "Import"   # docstring, then `import numpy as np`


def test_golden_bodies(lowered):
    lin = lowered["linear"].source
    assert function_body(lin, "vjp_W") == ["return X.T @ G"]
    assert function_body(lin, "vjp_X") == ["return G @ W.T"]
    assert function_body(lin, "vjp_b") == ["return np.sum(G, axis=0)"]
    assert function_body(lin, "forward") == ["return X @ W + b"]
    soft = lowered["softmax"].source
    # Σ(g ⊙ p) may be printed as the dot product g @ p (same value, faster)
    assert function_body(soft, "vjp_z")[0] == "p = _softmax(z, axis=-1)"
    assert function_body(soft, "vjp_z")[1:] in (["return p * (g - np.sum(g * p))"],
                                                ["return p * (g - g @ p)"])
    assert function_body(soft, "jacobian_z") == ["p = _softmax(z, axis=-1)",
                                                 "return np.diag(p) - np.outer(p, p)"]
    assert function_body(lowered["mse-half"].source, "grad_Y") == ["m = np.shape(Y)[0]",
                                                                   "return (Y - T) / m"]
    # no line binds a size the function does not use (mean's divisor lives in its expansion)
    assert function_body(lowered["mse"].source, "forward") == ["return np.mean(np.square(Y - T))"]


def test_only_the_helpers_used_are_included(lowered):
    defined = {name: {n.name for n in ast.parse(low.source).body if isinstance(n, ast.FunctionDef)}
               for name, low in ((n, lowered[n]) for n in ("softmax", "leaky-relu", "linear"))}
    assert "_softmax" in defined["softmax"] and "_leaky_relu" not in defined["softmax"]
    assert "_leaky_relu" in defined["leaky-relu"] and "_softmax" not in defined["leaky-relu"]
    assert not {n for n in defined["linear"] if n.startswith("_")}
    assert lowered["softmax"].helpers == ("_softmax",)


@pytest.mark.parametrize("name", recipe_params(RECIPES))
def test_signatures_are_keyword_only(lowered, name):
    recipe = recipes.load(name)
    fns = module.load(lowered[name])
    inputs = [i.name for i in recipe.inputs]
    params = {p.name: p.default for p in recipe.params}
    out_rank = np.ndim(FORWARD[name](_inputs(recipe, np.random.default_rng(0), SIZES), params))
    scalar = out_rank == 0
    for fname, fn in fns.items():
        sig = inspect.signature(fn)
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in sig.parameters.values())
        reads_upstream = fname.startswith("vjp_") or (fname == "backward" and not scalar)
        expected = inputs + ([recipe.upstream] if reads_upstream else []) + list(params)
        assert list(sig.parameters) == expected, fname
        for pname, p in sig.parameters.items():
            assert p.default == params.get(pname, inspect.Parameter.empty)
    for w in recipe.wrt:
        assert f"vjp_{w}" in fns
        assert (f"grad_{w}" in fns) == scalar
        assert (f"jacobian_{w}" in fns) == (out_rank == 1 and len(recipe.input(w).shape) == 1)
    if name in ("softmax", "relu", "leaky-relu", "sigmoid", "tanh"):
        assert f"jacobian_{recipe.wrt[0]}" in fns
    if name in ("mse", "mse-half"):
        assert "grad_Y" in fns


def test_upstream_keyword_is_the_recipes(lowered):
    assert "G" in inspect.signature(module.load(lowered["linear"])["vjp_W"]).parameters
    assert "g" in inspect.signature(module.load(lowered["softmax"])["vjp_z"]).parameters


@pytest.mark.parametrize("name", recipe_params(RECIPES))
def test_docstring_states_recipe_forward_formulas_and_verification(lowered, name, shared_derivations):
    d = api.derive_recipe(name)
    mod = module.load_module(lowered[name])
    doc = mod.__doc__
    assert doc.startswith(f"{name}: ")

    def flat(text):  # long formulas are wrapped in docstrings
        return " ".join(text.split())

    assert flat(d.forward_pretty) in flat(doc)
    for dv in d.derivatives:
        assert flat(dv.matrix.pretty) in flat(doc)
        assert flat(dv.matrix.verification.detail[1:]) in flat(doc)  # "Verified ... at ..."
        fn_doc = getattr(mod, f"{module.KIND_PREFIX[dv.kind]}_{dv.wrt}").__doc__
        assert flat(fn_doc).startswith(flat(f"{dv.lhs_pretty} = {dv.matrix.pretty}"))
        assert flat(dv.matrix.verification.detail[1:]) in flat(fn_doc)
    for c in d.conventions:
        assert " ".join(c.split()) in " ".join(doc.split())


def test_user_text_in_the_docstring_cannot_break_out(tmp_path, monkeypatch):
    summary = 'evil """ \\ end"'
    (tmp_path / "evil.toml").write_text(
        'name = "evil"\nsummary = "evil \\"\\"\\" \\\\ \\u0007 end\\""\nforward = "2*x"\n'
        '[inputs]\nx = "n"\n', encoding="utf-8")
    low = api.lower_recipe("evil", recipe_dirs=[tmp_path])
    mod = write_and_import(low, tmp_path)
    assert mod.__doc__.splitlines()[0] == "evil: " + summary.replace("\\ end", "\\ \\x07 end")
    np.testing.assert_array_equal(mod.vjp_x(x=np.ones(3), g=np.arange(3.0)), 2 * np.arange(3.0))


@pytest.mark.parametrize("expr,shapes,words", [
    ("sum(n * n)", {"n": "n"}, "dimension 'n' of n has the name of the input 'n'"),
])
def test_names_the_module_cannot_use_are_refused(expr, shapes, words):
    with pytest.raises(DerivkitError, match=words):
        api.lower_expression(expr, [next(iter(shapes))], shapes)


# ---------------------------------------------------------------------------- the gate
def _unverified(self, kind, form):
    return Verification(False, "none", (), "simplification was inconclusive")


def test_an_unverified_form_is_refused(monkeypatch):
    import derivkit.derivation.engine as engine

    monkeypatch.setattr(engine.Verifier, "check_matrix", _unverified)
    with pytest.raises(DerivkitError) as info:
        api.lower_recipe("linear", wrt=["W"])
    msg = info.value.one_line()
    assert "∂L/∂W = Xᵀ G" in msg and "NOT VERIFIED" in msg and "inconclusive" in msg


def test_one_unverified_form_refuses_the_whole_module(monkeypatch):
    import derivkit.derivation.engine as engine

    real = engine.Verifier.check_matrix

    def only_jacobian_fails(self, kind, form):
        return _unverified(self, kind, form) if kind == "jacobian" else real(self, kind, form)

    monkeypatch.setattr(engine.Verifier, "check_matrix", only_jacobian_fails)
    with pytest.raises(DerivkitError, match=r"jacobian ∂p/∂z .*NOT VERIFIED"):
        api.lower_recipe("softmax")


def test_the_gate_without_the_engine():
    """module.lower on a hand-built derivation whose matrix form is not verified."""
    from conftest import make_linear_derivation

    with pytest.raises(DerivkitError, match="NOT VERIFIED"):
        module.lower(recipes.load("linear"), make_linear_derivation(matrix_verified=False))
    with pytest.raises(DerivkitError, match="no closed matrix form"):
        module.lower(recipes.load("linear"), make_linear_derivation(with_matrix=False))


def test_cli_refuses_unverified_exit_2_one_line_nothing_written(runner, monkeypatch, tmp_path):
    import derivkit.derivation.engine as engine

    monkeypatch.setattr(engine.Verifier, "check_matrix", _unverified)
    out = tmp_path / "grads.py"
    result = runner.invoke(app, ["lower", "softmax", "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("derivkit: error: ")
    assert "NOT VERIFIED" in result.stderr
    assert not out.exists() and result.stdout == ""


# ---------------------------------------------------------------------------- CLI
def test_cli_prints_the_source(runner, lowered):
    result = runner.invoke(app, ["lower", "linear"])
    assert result.exit_code == 0, result.output
    assert result.stdout == lowered["linear"].source   # plain when not a terminal: pipe to a file
    assert ANSI not in result.stdout


def test_cli_writes_the_file(runner, tmp_path, lowered):
    out = tmp_path / "linear_grads.py"
    result = runner.invoke(app, ["lower", "linear", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == lowered["linear"].source
    assert result.stdout.count("\n") == 1
    assert str(out) in result.stdout and "vjp_W" in result.stdout
    assert import_file(out).vjp_W.__doc__.startswith("∂L/∂W = Xᵀ G")


def test_cli_refuses_to_overwrite_without_force(runner, tmp_path):
    out = tmp_path / "grads.py"
    out.write_text("keep me\n")
    result = runner.invoke(app, ["lower", "linear", "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "--force" in result.stderr
    assert out.read_text() == "keep me\n"
    result = runner.invoke(app, ["lower", "linear", "-o", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert "def vjp_W" in out.read_text()


def test_cli_expression(runner, tmp_path):
    out = tmp_path / "trace_grads.py"
    result = runner.invoke(app, ["lower", "--expr", "trace(A @ X)", "--wrt", "X",
                                 "--shape", "A=n,n", "--shape", "X=n,n", "--output", str(out)])
    assert result.exit_code == 0, result.output
    mod = import_file(out)
    A = np.random.default_rng(1).standard_normal((3, 3))
    np.testing.assert_array_equal(mod.grad_X(A=A, X=A), A.T)


def test_cli_expression_param_becomes_the_default(runner):
    result = runner.invoke(app, ["lower", "-e", "leaky_relu(x, alpha)", "--wrt", "x",
                                 "--shape", "x=n", "--param", "alpha=0.1"])
    assert result.exit_code == 0, result.output
    assert "def vjp_x(*, x, g, alpha=0.1):" in result.stdout


@pytest.mark.parametrize("args, words", [
    (["lower", "sofmax"], "did you mean 'softmax'"),
    (["lower"], "give a recipe NAME or --expr"),
    (["lower", "linear", "--expr", "x"], "not both"),
    (["lower", "linear", "--shape", "X=m,n"], "--expr only"),
    (["lower", "linear", "--wrt", "Q"], "not an input"),
    (["lower", "--expr", "sum(x)", "--shape", "x=n"], "--wrt"),
    (["lower", "linear", "-o", "/nonexistent-dir/x.py"], "does not exist"),
])
def test_cli_usage_errors_exit_2_one_line(runner, args, words):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("derivkit: error: ")
    assert words in result.stderr
    assert "Traceback" not in result.output


def test_cli_output_is_a_folder(runner, tmp_path):
    result = runner.invoke(app, ["lower", "linear", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "is a directory" in result.stderr and result.stderr.count("\n") == 1


def test_lower_help_is_light(tmp_path):
    code = ("import sys, json\nfrom derivkit.cli import app\n"
            "try:\n    app(args=['lower', '--help'], prog_name='derivkit')\n"
            "except SystemExit:\n    pass\n"
            "print('@@' + json.dumps(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('sympy', 'numpy'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=dict(os.environ, NO_COLOR="1"))
    assert "@@" in proc.stdout, proc.stderr
    assert "derivkit lower" in proc.stdout
    assert json.loads(proc.stdout.rsplit("@@", 1)[1]) == []


def test_source_is_highlighted_on_a_colour_terminal(monkeypatch, capsys, lowered):
    import re

    from derivkit.render.lower_render import print_source as _print_source

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    _print_source(lowered["softmax"].source)
    out = capsys.readouterr().out
    assert ANSI in out
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert [ln.rstrip() for ln in plain.splitlines()] == \
        [ln.rstrip() for ln in lowered["softmax"].source.splitlines()]
    monkeypatch.setenv("NO_COLOR", "1")
    _print_source(lowered["softmax"].source)
    assert capsys.readouterr().out == lowered["softmax"].source


def test_jacobian_without_a_closed_form_is_built_from_the_verified_vjp():
    """diag(x) A x has no closed matrix Jacobian; jacobian_x stacks the vjp at unit vectors."""
    lowered = api.lower_expression("diag(x) @ A @ x", ["x"], {"x": "n", "A": "n,n"})
    fns = module.load(lowered)
    rng = np.random.default_rng(3)
    x, A = rng.normal(size=4), rng.normal(size=(4, 4))
    want = np.diag(A @ x) + np.diag(x) @ A          # ∂(x ⊙ Ax)/∂x by hand
    np.testing.assert_allclose(fns["jacobian_x"](x=x, A=A), want, rtol=1e-12)
    g = rng.normal(size=4)
    np.testing.assert_allclose(g @ fns["jacobian_x"](x=x, A=A), fns["vjp_x"](x=x, A=A, g=g), rtol=1e-12)


def test_an_unverified_index_form_does_not_stop_lowering(monkeypatch):
    """The module computes the matrix forms only; an index form's status is derive's to show."""
    import derivkit.derivation.engine as engine

    monkeypatch.setattr(engine.Verifier, "check_index", lambda self, form: _unverified(self, "", form))
    d = api.derive_recipe("linear", wrt=["W"])
    assert not d.derivatives[0].index.verification.verified
    fns = module.load(api.lower_recipe("linear", wrt=["W"]))
    X, G = np.ones((2, 3)), np.arange(8.0).reshape(2, 4)
    np.testing.assert_array_equal(fns["vjp_W"](X=X, W=np.ones((3, 4)), b=np.ones(4), G=G), X.T @ G)
