"""Standalone NumPy modules from verified derivations: what `derivkit lower` writes.

`lower(recipe, derivation)` builds a module's source from the derivation's *printed, verified*
matrix forms: each form's text is parsed back with `forms.parse_form` (and must print back to
the same text), then printed by `derivkit.lower`'s NumPy printer, the one lowering path. The
module holds

    forward(*, inputs..., params=defaults)
    grad_x(*, inputs..., params)                    scalar outputs: ∂L/∂x
    jacobian_x(*, inputs..., params)                vector -> vector: ∂y/∂x (n_out × n_in)
    vjp_x(*, inputs..., upstream, params)           ∂L/∂x given the upstream gradient

for every input x the derivation differentiates, and imports only NumPy. A form that is not
verified is refused with a DerivkitError naming it: an unverified gradient is never emitted.

Common subexpressions are computed once: the output's own value (`p = _softmax(z, axis=-1)`),
and any larger subtree a formula uses twice (`t1 = np.tanh(X @ W)`).

`load(lowered)` turns derivkit's own generated source (every name in it a validated identifier;
user text appears only inside escaped docstrings) into callables.
"""

from __future__ import annotations

import ast
import keyword
import linecache
import re
import textwrap
import types
from dataclasses import dataclass

from . import ir
from . import lower as _lower
from .errors import DerivkitError
from .printing import language, pretty
from .recipes import Recipe
from .results import Derivation, Derivative, Lowered
from .shapes import fmt_shape

RESERVED = frozenset({"np"}) | frozenset(keyword.kwlist)
KIND_PREFIX = {"gradient": "grad", "jacobian": "jacobian", "vjp": "vjp"}
WIDTH = 96
_DIM_LINE = re.compile(r"    [A-Za-z][A-Za-z0-9]* = np\.shape\([A-Za-z][A-Za-z0-9]*\)\[\d\]")


@dataclass(frozen=True)
class _Function:
    name: str
    args: tuple[str, ...]
    body: ir.Node
    named: dict
    equation: str           # pretty, e.g. "∂L/∂W = Xᵀ G"
    doc: tuple[str, ...]    # further docstring lines (meaning of the upstream, verification)


# ---------------------------------------------------------------------------- entry points
def lower(recipe: Recipe, derivation: Derivation) -> Lowered:
    """The module for `derivation` (derived from `recipe`) as a `Lowered` result."""
    from .derive.engine import parse_forward

    scope, out = parse_forward(recipe)
    _check_names(recipe, scope.dims)
    functions = _plan(recipe, derivation, out)
    source, helpers = _assemble(recipe, derivation, functions, out)
    return Lowered(target=derivation.target, source=source,
                   functions=tuple(f.name for f in functions),
                   formulas=tuple((f.name, f.equation) for f in functions),
                   helpers=helpers)


def module_source(recipe: Recipe, derivation: Derivation) -> str:
    return lower(recipe, derivation).source


def load_module(lowered: Lowered) -> types.ModuleType:
    """A module object built from a `Lowered`'s source (derivkit-generated, see module doc)."""
    name = f"derivkit_lowered_{lowered.target.replace('-', '_')}"
    filename = f"<derivkit lower {lowered.target}>"
    module = types.ModuleType(name)
    module.__file__ = filename
    # So that tracebacks and inspect.getsource show the generated lines.
    lines = lowered.source.splitlines(True)
    linecache.cache[filename] = (len(lowered.source), None, lines, filename)
    code = compile(lowered.source, filename, "exec")
    exec(code, module.__dict__)  # noqa: S102 - derivkit's own generated source, not user text
    return module


def load(lowered: Lowered) -> dict:
    """{function name: callable} for every public function of the lowered module."""
    module = load_module(lowered)
    return {name: getattr(module, name) for name in lowered.functions}


# ---------------------------------------------------------------------------- planning
def _check_names(recipe: Recipe, dims: set[str]) -> None:
    """Every name the module binds must be a usable, distinct Python name."""
    names = {i.name: "input" for i in recipe.inputs}
    names.update({p.name: "parameter" for p in recipe.params})
    names.setdefault(recipe.output, "output")
    names.setdefault(recipe.upstream, "upstream gradient")
    for name, what in list(names.items()) + [(d, "dimension") for d in sorted(dims)]:
        if name in RESERVED:
            raise DerivkitError(f"cannot lower: the {what} name {name!r} is reserved in the "
                                "generated Python module", "rename it")
    for d in sorted(dims):
        if d in names:
            raise DerivkitError(f"cannot lower: the dimension {d!r} has the same name as the "
                                f"{names[d]} {d!r}", "rename one of them")


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
            continue   # no closed matrix Jacobian: the vjp is still lowered; the module says so
        node, named = _verified_form(recipe, dv, parse_form)
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


