"""verify_claim(recipe, claim) -> ClaimVerdict: is a claimed derivative right, and if not, where?

A matrix claim is text in the expression language over the target's inputs, parameters, outputs
(and steps) and upstream gradient. It is read as
- ∂L/∂x (the gradient) when the output is a scalar L;
- the VJP ∂L/∂x when it uses the upstream gradient G = ∂L/∂out;
- the Jacobian ∂out/∂x (n_out × n_in) for vector -> vector targets;
- the element-wise derivative ∂out_i/∂x_i when it has the shape of out = the shape of x (it is
  compared as the Jacobian diag(claim), or as the VJP claim ⊙ G for matrices);
anything else has the wrong shape and is refuted, with the shapes.
An index claim gives the entry ∂out_{i…}/∂x_{r…} (free indices: the output's, then the input's,
alphabetically) or ∂L/∂x_{r…}.

Equality is decided as in `derive`: against the element-wise SymPy derivation at concrete sizes
(distinct per dimension); then numerically at random points at larger sizes (matrix claims:
finite differences through `check`; index claims: against derivkit's lowered, verified form).
A refutation comes with a counterexample at the smallest failing size (sizes tried in order of
the number of Jacobian entries), with every input value.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypedDict

import numpy as np
import sympy as sp

from ..derivation import elementwise
from ..derivation.crosscheck import IndexForm, Mismatch, Problem, Verifier, index_entries, make_lookup
from ..derivation.engine import derive
from ..derivation.explicit import Explicit, _sample, value_at, witness
from ..derivation.index import index_symbol
from ..errors import DerivkitError
from ..lang import ir
from ..lang.printing import language
from ..lang.program import program
from ..lang.recipes import Recipe
from ..lang.shapes import DECLARED, Shape, fmt_shape, fmt_sizes
from ..limits import phase
from ..lowering.forms import parse_form
from ..results import ClaimVerdict, Counterexample, Derivation, Derivative, Verification
from .claims import ClaimScope, is_index_claim, parse_index_claim

SMALL_VALUES = (1, 2, 3, 4)
MAX_SMALL = 24          # size assignments tried when searching for the smallest failing one
MAX_CLAIM_ENTRIES = 100_000   # entries of one array of a claim, beyond what the target has


class _Base(TypedDict):
    """The fields of a ClaimVerdict that every verdict about one claim shares."""

    target: str
    wrt: str
    claim: str
    form: str
    reading: str
    derived: str | None
    derived_pretty: str | None
    notes: tuple[str, ...]


class _Target:
    """The derivative a claim is about: out = forward(inputs), ∂/∂w."""

    def __init__(self, recipe: Recipe, derivation: Derivation) -> None:
        self.recipe = recipe
        self.w = recipe.wrt[0]
        prog = program(recipe)
        scope, self.out, steps = prog.scope, prog.out, prog.inlined
        self.x = scope.var(self.w)
        self.scalar = self.out.rank == 0
        self.upstream = None if self.scalar else ir.Var(recipe.upstream, self.out.shape, "upstream")
        inputs = {i.name: (i.shape, i.domain) for i in recipe.inputs}
        named = {recipe.output: self.out, **steps}
        self.params = {p.name: p.default for p in recipe.params}
        self.problem = Problem(self.out, inputs, tuple(self.params), named, self.x, self.upstream,
                               dict(self.params))   # a claim may write a parameter's value
        self.verifier = Verifier(self.problem)
        self.derivation = derivation
        self.steps = steps

    def derived(self, kind: str) -> Derivative | None:
        return next((d for d in self.derivation.derivatives if d.wrt == self.w and d.kind == kind),
                    None)

    @property
    def out_name(self) -> str:
        return self.recipe.output


def verify_claim(recipe: Recipe, claim: str, *, seed: int = 0) -> ClaimVerdict:
    """`recipe` names exactly one input in `wrt` (the derivative the claim is about)."""
    started = time.perf_counter()
    if len(recipe.wrt) != 1:
        raise DerivkitError(f"{recipe.name!r} has several inputs ({', '.join(recipe.wrt)}): say "
                            "which derivative the claim is about",
                            f"e.g. ⟨--wrt {recipe.wrt[0]}|wrt='{recipe.wrt[0]}'⟩")
    index = is_index_claim(claim)
    if not index:
        node, _, _ = parse_form(recipe, claim)     # parse errors first: exit 2 before any work
    t = _Target(recipe, derive(recipe))
    try:
        with phase(f"checking the claim about ∂{t.out_name}/∂{t.w}"):
            verdict = _index_claim(t, claim, seed) if index else _matrix_claim(t, claim, node, seed)
    except RecursionError:
        raise DerivkitError("the claim is nested too deeply to evaluate (Python's recursion "
                            "limit)", "write it with less nesting") from None
    except TypeError as exc:
        if "non-real" not in str(exc):
            raise
        raise DerivkitError("the claim compares values that are not real numbers at the points "
                            "it is evaluated at (a log or sqrt of 0 or of a negative number "
                            "inside a where() condition?)",
                            "a where() condition must compare real numbers") from None
    return replace(verdict, seconds=time.perf_counter() - started)


def _refuse_large(t: _Target, form: ir.Node) -> None:
    """A claim whose arrays are far larger than anything the derivative needs (ones(10**6,
    10**6)) is refused before it is evaluated at the sizes it will be compared at."""
    from ..checking.sampling import concrete, default_sizes

    dims = t.verifier.dims
    products = dict(t.recipe.products)
    every = list(t.verifier.assignments) + [ir.with_products({d: 6 + i for i, d in enumerate(dims)},
                                                             products),
                                             default_sizes(dims, products=products)]

    def entries(n: ir.Node, sizes: dict[str, int]) -> int:
        count = 1
        for d in concrete(n.shape, sizes):
            count *= d
        return count

    for sizes in every:
        ours = max([entries(n, sizes) for n in ir.walk(t.out)] + [
            entries(t.out, sizes) * entries(t.x, sizes)])
        limit = max(MAX_CLAIM_ENTRIES, 4 * ours)
        for n in ir.walk(form):
            if entries(n, sizes) > limit:
                raise DerivkitError(
                    f"the claim builds an array of {entries(n, sizes):,} entries ('{language(n)[:60]}', "
                    f"shape {fmt_shape(n.shape)}) at {fmt_sizes(sizes, spaced=True, empty=DECLARED)}, "
                    f"where the target's own arrays "
                    f"have at most {ours:,}; the limit is {limit:,}",
                    "a claim's arrays have the shapes of the target's inputs and outputs")


# ---------------------------------------------------------------- matrix claims
def _fits(shape: Shape, target: Shape) -> bool:
    """`shape` broadcasts to exactly `target` (NumPy rules)."""
    if len(shape) > len(target):
        return False
    return all(a == b or a == 1 for a, b in zip(reversed(shape), reversed(target)))


def _reading(t: _Target, node: ir.Node) -> tuple[str | None, ir.Node | None, str, str]:
    """(kind, form to compare, description, wrong-shape reason or "")."""
    out, x, w, y, g = t.out, t.x, t.w, t.out_name, t.upstream
    uses_upstream = g is not None and any(
        isinstance(n, ir.Var) and n.name == g.name for n in ir.walk(node))
    xs = fmt_shape(x.shape)
    if t.scalar:
        desc = f"∂{y}/∂{w}, the gradient (the shape of {w}: {xs})"
        return ("gradient", node, desc, "") if _fits(node.shape, x.shape) else (
            None, None, desc, _shape_reason(node, f"∂{y}/∂{w}", w, x.shape))
    assert t.upstream is not None   # a non-scalar output has an upstream gradient
    if uses_upstream:
        desc = (f"∂L/∂{w}, the vector–Jacobian product with {t.upstream.name} = ∂L/∂{y} "
                f"(the shape of {w}: {xs})")
        return ("vjp", node, desc, "") if _fits(node.shape, x.shape) else (
            None, None, desc, _shape_reason(node, f"∂L/∂{w}", w, x.shape))
    if x.rank == 0 and _fits(node.shape, out.shape):
        full = ir.broadcast_to(node, out.shape)
        return ("vjp", ir.sum_(ir.mul(full, t.upstream)), f"∂{y}/∂{w}, the Jacobian (the shape of "
                f"{y}: {fmt_shape(out.shape)}), compared as ∂L/∂{w} = Σ claim * {t.upstream.name}", "")
    if out.rank == 1 and x.rank == 1 and node.rank == 2:
        desc = f"∂{y}/∂{w}, the Jacobian ({fmt_shape(out.shape + x.shape)})"
        if node.shape == out.shape + x.shape:
            return "jacobian", node, desc, ""
        return None, None, desc, _shape_reason(node, f"the Jacobian ∂{y}/∂{w}", None,
                                               out.shape + x.shape)
    if out.shape == x.shape and _fits(node.shape, out.shape):
        full = ir.broadcast_to(node, out.shape)
        if out.rank == 1:
            return ("jacobian", ir.diag(full), f"the element-wise derivative ∂{y}_i/∂{w}_i: the "
                    f"Jacobian diag(claim) ({fmt_shape(out.shape + x.shape)})", "")
        return ("vjp", ir.mul(full, t.upstream), f"the element-wise derivative ∂{y}/∂{w}: the VJP "
                f"∂L/∂{w} = claim * {t.upstream.name} ({xs})", "")
    return (None, None, f"∂{y}/∂{w} itself (the claim does not use the upstream gradient "
            f"{t.upstream.name})", _jacobian_reason(t, node))


def _shape_reason(node: ir.Node, what: str, w: str | None, want: Shape) -> str:
    got = fmt_shape(node.shape)
    of = f"the shape of {w}: " if w else ""
    transposed = tuple(reversed(node.shape)) == tuple(want)
    hint = " (the transpose's shape: a transposed formula?)" if transposed else ""
    return f"the claim has shape {got}, but {what} has {of}{fmt_shape(want)}{hint}"


def _jacobian_reason(t: _Target, node: ir.Node) -> str:
    """A claim without the upstream gradient for a non-scalar output: it states the Jacobian,
    whose shape is out.shape + x.shape."""
    y, w = t.out_name, t.w
    assert t.upstream is not None   # only asked about a non-scalar output
    letters = "ijkl"[:t.out.rank] + "rstu"[:t.x.rank]
    lhs = (f"∂{y}_{letters[:t.out.rank]}/∂{w}_{letters[t.out.rank:]}" if t.x.rank else
           f"∂{y}_{letters}/∂{w}")
    text = (f"the claim has shape {fmt_shape(node.shape)}, but without {t.upstream.name} it states "
            f"∂{y}/∂{w} itself: a tensor of shape {fmt_shape(t.out.shape + t.x.shape)} (one index "
            f"per axis of {y}, {fmt_shape(t.out.shape)}, then of {w}, {fmt_shape(t.x.shape)})")
    vjp = t.derived("vjp")
    if vjp is not None and vjp.index is not None and vjp.index.verification.verified:
        text += f", with entries {lhs} = {vjp.index.pretty}"
    if vjp is not None and vjp.matrix is not None and vjp.matrix.verification.verified:
        text += (f". What backprop needs is the vector–Jacobian product ∂L/∂{w} = "
                 f"{vjp.matrix.pretty} (the shape of {w}: {fmt_shape(t.x.shape)}), where "
                 f"{t.upstream.name} = ∂L/∂{y}")
    return text


def _matrix_claim(t: _Target, claim: str, node: ir.Node, seed: int) -> ClaimVerdict:
    kind, form, reading, wrong = _reading(t, node)
    if form is not None:   # a reading of the right shape (`wrong` is "")
        _refuse_large(t, form)   # before any evaluation (the kink probe below is one)
    derived = t.derived(kind or ("gradient" if t.scalar else "vjp"))
    base = _Base(target=t.recipe.name, wrt=t.w, claim=claim, form="matrix", reading=reading,
                 derived=derived.matrix.text if derived and derived.matrix else None,
                 derived_pretty=(f"{derived.lhs_pretty} = {derived.matrix.pretty}"
                                 if derived and derived.matrix else None),
                 notes=_kink_notes(t, form, kind))
    if wrong:
        return ClaimVerdict(verdict="refuted", reason=wrong, method="shapes", **base)
    assert kind is not None and form is not None   # a reading of the right shape has both
    if any(isinstance(n, ir.DimSize) for n in ir.walk(node)):
        _more_sizes(t)
    if not t.verifier.feasible:
        return _numeric_only(t, kind, form, seed, base)
    ver = t.verifier.check_matrix(kind, form)
    if not ver.verified:
        return _refutation(t, ver, lambda v: v.check_matrix(kind, form), seed, base, kind)
    numeric = _finite_differences(t, kind, form, seed)
    if numeric is not None and not numeric[0]:
        return ClaimVerdict(verdict="refuted", reason=numeric[1], method="finite-differences",
                            sizes=ver.sizes, counterexample=numeric[2], **base)
    return ClaimVerdict(verdict="verified", reason=f"equal to derivkit's derivation: {ver.detail}",
                        method=ver.method, sizes=ver.sizes, numeric=numeric[1] if numeric else "",
                        **base)


def _finite_differences(t: _Target, kind: str, form: ir.Node, seed: int
                        ) -> tuple[bool, str, Counterexample | None] | None:
    """(passed, sentence, counterexample) from `check` with the claim as the implementation, at
    the checker's default sizes (larger than the symbolic ones)."""
    from ..checking.runner import check
    from ..lowering.forms import form_function

    fn = form_function(t.recipe, language(form), "claim")
    tc = check(t.recipe, mode="full", seed=seed, derivation=t.derivation,
               implementations={(kind, t.w): fn})
    results = [r for r in tc.results if r.kind == kind]
    if not results:  # pragma: no cover - every kind the reading produces is checked
        return None
    sizes = fmt_sizes(tc.sizes, spaced=True, empty=DECLARED)
    worst = max(results, key=lambda r: r.max_rel_error)
    if all(r.passed for r in results):
        return True, (f"equal to finite differences ({worst.method}, every entry, max relative "
                      f"error {worst.max_rel_error:.1e}) at random inputs (seed {seed}) at {sizes}"), None
    e = worst.worst[0] if worst.worst else None
    ce = None
    if e is not None:
        ce = Counterexample(dict(tc.sizes), {"inputs": f"standard normal draw, seed {seed}"},
                            tuple(e.index), _entry_text(t, kind, tuple(e.index)), e.derived,
                            e.numeric)
    return False, (f"equal at the small sizes checked symbolically, but not at {sizes}: max "
                   f"relative error {worst.max_rel_error:.1e} against finite differences"), ce


