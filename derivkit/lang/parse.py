"""derivkit's expression language: NumPy syntax over declared arrays, parsed by an allow-list.

The one place user text becomes structure. `ast.parse` only builds a syntax tree (it runs
nothing); every node kind is checked against an allow-list and translated into derivkit's IR by
hand. Nothing is ever passed to eval, exec, sympify or parse_expr, and names must be declared
plain identifiers, so no user text reaches SymPy's printers or lambdify as code.

Grammar (NumPy meaning on arrays of the declared shapes):
    a @ b   a * b   a / b   a + b   a - b   a ** k   -a   a.T   (broadcasting as in NumPy)
    sum(a[, axis=k][, keepdims=True])   mean(a[, axis=k])   softmax(a[, axis=-1])
    f(a[, params]) for every elementwise function f in `derivkit.lang.ops`
    the matrix functions of `MATRIX_OPS` (trace, det, ...)   eye(n)   ones(m, n)
    where(a > b, x, y)   expand_dims(a, axis)
    numbers   declared dimension names as numbers
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol, SupportsFloat, cast

from ..errors import BudgetExceeded, DerivkitError, ExpressionError, ShapeError
from . import ir
from .ops import ELEMENTWISE, MATRIX_OPS
from .shapes import MAX_RANK, Dim, Shape, fmt_shape

MAX_LENGTH = 20_000
MAX_DEPTH = 64
MAX_POWER = 64    # |constant exponent|: (x+1)**600 expands into 600 terms per entry
MAX_CALLS = 32    # function calls nested in one another: tanh(tanh(...)); each level
                  # multiplies the derivative's size (the chain rule), and 60 of them exhaust
                  # Python's stack in the symbolic work


DISALLOWED: dict[type[ast.AST], str] = {
              ast.Subscript: "subscripts other than z[i] and Z[arange(m), y]", ast.Lambda: "lambda",
              ast.IfExp: "if-expressions",
              ast.BoolOp: "and/or", ast.Tuple: "tuples", ast.List: "lists", ast.Dict: "dicts",
              ast.Set: "sets", ast.ListComp: "comprehensions", ast.GeneratorExp: "comprehensions",
              ast.DictComp: "comprehensions", ast.SetComp: "comprehensions",
              ast.JoinedStr: "f-strings", ast.NamedExpr: "assignments", ast.Starred: "*-unpacking",
              ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "slices"}


class _Builds(Protocol):
    """What the checks below need of a builder (this module's, or the index claims')."""

    text: str

    def fail(self, node: ast.AST, message: str, hint: str | None = None) -> ExpressionError: ...


def not_allowed(builder: _Builds, node: ast.AST, table: dict[type[ast.AST], str],
                language: str) -> ExpressionError:
    """The error for a syntax node outside `language` (what it is, from `table`)."""
    what = table.get(type(node), type(node).__name__)
    return builder.fail(node, f"'{_segment(builder.text, node)}' is not allowed: {what} are not "
                              f"part of {language}")


def checked_number(builder: _Builds, node: ast.Constant, language: str) -> int | float:
    """A numeric literal's value: no bools, strings, NaN or infinities; integers up to 10^12
    (unless the builder's `limits` are off: text derivkit printed itself)."""
    value = node.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise builder.fail(node, f"'{_segment(builder.text, node)}' is not a number {language} "
                                 "allows")
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise builder.fail(node, "NaN and infinity are not allowed as constants")
    if isinstance(value, int) and abs(value) > 10**12 and getattr(builder, "limits", True):
        raise builder.fail(node, f"integer constant {value} is too large (limit 10^12)")
    return value


def check_power(builder: _Builds, node: ast.AST, exponent: SupportsFloat | None) -> None:
    """A constant exponent beyond ±MAX_POWER is refused (symbolic work grows with it)."""
    if exponent is not None and not abs(float(exponent)) <= MAX_POWER and getattr(builder, "limits", True):
        shown = f"{exponent:g}" if isinstance(exponent, float) else exponent
        raise builder.fail(node, f"exponent {shown} is too large (the limit is {MAX_POWER})")


_FOLD = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
         "/": lambda a, b: a / b, "**": lambda a, b: a ** b}


