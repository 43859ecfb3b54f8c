"""Cold start of the CLI, measured in one run: `derivkit --help` against `python -c "import typer"`.

Each command runs in a fresh interpreter (a subprocess), 5 times; the medians and their ratio are
printed. The ratio is the number to watch: `derivkit --help` should cost little more than importing
Typer, because SymPy and NumPy are imported only when something is derived.

    python benchmarks/bench_cli.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def _time(cmd: list[str], repeat: int) -> float:
    env = dict(os.environ, NO_COLOR="1")
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    cases = [
        ("python -c 'import typer'", [py, "-c", "import typer"]),
        ("derivkit --help", [py, "-m", "derivkit", "--help"]),
        ("derivkit --version", [py, "-m", "derivkit", "--version"]),
        ("derivkit list", [py, "-m", "derivkit", "list"]),
    ]
    # One untimed warm-up per command so the OS file cache is the same for all.
    for _, cmd in cases:
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {label: _time(cmd, args.repeat) for label, cmd in cases}
    base = results["python -c 'import typer'"]
    print(f"cold start, median of {args.repeat} runs ({sys.version.split()[0]}):")
    for label, seconds in results.items():
        print(f"  {label:<28} {seconds * 1000:8.1f} ms   ×{seconds / base:5.2f} vs import typer")
    print(f"ratio derivkit --help / import typer: {results['derivkit --help'] / base:.2f}")


if __name__ == "__main__":
    main()