def _numeric_only(t: _Target, kind: str, form: ir.Node, seed: int, base: _Base) -> ClaimVerdict:
    """Targets too large for the element-wise derivation: finite differences at several sizes."""
    why = (f"too large to compare symbolically element-wise (about {t.verifier.cost:,} operations "
           f"at the smallest sizes)")
    from ..checking.runner import check
    from ..lowering.forms import form_function

    fn = form_function(t.recipe, language(form), "claim")
    done: list[dict[str, int]] = []
    for k, sizes in enumerate(t.verifier.assignments):
        tc = check(t.recipe, mode="full", sizes=sizes, seed=seed + k, derivation=t.derivation,
                   implementations={(kind, t.w): fn})
        bad = [r for r in tc.results if r.kind == kind and not r.passed]
        if bad:
            e = bad[0].worst[0] if bad[0].worst else None
            ce = e and Counterexample(dict(sizes), {"inputs": f"standard normal draw, seed {seed + k}"},
                                      tuple(e.index), _entry_text(t, kind, tuple(e.index)),
                                      e.derived, e.numeric)
            return ClaimVerdict(verdict="refuted", method="finite-differences",
                                reason=f"differs from finite differences of the forward at "
                                       f"{fmt_sizes(sizes, spaced=True, empty=DECLARED)} (max relative error "
                                       f"{bad[0].max_rel_error:.1e}); {why}",
                                sizes=tuple(done + [sizes]), counterexample=ce or None, **base)
        done.append(sizes)
    return ClaimVerdict(verdict="verified", method="finite-differences", sizes=tuple(done),
                        reason=f"equal to finite differences of the forward (every entry) at "
                               f"{'; '.join(fmt_sizes(s, spaced=True, empty=DECLARED) for s in done)}; "
                               f"not compared symbolically: {why}",
                        **base)


