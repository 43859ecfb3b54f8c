"""derivkit's version, read from the installed distribution's metadata (imports nothing of
derivkit, so any layer may use it)."""

from __future__ import annotations

FALLBACK_VERSION = "0.0.0+unknown"


def read_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("derivkit")
    except PackageNotFoundError:  # a checkout on sys.path that was never installed
        return FALLBACK_VERSION