def constant_value(node: ir.Node) -> float | None:
    """The value of an exponent built from numbers only (8*16, 2**7, -(64+1), sum(ones(3))*50),
    as SymPy would fold it; None if it involves an input, a dimension or anything else. A value
    too large for a float is infinite (and so beyond any limit)."""
    memo: dict[ir.Node, float | None] = {}
    for n in ir.walk(node):
        args = [memo[c] for c in n.args]
        value = None
        if isinstance(n, ir.Const):
            value = float(n.value)
        elif isinstance(n, ir.Neg) and args[0] is not None:
            value = -args[0]
        elif isinstance(n, ir.Binary) and None not in args:
            try:
                value = float(_FOLD[n.op](*args))
            except OverflowError:
                value = float("inf")
            except (ZeroDivisionError, ValueError, TypeError):   # undefined, or complex
                value = None
        elif isinstance(n, ir.Ones):
            value = 1.0
        elif isinstance(n, ir.Broadcast):
            value = args[0]
        elif isinstance(n, ir.Sum) and args[0] is not None and all(
                isinstance(d, int) for d in n.a.shape):
            count = 1
            for d in (n.a.shape if n.axis is None else (n.a.shape[n.axis],)):
                count *= cast(int, d)   # all ints: checked above
            value = args[0] * count
        elif isinstance(n, ir.Macro) and n.fn == "mean":
            value = memo.get(n.expansion)
        memo[n] = value
    return memo[node]

REDUCTIONS = ("sum", "mean", "logsumexp", "var", "std", "norm", "max", "min")   # axis=, keepdims=
FUNCTIONS = (*ELEMENTWISE, *MATRIX_OPS, *REDUCTIONS, "softmax", "log_softmax", "eye", "ones",
             "where", "expand_dims", "clip", "maximum", "minimum", "one_hot", "swapaxes", "transpose",
             "reshape")
_CMP = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "=="}
_BIN = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


def softmax(x: ir.Node, axis: int = -1, *, explicit_axis: bool = False) -> ir.Node:
    """softmax(x) = exp(x) / Σ exp(x) along `axis` (a vector: all of it), as a macro printed by
    name; `explicit_axis`: the axis is printed."""
    e = ir.apply("exp", x)
    if x.rank == 1:
        ir.axis_index(axis, x.rank, "softmax")
        s = ir.sum_(e)
    else:
        s = ir.sum_(e, axis, keepdims=True, what="softmax")
    return ir.macro("softmax", (x,), ir.div(e, s), (("axis", axis),) if explicit_axis else ())


def _kwargs(axis: int | None, keepdims: bool, **extra: object) -> tuple[tuple[str, object], ...]:
    """The keywords a reduction prints: those not at their defaults."""
    out: list[tuple[str, object]] = [] if axis is None else [("axis", axis)]
    out += [("keepdims", True)] if keepdims else []
    return tuple(out) + tuple((k, v) for k, v in extra.items() if v)


def _count(x: ir.Node, axis: int | None) -> ir.Node:
    """The number of entries a reduction over `axis` (all when None) of `x` sees."""
    dims = x.shape if axis is None else (x.shape[axis],)
    count: ir.Node = ir.ONE
    for i, d in enumerate(dims):
        term = ir.const(d) if isinstance(d, int) else ir.DimSize(d)
        count = term if i == 0 else ir.mul(count, term)
    return count


def mean(x: ir.Node, axis: int | None = None, keepdims: bool = False,
         kwargs: tuple[tuple[str, object], ...] | None = None) -> ir.Node:
    """mean(x) = Σ x / N along `axis` (all of x when None), as a macro printed by name;
    `kwargs`: the keywords printed (by default axis and keepdims where not the defaults)."""
    total = ir.sum_(x, axis, keepdims, what="mean")
    return ir.macro("mean", (x,), ir.div(total, _count(x, axis)),
                    _kwargs(axis, keepdims) if kwargs is None else kwargs)


