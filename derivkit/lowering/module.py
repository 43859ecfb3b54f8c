"""Standalone NumPy modules from verified derivations: what `derivkit lower` writes.

`lower(recipe, derivation)` builds a module's source from the derivation's *printed, verified*
matrix forms: each form's text is parsed back with `forms.parse_form` (and must print back to
the same text), then printed by `derivkit.lowering.source`'s NumPy printer, the one lowering path. The
module holds

    forward(*, inputs..., params=defaults)
    grad_x(*, inputs..., params)                    scalar outputs: ∂L/∂x
    jacobian_x(*, inputs..., params)                vector -> vector: ∂y/∂x (n_out × n_in)
    vjp_x(*, inputs..., upstream, params)           ∂L/∂x given the upstream gradient
    backward(*, inputs..., params)                  scalar outputs: (∂L/∂x, ...) in one pass

for every input x the derivation differentiates, and imports only NumPy. `backward` is the
verified backward program (`derivkit.lowering.backward.program_lines`): the forward's named values
computed once, then one line per Δ and gradient, as hand-written backprop does. A form that is not
verified is refused with a DerivkitError naming it: an unverified gradient is never emitted.

Common subexpressions are computed once: the output's own value (`p = _softmax(z, axis=-1)`),
and any larger subtree a formula uses twice (`t1 = np.tanh(X @ W)`).

`load(lowered)` turns derivkit's own generated source (every name in it a validated identifier;
user text appears only inside escaped docstrings) into callables.
"""

from __future__ import annotations

import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import DerivkitError
from ..lang import ir
from ..lang.printing import language, pretty
from ..lang.program import program
from ..lang.recipes import Recipe
from ..lang.shapes import fmt_shape
from ..results import Derivation, Derivative, Lowered
from . import emit
from . import source as _lower
from .stable import SHIFTED, shift_exponentials

#: forms.parse_form, passed in (imported where it is used)
_ParseForm = Callable[..., tuple[ir.Node, dict[str, ir.Node], object]]

KIND_PREFIX = {"gradient": "grad", "jacobian": "jacobian", "vjp": "vjp"}
WIDTH = 96


@dataclass(frozen=True)
class _Function:
    name: str
    args: tuple[str, ...]
    body: ir.Node
    named: dict[str, ir.Node]
    equation: str           # pretty, e.g. "∂L/∂W = Xᵀ G"
    doc: tuple[str, ...]    # further docstring lines (meaning of the upstream, verification)
    stacked: str | None = None   # a variable with a leading stack axis (Jacobian rows from a vjp)


# ---------------------------------------------------------------------------- entry points
def lower(recipe: Recipe, derivation: Derivation) -> Lowered:
    """The module for `derivation` (derived from `recipe`) as a `Lowered` result."""
    prog = program(recipe)
    scope, out = prog.scope, prog.out
    _check_names(recipe, scope.dims)
    functions = _plan(recipe, derivation, out)
    alias = _alias(recipe, scope.dims)
    backward = _backward(recipe, derivation, out, alias)
    source, helpers = _assemble(recipe, derivation, functions, out, alias, backward)
    names = tuple(f.name for f in functions) + (("backward",) if backward else ())
    formulas = tuple((f.name, f.equation) for f in functions)
    if backward:
        formulas += (("backward", backward[1]),)
    return Lowered(target=derivation.target, source=source, functions=names, formulas=formulas,
                   helpers=helpers)


def load_module(lowered: Lowered) -> types.ModuleType:
    """A module object built from a `Lowered`'s source (audited by `derivkit.lowering.emit`)."""
    return emit.load_module(lowered.source, f"derivkit_lowered_{lowered.target.replace('-', '_')}",
                            f"<derivkit lower {lowered.target}>")


def load(lowered: Lowered) -> dict[str, Callable[..., Any]]:
    """{function name: callable} for every public function of the lowered module."""
    module = load_module(lowered)
    return {name: getattr(module, name) for name in lowered.functions}


