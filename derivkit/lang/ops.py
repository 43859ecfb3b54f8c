"""The op table: every elementwise function and every matrix function derivkit knows, one entry
each.

An entry holds everything about its function side by side: the SymPy definition f(t; params)
(the derivative is *derived* from it, in `derivkit.derivation.elementwise`, never stated here),
its parameters and their defaults, the domain where it is real, the kink where a piecewise
definition switches branch, its NumPy lowering (real, and analytic in x for complex-step
checks), and its Unicode and LaTeX printing. Nothing here imports SymPy or NumPy: a definition
is a function of the `sympy` module, called only when something is derived.

Templates are `str.format` strings over `{x}` (the printed argument), `{x_atom}` (the argument
parenthesised unless atomic), `{args}` (the argument and the parameters, comma-separated),
`{np}` (NumPy's name in the generated code) and each parameter's name.

A matrix function (trace, det, inv, diag, outer) is registered the way jax registers a
primitive: its shape rule (the IR constructor, which checks operand shapes), its VJP rule, its
NumPy lowering and its printing side by side. Its templates are over `{a}`, `{b}` (the printed
operands), `{a_postfix}`, `{b_postfix}` (parenthesised unless they bind as tightly as a
postfix operator) and `{np}`; each printing template names the precedence of its result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import ir


@dataclass(frozen=True)
class Elementwise:
    """One elementwise function f(t; params), applied entry by entry (NumPy semantics)."""

    name: str
    definition: Callable[..., Any]        # (sympy, t, *params) -> f(t; params) as SymPy
    numpy: str                            # real lowering
    doc: str
    params: tuple[tuple[str, float], ...] = ()   # (name, default), in call order
    domain: str = "real"                  # where f is real: real | positive (inputs passed
                                          # straight to f are sampled there)
    kink: float | None = None             # where a piecewise f switches branch (inputs passed
                                          # straight to f are sampled away from it)
    numpy_complex: str | None = None      # lowering analytic in x (complex step), if not `numpy`
    helper: str = ""                      # source of a `_name` helper `numpy` calls (NumPy as np)
    helper_complex: str = ""              # ... and its complex-safe version
    complex_step: bool = True             # its lowering is analytic in x (False: checks use
                                          # central differences, not the complex step)
    ulps: float = 1.0                     # rounding error of its lowering, in units of the
                                          # dtype's epsilon (finite differences' noise floor)
    pretty: str = "{name}({args})"        # Unicode
    latex: str = r"\operatorname{{{name}}}\left({args}\right)"

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.params)

    @property
    def defaults(self) -> dict[str, float]:
        return dict(self.params)


def _erf_helper(terms: int = 104) -> str:
    """erf in NumPy alone, to about 2e-15, with no loop: for |x| ≤ 6 the series
    erf(x) = 2/√π · x · exp(−x²) · Σₙ (2x²)ⁿ / (1·3···(2n+1)), whose terms are all positive (no
    cancellation), evaluated by Horner's rule; beyond 6, erf(x) = ±1 in float64 (erfc(6) < 2.2e-17)."""
    coefficients = [1.0]
    for n in range(1, terms):
        coefficients.append(coefficients[-1] / (2 * n + 1))
    values = [repr(c) for c in reversed(coefficients)]
    rows = ",\n".join("        " + ", ".join(values[i:i + 4]) for i in range(0, len(values), 4))
    return ("def _erf(x):\n"
            "    s = np.minimum(np.abs(x), 6.0)\n"
            f"    c = (\n{rows},\n    )\n"
            "    return np.sign(x) * 1.1283791670955126 * s * np.exp(-s * s) * np.polyval(c, 2.0 * s * s)\n")


ERF_HELPER = _erf_helper()


