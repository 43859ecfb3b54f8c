"""`derivkit lower --target torch`: a recipe as a `torch.autograd.Function` whose backward is
derivkit's derived, verified one.

The module holds, for a recipe `linear` (inputs X, W, b; class and function names from the
recipe's name):

    _forward(*, inputs..., params)            the forward, in torch operations
    _vjp_X(*, inputs..., upstream, params)     one per differentiated input (when there is no
                                               verified backward program), or
    _backward(*, inputs..., upstream, params)  the verified backward program in one pass
    class Linear(torch.autograd.Function)      forward saves the inputs; backward returns the
                                               derived gradients (None for inputs not
                                               differentiated, for labels and parameters)
    linear(X, W, b, *, params=defaults)        Linear.apply(X, W, b, params...)

Every formula is the one `derivkit lower` (NumPy) writes: the same verified matrix forms
(`module._plan`, `forms.parse_form`, refused unless verified and printing back to the verified
text) or the same backward program (`backward.program_lines`), printed from the IR by
`TorchPrinter` with native torch operations (so it runs on any device, without copies to NumPy),
assembled and audited by the one emitter (`emit.audit(..., target="torch")`). Writing the text
needs no torch; running it does. The backward recomputes the forward's named values it reads
from the saved inputs (nothing else is kept between forward and backward).
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any, ClassVar

from ..errors import DerivkitError
from ..lang import ir
from ..lang.ops import BY_NODE, ELEMENTWISE, render
from ..lang.printing import ATOM, POSTFIX
from ..lang.program import program
from ..lang.recipes import INTEGER, Recipe
from ..results import Derivation, Lowered
from . import emit
from . import module as _module
from . import source as _lower
from .stable import SHIFTED, shift_exponentials

#: elementwise function -> its torch template ({np} is torch's alias; a helper where torch has
#: no function of the same meaning). Every op-table entry needs one (tests/test_torch.py).
TORCH_ELEMENTWISE = {
    "exp": "{np}.exp({x})", "log": "{np}.log({x})", "sqrt": "{np}.sqrt({x})",
    "abs": "{np}.abs({x})", "sign": "{np}.sign({x})", "tanh": "{np}.tanh({x})",
    "sin": "{np}.sin({x})", "cos": "{np}.cos({x})", "erf": "{np}.erf({x})",
    "gelu": "{np}.nn.functional.gelu({x})", "gelu_tanh": "_gelu_tanh({x})",
    "log1p": "{np}.log1p({x})", "expm1": "{np}.expm1({x})",
    "softplus": "{np}.nn.functional.softplus({x})", "square": "{np}.square({x})",
    "sigmoid": "{np}.sigmoid({x})", "relu": "{np}.relu({x})",
    "leaky_relu": "_leaky_relu({x}, {alpha})",
}

#: matrix functions (torch.trace, torch.diag, torch.outer: NumPy's meaning for these ranks)
TORCH_MATRIX = {"trace": "{np}.trace({a})", "inv": "{np}.linalg.inv({a})",
                "det": "{np}.linalg.det({a})", "diag": "{np}.diag({a})",
                "outer": "{np}.outer({a}, {b})"}

#: NumPy keyword -> torch keyword of the reductions
_KEYWORDS = {"axis": "dim", "keepdims": "keepdim", "ddof": "correction"}
_REDUCTIONS = {"mean": "{np}.mean", "var": "{np}.var", "std": "{np}.std",
               "norm": "{np}.linalg.norm", "logsumexp": "_logsumexp"}


def _constant(n: ir.Node) -> bool:
    """No tensor in it: torch functions need a tensor, so `_tensor(...)` wraps it."""
    return not any(isinstance(m, ir.Var) for m in ir.walk(n))


class TorchPrinter(_lower.NumpyPrinter):
    """torch source for an IR expression (real, float tensors). `np` is torch's alias; `like`
    is an input whose dtype and device new tensors (eye, ones, constants) take."""

    def __init__(self, np: str = "torch", like: str = "x") -> None:
        super().__init__(np)
        self.like = like

    def tensor(self, n: ir.Node) -> str:
        text = self(n)
        return f"_tensor({text}, {self.like})" if _constant(n) else text

    def _Eye(self, n: ir.Eye) -> tuple[str, int]:
        return f"_eye({n.n}, {self.like})", ATOM

    def _Ones(self, n: ir.Ones) -> tuple[str, int]:
        return f"_ones({self.shape(n.shape)}, {self.like})", ATOM

    def shape(self, shape: tuple) -> str:
        return "(" + "".join(f"{d}, " for d in shape).rstrip(" ") + ")" if shape else "()"

    def _Apply(self, n: ir.Apply) -> tuple[str, int]:
        fn = ELEMENTWISE[n.fn]
        if n.fn not in TORCH_ELEMENTWISE:
            raise DerivkitError(f"cannot lower {n.fn} to torch yet", "use --target numpy")
        return render(TORCH_ELEMENTWISE[n.fn], fn, self.tensor(n.a), [self(p) for p in n.params],
                      np=self.np), ATOM

    def _Where(self, n: ir.Where) -> tuple[str, int]:
        return f"{self.np}.where({self(n.cond)}, {self.tensor(n.a)}, {self.tensor(n.b)})", ATOM

    def _keywords(self, axis: int | tuple | None, keepdims: bool, rank: int) -> str:
        """torch's dim=/keepdim=; keepdim over every axis needs them named (dim=(0, 1))."""
        if axis is None and keepdims:
            axis = tuple(range(rank))
        return ("" if axis is None else f", dim={axis}") + (", keepdim=True" if keepdims else "")

    def _Sum(self, n: ir.Sum) -> tuple[str, int]:
        a = n.a
        if (n.axis is None and not n.keepdims and isinstance(a, ir.Binary) and a.op == "*"
                and a.a.rank == 1 and a.b.rank == 1):
            return super()._Sum(n)   # ⟨a, b⟩ as a @ b
        return f"{self.np}.sum({self.tensor(a)}{self._keywords(n.axis, n.keepdims, a.rank)})", ATOM

    def _Extreme(self, n: ir.Extreme) -> tuple[str, int]:
        fn = {"max": "amax", "min": "amin"}[n.fn]
        return f"{self.np}.{fn}({self(n.a)}{self._keywords(n.axis, n.keepdims, n.a.rank)})", ATOM

    def _OneHot(self, n: ir.OneHot) -> tuple[str, int]:
        return f"_one_hot({self.label_text(n.a)}, {self.dim_text(n.k)}, {self.like})", ATOM

    def _matrix_op(self, n: ir.Node) -> tuple[str, int]:
        args = dict(zip("ab", (self(a) for a in n.args)))
        return TORCH_MATRIX[BY_NODE[type(n)].name].format(np=self.np, **args), ATOM

    def _Transpose(self, n: ir.Transpose) -> tuple[str, int]:
        if n.a.rank < 2:
            return self.p(n.a)
        return f"{self.wrap(n.a, POSTFIX)}.mT", POSTFIX

    def _Permute(self, n: ir.Permute) -> tuple[str, int]:
        return f"{self.np}.permute({self(n.a)}, {n.axes})", ATOM

    def _Reshape(self, n: ir.Reshape) -> tuple[str, int]:
        return f"{self.np}.reshape({self(n.a)}, {self.shape(n.shape)})", ATOM

    def _Broadcast(self, n: ir.Broadcast) -> tuple[str, int]:
        return f"{self.np}.broadcast_to({self.tensor(n.a)}, {self.shape(n.shape)})", ATOM

    def _ExpandDims(self, n: ir.ExpandDims) -> tuple[str, int]:
        return f"{self.np}.unsqueeze({self(n.a)}, {n.axis})", ATOM

    def _Macro(self, n: ir.Macro) -> tuple[str, int]:
        np_ = self.np
        x = self(n.operands[0])
        kw = dict(n.kwargs)
        if n.fn == "softmax":
            return f"{np_}.softmax({x}, dim={kw.get('axis', -1)})", ATOM
        if n.fn in _REDUCTIONS:
            if n.fn == "logsumexp":   # the helper takes NumPy's keywords
                extra = "".join(f", {k}={v}" for k, v in n.kwargs)
            else:
                words = dict(kw)
                if words.get("keepdims") and words.get("axis") is None:   # keepdim: dims named
                    words["axis"] = tuple(range(n.operands[0].rank))
                if n.fn in ("var", "std"):
                    words.setdefault("ddof", 0)   # torch's default correction is 1, NumPy's 0
                extra = "".join(f", {_KEYWORDS[k]}={v}" for k, v in words.items())
            return f"{_REDUCTIONS[n.fn].format(np=np_)}({self.tensor(n.operands[0])}{extra})", ATOM
        if n.fn == "take":
            labels = n.operands[1]
            constant = isinstance(labels, ir.Const)
            if n.operands[0].rank == 1:
                if constant:
                    return f"{np_}.select({x}, 0, {self.label_text(labels)})", ATOM
                return f"{np_}.take({x}, {self.label_text(labels)})", ATOM
            if constant:
                return f"{np_}.select({x}, 1, {self.label_text(labels)})", ATOM
            return (f"{np_}.squeeze({np_}.take_along_dim({x}, {np_}.unsqueeze("
                    f"{self.label_text(labels)}, 1), dim=1), 1)"), ATOM
        if n.fn == "clip":
            return f"{np_}.clip({', '.join(self(o) for o in n.operands)})", ATOM
        if n.fn in ("maximum", "minimum"):
            return f"{np_}.{n.fn}({', '.join(self.tensor(o) for o in n.operands)})", ATOM
        if n.fn == SHIFTED:
            extra = "".join(f", dim={v}" for _, v in n.kwargs) + (", keepdim=True" if n.kwargs else "")
            return f"{np_}.exp({x} - {np_}.amax({x}{extra}))", ATOM
        return self.p(n.expansion)

    def label_text(self, n: ir.Node) -> str:
        if isinstance(n, ir.Const) and isinstance(n.value, Fraction) and n.value.denominator == 1:
            return str(n.value.numerator)
        return self(n)

    #: node type -> its rule (explicit dispatch; tests check every node type is covered)
    RULES: ClassVar[dict[type, Callable[..., Any]]] = {**_lower.NumpyPrinter.RULES,
        ir.Eye: _Eye,
        ir.Ones: _Ones,
        ir.Apply: _Apply,
        ir.Where: _Where,
        ir.Sum: _Sum,
        ir.Extreme: _Extreme,
        ir.OneHot: _OneHot,
        ir.Trace: _matrix_op,
        ir.Det: _matrix_op,
        ir.Inv: _matrix_op,
        ir.Diag: _matrix_op,
        ir.Outer: _matrix_op,
        ir.Transpose: _Transpose,
        ir.Permute: _Permute,
        ir.Reshape: _Reshape,
        ir.Broadcast: _Broadcast,
        ir.ExpandDims: _ExpandDims,
        ir.Macro: _Macro,
    }