# ---------------------------------------------------------------------------- planning
def _check_names(recipe: Recipe, dims: set[str]) -> None:
    """Every name the module binds must be distinct (each is a valid identifier, see
    `derivkit.lang.names.user_name_problem`, checked where it is declared)."""
    names = {i.name: "input" for i in recipe.inputs}
    names.update({p.name: "parameter" for p in recipe.params})
    names.setdefault(recipe.output, "output")
    names.setdefault(recipe.upstream, "upstream gradient")
    for d in sorted(dims):
        if d in names:
            raise DerivkitError(f"cannot lower: the dimension {d!r} has the same name as the "
                                f"{names[d]} {d!r}", "rename one of them")


def _alias(recipe: Recipe, dims: set[str]) -> str:
    return emit.numpy_alias({i.name for i in recipe.inputs} | {p.name for p in recipe.params}
                            | {recipe.output, recipe.upstream} | set(program(recipe).definitions) | dims)


def _plan(recipe: Recipe, derivation: Derivation, out: ir.Node) -> list[_Function]:
    from .forms import parse_form

    inputs = [i.name for i in recipe.inputs]
    scalar = out.rank == 0
    upstream = ir.Var(recipe.upstream, tuple(out.shape), "upstream")
    up_doc = (f"{recipe.upstream} = ∂L/∂{recipe.output} is the upstream gradient of a scalar "
              f"loss L downstream (shape {fmt_shape(out.shape)}).")
    plan = [_Function("forward", tuple(inputs), out, {}, derivation.forward_pretty, ())]
    shapes = {i.name: tuple(i.shape) for i in recipe.inputs}
    for dv in derivation.derivatives:
        if dv.kind == "jacobian" and dv.matrix is None:
            plan.append(_jacobian_from_vjp(recipe, derivation, dv, upstream, parse_form))
            continue
        node, named = _verified_form(recipe, dv, parse_form)
        assert dv.matrix is not None   # _verified_form refuses a derivative without one
        node = shift_exponentials(node)   # the same value, evaluated without overflow
        x_shape = shapes[dv.wrt]
        want = tuple(out.shape) + x_shape if dv.kind == "jacobian" else x_shape
        if node.shape != want:
            node = ir.broadcast_to(node, want)
        verified = dv.matrix.verification.detail or f"verified {dv.matrix.verification.method}"
        name = f"{KIND_PREFIX[dv.kind]}_{dv.wrt}"
        eq = f"{dv.lhs_pretty} = {dv.matrix.pretty}"
        if dv.kind == "vjp":
            plan.append(_Function(name, tuple(inputs) + (recipe.upstream,), node, named, eq,
                                  (up_doc, _sentence(verified))))
        elif dv.kind == "jacobian":
            plan.append(_Function(name, tuple(inputs), node, named, eq,
                                  (f"Shape {fmt_shape(dv.shape)} (output × input).",
                                   _sentence(verified))))
        else:
            plan.append(_Function(name, tuple(inputs), node, named, eq, (_sentence(verified),)))
        if scalar and dv.kind == "gradient":
            # The VJP of a scalar output is the gradient times the scalar upstream gradient.
            body = ir.mul(upstream, node)
            plan.append(_Function(
                f"vjp_{dv.wrt}", tuple(inputs) + (recipe.upstream,), body, named,
                f"∂ℓ/∂{dv.wrt} = {pretty(body)}",
                (f"{recipe.upstream} = ∂ℓ/∂{recipe.output} is the upstream gradient (a "
                 f"scalar) of a loss ℓ downstream; this is {recipe.upstream} times "
                 f"grad_{dv.wrt}.",
                 _sentence(f"as grad_{dv.wrt}, {verified}"))))
    return plan