def logsumexp(x: ir.Node, axis: int | None = None, keepdims: bool = False) -> ir.Node:
    """logsumexp(x) = log Σ exp(x) over `axis` (all of x when None), as SciPy's; lowered shifted
    by the maximum, so it never overflows."""
    return ir.macro("logsumexp", (x,), ir.apply("log", ir.sum_(ir.apply("exp", x), axis, keepdims,
                                                               what="logsumexp")),
                    _kwargs(axis, keepdims))


def log_softmax(x: ir.Node, axis: int = -1, *, explicit_axis: bool = False) -> ir.Node:
    """log_softmax(x) = x − logsumexp(x) along `axis` (a vector: all of it)."""
    ir.axis_index(axis, x.rank, "log_softmax")
    lse = logsumexp(x) if x.rank == 1 else logsumexp(x, axis, keepdims=True)
    return ir.macro("log_softmax", (x,), ir.sub(x, lse), (("axis", axis),) if explicit_axis else ())


def var(x: ir.Node, axis: int | None = None, keepdims: bool = False, ddof: int = 0) -> ir.Node:
    """var(x) = Σ (x − mean(x))² / (N − ddof) over `axis`, as NumPy's (population by default)."""
    ir.axis_index(axis, x.rank, "var")
    centred = ir.sub(x, mean(x, axis, keepdims=True))
    squares = ir.power(centred, ir.const(2))
    value = (mean(squares, axis, keepdims) if ddof == 0 else
             ir.div(ir.sum_(squares, axis, keepdims), ir.sub(_count(x, axis), ir.const(ddof))))
    return ir.macro("var", (x,), value, _kwargs(axis, keepdims, ddof=ddof))


def std(x: ir.Node, axis: int | None = None, keepdims: bool = False, ddof: int = 0) -> ir.Node:
    """std(x) = √var(x), as NumPy's."""
    return ir.macro("std", (x,), ir.apply("sqrt", var(x, axis, keepdims, ddof)),
                    _kwargs(axis, keepdims, ddof=ddof))


def norm(x: ir.Node, axis: int | None = None, keepdims: bool = False) -> ir.Node:
    """norm(x) = √Σ x²: the 2-norm of a vector, the Frobenius norm of a matrix (NumPy's
    np.linalg.norm with its default ord), or of each slice along `axis`."""
    return ir.macro("norm", (x,), ir.apply("sqrt", ir.sum_(ir.power(x, ir.const(2)), axis, keepdims,
                                                           what="norm")),
                    _kwargs(axis, keepdims))


def maximum(a: ir.Node, b: ir.Node) -> ir.Node:
    """maximum(a, b) entry by entry (NumPy's); at a tie the gradient goes to b, so maximum(x, 0)
    has relu's derivative 0 at 0 (PyTorch splits a tie's gradient in halves)."""
    return ir.macro("maximum", (a, b), ir.where(ir.compare(">", a, b), a, b))


def minimum(a: ir.Node, b: ir.Node) -> ir.Node:
    """minimum(a, b) entry by entry (NumPy's); at a tie the gradient goes to b."""
    return ir.macro("minimum", (a, b), ir.where(ir.compare("<", a, b), a, b))


def clip(x: ir.Node, lo: ir.Node, hi: ir.Node) -> ir.Node:
    """clip(x, lo, hi), NumPy's (lo ≤ hi); the gradient is 1 where lo ≤ x ≤ hi, bounds
    included (PyTorch's clamp), 0 outside."""
    low = ir.where(ir.compare("<", x, lo), lo, x)   # max(x, lo), then min(·, hi): NumPy's order,
    return ir.macro("clip", (x, lo, hi), ir.where(ir.compare(">", low, hi), hi, low))   # lo > hi: hi


