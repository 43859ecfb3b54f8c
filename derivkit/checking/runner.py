"""check(recipe) -> TargetCheck: every derived form against finite differences of the forward.

Modes (per input x of n entries; the output has N entries):
- full: one finite-difference column per entry of x (directions e_j scaled by max(1, |x_j|)),
  evaluated in batches through a leading batch axis. VJPs/gradients are compared entry by entry
  (the numerical VJP is Σ_o u_o J_oj for a random upstream u), Jacobians entry by entry.
- directional: k seeded random directions v_b (scaled per entry) and upstreams u_b; compares
  ⟨u_b, J v_b⟩ from the derivation with the finite difference of ⟨u_b, f(x + t v_b)⟩. A failure is
  localised by bisection over the entries of x (then of the output) in O(log n) evaluations.
- auto: directional always, plus full where x has at most AUTO_FULL_MAX entries.

Tolerance, entry by entry: |derived − numeric| ≤ atol_e + rtol·|numeric|, with rtol = 16ε and
atol_e = 4·(FD error estimate of the entry) + 16ε·(A_e + F_e) + 64ε·S, where ε is the dtype's
machine epsilon, A_e the entry's magnitude before cancellation (Σ|g_e·v_e| for a direction,
Σ_o |u_o·J_oe| for a VJP entry; rounding in a sum is bounded by a few ε times it — measured
≤ 1.1ε on linear at up to 512×128), F_e = ‖u‖₂·‖v‖∞·max|f(x)|/max(1, max|x|), the natural size
of the derivative, for cancellation inside f (d/dx Σ softmax(x) = 0 comes out as ~1e-17), and S
the largest magnitude compared. --rtol/--atol replace both. Relative errors
are |d − n| / max(|d|, |n|, 10⁻³·S).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..derivation.engine import derive
from ..errors import BudgetExceeded, DerivkitError
from ..lang import ir
from ..lang.ops import BY_NODE
from ..lang.program import program
from ..lang.recipes import Recipe
from ..lang.shapes import DECLARED, fmt_sizes
from ..limits import phase
from ..lowering.forms import form_function, parse_form
from ..lowering.source import batched_function
from ..results import CheckReport, CheckResult, Derivation, Derivative, TargetCheck, WorstEntry
from . import finite, sampling

MODES = ("auto", "full", "directional")
_Dtype = type[np.floating[Any]]   # np.float64 or np.float32
DTYPES: dict[str, _Dtype] = {"float64": np.float64, "float32": np.float32}
AUTO_FULL_MAX = 512
MAX_FULL_BYTES = 2 << 30
MAX_EVAL_BYTES = 4 << 30   # one evaluation of the forward (every intermediate) at the sizes
MAX_CHECK_BYTES = 4 << 30  # every array of one input's check (Jacobians, direction batches)
CHUNK_BYTES = 32 << 20
KINK_ATTEMPTS = 20
MISS_PROBABILITY = 0.01

#: a NumPy function of keyword arguments: a derived form, an implementation, the batched forward
_Fn = Callable[..., Any]
#: the switching quantities of the forward's kinks, batched (sampling.switch_function), or None
_Switches = Callable[..., Sequence[np.ndarray]] | None
#: what `_compare` finds: passed, diff, tol, ratio, d, n, rtol, atol, max_abs, max_rel, finite
_Comparison = dict[str, Any]


class _KinkCrossed(Exception):
    pass


@dataclass
class _Target:
    recipe: Recipe
    out: ir.Node
    sizes: dict[str, int]
    params: dict[str, float]
    dtype: _Dtype
    args: list[str]
    scale: float = 0.0   # max|f(x)| / max(1, max|x|): the natural size of ∂f/∂x at the point


# ---------------------------------------------------------------- comparison
def relative_errors(d: np.ndarray, n: np.ndarray, scale: float | None = None) -> np.ndarray:
    """|d − n| / max(|d|, |n|, 10⁻³·S), S the largest magnitude compared (default: of d and n)."""
    if scale is None:
        scale = float(max(np.max(np.abs(d), initial=0.0), np.max(np.abs(n), initial=0.0), 1e-300))
    return np.abs(d - n) / np.maximum(np.maximum(np.abs(d), np.abs(n)), 1e-3 * scale)


def _compare(derived: np.ndarray, numeric: np.ndarray, fd_error: np.ndarray, dtype: _Dtype,
             magnitude: np.ndarray, rtol: float | None, atol: float | None,
             floor: float | np.ndarray = 0.0) -> _Comparison:
    eps = float(np.finfo(dtype).eps)
    d = np.asarray(derived, dtype=np.float64).ravel()
    n = np.asarray(numeric, dtype=np.float64).ravel()
    err = np.asarray(fd_error, dtype=np.float64).ravel()
    finite_ok = bool(np.all(np.isfinite(d)) and np.all(np.isfinite(n)))
    scale = float(max(np.max(np.abs(d), initial=0.0), np.max(np.abs(n), initial=0.0), 1e-300))
    r = 16 * eps if rtol is None else rtol
    mag = np.asarray(magnitude, dtype=np.float64).ravel()
    atol_e = (4 * err + 16 * eps * (mag + floor) + 64 * eps * scale) if atol is None else \
        np.full_like(n, atol)
    tol = atol_e + r * np.abs(n)
    diff = np.abs(d - n)
    rel = relative_errors(d, n, scale)
    ok = bool(finite_ok and np.all(diff <= tol))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.isfinite(diff), diff / tol, np.inf)
    ratio = np.nan_to_num(ratio, nan=np.inf)
    return {"passed": ok, "diff": diff, "tol": tol, "ratio": ratio, "d": d, "n": n,
            "rtol": float(r), "atol": float(np.max(atol_e, initial=0.0)),
            "max_abs": float(np.max(diff, initial=0.0)) if finite_ok else float("inf"),
            "max_rel": float(np.max(rel, initial=0.0)) if finite_ok else float("inf"),
            "finite": finite_ok}


def _worst(cmp: _Comparison, shape: tuple[int, ...], count: int = 5) -> tuple[WorstEntry, ...]:
    order = np.argsort(-cmp["ratio"], kind="stable")[:count]
    out = []
    for flat in order:
        idx = tuple(int(i) for i in np.unravel_index(int(flat), shape)) if shape else ()
        out.append(WorstEntry(idx, float(cmp["d"][flat]), float(cmp["n"][flat]),
                              float(cmp["diff"][flat]), float(cmp["tol"][flat])))
    return tuple(out)


@cache
def _quantile_product(k: int, scalar_output: bool) -> float:
    """q such that a single-entry error is missed by all k directions with probability
    ≤ MISS_PROBABILITY when |u_o·w_e|·|δ| > q·(tolerance); u, w standard normal."""
    rng = np.random.default_rng(12345)
    z = np.abs(rng.standard_normal(400_000))
    if not scalar_output:
        z = z * np.abs(rng.standard_normal(400_000))
    return float(np.quantile(z, MISS_PROBABILITY ** (1.0 / k)))


@dataclass
class Point:
    """Where the checker compared: the recipe, the input, its derivative, the sampled inputs."""

    recipe: Recipe
    wrt: str
    dv: Derivative
    values: dict[str, np.ndarray]
    params: dict[str, float]
    sizes: dict[str, int]
    dtype: _Dtype
    x_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    @property
    def tol(self) -> float:
        return math.sqrt(float(np.finfo(self.dtype).eps))

    @property
    def lhs(self) -> str:
        return self.dv.lhs_pretty or f"∂L/∂{self.wrt}"

    @property
    def shape(self) -> tuple[int, ...]:
        """The derivative's shape: the input's, or (output, input) for a Jacobian."""
        jacobian = self.dv.kind == "jacobian"
        return tuple(self.out_shape) + tuple(self.x_shape) if jacobian else tuple(self.x_shape)

    @property
    def true(self) -> str:
        return "the true Jacobian" if self.dv.kind == "jacobian" else "the true gradient"


Assess = Callable[[Point, Callable, list[CheckResult], np.random.Generator], list[CheckResult]]


# ---------------------------------------------------------------- the check
def check(recipe: Recipe, *, mode: str = "auto", sizes: dict[str, int] | None = None,
          seed: int = 0, dtype: str = "float64", rtol: float | None = None,
          atol: float | None = None, directions: int = 8,
          params: dict[str, float] | None = None, derivation: Derivation | None = None,
          implementations: Mapping[tuple[str, str], _Fn] | None = None, assess: Assess | None = None
          ) -> TargetCheck:
    """`implementations` maps (kind, wrt) to a callable used instead of derivkit's derived form
    (keywords: the inputs, the upstream gradient for "vjp", the parameters). When given (non-empty),
    only those (kind, wrt) pairs are checked, each also against derivkit's derived form, and
    `assess(point, implementation, results, rng)` may rewrite each one's results (the audit
    layer passes `derivkit.audit.diagnose.assess`, which adds the mistakes it recognises); a
    callable may expose a dict `modified` (input name -> largest change) of inputs it changed
    in place, which fails it."""
    started = time.perf_counter()
    if mode not in MODES:
        raise DerivkitError(f"unknown mode {mode!r}", f"use one of {', '.join(MODES)}")
    if dtype not in DTYPES:
        raise DerivkitError(f"unsupported dtype {dtype!r}", f"use one of {', '.join(DTYPES)}")
    if directions < 1:
        raise DerivkitError("⟨--directions⟩ must be at least 1")
    for name, value in (("⟨--rtol⟩", rtol), ("⟨--atol⟩", atol)):
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise DerivkitError(f"{name} must be a finite number ≥ 0, got {value}")
    prog = program(recipe)
    scope, out = prog.scope, prog.out
    dims = sorted(scope.dims)
    all_params = {p.name: p.default for p in recipe.params}
    for name, value in (params or {}).items():
        if name not in all_params:
            raise DerivkitError(f"⟨--param⟩ {name}: {recipe.name!r} has no parameter {name!r}",
                                f"parameters: {', '.join(all_params) or 'none'}")
        all_params[name] = float(value)
    concrete_sizes = sampling.default_sizes(dims, sizes, ir.minimum_sizes([out]),
                                            ir.size_products([out]))
    np_dtype = DTYPES[dtype]
    one_eval = sum(16 * int(np.prod(sampling.concrete(n.shape, concrete_sizes) or (1,)))
                   for n in ir.walk(out))
    if one_eval > MAX_EVAL_BYTES:
        raise DerivkitError(
            f"at these sizes ({', '.join(f'{k}={v}' for k, v in concrete_sizes.items())}) one "
            f"evaluation of {recipe.name!r} needs about {one_eval / 2**30:.0f} GiB",
            "use smaller ⟨--size values|sizes⟩")
    derivation = derivation or derive(recipe)
    target = _Target(recipe, out, concrete_sizes, all_params, np_dtype, [i.name for i in recipe.inputs])
    rng = np.random.default_rng(seed)
    results: list[CheckResult] = []
    notes: list[str] = []
    with np.errstate(all="ignore"):  # non-finite values are detected and reported, not warned
        for w in recipe.wrt:
            dvs = [dv for dv in derivation.derivatives if dv.wrt == w]
            if implementations:
                dvs = [dv for dv in dvs if (dv.kind, w) in implementations]
                if not dvs:
                    continue
            _refuse_large(target, w, dvs, mode, directions)
            try:
                with phase(f"checking ∂{recipe.output}/∂{w} numerically at "
                           f"{fmt_sizes(concrete_sizes, empty=DECLARED)}"):
                    results.extend(_check_input(target, w, dvs, mode, rng, rtol, atol, directions,
                                                notes, implementations or {}, assess))
            except np.linalg.LinAlgError as exc:   # a matrix singular near the sampled point
                raise DerivkitError(
                    f"a matrix under {NONSINGULAR} is singular near the sampled inputs of "
                    f"{recipe.name!r} ({exc}), so derivatives through it cannot be checked there",
                    "is it singular for every input? try another ⟨--seed|seed⟩ otherwise") from None
    conventions = (tuple(c for c in derivation.conventions if "kink" in c) + tuple(notes)
                   + tuple(getattr(derivation, "warnings", ())))
    return TargetCheck(target=recipe.name, passed=all(r.passed for r in results), seed=seed,
                       dtype=dtype, sizes=concrete_sizes, results=tuple(results),
                       conventions=conventions, seconds=time.perf_counter() - started)


@lru_cache(maxsize=256)
def compiled_form(recipe: Recipe, text: str, fname: str) -> _Fn:
    """The derived form as a NumPy function, compiled once per (recipe, form)."""
    return form_function(recipe, text, fname)


@lru_cache(maxsize=256)
def _compiled_forward(out: ir.Node, args: tuple[str, ...], wrt: str, sizes: tuple[tuple[str, int], ...],
                      params: tuple[tuple[str, float], ...]) -> _Fn:
    return batched_function("forward", list(args), out, {wrt}, dict(sizes), dict(params))


def _chunk(target: _Target, n_batch: int) -> int:
    per_sample = 0
    for node in ir.walk(target.out):
        per_sample += 16 * int(np.prod(sampling.concrete(node.shape, target.sizes) or (1,)))
    return max(1, min(n_batch, CHUNK_BYTES // max(per_sample, 1)))


def _check_input(target: _Target, w: str, dvs: list[Derivative], mode: str, rng: np.random.Generator,
                 rtol: float | None, atol: float | None, k: int,
                 notes: list[str], implementations: Mapping[tuple[str, str], _Fn], assess: Assess | None
                 ) -> list[CheckResult]:
    recipe, out = target.recipe, target.out
    analytic = sampling.is_analytic(out)
    fb = _compiled_forward(out, tuple(target.args), w, tuple(sorted(target.sizes.items())),
                           tuple(sorted(target.params.items())))
    switches = None   # None: complex step; else central differences, kinks kept off the stencil
    if not analytic:
        switches = sampling.switch_function(out, w, target.args, target.sizes,
                                            target.params) or _no_switches
    x_shape, out_shape, _, _, run_full, run_directional = _plan(target, w, mode)

    for attempt in range(KINK_ATTEMPTS):
        values = sampling.sample_inputs(recipe, target.sizes, rng, target.dtype)
        _refuse_singular(target, values)   # first: the forward itself fails on an inverse of A - A
        at_point = fb(**{k: (v[None] if k == w else v) for k, v in values.items()})
        target.scale = float(np.max(np.abs(at_point), initial=0.0)) / max(
            1.0, float(np.max(np.abs(values[w]), initial=0.0)))
        if not np.all(np.isfinite(at_point)):
            raise DerivkitError(
                f"the forward of {recipe.name!r} is not finite (NaN or inf) at the sampled inputs, "
                f"so its derivative cannot be checked there",
                "an input outside a function's domain? in a recipe declare it, e.g. [domain] "
                "x = \"positive\"; in ⟨--expr|an expression⟩, an input passed straight to log or sqrt is "
                "sampled positive")
        try:
            results = []
            cache: dict[str, finite.Estimate] = {}
            for dv in dvs:
                impl = implementations.get((dv.kind, w))
                derived = impl
                if derived is None:
                    if dv.matrix is None:
                        continue
                    derived = compiled_form(recipe, dv.matrix.text, f"{dv.kind}_{w}")
                mine = []
                for run, how in ((run_full, "full"), (run_directional, "directional")):
                    if not run:
                        continue
                    try:
                        if how == "full":
                            mine.append(_full(target, w, dv, derived, fb, switches, values, rng,
                                              rtol, atol, x_shape, out_shape, cache))
                        else:
                            mine.append(_directional(target, w, dv, derived, fb, switches,
                                                     values, rng, rtol, atol, k, x_shape,
                                                     out_shape))
                    except _WrongShape as exc:
                        got, want = exc.args
                        mine.append(_shape_failure(w, dv.kind, how, x_shape, got, want,
                                                   "implemented" if impl else "derived"))
                if impl is not None and assess is not None:
                    point = Point(recipe, w, dv, values, target.params, target.sizes,
                                  target.dtype, x_shape, out_shape)
                    mine = assess(point, impl, mine, rng)
                results.extend(mine)
            if switches is not None and switches is not _no_switches:
                notes.append(f"{w}: no finite-difference stencil crosses a kink (every switching "
                             f"quantity keeps its sign at every evaluation point"
                             f"{'' if attempt == 0 else f'; {attempt} earlier draw(s) were too close'})")
            return results
        except _KinkCrossed:
            continue
    raise DerivkitError(f"could not draw inputs for {w} whose finite-difference stencils avoid every "
                        f"kink in {KINK_ATTEMPTS} attempts",
                        "try other ⟨--size|sizes⟩ or ⟨--seed|seed⟩ values")


def _plan(target: _Target, w: str, mode: str
          ) -> tuple[tuple[int, ...], tuple[int, ...], int, int, bool, bool]:
    """(x shape, output shape, entries of x, entries of the output, run full?, run directional?)
    at the target's sizes: `auto` runs full checks only where x is small and the Jacobian fits."""
    x_shape = sampling.concrete(target.recipe.input(w).shape, target.sizes)
    out_shape = sampling.concrete(target.out.shape, target.sizes)
    n_in, n_out = math.prod(x_shape), math.prod(out_shape)
    run_full = mode == "full" or (mode == "auto" and n_in <= AUTO_FULL_MAX)
    if mode == "auto" and n_in * n_out * np.dtype(target.dtype).itemsize > MAX_FULL_BYTES:
        run_full = False
    return x_shape, out_shape, n_in, n_out, run_full, mode in ("directional", "auto")


