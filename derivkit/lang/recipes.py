"""Recipes: one TOML file per derivation (see recipes/*.toml). Loading imports no SymPy/NumPy.

A recipe declares inputs with (symbolic) shapes, scalar parameters with defaults, the forward
expression in derivkit's expression language, which inputs to differentiate, the sampling
domain of each input, notes on conventions and references.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from ..errors import RecipeError, UnknownRecipeError
from .names import user_name_problem
from .shapes import Dim, Shape, fmt_shape, parse_dim, parse_shape, split_integer

NAME_RE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*\Z")
DOMAINS = ("real", "positive", "nonzero")
INTEGER = "integer"   # the domain of an input declared "m:int": class labels, never differentiated
ENV_VAR = "DERIVKIT_RECIPES"
_T = TypeVar("_T")


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: Shape
    domain: str = "real"

    @property
    def shape_text(self) -> str:
        return fmt_shape(self.shape)


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: float


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    forward: str
    inputs: tuple[InputSpec, ...]
    wrt: tuple[str, ...]
    output: str = "y"
    upstream: str = "g"
    params: tuple[ParamSpec, ...] = ()
    notes: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    steps: tuple[tuple[str, str], ...] = ()   # composite recipes: (name, expression), in order
    products: tuple[tuple[str, tuple[Dim, ...]], ...] = ()   # [dims] e = "h*d": e's size is h·d
    lines: dict[str, int] = field(default_factory=dict, compare=False, hash=False)  # TOML key -> line

    def where(self, key: str) -> str:
        """'FILE:LINE' of a key of this recipe's file (or the name when it has no file)."""
        if not self.path:
            return f"recipe {self.name!r}"
        line = _line_of(self.lines, key)
        return f"{self.path}:{line}" if line else str(self.path)

    def input(self, name: str) -> InputSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)


def builtin_dir() -> Path:
    """The built-in recipes: shipped inside the package (wheel, derivkit/recipes) or, in a
    checkout, recipes/ beside the package."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "recipes", package.parent / "recipes"):
        if candidate.is_dir() and any(candidate.glob("*.toml")):
            return candidate
    raise RecipeError("derivkit's built-in recipes are missing from this installation",
                      "reinstall derivkit")


def recipe_dirs(extra: list[str | Path] | None = None) -> list[Path]:
    """Search path: the built-ins, then $DERIVKIT_RECIPES (os.pathsep-separated), then `extra`.
    A later folder's recipe replaces an earlier one of the same name."""
    dirs = [builtin_dir()]
    env = os.environ.get(ENV_VAR, "")
    for raw in [p for p in env.split(os.pathsep) if p.strip()] + list(extra or []):
        path = Path(raw)
        try:
            is_dir = path.is_dir()
        except OSError as exc:   # e.g. a name longer than the OS allows
            raise RecipeError(f"recipe folder {_shorten(str(path))!r}: "
                              f"{exc.strerror or type(exc).__name__}",
                              f"check ⟨--recipes|recipe_dirs⟩ or ${ENV_VAR}") from None
        if not is_dir:
            raise RecipeError(f"recipe folder {str(path)!r} does not exist",
                              f"check ⟨--recipes|recipe_dirs⟩ or ${ENV_VAR}")
        dirs.append(path)
    return dirs


def _shorten(text: str, limit: int = 120) -> str:
    """A path too long for the OS, cut for a one-line message."""
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-limit // 2:]}"


