"""The Python API. Its documented part (README, "Python API") is re-exported by the package:
`derivkit.derive`, `check`, `check_all`, `verify`, `lower`, `load`, `train`, each taking a recipe
name, a recipe file or an expression with `shapes=`; below them are the functions the CLI calls
(`derive_recipe`, `check_expression`, …). Heavy modules (SymPy, NumPy) are imported inside
functions so that `derivkit --help` and `derivkit list` stay light.

Every function that derives, checks, lowers or verifies also takes `timeout=None`: a wall-clock
budget in seconds (as the CLI's `--timeout`), past which it raises `errors.BudgetExceeded` (a
`DerivkitError`) saying what was running. It needs SIGALRM, so it applies on POSIX in the main
thread only; elsewhere it is ignored (see `derivkit.limits`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import BudgetExceeded, DerivkitError
from .lang import recipes as _recipes
from .limits import with_timeout as _timeout
from .results import CheckReport, ClaimVerdict, Derivation, Lowered, RecipeSummary, TargetCheck


def list_recipes(recipe_dirs: list[str | Path] | None = None) -> list[RecipeSummary]:
    """Every recipe on the search path (built-ins, $DERIVKIT_RECIPES, `recipe_dirs`)."""
    return [RecipeSummary(r.name, r.summary, tuple((i.name, i.shape_text) for i in r.inputs),
                          r.wrt, r.path)
            for r in _recipes.load_all(recipe_dirs)]


@_timeout("derive")
def derive_recipe(name: str, *, recipe_dirs: list[str | Path] | None = None,
                  wrt: list[str] | None = None) -> Derivation:
    """Derive every derivative a recipe declares (or only `wrt`), verified element-wise."""
    recipe = _load_with_wrt(name, recipe_dirs, wrt)
    from .derivation.engine import derive

    return derive(recipe)


def recipe_from_expression(expr: str, wrt: list[str], shapes: dict[str, str],
                           params: dict[str, float] | None = None,
                           domains: dict[str, str] | None = None) -> _recipes.Recipe:
    """A one-off recipe for `--expr`: inputs are the names given shapes; params are scalars.
    `S = X @ W; H = tanh(S); sum(H)` declares named steps (a composite recipe) before the
    output's expression."""
    from .lang.parse import split_statements

    if not shapes:
        raise DerivkitError("⟨--expr|an expression⟩ needs the shape of every input",
                            "e.g. ⟨--shape X=n,n|shapes={'X': 'n,n'}⟩")
    if not wrt:
        raise DerivkitError("⟨--expr|an expression⟩ needs ⟨--wrt|wrt=⟩ naming the input(s) to differentiate")
    data: dict[str, Any] = {"name": "expr", "summary": " ".join(str(expr).split())[:200],
                            "inputs": dict(shapes), "params": dict(params or {}), "wrt": list(wrt)}
    assignments, result = split_statements(expr) if isinstance(expr, str) else ([], expr)
    output_expr = result if assignments else None   # named steps, then the output's expression
    if assignments:
        data["steps"] = [{"name": n, "expr": e} for n, e in assignments]
    else:
        data["forward"] = expr
    recipe = _build_expression_recipe(data, output_expr)
    inferred = _natural_domains(recipe)
    inferred.update(domains or {})
    if not inferred:
        return recipe
    data["domain"] = inferred
    return _build_expression_recipe(data, output_expr)


def _build_expression_recipe(data: dict[str, Any], output_expr: str | None) -> _recipes.Recipe:
    try:   # the output is f (fout, ... where a declared name is f), the upstream g (gout, ...)
        return _recipes.parse_recipe(data, "⟨--expr|the expression⟩", default_output="f",
                                     output_expr=output_expr)
    except _recipes.RecipeError as exc:
        raise DerivkitError(exc.template.replace("⟨--expr|the expression⟩: ", ""),
                            exc.hint_template) from None


@_timeout("derive")
def derive_expression(expr: str, wrt: list[str], shapes: dict[str, str],
                      params: dict[str, float] | None = None) -> Derivation:
    recipe = recipe_from_expression(expr, wrt, shapes, params)
    from .derivation.engine import derive

    return derive(recipe)


