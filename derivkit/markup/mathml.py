"""LaTeX -> presentation MathML, for the LaTeX derivkit writes.

derivkit's formulas exist as LaTeX (the IR's LaTeX printer, the op table's templates, SymPy's
printer for index forms, the left-hand sides and the backward program's lines). Browsers render
MathML natively, so a page or a notebook shows them with no script and no font download. This is
a small recursive-descent translator for the subset those printers emit, not a TeX engine:

- groups `{…}`, scripts `^` `_` (a double subscript `W_{1}_{ij}` nests), `\\frac`, `\\sqrt` (and
  `\\sqrt[n]`), `\\left … \\right` with any delimiter (`( [ | . \\{ \\langle …`);
- `\\operatorname`, `\\mathrm` (upright), `\\mathbf`, `\\mathbb` (as Unicode's mathematical
  alphanumerics, which render without `mathvariant`), `\\text` (and friends) as `<mtext>`;
- `\\sum`, `\\prod` with limits (`munderover`), function names (`\\exp`, `\\log`, `\\max` …),
  Greek letters, operators and relations (`\\odot`, `\\otimes`, `\\cdot`, `\\top`, `\\partial`,
  `\\geq` …), spacing (`\\, \\: \\; \\ \\!`, `\\quad`), accents (`\\hat`, `\\bar` …);
- environments (`cases`, `aligned`, `matrix`, `pmatrix`, `bmatrix`, `array`) and top-level
  `\\\\` / `&` (a composite's forward, one step per line) as `<mtable>`.

It never raises: an unknown command becomes `<mtext>` of the command itself (the tests assert
that no built-in recipe's LaTeX hits that fallback), unbalanced braces close at the end, and
nesting deeper than `MAX_DEPTH` is shown as text. Every character of the source reaches the
output only through `escape.text`, so a hostile name (`<`, `&`, quotes, control characters)
can never become markup. `to_mathml(latex, display=True)` returns one `<math>` element whose
`<semantics>` carries the source as an `application/x-tex` annotation.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .escape import text as esc

MATHML_NS = "http://www.w3.org/1998/Math/MathML"
MAX_DEPTH = 80   # nesting (groups, fractions, fences) beyond this is shown as text

GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ϵ", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "vartheta": "ϑ", "iota": "ι", "kappa": "κ",
    "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "omicron": "ο", "pi": "π", "varpi": "ϖ",
    "rho": "ρ", "varrho": "ϱ", "sigma": "σ", "varsigma": "ς", "tau": "τ", "upsilon": "υ",
    "phi": "ϕ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
}
GREEK_UPPER = {
    "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π",
    "Sigma": "Σ", "Upsilon": "Υ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}
#: identifiers that are symbols (shown as <mi>)
SYMBOL_IDENTIFIERS = {
    "partial": "∂", "infty": "∞", "nabla": "∇", "ell": "ℓ", "hbar": "ℏ", "emptyset": "∅",
    "imath": "ı", "jmath": "ȷ", "aleph": "ℵ",
}
#: operators and relations (shown as <mo>)
OPERATORS = {
    "top": "⊤", "intercal": "⊺", "bot": "⊥", "odot": "⊙", "otimes": "⊗", "oplus": "⊕",
    "ominus": "⊖", "cdot": "⋅", "times": "×", "div": "÷", "ast": "∗", "star": "⋆", "circ": "∘",
    "bullet": "∙", "pm": "±", "mp": "∓", "geq": "≥", "ge": "≥", "leq": "≤", "le": "≤",
    "neq": "≠", "ne": "≠", "approx": "≈", "equiv": "≡", "sim": "∼", "simeq": "≃", "cong": "≅",
    "propto": "∝", "ll": "≪", "gg": "≫", "in": "∈", "notin": "∉", "ni": "∋", "subset": "⊂",
    "subseteq": "⊆", "supset": "⊃", "supseteq": "⊇", "cup": "∪", "cap": "∩",
    "setminus": "∖", "wedge": "∧", "land": "∧", "vee": "∨", "lor": "∨", "neg": "¬",
    "lnot": "¬", "forall": "∀", "exists": "∃", "to": "→", "rightarrow": "→",
    "leftarrow": "←", "Rightarrow": "⇒", "Leftarrow": "⇐", "leftrightarrow": "↔",
    "Leftrightarrow": "⇔", "iff": "⟺", "implies": "⟹", "mapsto": "↦", "ldots": "…",
    "dots": "…", "cdots": "⋯", "vdots": "⋮", "ddots": "⋱", "mid": "∣", "parallel": "∥",
    "langle": "⟨", "rangle": "⟩", "lfloor": "⌊", "rfloor": "⌋", "lceil": "⌈",
    "rceil": "⌉", "lvert": "|", "rvert": "|", "vert": "|", "lVert": "‖", "rVert": "‖",
    "Vert": "‖", "backslash": "∖", "colon": ":", "prime": "′", "dagger": "†",
}
#: operators whose scripts are limits (under/over in display style)
LARGE = {"sum": "∑", "prod": "∏", "coprod": "∐", "bigcup": "⋃", "bigcap": "⋂",
         "bigoplus": "⨁", "bigotimes": "⨂", "bigodot": "⨀"}
INTEGRALS = {"int": "∫", "iint": "∬", "iiint": "∭", "oint": "∮"}
FUNCTIONS = frozenset({
    "exp", "log", "ln", "lg", "sin", "cos", "tan", "cot", "sec", "csc", "sinh", "cosh", "tanh",
    "coth", "arcsin", "arccos", "arctan", "arg", "deg", "det", "dim", "gcd", "hom", "ker", "Pr",
    "sgn", "tr", "erf",
})
LIMIT_FUNCTIONS = frozenset({"max", "min", "lim", "sup", "inf", "limsup", "liminf", "argmax",
                             "argmin"})
SPACES = {",": "0.1667em", ":": "0.2222em", ">": "0.2222em", ";": "0.2778em", " ": "0.25em",
          "!": "-0.1667em", "quad": "1em", "qquad": "2em", "thinspace": "0.1667em",
          "medspace": "0.2222em", "thickspace": "0.2778em", "enspace": "0.5em"}
ACCENTS = {"hat": "^", "widehat": "^", "bar": "¯", "overline": "¯", "tilde": "~",
           "widetilde": "~", "vec": "→", "dot": "˙", "ddot": "¨", "check": "ˇ", "breve": "˘",
           "acute": "´", "grave": "`", "overrightarrow": "→"}
IGNORED = frozenset({"displaystyle", "textstyle", "scriptstyle", "scriptscriptstyle", "limits",
                     "nolimits", "nonumber", "notag", "relax", "allowbreak", "mathstrut", "strut"})
SIZED_DELIMITERS = frozenset({"big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr",
                              "biggl", "biggr", "Biggl", "Biggr", "middle"})
FONTS = {"mathrm": "normal", "mathup": "normal", "textrm": "normal", "rm": "normal",
         "operatorname": "normal", "mathsf": "normal", "mathbf": "bold", "boldsymbol": "bold",
         "bm": "bold", "mathbb": "double-struck", "mathit": None, "mathcal": None,
         "mathscr": None, "mathfrak": None}
TEXTS = frozenset({"text", "textit", "textbf", "texttt", "textsf", "textnormal", "mbox", "hbox",
                   "mathtt", "emph"})
ENVIRONMENTS = {"cases": ("{", ""), "aligned": ("", ""), "align": ("", ""), "align*": ("", ""),
                "gathered": ("", ""), "split": ("", ""), "array": ("", ""), "matrix": ("", ""),
                "smallmatrix": ("", ""), "pmatrix": ("(", ")"), "bmatrix": ("[", "]"),
                "Bmatrix": ("{", "}"), "vmatrix": ("|", "|"), "Vmatrix": ("‖", "‖"),
                "equation": ("", ""), "equation*": ("", "")}
ESCAPED_SYMBOLS = {"{": "{", "}": "}", "_": "_", "%": "%", "$": "$", "#": "#", "&": "&",
                   "|": "‖"}
CHAR_OPERATORS = {"-": "−", "*": "∗", "'": "′"}

_DOUBLE_STRUCK_EXCEPTIONS = {"C": "ℂ", "H": "ℍ", "N": "ℕ", "P": "ℙ", "Q": "ℚ", "R": "ℝ", "Z": "ℤ"}

_TOKEN = re.compile(r"\\([A-Za-z]+\*?)|\\(.)|(\s+)|([0-9]+(?:\.[0-9]+)?)|(.)", re.S)

Token = tuple[str, str]   # (kind, value): cmd, sym (\ + one char), space, num, char


def _tokens(source: str) -> list[Token]:
    out: list[Token] = []
    for m in _TOKEN.finditer(source):
        cmd, sym, space, num, char = m.groups()
        if cmd is not None:
            out.append(("cmd", cmd))
        elif sym is not None:
            out.append(("sym", sym))
        elif space is not None:
            out.append(("space", space))
        elif num is not None:
            out.append(("num", num))
        else:
            out.append(("char", char))
    return out


def _styled(ch: str, font: str | None) -> str:
    """`ch` in Unicode's mathematical alphanumerics for bold and double-struck (MathML Core
    renders only `mathvariant="normal"`, so other styles are written as characters)."""
    if font == "bold":
        if "A" <= ch <= "Z":
            return chr(0x1D400 + ord(ch) - ord("A"))
        if "a" <= ch <= "z":
            return chr(0x1D41A + ord(ch) - ord("a"))
        if "0" <= ch <= "9":
            return chr(0x1D7CE + ord(ch) - ord("0"))
    elif font == "double-struck":
        if ch in _DOUBLE_STRUCK_EXCEPTIONS:
            return _DOUBLE_STRUCK_EXCEPTIONS[ch]
        if "A" <= ch <= "Z":
            return chr(0x1D538 + ord(ch) - ord("A"))
        if "a" <= ch <= "z":
            return chr(0x1D552 + ord(ch) - ord("a"))
        if "0" <= ch <= "9":
            return chr(0x1D7D8 + ord(ch) - ord("0"))
    return ch


def _mrow(nodes: list[str]) -> str:
    return nodes[0] if len(nodes) == 1 else f"<mrow>{''.join(nodes)}</mrow>"


def _mo(ch: str, **attrs: str) -> str:
    extra = "".join(f' {k}="{esc(v)}"' for k, v in attrs.items())
    return f"<mo{extra}>{esc(ch)}</mo>"


def _mtext(s: str) -> str:
    return f"<mtext>{esc(s)}</mtext>"


def _fence(ch: str, form: str) -> str:
    return "" if ch in ("", ".") else _mo(ch, fence="true", stretchy="true", form=form)


class _Parser:
    """One pass over the tokens. Every method consumes what it reads and returns MathML; none
    raises on malformed input."""

    def __init__(self, source: str) -> None:
        self.toks = _tokens(source)
        self.pos = 0
        self.font: str | None = None
        self.depth = 0

    # ------------------------------------------------------------------ token access
    def peek(self, skip_space: bool = True) -> Token | None:
        i = self.pos
        while skip_space and i < len(self.toks) and self.toks[i][0] == "space":
            i += 1
        return self.toks[i] if i < len(self.toks) else None

    def skip_space(self) -> None:
        while self.pos < len(self.toks) and self.toks[self.pos][0] == "space":
            self.pos += 1

    def take(self) -> Token | None:
        self.skip_space()
        if self.pos >= len(self.toks):
            return None
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    @staticmethod
    def key(tok: Token | None) -> str | None:
        """What a token can end: a group, a cell, a row, a fence or an environment."""
        if tok is None:
            return None
        kind, value = tok
        if kind == "char" and value in "}&]":
            return value
        if kind == "sym" and value == "\\":
            return "row"
        if kind == "cmd" and value in ("right", "end"):
            return value
        return None

    def rest_as_text(self) -> str:
        """Everything not yet read, as text (input nested too deeply to translate)."""
        raw = "".join(("\\" + v if k in ("cmd", "sym") else v) for k, v in self.toks[self.pos:])
        self.pos = len(self.toks)
        return _mtext(raw)

    # ------------------------------------------------------------------ structure
    def row(self, stops: frozenset[str]) -> list[str]:
        """Atoms (with their scripts) up to a token whose key is in `stops` (not consumed)."""
        nodes: list[str] = []
        while True:
            tok = self.peek()
            if tok is None or self.key(tok) in stops:
                return nodes
            if self.depth > MAX_DEPTH:
                nodes.append(self.rest_as_text())
                return nodes
            atom = self.atom()
            if atom is None:
                continue
            nodes.append(self.scripts(*atom))

    def block(self, stops: frozenset[str]) -> str:
        """A row, or a table where `&` separates cells and `\\\\` rows (an environment's body, or
        the whole formula)."""
        rows: list[list[list[str]]] = [[]]
        while True:
            cell = self.row(stops | {"&", "row"})
            rows[-1].append(cell)
            k = self.key(self.peek())
            if k == "&":
                self.take()
            elif k == "row":
                self.take()
                rows.append([])
            else:
                break
        if rows[-1] == [[]] and len(rows) > 1:   # a trailing \\
            rows.pop()
        if len(rows) == 1 and len(rows[0]) == 1:
            return _mrow(rows[0][0])
        return self.table(rows)

    @staticmethod
    def table(rows: list[list[list[str]]]) -> str:
        cells = "".join(
            "<mtr>" + "".join(f'<mtd style="text-align:left">{_mrow(c) if c else "<mrow></mrow>"}</mtd>'
                              for c in r) + "</mtr>" for r in rows)
        return f'<mtable columnalign="left" displaystyle="true">{cells}</mtable>'

    def group(self) -> str:
        """`{…}` after its `{` was read."""
        self.depth += 1
        inner = self.row(frozenset("}"))
        self.depth -= 1
        if self.key(self.peek()) == "}":
            self.take()
        return _mrow(inner) if inner else "<mrow></mrow>"

    def argument(self) -> str:
        """A command's argument: a group, or one token."""
        tok = self.peek()
        if tok is None or self.key(tok) is not None:
            return "<mrow></mrow>"
        if tok == ("char", "{"):
            self.take()
            return self.group()
        if tok[0] == "num" and len(tok[1]) > 1 and self.font is None:   # \frac12: one digit
            self.skip_space()
            self.toks[self.pos] = ("num", tok[1][1:])
            return f"<mn>{esc(tok[1][0])}</mn>"
        atom = self.atom()
        return atom[0] if atom is not None else "<mrow></mrow>"

    def in_font(self, font: str | None, read: Callable[[], str]) -> str:
        saved, self.font = self.font, font
        try:
            return read()
        finally:
            self.font = saved

    def raw_group(self) -> str:
        """The text of a `{…}` argument as written (for \\text and environment names)."""
        self.skip_space()
        if self.peek() != ("char", "{"):
            tok = self.take()
            return "" if tok is None else tok[1]
        self.take()
        level, out = 1, []
        while self.pos < len(self.toks):
            kind, value = self.toks[self.pos]
            self.pos += 1
            if kind == "char" and value == "{":
                level += 1
            elif kind == "char" and value == "}":
                level -= 1
                if level == 0:
                    break
            if kind == "sym":
                out.append(ESCAPED_SYMBOLS.get(value, value) if value in "{}_%$#&" else
                           " " if value in SPACES else "\\" + value)
            elif kind == "cmd":
                out.append("\\" + value)
            else:
                out.append(value)
        return "".join(out)

    # ------------------------------------------------------------------ atoms
    def scripts(self, base: str, limits: bool) -> str:
        """`base` with the `^`/`_` that follow it; a second subscript nests (W_{1}_{ij})."""
        sub = sup = None
        while True:
            tok = self.peek()
            if tok not in (("char", "_"), ("char", "^")):
                break
            which = tok[1]
            if (which == "_" and sub is not None) or (which == "^" and sup is not None):
                base, limits = self.attach(base, sub, sup, limits), False
                sub = sup = None
            self.take()
            self.depth += 1
            arg = self.argument()
            self.depth -= 1
            if which == "_":
                sub = arg
            else:
                sup = arg
        return self.attach(base, sub, sup, limits)

    @staticmethod
    def attach(base: str, sub: str | None, sup: str | None, limits: bool) -> str:
        if sub is None and sup is None:
            return base
        if limits:
            if sub is not None and sup is not None:
                return f"<munderover>{base}{sub}{sup}</munderover>"
            return f"<munder>{base}{sub}</munder>" if sub is not None else f"<mover>{base}{sup}</mover>"
        if sub is not None and sup is not None:
            return f"<msubsup>{base}{sub}{sup}</msubsup>"
        return f"<msub>{base}{sub}</msub>" if sub is not None else f"<msup>{base}{sup}</msup>"

    def atom(self) -> tuple[str, bool] | None:
        """The next atom as (MathML, whether its scripts are limits); None for what shows nothing."""
        tok = self.peek()
        if tok is None:
            return None
        kind, value = tok
        if kind == "char" and value in "^_":      # a script with no base
            return "<mrow></mrow>", False
        self.take()
        if kind == "cmd":
            return self.command(value)
        if kind == "sym":
            return self.symbol(value)
        if kind == "num":
            return self.word(value, "mn"), False
        if value == "{":
            return self.group(), False
        if value == "~":
            return '<mspace width="0.25em"></mspace>', False
        if value.isalpha() or (self.font in ("bold", "double-struck") and value.isalnum()):
            return self.letters(value), False
        if value.isdigit():
            return f"<mn>{esc(value)}</mn>", False
        if self.key(tok) is not None:   # a stray }, & or ] where none closes anything
            return _mo(value), False
        return _mo(CHAR_OPERATORS.get(value, value)), False

    def word(self, value: str, tag: str) -> str:
        styled = "".join(_styled(ch, self.font) for ch in value)
        return f"<{tag}>{esc(styled)}</{tag}>"

    def letters(self, first: str) -> str:
        """A letter; in upright or styled fonts, a run of letters and digits as one name."""
        if self.font is None:
            return f"<mi>{esc(first)}</mi>"
        run = [first]
        while self.pos < len(self.toks):
            kind, value = self.toks[self.pos]
            if kind in ("char", "num") and all(ch.isalnum() for ch in value):
                run.append(value)
            elif kind == "sym" and value == "_" and self.font == "normal":   # leaky\_relu
                run.append("_")
            else:
                break
            self.pos += 1
        name = "".join(_styled(ch, self.font) for ch in "".join(run))
        if self.font == "normal":
            return f'<mi mathvariant="normal">{esc(name)}</mi>'
        return f"<mi>{esc(name)}</mi>"

    def symbol(self, value: str) -> tuple[str, bool] | None:
        """`\\` followed by one non-letter."""
        if value in SPACES:
            return f'<mspace width="{SPACES[value]}"></mspace>', False
        if value == "\\":   # a line break where no table is being read
            return None
        if value in ESCAPED_SYMBOLS:
            return _mo(ESCAPED_SYMBOLS[value]), False
        return _mtext("\\" + value), False

    def delimiter(self) -> str:
        """The delimiter after \\left, \\right or \\big: a character or a symbol command."""
        tok = self.take()
        if tok is None:
            return ""
        kind, value = tok
        if kind == "char":
            return value
        if kind == "sym":
            return ESCAPED_SYMBOLS.get(value, "\\" + value)
        return OPERATORS.get(value, "\\" + value)

    def command(self, name: str) -> tuple[str, bool] | None:
        if name in GREEK:
            return self.greek(GREEK[name]), False
        if name in GREEK_UPPER:
            return f'<mi mathvariant="normal">{GREEK_UPPER[name]}</mi>', False
        if name in SYMBOL_IDENTIFIERS:
            return f"<mi>{SYMBOL_IDENTIFIERS[name]}</mi>", False
        if name in OPERATORS:
            return _mo(OPERATORS[name]), False
        if name in LARGE:
            return _mo(LARGE[name], largeop="true", movablelimits="true"), True
        if name in INTEGRALS:
            return _mo(INTEGRALS[name], largeop="true"), False
        if name in FUNCTIONS:
            return f"<mi>{name}</mi>", False
        if name in LIMIT_FUNCTIONS:
            return f"<mi>{name}</mi>", True
        if name in SPACES:
            return f'<mspace width="{SPACES[name]}"></mspace>', False
        if name in IGNORED:
            return None
        if name in ("frac", "dfrac", "tfrac", "cfrac"):
            self.depth += 1
            num, den = self.argument(), self.argument()
            self.depth -= 1
            return f"<mfrac>{num}{den}</mfrac>", False
        if name == "binom":
            self.depth += 1
            top, bottom = self.argument(), self.argument()
            self.depth -= 1
            return (f'<mrow>{_mo("(")}<mfrac linethickness="0">{top}{bottom}</mfrac>'
                    f'{_mo(")")}</mrow>'), False
        if name == "sqrt":
            return self.sqrt(), False
        if name == "left":
            return self.fenced(), False
        if name == "right" or name in SIZED_DELIMITERS:   # a \right with no \left, \big(
            fence = _fence(self.delimiter(), "postfix" if name.endswith("r") else "infix")
            return (fence, False) if fence else None
        if name in FONTS:
            font = FONTS[name]
            self.depth += 1
            body = self.in_font(font, self.argument)
            self.depth -= 1
            return body, False
        if name in TEXTS:
            return _mtext(self.raw_group()), False
        if name in ACCENTS:
            self.depth += 1
            body = self.argument()
            self.depth -= 1
            return f'<mover accent="true">{body}{_mo(ACCENTS[name], stretchy="true")}</mover>', False
        if name == "underline":
            self.depth += 1
            body = self.argument()
            self.depth -= 1
            return f'<munder accentunder="true">{body}{_mo("_", stretchy="true")}</munder>', False
        if name == "begin":
            return self.environment(), False
        if name == "end":       # an \end with no \begin
            self.raw_group()
            return None
        return _mtext("\\" + name), False

    def greek(self, ch: str) -> str:
        if self.font == "bold":
            return f'<mi mathvariant="bold">{ch}</mi>'
        return f'<mi mathvariant="normal">{ch}</mi>' if self.font == "normal" else f"<mi>{ch}</mi>"

    def sqrt(self) -> str:
        self.depth += 1
        index = None
        if self.peek() == ("char", "["):
            self.take()
            index = _mrow(self.row(frozenset("]")) or ["<mrow></mrow>"])
            if self.peek() == ("char", "]"):
                self.take()
        body = self.argument()
        self.depth -= 1
        return f"<mroot>{body}{index}</mroot>" if index is not None else f"<msqrt>{body}</msqrt>"

    def fenced(self) -> str:
        """\\left D … \\right D' (a missing \\right closes at the end)."""
        opening = self.delimiter()
        self.depth += 1
        inner = self.row(frozenset({"right"}))
        self.depth -= 1
        closing = ""
        if self.key(self.peek()) == "right":
            self.take()
            closing = self.delimiter()
        parts = [_fence(opening, "prefix"), *inner, _fence(closing, "postfix")]
        return f"<mrow>{''.join(parts)}</mrow>"

    def environment(self) -> str:
        name = self.raw_group()
        if name == "array":     # the column specification
            self.raw_group()
        self.depth += 1
        body = self.block(frozenset({"end"}))
        self.depth -= 1
        if self.key(self.peek()) == "end":
            self.take()
            self.raw_group()
        if name not in ENVIRONMENTS:
            return f"<mrow>{_mtext(f'[{name}]')}{body}</mrow>"
        left, right = ENVIRONMENTS[name]
        if not body.startswith("<mtable"):
            body = self.table([[[body]]])
        return f"<mrow>{_fence(left, 'prefix')}{body}{_fence(right, 'postfix')}</mrow>"


def translate(latex: str) -> str:
    """The MathML content (no `<math>` element) of `latex`."""
    parser = _Parser(latex)
    try:
        body = parser.block(frozenset())
        rest = []
        while parser.pos < len(parser.toks):   # a stray \right or \end at the top level
            tok = parser.take()
            if tok is not None:
                rest.append(_mo(tok[1]) if tok[0] == "char" else _mtext("\\" + tok[1]))
        return body + "".join(rest) if rest else body
    except RecursionError:   # MAX_DEPTH keeps far from it; never fail a page for a formula
        return _mtext(latex)


def to_mathml(latex: str, *, display: bool = True) -> str:
    """One `<math>` element for `latex`, its source kept as an `application/x-tex` annotation."""
    body = translate(latex)
    mode = "block" if display else "inline"
    return (f'<math xmlns="{MATHML_NS}" display="{mode}"><semantics><mrow>{body}</mrow>'
            f'<annotation encoding="application/x-tex">{esc(latex)}</annotation></semantics></math>')


__all__ = ["MATHML_NS", "to_mathml", "translate"]
