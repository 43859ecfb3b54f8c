"""Shared fixtures: a CLI runner, paths, and hand-built `Derivation` objects for renderer tests
(so the renderers are tested without the symbolic engine)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from derivkit.derivation import verify as verify_module
from derivkit.results import Derivation, Derivative, Form, InputInfo, Verification

# Hypothesis profiles. "ci", the default, makes `python -m pytest` the same run on every machine
# and every fresh clone: examples come from a fixed seed per test (derandomize) and no example
# database replays earlier failures; a failure prints the blob that reproduces it. "explore"
# (HYPOTHESIS_PROFILE=explore python -m pytest) draws new random examples each run and keeps
# the local database: for finding bugs, never as a gate.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", derandomize=False, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The element-wise symbolic comparison runs within a wall-clock budget (0.5 s per derivation for
# users), so on a loaded machine a label may say "verified numerically" where it would say
# "verified symbolically". Tests compare labels of small derivations (well under 0.5 s alone);
# under xdist on 2 cores they get 2× the budget, so those labels are the same on every run.
# Tests that derive many large random expressions and assert no label use `user_budgets`.
USER_BUDGETS = (verify_module.SYMBOLIC_BUDGET_S, verify_module.LINES_BUDGET_S,
                verify_module.DERIVATION_BUDGET_S)
verify_module.SYMBOLIC_BUDGET_S *= 2
verify_module.LINES_BUDGET_S *= 2
verify_module.DERIVATION_BUDGET_S *= 2


@contextlib.contextmanager
def user_budgets():
    """Within the block, the symbolic comparison has the budgets users get."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(verify_module, "SYMBOLIC_BUDGET_S", USER_BUDGETS[0])
        mp.setattr(verify_module, "LINES_BUDGET_S", USER_BUDGETS[1])
        mp.setattr(verify_module, "DERIVATION_BUDGET_S", USER_BUDGETS[2])
        yield

REPO = Path(__file__).resolve().parent.parent


def optional(module: str):
    """An optional test dependency (torch): skipped where it is not installed, except under
    DERIVKIT_CI=1 (set by .ci/run), where its absence fails the test: CI must run it."""
    if os.environ.get("DERIVKIT_CI") == "1":
        import importlib

        return importlib.import_module(module)
    return pytest.importorskip(module)
RECIPES = REPO / "recipes"


# ---------------------------------------------------------------- derivations shared by tests
# Deriving is the expensive part of most tests (mlp3 alone takes seconds), and many tests derive
# the same recipe: through the API, the CLI, `check`, `lower`, `verify`, `train` ... A derivation
# is a pure function of the recipe (a frozen, hashable dataclass), so tests that do not tamper
# with the engine can share one per recipe for the whole session (per pytest-xdist worker: each
# worker has its own session). Sharing is opt-in: the `shared_derivations` fixture (a test or a
# module's `pytestmark`) or the `sharing_derivations()` context manager (module- or
# session-scoped fixtures). A test that monkeypatches derivation rules, the simplifier, the
# verifier or a time budget must NOT opt in: it would be handed the shared, untampered result
# (and must not put a tampered one in the cache).
#
# What is memoised, keyed by the recipe: `derivkit.derivation.engine.derive` (every derivation:
# api.derive_*, check, lower, verify, the audit) and `derivkit.derivation.chain.backward_chain` (the
# composite recipes' Δ chain, most of mlp3's cost). Each is replaced in its module and wherever a
# module of derivkit or of tests/ imported it by name, and restored afterwards. Only successful
# results are kept; an exception (an input error, a budget) is raised again on the next call.
_SHARED: dict[tuple[str, object], object] = {}
_MEMOISED = (("derivkit.derivation.engine", "derive"), ("derivkit.derivation.chain", "backward_chain"))