def _jacobian_from_vjp(recipe: Recipe, derivation: Derivation, dv: Derivative, upstream: ir.Var,
                       parse_form: _ParseForm) -> _Function:
    """jacobian_x without a closed matrix form: row i of ∂y/∂x is the verified vjp at the unit
    upstream gradient e_i, all rows at once (the upstream stacked as the identity)."""
    vjp_dv = next(d for d in derivation.derivatives if d.kind == "vjp" and d.wrt == dv.wrt)
    node, named = _verified_form(recipe, vjp_dv, parse_form)
    assert vjp_dv.matrix is not None   # _verified_form refuses a derivative without one
    stack = ir.Var(upstream.name, upstream.shape, "named")
    node = shift_exponentials(ir.substitute(node, {v: stack for v in ir.walk(node)
                                                   if isinstance(v, ir.Var) and v.name == stack.name}))
    named = {**named, stack.name: ir.Eye(upstream.shape[0], (upstream.shape[0],) * 2)}
    stacked: str | None = stack.name
    if not ir.depends_on(node, stack):   # a vjp linear in g and free of it is 0: so is ∂y/∂x
        node, stacked = ir.broadcast_to(ir.ZERO, tuple(dv.shape)), None
    verified = vjp_dv.matrix.verification.detail or f"verified {vjp_dv.matrix.verification.method}"
    return _Function(f"jacobian_{dv.wrt}", tuple(i.name for i in recipe.inputs), node, named,
                     f"{dv.lhs_pretty}: row i is vjp_{dv.wrt} at {recipe.upstream} = e_i",
                     (f"Shape {fmt_shape(dv.shape)} (output × input). No closed matrix form was "
                      f"obtained; the rows are the verified vjp ({vjp_dv.lhs_pretty} = "
                      f"{vjp_dv.matrix.pretty}) at every unit upstream gradient at once.",
                      _sentence(f"the vjp {verified}")), stacked=stacked)


def _verified_form(recipe: Recipe, dv: Derivative, parse_form: _ParseForm
                   ) -> tuple[ir.Node, dict[str, ir.Node]]:
    what = f"the {dv.kind} {dv.lhs_pretty}"
    if dv.matrix is None:
        raise DerivkitError(f"cannot lower {what}: no closed matrix form was obtained",
                            "'derivkit derive' shows its verified index form")
    ver = dv.matrix.verification
    if not ver.verified:
        reason = f": {ver.detail}" if ver.detail else ""
        raise DerivkitError(f"refusing to lower {what} = {dv.matrix.pretty}: it is NOT VERIFIED"
                            f"{reason}", "derivkit never emits an unverified gradient")
    node, named, _ = parse_form(recipe, dv.matrix.text, derived=True)
    if language(node) != dv.matrix.text:   # what is lowered must be exactly what was verified
        raise RuntimeError(f"the form {dv.matrix.text!r} prints back as {language(node)!r}")
    return node, named


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _backward(recipe: Recipe, derivation: Derivation, out: ir.Node, alias: str
              ) -> tuple[str, str, list[str]] | None:
    """(source of `backward`, its one-line summary, its docstring paragraphs) for a scalar output
    (gradients), or an array output given its upstream gradient (VJPs), with a verified
    backward program; None otherwise (the grad_x / vjp_x functions remain)."""
    from .backward import verified_program

    program = verified_program(recipe, derivation, out)
    if program is None:
        return None
    assignments, results = program
    inputs = {i.name: tuple(i.shape) for i in recipe.inputs}
    if out.rank:   # the upstream gradient, after the inputs (as vjp_x takes it)
        inputs[recipe.upstream] = tuple(out.shape)
    params = {p.name: p.default for p in recipe.params}
    printer = _lower.NumpyPrinter(alias)
    nodes = [shift_exponentials(node) for _, node in assignments]   # same values, no overflow
    lines = _lower.size_lines(inputs, alias, nodes)
    lines += [(name, printer(node)) for (name, _), node in zip(assignments, nodes)]
    result = ", ".join(results) + ("," if len(results) == 1 else "")
    grads = ", ".join(dv.lhs_pretty for dv in derivation.derivatives)
    summary = f"({result.rstrip(',')}) = ({grads}) in one backward pass"
    steps = derivation.forward_pretty.split("\n")[:-1]   # the named values; the output last
    program_text = "\n".join(steps + [f"{s.lhs} = {s.form.pretty}"
                                       + (f"   ({s.name})" if s.kind == "gradient" else "")
                                       for s in derivation.chain])
    details = derivation.chain_verification()
    doc = [program_text,
           f"Returns ({result.rstrip(',')}): the forward's named values computed once, then each "
           "line of the backward program in order, reusing them.",
           *(_sentence(d) for d in details)]
    docstring = _docstring(summary, doc)
    return emit.function("backward", list(inputs), params, lines, f"({result})", docstring), summary, doc


