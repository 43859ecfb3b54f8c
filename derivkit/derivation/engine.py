"""derive(recipe) -> Derivation: parse, differentiate, simplify, read off forms, verify.

For each input x to differentiate, with out = forward(inputs):
- scalar out (a loss L): the gradient ∂L/∂x (shape of x);
- otherwise the VJP ∂L/∂x given the upstream gradient G = ∂L/∂out, and, when out and x are
  both vectors, the Jacobian ∂out/∂x (n_out × n_in);
- always the index form of the Jacobian entry ∂out_ij/∂x_rs (or ∂L/∂x_ij), Kronecker deltas.
Every form is verified against the element-wise derivation before it is reported as verified.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..errors import DerivkitError
from ..lang import ir
from ..lang.printing import GREEK, language, latex, pretty
from ..lang.program import Program, program, reread
from ..lang.recipes import Recipe
from ..lang.shapes import fmt_shape
from ..results import ChainStep, Derivation, Derivative, Form, InputInfo, Verification
from . import elementwise, verify
from . import index as ix
from .chain import chain_lines, inlined_gradients
from .crosscheck import IndexForm, Problem, Verifier, size_assignments
from .jacobian import jacobian
from .oracle import Oracle
from .simplify import Simplifier, is_zero
from .verify import Budget, index_check, matrix_check
from .vjp import vjp

OUT_LETTERS = "ijkl"
IN_LETTERS = {(1, 1): "j", (0, 1): "i", (0, 2): "ij", (1, 2): "rs", (2, 2): "rs", (2, 1): "r",
              (0, 0): "", (1, 0): "", (2, 0): ""}


def _letters(out_rank: int, in_rank: int, taken: set[str]) -> tuple[list[str], list[str]]:
    """Index names for the output's and the input's axes, distinct and clashing with no name
    in scope (however many are taken)."""
    out = ix.fresh_names(OUT_LETTERS, out_rank, taken)
    preferred = IN_LETTERS.get((out_rank, in_rank), "ijkl" if out_rank == 0 else "rstu")
    return out, ix.fresh_names(preferred, in_rank, taken | set(out))


def _sub(name: str, idx: list[str], pretty_mode: bool) -> str:
    if not idx:
        return GREEK.get(name, name) if pretty_mode else name
    if pretty_mode and all(len(i) == 1 for i in idx):
        return f"{GREEK.get(name, name)}_{''.join(idx)}"
    return f"{name}[{','.join(idx)}]"


def _latex_name(name: str, idx: Sequence[str] = ()) -> str:
    base = latex(ir.Var(name, ()))
    return f"{base}_{{{''.join(idx)}}}" if idx else base


CLOSED_FORM_MAX_OPS = 80   # a longer inlined gradient of a program is the program's lines substituted
INDEX_MAX_CHARS = 600   # a longer index form is not shown (nor evaluated): see _index_form


def derive(recipe: Recipe) -> Derivation:
    started = time.perf_counter()
    prog = program(recipe)
    scope, out, steps = prog.scope, prog.out, prog.inlined
    named_defs = {recipe.output: out, **steps}
    named_nodes = {}
    for name, node in list(steps.items()) + [(recipe.output, out)]:
        named_nodes[node] = name
        if isinstance(node, ir.Macro):
            named_nodes[node.expansion] = name
    scalar = out.rank == 0
    upstream = None if scalar else ir.Var(recipe.upstream, out.shape, "upstream")
    seed: ir.Node = ir.ONE if upstream is None else upstream   # upstream is None exactly when scalar
    taken = ({i.name for i in recipe.inputs} | {p.name for p in recipe.params} | scope.dims
             | {recipe.output, recipe.upstream} | set(steps))
    inputs = {i.name: (i.shape, i.domain) for i in recipe.inputs}
    derivatives: list[Derivative] = []
    warnings: list[str] = []
    symbolic_until = time.monotonic() + verify.DERIVATION_BUDGET_S   # all inputs together
    dims = sorted(ir.dims_used(out) | {d for i in recipe.inputs for d in i.shape if isinstance(d, str)})
    oracle = Oracle(out, inputs, {p.name: p.default for p in recipe.params}, named_defs, upstream,
                    size_assignments(dims, minimum=ir.minimum_sizes([out]),
                                     products=ir.size_products([out])))

    reshaped = any(isinstance(n, ir.Reshape) for n in ir.walk(out))   # no index form (a note)
    program_forms: dict[str, ir.Node] = {}
    lines: list[tuple[str, str, str, ir.Node]] | None = None
    for w in recipe.wrt:
        x = scope.var(w)
        raw = vjp(out, seed, x)
        independent = raw is None
        if raw is None:
            warnings.append(f"{recipe.output} does not depend on {w}: its derivative is zero")
            raw = ir.broadcast_to(ir.ZERO, x.shape)
        simplifier = Simplifier(named_nodes)
        from_program = scalar and bool(prog.steps) and ir.operations(raw) > CLOSED_FORM_MAX_OPS
        if from_program:   # simplified as a whole it would cost minutes: the program, inlined
            if not program_forms:
                lines = chain_lines(recipe)   # the program's lines, derived once for both uses
                program_forms = inlined_gradients(recipe, lines)
            cot = program_forms[w]
        else:
            cot = simplifier(raw)
        if cot.shape != x.shape:
            cot = ir.broadcast_to(cot, x.shape)
        problem = Problem(out, inputs, tuple(p.name for p in recipe.params), named_defs, x, upstream)
        verifier = Verifier(problem)
        budget = Budget(min(verify.SYMBOLIC_BUDGET_S, max(0.0, symbolic_until - time.monotonic())))

        oi, ii = _letters(out.rank, x.rank, taken)
        too_large = not verifier.feasible   # element by element: no index form, no symbolic check
        if scalar:
            lhs_p, lhs_l = f"∂{_sub(recipe.output, [], True)}/∂{_sub(w, [], True)}", \
                rf"\frac{{\partial {_latex_name(recipe.output)}}}{{\partial {_latex_name(w)}}}"
            ilhs_p = f"∂{_sub(recipe.output, [], True)}/∂{_sub(w, ii, True)}"
            ilhs_l = rf"\frac{{\partial {_latex_name(recipe.output)}}}{{\partial {_latex_name(w, ii)}}}"
        else:
            ilhs_p = f"∂{_sub(recipe.output, oi, True)}/∂{_sub(w, ii, True)}"
            ilhs_l = (rf"\frac{{\partial {_latex_name(recipe.output, oi)}}}"
                      rf"{{\partial {_latex_name(w, ii)}}}")
        kinds: list[tuple[str, ir.Node | None]] = []
        closed = _closed_form(raw, cot, prog, recipe.output, x.shape) if prog.named and not \
            from_program else cot
        if scalar:
            kinds.append(("gradient", closed))
        else:
            assert upstream is not None   # not scalar
            if out.rank == 1 and x.rank == 1:
                jac = jacobian(cot, upstream)
                kinds.append(("jacobian", simplifier(jac) if jac is not None else None))
            kinds.append(("vjp", closed))
        if not independent and is_zero(cot):
            warnings.append(f"∂{recipe.output}/∂{w} is zero everywhere: {recipe.output} does not "
                            f"change with {w} (its dependence cancels)")
        if simplifier.timed_out:
            warnings.append(f"simplifying ∂/∂{w} hit the {simplifier.budget_s:g} s time budget: "
                            f"its forms are shown less simplified than they could be (they are "
                            f"verified all the same)")
        # each form as its printed text reads back: that is what is verified and shown
        kinds = [(kind, reread(form, scope) if form is not None else None) for kind, form in kinds]
        # the matrix forms first: they get the symbolic comparison's budget before the index form
        checked = {kind: matrix_check(oracle, None if too_large else verifier, budget, kind, w, form,
                                      upstream) for kind, form in kinds if form is not None}
        index_form = (_index_form(cot, upstream, oi, ii, taken, verifier, oracle, budget, w)
                      if not too_large else None)
        for kind, form in kinds:
            if kind == "jacobian":
                lhs_p = f"∂{_sub(recipe.output, [], True)}/∂{_sub(w, [], True)}"
                lhs_l = rf"\frac{{\partial {_latex_name(recipe.output)}}}{{\partial {_latex_name(w)}}}"
            elif kind == "vjp":
                lhs_p = f"∂L/∂{_sub(w, [], True)}"
                lhs_l = rf"\frac{{\partial L}}{{\partial {_latex_name(w)}}}"
            matrix = None
            if form is not None:
                matrix = Form(language(form), pretty(form), f"{lhs_l} = {latex(form)}", checked[kind])
            notes: tuple[str, ...] = ()
            if kind == "vjp":
                assert upstream is not None   # a vjp has an upstream gradient
                notes = (f"{pretty(upstream)} = ∂L/∂{_sub(recipe.output, [], True)} is the upstream "
                         f"gradient of a scalar loss L (shape {fmt_shape(out.shape)}).",)
            elif kind == "jacobian" and form is None:
                notes = ("no closed matrix Jacobian was obtained; the index form is verified",)
            if from_program:
                notes += (f"the closed form is the backward program's lines substituted into one "
                          f"another: derivkit simplifies a gradient as a whole only up to "
                          f"{CLOSED_FORM_MAX_OPS} operations, and the backward pass above is the "
                          f"short way to read it",)
            if reshaped:
                notes += ("no index form: a reshape's entries are found by quotients and "
                          "remainders of indices, which derivkit does not write out",)
            elif too_large or index_form is None:
                notes += ("no index form: written entry by entry it would be too large to read",)
            index = None
            if index_form is not None:
                text, pform, ltx, ver = index_form
                index = Form(text, pform, f"{ilhs_l} = {ltx}", ver)
            derivatives.append(Derivative(
                wrt=w, kind=kind, lhs_pretty=lhs_p, lhs_latex=lhs_l, index_lhs_pretty=ilhs_p,
                index_lhs_latex=ilhs_l, index=index, matrix=matrix,
                upstream=recipe.upstream if kind == "vjp" else None,
                shape=tuple(x.shape) if kind != "jacobian" else tuple(out.shape) + tuple(x.shape),
                notes=notes))

    return Derivation(
        target=recipe.name, summary=recipe.summary, forward=recipe.forward,
        forward_pretty=_forward_text(recipe, out, pretty, "\n"),
        forward_latex=_forward_text(recipe, out, latex, r" \\ "),
        output=recipe.output, output_shape_text=fmt_shape(out.shape),
        inputs=tuple(InputInfo(i.name, tuple(i.shape), fmt_shape(i.shape), i.domain)
                     for i in recipe.inputs),
        params=tuple((p.name, p.default) for p in recipe.params),
        derivatives=tuple(derivatives), conventions=tuple(_conventions(out, recipe, upstream)),
        notes=recipe.notes, references=recipe.references,
        elapsed_s=time.perf_counter() - started, warnings=tuple(warnings),
        chain=_chain(recipe, lines),
        intermediates=tuple((name, language(node)) for name, node in prog.definitions.items()
                            if name != recipe.output))


def _chain(recipe: Recipe, lines: list[tuple[str, str, str, ir.Node]] | None = None
           ) -> tuple[ChainStep, ...]:
    """The backward pass line by line, for a program of named steps (from 1 for a scalar loss,
    from the upstream gradient for an array output; `lines`: its chain_lines, if derived)."""
    if not program(recipe).steps:
        return ()
    from .chain import backward_chain

    try:
        return backward_chain(recipe, lines)
    except DerivkitError:
        return ()  # no backward program (the closed forms remain)


def _closed_form(raw: ir.Node, cot: ir.Node, prog: Program, output: str, shape: ir.Shape) -> ir.Node:
    """The form to print: `cot` (over the values derivkit named) or, when it reads no longer
    than `cot` with the definitions it uses, the closed form over the inputs alone."""
    used = _names_used(cot, prog)
    if not used:
        return cot
    own = {prog.out: output, **({prog.out.expansion: output} if isinstance(prog.out, ir.Macro) else {})}
    plain = Simplifier(own)(raw)
    if plain.shape != shape:
        plain = ir.broadcast_to(plain, shape)
    named_length = ir.count_ops(cot) + sum(ir.count_ops(prog.definitions[n]) for n in used)
    return plain if ir.count_ops(plain) <= named_length else cot


def _names_used(node: ir.Node, prog: Program) -> set[str]:
    """The named intermediates `node` uses, directly or through their definitions."""
    used: set[str] = set()
    todo = [node]
    while todo:
        for v in ir.walk(todo.pop()):
            if isinstance(v, ir.Var) and v.role == "named" and v.name in prog.inlined \
                    and v.name not in used:
                used.add(v.name)
                todo.append(prog.definitions[v.name])
    return used


def _forward_text(recipe: Recipe, out: ir.Node, printer: Callable[[ir.Node], str], sep: str) -> str:
    """'y = f(x)', or for a composite every step 'Z1 = …; A1 = …; …'."""
    if not program(recipe).steps:
        return f"{printer(ir.Var(recipe.output, ()))} = {printer(out)}"
    return sep.join(f"{printer(ir.Var(name, ()))} = {printer(node)}"
                    for name, node in program(recipe).definitions.items())


def _index_form(cot: ir.Node, upstream: ir.Var | None, oi: list[str], ii: list[str],
                taken: set[str], verifier: Verifier, oracle: Oracle, budget: Budget, wrt: str
                ) -> tuple[str, str, str, Verification] | None:
    """(text, pretty, LaTeX, verification) of the index form, or None where its text is longer
    than `INDEX_MAX_CHARS` (nested sums grow exponentially with depth: a person reads the
    matrix form and the backward program instead, and evaluating it would cost as much)."""
    out_syms = tuple(ix.index_symbol(c) for c in oi)
    in_syms = tuple(ix.index_symbol(c) for c in ii)
    ev = ix.IndexEvaluator(taken | set(oi) | set(ii), upstream, out_syms)
    try:
        expr = ix.canonical(ix.contract(ev.ev(cot, in_syms)), list(out_syms + in_syms))
    except (NotImplementedError, TypeError, ValueError) as exc:  # pragma: no cover - defensive
        raise DerivkitError(f"could not build the index form: {exc}") from None
    text = ix.to_text(expr)
    if len(text) > INDEX_MAX_CHARS:
        return None
    ver = index_check(oracle, verifier, budget, wrt, IndexForm(expr, out_syms, in_syms, ev.opaque), upstream)
    return text, ix.to_pretty(expr), ix.to_latex(expr), ver


def _conventions(out: ir.Node, recipe: Recipe, upstream: ir.Var | None) -> list[str]:
    notes = []
    if upstream is not None:
        notes.append(f"Gradients have the shape of the variable (denominator layout); "
                     f"{upstream.name} = ∂L/∂{recipe.output} for a scalar loss L downstream.")
    else:
        notes.append("Gradients have the shape of the variable (denominator layout).")
    seen = set()
    for n in ir.walk(out):
        if isinstance(n, ir.Apply) and n.fn not in seen:
            seen.add(n.fn)
            for k in elementwise.kink_conventions(n.fn):
                notes.append(k.sentence())
    if any(isinstance(n, ir.Macro) and n.fn == "softmax" for n in ir.walk(out)):
        notes.append("softmax(x) = exp(x) / Σ exp(x) over the last axis; derivkit differentiates "
                     "this definition.")
    return notes

