"""`derivkit lower --target torch` (issue 14): every built-in recipe as a torch.autograd.Function
whose backward is the derived, verified one, checked by torch.autograd.gradcheck (float64)
against torch's own finite differences; a mutated backward fails it. Writing the module needs
no torch (a subprocess shows it is never imported); running it does (importorskip)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ByName, optional, recipe_params

from derivkit import api
from derivkit.derivation.engine import derive
from derivkit.lang import ir, recipes
from derivkit.lang.ops import ELEMENTWISE
from derivkit.lowering import emit, torch_module

pytestmark = pytest.mark.usefixtures("shared_derivations")

REPO = Path(__file__).resolve().parent.parent
BUILT_IN = sorted(p.stem for p in (REPO / "recipes").glob("*.toml"))
CE = "-sum(log_softmax(Z)[arange(m), y]) / m"   # cross-entropy with integer class labels


def _lower(recipe):
    return torch_module.lower(recipe, derive(recipe))


LOWERED = ByName(lambda name: _lower(recipes.load(name)))


def _module(source: str):
    return emit.load_module(source, "derivkit_torch_test", "<derivkit torch test>", target="torch")


def _arguments(recipe, torch, seed: int = 0) -> tuple:
    """float64 inputs at small sizes (3 or 4), requires_grad for wrt; labels
    int64 without grad; then the parameters' defaults."""
    g = torch.Generator().manual_seed(seed)
    dims = sorted({d for i in recipe.inputs for d in i.shape if isinstance(d, str)})
    sizes = {d: 3 + k % 2 for k, d in enumerate(dims)}   # 2 features would make layer norm degenerate
    args = []
    for i in recipe.inputs:
        shape = tuple(sizes.get(d, d) for d in i.shape)
        if i.domain == recipes.INTEGER:
            k = min(sizes[d] for d in sizes)
            args.append(torch.randint(0, k, shape, generator=g))
            continue
        x = torch.randn(shape, dtype=torch.float64, generator=g)
        if i.domain == "nonzero":   # away from relu's kink
            x = x + torch.sign(x) * 0.1
        args.append(x.requires_grad_(i.name in recipe.wrt))
    return (*args, *(p.default for p in recipe.params))


@pytest.mark.parametrize("name", recipe_params(BUILT_IN))
def test_every_built_in_recipe_passes_gradcheck(name):
    torch = optional("torch")
    recipe = recipes.load(name)
    lowered = LOWERED[name]
    module = _module(lowered.source)
    cls, fname = lowered.functions
    args = _arguments(recipe, torch)
    assert torch.autograd.gradcheck(getattr(module, cls).apply, args)
    # the plain function is the same Function, parameters as keywords
    params = {p.name: p.default for p in recipe.params}
    inputs = args[:len(recipe.inputs)]
    out = getattr(module, fname)(*inputs, **params)
    torch.testing.assert_close(out, getattr(module, cls).apply(*args))
    assert out.requires_grad


@pytest.mark.xdist_group("transformer-block")
def test_the_forward_is_the_numpy_modules_forward():
    torch = optional("torch")
    from derivkit.lowering.module import load, lower

    recipe = recipes.load("transformer-block")
    numpy_forward = load(lower(recipe, derive(recipe)))["forward"]
    args = _arguments(recipe, torch, seed=1)
    module = _module(LOWERED["transformer-block"].source)
    names = [i.name for i in recipe.inputs]
    want = numpy_forward(**{n: a.detach().numpy() for n, a in zip(names, args)})
    got = module.TransformerBlock.apply(*args).detach()
    assert abs(float(got) - float(want)) <= 1e-12 * max(1.0, abs(float(want)))


@pytest.mark.parametrize("name, old, new", [
    ("linear", "return X.mT @ G", "return -(X.mT @ G)"),                   # sign flipped
    pytest.param("transformer-block", "dWk = A.mT @ (dS.mT @", "dWk = A.mT @ (dS @",   # a transpose
                 marks=pytest.mark.xdist_group("transformer-block")),               # dropped
    ("attention-batched", "torch.softmax(", "torch.sigmoid(0.0 * 1 + "),   # not the forward's own
])
def test_a_mutated_backward_fails_gradcheck(name, old, new):
    torch = optional("torch")
    source = LOWERED[name].source
    assert old in source
    mutated = source.replace(old, new)
    if name == "attention-batched":   # only the backward's recomputed P: the forward stays right
        head, _, tail = source.partition("def _backward(")
        mutated = head + "def _backward(" + tail.replace("torch.softmax(S, dim=-1)",
                                                          "torch.softmax(S, dim=-2)")
        assert mutated != source
    module = _module(mutated)
    cls = getattr(module, LOWERED[name].functions[0])
    args = _arguments(recipes.load(name), torch)
    assert not torch.autograd.gradcheck(cls.apply, args, raise_exception=False)


