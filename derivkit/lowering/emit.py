"""The one emitter of generated Python: lowered modules, compiled forward and form functions,
batched check functions and composite backward passes are all assembled, audited and built here.

Safe by construction, whatever names a recipe or `--expr` declares:

- user names (inputs, dimensions, parameters, steps, output, upstream) are identifiers of the
  expression language, `[A-Za-z][A-Za-z0-9]*` and not a Python keyword (`lang.names.user_name_problem`,
  enforced where names are declared), so they can be arguments and locals as they are;
- every name derivkit itself introduces contains an underscore (`_softmax`, `_line3`, `_real`),
  which no user name can, except NumPy's conventional alias `np`, which becomes `_np` in a
  function or module where a user name is `np` (`numpy_alias`);
- generated code calls no builtin (a user name may shadow any of them): only NumPy attributes
  and the helpers below;
- user text reaches generated source only through `docstring_text` (escaped);
- `audit` parses the emitted source back with `ast` before it is written or run: only the
  statement and expression forms the printers produce, no string constant but docstrings and
  `__all__`, every name loaded bound by an argument, an earlier assignment, the NumPy alias or
  a helper. `_execute`, called by `build` and `load_module`, is the only place that runs it.

The same audit, with `target="torch"`, reads `derivkit lower --target torch` modules
(`derivkit.lowering.torch_module`): `import torch` instead of NumPy, the helpers of
`TORCH_HELPERS`, and besides keyword-only functions one `torch.autograd.Function` subclass whose
static `forward`/`backward` only save, unpack and pass tensors, and the plain function calling
its `.apply`. Those statements are checked form by form (`_audit_torch_class`).
"""

from __future__ import annotations

import ast
import io
import linecache
import re
import tokenize
import types
from collections.abc import Callable, Iterable
from typing import Any

from ..lang.ops import ELEMENTWISE

IDENT_ANY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")     # any name the emitter writes

#: Helper functions a generated function may call; their sources are derivkit's own (below).
HELPERS = '''\
def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)
'''

#: Complex-safe helpers of the batched (check) functions.
BATCH_HELPERS = '''\
def _softmax(x, axis=-1):
    e = np.exp(x - np.max(np.real(x), axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _logsumexp(x, axis=None, keepdims=False):
    m = np.max(np.real(x), axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _shared(a):
    """a[0] if every batch member of `a` equals it (the real part of a complex-step batch)."""
    return a[0] if a.ndim == 3 and np.array_equal(a, np.broadcast_to(a[:1], a.shape)) else None


def _matmul(a, b, shared_a=None, shared_b=None):
    """a @ b where one operand may carry a leading batch axis. A complex-step batch is split
    into real and imaginary parts (real GEMMs, not complex ones of four times the work), and a
    real part shared by the whole batch (x + i·h·v has the same real part for every v) is
    multiplied once."""
    if not (np.iscomplexobj(a) or np.iscomplexobj(b)):
        return np.matmul(a, b)
    re_a, re_b = np.real(a), np.real(b)
    sa = shared_a if shared_a is not None else _shared(re_a)
    sb = shared_b if shared_b is not None else _shared(re_b)
    real = np.matmul(re_a if sa is None else sa, re_b if sb is None else sb)
    imag = None
    if np.iscomplexobj(a):
        imag = np.matmul(np.imag(a), re_b if sb is None else sb)
    if np.iscomplexobj(b):
        part = np.matmul(re_a if sa is None else sa, np.imag(b))
        imag = part if imag is None else imag + part
    out = np.empty(np.broadcast_shapes(real.shape, imag.shape), dtype=np.result_type(a, b))
    out.real = real
    out.imag = imag
    return out
'''


#: Helpers of `derivkit lower --target torch` modules (float dtype and device follow `like`, an
#: input tensor). No builtin is called: a module-level name may be a recipe's.
TORCH_HELPERS = '''\
def _tensor(x, like):
    return torch.as_tensor(x, dtype=like.dtype, device=like.device)


def _eye(n, like):
    return torch.eye(n, dtype=like.dtype, device=like.device)


def _ones(shape, like):
    return torch.ones(shape, dtype=like.dtype, device=like.device)


def _one_hot(labels, k, like):
    return torch.eye(k, dtype=like.dtype, device=like.device)[labels]


def _logsumexp(x, axis=None, keepdims=False):
    if axis is not None:
        return torch.logsumexp(x, dim=axis, keepdim=keepdims)
    out = torch.logsumexp(torch.reshape(x, (-1,)), dim=0)
    return torch.reshape(out, (1,) * x.dim()) if keepdims else out


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))


def _leaky_relu(x, alpha):
    return torch.where(x >= 0, x, alpha * x)
'''


