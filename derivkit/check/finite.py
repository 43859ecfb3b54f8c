"""Finite-difference directional derivatives, batched, each with an error estimate.

For a batch of directions V (shape (B, *x.shape)) and f the lowered forward:

complex step (f analytic):     D_b = Im f(x + i·h·V_b) / h,  h = 1e-20 (float64), 1e-10 (float32).
    No subtraction, so no cancellation: the truncation error h²|f'''|/6 is far below rounding;
    the estimate of the error is a few ulps of the largest |D| ("rounding").  B evaluations.

central + Richardson (otherwise):
    C(h) = (f(x + hV) − f(x − hV)) / 2h,   R = (4·C(h/2) − C(h)) / 3   (error O(h⁴)),
    h = ∛ε (directions are already scaled by max(1, |x|) per entry),
    error estimate |R − C(h/2)| (the truncation left after one extrapolation step is smaller)
    plus rounding ε·max|f|/h.  4B evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Estimate:
    value: np.ndarray        # (B, *out.shape) directional derivatives
    error: np.ndarray        # same shape, estimated absolute error of `value`
    method: str
    step: float
    n_evals: int


def _eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def _chunks(batch: int, chunk: int):
    for start in range(0, batch, chunk):
        yield slice(start, min(batch, start + chunk))


def complex_step(f, x: np.ndarray, V: np.ndarray, dtype, chunk: int) -> Estimate:
    h = 1e-20 if np.dtype(dtype) == np.float64 else 1e-10
    cdtype = np.result_type(dtype, np.complex64)
    parts = []
    for sl in _chunks(V.shape[0], chunk):
        xb = (x[None] + 1j * h * V[sl]).astype(cdtype)
        parts.append(np.imag(f(xb)) / h)
    value = np.concatenate(parts).astype(dtype)
    scale = np.max(np.abs(value)) if value.size else 0.0
    error = 4 * _eps(dtype) * (np.abs(value) + scale)
    return Estimate(value, error, "complex-step", h, V.shape[0])


def central_richardson(f, x: np.ndarray, V: np.ndarray, dtype, chunk: int) -> Estimate:
    eps = _eps(dtype)
    h = eps ** (1 / 3)
    vals = {}
    fmax = 0.0
    for s in (1.0, -1.0, 0.5, -0.5):
        parts = []
        for sl in _chunks(V.shape[0], chunk):
            parts.append(f(x[None] + s * h * V[sl]))
        vals[s] = np.concatenate(parts).astype(dtype)
        fmax = max(fmax, float(np.max(np.abs(vals[s]))) if vals[s].size else 0.0)
    c1 = (vals[1.0] - vals[-1.0]) / (2 * h)
    c2 = (vals[0.5] - vals[-0.5]) / h
    r = (4 * c2 - c1) / 3
    error = np.abs(r - c2) + 4 * eps * fmax / h
    return Estimate(r, error, "central-richardson", h, 4 * V.shape[0])