def _need(data: dict[str, Any], key: str, kind: type[_T], where: str) -> _T:
    if key not in data:
        raise RecipeError(f"{where}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        raise RecipeError(f"{where}: field {key!r} must be a {kind.__name__}", key=key)
    return value


def _strings(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecipeError(f"{where}: field {key!r} must be a list of strings", key=key)
    return tuple(value)


def _ident(value: str, what: str, where: str, key: str | None = None) -> str:
    problem = user_name_problem(value)
    if problem:
        raise RecipeError(f"{where}: {what} {value!r} {problem}", "rename it", key=key)
    return value


def unused_name(base: str, taken: set[str]) -> str:
    """A default name (the output's y, the upstream's g) that no declared name has taken."""
    for suffix in ("", "out", "bar", *map(str, range(2, 10_000))):
        if base + suffix not in taken:
            return base + suffix
    raise RecipeError(f"cannot name the {base!r} default: every candidate is taken")  # pragma: no cover


def parse_recipe(data: dict[str, Any], where: str, path: str | None = None, *,
                 default_output: str = "y", output_expr: str | None = None) -> Recipe:
    """`output_expr`: the output's expression after `data`'s steps (an expression's named
    steps), as a last step named like a default output."""
    name = _need(data, "name", str, where)
    if not NAME_RE.match(name):
        raise RecipeError(f"{where}: name {name!r} must be lower-case letters, digits and '-'",
                          key="name")
    summary = _need(data, "summary", str, where)
    steps = _steps(data, where)
    if steps and "forward" in data:
        raise RecipeError(f"{where}: give either 'forward' or [[steps]], not both", key="forward")
    forward = "; ".join(f"{n} = {e}" for n, e in steps) if steps else _need(data, "forward", str, where)
    raw_inputs = _need(data, "inputs", dict, where)
    if not raw_inputs:
        raise RecipeError(f"{where}: 'inputs' declares no input", key="inputs")
    domains = data.get("domain", {})
    if not isinstance(domains, dict):
        raise RecipeError(f"{where}: field 'domain' must be a table of input = domain", key="domain")
    inputs = []
    for key, shape_text in raw_inputs.items():
        _ident(key, "input name", where, f"inputs.{key}")
        if not isinstance(shape_text, str):
            raise RecipeError(f"{where}: inputs.{key} must be a shape string such as \"m,n\"",
                              key=f"inputs.{key}")
        shape_text, integer = split_integer(shape_text)
        try:
            shape = parse_shape(shape_text, where=f"{where}: inputs.{key}")
        except Exception as exc:  # ShapeError carries the message
            raise RecipeError(getattr(exc, "message", str(exc)), key=f"inputs.{key}") from None
        domain = domains.get(key, "real")
        if integer:
            if key in domains:
                raise RecipeError(f"{where}: domain.{key}: {key} is an integer input (\"...:int\"); "
                                  "it has no other domain", key=f"domain.{key}")
            domain = INTEGER
        elif domain not in DOMAINS:
            raise RecipeError(f"{where}: domain.{key} = {domain!r}; expected one of "
                              f"{', '.join(DOMAINS)}", key=f"domain.{key}")
        inputs.append(InputSpec(key, shape, domain))
    for key in domains:
        if key not in raw_inputs:
            raise RecipeError(f"{where}: domain.{key} names no input", key=f"domain.{key}")
    params = []
    raw_params = data.get("params", {})
    if not isinstance(raw_params, dict):
        raise RecipeError(f"{where}: field 'params' must be a table of name = default", key="params")
    for key, default in raw_params.items():
        _ident(key, "parameter name", where, f"params.{key}")
        if isinstance(default, bool) or not isinstance(default, (int, float)) or default != default \
                or default in (float("inf"), float("-inf")):
            raise RecipeError(f"{where}: params.{key} must be a finite number (its default)",
                              key=f"params.{key}")
        if key in raw_inputs:
            raise RecipeError(f"{where}: {key!r} is both an input and a parameter",
                              key=f"params.{key}")
        params.append(ParamSpec(key, float(default)))
    integers = {i.name for i in inputs if i.domain == INTEGER}
    wrt = tuple(dict.fromkeys(_strings(data, "wrt", where))) or tuple(
        k for k in raw_inputs if k not in integers)
    for w in wrt:
        if w not in raw_inputs:
            raise RecipeError(f"{where}: wrt names {w!r}, which is not an input "
                              f"(inputs: {', '.join(raw_inputs)})", key="wrt")
        if w in integers:
            raise RecipeError(f"{where}: wrt names {w!r}, an integer input (class labels): it "
                              "cannot be differentiated", key="wrt",
                              hint=f"leave {w} out of wrt")
    in_use = (set(raw_inputs) | set(raw_params) | {n for n, _ in steps}
               | {d for spec in inputs for d in spec.shape if isinstance(d, str)})
    if output_expr is not None:
        steps += ((unused_name(default_output, in_use), output_expr),)
        forward = "; ".join(f"{n} = {e}" for n, e in steps)
    output = _ident(data.get("output", steps[-1][0] if steps else unused_name(default_output, in_use)),
                    "output name", where, "output")
    if steps and output != steps[-1][0]:
        raise RecipeError(f"{where}: output {output!r} must be the last step's name "
                          f"{steps[-1][0]!r}", key="output")
    for i, (step_name, _) in enumerate(steps, 1):
        if step_name in raw_inputs or step_name in raw_params:
            raise RecipeError(f"{where}: step {step_name!r} has the name of an input or parameter",
                              key=f"steps.{i}.name")
    upstream = _ident(data.get("upstream", unused_name("g", in_use | {output})),
                      "upstream-gradient name", where, "upstream")
    names = {**{n: "input" for n in raw_inputs}, **{n: "parameter" for n in raw_params},
             **{n: "step" for n, _ in steps}, output: "output", upstream: "upstream gradient"}
    for spec in inputs:
        for d in spec.shape:
            if isinstance(d, str):
                problem = user_name_problem(d)
                if problem:
                    raise RecipeError(f"{where}: dimension {d!r} of {spec.name} {problem}",
                                      "rename it", key=f"inputs.{spec.name}")
                if d in names:
                    raise RecipeError(f"{where}: dimension {d!r} of {spec.name} has the name of "
                                      f"the {names[d]} {d!r}; a name is either a size or a value",
                                      "rename one of them", key=f"inputs.{spec.name}")
    taken = set(raw_inputs) | set(raw_params)
    for label, value in (("output", output), ("upstream", upstream)):
        if value in taken:
            raise RecipeError(f"{where}: {label} name {value!r} is already an input or parameter",
                              key=label)
    if upstream == output or upstream in {n for n, _ in steps}:
        raise RecipeError(f"{where}: upstream-gradient name {upstream!r} is already the name of "
                          f"the output or a step", key="upstream")
    products = _products(data, where, set(names))
    known = {"name", "summary", "forward", "inputs", "domain", "params", "wrt", "output",
             "upstream", "notes", "references", "steps", "dims"}
    extra = {k: v for k, v in data.items() if k not in known}
    return Recipe(name=name, summary=summary, forward=forward, inputs=tuple(inputs), wrt=wrt,
                  output=output, upstream=upstream, params=tuple(params),
                  notes=_strings(data, "notes", where),
                  references=_strings(data, "references", where), path=path, extra=extra,
                  steps=steps, products=products)


def _products(data: dict[str, Any], where: str, values: set[str]
              ) -> tuple[tuple[str, tuple[Dim, ...]], ...]:
    """[dims] e = "h*d": the dimension e is the product of h and d (what lets reshape split
    e into h and d); factors are names or integers, and no factor is itself a product."""
    raw = data.get("dims", {})
    if not isinstance(raw, dict):
        raise RecipeError(f"{where}: field 'dims' must be a table of name = \"h*d\"", key="dims")
    out: list[tuple[str, tuple[Dim, ...]]] = []
    for key, text in raw.items():
        _ident(key, "dimension name", where, f"dims.{key}")
        if key in values:
            raise RecipeError(f"{where}: dims.{key}: {key!r} is already the name of a value",
                              key=f"dims.{key}")
        if not isinstance(text, str) or "*" not in text:
            raise RecipeError(f"{where}: dims.{key} must be a product such as \"h*d\"",
                              key=f"dims.{key}")
        try:
            factors = tuple(parse_dim(f, where=f"{where}: dims.{key}") for f in text.split("*"))
        except Exception as exc:  # ShapeError carries the message
            raise RecipeError(getattr(exc, "message", str(exc)), key=f"dims.{key}") from None
        if any(f in raw for f in factors):
            raise RecipeError(f"{where}: dims.{key}: a factor of {key} is itself a product",
                              "write the product of the plain dimensions", key=f"dims.{key}")
        out.append((key, factors))
    return tuple(out)


def _steps(data: dict[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    """[[steps]] tables: name = an identifier, expr = its expression over the inputs,
    parameters and earlier steps."""
    raw = data.get("steps", [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise RecipeError(f"{where}: 'steps' must be an array of tables ([[steps]] name = ..., "
                          f"expr = ...)", key="steps")
    out, seen = [], set()
    for i, table in enumerate(raw, 1):
        name, expr = table.get("name"), table.get("expr")
        if not isinstance(name, str) or not isinstance(expr, str) or not expr.strip():
            raise RecipeError(f"{where}: step {i} needs name = \"...\" and expr = \"...\"",
                              key=f"steps.{i}")
        _ident(name, f"step {i} name", where, f"steps.{i}.name")
        if name in seen:
            raise RecipeError(f"{where}: step name {name!r} is used twice", key=f"steps.{i}.name")
        extra = set(table) - {"name", "expr", "note"}
        if extra:
            raise RecipeError(f"{where}: step {name!r} has unknown field {sorted(extra)[0]!r}",
                              key=f"steps.{i}.{sorted(extra)[0]}")
        seen.add(name)
        out.append((name, expr))
    return tuple(out)


MAX_FILE_BYTES = 1 << 20


def load_file(path: Path) -> Recipe:
    """Parse one recipe file. Every problem is a RecipeError starting 'FILE:LINE:' when the
    line is known (the key at fault, or the TOML syntax error's line)."""
    where = str(path)
    try:
        if not Path(path).is_file():
            raise RecipeError(f"{where}: not a regular file")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise RecipeError(f"{where}: the file is larger than {MAX_FILE_BYTES:,} bytes, the "
                              f"limit for a recipe")
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
        at = f":{line}" if line else ""
        raise RecipeError(f"{where}{at}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise RecipeError(f"{where}: cannot read: {exc.strerror}") from None
    except RecursionError:
        raise RecipeError(f"{where}: nested too deeply to parse") from None
    lines = key_lines(text)
    try:
        recipe = parse_recipe(data, where, str(path))
    except RecipeError as exc:
        line = _line_of(lines, exc.key)
        if line is None:
            raise
        raise RecipeError(exc.template.replace(f"{where}: ", f"{where}:{line}: ", 1), exc.hint_template,
                          exc.key) from None
    return replace(recipe, lines=lines)


_HEADER = re.compile(r"\s*(\[\[?)\s*([A-Za-z0-9_.\-]+)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_\-]+)\s*=""")


def key_lines(text: str) -> dict[str, int]:
    """{dotted key: 1-based line} for a recipe's simple TOML layout: top-level keys, [table]
    keys ("inputs.X") and [[steps]] keys ("steps.2.expr"; "steps.2" is the header's line)."""
    out: dict[str, int] = {}
    prefix = ""
    counts: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            name = header.group(2)
            if header.group(1) == "[[":
                counts[name] = counts.get(name, 0) + 1
                prefix = f"{name}.{counts[name]}"
            else:
                prefix = name
            out.setdefault(prefix, number)
            continue
        key = _KEY.match(line)
        if key:
            name = key.group(1).strip("\"'")
            out.setdefault(f"{prefix}.{name}" if prefix else name, number)
    return out


def _line_of(lines: dict[str, int], key: str | None) -> int | None:
    while key:
        if key in lines:
            return lines[key]
        key = key.rpartition(".")[0]
    return None


def discover(dirs: list[Path]) -> dict[str, Path]:
    """Map recipe name -> file, without parsing the TOML (name = file stem)."""
    found: dict[str, Path] = {}
    for d in dirs:
        for path in sorted(d.glob("*.toml")):
            found[path.stem] = path
    return found


def load_all(extra_dirs: list[str | Path] | None = None) -> list[Recipe]:
    recipes = []
    for name, path in sorted(discover(recipe_dirs(extra_dirs)).items()):
        recipe = load_file(path)
        if recipe.name != name:
            raise RecipeError(f"{path}: field 'name' is {recipe.name!r} but the file is {path.name}",
                              "a recipe's file must be named <name>.toml")
        recipes.append(recipe)
    return recipes


def load(name: str, extra_dirs: list[str | Path] | None = None) -> Recipe:
    found = discover(recipe_dirs(extra_dirs))
    if name not in found:
        raise UnknownRecipeError(name, sorted(found))
    recipe = load_file(found[name])
    if recipe.name != name:
        raise RecipeError(f"{found[name]}: field 'name' is {recipe.name!r} but the file is "
                          f"{found[name].name}", "a recipe's file must be named <name>.toml")
    return recipe