# ---------------------------------------------------------------- index claims
def _index_claim(t: _Target, claim: str, seed: int) -> ClaimVerdict:
    arrays = {i.name: tuple(i.shape) for i in t.recipe.inputs}
    arrays[t.out_name] = tuple(t.out.shape)
    arrays.update({k: tuple(v.shape) for k, v in t.steps.items()})
    excluded = {}
    if t.upstream is not None:
        excluded[t.upstream.name] = (f"an index claim states the Jacobian entry of ∂{t.out_name}/∂"
                                     f"{t.w}; the upstream gradient belongs in a matrix claim "
                                     f"(∂L/∂{t.w})")
    dims = sorted({d for s in arrays.values() for d in s if isinstance(d, str)})
    parsed = parse_index_claim(claim, ClaimScope(arrays, tuple(p.name for p in t.recipe.params),
                                                 tuple(dims), excluded))
    out_rank = 0 if t.scalar else t.out.rank
    positions = [(t.out_name, a, d) for a, d in enumerate(t.out.shape)][:out_rank] + \
                [(t.w, a, d) for a, d in enumerate(t.x.shape)]
    lhs = _index_lhs(t)
    free = parsed.free
    if len(free) == len(positions):
        o, i = free[:out_rank], free[out_rank:]
        lhs = (f"∂{t.out_name}" + (f"[{','.join(o)}]" if o else "") + f"/∂{t.w}"
               + (f"[{','.join(i)}]" if i else ""))
        reading = lhs + " (" + "; ".join(f"{c}: axis {a} of {arr}, size {d}"
                                        for c, (arr, a, d) in zip(free, positions)) + ")"
    else:
        reading = f"{lhs} with free indices {', '.join(free) or 'none'}"
    derived = t.derived("gradient" if t.scalar else "vjp")
    base = _Base(target=t.recipe.name, wrt=t.w, claim=claim, form="index", reading=reading,
                 derived=derived.index.text if derived and derived.index else None,
                 derived_pretty=(f"{derived.index_lhs_pretty} = {derived.index.pretty}"
                                 if derived and derived.index else None),
                 notes=_kink_notes(t, None, None))
    if len(free) != len(positions):
        shape = fmt_shape(tuple(d for _, _, d in positions))
        return ClaimVerdict(
            verdict="refuted", method="shapes", **base,
            reason=(f"the claim has {len(free)} free ind{'ex' if len(free) == 1 else 'ices'} "
                    f"({', '.join(free) or 'none'}), but {lhs} has {len(positions)}: "
                    + (f"{out_rank} for the axes of {t.out_name} ({fmt_shape(t.out.shape)}), then "
                       if out_rank else "")
                    + f"{t.x.rank} for {t.w} ({fmt_shape(t.x.shape)}); ∂{t.out_name}/∂{t.w} has "
                    f"shape {shape}"))
    for letter, (arr, axis, dim) in zip(free, positions):
        for use in parsed.uses.get(letter, []):
            if use.dim != dim:
                return ClaimVerdict(
                    verdict="refuted", method="shapes", **base,
                    reason=(f"index {letter} stands for axis {axis} of {arr} (size {dim}) but "
                            f"subscripts axis {use.axis} of {use.array}, which has size {use.dim}"))
    out_syms = tuple(index_symbol(c) for c in free[:out_rank])
    in_syms = tuple(index_symbol(c) for c in free[out_rank:])
    form = IndexForm(parsed.expr, out_syms, in_syms, {})
    if any(s.name in dims for s in parsed.expr.free_symbols):
        _more_sizes(t)
    if not t.verifier.feasible:
        return ClaimVerdict(verdict="not verified", method="none", **base,
                            reason=f"index claims are compared symbolically, and this derivative "
                                   f"is too large for that (about {t.verifier.cost:,} operations); "
                                   f"state it as a matrix claim to compare it numerically")
    ver = t.verifier.check_index(form)
    if not ver.verified:
        return _refutation(t, ver, lambda v: v.check_index(form), seed, base, None, free)
    numeric = _index_numeric(t, form, ver.sizes[-1], seed)
    return ClaimVerdict(verdict="verified", reason=f"equal to derivkit's derivation: {ver.detail}",
                        method=ver.method, sizes=ver.sizes, numeric=numeric, **base)


