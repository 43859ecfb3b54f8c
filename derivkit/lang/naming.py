"""Names for the values of a forward expression that a person would name.

A plain forward `f = …` becomes a program of named values, as a person writes backprop: the
output of softmax (P) and its argument (S), the output of a nonlinear function of a computed
value (H), a value used more than once (U), and a product inside a chain of products (A). For
attention, `sum((softmax(Q @ K.T / sqrt(d)) @ V) * G)` becomes S = Q Kᵀ/√d, P = softmax(S),
f = Σ((P V) ⊙ G). A function of an input alone (exp(x), softmax(z) excepted) stays inline:
naming it would only lengthen the program. Names get 2, 3, … where one is taken.
"""

from __future__ import annotations

from collections import Counter

from . import ir

LETTERS = {"softmax": "P", "softmax-argument": "S", "function": "H", "shared": "U", "operand": "A"}


def _computed(n: ir.Node) -> bool:
    """A value worth a name: an operation (not a leaf, transpose or broadcast of one) that
    depends on an input."""
    while isinstance(n, (ir.Transpose, ir.Broadcast, ir.ExpandDims, ir.Neg)):
        n = n.args[0]
    if isinstance(n, (ir.Var, ir.Const, ir.DimSize, ir.Eye, ir.Ones)):
        return False
    return any(isinstance(v, ir.Var) and v.role in ("input", "named") for v in ir.walk(n))


def _kinds(out: ir.Node) -> dict[ir.Node, str]:
    """Each node to name, with what it is (a key of LETTERS)."""
    order = ir.postorder([out], ir.printed_children)
    parents: Counter[ir.Node] = Counter()
    for n in order:
        for c in ir.printed_children(n):   # x·x uses x twice
            parents[c] += 1
    kinds: dict[ir.Node, str] = {}
    for n in order:
        if n is out:
            continue
        if isinstance(n, ir.Macro) and n.fn == "softmax":
            kinds[n] = "softmax"
            if _computed(n.operands[0]):
                kinds.setdefault(n.operands[0], "softmax-argument")
        elif isinstance(n, ir.Apply) and _computed(n.a):
            kinds[n] = "function"
        elif isinstance(n, ir.MatMul):
            for c in (n.a, n.b):   # a product of a chain X W1 W2: name X W1
                if isinstance(c, ir.MatMul) and _computed(c) and c not in kinds:
                    kinds[c] = "operand"
        if parents[n] > 1 and _computed(n) and n not in kinds:
            kinds[n] = "shared"
    kinds.pop(out, None)
    return {n: kinds[n] for n in order if n in kinds}


def name_values(out: ir.Node, output: str, taken: set[str]) -> dict[str, ir.Node]:
    """{name: definition over the inputs and earlier names (Vars of role "named")}, in forward
    order and ending with `output`; just {output: out} when nothing is worth a name."""
    kinds = _kinds(out)
    if not kinds:
        return {output: out}
    used = set(taken) | {output}
    names: dict[ir.Node, str] = {}
    for node, kind in kinds.items():
        base, k = LETTERS[kind], 2
        name = base
        while name in used:
            name, k = f"{base}{k}", k + 1
        used.add(name)
        names[node] = name
    definitions: dict[str, ir.Node] = {}
    replaced: dict[ir.Node, ir.Node] = {}
    for node, name in names.items():
        definitions[name] = ir.substitute(node, replaced) if replaced else node
        replaced[node] = ir.Var(name, node.shape, "named")
    definitions[output] = ir.substitute(out, replaced)
    return definitions