class EmitError(RuntimeError):
    """Generated source failed its audit: a bug in derivkit, never a user error."""


# ---------------------------------------------------------------------------- names
def numpy_alias(user_names: Iterable[str]) -> str:
    """`np`, or `_np` where a user name is `np`."""
    return "_np" if "np" in set(user_names) else "np"


def alias_in(source: str, target: str = "numpy") -> str:
    """The NumPy (or torch) alias generated `source` uses (`_np`/`_torch` is no user name, so
    its presence tells)."""
    base = "torch" if target == "torch" else "np"
    names = {t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
             if t.type == tokenize.NAME}
    return f"_{base}" if f"_{base}" in names else base


def rename(source: str, old: str, new: str) -> str:
    """`source` with every NAME token `old` replaced by `new` (derivkit's own source only)."""
    lines = source.splitlines(True)
    hits = [t.start for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type == tokenize.NAME and t.string == old]
    for row, col in reversed(hits):   # later columns first: earlier ones stay where they are
        lines[row - 1] = lines[row - 1][:col] + new + lines[row - 1][col + len(old):]
    return "".join(lines)


def _helper_table(text: str) -> dict[str, str]:
    tree = ast.parse(text)
    return {n.name: ast.get_source_segment(text, n) or "" for n in tree.body
            if isinstance(n, ast.FunctionDef)}


#: Helpers by name, for real code and for the complex-safe batched (check) code: the ones above
#: and each elementwise function's own (its op-table entry).
_HELPER_SOURCES = {
    False: _helper_table(HELPERS + "".join("\n\n" + f.helper for f in ELEMENTWISE.values() if f.helper)),
    True: _helper_table(BATCH_HELPERS + "".join("\n\n" + (f.helper_complex or f.helper)
                                                for f in ELEMENTWISE.values() if f.helper)),
    "torch": _helper_table(TORCH_HELPERS),
}


def _loaded(source: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}


def _closure(names: Iterable[str], table: dict[str, str]) -> list[str]:
    """The helpers among `names` and those they call, directly or not, in table order."""
    wanted: set[str] = set()
    todo = [n for n in names if n in table]
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo += [n for n in _loaded(table[name]) if n in table]
    return [n for n in table if n in wanted]


def _aliased(text: str, alias: str, base: str = "np") -> str:
    return text if alias == base else rename(text, base, alias).strip()


def _table(batched: bool, target: str) -> dict[str, str]:
    return _HELPER_SOURCES["torch" if target == "torch" else batched]


def helper_sources(names: Iterable[str], alias: str = "np", batched: bool = False,
                   target: str = "numpy") -> list[str]:
    """Sources of the named helpers and of those they call, in table order, using `alias`
    (NumPy's name, or torch's for `target="torch"`)."""
    table = _table(batched, target)
    base = "torch" if target == "torch" else "np"
    return [_aliased(table[n], alias, base) for n in _closure(names, table)]


def used_helpers(source: str, batched: bool = False, target: str = "numpy") -> list[str]:
    """Helpers `source` calls, directly or through another helper, in table order."""
    return _closure(_loaded(source), _table(batched, target))


