"""Printers for the IR: the expression language (NumPy syntax, parses back), Unicode for
people (Xᵀ G, p ⊙ (g − ⟨g, p⟩), diag(p) − p pᵀ) and LaTeX. One method per node kind."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any, ClassVar, TypeGuard

from . import ir
from .ops import BY_NODE, ELEMENTWISE, render

# precedence: higher binds tighter
ADD, MUL, NEG, POW, POSTFIX, ATOM = 10, 20, 30, 40, 50, 60
PRECEDENCE = {"mul": MUL, "postfix": POSTFIX, "atom": ATOM}

GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "lam": "λ", "lambda": "λ",
         "mu": "μ", "sigma": "σ", "tau": "τ", "eps": "ε", "epsilon": "ε", "theta": "θ"}
SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
CMP_PRETTY = {">": ">", ">=": "≥", "<": "<", "<=": "≤", "==": "="}
CMP_LATEX = {">": ">", ">=": r"\geq", "<": "<", "<=": r"\leq", "==": "="}


def shape_tuple(shape: ir.Shape) -> str:
    """A shape as a Python tuple literal of its dims: (m, n), (n,)."""
    dims = [str(d) for d in shape]
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


def reduction_keywords(axis: int | None, keepdims: bool) -> str:
    """', axis=1, keepdims=True' for a reduction's call: the keywords not at their defaults."""
    return ("" if axis is None else f", axis={axis}") + (", keepdims=True" if keepdims else "")


def terminating(q: int) -> bool:
    """1/q is a terminating decimal (q's only prime factors are 2 and 5)."""
    for p in (2, 5):
        while q % p == 0:
            q //= p
    return q == 1


def fmt_number(value: Fraction | float | ir.NamedNumber) -> str:
    """Integers as integers, terminating fractions as decimals (0.01), others as p/q; pi, e by
    name."""
    if isinstance(value, ir.NamedNumber):
        return value.name
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        if terminating(value.denominator):
            from decimal import Decimal
            text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
            return text
        return f"{value.numerator}/{value.denominator}"
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


class _Printer:
    """Base: returns (text, precedence)."""

    def __call__(self, node: ir.Node) -> str:
        return self.p(node)[0]

    def p(self, node: ir.Node) -> tuple[str, int]:
        return self.RULES[type(node)](self, node)

    def template(self, n: ir.Node, rule: tuple[str, str]) -> tuple[str, int]:
        """A matrix function's (template, precedence) from the op table, filled in."""
        template, prec = rule
        values: dict[str, str] = {}
        for name, operand in zip("ab", n.args):
            text, q = self.p(operand)          # printed once, used plain or bracketed
            values[name] = text
            values[f"{name}_postfix"] = self.bracket(text, q, POSTFIX)
        return template.format(**values), PRECEDENCE[prec]

    def elementwise(self, n: ir.Apply, template: str) -> tuple[str, int]:
        """An elementwise function by its op-table template (the argument printed once)."""
        x, q = self.p(n.a)
        return render(template, ELEMENTWISE[n.fn], x, [self(p) for p in n.params],
                      x_atom=self.bracket(x, q, ATOM)), ATOM

    def wrap(self, node: ir.Node, prec: int, strict: bool = False) -> str:
        return self.bracket(*self.p(node), prec, strict)

    def bracket(self, text: str, q: int, prec: int, strict: bool = False) -> str:
        """`text` (of precedence q) in parentheses where it binds less tightly than `prec`."""
        if q < prec or (strict and q == prec):
            return self.paren(text)
        return text

    def paren(self, text: str) -> str:
        return f"({text})"

    def _Macro(self, n: ir.Macro) -> tuple[str, int]:
        if n.fn == "take":   # NumPy's integer indexing
            x, labels = n.operands
            rows = f"arange({x.shape[0]}), " if x.rank == 2 else ""
            return f"{self.wrap(x, POSTFIX, strict=False)}[{rows}{self(labels)}]", POSTFIX
        args = [self(a) for a in n.operands] + [f"{k}={v}" for k, v in n.kwargs]
        return f"{self.fn_name(n.fn)}({', '.join(args)})", ATOM

    def fn_name(self, fn: str) -> str:
        return fn

    def _Extreme(self, n: ir.Extreme) -> tuple[str, int]:
        extra = reduction_keywords(n.axis, n.keepdims)
        return f"{n.fn}({self(n.a)}{extra})", ATOM

    def _OneHot(self, n: ir.OneHot) -> tuple[str, int]:
        return f"{self.fn_name('one_hot')}({self(n.a)}, {n.k})", ATOM

    def _Permute(self, n: ir.Permute) -> tuple[str, int]:
        return f"{self.fn_name('transpose')}({self(n.a)}, {n.axes})", ATOM

    def _Reshape(self, n: ir.Reshape) -> tuple[str, int]:
        return f"{self.fn_name('reshape')}({self(n.a)}, {shape_tuple(n.shape)})", ATOM

    #: node type -> its rule (explicit dispatch; tests check every node type is covered)
    RULES: ClassVar[dict[type, Callable[..., Any]]] = {
        ir.Macro: _Macro,
        ir.Extreme: _Extreme,
        ir.OneHot: _OneHot,
        ir.Permute: _Permute,
        ir.Reshape: _Reshape,
    }


