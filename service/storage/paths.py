"""Where a sample file may be: one rule for the API (at registration) and the worker (at read time).

A sample URI is an absolute path, or a ``file:`` URI whose host is empty or ``localhost`` (RFC 8089:
both name this machine; any other host, a port or a user is refused, as is every other scheme). A
``file:`` URI is percent-decoded exactly once, segment by segment; a plain path is taken literally.
A ``.`` or ``..`` segment, a segment that decodes to one holding ``/`` or NUL, control characters, a
query or a fragment are refused, never normalised away. The file's folder is then resolved (symbolic
links followed) and must lie under one of the data roots, themselves resolved; the file itself must
not be a symbolic link.

Reading and deleting open the folder from its root one component at a time without following links,
then the file without following a link, so a link planted after the check (the file, or a folder
above it) fails instead of being followed. Every refusal carries one of the generic reasons below:
never a resolved path, never a digest.
"""

import errno
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

UNSUPPORTED = "not an absolute path or a file:// URI without a host"
NOT_CANONICAL = "the path has '.' or '..' segments, encoded separators or control characters"
OUTSIDE = "outside the data roots or a symbolic link"
MISSING = "file missing"
NOT_A_FILE = "not a regular file"
UNREADABLE = "file unreadable"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO must not hang the reader
_MAX_OPEN_FOLDERS = 64


class SamplePathError(ValueError):
    """A sample URI refused; the message is one of this module's generic reasons."""


def literal_path(uri: str) -> str:
    """The absolute path a sample URI names, decoded once; every segment checked, nothing normalised."""
    if _CONTROL.search(uri):
        raise SamplePathError(NOT_CANONICAL)
    if uri.startswith("/"):
        segments = uri.split("/")
    else:
        parts = urlsplit(uri)
        host_ok = parts.netloc.lower() in ("", "localhost")
        if parts.scheme.lower() != "file" or not host_ok or "?" in uri or "#" in uri or not parts.path.startswith("/"):
            raise SamplePathError(UNSUPPORTED)
        try:
            segments = [unquote(s, errors="strict") for s in parts.path.split("/")]
        except UnicodeDecodeError:
            raise SamplePathError(NOT_CANONICAL) from None
    if any(s in (".", "..") or "/" in s or "\x00" in s for s in segments):
        raise SamplePathError(NOT_CANONICAL)
    return "/" + "/".join(s for s in segments if s)


class SampleFiles:
    """The sample files below the data roots, for one batch of URIs (a registration call, one load).

    Each folder is resolved, and for reading opened without following links, once per batch; use it
    in a ``with`` block so the folders it opened are closed.
    """

    def __init__(self, roots: Sequence[Path]) -> None:
        self._roots = [os.path.realpath(root) for root in roots]
        self._resolved: dict[str, str] = {}  # folder as written -> resolved folder
        self._open: dict[str, int] = {}  # resolved folder -> descriptor opened below its root

    def __enter__(self) -> "SampleFiles":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()

    def locate(self, uri: str) -> tuple[str, str]:
        """(resolved folder under a root, file name) of a sample URI; the file need not exist."""
        folder, name = os.path.split(literal_path(uri))
        real = self._resolved.get(folder)
        if real is None:
            real = self._resolved[folder] = os.path.realpath(folder)
        if not name or self._root_of(real) is None:
            raise SamplePathError(OUTSIDE)
        return real, name

    def check(self, uri: str) -> None:
        """At registration: the URI is acceptable and names an existing regular file (not a link)."""
        folder, name = self.locate(uri)
        try:
            mode = os.lstat(os.path.join(folder, name)).st_mode
        except (FileNotFoundError, NotADirectoryError):
            raise SamplePathError(MISSING) from None
        except OSError:
            raise SamplePathError(UNREADABLE) from None
        if stat.S_ISLNK(mode):
            raise SamplePathError(OUTSIDE)
        if not stat.S_ISREG(mode):
            raise SamplePathError(NOT_A_FILE)

    def read(self, uri: str) -> bytes:
        """At read time: locate again, then read the file without following any link below the root."""
        folder, name = self.locate(uri)
        try:
            fd = os.open(name, _FILE, dir_fd=self._folder(folder))
        except OSError as err:
            raise SamplePathError(_reason(err)) from None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise SamplePathError(NOT_A_FILE)
            try:
                return fh.read()
            except OSError:
                raise SamplePathError(UNREADABLE) from None

    def remove(self, uri: str) -> bool:
        """Delete a sample's file (never through a link); False when there is no regular file to delete."""
        folder, name = self.locate(uri)
        fd = self._folder(folder)
        try:
            if not stat.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                return False
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            return False
        return True

    def _root_of(self, real: str) -> str | None:
        return next((root for root in self._roots if (real + "/").startswith(root.rstrip("/") + "/")), None)

    def _folder(self, real: str) -> int:
        """A descriptor of a resolved folder, opened from its root one component at a time, no links."""
        if real in self._open:
            return self._open[real]
        if len(self._open) >= _MAX_OPEN_FOLDERS:
            self.close()
        root = self._root_of(real)
        fd = -1
        try:
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            for name in real[len(root) :].split("/"):
                if name:
                    inner = os.open(name, _DIRECTORY, dir_fd=fd)
                    os.close(fd)
                    fd = inner
        except OSError as err:
            if fd >= 0:
                os.close(fd)
            raise SamplePathError(_reason(err)) from None
        self._open[real] = fd
        return fd


def _reason(err: OSError) -> str:
    if isinstance(err, FileNotFoundError):
        return MISSING
    if isinstance(err, NotADirectoryError) or err.errno == errno.ELOOP:  # a link where O_NOFOLLOW forbids one
        return OUTSIDE
    return UNREADABLE
