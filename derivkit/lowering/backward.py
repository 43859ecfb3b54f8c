"""The backward program (`derivkit.derivation.chain`) lowered to NumPy.

`program_lines` reads a derivation's *printed, verified* backward program back into IR: the
forward's named values (S = Q Kᵀ/√d, P = softmax(S)), then one line per Δ and gradient (dP, dS,
dQ, …), each over inputs, named values and earlier lines: what `derivkit lower` writes as the
module's `backward`, all gradients in one pass that reuses the forward's values.

`backward_function` runs the forward pass, then every line of the chain in order, and can run
the backward lines with other parameter values than the forward pass used (the tutorial's
warning: with an already-updated W3, Δ_A2 = Δ_Z3 W3' is not the gradient).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..derivation.chain import chain_lines, delta_var
from ..errors import DerivkitError
from ..lang import ir
from ..lang.parse import Scope, parse
from ..lang.printing import language
from ..lang.program import program
from ..lang.recipes import Recipe
from ..results import Derivation
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
    body = lower.dims_prelude(inputs, alias, ir.size_products(list(steps.values())))
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


def verified_program(recipe: Recipe, derivation: Derivation, out: ir.Node
                     ) -> tuple[list[tuple[str, ir.Node]], list[str]] | None:
    """`program_lines` when the derivation has a backward program whose every line is verified
    and whose derivatives are all of the output's kind (gradients of a scalar, VJPs of an
    array); None otherwise (a module then writes only the verified closed forms)."""
    kind = "vjp" if out.rank else "gradient"
    if not derivation.chain or any(dv.kind != kind for dv in derivation.derivatives):
        return None
    try:
        return program_lines(recipe, derivation)
    except DerivkitError:
        return None


def program_lines(recipe: Recipe, derivation: Derivation) -> tuple[list[tuple[str, ir.Node]], list[str]]:
    """([(name, IR)] in the order they are computed, [the gradient names in the derivation's
    order]) for the verified backward program of a scalar `derivation`: the forward's named
    values the lines use, then each line (`ChainStep.name = ChainStep.name_text`). Raises
    DerivkitError naming a line that is not verified: an unverified line is never emitted."""
    prog = program(recipe)
    steps = prog.definitions
    shapes = {i.name: tuple(i.shape) for i in recipe.inputs}
    if prog.out.rank:   # a VJP's program reads the upstream gradient
        shapes[recipe.upstream] = tuple(prog.out.shape)
    lines: list[tuple[str, ir.Node]] = []
    grads: dict[str, str] = {}
    for step in derivation.chain:
        if not step.form.verification.verified:
            raise DerivkitError(f"the backward line {step.lhs} = {step.form.pretty} is NOT VERIFIED",
                                "derivkit never emits an unverified gradient")
        target = steps[step.target] if step.target in steps else None
        scope = Scope({**shapes, **{n: tuple(v.shape) for n, v in lines}}, prog.scope.params,
                      {k: v.shape for k, v in steps.items()}, prog.scope.integers,
                      prog.scope.products)
        node = parse(step.name_text, scope, limits=False)
        if language(node) != step.name_text:   # what is lowered must be exactly what was verified
            raise RuntimeError(f"the line {step.name_text!r} prints back as {language(node)!r}")
        want = tuple(target.shape) if target is not None else shapes[step.target]
        if node.shape != want:
            node = ir.broadcast_to(node, want)
        lines.append((step.name, node))
        if step.kind == "gradient":
            grads[step.target] = step.name
    missing = [dv.wrt for dv in derivation.derivatives if dv.wrt not in grads]
    if missing:
        raise DerivkitError(f"the backward program has no line for {', '.join(missing)}")
    # the forward's named values the lines read, each after those it reads
    needed: list[str] = []
    for _, node in lines:
        needed += [n for n in lower.needed_names(node, steps) if n not in needed]
    return [(n, steps[n]) for n in needed] + lines, [grads[dv.wrt] for dv in derivation.derivatives]
