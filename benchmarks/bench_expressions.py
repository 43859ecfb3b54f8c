"""`derivkit derive` on the public list of expressions ML learners meet, measured in one run.

For every entry of benchmarks/expressions.toml: the time of `derivkit derive --expr ... --json`
as a whole process (cold: a fresh interpreter, imports included), whether every form was
verified, and the length of each printed gradient against the textbook's, in operations (calls,
operators, transposes, reductions; each distinct subexpression and each named intermediate
counted once: `derivkit.lang.ir.operations`). Then `derive mlp3`, and the time for 1…8 stacked
tanh layers, which should grow at most linearly.

Goals (issue 12): every entry ≤ 5 s, median ≤ 1.5 s; `derive mlp3` ≤ 3 s; printed forms no longer
than the textbook's.

    python benchmarks/bench_expressions.py [--only NAME ...] [--timeout S] [--no-layers]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).parent


def _shape(text: str) -> tuple[str | int, ...]:
    if text in ("scalar", ""):
        return ()
    return tuple(int(d) if d.isdigit() else d for d in text.split(","))


def _args(entry: dict) -> list[str]:
    args = ["--expr", entry["expr"], "--wrt", ",".join(entry["wrt"])]
    for name, dims in entry["shapes"].items():
        args += ["--shape", f"{name}={dims}"]
    for name, value in entry.get("params", {}).items():
        args += ["--param", f"{name}={value}"]
    return args


# derivkit's bytecode, compiled once before timing (as `pip install` does; into derivkit's
# __pycache__ folders, which git ignores): an editable install on a machine with
# PYTHONDONTWRITEBYTECODE=1 (this one) would otherwise compile derivkit's modules again in every
# process (about 0.3 s).
def compile_bytecode() -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "derivkit")],
                   check=True, stdout=subprocess.DEVNULL)


def derive(args: list[str], timeout: float) -> tuple[float, dict | None, str]:
    env = dict(os.environ, NO_COLOR="1")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "derivkit", "derive", *args, "--json",
                           "--timeout", str(timeout)], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    try:
        return elapsed, json.loads(proc.stdout), ""
    except json.JSONDecodeError:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        return elapsed, None, f"exit {proc.returncode}: {last}"


def length(text: str, shapes: dict[str, str], params: dict[str, float],
           intermediates: dict[str, str]) -> int:
    """Operations in `text`, each named intermediate (and any repeated subexpression) once."""
    from derivkit.lang.parse import Scope
    from derivkit.lang.program import length as form_length

    scope = Scope({n: _shape(s) for n, s in shapes.items()}, dict(params))
    return form_length(text, scope, intermediates)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--no-layers", action="store_true")
    opts = parser.parse_args()
    entries = tomllib.loads((HERE / "expressions.toml").read_text())["expr"]
    if opts.only:
        entries = [e for e in entries if e["name"] in opts.only]

    compile_bytecode()
    print("derivkit's bytecode compiled first, as pip does at install "
          f"(PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r} here)")
    print(f"{'expression':28s} {'time':>7s}  verified  operations derived/textbook per input")
    times, ours, theirs, slow, unverified = [], 0, 0, [], []
    for e in entries:
        elapsed, doc, error = derive(_args(e), opts.timeout)
        times.append(elapsed)
        if elapsed > 5:
            slow.append(e["name"])
        if doc is None:
            print(f"{e['name']:28s} {elapsed:6.2f}s  error: {error}")
            unverified.append(e["name"])
            continue
        ok = bool(doc.get("verified"))
        if not ok:
            unverified.append(e["name"])
        counts = []
        for dv in doc["derivatives"]:
            if dv["kind"] != "gradient" or dv["wrt"] not in e.get("textbook", {}):
                continue
            book = length(e["textbook"][dv["wrt"]], e["shapes"], e.get("params", {}), {})
            named = dict(doc.get("intermediates", {}))
            if ";" not in doc["forward"]:   # a form may name the output (p for softmax)
                named[doc["output"]] = doc["forward"]
            mine = (length(dv["matrix_form"], e["shapes"], e.get("params", {}), named)
                    if dv.get("matrix_form") else None)
            if mine is not None:
                ours, theirs = ours + mine, theirs + book
            counts.append(f"{dv['wrt']} {mine if mine is not None else '—'}/{book}")
        print(f"{e['name']:28s} {elapsed:6.2f}s  {'yes' if ok else 'NO ':3s}       "
              f"{', '.join(counts)}", flush=True)

    print(f"\n{len(entries)} expressions: median {statistics.median(times):.2f} s, "
          f"max {max(times):.2f} s (goals: ≤ 5 s each, median ≤ 1.5 s)")
    print(f"  over 5 s: {', '.join(slow) or 'none'}")
    print(f"  not verified: {', '.join(unverified) or 'none'}")
    if theirs:
        print(f"  operations, derived / textbook: {ours} / {theirs} = {ours / theirs:.2f}×")

    elapsed, doc, error = derive(["mlp3"], opts.timeout)
    print(f"\nderive mlp3: {elapsed:.2f} s (goal ≤ 3 s){'; ' + error if error else ''}")

    if opts.no_layers:
        return
    print("\nstacked tanh layers, derive wrt W1 (cold process): time should grow at most linearly")
    base = None
    for depth in range(1, 9):
        dims = [f"d{i}" for i in range(depth + 1)]
        expr = "X @ W1"
        for k in range(1, depth + 1):
            expr = f"tanh({expr})" if k == depth else f"tanh({expr}) @ W{k + 1}"
        shapes = ["--shape", f"X=m,{dims[0]}"]
        for k in range(1, depth + 1):
            shapes += ["--shape", f"W{k}={dims[k - 1]},{dims[k]}"]
        elapsed, doc, error = derive(["--expr", f"sum({expr})", "--wrt", "W1", *shapes],
                                     opts.timeout)
        base = base or elapsed
        ok = "verified" if doc and doc.get("verified") else f"NOT VERIFIED {error}"
        print(f"  {depth} layer(s): {elapsed:6.2f} s  ({elapsed / base:4.1f}× one layer)  {ok}",
              flush=True)


if __name__ == "__main__":
    main()
