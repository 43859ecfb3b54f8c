"""Recognisable mistakes in a user's backward function (`derivkit check --impl`).

At one sampled point (inputs and a seeded upstream gradient) derivkit compares the user's value
U with the true value T, derivkit's verified derived form lowered to NumPy. For a failed check it
tests one hypothesis per kind of mistake, and states a mistake only when the hypothesis
reproduces U to a relative difference (Frobenius norm) of at most √ε of the dtype (1.5e-8 in
float64); the measured difference is part of the text. Nothing reproduced, nothing said.

- transposed: U has the shape of Tᵀ (T not square), or U ≈ Tᵀ;
- a constant factor: U ≈ c·T (least-squares c): c = −1 sign flipped, 2 a stray factor 2, 1/2 a
  missing factor 2, c = the size of a dimension (or a product of sizes) a missing 1/m averaging,
  1/m an extra one, any other c "off by a constant factor";
- summed over the wrong axis: every `sum(..., axis=a)` of the derived form is re-evaluated over
  each other axis (and with/without keepdims): a variant equal to U names the axis;
- uses an updated weight (composite recipes): the backward pass with P − lr·∂L/∂P in place of a
  parameter P, lr fitted by least squares (U is affine in the overridden P);
- modifies an input in place: the implementation changed an argument (it gets copies);
- wrong shape (stated first): U neither has nor broadcasts to T's shape: "yours (3, 5),
  expected (5, 3)".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from itertools import combinations
from typing import Any

import numpy as np

from ..checking.runner import Point, compiled_form, relative_errors
from ..errors import BudgetExceeded, DerivkitError
from ..lang import ir
from ..lang.printing import language
from ..lang.recipes import Recipe
from ..lowering.forms import call_form
from ..results import CheckResult, Diagnosis

MAX_SUM_TEXT = 60
LOW_PRECISION = 1e-4   # |c − 1| below this is rounding (float32 ≈ 6e-8 per operation), not a factor


# ---------------------------------------------------------------- numbers
def _norm_rel(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖ / max(‖a‖, ‖b‖) (0 when both are 0)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(b)))
    if not math.isfinite(scale):
        return math.inf
    return float(np.linalg.norm(a - b)) / scale if scale > 0 else 0.0


def _fmt(x: float) -> str:
    return "0" if x == 0 else f"{x:.1e}"


def _to(r: float) -> str:
    """How closely a hypothesis reproduced the value: 'exactly' or 'to 2.2e-16'."""
    return "exactly" if r == 0 else f"to {r:.1e}"


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def true_value(point: Point, kwargs: dict) -> np.ndarray | None:
    """T: derivkit's verified derived form at the point (None without a verified one)."""
    m = point.dv.matrix
    if m is None or not m.verification.verified:
        return None
    fn = compiled_form(point.recipe, m.text, f"{point.dv.kind}_{point.wrt}")
    value = np.asarray(call_form(fn, kwargs, point.params))
    return np.broadcast_to(value, point.shape) if value.shape != point.shape else value


def error_vs_derived(U: np.ndarray, T: np.ndarray, shape: tuple) -> float:
    """The checker's entry-wise relative error of U against T (inf for a shape that does not fit)."""
    try:
        if np.broadcast_shapes(U.shape, shape) != tuple(shape):
            return math.inf
    except ValueError:
        return math.inf
    d = np.broadcast_to(U, shape).astype(np.float64).ravel()
    n = np.asarray(T, dtype=np.float64).ravel()
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(n))):
        return math.inf
    return float(np.max(relative_errors(d, n), initial=0.0))


# ---------------------------------------------------------------- the checker's hook
def assess(point: Point, impl: Callable[..., Any], results: list[CheckResult],
           rng: np.random.Generator) -> list[CheckResult]:
    """The results of one implemented derivative, each with the error against derivkit's
    derived form and, if failed (or an input was changed in place), the diagnoses."""
    upstream: np.ndarray | None = None
    if point.dv.kind == "vjp":
        upstream = np.asarray(rng.standard_normal(point.out_shape), dtype=point.dtype)
    kwargs = dict(point.values)
    if upstream is not None:
        kwargs[point.recipe.upstream] = upstream
    U = np.asarray(impl(**kwargs, **point.params))
    T = true_value(point, kwargs)
    rel = None if T is None else error_vs_derived(U, T, point.shape)
    modified = dict(getattr(impl, "modified", None) or {})
    diagnoses: list[Diagnosis] = []
    shape = wrong_shape(U, tuple(point.shape))
    if shape is not None:   # first: no error the checker computed means anything then
        diagnoses.append(shape)
    if modified:
        diagnoses.append(in_place(modified))
    if T is not None and any(not r.passed for r in results):
        diagnoses += diagnose(point, kwargs, U, T)
    return [replace(r, passed=r.passed and not modified, max_rel_error_vs_derived=rel,
                    diagnoses=tuple(diagnoses) if (not r.passed or modified) else ())
            for r in results]


