"""Text other people wrote cannot drive the terminal or forge a verdict (issue 10, part B).

Recipe summaries, notes and references, recipe file and folder names, claims, option values and
paths reach derivkit's output. Every command prints them through `render.text.visible`: escape
sequences and control, format and bidi characters are shown as visible escapes (`\\x1b`,
`\\u202e`), Rich markup in them is shown as written, JSON keeps the exact text, JUnit gets
XML-safe text. The CLI runs without a terminal (and with NO_COLOR), so Rich adds no escape
sequence of its own: any ESC in the output came from user text.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from derivkit.cli.app import app
from derivkit.render.text import json_text, visible, visible_data

FAKE_VERDICT = "\x1b[1A\x1b[2K\x1b[32m✓ all targets passed"
TITLE = "\x1b]0;pwned\x07"
MARKUP = "[bold red]x[/]"
BIDI = "\u202e"
CR = "a\rb"
PAYLOADS = [FAKE_VERDICT, TITLE, MARKUP, BIDI, CR]
#: What must never reach the output raw: ESC, BEL, CR, the bidi override, the 8-bit CSI.
RAW = ["\x1b", "\x07", "\r", "\u202e", "\x9b"]
ENV = {"NO_COLOR": "1", "COLUMNS": "500"}


def toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML escapes for these characters)."""
    return json.dumps(text)