class LanguagePrinter(_Printer):
    """derivkit's expression language; `parse(print(e))` rebuilds `e` (up to macros)."""

    def _Var(self, n: ir.Var) -> tuple[str, int]:
        return n.name, ATOM

    def _Const(self, n: ir.Const) -> tuple[str, int]:
        text = fmt_number(n.value)
        if "/" in text:
            return text.replace("/", " / "), MUL
        return text, (NEG if text.startswith("-") else ATOM)

    def _DimSize(self, n: ir.DimSize) -> tuple[str, int]:
        return n.name, ATOM

    def _Eye(self, n: ir.Eye) -> tuple[str, int]:
        return f"eye({n.n})", ATOM

    def _Ones(self, n: ir.Ones) -> tuple[str, int]:
        return f"ones({', '.join(str(d) for d in n.shape)})", ATOM

    def _Binary(self, n: ir.Binary) -> tuple[str, int]:
        op = n.op
        if op in "+-":
            return f"{self.wrap(n.a, ADD)} {op} {self.wrap(n.b, ADD, strict=True)}", ADD
        if op in "*/":
            return f"{self.wrap(n.a, MUL)} {op} {self.wrap(n.b, MUL, strict=True)}", MUL
        return f"{self.wrap(n.a, POW, strict=True)}**{self.wrap(n.b, POW)}", POW

    def _Neg(self, n: ir.Neg) -> tuple[str, int]:
        return f"-{self.wrap(n.a, NEG)}", NEG

    def _MatMul(self, n: ir.MatMul) -> tuple[str, int]:
        return f"{self.wrap(n.a, MUL)} @ {self.wrap(n.b, MUL, strict=True)}", MUL

    def _Transpose(self, n: ir.Transpose) -> tuple[str, int]:
        """`.T` of a matrix; `.mT` of a stack of matrices (NumPy's `.T` reverses every axis)."""
        return f"{self.wrap(n.a, POSTFIX)}.{'mT' if n.rank > 2 else 'T'}", POSTFIX

    def _Apply(self, n: ir.Apply) -> tuple[str, int]:
        args = [self(n.a)] + [self(p) for p in n.params]
        return f"{n.fn}({', '.join(args)})", ATOM

    def _Compare(self, n: ir.Compare) -> tuple[str, int]:
        return f"{self.wrap(n.a, ADD)} {n.op} {self.wrap(n.b, ADD)}", 5

    def _Where(self, n: ir.Where) -> tuple[str, int]:
        return f"where({self(n.cond)}, {self(n.a)}, {self(n.b)})", ATOM

    def _Sum(self, n: ir.Sum) -> tuple[str, int]:
        extra = reduction_keywords(n.axis, n.keepdims)
        return f"sum({self(n.a)}{extra})", ATOM


    def _matrix_op(self, n: ir.Node) -> tuple[str, int]:
        return BY_NODE[type(n)].language([self(a) for a in n.args]), ATOM

    def _Broadcast(self, n: ir.Broadcast) -> tuple[str, int]:
        ones = f"ones({', '.join(str(d) for d in n.shape)})"
        if ir.is_const(n.a, 1):
            return ones, ATOM
        return f"{self.wrap(n.a, MUL)} * {ones}", MUL

    def _ExpandDims(self, n: ir.ExpandDims) -> tuple[str, int]:
        return f"expand_dims({self(n.a)}, {n.axis})", ATOM

    #: node type -> its rule (explicit dispatch; tests check every node type is covered)
    RULES: ClassVar[dict[type, Callable[..., Any]]] = {**_Printer.RULES,
        ir.Var: _Var,
        ir.Const: _Const,
        ir.DimSize: _DimSize,
        ir.Eye: _Eye,
        ir.Ones: _Ones,
        ir.Binary: _Binary,
        ir.Neg: _Neg,
        ir.MatMul: _MatMul,
        ir.Transpose: _Transpose,
        ir.Apply: _Apply,
        ir.Compare: _Compare,
        ir.Where: _Where,
        ir.Sum: _Sum,
        ir.Trace: _matrix_op,
        ir.Det: _matrix_op,
        ir.Inv: _matrix_op,
        ir.Diag: _matrix_op,
        ir.Outer: _matrix_op,
        ir.Broadcast: _Broadcast,
        ir.ExpandDims: _ExpandDims,
    }