def _memo(kind: str, real):
    def shared(recipe, *args, **kwargs):
        if args or kwargs:
            return real(recipe, *args, **kwargs)
        try:
            key = (kind, recipe)
            hash(key)
        except TypeError:
            return real(recipe)
        if key not in _SHARED:
            _SHARED[key] = real(recipe)
        return _SHARED[key]

    shared.__wrapped__ = real
    shared._shared_kind = kind
    return shared


_TESTS = os.path.dirname(os.path.abspath(__file__))


def _ours(module_name: str | None, path: str | None) -> bool:
    """A module of derivkit or of tests/ (where a name imported from derivkit may be bound)."""
    if module_name and module_name.split(".")[0] == "derivkit":
        return True
    return isinstance(path, str) and os.path.dirname(os.path.abspath(path)) == _TESTS


@contextlib.contextmanager
def sharing_derivations():
    """Within the block, derivations and backward chains are shared per recipe (see above)."""
    import importlib

    _import_every_module()   # so that no module first imported in the block keeps the memo
    with pytest.MonkeyPatch.context() as mp:
        for module_name, attr in _MEMOISED:
            module = importlib.import_module(module_name)
            real = getattr(module, attr)
            if _is_memo(real):      # already sharing (nested)
                continue
            memo = _memo(f"{module_name}.{attr}", real)
            for mod in list(sys.modules.values()):
                if not _ours(getattr(mod, "__name__", None), getattr(mod, "__file__", None)):
                    continue
                for name, value in list(vars(mod).items()):
                    if value is real:
                        mp.setattr(mod, name, memo)
        yield
    for mod in list(sys.modules.values()):   # belt and braces: no memo outlives the block
        if _ours(getattr(mod, "__name__", None), getattr(mod, "__file__", None)):
            for name, value in list(vars(mod).items()):
                if _is_memo(value):
                    setattr(mod, name, value.__wrapped__)


def _is_memo(value) -> bool:
    try:
        return callable(value) and bool(getattr(value, "_shared_kind", None))
    except Exception:
        return False


_IMPORTED: list[bool] = []


def _import_every_module() -> None:
    import importlib
    import pkgutil

    if _IMPORTED:
        return
    import derivkit

    for info in pkgutil.walk_packages(derivkit.__path__, "derivkit."):
        if not info.name.endswith("__main__"):
            with contextlib.suppress(Exception):
                importlib.import_module(info.name)
    _IMPORTED.append(True)


@pytest.fixture
def shared_derivations():
    """Opt in to derivations shared across the session (see `sharing_derivations`)."""
    with sharing_derivations():
        yield


@pytest.fixture
def builtin_recipes(monkeypatch, tmp_path_factory):
    """`builtin_recipes("relu", "linear")`: for this test the built-in recipes are only those
    (copies in a fresh folder), so that `check --all` checks them and the test's own folder, not
    every built-in (two tests, in test_checker and test_cli_check, check every built-in)."""
    from derivkit.lang import recipes

    def only(*names: str) -> Path:
        folder = tmp_path_factory.mktemp("builtins")
        for name in names:
            shutil.copy(RECIPES / f"{name}.toml", folder / f"{name}.toml")
        monkeypatch.setattr(recipes, "builtin_dir", lambda: folder)
        return folder

    return only