def _gib(n: float) -> str:
    for unit, scale in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**27)):
        if n >= scale:
            scale = max(scale, 2**30)
            return f"{n / scale:.1f} {unit}"
    return f"{n / 2**20:.0f} MiB"


SMALLER = "use smaller ⟨--size values|sizes⟩"


def memory_estimate(target: _Target, w: str, dvs: list[Derivative], mode: str, k: int
                    ) -> list[tuple[str, int, str]]:
    """The arrays checking ∂/∂w allocates, as (what, bytes, how to need less), largest first:
    Jacobians (each held with its numerical twin, error estimates and comparison arrays: about
    16 copies in a full check, 6 in a directional one), direction batches (k directions of x
    and k values of the output, with their error estimates) and the derived forms'
    intermediates (one evaluation, twice over)."""
    item = np.dtype(target.dtype).itemsize
    x_shape, out_shape, n_in, n_out, run_full, run_directional = _plan(target, w, mode)
    one = n_in * n_out * item
    jac = f"the {'×'.join(map(str, out_shape + x_shape)) or '1'} Jacobian"
    parts: list[tuple[str, int, str]] = []
    kinds = {dv.kind for dv in dvs}
    if "jacobian" in kinds and run_full:
        parts.append((f"a full check of {jac} ∂{target.recipe.output}/∂{w} ({_gib(one)} a copy)",
                      16 * one, "use ⟨--mode directional|the directional mode⟩, or " + SMALLER[4:]))
    elif "jacobian" in kinds and run_directional:
        parts.append((f"{jac} ∂{target.recipe.output}/∂{w} ({_gib(one)} a copy)", 6 * one, SMALLER))
    if run_directional:
        parts.append((f"{k:,} random directions ({k:,}×{n_in:,} and {k:,}×{n_out:,} arrays)",
                      (3 * n_in + 10 * n_out) * k * item, "use fewer ⟨--directions⟩"))
    for dv in dvs:
        if dv.matrix is None:
            continue
        node, _, _ = parse_form(target.recipe, dv.matrix.text, derived=True)
        shapes = [sampling.concrete(n.shape, target.sizes) for n in ir.walk(node)]
        big = max(shapes, key=math.prod)
        parts.append((f"the derived {dv.kind} of {w} ({dv.matrix.text[:40]}: arrays up to "
                      f"{'×'.join(map(str, big)) or '1'}, {_gib(math.prod(big) * item)} each)",
                      2 * sum(map(math.prod, shapes)) * item, SMALLER))
    return sorted(parts, key=lambda p: -p[1])


