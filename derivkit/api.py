"""The library API the CLI calls. Heavy modules (SymPy, NumPy) are imported inside functions
so that `derivkit --help` and `derivkit list` stay light.

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
        raise DerivkitError("--expr needs the shape of every input", "e.g. --shape X=n,n")
    if not wrt:
        raise DerivkitError("--expr needs --wrt naming the input(s) to differentiate")
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
        return _recipes.parse_recipe(data, "--expr", default_output="f", output_expr=output_expr)
    except _recipes.RecipeError as exc:
        raise DerivkitError(exc.message.replace("--expr: ", ""), exc.hint) from None


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


def _load_with_wrt(name: str, recipe_dirs: list[str | Path] | None,
                   wrt: list[str] | None) -> _recipes.Recipe:
    """The recipe, restricted to the inputs in `wrt` (each must be one of its inputs)."""
    from dataclasses import replace

    recipe = _recipes.load(name, recipe_dirs)
    if not wrt:
        return recipe
    inputs = [i.name for i in recipe.inputs]
    for w in wrt:
        if w not in inputs:
            raise DerivkitError(f"--wrt {w!r} is not an input of recipe {name!r}",
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
        full_wrt = _recipes.load(name, recipe_dirs).wrt
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
                 wrt: list[str] | None = None) -> Lowered:
    """A standalone NumPy module (-> results.Lowered) with `forward` and, per input, its verified
    `vjp_x` (plus `grad_x` for scalar outputs, `jacobian_x` for vector -> vector). Raises
    DerivkitError if a form is not verified. `derivkit.lowering.module.load(lowered)` gives the callables."""
    recipe = _load_with_wrt(name, recipe_dirs, wrt)
    return _lower(recipe)


@_timeout("lower")
def lower_expression(expr: str, wrt: list[str], shapes: dict[str, str],
                     params: dict[str, float] | None = None) -> Lowered:
    """`lower_recipe` for an expression; parameters become keywords with their given values."""
    return _lower(recipe_from_expression(expr, wrt, shapes, params))


def _lower(recipe: _recipes.Recipe) -> Lowered:
    from .derivation.engine import derive
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
