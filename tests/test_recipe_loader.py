"""The recipe loader: every error names the file and the field; folders extend and override the
built-ins via --recipes and $DERIVKIT_RECIPES. Every built-in recipe loads."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest
from conftest import RECIPES

from derivkit.cli.app import app
from derivkit.errors import RecipeError, UnknownRecipeError
from derivkit.lang import recipes

GOOD = '''name = "{name}"
summary = "Twice x"
forward = "2*x"
wrt = ["x"]

[inputs]
x = "n"
'''


def write(folder: Path, name: str, text: str | None = None) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(GOOD.format(name=name) if text is None else text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(p.stem for p in RECIPES.glob("*.toml")))
def test_every_builtin_recipe_loads(name):
    recipe = recipes.load(name)
    assert recipe.name == name
    assert recipe.summary and recipe.forward and recipe.inputs and recipe.wrt
    assert set(recipe.wrt) <= {i.name for i in recipe.inputs}


def test_builtin_dir_is_the_checkout_recipes_folder():
    assert recipes.builtin_dir() == RECIPES


# ---------------------------------------------------------------------------- errors

BAD_CASES = [
    # (file text, words that must appear in the message besides the file name)
    ('summary = "s"\nforward = "x"\n[inputs]\nx = "n"\n', ["missing field 'name'"]),
    ('name = "bad"\nforward = "x"\n[inputs]\nx = "n"\n', ["missing field 'summary'"]),
    ('name = "bad"\nsummary = "s"\n[inputs]\nx = "n"\n', ["missing field 'forward'"]),
    ('name = "bad"\nsummary = "s"\nforward = "x"\n', ["missing field 'inputs'"]),
    ('name = "bad"\nsummary = "s"\nforward = "x"\n[inputs]\nx = "n,,n"\n', ["inputs.x", "malformed shape"]),
    ('name = "bad"\nsummary = "s"\nforward = "x"\n[inputs]\nx = "a,b,c,d,e"\n', ["inputs.x", "rank 5"]),
    ('name = "bad"\nsummary = "s"\nforward = "x"\n[inputs]\nx = 3\n', ["inputs.x", "shape string"]),
    ('name = "bad"\nsummary = "s"\nforward = "x"\nwrt = ["y"]\n[inputs]\nx = "n"\n',
     ["wrt", "'y'", "not an input"]),
    ('name = "bad"\nsummary = "s"\nforward = "x"\n[inputs]\nx = "n"\n[domain]\nx = "negative"\n',
     ["domain.x", "'negative'", "real, positive, nonzero"]),
    ('name = "bad"\nsummary = "s"\nforward = "x"\n[inputs]\nx = "n"\n[domain]\ny = "real"\n',
     ["domain.y", "names no input"]),
    ('name = "bad"\nsummary = "s"\nforward = "x"\n[inputs]\nx = "n"\n[params]\nalpha = "big"\n',
     ["params.alpha", "number"]),
    ('name = "bad"\nsummary = "s"\nforward = "x"\nnotes = [1]\n[inputs]\nx = "n"\n', ["'notes'"]),
    ('name = "bad"\nsummary = \n', ["not valid TOML"]),
]


@pytest.mark.parametrize("text, words", BAD_CASES)
def test_loader_errors_name_file_and_field(tmp_path, text, words):
    path = write(tmp_path, "bad", text)
    with pytest.raises(RecipeError) as info:
        recipes.load("bad", [tmp_path])
    message = info.value.one_line()
    assert str(path) in message
    for word in words:
        assert word in message, message
    assert "\n" not in message


def test_name_must_match_file_stem(tmp_path):
    path = write(tmp_path, "twice", GOOD.format(name="double"))
    for call in (lambda: recipes.load("twice", [tmp_path]), lambda: recipes.load_all([tmp_path])):
        with pytest.raises(RecipeError) as info:
            call()
        message = info.value.one_line()
        assert str(path) in message and "'name'" in message and "double" in message


def test_unknown_recipe_suggests_close_names():
    with pytest.raises(UnknownRecipeError) as info:
        recipes.load("sofmax")
    assert "did you mean 'softmax'?" in info.value.one_line()
    with pytest.raises(UnknownRecipeError) as info:
        recipes.load("zzzzzz")
    assert "derivkit list" in info.value.one_line()


@pytest.mark.parametrize("text, words", BAD_CASES[:3] + BAD_CASES[-1:])
def test_cli_reports_loader_errors_in_one_line(runner, tmp_path, text, words):
    path = write(tmp_path, "bad", text)
    result = runner.invoke(app, ["list", "--recipes", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"derivkit: error: {path}")
    for word in words:
        assert word in result.stderr


# ---------------------------------------------------------------------------- folders

def _listed(runner, *args) -> dict[str, dict]:
    result = runner.invoke(app, ["list", "--json", *args])
    assert result.exit_code == 0, result.output
    return {r["name"]: r for r in json.loads(result.stdout)["recipes"]}


def test_recipes_option_extends_builtins(runner, tmp_path):
    write(tmp_path, "double")
    listed = _listed(runner, "--recipes", str(tmp_path))
    assert "double" in listed and "softmax" in listed
    assert listed["double"]["path"] == str(tmp_path / "double.toml")


def test_recipes_option_overrides_builtin(runner, tmp_path):
    write(tmp_path, "softmax", GOOD.format(name="softmax").replace("Twice x", "My softmax"))
    listed = _listed(runner, "--recipes", str(tmp_path))
    assert listed["softmax"]["summary"] == "My softmax"
    assert recipes.load("softmax", [tmp_path]).summary == "My softmax"
    assert recipes.load("softmax").summary != "My softmax"


def test_environment_variable_extends_and_overrides(runner, tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    write(first, "double")
    write(first, "relu", GOOD.format(name="relu").replace("Twice x", "from a"))
    write(second, "relu", GOOD.format(name="relu").replace("Twice x", "from b"))
    monkeypatch.setenv(recipes.ENV_VAR, os.pathsep.join([str(first), str(second)]))
    listed = _listed(runner)
    assert "double" in listed
    assert listed["relu"]["summary"] == "from b"          # later folder wins


def test_recipes_option_wins_over_environment(runner, tmp_path, monkeypatch):
    env_dir, opt_dir = tmp_path / "env", tmp_path / "opt"
    env_dir.mkdir()
    opt_dir.mkdir()
    write(env_dir, "tanh", GOOD.format(name="tanh").replace("Twice x", "from env"))
    write(opt_dir, "tanh", GOOD.format(name="tanh").replace("Twice x", "from option"))
    monkeypatch.setenv(recipes.ENV_VAR, str(env_dir))
    assert _listed(runner, "--recipes", str(opt_dir))["tanh"]["summary"] == "from option"


def test_environment_folder_must_exist(runner, tmp_path, monkeypatch):
    monkeypatch.setenv(recipes.ENV_VAR, str(tmp_path / "missing"))
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 2
    assert "DERIVKIT_RECIPES" in result.stderr and "missing" in result.stderr


# ---------------------------------------------------------------------------- docs

def test_readme_recipe_example_is_a_valid_recipe():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Recipes", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    recipe = recipes.parse_recipe(tomllib.loads(block), "README.md")
    builtin = recipes.load("linear")
    assert (recipe.name, recipe.forward, recipe.inputs, recipe.wrt, recipe.output, recipe.upstream) == \
        (builtin.name, builtin.forward, builtin.inputs, builtin.wrt, builtin.output, builtin.upstream)


def test_references_name_what_a_user_can_find():
    """Recipes cite the two texts by title (introduced once in the README), not by a path in a
    checkout users do not have; The Matrix Cookbook by section and URL."""
    import tomllib

    repo = Path(__file__).resolve().parent.parent
    readme = (repo / "README.md").read_text(encoding="utf-8")
    titles = ("大模型系列(一)——适合初学者的深度学习入门(2)", "机器学习中常用的一些公式推导")
    cited = set()
    for path in sorted((repo / "recipes").glob("*.toml")):
        for ref in tomllib.loads(path.read_text(encoding="utf-8")).get("references", []):
            assert "shared/" not in ref and ".md" not in ref, (path.name, ref)
            cited |= {t for t in titles if t in ref}
            if "Matrix Cookbook" in ref:
                assert "§" in ref and "https://" in ref, ref
    assert cited == set(titles)
    intro = readme.split("## Quick start", 1)[0]
    assert all(t in intro for t in titles) and "shared/seeds" not in readme