def _index_lhs(t: _Target) -> str:
    return f"∂{t.out_name}/∂{t.w}[…]" if t.scalar else f"∂{t.out_name}[…]/∂{t.w}[…]"


def _index_numeric(t: _Target, form: IndexForm, sizes: dict, seed: int) -> str:
    """Every entry of the claim at a random point vs derivkit's verified matrix form, lowered to
    NumPy (Jacobian rows from the VJP with unit upstreams)."""
    from ..checking.sampling import concrete, sample_inputs
    from ..lowering.forms import form_function

    kind = "gradient" if t.scalar else "vjp"
    dv = t.derived(kind)
    if dv is None or dv.matrix is None or not dv.matrix.verification.verified:
        return "no numeric comparison: derivkit has no verified matrix form to compare with"
    fn = form_function(t.recipe, dv.matrix.text, "derived")
    rng = np.random.default_rng(seed)
    values = sample_inputs(t.recipe, sizes, rng, np.float64)
    params = t.params
    out_shape = concrete(t.out.shape, sizes) if not t.scalar else ()
    x_shape = concrete(t.x.shape, sizes)
    jac = np.empty(out_shape + x_shape)
    for o in np.ndindex(*out_shape):
        kw = dict(values)
        if not t.scalar:
            u = np.zeros(out_shape)
            u[o] = 1.0
            kw[t.recipe.upstream] = u
        jac[o] = np.broadcast_to(fn(**kw, **params), x_shape)
    env = {k: np.frompyfunc(lambda f: sp.Float(float(f)), 1, 1)(np.asarray(v, dtype=object))
           for k, v in values.items()}
    env.update({k: np.asarray(sp.Float(v), dtype=object) for k, v in params.items()})
    ex = Explicit(sizes, env, t.problem.named)
    claimed = index_entries(form, sizes, out_shape, x_shape,
                            make_lookup(env, ex, t.problem.named, form))
    worst = 0.0
    for idx in np.ndindex(*jac.shape):
        v = complex(sp.N(claimed[idx], 20)).real
        truth = float(jac[idx])
        worst = max(worst, abs(v - truth) / max(abs(truth), 1e-300, abs(v)))
    return (f"every entry equal to derivkit's lowered, verified form at random inputs (seed "
            f"{seed}) at {fmt_sizes(sizes, spaced=True, empty=DECLARED)}: max relative difference "
            f"{worst:.1e}")