def _natural_domains(recipe: _recipes.Recipe) -> dict[str, str]:
    """Sampling domains implied by the expression: an input passed straight to log or sqrt is
    sampled positive, one passed straight to a kink (relu, leaky_relu, abs) away from 0 (the
    op table's `domain` and `kink`)."""
    from .lang import ir
    from .lang.ops import ELEMENTWISE
    from .lang.program import program

    try:
        node = program(recipe).out
    except BudgetExceeded:
        raise
    except DerivkitError:
        return {}  # the real parse reports it, with its context
    out: dict[str, str] = {}
    for n in ir.walk(node):
        if isinstance(n, ir.Apply) and isinstance(n.a, ir.Var) and n.a.role == "input":
            fn = ELEMENTWISE[n.fn]
            if fn.domain == "positive":
                out[n.a.name] = "positive"
            elif fn.kink is not None:
                out.setdefault(n.a.name, "nonzero")
    return out


def load_recipe(target: str | Path, recipe_dirs: list[str | Path] | None = None) -> _recipes.Recipe:
    """A recipe by name (on the search path), or from a file when `target` is a Path or ends in
    .toml."""
    if isinstance(target, Path) or str(target).endswith(".toml"):
        path = Path(target)
        if not path.is_file():
            raise DerivkitError(f"no recipe file {str(path)!r}",
                                "give the path of a TOML recipe, or a recipe's name")
        return _recipes.load_file(path)
    return _recipes.load(str(target), recipe_dirs)


def _load_with_wrt(name: str | Path, recipe_dirs: list[str | Path] | None,
                   wrt: list[str] | None) -> _recipes.Recipe:
    """The recipe, restricted to the inputs in `wrt` (each must be one of its inputs)."""
    from dataclasses import replace

    recipe = load_recipe(name, recipe_dirs)
    if not wrt:
        return recipe
    inputs = [i.name for i in recipe.inputs]
    for w in wrt:
        if w not in inputs:
            raise DerivkitError(f"⟨--wrt|wrt⟩ {w!r} is not an input of recipe {recipe.name!r}",
                                f"inputs: {', '.join(inputs)}")
    return replace(recipe, wrt=tuple(wrt))


@_timeout("check")
def check_recipe(name: str, *, recipe_dirs: list[str | Path] | None = None,
                 wrt: list[str] | None = None, mode: str = "auto", sizes: dict[str, int] | None = None,
                 seed: int = 0, dtype: str = "float64", rtol: float | None = None,
                 atol: float | None = None, directions: int = 8,
                 params: dict[str, float] | None = None) -> TargetCheck:
    """Check every derivative of a recipe against finite differences (-> results.TargetCheck)."""
    recipe = _load_with_wrt(name, recipe_dirs, wrt)
    from .checking.runner import check

    return check(recipe, mode=mode, sizes=sizes, seed=seed, dtype=dtype, rtol=rtol, atol=atol,
                 directions=directions, params=params)


@_timeout("check")
def check_expression(expr: str, wrt: list[str], shapes: dict[str, str],
                     params: dict[str, float] | None = None, **options: Any) -> TargetCheck:
    recipe = recipe_from_expression(expr, wrt, shapes, params)
    from .checking.runner import check

    return check(recipe, params=params, **options)


@_timeout("check")
def check_implementation(impl: str | Callable[..., Any], name: str | None = None, *, expr: str | None = None,
                         shapes: dict[str, str] | None = None,
                         recipe_dirs: list[str | Path] | None = None, wrt: list[str] | None = None,
                         params: dict[str, float] | None = None, **options: Any) -> TargetCheck:
    """Check a hand-written backward function against finite differences and derivkit's
    derivation, for a recipe `name` or an expression `expr` (-> results.TargetCheck whose failed
    results carry diagnoses). `impl` is 'FILE.py:FUNCTION' (FILE is imported and run as Python:
    only pass code you trust) or a callable; see `derivkit.audit.impl` for the calling convention.
    `options` are those of `check_recipe`."""
    from .audit.impl import check

    if expr is not None:
        recipe = recipe_from_expression(expr, list(wrt or []), dict(shapes or {}), params)
        full_wrt = recipe.wrt
    elif name is None:
        raise DerivkitError("check_implementation needs a recipe name or expr=")
    else:
        full_wrt = load_recipe(name, recipe_dirs).wrt
        recipe = _load_with_wrt(name, recipe_dirs, wrt)
    return check(recipe, impl, full_wrt=full_wrt, params=params, **options)


