"""`derivkit --help`, `--version` and `list` must not import SymPy or NumPy (they start fast).

Each case runs the real CLI in a fresh interpreter and reports which heavy modules ended up in
sys.modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

WRAPPER = """
import json, sys
from derivkit.cli import app
try:
    app(args=sys.argv[1:], prog_name="derivkit")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("sympy", "numpy", "mpmath")
               or m.startswith(("derivkit.derivation", "derivkit.lang.parse")))
print("\\n@@" + json.dumps({"code": code, "heavy": heavy}))
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["list"], ["list", "--json"],
                                  ["derive", "--help"], ["list", "--help"], []])
def test_light_commands_do_not_import_heavy_modules(args, tmp_path):
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True,
                          text=True, cwd=tmp_path, env=dict(os.environ, NO_COLOR="1"))
    assert "@@" in proc.stdout, proc.stderr
    report = json.loads(proc.stdout.rsplit("@@", 1)[1])
    assert report["code"] in (0, 2, None), proc.stdout + proc.stderr
    assert report["heavy"] == [], f"derivkit {' '.join(args)} imported {report['heavy']}"


def test_import_derivkit_is_light(tmp_path):
    code = ("import sys, derivkit.cli, derivkit.api, derivkit.lang.recipes, derivkit.cli.values, "
            "derivkit.render.rich_render, derivkit.render.json_render; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sympy', 'numpy')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_import_derivkit_alone_imports_no_third_party(tmp_path):
    code = ("import sys; import derivkit; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sympy', 'numpy', 'typer', 'rich')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