def _is_vector_product(n: ir.Node) -> TypeGuard[ir.Binary]:
    return (isinstance(n, ir.Binary) and n.op == "*" and n.a.rank == 1 and n.b.rank == 1)


class PrettyPrinter(_Printer):
    """Unicode for a terminal: juxtaposition for @, ⊙ for elementwise products of arrays."""

    def name(self, text: str) -> str:
        return GREEK.get(text, text)

    def _Var(self, n: ir.Var) -> tuple[str, int]:
        return self.name(n.name), ATOM

    def _Const(self, n: ir.Const) -> tuple[str, int]:
        if isinstance(n.value, ir.NamedNumber):
            return {"pi": "π"}.get(n.value.name, n.value.name), ATOM
        text = fmt_number(n.value).replace("-", "−")
        if "/" in text:
            return text, MUL
        return text, (NEG if text.startswith("−") else ATOM)

    def _DimSize(self, n: ir.DimSize) -> tuple[str, int]:
        return self.name(n.name), ATOM

    def _Eye(self, n: ir.Eye) -> tuple[str, int]:
        return "I", ATOM

    def _Ones(self, n: ir.Ones) -> tuple[str, int]:
        return "𝟙", ATOM

    def _Binary(self, n: ir.Binary) -> tuple[str, int]:
        op = n.op
        if op in "+-":
            sym = "+" if op == "+" else "−"
            return f"{self.wrap(n.a, ADD)} {sym} {self.wrap(n.b, ADD, strict=True)}", ADD
        if op == "*":
            if n.a.rank and n.b.rank:
                a = self.paren(self(n.a)) if isinstance(n.a, ir.MatMul) else self.wrap(n.a, MUL)
                b = self.paren(self(n.b)) if isinstance(n.b, ir.MatMul) else \
                    self.wrap(n.b, MUL, strict=True)
                return f"{a} ⊙ {b}", MUL
            left, right = self.wrap(n.a, MUL), self.wrap(n.b, MUL, strict=True)
            if isinstance(n.a, ir.Const) and not right.startswith(("−", "-")):
                return f"{left} {right}" if right.startswith("(") else f"{left}·{right}", MUL
            return f"{left}·{right}", MUL
        if op == "/":
            return f"{self.wrap(n.a, MUL)} / {self.wrap(n.b, MUL, strict=True)}", MUL
        if isinstance(n.b, ir.Const) and isinstance(n.b.value, Fraction) and n.b.value.denominator == 1:
            return f"{self.wrap(n.a, POW, strict=True)}{str(n.b.value.numerator).translate(SUPERSCRIPT)}", POW
        return f"{self.wrap(n.a, POW, strict=True)}^{self.wrap(n.b, POW)}", POW

    def _Neg(self, n: ir.Neg) -> tuple[str, int]:
        return f"−{self.wrap(n.a, NEG)}", NEG

    def _MatMul(self, n: ir.MatMul) -> tuple[str, int]:
        return f"{self._operand(n.a)} {self._operand(n.b, strict=True)}", MUL

    def _operand(self, x: ir.Node, strict: bool = False) -> str:
        """⊙ and juxtaposition share a precedence; never leave a reader to guess which binds."""
        if isinstance(x, ir.Binary) and x.op in "*/" and x.a.rank and x.b.rank:
            return self.paren(self(x))
        return self.wrap(x, MUL, strict)

    def _Transpose(self, n: ir.Transpose) -> tuple[str, int]:
        if isinstance(n.a, ir.Inv):
            return f"{self.wrap(n.a.a, POSTFIX)}⁻ᵀ", POSTFIX
        return f"{self.wrap(n.a, POSTFIX)}ᵀ", POSTFIX

    def _Apply(self, n: ir.Apply) -> tuple[str, int]:
        return self.elementwise(n, ELEMENTWISE[n.fn].pretty)

    def _Compare(self, n: ir.Compare) -> tuple[str, int]:
        return f"{self.wrap(n.a, ADD)} {CMP_PRETTY[n.op]} {self.wrap(n.b, ADD)}", 5

    def _Where(self, n: ir.Where) -> tuple[str, int]:
        if ir.is_const(n.a, 1) and ir.is_const(n.b, 0):
            return f"𝟙[{self(n.cond)}]", ATOM
        return f"{self(n.a)} if {self(n.cond)} else {self(n.b)}", 1

    def _Sum(self, n: ir.Sum) -> tuple[str, int]:
        if n.axis is None and not n.keepdims and _is_vector_product(n.a):
            return f"⟨{self(n.a.a)}, {self(n.a.b)}⟩", ATOM
        if n.axis is None:
            return f"Σ({self(n.a)})", ATOM
        if n.a.rank == 2 and n.axis == 0:
            return f"𝟙ᵀ{self.wrap(n.a, POSTFIX)}", MUL
        if n.a.rank == 2 and n.axis == 1:
            return f"{self.wrap(n.a, POSTFIX)} 𝟙", MUL
        return f"sum({self(n.a)}, axis={n.axis}{', keepdims' if n.keepdims else ''})", ATOM

    def _matrix_op(self, n: ir.Node) -> tuple[str, int]:
        return self.template(n, BY_NODE[type(n)].pretty)

    def _Broadcast(self, n: ir.Broadcast) -> tuple[str, int]:
        if ir.is_const(n.a, 1):
            return "𝟙", ATOM
        if n.a.rank == 0:
            return f"{self.wrap(n.a, MUL)}·𝟙", MUL
        return self.p(n.a)

    def _ExpandDims(self, n: ir.ExpandDims) -> tuple[str, int]:
        return self.p(n.a)

    def fn_name(self, fn: str) -> str:
        return fn

    #: node type -> its rule (explicit dispatch; tests check every node type is covered)
    RULES: ClassVar[dict[type, Callable[..., Any]]] = {**_Printer.RULES,
        ir.Var: _Var,
        ir.Const: _Const,
        ir.DimSize: _DimSize,
        ir.Eye: _Eye,
        ir.Ones: _Ones,
        ir.Binary: _Binary,
        ir.Neg: _Neg,
        ir.MatMul: _MatMul,
        ir.Transpose: _Transpose,
        ir.Apply: _Apply,
        ir.Compare: _Compare,
        ir.Where: _Where,
        ir.Sum: _Sum,
        ir.Trace: _matrix_op,
        ir.Det: _matrix_op,
        ir.Inv: _matrix_op,
        ir.Diag: _matrix_op,
        ir.Outer: _matrix_op,
        ir.Broadcast: _Broadcast,
        ir.ExpandDims: _ExpandDims,
    }