#: the name of the diagnosis of a value whose shape is not the expected one (renderers lead
#: with it: the errors of such a check are inf and its tolerances nan)
WRONG_SHAPE = "wrong shape"


def wrong_shape(U: np.ndarray, shape: tuple) -> Diagnosis | None:
    """'yours (3, 5), expected (5, 3)' when U does not have (or broadcast to) `shape`."""
    try:
        fits = np.broadcast_shapes(U.shape, shape) == shape
    except ValueError:
        fits = False
    if fits:
        return None
    return Diagnosis(WRONG_SHAPE, f"yours {_shape(U.shape)}, expected {_shape(shape)}")


def in_place(modified: dict[str, float]) -> Diagnosis:
    return Diagnosis("modifies an input in place",
                     f"modified {_and(list(modified))} in place, e.g. a weight update inside the "
                     "backward pass; a backward function must leave its inputs unchanged "
                     "(derivkit passed it copies, so the errors are those of what it returned)")


def diagnose(point: Point, kwargs: dict, U: np.ndarray, T: np.ndarray) -> list[Diagnosis]:
    """Every mistake that reproduces U at the point (see the module docstring)."""
    found = _transposed_or_scaled(point, U, T)
    found += _wrong_sum_axis(point, kwargs, U, T)
    found += _updated_weight(point, U)
    return found


# ---------------------------------------------------------------- transposed, constant factor
def _transposed_or_scaled(point: Point, U: np.ndarray, T: np.ndarray) -> list[Diagnosis]:
    shape = point.shape
    candidates = []
    try:
        if np.broadcast_shapes(U.shape, shape) == shape:
            candidates.append((False, np.broadcast_to(U, shape)))
    except ValueError:
        pass
    if U.ndim == 2 and len(shape) == 2 and U.T.shape == shape:
        candidates.append((True, U.T))
    for transposed, V in candidates:
        c, r = _fit_factor(V, T)
        if c is None or r > point.tol:
            continue
        out = []
        how = (f"your {point.lhs} has shape {_shape(U.shape)}" if U.shape != shape else
               f"your {point.lhs}")
        if transposed:
            exact = abs(c - 1) <= point.tol
            out.append(Diagnosis("transposed", f"{how}: it matches {point.true} (shape "
                                 f"{_shape(shape)}) transposed"
                                 + (f" {_to(r)}" if exact else f", times {c:.6g}, {_to(r)}")))
            if exact:
                return out
        elif abs(c - 1) <= point.tol:
            return []   # U is the true value: nothing to diagnose
        elif abs(c - 1) <= LOW_PRECISION and not transposed:
            rel = float(np.linalg.norm(np.asarray(V, np.float64) - T) / max(float(np.linalg.norm(T)), 1e-300))
            return [Diagnosis("low precision", f"your {point.lhs} equals {point.true} only to a "
                              f"relative {rel:.1e}: computed in lower precision than "
                              f"{np.dtype(point.dtype).name} (e.g. float32)?")]
        return out + _factor(point, c, r, transposed)
    return []


def _fit_factor(V: np.ndarray, T: np.ndarray) -> tuple[float | None, float]:
    """Least-squares c in V ≈ c·T and the relative residual ‖V − cT‖/‖V‖."""
    v = np.asarray(V, dtype=np.float64).ravel()
    t = np.asarray(T, dtype=np.float64).ravel()
    tt = float(t @ t)
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(t))) or tt == 0.0:
        return None, math.inf
    c = float(v @ t) / tt
    vv = float(np.linalg.norm(v))
    if c == 0.0 or vv == 0.0:
        return None, math.inf
    return c, float(np.linalg.norm(v - c * t)) / vv


