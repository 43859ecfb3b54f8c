"""Escaping for markup: user text (names, summaries, notes, claims, paths) inside HTML and MathML.

`text` makes any string safe as element content or as a quoted attribute value: `&`, `<`, `>`,
and both quotes become character references, and every control, format or otherwise invisible
character is written as a visible escape (`\\x1b`, `\\u202e`) by the same rule as the terminal's
sanitiser (`derivkit.render.text.visible`, which this layer may not import; a test keeps the
two category sets equal). XML 1.0 cannot carry most control characters at all, so without this a
hostile name could make the page invalid, or reorder what it shows (a bidi override)."""

from __future__ import annotations

import unicodedata

#: Unicode general categories written as escapes (= render.text.ESCAPED_CATEGORIES).
ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"})

_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_XML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}


def _visible_char(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(value: object) -> str:
    """`value` as one line of text with every invisible character written as an escape."""
    s = value if isinstance(value, str) else str(value)
    if s.isprintable():
        return s
    return "".join(_visible_char(ch) if ch in _SHORT or unicodedata.category(ch) in ESCAPED_CATEGORIES
                   else ch for ch in s)


def text(value: object) -> str:
    """`value` as HTML/XML character data or attribute value: visible, then escaped."""
    s = visible(value)
    if not any(ch in _XML for ch in s):
        return s
    return "".join(_XML.get(ch, ch) for ch in s)


__all__ = ["ESCAPED_CATEGORIES", "text", "visible"]
