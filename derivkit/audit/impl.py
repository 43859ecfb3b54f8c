"""`derivkit check NAME --impl FILE.py:FUNCTION`: check a user's hand-written backward function.

The user's file is imported with importlib from its path (never eval/exec of text) and run as
their own code. FUNCTION is called with keyword arguments:
- the recipe's inputs, by name (X=, W=, b=), those its signature accepts (all with **kwargs);
- `g`, the upstream gradient ∂L/∂output, or the recipe's own name for it (G for linear) if the
  signature has that instead; for a scalar output (a loss) `g=1.0`, only if asked for;
- the recipe's parameters (alpha=), only if the signature accepts them.
It returns one array (one input checked), a tuple in ⟨--wrt|wrt⟩ order (default: the recipe's wrt
order; a tuple of every wrt input of the recipe is also accepted) or a dict keyed by input name.

PyTorch functions work too, detected by trying: if the call with NumPy arrays raises a
TypeError or AttributeError (what torch-only code raises on them) and the function's module
imported torch, it is called again with float64 torch tensors (integer labels: int64); a function that returns
tensors has them read back with `.detach().cpu().numpy()`. Either way the check's notes say
"called with torch tensors (float64)".

Every call gets copies of the inputs; an input changed in place is recorded on the callable
(`modified`) and becomes a failed result with a diagnosis. Anything the user's code prints goes
to stderr, so `--json` stays valid. Every problem with the file or a call is one
`DerivkitError` line (exit 2), naming the exception and the file:line it came from.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, cast

from ..errors import DerivkitError
from ..lang.recipes import Recipe

if TYPE_CHECKING:
    import numpy as np

    from ..results import Derivation, TargetCheck

#: How a message names the implementation: "--impl" on the command line, "implementation" in Python.
IMPL = "⟨--impl|implementation⟩"
SPEC_HINT = "give FILE.py:FUNCTION, e.g. ⟨--impl backward.py:linear_backward|'backward.py:linear_backward'⟩"


# ---------------------------------------------------------------- loading the user's file
class UserFunction:
    """The user's callable with where it came from (for messages)."""

    def __init__(self, fn: Callable[..., Any], label: str, path: Path | None) -> None:
        self.fn = fn
        self.label = label
        self.path = path


def parse_spec(spec: str) -> tuple[Path, str]:
    """'path/to/file.py:function' -> (path, 'function'); the last ':' separates them."""
    text = str(spec).strip()
    file_part, sep, name = text.rpartition(":")
    if not sep or not file_part or not name:
        raise DerivkitError(f"{IMPL} {text!r}: no function named", SPEC_HINT)
    if not all(part.isidentifier() for part in name.split(".")):
        raise DerivkitError(f"{IMPL} {text!r}: {name!r} is not a Python name", SPEC_HINT)
    return Path(file_part), name


