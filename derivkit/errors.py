"""One error family. The CLI maps `DerivkitError` to exit code 2 in one place."""

from __future__ import annotations


class DerivkitError(Exception):
    """A usage or input error: one line saying what is wrong and how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message.replace("\n", " ").strip()
        if self.hint:
            text = f"{text} ({self.hint.strip()})"
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
