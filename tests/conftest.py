"""Shared fixtures: a CLI runner, paths, and hand-built `Derivation` objects for renderer tests
(so the renderers are tested without the symbolic engine)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from derivkit.results import Derivation, Derivative, Form, InputInfo, Verification

# Hypothesis profiles. "ci", the default, makes `python -m pytest` the same run on every machine
# and every fresh clone: examples come from a fixed seed per test (derandomize) and no example
# database replays earlier failures; a failure prints the blob that reproduces it. "explore"
# (HYPOTHESIS_PROFILE=explore python -m pytest) draws new random examples each run and keeps
# the local database: for finding bugs, never as a gate.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", derandomize=False, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"


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
    index = Form("p[i]*(delta(i,j) - p[j])", "p[i]⋅(δ[i,j] - p[j])", r"p_{i} \left(\delta_{i j} - p_{j}\right)",
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
