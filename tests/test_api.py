"""The documented Python API: `derivkit.derive`, `check`, `check_all`, `verify`, `lower`, `load`,
`train` and `DerivkitError` (README, "Python API")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import derivkit
from derivkit import DerivkitError
from derivkit.render import check_json, json_render, train_render, verify_render

ROOT = Path(__file__).resolve().parent.parent
LINEAR = ROOT / "recipes" / "linear.toml"
API = ("derive", "check", "check_all", "verify", "lower", "load", "train")


def test_the_api_is_at_the_top_level_and_importing_it_stays_light():
    code = ("import sys, derivkit; names = " + repr(API) + "; "
            "assert all(n in derivkit.__all__ for n in names); "
            "assert 'DerivkitError' in derivkit.__all__; "
            "assert not {'sympy', 'numpy'} & set(sys.modules), sorted(sys.modules); "
            "assert all(callable(getattr(derivkit, n)) for n in names); "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_an_expression_with_shapes_derives_the_hand_derived_gradient():
    """L = sum((X W − T)²): ∂L/∂W = 2 Xᵀ(X W − T), compared with hand-written NumPy through the
    lowered, loaded module (the shapes given three ways)."""
    shapes = {"X": ("m", "n"), "W": "n,k", "T": ["m", "k"]}
    d = derivkit.derive("sum((X @ W - T)**2)", wrt="W", shapes=shapes)
    assert d.verified and [dv.wrt for dv in d.derivatives] == ["W"]
    m = derivkit.load(derivkit.lower("sum((X @ W - T)**2)", wrt=["W"], shapes=shapes))
    rng = np.random.default_rng(0)
    X, W, T = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    np.testing.assert_allclose(m.grad_W(X=X, W=W, T=T), 2 * X.T @ (X @ W - T), rtol=1e-12)
    wrong = 2 * X.T @ (X @ W - T) + 1e-3          # the comparison can fail
    assert not np.allclose(m.grad_W(X=X, W=W, T=T), wrong, rtol=1e-6, atol=0)


def test_a_recipe_name_a_recipe_file_and_a_path_are_the_same_target():
    by_name = derivkit.derive("linear", wrt="W")
    by_file = derivkit.derive(str(LINEAR), wrt="W")
    by_path = derivkit.derive(LINEAR, wrt=["W"])
    assert by_name.derivatives[0].matrix_form == by_file.derivatives[0].matrix_form \
        == by_path.derivatives[0].matrix_form
    assert [d.wrt for d in by_path.derivatives] == ["W"]


def test_lower_returns_source_and_load_gives_attribute_access():
    source = derivkit.lower("linear")
    assert isinstance(source, str) and "def vjp_W(" in source
    m = derivkit.load(source)
    rng = np.random.default_rng(1)
    X, W, b, G = (rng.normal(size=s) for s in ((5, 3), (3, 2), (2,), (5, 2)))
    np.testing.assert_allclose(m.forward(X=X, W=W, b=b), X @ W + b, rtol=1e-12)
    np.testing.assert_allclose(m.vjp_W(X=X, W=W, b=b, G=G), X.T @ G, rtol=1e-12)
    np.testing.assert_allclose(m.vjp_b(X=X, W=W, b=b, G=G), G.sum(axis=0), rtol=1e-12)


def test_load_runs_only_what_derivkit_writes(tmp_path):
    marker = tmp_path / "ran"
    hostile = f"import os\nopen({str(marker)!r}, 'w').write('x')\n"
    with pytest.raises(DerivkitError, match="not a module derivkit\\.lower wrote"):
        derivkit.load(hostile)
    assert not marker.exists()
    source = derivkit.lower("linear")
    tampered = source.replace("def forward(", f"open({str(marker)!r}, 'w')\ndef forward(", 1)
    with pytest.raises(DerivkitError):
        derivkit.load(tampered)
    assert not marker.exists()


def test_verify_judges_a_claim_and_check_catches_a_wrong_implementation():
    assert derivkit.verify("softmax", "p[i]*(delta(i,j) - p[j])").verdict == "verified"
    wrong = derivkit.verify("softmax", "p[i]*(delta(i,j) + p[j])")
    assert wrong.verdict == "refuted" and wrong.counterexample is not None

    def backward(X, W, b, G):
        return {"X": G @ W.T, "W": X.T @ G, "b": G.sum(axis=0)}

    def transposed(X, W, b, G):
        return {"X": G @ W.T, "W": (G.T @ X).T.T, "b": G.sum(axis=0)}

    assert derivkit.check("linear", impl=backward).passed
    bad = derivkit.check("linear", impl=transposed)
    assert not bad.passed
    assert {r.wrt for r in bad.results if not r.passed} == {"W"}


def test_check_of_a_recipe_passes_and_reports_sizes():
    c = derivkit.check("linear", sizes={"m": 3, "n": 2, "k": 4}, seed=3)
    assert c.passed and c.sizes == {"m": 3, "n": 2, "k": 4} and c.seed == 3


def test_train_returns_the_losses():
    r = derivkit.train("mlp3", epochs=5, sizes={"m": 16})
    assert len(r.losses) == 5 and r.final_loss < r.losses[0]


@pytest.mark.parametrize("call", [
    lambda: derivkit.derive("no-such-recipe"),
    lambda: derivkit.derive("linear", wrt="Q"),
    lambda: derivkit.derive("sum(X)", shapes={"X": "n"}),
    lambda: derivkit.derive("sum(X @ W)", wrt="W", shapes={"X": "n,m"}),
    lambda: derivkit.derive("sum(X)", wrt="X", shapes={"X": 2.5}),
    lambda: derivkit.derive("missing.toml"),
    lambda: derivkit.check("linear", sizes={"q": 3}),
    lambda: derivkit.check("linear", params={"alpha": 1.0}),
    lambda: derivkit.verify("linear", "X.T @ G"),
    lambda: derivkit.derive("linear", timeout=-1),
    lambda: derivkit.train("mlp3", epochs=0),
    lambda: derivkit.train("mlp3", sizes={"zz": 3}),
    lambda: derivkit.load(42),
    # found in review: each was a traceback, or named a command-line option
    lambda: derivkit.derive("sum(X)", wrt=3, shapes={"X": "m,n"}),
    lambda: derivkit.check("linear", sizes={"m": "3"}),
    lambda: derivkit.check("linear", rtol="a"),
    lambda: derivkit.check("linear", seed="a"),
    lambda: derivkit.load("def ("),
    lambda: derivkit.check("linear", impl=3),
    lambda: derivkit.check("linear", impl=lambda X, W, b, G: 1),
    lambda: derivkit.check("linear", impl="no-such-file.py:f"),
    lambda: derivkit.derive("sum(X)", wrt="X", shapes={"X": "mxn"}),
    lambda: derivkit.derive("sum(X)"),
], ids=["unknown recipe", "unknown wrt", "no wrt", "no shape", "bad shape", "missing file",
        "unknown size", "unknown param", "several wrt", "bad timeout", "no epochs", "train size",
        "load non-text", "wrt not names", "size not int", "rtol not number", "seed not int",
        "load not python", "impl not callable", "impl returns int", "impl no file", "mxn shape",
        "expression without shapes"])
def test_bad_input_is_one_derivkit_error_that_names_no_command_line_option(call):
    with pytest.raises(DerivkitError) as raised:
        call()
    text = str(raised.value)
    assert "\n" not in text and text == raised.value.one_line()
    assert "--" not in text, text       # "wrt", "sizes", not "--wrt", "--size"


def test_the_command_line_still_names_its_options():
    from typer.testing import CliRunner

    from derivkit.cli.app import app

    out = CliRunner().invoke(app, ["check", "linear", "--size", "q=3"])
    assert out.exit_code == 2
    assert "--size q=3" in out.output
    out = CliRunner().invoke(app, ["derive", "--expr", "sum(X)", "--shape", "X=n"])
    assert out.exit_code == 2 and "--wrt" in out.output


def _missing(obj: object, data: dict) -> list[str]:
    return [k for k in data if not hasattr(obj, k)]


def test_result_attributes_are_named_as_the_json_keys():
    d = derivkit.derive("softmax")
    data = json_render.derivation_data(d)
    assert _missing(d, data) == []
    assert _missing(d.derivatives[0], data["derivatives"][0]) == []
    assert _missing(d.inputs[0], data["inputs"][0]) == []
    dv, js = d.derivatives[0], data["derivatives"][0]
    assert (dv.matrix_form, dv.index_form, dv.latex, dv.lhs) == \
        (js["matrix_form"], js["index_form"], js["latex"], js["lhs"])
    assert json.loads(json.dumps(list(dv.verified_at))) == js["verified_at"]

    c = derivkit.check("linear")
    cd = check_json.target_data(c)
    assert _missing(c, cd) == [] and _missing(c.results[0], cd["results"][0]) == []
    report = derivkit.api.CheckReport(True, (c,), 1.0)
    rd = check_json.report_data(report)
    assert _missing(report, rd) == []
    assert (report.n_targets, report.n_passed) == (rd["n_targets"], rd["n_passed"])

    v = derivkit.verify("softmax", "p[i]*(delta(i,j) + p[j])")
    vd = verify_render.verdict_data(v)
    assert _missing(v, vd) == [] and _missing(v.counterexample, vd["counterexample"]) == []

    t = derivkit.train("mlp3", epochs=2, sizes={"m": 8})
    assert _missing(t, train_render.result_data(t)) == []


def test_the_readme_python_api_example_runs_as_pasted():
    """The README's worked example, run in a fresh interpreter as a user would paste it."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"## Python API\n.*?```python\n(.*?)```", text, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("∂f/∂W = 2 * (X.T @ (X @ W - T)) | True")
    assert lines[1].startswith("refuted ")
    assert lines[2] == "True True"
    assert lines[-1].startswith("size q=3: 'q' is not a dimension")


