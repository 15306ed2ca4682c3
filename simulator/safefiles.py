"""Open files for writing without ever following a link: the one way wasim writes a file.

wasim runs inside projects people clone. A clone can hold `.wasim -> ../elsewhere` or a
`history.jsonl` that links to a shell start-up file; following either would let the project
choose which of the user's files wasim appends to. So every folder on the way is opened
with O_NOFOLLOW relative to the one before (no gap between check and use), the file itself
with O_NOFOLLOW and O_CREAT, and a link anywhere is refused with a one-line error naming it.

The folders above the current one are trusted (the person chose to work there), as is the
start of an absolute path they share with it; everything below is checked. So is a folder
link the system made (macOS's /tmp -> private/tmp): one in a folder owned by root that no one
else may change, when wasim does not run as root. A hard link is not a redirection the
project can make to a file it does not own, so it is allowed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from simulator.errors import WasimError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO put in the file's place fails, never hangs
# openat() and O_NOFOLLOW: every POSIX system wasim runs on. Elsewhere (Windows) each part is
# checked with lstat before the open instead.
_AT = bool(_NOFOLLOW) and os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd


def _shown(path: str | os.PathLike[str]) -> str:
    """A path as an error may show it: control characters made visible."""
    return repr(os.fspath(path))[1:-1]


def link_refused(link: Path, what: str) -> WasimError:
    """The one error for a link found where wasim writes."""
    try:
        target = f" (it points to {_shown(os.readlink(link))})"
    except OSError:
        target = ""
    return WasimError(f"refusing to write {what} through a link{target}", where=_shown(link),
                      hint="wasim never follows a link when it writes, so a cloned project "
                           "cannot send its files elsewhere; remove the link or name the "
                           "real file.")


def system_folder(info: os.stat_result, euid: int | None = None) -> bool:
    """Whether links in a folder with this stat are the system's: owned by root, writable by
    no one else, and wasim is not root (as root, a clone's links are root's too)."""
    euid = os.geteuid() if euid is None and hasattr(os, "geteuid") else euid
    return bool(euid) and info.st_uid == 0 and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _split(path: Path) -> tuple[Path, list[str]]:
    """Where the checked walk starts (a trusted folder) and the parts below it."""
    if not path.is_absolute():
        return Path("."), list(path.parts)
    parts = path.parts
    trusted = 1  # the root
    bases = [Path.cwd()]
    logical = os.environ.get("PWD")
    if logical and Path(logical).is_absolute():
        try:
            if os.path.samefile(logical, "."):
                bases.append(Path(logical))
        except OSError:
            pass  # PWD names no folder: only the physical one is trusted
    for base in bases:
        common = 0
        for mine, theirs in zip(parts[:-1], base.parts, strict=False):
            if mine != theirs:
                break
            common += 1
        trusted = max(trusted, common)
    return Path(*parts[:trusted]), list(parts[trusted:])


def check_no_links(path: Path, what: str) -> None:
    """Raise WasimError if any existing part of `path` below its trusted start is a link."""
    start, parts = _split(path)
    current = start
    for index, part in enumerate(parts):
        parent, current = current, current / part
        try:
            info = os.lstat(current)
        except OSError:
            return  # the rest does not exist yet: it will be created, not followed
        if stat.S_ISLNK(info.st_mode):
            if index < len(parts) - 1 and system_folder(os.stat(parent)):
                continue
            raise link_refused(current, what)


def open_to_write(path: Path, what: str, *, append: bool = False, exclusive: bool = False,
                  mode: int = 0o666, readable: bool = False) -> int:
    """A file descriptor for writing `path`, creating it and its folders, never via a link.

    `append` adds to the end (else the file is truncated), `exclusive` refuses a file that
    exists (FileExistsError), `readable` opens it for reading too. Raises WasimError for a
    link (naming it), OSError for anything else (strerror "not a regular file" for a FIFO,
    a device or a folder in the file's place).
    """
    if not path.name or path.name in (".", ".."):
        raise IsADirectoryError(errno.EISDIR, "a folder, not a file", str(path))
    flags = (os.O_RDWR if readable else os.O_WRONLY) | os.O_CREAT | _NOFOLLOW | _CLOEXEC \
        | _NONBLOCK | (os.O_APPEND if append else 0) | (os.O_EXCL if exclusive else 0)
    start, parts = _split(path)
    folders, leaf = parts[:-1], parts[-1]
    if not _AT:
        return _open_checked(path, what, flags, mode, append)
    here = os.open(start, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    walked = start
    try:
        for name in folders:
            walked = walked / name
            inner = _enter(here, name, walked, what)
            os.close(here)
            here = inner
        try:
            fd = os.open(leaf, flags, mode, dir_fd=here)
        except OSError:
            if _is_link(leaf, here):  # ELOOP on Linux and macOS, EMLINK on FreeBSD
                raise link_refused(walked / leaf, what) from None
            raise
    finally:
        os.close(here)
    return _regular(fd, path, append)


def _enter(here: int, name: str, walked: Path, what: str) -> int:
    """The folder `name` inside `here` opened without following a link (made if missing)."""
    for tries_left in (1, 0):
        try:
            return os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=here)
        except FileNotFoundError:
            if not tries_left:
                raise
            # FileExistsError: made at the same moment by another run; open it as it is.
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=here)
        except OSError as exc:
            if _is_link(name, here):
                if system_folder(os.fstat(here)):
                    return os.open(name, os.O_RDONLY | _DIRECTORY | _CLOEXEC, dir_fd=here)
                raise link_refused(walked, what) from None
            if exc.errno == errno.ENOTDIR:
                raise NotADirectoryError(errno.ENOTDIR, f"{_shown(walked)} is not a folder",
                                         str(walked)) from None
            raise
    raise AssertionError("unreachable")  # the second try returns or raises


def _is_link(name: str, folder: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=folder).st_mode)
    except OSError:
        return False


def _open_checked(path: Path, what: str, flags: int, mode: int, append: bool) -> int:
    """The fallback without openat(): lstat every part, then open (a small race remains)."""
    check_no_links(path, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_no_links(path, what)
    return _regular(os.open(path, flags | getattr(os, "O_BINARY", 0), mode), path, append)


def _regular(fd: int, path: Path, append: bool) -> int:
    """`fd` if it is a regular file (truncated unless appending); closed and refused if not."""
    try:
        info = os.fstat(fd)
        # A FIFO, a terminal, /dev/full: opening works, writing fails or blocks later.
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if not append and info.st_size:
            os.ftruncate(fd, 0)  # only now: O_TRUNC would have emptied a device or a FIFO
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_file(path: Path, data: bytes, what: str, *, exclusive: bool = False) -> None:
    """Write `data` as the whole of `path` (created with its folders), never via a link.

    Raises WasimError for a link, OSError otherwise (FileExistsError with `exclusive`).
    """
    fd = open_to_write(path, what, exclusive=exclusive)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