def _verified_form(recipe: Recipe, dv: Derivative, parse_form) -> tuple[ir.Node, dict]:
    what = f"the {dv.kind} {dv.lhs_pretty}"
    if dv.matrix is None:
        raise DerivkitError(f"cannot lower {what}: no closed matrix form was obtained",
                            "'derivkit derive' shows its verified index form")
    ver = dv.matrix.verification
    if not ver.verified:
        reason = f": {ver.detail}" if ver.detail else ""
        raise DerivkitError(f"refusing to lower {what} = {dv.matrix.pretty}: it is NOT VERIFIED"
                            f"{reason}", "derivkit never emits an unverified gradient")
    node, named, _ = parse_form(recipe, dv.matrix.text)
    if language(node) != dv.matrix.text:   # what is lowered must be exactly what was verified
        raise RuntimeError(f"the form {dv.matrix.text!r} prints back as {language(node)!r}")
    return node, named


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


# ---------------------------------------------------------------------------- CSE
def _children(n: ir.Node) -> tuple[ir.Node, ...]:
    """The operands the printer prints (a macro prints its operands, not its expansion)."""
    if isinstance(n, ir.Macro):
        return n.operands
    if isinstance(n, ir.Var):
        return ()
    return n.args


def _worth_naming(n: ir.Node) -> bool:
    if isinstance(n, (ir.Var, ir.Const, ir.DimSize, ir.Eye, ir.Ones)):
        return False
    if isinstance(n, (ir.Transpose, ir.Neg)) and not _children(n.a):
        return False   # X.T, -x: cheaper to repeat than to name
    return True


def _order(roots: list[ir.Node]) -> list[ir.Node]:
    """Distinct subtrees, parents before children."""
    seen: set = set()
    post: list[ir.Node] = []
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
        stack.extend((c, False) for c in reversed(_children(n)) if c not in seen)
    return post[::-1]


def _occurrences(roots: list[ir.Node]) -> dict[ir.Node, int]:
    """How often each subtree is printed (counted with repetition)."""
    count: dict[ir.Node, int] = {}
    for r in roots:
        count[r] = count.get(r, 0) + 1
    for n in _order(roots):
        for c in _children(n):
            count[c] = count.get(c, 0) + count[n]
    return count


def _size(n: ir.Node, memo: dict) -> int:
    if n not in memo:
        memo[n] = 1 + sum(_size(c, memo) for c in _children(n))
    return memo[n]


def _replace(node: ir.Node, target: ir.Node, var: ir.Var) -> ir.Node:
    memo: dict = {}

    def go(n: ir.Node) -> ir.Node:
        if n == target:
            return var
        if n in memo:
            return memo[n]
        if isinstance(n, ir.Var):
            out = n
        elif isinstance(n, ir.Macro):
            ops, expansion = tuple(go(o) for o in n.operands), go(n.expansion)
            out = n if ops == n.operands else ir.Macro(n.fn, ops, n.kwargs, expansion, n.shape)
        else:
            args = n.args
            new = tuple(go(c) for c in args)
            out = n if new == args else n.with_args(*new)
        memo[n] = out
        return out

    return go(node)


def _cse(body: ir.Node, named: dict, taken: set[str]) -> tuple[ir.Node, dict]:
    """Name every subtree the function would compute twice, largest first (t1, t2, ...)."""
    named = dict(named)

    def needed_roots(root):
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
        sizes: dict = {}
        counts = _occurrences(roots)
        repeated = [n for n, c in counts.items() if c >= 2 and _worth_naming(n)]
        if not repeated:
            return body, named
        target = max(repeated, key=lambda n: _size(n, sizes))
        counter += 1
        while f"t{counter}" in taken or f"t{counter}" in named:
            counter += 1
        var = ir.Var(f"t{counter}", target.shape, "named")
        body = _replace(body, target, var)
        named = {k: _replace(v, target, var) for k, v in named.items()}
        named[var.name] = target


