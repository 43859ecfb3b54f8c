"""The one JSON writer: every `--json` document is plain JSON on stdout, written here.

Numbers JSON cannot hold are written as strings, always the same three: infinity as
"Infinity", minus infinity as "-Infinity", not-a-number as "NaN" (Python's `float()` and
JavaScript's `Number()` both read them back). Tuples become lists, integer-valued numbers of
other types (SymPy, NumPy) ints, anything else unknown its `str`. Control, format and bidi
characters are written as \\uXXXX escapes (`render.text.json_text`), so printing a document
cannot drive a terminal; the data is exactly what was given.
"""

from __future__ import annotations

import json
import math
from typing import Any, SupportsFloat

#: How a float that JSON cannot represent is written.
NONFINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}
NAN = "NaN"


def json_float(value: SupportsFloat | None) -> float | str | None:
    """A float as JSON can hold it: finite numbers as numbers, inf/-inf/nan as strings."""
    if value is None:
        return None
    x = float(value)
    if math.isnan(x):
        return NAN
    if math.isinf(x):
        return NONFINITE[x]
    return x


def plain(value: Any) -> Any:
    """`value` as JSON data (see the module docstring)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return json_float(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    try:
        as_int = int(value)
        if as_int == value:
            return as_int
    except (TypeError, ValueError, OverflowError):
        pass
    return str(value)


def dumps(data: object) -> str:
    """The document for `data` (strict: nothing non-finite reaches json.dumps)."""
    from .text import json_text

    return json_text(json.dumps(plain(data), indent=2, ensure_ascii=False, allow_nan=False))
