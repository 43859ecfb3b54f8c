"""The op table: every elementwise function derivkit knows, one entry each.

An entry holds everything about its function side by side: the SymPy definition f(t; params)
(the derivative is *derived* from it, in `derivkit.derive.elementwise`, never stated here),
its parameters and their defaults, the domain where it is real, the kink where a piecewise
definition switches branch, its NumPy lowering (real, and analytic in x for complex-step
checks), and its Unicode and LaTeX printing. Nothing here imports SymPy or NumPy: a definition
is a function of the `sympy` module, called only when something is derived.

Templates are `str.format` strings over `{x}` (the printed argument), `{x_atom}` (the argument
parenthesised unless atomic), `{args}` (the argument and the parameters, comma-separated),
`{np}` (NumPy's name in the generated code) and each parameter's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
    pretty: str = "{name}({args})"        # Unicode
    latex: str = r"\operatorname{{{name}}}\left({args}\right)"

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.params)

    @property
    def defaults(self) -> dict[str, float]:
        return dict(self.params)


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