# ---------------------------------------------------------------------------- CSE
_children = ir.printed_children


def _worth_naming(n: ir.Node) -> bool:
    if isinstance(n, (ir.Var, ir.Const, ir.DimSize, ir.Eye, ir.Ones)):
        return False
    if isinstance(n, (ir.Transpose, ir.Neg)) and not _children(n.a):
        return False   # X.T, -x: cheaper to repeat than to name
    return True


def _order(roots: list[ir.Node]) -> list[ir.Node]:
    """Distinct subtrees, parents before children."""
    return ir.postorder(roots, _children)[::-1]


def _occurrences(roots: list[ir.Node]) -> dict[ir.Node, int]:
    """How often each subtree is printed (counted with repetition)."""
    count: dict[ir.Node, int] = {}
    for r in roots:
        count[r] = count.get(r, 0) + 1
    for n in _order(roots):
        for c in _children(n):
            count[c] = count.get(c, 0) + count[n]
    return count


def _size(n: ir.Node, memo: dict[ir.Node, int]) -> int:
    if n not in memo:
        memo[n] = 1 + sum(_size(c, memo) for c in _children(n))
    return memo[n]


def _cse(body: ir.Node, named: dict[str, ir.Node], taken: set[str]) -> tuple[ir.Node, dict[str, ir.Node]]:
    """Name every subtree the function would compute twice, largest first (t1, t2, ...)."""
    named = dict(named)

    def needed_roots(root: ir.Node) -> list[ir.Node]:
        roots, todo = [root], [root]
        while todo:
            for n in ir.walk(todo.pop()):
                if isinstance(n, ir.Var) and n.role == "named" and named[n.name] not in roots:
                    roots.append(named[n.name])
                    todo.append(named[n.name])
        return roots

    counter = 0
    while True:
        roots = needed_roots(body)
        sizes: dict[ir.Node, int] = {}
        counts = _occurrences(roots)
        repeated = [n for n, c in counts.items() if c >= 2 and _worth_naming(n)]
        if not repeated:
            return body, named
        target = max(repeated, key=lambda n: _size(n, sizes))
        counter += 1
        while f"t{counter}" in taken or f"t{counter}" in named:
            counter += 1
        var = ir.Var(f"t{counter}", target.shape, "named")
        body = ir.substitute(body, {target: var})
        named = {k: ir.substitute(v, {target: var}) for k, v in named.items()}
        named[var.name] = target


# ---------------------------------------------------------------------------- source
def _wrap(text: str, indent: str, hang: str = "") -> list[str]:
    lines = []
    for para in text.split("\n"):
        lines += textwrap.wrap(para, WIDTH, initial_indent=indent, subsequent_indent=indent + hang,
                               break_long_words=False, break_on_hyphens=False) or [indent]
    return lines


def _docstring(first: str, paragraphs: list[str]) -> list[str]:
    """A function's docstring lines: `first`, then each paragraph wrapped, a blank line apart."""
    if not paragraphs and len(first) <= WIDTH - 10 and "\n" not in first:
        return [f'    """{emit.docstring_text(first)}"""']
    lines = _wrap(first, "    ")
    for para in paragraphs:
        lines += [""] + _wrap(para, "    ")
    docstring = [emit.docstring_text(ln).rstrip() for ln in lines] + ['    """']
    docstring[0] = '    """' + docstring[0][4:]
    return docstring


def _function_source(f: _Function, recipe: Recipe, out: ir.Node, alias: str) -> str:
    inputs = {i.name: tuple(i.shape) for i in recipe.inputs}
    if recipe.upstream in f.args:
        inputs[recipe.upstream] = tuple(out.shape)
    params = {p.name: p.default for p in recipe.params}
    taken = _lower.user_names(inputs, params, {recipe.output, recipe.upstream},
                              set(program(recipe).definitions), {alias})
    body, named = _cse(f.body, f.named, taken)
    docstring = _docstring(f.equation, list(f.doc))
    printer = _lower.StackedNumpyPrinter({f.stacked}, np=alias) if f.stacked else None
    return _lower.function_source(f.name, list(f.args), body, inputs, named, params, alias,
                                  docstring, printer)


