"""File helpers shared by every stage: atomic writes and content hashes."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """Write to a temporary file beside ``path``, fsync it, then rename it over ``path``.

    On any error the temporary file is removed and ``path`` is left as it was; a read-only
    ``path`` is refused, never replaced.
    """
    target = Path(path)
    refuse_read_only(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
        open_kwargs.setdefault("newline", "")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # read-only or forbidden folder: name the file the user asked for
        exc.filename = str(target)
        raise
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError) and exc.filename in (None, tmp_name):
            exc.filename, exc.filename2 = str(target), None  # name the file the user knows, not the temporary one
        raise
    _fsync_dir(target.parent)


def remove_temp_files(folder: str | os.PathLike[str]) -> int:
    """Remove the temporary files :func:`atomic_write` left in ``folder`` when its process was
    killed mid-write (call it only while no other process writes there); how many."""
    removed = 0
    for leftover in Path(folder).glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed += 1
    return removed


def refuse_read_only(path: Path) -> None:
    """Raise :class:`InputError` naming ``path`` when it exists and is read-only (a rename
    would replace it silently)."""
    from .errors import InputError

    with contextlib.suppress(OSError):
        if not path.stat().st_mode & stat.S_IWUSR:
            raise InputError(f"{path}: the output file is read-only; make it writable (chmod u+w) or choose another --out")


@contextlib.contextmanager
def exclusive_output(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on writing ``path`` (a sibling ``.<name>.lock`` file, released
    when the process ends, even killed). Raises :class:`InputError` naming ``path`` when
    another process holds it, or when ``path`` exists and is read-only."""
    from .errors import InputError

    target = Path(path)
    refuse_read_only(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.with_name(f".{target.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{target}: another framecode process is writing this file; "
                             "wait for it to finish or choose another --out") from None
        if not lock.exists() or os.stat(lock).st_ino != os.fstat(fd).st_ino:  # removed by a finishing holder
            raise InputError(f"{target}: another framecode process has just written this file; run the command again")
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
    finally:
        os.close(fd)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


# What an errno means to a user, and what they can do about it.
_OS_CAUSES = {
    errno.ENOSPC: ("no space left on device", "free some space and run the command again"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or raise the quota and run the command again"),
    errno.EROFS: ("read-only file system", "write to a folder on a writable disk"),
    errno.EACCES: ("permission denied", "check the permissions of the file and its folder"),
    errno.EPERM: ("operation not permitted", "check the permissions of the file and its folder"),
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.ENOTDIR: ("a part of the path is not a folder", "check the path"),
    errno.EISDIR: ("is a folder, not a file", "pass a file"),
    errno.EIO: ("input/output error", "check the disk and run the command again"),
    errno.EMFILE: ("too many open files", "close other programs or raise the limit (ulimit -n)"),
}


def os_error_message(exc: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """One line for a failed file operation: the path, the cause in words and what to do."""
    where = exc.filename if exc.filename is not None else path
    cause, advice = _OS_CAUSES.get(exc.errno, ((exc.strerror or str(exc) or type(exc).__name__).lower(), "check the file and its folder"))
    return f"{where if where is not None else '(file not known)'}: {cause}; {advice}"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
