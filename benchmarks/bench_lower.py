"""Lowered code against hand-written NumPy, measured in one run.

- `linear`'s lowered `vjp_W` at m = n = k = 512 against `X.T @ G`;
- `softmax`'s lowered `vjp_z` at n = 4096 against `p * (g - g @ p)`, p from a hand-written stable
  softmax (both compute p from z inside the call, as a backward pass without a cache does).

Each sample times a batch of calls; samples of the two sides alternate (interleaved), so drift
of the machine affects both alike. Medians and the ratio lowered / hand-written are printed
(target: ratio <= 1.2). Nothing is asserted.

    python benchmarks/bench_lower.py [--samples N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from derivkit import api
from derivkit.lowering import module


def hand_softmax_vjp(*, z, g):
    e = np.exp(z - z.max())
    p = e / e.sum()
    return p * (g - g @ p)


def hand_linear_vjp_w(*, X, W, b, G):
    return X.T @ G


def _batch(fn, kwargs, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn(**kwargs)
    return (time.perf_counter() - start) / calls


def compare(label: str, lowered, hand, kwargs, samples: int, calls: int) -> float:
    np.testing.assert_allclose(lowered(**kwargs), hand(**kwargs), rtol=1e-10, atol=1e-12)
    for fn in (lowered, hand):          # warm-up
        _batch(fn, kwargs, calls)
    ours, theirs = [], []
    for _ in range(samples):
        ours.append(_batch(lowered, kwargs, calls))
        theirs.append(_batch(hand, kwargs, calls))
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"  {label}")
    print(f"    lowered      {a * 1e6:10.1f} µs   (median of {samples} samples × {calls} calls)")
    print(f"    hand-written {b * 1e6:10.1f} µs")
    print(f"    ratio lowered / hand-written: {a / b:.3f}   (target <= 1.2)")
    return a / b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=25, help="samples per side (>= 20)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"derivkit lower benchmark (Python {sys.version.split()[0]}, NumPy {np.__version__})")

    lin = module.load(api.lower_recipe("linear"))
    n = 512
    kwargs = dict(X=rng.standard_normal((n, n)), W=rng.standard_normal((n, n)),
                  b=rng.standard_normal(n), G=rng.standard_normal((n, n)))
    compare("linear vjp_W, m = n = k = 512:  X.T @ G", lin["vjp_W"], hand_linear_vjp_w, kwargs,
            args.samples, calls=5)

    soft = module.load(api.lower_recipe("softmax"))
    n = 4096
    kwargs = dict(z=rng.standard_normal(n), g=rng.standard_normal(n))
    compare("softmax vjp_z, n = 4096:  p * (g - g @ p)", soft["vjp_z"], hand_softmax_vjp, kwargs,
            args.samples, calls=200)


if __name__ == "__main__":
    main()