def test_labels_and_parameters_get_no_gradient():
    torch = optional("torch")
    recipe = api.recipe_from_expression(CE, ["Z"], {"Z": "m,k", "y": "m:int"})
    module = _module(_lower(recipe).source)
    Z = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 3, 1, 1, 2])
    assert torch.autograd.gradcheck(module.Expr.apply, (Z, y))
    loss = module.expr(Z, y)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(Z, y))
    (dZ,) = torch.autograd.grad(loss, Z)
    torch.testing.assert_close(dZ, (torch.softmax(Z, -1) - torch.eye(4)[y].double()) / 5)
    # a parameter is a keyword of the plain function and gets None from backward
    leaky = _module(LOWERED["leaky-relu"].source)
    x = torch.tensor([-2.0, 3.0], dtype=torch.float64, requires_grad=True)
    y2 = leaky.leaky_relu(x, alpha=0.5)
    torch.testing.assert_close(y2, torch.tensor([-1.0, 3.0], dtype=torch.float64))
    y2.backward(torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(x.grad, torch.tensor([0.5, 1.0], dtype=torch.float64))
    assert "return _grad_x, None" in LOWERED["leaky-relu"].source


def test_every_elementwise_function_and_node_type_has_a_torch_lowering():
    assert sorted(torch_module.TORCH_ELEMENTWISE) == sorted(ELEMENTWISE)
    nodes = [c for c in vars(ir).values() if isinstance(c, type) and issubclass(c, ir.Node)
             and c is not ir.Node and hasattr(c, "__dataclass_fields__")]
    assert [t.__name__ for t in nodes if t not in torch_module.TorchPrinter.RULES] == []


@pytest.mark.parametrize("old, new, says", [
    ("import torch\n", "import torch\nimport os\n", "imports"),
    ("return X @ W + b", "return exec(X)", "'exec' is not bound"),
    ("_ctx.save_for_backward(X, W, b)", "_ctx.__class__.x = X", "assigns to"),
    ("return Linear.apply(X, W, b)", "return Linear.apply(X, W, b).numpy()", "Function.apply"),
    ("class Linear(torch.autograd.Function):", "class Linear(object):", "autograd.Function"),
])
def test_the_audit_reads_torch_modules_form_by_form(old, new, says):
    source = LOWERED["linear"].source
    assert old in source
    with pytest.raises(emit.EmitError, match=says):
        emit.audit(source.replace(old, new), alias="torch", target="torch")
    emit.audit(source, alias="torch", target="torch")   # the module as written passes


def test_writing_a_torch_module_needs_no_torch():
    code = ("import sys\n"
            "import derivkit\n"
            "from derivkit.lang import recipes\n"
            "from derivkit.derivation.engine import derive\n"
            "from derivkit.lowering import torch_module\n"
            "r = recipes.load('linear')\n"
            "src = torch_module.lower(r, derive(r)).source\n"
            "assert 'class Linear(torch.autograd.Function)' in src\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_cli_lower_target_torch(tmp_path):
    from typer.testing import CliRunner

    from derivkit.cli.app import app

    runner = CliRunner()
    out = tmp_path / "linear_torch.py"
    done = runner.invoke(app, ["lower", "linear", "--target", "torch", "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert "as a PyTorch module with Linear, linear" in done.stdout
    assert "class Linear(torch.autograd.Function)" in out.read_text()
    printed = runner.invoke(app, ["lower", "--expr", "sum(X @ W)", "--wrt", "W", "--shape",
                                  "X=m,n", "--shape", "W=n,k", "--target", "torch"])
    assert printed.exit_code == 0 and "class Expr(torch.autograd.Function)" in printed.stdout
    default = runner.invoke(app, ["lower", "linear"])
    assert "import numpy as np" in default.stdout and "torch" not in default.stdout
    bad = runner.invoke(app, ["lower", "linear", "--target", "jax"])
    assert bad.exit_code == 2 and "give numpy or torch" in bad.output



@pytest.mark.parametrize("expr", ["max(X)", "sum(X, keepdims=True)*X", "mean(X, keepdims=True)*X",
                                  "logsumexp(X, keepdims=True)*X", "std(X, ddof=1)"])
def test_reductions_over_every_axis_with_keepdims_pass_gradcheck(expr):
    """torch has no keepdim without dim: found in review (the module was written, every call
    raised TypeError). Against torch's own autograd of the same forward, too."""
    torch = optional("torch")
    import derivkit

    module = derivkit.load(derivkit.lower(expr, wrt="X", shapes={"X": "m,n"}, to="torch"))
    X = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2),
                    requires_grad=True)
    assert torch.autograd.gradcheck(module.Expr.apply, (X,))
    ours, = torch.autograd.grad(module.Expr.apply(X).sum(), X)
    plain = {"max(X)": lambda x: x.max(), "sum(X, keepdims=True)*X": lambda x: x.sum() * x,
             "mean(X, keepdims=True)*X": lambda x: x.mean() * x,
             "logsumexp(X, keepdims=True)*X": lambda x: torch.logsumexp(x.reshape(-1), 0) * x,
             "std(X, ddof=1)": lambda x: x.std()}[expr]
    theirs, = torch.autograd.grad(plain(X).sum(), X)
    torch.testing.assert_close(ours, theirs)


def test_a_constant_forward_is_a_tensor():
    """Found in review: the forward of `2.0` returned a Python float from Function.apply."""
    torch = optional("torch")
    import derivkit

    module = derivkit.load(derivkit.lower("2.0", wrt="x", shapes={"x": "n"}, to="torch"))
    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    y = module.Expr.apply(x)
    assert isinstance(y, torch.Tensor) and float(y.detach()) == 2.0
    y.backward()
    assert torch.equal(x.grad, torch.zeros(3, dtype=torch.float64))
