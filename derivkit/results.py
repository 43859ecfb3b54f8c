"""Plain frozen dataclasses every command returns; renderers (rich, json) only read these.

Every key of a result's JSON document (`--json`) is also an attribute of the result (some as
properties: `Derivative.matrix_form`, `.latex`, `.verified_at`, …)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from .markup.html import with_lhs


class Displayed:
    """Jupyter's display protocol for a result: rendered maths (`_repr_html_`, MathML), the
    equations as LaTeX and a Markdown summary, drawn by `derivkit.markup`'s `{kind}_html`,
    `{kind}_latex` and `{kind}_markdown` for the class's `_display` kind."""

    _display: ClassVar[str]

    def _repr_html_(self) -> str:
        from .markup import html

        return html.fragment(getattr(html, f"{self._display}_html")(self))

    def _repr_latex_(self) -> str:
        from .markup import notebook

        return str(getattr(notebook, f"{self._display}_latex")(self))

    def _repr_markdown_(self) -> str:
        from .markup import notebook

        return str(getattr(notebook, f"{self._display}_markdown")(self))


@dataclass(frozen=True)
class Verification:
    """How a printed form was confirmed; `detail` is the sentence shown with it.

    Every verified form agrees with the oracle (the forward differentiated numerically at 60
    digits, `derivkit.derivation.oracle`) at every size in `sizes`. `method` is "symbolic" when it
    also equals the element-wise SymPy derivation exactly, "numeric" when that equality was
    decided at random points with 40-digit arithmetic, "oracle" when the element-wise
    comparison was too large or did not finish in its budget, "finite-differences" for a
    claim judged numerically (`derivkit verify`), or "none" (not confirmed; `detail` says why)."""

    verified: bool
    method: str
    sizes: tuple[dict[str, int], ...] = ()
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
    shape: tuple[int | str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        forms = [f for f in (self.index, self.matrix) if f is not None]
        return bool(forms) and all(f.verification.verified for f in forms)

    # The names of the JSON document (`derivkit derive --json`), as attributes.
    @property
    def lhs(self) -> str:
        return self.lhs_pretty

    @property
    def index_lhs(self) -> str | None:
        return self.index_lhs_pretty

    @property
    def index_form(self) -> str | None:
        """The index form in the expression language, e.g. "p[i]*(delta(i, j) - p[j])"."""
        return self.index.text if self.index is not None else None

    @property
    def matrix_form(self) -> str | None:
        """The matrix form in NumPy syntax, e.g. "X.T @ G"."""
        return self.matrix.text if self.matrix is not None else None

    @property
    def latex(self) -> str:
        """One LaTeX equation: the matrix form if obtained, else the index form ("" if neither)."""
        if self.matrix is not None:
            return with_lhs(self.lhs_latex, self.matrix.latex)
        if self.index is not None:
            return with_lhs(self.index_lhs_latex or self.lhs_latex, self.index.latex)
        return ""

    @property
    def verified_at(self) -> tuple[dict[str, int], ...]:
        """The sizes at which the headline form (matrix, else index) was confirmed; () if the
        derivative is not verified."""
        shown = self.matrix if self.matrix is not None else self.index
        return tuple(shown.verification.sizes) if shown is not None and self.verified else ()


@dataclass(frozen=True)
class ChainStep:
    """One line of a composite's backward pass: `lhs = form`, e.g. ΔA2 = ΔZ3 W3."""

    lhs: str
    target: str          # the step or input this is the derivative with respect to
    kind: str            # "delta" (an intermediate) | "gradient" (a differentiated input)
    shape_text: str
    form: Form
    name: str = ""       # the left-hand side as a name of the language: dP for ΔP, dW for ∂f/∂W
    name_text: str = ""  # form.text with every Δ written as its name (ASCII: parses back)


@dataclass(frozen=True)
class InputInfo:
    name: str
    shape: tuple[int | str, ...]
    shape_text: str
    domain: str

    @property
    def dims(self) -> tuple[int | str, ...]:   # the JSON key
        return self.shape


@dataclass(frozen=True)
class Derivation(Displayed):
    """A target's derivatives. `forward_pretty` and `forward_latex` are whole equations
    (output = forward expression)."""

    _display: ClassVar[str] = "derivation"

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
    chain: tuple[ChainStep, ...] = ()   # the backward pass, step by step (a program of steps)
    # the named values forms may use, in forward order: (name, definition in the expression
    # language over the inputs and earlier names), e.g. ("P", "softmax(S)")
    intermediates: tuple[tuple[str, str], ...] = ()

    @property
    def output_shape(self) -> str:   # the JSON key
        return self.output_shape_text

    @property
    def verified(self) -> bool:
        return (all(d.verified for d in self.derivatives)
                and all(c.form.verification.verified for c in self.chain))

    def chain_verification(self) -> tuple[str, ...]:
        """How the backward program's lines were verified, one sentence per distinct way: "each
        line verified …", or "ΔP, ΔS: verified …" when the lines differ."""
        groups: dict[str, list[str]] = {}
        for s in self.chain:
            groups.setdefault(s.form.verification.detail or f"verified {s.form.verification.method}",
                              []).append(s.lhs)
        if len(groups) == 1:
            return tuple(groups)
        return tuple(f"{', '.join(lines)}: {detail.removeprefix('each line ')}"
                     for detail, lines in groups.items())



@dataclass(frozen=True)
class RecipeSummary:
    name: str
    summary: str
    inputs: tuple[tuple[str, str], ...]   # (name, shape text)
    wrt: tuple[str, ...]
    path: str | None


# ---------------------------------------------------------------- numerical checks
@dataclass(frozen=True)
class WorstEntry:
    """One compared entry. `index` indexes the wrt input (VJP/gradient entries) or, for a
    Jacobian, (output index..., input index...); for a directional check it is the direction."""

    index: tuple[int, ...]
    derived: float
    numeric: float
    abs_error: float
    tolerance: float


@dataclass(frozen=True)
class Diagnosis:
    """A recognisable mistake in a user's backward function (`derivkit check --impl`), stated
    only when derivkit reproduced the user's value from that mistake. `name` is short and stable
    (e.g. "transposed", "sign flipped", "summed over the wrong axis"); `detail` says what was
    reproduced and how closely."""

    name: str
    detail: str


@dataclass(frozen=True)
class CheckResult:
    """A derivative of one input compared with finite differences of the lowered forward.

    Pass iff every compared entry has |derived − numeric| ≤ atol + rtol·|numeric| where rtol and
    atol come from the method's error estimate and the dtype (or the user's override)."""

    wrt: str
    kind: str                  # "vjp" | "gradient" | "jacobian"
    shape: tuple[int, ...]     # of the wrt input
    mode: str                  # "full" | "directional"
    method: str                # "complex-step" | "central" | "central-richardson"
    step: float                # the step used (relative steps: the largest)
    fd_error_estimate: float   # estimated error of the numerical side
    max_abs_error: float
    max_rel_error: float
    rtol: float
    atol: float
    n_evals: int               # forward evaluations
    passed: bool
    worst: tuple[WorstEntry, ...] = ()
    directions: int = 0
    localised: tuple[WorstEntry, ...] = ()   # entries a failing directional check was traced to
    detection: str = ""        # stated detection power (directional)
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    diagnoses: tuple[Diagnosis, ...] = ()    # --impl: recognised mistakes of a failed check
    max_rel_error_vs_derived: float | None = None   # --impl: against derivkit's derived form


@dataclass(frozen=True)
class TargetCheck(Displayed):
    _display: ClassVar[str] = "target"

    target: str
    passed: bool
    seed: int
    dtype: str
    sizes: dict[str, int]
    results: tuple[CheckResult, ...]
    conventions: tuple[str, ...] = ()
    error: str | None = None   # a target that could not be checked (counts as a failure)
    seconds: float = 0.0
    implementation: str | None = None   # --impl FILE.py:FUNCTION: the user's code was checked



@dataclass(frozen=True)
class CheckReport(Displayed):
    _display: ClassVar[str] = "report"

    passed: bool
    targets: tuple[TargetCheck, ...]
    seconds: float = 0.0

    @property
    def n_targets(self) -> int:
        return len(self.targets)

    @property
    def n_passed(self) -> int:
        return sum(1 for t in self.targets
                   if t.passed and t.error is None and all(r.passed for r in t.results))



# ---------------------------------------------------------------- lowering
@dataclass(frozen=True)
class Lowered:
    """A standalone NumPy module lowered from a verified derivation (`derivkit lower`).

    `source` imports only NumPy; `functions` names its public functions in order (`forward`,
    then per input `grad_x` / `jacobian_x` and `vjp_x`); `formulas` pairs each function with the
    pretty equation it computes. Only verified matrix forms are ever lowered. Get the callables
    with `derivkit.lowering.module.load(lowered)`."""

    target: str
    source: str
    functions: tuple[str, ...]
    formulas: tuple[tuple[str, str], ...] = ()
    helpers: tuple[str, ...] = ()


# ---------------------------------------------------------------- claims (derivkit verify)
@dataclass(frozen=True)
class Counterexample:
    """A concrete point where a claim and the derivation differ: the sizes, every input (and
    upstream gradient) value, the entry, and both values there."""

    sizes: dict[str, int]
    values: dict[str, Any]     # name -> nested list of floats (or a float)
    entry: tuple[int, ...]     # index into the claimed quantity
    entry_text: str            # e.g. "∂p_0/∂z_0 (i = 0, j = 0)"
    claimed: float
    true: float


@dataclass(frozen=True)
class ClaimVerdict(Displayed):
    """`derivkit verify`: is the claimed derivative equal to derivkit's derivation?

    verdict: "verified" (equal symbolically at every size in `sizes` and numerically at random
    points), "refuted" (with a reason and, unless the shapes already differ, a counterexample at
    the smallest size where it fails) or "not verified" (derivkit could not decide; says why)."""

    _display: ClassVar[str] = "verdict"

    target: str
    wrt: str
    claim: str
    form: str                  # "matrix" | "index"
    reading: str               # what the claim was read as, e.g. "∂L/∂W = …, the VJP (n×k)"
    verdict: str
    reason: str
    method: str                # "symbolic" | "numeric" | "finite-differences" | "shapes" | "none"
    sizes: tuple[dict[str, int], ...] = ()
    numeric: str = ""          # the random-point / finite-difference stage, in one sentence
    counterexample: Counterexample | None = None
    derived: str | None = None         # derivkit's own form of the same quantity (text)
    derived_pretty: str | None = None
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def verified(self) -> bool:
        return self.verdict == "verified"

