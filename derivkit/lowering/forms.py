"""Formulas over a target's names: its inputs, parameters, output and upstream gradient.

A derivative's printed matrix form (and a user's claimed formula) is text in the expression
language over these names; `parse_form` reads it back into IR, with the output name bound to
the forward expression, and `form_function` lowers it to a NumPy callable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from ..lang import ir
from ..lang.parse import Scope, parse
from ..lang.program import Program, program
from ..lang.recipes import Recipe
from . import source as lower


def parse_form(recipe: Recipe, text: str, *, derived: bool = False
               ) -> tuple[ir.Node, dict[str, ir.Node], Scope]:
    """(form IR, named definitions, scope) for `text` over the recipe's names: inputs,
    parameters, the output (and a composite's steps) bound to their definitions, and the
    upstream gradient. Named definitions refer to earlier names, so code computes each once.
    `derived`: text derivkit printed (a derivative, or a claim already accepted), read without
    the size limits on user input. Parsed once per (program, text): callers must not mutate."""
    return _parse_form(program(recipe), recipe.upstream, text, derived)


@lru_cache(maxsize=512)
def _parse_form(prog: Program, upstream: str, text: str, derived: bool
                ) -> tuple[ir.Node, dict[str, ir.Node], Scope]:
    scope, out, steps = prog.scope, prog.out, prog.definitions
    named = {name: node.shape for name, node in steps.items()}
    inputs = dict(scope.inputs)
    if out.rank:
        inputs[upstream] = out.shape
    form_scope = Scope(inputs, scope.params, named, scope.integers, scope.products)
    node = parse(text, form_scope, limits=not derived)
    return node, steps, form_scope


def form_function(recipe: Recipe, text: str, fname: str = "form") -> Callable[..., Any]:
    """A NumPy function of keyword arguments (inputs, upstream gradient, parameters) for text
    derivkit printed (a derived form, or an accepted claim printed back)."""
    node, named, _ = parse_form(recipe, text, derived=True)
    out = program(recipe).out
    inputs = {i.name: i.shape for i in recipe.inputs}
    args = list(inputs)
    if out.rank and any(isinstance(n, ir.Var) and n.name == recipe.upstream for n in ir.walk(node)):
        inputs[recipe.upstream] = out.shape
        args.append(recipe.upstream)
    params = {p.name: p.default for p in recipe.params}
    source = lower.function_source(fname, args, node, inputs, named, params)
    return lower.compile_function(fname, source)


def call_form(fn: Callable[..., Any], values: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """A lowered form (`form_function`) on the keywords it takes, from `values` and `params`
    (a form takes the upstream gradient only if it uses it)."""
    import inspect

    names = inspect.signature(fn).parameters
    return fn(**{k: v for k, v in {**values, **params}.items() if k in names})


def forward_function(recipe: Recipe) -> Callable[..., Any]:
    out = program(recipe).out
    inputs = {i.name: i.shape for i in recipe.inputs}
    params = {p.name: p.default for p in recipe.params}
    source = lower.function_source("forward", list(inputs), out, inputs, {}, params)
    return lower.compile_function("forward", source)
