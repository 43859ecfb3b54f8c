"""The index-claim language: one entry of a derivative, written with subscripts and deltas.

    p[i]*(delta(i,j) - p[j])        X[i,r]*delta(j,s)        sum(W[k,j]*x[k], k)

Grammar: the expression language's arithmetic (+ - * / **, unary -, numbers), subscripted
arrays A[i,j] (every axis one index letter), scalars by name, dimension names as numbers,
delta(a, b) (also δ(a, b)), sum(body, k[, l...]) over index letters, where(a > b, x, y), and the
element-wise functions of `derivkit.lang.ops` (exp, log, tanh, relu, ...). Any other
identifier is an index letter. As in `derivkit.lang.parse`, `ast.parse` only builds a tree and each
node is translated by hand into SymPy objects: no text reaches eval, exec, sympify or parse_expr.

Every index's range is read off the axes it subscripts (`uses`); free indices (not bound by a
sum) name the entry: the output's indices, then the input's (`derivkit.audit.claim` matches
them to the derivative and checks their ranges).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from fractions import Fraction

import sympy as sp

from ..derivation import elementwise
from ..derivation.index import CMP, Where, dim_symbol, index_symbol, opaque
from ..errors import ExpressionError
from ..lang.ops import ELEMENTWISE
from ..lang.parse import (
    _CMP,
    DISALLOWED,
    MAX_DEPTH,
    _segment,
    check_power,
    checked_number,
    not_allowed,
    syntax_tree,
)
from ..lang.shapes import Shape, fmt_shape

DELTA_NAMES = ("delta", "δ")


@dataclass(frozen=True)
class ClaimScope:
    """Names an index claim may use: arrays (inputs, outputs, steps) with shapes, scalar
    parameters, dimension names; `excluded` maps names that exist but have no place in an
    entry-wise claim (the upstream gradient) to the reason."""

    arrays: dict[str, Shape]
    params: tuple[str, ...] = ()
    dims: tuple[str, ...] = ()
    excluded: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Use:
    array: str
    axis: int
    dim: object     # the axis's dimension: a name or an int


@dataclass
class IndexClaim:
    expr: sp.Expr
    free: tuple[str, ...]                  # free index letters, alphabetical
    uses: dict[str, list[Use]]             # index letter -> the axes it subscripts


def is_index_claim(text: str) -> bool:
    """True if the claim uses subscripts or Kronecker deltas (else it is a matrix claim)."""
    tree = syntax_tree(text, "claim")
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in DELTA_NAMES:
            return True
    return False


def parse_index_claim(text: str, scope: ClaimScope) -> IndexClaim:
    tree = syntax_tree(text, "claim")
    b = _Builder(text.strip(), scope)
    try:
        expr = b.build(tree)
    except RecursionError:
        raise ExpressionError(f"the claim nests deeper than {MAX_DEPTH} levels") from None
    free = sorted({s.name for s in expr.free_symbols if s.name in b.indices})
    for name, node in b.bare.items():
        if name not in b.indices:
            raise b.fail(node, f"unknown name '{name}'", b.known_hint())
    return IndexClaim(expr, tuple(free), b.uses)


class _Builder:
    def __init__(self, text: str, scope: ClaimScope) -> None:
        self.text = text
        self.scope = scope
        self.indices: set[str] = set()
        self.uses: dict[str, list[Use]] = {}
        self.bare: dict[str, ast.AST] = {}     # names seen as values, resolved at the end
        self.bound: set[str] = set()           # summation indices

    def fail(self, node: ast.AST, message: str, hint: str | None = None) -> ExpressionError:
        return ExpressionError(message, source=self.text, col=getattr(node, "col_offset", None),
                               hint=hint)

    def known_hint(self) -> str:
        names = sorted(set(self.scope.arrays) | set(self.scope.params) | set(self.scope.dims))
        return f"names: {', '.join(names)}; index letters appear in subscripts, delta() or sum()"

    def build(self, node: ast.AST, depth: int = 0) -> sp.Expr:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"claim nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.BinOp):
            a, b = self.build(node.left, depth + 1), self.build(node.right, depth + 1)
            op = type(node.op)
            if op is ast.Add:
                return a + b
            if op is ast.Sub:
                return a - b
            if op is ast.Mult:
                return a * b
            if op is ast.Div:
                return a / b
            if op is ast.Pow:
                check_power(self, node, b if b.is_Number else None)
                return a ** b
            raise self.fail(node, f"operator in '{_segment(self.text, node)}' is not allowed in an "
                                  "index claim", "use * / + - ** with subscripts; @ is matrix form")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = self.build(node.operand, depth + 1)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.Constant):
            return self._number(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, ast.Attribute):
            raise self.fail(node, f"attribute '.{node.attr}' is not allowed in an index claim",
                            "write a transpose with swapped subscripts, e.g. W[j,i]")
        raise not_allowed(self, node, {**DISALLOWED, ast.Compare: "comparisons outside where()"},
                          "the claim language")

    def _number(self, node: ast.Constant) -> sp.Expr:
        v = checked_number(self, node, "the claim language")
        f = Fraction(repr(v)) if isinstance(v, float) else Fraction(v)
        return sp.Rational(f.numerator, f.denominator)

    def _check_identifier(self, node: ast.AST, name: str) -> None:
        if name.startswith("_"):
            raise self.fail(node, f"name '{name}' is not allowed (names may not start with '_')")
        if name in self.scope.excluded:
            raise self.fail(node, f"'{name}' cannot appear in an index claim: "
                                  f"{self.scope.excluded[name]}")

    def _name(self, node: ast.Name) -> sp.Expr:
        name = node.id
        self._check_identifier(node, name)
        if name in self.scope.arrays:
            if self.scope.arrays[name]:
                raise self.fail(node, f"'{name}' is an array of shape "
                                      f"{fmt_shape(self.scope.arrays[name])}; subscript it, e.g. "
                                      f"{name}[{','.join('ijkl'[:len(self.scope.arrays[name])])}]")
            return sp.Symbol(name, real=True)
        if name in self.scope.params:
            return elementwise.param_symbol(name)
        if name in self.scope.dims:
            return dim_symbol(name)
        if name in ELEMENTWISE or name in DELTA_NAMES or name in ("sum", "where"):
            raise self.fail(node, f"'{name}' is a function; call it")
        self.bare.setdefault(name, node)
        return index_symbol(name)

    def _index(self, node: ast.AST) -> sp.Symbol:
        if not isinstance(node, ast.Name):
            raise self.fail(node, f"'{_segment(self.text, node)}' is not an index: use a letter "
                                  "such as i, j, k")
        name = node.id
        self._check_identifier(node, name)
        if (name in self.scope.arrays or name in self.scope.params or name in self.scope.dims
                or name in ELEMENTWISE or name in DELTA_NAMES or name in ("sum", "where")):
            raise self.fail(node, f"'{name}' is a declared name, not an index letter")
        self.indices.add(name)
        return index_symbol(name)

    def _subscript(self, node: ast.Subscript) -> sp.Expr:
        if not isinstance(node.value, ast.Name):
            raise self.fail(node, f"only declared arrays can be subscripted, not "
                                  f"'{_segment(self.text, node.value)}'")
        name = node.value.id
        self._check_identifier(node.value, name)
        if name not in self.scope.arrays:
            raise self.fail(node.value, f"unknown array '{name}'", self.known_hint())
        shape = self.scope.arrays[name]
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if len(parts) != len(shape):
            raise self.fail(node, f"{name} has {len(shape)} axes ({fmt_shape(shape)}) but "
                                  f"'{_segment(self.text, node)}' gives {len(parts)} "
                                  f"ind{'ex' if len(parts) == 1 else 'ices'}")
        idx = []
        for axis, part in enumerate(parts):
            sym = self._index(part)
            self.uses.setdefault(sym.name, []).append(Use(name, axis, shape[axis]))
            idx.append(sym)
        return sp.IndexedBase(name, real=True)[tuple(idx)]

    def _call(self, node: ast.Call, depth: int) -> sp.Expr:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, f"'{_segment(self.text, node.func)}' cannot be called")
        fn = node.func.id
        args = node.args
        if any(isinstance(a, ast.Starred) for a in args) or any(k.arg is None for k in node.keywords):
            raise self.fail(node, f"{fn}(): *args and **kwargs are not allowed")
        kws = {k.arg: k.value for k in node.keywords}
        if fn in DELTA_NAMES:
            if len(args) != 2 or kws:
                raise self.fail(node, f"{fn}() takes two index letters, e.g. delta(i, j)")
            return sp.KroneckerDelta(self._index(args[0]), self._index(args[1]))
        if fn == "sum":
            if len(args) < 2 or kws:
                raise self.fail(node, "sum() takes a body and its summation index letter(s), "
                                      "e.g. sum(W[k,j]*x[k], k)")
            body = self.build(args[0], depth + 1)
            out = body
            for a in args[1:]:
                k = self._index(a)
                dims = {u.dim for u in self.uses.get(k.name, [])}
                if not dims:
                    raise self.fail(a, f"sum(): index '{k.name}' subscripts no array, so its range "
                                       "is unknown")
                if len(dims) > 1:
                    raise self.fail(a, f"sum(): index '{k.name}' runs over axes of different "
                                       f"sizes ({', '.join(sorted(map(str, dims)))})")
                out = sp.Sum(out, (k, 0, dim_symbol(dims.pop()) - 1))
                self.bound.add(k.name)
            return out
        if fn == "where":
            if len(args) != 3 or kws:
                raise self.fail(node, "where() takes a condition and two values")
            cond = args[0]
            if not (isinstance(cond, ast.Compare) and len(cond.ops) == 1 and type(cond.ops[0]) in _CMP):
                raise self.fail(cond, "where() needs a comparison such as x[i] > 0 as its condition")
            rel = CMP[_CMP[type(cond.ops[0])]](self.build(cond.left, depth + 1),
                                               self.build(cond.comparators[0], depth + 1))
            return Where(rel, self.build(args[1], depth + 1), self.build(args[2], depth + 1))
        if fn in ELEMENTWISE:
            names = ELEMENTWISE[fn].param_names
            if not 1 <= len(args) <= 1 + len(names) or set(kws) - set(names):
                raise self.fail(node, f"{fn}() takes one argument"
                                      f"{' and ' + ', '.join(names) if names else ''}")
            x = self.build(args[0], depth + 1)
            params = []
            for j, pname in enumerate(names):
                if 1 + j < len(args):
                    params.append(self.build(args[1 + j], depth + 1))
                elif pname in kws:
                    params.append(self.build(kws[pname], depth + 1))
                else:
                    params.append(sp.Float(ELEMENTWISE[fn].defaults[pname]))
            return opaque(elementwise.definition(fn, x, tuple(params)))
        raise self.fail(node, f"unknown function '{fn}'",
                        f"allowed: {', '.join(sorted((*ELEMENTWISE, 'delta', 'sum', 'where')))}")
