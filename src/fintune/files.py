"""Outputs that are all or nothing, and OS errors that read as one line.

Every file fintune writes for a user (predictions, metrics, reports, exports, graph files)
is written under a temporary name in the same folder and renamed into place at the end, so
a killed command leaves either the old file, no file, or the complete new one; never a
file that looks finished and is not. A folder of outputs is swapped in the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from fintune.errors import FintuneError


# Below this much free space after a failed write, the write failed for want of space:
# torch and safetensors report a full disk as their own errors (``unexpected pos``,
# ``SafetensorError``), not as an OSError with ENOSPC.
FULL_BYTES = 1 << 20


def disk_full(path: Path) -> bool:
    """Whether the file system holding ``path`` (or its nearest existing folder) is full."""
    folder = path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free < FULL_BYTES
    except OSError:
        return False


def no_space(path: Path, what: str) -> FintuneError:
    """The one-line error of a write that ran out of space."""
    return FintuneError(f"{what} {path}: no space left on the device; nothing was replaced (earlier files are "
                        "intact). Free some space, or write to another disk")


@contextlib.contextmanager
def space_checked(path: Path, what: str, temporary: Path | None = None) -> Iterator[None]:
    """Turn any error of a write into :func:`no_space` when the disk is full (checked while the
    partial ``temporary`` still holds its space), and remove ``temporary`` either way."""
    try:
        yield
    except Exception as exc:
        full = (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or disk_full(temporary or path)
        if temporary is not None:
            _remove(temporary)
        if full:
            raise no_space(path, what) from None
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def follow_umask(path: Path) -> None:
    """Give ``path`` (and everything under a folder) the modes a new file or folder gets under
    the umask, so a model shared with a team can be read by it, whatever mode a library wrote
    it with (safetensors: 0600)."""
    umask = os.umask(0)  # reading the umask means setting it: put it back at once
    os.umask(umask)
    entries = [path, *path.rglob("*")] if path.is_dir() else [path]
    for entry in entries:
        if entry.is_symlink():
            continue
        entry.chmod((0o777 if entry.is_dir() else 0o666) & ~umask)


def temporary_path(path: Path) -> Path:
    """A name beside ``path`` that only this process uses, and that :func:`cleanup_partials`
    recognizes once the process is gone (never a user's file)."""
    return path.with_name(f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")


_temporary = temporary_path


def writable_parent(path: Path, what: str) -> None:
    """Make ``path``'s folder, or say in one line why it cannot be."""
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise FintuneError(f"{what} {path}: {parent} is a file, not a folder; choose another path")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FintuneError(f"{what} {path}: cannot create the folder {parent} ({exc.strerror})") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FintuneError(f"{what} {path}: the folder {parent} is not writable; choose another path")


@contextlib.contextmanager
def atomic_file(path: str | Path, what: str = "output") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it becomes ``path`` when the block ends without
    an error, and is removed otherwise."""
    path = Path(path)
    if path.is_dir():
        raise FintuneError(f"{what} {path} is a folder; give a file name")
    writable_parent(path, what)
    tmp = _temporary(path)
    try:
        with space_checked(path, what, tmp):
            yield tmp
            follow_umask(tmp)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str, what: str = "output") -> None:
    """Write ``text`` to ``path`` all at once (see :func:`atomic_file`)."""
    with atomic_file(path, what) as tmp:
        tmp.write_text(text, encoding="utf-8")


def replaceable(path: Path, marker: str, what: str) -> None:
    """Refuse to replace a folder that fintune did not write: it must be absent, empty, or
    hold ``marker`` (the file fintune writes into every such folder)."""
    if path.exists() and not path.is_dir():
        raise FintuneError(f"{what} {path} is a file; give a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / marker).exists():
        raise FintuneError(f"{what} {path} holds files fintune did not write (no {marker}); nothing was "
                           "replaced. Choose a new or empty folder")


@contextlib.contextmanager
def atomic_folder(path: str | Path, what: str = "output folder", marker: str = "fintune.json") -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; it replaces ``path`` (absent, empty, or
    a folder fintune wrote: it holds ``marker``) when the block ends without an error, and is
    removed otherwise."""
    path = Path(path)
    replaceable(path, marker, what)
    writable_parent(path, what)
    tmp = _temporary(path)
    tmp.mkdir()
    try:
        with space_checked(path, what, tmp):
            yield tmp
            follow_umask(tmp)
            swap_in(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_outputs(folder: str | Path, last: str, what: str = "output folder",
                   stale: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield an empty temporary folder; when the block ends without an error, each file in it is
    renamed into ``folder`` (kept, with whatever else it holds), ``last`` after all others, so a
    folder whose ``last`` file is new is complete. Names in ``stale`` (what such a block may
    write) that this one did not write are removed, so no file of an earlier run stays beside
    the new ones. On an error nothing reaches ``folder``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FintuneError(f"{what} {folder} is a file; give a folder")
    writable_parent(folder, what)
    tmp = _temporary(folder)
    tmp.mkdir()
    try:
        with space_checked(folder, what, tmp):
            yield tmp
        follow_umask(tmp)
        folder.mkdir(exist_ok=True)
        names = sorted(e.name for e in tmp.iterdir())
        for name in [n for n in names if n != last] + [n for n in names if n == last]:
            target = folder / name
            if target.is_dir() and (tmp / name).is_dir():
                swap_in(tmp / name, target)
            else:
                os.replace(tmp / name, target)
        for name in set(stale) - set(names):
            (folder / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_RENAME_EXCHANGE = 2  # linux/fs.h: swap two paths in one step


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` atomically (Linux renameat2 RENAME_EXCHANGE); False where
    the OS or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return done == 0


def swap_in(new: Path, path: Path) -> None:
    """Put the folder ``new`` where ``path`` is, in one step where the OS can (the two are
    exchanged, then the old one, now at ``new``, is removed), so a kill at any moment leaves the
    old folder or the new one at ``path``, never nothing. Elsewhere the old one is moved aside
    first and removed only once the new one is in place."""
    if path.exists() and _exchange(new, path):
        shutil.rmtree(new, ignore_errors=True)
        return
    old = None
    if path.exists():
        old = _temporary(path)
        os.replace(path, old)
    os.replace(new, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def cleanup_partials(folder: Path) -> list[Path]:
    """Remove what killed processes left in ``folder``: temporary names of processes that no
    longer run. Returns what was removed."""
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        pid = _owner(entry.name)
        if pid is None or _alive(pid):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


# Only fintune's own temporary names: a dot, the name, then ".partial-PID-HEX" (this module)
# or ".tmp-PID" (checkpoints). A user's file never matches, so it is never removed.
_TEMPORARY = re.compile(r"^\..+(?:\.partial-(\d+)-[0-9a-f]{8}|\.tmp-(\d+))$")


def _owner(name: str) -> int | None:
    match = _TEMPORARY.match(name)
    return int(match.group(1) or match.group(2)) if match else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe_os_error(exc: OSError) -> str:
    """An OS error as one line that names the path."""
    if exc.errno == errno.ENOSPC:
        return str(no_space(Path(exc.filename or "?"), "writing"))
    where = f" {exc.filename}" if exc.filename else ""
    reason = exc.strerror or type(exc).__name__
    return f"cannot use{where}: {reason}"


def fintune_home() -> Path:
    """fintune's cache: ``$FINTUNE_HOME``, default ``$XDG_CACHE_HOME/fintune`` (``~/.cache/fintune``)."""
    base = os.environ.get("FINTUNE_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fintune")
    return Path(base)
