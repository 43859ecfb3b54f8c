"""A high-precision numerical oracle that shares nothing with the derivation.

The forward alone is evaluated at `DPS` = 60 significant digits (mpmath numbers in NumPy object
arrays, with NumPy's semantics: the element-wise evaluator of `explicit` over numbers instead of
symbols) and differentiated by central differences with step h = 10⁻²⁰:

    ∂f/∂x_e ≈ (f(x + h e) − f(x − h e)) / 2h,   error ≈ h² |f'''| + 10⁻⁶⁰/h ≈ 10⁻⁴⁰.

A form agrees when, along `DIRECTIONS` random directions v, ⟨form, v⟩ is within `TOL` = 10⁻²⁵
of the directional derivative (relative to it, or absolute below 1): a wrong form is off by far
more (a dropped term, a transpose, a factor 1.001); a disagreement is then located entry by
entry where that is cheap. A point where a function is within 10⁻⁹ of its kink is redrawn.

Each input is sampled at random rationals in its domain (real, positive, nonzero) at each size
assignment; a point where the forward is undefined or complex (log of a negative, a singular
matrix) is redrawn, then every input is tried positive.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from types import SimpleNamespace
from typing import Any, ClassVar

import mpmath
import numpy as np

from ..lang import ir
from ..lang.ops import ELEMENTWISE
from ..lang.recipes import INTEGER
from ..lang.shapes import DECLARED, fmt_size_list, fmt_sizes
from ..results import Verification
from .explicit import Explicit

DPS = 60
STEP = "1e-20"
TOL = "1e-25"
FINE_DPS, FINE_STEP = 100, "1e-40"   # a disagreement is checked again this finely
MAX_ENTRY_EVALS = 100     # evaluations a failure may take to locate its entry (else: a direction)
ASSIGNMENTS = 3           # size assignments compared (distinct per dimension)
DIRECTIONS = 4
TRIES = 12                # sample points tried per size assignment before the forward is undefined
ORACLE = "oracle"         # Verification.method


NEAR_KINK = 1e-9


class NearKink(Exception):
    """A function with a kink was evaluated within NEAR_KINK of it."""


class OracleUndefined(Exception):
    """The forward is undefined (or not real) at every point tried."""


def _piecewise(*pieces: tuple[Any, Any]) -> Any:
    return next(value for value, cond in pieces if cond)


#: Comparisons on numbers, by the operator's text (IR's Compare and SymPy's rel_op alike).
RELATIONS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne}

#: The `sympy` interface the op table's definitions use, over mpmath numbers: a definition
#: f(sp, t, *params) called with this namespace evaluates f numerically.
MP = SimpleNamespace(exp=mpmath.exp, log=mpmath.log, sqrt=mpmath.sqrt, Abs=abs, sign=mpmath.sign,
                     tanh=mpmath.tanh, sin=mpmath.sin, cos=mpmath.cos, erf=mpmath.erf,
                     pi=mpmath.pi, Rational=lambda p, q: mpmath.mpf(p) / q, Piecewise=_piecewise)


@cache
def _scalar_fn(fn: str) -> Callable[..., Any]:
    return lambda t, *params: ELEMENTWISE[fn].definition(MP, t, *params)


def as_mp(v: Any) -> Any:
    """A number as an mpmath number (a piecewise branch may return a Python int)."""
    return mpmath.mpf(v) if isinstance(v, (int, float)) else v


def _mpf(v: Any) -> Any:
    """A constant at full precision: a float as the decimal it prints as (0.01 is 1/100, as a
    printed form that says 0.01 reads back), a fraction exactly."""
    if isinstance(v, ir.NamedNumber):
        return {"pi": mpmath.pi, "e": mpmath.e}[v.name]()   # at the working precision
    if isinstance(v, float):
        return mpmath.mpf(repr(v))
    return mpmath.mpf(v.numerator) / v.denominator if hasattr(v, "denominator") else mpmath.mpf(v)


class Numeric(Explicit):
    """`Explicit` on mpmath numbers: constants, functions and matrix functions numerically."""

    EXTREMES: ClassVar[dict[str, Callable[..., Any]]] = {"max": max, "min": min}

    def _Const(self, n: ir.Const) -> Any:
        return _mpf(n.value)

    def _DimSize(self, n: ir.DimSize) -> Any:
        return mpmath.mpf(self.dim(n.name))

    def _Apply(self, n: ir.Apply) -> np.ndarray:
        params = [self.ev(p).item() for p in n.params]
        f = _scalar_fn(n.fn)
        kink = ELEMENTWISE[n.fn].kink
        if self.check_kinks and kink is not None and any(
                abs(v - kink) < NEAR_KINK for v in np.ravel(self.ev(n.a))):
            raise NearKink(n.fn)   # differences there would not be a derivative: redrawn
        return np.frompyfunc(lambda v: as_mp(f(v, *params)), 1, 1)(self.ev(n.a))

    def _Compare(self, n: ir.Compare) -> np.ndarray:
        return np.frompyfunc(RELATIONS[n.op], 2, 1)(self.ev(n.a), self.ev(n.b))

    def _Where(self, n: ir.Where) -> np.ndarray:
        return np.frompyfunc(lambda c, a, b: a if c else b, 3, 1)(
            self.ev(n.cond), self.ev(n.a), self.ev(n.b))

    def _Det(self, n: ir.Det) -> Any:
        return mpmath.det(mpmath.matrix(self.ev(n.a).tolist()))

    def _Inv(self, n: ir.Inv) -> np.ndarray:
        m = mpmath.matrix(self.ev(n.a).tolist())
        # singular to working precision: |det| tiny against Hadamard's bound Π ‖row‖
        bound = mpmath.fprod(mpmath.norm(m[i, :]) for i in range(m.rows))
        if abs(mpmath.det(m)) <= mpmath.mpf(10) ** (-DPS // 2) * bound:
            raise ZeroDivisionError("singular matrix")   # the point is redrawn
        return np.array((m ** -1).tolist(), dtype=object)

    ZERO: ClassVar[Any] = mpmath.mpf(0)
    ONE: ClassVar[Any] = mpmath.mpf(1)
    check_kinks = False   # refuse a point near a kink (set where a point is drawn)
    RULES: ClassVar[dict[type, Callable[..., Any]]] = {
        **Explicit.RULES, ir.Const: _Const, ir.DimSize: _DimSize, ir.Apply: _Apply,
        ir.Compare: _Compare, ir.Where: _Where, ir.Det: _Det, ir.Inv: _Inv}


def _real(arr: np.ndarray) -> bool:
    return all(isinstance(v, mpmath.mpf) and mpmath.isfinite(v) for v in np.asarray(arr).ravel())


def _sample(shape: tuple[int, ...], domain: str, rng: random.Random, classes: int = 2) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    if domain == INTEGER:   # class labels in [0, classes)
        for idx in np.ndindex(*shape):
            out[idx] = rng.randrange(classes)
        return out
    for idx in np.ndindex(*shape):
        k = rng.randint(100, 1900)   # |value| in [0.1, 1.9]: away from 0, where kinks are
        out[idx] = mpmath.mpf(k if domain == "positive" or rng.random() < 0.5 else -k) / 1000
    return out


@dataclass
class Point:
    """One sampled point at one size assignment: `env` maps every input (and the upstream
    gradient) to an object array of mpmath numbers."""

    sizes: dict[str, int]
    env: dict[str, np.ndarray]
    positive: bool = False    # every input sampled positive (the declared domains gave no point)
    values: dict[ir.Node, np.ndarray] = field(default_factory=dict)   # the forward, node by node


class Oracle:
    """The gradient of `out` (or of ⟨G, out⟩ for the upstream G) with respect to any input,
    or any named intermediate, at sampled points of several size assignments."""

    def __init__(self, out: ir.Node, inputs: dict[str, tuple[ir.Shape, str]],
                 param_values: dict[str, float], named: dict[str, ir.Node],
                 upstream: ir.Var | None, assignments: list[dict[str, int]], seed: int = 0,
                 consistent: dict[str, ir.Node] | None = None, report_error: bool = True,
                 sizes: int = ASSIGNMENTS) -> None:
        """`consistent`: inputs whose value at each point is their definition over the other
        inputs (a backward line's named value), not sampled. `report_error`: the label states
        the largest disagreement (else the tolerance, the same for every form). `sizes`: how
        many size assignments a form is compared at."""
        self.out, self.inputs, self.named, self.upstream = out, inputs, named, upstream
        self.consistent = consistent or {}
        self.report_error = report_error
        self.param_values = param_values
        self.assignments = _with_alternatives(assignments)
        self.seed = seed
        self.sizes = sizes
        self._gradients: dict[tuple[int, str], np.ndarray] = {}
        self._directions: dict[tuple[int, str], list[tuple[np.ndarray, Any]]] = {}
        self._fixed: dict[tuple[int, str], dict[ir.Node, np.ndarray]] = {}
        self._points: dict[int, Point] = {}
        self.labels = ir.label_bounds([out, *named.values(), *self.consistent.values()])

    # ------------------------------------------------------------------ evaluation
    def _ev(self, point: Point, node: ir.Node, overrides: dict[str, np.ndarray] | None = None
            ) -> np.ndarray:
        env = {**point.env, **(overrides or {})}
        return Numeric(point.sizes, env, self.named).ev(node)

    def _loss(self, point: Point, overrides: dict[str, np.ndarray], k: int | None = None) -> Any:
        ex = Numeric(point.sizes, {**point.env, **overrides}, self.named)
        if k is not None and len(overrides) == 1:   # values that do not depend on the change
            ex.memo.update(self._independent(k, next(iter(overrides))))
        value = ex.ev(self.out)
        if self.upstream is None:
            return value.item() if isinstance(value, np.ndarray) else value
        return mpmath.fsum((point.env[self.upstream.name] * value).ravel().tolist())

    def _independent(self, k: int, name: str) -> dict[ir.Node, np.ndarray]:
        """The forward's values at point k that do not depend on `name`."""
        if (k, name) not in self._fixed:
            depends: dict[ir.Node, bool] = {}
            for n in ir.walk(self.out):
                depends[n] = ((isinstance(n, ir.Var) and (n.name == name or n.role == "named"))
                              or any(depends[c] for c in n.args))
            self._fixed[(k, name)] = {n: v for n, v in self.point(k).values.items()
                                      if not depends.get(n, True)}
        return self._fixed[(k, name)]

    def point(self, k: int) -> Point:
        """The sampled point at assignment k (redrawn until the forward is real and finite)."""
        if k in self._points:
            return self._points[k]
        sizes = self.assignments[k]
        why = set()
        with mpmath.workdps(DPS):
            for attempt in range(TRIES):
                # the declared domains first; then every input positive (x**0.5, log(X @ W))
                positive = attempt >= TRIES // 2
                rng = random.Random(f"{self.seed}/{k}/{attempt}")
                env: dict[str, np.ndarray] = {}
                for name, (shape, domain) in self.inputs.items():
                    env[name] = _sample(self._concrete(shape, sizes),
                                        "positive" if positive and domain != INTEGER else domain,
                                        rng, ir.label_classes(self.labels, name, sizes))
                for name, value in self.param_values.items():
                    env[name] = np.asarray(mpmath.mpf(repr(float(value))), dtype=object)
                if self.upstream is not None:
                    env[self.upstream.name] = _sample(self._concrete(self.upstream.shape, sizes),
                                                      "real", rng)
                try:
                    for name, definition in self.consistent.items():
                        env[name] = np.asarray(Numeric(sizes, env, {}).ev(definition), dtype=object)
                    ex = Numeric(sizes, env, self.named)
                    ex.check_kinks = True
                    if _real(ex.ev(self.out)):
                        self._points[k] = Point(sizes, env, positive, ex.memo)
                        return self._points[k]
                    why.add("it is not real there (a log, square root or power of a negative)")
                except NearKink as exc:
                    why.add(f"an argument of {exc} is at its kink there")
                except ZeroDivisionError:
                    why.add("it divides by zero or inverts a singular matrix there")
                except (ValueError, OverflowError) as exc:
                    why.add(f"it cannot be evaluated there ({exc})")
        raise OracleUndefined(f"the forward is undefined at every point tried at "
                              f"{fmt_sizes(sizes, spaced=True, empty=DECLARED)}: "
                              f"{'; '.join(sorted(why))}")

    @staticmethod
    def _concrete(shape: ir.Shape, sizes: dict[str, int]) -> tuple[int, ...]:
        return tuple(d if isinstance(d, int) else sizes[d] for d in shape)

    def value(self, k: int, node: ir.Node, extra: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """`node` (a form over inputs, named values and `extra` arrays) at point k."""
        with mpmath.workdps(DPS):
            return self._ev(self.point(k), node, extra)

    # ------------------------------------------------------------------ differentiation
    def base(self, k: int, name: str) -> np.ndarray:
        """The value of input or named intermediate `name` at point k."""
        p = self.point(k)
        if name in p.env:
            return p.env[name]
        return self.value(k, self.named[name])

    def _along(self, k: int, name: str, v: np.ndarray) -> Any:
        """The derivative of the loss at point k along direction v of `name`:
        (L(x + h v) − L(x − h v)) / 2h."""
        return self._difference(k, name, v, DPS, STEP)[0]

    def _difference(self, k: int, name: str, v: np.ndarray, dps: int, step: str) -> tuple[Any, Any]:
        """(the central difference at `dps` digits with step `step`, the size of the losses
        it subtracts)."""
        x, p = np.asarray(self.base(k, name)), self.point(k)
        with mpmath.workdps(dps):
            h = mpmath.mpf(step)
            up, down = self._loss(p, {name: x + h * v}, k), self._loss(p, {name: x - h * v}, k)
            return (up - down) / (2 * h), max(abs(up), abs(down))

    def _refined(self, k: int, name: str, v: np.ndarray, got: Any) -> tuple[Any, str]:
        """A disagreement may be the oracle's: a forward curved enough (exp of exp) or large
        enough leaves h = 1e-20 at 60 digits too coarse. (relative error of `got` against the
        difference with a finer step at more digits, "") where that agrees; (None, why) where
        it disagrees too, or cannot resolve the derivative to the tolerance."""
        d, size = self._difference(k, name, v, FINE_DPS, FINE_STEP)
        with mpmath.workdps(FINE_DPS):
            scale = max(abs(d), mpmath.mpf(1))
            # each loss is exact to about 10^(5 − digits) of its size: so is their difference
            rounding = mpmath.mpf(10) ** (5 - FINE_DPS) * size / mpmath.mpf(FINE_STEP)
            if rounding / scale > mpmath.mpf(TOL):
                return None, (f"the forward's values (about {mpmath.nstr(size, 2)}) are too large "
                              f"to differentiate to {TOL} even at {FINE_DPS} digits")
            err = abs(got - d) / scale
            return (err, "") if err <= mpmath.mpf(TOL) else (None, "")

    def gradient(self, k: int, name: str) -> np.ndarray:
        """∂L/∂name at point k, every entry by central differences (2 evaluations each)."""
        if (k, name) not in self._gradients:
            shape = np.shape(self.base(k, name))
            grad = np.empty(shape, dtype=object)
            for e in np.ndindex(*shape):
                unit = np.full(shape, mpmath.mpf(0), dtype=object)
                unit[e] = mpmath.mpf(1)
                grad[e] = self._along(k, name, unit)
            self._gradients[(k, name)] = grad
        return self._gradients[(k, name)]

    def directional(self, k: int, name: str, directions: int = DIRECTIONS
                    ) -> list[tuple[np.ndarray, Any]]:
        """[(v, ∂L/∂name · v)] along random directions v at point k."""
        if (k, name) not in self._directions:
            shape = np.shape(self.base(k, name))
            rng = random.Random(f"{self.seed}/{k}/{name}/directions")
            vs = [_sample(shape, "real", rng) for _ in range(directions)]
            self._directions[(k, name)] = [(v, self._along(k, name, v)) for v in vs]
        return self._directions[(k, name)]

    def entry_wise(self, name: str, k: int = 0) -> bool:
        size = int(np.prod(np.shape(self.base(k, name))))
        return 2 * size <= MAX_ENTRY_EVALS

    # ------------------------------------------------------------------ comparing a form
    def compare(self, name: str, form: Callable[[int], np.ndarray]) -> Verification:
        """Compare `form(k)` (the claimed ∂L/∂name at point k, an object array) with the
        oracle at every size assignment: along random directions v, ⟨form, v⟩ against the
        directional derivative; a disagreement is then located entry by entry."""
        worst = mpmath.mpf(0)
        refined = False
        done: list[dict[str, int]] = []
        undefined: list[tuple[dict[str, int], str]] = []   # sizes where the forward is undefined
        tol = mpmath.mpf(TOL)
        for k, sizes in enumerate(self.assignments):
            if len(done) == self.sizes:
                break
            try:
                self.point(k)
            except OracleUndefined as exc:
                undefined.append((sizes, str(exc)))
                continue
            with mpmath.workdps(DPS):
                shape = np.shape(self.base(k, name))
                claimed = np.broadcast_to(np.asarray(form(k), dtype=object), shape)
                if not _real(claimed):
                    return self._failed(done, sizes, "the form is not real and finite there")
                for v, d in self.directional(k, name):
                    got = mpmath.fsum(np.ravel(np.asarray(claimed * v, dtype=object)).tolist())
                    err = abs(got - d) / max(abs(d), mpmath.mpf(1))
                    if err > tol:
                        err, why = self._refined(k, name, v, got)
                        if why:
                            return self._unresolved(done, sizes, why)
                        if err is None:
                            return self._failed(done, sizes, self._where(k, name, claimed, got, d))
                        refined = True
                    worst = max(worst, err)
            done.append(sizes)
        if not done:
            return Verification(False, "none", (), f"NOT VERIFIED: {undefined[0][1]}")
        positive = any(self.point(k).positive for k, s in enumerate(self.assignments) if s in done)
        detail = describe(done, worst if self.report_error else None, positive)
        if refined:
            detail += (f" (where the forward is too curved for that, at {FINE_DPS} digits with "
                       f"step {FINE_STEP})")
        skipped = [s for s, _ in undefined if s not in done]
        if skipped:
            detail += (f" (not at {'; '.join(fmt_sizes(s, spaced=True) for s in skipped)}: "
                       f"the forward is undefined there)")
        return Verification(True, ORACLE, tuple(done), detail)

    def _where(self, k: int, name: str, claimed: np.ndarray, got: Any, d: Any) -> str:
        """The first entry where `claimed` disagrees (entry by entry, when that is cheap)."""
        if self.entry_wise(name, k):
            truth = self.gradient(k, name)
            scale = max([abs(v) for v in truth.ravel()] + [mpmath.mpf(1)])
            for e in np.ndindex(*claimed.shape):
                err = abs(claimed[e] - truth[e]) / scale
                if err > mpmath.mpf(TOL):
                    return (f"entry {list(e)}: form {mpmath.nstr(claimed[e], 8)}, oracle "
                            f"{mpmath.nstr(truth[e], 8)} (relative error {mpmath.nstr(err, 2)})")
        return (f"along a random direction: form {mpmath.nstr(got, 8)}, oracle "
                f"{mpmath.nstr(d, 8)}")

    def _unresolved(self, done: list[dict[str, int]], sizes: dict[str, int], why: str) -> Verification:
        return Verification(False, "none", tuple(done + [sizes]),
                            f"NOT VERIFIED: the oracle cannot check it at "
                            f"{fmt_sizes(sizes, spaced=True, empty=DECLARED)}: {why}")

    def _failed(self, done: list[dict[str, int]], sizes: dict[str, int], what: str) -> Verification:
        return Verification(False, "none", tuple(done + [sizes]),
                            f"NOT VERIFIED: disagrees with the forward differentiated numerically "
                            f"at {fmt_sizes(sizes, spaced=True, empty=DECLARED)}: {what}")


def _with_alternatives(assignments: list[dict[str, int]]) -> list[dict[str, int]]:
    """`assignments`, then the same sizes rotated the other way (for a forward that is
    undefined at some, such as log det(XᵀX) where n < k)."""
    out = list(assignments)
    if assignments and len(assignments[0]) > 1:
        dims = list(assignments[0])
        values = [assignments[t][dims[0]] for t in range(len(assignments))]
        for t in range(len(values)):
            alt = {d: values[(t - i) % len(values)] for i, d in enumerate(dims)}
            if alt not in out:
                out.append(alt)
    return out


def describe(done: list[dict[str, int]], worst: Any, positive: bool = False) -> str:
    """'verified numerically: …' — what the oracle did, where, and how closely it agreed."""
    at = fmt_size_list(done) if done and done[0] else "the declared sizes"
    how = f"along {DIRECTIONS} random directions"
    agree = (f"within {TOL}" if worst is None else "exactly" if worst == 0
             else f"to {mpmath.nstr(worst, 1)}")
    where = " (inputs positive: the forward is not real elsewhere)" if positive else ""
    return (f"verified numerically at {at}{where}: agrees {agree} with the forward "
            f"differentiated at {DPS} digits ({how})")
