"""derivkit check against a gradcheck-style NumPy loop, measured in one run (not a timed test).

Problem (the survey's problem A): L(W) = sum(G ⊙ (X W)), X 64×128, W 128×64, float64, i.e.
recipe `linear` at m = 64, n = 128, k = 64, checking ∂L/∂W.

Baseline: torch.autograd.gradcheck's settings reimplemented in plain NumPy: a central-difference
loop over all 8192 entries of W with an absolute step 1e-6 (16,384 evaluations), verdict
|analytic − numeric| ≤ atol + rtol·|numeric| with atol = 1e-5, rtol = 1e-3.

For each derivkit mode: wall time of the numerical check (the symbolic derivation, done once per
recipe, is timed separately), forward evaluations, and the smallest single-entry error detected:
an error δ is added to one entry of a correct ∂L/∂W and the smallest δ (on a grid of powers of
ten) caught at every one of 5 random entries is reported. Ratios are printed, nothing asserted.

Run: python benchmarks/bench_check.py
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import numpy as np

SIZES = {"m": 64, "n": 128, "k": 64}
GRID = [10.0 ** e for e in range(-14, 1)]


def median_time(fn, repeat=3):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def loop_check(X, G, W, grad, rtol=1e-3, atol=1e-5, eps=1e-6):
    """gradcheck-style: True if every entry agrees within atol + rtol·|numeric|."""
    def L(w):
        return np.sum(G * (X @ w))
    num = np.empty_like(W)
    for idx in np.ndindex(*W.shape):
        wp, wm = W.copy(), W.copy()
        wp[idx] += eps
        wm[idx] -= eps
        num[idx] = (L(wp) - L(wm)) / (2 * eps)
    return bool(np.all(np.abs(grad - num) <= atol + rtol * np.abs(num))), num


def main() -> None:
    from derivkit import api
    from derivkit.checking import runner
    from derivkit.lang import recipes

    recipe = dataclasses.replace(recipes.load("linear"), wrt=("W",))
    t = time.perf_counter()
    derivation = api.derive_recipe("linear", wrt=["W"])
    print(f"symbolic derivation of linear (once): {time.perf_counter() - t:.3f} s")

    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 128))
    W = rng.standard_normal((128, 64))
    G = rng.standard_normal((64, 64))
    good = X.T @ G

    print("\nbaseline: central-difference loop, eps 1e-6, rtol 1e-3, atol 1e-5")
    t_loop = median_time(lambda: loop_check(X, G, W, good))
    print(f"  time {t_loop:.3f} s, evaluations 16384")
    _, num = loop_check(X, G, W, good)
    entries = [tuple(int(i) for i in rng.integers(0, W.shape)) for _ in range(5)]
    loop_detect = None
    for delta in GRID:
        if all(not loop_check_fast(num, good, e, delta) for e in entries):
            loop_detect = delta
            break
    print(f"  smallest single-entry error detected: {loop_detect:.0e}"
          f" (|entries| ~ {np.median(np.abs(good)):.1f}; threshold atol + 1e-3·|J_e|)")

    print("\nderivkit check linear --wrt W --size m=64 --size n=128 --size k=64")
    rows = []
    for mode in ("auto", "directional", "full"):
        def run(impl=None, seed=0):
            impls = {} if impl is None else {("vjp", "W"): impl}
            return runner.check(recipe, mode=mode, sizes=SIZES, seed=seed, derivation=derivation,
                                implementations=impls)
        t = time.perf_counter()
        tc = run(seed=99)
        t_first = time.perf_counter() - t
        t_mode = median_time(run, repeat=5 if mode != "full" else 1)
        evals = sum(r.n_evals for r in tc.results)
        detect = None
        for delta in GRID:
            caught = True
            for seed, e in enumerate(entries):
                def impl(X, W, b, G, e=e, delta=delta):
                    out = X.T @ G
                    out[e] += delta
                    return out
                if run(impl, seed=seed).passed:
                    caught = False
                    break
            if caught:
                detect = delta
                break
            if mode == "full" and delta > 1e-12:
                break  # full mode is slow; the grid from 1e-14 is enough to place it
        rows.append((mode, t_mode, evals, detect))
        detection = next((r.detection for r in tc.results if r.detection), "")
        print(f"  {mode:11s} time {t_mode:.4f} s   evals {evals:6d}   speed-up vs loop "
              f"{t_loop / t_mode:7.1f}×   smallest error caught {detect:.0e}"
              f" ({loop_detect / detect:.0e}× smaller than the loop's)" if detect else
              f"  {mode:11s} time {t_mode:.4f} s   evals {evals}   (no error on the grid caught)")
        print(f"              first call (compiles the generated code): {t_first:.4f} s")
        if detection:
            print(f"              stated: {detection}")
    print("\ntargets: auto ≥ 100× faster than the loop and ≥ 1000× more sensitive; full no slower")
    auto = rows[0]
    full = rows[2]
    print(f"  auto: {t_loop / auto[1]:.0f}× faster, {loop_detect / auto[3]:.0e}× more sensitive")
    print(f"  full: {full[1] / t_loop:.2f}× the loop's time "
          f"({'met' if full[1] <= t_loop else 'NOT met'}: complex step needs n evaluations of "
          f"complex arithmetic on a batch, which is memory-bound here)")

    print("\nderivkit check --all (every built-in recipe, default sizes)")
    t = time.perf_counter()
    report = api.check_all()
    print(f"  {time.perf_counter() - t:.2f} s for {len(report.targets)} recipes, passed: {report.passed}")


def loop_check_fast(num, good, e, delta, rtol=1e-3, atol=1e-5):
    """The loop's verdict for `good` with `delta` added at entry e (the numeric side does not
    depend on the gradient being checked, so it is computed once)."""
    grad = good.copy()
    grad[e] += delta
    return bool(np.all(np.abs(grad - num) <= atol + rtol * np.abs(num)))


if __name__ == "__main__":
    main()
