"""The backward pass of a composite recipe (`derivkit.derive.chain`) lowered to NumPy.

`backward_function` runs the forward pass, then every line of the chain in order, and can run
the backward lines with other parameter values than the forward pass used (the tutorial's
warning: with an already-updated W3, Δ_A2 = Δ_Z3 W3' is not the gradient).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..derive.chain import chain_lines, delta_var
from ..lang import ir
from ..lang.program import program
from ..lang.recipes import Recipe
from . import emit
from . import source as lower


def backward_function(recipe: Recipe) -> Callable[..., dict[str, Any]]:
    """NumPy `backward(*, inputs..., params..., backward_overrides=None) -> {lhs: array}`:
    the forward pass, then every line of the chain in order. `backward_overrides` gives other
    values for inputs (e.g. an updated W3) used only in the backward lines, as the tutorial
    warns against; the forward activations always use the inputs as given."""
    steps = program(recipe).definitions
    lines = chain_lines(recipe)
    inputs = {i.name: tuple(i.shape) for i in recipe.inputs}
    params = {p.name: p.default for p in recipe.params}
    alias = emit.numpy_alias(lower.user_names(inputs, params, steps))
    printer = lower.NumpyPrinter(alias)
    # Backward lines read each input as `_b_<name>` (its possibly overridden value) and each
    # earlier Δ as `_line<j>`: names no user name can take (user names have no underscore).
    as_backward: dict[ir.Node, ir.Node] = {ir.Var(a, shape, "input"): ir.Var(f"_b_{a}", shape, "input")
                   for a, shape in inputs.items()}
    body = lower.dims_prelude(inputs, alias)
    body += [(name, printer(node)) for name, node in steps.items()]
    deltas: dict[ir.Node, ir.Node] = {}
    for i, (_, target, kind, node) in enumerate(lines):
        body.append((f"_line{i}", printer(ir.substitute(node, {**as_backward, **deltas}))))
        if kind == "delta":
            deltas[delta_var(target, steps[target].shape)] = ir.Var(f"_line{i}", steps[target].shape, "named")
    args = list(inputs) + [f"_b_{a}" for a in inputs]
    result = ", ".join(f"_line{i}" for i in range(len(lines))) + ("," if len(lines) == 1 else "")
    source = emit.function("backward", args, params, body, f"({result})")
    fn = emit.build(source, "backward", alias=alias, label="backward")
    names = [lhs for lhs, *_ in lines]

    def backward(*, backward_overrides: dict[str, Any] | None = None, **values: Any) -> dict[str, Any]:
        over = backward_overrides or {}
        unknown = set(over) - set(inputs)
        if unknown:
            raise TypeError(f"backward_overrides names no input: {sorted(unknown)}")
        bw = {f"_b_{a}": over.get(a, values[a]) for a in inputs}
        return dict(zip(names, fn(**values, **bw)))

    backward.__source__ = source  # type: ignore[attr-defined]  # mypy does not model function attributes
    return backward
