"""The backward pass of a composite recipe, step by step (the tutorial's Δ chain).

For steps s₁ … s_K (the last is the scalar loss L), Δ_s = ∂L/∂s. Going backwards, each step's
definition contributes to the Δ of every earlier step it uses and to the gradient of every
parameter it uses, through that step's own local VJP with upstream Δ_s:
    Δ_p  = Σ_{s uses p} vjp(s, Δ_s, p),      ∂L/∂W = Σ_{s uses W} vjp(s, Δ_s, W).
Each local VJP is derived like any derivation (small: one layer) and verified against the
element-wise derivation of that step on its own. `backward_function` lowers the chain to NumPy,
and can run the backward pass with other parameter values than the forward pass used (the
tutorial's warning: with an already-updated W3, Δ_A2 = Δ_Z3 W3' is not the gradient).
"""

from __future__ import annotations

from . import emit, ir, lower
from .derive.engine import step_definitions
from .derive.simplify import simplify
from .derive.verify import Problem, Verifier
from .derive.vjp import vjp
from .errors import DerivkitError
from .printing import language, latex, pretty
from .recipes import Recipe
from .results import ChainStep, Form
from .shapes import fmt_shape

DELTA = "Δ"


def _delta(name: str, shape) -> ir.Var:
    return ir.Var(f"{DELTA}{name}", tuple(shape), "upstream")


def _chain_ir(recipe: Recipe) -> list[tuple[str, str, str, ir.Node, ir.Node, str]]:
    """[(lhs, target, kind, IR of the line, IR of the step it came from, its step name)], in
    backward order; for a plain recipe the single step is the forward."""
    if not recipe.steps:
        raise DerivkitError(f"recipe {recipe.name!r} has no steps: its backward pass is one line "
                            "(see 'derivkit derive')")
    steps = step_definitions(recipe)
    names = list(steps)
    loss = names[-1]
    if steps[loss].rank:
        raise DerivkitError(f"the last step of {recipe.name!r} ({loss}) must be a scalar loss")
    contributions: dict[str, list[tuple[ir.Node, str]]] = {}
    lines = []
    for s in reversed(names):
        node = steps[s]
        seed = ir.ONE if s == loss else _delta(s, node.shape)
        if s != loss:
            parts = contributions.get(s, [])
            if not parts:
                continue  # the loss does not depend on this step
            total = parts[0][0]
            for p, _ in parts[1:]:
                total = ir.add(total, p)
            lines.append((f"{DELTA}{s}", s, "delta", simplify(total, {}), None, s))
        uses = {n for n in ir.walk(node) if isinstance(n, ir.Var) and n.role in ("named", "input")}
        for var in sorted(uses, key=lambda v: v.name):
            if var.role == "input" and var.name not in recipe.wrt:
                continue
            local = vjp(node, seed, var)
            if local is None:
                continue
            local = simplify(local, {node: s})
            contributions.setdefault(var.name, []).append((local, s))
    for w in recipe.wrt:
        parts = contributions.get(w, [])
        if parts:
            total = parts[0][0]
            for p, _ in parts[1:]:
                total = ir.add(total, p)
            lines.append((f"∂{loss}/∂{w}", w, "gradient", simplify(total, {}), None, w))
    return lines


def backward_chain(recipe: Recipe) -> tuple[ChainStep, ...]:
    """The backward pass, each line verified element-wise as a function of its own operands."""
    steps = step_definitions(recipe)
    inputs = {i.name: (i.shape, i.domain) for i in recipe.inputs}
    params = tuple(p.name for p in recipe.params)
    out = []
    for lhs, target, kind, node, _, _ in _chain_ir(recipe):
        shape = steps[target].shape if target in steps else recipe.input(target).shape
        out.append(ChainStep(lhs, target, kind, fmt_shape(shape),
                             Form(language(node), pretty(node), f"{_latex_lhs(lhs)} = {latex(node)}",
                                  _verify_line(node, target, kind, steps, inputs, params, recipe))))
    return tuple(out)


def _latex_lhs(lhs: str) -> str:
    if lhs.startswith(DELTA):
        return rf"\Delta_{{{lhs[len(DELTA):]}}}"
    return lhs.replace("∂", r"\partial ")


