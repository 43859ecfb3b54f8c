"""Option values coerced without Pydantic.

Typer ≥ 0.2x coerces every option through a Pydantic `TypeAdapter` built on first use: importing
Pydantic and building the first adapter costs about 0.25 s in every process, a sixth of a typical
`derivkit derive`. derivkit's options are plain (str, int, float, bool, a str Enum, a Path, lists and
Optionals of these), so `plain_coercion` gives each such option a small coercer of its own before
the command parses. Anything else, or a Typer without these internals, keeps Typer's own path.
"""

from __future__ import annotations

import types
from enum import Enum
from pathlib import Path
from typing import Any, Union, get_args, get_origin

_NONE = type(None)


def _leaf(annotation: Any) -> Any:
    """`Optional[T]` and `list[T]` → T (None when the annotation is not of that plain kind)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not _NONE]
        return _leaf(rest[0]) if len(rest) == 1 else None
    if origin is list:
        (item,) = get_args(annotation)
        return None if get_origin(item) is not None else item
    return annotation


def _number(kind: type, value: Any, info: Any) -> Any:
    if isinstance(value, kind) and not isinstance(value, bool):
        number = value
    else:
        try:
            number = kind(str(value).strip())
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise ValueError(f"{str(value)!r} is not {noun}") from None
    if info.min is not None and number < info.min:
        raise ValueError(f"{number} is less than the smallest allowed, {info.min}")
    if info.max is not None and number > info.max:
        raise ValueError(f"{number} is more than the largest allowed, {info.max}")
    return number


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("1", "true", "t", "yes", "y", "on"):
        return True
    if word in ("0", "false", "f", "no", "n", "off"):
        return False
    raise ValueError(f"{str(value)!r} is not a boolean (true or false)")


def _choice(kind: type[Enum], value: Any, info: Any) -> Any:
    if isinstance(value, kind):
        return value
    fold = (lambda text: text) if info.case_sensitive else str.casefold
    for member in kind:
        if fold(str(member.value)) == fold(str(value)):
            return member
    allowed = ", ".join(repr(member.value) for member in kind)
    raise ValueError(f"{str(value)!r} is not one of {allowed}")


def plain_coercion(command: Any) -> None:
    """Give each plain option of `command` (a Typer command) a coercer that needs no Pydantic."""
    try:
        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
        from typer._param_types import coerce_cli_path
    except ImportError:   # a Typer without Pydantic coercion: nothing to replace
        return

    class _Plain(RuntimeParam):   # Typer's frozen dataclass
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, (list, tuple)):
                return [self._coerce_value(item, param, ctx) for item in value]
            kind = _leaf(self.annotation)
            try:
                if kind is bool:
                    return _flag(value)
                if kind is str:
                    return value if isinstance(value, str) else str(value)
                if kind in (int, float):
                    return _number(kind, value, self.parameter_info)
                if isinstance(kind, type) and issubclass(kind, Enum):
                    return _choice(kind, value, self.parameter_info)
                return coerce_cli_path(value, self.parameter_info, path_type=kind,
                                       param=param, ctx=ctx)
            except ValueError as exc:
                raise BadParameter(str(exc), ctx=ctx, param=param) from None

    if getattr(command, "_derivkit_plain", False):
        return
    command._derivkit_plain = True

    def patch(param: Any) -> None:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", 0) is not None:
            return
        kind = _leaf(descriptor.annotation)
        plain = kind in (str, int, float, bool, Path) or (
            isinstance(kind, type) and issubclass(kind, Enum) and issubclass(kind, str))
        if plain and descriptor.file_annotation is None and descriptor.parameter_info.parser is None:
            param._runtime_param = _Plain(annotation=descriptor.annotation,
                                          parameter_info=descriptor.parameter_info)

    for param in getattr(command, "params", ()):
        patch(param)
    help_option = getattr(command, "get_help_option", None)
    if help_option is not None:   # --help is made per command on first use

        def get_help_option(ctx: Any) -> Any:
            option = help_option(ctx)
            if option is not None:
                patch(option)
            return option

        command.get_help_option = get_help_option