def _factor(point: Point, c: float, r: float, transposed: bool) -> list[Diagnosis]:
    what = f"your {point.lhs} is {c:.6g} × {point.true}{' transposed' if transposed else ''}" \
           f" ({_to(r)})"
    out = []
    a = abs(c)
    if c < 0:
        out.append(Diagnosis("sign flipped", what))
    if abs(a - 1) <= point.tol:
        return out
    matches = [(name, text) for value, name, text in _named_factors(point)
               if abs(a / value - 1) <= point.tol]
    if not matches:
        out.append(Diagnosis("off by a constant factor", f"{what}: off by the factor {a:.6g}"))
        return out
    (name, text), others = matches[0], matches[1:]
    alt = "".join(f", or {t}" for _, t in others)
    tell = " — at these sizes they cannot be told apart; rerun with other ⟨--size|sizes⟩ values" \
        if others else ""
    out.append(Diagnosis(name, f"{what}: {text}{alt}{tell}"))
    return out


def _named_factors(point: Point) -> list[tuple[float, str, str]]:
    """(factor a in U = a·T, name, explanation), factor 2 first, then dimension sizes and
    products of several (the mean over all entries of Y is 1/(m·d))."""
    out = [(2.0, "stray factor 2", "a stray factor 2"),
           (0.5, "missing factor 2", "a missing factor 2 (e.g. the 2 of a square)")]
    dims = list(dict.fromkeys(d for i in point.recipe.inputs for d in i.shape
                              if isinstance(d, str) and d in point.sizes))
    for n in range(1, len(dims) + 1):
        for group in combinations(dims, n):
            size = math.prod(int(point.sizes[d]) for d in group)
            if size <= 1:
                continue
            sym = group[0] if n == 1 else "(" + "·".join(group) + ")"
            where = _dims_text(point.recipe, group, point.sizes)
            out.append((float(size), f"missing 1/{sym} averaging",
                        f"a missing 1/{sym} averaging ({where})"))
            out.append((1.0 / size, f"extra 1/{sym}", f"an extra 1/{sym} ({where})"))
    return out


def _dims_text(recipe: Recipe, group: tuple[str, ...], sizes: dict) -> str:
    """'m = 3: the batch dimension, rows of Y and T' or 'm·d = 12: every entry of Y and T'."""
    if len(group) > 1:
        entries = [i.name for i in recipe.inputs
                   if i.shape and all(isinstance(d, str) for d in i.shape)
                   and sorted(i.shape) == sorted(group)]
        size = math.prod(int(sizes[d]) for d in group)
        return f"{'·'.join(group)} = {size}: " + (
            f"every entry of {_and(entries)}" if entries else
            " times ".join(f"{d} = {sizes[d]}" for d in group))
    (dim,) = group
    rows: list[str] = []
    cols: list[str] = []
    lengths: list[str] = []
    for i in recipe.inputs:
        for axis, d in enumerate(i.shape):
            if d == dim:
                (lengths if len(i.shape) == 1 else rows if axis == 0 else cols).append(i.name)
    parts = ([f"rows of {_and(rows)}"] if rows else []) + \
        ([f"columns of {_and(cols)}"] if cols else []) + \
        ([f"length of {_and(lengths)}"] if lengths else [])
    batch = "the batch dimension, " if rows and not cols and not lengths else ""
    return f"{dim} = {sizes[dim]}" + (f": {batch}{'; '.join(parts)}" if parts else "")


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# ---------------------------------------------------------------- summed over the wrong axis
def _sums(node: ir.Node) -> list[ir.Sum]:
    """The sums of a form over at least a vector, outside macros (whose printing ignores their
    expansion)."""
    out, stack, seen = [], [node], set()
    while stack:
        n = stack.pop()
        if n in seen or isinstance(n, ir.Macro):
            continue
        seen.add(n)
        if isinstance(n, ir.Sum) and n.a.rank >= 1:
            out.append(n)
        stack.extend(n.args)
    return out


def _canonical(axis: int | None, keepdims: bool, rank: int) -> tuple[int | None, bool]:
    return (None, False) if rank == 1 and axis == 0 and not keepdims else (axis, keepdims)


def _axis_text(axis: int | None) -> str:
    return "every entry" if axis is None else f"axis {axis}"


def _sum_text(node: ir.Node, axis: int | None, keepdims: bool) -> str:
    text = language(ir.sum_(node, axis, keepdims))
    if len(text) <= MAX_SUM_TEXT:
        return text
    return "sum(…" + ("" if axis is None else f", axis={axis}") + \
        (", keepdims=True" if keepdims else "") + ")"