# ---------------------------------------------------------------------------- source
def _doc_text(text: str) -> str:
    """Text safe inside a triple-quoted docstring: backslashes, quotes and non-printable
    characters escaped (the docstring's value is the text itself)."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n" or ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def _wrap(text: str, indent: str, hang: str = "") -> list[str]:
    lines = []
    for para in text.split("\n"):
        lines += textwrap.wrap(para, WIDTH, initial_indent=indent, subsequent_indent=indent + hang,
                               break_long_words=False, break_on_hyphens=False) or [indent]
    return lines


def _function_source(f: _Function, recipe: Recipe, out: ir.Node) -> str:
    inputs = {i.name: tuple(i.shape) for i in recipe.inputs}
    if recipe.upstream in f.args:
        inputs[recipe.upstream] = tuple(out.shape)
    taken = set(inputs) | {p.name for p in recipe.params} | {recipe.output} | set(RESERVED)
    taken |= {d for s in inputs.values() for d in s if isinstance(d, str)}
    body, named = _cse(f.body, f.named, taken)
    params = {p.name: p.default for p in recipe.params}
    text = _drop_unused_dims(_lower.function_source(f.name, list(f.args), body, inputs, named,
                                                    params))
    head, rest = text.split("\n", 1)
    doc = [f.equation] + list(f.doc)
    if len(doc) == 1 and len(doc[0]) <= WIDTH - 10 and "\n" not in doc[0]:
        docstring = [f'    """{_doc_text(doc[0])}"""']
    else:
        lines = _wrap(doc[0], "    ")
        for para in doc[1:]:
            lines += [""] + _wrap(para, "    ")
        docstring = [_doc_text(ln).rstrip() for ln in lines] + ['    """']
        docstring[0] = '    """' + docstring[0][4:]
    return "\n".join([head] + docstring) + "\n" + rest


def _drop_unused_dims(text: str) -> str:
    """Remove `d = np.shape(X)[i]` lines binding a dimension the function does not use (the
    printer collects dimensions from macro expansions too, e.g. mean's divisor)."""
    lines = text.split("\n")
    used = _names_in(text, load_only=True)
    keep = [ln for ln in lines
            if not (_DIM_LINE.fullmatch(ln) and ln.split("=")[0].strip() not in used)]
    return "\n".join(keep)


def _helper_sources() -> dict[str, str]:
    tree = ast.parse(_lower.HELPERS)
    return {node.name: ast.get_source_segment(_lower.HELPERS, node)
            for node in tree.body if isinstance(node, ast.FunctionDef)}


def _names_in(source: str, load_only: bool = False) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)
            and (not load_only or isinstance(n.ctx, ast.Load))}


def _used_helpers(code: str) -> list[str]:
    helpers = _helper_sources()
    used: list[str] = []
    todo = _names_in(code)
    while todo:
        name = todo.pop()
        if name in helpers and name not in used:
            used.append(name)
            todo |= _names_in(helpers[name])
    return [name for name in helpers if name in used]   # in HELPERS' order


def _module_docstring(recipe: Recipe, derivation: Derivation, functions: list[_Function],
                      helpers: list[str], skipped: list[Derivative]) -> str:
    from . import __version__

    command = _command(recipe, derivation)
    lines = [f"{derivation.target}: {' '.join(derivation.summary.split())}", ""]
    lines += _wrap(f"Generated by derivkit {__version__} ({command}); imports only NumPy. Every "
                   "function below except forward computes a formula that derivkit derived from "
                   "the forward definition and verified against an independent element-wise "
                   "derivation before writing it here.", "")
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
    lines += ["", "Functions"]
    params = tuple(f"{p.name}={p.default!r}" for p in recipe.params)
    for f in functions:
        lines.append(f"    {f.name}(*, {', '.join(f.args + params)})")
        lines += _wrap(f.equation, "        ")
        for para in f.doc:
            lines += _wrap(para, "        ")
    for dv in skipped:
        lines += _wrap(f"No jacobian_{dv.wrt}: no closed matrix Jacobian {dv.lhs_pretty} was "
                       f"obtained (vjp_{dv.wrt} is exact).", "    ")
    if derivation.conventions:
        lines += ["", "Conventions"]
        for c in derivation.conventions:
            lines += _wrap(f"- {c}", "    ", "  ")
    return "\n".join(_doc_text(ln).rstrip() for ln in lines)


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


def _assemble(recipe: Recipe, derivation: Derivation, functions: list[_Function],
              out: ir.Node) -> tuple[str, tuple[str, ...]]:
    bodies = [_function_source(f, recipe, out) for f in functions]
    code = "\n\n".join(bodies)
    helpers = _used_helpers(code)
    helper_src = _helper_sources()
    skipped = [dv for dv in derivation.derivatives if dv.kind == "jacobian" and dv.matrix is None]
    doc = _module_docstring(recipe, derivation, functions, helpers, skipped)
    parts = [f'"""{doc}\n"""\n\nimport numpy as np\n']
    parts += [helper_src[h] + "\n" for h in helpers]
    parts += bodies
    parts.append("__all__ = [" + ", ".join(repr(f.name) for f in functions) + "]\n")
    source = "\n\n".join(parts)
    compile(source, f"<derivkit lower {derivation.target}>", "exec")   # a bug here is ours
    return source, tuple(helpers)