def take(x: ir.Node, labels: ir.Node) -> ir.Node:
    """NumPy's integer indexing by labels: x[i] of a vector (i an integer, or an integer input),
    and X[arange(m), y] of a matrix (y[r] picks row r's entry): Σ x ⊙ one_hot(labels, k)."""
    if x.rank == 1 and labels.rank == 0:
        value = ir.sum_(ir.mul(x, ir.one_hot(labels, x.shape[0])))
    elif x.rank == 2 and labels.shape == (x.shape[0],):
        value = ir.sum_(ir.mul(x, ir.one_hot(labels, x.shape[1])), 1)
    else:
        raise ShapeError(f"cannot index {fmt_shape(x.shape)} by labels of shape "
                         f"{fmt_shape(labels.shape)}", "write z[i] for a vector, Z[arange(m), y] "
                         "with y of shape m for a matrix")
    return ir.macro("take", (x, labels), value)


@dataclass(frozen=True)
class Scope:
    """What names mean: inputs (arrays), params (scalars with defaults), dims (from shapes)."""

    inputs: dict[str, Shape]
    params: dict[str, float]
    named: dict[str, Shape] = field(default_factory=dict)  # earlier steps of a composite
    integers: frozenset[str] = frozenset()   # integer inputs (class labels): only in one_hot
    products: dict[str, tuple[Dim, ...]] = field(default_factory=dict)   # e = h·d (reshape)

    @property
    def dims(self) -> set[str]:
        """The dimension names: of the inputs' axes, and the declared products and factors."""
        declared = {d for name, factors in self.products.items() for d in (name, *factors)
                    if isinstance(d, str)}
        return {d for shape in self.inputs.values() for d in shape if isinstance(d, str)} | declared

    def var(self, name: str) -> ir.Var:
        if name in self.inputs:
            return ir.Var(name, tuple(self.inputs[name]), "input")
        if name in self.named:
            return ir.Var(name, tuple(self.named[name]), "named")
        return ir.Var(name, (), "param")


def _segment(text: str, node: ast.AST) -> str:
    seg = ast.get_source_segment(text, node) or type(node).__name__
    seg = " ".join(seg.split())
    return seg if len(seg) <= 40 else seg[:37] + "..."


