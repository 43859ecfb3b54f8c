"""Shapes with symbolic dimensions. A shape is a tuple of dims; a dim is an int or a name.

Ranks 0 (scalar), 1 (vector, NumPy 1-D), 2 (matrix), 3 and 4 (stacks of matrices: the
leading axes are a batch, as NumPy's matmul reads them) are supported. Broadcasting follows
NumPy: trailing dims are aligned, a dim of 1 stretches, equal names or equal ints match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ..errors import ShapeError
from .names import IDENT

Dim = int | str
Shape = tuple[Dim, ...]

MAX_RANK = 4


#: What separates the dimensions of a shape: a comma, or the multiplication sign × (U+00D7) in
#: which derivkit prints shapes ("m×n"). Never the letter x: `maxlen` and `nx` are names.
SEPARATORS = re.compile("[,\u00d7]")
_BY_X = re.compile(r"\s*[xX*]\s*")
_BY_STAR_OR_SPACE = re.compile(r"\s*\*\s*|\s+")


def separator_typo(text: str) -> str | None:
    """'mxn' -> 'm,n', '3x4' -> '3,4', 'm*n' / 'm n' -> 'm,n': a shape whose dimensions are
    separated by x, * or spaces instead of commas (the fix), else None. 'mxn', 'nxd', '3xk' look
    like typos ('maxlen', 'nx', 'next', 'dmodel' do not): `parse_dim` refuses only what is not a
    name ('3x4', 'm*n'), since 'mxn' is a valid name in a recipe; the command line's --shape
    refuses both (`derivkit.cli.values`), where `X=mxn` is far more often m×n than a name."""
    t = text.strip()
    parts = _BY_X.split(t)
    if 2 <= len(parts) <= MAX_RANK and all(
            p.isascii() and (p.isdigit() or (len(p) == 1 and p.isalpha())) for p in parts):
        return ",".join(parts)
    parts = _BY_STAR_OR_SPACE.split(t)
    if 2 <= len(parts) <= MAX_RANK and all(p.isascii() and (p.isdigit() or IDENT.match(p))
                                           for p in parts):
        return ",".join(parts)
    return None


def parse_dim(text: str, *, where: str) -> Dim:
    t = text.strip()
    if t.isascii() and t.isdigit():
        value = int(t)
        if value < 1:
            raise ShapeError(f"{where}: dimension {t!r} must be at least 1")
        return value
    if IDENT.match(t) and not t.startswith("_"):
        return t
    fix = separator_typo(t)
    if fix is not None:
        raise ShapeError(f"{where}: dimension {t!r} is not one dimension: separate dimensions "
                         f"with a comma: write {fix!r}")
    raise ShapeError(f"{where}: dimension {t!r} is neither a positive integer nor a plain name",
                     "write e.g. 'm,n' or '3,4'")


INTEGER_SUFFIX = ":int"


def refuse_separator_typo(name: str, dims: str) -> None:
    """A shape given on the command line or to the Python API as "mxn" (or 3x4, m*n, "m n") is
    not a vector of length "mxn": ShapeError saying how to write it."""
    text, integer = split_integer(dims)
    parts = [part.strip() for part in SEPARATORS.split(text)]
    fixes = [separator_typo(part) for part in parts]
    if any(fixes):
        bad = next(part for part, fix in zip(parts, fixes) if fix)
        fixed = ",".join(fix or part for part, fix in zip(parts, fixes))
        raise ShapeError(f"⟨--shape {name}={dims}|shape of {name!r}⟩: {bad!r} is not one dimension; "
                         f"separate dimensions with a comma: "
                         f"⟨--shape {name}={fixed}{':int' if integer else ''}|'{fixed}'⟩")


def split_integer(text: str) -> tuple[str, bool]:
    """'m:int' -> ('m', True): an integer input (class labels), never differentiated."""
    t = text.strip()
    if t.endswith(INTEGER_SUFFIX):
        return t[: -len(INTEGER_SUFFIX)].strip() or "scalar", True
    return t, False


def parse_shape(text: str, *, where: str = "shape") -> Shape:
    """'m,n' -> ('m', 'n'); 'm×n' -> ('m', 'n'); '' or 'scalar' -> (); '3' -> (3,);
    'maxlen' -> ('maxlen',): only ',' and '×' separate dimensions, never the letter x."""
    t = text.strip()
    if t in ("", "()", "scalar"):
        return ()
    parts = SEPARATORS.split(t)
    if any(not p.strip() for p in parts):
        raise ShapeError(f"{where}: malformed shape {text!r}", "write e.g. 'm,n' or '3,4'")
    if len(parts) > MAX_RANK:
        raise ShapeError(f"{where}: shape {text!r} has rank {len(parts)}; derivkit supports "
                         f"arrays of rank {MAX_RANK} at most")
    return tuple(parse_dim(p, where=where) for p in parts)


def fmt_shape(shape: Shape) -> str:
    if not shape:
        return "scalar"
    return "×".join(str(d) for d in shape)


def broadcast(a: Shape, b: Shape, *, what: str = "operands") -> Shape:
    out: list[Dim] = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da == db or db == 1:
            out.append(da)
        elif da == 1:
            out.append(db)
        else:
            raise ShapeError(f"shapes do not fit for {what}: {fmt_shape(a)} and {fmt_shape(b)} "
                             f"({da} ≠ {db})")
    return tuple(reversed(out))



DECLARED = "the declared sizes"


def fmt_sizes(sizes: Mapping[str, object] | None, *, spaced: bool = False, empty: str = "") -> str:
    """{'m': 64, 'n': 128} -> 'm=64, n=128' ('m = 64, n = 128' spaced); {} -> `empty`."""
    eq = " = " if spaced else "="
    return ", ".join(f"{k}{eq}{v}" for k, v in dict(sizes or {}).items()) or empty


def fmt_size_list(sizes: Iterable[Mapping[str, object]] | None) -> str:
    """[{'n': 2}, {'n': 3}] -> 'n = 2, 3'; [{'m': 2, 'n': 3}, {'m': 3, 'n': 4}] ->
    '(m, n) = (2, 3), (3, 4)'; [] -> ''; assignments of different names -> 'm=2; n=3'."""
    rows = [dict(s) for s in sizes or ()]
    if not rows:
        return ""
    keys = list(rows[0])
    if all(list(s) == keys for s in rows):
        if len(keys) == 1:
            return f"{keys[0]} = " + ", ".join(str(s[keys[0]]) for s in rows)
        if keys:
            head = "(" + ", ".join(keys) + ")"
            return head + " = " + ", ".join("(" + ", ".join(str(s[k]) for k in keys) + ")"
                                            for s in rows)
        return ""
    return "; ".join(fmt_sizes(s) for s in rows)