def _verify_line(node, target, kind, steps, inputs, params, recipe):
    """A line ΔX = f(Δ_next, operands) is the VJP of the steps that use X; verify it as such:
    the same expression in terms of the local forward (each later step's Δ as an upstream)."""
    # Treat every step name as a free input of its shape (the local view of the chain), and
    # check the line against ∂/∂target of Σ_s ⟨Δ_s, step_s⟩ over the steps that use target.
    loss = list(steps)[-1]
    free = dict(inputs)
    for name, n in steps.items():
        free[name] = (tuple(n.shape), "real")
    local_out = None
    for s, n in steps.items():
        used = any(isinstance(v, ir.Var) and v.name == target for v in ir.walk(n))
        if not used:
            continue
        term = n if s == loss else ir.sum_(ir.mul(_delta(s, n.shape), n))
        local_out = term if local_out is None else ir.add(local_out, term)
    if local_out is None:
        from .results import Verification
        return Verification(False, "none", (), "NOT VERIFIED: the loss does not use it")
    # Vars of role "named" become free inputs for the local check.
    renamed = ir.substitute(local_out, {v: ir.Var(v.name, v.shape, "input") for v in ir.walk(local_out)
                                        if isinstance(v, ir.Var) and v.role == "named"})
    deltas = {v.name: (tuple(v.shape), "real") for v in ir.walk(renamed)
              if isinstance(v, ir.Var) and v.role == "upstream"}
    renamed = ir.substitute(renamed, {v: ir.Var(v.name, v.shape, "input") for v in ir.walk(renamed)
                                      if isinstance(v, ir.Var) and v.role == "upstream"})
    free.update(deltas)
    target_var = ir.Var(target, tuple(free[target][0]), "input")
    # A line may name the value of a step it differentiates (tanh: ΔZ ⊙ (1 − H²) for H = tanh(Z));
    # there that name stands for the step's definition, not for a free operand.
    own = {ir.Var(s, n.shape, "named"): n for s, n in steps.items()
           if s != loss and any(isinstance(v, ir.Var) and v.name == target for v in ir.walk(n))}
    node = ir.substitute(node, own)
    line = ir.substitute(node, {v: ir.Var(v.name, v.shape, "input") for v in ir.walk(node)
                                if isinstance(v, ir.Var) and v.role in ("named", "upstream")})
    verifier = Verifier(Problem(renamed, free, params, {}, target_var, None))
    ver = verifier.check_matrix("gradient", line)
    from dataclasses import replace

    return replace(ver, detail=f"each line {ver.detail} as the VJP of the steps that use it "
                               f"(their operands and Δs free)" if ver.verified else ver.detail)


def backward_function(recipe: Recipe):
    """NumPy `backward(*, inputs..., params..., backward_overrides=None) -> {lhs: array}`:
    the forward pass, then every line of the chain in order. `backward_overrides` gives other
    values for inputs (e.g. an updated W3) used only in the backward lines, as the tutorial
    warns against; the forward activations always use the inputs as given."""
    steps = step_definitions(recipe)
    lines = _chain_ir(recipe)
    inputs = {i.name: tuple(i.shape) for i in recipe.inputs}
    params = {p.name: p.default for p in recipe.params}
    alias = emit.numpy_alias(lower.user_names(inputs, params, steps))
    printer = lower.NumpyPrinter(alias)
    # Backward lines read each input as `_b_<name>` (its possibly overridden value) and each
    # earlier Δ as `_line<j>`: names no user name can take (user names have no underscore).
    as_backward = {ir.Var(a, shape, "input"): ir.Var(f"_b_{a}", shape, "input")
                   for a, shape in inputs.items()}
    body = lower.dims_prelude(inputs, alias)
    body += [(name, printer(node)) for name, node in steps.items()]
    deltas: dict[ir.Node, ir.Node] = {}
    for i, (lhs, target, kind, node, _, _) in enumerate(lines):
        body.append((f"_line{i}", printer(ir.substitute(node, {**as_backward, **deltas}))))
        if kind == "delta":
            deltas[_delta(target, steps[target].shape)] = ir.Var(f"_line{i}", steps[target].shape, "named")
    args = list(inputs) + [f"_b_{a}" for a in inputs]
    result = ", ".join(f"_line{i}" for i in range(len(lines))) + ("," if len(lines) == 1 else "")
    source = emit.function("backward", args, params, body, f"({result})")
    fn = emit.build(source, "backward", alias=alias, label="backward")
    names = [lhs for lhs, *_ in lines]

    def backward(*, backward_overrides=None, **values):
        over = backward_overrides or {}
        unknown = set(over) - set(inputs)
        if unknown:
            raise TypeError(f"backward_overrides names no input: {sorted(unknown)}")
        bw = {f"_b_{a}": over.get(a, values[a]) for a in inputs}
        return dict(zip(names, fn(**values, **bw)))

    backward.__source__ = source
    return backward