class _Builder:
    def __init__(self, text: str, scope: Scope, limits: bool = True) -> None:
        self.text = text
        self.scope = scope
        self.limits = limits   # off for derivkit's own printed forms (see `parse`)

    def fail(self, node: ast.AST, message: str, hint: str | None = None) -> ExpressionError:
        return ExpressionError(message, source=self.text, col=getattr(node, "col_offset", None),
                               hint=hint)

    def build(self, node: ast.AST, depth: int = 0) -> ir.Node:
        if depth > MAX_DEPTH and self.limits:
            raise self.fail(node, f"expression nests deeper than {MAX_DEPTH} levels")
        try:
            return self._build(node, depth + 1)
        except DerivkitError as exc:
            if isinstance(exc, (ExpressionError, BudgetExceeded)):   # the budget: not a parse error
                raise
            raise self.fail(node, f"{exc.template} in '{_segment(self.text, node)}'",
                            exc.hint_template) from None

    def _build(self, node: ast.AST, depth: int) -> ir.Node:
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.MatMult):
                return ir.matmul(self.build(node.left, depth), self.build(node.right, depth))
            op = _BIN.get(type(node.op))
            if op is None:
                raise self.fail(node, f"operator in '{_segment(self.text, node)}' is not allowed",
                                "use @ * / + - **")
            right = self.build(node.right, depth)
            if op == "**":   # folded as SymPy will fold it: (x+1)**(8*16) is (x+1)**128
                check_power(self, node, constant_value(right))
            return ir.binary(op, self.build(node.left, depth), right)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                inner = self.build(node.operand, depth)
                if isinstance(inner, ir.Const) and not isinstance(inner.value, ir.NamedNumber):
                    return ir.const(-inner.value)
                return ir.neg(inner)
            if isinstance(node.op, ast.UAdd):
                return self.build(node.operand, depth)
            raise self.fail(node, f"operator in '{_segment(self.text, node)}' is not allowed")
        if isinstance(node, ast.Constant):
            return self._number(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Attribute):
            if node.attr == "T":   # NumPy's: every axis reversed (a matrix's transpose)
                x = self.build(node.value, depth)
                return ir.permute(x, tuple(reversed(range(x.rank)))) if x.rank > 2 else ir.transpose(x)
            if node.attr == "mT":   # NumPy's matrix transpose: the last two axes
                x = self.build(node.value, depth)
                if x.rank < 2:
                    raise self.fail(node, f"'.mT' needs a matrix, got {fmt_shape(x.shape)}",
                                    "a vector has no matrix transpose; use x as it is")
                return ir.transpose(x)
            raise self.fail(node, f"attribute '.{node.attr}' is not allowed (only .T and .mT, "
                                  "transposes)")
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, ast.Subscript):
            return self._subscript(node, depth)
        if isinstance(node, ast.Compare):
            raise self.fail(node, f"comparison '{_segment(self.text, node)}' can only be the "
                                  "condition of where(cond, a, b)")
        raise not_allowed(self, node, DISALLOWED, "the expression language")

    def _labels(self, node: ast.AST, depth: int) -> ir.Node:
        """An integer input, or a non-negative integer constant: what one_hot and indexing take."""
        if isinstance(node, ast.Constant) and isinstance(node.value, int) \
                and not isinstance(node.value, bool) and node.value >= 0:
            return ir.const(node.value)
        if isinstance(node, ast.Name) and node.id in self.scope.integers:
            return self.scope.var(node.id)
        raise self.fail(node, f"'{_segment(self.text, node)}' is not a label: give an integer "
                              "input (declared e.g. ⟨--shape y=m:int|y='m:int'⟩) or an integer >= 0")

    def _subscript(self, node: ast.Subscript, depth: int) -> ir.Node:
        x = self.build(node.value, depth)
        index = node.slice
        if isinstance(index, ast.Tuple) and len(index.elts) == 2 and x.rank == 2:
            rows, labels = index.elts
            if not (isinstance(rows, ast.Call) and isinstance(rows.func, ast.Name)
                    and rows.func.id == "arange" and len(rows.args) == 1 and not rows.keywords
                    and self._dim(rows.args[0], "arange") == x.shape[0]):
                raise self.fail(rows, f"index the rows of {fmt_shape(x.shape)} with "
                                      f"arange({x.shape[0]}): Z[arange(m), y]")
            return take(x, self._labels(labels, depth))
        if x.rank == 1 and not isinstance(index, (ast.Tuple, ast.Slice)):
            return take(x, self._labels(index, depth))
        raise self.fail(node, f"'{_segment(self.text, node)}' is not an indexing derivkit knows",
                        "write z[i] for a vector, Z[arange(m), y] for a matrix (y: integer labels)")

    def _number(self, node: ast.Constant) -> ir.Node:
        value = checked_number(self, node, "the language")
        if isinstance(value, int):
            return ir.const(value)
        frac = Fraction(repr(value))
        return ir.const(frac if frac.denominator <= 10**6 else value)

    def _name(self, node: ast.Name) -> ir.Node:
        name = node.id
        if name.startswith("_"):
            raise self.fail(node, f"name '{name}' is not allowed (names may not start with '_')")
        if name in self.scope.integers:
            raise self.fail(node, f"'{name}' is an integer input (class labels): use it as "
                                  f"one_hot({name}, k), z[{name}] or Z[arange(m), {name}]")
        if name in self.scope.inputs or name in self.scope.params or name in self.scope.named:
            return self.scope.var(name)
        if name in self.scope.dims:
            return ir.DimSize(name)
        if name in ir.NAMED_NUMBERS:   # after declared names: an input named e shadows it
            return ir.NAMED_NUMBERS[name]
        if name in FUNCTIONS:
            raise self.fail(node, f"'{name}' is a function; call it, e.g. {name}(x)")
        known = sorted(set(self.scope.inputs) | set(self.scope.params) | set(self.scope.named))
        raise self.fail(node, f"unknown name '{name}'",
                        f"declared: {', '.join(known)}" if known else "declare its ⟨--shape|shape⟩")

    def _dim(self, node: ast.AST, fn: str) -> Dim:
        if isinstance(node, ast.Name) and node.id in self.scope.dims:
            return node.id
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(
                node.value, bool) and 1 <= node.value <= 10**6:
            return node.value
        raise self.fail(node, f"{fn}() takes dimension names or positive integers, "
                              f"got '{_segment(self.text, node)}'")

    def _int_kw(self, node: ast.AST, fn: str, what: str) -> int:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self._int_kw(node.operand, fn, what)
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(
                node.value, bool):
            return node.value
        raise self.fail(node, f"{fn}(): {what} must be an integer, got '{_segment(self.text, node)}'")

    def _call(self, node: ast.Call, depth: int) -> ir.Node:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, f"'{_segment(self.text, node.func)}' cannot be called: only the "
                                  "language's functions can")
        fn = node.func.id
        if fn not in FUNCTIONS:
            raise self.fail(node, f"unknown function '{fn}'",
                            f"allowed: {', '.join(sorted(FUNCTIONS))}")
        args = node.args
        if any(isinstance(a, ast.Starred) for a in args) or any(k.arg is None for k in node.keywords):
            raise self.fail(node, f"{fn}(): *args and **kwargs are not allowed")
        kws = {k.arg: k.value for k in node.keywords if k.arg is not None}   # None: refused above

        def arity(lo: int, hi: int, allowed_kw: tuple[str, ...] = ()) -> None:
            extra = set(kws) - set(allowed_kw)
            if extra:
                raise self.fail(node, f"{fn}() takes no keyword '{sorted(extra)[0]}'")
            if not lo <= len(args) <= hi:
                want = str(lo) if lo == hi else f"{lo} to {hi}"
                raise self.fail(node, f"{fn}() takes {want} positional argument(s), got {len(args)}")

        def arg(i: int) -> ir.Node:
            return self.build(args[i], depth)

        if fn in ELEMENTWISE:
            names = ELEMENTWISE[fn].param_names
            arity(1, 1 + len(names), names)
            x = arg(0)
            params = []
            for j, pname in enumerate(names):
                if 1 + j < len(args):
                    if pname in kws:
                        raise self.fail(node, f"{fn}(): '{pname}' given twice")
                    p = arg(1 + j)
                elif pname in kws:
                    p = self.build(kws[pname], depth)
                else:
                    p = ir.const(ELEMENTWISE[fn].defaults[pname])
                if p.rank:
                    raise self.fail(node, f"{fn}(): {pname} must be a scalar, got {fmt_shape(p.shape)}")
                params.append(p)
            return ir.apply(fn, x, tuple(params))
        if fn in REDUCTIONS:
            arity(1, 1, ("axis", "keepdims") + (("ddof",) if fn in ("var", "std") else ()))
            x = arg(0)
            axis = self._int_kw(kws["axis"], fn, "axis") if "axis" in kws else None
            keepdims = False
            if "keepdims" in kws:
                k = kws["keepdims"]
                if not (isinstance(k, ast.Constant) and isinstance(k.value, bool)):
                    raise self.fail(k, f"{fn}(): keepdims must be True or False")
                keepdims = k.value
            if fn == "sum":
                return ir.sum_(x, axis, keepdims)
            if fn in ("max", "min"):
                return ir.extreme(fn, x, axis, keepdims)
            if fn == "mean":
                kwargs = tuple((k, v) for k, v in (("axis", axis), ("keepdims", keepdims)) if k in kws)
                return mean(x, axis, keepdims, kwargs)
            if fn in ("var", "std"):
                ddof = self._int_kw(kws["ddof"], fn, "ddof") if "ddof" in kws else 0
                if ddof < 0:
                    raise self.fail(node, f"{fn}(): ddof must be 0 or more, got {ddof}")
                return (var if fn == "var" else std)(x, axis, keepdims, ddof)
            return (logsumexp if fn == "logsumexp" else norm)(x, axis, keepdims)
        if fn in ("softmax", "log_softmax"):
            arity(1, 1, ("axis",))
            x = arg(0)
            if x.rank == 0:
                raise self.fail(node, f"{fn}() needs a vector or a matrix")
            axis = self._int_kw(kws["axis"], fn, "axis") if "axis" in kws else -1
            return (softmax if fn == "softmax" else log_softmax)(x, axis, explicit_axis="axis" in kws)
        if fn in ("maximum", "minimum"):
            arity(2, 2)
            return (maximum if fn == "maximum" else minimum)(arg(0), arg(1))
        if fn == "clip":
            arity(3, 3)
            return clip(arg(0), arg(1), arg(2))
        if fn in MATRIX_OPS:
            op = MATRIX_OPS[fn]
            arity(op.arity, op.arity)
            return op.build(*(arg(i) for i in range(op.arity)))
        if fn in ("swapaxes", "transpose"):
            if fn == "swapaxes":
                arity(1, 3)
            else:
                arity(1, 2, ("axes",))
            x = arg(0)
            if fn == "swapaxes":
                if len(args) != 3:
                    raise self.fail(node, "swapaxes() takes an array and two axes, e.g. "
                                          "swapaxes(x, -1, -2)")
                a, b = (ir.axis_index(self._int_kw(args[i], fn, "an axis"), x.rank, fn)
                        for i in (1, 2))
                order = list(range(x.rank))
                order[a], order[b] = order[b], order[a]
            else:
                given = args[1] if len(args) == 2 else kws.get("axes")
                order = list(reversed(range(x.rank)))
                if given is not None:
                    if not isinstance(given, ast.Tuple):
                        raise self.fail(given, "transpose(): axes must be a tuple such as (1, 0)")
                    order = [ir.axis_index(self._int_kw(e, fn, "an axis"), x.rank, fn)
                             for e in given.elts]
                    if sorted(order) != list(range(x.rank)):
                        raise self.fail(given, f"transpose(): axes {tuple(order)} are not a "
                                               f"permutation of the {x.rank} axes")
            return ir.permute(x, order)
        if fn == "reshape":
            arity(2, 2)
            if not isinstance(args[1], ast.Tuple) or not args[1].elts:
                raise self.fail(args[1], "reshape(): the shape must be a tuple of dimensions such "
                                         "as (b, t, h, d)")
            out = ir.reshape(arg(0), tuple(self._dim(e, fn) for e in args[1].elts),
                             self.scope.products)
            axes = {d for shape in self.scope.inputs.values() for d in shape}
            for name, factors in getattr(out, "products", ()):
                unknown = [f for f in factors if isinstance(f, str) and f not in axes]
                if len(unknown) > 1:   # generated code reads sizes off the inputs' shapes
                    raise self.fail(node, f"reshape(): {' and '.join(unknown)} are the sizes of "
                                          f"no input's axis, so {name} = {'·'.join(map(str, factors))} "
                                          "cannot be split at run time",
                                    f"write one factor as a number (e.g. {name} = "
                                    f"\"4*{unknown[-1]}\") or give an input an axis of that size")
            return out
        if fn == "one_hot":
            arity(2, 2)
            return ir.one_hot(self._labels(args[0], depth), self._dim(args[1], fn))
        if fn == "eye":
            arity(1, 1)
            return ir.eye(self._dim(args[0], fn))
        if fn == "ones":
            arity(1, MAX_RANK)
            return ir.ones(tuple(self._dim(a, fn) for a in args))
        if fn == "expand_dims":
            arity(2, 2)
            return ir.expand_dims(arg(0), self._int_kw(args[1], fn, "axis"))
        if fn == "where":
            arity(3, 3)
            cond = args[0]
            if not (isinstance(cond, ast.Compare) and len(cond.ops) == 1
                    and type(cond.ops[0]) in _CMP):
                raise self.fail(cond, "where() needs a comparison such as x > 0 as its condition")
            c = ir.compare(_CMP[type(cond.ops[0])], self.build(cond.left, depth),
                           self.build(cond.comparators[0], depth))
            return ir.where(c, arg(1), arg(2))
        raise AssertionError(fn)  # pragma: no cover


