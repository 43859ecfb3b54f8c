"""A recipe parsed once: the `Program` every later stage (derive, lower, check, audit) reads.

For a composite recipe with steps s₁ … s_K, each step is parsed once over the inputs, the
parameters and the earlier steps (as named variables of role "named"); the forward is the last
step with every earlier one substituted in. A plain recipe's forward is split into the values
a person would name (`naming`: S = Q Kᵀ/√d, P = softmax(S), …), which then act as its steps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from ..errors import ExpressionError
from . import ir
from .naming import name_values
from .parse import Scope, parse
from .printing import language
from .recipes import INTEGER, Recipe


@dataclass(frozen=True, eq=False)
class Program:
    """scope: what the recipe's names mean; out: the forward as one IR tree (steps inlined);
    definitions: {step: IR over inputs and earlier steps as named variables} in order ({output:
    forward} for a plain recipe with nothing worth naming); inlined: {step: IR with earlier steps
    substituted}, every step but the last; `named`: whether a plain recipe's values were named
    by derivkit (`naming`) rather than by the recipe's steps."""

    scope: Scope
    out: ir.Node
    definitions: dict[str, ir.Node]
    inlined: dict[str, ir.Node]
    named: bool = False

    @property
    def steps(self) -> list[str]:
        """The names of the steps, the output last (empty for a single expression)."""
        return list(self.definitions) if len(self.definitions) > 1 else []


def program(recipe: Recipe) -> Program:
    """Parse `recipe`, once per recipe: later calls with a recipe that differs only in what
    parsing does not read (what it differentiates, where inputs are sampled) return the same
    Program."""
    inputs = tuple(replace(i, domain=INTEGER if i.domain == INTEGER else "real")
                   for i in recipe.inputs)
    return _parse(replace(recipe, wrt=(), inputs=inputs))


@lru_cache(maxsize=256)
def _parse(recipe: Recipe) -> Program:
    scope = Scope({i.name: i.shape for i in recipe.inputs}, {p.name: p.default for p in recipe.params},
                  integers=frozenset(i.name for i in recipe.inputs if i.domain == INTEGER),
                  products=dict(recipe.products))
    steps = recipe.steps or (("", recipe.forward),)
    definitions: dict[str, ir.Node] = {}
    inlined: dict[str, ir.Node] = {}
    node: ir.Node | None = None
    for number, (name, text) in enumerate(steps, 1):
        local = replace(scope, named={k: v.shape for k, v in definitions.items()})
        try:
            raw = parse(text, local)
        except ExpressionError as exc:
            key = f"steps.{number}.expr" if name else "forward"
            where = ("⟨--expr|the expression⟩" if recipe.name == "expr" and not recipe.path else
                     f"{recipe.where(key)}: recipe {recipe.name!r}: "
                     + (f"step {name!r}" if name else "forward"))
            raise ExpressionError(f"{where}: {exc.template}", hint=exc.hint_template) from None
        definitions[name or recipe.output] = raw
        node = _inline(raw, inlined)
        if name:
            inlined[name] = node
    assert node is not None
    if recipe.steps:
        return Program(scope, node, definitions, inlined)
    taken = set(scope.inputs) | set(scope.params) | scope.dims | {recipe.output, recipe.upstream}
    definitions = name_values(node, recipe.output, taken)
    inlined = {}
    for name, raw in list(definitions.items())[:-1]:
        inlined[name] = _inline(raw, inlined)
    return Program(scope, node, definitions, inlined, named=len(definitions) > 1)


def length(text: str, scope: Scope, intermediates: dict[str, str] | None = None) -> int:
    """The length of a printed form in operations (`ir.operations`): `text` over `scope` and the
    named `intermediates` (name -> definition over earlier names), each counted once."""
    nodes: dict[str, ir.Node] = {}
    for name, definition in (intermediates or {}).items():
        local = replace(scope, named={**scope.named, **{k: v.shape for k, v in nodes.items()}})
        nodes[name] = _inline(parse(definition, local, limits=False), nodes)
    local = replace(scope, named={**scope.named, **{k: v.shape for k, v in nodes.items()}})
    return ir.operations(_inline(parse(text, local, limits=False), nodes))


def _inline(node: ir.Node, nodes: dict[str, ir.Node]) -> ir.Node:
    """`node` with each named variable replaced by its (inlined) definition in `nodes`."""
    return ir.substitute(node, {ir.Var(k, v.shape, "named"): v for k, v in nodes.items()})


def reread(node: ir.Node, scope: Scope) -> ir.Node:
    """What the printed text of `node` (`language(node)`) means, parsed back over `scope` and the
    variables `node` uses (keeping their roles): a form is verified as this, so the text a
    person reads and `lower` emits is exactly what was checked."""
    used = {v.name: v for v in ir.walk(node) if isinstance(v, ir.Var) and v.role != "param"}
    inputs = dict(scope.inputs)
    named = dict(scope.named)
    for name, v in used.items():
        (named if v.role == "named" else inputs)[name] = tuple(v.shape)
    parsed = parse(language(node), replace(scope, inputs=inputs, named=named), limits=False)
    back: dict[ir.Node, ir.Node] = {ir.Var(n, tuple(v.shape), "named" if v.role == "named" else "input"): v
                                    for n, v in used.items()}
    return ir.substitute(parsed, back)
