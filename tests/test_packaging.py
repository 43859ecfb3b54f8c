"""A real, non-editable install finds the built-in recipes inside the package.

Builds the wheel with pip (which fetches the build backend, hatchling, from the package index),
checks its contents, installs it into a temporary folder, and imports it from there in a fresh
interpreter whose working directory is outside the checkout and which has no site-packages (-S),
so the checkout cannot be what is imported. Skipped only when the build backend cannot be
downloaded (offline); any other build failure fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import RECIPES, REPO

OFFLINE_SIGNS = ("Could not find a version that satisfies the requirement hatchling",
                 "No matching distribution found for hatchling",
                 "Failed to establish a new connection", "Temporary failure in name resolution",
                 "Network is unreachable", "ProxyError", "ConnectTimeout")
RECIPE_NAMES = sorted(p.stem for p in RECIPES.glob("*.toml"))

# One pytest-xdist worker runs this module's tests, so the wheel is built (and installed) once.
pytestmark = pytest.mark.xdist_group("wheel")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps",
                           "--disable-pip-version-check", "-w", str(out)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        log = proc.stdout + proc.stderr
        if any(sign in log for sign in OFFLINE_SIGNS):
            pytest.skip("cannot build the wheel offline: pip could not download the build "
                        "backend (hatchling)")
        pytest.fail(f"building the wheel failed:\n{log[-3000:]}")
    (path,) = out.glob("derivkit-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile",
                           "--disable-pip-version-check", "--target", str(target), str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return target


def test_wheel_contains_package_and_recipes(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for recipe in RECIPE_NAMES:
        assert f"derivkit/recipes/{recipe}.toml" in names
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "derivkit").rglob("*.py")}
    assert len(sources) > 40 and {"derivkit/cli/app.py", "derivkit/lang/ops.py"} <= sources
    assert sources <= names, f"missing from the wheel: {sorted(sources - names)}"
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]
    assert not [n for n in names if n.startswith(("tests/", "recipes/", "benchmarks/"))]


def test_wheel_metadata(wheel):
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    with zipfile.ZipFile(wheel) as zf:
        dist_info = next(n.split("/")[0] for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(f"{dist_info}/METADATA").decode()
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
    assert f"Version: {project['version']}" in metadata
    assert "Requires-Python: >=3.11" in metadata
    for dep in ("sympy", "numpy", "typer", "rich"):
        assert f"Requires-Dist: {dep}" in metadata
    assert "derivkit = derivkit.cli:main" in entry_points


def test_installed_wheel_finds_builtin_recipes(installed, tmp_path):
    code = (
        "import json, derivkit, derivkit.api as api, derivkit.lang.recipes as r; "
        "print(json.dumps({'file': derivkit.__file__, 'builtin': str(r.builtin_dir()), "
        "'version': derivkit.__version__, "
        "'names': [s.name for s in api.list_recipes()]}))"
    )
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    root = installed.resolve()
    assert Path(report["file"]).resolve().is_relative_to(root), report
    assert Path(report["builtin"]).resolve() == root / "derivkit" / "recipes"
    assert report["names"] == RECIPE_NAMES
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert report["version"] == project["version"]


def test_the_readme_git_url_install_builds(tmp_path):
    """README, "Gate your CI": `pip install "git+$DERIVKIT_GIT@$DERIVKIT_REV"`, with the
    repository's URL and a pinned commit (here this checkout, as a file URL, at HEAD)."""
    import re

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert 'pip install "git+$DERIVKIT_GIT@$DERIVKIT_REV"' in readme
    assert not re.search(r"^\s*pip install derivkit\b", readme, re.M)      # PyPI's is not ours
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                          text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout (an sdist): no commit to pin")
    spec = f"git+file://{REPO}@{head.stdout.strip()}"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", spec, "--no-deps",
                           "--disable-pip-version-check", "-w", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 and any(sign in log for sign in OFFLINE_SIGNS):
        pytest.skip("cannot build offline: pip could not download the build backend (hatchling)")
    assert proc.returncode == 0, log[-3000:]
    (path,) = tmp_path.glob("derivkit-*.whl")
    assert "derivkit/recipes/linear.toml" in zipfile.ZipFile(path).namelist()