@_timeout("check")
def check_all(*, recipe_dirs: list[str | Path] | None = None,
              progress: Callable[[str], object] | None = None, **options: Any) -> CheckReport:
    """Check every recipe on the search path (-> results.CheckReport). `progress(name)` is
    called before each recipe. A recipe that cannot be loaded or checked is a failed target."""
    from .checking.runner import check_all as _check_all

    return _check_all(recipe_dirs=recipe_dirs, progress=progress, **options)


@_timeout("lower")
def lower_recipe(name: str, *, recipe_dirs: list[str | Path] | None = None,
                 wrt: list[str] | None = None, target: str = "numpy") -> Lowered:
    """A standalone NumPy module (-> results.Lowered) with `forward` and, per input, its verified
    `vjp_x` (plus `grad_x` for scalar outputs, `jacobian_x` for vector -> vector). Raises
    DerivkitError if a form is not verified. `derivkit.lowering.module.load(lowered)` gives the callables."""
    recipe = _load_with_wrt(name, recipe_dirs, wrt)
    return _lower(recipe, target)


@_timeout("lower")
def lower_expression(expr: str, wrt: list[str], shapes: dict[str, str],
                     params: dict[str, float] | None = None, target: str = "numpy") -> Lowered:
    """`lower_recipe` for an expression; parameters become keywords with their given values."""
    return _lower(recipe_from_expression(expr, wrt, shapes, params), target)


def _lower(recipe: _recipes.Recipe, target: str = "numpy") -> Lowered:
    """The NumPy module (`target="numpy"`) or the torch.autograd.Function module ("torch")."""
    if target not in ("numpy", "torch"):
        raise DerivkitError(f"⟨--target|to⟩ {target!r}: give 'numpy' or 'torch'")
    from .derivation.engine import derive

    if target == "torch":
        from .lowering.torch_module import lower as lower_torch

        return lower_torch(recipe, derive(recipe))
    from .lowering.module import lower

    return lower(recipe, derive(recipe))


@_timeout("verify")
def verify_recipe(name: str, claim: str, *, recipe_dirs: list[str | Path] | None = None,
                  wrt: list[str] | None = None, seed: int = 0) -> ClaimVerdict:
    """Is `claim` (matrix or index form) the derivative of recipe `name` w.r.t. the one input in
    `wrt`? (-> results.ClaimVerdict: verified, refuted with a counterexample, or not verified)"""
    recipe = _load_with_wrt(name, recipe_dirs, wrt)
    from .audit.claim import verify_claim

    return verify_claim(recipe, claim, seed=seed)


@_timeout("verify")
def verify_expression(expr: str, claim: str, wrt: list[str], shapes: dict[str, str],
                      params: dict[str, float] | None = None, *, seed: int = 0) -> ClaimVerdict:
    recipe = recipe_from_expression(expr, wrt, shapes, params)
    from .audit.claim import verify_claim

    return verify_claim(recipe, claim, seed=seed)


# ---------------------------------------------------------------- the documented Python API
# `derivkit.derive`, `check`, `check_all`, `verify`, `lower`, `load`, `train` (re-exported by the
# package, imported on first use). Each takes a target: a recipe name ("softmax"), a recipe file
# ("my.toml" or a Path), or an expression with `shapes=` (and `wrt=`).

Shapes = dict[str, str | tuple[int | str, ...] | list[int | str] | int]


