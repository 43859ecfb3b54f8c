"""derivkit: matrix-calculus gradients derived symbolically from a forward definition, verified
element-wise and printed in index form, matrix form and LaTeX.

Importing the package is cheap: SymPy and NumPy are imported only when something is derived.
"""

from __future__ import annotations

__all__ = ["__version__"]

_FALLBACK_VERSION = "0.0.0+unknown"


def _read_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("derivkit")
    except PackageNotFoundError:  # a checkout on sys.path that was never installed
        return _FALLBACK_VERSION


def __getattr__(name: str) -> str:
    # Computed on first use, so `import derivkit` does not pay for importlib.metadata.
    if name == "__version__":
        value = _read_version()
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