def write_recipe(folder: Path, name: str = "evil", *, text: str = FAKE_VERDICT) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    lines = [f"name = {toml_string(name)}",
             f"summary = {toml_string(text + ' ' + ' '.join(PAYLOADS[1:]))}",
             'forward = "sum(x**2)"',
             f"notes = [{', '.join(toml_string(p) for p in PAYLOADS)}]",
             f"references = [{', '.join(toml_string(p + ' ref') for p in PAYLOADS)}]",
             "[inputs]", 'x = "n"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def assert_no_raw_controls(text: str) -> None:
    for ch in RAW:
        assert ch not in text, (ch, text)
    assert visible(text, multiline=True) == text     # nothing invisible at all


def assert_shows_payloads(text: str) -> None:
    """The payloads are shown, escaped visibly; markup is shown as written."""
    assert "\\x1b[1A\\x1b[2K\\x1b[32m✓ all targets passed" in text
    assert "\\x1b]0;pwned\\x07" in text
    assert MARKUP in text
    assert "\\u202e" in text
    assert "a\\rb" in text


@pytest.fixture
def evil(tmp_path) -> Path:
    folder = tmp_path / "recipes"
    write_recipe(folder)
    return folder


def invoke(runner, args, **kw):
    return runner.invoke(app, args, env=ENV, **kw)


# ---------------------------------------------------------------------------- the sanitiser

@pytest.mark.parametrize("text, shown", [
    (FAKE_VERDICT, "\\x1b[1A\\x1b[2K\\x1b[32m✓ all targets passed"),
    (TITLE, "\\x1b]0;pwned\\x07"),
    (MARKUP, MARKUP),
    (BIDI + "abc\u2066\u2069", "\\u202eabc\\u2066\\u2069"),
    (CR, "a\\rb"),
    ("tab\there\nnext", "tab\\there\\nnext"),
    ("\x00\x7f\x9b\x85", "\\x00\\x7f\\x9b\\x85"),
    ("zero\u200bwidth\ufeff\u00ad\u2028", "zero\\u200bwidth\\ufeff\\xad\\u2028"),
    ("tag\U000e0041", "tag\\U000e0041"),
    ("\udcff.toml", "\\udcff.toml"),
    ("Δ ∂L/∂W = Xᵀ G, 中文, café, ½, 𝟙", "Δ ∂L/∂W = Xᵀ G, 中文, café, ½, 𝟙"),
])
def test_visible_escapes_control_and_format_characters_only(text, shown):
    assert visible(text) == shown
    assert visible(shown) == shown            # idempotent


def test_visible_keeps_newlines_of_multiline_text_only():
    assert visible("a\nb\x1b", multiline=True) == "a\nb\\x1b"
    assert visible("a\nb") == "a\\nb"


def test_visible_data_cleans_every_string_of_a_result(linear_derivation):
    from dataclasses import replace

    r = replace(linear_derivation, summary=FAKE_VERDICT, notes=(TITLE,),
                forward_pretty="  x  \n─────\n\x1b[2K")
    clean = visible_data(r)
    assert clean.summary == visible(FAKE_VERDICT) and clean.notes == (visible(TITLE),)
    assert clean.forward_pretty == "  x  \n─────\n\\x1b[2K"    # a multi-line field keeps lines
    assert clean.derivatives == r.derivatives and clean.verified == r.verified
    assert visible_data({"\x1b": [1.5, None, ("\x07",)]}) == {"\\x1b": [1.5, None, ("\\x07",)]}


def test_json_text_is_exact_and_terminal_safe():
    data = {"s": "".join(PAYLOADS) + "\x7f\x9b\u200b\U000e0041 Δ中", "\u202ekey": [1, 2.5]}
    raw = json.dumps(data, ensure_ascii=False)
    safe = json_text(raw)
    assert json.loads(safe) == data
    assert_no_raw_controls(safe)
    assert "Δ中" in safe                               # ordinary text stays readable


# ---------------------------------------------------------------------------- list and derive

def test_list_shows_recipe_text_visibly(runner, evil):
    result = invoke(runner, ["list", "--recipes", str(evil)])
    assert result.exit_code == 0, result.output
    assert_no_raw_controls(result.stdout)
    assert "\\x1b[1A\\x1b[2K\\x1b[32m✓ all targets passed" in result.stdout
    assert MARKUP in result.stdout and "\\u202e" in result.stdout and "a\\rb" in result.stdout


def test_list_json_keeps_the_exact_text(runner, evil):
    result = invoke(runner, ["list", "--recipes", str(evil), "--json"])
    assert result.exit_code == 0, result.output
    assert_no_raw_controls(result.stdout)
    (recipe,) = [r for r in json.loads(result.stdout)["recipes"] if r["name"] == "evil"]
    assert recipe["summary"] == FAKE_VERDICT + " " + " ".join(PAYLOADS[1:])


def test_derive_shows_summary_notes_and_references_visibly(runner, evil):
    result = invoke(runner, ["derive", "evil", "--recipes", str(evil)])
    assert result.exit_code == 0, result.output
    assert_no_raw_controls(result.stdout)
    assert_shows_payloads(result.stdout)
    assert "a\\rb ref" in result.stdout and "\\u202e ref" in result.stdout


def test_derive_json_keeps_the_exact_text(runner, evil):
    result = invoke(runner, ["derive", "evil", "--recipes", str(evil), "--json"])
    assert result.exit_code == 0, result.output
    assert_no_raw_controls(result.stdout)
    data = json.loads(result.stdout)
    assert data["notes"] == PAYLOADS
    assert data["references"] == [p + " ref" for p in PAYLOADS]


# ---------------------------------------------------------------------------- check

@pytest.fixture
def hostile_search_path(tmp_path, monkeypatch) -> Path:
    """Only a hostile folder on the search path (the built-ins replaced, to keep the test fast):
    the `evil` recipe, and a file whose name is a fake verdict and whose folder name sets the
    terminal title; its `name` field does not match the file name, so it is a failed target
    whose error quotes its path."""
    import derivkit.lang.recipes as recipes

    folder = tmp_path / TITLE
    write_recipe(folder)
    (folder / f"{FAKE_VERDICT}.toml").write_text((folder / "evil.toml").read_text())
    monkeypatch.setattr(recipes, "builtin_dir", lambda: folder)
    return folder


def test_check_all_shows_file_names_and_errors_visibly(runner, hostile_search_path):
    result = invoke(runner, ["check", "--all"])
    assert result.exit_code == 1, result.output
    for out in (result.stdout, result.stderr):
        assert_no_raw_controls(out)
    assert "\\x1b[1A\\x1b[2K\\x1b[32m✓ all targets passed" in result.stdout   # the target name
    assert "\\x1b]0;pwned\\x07" in result.stdout                             # its path
    assert result.stdout.rstrip().splitlines()[-1].startswith("✗ 1/2 targets passed")


def test_check_all_json_and_junit(runner, hostile_search_path, tmp_path):
    junit = tmp_path / "out.xml"
    result = invoke(runner, ["check", "--all", "--json", "--junit", str(junit)])
    assert result.exit_code == 1, result.output
    assert_no_raw_controls(result.stdout)
    names = [t["target"] for t in json.loads(result.stdout)["targets"]]
    assert FAKE_VERDICT in names                                    # JSON: exact
    data = junit.read_bytes().decode("utf-8")
    assert_no_raw_controls(data)
    root = ET.fromstring(data)
    classnames = {c.get("classname") for c in root.iter("testcase")}
    assert "derivkit." + visible(FAKE_VERDICT) in classnames
    error = root.find(".//error")
    assert visible(TITLE) in error.text and visible(TITLE) in error.get("message")


def test_check_one_recipe_with_junit_and_a_hostile_impl_path(runner, evil, tmp_path):
    """`check NAME --impl FILE:FUNCTION --junit F`: the implementation's path is user text in
    the Rich header and in the JUnit properties."""
    folder = tmp_path / (TITLE + BIDI)
    folder.mkdir()
    impl = folder / "grads.py"
    impl.write_text("def backward(x):\n    return 2 * x\n")
    junit = tmp_path / "one.xml"
    result = invoke(runner, ["check", "evil", "--recipes", str(evil), "--impl",
                             f"{impl}:backward", "--junit", str(junit), "--mode", "full"])
    assert result.exit_code == 0, result.output
    assert_no_raw_controls(result.stdout)
    assert visible(str(folder)) in result.stdout
    data = junit.read_text(encoding="utf-8")
    assert_no_raw_controls(data)
    props = {p.get("name"): p.get("value") for p in ET.fromstring(data).iter("property")}
    assert props["implementation"] == visible(f"{impl}:backward")


def test_junit_attributes_and_text_stay_well_formed():
    from dataclasses import replace

    from derivkit.render.junit import junit_xml
    from derivkit.results import CheckResult, TargetCheck

    r = CheckResult(wrt="W", kind="vjp", shape=(2,), mode="full", method="central", step=1e-6,
                    fd_error_estimate=1e-9, max_abs_error=1.0, max_rel_error=1.0, rtol=1e-8,
                    atol=1e-8, n_evals=2, passed=False, notes=("line1\nline2 " + FAKE_VERDICT,))
    t = TargetCheck(target="t", passed=False, seed=0, dtype="float64", sizes={"n": 2},
                    results=(r,), conventions=('"quoted" & <tag>\n' + TITLE,))
    data = junit_xml(replace(t, implementation="a\tb\rc")).decode("utf-8")
    assert_no_raw_controls(data)
    root = ET.fromstring(data)
    failure = root.find(".//failure")
    assert "line1\\nline2 \\x1b[1A" in failure.text        # one note, one line
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["convention.1"] == '"quoted" & <tag>\\n\\x1b]0;pwned\\x07'
    assert props["implementation"] == "a\\tb\\rc"


# ---------------------------------------------------------------------------- verify, lower, train

def test_verify_shows_the_claim_on_one_line(runner):
    result = invoke(runner, ["verify", "--expr", "sum(X @ w)", "--shape", "X=m,n",
                             "--shape", "w=n", "--wrt", "w", "--claim", "(X.T\r@ ones(m)\n)"])
    assert result.exit_code == 0, result.output
    assert_no_raw_controls(result.stdout)
    assert "(X.T\\r@ ones(m)\\n)" in result.stdout


def test_verify_renderer_cleans_every_field():
    from rich.console import Console

    from derivkit.render.verify_render import render_verdict
    from derivkit.results import ClaimVerdict, Counterexample

    ce = Counterexample(sizes={"n": 1}, values={"x" + TITLE: [1.0]}, entry=(0,),
                        entry_text=FAKE_VERDICT, claimed=1.0, true=2.0)
    v = ClaimVerdict(target=MARKUP, wrt="x", claim=CR, form="matrix", reading=BIDI,
                     verdict="refuted", reason="r\x1b[2K", method="symbolic", counterexample=ce,
                     notes=(TITLE,))
    console = Console(width=200, no_color=True, record=True, force_terminal=False)
    render_verdict(console, v)
    out = console.export_text()
    assert_no_raw_controls(out)
    assert_shows_payloads(out)


def test_lower_wrote_line_shows_the_path_visibly(runner, evil, tmp_path):
    out = tmp_path / f"{TITLE}.py"
    result = invoke(runner, ["lower", "evil", "--recipes", str(evil), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()                                      # the file name itself is exact
    assert_no_raw_controls(result.stdout)
    assert f"wrote {visible(str(out))}:" in result.stdout


def test_train_output_is_clean(runner, tmp_path):
    """A composite recipe from a folder whose name sets the terminal title; a broken one there
    is an error line quoting its path."""
    folder = tmp_path / TITLE
    folder.mkdir()
    (folder / "tiny.toml").write_text(
        f'name = "tiny"\nsummary = {toml_string(FAKE_VERDICT)}\nnotes = [{toml_string(TITLE)}]\n'
        'wrt = ["W"]\n[[steps]]\nname = "H"\nexpr = "X @ W"\n[[steps]]\nname = "L"\n'
        'expr = "sum((H - T)**2) / m"\n[inputs]\nX = "m,n"\nW = "n,k"\nT = "m,k"\n')
    result = invoke(runner, ["train", "tiny", "--recipes", str(folder), "--epochs", "3"])
    assert result.exit_code == 0, result.output
    assert_no_raw_controls(result.stdout + result.stderr)
    assert result.stdout.startswith("train tiny: 3 epochs")
    (folder / "broken.toml").write_text('name = "broken"\n[[steps]\n')
    result = invoke(runner, ["train", "broken", "--recipes", str(folder)])
    assert visible(TITLE) in _error_line(result)


def test_train_without_lower_layers_reports_no_deviation(runner, tmp_path):
    """--use-updated-weights on a network whose only parameter is the last layer: nothing is
    backpropagated through an updated weight (was an internal error, exit 3)."""
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "tiny.toml").write_text(
        'name = "tiny"\nsummary = "one layer"\nwrt = ["W"]\n[[steps]]\nname = "H"\n'
        'expr = "X @ W"\n[[steps]]\nname = "L"\nexpr = "sum((H - T)**2) / m"\n[inputs]\n'
        'X = "m,n"\nW = "n,k"\nT = "m,k"\n')
    result = invoke(runner, ["train", "tiny", "--recipes", str(folder), "--epochs", "2",
                             "--use-updated-weights"])
    assert result.exit_code == 0, result.output
    assert "no layer below" in result.stdout


def test_train_renderer_cleans_names():
    from rich.console import Console

    from derivkit.render.train_render import render_train as _render
    from derivkit.training import TrainResult

    result = TrainResult(recipe=FAKE_VERDICT, epochs=2, lr=0.1, seed=0, sizes={TITLE: 3},
                         losses=(2.0, 1.0), final_loss=0.5, use_updated_weights=True,
                         last_layer=(BIDI,), deviations={CR: (0.1, 0.2)})
    console = Console(width=200, no_color=True, record=True, force_terminal=False)
    _render(console, result)
    out = console.export_text()
    assert_no_raw_controls(out)
    for shown in (visible(FAKE_VERDICT), visible(TITLE), "\\u202e", "a\\rb"):
        assert shown in out


# ---------------------------------------------------------------------------- error lines

def _error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr
    assert err.count("\n") == 1 and err.startswith("derivkit: error: "), err
    assert_no_raw_controls(err)
    return err


def test_recipe_error_quoting_a_hostile_path(runner, tmp_path):
    folder = tmp_path / TITLE
    folder.mkdir()
    (folder / "broken.toml").write_text('name = "broken"\nsummary = \n')
    err = _error_line(invoke(runner, ["derive", "broken", "--recipes", str(folder)]))
    assert visible(TITLE) in err and "not valid TOML" in err


@pytest.mark.parametrize("args", [
    ["derive", "--" + FAKE_VERDICT],                          # click: no such option
    ["derive", "softmax", "extra" + TITLE],                   # click: unexpected argument
    ["derive", "--expr", "sum(x)" + TITLE, "--wrt", "x", "--shape", "x=n"],
    ["derive", "--expr", "sum(x)", "--wrt", "x", "--shape", "x=n" + BIDI],
    ["verify", "softmax", "--claim", "p" + FAKE_VERDICT],
    ["verify", "softmax", "--claim", "q" + BIDI],
    ["derive", FAKE_VERDICT],
    ["check", "--all", "--recipes", str(Path("/nonexistent") / TITLE)],
])
def test_usage_and_input_errors_show_user_text_visibly(runner, args):
    _error_line(invoke(runner, args))


def test_internal_error_line_is_visible_too(runner, monkeypatch):
    import derivkit.api as api

    def boom(*a, **k):
        raise RuntimeError(FAKE_VERDICT + TITLE)

    monkeypatch.setattr(api, "list_recipes", boom)
    result = invoke(runner, ["list"])
    assert result.exit_code == 3
    assert_no_raw_controls(result.stderr)
    assert visible(FAKE_VERDICT) in result.stderr


def test_progress_description_is_visible():
    """The progress bar of check --all names each recipe (a file name) on a terminal."""
    import io

    from rich.console import Console

    from derivkit.render.check_rich import progress_callback

    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, force_interactive=True, no_color=True,
                      width=120)
    with progress_callback(console, 2) as callback:
        callback(FAKE_VERDICT)
    raw = stream.getvalue()      # Rich's own cursor codes are there; the payload is not
    assert visible(FAKE_VERDICT) in raw
    assert "\x1b[32m✓" not in raw and "\x1b]0;" not in raw


# ---------------------------------------------------------------------------- shape specs

@pytest.mark.parametrize("text, shape", [
    ("maxlen", ("maxlen",)), ("mxn", ("mxn",)), ("nx", ("nx",)), ("xx,x", ("xx", "x")),
    ("m,n", ("m", "n")), ("m×n", ("m", "n")), ("3, n", (3, "n")), ("scalar", ()),
])
def test_only_a_comma_or_the_multiplication_sign_separates_dimensions(text, shape):
    from derivkit.lang.shapes import parse_shape

    assert parse_shape(text) == shape


def test_shape_named_like_a_product_is_a_vector_and_3x4_gets_a_hint(runner):
    result = invoke(runner, ["derive", "--expr", "sum(v)", "--wrt", "v", "--shape", "v=maxlen",
                             "--json"])
    assert result.exit_code == 0, result.output
    (spec,) = json.loads(result.stdout)["inputs"]
    assert spec["dims"] == ["maxlen"] and spec["shape"] == "maxlen"
    err = _error_line(invoke(runner, ["derive", "--expr", "sum(X)", "--wrt", "X",
                                      "--shape", "X=3x4"]))
    assert "'3x4'" in err and "separate dimensions with a comma" in err