_ASSIGNMENT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)(.*)\Z", re.S)


def split_statements(text: str) -> tuple[list[tuple[str, str]], str]:
    """`S = Q @ K.T; P = softmax(S); sum(P * G)` -> ([("S", "Q @ K.T"), ("P", "softmax(S)")],
    "sum(P * G)"): named steps separated by `;`, then the output's expression. Each part is
    parsed later by `parse` like any expression; the names are checked as user names where the
    steps are declared. Text without `;` is one expression."""
    if ";" not in text:
        return [], text
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == ";" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    if parts and not parts[-1].strip():
        parts.pop()                      # a trailing ';'
    steps: list[tuple[str, str]] = []
    for k, part in enumerate(parts):
        if not part.strip():
            raise ExpressionError("an empty statement between ';'", hint="write e.g. "
                                  "'S = Q @ K.T; P = softmax(S); sum(P * G)'")
        match = _ASSIGNMENT.match(part)
        last = k == len(parts) - 1
        if match and last:
            raise ExpressionError(f"the last statement assigns {match.group(1)}: it must be the "
                                  f"output's expression", hint=f"end with e.g. '; sum({match.group(1)})'")
        if not match and not last:
            raise ExpressionError(f"'{' '.join(part.split())[:40]}' is not an assignment: every "
                                  f"statement but the last names a value",
                                  hint="write NAME = expression; ...; output expression")
        if match:
            steps.append((match.group(1), match.group(2).strip()))
    return steps, parts[-1].strip()


