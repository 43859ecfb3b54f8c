"""Writing output files (`lower -o FILE`, `check --junit FILE`): atomically, never through a link.

`write_output` writes to a new temporary file in FILE's folder and renames it onto FILE
(`os.replace`), so FILE is either left as it was or holds the whole new content: a write that
fails half-way (a full disk, `ulimit -f`) leaves no truncated file behind. The destination is
looked at with `lstat`, never opened:

- it does not exist: written;
- a regular file: replaced with `force` or `overwrite` (`--junit` always overwrites), otherwise
  refused;
- a symbolic link (dangling or not): refused unless `force`; with `force` the link itself is
  replaced by a regular file and its target is left untouched (derivkit never writes through a
  link);
- anything else (a folder, a FIFO, a device, a socket): always refused (opening a FIFO would
  block).

Every refusal and every OSError (a name too long, permission denied, no space, file too large)
is a `DerivkitError`: one line naming the path and the reason, exit code 2.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from ..errors import DerivkitError


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


#: A file name to suggest for each option that writes a file (a folder was given).
EXAMPLE_NAMES = {"--output": "grads.py", "--junit": "derivkit.xml", "--html": "derivkit.html",
                 "--plot": "loss.svg"}


def check_output(path: str | Path, *, force: bool, overwrite: bool = False,
                 option: str = "--output") -> int | None:
    """Refuse a destination `write_output` would refuse (so a command can fail before long work).
    Returns the permission bits of an existing regular file to keep (None for a new file)."""
    path = Path(path)
    shown = repr(str(path))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise DerivkitError(f"{option} {shown}: {_reason(exc)}") from None
    if st is None:
        parent = path.parent
        try:
            ok = stat.S_ISDIR(os.stat(parent).st_mode)
        except OSError:
            ok = False
        if not ok:
            raise DerivkitError(f"{option} {shown}: the folder {str(parent)!r} does not exist")
        return None
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        if not force:
            raise DerivkitError(f"{option} {shown} is a symbolic link; not writing through it",
                                "pass --force to replace the link itself (its target is left "
                                "alone), or give another path" if option == "--output" else
                                "remove the link or give another path")
        try:
            target = os.stat(path).st_mode
        except OSError:
            target = None   # dangling: replacing the link loses nothing
        if target is not None and not stat.S_ISREG(target):
            raise DerivkitError(f"{option} {shown} is a symbolic link to {_kind(target)}; "
                                "derivkit replaces only links to regular files",
                                "give another path")
        return None
    if stat.S_ISDIR(mode):
        raise DerivkitError(f"{option} {shown} is a folder",
                            f"give a file name, e.g. {EXAMPLE_NAMES.get(option, 'out.txt')}")
    if not stat.S_ISREG(mode):
        raise DerivkitError(f"{option} {shown} is {_kind(mode)}; derivkit writes only regular files",
                            "give another path")
    if not (force or overwrite):
        raise DerivkitError(f"{shown} exists; not overwriting it", "pass --force to overwrite")
    return stat.S_IMODE(mode)


def _kind(mode: int) -> str:
    return ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_output(path: str | Path, data: str | bytes, *, force: bool, overwrite: bool = False,
                 option: str = "--output") -> None:
    """Write `data` (text is UTF-8) to `path` atomically, by the rules in the module docstring.
    `force`: replace an existing file or symbolic link; `overwrite`: replace an existing regular
    file (not a link) without `force`."""
    path = Path(path)
    mode = check_output(path, force=force, overwrite=overwrite, option=option)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    folder = path.parent
    # a short, hidden temporary name: the final name may be near the file-name length limit
    fd, tmp = None, None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:32]}.", suffix=".tmp",
                                   dir=str(folder) if str(folder) else ".")
        if hasattr(os, "fchmod"):      # mkstemp makes it 0600; give it a normal file's mode
            os.fchmod(fd, _default_mode() if mode is None else mode)
        view = memoryview(payload)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        os.close(fd)
        fd = None
        if force or overwrite:
            os.replace(tmp, path)       # replaces a link itself, never its target
        else:
            _place_new(tmp, path, option)
        tmp = None
    except OSError as exc:
        raise DerivkitError(f"cannot write {option} {str(path)!r}: {_reason(exc)}") from None
    finally:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _place_new(tmp: str, path: Path, option: str) -> None:
    """Move `tmp` to `path` only if nothing appeared there meanwhile: a hard link fails if the
    name exists (atomically); file systems without hard links get a last check and a rename."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise DerivkitError(f"{str(path)!r} exists; not overwriting it",
                            "pass --force to overwrite") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK,
                             errno.EXDEV, errno.EACCES, errno.ENOSYS):
            raise
        check_output(path, force=False, option=option)
        os.replace(tmp, path)
        return
    os.unlink(tmp)


__all__ = ["check_output", "write_output"]