def _more_sizes(t: _Target) -> None:
    """A claim that uses a dimension name as a number is also compared with every dimension 1
    and at larger sizes (5, 6, ...), where they fit, besides the usual sizes."""
    dims = t.verifier.dims
    extra = [{d: 1 for d in dims}, {d: 5 + i for i, d in enumerate(dims)},
             {d: 6 + i for i, d in enumerate(dims)}]
    t.verifier = Verifier(t.problem, assignments=t.verifier.assignments + [
        a for a in extra if a not in t.verifier.assignments])   # the same first (costed) one


# ---------------------------------------------------------------- refutations
def _small_assignments(t: _Target) -> list[dict[str, int]]:
    """Size assignments in increasing number of Jacobian entries (then total size)."""
    dims = t.verifier.dims
    combos = [dict(zip(dims, vals)) for vals in itertools.product(SMALL_VALUES, repeat=len(dims))]
    combos.sort(key=lambda a: (t.verifier._entries(a), sum(a.values()), tuple(a.values())))
    return combos[:MAX_SMALL]


def _refutation(t: _Target, ver: Verification, run: Callable[[Verifier], Verification], seed: int,
                base: _Base, kind: str | None,
                letters: tuple[str, ...] = ()) -> ClaimVerdict:
    mismatch = t.verifier.mismatch
    if mismatch is None:  # the budget ran out, or the comparison could not be carried out
        return ClaimVerdict(verdict="not verified", method="none", reason=ver.detail,
                            sizes=ver.sizes, **base)
    order = _small_assignments(t)
    failing_key = t.verifier._entries(mismatch.sizes)
    for sizes in order:
        if t.verifier._entries(sizes) > failing_key or sizes == mismatch.sizes:
            break
        small = Verifier(t.problem, assignments=[sizes])
        if not run(small).verified and small.mismatch is not None:
            mismatch = small.mismatch
            break
    ce = _counterexample(t, mismatch, kind, letters, seed)
    at = fmt_sizes(mismatch.sizes, spaced=True, empty=DECLARED)
    reason = (f"differs from the element-wise derivation at {at}, entry "
              f"{ce.entry_text}: the claim gives {_num(ce.claimed)}, the derivative is "
              f"{_num(ce.true)}")
    return ClaimVerdict(verdict="refuted", reason=reason, method="symbolic",
                        sizes=(mismatch.sizes,), counterexample=ce, **base)


