"""Derivation timings, measured in one run (a script, not a timed test).

1. `derive` time for every recipe (symbolic derivation + element-wise verification), in-process,
   after SymPy is imported (its import time is printed separately).
2. `linear` at symbolic sizes: derived once, independent of the size it is used at. Evaluating the
   derived forms at m = n = k = N grows with N (NumPy work), the derivation does not. For contrast,
   deriving with concrete shapes verifies element-wise at those shapes and grows with N.

Run: python benchmarks/bench_derive.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def timed(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    t = time.perf_counter()
    import sympy  # noqa: F401

    print(f"import sympy: {time.perf_counter() - t:.2f} s")
    from derivkit import api
    from derivkit.lang import recipes
    from derivkit.lowering import forms

    print("\nderive, per recipe: cold = first derivation in a fresh process (SymPy imported, its caches"
          "\nempty); warm = median of 3 more in the same process (SymPy's caches filled)")
    total_cold = total_warm = 0.0
    for r in recipes.load_all():
        code = ("import time, sympy; from derivkit import api; t = time.perf_counter(); "
                f"api.derive_recipe({r.name!r}); print(time.perf_counter() - t)")
        cold = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout)
        warm = timed(lambda: api.derive_recipe(r.name))
        total_cold += cold
        total_warm += warm
        print(f"  {r.name:12s} cold {cold:6.2f} s   warm {warm:6.2f} s")
    print(f"  {'all':12s} cold {total_cold:6.2f} s   warm {total_warm:6.2f} s")

    print("\nlinear at symbolic sizes: derive once, use at any size")
    d_sym = timed(lambda: api.derive_recipe("linear"))
    recipe = recipes.load("linear")
    d = api.derive_recipe("linear")
    import numpy as np

    rng = np.random.default_rng(0)
    print(f"  symbolic derivation (m, n, k):              {d_sym:6.2f} s  (independent of N)")
    for n in (16, 128, 512):
        X, W, b, G = (rng.standard_normal(s) for s in ((n, n), (n, n), (n,), (n, n)))
        fns = [forms.form_function(recipe, dv.matrix.text) for dv in d.derivatives]
        ev = timed(lambda: [f(X=X, W=W, b=b, G=G) for f in fns], repeat=5)
        print(f"  evaluate the derived VJPs at N = {n:4d}:       {ev * 1e3:8.2f} ms")
    print("  for contrast, deriving with concrete shapes (element-wise verification at N):")
    for n in (2, 3, 4, 5):
        c = timed(lambda: api.derive_expression("X @ W + b", ["W"], {"X": f"{n},{n}", "W": f"{n},{n}",
                                                                      "b": f"{n}"}), repeat=1)
        print(f"    N = {n}: {c:6.2f} s   ratio to symbolic: {c / d_sym:5.2f}")


if __name__ == "__main__":
    main()
