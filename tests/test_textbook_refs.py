"""The reference answers of benchmarks/expressions.toml checked without derivkit.

For every entry: tests/textbook.py's hand-written gradient agrees with central finite differences
of its hand-written forward, that forward agrees with the entry's `expr` evaluated in NumPy, and
each `textbook` string evaluated in NumPy agrees with the hand-written gradient. The strings are
in derivkit's expression language, which has NumPy's meaning; they are evaluated with `eval` over
a namespace of NumPy functions under the language's names (our own test data, not user input).
Deterministic: fixed sizes, distinct per dimension, and a fixed seed per entry.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
LIST = REPO / "benchmarks" / "expressions.toml"
ENTRIES = tomllib.loads(LIST.read_text(encoding="utf-8"))["expr"]
BY_NAME = {e["name"]: e for e in ENTRIES}

_spec = importlib.util.spec_from_file_location("textbook", Path(__file__).with_name("textbook.py"))
assert _spec is not None and _spec.loader is not None
textbook = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(textbook)

SIZES = {"k": 2, "m": 3, "n": 4, "d": 5, "h": 6, "p": 7, "q": 8, "r": 9}
KEYS = {"name", "note", "expr", "shapes", "params", "wrt", "textbook"}
SLUG = re.compile(r"[a-z][a-z0-9_]*\Z")

# Where an input must live for its expression to be defined (or meaningful). Inputs not listed
# are standard normal; square matrices are well-conditioned with a positive determinant.
PROB, LABEL, COUNT, WIDE = "prob", "label", "count", "wide"
DOMAINS: dict[tuple[str, str], str] = {
    ("cross_entropy", "T"): PROB,
    ("softmax_regression", "T"): PROB,
    ("softmax_temperature_ce", "T"): PROB,
    ("mlp2_relu_softmax_ce", "T"): PROB,
    ("kl_softmax", "P"): PROB,
    ("bce_logits", "y"): PROB,
    ("logistic_regression", "y"): LABEL,
    ("hinge_svm", "y"): LABEL,
    ("poisson_regression", "y"): COUNT,
    ("huber", "p"): WIDE,           # residuals on both sides of |r| = delta
    ("huber_regression", "y"): WIDE,
}


# ---------------------------------------------------------------- the language in NumPy

def _softmax(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


LANGUAGE = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "sign": np.sign,
    "tanh": np.tanh, "sin": np.sin, "cos": np.cos,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x, alpha=0.01: np.where(x >= 0, x, alpha * x),
    "softmax": _softmax,
    "sum": lambda x, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims),
    "mean": lambda x, axis=None, keepdims=False: np.mean(x, axis=axis, keepdims=keepdims),
    "trace": np.trace, "inv": np.linalg.inv, "det": np.linalg.det, "diag": np.diag,
    "outer": np.outer, "where": np.where, "eye": np.eye,
    "ones": lambda *dims: np.ones(dims), "expand_dims": np.expand_dims,
}


def evaluate(text: str, entry: dict, arrays: dict[str, np.ndarray]):
    """`text` (derivkit's language) evaluated in NumPy over the entry's inputs, parameters and
    dimension names."""
    namespace = {**LANGUAGE, **dims_of(entry), **entry.get("params", {}), **arrays}
    return eval(text, {"__builtins__": {}}, namespace)   # our own strings (see the docstring)


# ---------------------------------------------------------------- inputs

def shape_of(text: str) -> tuple[str, ...]:
    return () if text == "scalar" else tuple(d.strip() for d in text.split(","))


def dims_of(entry: dict) -> dict[str, int]:
    return {d: SIZES[d] for text in entry["shapes"].values() for d in shape_of(text)}


def inputs_for(entry: dict) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(zlib.crc32(entry["name"].encode()))
    arrays = {}
    for name, text in entry["shapes"].items():
        dims = shape_of(text)
        shape = tuple(SIZES[d] for d in dims)
        kind = DOMAINS.get((entry["name"], name))
        if kind == PROB:
            value = rng.uniform(0.1, 0.9, shape)
        elif kind == LABEL:
            value = rng.choice([-1.0, 1.0], shape)
        elif kind == COUNT:
            value = rng.poisson(2.0, shape).astype(float)
        elif kind == WIDE:
            value = 1.5 * rng.standard_normal(shape)
        elif not dims:                                   # a scalar: a scale or a variance
            value = np.asarray(rng.uniform(0.5, 1.5))
        elif len(dims) == 2 and dims[0] == dims[1]:      # square: invertible, det > 0
            value = shape[0] * np.eye(shape[0]) + 0.3 * rng.standard_normal(shape)
        else:
            value = rng.standard_normal(shape)
        arrays[name] = value
    return arrays


def functions(name: str):
    return getattr(textbook, f"forward_{name}"), getattr(textbook, f"grad_{name}")


def finite_difference(f, arrays: dict[str, np.ndarray], wrt: str, h: float = 1e-4) -> np.ndarray:
    """∂f/∂arrays[wrt] by the fourth-order central difference, entry by entry."""
    x = arrays[wrt]
    out = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        values = []
        for step in (2 * h, h, -h, -2 * h):
            moved = x.copy()
            moved[idx] += step
            values.append(f(**{**arrays, wrt: moved}))
        out[idx] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * h)
    return out


# ---------------------------------------------------------------- the list itself

def test_the_list_is_well_formed():
    names = [e["name"] for e in ENTRIES]
    assert len(names) >= 42
    assert len(set(names)) == len(names), "names must be unique"
    for e in ENTRIES:
        assert SLUG.match(e["name"]), e["name"]
        assert set(e) <= KEYS and KEYS - {"params"} <= set(e), (e["name"], sorted(set(e) ^ KEYS))
        assert e["note"].strip() and "\n" not in e["note"], e["name"]
        assert e["wrt"] and set(e["wrt"]) <= set(e["shapes"]), e["name"]
        assert set(e["textbook"]) == set(e["wrt"]), e["name"]
        assert set(e.get("params", {})).isdisjoint(e["shapes"]), e["name"]
        for text in e["shapes"].values():
            assert all(d in SIZES for d in shape_of(text)), (e["name"], text)


def test_every_entry_has_a_reference():
    missing = [n for n in BY_NAME for kind in ("forward", "grad")
               if not callable(getattr(textbook, f"{kind}_{n}", None))]
    assert not missing
    extra = {a.split("_", 1)[1] for a in dir(textbook)
             if a.startswith(("forward_", "grad_"))} - set(BY_NAME)
    assert not extra, f"references without an entry: {sorted(extra)}"


# ---------------------------------------------------------------- each entry

@pytest.mark.parametrize("name", list(BY_NAME))
def test_reference(name: str):
    entry = BY_NAME[name]
    params = entry.get("params", {})
    arrays = inputs_for(entry)
    forward, grad = functions(name)
    f = lambda **a: forward(**a, **params)

    value = f(**arrays)
    assert isinstance(value, float) and np.isfinite(value), value
    # the hand-written forward is the entry's expression
    np.testing.assert_allclose(float(evaluate(entry["expr"], entry, arrays)), value, rtol=1e-10, atol=1e-12)

    grads = grad(**arrays, **params)
    assert set(grads) == set(entry["wrt"]), sorted(grads)
    for wrt in entry["wrt"]:
        g = np.asarray(grads[wrt], dtype=float)
        assert g.shape == arrays[wrt].shape, (wrt, g.shape)
        # the hand-written gradient against finite differences of the hand-written forward
        fd = finite_difference(f, arrays, wrt)
        scale = max(1.0, abs(value), float(np.max(np.abs(fd), initial=0.0)))
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8 * scale, err_msg=f"grad_{name}[{wrt}] vs FD")
        # the textbook string against the hand-written gradient
        claimed = np.asarray(evaluate(entry["textbook"][wrt], entry, arrays), dtype=float)
        assert claimed.shape == g.shape, (wrt, claimed.shape, g.shape)
        np.testing.assert_allclose(claimed, g, rtol=1e-9, atol=1e-12 * scale,
                                   err_msg=f"textbook[{wrt}] of {name} vs grad_{name}")