ELEMENTWISE: dict[str, Elementwise] = {f.name: f for f in (
    Elementwise("exp", lambda sp, t: sp.exp(t), "{np}.exp({x})", "exp(t)",
                latex=r"\exp\left({args}\right)"),
    Elementwise("log", lambda sp, t: sp.log(t), "{np}.log({x})", "natural logarithm, t > 0",
                domain="positive", latex=r"\log\left({args}\right)"),
    Elementwise("sqrt", lambda sp, t: sp.sqrt(t), "{np}.sqrt({x})", "square root, t > 0",
                domain="positive", pretty="√{x_atom}", latex=r"\sqrt{{{x}}}"),
    Elementwise("abs", lambda sp, t: sp.Abs(t), "{np}.abs({x})",
                "|t|; derivative sign(t), 0 at t = 0", kink=0.0, pretty="|{x}|",
                latex=r"\left|{x}\right|"),
    Elementwise("sign", lambda sp, t: sp.sign(t), "{np}.sign({x})", "sign(t)", kink=0.0),
    Elementwise("tanh", lambda sp, t: sp.tanh(t), "{np}.tanh({x})", "hyperbolic tangent",
                latex=r"\tanh\left({args}\right)"),
    Elementwise("sin", lambda sp, t: sp.sin(t), "{np}.sin({x})", "sine (radians)",
                latex=r"\sin\left({args}\right)"),
    Elementwise("cos", lambda sp, t: sp.cos(t), "{np}.cos({x})", "cosine (radians)",
                latex=r"\cos\left({args}\right)"),
    Elementwise("erf", lambda sp, t: sp.erf(t), "_erf({x})",
                "error function 2/√π ∫₀ᵗ exp(−u²) du", helper=ERF_HELPER, complex_step=False, ulps=16.0,
                latex=r"\operatorname{{erf}}\left({args}\right)"),
    Elementwise("gelu", lambda sp, t: t / 2 * (1 + sp.erf(t / sp.sqrt(2))), "_gelu({x})",
                "t·Φ(t) = t/2 · (1 + erf(t/√2)), exact GELU (PyTorch's default)",
                helper="def _gelu(x):\n    return 0.5 * x * (1.0 + _erf(0.7071067811865476 * x))\n",
                complex_step=False, ulps=16.0, latex=r"\operatorname{{GELU}}\left({args}\right)"),
    Elementwise("gelu_tanh",
                lambda sp, t: t / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi)
                                                   * (t + sp.Rational(44715, 10**6) * t**3))),
                "_gelu_tanh({x})", "t/2 · (1 + tanh(√(2/π) (t + 0.044715 t³))), GELU's tanh "
                "approximation (PyTorch's approximate='tanh')",
                helper="def _gelu_tanh(x):\n"
                       "    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))\n",
                latex=r"\operatorname{{GELU_{{tanh}}}}\left({args}\right)"),
    Elementwise("log1p", lambda sp, t: sp.log(1 + t), "{np}.log1p({x})",
                "log(1 + t), accurate for small t; t > −1", domain="positive",
                latex=r"\log\left(1 + {args}\right)"),
    Elementwise("expm1", lambda sp, t: sp.exp(t) - 1, "{np}.expm1({x})",
                "exp(t) − 1, accurate for small t", latex=r"\left(e^{{{x}}} - 1\right)"),
    Elementwise("softplus", lambda sp, t: sp.log(1 + sp.exp(t)), "{np}.logaddexp(0.0, {x})",
                "log(1 + exp(t)), computed without overflow",
                numpy_complex="{np}.log(1.0 + {np}.exp({x}))",
                latex=r"\operatorname{{softplus}}\left({args}\right)"),
    Elementwise("square", lambda sp, t: t**2, "{np}.square({x})", "t²",
                pretty="{x_atom}²", latex="{{{x_atom}}}^{{2}}"),
    Elementwise("sigmoid", lambda sp, t: 1 / (1 + sp.exp(-t)),
                "{np}.exp(-{np}.logaddexp(0.0, -({x})))", "1 / (1 + exp(−t))",
                numpy_complex="(1.0 / (1.0 + {np}.exp(-({x}))))", latex=r"\sigma\left({args}\right)"),
    Elementwise("relu", lambda sp, t: sp.Piecewise((t, t > 0), (0, True)),
                "{np}.maximum({x}, 0.0)", "t where t > 0, else 0", kink=0.0,
                numpy_complex="{np}.where({np}.real({x}) > 0, {x}, 0.0)"),
    Elementwise("leaky_relu", lambda sp, t, alpha: sp.Piecewise((t, t >= 0), (alpha * t, True)),
                "_leaky_relu({x}, {alpha})", "t where t ≥ 0, else alpha·t",
                params=(("alpha", 0.01),), kink=0.0,
                helper="def _leaky_relu(x, alpha):\n    return np.where(x >= 0, x, alpha * x)\n",
                helper_complex="def _leaky_relu(x, alpha):\n"
                               "    return np.where(np.real(x) >= 0, x, alpha * x)\n",
                latex=r"\operatorname{{leaky\_relu}}\left({args}\right)"),
)}


