"""`derivkit train --plot FILE.svg` and `derivkit.render.train_svg`: the loss curve as an SVG.

The SVG is read back as a reader would: the tick labels and tick positions give the axis scale,
and every polyline point, mapped back through that scale, must land within a pixel of the run's
own value at that epoch (computed here from the TrainResult, not from the module's code).
"""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET

import pytest

from derivkit.cli.app import app
from derivkit.lang import recipes
from derivkit.render.train_svg import MAX_POINTS, train_svg, write_train_svg
from derivkit.training import TrainResult, train

pytestmark = pytest.mark.usefixtures("shared_derivations")

NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def mlp3():
    return recipes.load("mlp3")


@pytest.fixture(scope="module")
def plain_run(mlp3):
    return train(mlp3, epochs=6, lr=0.05, seed=0)


@pytest.fixture(scope="module")
def stale_run(mlp3):
    return train(mlp3, epochs=6, lr=0.05, seed=0, use_updated_weights=True)


def synthetic(losses, final, *, recipe="toy", deviations=None, last_layer=()):
    return TrainResult(recipe, len(losses), 0.1, 0, {"m": 4}, tuple(losses), final,
                       deviations is not None, tuple(last_layer), deviations or {})


# --- reading the SVG back ------------------------------------------------------------------

def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == f"{NS}svg"
    return root


def group(root: ET.Element, cls: str) -> ET.Element | None:
    return root.find(f".//{NS}g[@class='{cls}']")


def polyline(root: ET.Element, cls: str) -> list[tuple[float, float]] | None:
    line = root.find(f".//{NS}polyline[@class='series {cls}']")
    if line is None:
        return None
    return [tuple(float(c) for c in p.split(",")) for p in line.get("points").split()]


