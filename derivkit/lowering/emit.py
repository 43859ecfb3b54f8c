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


class EmitError(RuntimeError):
    """Generated source failed its audit: a bug in derivkit, never a user error."""


# ---------------------------------------------------------------------------- names
def numpy_alias(user_names: Iterable[str]) -> str:
    """`np`, or `_np` where a user name is `np`."""
    return "_np" if "np" in set(user_names) else "np"


def alias_in(source: str) -> str:
    """The NumPy alias generated `source` uses (`_np` is no user name, so its presence tells)."""
    names = {t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
             if t.type == tokenize.NAME}
    return "_np" if "_np" in names else "np"


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


def _aliased(text: str, alias: str) -> str:
    return text if alias == "np" else rename(text, "np", alias).strip()


def helper_sources(names: Iterable[str], alias: str = "np", batched: bool = False) -> list[str]:
    """Sources of the named helpers and of those they call, in table order, using `alias`."""
    table = _HELPER_SOURCES[batched]
    return [_aliased(table[n], alias) for n in _closure(names, table)]


def used_helpers(source: str, batched: bool = False) -> list[str]:
    """Helpers `source` calls, directly or through another helper, in table order."""
    return _closure(_loaded(source), _HELPER_SOURCES[batched])


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
_ATTRIBUTES = {"T"}


def audit(source: str, *, alias: str = "np", batched: bool = False) -> ast.Module:
    """Parse `source` and check it is code the emitter writes (see the module docstring);
    raises EmitError otherwise. Helper definitions must be exactly derivkit's helpers."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise EmitError(f"generated source does not parse: {exc.msg} (line {exc.lineno})") from None
    helpers = {name: _aliased(text, alias) for name, text in _HELPER_SOURCES[batched].items()}
    module_names = {alias}
    body = list(tree.body)
    if body and _is_docstring(body[0]):
        body = body[1:]
    for stmt in body:
        if isinstance(stmt, ast.Import):
            if [(a.name, a.asname) for a in stmt.names] != [("numpy", alias)]:
                raise EmitError(f"generated source imports {ast.unparse(stmt)!r}")
        elif isinstance(stmt, ast.FunctionDef) and stmt.name in module_names:
            raise EmitError(f"{stmt.name} is defined twice")
        elif isinstance(stmt, ast.FunctionDef) and stmt.name in helpers:
            if (ast.get_source_segment(source, stmt) or "").strip() != helpers[stmt.name].strip():
                raise EmitError(f"helper {stmt.name} differs from derivkit's own")
            module_names.add(stmt.name)
        elif isinstance(stmt, ast.FunctionDef):
            module_names.add(stmt.name)
        elif isinstance(stmt, ast.Assign) and [ast.unparse(t) for t in stmt.targets] == ["__all__"]:
            if not (isinstance(stmt.value, ast.List) and all(
                    isinstance(e, ast.Constant) and isinstance(e.value, str) and IDENT_ANY.match(e.value)
                    for e in stmt.value.elts)):
                raise EmitError("__all__ must list function names")
        else:
            raise EmitError(f"unexpected statement in generated source: {ast.unparse(stmt)[:80]!r}")
    for stmt in body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name not in helpers:
            _audit_function(stmt, module_names | set(helpers))
    return tree


def _is_docstring(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


def _audit_function(fn: ast.FunctionDef, module_names: set[str]) -> None:
    a = fn.args
    if a.posonlyargs or a.args or a.vararg or a.kwarg or fn.decorator_list or fn.returns:
        raise EmitError(f"{fn.name}: only keyword-only arguments are generated")
    for d in a.kw_defaults:
        if d is not None and not _is_number(d) and not (isinstance(d, ast.Constant) and d.value is None):
            raise EmitError(f"{fn.name}: a default that is not a number")
    bound = set(module_names) | {arg.arg for arg in a.kwonlyargs}
    body = list(fn.body)
    if body and _is_docstring(body[0]):
        body = body[1:]
    if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
        raise EmitError(f"{fn.name}: must end in a return")
    for stmt in body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            _audit_expr(stmt.value, bound, fn.name)
            bound.add(stmt.targets[0].id)
        elif isinstance(stmt, ast.Return) and stmt is body[-1] and stmt.value is not None:
            _audit_expr(stmt.value, bound, fn.name)
        else:
            raise EmitError(f"{fn.name}: unexpected statement {ast.unparse(stmt)[:80]!r}")


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _is_number(node.operand)
    return (isinstance(node, ast.Constant) and isinstance(node.value, _NUMBER)
            and not isinstance(node.value, bool))


def _audit_expr(expr: ast.AST, bound: set[str], where: str) -> None:
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
            if not (node.attr in _ATTRIBUTES or _is_module_attribute(node, bound)):
                raise EmitError(f"{where}: attribute .{node.attr} is not generated")
        elif isinstance(node, ast.Call):
            if node.args and any(isinstance(x, ast.Starred) for x in node.args):
                raise EmitError(f"{where}: starred arguments are not generated")
            if any(k.arg is None for k in node.keywords):
                raise EmitError(f"{where}: ** arguments are not generated")


def _is_module_attribute(node: ast.Attribute, bound: set[str]) -> bool:
    """np.exp, np.linalg.det (or their `_np` spelling)."""
    base = node.value
    while isinstance(base, ast.Attribute):
        base = base.value
    return isinstance(base, ast.Name) and base.id in ("np", "_np") and base.id in bound


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


def load_module(source: str, name: str, filename: str) -> types.ModuleType:
    """A module object from a lowered module's source (audited first, then run by `_execute`).
    Registers the lines so tracebacks and inspect show them."""
    alias = alias_in(source)
    audit(source, alias=alias)
    module = types.ModuleType(name)
    module.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    _execute(source, filename, module.__dict__)
    return module


def _execute(source: str, filename: str, namespace: dict[str, Any]) -> None:
    """The one place derivkit runs code: generated source that `audit` has just accepted."""
    exec(compile(source, filename, "exec"), namespace)
