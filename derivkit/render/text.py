"""The one sanitiser for text shown to people (terminal output, error lines, JUnit reports).

derivkit prints text that other people wrote: recipe summaries, notes and references, file
paths, names, expressions and claims. A terminal obeys escape sequences in what it prints, so raw
user text could move the cursor, erase the line above and print a fake verdict
(`"\\x1b[1A\\x1b[2K\\x1b[32m✓ all targets passed"`), set the window title (`"\\x1b]0;…\\x07"`) or
reorder what is shown (the bidi override U+202E). `visible` writes every such character as a
visible escape instead, the way Python's `repr` does:

- C0 and C1 control characters and DEL: `\\x1b`, `\\x07`, `\\x9b`, `\\x7f`; tab, carriage return
  and newline as `\\t`, `\\r`, `\\n` (a newline is kept where the field is multi-line);
- format characters (bidi embeddings, overrides and isolates U+202A–U+202E, U+2066–U+2069,
  zero-width characters, the byte-order mark, tags), the line and paragraph separators U+2028 and
  U+2029, lone surrogates and unassigned code points: `\\u202e`, `\\U000e0041`.

Everything else, non-ASCII letters and symbols included (Δ, ∂, ᵀ, 中文), is left as it is. A
backslash is not escaped: text that already contains the characters `\\x1b` shows them as they
are, which is harmless. `visible` is idempotent.

`visible_data` applies it to every string of a result (frozen dataclasses, tuples, lists, dicts)
before a renderer turns it into Rich renderables; `json_text` keeps JSON exact while writing the
same characters as `\\uXXXX` escapes (JSON's own escaping covers only U+0000–U+001F).
Rich markup is a separate matter: renderers pass data as `rich.text.Text`, never as markup.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import TypeVar, cast

# The escape itself (which characters, written how) is `markup.escape`'s, shared with the HTML
# and MathML derivkit writes.
from ..markup.escape import _SHORT, ESCAPED_CATEGORIES
from ..markup.escape import _visible_char as _escape

_T = TypeVar("_T")


#: Fields of derivkit's results that are multi-line by design (pretty-printed formulas and the
#: sentences that embed them); every other string is one line, its newlines shown as `\n`.
MULTILINE_FIELDS = frozenset({"pretty", "forward_pretty", "derived_pretty", "reading", "reason"})


def needs_escape(ch: str) -> bool:
    """Whether `visible` writes this one character as an escape (newlines aside)."""
    return unicodedata.category(ch) in ESCAPED_CATEGORIES


def visible(text: object, *, multiline: bool = False) -> str:
    """`text` with every control, format or otherwise invisible character written as a visible
    escape (`\\x1b`, `\\u202e`). With `multiline`, newlines are kept; otherwise they are shown as
    `\\n`, so that a one-line field stays on one line."""
    text = text if isinstance(text, str) else str(text)
    if text.isprintable():          # fast path: nothing to escape (space is printable)
        return text
    out = []
    for ch in text:
        if ch == "\n" and multiline:
            out.append(ch)
        elif ch in _SHORT or unicodedata.category(ch) in ESCAPED_CATEGORIES:
            out.append(_escape(ch))
        else:                       # e.g. a no-break space or a private-use character
            out.append(ch)
    return "".join(out)


def visible_lines(text: object) -> str:
    """`visible` for text whose newlines are meant (a multi-line formula)."""
    return visible(text, multiline=True)


def visible_data(value: _T, *, clean: Callable[..., str] = visible, _multiline: bool = False) -> _T:
    """A copy of a result with `clean` (default `visible`) applied to every string in it:
    strings, dict keys and values, tuples, lists and (frozen) dataclasses, recursively. Fields
    named in MULTILINE_FIELDS keep their newlines. Numbers, booleans and None are unchanged."""
    if isinstance(value, str):
        return cast(_T, clean(value, multiline=_multiline))
    if isinstance(value, (bool, int, float, complex)) or value is None:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes: dict[str, object] = {}
        for f in dataclasses.fields(value):
            if not f.init:
                continue
            old = getattr(value, f.name)
            new = visible_data(old, clean=clean, _multiline=f.name in MULTILINE_FIELDS)
            if new is not old:
                changes[f.name] = new
        return cast(_T, dataclasses.replace(value, **changes)) if changes else value
    if isinstance(value, Mapping):
        return cast(_T, {visible_data(k, clean=clean): visible_data(v, clean=clean, _multiline=_multiline)
                         for k, v in value.items()})
    if isinstance(value, tuple):
        return cast(_T, tuple(visible_data(v, clean=clean, _multiline=_multiline) for v in value))
    if isinstance(value, list):
        return cast(_T, [visible_data(v, clean=clean, _multiline=_multiline) for v in value])
    return value


_NOT_PLAIN_ASCII = re.compile("[^\x00-\x7e]")


def _json_escape(match: re.Match[str]) -> str:
    ch = match.group()
    if not needs_escape(ch):
        return ch
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xd800 + (code >> 10):04x}\\u{0xdc00 + (code & 0x3ff):04x}"


def json_text(document: str) -> str:
    """A JSON document from `json.dumps(..., ensure_ascii=False)` with DEL, C1 controls, format
    characters (bidi overrides, zero-width characters), line separators and lone surrogates
    written as `\\uXXXX` escapes. The document decodes to exactly the same data; only its bytes
    on a terminal change. (Such characters can only occur inside JSON strings, where `\\uXXXX`
    means the same character.)"""
    return _NOT_PLAIN_ASCII.sub(_json_escape, document)


__all__ = [
    "ESCAPED_CATEGORIES",
    "MULTILINE_FIELDS",
    "json_text",
    "needs_escape",
    "visible",
    "visible_data",
    "visible_lines",
]
