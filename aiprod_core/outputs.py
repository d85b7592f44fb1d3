"""Output files: checked before the work starts, written atomically, with the permissions any other tool gives.

A command that will write a file checks its name, extension and folder before it loads a model, so a bad path
costs a second, not a whole clip. Writes go to a temporary name in the same folder and are renamed into place,
so a crash never leaves half a file; the file then gets mode 0666 less the process umask, as `open()` would
give it (mkstemp's temporary file is 0600, which a web server or another user could not read).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class OutputError(ValueError):
    """An output path that cannot be written, found before the work: what was wrong and what to give instead."""


class WriteError(OSError):
    """A write that failed (disk full, no permission): one line that names the file, not the temporary one."""

    def __init__(self, path: str | os.PathLike, cause: OSError) -> None:
        reason = cause.strerror or str(cause) or type(cause).__name__
        hint = {errno.ENOSPC: "free some space or write elsewhere", errno.EDQUOT: "free some space or write elsewhere",
                errno.EFBIG: "raise the file-size limit (ulimit -f) or write a shorter clip",
                errno.EACCES: "write to a folder you may write to", errno.EPERM: "write to a folder you may write to",
                errno.EROFS: "write to a folder on a writable disk"}.get(cause.errno, "check the folder and the disk")
        super().__init__(cause.errno, f"could not write {path}: {reason}; {hint}")
        self.path = Path(path)

    def __str__(self) -> str:
        return self.strerror


def current_umask() -> int:
    """The process umask. Linux reports it in /proc, which is safe beside other threads; elsewhere it is read
    by setting it and putting it back at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """Yields a temporary path in `path`'s folder (created if missing) to write the whole file to; on success
    it is synced, given the umask's mode and renamed to `path`, on failure removed. `suffix` keeps an
    extension that a writer reads the format from. Any OSError becomes a WriteError that names `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise WriteError(path, e) from e
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(path, e) from e
        raise


def check_output_file(path: str | os.PathLike, extensions: Sequence[str], what: str = "output") -> Path:
    """Refuse, before any work, a file path that names a folder, has no extension or one not in
    `extensions` (lower case, with the dot), or lies in a folder this process cannot write to."""
    text = os.fspath(path)
    path = Path(text)
    example = f"aiprod{extensions[0]}"
    if not text:
        raise OutputError(f"{what} is empty; name the file to write, e.g. {example}")
    if path.is_dir() or text.endswith(("/", os.sep)):
        raise OutputError(f"{what} {text} is a folder; name a file in it, e.g. {path / example}")
    ext = path.suffix.lower()
    if not ext:
        raise OutputError(f"{what} {text} has no extension, and the extension picks the format; use one of "
                          f"{', '.join(extensions)}, e.g. {text}{extensions[0]}")
    if ext not in extensions:
        raise OutputError(f"{what} {text}: unknown extension {ext!r}; use one of {', '.join(extensions)}, "
                          f"e.g. {path.with_suffix(extensions[0])}")
    if path.exists() and not path.is_file():
        raise OutputError(f"{what} {text} exists and is not a regular file; name a new file or a file to replace")
    _check_writable(path.parent, what, text)
    return path


def check_output_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Refuse, before any work, a folder path that is a file or that this process cannot create or write in."""
    text = os.fspath(path)
    if not text:
        raise OutputError(f"{what} is empty; name a folder to write in")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {text} is a file, not a folder; name a folder (it is created if missing)")
    _check_writable(path, what, text)
    return path


def _check_writable(folder: Path, what: str, text: str) -> None:
    """The folder, or the nearest ancestor it would be created in, takes a new file: tried for real, since
    permission bits do not tell (root ignores them; a read-only disk or an ACL refuses regardless)."""
    folder = Path(os.path.abspath(folder))
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{what} {text}: {existing} is a file, so no folder can be made there; pick another folder")
    try:
        if existing == folder:
            fd, probe = tempfile.mkstemp(prefix=".aiprod-write-check.", dir=existing)
            os.close(fd)
            os.unlink(probe)
        else:
            os.rmdir(tempfile.mkdtemp(prefix=".aiprod-write-check.", dir=existing))
    except OSError as e:
        where = f"write into {existing}" if existing == folder else f"create {folder} in {existing}"
        raise OutputError(f"{what} {text}: cannot {where} ({e.strerror or e}); pick a folder you can write to, "
                          "or change its permissions") from e