def _shape_text(name: str, value: object) -> str:
    """A shape given as "m,n", ("m", "n"), (3, 4), 5 or "scalar" -> the text recipes read."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, (tuple, list)) and all(
            isinstance(d, (int, str)) and not isinstance(d, bool) for d in value):
        return ",".join(str(d) for d in value) if value else "scalar"
    raise DerivkitError(f"shape of {name!r}: give dimensions as text or a tuple, e.g. 'm,n' or "
                        f"('m', 'n') or (3, 4), not {type(value).__name__}")


def _names(value: str | list[str] | tuple[str, ...] | None, what: str) -> list[str] | None:
    """`wrt="W"`, `wrt="W,b"` or `wrt=["W", "b"]`."""
    if value is None:
        return None
    if not isinstance(value, (str, list, tuple)):
        raise DerivkitError(f"{what}: give input names as strings, e.g. {what}=['W', 'b'], not "
                            f"{type(value).__name__}")
    items = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(v, str) for v in items):
        raise DerivkitError(f"{what}: give input names as strings, e.g. {what}=['W', 'b']")
    return [n.strip() for v in items for n in v.split(",") if n.strip()]


def _target(target: str | Path, *, wrt: str | list[str] | tuple[str, ...] | None = None,
            shapes: Shapes | None = None, params: dict[str, float] | None = None,
            recipe_dirs: list[str | Path] | None = None) -> _recipes.Recipe:
    """The recipe a target names: an expression when `shapes` is given, a recipe file when it is
    a Path or ends in .toml, else a recipe on the search path."""
    import re

    from .lang.shapes import refuse_separator_typo

    names = _names(wrt, "wrt")
    if not isinstance(target, (str, Path)):
        raise DerivkitError(f"target: give a recipe name, a recipe file or an expression, not "
                            f"{type(target).__name__}")
    if isinstance(recipe_dirs, (str, Path)):
        recipe_dirs = [recipe_dirs]
    if shapes is not None:
        if not isinstance(shapes, dict):
            raise DerivkitError("shapes: give a dict of input name to shape, e.g. {'X': 'm,n'}")
        text = {str(k): _shape_text(str(k), v) for k, v in shapes.items()}
        for name, dims in text.items():
            refuse_separator_typo(name, dims)
        return recipe_from_expression(str(target), names or [], text, params)
    if isinstance(target, str) and not target.endswith(".toml") and \
            not re.fullmatch(r"[A-Za-z0-9_.-]+", target):
        raise DerivkitError(f"{target[:60]!r} is not a recipe name",
                            "for an expression, give the shape of every input: shapes={'X': 'm,n'}")
    return _load_with_wrt(target, recipe_dirs, names)


def _number(name: str, value: object, kind: type = float, *, optional: bool = False) -> None:
    """A keyword of the API that must be a number (an int where `kind` is int)."""
    if optional and value is None:
        return
    ok = isinstance(value, int) if kind is int else isinstance(value, (int, float))
    if not ok or isinstance(value, bool):
        raise DerivkitError(f"{name}: give {'a whole number' if kind is int else 'a number'}, "
                            f"not {value!r:.40}")


@_timeout("derive")
def derive(target: str | Path, *, wrt: str | list[str] | None = None, shapes: Shapes | None = None,
           params: dict[str, float] | None = None,
           recipe_dirs: list[str | Path] | None = None) -> Derivation:
    """Derive every derivative of `target` (or only those in `wrt`), each form verified.

    >>> d = derivkit.derive("sum(X @ W)", wrt="W", shapes={"X": "m,n", "W": "n,k"})
    >>> d.derivatives[0].matrix_form        # 'X.T @ ones((m, k))'-like text, verified
    """
    from .derivation.engine import derive as _derive

    return _derive(_target(target, wrt=wrt, shapes=shapes, params=params, recipe_dirs=recipe_dirs))


@_timeout("check")
def check(target: str | Path, *, wrt: str | list[str] | None = None, shapes: Shapes | None = None,
          params: dict[str, float] | None = None, impl: str | Callable[..., Any] | None = None,
          sizes: dict[str, int] | None = None, mode: str = "auto", seed: int = 0,
          dtype: str = "float64", rtol: float | None = None, atol: float | None = None,
          directions: int = 8, recipe_dirs: list[str | Path] | None = None) -> TargetCheck:
    """Check `target`'s derived gradients against finite differences (-> TargetCheck; `.passed`).

    With `impl` (a callable, or "FILE.py:FUNCTION" — imported and run: only code you trust), the
    user's backward function is checked instead, against finite differences and the derivation.
    """
    if sizes is not None and not (isinstance(sizes, dict) and all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in sizes.items())):
        raise DerivkitError(f"sizes: give a dict of dimension name to whole number, e.g. "
                            f"{{'m': 64}}, not {sizes!r:.60}")
    _number("seed", seed, int)
    _number("directions", directions, int)
    _number("rtol", rtol, optional=True)
    _number("atol", atol, optional=True)
    if impl is not None and not (callable(impl) or isinstance(impl, str)):
        raise DerivkitError(f"impl: give your backward function, or 'FILE.py:FUNCTION', not "
                            f"{type(impl).__name__}")
    options: dict[str, Any] = dict(sizes=sizes, mode=mode, seed=seed, dtype=dtype, rtol=rtol,
                                   atol=atol, directions=directions, params=params)
    recipe = _target(target, wrt=wrt, shapes=shapes, params=params, recipe_dirs=recipe_dirs)
    if impl is not None:
        from .audit.impl import check as _check_impl

        full = recipe if shapes is not None or wrt is None else _target(
            target, shapes=shapes, params=params, recipe_dirs=recipe_dirs)
        return _check_impl(recipe, impl, full_wrt=full.wrt, **options)
    from .checking.runner import check as _check

    return _check(recipe, **options)


@_timeout("verify")
def verify(target: str | Path, claim: str, *, wrt: str | list[str] | None = None,
           shapes: Shapes | None = None, params: dict[str, float] | None = None, seed: int = 0,
           recipe_dirs: list[str | Path] | None = None) -> ClaimVerdict:
    """Is `claim` (a matrix form like "X.T @ G" or an index form like "p[i]*(delta(i,j) - p[j])")
    the derivative of `target` with respect to `wrt`? (-> ClaimVerdict: `.verdict` is "verified",
    "refuted" with a counterexample, or "not verified")."""
    from .audit.claim import verify_claim

    recipe = _target(target, wrt=wrt, shapes=shapes, params=params, recipe_dirs=recipe_dirs)
    return verify_claim(recipe, claim, seed=seed)


@_timeout("lower")
def lower(target: str | Path, *, wrt: str | list[str] | None = None, shapes: Shapes | None = None,
          params: dict[str, float] | None = None, to: str = "numpy",
          recipe_dirs: list[str | Path] | None = None) -> str:
    """The source of a standalone NumPy module computing `target`'s forward and its verified
    gradients (`forward`, `vjp_x`, `grad_x`, …; `backward` for a program of steps), or with
    `to="torch"` a module with a `torch.autograd.Function` whose backward is the verified one.
    Raises DerivkitError if a form is not verified. Run it with `derivkit.load(source)`."""
    return _lower(_target(target, wrt=wrt, shapes=shapes, params=params,
                          recipe_dirs=recipe_dirs), to).source


def load(source: str | Lowered) -> Any:
    """A module (attribute access: `m.forward`, `m.vjp_W`) from source that `derivkit.lower`
    wrote. The source is audited by derivkit's emitter before it runs: only what derivkit
    generates is accepted, so this is not a way to run arbitrary code."""
    import ast

    from .lowering import emit

    text = source.source if isinstance(source, Lowered) else source
    if not isinstance(text, str):
        raise DerivkitError(f"load: give the source text derivkit.lower returned, not "
                            f"{type(source).__name__}")
    import re

    target = "torch" if re.search(r"^import torch\b", text, re.M) else "numpy"
    import tokenize

    try:
        ast.parse(text)
    except (SyntaxError, ValueError) as exc:
        raise DerivkitError(f"load: not Python source ({exc})",
                            "pass the text derivkit.lower returned, unchanged") from None
    try:
        return emit.load_module(text, "derivkit_lowered", "<derivkit.load>", target)
    except tokenize.TokenError as exc:
        raise DerivkitError(f"load: not Python source ({exc})",
                            "pass the text derivkit.lower returned, unchanged") from None
    except ModuleNotFoundError as exc:
        raise DerivkitError(f"load: this module needs {exc.name}, which is not installed",
                            "pip install torch (the CPU build is enough)") from None
    except emit.EmitError as exc:
        raise DerivkitError(f"load: not a module derivkit.lower wrote ({exc})",
                            "pass the text derivkit.lower returned, unchanged") from None


@_timeout("train")
def train(target: str | Path, *, epochs: int = 200, lr: float = 0.05, seed: int = 0,
          sizes: dict[str, int] | None = None, use_updated_weights: bool = False,
          recipe_dirs: list[str | Path] | None = None) -> Any:
    """Train a composite recipe's network (e.g. "mlp3") by full-batch gradient descent with its
    lowered, verified backward pass (-> TrainResult: `.losses`, `.final_loss`, `.deviations`)."""
    from .training import train as _train

    return _train(_target(target, recipe_dirs=recipe_dirs), epochs=epochs, lr=lr, seed=seed,
                  sizes=sizes, use_updated_weights=use_updated_weights)