def test_every_command_takes_a_recipe_file_too(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from derivkit.cli.app import app

    mine = tmp_path / "mine.toml"
    mine.write_text(LINEAR.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    derived = runner.invoke(app, ["derive", "mine.toml", "--wrt", "W", "--json"])
    assert derived.exit_code == 0, derived.output
    assert json.loads(derived.stdout)["derivatives"][0]["matrix_form"] == \
        derivkit.derive("linear", wrt="W").derivatives[0].matrix_form
    assert runner.invoke(app, ["check", str(mine), "-q"]).exit_code == 0
    assert runner.invoke(app, ["verify", "mine.toml", "--wrt", "W", "--claim", "X.T @ G"]).exit_code == 0
    assert runner.invoke(app, ["verify", "mine.toml", "--wrt", "W", "--claim", "G.T @ X"]).exit_code == 1
    missing = runner.invoke(app, ["derive", "missing.toml"])
    assert missing.exit_code == 2 and "no recipe file 'missing.toml'" in missing.output


def _payloads(marker: Path) -> list[str]:
    from derivkit.lowering import emit

    softmax = emit._HELPER_SOURCES[False]["_softmax"]
    path = ", ".join(map(str, str(marker).encode()))
    system = f"np.array(({path},), dtype=np.uint8)"
    return [
        # a decorator on a function named as a helper runs when the module loads
        f"import numpy as np\n\n@(lambda f: open({str(marker)!r}, 'w') or f)\n{softmax}\n",
        f"import numpy as np\n\n@np.vectorize\n{softmax}\n",
        # attribute chains from np to os.system, builtins, file writers
        "import numpy as np\n\ndef forward(*, X):\n"
        f"    return np.f2py.os.system(np.ndarray.tobytes({system}))\n",
        "import numpy as np\n\ndef forward(*, X):\n    return np.__builtins__\n",
        f"import numpy as np\n\ndef forward(*, X):\n    return np.save({system}, X)\n",
        "import numpy as np\n\ndef forward(*, X):\n    return np.lib.npyio.os.system(X)\n",
        # an annotation is an expression evaluated at definition time
        "import numpy as np\n\ndef forward(*, X: np.f2py.os.system(1)):\n    return X\n",
        "import torch\n\ndef forward(*, X):\n    return torch.os.system(torch.os.name)\n",
    ]


@pytest.mark.parametrize("k", range(8))
def test_load_refuses_source_derivkit_does_not_write(tmp_path, k):
    """Crafted modules (found in review): each is refused before anything runs."""
    marker = tmp_path / "ran"
    source = _payloads(marker)[k]
    with pytest.raises(DerivkitError, match="not a module derivkit"):
        m = derivkit.load(source)
        m.forward(X=np.ones(2))
    assert not marker.exists()


def test_recipe_dirs_may_be_one_folder(tmp_path):
    (tmp_path / "twice.toml").write_text(
        'name = "twice"\nsummary = "2x"\noutput = "y"\nwrt = ["x"]\nforward = "2 * x"\n'
        '[inputs]\nx = "n"\n', encoding="utf-8")
    d = derivkit.derive("twice", recipe_dirs=str(tmp_path))
    assert d.verified and d.target == "twice"


def test_notebook_html_is_not_typeset_as_tex(tmp_path):
    """Found in review: Jupyter runs MathJax over HTML outputs, so a recipe summary with
    `$\\href{javascript:…}{x}$` could become a link; the fragment sits in a container MathJax skips."""
    import xml.etree.ElementTree as ET

    text = LINEAR.read_text(encoding="utf-8")
    evil = r"$\\href{javascript:alert(1)}{x}$"
    path = tmp_path / "evil.toml"
    path.write_text(text.replace('summary = "', f'summary = "{evil} ', 1), encoding="utf-8")
    shown = derivkit.derive(path, wrt="W")._repr_html_()
    root = ET.fromstring(shown.replace("&nbsp;", " "))
    assert root.tag == "div" and {"tex2jax_ignore", "mathjax_ignore"} <= set(root.get("class").split())
    assert r"\href{javascript:alert(1)}" in shown        # shown as text, inside the container
