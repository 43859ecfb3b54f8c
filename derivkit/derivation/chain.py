"""The backward pass of a composite recipe, step by step (the tutorial's Δ chain).

For steps s₁ … s_K (the last is the scalar loss L, or an array output O whose upstream gradient
G = ∂L/∂O the recipe names: then Δ_O = G), Δ_s = ∂L/∂s. Going backwards, each step's
definition contributes to the Δ of every earlier step it uses and to the gradient of every
parameter it uses, through that step's own local VJP with upstream Δ_s:
    Δ_p  = Σ_{s uses p} vjp(s, Δ_s, p),      ∂L/∂W = Σ_{s uses W} vjp(s, Δ_s, W).
Each local VJP is derived like any derivation (small: one layer) and verified against the
element-wise derivation of that step on its own. `derivkit.lowering.backward` lowers the chain to
NumPy.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import DerivkitError
from ..lang import ir
from ..lang.printing import language, latex, pretty
from ..lang.program import program, reread
from ..lang.recipes import Recipe
from ..lang.shapes import fmt_shape
from ..results import ChainStep, Form, Verification
from . import verify
from .crosscheck import Problem, Verifier, size_assignments
from .oracle import Oracle
from .simplify import simplify
from .verify import Budget, matrix_check
from .vjp import vjp

DELTA = "Δ"
# A line is a small local VJP, compared with the oracle at two size assignments (distinct per
# dimension); the whole gradients, closed forms included, at three.
LINE_SIZES = 2


def delta_var(name: str, shape: ir.Shape) -> ir.Var:
    return ir.Var(f"{DELTA}{name}", tuple(shape), "upstream")


def chain_lines(recipe: Recipe) -> list[tuple[str, str, str, ir.Node]]:
    """[(lhs, target (the step or input it is the Δ or gradient of), kind "delta" | "gradient",
    IR of the line)], in backward order."""
    if not program(recipe).steps:
        raise DerivkitError(f"recipe {recipe.name!r} has no steps: its backward pass is one line "
                            "(see 'derivkit derive')")
    steps = program(recipe).definitions
    names = list(steps)
    loss = names[-1]
    top = upstream_seed(recipe, steps[loss])
    reaches = set(recipe.wrt)   # steps whose value depends on a differentiated input
    for s in names:
        if any(isinstance(v, ir.Var) and v.role in ("named", "input") and v.name in reaches
               for v in ir.walk(steps[s])):
            reaches.add(s)
    contributions: dict[str, list[tuple[ir.Node, str]]] = {}
    lines: list[tuple[str, str, str, ir.Node]] = []
    for s in reversed(names):
        node = steps[s]
        seed = top if s == loss else delta_var(s, node.shape)
        if s != loss:
            parts = contributions.get(s, [])
            if not parts:
                continue  # the loss does not depend on this step
            total = parts[0][0]
            for p, _ in parts[1:]:
                total = ir.add(total, p)
            lines.append((f"{DELTA}{s}", s, "delta", simplify(total, {})))
        uses = {n for n in ir.walk(node) if isinstance(n, ir.Var) and n.role in ("named", "input")}
        for var in sorted(uses, key=lambda v: v.name):
            if var.name not in reaches:   # a constant of the differentiation: no Δ needed
                continue
            local = vjp(node, seed, var)
            if local is None:
                continue
            named = {node: s, **({node.expansion: s} if isinstance(node, ir.Macro) else {})}
            local = simplify(local, named)
            contributions.setdefault(var.name, []).append((local, s))
    for w in recipe.wrt:
        parts = contributions.get(w, [])
        if parts:
            total = parts[0][0]
            for p, _ in parts[1:]:
                total = ir.add(total, p)
            lhs = f"∂{loss}/∂{w}" if top is ir.ONE else f"∂L/∂{w}"
            lines.append((lhs, w, "gradient", simplify(total, {})))
    return lines


def upstream_seed(recipe: Recipe, out: ir.Node) -> ir.Node:
    """What the backward pass starts from: 1 for a scalar loss, else the recipe's upstream
    gradient (∂L/∂out of a scalar loss L downstream, the shape of `out`)."""
    return ir.ONE if not out.rank else ir.Var(recipe.upstream, tuple(out.shape), "upstream")


def inlined_gradients(recipe: Recipe, lines: list[tuple[str, str, str, ir.Node]] | None = None
                      ) -> dict[str, ir.Node]:
    """{w: ∂L/∂w} as the backward program's lines (`chain_lines`, derived here unless given)
    substituted into one another (each Δ replaced by its line, the forward's named values kept):
    a closed form whose cost is the program's."""
    steps = program(recipe).definitions
    deltas: dict[ir.Node, ir.Node] = {}
    out: dict[str, ir.Node] = {}
    for _, target, kind, node in (chain_lines(recipe) if lines is None else lines):
        node = ir.substitute(node, deltas) if deltas else node
        if kind == "delta":
            deltas[delta_var(target, steps[target].shape)] = node
        else:
            out[target] = node
    return out


def backward_chain(recipe: Recipe, lines: list[tuple[str, str, str, ir.Node]] | None = None
                   ) -> tuple[ChainStep, ...]:
    """The backward pass (`chain_lines`, derived here unless given), each line verified
    element-wise as a function of its own operands."""
    steps = program(recipe).definitions
    inputs = {i.name: (i.shape, i.domain) for i in recipe.inputs}
    lines = chain_lines(recipe) if lines is None else lines
    ascii_names = _ascii_names(recipe, lines)
    budget = Budget(verify.LINES_BUDGET_S)   # the symbolic comparisons of all lines share one
    verified: dict[tuple, Verification] = {}   # by the line's pattern: layers repeat
    out = []
    scope = program(recipe).scope
    for lhs, target, kind, node in lines:
        shape = steps[target].shape if target in steps else recipe.input(target).shape
        node = reread(node, scope)   # verified and shown as its printed text reads back
        ascii_node = ir.substitute(node, {v: ir.Var(ascii_names[v.name], v.shape, v.role)
                                          for v in ir.walk(node)
                                          if isinstance(v, ir.Var) and v.name in ascii_names})
        out.append(ChainStep(lhs, target, kind, fmt_shape(shape),
                             Form(language(node), pretty(node), f"{_latex_lhs(lhs)} = {latex(node)}",
                                  _verify_line(node, target, steps, inputs, recipe, budget,
                                               verified)),
                             ascii_names[lhs], language(ascii_node)))
    return tuple(out)


def _ascii_names(recipe: Recipe, lines: list[tuple[str, str, str, ir.Node]]) -> dict[str, str]:
    """{ΔP: dP, ∂f/∂W: dW}: a name of the expression language for every line's left-hand side,
    clashing with no name of the recipe (dP2, dP3, ... where dP is taken)."""
    taken = ({i.name for i in recipe.inputs} | {p.name for p in recipe.params}
             | set(program(recipe).definitions) | program(recipe).scope.dims | {recipe.upstream})
    out: dict[str, str] = {}
    for lhs, target, _, _ in lines:
        base, k = f"d{target}", 2
        name = base
        while name in taken:
            name, k = f"{base}{k}", k + 1
        taken.add(name)
        out[lhs] = name
    return out


def _latex_lhs(lhs: str) -> str:
    if lhs.startswith(DELTA):
        return rf"\Delta_{{{lhs[len(DELTA):]}}}"
    return lhs.replace("∂", r"\partial ")


def _as_inputs(node: ir.Node) -> ir.Node:
    """`node` with its steps' names and Δs (named and upstream variables) as free inputs."""
    return ir.substitute(node, {v: ir.Var(v.name, v.shape, "input") for v in ir.walk(node)
                                if isinstance(v, ir.Var) and v.role in ("named", "upstream")})


def _pattern(line: ir.Node, local: ir.Node, own: dict[str, ir.Node], target: str) -> tuple:
    """The verification problem of a line up to the names of its values: the line, the steps it
    is the VJP of and the definitions it may read, each variable renamed by first appearance
    (shapes, roles, parameters and dimensions kept). Equal patterns are the same claim."""
    names: dict[str, str] = {}

    def canon(n: ir.Node) -> ir.Node:
        for v in ir.walk(n):
            if isinstance(v, ir.Var) and v.role != "param" and v.name not in names:
                names[v.name] = f"v{len(names)}"
        return ir.substitute(n, {v: ir.Var(names[v.name], v.shape, v.role) for v in ir.walk(n)
                                 if isinstance(v, ir.Var) and v.role != "param"})

    head = (canon(line), canon(local))
    defs = tuple(sorted(((names.get(k, k), canon(d)) for k, d in own.items()), key=lambda kd: kd[0]))
    return head + (defs, names.get(target, target))


def _verify_line(node: ir.Node, target: str, steps: dict[str, ir.Node],
                 inputs: dict[str, tuple[ir.Shape, str]], recipe: Recipe,
                 budget: Budget, verified: dict[tuple, Verification]) -> Verification:
    """A line ΔX = f(Δ_next, operands) is the VJP of the steps that use X; verify it as such:
    the same expression in terms of the local forward (each later step's Δ as an upstream)."""
    # Treat every step name as a free input of its shape (the local view of the chain), and
    # check the line against ∂/∂target of Σ_s ⟨Δ_s, step_s⟩ over the steps that use target.
    loss = list(steps)[-1]
    free = dict(inputs)
    for name, n in steps.items():
        free[name] = (tuple(n.shape), "real")
    users = [s for s, n in steps.items()
             if any(isinstance(v, ir.Var) and v.name == target for v in ir.walk(n))]
    local_out: ir.Node | None = None
    for s in users:
        n = steps[s]
        seed = upstream_seed(recipe, n) if s == loss else delta_var(s, n.shape)
        term = n if seed is ir.ONE else ir.sum_(ir.mul(seed, n))
        local_out = term if local_out is None else ir.add(local_out, term)
    if local_out is None:
        return Verification(False, "none", (), "NOT VERIFIED: the loss does not use it")
    # Steps' names and Δs become free inputs for the local check.
    renamed = _as_inputs(local_out)
    free.update({v.name: (tuple(v.shape), "real") for v in ir.walk(local_out)
                 if isinstance(v, ir.Var) and v.role == "upstream"})
    target_var = ir.Var(target, tuple(free[target][0]), "input")
    # every step over the inputs and earlier steps as free inputs
    forward = {s: _as_inputs(n) for s, n in steps.items()}
    # A line may name the value of a step it differentiates (tanh: ΔZ ⊙ (1 − H²) for H = tanh(Z);
    # layer norm: H = √(mean(U²) + ε) in ΔU), or the loss (ΔH = −f/H); that name is a constant
    # operand of the other steps and a function of the target in its own: after
    # differentiating, it is its definition.
    own = {s: forward[s] for s in steps if s == loss or s in users}
    line = _as_inputs(node)
    pattern = _pattern(line, renamed, own, target)
    if pattern in verified:   # the same claim as a line already verified (another layer)
        return verified[pattern]
    params = tuple(p.name for p in recipe.params)
    verifier = Verifier(Problem(renamed, free, params, {}, target_var, None, consistent=own))
    dims = sorted({d for shape, _ in free.values() for d in shape if isinstance(d, str)}
                  | ir.dims_used(renamed))
    # numerically at the forward's own points: inputs sampled, every step's value (the loss's
    # too) computed from them, the Δs sampled freely
    oracle = Oracle(renamed, free, {p.name: p.default for p in recipe.params}, {}, None,
                    size_assignments(dims, minimum=ir.minimum_sizes([renamed, *forward.values()]),
                                     products=ir.size_products([renamed, *forward.values()])),
                    consistent=forward,
                    report_error=False,   # one sentence for all the lines
                    sizes=LINE_SIZES)
    ver = matrix_check(oracle, verifier if verifier.feasible else None, budget, "gradient", target,
                       line, None)
    if not ver.verified:
        return ver
    verified[pattern] = replace(ver, detail=f"each line {ver.detail} as the VJP of the steps that "
                                            f"use it (their operands and Δs free)")
    return verified[pattern]