def _refuse_large(target: _Target, w: str, dvs: list[Derivative], mode: str, k: int) -> None:
    """Refuse, before allocating, a check of w whose arrays would not fit (MAX_CHECK_BYTES), and
    a full check (one finite difference per entry of w) whose Jacobian exceeds MAX_FULL_BYTES."""
    x_shape, out_shape, n_in, n_out, _, _ = _plan(target, w, mode)
    one = n_in * n_out * np.dtype(target.dtype).itemsize
    if mode == "full" and one > MAX_FULL_BYTES:
        raise DerivkitError(
            f"a full check of {w} of {target.recipe.name!r} at "
            f"{fmt_sizes(target.sizes, empty=DECLARED)} needs a "
            f"{'×'.join(map(str, out_shape + x_shape))} Jacobian ({_gib(one)}); the limit is "
            f"{_gib(MAX_FULL_BYTES)}",
            "use ⟨--mode directional|the directional mode⟩, or smaller ⟨--size values|sizes⟩")
    parts = memory_estimate(target, w, dvs, mode, k)
    total = sum(b for _, b, _ in parts)
    if total <= MAX_CHECK_BYTES:
        return
    what, _, hint = parts[0]
    raise DerivkitError(
        f"checking {w} of {target.recipe.name!r} at {fmt_sizes(target.sizes, empty=DECLARED)} needs about "
        f"{_gib(total)} of memory, mostly for {what}; the limit is {_gib(MAX_CHECK_BYTES)}", hint)


