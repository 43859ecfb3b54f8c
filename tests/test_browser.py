"""The `--html` page in a real browser: headless Chromium (Debian's `chromium` package; CI installs
it) loads the page at a phone's width, 375 px, from a file:// URL only.

A copy of the page, in a 375 px frame, gets a measuring script (the shipped page has none) that
records the layout box of the first `<math>` element and of a fraction's numerator and
denominator (stacked only if MathML is laid out as maths), the document's scroll width
against the viewport, and any error, and posts them to the frame's page, whose DOM
`--dump-dom` prints. Console messages are read from Chromium's log.
A control page with a script error and a too-wide block proves that the measurement catches
both. Chromium missing is a failure, not a skip."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from derivkit.cli.app import app

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.usefixtures("shared_derivations")]

WIDTH = 375

HEAD_PROBE = """<script>
window.__dkErrors = [];
window.addEventListener("error", function (e) { window.__dkErrors.push(String(e.message)); });
</script>"""

BODY_PROBE = """<script>
window.addEventListener("load", function () {
  function box(el) {
    if (!el) return null;
    var r = el.getBoundingClientRect();
    return {left: r.left, top: r.top, width: r.width, height: r.height, bottom: r.bottom};
  }
  var math = document.querySelector("math");
  var frac = document.querySelector("mfrac");
  var root = document.documentElement;
  var data = {math: box(math), mathCount: document.querySelectorAll("math").length,
              numerator: box(frac && frac.children[0]), denominator: box(frac && frac.children[1]),
              scrollWidth: root.scrollWidth, clientWidth: root.clientWidth,
              innerWidth: window.innerWidth, errors: window.__dkErrors};
  parent.postMessage(JSON.stringify(data), "*");
});
</script>"""

#: Headless Chromium's window is at least 500 px wide: the page is loaded in a 375 px frame, a
#: real viewport of a phone's width, and posts its measurements to this wrapper's DOM.
FRAME = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{margin:0}</style></head>
<body><iframe src="%s" style="width:%dpx;height:800px;border:0"></iframe>
<script>
window.addEventListener("message", function (e) {
  var out = document.createElement("div");
  out.id = "dk-measure";
  out.setAttribute("data-json", e.data);
  document.body.appendChild(out);
});
</script></body></html>"""


def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path is None:
        pytest.fail("Chromium is needed for this test and was not found: install it with "
                    "'apt-get install -y chromium' (Debian's package; .ci/run installs it)")
    return path


def _run_chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-extensions", "--disable-default-apps",
           "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}",
           f"--window-size={WIDTH},800", "--virtual-time-budget=5000", "--enable-logging=stderr",
           "--v=0", *args]
    env = {**os.environ, "HOME": str(tmp_path)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, env=env)


def measure(page: Path, tmp_path: Path) -> tuple[dict, list[str]]:
    """(measurements, console messages from the page) of `page` loaded at 375 px."""
    text = page.read_text(encoding="utf-8")
    probed = tmp_path / f"probed-{page.name}"
    probed.write_text(text.replace("<head>", "<head>\n" + HEAD_PROBE, 1)
                      .replace("</body>", BODY_PROBE + "\n</body>", 1), encoding="utf-8")
    frame = tmp_path / f"frame-{page.name}"
    frame.write_text(FRAME % (probed.name, WIDTH), encoding="utf-8")
    done = _run_chromium(["--dump-dom", frame.as_uri()], tmp_path)
    found = re.search(r'id="dk-measure" data-json="([^"]*)"', done.stdout)
    assert found, f"no measurement in the page's DOM; stderr:\n{done.stderr[-2000:]}"
    console = [line for line in done.stderr.splitlines()
               if "CONSOLE" in line and probed.name in line]
    return json.loads(html.unescape(found.group(1))), console


def write_page(runner, args: list[str], path: Path) -> Path:
    result = runner.invoke(app, [*args, "--html", str(path)])
    assert result.exit_code == 0, result.output
    return path


def assert_renders_on_a_phone(data: dict, console: list[str], *, fraction: bool = True) -> None:
    assert data["errors"] == [] and console == []
    assert data["innerWidth"] == WIDTH
    math = data["math"]
    assert math is not None and math["width"] > 0 and math["height"] > 0
    assert data["mathCount"] >= 1
    # MathML laid out as maths: a fraction's numerator sits above its denominator
    num, den = data["numerator"], data["denominator"]
    assert fraction or num is None
    if fraction:
        assert num["height"] > 0 and den["height"] > 0 and num["bottom"] <= den["top"] + 0.5
    # nothing wider than the phone: formulas and tables scroll inside their own boxes
    assert data["scrollWidth"] <= data["clientWidth"] <= WIDTH


def test_derivation_page_renders_maths_at_phone_width(runner, tmp_path):
    page = write_page(runner, ["derive", "softmax"], tmp_path / "softmax.html")
    data, console = measure(page, tmp_path)
    assert_renders_on_a_phone(data, console)
    assert data["mathCount"] >= 5


def test_check_page_renders_at_phone_width(runner, tmp_path):
    page = write_page(runner, ["check", "linear"], tmp_path / "linear-check.html")
    assert "<table>" in page.read_text(encoding="utf-8")
    data, console = measure(page, tmp_path)     # its formula: the rule every entry is held to
    assert_renders_on_a_phone(data, console, fraction=False)


def test_the_measurement_catches_errors_and_overflow(tmp_path):
    """A control page: a script error and a block wider than the phone are both reported."""
    page = tmp_path / "control.html"
    page.write_text('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                    '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
                    '<body><math><mfrac><mi>a</mi><mi>b</mi></mfrac></math>'
                    '<div style="width:2000px">wide</div>'
                    "<script>console.error('dk-console-control'); undefinedFunction();</script>"
                    "</body></html>", encoding="utf-8")
    data, console = measure(page, tmp_path)
    assert data["errors"] and "undefinedFunction" in data["errors"][0]
    assert any("dk-console-control" in line for line in console)
    assert data["scrollWidth"] > WIDTH
    with pytest.raises(AssertionError):
        assert_renders_on_a_phone(data, console)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_screenshot_of_the_page(runner, tmp_path):
    page = write_page(runner, ["derive", "softmax"], tmp_path / "shot.html")
    shot = tmp_path / "shots" / "softmax.png"
    shot.parent.mkdir()
    done = _run_chromium([f"--screenshot={shot}", "--hide-scrollbars", page.as_uri()], tmp_path)
    assert shot.exists(), done.stderr[-2000:]
    width, height = _png_size(shot)
    assert (width, height) == (WIDTH, 800)
    assert shot.stat().st_size > 20_000     # text and formulas, not a blank page
