"""derivkit's typed expression IR: NumPy semantics on arrays of rank <= 4 with symbolic shapes.

Nodes are frozen dataclasses compared structurally (equal subtrees are the same value). Build
them through the constructor functions below (`add`, `matmul`, ...), which check and infer
shapes and raise `ShapeError` with both operands' shapes. The IR imports no SymPy or NumPy:
backends (printing, index form, explicit evaluation, NumPy lowering) walk it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import Field, dataclass, fields
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar, overload

from ..errors import ShapeError
from .shapes import MAX_RANK, Dim, Shape, broadcast, fmt_shape


class Node:
    shape: Shape
    if TYPE_CHECKING:  # every concrete node is a dataclass
        __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def args(self) -> tuple[Node, ...]:
        return tuple(getattr(self, f.name) for f in fields(self) if f.name in self._children)

    _children: tuple[str, ...] = ()

    def with_args(self, *new: Node) -> Node:
        """The same operation on new operands (shape re-inferred)."""
        raise NotImplementedError

    @property
    def rank(self) -> int:
        return len(self.shape)


# ---------------------------------------------------------------- leaves
@dataclass(frozen=True)
class Var(Node):
    """A named array. role: input | param | upstream | named (an output or intermediate)."""

    name: str
    shape: Shape
    role: str = "input"

    def with_args(self, *new: Node) -> Node:
        return self


@dataclass(frozen=True)
class NamedNumber:
    """An irrational constant of the language, kept exact by name: pi, e (NumPy's np.pi, np.e)."""

    name: str

    VALUES: ClassVar[dict[str, float]] = {"pi": math.pi, "e": math.e}

    def __float__(self) -> float:
        return self.VALUES[self.name]


@dataclass(frozen=True)
class Const(Node):
    value: Fraction | float | NamedNumber
    shape: Shape = ()

    def with_args(self, *new: Node) -> Node:
        return self


@dataclass(frozen=True)
class DimSize(Node):
    """A dimension name used as a number (e.g. `n` in `sum(x) / n`)."""

    name: str
    shape: Shape = ()

    def with_args(self, *new: Node) -> Node:
        return self


@dataclass(frozen=True)
class Eye(Node):
    n: Dim
    shape: Shape

    def with_args(self, *new: Node) -> Node:
        return self


@dataclass(frozen=True)
class Ones(Node):
    shape: Shape

    def with_args(self, *new: Node) -> Node:
        return self


# ---------------------------------------------------------------- operations
@dataclass(frozen=True)
class Binary(Node):
    """Elementwise + - * / ** with NumPy broadcasting."""

    op: str
    a: Node
    b: Node
    shape: Shape
    _children = ("a", "b")

    def with_args(self, *new: Node) -> Node:
        a, b = new
        return binary(self.op, a, b)


@dataclass(frozen=True)
class Neg(Node):
    a: Node
    shape: Shape
    _children = ("a",)

    def with_args(self, *new: Node) -> Node:
        (a,) = new
        return neg(a)


@dataclass(frozen=True)
class MatMul(Node):
    a: Node
    b: Node
    shape: Shape
    _children = ("a", "b")

    def with_args(self, *new: Node) -> Node:
        a, b = new
        return matmul(a, b)


@dataclass(frozen=True)
class Transpose(Node):
    """The matrix transpose: the last two axes swapped (NumPy's `.mT`; `.T` of a matrix); a
    stack of matrices is transposed matrix by matrix, a vector is left as it is."""

    a: Node
    shape: Shape
    _children = ("a",)

    def with_args(self, *new: Node) -> Node:
        (a,) = new
        return transpose(a)


@dataclass(frozen=True)
class Permute(Node):
    """np.transpose(a, axes): axis k of the result is axis axes[k] of `a` (rank >= 3, and
    neither the identity nor the swap of the last two axes, which is `Transpose`)."""

    a: Node
    axes: tuple[int, ...]
    shape: Shape
    _children = ("a",)

    def with_args(self, *new: Node) -> Node:
        (a,) = new
        return permute(a, self.axes)


@dataclass(frozen=True)
class Reshape(Node):
    """np.reshape(a, shape) in C order, between shapes of the same symbolic size; `products`
    are the declared dimensions (e = h·d) the sizes agree by, which fix their size."""

    a: Node
    shape: Shape
    products: tuple[tuple[str, tuple[Dim, ...]], ...] = ()
    _children = ("a",)

    def with_args(self, *new: Node) -> Node:
        (a,) = new
        return Reshape(a, self.shape, self.products)


@dataclass(frozen=True)
class Apply(Node):
    """An elementwise function from derivkit.lang.ops (exp, log, relu, ...)."""

    fn: str
    a: Node
    params: tuple[Node, ...]
    shape: Shape
    _children = ("a",)

    @property
    def args(self) -> tuple[Node, ...]:
        return (self.a, *self.params)

    def with_args(self, *new: Node) -> Node:
        a, *params = new
        return apply(self.fn, a, tuple(params))


@dataclass(frozen=True)
class Compare(Node):
    op: str  # > >= < <=
    a: Node
    b: Node
    shape: Shape
    _children = ("a", "b")

    def with_args(self, *new: Node) -> Node:
        a, b = new
        return compare(self.op, a, b)


@dataclass(frozen=True)
class Where(Node):
    cond: Node
    a: Node
    b: Node
    shape: Shape
    _children = ("cond", "a", "b")

    def with_args(self, *new: Node) -> Node:
        cond, a, b = new
        return where(cond, a, b)


@dataclass(frozen=True)
class Sum(Node):
    a: Node
    axis: int | None
    keepdims: bool
    shape: Shape
    _children = ("a",)

    def with_args(self, *new: Node) -> Node:
        (a,) = new
        return sum_(a, self.axis, self.keepdims)


@dataclass(frozen=True)
class Extreme(Node):
    """max or min (`fn`) of `a` over `axis` (all of it when None), as NumPy's np.max / np.min."""

    fn: str
    a: Node
    axis: int | None
    keepdims: bool
    shape: Shape
    _children = ("a",)

    def with_args(self, *new: Node) -> Node:
        (a,) = new
        return extreme(self.fn, a, self.axis, self.keepdims)


@dataclass(frozen=True)
class OneHot(Node):
    """one_hot(y, k): y's entries (integer labels in [0, k), or one integer constant) as rows of
    the k×k identity; shape y.shape + (k,). Piecewise constant: never differentiated."""

    a: Node
    k: Dim
    shape: Shape
    _children = ("a",)

    def with_args(self, *new: Node) -> Node:
        (a,) = new
        return one_hot(a, self.k)


@dataclass(frozen=True)
class Trace(Node):
    a: Node
    shape: Shape = ()
    _children = ("a",)

    def with_args(self, *new: Node) -> Node:
        (a,) = new
        return trace(a)


@dataclass(frozen=True)
class Det(Node):
    a: Node
    shape: Shape = ()
    _children = ("a",)

    def with_args(self, *new: Node) -> Node:
        (a,) = new
        return det(a)


@dataclass(frozen=True)
class Inv(Node):
    a: Node
    shape: Shape
    _children = ("a",)

    def with_args(self, *new: Node) -> Node:
        (a,) = new
        return inv(a)


@dataclass(frozen=True)
class Diag(Node):
    """NumPy diag: vector -> diagonal matrix, square matrix -> its diagonal."""

    a: Node
    shape: Shape
    _children = ("a",)

    def with_args(self, *new: Node) -> Node:
        (a,) = new
        return diag(a)


@dataclass(frozen=True)
class Outer(Node):
    a: Node
    b: Node
    shape: Shape
    _children = ("a", "b")

    def with_args(self, *new: Node) -> Node:
        a, b = new
        return outer(a, b)


@dataclass(frozen=True)
class Broadcast(Node):
    """`a` broadcast (NumPy rules) to `shape`."""

    a: Node
    shape: Shape
    _children = ("a",)

    def with_args(self, *new: Node) -> Node:
        (a,) = new
        return broadcast_to(a, self.shape)


@dataclass(frozen=True)
class ExpandDims(Node):
    a: Node
    axis: int
    shape: Shape
    _children = ("a",)

    def with_args(self, *new: Node) -> Node:
        (a,) = new
        return expand_dims(a, self.axis)


@dataclass(frozen=True)
class Macro(Node):
    """A named function defined by an expansion (softmax, mean): printed by name,
    differentiated and evaluated through `expansion`."""

    fn: str
    operands: tuple[Node, ...]
    kwargs: tuple[tuple[str, object], ...]
    expansion: Node
    shape: Shape

    @property
    def args(self) -> tuple[Node, ...]:
        return (self.expansion,)

    def with_args(self, *new: Node) -> Node:
        (expansion,) = new
        return Macro(self.fn, self.operands, self.kwargs, expansion, expansion.shape)


# ---------------------------------------------------------------- constructors
def const(value: int | Fraction | float) -> Const:
    if isinstance(value, bool):
        raise TypeError("bool is not a number here")
    if isinstance(value, int):
        return Const(Fraction(value))
    if isinstance(value, Fraction):
        return Const(value)
    return Const(float(value))


ZERO = Const(Fraction(0))
ONE = Const(Fraction(1))
PI = Const(NamedNumber("pi"))
E = Const(NamedNumber("e"))
NAMED_NUMBERS = {"pi": PI, "e": E}


def is_const(node: Node, value: int | Fraction | float | None = None) -> bool:
    return isinstance(node, Const) and (value is None or node.value == value)


def binary(op: str, a: Node, b: Node) -> Node:
    if op not in ("+", "-", "*", "/", "**"):
        raise ValueError(op)
    return Binary(op, a, b, broadcast(a.shape, b.shape, what=f"'{op}'"))


def add(a: Node, b: Node) -> Node:
    return binary("+", a, b)


def sub(a: Node, b: Node) -> Node:
    return binary("-", a, b)


def mul(a: Node, b: Node) -> Node:
    return binary("*", a, b)


def div(a: Node, b: Node) -> Node:
    return binary("/", a, b)


def power(a: Node, b: Node) -> Node:
    return binary("**", a, b)


def neg(a: Node) -> Node:
    return Neg(a, a.shape)


def matmul(a: Node, b: Node) -> Node:
    """a @ b as NumPy's matmul: the last two axes are matrices, leading axes are a batch
    (broadcast); a vector operand is a row (left) or a column (right), its axis then dropped."""
    if a.rank == 0 or b.rank == 0:
        raise ShapeError(f"'@' needs vectors or matrices, got {fmt_shape(a.shape)} @ {fmt_shape(b.shape)}",
                         "use '*' to multiply by a scalar")
    ka = a.shape[-1]
    kb = b.shape[0] if b.rank == 1 else b.shape[-2]
    if ka != kb:
        raise ShapeError(f"shapes do not fit for '@': {fmt_shape(a.shape)} @ {fmt_shape(b.shape)} "
                         f"({ka} ≠ {kb})")
    shape: Shape = ()
    if a.rank == 1 and b.rank == 1:
        pass
    elif a.rank == 1:
        shape = b.shape[:-2] + b.shape[-1:]
    elif b.rank == 1:
        shape = a.shape[:-1]
    else:
        try:
            batch = broadcast(a.shape[:-2], b.shape[:-2], what="the batch axes of '@'")
        except ShapeError as exc:
            raise ShapeError(f"{exc.template}, in {fmt_shape(a.shape)} @ {fmt_shape(b.shape)}",
                             "the axes before the last two must be equal or 1 (NumPy's "
                             "broadcasting)") from None
        shape = batch + (a.shape[-2], b.shape[-1])
    return MatMul(a, b, shape)


def transpose(a: Node) -> Node:
    """The matrix transpose (last two axes swapped; a vector as it is)."""
    if a.rank < 2:
        return Transpose(a, a.shape)
    return Transpose(a, a.shape[:-2] + (a.shape[-1], a.shape[-2]))


def permute(a: Node, axes: tuple[int, ...] | list[int]) -> Node:
    """np.transpose(a, axes) (axes a permutation of 0..rank-1): `a` itself for the identity,
    the matrix transpose where only the last two axes swap."""
    order = tuple(axes)
    if sorted(order) != list(range(a.rank)):
        raise ShapeError(f"transpose: axes {order} are not a permutation of the {a.rank} axes")
    identity = tuple(range(a.rank))
    if order == identity:
        return a
    if a.rank >= 2 and order == identity[:-2] + (a.rank - 1, a.rank - 2):
        return transpose(a)
    if isinstance(a, Permute):   # two permutations are one
        return permute(a.a, tuple(a.axes[k] for k in order))
    return Permute(a, order, tuple(a.shape[k] for k in order))


def inverse_axes(axes: tuple[int, ...]) -> tuple[int, ...]:
    """The permutation undoing `axes`: permute(permute(a, axes), inverse_axes(axes)) is a."""
    out = [0] * len(axes)
    for k, ax in enumerate(axes):
        out[ax] = k
    return tuple(out)


def reshape(a: Node, shape: Shape, products: dict[str, tuple[Dim, ...]] | None = None) -> Node:
    """np.reshape(a, shape): the sizes must agree symbolically, with each dimension declared a
    product in `products` (e = h·d) counted as its factors."""
    shape = tuple(shape)
    if a.shape == shape:
        return a
    products = products or {}
    if _factors(a.shape, products) != _factors(shape, products):
        raise ShapeError(f"reshape: {fmt_shape(a.shape)} and {fmt_shape(shape)} do not have the "
                         "same size", "declare a dimension as a product where one splits into "
                         "two (a recipe's [dims] e = \"h*d\")")
    used = sorted(d for d in {*a.shape, *shape} if isinstance(d, str) and d in products)
    return Reshape(a, shape, tuple((d, tuple(products[d])) for d in used))


def size_products(roots: list[Node]) -> dict[str, tuple[Dim, ...]]:
    """{dimension: its factors} for every declared product a reshape in `roots` relies on."""
    return {d: f for root in roots for n in walk(root) if isinstance(n, Reshape)
            for d, f in n.products}


def free_dims(dims: list[str], products: dict[str, tuple[Dim, ...]]) -> list[str]:
    """The dimensions whose sizes are chosen: `dims` but the declared products, with their factors."""
    return sorted({d for d in dims if d not in products}
                  | {f for fs in products.values() for f in fs if isinstance(f, str)})


def with_products(sizes: dict[str, int], products: dict[str, tuple[Dim, ...]]) -> dict[str, int]:
    """`sizes` with each declared product set to the product of its factors' sizes."""
    out = dict(sizes)
    for d, factors in products.items():
        value = 1
        for f in factors:
            value *= f if isinstance(f, int) else out[f]
        out[d] = value
    return out


def _factors(shape: Shape, products: dict[str, tuple[Dim, ...]]) -> tuple[int, tuple[str, ...]]:
    """A shape's size as (its integer factor, its named factors sorted), products expanded."""
    number, names = 1, []
    stack = list(shape)
    while stack:
        d = stack.pop()
        if isinstance(d, int):
            number *= d
        elif d in products:
            stack.extend(products[d])
        else:
            names.append(d)
    return number, tuple(sorted(names))


def apply(fn: str, a: Node, params: tuple[Node, ...] = ()) -> Node:
    for p in params:
        if p.rank:
            raise ShapeError(f"the parameter of {fn} must be a scalar, got {fmt_shape(p.shape)}")
    return Apply(fn, a, tuple(params), a.shape)


def compare(op: str, a: Node, b: Node) -> Node:
    return Compare(op, a, b, broadcast(a.shape, b.shape, what=f"'{op}'"))


def where(cond: Node, a: Node, b: Node) -> Node:
    shape = broadcast(broadcast(cond.shape, a.shape, what="where"), b.shape, what="where")
    return Where(cond, a, b, shape)


@overload
def axis_index(axis: int, rank: int, fn: str) -> int: ...
@overload
def axis_index(axis: None, rank: int, fn: str) -> None: ...
def axis_index(axis: int | None, rank: int, fn: str) -> int | None:
    """`axis` (NumPy's, negative from the end) as 0..rank-1, or a ShapeError naming `fn`."""
    if axis is None:
        return None
    if not -rank <= axis < rank:
        raise ShapeError(f"{fn}: axis {axis} is out of range for an array of rank {rank}")
    return axis % rank


def sum_(a: Node, axis: int | None = None, keepdims: bool = False, *, what: str = "sum") -> Node:
    """Σ a over `axis` (all of it when None); `what` names the function in an axis error."""
    ax = axis_index(axis, a.rank, what)
    if ax is None:
        shape: Shape = tuple(1 for _ in a.shape) if keepdims else ()
    else:
        shape = tuple((1 if i == ax else d) for i, d in enumerate(a.shape)) if keepdims else \
            tuple(d for i, d in enumerate(a.shape) if i != ax)
    return Sum(a, ax, keepdims, shape)


def extreme(fn: str, a: Node, axis: int | None = None, keepdims: bool = False) -> Node:
    """max(a) or min(a) (`fn`) over `axis`, shaped as `sum_` over it."""
    if fn not in ("max", "min"):
        raise ValueError(fn)
    if a.rank == 0:
        raise ShapeError(f"{fn}() needs a vector or a matrix, got a scalar",
                         "use maximum(a, b) for the larger of two values")
    reduced = sum_(a, axis, keepdims, what=fn)
    assert isinstance(reduced, Sum)
    return Extreme(fn, a, reduced.axis, keepdims, reduced.shape)


def one_hot(a: Node, k: Dim) -> Node:
    if a.rank > 1:
        raise ShapeError(f"one_hot() takes a scalar or a vector of labels, got {fmt_shape(a.shape)}")
    if isinstance(a, Const) and isinstance(k, int) and float(a.value) >= k:
        raise ShapeError(f"label {float(a.value):g} is out of range for {k} entries",
                         f"labels lie in 0..{k - 1}")
    return OneHot(a, k, tuple(a.shape) + (k,))


def label_bounds(roots: list[Node]) -> dict[str, tuple[Dim, ...]]:
    """{integer input: the k of every one_hot it is given to}: its labels lie in [0, min k)."""
    out: dict[str, tuple[Dim, ...]] = {}
    for root in roots:
        for n in walk(root):
            if isinstance(n, OneHot) and isinstance(n.a, Var) and n.k not in out.get(n.a.name, ()):
                out[n.a.name] = out.get(n.a.name, ()) + (n.k,)
    return out


def label_classes(bounds: dict[str, tuple[Dim, ...]], name: str, sizes: dict[str, int]) -> int:
    """How many classes labels `name` may take at `sizes` (`label_bounds`): below every one_hot
    it is given to (2 where it is given to none)."""
    return min(k if isinstance(k, int) else sizes[k] for k in bounds.get(name, (2,)))


def minimum_sizes(roots: list[Node]) -> dict[str, int]:
    """{dimension: its least size}: z[2] of a vector of n entries needs n ≥ 3."""
    out: dict[str, int] = {}
    for root in roots:
        for n in walk(root):
            if isinstance(n, OneHot) and isinstance(n.k, str) and isinstance(n.a, Const):
                out[n.k] = max(out.get(n.k, 1), int(float(n.a.value)) + 1)
    return out


def _square(a: Node, fn: str) -> Dim:
    if a.rank != 2 or a.shape[0] != a.shape[1]:
        raise ShapeError(f"{fn} needs a square matrix, got {fmt_shape(a.shape)}")
    return a.shape[0]


def trace(a: Node) -> Node:
    _square(a, "trace")
    return Trace(a)


def det(a: Node) -> Node:
    _square(a, "det")
    return Det(a)


def inv(a: Node) -> Node:
    _square(a, "inv")
    return Inv(a, a.shape)


def diag(a: Node) -> Node:
    if a.rank == 1:
        return Diag(a, (a.shape[0], a.shape[0]))
    if a.rank == 2:
        n = _square(a, "diag")
        return Diag(a, (n,))
    raise ShapeError("diag needs a vector or a square matrix, got a scalar")


def outer(a: Node, b: Node) -> Node:
    if a.rank != 1 or b.rank != 1:
        raise ShapeError(f"outer needs two vectors, got {fmt_shape(a.shape)} and {fmt_shape(b.shape)}")
    return Outer(a, b, (a.shape[0], b.shape[0]))


def eye(n: Dim) -> Node:
    return Eye(n, (n, n))


def ones(shape: Shape) -> Node:
    return Ones(tuple(shape))


def broadcast_to(a: Node, shape: Shape) -> Node:
    if a.shape == tuple(shape):
        return a
    if broadcast(a.shape, shape, what="broadcast") != tuple(shape):
        raise ShapeError(f"cannot broadcast {fmt_shape(a.shape)} to {fmt_shape(shape)}")
    return Broadcast(a, tuple(shape))


def expand_dims(a: Node, axis: int) -> Node:
    if not 0 <= axis <= a.rank or a.rank >= MAX_RANK:
        raise ShapeError(f"expand_dims: axis {axis} does not fit an array of rank {a.rank}")
    shape = a.shape[:axis] + (1,) + a.shape[axis:]
    return ExpandDims(a, axis, shape)


def macro(fn: str, operands: tuple[Node, ...], expansion: Node,
          kwargs: tuple[tuple[str, object], ...] = ()) -> Node:
    return Macro(fn, tuple(operands), tuple(kwargs), expansion, expansion.shape)


# ---------------------------------------------------------------- traversal
def postorder(roots: list[Node], children: Callable[[Node], tuple[Node, ...]] | None = None
              ) -> list[Node]:
    """Every distinct subtree of `roots`, children before parents, where `children(n)` are the
    subtrees of n to visit (default: its operands, a macro's expansion)."""
    kids = children or (lambda n: n.args)
    seen: set[Node] = set()
    post: list[Node] = []
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        n, expanded = stack.pop()
        if expanded:
            post.append(n)
            continue
        if n in seen:
            continue
        seen.add(n)
        stack.append((n, True))
        stack.extend((c, False) for c in reversed(kids(n)) if c not in seen)
    return post


def walk(node: Node) -> list[Node]:
    """Every distinct subtree, children before parents (post-order, deduplicated)."""
    return postorder([node])


def printed_children(n: Node) -> tuple[Node, ...]:
    """The operands a form shows (a macro shows its operands, not its expansion)."""
    return n.operands if isinstance(n, Macro) else n.args


#: nodes that are not operations when counting a form's length (leaves; broadcasting, which
#: NumPy does implicitly)
_FREE = (Var, Const, DimSize, Eye, Ones, Broadcast, ExpandDims)


def operations(node: Node) -> int:
    """The length of a form in operations (calls, operators, transposes, reductions), each
    distinct subexpression counted once, as a person names a value used twice; a named
    function (softmax, mean) is one operation whatever its definition."""
    return sum(not isinstance(n, _FREE) for n in postorder([node], printed_children))


def depends_on(node: Node, var: Node) -> bool:
    return any(n == var for n in walk(node))


def dims_used(node: Node) -> set[str]:
    out: set[str] = set()
    for n in walk(node):
        out.update(d for d in n.shape if isinstance(d, str))
        if isinstance(n, DimSize):
            out.add(n.name)
    return out


def substitute(node: Node, mapping: dict[Node, Node]) -> Node:
    """Replace subtrees (structural match), rebuilding parents bottom-up."""
    memo: dict[Node, Node] = {}

    def go(n: Node) -> Node:
        if n in mapping:
            return mapping[n]
        if n in memo:
            return memo[n]
        out: Node
        if isinstance(n, Macro):   # operands (printed) and expansion (evaluated) alike
            ops, expansion = tuple(go(o) for o in n.operands), go(n.expansion)
            out = (n if ops == n.operands and expansion == n.expansion
                   else Macro(n.fn, ops, n.kwargs, expansion, expansion.shape))
        elif not n.args:
            out = n
        else:
            args = n.args
            new = tuple(go(c) for c in args)
            out = n if new == args else n.with_args(*new)
        memo[n] = out
        return out

    return go(node)


def count_ops(node: Node) -> int:
    """Size of the tree counted with repetition (what a reader sees); iterative, so a deep
    tree cannot exhaust the stack."""
    total, stack = 0, [node]
    while stack:
        n = stack.pop()
        total += 1
        stack.extend(n.operands if isinstance(n, Macro) else n.args)
    return total


# ---------------------------------------------------------------- hashing
def _cache_hash(cls: type[Node]) -> None:
    """Nodes are compared structurally; a shared subtree (softmax's exp(x) used twice) would
    make the dataclass hash exponential in the nesting depth. Each node keeps its hash."""
    structural = cls.__hash__

    def __hash__(self: object) -> int:
        try:
            return self.__dict__["_hash"]
        except KeyError:
            value = structural(self)
            object.__setattr__(self, "_hash", value)
            return value

    cls.__hash__ = __hash__  # type: ignore[method-assign]


for _cls in Node.__subclasses__():
    _cache_hash(_cls)