def render(template: str, fn: Elementwise, x: str, params: list[str], *, x_atom: str | None = None,
           np: str = "np") -> str:
    """`template` of `fn` filled in for the printed argument `x` and printed `params`."""
    return template.format(name=fn.name, x=x, x_atom=x if x_atom is None else x_atom,
                           args=", ".join([x, *params]), np=np,
                           **dict(zip(fn.param_names, params, strict=True)))


Cotangents = list[tuple[ir.Node, ir.Node]]


@dataclass(frozen=True)
class MatrixOp:
    """One matrix function: `build` is its shape rule, `vjp(node, ḡ)` its VJP rule, as
    [(operand, its cotangent)]."""

    name: str
    node: type[ir.Node]
    build: Callable[..., ir.Node]
    arity: int
    vjp: Callable[[Any, ir.Node], Cotangents]
    numpy: str
    pretty: tuple[str, str]               # (template, precedence: atom | postfix | mul)
    latex: tuple[str, str]
    nonsingular: bool = False             # needs an invertible operand (checks refuse near-singular)

    def language(self, args: list[str]) -> str:
        return f"{self.name}({', '.join(args)})"


MATRIX_OPS: dict[str, MatrixOp] = {op.name: op for op in (
    MatrixOp("trace", ir.Trace, ir.trace, 1,
             lambda n, g: [(n.a, ir.mul(g, ir.eye(n.a.shape[0])))],       # ∂tr(A) = I
             "{np}.trace({a})", ("tr({a})", "atom"), (r"\operatorname{{tr}}\left({a}\right)", "atom")),
    MatrixOp("inv", ir.Inv, ir.inv, 1,                                   # −A⁻ᵀ Ḡ A⁻ᵀ
             lambda n, g: [(n.a, ir.neg(ir.matmul(ir.matmul(ir.transpose(n), g), ir.transpose(n))))],
             "{np}.linalg.inv({a})", ("{a_postfix}⁻¹", "postfix"), ("{{{a_postfix}}}^{{-1}}", "postfix"),
             nonsingular=True),
    MatrixOp("det", ir.Det, ir.det, 1,
             lambda n, g: [(n.a, ir.mul(ir.mul(g, n), ir.transpose(ir.inv(n.a))))],  # det(A) A⁻ᵀ
             "{np}.linalg.det({a})", ("det({a})", "atom"), (r"\det\left({a}\right)", "atom"),
             nonsingular=True),
    MatrixOp("diag", ir.Diag, ir.diag, 1, lambda n, g: [(n.a, ir.diag(g))],
             "{np}.diag({a})", ("diag({a})", "atom"),
             (r"\operatorname{{diag}}\left({a}\right)", "atom")),
    MatrixOp("outer", ir.Outer, ir.outer, 2,                              # ā = Ḡ b, b̄ = Ḡᵀ a
             lambda n, g: [(n.a, ir.matmul(g, n.b)), (n.b, ir.matmul(ir.transpose(g), n.a))],
             "{np}.outer({a}, {b})", ("{a_postfix} {b_postfix}ᵀ", "mul"),
             ("{a_postfix} {{{b_postfix}}}^{{\\top}}", "mul")),
)}
BY_NODE: dict[type[ir.Node], MatrixOp] = {op.node: op for op in MATRIX_OPS.values()}
