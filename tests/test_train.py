"""`derivkit train` and `derivkit.training`: gradient descent with the derived gradients."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from derivkit.cli.app import app
from derivkit.errors import DerivkitError
from derivkit.lang import recipes
from derivkit.render.train_render import loss_chart
from derivkit.training import last_layer, make_task, train

# No test here changes how derivkit derives: derivations are shared across the session (conftest).
pytestmark = pytest.mark.usefixtures("shared_derivations")


@pytest.fixture(scope="module")
def mlp3():
    return recipes.load("mlp3")


@pytest.fixture(scope="module")
def plain_run(mlp3):
    return train(mlp3, epochs=200, lr=0.05, seed=0)


def test_training_reduces_the_loss(plain_run):
    assert len(plain_run.losses) == 200
    assert plain_run.final_loss < 0.5 * plain_run.initial_loss
    assert plain_run.final_loss < plain_run.losses[-1]          # one more update after the last pass
    assert plain_run.deviations == {} and plain_run.mean_deviation is None


@pytest.mark.parametrize("seed", [1, 2])
def test_training_reduces_the_loss_for_other_seeds(mlp3, seed):
    run = train(mlp3, epochs=200, lr=0.05, seed=seed)
    assert run.final_loss < 0.5 * run.initial_loss


def test_same_seed_same_losses(mlp3, plain_run):
    again = train(mlp3, epochs=200, lr=0.05, seed=0)
    assert again.losses == plain_run.losses and again.final_loss == plain_run.final_loss
    other = train(mlp3, epochs=5, lr=0.05, seed=1)
    assert other.losses[0] != plain_run.losses[0]


def test_the_task_is_a_teacher_students_regression(mlp3):
    task = make_task(mlp3, {"m": 10, "d1": 5}, seed=3)
    assert task.sizes == {"m": 10, "d0": 8, "d1": 5, "d2": 8, "d3": 8}
    assert task.data["X"].shape == (10, 8) and task.data["T"].shape == (10, 8)
    assert task.params["W1"].shape == (5, 8) and task.params["b2"].shape == (8,)
    assert task.target == "T" and set(task.params) == set(mlp3.wrt)
    assert not np.allclose(task.params["W1"], task.teacher["W1"])


def test_the_last_layer_is_found_from_the_steps(mlp3):
    assert last_layer(mlp3) == ("W3", "b3")


def test_updated_weights_give_wrong_lower_gradients(mlp3):
    run = train(mlp3, epochs=20, lr=0.05, seed=0, use_updated_weights=True)
    assert run.last_layer == ("W3", "b3")
    assert set(run.deviations) == {"W1", "b1", "W2", "b2"}
    assert all(len(v) == 20 for v in run.deviations.values())
    assert run.mean_deviation > 0 and run.max_deviation >= run.mean_deviation


def test_bad_arguments_are_input_errors(mlp3):
    with pytest.raises(DerivkitError, match="no steps"):
        train(recipes.load("linear"), epochs=3)
    with pytest.raises(DerivkitError, match="epochs"):
        train(mlp3, epochs=0)
    with pytest.raises(DerivkitError, match="learning rate"):
        train(mlp3, epochs=1, lr=float("nan"))
    with pytest.raises(DerivkitError, match="no dimension 'q'"):
        train(mlp3, epochs=1, sizes={"q": 3})


def test_divergence_is_reported(mlp3):
    with pytest.raises(DerivkitError, match="diverged"):
        train(mlp3, epochs=200, lr=1e6, seed=0)


def test_loss_chart_is_plain_text():
    lines = loss_chart([1.0, 0.5, 0.25, 0.125], width=60, height=4)
    assert [line.split("|")[0].strip() for line in lines[:4]] == ["1", "", "", "0.125"]
    assert lines[0].split("|")[1].startswith("*") and lines[3].endswith("*")
    assert all(ch.isascii() for line in lines for ch in line)
    assert lines[-1].split()[:2] == ["0", "3"]
    assert len(loss_chart(list(range(1, 500)), width=40)[0].split("|", 1)[1]) == 40


# ---------------------------------------------------------------------------- CLI

def test_cli_trains_and_prints_the_chart(runner):
    result = runner.invoke(app, ["train", "--epochs", "30"])
    assert result.exit_code == 0, result.stderr
    assert "train mlp3: 30 epochs" in result.stdout
    assert "loss: first" in result.stdout and "epoch" in result.stdout
    assert "tutorial" not in result.stdout and "deviate" not in result.stdout


def test_cli_updated_weights_reports_a_deviation_and_the_warning(runner):
    result = runner.invoke(app, ["train", "mlp3", "--epochs", "10", "--use-updated-weights"])
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "W3, b3 updated before backpropagating" in text
    assert "max" in text and "%" in text
    assert "must use W3 from before its update" in text


def test_cli_json(runner):
    plain = runner.invoke(app, ["train", "--epochs", "5", "--json"])
    assert plain.exit_code == 0, plain.stderr
    data = json.loads(plain.stdout)
    assert len(data["losses"]) == 5 and data["final_loss"] < data["initial_loss"]
    assert data["deviations"] is None and data["mean_deviation"] is None
    stale = json.loads(runner.invoke(app, ["train", "--epochs", "5", "--json",
                                           "--use-updated-weights"]).stdout)
    assert stale["mean_deviation"] > 0 and set(stale["deviations"]) == {"W1", "b1", "W2", "b2"}
    assert stale["last_layer"] == ["W3", "b3"]


@pytest.mark.parametrize("args,message", [
    (["train", "linear"], "has no steps"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--lr", "0"], "learning rate"),
    (["train", "--size", "m=0"], "at least 1"),
    (["train", "nosuchrecipe"], "nosuchrecipe"),
])
def test_cli_input_errors_exit_2(runner, args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


WRAPPER = """
import json, sys
from derivkit.cli import app
try:
    app(args=sys.argv[1:], prog_name="derivkit")
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("sympy", "numpy", "mpmath"))
print("\\n@@" + json.dumps({"code": code, "heavy": heavy}))
"""


def test_train_help_has_an_example_and_is_light(tmp_path):
    proc = subprocess.run([sys.executable, "-c", WRAPPER, "train", "--help"], capture_output=True,
                          text=True, cwd=tmp_path, env=dict(os.environ, NO_COLOR="1"))
    out, report = proc.stdout.rsplit("@@", 1)
    report = json.loads(report)
    assert report["code"] == 0, proc.stderr
    assert report["heavy"] == []
    assert "derivkit train mlp3 --use-updated-weights" in out


def test_a_cross_entropy_recipe_trains_on_one_hot_targets():
    """transformer-block: T is one-hot (the teacher's class per token), and gradient descent with
    derivkit's backward pass brings the loss down."""
    recipe = recipes.load("transformer-block")
    task = make_task(recipe, {"t": 16, "d": 4, "f": 4, "v": 3}, seed=1)
    T = task.data["T"]
    assert T.shape == (16, 3) and set(np.unique(T)) == {0.0, 1.0}
    np.testing.assert_array_equal(T.sum(axis=1), np.ones(16))
    result = train(recipe, epochs=25, lr=0.5, seed=1, sizes={"t": 16, "d": 4, "f": 4, "v": 3})
    assert result.losses[-1] < 0.5 * result.losses[0]
