"""The transformer's pieces as whole processes (cold, imports included), measured in one run.

Goals (issue 13): `derivkit derive transformer-block` ≤ 10 s, `derivkit check transformer-block`
≤ 10 s; the batched attention recipe (rank-3 Q, K, V) ≤ 5 s; the new functions each derive like
any expression. Each command runs in a fresh
interpreter; the median of `--repeat` runs is printed beside its goal, and whether the command
succeeded (exit 0).

    python benchmarks/bench_transformer.py [--repeat N]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES = [
    ("derive transformer-block", ["derive", "transformer-block"], 10.0),
    ("check transformer-block", ["check", "transformer-block"], 10.0),
    ("derive attention-batched", ["derive", "attention-batched"], 5.0),
    ("check attention-batched", ["check", "attention-batched"], 5.0),
    ("lower attention-batched", ["lower", "attention-batched"], 5.0),
    ("derive gelu MLP", ["derive", "--expr", "sum(gelu(X @ W1) @ W2 * G)", "--wrt", "W1",
                         "--shape", "X=m,n", "--shape", "W1=n,h", "--shape", "W2=h,k",
                         "--shape", "G=m,k"], 5.0),
    ("derive log_softmax CE", ["derive", "--expr", "-sum(T * log_softmax(X @ W))", "--wrt", "W",
                               "--shape", "X=m,n", "--shape", "W=n,k", "--shape", "T=m,k"], 5.0),
    ("derive layer norm (var)", ["derive", "--expr",
                                 "sum((X - mean(X, axis=-1, keepdims=True)) / sqrt(var(X, axis=-1, "
                                 "keepdims=True) + eps) * G)", "--wrt", "X", "--shape", "X=m,n",
                                 "--shape", "G=m,n", "--param", "eps=1e-5"], 5.0),
]


def _run(args: list[str], repeat: int) -> tuple[float, bool]:
    env = dict(os.environ, NO_COLOR="1")
    times, ok = [], True
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "derivkit", *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
        ok = ok and proc.returncode == 0
    return statistics.median(times), ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "derivkit", quiet=1)   # as pip does at install
    print(f"cold processes, median of {args.repeat}:")
    for label, cmd, goal in CASES:
        seconds, ok = _run(cmd, args.repeat)
        verdict = "ok" if ok else "FAILED"
        print(f"  {label:28s} {seconds:6.2f} s  (goal ≤ {goal:g} s: "
              f"{'met' if seconds <= goal else 'NOT met'})  {verdict}")


if __name__ == "__main__":
    main()