def syntax_tree(text: str, what: str = "expression", limits: bool = True) -> ast.expr:
    """The checked syntax tree of `text` (ast.parse runs nothing): length, NUL, nesting and
    syntax are checked first, each failure an ExpressionError."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"the {what} is empty")
    if len(text) > MAX_LENGTH and limits:
        raise ExpressionError(f"the {what} is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if "\x00" in text:
        raise ExpressionError(f"the {what} contains a NUL character")
    bad = next((i for i, ch in enumerate(text) if "\ud800" <= ch <= "\udfff"), None)
    if bad is not None:   # undecodable bytes, kept by the OS as lone surrogates
        raise ExpressionError(f"the {what} has a byte that is not valid UTF-8 text", source=text,
                              col=bad)
    if limits and (text.count("(") > MAX_DEPTH * 4 or _paren_depth(text) > MAX_DEPTH):
        raise ExpressionError(f"the {what} nests deeper than {MAX_DEPTH} levels")
    try:
        with warnings.catch_warnings():   # '1if x' and '"\d"' warn on stderr otherwise
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        col = (exc.offset - 1) if exc.offset else None
        raise ExpressionError(f"cannot parse the {what}: {exc.msg}", source=text, col=col) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError(f"the {what} is too deeply nested or too large to parse") from None
    calls, deepest = _call_depth(tree)
    if calls > MAX_CALLS and limits:
        raise ExpressionError(f"the {what} nests {calls} function calls in one another (e.g. "
                              f"{deepest}(...)); the limit is {MAX_CALLS}", source=text,
                              hint="each nested function multiplies the size of the derivative; "
                                   "split it into steps")
    return tree


def _call_depth(tree: ast.AST) -> tuple[int, str]:
    """The most function calls on one path from the root (iterative: any depth), and the
    name of the innermost one."""
    best, name = 0, ""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.Call):
            depth += 1
            if depth > best:
                best, name = depth, getattr(node.func, "id", "f")
        stack.extend((child, depth) for child in ast.iter_child_nodes(node))
    return best, name


def parse(text: str, scope: Scope, *, limits: bool = True) -> ir.Node:
    """Parse `text` into IR over `scope`; any problem is an ExpressionError naming the token.
    `limits=False` lifts the size limits on user input (length, nesting, constants, exponents)
    for text derivkit printed itself from an accepted input: a derivative of x**64 has x**63,
    of a 20-call expression may nest deeper; it still goes through the same allow-list."""
    tree = syntax_tree(text, limits=limits)
    try:
        return _Builder(text.strip(), scope, limits).build(tree)
    except RecursionError:
        raise ExpressionError(f"the expression nests deeper than {MAX_DEPTH} levels") from None


def _paren_depth(text: str) -> int:
    depth = best = 0
    for ch in text:
        if ch in "([":
            depth += 1
            best = max(best, depth)
        elif ch in ")]":
            depth -= 1
    return best
