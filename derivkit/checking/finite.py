"""Finite-difference directional derivatives, batched, each with an error estimate.

For a batch of directions v_b (rows of V, each shaped like x) and f the lowered forward:

complex step (f analytic):     D_b = Im f(x + i·h·v_b) / h,  h = 1e-20 (float64), 1e-10 (float32).
    No subtraction, so no cancellation: the truncation error h²|f'''|/6 is far below rounding;
    the error estimate is a few ulps of |D| plus of the largest |D| (rounding). B evaluations.

central + Richardson (otherwise):
    C(h) = (f(x + h·v) − f(x − h·v)) / 2h,   R = (4·C(h/2) − C(h)) / 3   (error O(h⁴)),
    h = ε^¼ ≈ 1.2e-4 in float64 (balances the O(h⁴) truncation left after extrapolation against
    rounding ε/h; directions are already scaled by max(1, |x_j|) per entry),
    error estimate |R − C(h/2)| (the truncation left after one extrapolation step is smaller)
    plus rounding 4ε·max|f|/h. 4B evaluations.

Directions are either a dense array V (B, *x.shape) or `Units(scale)`: v_j = scale_j·e_j for
every entry j of x, generated chunk by chunk. With `contract=u`, each D_b is reduced to ⟨u, D_b⟩
(and its error to ⟨|u|, err_b⟩) chunk by chunk, so no (B × outputs) array is ever stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass
class Units:
    scale: np.ndarray   # flat, one entry per entry of x

    @property
    def count(self) -> int:
        return int(self.scale.size)


@dataclass
class Estimate:
    value: np.ndarray        # (B, *out.shape), or (B,) when contracted
    error: np.ndarray        # same shape: estimated absolute error of `value`
    absval: np.ndarray       # |value| before cancellation: Σ_o |u_o|·|D_bo| when contracted
    method: str
    step: float
    n_evals: int


#: directions: a dense (B, *x.shape) array, or the scaled unit vectors
Directions = np.ndarray | Units
#: f(points, real_part): the forward on a batch of points (real_part: their shared real part, for
#: complex step; None otherwise)
Batched = Callable[[np.ndarray, np.ndarray | None], npt.ArrayLike]


def _eps(dtype: npt.DTypeLike) -> float:
    return float(np.finfo(dtype).eps)


def _count(V: Directions) -> int:
    return V.count if isinstance(V, Units) else V.shape[0]


def _points(x: np.ndarray, V: Directions, sl: slice, coeff: complex, dtype: npt.DTypeLike) -> np.ndarray:
    """x + coeff·v_b for the directions in `sl` (coeff real, or imaginary for complex step)."""
    b = sl.stop - sl.start
    out = np.empty((b,) + x.shape, dtype=dtype)
    out[...] = x
    if isinstance(V, Units):
        flat = out.reshape(b, -1)
        rows = np.arange(b)
        cols = np.arange(sl.start, sl.stop)
        flat[rows, cols] += coeff * V.scale[cols]
    else:
        out += coeff * V[sl]
    return out


def _reduce(D: np.ndarray, contract: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if contract is None:
        return D, np.abs(D)
    flat = D.reshape(D.shape[0], -1)
    return flat @ contract, np.abs(flat) @ np.abs(contract)


def _chunks(batch: int, chunk: int) -> Iterator[slice]:
    for start in range(0, batch, chunk):
        yield slice(start, min(batch, start + chunk))


def complex_step(f: Batched, x: np.ndarray, V: Directions, dtype: npt.DTypeLike, chunk: int,
                 contract: np.ndarray | None = None) -> Estimate:
    """`f(xb, real_part)` evaluates the batch; real_part = x is the shared real part."""
    h = 1e-20 if np.dtype(dtype) == np.float64 else 1e-10
    cdtype = np.result_type(dtype, np.complex64)
    values, absvals, peak = [], [], 0.0
    for sl in _chunks(_count(V), chunk):
        D = np.imag(f(_points(x, V, sl, 1j * h, cdtype), x)) / h
        peak = max(peak, float(np.max(np.abs(D), initial=0.0)))
        v, a = _reduce(np.asarray(D, dtype=dtype), contract)
        values.append(v)
        absvals.append(a)
    value = np.concatenate(values)
    absval = np.concatenate(absvals)
    # rounding: a few ulps of each term, plus a random walk of the largest one over the terms
    weight = 1.0 if contract is None else float(np.linalg.norm(contract))
    error = 4 * _eps(dtype) * (absval + peak * weight)
    return Estimate(value, error, absval, "complex-step", h, _count(V))


def central_richardson(f: Batched, x: np.ndarray, V: Directions, dtype: npt.DTypeLike, chunk: int,
                       contract: np.ndarray | None = None, ulps: float = 1.0) -> Estimate:
    """`ulps`: f's rounding error in units of ε (more than 1 where a function's lowering is less
    exact than NumPy's own, as erf's): the rounding term of the error estimate scales with it."""
    eps = _eps(dtype)
    h = eps ** (1 / 4)  # fourth order after one extrapolation: rounding ε/h is what is left
    values, errors, absvals = [], [], []
    for sl in _chunks(_count(V), chunk):
        vals, fmax = {}, 0.0
        for s in (1.0, -1.0, 0.5, -0.5):
            vals[s] = np.asarray(f(_points(x, V, sl, s * h, dtype), None), dtype=dtype)
            fmax = max(fmax, float(np.max(np.abs(vals[s]), initial=0.0)))
        c1 = (vals[1.0] - vals[-1.0]) / (2 * h)
        c2 = (vals[0.5] - vals[-0.5]) / h
        r = (4 * c2 - c1) / 3
        trunc = np.abs(r - c2)
        v, a = _reduce(r, contract)
        e, _ = _reduce(trunc, None if contract is None else np.abs(contract))
        weight = 1.0 if contract is None else float(np.sum(np.abs(contract)))
        values.append(v)
        absvals.append(a)
        errors.append(e + 4 * ulps * eps * fmax * weight / h)
    return Estimate(np.concatenate(values), np.concatenate(errors), np.concatenate(absvals),
                    "central-richardson", h, 4 * _count(V))