#: the matrix functions whose operand must be invertible (det: its derivative has the inverse)
NEEDS_INVERTIBLE = {node: op.name for node, op in BY_NODE.items() if op.nonsingular}
NONSINGULAR = " or ".join(NEEDS_INVERTIBLE.values())
MAX_CONDITION = 1e10   # beyond this, finite differences through an inverse lose most digits


def _refuse_singular(target: _Target, values: dict[str, np.ndarray]) -> None:
    """An inverse of a (nearly) singular matrix at the sampled point: its derivative (∝ its
    condition number squared) cannot be checked there, and is reported instead."""
    from ..lang.printing import language
    from ..lowering.source import compile_function, function_source

    inputs = {i.name: i.shape for i in target.recipe.inputs}
    for n in [n for n in ir.walk(target.out) if type(n) in NEEDS_INVERTIBLE]:  # inner first
        operand = n.args[0]   # a matrix function needing an invertible operand has one
        src = function_source("arg", list(inputs), operand, inputs, {}, target.params)
        try:
            a = np.asarray(compile_function("arg", src)(**values), dtype=np.float64)
        except np.linalg.LinAlgError:   # an inverse inside it is singular: so is this
            a = np.full((1, 1), np.inf)
        cond = float(np.linalg.cond(a)) if np.all(np.isfinite(a)) else float("inf")
        if not cond < MAX_CONDITION:
            what = NEEDS_INVERTIBLE[type(n)]
            raise DerivkitError(
                f"{language(operand)} (in {what}) is singular or nearly so at the sampled inputs "
                f"(condition number {cond:.1e}); derivatives through its inverse cannot be checked "
                f"there",
                "is the matrix singular for every input? try another ⟨--seed|seed⟩ otherwise")


