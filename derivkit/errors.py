"""One error family. The CLI maps `DerivkitError` to exit code 2 in one place.

A message names a setting the way its reader gives it: `⟨--size⟩` is "--size" on the command
line and "size" from Python; `⟨--expr|an expression⟩` is "--expr" and "an expression". The
library writes these marks; `message` and `str()` read as Python, `one_line(cli=True)` as the CLI.
"""

from __future__ import annotations

import re

_SETTING = re.compile(r"⟨(--[^⟨⟩|]*)(?:\|([^⟨⟩|]*))?⟩")


def spelled(text: str, *, cli: bool = False) -> str:
    """`text` with each setting mark written for the command line (`cli`) or for Python."""
    return _SETTING.sub(lambda m: m[1] if cli else (m[2] if m[2] is not None else m[1][2:]), text)


class DerivkitError(Exception):
    """A usage or input error: one line saying what is wrong and how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.template = message
        self.hint_template = hint
        message, hint = spelled(message), hint if hint is None else spelled(hint)
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self, *, cli: bool = False) -> str:
        """The message and its hint on one line; `cli`: settings as command-line options."""
        message, hint = ((spelled(self.template, cli=True),
                          self.hint_template and spelled(self.hint_template, cli=True))
                         if cli else (self.message, self.hint))
        text = message.replace("\n", " ").strip()
        if hint:
            text = f"{text} ({hint.strip()})"
        return text

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.one_line()


class ExpressionError(DerivkitError):
    """The expression text is outside the language, or its shapes do not fit."""

    def __init__(self, message: str, *, source: str | None = None, col: int | None = None,
                 hint: str | None = None) -> None:
        where = f" at column {col + 1}" if col is not None else ""
        super().__init__(f"{message}{where}", hint)
        self.source = source
        self.col = col


class ShapeError(DerivkitError):
    """Declared shapes are malformed, or operands' shapes do not fit."""


class RecipeError(DerivkitError):
    """A recipe file is malformed; the message names the file and field. `key` is the dotted
    TOML key at fault ("forward", "inputs.X", "steps.2.expr"), which the loader turns into a
    line number."""

    def __init__(self, message: str, hint: str | None = None, key: str | None = None) -> None:
        super().__init__(message, hint)
        self.key = key


class UnknownRecipeError(DerivkitError):
    def __init__(self, name: str, known: list[str]) -> None:
        import difflib

        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = (f"did you mean {', '.join(repr(c) for c in close)}?" if close
                else "run 'derivkit list' to see the recipes")
        super().__init__(f"unknown recipe {name!r}", hint)
        self.suggestions = close


class BudgetExceeded(DerivkitError):
    """The command ran past its wall-clock budget (`--timeout`): the message says what was
    running and how to proceed. Raised by `derivkit.limits`, never caught on the way up."""

    def __init__(self, message: str, hint: str | None = None, *, seconds: float = 0.0,
                 command: str = "", where: str = "") -> None:
        super().__init__(message, hint)
        self.seconds = seconds
        self.command = command
        self.where = where