# ---------------------------------------------------------------------------- names
def class_name(recipe: Recipe, taken: set[str]) -> str:
    """`linear` -> Linear, `leaky-relu` -> LeakyRelu; `_Function` appended where that is a
    user name, a keyword or a builtin (a name with an underscore is no user name)."""
    name = "".join(part[:1].upper() + part[1:] for part in recipe.name.split("-"))
    return name + "_Function" if _clashes(name, taken) else name


def function_name(recipe: Recipe, taken: set[str]) -> str:
    """`leaky-relu` -> leaky_relu (`_fn` appended where that is taken, a keyword or a builtin)."""
    name = recipe.name.replace("-", "_")
    return name + "_fn" if _clashes(name, taken) else name


def _clashes(name: str, taken: set[str]) -> bool:
    return (name in taken or keyword.iskeyword(name) or hasattr(builtins, name)
            or not emit.IDENT_ANY.match(name))


# ---------------------------------------------------------------------------- lowering
def lower(recipe: Recipe, derivation: Derivation) -> Lowered:
    """The torch module for `derivation` (derived from `recipe`) as a `Lowered` result
    (functions: the autograd.Function's name and the plain function's)."""
    prog = program(recipe)
    out = prog.out
    _module._check_names(recipe, prog.scope.dims)
    inputs = {i.name: tuple(i.shape) for i in recipe.inputs}
    params = {p.name: p.default for p in recipe.params}
    users = _lower.user_names(inputs, params, {recipe.output, recipe.upstream}, set(prog.definitions))
    alias = "_torch" if "torch" in users else "torch"
    labels = {i.name for i in recipe.inputs if i.domain == INTEGER}
    like = next(i.name for i in recipe.inputs if i.name not in labels)
    printer = TorchPrinter(alias, like)
    wrt = list(dict.fromkeys(dv.wrt for dv in derivation.derivatives))
    up_inputs = {**inputs, recipe.upstream: tuple(out.shape)}
    plan = _module._plan(recipe, derivation, out)

    forward = plan[0]
    taken = _lower.user_names(up_inputs, params, {recipe.output}, set(prog.definitions), {alias})
    body, named = _module._cse(forward.body, forward.named, taken)
    bodies = [_function("_forward", list(inputs), body, named, inputs, params, alias, printer,
                        _module._docstring(forward.equation, []))]
    program_summary = _program(recipe, derivation, out, up_inputs, params, alias, printer)
    if program_summary is not None:
        source, how = program_summary
        bodies.append(source)
    else:
        for name in wrt:
            f = next(f for f in plan if f.name == f"vjp_{name}")
            body, named = _module._cse(f.body, f.named, taken)
            doc = _module._docstring(f.equation, list(f.doc))
            bodies.append(_function(f"_vjp_{name}", list(f.args), body, named, up_inputs, params,
                                    alias, printer, doc))
        how = ("the verified vector–Jacobian product of each differentiated input (the forms "
               "derivkit lower writes as vjp_x)")

    cls = class_name(recipe, users | {alias})
    fname = function_name(recipe, users | {alias, cls})
    bodies.append(_class_source(derivation, cls, alias, list(inputs), list(params), recipe.upstream,
                                wrt, program_summary is not None, labels, how))
    bodies.append(_wrapper_source(recipe, cls, fname, list(inputs), params))
    helpers = emit.used_helpers("\n\n".join(bodies), target="torch")
    module_doc = _module_doc(recipe, derivation, cls, fname, plan, wrt, how)
    imports = "import torch" if alias == "torch" else f"import torch as {alias}"
    parts = [f'"""{module_doc}\n"""\n\n{imports}\n']
    parts += [h + "\n" for h in emit.helper_sources(helpers, alias, target="torch")]
    parts += bodies
    parts.append(f"__all__ = [{cls!r}, {fname!r}]\n")
    text = "\n\n".join(parts)
    emit.audit(text, alias=alias, target="torch")   # a failure here is a bug in derivkit
    formulas = tuple((f.name, f.equation) for f in plan if f.name.startswith("vjp_"))
    return Lowered(target=derivation.target, source=text, functions=(cls, fname),
                   formulas=formulas, helpers=tuple(helpers))