def _estimate(target: _Target, fb: _Fn, switches: _Switches, values: dict[str, np.ndarray], w: str,
              V: finite.Directions, contract: np.ndarray | None = None) -> finite.Estimate:
    x = values[w]
    others = {k: v for k, v in values.items() if k != w}

    out_shape = sampling.concrete(target.out.shape, target.sizes)

    def f(xb: np.ndarray, real_part: np.ndarray | None = None) -> np.ndarray:
        value = fb(**others, **{w: xb}, _real=real_part)
        # an output that does not depend on x carries no batch axis
        return np.broadcast_to(value, (xb.shape[0],) + out_shape)

    count = finite._count(V)
    chunk = _chunk(target, count)
    if switches is None:
        return finite.complex_step(f, x, V, target.dtype, chunk, contract)
    est = finite.central_richardson(f, x, V, target.dtype, chunk, contract,
                                    sampling.rounding_ulps(target.out))
    _assert_no_kink(switches, others, w, x, V, est.step, chunk, target.dtype)
    return est


def _no_switches(**inputs: np.ndarray) -> list[np.ndarray]:
    """No kink, but a lowering that is real-only (erf): central differences, nothing to avoid."""
    return []


def _assert_no_kink(switches: Callable[..., Sequence[np.ndarray]], others: dict[str, np.ndarray],
                    w: str, x: np.ndarray, V: finite.Directions, h: float, chunk: int,
                    dtype: _Dtype) -> None:
    center = switches(**others, **{w: x[None]})
    for c in center:
        if np.any(c == 0):
            raise _KinkCrossed()
    for s in (1.0, -1.0):
        for sl in finite._chunks(finite._count(V), chunk):
            pts = switches(**others, **{w: finite._points(x, V, sl, s * h, dtype)})
            for c, p in zip(center, pts):
                if np.any(np.sign(p) != np.sign(c)):
                    raise _KinkCrossed()


def _upstream(rng: np.random.Generator, out_shape: tuple[int, ...], dtype: _Dtype) -> np.ndarray:
    return np.asarray(rng.standard_normal(out_shape), dtype=dtype)


class _WrongShape(Exception):
    pass


