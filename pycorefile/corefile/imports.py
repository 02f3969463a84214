"""Finding the files an ``import`` names, the way CoreDNS does.

CoreDNS resolves ``import PATTERN`` relative to the directory of the file that
contains the ``import`` token, allows a single wildcard, warns (and imports
nothing) when a glob matches nothing, and errors when a plain path does not
exist. Go's ``filepath.Glob`` rules apply: ``*`` matches any run of characters
except ``/`` (dot-files included), ``?`` one character, ``\\`` escapes the next
character, and matches come in byte order per directory.
"""

from __future__ import annotations

import logging
import os
import re

__all__ = ["ImportFailed", "clean_path", "glob", "import_pattern_path", "read_corefile", "resolve"]

log = logging.getLogger("pycorefile.corefile")


class ImportFailed(Exception):
    """A failed import; the message is CoreDNS's (without FILE:LINE)."""


def clean_path(path: str) -> str:
    """Go's ``filepath.Clean`` for an absolute or relative POSIX path."""
    cleaned = os.path.normpath(path)
    # POSIX lets normpath keep a leading "//"; Go collapses it.
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def import_pattern_path(pattern: str, importing_file: str) -> str:
    """The absolute glob pattern for ``pattern`` imported from ``importing_file``."""
    if os.path.isabs(pattern):
        return pattern
    base = os.path.dirname(os.path.abspath(importing_file))
    return clean_path(os.path.join(base, pattern))


def _has_meta(path: str) -> bool:
    return any(c in path for c in "*?[\\")


def _compile(pattern: str) -> re.Pattern[str]:
    """A regex for one path element of a Go ``filepath.Match`` pattern."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i == len(pattern):
                raise ImportFailed("syntax error in pattern")
            out.append(re.escape(pattern[i]))
        elif c == "[":
            # Both brackets in one pattern are refused before we get here, so an
            # opening bracket is always unclosed: Go's ErrBadPattern.
            raise ImportFailed("syntax error in pattern")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _glob_dir(directory: str, pattern: str) -> list[str]:
    regex = _compile(pattern)
    if not os.path.isdir(directory):
        return []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    # Go sorts the names as byte strings.
    names.sort(key=lambda n: n.encode("utf-8", "surrogateescape"))
    return [os.path.join(directory, n) for n in names if regex.match(n)]


def glob(pattern: str) -> list[str]:
    """Go's ``filepath.Glob``: the paths matching ``pattern``, no error for none."""
    if not _has_meta(pattern):
        return [pattern] if os.path.lexists(pattern) else []
    for part in pattern.split("/"):
        _compile(part)  # a malformed pattern is an error even when nothing matches
    directory, base = os.path.split(pattern)
    directory = directory or "."
    if not _has_meta(directory):
        return _glob_dir(directory, base)
    found: list[str] = []
    for d in glob(directory):
        found.extend(_glob_dir(d, base))
    return found


def resolve(pattern: str, importing_file: str) -> list[str]:
    """The files to import for ``pattern`` (already env-substituted).

    Raises :class:`ImportFailed` with CoreDNS's message on a bad glob, a missing
    plain file, or a malformed pattern. An unmatched glob only logs a warning.
    """
    glob_pattern = import_pattern_path(pattern, importing_file)
    # CoreDNS refuses patterns that could expand too much (caddy issue #2096). The
    # check is on the joined absolute pattern, directory included.
    if (
        glob_pattern.count("*") > 1
        or glob_pattern.count("?") > 1
        or ("[" in glob_pattern and "]" in glob_pattern)
    ):
        raise ImportFailed(
            f"Glob pattern may only contain one wildcard (*), but has others: {glob_pattern}"
        )
    try:
        matches = glob(glob_pattern)
    except ImportFailed as exc:
        raise ImportFailed(f"Failed to use import pattern {pattern}: {exc}") from None
    if not matches:
        if any(c in glob_pattern for c in "*?[]"):
            log.warning("No files matching import glob pattern: %s", pattern)
        else:
            raise ImportFailed(f"File to import not found: {pattern}")
    return matches


def _go_errno(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def read_corefile(path: str) -> str:
    """The text of an imported file (UTF-8; undecodable bytes become U+FFFD)."""
    if os.path.isdir(path):
        raise ImportFailed(f"Could not import {path}: is a directory")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ImportFailed(f"Could not import {path}: open {path}: {_go_errno(exc)}") from None
    return data.decode("utf-8", "replace")