_SHAPE_LINE = re.compile(r"(_?torch)\.shape\((\w+)\)\[(\d+)\]\Z")


def _size_lines(inputs: dict[str, tuple], alias: str, roots: list[ir.Node]) -> list[tuple[str, str]]:
    """`source.size_lines` with torch's spelling of a size, `X.shape[0]`."""
    lines = []
    for d, expr in _lower.size_lines(inputs, alias, roots):
        m = _SHAPE_LINE.match(expr)
        lines.append((d, f"{m.group(2)}.shape[{m.group(3)}]" if m else expr))
    return lines


def _function(fname: str, args: list[str], body: ir.Node, named: dict[str, ir.Node],
              inputs: dict[str, tuple], params: dict[str, float], alias: str,
              printer: TorchPrinter, doc: list[str]) -> str:
    body = shift_exponentials(body)
    named = {k: shift_exponentials(v) for k, v in named.items()}
    needed = _lower.needed_names(body, named)
    lines = _size_lines({k: v for k, v in inputs.items() if k in args}, alias,
                        [body] + [named[n] for n in needed])
    lines += [(n, printer(named[n])) for n in needed]
    return emit.function(fname, args, params, lines, printer.tensor(body), doc)   # a tensor, even
    # when the value is a constant (the forward of `2.0`)


