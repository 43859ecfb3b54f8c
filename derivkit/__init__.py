"""derivkit: matrix-calculus gradients derived symbolically from a forward definition, verified
element-wise and printed in index form, matrix form and LaTeX.

Importing the package is cheap: SymPy and NumPy are imported only when something is derived.

The Python API (README, "Python API"): `derive`, `check`, `check_all`, `verify`, `lower`, `load`,
`train`; each raises `DerivkitError` for bad input, with a message that says how to fix it.
"""

from __future__ import annotations

from typing import Any

from .errors import DerivkitError

__all__ = ["DerivkitError", "__version__", "check", "check_all", "derive", "load", "lower", "train",
           "verify"]

#: The Python API (`derivkit.api`), imported on first use so that `import derivkit` stays cheap.
_API = frozenset({"check", "check_all", "derive", "load", "lower", "train", "verify"})


def __getattr__(name: str) -> Any:
    # Computed on first use, so `import derivkit` does not pay for importlib.metadata.
    if name in _API:
        from . import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    if name == "__version__":
        from .version import read_version

        value = read_version()
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
