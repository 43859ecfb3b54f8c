"""Results in Jupyter: a notebook made with nbformat and executed by nbclient on a real IPython
kernel (ipykernel) shows a derivation, a check and a claim verdict as rendered maths — HTML with
MathML, LaTeX and Markdown — not as a dataclass repr.

nbclient, nbformat and ipykernel are test dependencies (the `test` extra): this test runs in CI,
it is never skipped."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.xdist_group("notebook")

CELLS = [   # the README's Python API, as a learner types it in a notebook
    'import derivkit\nd = derivkit.derive("softmax")\nd',
    't = derivkit.check("linear")\nt',
    'v = derivkit.verify("softmax", "diag(p) - outer(p, p)", wrt="z")\nv',
    'v_bad = derivkit.verify("softmax", "diag(p)", wrt="z")\nv_bad',
    'r = derivkit.train("mlp3", epochs=3, sizes={"m": 8})\nr',
]


def _run(tmp_path) -> list[dict]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    client = NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    results = []
    for cell in nb.cells:
        shown = [o for o in cell.outputs if o.output_type == "execute_result"]
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, errors
        assert len(shown) == 1, cell.outputs
        results.append(shown[0]["data"])
    return results


def test_results_render_as_maths_in_an_executed_notebook(tmp_path):
    derivation, check, verified, refuted, trained = _run(tmp_path)
    for data in (derivation, check, verified, refuted, trained):
        assert {"text/html", "text/latex", "text/markdown", "text/plain"} <= set(data)
        assert data["text/latex"].startswith("$$")
    # the derivation: every formula as MathML, the equations as LaTeX
    assert derivation["text/html"].count("<math") >= 5
    assert "verified symbolically" in derivation["text/html"]
    assert r"\begin{aligned}" in derivation["text/latex"]
    assert r"\operatorname{diag}" in derivation["text/latex"]
    assert derivation["text/markdown"].startswith("**softmax")
    # the check: its table, a verdict per derivative
    assert "<table>" in check["text/html"] and "✓ pass" in check["text/html"]
    assert "passed against finite differences" in check["text/html"]
    # the claims: the verdict, ∂/∂z as MathML
    assert "✓ VERIFIED" in verified["text/html"] and "<math" in verified["text/html"]
    assert "✗ REFUTED" in refuted["text/html"] and "Counterexample" in refuted["text/html"]
    # the training run: its loss curve inline
    assert "<svg" in trained["text/html"] and "mlp3" in trained["text/html"]