def _counterexample(t: _Target, m: Mismatch, kind: str | None, letters: tuple[str, ...],
                    seed: int) -> Counterexample:
    rng = random.Random(seed)
    params = {elementwise.param_symbol(p.name): sp.Float(p.default) for p in t.recipe.params}
    diff = m.derived - m.truth
    params_names = {p.name for p in t.recipe.params}
    found = witness(diff.xreplace(params), rng) or {}
    point: dict[sp.Symbol, Any] = {}
    values: dict[str, Any] = {}
    for _ in range(20):
        point = dict(params)
        point.update(found)
        values = {}
        for name, arr in m.env.items():
            if name in params_names or (name == t.recipe.upstream and kind not in ("vjp",)):
                continue
            vals = np.empty(np.shape(arr), dtype=object)
            for idx in np.ndindex(*np.shape(arr)):
                sym = arr[idx]
                if sym not in point:
                    point[sym] = _sample(sym, rng)
                vals[idx] = float(point[sym])
            values[name] = vals.tolist() if vals.ndim else float(vals.item())
        if _value(diff, point) not in (0.0, None):
            break
        found = {}
    claimed, true = _value(m.derived, point), _value(m.truth, point)
    if kind is None:
        text = ", ".join(f"{c} = {v}" for c, v in zip(letters, m.entry))
    else:
        text = _entry_text(t, kind, m.entry)
    return Counterexample(dict(m.sizes), values, tuple(m.entry), text,
                          float("nan") if claimed is None else claimed,
                          float("nan") if true is None else true)


