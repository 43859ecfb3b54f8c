"""Parse the CLI's repeated NAME=VALUE options into plain dicts. No maths here.

Every malformed spec raises `DerivkitError` naming the option and the text given, so the CLI
prints one line and exits 2.
"""

from __future__ import annotations

import math

from ..errors import DerivkitError, ShapeError
from ..lang.names import IDENT
from ..lang.shapes import parse_shape, refuse_separator_typo, split_integer

_SHAPE_HINT = "write e.g. --shape X=m,n for a matrix, x=n for a vector, c=scalar for a scalar"
_PARAM_HINT = "write e.g. --param alpha=0.1"


def _split_spec(option: str, spec: str, hint: str) -> tuple[str, str]:
    if "=" not in spec:
        raise DerivkitError(f"{option} {spec!r} is not NAME=VALUE", hint)
    name, _, value = spec.partition("=")
    name = name.strip()
    if not IDENT.match(name):
        raise DerivkitError(f"{option} {spec!r}: {name!r} is not a plain name (letters and digits)",
                            hint)
    if not value.strip():
        raise DerivkitError(f"{option} {spec!r}: nothing after '='", hint)
    return name, value.strip()


def parse_shapes(specs: list[str] | None) -> dict[str, str]:
    """['A=n,n', 'x=n', 'c=scalar'] -> {'A': 'n,n', 'x': 'n', 'c': 'scalar'}."""
    shapes: dict[str, str] = {}
    for spec in specs or []:
        name, dims = _split_spec("--shape", spec, _SHAPE_HINT)
        if name in shapes:
            raise DerivkitError(f"--shape gives the shape of {name!r} twice")
        refuse_separator_typo(name, dims)
        try:
            parse_shape(split_integer(dims)[0], where=f"--shape {spec!r}")
        except ShapeError as exc:
            raise DerivkitError(exc.template, exc.hint_template) from None
        shapes[name] = dims
    return shapes


def parse_params(specs: list[str] | None) -> dict[str, float]:
    """['alpha=0.1'] -> {'alpha': 0.1}."""
    params: dict[str, float] = {}
    for spec in specs or []:
        name, text = _split_spec("--param", spec, _PARAM_HINT)
        if name in params:
            raise DerivkitError(f"--param gives {name!r} twice")
        try:
            value = float(text)
        except ValueError:
            raise DerivkitError(f"--param {spec!r}: {text!r} is not a number",
                                _PARAM_HINT) from None
        if not math.isfinite(value):
            raise DerivkitError(f"--param {spec!r}: the value must be a finite number")
        params[name] = value
    return params


def parse_names(values: list[str] | None, option: str = "--wrt") -> list[str]:
    """['X,W', 'b'] -> ['X', 'W', 'b'] (repeated or comma-separated), duplicates dropped."""
    names: list[str] = []
    for value in values or []:
        for part in value.split(","):
            name = part.strip()
            if not IDENT.match(name):
                raise DerivkitError(f"{option} {value!r}: {name!r} is not a plain name",
                                    f"write e.g. {option} X")
            if name not in names:
                names.append(name)
    return names


_SIZE_HINT = "write a dimension name and a positive integer, e.g. --size m=64 --size n=128"


def parse_sizes(specs: list[str] | None) -> dict[str, int]:
    """['m=64', 'n=128'] -> {'m': 64, 'n': 128}: concrete sizes for symbolic dimensions."""
    sizes: dict[str, int] = {}
    for spec in specs or []:
        name, text = _split_spec("--size", spec, _SIZE_HINT)
        if name in sizes:
            raise DerivkitError(f"--size gives the size of {name!r} twice")
        if not (text.isascii() and text.isdigit()):
            raise DerivkitError(f"--size {spec!r}: {text!r} is not a positive integer", _SIZE_HINT)
        value = int(text)
        if value < 1:
            raise DerivkitError(f"--size {spec!r}: the size must be at least 1", _SIZE_HINT)
        sizes[name] = value
    return sizes


def parse_target(name: str | None, expr: str | None, wrt: list[str] | None, shape: list[str] | None,
                 param: list[str] | None, example: str
                 ) -> tuple[list[str], dict[str, str], dict[str, float]]:
    """NAME or --expr (exactly one); --shape/--param only with --expr. -> (wrt, shapes, params)"""
    if name and expr:
        raise DerivkitError("give a recipe NAME or --expr, not both")
    if not name and not expr:
        raise DerivkitError("give a recipe NAME or --expr TEXT", example)
    names = parse_names(wrt)
    if name and (shape or param):
        raise DerivkitError("--shape and --param apply to --expr only",
                            f"recipe {name!r} declares its own shapes and parameters")
    return names, parse_shapes(shape), parse_params(param)