@pytest.fixture
def runner():
    """A CliRunner whose result has stdout and stderr apart (older Click needs mix_stderr=False;
    Click >= 8.2 always keeps them apart and has no such argument)."""
    from typer.testing import CliRunner

    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch):
    """Tests see only the built-in recipes unless they set DERIVKIT_RECIPES themselves, and no
    variable that forces colour on (a CI runner may set one)."""
    for name in ("DERIVKIT_RECIPES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


def verified_at(*sizes: dict) -> Verification:
    return Verification(True, "symbolic", tuple(sizes), "")


def make_linear_derivation(*, matrix_verified: bool = True, with_matrix: bool = True) -> Derivation:
    """A hand-written stand-in for the engine's result for Y = X W + b, d/dW."""
    sizes = ({"m": 2, "n": 3, "k": 4}, {"m": 3, "n": 4, "k": 5})
    index = Form("X[i,r]*delta(j,s)", "X[i,r]⋅δ[j,s]", r"X_{i r} \delta_{j s}", verified_at(*sizes))
    matrix_verification = (verified_at(*sizes) if matrix_verified
                           else Verification(False, "none", (), "simplification was inconclusive"))
    matrix = Form("X.T @ G", "Xᵀ⋅G", r"X^{T} G", matrix_verification) if with_matrix else None
    d = Derivative(wrt="W", kind="vjp", lhs_pretty="∂L/∂W", lhs_latex=r"\frac{\partial L}{\partial W}",
                   index_lhs_pretty="∂Y[i,j]/∂W[r,s]",
                   index_lhs_latex=r"\frac{\partial Y_{i j}}{\partial W_{r s}}",
                   index=index, matrix=matrix, upstream="G", shape=("n", "k"),
                   notes=("G = ∂L/∂Y has the shape of Y.",))
    return Derivation(
        target="linear", summary="Affine layer Y = X W + b", forward="X @ W + b",
        forward_pretty="X⋅W + b", forward_latex="X W + b", output="Y", output_shape_text="m×k",
        inputs=(InputInfo("X", ("m", "n"), "m×n", "real"), InputInfo("W", ("n", "k"), "n×k", "real"),
                InputInfo("b", ("k",), "k", "real")),
        params=(), derivatives=(d,), conventions=("One sample per row of X.",),
        notes=("∂Y/∂W is a 4-index tensor.",), references=("The Matrix Cookbook",))


def make_softmax_derivation() -> Derivation:
    sizes = ({"n": 2}, {"n": 3}, {"n": 4})
    index = Form("p[i]*(delta(i,j) - p[j])", "p[i]⋅(δ[i,j] - p[j])",
                 r"p_{i} \left(\delta_{i j} - p_{j}\right)",
                 verified_at(*sizes))
    matrix = Form("diag(p) - outer(p, p)", "diag(p) - p⋅pᵀ", r"\operatorname{diag}(p) - p p^{T}",
                  verified_at(*sizes))
    d = Derivative(wrt="z", kind="jacobian", lhs_pretty="∂p/∂z", lhs_latex=r"\frac{\partial p}{\partial z}",
                   index_lhs_pretty="∂p[i]/∂z[j]", index_lhs_latex=r"\frac{\partial p_{i}}{\partial z_{j}}",
                   index=index, matrix=matrix, shape=("n", "n"))
    return Derivation(
        target="softmax", summary="Softmax of a vector", forward="softmax(z)",
        forward_pretty="    exp(z)  \n───────────\nsum(exp(z))", forward_latex=r"\frac{e^{z}}{\sum e^{z}}",
        output="p", output_shape_text="n", inputs=(InputInfo("z", ("n",), "n", "real"),),
        params=(("alpha", 0.01),), derivatives=(d,))


@pytest.fixture
def linear_derivation() -> Derivation:
    return make_linear_derivation()


@pytest.fixture
def softmax_derivation() -> Derivation:
    return make_softmax_derivation()


# ---------------------------------------------------------------- the heavy built-in recipe
#: Recipes whose derivation takes seconds: their parametrised tests share one xdist group, so
#: one worker derives each once (with `shared_derivations`), not every worker.
HEAVY_RECIPES = ("transformer-block",)


def recipe_params(names: list[str]) -> list:
    """`names` for @pytest.mark.parametrize, the heavy recipes in their own xdist group."""
    return [pytest.param(n, marks=pytest.mark.xdist_group(n)) if n in HEAVY_RECIPES else n
            for n in names]


class ByName(dict):
    """{recipe name: make(name)}, made on first use and shared (`sharing_derivations`)."""

    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, name: str):
        with sharing_derivations():
            value = self.make(name)
        self[name] = value
        return value