def _value(e: sp.Expr, point: dict) -> float | None:
    v = value_at(e, point)
    return None if v is None else complex(v).real


def _entry_text(t: _Target, kind: str, entry: tuple[int, ...]) -> str:
    y, w = t.out_name, t.w
    if kind == "jacobian":
        k = t.out.rank
        return f"∂{y}[{','.join(map(str, entry[:k]))}]/∂{w}[{','.join(map(str, entry[k:]))}]"
    lhs = f"∂{y}/∂{w}" if kind == "gradient" else f"∂L/∂{w}"
    return f"{lhs}[{','.join(map(str, entry))}]" if entry else lhs


def _num(v: float) -> str:
    return "nan" if v != v else f"{v:.6g}"



# ---------------------------------------------------------------- kinks
def _kink_notes(t: _Target, form: ir.Node | None, kind: str | None) -> tuple[str, ...]:
    """Parameters are compared at their values. At a kink the derivative is a convention no
    finite difference can decide: state derivkit's, and (matrix claims) compare the claim with
    it exactly at the kink."""
    fns = sorted({n.fn for n in ir.walk(t.out) if isinstance(n, ir.Apply)
                  and elementwise.kink_conventions(n.fn)})
    notes = []
    if t.params:
        notes.append("compared with the parameters at their values: "
                     + ", ".join(f"{k} = {v:g}" for k, v in t.params.items()))
    for fn in fns:
        for k in elementwise.kink_conventions(fn):
            notes.append(f"{fn}'({k.at}) = {k.value} by derivkit's convention (one-sided "
                         f"derivatives {k.left} and {k.right}); equality is decided away from the "
                         f"kink, where the derivative is unique")
    if form is None or kind is None or not fns:
        return tuple(notes)
    probe = _kink_probe(t, form, kind)
    return tuple(notes) + ((probe,) if probe else ())


