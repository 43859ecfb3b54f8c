"""User names: what an input, parameter, dimension or step may be called.

A user name is `[A-Za-z][A-Za-z0-9]*` and not a Python keyword, so it can stand in generated
NumPy code as itself; names with an underscore are left to the emitter (`_np`, `_line3`, …).
"""

from __future__ import annotations

import keyword
import re

IDENT = re.compile(r"[A-Za-z][A-Za-z0-9]*\Z")


def user_name_problem(name: object) -> str | None:
    """Why `name` cannot be a user name (None if it can)."""
    if not isinstance(name, str) or not IDENT.match(name):
        return "must be a plain identifier (letters and digits, starting with a letter)"
    if keyword.iskeyword(name):
        return "is a Python keyword, which generated NumPy code cannot use as a name"
    return None