def _program(recipe: Recipe, derivation: Derivation, out: ir.Node, inputs: dict[str, tuple],
             params: dict[str, float], alias: str, printer: TorchPrinter) -> tuple[str, str] | None:
    """`_backward`: the verified backward program (as `derivkit lower`'s `backward`), its
    gradients times the upstream gradient for a scalar output; None without one."""
    from .backward import verified_program

    program = verified_program(recipe, derivation, out)
    if program is None:
        return None
    assignments, results = program
    args = [i.name for i in recipe.inputs] + [recipe.upstream]
    nodes = [shift_exponentials(node) for _, node in assignments]
    lines = _size_lines(inputs, alias, nodes)
    lines += [(name, printer(node)) for (name, _), node in zip(assignments, nodes)]
    if out.rank:
        result = ", ".join(results)
    else:   # the program's gradients are of the output: times the upstream gradient
        result = ", ".join(f"{recipe.upstream} * {r}" for r in results)
    result = f"({result}{',' if len(results) == 1 else ''})"
    details = derivation.chain_verification()
    doc = _module._docstring("The verified backward program, one line per Δ and gradient.",
                             [_module._sentence(d) for d in details])
    how = ("derivkit's verified backward program (the forward's named values recomputed from the "
           "saved inputs, then one line per Δ and gradient)")
    return emit.function("_backward", args, params, lines, result, doc), how