class Axis:
    """An axis as drawn: (value, pixel) of each labelled tick, log or linear per its label."""

    def __init__(self, root: ET.Element, cls: str, coord: str) -> None:
        g = group(root, f"axis {cls}")
        assert g is not None, f"no axis {cls}"
        self.ticks = [(float(t.find(f"{NS}text").text), float(t.find(f"{NS}line").get(coord)))
                      for t in g.findall(f"{NS}g[@class='tick']")]
        assert len(self.ticks) >= 2
        self.label = g.find(f"{NS}text[@class='label']").text
        self.log = "(log scale)" in self.label
        if cls != "x":                  # a value axis says which scale it uses
            assert self.log != ("(linear scale)" in self.label), self.label
        (v0, p0), (v1, p1) = self.ticks[0], self.ticks[-1]
        self.v0, self.v1 = (math.log10(v0), math.log10(v1)) if self.log else (v0, v1)
        self.p0, self.p1 = p0, p1
        for v, p in self.ticks:         # every tick where the first and last put the scale
            assert abs(self.px(v) - p) < 0.02

    def px(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return self.p0 + (v - self.v0) / (self.v1 - self.v0) * (self.p1 - self.p0)

    def value(self, px: float) -> float:
        v = self.v0 + (px - self.p0) / (self.p1 - self.p0) * (self.v1 - self.v0)
        return 10 ** v if self.log else v


def loss_values(result: TrainResult) -> list[float]:
    return list(result.losses) + [result.final_loss]


def mean_deviation_pct(result: TrainResult) -> list[float]:
    series = list(result.deviations.values())
    return [100 * sum(s[k] for s in series) / len(series) for k in range(result.epochs)]


def assert_maps_back(root: ET.Element, cls: str, axis: str, expected: list[float],
                     *, every_epoch: bool = True) -> None:
    points = polyline(root, cls)
    assert points, f"no {cls} series"
    x, y = Axis(root, "x", "x1"), Axis(root, axis, "y1")
    epochs = []
    for px, py in points:
        k = round(x.value(px))
        assert abs(px - x.px(k)) < 0.01, (px, k)       # a point per whole epoch
        epochs.append(k)
        assert abs(py - y.px(expected[k])) <= 1.0, (k, y.value(py), expected[k])
    if every_epoch:
        assert epochs == list(range(len(expected)))


# --- the loss curve of real runs --------------------------------------------------------------

def test_loss_points_map_back_to_the_losses(plain_run):
    root = parse(train_svg(plain_run))
    assert_maps_back(root, "loss", "y", loss_values(plain_run))
    values = loss_values(plain_run)
    assert Axis(root, "y", "y1").log == (max(values) / min(values) > 100)


def test_a_wrong_value_is_caught(plain_run):
    """The check above is able to fail: one loss off by 5% of its range is more than a pixel."""
    values = loss_values(plain_run)
    values[3] += 0.05 * (max(values) - min(values))
    with pytest.raises(AssertionError):
        assert_maps_back(parse(train_svg(plain_run)), "loss", "y", values)


def test_no_deviation_series_unless_asked(plain_run):
    root = parse(train_svg(plain_run))
    assert polyline(root, "deviation") is None
    assert group(root, "legend") is None and group(root, "axis y2") is None


def test_deviation_series_with_updated_weights(stale_run):
    root = parse(train_svg(stale_run))
    assert_maps_back(root, "loss", "y", loss_values(stale_run))
    assert_maps_back(root, "deviation", "y2", mean_deviation_pct(stale_run))
    assert len(polyline(root, "deviation")) == stale_run.epochs
    legend = " ".join(t.text for t in group(root, "legend").iter(f"{NS}text"))
    assert "loss" in legend and "deviation" in legend and "W1, b1, W2, b2" in legend
    assert "%" in Axis(root, "y2", "y1").label
    desc = root.find(f"{NS}desc").text
    assert "W3, b3" in desc and "deviate" in desc


def test_updated_weights_with_no_lower_layer_draw_one_series():
    run = synthetic([1.0, 0.5], 0.25, deviations={}, last_layer=("W",))
    root = parse(train_svg(run))
    assert polyline(root, "deviation") is None and group(root, "legend") is None


# --- scale decision and ticks -----------------------------------------------------------------

@pytest.mark.parametrize("losses,final,log", [
    ([1000.0, 100.0, 10.0, 1.0], 0.5, True),         # 2000×: log
    ([101.0, 50.0, 10.0], 1.0, True),                 # just over two decades
    ([100.0, 50.0, 10.0], 1.0, False),                # exactly two decades: linear
    ([1.0, 0.5, 0.2], 0.05, False),                   # 20×
    ([3.0, 0.0, 1e-9], 1e-9, False),                  # a zero: no log scale
    ([2.0, -1.0, -5.0], -20.0, False),                # negative losses (a log-likelihood)
    ([0.7], 0.7, False),                              # constant
])
def test_log_scale_only_beyond_two_decades(losses, final, log):
    run = synthetic(losses, final)
    root = parse(train_svg(run))
    axis = Axis(root, "y", "y1")
    assert axis.log is log
    assert_maps_back(root, "loss", "y", loss_values(run))
    lo, hi = min(loss_values(run)), max(loss_values(run))
    assert axis.ticks[0][0] <= lo and axis.ticks[-1][0] >= hi        # the data is inside
    if log:
        assert all(math.log10(v) == round(math.log10(v)) for v, _ in axis.ticks)   # decades
    else:
        steps = {round(b - a, 12) for (a, _), (b, _) in zip(axis.ticks, axis.ticks[1:])}
        assert len(steps) == 1
        step = steps.pop()
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert round(mantissa, 9) in (1, 2, 5)                      # 1, 2 or 5 × 10ⁿ


def test_long_runs_are_thinned_but_still_map_back():
    n = 3 * MAX_POINTS
    losses = [2.0 * math.exp(-k / 700) for k in range(n)]
    run = synthetic(losses, losses[-1] * 0.999)
    root = parse(train_svg(run))
    points = polyline(root, "loss")
    assert len(points) <= MAX_POINTS
    assert_maps_back(root, "loss", "y", loss_values(run), every_epoch=False)
    x = Axis(root, "x", "x1")
    assert round(x.value(points[0][0])) == 0 and round(x.value(points[-1][0])) == n


# --- the document: accessible, self-contained, escaped ---------------------------------------

def test_document_is_accessible_scalable_and_self_contained(plain_run):
    svg = train_svg(plain_run)
    root = parse(svg)
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    assert root.get("role") == "img"
    assert [child.tag for child in root][:2] == [f"{NS}title", f"{NS}desc"]
    assert "mlp3" in root.find(f"{NS}title").text
    assert "mlp3" in root.find(f"{NS}desc").text
    assert "mlp3" in root.find(f".//{NS}text[@class='title']").text
    tags = {el.tag.removeprefix(NS) for el in root.iter()}
    assert tags <= {"svg", "title", "desc", "rect", "text", "g", "line", "polyline"}
    for el in root.iter():
        for name, value in el.attrib.items():
            assert "href" not in name and not name.startswith("on"), name
            assert "url(" not in value and "javascript" not in value.lower()
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")


HOSTILE = 'evil</title><script>alert("x")</script>&amp;\'"\x1b[2J\x07\u202e\x00\ud800'


def test_hostile_names_are_escaped():
    run = synthetic([1.0, 0.5], 0.2, recipe=HOSTILE, last_layer=("W<3",),
                    deviations={'W&1"': (0.1, 0.2), "b\x1b1": (0.1, 0.1)})
    svg = train_svg(run)
    root = parse(svg)                                   # parses: nothing broke the document
    assert not any(el.tag.removeprefix(NS) == "script" for el in root.iter())
    assert "<script" not in svg and "\x1b" not in svg and "\x00" not in svg
    assert "\u202e" not in svg and "\x07" not in svg
    title = root.find(f"{NS}title").text
    assert '</title><script>alert("x")</script>&amp;\'"' in title      # shown as text
    assert "\\x1b[2J" in title and "\\u202e" in title and "\\x00" in title
    legend = " ".join(t.text for t in group(root, "legend").iter(f"{NS}text"))
    assert 'W&1"' in legend and "b\\x1b1" in legend
    assert "W<3" in root.find(f"{NS}desc").text


# --- the command --------------------------------------------------------------------------------

def test_cli_writes_the_plot(runner, tmp_path):
    out = tmp_path / "loss.svg"
    out.write_text("old")                               # a regular file is replaced, as --junit
    result = runner.invoke(app, ["train", "--epochs", "3", "--plot", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "loss after each epoch" in result.stdout and f"wrote {out}" in result.stderr
    root = parse(out.read_text(encoding="utf-8"))
    assert "mlp3" in root.find(f"{NS}title").text and polyline(root, "deviation") is None
    assert len(polyline(root, "loss")) == 4
    assert os.listdir(tmp_path) == ["loss.svg"]         # no temporary file left behind


def test_cli_plot_with_json_and_deviation(runner, tmp_path):
    out = tmp_path / "stale.SVG"
    result = runner.invoke(app, ["train", "--epochs", "3", "--use-updated-weights", "--json",
                                 "--plot", str(out)])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)                    # stdout stays one JSON document
    root = parse(out.read_text(encoding="utf-8"))
    assert_maps_back(root, "loss", "y", data["losses"] + [data["final_loss"]])
    assert len(polyline(root, "deviation")) == 3


@pytest.mark.parametrize("where,message", [
    ("folder", "is a folder"),
    ("missing/loss.svg", "does not exist"),
    ("loss.png", "ending in .svg"),
    ("loss", "ending in .svg"),
    ("link.svg", "symbolic link"),
])
def test_cli_bad_plot_path_exit_2_before_training(runner, tmp_path, monkeypatch, where, message):
    import derivkit.training

    def no_training(*args, **kwargs):
        raise AssertionError("trained before refusing the path")

    monkeypatch.setattr(derivkit.training, "train", no_training)
    (tmp_path / "folder").mkdir()
    (tmp_path / "target.svg").write_text("keep")
    os.symlink(tmp_path / "target.svg", tmp_path / "link.svg")
    before = sorted(os.listdir(tmp_path))
    result = runner.invoke(app, ["train", "--epochs", "2", "--plot", str(tmp_path / where)])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert message in result.stderr and "--plot" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == before
    assert (tmp_path / "target.svg").read_text() == "keep"


def test_write_refuses_a_folder_that_appeared(tmp_path, plain_run):
    from derivkit.errors import DerivkitError

    (tmp_path / "late.svg").mkdir()
    with pytest.raises(DerivkitError, match="is a folder"):
        write_train_svg(tmp_path / "late.svg", plain_run)
