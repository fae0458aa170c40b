"""Where a sample file may be: one rule for the API (at registration) and the worker (at read time).

A sample URI is an absolute path, or a ``file:`` URI whose host is empty or ``localhost`` (RFC 8089:
both name this machine; any other host, a port or a user is refused, as is every other scheme). A
``file:`` URI is percent-decoded exactly once, segment by segment; a plain path is taken literally.
A ``.`` or ``..`` segment, a segment that decodes to one holding ``/`` or NUL, control characters, a
query or a fragment are refused, never normalised away. The path is then resolved (symbolic links
followed) and must lie under one of the data roots, themselves resolved.

Reading and deleting walk from the resolved root one component at a time without following links,
so a link planted after the check (the file, or a folder above it) fails instead of being followed.
Every refusal carries one of the generic reasons below: never a resolved path, never a digest.
"""

import errno
import os
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

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO must not hang the reader


class SamplePathError(ValueError):
    """A sample URI refused; the message is one of this module's generic reasons."""


def canonical_sample_path(uri: str, *, roots: Sequence[Path]) -> tuple[Path, Path]:
    """(resolved root, resolved path under it) for a sample URI; the file need not exist."""
    real = Path(os.path.realpath(_literal_path(uri)))
    for root in roots:
        real_root = Path(os.path.realpath(root))
        if real.is_relative_to(real_root):
            return real_root, real
    raise SamplePathError(OUTSIDE)


def check_sample_file(uri: str, *, roots: Sequence[Path]) -> None:
    """At registration: the URI is acceptable and names an existing regular file under a root."""
    _, real = canonical_sample_path(uri, roots=roots)
    try:
        mode = os.lstat(real).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise SamplePathError(MISSING) from None
    except OSError:
        raise SamplePathError(UNREADABLE) from None
    if stat.S_ISLNK(mode):  # a link realpath could not resolve (a loop)
        raise SamplePathError(OUTSIDE)
    if not stat.S_ISREG(mode):
        raise SamplePathError(NOT_A_FILE)


def read_sample(uri: str, *, roots: Sequence[Path]) -> bytes:
    """At read time: canonicalise again, then read the file without following any link below the root."""
    root, real = canonical_sample_path(uri, roots=roots)
    parts = real.relative_to(root).parts
    if not parts:
        raise SamplePathError(NOT_A_FILE)
    parent = _open_parent(root, parts)
    try:
        fd = os.open(parts[-1], _FILE, dir_fd=parent)
    except OSError as err:
        raise SamplePathError(_reason(err)) from None
    finally:
        os.close(parent)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise SamplePathError(NOT_A_FILE)
        try:
            return fh.read()
        except OSError:
            raise SamplePathError(UNREADABLE) from None


def remove_sample(uri: str, *, roots: Sequence[Path]) -> bool:
    """Delete a sample's file (never through a link); False when there is no regular file to delete."""
    root, real = canonical_sample_path(uri, roots=roots)
    parts = real.relative_to(root).parts
    if not parts:
        return False
    parent = _open_parent(root, parts)
    try:
        if not stat.S_ISREG(os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode):
            return False
        os.unlink(parts[-1], dir_fd=parent)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(parent)


def _literal_path(uri: str) -> Path:
    """The absolute path a URI names, decoded once; every segment checked, nothing normalised."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in uri):
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
    return Path("/", *(s for s in segments if s))


def _open_parent(root: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of the folder holding ``parts[-1]``, opened from ``root`` one folder at a time, no links."""
    fd = -1
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        for name in parts[:-1]:
            inner = os.open(name, _DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        return fd
    except OSError as err:
        if fd >= 0:
            os.close(fd)
        raise SamplePathError(_reason(err)) from None


def _reason(err: OSError) -> str:
    if isinstance(err, FileNotFoundError):
        return MISSING
    if isinstance(err, NotADirectoryError) or err.errno == errno.ELOOP:  # a link where O_NOFOLLOW forbids one
        return OUTSIDE
    return UNREADABLE
