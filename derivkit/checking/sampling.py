"""Check points: concrete sizes, inputs drawn from each input's domain, and kink safety.

Default sizes give every symbolic dimension its own value (3, 4, 5, ...), so no check runs on a
square shape that would hide a transposition. Inputs are standard normal ("real"), |N| + 0.5
("positive") or ±(|N| + 0.1) ("nonzero", away from a kink at 0). For forwards with kinks
(relu, leaky_relu, abs, where), `kink_switches` lowers every switching quantity (a kink
function's argument, a where condition's lhs − rhs) so the runner can require that no
finite-difference stencil crosses a kink.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import DerivkitError
from ..lang import ir
from ..lang.ops import ELEMENTWISE
from ..lang.recipes import INTEGER, Recipe
from ..lang.shapes import Shape
from ..lowering.source import batched_function

DEFAULT_VALUES = (3, 4, 5, 6, 7, 8, 9, 10)


def default_sizes(dims: list[str], given: dict[str, int] | None = None,
                  minimum: dict[str, int] | None = None,
                  products: dict[str, tuple[ir.Dim, ...]] | None = None) -> dict[str, int]:
    """Sizes for a check: `given` (--size), else distinct small defaults, each at least its
    `minimum` (z[2] needs n ≥ 3); a declared product (`products`, e = h·d) is its factors'."""
    given = dict(given or {})
    minimum = minimum or {}
    if products:
        for name, value in list(given.items()):
            if name not in products:
                continue
            known = all(not isinstance(f, str) or f in given for f in products[name])
            if not known or ir.with_products(given, {name: products[name]})[name] != value:
                factors = "·".join(map(str, products[name]))
                raise DerivkitError(f"⟨--size⟩ {name}={value}: {name} = {factors} is set by its factors",
                                    "give the sizes of the factors instead")
            del given[name]   # consistent with its factors' sizes: set by them below
        return ir.with_products(default_sizes(ir.free_dims(dims, products), given, minimum), products)
    for name, value in given.items():
        if name not in dims:
            raise DerivkitError(f"⟨--size⟩ {name}={value}: {name!r} is not a dimension of this target",
                                f"dimensions: {', '.join(dims) or 'none (all sizes are concrete)'}")
        if value < max(1, minimum.get(name, 1)):
            raise DerivkitError(f"⟨--size⟩ {name}={value}: {name} must be at least "
                                f"{max(1, minimum.get(name, 1))} here")
    free = [v for v in DEFAULT_VALUES if v not in given.values()]
    out = {}
    for d in dims:
        if d in given:
            out[d] = given[d]
            continue
        pick = next((v for v in free if v >= minimum.get(d, 1)), max(free[-1] + 1, minimum.get(d, 1)))
        if pick in free:
            free.remove(pick)
        out[d] = pick
    return out


def concrete(shape: Shape, sizes: dict[str, int]) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else sizes[d] for d in shape)


def sample(shape: tuple[int, ...], domain: str, rng: np.random.Generator,
           dtype: type[np.floating[Any]], classes: int = 2) -> np.ndarray:
    if domain == INTEGER:   # class labels in [0, classes)
        return rng.integers(0, classes, size=shape)
    x = rng.standard_normal(shape)
    if domain == "positive":
        x = np.abs(x) + 0.5
    elif domain == "nonzero":
        x = np.where(x >= 0, 1.0, -1.0) * (np.abs(x) + 0.1)
    return np.asarray(x, dtype=dtype)


def sample_inputs(recipe: Recipe, sizes: dict[str, int], rng: np.random.Generator,
                  dtype: type[np.floating[Any]]) -> dict[str, np.ndarray]:
    from ..lang.program import program

    bounds = ir.label_bounds([program(recipe).out]) if any(
        spec.domain == INTEGER for spec in recipe.inputs) else {}
    return {spec.name: sample(concrete(spec.shape, sizes), spec.domain, rng, dtype,
                              ir.label_classes(bounds, spec.name, sizes))
            for spec in recipe.inputs}


def is_analytic(node: ir.Node) -> bool:
    """True if the forward is analytic and lowered so (complex-step safe): no kinks, no
    comparisons, no max/min, no function whose NumPy lowering is real-only (erf)."""
    for n in ir.walk(node):
        if isinstance(n, (ir.Where, ir.Compare, ir.Extreme)):
            return False
        if isinstance(n, ir.Apply) and (ELEMENTWISE[n.fn].kink is not None
                                        or not ELEMENTWISE[n.fn].complex_step):
            return False
    return True


def rounding_ulps(node: ir.Node) -> float:
    """The largest rounding error, in units of ε, of a function the lowered forward calls."""
    return max((ELEMENTWISE[n.fn].ulps for n in ir.walk(node) if isinstance(n, ir.Apply)),
               default=1.0)


def kink_switches(node: ir.Node) -> list[ir.Node]:
    """Quantities whose sign decides a branch: arguments of kink functions, where-conditions."""
    out: list[ir.Node] = []
    for n in ir.walk(node):
        if isinstance(n, ir.Apply) and (kink := ELEMENTWISE[n.fn].kink) is not None:
            out.append(n.a if kink == 0 else ir.sub(n.a, ir.const(kink)))
        elif isinstance(n, ir.Compare):
            out.append(ir.sub(n.a, n.b))
    return out


def switch_function(node: ir.Node, wrt: str, args: list[str], sizes: dict[str, int],
                    params: dict[str, float]) -> Callable[..., list[np.ndarray]] | None:
    """f(**inputs) -> list of batched arrays, one per switching quantity (None if none): the
    kinks' arguments and where-conditions, and for each max/min which entry is the extreme one
    (±1/2 per entry: a stencil that moves the argmax changes a sign)."""
    switches = kink_switches(node)
    extremes = [n for n in ir.walk(node) if isinstance(n, ir.Extreme)]
    if not switches and not extremes:
        return None
    fns = [batched_function(f"switch{i}", args, s, {wrt}, sizes, params)
           for i, s in enumerate(switches)]
    operands = [(batched_function(f"extreme{i}", args, e.a, {wrt}, sizes, params), e)
                for i, e in enumerate(extremes)]

    def which(values: np.ndarray, e: ir.Extreme) -> np.ndarray:
        if values.ndim == e.a.rank:   # the operand does not depend on the input: no batch axis
            values = values[None]
        axes = tuple(range(1, values.ndim)) if e.axis is None else (e.axis + 1,)
        pick = values.max(axis=axes, keepdims=True) if e.fn == "max" else \
            values.min(axis=axes, keepdims=True)
        return (values == pick).astype(np.float64) - 0.5

    def evaluate(**kwargs: np.ndarray) -> list[np.ndarray]:
        return ([np.real(f(**kwargs)) for f in fns]
                + [which(np.real(f(**kwargs)), e) for f, e in operands])

    return evaluate
