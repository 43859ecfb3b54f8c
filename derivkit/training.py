"""Gradient descent on a seeded synthetic task, with derivkit's own gradients.

A composite recipe (`[[steps]]` ending in a scalar loss, like `mlp3`) has data inputs (the
inputs not in `wrt`: X and the target T) and parameters (its `wrt`). `make_task` builds a task:
X ~ N(0, 1), a random "teacher" network of the same architecture gives T = teacher(X) plus a
little noise (regression) or, where the loss is a cross-entropy against log_softmax(logits),
the one-hot of the teacher's most likely class per row; the student starts from another seeded
draw. `train` then runs plain
full-batch gradient descent with `derivkit.lowering.backward.backward_function` (the derived, verified,
lowered backward pass) and `derivkit.lowering.forms.forward_function` (the loss).

`use_updated_weights=True` reproduces the backprop tutorial's warning on purpose: the last
layer's parameters are updated first and the backward pass of the layers below then runs with
the updated values (Δ_A2 = Δ_Z3 W3 with the new W3), which is not the gradient. The relative
deviation ‖g_used − g_true‖/‖g_true‖ of every lower-layer gradient is recorded per epoch.

"Last layer" = the `wrt` inputs used by the last step that uses any `wrt` input (W3 and b3 for
`mlp3`: step Z3 = A2 @ W3.T + b3); determined from the recipe's steps, not from names.

Pure NumPy, no Rich: the CLI (`derivkit.cli.train`) draws the progress bar,
`derivkit.render.train_render` the chart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from .errors import DerivkitError
from .lang.recipes import InputSpec, Recipe
from .lang.shapes import fmt_sizes
from .limits import phase, with_timeout
from .results import Displayed

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from .lang.shapes import Dim, Shape

BATCH_SIZE = 64        # default size of the sample dimension (the first axis of X)
WIDTH = 8              # default size of every other symbolic dimension
NOISE = 0.01           # standard deviation of the noise added to the teacher's targets
BIAS_SCALE = 0.1       # standard deviation of random biases (1-D parameters)


@dataclass(frozen=True)
class Task:
    """A seeded task: data, the student's initial parameters, the teacher's."""

    recipe: str
    sizes: Mapping[str, int]
    data: Mapping[str, NDArray[np.float64]]      # X, T
    params: Mapping[str, NDArray[np.float64]]    # the student's initial parameters (the recipe's wrt)
    teacher: Mapping[str, NDArray[np.float64]]
    target: str                         # the data input the loss compares with (T)


@dataclass(frozen=True)
class TrainResult(Displayed):
    """`losses[k]`: the loss at the start of epoch k+1 (the pass its gradients come from);
    `final_loss`: after the last update. With `use_updated_weights`, `deviations[p][k]` is
    ‖g_used − g_true‖/‖g_true‖ of lower-layer parameter p at epoch k+1; otherwise empty."""

    _display: ClassVar[str] = "train"

    recipe: str
    epochs: int
    lr: float
    seed: int
    sizes: Mapping[str, int]
    losses: tuple[float, ...]
    final_loss: float
    use_updated_weights: bool = False
    last_layer: tuple[str, ...] = ()
    deviations: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def initial_loss(self) -> float:
        return self.losses[0]

    @property
    def mean_deviation(self) -> float | None:
        values = [v for series in self.deviations.values() for v in series]
        return sum(values) / len(values) if values else None

    @property
    def max_deviation(self) -> float | None:
        values = [v for series in self.deviations.values() for v in series]
        return max(values) if values else None


def _need_composite(recipe: Recipe) -> None:
    if not recipe.steps:
        raise DerivkitError(f"recipe {recipe.name!r} has no steps: 'derivkit train' needs a "
                            "composite recipe (a network of [[steps]] ending in a scalar loss)",
                            "e.g. 'derivkit train mlp3'")


def last_layer(recipe: Recipe) -> tuple[str, ...]:
    """The wrt inputs used by the last step that uses any wrt input, in wrt order."""
    from .lang import ir
    from .lang.program import program

    _need_composite(recipe)
    for node in reversed(list(program(recipe).definitions.values())):
        used = {n.name for n in ir.walk(node) if isinstance(n, ir.Var) and n.role == "input"}
        mine = tuple(w for w in recipe.wrt if w in used)
        if mine:
            return mine
    raise DerivkitError(f"no step of {recipe.name!r} uses a differentiated input")


def task_sizes(recipe: Recipe, sizes: Mapping[str, int] | None = None) -> dict[str, int]:
    """Concrete sizes: the first axis of the first data input gets BATCH_SIZE, every other
    symbolic dimension WIDTH; `sizes` overrides (an unknown name is an input error)."""
    dims: list[str] = []
    for spec in recipe.inputs:
        for d in spec.shape:
            if isinstance(d, str) and not d.isdigit() and d not in dims:
                dims.append(d)
    unknown = sorted(set(sizes or {}) - set(dims))
    if unknown:
        raise DerivkitError(f"⟨--size⟩ {unknown[0]}: {recipe.name!r} has no dimension {unknown[0]!r}",
                            f"its dimensions: {', '.join(dims) or 'none'}")
    data = [i for i in recipe.inputs if i.name not in recipe.wrt and i.shape]
    batch = data[0].shape[0] if data else None
    out = {d: (BATCH_SIZE if d == batch else WIDTH) for d in dims}
    for name, value in (sizes or {}).items():
        if int(value) < 1:
            raise DerivkitError(f"⟨--size⟩ {name}={value}: sizes must be at least 1")
        out[name] = int(value)
    return out


MAX_TRAIN_BYTES = 4 << 30   # every array of a training run at its sizes (see memory_estimate)


def memory_estimate(recipe: Recipe, sizes: Mapping[str, int]) -> int:
    """Bytes a training run holds at `sizes`: every intermediate of the forward pass (the
    backward pass holds about two more of each) and the inputs, with five copies of each
    parameter (the student, the teacher, the update, the gradient, the stale gradient)."""
    import math

    from .lang import ir
    from .lang.program import program

    out = program(recipe).out

    def entries(shape: Shape) -> int:
        return math.prod(_concrete(shape, sizes))

    nodes = sum(entries(n.shape) for n in ir.walk(out))
    params = sum(entries(recipe.input(w).shape) for w in recipe.wrt)
    data = sum(entries(i.shape) for i in recipe.inputs if i.name not in recipe.wrt)
    return 8 * (3 * nodes + 5 * params + 2 * data)


def _refuse_large(recipe: Recipe, sizes: Mapping[str, int]) -> None:
    need = memory_estimate(recipe, sizes)
    if need > MAX_TRAIN_BYTES:
        shown = fmt_sizes(sizes)
        raise DerivkitError(f"training {recipe.name!r} at {shown} needs about "
                            f"{need / 2**30:,.1f} GiB of memory (the data, the weights and every "
                            f"layer's activations and gradients); the limit is "
                            f"{MAX_TRAIN_BYTES / 2**30:g} GiB", "use smaller ⟨--size values|sizes⟩")


def _concrete(shape: Shape, sizes: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(int(d) if str(d).isdigit() else sizes[str(d)] for d in shape)


def _target_and_prediction(recipe: Recipe) -> tuple[str, str, bool]:
    """(the data input the loss compares with, the prediction it is compared with, whether it
    is a classification): a step of the data input's shape the last step uses (regression,
    like sum((Yhat - T)**2)), or else the logits of a log_softmax (or log of a softmax) of
    that shape (cross-entropy, like -sum(T * log_softmax(Y @ Wu)))."""
    from .lang import ir
    from .lang.printing import language
    from .lang.program import program

    steps = program(recipe).definitions
    loss = list(steps)[-1]
    used = [n for n in ir.walk(steps[loss]) if isinstance(n, ir.Var)]
    preds = [v.name for v in used if v.role == "named"]
    data = [v for v in used if v.role == "input" and v.name not in recipe.wrt]
    for v in data:
        for p in preds:
            if tuple(steps[p].shape) == tuple(v.shape):
                return v.name, p, False
    logits = [n.operands[0] for n in ir.walk(steps[loss])
              if isinstance(n, ir.Macro) and n.fn in ("log_softmax", "softmax")]
    for v in data:
        for z in logits:
            if tuple(z.shape) == tuple(v.shape):
                return v.name, language(z), True
    raise DerivkitError(f"'derivkit train' needs the loss of {recipe.name!r} ({loss}) to compare "
                        "a step with a data input of the same shape (like sum((Yhat - T)**2)), "
                        "or a data input with log_softmax of logits (like -sum(T * "
                        "log_softmax(Y @ W)))")


def _fan_in(spec: InputSpec, known: set[Dim]) -> int | None:
    """The axis of a 2-D weight whose dimension is known from earlier inputs (its input side);
    the last axis when both or neither are (out × in, as mlp3 and nn.Linear store it)."""
    if len(spec.shape) != 2:
        return None
    a, b = spec.shape
    if (a in known) != (b in known):
        return 0 if a in known else 1
    return 1


def _draw_params(recipe: Recipe, sizes: Mapping[str, int], rng: np.random.Generator,
                 target: str) -> dict[str, NDArray[np.float64]]:
    """Matrices N(0, 1)/sqrt(fan_in), vectors and scalars N(0, BIAS_SCALE²)."""
    known = {d for i in recipe.inputs if i.name not in recipe.wrt and i.name != target for d in i.shape}
    out: dict[str, NDArray[np.float64]] = {}
    for name in recipe.wrt:
        spec = recipe.input(name)
        shape = _concrete(spec.shape, sizes)
        axis = _fan_in(spec, known)
        if axis is None:
            out[name] = BIAS_SCALE * rng.standard_normal(shape)
        else:
            out[name] = rng.standard_normal(shape) / math.sqrt(shape[axis])
        known.update(spec.shape)
    return out


def make_task(recipe: Recipe, sizes: Mapping[str, int] | None = None, seed: int = 0) -> Task:
    """A seeded synthetic task for a composite recipe (see the module docstring)."""
    import numpy as np

    from .lowering.forms import form_function

    _need_composite(recipe)
    concrete = task_sizes(recipe, sizes)
    _refuse_large(recipe, concrete)   # before any array is drawn
    target, prediction, classes = _target_and_prediction(recipe)
    rng = np.random.default_rng(seed)
    data: dict[str, NDArray[np.float64]] = {}
    for spec in recipe.inputs:
        if spec.name not in recipe.wrt and spec.name != target:
            data[spec.name] = rng.standard_normal(_concrete(spec.shape, concrete))
    teacher = _draw_params(recipe, concrete, rng, target)
    t_shape = _concrete(recipe.input(target).shape, concrete)
    predict = form_function(recipe, prediction, "predict")
    clean = np.broadcast_to(predict(**data, **teacher, **{target: np.zeros(t_shape)}), t_shape)
    if classes:   # one-hot targets: the teacher's most likely class per row
        data[target] = np.eye(t_shape[-1])[np.argmax(clean, axis=-1)]
    else:
        data[target] = clean + NOISE * rng.standard_normal(t_shape)
    student = _draw_params(recipe, concrete, rng, target)
    return Task(recipe.name, concrete, data, student, teacher, target)


def _relative(used: NDArray[np.float64], true: NDArray[np.float64]) -> float:
    import numpy as np

    with np.errstate(all="ignore"):   # a diverging run is reported by the caller, not warned
        norm = float(np.linalg.norm(true))
        diff = float(np.linalg.norm(used - true))
    if norm == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / norm


@with_timeout("train")
def train(recipe: Recipe, *, epochs: int = 200, lr: float = 0.05, seed: int = 0,
          sizes: Mapping[str, int] | None = None, use_updated_weights: bool = False,
          progress: Callable[[int, float], None] | None = None) -> TrainResult:
    """Full-batch gradient descent on `make_task(recipe, sizes, seed)`; `progress(epoch, loss)`
    is called after each epoch (1-based). Every parameter is updated from the gradients of the
    same forward/backward pass, unless `use_updated_weights` (the tutorial's mistake).
    `timeout=S` stops it after S seconds with `BudgetExceeded` (see `derivkit.limits`)."""
    import numpy as np

    from .lowering.backward import backward_function
    from .lowering.forms import forward_function

    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise DerivkitError(f"⟨--epochs⟩ {epochs!r}: give a whole number of epochs >= 1")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise DerivkitError(f"⟨--lr⟩ {lr!r}: the learning rate must be a finite number > 0")
    task = make_task(recipe, sizes, seed)
    backward = backward_function(recipe)
    loss_of = forward_function(recipe)
    loss_name = recipe.steps[-1][0]
    top = last_layer(recipe) if use_updated_weights else ()
    lower_params = [w for w in recipe.wrt if w not in top]
    params = {k: v.copy() for k, v in task.params.items()}
    losses: list[float] = []
    deviations: dict[str, list[float]] = {w: [] for w in lower_params} if use_updated_weights else {}

    def loss_at(p: Mapping[str, NDArray[np.float64]]) -> float:
        with np.errstate(all="ignore"):   # an overflow is reported as divergence, below
            value = float(loss_of(**task.data, **p))
        if not math.isfinite(value):
            raise DerivkitError(f"training diverged: the loss is {value} after {len(losses)} "
                                f"epoch(s) at ⟨--lr⟩ {lr}", "use a smaller ⟨--lr|learning rate⟩")
        return value

    shown = fmt_sizes(task.sizes)
    with phase(f"training {recipe.name!r} for {epochs} epochs at {shown}"):   # for --timeout
        for epoch in range(1, epochs + 1):
            loss = loss_at(params)
            losses.append(loss)
            with np.errstate(all="ignore"):   # a finite loss can still overflow in a gradient
                grads = backward(**task.data, **params)
            true = {w: grads[f"∂{loss_name}/∂{w}"] for w in recipe.wrt}
            if use_updated_weights:
                updated = {w: params[w] - lr * true[w] for w in top}
                with np.errstate(all="ignore"):
                    stale = backward(**task.data, **params, backward_overrides=updated)
                used = {w: stale[f"∂{loss_name}/∂{w}"] for w in lower_params}
                for w in lower_params:
                    deviations[w].append(_relative(used[w], true[w]))
                params = {w: (updated[w] if w in top else params[w] - lr * used[w])
                          for w in recipe.wrt}
            else:
                params = {w: params[w] - lr * true[w] for w in recipe.wrt}
            if progress is not None:
                progress(epoch, loss)
    final = loss_at(params)
    return TrainResult(recipe.name, epochs, float(lr), seed, dict(task.sizes), tuple(losses), final,
                       use_updated_weights, top, {w: tuple(v) for w, v in deviations.items()})


__all__ = ["Task", "TrainResult", "last_layer", "make_task", "task_sizes", "train"]