def _where(exc: BaseException, path: Path | None) -> str:
    """'file.py:12' of the innermost frame in the user's file (else the innermost frame)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{Path(exc.filename).name}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if path is not None and _same_file(f.filename, path)]
    frame = mine[-1] if mine else frames[-1] if frames else None
    return "" if frame is None else f"{Path(frame.filename).name}:{frame.lineno}"


def _same_file(filename: str, path: Path) -> bool:
    try:
        return Path(filename).resolve() == path.resolve()
    except OSError:
        return False


def _exception_text(exc: BaseException, path: Path | None) -> str:
    message = " ".join(str(exc).split())
    if len(message) > 300:
        message = message[:297] + "..."
    where = _where(exc, path)
    return f"{type(exc).__name__}" + (f": {message}" if message else "") + \
        (f" (at {where})" if where else "")


@contextlib.contextmanager
def _user_code() -> Iterator[None]:
    """While the user's code runs: its prints go to stderr (stdout may be --json)."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def load(spec: str) -> UserFunction:
    """Import FILE (run as Python: the user's own code) and return FUNCTION from it."""
    path, name = parse_spec(spec)
    label = f"{path}:{name}"
    if not path.exists():
        raise DerivkitError(f"{IMPL} {label}: no such file {str(path)!r}")
    if not path.is_file():
        raise DerivkitError(f"{IMPL} {label}: {str(path)!r} is not a file")
    if path.suffix != ".py":
        raise DerivkitError(f"{IMPL} {label}: {str(path)!r} is not a .py file", SPEC_HINT)
    resolved = path.resolve()
    module_name = "derivkit_impl_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    spec_ = importlib.util.spec_from_file_location(module_name, resolved)
    if spec_ is None or spec_.loader is None:
        raise DerivkitError(f"{IMPL} {label}: cannot import {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec_)
    sys.modules[module_name] = module   # dataclasses and pickling look their module up there
    folder = str(resolved.parent)
    sys.path.insert(0, folder)          # like `python FILE`: its own folder is importable
    try:
        with _user_code():
            spec_.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(module_name, None)
        raise DerivkitError(f"{IMPL} {label}: importing {path.name} raised "
                            f"{_exception_text(exc, resolved)}") from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise DerivkitError(f"{IMPL} {label}: {path.name} has no function {name!r}",
                                _defined_hint(module, module_name, name))
        obj = getattr(obj, part)
    if not callable(obj):
        raise DerivkitError(f"{IMPL} {label}: {name!r} is not a function: it is "
                            f"{_type_text(obj)}")
    return UserFunction(obj, label, resolved)


def _defined_hint(module: ModuleType, module_name: str, name: str) -> str:
    import difflib

    defined = sorted(k for k, v in vars(module).items()
                     if callable(v) and getattr(v, "__module__", None) == module_name
                     and not k.startswith("_"))
    close = difflib.get_close_matches(name, defined, n=3, cutoff=0.6)
    if close:
        return f"did you mean {', '.join(close)}?"
    if not defined:
        return "it defines no function"
    more = f", … ({len(defined)} in all)" if len(defined) > 8 else ""
    return f"it defines {', '.join(defined[:8])}{more}"


# ---------------------------------------------------------------- calling it
class _Gradient(Protocol):
    """`Implementation.for_input(w)`: ∂L/∂w from keywords, with the user's in-place changes
    (`modified`, shared by every input's callable) and the function's label."""

    modified: dict[str, float]
    label: str

    def __call__(self, **kwargs: Any) -> np.ndarray: ...


class Implementation:
    """The user's backward function bound to a recipe: `for_input(w)` is the callable the
    checker uses for ∂L/∂w (keywords: inputs, the recipe's upstream name, parameters)."""

    def __init__(self, user: UserFunction, recipe: Recipe, full_wrt: tuple[str, ...],
                 scalar_output: bool) -> None:
        self.user = user
        self.recipe = recipe
        self.order = tuple(recipe.wrt)
        self.full_order = tuple(full_wrt)
        self.scalar_output = scalar_output
        self.modified: dict[str, float] = {}   # input name -> largest in-place change
        self.torch: bool | None = None   # called with torch tensors (None: not yet called)
        self._plan()

    # -- the calling convention, checked before anything runs
    def _plan(self) -> None:
        label, recipe = self.user.label, self.recipe
        try:
            sig = inspect.signature(self.user.fn)
        except (TypeError, ValueError):
            sig = None
        inputs = [i.name for i in recipe.inputs]
        params = [p.name for p in recipe.params]
        taken = set(inputs) | set(params)
        upstream_names = [n for n in dict.fromkeys(("g", recipe.upstream)) if n not in taken]
        if sig is None:
            self.var_kw, names = True, set()
        else:
            self.var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
            names = {n for n, p in sig.parameters.items()
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
            for n, p in sig.parameters.items():
                if p.kind is p.POSITIONAL_ONLY and p.default is p.empty:
                    raise DerivkitError(f"{IMPL} {label}: parameter {n!r} is positional-only; "
                                        "derivkit passes keyword arguments",
                                        "remove the '/' from the signature")
        self.inputs = [n for n in inputs if self.var_kw or n in names]
        self.params = [n for n in params if self.var_kw or n in names]
        self.upstream = [n for n in upstream_names if n in names][:1] or \
            (upstream_names if self.var_kw else [])
        accepted = ", ".join(inputs + [" or ".join(upstream_names)] + params)
        unknown = [] if sig is None else [
            n for n, p in sig.parameters.items()
            if n in names and n not in taken and n not in upstream_names and p.default is p.empty]
        if not self.upstream and not self.scalar_output:
            if unknown:
                raise DerivkitError(
                    f"{IMPL} {label}: the function takes no upstream gradient: its parameter "
                    f"{unknown[0]!r} is not a name derivkit passes (accepted: {accepted})",
                    f"rename {unknown[0]} to {upstream_names[-1]}: ∂L/∂{recipe.output}, the "
                    f"shape of {recipe.output}")
            raise DerivkitError(
                f"{IMPL} {label}: the function takes no upstream gradient",
                f"add a parameter g (∂L/∂{recipe.output}, the shape of {recipe.output})")
        if sig is not None:
            given = set(self.inputs) | set(self.params) | set(self.upstream)
            for n, p in sig.parameters.items():
                if n in names and n not in given and p.default is p.empty:
                    raise DerivkitError(
                        f"{IMPL} {label}: derivkit has no value for the function's parameter "
                        f"{n!r} (accepted: {accepted})", f"it passes the inputs "
                        f"({', '.join(inputs)}), g (the upstream gradient"
                        f"{f', or {recipe.upstream}' if recipe.upstream != 'g' else ''})"
                        + (f" and the parameters ({', '.join(params)})" if params else ""))

    def describe(self) -> str:
        return ", ".join(self.inputs + self.upstream + self.params)

    # -- one call
    def __call__(self, **kwargs: Any) -> Any:
        """The user's function on copies of the arguments; records in-place changes."""
        import numpy as np

        originals = {n: kwargs[n] for n in self.inputs}
        if not self.scalar_output:
            originals.update({n: kwargs[self.recipe.upstream] for n in self.upstream})
        params = {n: kwargs[n] for n in self.params if n in kwargs}
        try:
            call, value = self._call(originals, params)
        except (Exception, SystemExit) as exc:
            failed: BaseException | None = exc
            if self.torch is None and isinstance(exc, TORCH_ONLY) and _uses_torch(self.user.fn):
                try:   # torch-only code (torch.sum(x, dim=0) on an ndarray, x.detach(), ...)
                    self.torch = True
                    call, value = self._call(originals, params)
                    failed = None
                except (Exception, SystemExit) as again:
                    failed = again
            if failed is not None:
                raise DerivkitError(f"{IMPL} {self.user.label} raised "
                                    f"{_exception_text(failed, self.user.path)} when called with "
                                    f"{self.describe()}"
                                    + (" (as float64 torch tensors)" if self.torch else "")) from None
        if self.torch is None:
            self.torch = _is_tensor(value) or (isinstance(value, (tuple, list, dict)) and any(
                _is_tensor(v) for v in (value.values() if isinstance(value, dict) else value)))
        value = _to_numpy(value)
        for n, original in originals.items():
            after = _to_numpy(call[n])
            if not np.array_equal(after, original, equal_nan=True):
                with np.errstate(all="ignore"):
                    change = float(np.max(np.abs(after - original), initial=0.0))
                self.modified[n] = max(self.modified.get(n, 0.0), change)
        return value

    def _call(self, originals: dict[str, Any], params: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """(the arguments, the value) of one call on copies: NumPy arrays, or float64 torch
        tensors (integer labels: int64) once the function is known to want torch."""
        import numpy as np

        call: dict[str, Any] = {n: np.array(v, copy=True) for n, v in originals.items()}
        if self.torch:
            torch = _torch()
            call = {n: torch.tensor(v, dtype=torch.float64 if v.dtype.kind in "fc" else torch.int64)
                    for n, v in call.items()}
        if self.scalar_output:
            call.update({n: 1.0 for n in self.upstream})
        call.update(params)
        with _user_code():
            return call, self.user.fn(**call)

    def pick(self, value: object, w: str) -> np.ndarray:
        """∂L/∂w out of what the function returned (one array, a tuple or a dict)."""
        import numpy as np

        label, order = self.user.label, self.order
        if isinstance(value, dict):
            if w not in value:
                keys = ", ".join(map(repr, value)) or "none"
                raise DerivkitError(f"{IMPL} {label} returned a dict without the key {w!r} "
                                    f"(keys: {keys})", "key the gradients by input name")
            item = value[w]
        elif isinstance(value, (tuple, list)):
            if len(value) == len(order):
                item = value[order.index(w)]
            elif len(value) == len(self.full_order) and w in self.full_order:
                item = value[self.full_order.index(w)]
            else:
                raise DerivkitError(
                    f"{IMPL} {label} returned {len(value)} value(s); expected {len(order)} "
                    f"({', '.join(order)})", "return one gradient per checked input, in ⟨--wrt|wrt⟩ "
                    "order, or a dict keyed by input name")
        else:
            if len(order) != 1:
                raise DerivkitError(
                    f"{IMPL} {label} returned {_type_text(value)}; {len(order)} gradients "
                    f"are checked ({', '.join(order)})",
                    "return a tuple in that order or a dict keyed by input name, or pass ⟨--wrt|wrt=⟩")
            item = value
        try:
            array = np.asarray(item)
        except Exception:
            array = None
        if array is None or array.dtype.kind not in "biuf":
            raise DerivkitError(f"{IMPL} {label} returned {_type_text(item)} for ∂L/∂{w}; "
                                "expected a NumPy array of real numbers")
        return array

    def for_input(self, w: str) -> _Gradient:
        """The checker's callable for ∂L/∂w; `modified` is shared by every input's callable."""

        def gradient(**kwargs: Any) -> np.ndarray:
            return self.pick(self(**kwargs), w)

        out = cast(_Gradient, gradient)
        out.modified = self.modified
        out.label = self.user.label
        return out


#: what NumPy arrays make torch-only code raise (x.detach(), torch.exp(ndarray), x.mT, ...)
TORCH_ONLY = (TypeError, AttributeError)
TORCH_NOTE = "called with torch tensors (float64); their gradients read back with .detach().cpu().numpy()"


def _torch() -> Any:
    """torch if it is installed and already imported by the user's code or importable."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch
    try:
        import torch  # an optional extra: only here, when the user's code needs it
    except ImportError:
        return None
    return torch


def _uses_torch(fn: Callable[..., Any]) -> bool:
    """The function's module has imported torch (a name bound to torch or one of its modules)
    and torch can be loaded."""
    names = getattr(inspect.unwrap(fn), "__globals__", {})
    return any(getattr(v, "__name__", "").split(".")[0] == "torch" for v in list(names.values())
               if isinstance(v, ModuleType)) and _torch() is not None


def _is_tensor(value: object) -> bool:
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def _to_numpy(value: Any) -> Any:
    """A torch tensor (or a tuple, list or dict of them) as NumPy; anything else unchanged."""
    if _is_tensor(value):
        return value.detach().cpu().numpy()
    if isinstance(value, (tuple, list)):
        return type(value)(_to_numpy(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    return value


def _type_text(item: object) -> str:
    """'None', 'an array of complex128', 'a str', 'an int'."""
    if item is None:
        return "None"
    dtype = getattr(item, "dtype", None)
    if dtype is not None:
        return f"an array of {dtype}"
    kind = type(item).__name__
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


# ---------------------------------------------------------------- the check
@lru_cache(maxsize=32)
def _derivation(recipe: Recipe) -> Derivation:
    from ..derivation.engine import derive

    return derive(recipe)


def check(recipe: Recipe, impl: str | UserFunction | Callable[..., Any], *,
          full_wrt: tuple[str, ...] | None = None, **options: Any) -> TargetCheck:
    """Check the user's backward function `impl` (a 'FILE.py:FUNCTION' spec, a UserFunction or
    a callable) for every input in `recipe.wrt` against finite differences and derivkit's
    derivation (-> results.TargetCheck with diagnoses on failed results)."""
    from dataclasses import replace

    from ..checking.runner import check as run_check
    from ..lang.program import program
    from .diagnose import assess

    if isinstance(impl, str):
        user = load(impl)
    elif isinstance(impl, UserFunction):
        user = impl
    else:
        user = UserFunction(impl, getattr(impl, "__name__", "implementation"), None)
    out = program(recipe).out
    scalar = out.rank == 0
    bound = Implementation(user, recipe, tuple(full_wrt or recipe.wrt), scalar)
    derivation = _derivation(recipe)
    kind = "gradient" if scalar else "vjp"
    have = {(dv.kind, dv.wrt) for dv in derivation.derivatives}
    for w in recipe.wrt:
        if (kind, w) not in have:
            raise DerivkitError(f"derivkit has no {kind} of {recipe.name!r} for {w!r} to check "
                                "an implementation against")
    implementations = {(kind, w): bound.for_input(w) for w in recipe.wrt}
    result = run_check(recipe, derivation=derivation, implementations=implementations,
                       assess=assess, **options)
    if bound.torch:   # stated on every result: the values checked came through torch
        result = replace(result, results=tuple(replace(r, notes=(*r.notes, TORCH_NOTE))
                                               for r in result.results))
    return replace(result, implementation=user.label)


__all__ = ["Implementation", "UserFunction", "check", "load", "parse_spec"]