def _class_source(derivation: Derivation, cls: str, alias: str, inputs: list[str],
                  params: list[str], upstream: str, wrt: list[str], one_pass: bool,
                  labels: set[str], how: str) -> str:
    """`class cls(torch.autograd.Function)`: forward saves the inputs (and the parameters on
    the context), backward returns one gradient per argument of forward."""
    ctx = "_ctx"
    kw = ", ".join(f"{n}={n}" for n in inputs) + "".join(f", {p}={p}" for p in params)
    grads = {w: f"_grad_{w}" for w in wrt}   # no user name has an underscore
    returned = [grads.get(n, "None") for n in inputs] + ["None"] * len(params)
    text = (f"{derivation.target} in torch: forward is the recipe's forward; backward's gradients "
            f"are {how}; None for the inputs not differentiated"
            + (f" (the integer labels {', '.join(sorted(labels))})" if labels else "")
            + (" and for the parameters" if params else "") + ".")
    doc = _module._docstring(text, [])
    lines = [f"class {cls}({alias}.autograd.Function):", *doc, "",
             "    @staticmethod",
             f"    def forward({ctx}, {', '.join(inputs + params)}):",
             f"        {ctx}.save_for_backward({', '.join(inputs)})"]
    if params:
        lines.append(f"        {ctx}.params = ({', '.join(params)},)")
    lines += [f"        return _forward({kw})", "",
              "    @staticmethod",
              f"    def backward({ctx}, {upstream}):",
              f"        {_targets(inputs)} = {ctx}.saved_tensors"]
    if params:
        lines.append(f"        {_targets(params)} = {ctx}.params")
    if one_pass:
        lines.append(f"        {_targets([grads[w] for w in wrt])} = _backward({kw}, "
                     f"{upstream}={upstream})")
    else:
        lines += [f"        {grads[w]} = _vjp_{w}({kw}, {upstream}={upstream})" for w in wrt]
    lines.append(f"        return {_targets(returned)}")
    return "\n".join(ln.replace("\n", "\n    ") if ln.startswith('    """') else ln
                     for ln in lines) + "\n"


def _targets(names: list[str]) -> str:
    """`a, b` (or `(a,)`): a tuple to unpack into or to return."""
    return ", ".join(names) if len(names) > 1 else f"({names[0]},)"


def _wrapper_source(recipe: Recipe, cls: str, fname: str, inputs: list[str],
                    params: dict[str, float]) -> str:
    sig = ", ".join(inputs) + ("" if not params else ", *, " + ", ".join(
        f"{p}={float(v)!r}" for p, v in params.items()))
    shapes = ", ".join(f"{i.name}: {i.shape_text}" + (" (integer labels)" if i.domain == INTEGER else "")
                       for i in recipe.inputs)
    doc = _module._docstring(f"{cls}.apply({', '.join(inputs + list(params))}): the forward, "
                             f"differentiable with derivkit's verified backward ({shapes}).", [])
    return "\n".join([f"def {fname}({sig}):", *doc,
                      f"    return {cls}.apply({', '.join(inputs + list(params))})"]) + "\n"


def _module_doc(recipe: Recipe, derivation: Derivation, cls: str, fname: str,
                plan: list[Any], wrt: list[str], how: str) -> str:
    from ..version import read_version

    wrap = _module._wrap
    command = _module._command(recipe, derivation) + " --target torch"
    lines = [f"{derivation.target}: {' '.join(derivation.summary.split())}", ""]
    lines += wrap(f"Generated by derivkit {read_version()} ({command}); imports only torch. "
                  f"{cls} is a torch.autograd.Function whose backward computes formulas that "
                  "derivkit derived from the forward definition and verified (as each docstring "
                  f"says) before writing them here: {how}. {fname}(...) calls {cls}.apply.", "")
    lines += ["", "Forward"] + [f"    {ln}" for ln in derivation.forward_pretty.split("\n")]
    shapes = ", ".join(f"{i.name}: {i.shape_text}" + ("" if i.domain == "real" else f" ({i.domain})")
                       for i in derivation.inputs)
    lines.append(f"    {shapes}; {derivation.output}: {derivation.output_shape_text}")
    if derivation.params:
        lines.append("    parameters: " + ", ".join(f"{n} = {v!r}" for n, v in derivation.params))
    lines += ["", "Gradients (vector–Jacobian products)"]
    for f in plan:
        if f.name.startswith("vjp_") and f.name[4:] in wrt:
            lines += wrap(f.equation, "    ")
            for para in f.doc:
                lines += wrap(para, "        ")
    names = [i.name for i in recipe.inputs]
    lines += ["", "Usage", "    from torch.autograd import gradcheck",
              f"    # float64 tensors {', '.join(names)} (requires_grad=True for {', '.join(wrt)})",
              f"    gradcheck({cls}.apply, ({', '.join(names + [str(p.default) for p in recipe.params])}))"]
    return "\n".join(emit.docstring_text(ln).rstrip() for ln in lines)