# ---------------------------------------------------------------------------- text
def docstring_text(text: str) -> str:
    """`text` safe inside a triple-quoted docstring: backslashes and quotes escaped, and each
    non-printable character written as a visible escape (the docstring's value shows `\\x07`,
    so `help(module)` sends no control character to a terminal)."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n" or ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\\\u{ord(ch):04x}")
        else:
            out.append(f"\\\\U{ord(ch):08x}")
    return "".join(out)


def function(fname: str, args: list[str], params: dict[str, float], assignments: list[tuple[str, str]],
             result: str, doc: list[str] | None = None) -> str:
    """`def fname(*, args..., params=defaults):` with one line per (name, expression) and
    `return result`. Parameters' defaults are finite floats (checked where declared)."""
    sig = ", ".join(list(args) + [f"{p}={float(v)!r}" for p, v in params.items()])
    lines = [f"def {fname}(*, {sig}):"]
    lines += doc or []
    lines += [f"    {name} = {expr}" for name, expr in assignments]
    lines.append(f"    return {result}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- audit
_NUMBER = (int, float, complex)
_EXPR_NODES = (ast.BinOp, ast.UnaryOp, ast.Compare, ast.Call, ast.Attribute, ast.Name,
               ast.Constant, ast.Tuple, ast.Subscript, ast.keyword,
               ast.operator, ast.unaryop, ast.cmpop, ast.expr_context)
#: (attributes an expression may read of any value, names an attribute chain may start at)
_Rules = tuple[frozenset[str], tuple[str, ...]]
_NUMPY_RULES: _Rules = (frozenset({"T"}), ("np", "_np"))
#: a torch module reads tensors' `.mT` (the matrix transpose) and `.shape` (sizes)
_TORCH_RULES: _Rules = (frozenset({"T", "mT", "shape"}), ("torch", "_torch"))
#: the context argument of a torch module's autograd.Function methods, and what they do with it
_CTX = "_ctx"
_CTX_ATTRIBUTES = {"save_for_backward", "saved_tensors", "params"}


def audit(source: str, *, alias: str = "np", batched: bool = False,
          target: str = "numpy") -> ast.Module:
    """Parse `source` and check it is code the emitter writes (see the module docstring);
    raises EmitError otherwise. Helper definitions must be exactly derivkit's helpers."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise EmitError(f"generated source does not parse: {exc.msg} (line {exc.lineno})") from None
    torch = target == "torch"
    base = "torch" if torch else "np"
    helpers = {name: _aliased(text, alias, base) for name, text in _table(batched, target).items()}
    module_names = {alias}
    classes: list[ast.ClassDef] = []
    body = list(tree.body)
    if body and _is_docstring(body[0]):
        body = body[1:]
    for stmt in body:
        if isinstance(stmt, ast.Import):
            wanted = ("torch", None if alias == "torch" else alias) if torch else ("numpy", alias)
            if [(a.name, a.asname) for a in stmt.names] != [wanted]:
                raise EmitError(f"generated source imports {ast.unparse(stmt)!r}")
        elif isinstance(stmt, (ast.FunctionDef, ast.ClassDef)) and stmt.name in module_names:
            raise EmitError(f"{stmt.name} is defined twice")
        elif isinstance(stmt, ast.FunctionDef) and stmt.name in helpers:
            if stmt.decorator_list or \
                    (ast.get_source_segment(source, stmt) or "").strip() != helpers[stmt.name].strip():
                raise EmitError(f"helper {stmt.name} differs from derivkit's own")
            module_names.add(stmt.name)
        elif isinstance(stmt, ast.FunctionDef):
            module_names.add(stmt.name)
        elif torch and isinstance(stmt, ast.ClassDef):
            classes.append(stmt)
            module_names.add(stmt.name)
        elif isinstance(stmt, ast.Assign) and [ast.unparse(t) for t in stmt.targets] == ["__all__"]:
            if not (isinstance(stmt.value, ast.List) and all(
                    isinstance(e, ast.Constant) and isinstance(e.value, str) and IDENT_ANY.match(e.value)
                    for e in stmt.value.elts)):
                raise EmitError("__all__ must list function names")
        else:
            raise EmitError(f"unexpected statement in generated source: {ast.unparse(stmt)[:80]!r}")
    if "staticmethod" in module_names:
        raise EmitError("staticmethod is redefined")
    rules = _TORCH_RULES if torch else _NUMPY_RULES
    for stmt in body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name not in helpers:
            _audit_function(stmt, module_names | set(helpers), rules, {c.name for c in classes})
    for cls in classes:
        _audit_torch_class(cls, module_names | set(helpers), alias)
    return tree


def _is_docstring(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


def _audit_function(fn: ast.FunctionDef, module_names: set[str], rules: _Rules = _NUMPY_RULES,
                    classes: set[str] | None = None) -> None:
    """A keyword-only function of assignments and a return; with `classes` (a torch module),
    also the plain function `f(inputs..., *, params=...)` returning `Class.apply(...)`."""
    a = fn.args
    _no_annotations(fn)
    wrapper = bool(classes) and bool(a.args)
    if (a.posonlyargs or (a.args and not wrapper) or a.defaults or a.vararg or a.kwarg
            or fn.decorator_list or fn.returns):
        raise EmitError(f"{fn.name}: only keyword-only arguments are generated")
    for d in a.kw_defaults:
        if d is not None and not _is_number(d) and not (isinstance(d, ast.Constant) and d.value is None):
            raise EmitError(f"{fn.name}: a default that is not a number")
    bound = set(module_names) | {arg.arg for arg in a.args + a.kwonlyargs}
    body = list(fn.body)
    if body and _is_docstring(body[0]):
        body = body[1:]
    if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
        raise EmitError(f"{fn.name}: must end in a return")
    if wrapper:
        ret = body[-1].value
        if not (len(body) == 1 and isinstance(ret, ast.Call) and isinstance(ret.func, ast.Attribute)
                and ret.func.attr == "apply" and isinstance(ret.func.value, ast.Name)
                and ret.func.value.id in (classes or set()) and not ret.keywords
                and all(isinstance(x, ast.Name) and x.id in bound for x in ret.args)):
            raise EmitError(f"{fn.name}: must return Function.apply(its arguments)")
        return
    for stmt in body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            _audit_expr(stmt.value, bound, fn.name, rules)
            bound.add(stmt.targets[0].id)
        elif isinstance(stmt, ast.Return) and stmt is body[-1] and stmt.value is not None:
            _audit_expr(stmt.value, bound, fn.name, rules)
        else:
            raise EmitError(f"{fn.name}: unexpected statement {ast.unparse(stmt)[:80]!r}")


def _audit_torch_class(cls: ast.ClassDef, module_names: set[str], alias: str) -> None:
    """`class C(torch.autograd.Function)` with a docstring and static `forward(_ctx, ...)`,
    `backward(_ctx, upstream)`: each saves or unpacks tensors and calls module functions."""
    if (cls.decorator_list or cls.keywords or len(cls.bases) != 1
            or ast.unparse(cls.bases[0]) != f"{alias}.autograd.Function"):
        raise EmitError(f"{cls.name}: only torch.autograd.Function subclasses are generated")
    body = list(cls.body)
    if body and _is_docstring(body[0]):
        body = body[1:]
    if sorted(getattr(m, "name", "") for m in body) != ["backward", "forward"]:
        raise EmitError(f"{cls.name}: must define exactly forward and backward")
    for method in body:
        assert isinstance(method, ast.FunctionDef)
        _no_annotations(method)
        a = method.args
        if ([ast.unparse(d) for d in method.decorator_list] != ["staticmethod"] or method.returns
                or a.posonlyargs or a.kwonlyargs or a.vararg or a.kwarg or a.defaults
                or not a.args or a.args[0].arg != _CTX):
            raise EmitError(f"{cls.name}.{method.name}: only static methods of (_ctx, tensors...)")
        where = f"{cls.name}.{method.name}"
        bound = set(module_names) | {arg.arg for arg in a.args}
        stmts = list(method.body)
        if stmts and _is_docstring(stmts[0]):
            stmts = stmts[1:]
        if not stmts or not isinstance(stmts[-1], ast.Return) or stmts[-1].value is None:
            raise EmitError(f"{where}: must end in a return")
        for stmt in stmts:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                _audit_expr(stmt.value, bound, where, _TORCH_RULES, ctx=True)
                target = stmt.targets[0]
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                for t in names:
                    if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store):
                        bound.add(t.id)
                    elif not (ast.unparse(t) == f"{_CTX}.params" and method.name == "forward"):
                        raise EmitError(f"{where}: assigns to {ast.unparse(t)[:40]!r}")
            elif (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
                  and ast.unparse(stmt.value.func) == f"{_CTX}.save_for_backward"):
                _audit_expr(stmt.value, bound, where, _TORCH_RULES, ctx=True)
            elif isinstance(stmt, ast.Return) and stmt is stmts[-1] and stmt.value is not None:
                _audit_expr(stmt.value, bound, where, _TORCH_RULES, ctx=True)
            else:
                raise EmitError(f"{where}: unexpected statement {ast.unparse(stmt)[:80]!r}")


def _no_annotations(fn: ast.FunctionDef) -> None:
    """Generated functions have no annotations (an annotation is an expression the audit would
    otherwise not see, evaluated at definition time without `from __future__ import annotations`)."""
    a = fn.args
    if any(arg.annotation is not None for arg in a.posonlyargs + a.args + a.kwonlyargs):
        raise EmitError(f"{fn.name}: annotations are not generated")


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _is_number(node.operand)
    return (isinstance(node, ast.Constant) and isinstance(node.value, _NUMBER)
            and not isinstance(node.value, bool))


def _audit_expr(expr: ast.AST, bound: set[str], where: str, rules: _Rules = _NUMPY_RULES,
                ctx: bool = False) -> None:
    attributes, modules = rules
    for node in ast.walk(expr):
        if not isinstance(node, _EXPR_NODES):
            raise EmitError(f"{where}: {type(node).__name__} is not generated")
        if isinstance(node, ast.Name):
            if not isinstance(node.ctx, ast.Load) or node.id not in bound:
                raise EmitError(f"{where}: the name {node.id!r} is not bound")
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, str) or isinstance(node.value, bytes):
                raise EmitError(f"{where}: a string constant {node.value!r:.40} in generated code")
        elif isinstance(node, ast.Attribute):
            if not (node.attr in attributes or _is_module_attribute(node, bound, modules)
                    or (ctx and node.attr in _CTX_ATTRIBUTES and isinstance(node.value, ast.Name)
                        and node.value.id == _CTX)):
                raise EmitError(f"{where}: attribute .{node.attr} is not generated")
        elif isinstance(node, ast.Call):
            if node.args and any(isinstance(x, ast.Starred) for x in node.args):
                raise EmitError(f"{where}: starred arguments are not generated")
            if any(k.arg is None for k in node.keywords):
                raise EmitError(f"{where}: ** arguments are not generated")


#: The functions, constants and types of NumPy or torch that generated code reads: an attribute
#: chain from `np` / `torch` must spell one of these (np.f2py.os.system, np.__builtins__ and
#: torch.os.system are not generated, so they are refused).
MODULE_ATTRIBUTES = frozenset("""
    abs add all amax amin any arange argmax array as_tensor asarray autograd.Function broadcast_to
    clamp clip cos cosh diag diag_embed diagonal einsum erf exp expand_dims expm1 eye float64
    full full_like inf linalg.det linalg.inv linalg.norm linalg.slogdet log log1p logaddexp
    logsumexp matmul max maximum mean min minimum moveaxis multiply divide power subtract relu
    nn.functional.gelu
    nn.functional.softplus ones ones_like outer permute pi prod real reshape shape sigmoid sign
    sin sinh softmax special.erf sqrt square squeeze std sum swapaxes take take_along_axis
    take_along_dim tan tanh tensor trace transpose unsqueeze var where zeros zeros_like
""".split())


def _is_module_attribute(node: ast.Attribute, bound: set[str], modules: tuple[str, ...]) -> bool:
    """np.exp, np.linalg.det (or their `_np` spelling); torch.nn.functional.gelu in a torch
    module (`modules`: the names the chain may start at): one of MODULE_ATTRIBUTES, or a prefix
    of one (np.linalg, read on the way to np.linalg.det)."""
    chain = [node.attr]
    base = node.value
    while isinstance(base, ast.Attribute):
        chain.append(base.attr)
        base = base.value
    if not (isinstance(base, ast.Name) and base.id in modules and base.id in bound):
        return False
    path = ".".join(reversed(chain))
    return path in MODULE_ATTRIBUTES or any(a.startswith(path + ".") for a in MODULE_ATTRIBUTES)


# ---------------------------------------------------------------------------- build
def build(source: str, fname: str, *, alias: str = "np", batched: bool = False,
          label: str | None = None) -> Callable[..., Any]:
    """The function `fname` defined by generated `source` (helpers added as it needs them),
    audited, then run by `_execute`."""
    import numpy

    full = "\n\n".join(helper_sources(used_helpers(source, batched), alias, batched) + [source])
    audit(full, alias=alias, batched=batched)
    namespace: dict[str, Any] = {alias: numpy}
    _execute(full, f"<derivkit:{label or fname}>", namespace)
    fn = namespace[fname]
    fn.__source__ = source
    return fn


def load_module(source: str, name: str, filename: str, target: str = "numpy") -> types.ModuleType:
    """A module object from a lowered module's source (audited first, then run by `_execute`).
    Registers the lines so tracebacks and inspect show them. A torch module (`target="torch"`)
    needs torch installed."""
    alias = alias_in(source, target)
    audit(source, alias=alias, target=target)
    module = types.ModuleType(name)
    module.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    _execute(source, filename, module.__dict__)
    return module


def _execute(source: str, filename: str, namespace: dict[str, Any]) -> None:
    """The one place derivkit runs code: generated source that `audit` has just accepted."""
    exec(compile(source, filename, "exec"), namespace)