def _wrong_sum_axis(point: Point, kwargs: dict, U: np.ndarray, T: np.ndarray) -> list[Diagnosis]:
    from ..lowering.forms import parse_form

    if point.dv.matrix is None:   # (never: diagnosed only against a verified matrix form)
        return []
    try:
        node, _, _ = parse_form(point.recipe, point.dv.matrix.text, derived=True)
    except BudgetExceeded:
        raise
    except DerivkitError:
        return []
    out = []
    for s in _sums(node):
        rank = s.a.rank
        original = _canonical(s.axis, s.keepdims, rank)
        variants = {_canonical(a, k, rank) for a in [None, *range(rank)] for k in (False, True)
                    if not (a is None and k)} - {original}
        order = sorted(variants, key=lambda v: (v[0] is None, v[1] != s.keepdims, v[0] or 0))
        for axis, keepdims in order:   # the user's keepdims is more likely the original's
            try:
                mutant = ir.substitute(node, {s: ir.sum_(s.a, axis, keepdims)})
                fn = compiled_form(point.recipe, language(mutant), "variant")
                with np.errstate(all="ignore"):
                    M = np.asarray(call_form(fn, kwargs, point.params))
            except BudgetExceeded:
                raise
            except (DerivkitError, ValueError, TypeError):
                continue
            if M.shape != U.shape:
                continue
            r = _norm_rel(U, M)
            if r > point.tol or (M.shape == T.shape and _norm_rel(M, T) <= point.tol):
                continue
            was = _sum_text(s.a, s.axis, s.keepdims)
            now = _sum_text(s.a, axis, keepdims)
            if _canonical(axis, False, rank)[0] == _canonical(s.axis, False, rank)[0]:
                name = "kept the summed axis" if keepdims else "dropped the summed axis"
                why = (f"summed with keepdims={keepdims}: your {point.lhs} has shape "
                       f"{_shape(U.shape)}, {point.true} {_shape(point.shape)}")
            else:
                name = "summed over the wrong axis"
                why = f"summed over {_axis_text(axis)} instead of {_axis_text(s.axis)}"
            out.append(Diagnosis(name, f"{why}: {now} in place of {was} reproduces your "
                                       f"{point.lhs} (shape {_shape(U.shape)}) {_to(r)}"))
            return out
    return out


# ---------------------------------------------------------------- a parameter after its update
@lru_cache(maxsize=32)
def _backward(recipe: Recipe) -> Callable[..., dict[str, Any]]:
    from ..lowering.backward import backward_function

    return backward_function(recipe)


def _updated_weight(point: Point, U: np.ndarray) -> list[Diagnosis]:
    recipe = point.recipe
    if not recipe.steps or point.dv.kind != "gradient" or U.shape != point.shape:
        return []
    backward = _backward(recipe)
    loss = recipe.steps[-1][0]
    inputs = {i.name: point.values[i.name] for i in recipe.inputs}

    def grad(of: str, overrides: dict[str, np.ndarray] | None = None) -> np.ndarray:
        with np.errstate(all="ignore"):
            out = backward(**inputs, **point.params, backward_overrides=overrides)
        return np.asarray(out[f"∂{loss}/∂{of}"], dtype=np.float64)

    base = grad(point.wrt)
    r0 = np.asarray(U, dtype=np.float64) - base
    for p in recipe.wrt:
        if p == point.wrt:
            continue
        dp = grad(p)
        # U(P') is affine in P': the part along an override P' = dp is (at dp) − (at 0)
        d = grad(point.wrt, {p: dp}) - grad(point.wrt, {p: np.zeros_like(dp)})
        dd = float(np.sum(d * d))
        if not dd > 1e-30 * max(float(np.sum(base * base)), 1e-300):
            continue
        lr = -float(np.sum(r0 * d)) / dd
        if not (lr > 0 and math.isfinite(lr)):
            continue
        model = grad(point.wrt, {p: inputs[p] - lr * dp})
        r = _norm_rel(U, model)
        if r <= point.tol:
            return [Diagnosis("uses an updated weight",
                              f"uses {p} after a gradient step (learning rate ≈ {lr:.3g}): "
                              f"backward must use {p} before its update; derivkit's backward pass "
                              f"with {p} − {lr:.3g}·∂{loss}/∂{p} in place of {p} reproduces your "
                              f"{point.lhs} {_to(r)}")]
    return []


__all__ = ["Point", "assess", "diagnose", "error_vs_derived", "in_place", "true_value"]