def _kink_probe(t: _Target, form: ir.Node, kind: str) -> str | None:
    """Claim vs derivkit's form with the input at exactly 0 (the kink of relu, leaky_relu,
    abs), when the input enters a kink function directly."""
    direct = any(isinstance(n, ir.Apply) and n.a == t.x and elementwise.kink_conventions(n.fn)
                 for n in ir.walk(t.out))
    dv = t.derived(kind)
    if not direct or dv is None or dv.matrix is None:
        return None
    from ..checking.sampling import default_sizes, sample_inputs
    from ..lowering.forms import call_form, form_function

    sizes = default_sizes(t.verifier.dims, products=dict(t.recipe.products))
    values = sample_inputs(t.recipe, sizes, np.random.default_rng(0), np.float64)
    values[t.w] = np.zeros_like(values[t.w])
    if t.upstream is not None:
        from ..checking.sampling import concrete

        values[t.recipe.upstream] = np.ones(concrete(t.out.shape, sizes))
    params = t.params
    with np.errstate(all="ignore"):
        claimed = np.asarray(call_form(form_function(t.recipe, language(form), "claim"), values,
                                       params))
        ours = np.asarray(call_form(form_function(t.recipe, dv.matrix.text, "ours"), values, params))
    claimed = np.broadcast_to(claimed, ours.shape)
    if np.array_equal(claimed, ours):
        return f"at {t.w} = 0 (the kink) the claim agrees with derivkit's convention"
    c = claimed.ravel()[np.argmax(claimed.ravel() != ours.ravel())]
    o = ours.ravel()[np.argmax(claimed.ravel() != ours.ravel())]
    what = "is undefined (nan)" if not np.isfinite(c) else f"gives {c:g}"
    upstream = f" (upstream {t.upstream.name} = 1)" if kind == "vjp" and t.upstream is not None else ""
    return (f"at {t.w} = 0 (the kink) the claim {what} where derivkit's convention gives {o:g}"
            f"{upstream}: at a kink the derivative is a convention, so this is not a refutation")


