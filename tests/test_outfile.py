"""Output files (`lower -o FILE`, `check --junit FILE`) are written by `derivkit.render.outfile`
(issue 10, part G): atomically (a temporary file in the same folder, renamed), never through a
symbolic link, never into a FIFO, device or folder; every failure is exit 2 with one line."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from derivkit.cli.app import app
from derivkit.errors import DerivkitError
from derivkit.render.outfile import check_output, write_output
from derivkit.results import CheckResult, TargetCheck

LONG = "a" * 300 + ".py"       # longer than any file-name limit (255 bytes on Linux, macOS)


def error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr
    assert err.count("\n") == 1 and err.startswith("derivkit: error: "), err
    assert "Traceback" not in result.output
    return err


def leftovers(folder: Path) -> list[str]:
    """Temporary files write_output may have left behind."""
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture
def quick_check(monkeypatch):
    """`check NAME` without the engine: one passing result."""
    import derivkit.api as api

    r = CheckResult(wrt="x", kind="gradient", shape=(3,), mode="full", method="complex-step",
                    step=1e-20, fd_error_estimate=0.0, max_abs_error=0.0, max_rel_error=0.0,
                    rtol=1e-15, atol=1e-15, n_evals=3, passed=True)
    target = TargetCheck(target="quick", passed=True, seed=0, dtype="float64", sizes={"n": 3},
                         results=(r,))
    monkeypatch.setattr(api, "check_recipe", lambda name, **kw: target)


# ---------------------------------------------------------------------------- write_output

def test_writes_atomically_with_the_default_mode(tmp_path):
    out = tmp_path / "m.py"
    write_output(out, "x = 1\n", force=False)
    assert out.read_text() == "x = 1\n"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
    assert leftovers(tmp_path) == []


def test_replacing_a_file_keeps_its_permissions(tmp_path):
    out = tmp_path / "m.py"
    out.write_text("old\n")
    out.chmod(0o640)
    write_output(out, b"new\n", force=True)
    assert out.read_text() == "new\n" and stat.S_IMODE(out.stat().st_mode) == 0o640


def test_an_existing_file_is_refused_without_force_or_overwrite(tmp_path):
    out = tmp_path / "m.py"
    out.write_text("keep\n")
    with pytest.raises(DerivkitError, match="exists; not overwriting"):
        write_output(out, "new\n", force=False)
    write_output(out, "junit\n", force=False, overwrite=True, option="--junit")
    assert out.read_text() == "junit\n"


def test_a_file_that_appears_meanwhile_is_not_overwritten(tmp_path, monkeypatch):
    """The check and the write are apart in time; without --force, the rename never replaces a
    file created in between (a hard link fails if the name exists)."""
    import derivkit.render.outfile as outfile

    out = tmp_path / "m.py"

    def late(path, **kw):
        Path(path).write_text("theirs\n")
        return None

    monkeypatch.setattr(outfile, "check_output", late)
    with pytest.raises(DerivkitError, match="exists"):
        write_output(out, "mine\n", force=False)
    assert out.read_text() == "theirs\n" and leftovers(tmp_path) == []


@pytest.mark.parametrize("failure", [errno.ENOSPC, errno.EFBIG, errno.EIO])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, failure):
    import derivkit.render.outfile as outfile

    out = tmp_path / "m.py"
    out.write_text("old content\n")
    calls = []

    def short_write(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return os.write(fd, bytes(data[:10]))   # a partial write, then the failure
        raise OSError(failure, os.strerror(failure))

    monkeypatch.setattr(outfile.os, "write", short_write)
    with pytest.raises(DerivkitError) as info:
        write_output(out, "x" * 5000, force=True)
    assert os.strerror(failure) in info.value.one_line() and str(out) in info.value.one_line()
    assert out.read_text() == "old content\n"
    assert leftovers(tmp_path) == []


def test_file_size_limit_in_a_real_process(tmp_path):
    """`ulimit -f`: the write fails with EFBIG (Python ignores SIGXFSZ); exit 2, one line, the
    old module intact and no truncated file."""
    out = tmp_path / "grads.py"
    out.write_text("old module\n")
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))\n"
            "from derivkit.cli import main\n"
            f"sys.argv = ['derivkit', 'lower', 'linear', '-o', {str(out)!r}, '--force']\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("derivkit: error: cannot write")
    assert "too large" in proc.stderr.lower()
    assert out.read_text() == "old module\n"
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------- lower -o

def test_lower_refuses_a_dangling_symlink_without_force(runner, tmp_path):
    target = tmp_path / "elsewhere.py"
    link = tmp_path / "out.py"
    link.symlink_to(target)
    err = error_line(runner.invoke(app, ["lower", "linear", "-o", str(link)]))
    assert "symbolic link" in err and "--force" in err
    assert link.is_symlink() and not target.exists()


def test_lower_force_replaces_a_dangling_symlink_itself(runner, tmp_path):
    target = tmp_path / "elsewhere.py"
    link = tmp_path / "out.py"
    link.symlink_to(target)
    result = runner.invoke(app, ["lower", "linear", "-o", str(link), "--force"])
    assert result.exit_code == 0, result.output
    assert not link.is_symlink() and "def vjp_W" in link.read_text()
    assert not target.exists()


@pytest.mark.parametrize("force", [False, True])
def test_lower_never_writes_through_a_symlink_to_a_file(runner, tmp_path, force):
    target = tmp_path / "precious.txt"
    target.write_text("precious\n")
    link = tmp_path / "out.py"
    link.symlink_to(target)
    result = runner.invoke(app, ["lower", "linear", "-o", str(link)] + (["--force"] * force))
    if force:
        assert result.exit_code == 0, result.output
        assert not link.is_symlink() and "def vjp_W" in link.read_text()
    else:
        assert "symbolic link" in error_line(result)
        assert link.is_symlink()
    assert target.read_text() == "precious\n"


def _run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The CLI in its own process, with a timeout: a FIFO opened for writing would block."""
    return subprocess.run([sys.executable, "-m", "derivkit", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize("args", [["lower", "linear", "-o", "pipe"],
                                  ["lower", "linear", "-o", "pipe", "--force"],
                                  ["check", "linear", "--junit", "pipe"]])
def test_a_fifo_is_refused_without_blocking(tmp_path, args):
    os.mkfifo(tmp_path / "pipe")
    proc = _run_cli(args, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "is a FIFO" in proc.stderr
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode)


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_or_device_is_refused(tmp_path, force):
    with pytest.raises(DerivkitError, match="is a folder"):
        check_output(tmp_path, force=force)
    if os.path.exists("/dev/null"):
        with pytest.raises(DerivkitError, match="is a device"):
            write_output("/dev/null", "x", force=force, overwrite=True)


def test_lower_too_long_a_name(runner, tmp_path):
    err = error_line(runner.invoke(app, ["lower", "linear", "-o", str(tmp_path / LONG)]))
    assert "too long" in err.lower()


def test_lower_into_a_folder_that_does_not_exist(runner, tmp_path):
    err = error_line(runner.invoke(app, ["lower", "linear", "-o",
                                         str(tmp_path / "no" / "x.py"), "--force"]))
    assert "does not exist" in err


# ---------------------------------------------------------------------------- check --junit

def test_junit_overwrites_a_regular_file(runner, quick_check, tmp_path):
    out = tmp_path / "derivkit.xml"
    out.write_text("old report\n")
    result = runner.invoke(app, ["check", "quick", "--junit", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<?xml") and leftovers(tmp_path) == []


def test_junit_refuses_a_symlink(runner, quick_check, tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("precious\n")
    link = tmp_path / "derivkit.xml"
    link.symlink_to(target)
    assert "symbolic link" in error_line(runner.invoke(app, ["check", "quick", "--junit",
                                                             str(link)]))
    assert target.read_text() == "precious\n" and link.is_symlink()
    dangling = tmp_path / "dangling.xml"
    dangling.symlink_to(tmp_path / "nowhere.xml")
    error_line(runner.invoke(app, ["check", "quick", "--junit", str(dangling)]))
    assert not (tmp_path / "nowhere.xml").exists()


def test_junit_too_long_a_name(runner, quick_check, tmp_path):
    err = error_line(runner.invoke(app, ["check", "quick", "--junit", str(tmp_path / LONG)]))
    assert "too long" in err.lower()


# ---------------------------------------------------------------------------- recipe folders

def test_recipe_folder_name_too_long(runner, monkeypatch):
    err = error_line(runner.invoke(app, ["list", "--recipes", "b" * 300]))
    assert "too long" in err.lower()
    monkeypatch.setenv("DERIVKIT_RECIPES", "c" * 300)
    err = error_line(runner.invoke(app, ["list"]))
    assert "too long" in err.lower() and "DERIVKIT_RECIPES" in err


@pytest.mark.parametrize("target", ["fifo", "folder", "/dev/null"])
def test_force_never_replaces_a_link_to_something_other_than_a_file(tmp_path, target):
    """`lower -o /dev/stdout --force` as root replaced the system's /dev/stdout link."""
    if target == "fifo":
        dest = tmp_path / "pipe"
        os.mkfifo(dest)
    elif target == "folder":
        dest = tmp_path / "sub"
        dest.mkdir()
    else:
        dest = Path(target)
    link = tmp_path / "out.py"
    link.symlink_to(dest)
    with pytest.raises(DerivkitError, match=r"symbolic link to .*replaces only links to regular files"):
        write_output(link, "x = 1\n", force=True)
    assert link.is_symlink() and os.readlink(link) == str(dest)
    assert leftovers(tmp_path) == []