def _module_docstring(recipe: Recipe, derivation: Derivation, functions: list[_Function],
                      helpers: list[str], backward: tuple[str, str, list[str]] | None) -> str:
    from ..version import read_version

    command = _command(recipe, derivation)
    lines = [f"{derivation.target}: {' '.join(derivation.summary.split())}", ""]
    lines += _wrap(f"Generated by derivkit {read_version()} ({command}); imports only NumPy. Every "
                   "function below except forward computes a formula that derivkit derived from "
                   "the forward definition and verified (as each docstring says) before writing "
                   "it here.", "")
    lines += ["", "Forward"] + [f"    {ln}" for ln in derivation.forward_pretty.split("\n")]
    shapes = ", ".join(f"{i.name}: {i.shape_text}"
                       + ("" if i.domain == "real" else f" ({i.domain})")
                       for i in derivation.inputs)
    lines.append(f"    {shapes}; {derivation.output}: {derivation.output_shape_text}")
    if derivation.params:
        lines.append("    parameters: " + ", ".join(f"{n} = {v!r}" for n, v in derivation.params))
    if "_softmax" in helpers:
        lines += _wrap("softmax is evaluated in its stable form "
                       "exp(x − max x) / Σ exp(x − max x), the same function.", "    ")
    if any(isinstance(n, ir.Macro) and n.fn == SHIFTED for f in functions
           for n in _lower.printed_nodes(f.body)):
        lines += _wrap("Where a formula is unchanged by scaling exp(x) by a positive factor "
                       "along an axis, exp(x) is evaluated as exp(x − max x) along it: the same "
                       "value, without overflow.", "    ")
    lines += ["", "Functions"]
    params = tuple(f"{p.name}={p.default!r}" for p in recipe.params)
    for f in functions:
        lines.append(f"    {f.name}(*, {', '.join(f.args + params)})")
        lines += _wrap(f.equation, "        ")
        for para in f.doc:
            lines += _wrap(para, "        ")
    if backward:
        lines.append(f"    backward(*, {', '.join([i.name for i in recipe.inputs] + list(params))})")
        lines += _wrap(backward[1], "        ")
        lines += [f"        {ln}" for ln in backward[2][0].split("\n")]
        for para in backward[2][1:]:
            lines += _wrap(para, "        ")
    if derivation.conventions:
        lines += ["", "Conventions"]
        for c in derivation.conventions:
            lines += _wrap(f"- {c}", "    ", "  ")
    return "\n".join(emit.docstring_text(ln).rstrip() for ln in lines)


def _command(recipe: Recipe, derivation: Derivation) -> str:
    """The command that regenerates the module."""
    import shlex

    wrt = ",".join(dict.fromkeys(dv.wrt for dv in derivation.derivatives))
    if recipe.path is not None:
        return f"derivkit lower {recipe.name} --wrt {wrt}"
    words = ["derivkit", "lower", "--expr", recipe.forward, "--wrt", wrt]
    for i in recipe.inputs:
        words += ["--shape", f"{i.name}=" + (",".join(str(d) for d in i.shape) or "scalar")]
    for p in recipe.params:
        words += ["--param", f"{p.name}={p.default!r}"]
    return shlex.join(words)


def _assemble(recipe: Recipe, derivation: Derivation, functions: list[_Function], out: ir.Node,
              alias: str, backward: tuple[str, str, list[str]] | None) -> tuple[str, tuple[str, ...]]:
    bodies = [_function_source(f, recipe, out, alias) for f in functions]
    if backward:
        bodies.append(backward[0])
    helpers = emit.used_helpers("\n\n".join(bodies))
    doc = _module_docstring(recipe, derivation, functions, helpers, backward)
    imports = "import numpy as np" if alias == "np" else f"import numpy as {alias}"
    parts = [f'"""{doc}\n"""\n\n{imports}\n']
    parts += [h + "\n" for h in emit.helper_sources(helpers, alias)]
    parts += bodies
    names = [f.name for f in functions] + (["backward"] if backward else [])
    parts.append("__all__ = [" + ", ".join(repr(n) for n in names) + "]\n")
    source = "\n\n".join(parts)
    emit.audit(source, alias=alias)   # a failure here is a bug in derivkit
    return source, tuple(helpers)