@lru_cache(maxsize=256)
def _keywords(fn: _Fn) -> frozenset[str] | None:
    """The keywords `fn` takes (None: any, it has **kwargs or no readable signature)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return frozenset(params)


def _call(fn: _Fn, kwargs: dict[str, Any]) -> Any:
    """fn on the keywords it takes: a derived form that does not use the upstream gradient
    (the zero VJP of an output that does not depend on the input) has no parameter for it."""
    names = _keywords(fn)
    return fn(**(kwargs if names is None else {k: v for k, v in kwargs.items() if k in names}))


def _derived_value(target: _Target, dv: Derivative, derived: _Fn, values: dict[str, np.ndarray],
                   u: np.ndarray | None, expected: tuple[int, ...] | None = None) -> np.ndarray:
    """The derived side at the sampled point, broadcast to `expected` (a shape that does not
    broadcast, e.g. a transposed non-square result, raises _WrongShape)."""
    kwargs: dict[str, Any] = dict(values)
    if dv.kind == "vjp":
        kwargs[target.recipe.upstream] = u
    value = np.asarray(_call(derived, {**kwargs, **target.params}), dtype=target.dtype)
    if expected is not None and value.shape != tuple(expected):
        try:
            ok = np.broadcast_shapes(value.shape, expected) == tuple(expected)
        except ValueError:
            ok = False
        if not ok:
            raise _WrongShape(value.shape, tuple(expected))
        value = np.broadcast_to(value, expected)
    return value


def _full(target: _Target, w: str, dv: Derivative, derived: _Fn, fb: _Fn, switches: _Switches,
          values: dict[str, np.ndarray], rng: np.random.Generator, rtol: float | None,
          atol: float | None, x_shape: tuple[int, ...], out_shape: tuple[int, ...],
          cache: dict[str, finite.Estimate]) -> CheckResult:
    started = time.perf_counter()
    x = values[w]
    scale = np.maximum(1.0, np.abs(x)).ravel()
    units = finite.Units(scale)                     # directions e_j·max(1, |x_j|)
    notes: tuple[str, ...] = ()
    if dv.kind == "jacobian":
        if "columns" not in cache:  # one numerical column per entry of x
            cache["columns"] = _estimate(target, fb, switches, values, w, units)
        est = cache["columns"]
        cols = est.value.reshape(x.size, -1) / scale[:, None]
        numeric = cols.T.reshape(out_shape + x_shape)
        error = (est.error.reshape(x.size, -1) / scale[:, None]).T.reshape(out_shape + x_shape)
        derived_v = _derived_value(target, dv, derived, values, None, numeric.shape)
        magnitude, shape = np.abs(numeric), out_shape + x_shape
        u = None
    else:
        u = _upstream(rng, out_shape, target.dtype) if dv.kind == "vjp" else np.ones(out_shape,
                                                                                    target.dtype)
        flat_u = u.ravel()
        if "columns" in cache:
            est = cache["columns"]
            cols = est.value.reshape(x.size, -1)
            value, err = cols @ flat_u, est.error.reshape(x.size, -1) @ np.abs(flat_u)
            mag = np.abs(cols) @ np.abs(flat_u)
        else:  # contract with u chunk by chunk: no (n_in × n_out) array is stored
            est = _estimate(target, fb, switches, values, w, units, contract=flat_u)
            value, err, mag = est.value, est.error, est.absval
        numeric = (value / scale).reshape(x_shape)
        error = (err / scale).reshape(x_shape)
        magnitude = mag / scale
        derived_v = _derived_value(target, dv, derived, values, u, x_shape)
        shape = x_shape
        if dv.kind == "vjp":
            notes = ("numerical VJP = Σ_o u_o ∂f_o/∂x_e for a seeded random upstream u",)
    floor = target.scale * (1.0 if u is None else float(np.linalg.norm(u)))
    cmp = _compare(derived_v, numeric, error, target.dtype, magnitude, rtol, atol, floor)
    worst = _worst(cmp, shape)
    localised: tuple[WorstEntry, ...] = ()
    if not cmp["passed"] and dv.kind == "vjp" and cmp["finite"]:
        assert u is not None   # a vjp's upstream
        e = int(np.ravel_multi_index(worst[0].index, x_shape))
        unit = np.zeros((1,) + x_shape, dtype=x.dtype)
        unit.reshape(1, -1)[0, e] = 1.0
        column = _estimate(target, fb, switches, values, w, unit).value.reshape(-1)
        localised = (_localise_output(target, dv, derived, values, u, worst[0].index, column,
                                      out_shape, x_shape),)
    return CheckResult(
        wrt=w, kind=dv.kind, shape=x_shape, mode="full", method=est.method, step=float(
            est.step * (np.max(scale) if est.method != "complex-step" else 1.0)),
        fd_error_estimate=float(np.max(error, initial=0.0)), max_abs_error=cmp["max_abs"],
        max_rel_error=cmp["max_rel"], rtol=cmp["rtol"], atol=cmp["atol"], n_evals=est.n_evals,
        passed=cmp["passed"], worst=worst if not cmp["passed"] else worst[:1], localised=localised,
        seconds=time.perf_counter() - started, notes=notes + _finite_note(cmp))


def _shape_failure(w: str, kind: str, mode: str, x_shape: tuple[int, ...], got: tuple[int, ...],
                   want: tuple[int, ...], whose: str = "derived") -> CheckResult:
    nan = float("nan")
    return CheckResult(wrt=w, kind=kind, shape=x_shape, mode=mode, method="none", step=nan,
                       fd_error_estimate=nan, max_abs_error=float("inf"), max_rel_error=float("inf"),
                       rtol=nan, atol=nan, n_evals=0, passed=False,
                       notes=(f"the {whose} {kind} has shape {got}, expected {want}"
                              f"{' (transposed?)' if tuple(reversed(got)) == tuple(want) else ''}",))


def _finite_note(cmp: _Comparison) -> tuple[str, ...]:
    return () if cmp["finite"] else ("non-finite values (NaN or inf) in the derived or numerical "
                                     "side at the sampled point",)


def _directional(target: _Target, w: str, dv: Derivative, derived: _Fn, fb: _Fn,
                 switches: _Switches, values: dict[str, np.ndarray], rng: np.random.Generator,
                 rtol: float | None, atol: float | None, k: int, x_shape: tuple[int, ...],
                 out_shape: tuple[int, ...]) -> CheckResult:
    started = time.perf_counter()
    x = values[w]
    scale = np.maximum(1.0, np.abs(x))
    W = np.asarray(rng.standard_normal((k,) + x_shape), dtype=target.dtype)
    V = W * scale[None]
    scalar_out = dv.kind == "gradient"
    U = (np.ones((k,) + out_shape, dtype=target.dtype) if scalar_out
         else np.asarray(rng.standard_normal((k,) + out_shape), dtype=target.dtype))
    est = _estimate(target, fb, switches, values, w, V)
    axes_out = tuple(range(1, 1 + len(out_shape)))
    numeric = np.sum(U * est.value, axis=axes_out) if out_shape else U * est.value
    error = np.sum(np.abs(U) * est.error, axis=axes_out) if out_shape else est.error
    derived_b = np.empty(k, dtype=np.float64)
    magnitude = np.empty(k, dtype=np.float64)
    jac: np.ndarray | None = None
    for b in range(k):
        if dv.kind == "jacobian":
            if jac is None:
                jac = _derived_value(target, dv, derived, values, None, out_shape + x_shape)
            terms = np.outer(U[b], V[b]) * jac
        else:
            g = _derived_value(target, dv, derived, values, U[b] if dv.kind == "vjp" else None,
                               x_shape)
            terms = g * V[b]
        derived_b[b] = float(np.sum(terms))
        magnitude[b] = float(np.sum(np.abs(terms)))
    floor = target.scale * np.linalg.norm(U.reshape(k, -1), axis=1) * \
        np.max(np.abs(V.reshape(k, -1)), axis=1)
    cmp = _compare(derived_b, np.ravel(numeric), np.ravel(error), target.dtype, magnitude, rtol,
                   atol, floor)
    q = _quantile_product(k, scalar_out or dv.kind == "gradient")
    delta_star = float(np.max(cmp["tol"])) / q if q > 0 else float("inf")
    detection = (f"{k} random directions: a single Jacobian entry J[o, e] (|x_e| ≤ 1) off by "
                 f"|δ| ≥ {delta_star:.1e} is caught with probability ≥ {1 - MISS_PROBABILITY:.0%} "
                 f"(tolerance {float(np.max(cmp['tol'])):.1e} per direction)")
    localised: tuple[WorstEntry, ...] = ()
    n_evals = est.n_evals
    if not cmp["passed"] and cmp["finite"]:
        b = int(np.argmax(cmp["ratio"]))
        entry, extra = _localise(target, dv, derived, fb, switches, values, w, U[b], V[b],
                                 x_shape, out_shape, jac)
        localised, n_evals = (entry,), n_evals + extra
    worst = _worst(cmp, (k,))
    return CheckResult(
        wrt=w, kind=dv.kind, shape=x_shape, mode="directional", method=est.method,
        step=float(est.step), fd_error_estimate=float(np.max(error, initial=0.0)),
        max_abs_error=cmp["max_abs"], max_rel_error=cmp["max_rel"], rtol=cmp["rtol"],
        atol=cmp["atol"], n_evals=n_evals, passed=cmp["passed"],
        worst=worst if not cmp["passed"] else worst[:1], directions=k, localised=localised,
        detection=detection, seconds=time.perf_counter() - started, notes=_finite_note(cmp))


# ---------------------------------------------------------------- localisation
def _localise(target: _Target, dv: Derivative, derived: _Fn, fb: _Fn, switches: _Switches,
              values: dict[str, np.ndarray], w: str, u: np.ndarray, v: np.ndarray,
              x_shape: tuple[int, ...], out_shape: tuple[int, ...], jac: np.ndarray | None
              ) -> tuple[WorstEntry, int]:
    """Bisect the input entries of one failing direction, then the outputs: (entry, evals)."""
    x = values[w]
    if dv.kind == "jacobian":
        assert jac is not None   # _directional computes it for a Jacobian
        g = (u.ravel() @ jac.reshape(u.size, -1)).reshape(x_shape)
    else:
        g = _derived_value(target, dv, derived, values, u if dv.kind == "vjp" else None, x_shape)
    idx = np.arange(x.size)
    evals = 0
    axes_out = tuple(range(1, 1 + len(out_shape)))
    while idx.size > 1:
        halves = np.array_split(idx, 2)
        V = np.zeros((2, x.size), dtype=x.dtype)
        for h, part in enumerate(halves):
            V[h, part] = v.ravel()[part]
        V = V.reshape((2,) + x_shape)
        est = _estimate(target, fb, switches, values, w, V)
        evals += est.n_evals
        num = np.sum(u[None] * est.value, axis=axes_out) if out_shape else u * est.value
        err = np.sum(np.abs(u)[None] * est.error, axis=axes_out) if out_shape else est.error
        der = np.array([np.sum(g.ravel()[part] * v.ravel()[part]) for part in halves])
        mismatch = np.abs(der - np.ravel(num)) / (np.ravel(err) + 1e-300 + 1e-12 * np.abs(der))
        idx = halves[int(np.argmax(mismatch))]
    e = int(idx[0])
    e_index = tuple(int(i) for i in np.unravel_index(e, x_shape)) if x_shape else ()
    V = np.zeros((1, x.size), dtype=x.dtype)
    V[0, e] = 1.0
    est = _estimate(target, fb, switches, values, w, V.reshape((1,) + x_shape))
    evals += est.n_evals
    column = est.value.reshape(-1)
    if dv.kind == "gradient" or not out_shape:
        d = float(np.ravel(g)[e])
        n = float(column[0])
        return WorstEntry(e_index, d, n, abs(d - n), float(np.ravel(est.error)[0])), evals
    return _localise_output(target, dv, derived, values, u, e_index, column, out_shape, x_shape,
                            jac), evals


def _localise_output(target: _Target, dv: Derivative, derived: _Fn, values: dict[str, np.ndarray],
                     u: np.ndarray, e_index: tuple[int, ...], column: np.ndarray,
                     out_shape: tuple[int, ...], x_shape: tuple[int, ...],
                     jac: np.ndarray | None = None) -> WorstEntry:
    """Given the numerical column J[:, e], find the output o where the derived J[o, e] differs
    most, by bisection with restricted upstreams (O(log N) VJP calls)."""
    e = int(np.ravel_multi_index(e_index, x_shape)) if x_shape else 0
    column = np.asarray(column).reshape(-1)

    def derived_entry_sum(mask_idx: np.ndarray) -> float:
        if jac is not None:
            return float(np.sum(jac.reshape(len(column), -1)[mask_idx, e] * u.ravel()[mask_idx]))
        um = np.zeros(u.size, dtype=u.dtype)
        um[mask_idx] = u.ravel()[mask_idx]
        g = _derived_value(target, dv, derived, values, um.reshape(out_shape), x_shape)
        return float(np.ravel(np.broadcast_to(g, x_shape))[e])

    idx = np.arange(len(column))
    while idx.size > 1:
        halves = np.array_split(idx, 2)
        gaps = [abs(derived_entry_sum(p) - float(np.sum(column[p] * u.ravel()[p]))) for p in halves]
        idx = halves[int(np.argmax(gaps))]
    o = int(idx[0])
    unit = np.zeros(u.size, dtype=u.dtype)
    unit[o] = 1.0
    if jac is not None:
        d = float(jac.reshape(len(column), -1)[o, e])
    else:
        g = _derived_value(target, dv, derived, values, unit.reshape(out_shape), x_shape)
        d = float(np.ravel(np.broadcast_to(g, x_shape))[e])
    n = float(column[o])
    o_index = tuple(int(i) for i in np.unravel_index(o, out_shape))
    return WorstEntry(o_index + e_index, d, n, abs(d - n), float("nan"))


# ---------------------------------------------------------------- every recipe
def check_all(*, recipe_dirs: list[str | Path] | None = None,
              progress: Callable[[str], object] | None = None, sizes: dict[str, int] | None = None,
              **options: Any) -> CheckReport:
    from ..lang.recipes import discover, load_file
    from ..lang.recipes import recipe_dirs as search_path

    started = time.perf_counter()
    targets: list[TargetCheck] = []
    found = discover(search_path(recipe_dirs))
    if sizes:
        _refuse_unknown_sizes(sizes, found.values())
    for name, path in sorted(found.items()):
        if progress is not None:
            progress(name)
        t0 = time.perf_counter()
        try:
            recipe = load_file(path)
            if recipe.name != name:
                raise DerivkitError(f"{path}: field 'name' is {recipe.name!r} but the file is "
                                    f"{path.name}")
            scope = program(recipe).scope
            mine = {k: v for k, v in (sizes or {}).items() if k in scope.dims}
            targets.append(check(recipe, sizes=mine, **options))
        except BudgetExceeded:     # the command's --timeout: stop, do not fail one target
            raise
        except Exception as exc:  # a broken recipe fails its target; the others are checked
            if not isinstance(exc, DerivkitError) and os.environ.get("DERIVKIT_DEBUG"):
                raise
            error = exc.one_line() if isinstance(exc, DerivkitError) else (
                f"{path}: internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:200]} "
                f"(a bug in derivkit; rerun with DERIVKIT_DEBUG=1 for the traceback and report it)")
            targets.append(TargetCheck(target=name, passed=False, seed=options.get("seed", 0),
                                       dtype=options.get("dtype", "float64"), sizes={}, results=(),
                                       error=error, seconds=time.perf_counter() - t0))
    return CheckReport(passed=all(t.passed for t in targets) and bool(targets),
                       targets=tuple(targets), seconds=time.perf_counter() - started)


def _refuse_unknown_sizes(sizes: dict[str, int], paths: Iterable[Path]) -> None:
    """A size that names no dimension of any recipe is a mistake (a typo, a renamed dimension),
    not something to skip silently: refused before any check runs, naming the dimensions of
    the recipes that load (a broken one fails as its own target later)."""
    from ..lang.recipes import load_file

    dims: set[str] = set()
    for path in paths:
        try:
            dims |= set(program(load_file(path)).scope.dims)
        except DerivkitError:
            continue
    unknown = [name for name in sizes if name not in dims]
    if unknown:
        given = ", ".join(f"{name}={sizes[name]}" for name in unknown)
        raise DerivkitError(f"⟨--size⟩ {given}: {' and '.join(map(repr, unknown))} "
                            f"{'is' if len(unknown) == 1 else 'are'} not a dimension of any recipe",
                            f"dimensions: {', '.join(sorted(dims)) or 'none'}")