def _latex_subscript(kwargs: tuple[tuple[str, object], ...]) -> str:
    """The keywords that change a reduction's value, as a subscript: _{axis=1, ddof=1}
    (keepdims only shapes the result, which the surrounding formula shows)."""
    shown = [rf"\text{{{k}}}={v}" for k, v in kwargs if k in ("axis", "ddof") and v is not None]
    return "_{" + ",\\ ".join(shown) + "}" if shown else ""


class LatexPrinter(_Printer):
    def name(self, text: str) -> str:
        if text in GREEK:
            return "\\" + ("lambda" if text == "lam" else "epsilon" if text == "eps" else text)
        if len(text) > 1 and text[-1].isdigit() and text[:-1].isalpha():
            head = text.rstrip("0123456789")
            return f"{head}_{{{text[len(head):]}}}"
        if len(text) > 1:
            return rf"\mathrm{{{text}}}"
        return text

    def paren(self, text: str) -> str:
        return rf"\left({text}\right)"

    def _Var(self, n: ir.Var) -> tuple[str, int]:
        return self.name(n.name), ATOM

    def _Const(self, n: ir.Const) -> tuple[str, int]:
        v = n.value
        if isinstance(v, ir.NamedNumber):
            return {"pi": r"\pi"}.get(v.name, v.name), ATOM
        if isinstance(v, Fraction) and v.denominator != 1:
            sign = "-" if v < 0 else ""
            return rf"{sign}\frac{{{abs(v.numerator)}}}{{{v.denominator}}}", MUL
        text = fmt_number(v)
        return text, (NEG if text.startswith("-") else ATOM)

    def _DimSize(self, n: ir.DimSize) -> tuple[str, int]:
        return self.name(n.name), ATOM

    def _Eye(self, n: ir.Eye) -> tuple[str, int]:
        return "I", ATOM

    def _Ones(self, n: ir.Ones) -> tuple[str, int]:
        return r"\mathbf{1}", ATOM

    def _Binary(self, n: ir.Binary) -> tuple[str, int]:
        op = n.op
        if op in "+-":
            return f"{self.wrap(n.a, ADD)} {op} {self.wrap(n.b, ADD, strict=True)}", ADD
        if op == "*":
            sym = r" \odot " if (n.a.rank and n.b.rank) else r" \, "
            return f"{self.wrap(n.a, MUL)}{sym}{self.wrap(n.b, MUL, strict=True)}", MUL
        if op == "/":
            return rf"\frac{{{self(n.a)}}}{{{self(n.b)}}}", ATOM
        return f"{{{self.wrap(n.a, POW, strict=True)}}}^{{{self(n.b)}}}", POW

    def _Neg(self, n: ir.Neg) -> tuple[str, int]:
        return f"-{self.wrap(n.a, NEG)}", NEG

    def _MatMul(self, n: ir.MatMul) -> tuple[str, int]:
        def operand(x: ir.Node, strict: bool = False) -> str:
            if isinstance(x, ir.Binary) and x.op in "*/" and x.a.rank and x.b.rank:
                return self.paren(self(x))
            return self.wrap(x, MUL, strict)
        return f"{operand(n.a)} {operand(n.b, True)}", MUL

    def _Transpose(self, n: ir.Transpose) -> tuple[str, int]:
        if isinstance(n.a, ir.Inv):
            return f"{{{self.wrap(n.a.a, POSTFIX)}}}^{{-\\top}}", POSTFIX
        return f"{{{self.wrap(n.a, POSTFIX)}}}^{{\\top}}", POSTFIX

    def _Apply(self, n: ir.Apply) -> tuple[str, int]:
        return self.elementwise(n, ELEMENTWISE[n.fn].latex)

    def _Compare(self, n: ir.Compare) -> tuple[str, int]:
        return f"{self.wrap(n.a, ADD)} {CMP_LATEX[n.op]} {self.wrap(n.b, ADD)}", 5

    def _Where(self, n: ir.Where) -> tuple[str, int]:
        if ir.is_const(n.a, 1) and ir.is_const(n.b, 0):
            return rf"\mathbb{{1}}\left[{self(n.cond)}\right]", ATOM
        return (rf"\begin{{cases}} {self(n.a)} & {self(n.cond)} \\ {self(n.b)} & "
                rf"\text{{otherwise}} \end{{cases}}", ATOM)

    def _Sum(self, n: ir.Sum) -> tuple[str, int]:
        if n.axis is None and not n.keepdims and _is_vector_product(n.a):
            return rf"\left\langle {self(n.a.a)}, {self(n.a.b)} \right\rangle", ATOM
        if n.axis is None:
            return rf"\sum {self.wrap(n.a, POSTFIX)}", MUL
        if n.a.rank == 2 and n.axis == 0:
            return rf"\mathbf{{1}}^{{\top}} {self.wrap(n.a, POSTFIX)}", MUL
        if n.a.rank == 2 and n.axis == 1:
            return rf"{self.wrap(n.a, POSTFIX)} \mathbf{{1}}", MUL
        return rf"\operatorname{{sum}}_{{{n.axis}}}\left({self(n.a)}\right)", ATOM

    def _matrix_op(self, n: ir.Node) -> tuple[str, int]:
        return self.template(n, BY_NODE[type(n)].latex)

    def _Broadcast(self, n: ir.Broadcast) -> tuple[str, int]:
        if ir.is_const(n.a, 1):
            return r"\mathbf{1}", ATOM
        if n.a.rank == 0:
            return rf"{self.wrap(n.a, MUL)} \, \mathbf{{1}}", MUL
        return self.p(n.a)

    def _ExpandDims(self, n: ir.ExpandDims) -> tuple[str, int]:
        return self.p(n.a)

    def fn_name(self, fn: str) -> str:
        return rf"\operatorname{{{fn}}}".replace("_", r"\_")

    def _Macro(self, n: ir.Macro) -> tuple[str, int]:
        if n.fn == "take":   # x_i, or X_{r, y_r}
            x, labels = n.operands
            index = self(labels) if x.rank == 1 else rf"r,\, {self(labels)}_{{r}}"
            return rf"{self.wrap(x, POSTFIX)}_{{{index}}}", POSTFIX
        args = [self(a) for a in n.operands]
        name = n.fn.replace("_", r"\_")
        return (rf"\operatorname{{{name}}}{_latex_subscript(n.kwargs)}\left({', '.join(args)}\right)",
                ATOM)

    def _Extreme(self, n: ir.Extreme) -> tuple[str, int]:
        sub = _latex_subscript((("axis", n.axis),))
        return rf"\{n.fn}{sub}\left({self(n.a)}\right)", ATOM

    #: node type -> its rule (explicit dispatch; tests check every node type is covered)
    RULES: ClassVar[dict[type, Callable[..., Any]]] = {**_Printer.RULES,
        ir.Var: _Var,
        ir.Const: _Const,
        ir.DimSize: _DimSize,
        ir.Eye: _Eye,
        ir.Ones: _Ones,
        ir.Binary: _Binary,
        ir.Neg: _Neg,
        ir.MatMul: _MatMul,
        ir.Transpose: _Transpose,
        ir.Apply: _Apply,
        ir.Compare: _Compare,
        ir.Where: _Where,
        ir.Sum: _Sum,
        ir.Extreme: _Extreme,
        ir.Trace: _matrix_op,
        ir.Det: _matrix_op,
        ir.Inv: _matrix_op,
        ir.Diag: _matrix_op,
        ir.Outer: _matrix_op,
        ir.Broadcast: _Broadcast,
        ir.ExpandDims: _ExpandDims,
        ir.Macro: _Macro,
    }


language = LanguagePrinter()
pretty = PrettyPrinter()
latex = LatexPrinter()
