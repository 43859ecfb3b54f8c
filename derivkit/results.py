"""Plain frozen dataclasses every command returns; renderers (rich, json) only read these."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Verification:
    """How a printed form was confirmed against the element-wise derivation.

    `method` is "symbolic" (exact equality at every size in `sizes`), "numeric" (equal to 1e-20
    at random points with 40-digit arithmetic, where exact simplification was inconclusive),
    or "none" (could not be confirmed; `detail` says why)."""

    verified: bool
    method: str
    sizes: tuple[dict, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class Form:
    """One way of writing a derivative.

    `text` is in derivkit's expression language (NumPy syntax for matrix forms; subscripts and
    delta(i, j) for index forms), so it can be parsed back; `pretty` is Unicode for people.
    `text` and `pretty` are the right-hand side only; `latex` is the whole equation (with its
    left-hand side, e.g. \frac{∂L}{∂W} = X^⊤ G)."""

    text: str
    pretty: str
    latex: str
    verification: Verification


@dataclass(frozen=True)
class Derivative:
    """∂(output)/∂(wrt) of one kind.

    kind: "gradient" (scalar output; same shape as wrt), "vjp" (ḡ ↦ ∂L/∂wrt given the upstream
    gradient named `upstream`), or "jacobian" (vector output and vector input, n_out × n_in)."""

    wrt: str
    kind: str
    lhs_pretty: str                 # e.g. "∂L/∂W" or "∂p/∂z"
    lhs_latex: str
    index_lhs_pretty: str | None    # e.g. "∂Y[i,j]/∂W[r,s]"
    index_lhs_latex: str | None
    index: Form | None              # element-wise (index) form of the Jacobian / gradient
    matrix: Form | None             # closed matrix form of this kind, None if not obtained
    upstream: str | None = None
    shape: tuple = ()
    notes: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        forms = [f for f in (self.index, self.matrix) if f is not None]
        return bool(forms) and all(f.verification.verified for f in forms)


@dataclass(frozen=True)
class InputInfo:
    name: str
    shape: tuple
    shape_text: str
    domain: str


@dataclass(frozen=True)
class Derivation:
    """A target's derivatives. `forward_pretty` and `forward_latex` are whole equations
    (output = forward expression)."""

    target: str
    summary: str
    forward: str
    forward_pretty: str
    forward_latex: str
    output: str
    output_shape_text: str
    inputs: tuple[InputInfo, ...]
    params: tuple[tuple[str, float], ...]
    derivatives: tuple[Derivative, ...]
    conventions: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    warnings: tuple[str, ...] = field(default=())

    @property
    def verified(self) -> bool:
        return all(d.verified for d in self.derivatives)


@dataclass(frozen=True)
class RecipeSummary:
    name: str
    summary: str
    inputs: tuple[tuple[str, str], ...]   # (name, shape text)
    wrt: tuple[str, ...]
    path: str | None


def to_dict(obj) -> dict:
    return asdict(obj)
