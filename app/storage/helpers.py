"""Turn client-supplied storage keys into safe relative keys (the path rules of ``docs/api.md``).

A key is refused with :class:`AccessDeniedError` (403) when it is absolute, has a ``..``
component, carries a NUL byte, or hides either behind percent-encoding or backslashes. The
providers then check symlinks against the real root.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
from pathlib import Path
from urllib.parse import unquote

from app.core.exceptions import AccessDeniedError, InvalidRequestError, NotFoundError

_MAX_DECODE_ROUNDS = 4
MAX_KEY_LENGTH = 1024
#: Longest file name of one path component (``NAME_MAX`` on Linux); longer ones make ``stat`` fail.
MAX_NAME_BYTES = 255


def _decoded_variants(key: str) -> list[str]:
    variants = [key]
    current = key
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = unquote(current)
        if decoded == current:
            break
        variants.append(decoded)
        current = decoded
    return variants


def _is_hostile(candidate: str) -> bool:
    if "\x00" in candidate:
        return True
    if os.path.isabs(candidate) or posixpath.isabs(candidate) or ntpath.isabs(candidate):
        return True
    if candidate.startswith(("/", "\\", "~")) or ntpath.splitdrive(candidate)[0]:
        return True
    parts = candidate.replace("\\", "/").split("/")
    return any(part == ".." for part in parts)


def normalize_key(key: str) -> str:
    """Validate ``key`` and return it as ``a/b/c`` (no empty or ``.`` parts).

    Raises
    ------
    AccessDeniedError
        For absolute keys, ``..`` components (also percent-encoded or with backslashes), NUL.
    InvalidRequestError
        For an empty or over-long key, a name over ``MAX_NAME_BYTES`` or a lone surrogate.
    """
    if not isinstance(key, str) or not key.strip():
        raise InvalidRequestError("file_path is required")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidRequestError(f"file_path longer than {MAX_KEY_LENGTH} characters")
    if any(_is_hostile(variant) for variant in _decoded_variants(key)):
        raise AccessDeniedError()
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if not parts:
        raise InvalidRequestError("file_path is required")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as error:  # a lone surrogate, e.g. from a JSON "\\ud800" escape
        raise InvalidRequestError("file_path is not valid text") from error
    if any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in parts):
        raise InvalidRequestError(f"file_path has a name longer than {MAX_NAME_BYTES} bytes")
    return "/".join(parts)


def display_name(key: str) -> str:
    """Return the base name of a key, made safe to echo in an error message."""
    name = key.replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(c if c.isprintable() else "?" for c in name)
    return printable[:200]


def file_not_found(key: str) -> NotFoundError:
    """Build the contract's 404 for a missing key: ``File not found: <basename>``."""
    return NotFoundError(f"File not found: {display_name(key)}")


def resolve_under_root(root: Path, key: str) -> Path:
    """Join a normalised key to ``root`` and refuse anything whose real path leaves it.

    Symlinks are followed: a link inside the root that points outside is refused (403); a
    symlink loop is a missing file (404).
    """
    root_real = root.resolve()
    candidate = root_real / key
    try:
        real = candidate.resolve()
    except (RuntimeError, OSError) as error:  # a symlink loop (RuntimeError before Python 3.13)
        raise file_not_found(key) from error
    if real != root_real and not real.is_relative_to(root_real):
        raise AccessDeniedError()
    return real
