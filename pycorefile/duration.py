"""Go ``time.ParseDuration`` for Corefile option values (``5s``, ``1m30s``, ``250ms``).

CoreDNS reads every duration option with Go's parser, so pycorefile accepts and
rejects exactly the same spellings: a sequence of decimal numbers with a unit
(``ns us µs ms s m h``), an optional sign, ``0`` alone without a unit.
"""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds for a Go duration string; ``ValueError`` with Go's wording if invalid."""
    s = text
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    pos = 0
    total = 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            if re.match(r"\d+\.?\d*|\.\d+", s[pos:]) and not re.search(r"[a-zµμ]", s[pos:]):
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def format_duration(seconds: float) -> str:
    """Go's ``Duration.String`` for the common cases (``5s``, ``1m0s``, ``250ms``)."""
    if seconds == 0:
        return "0s"
    neg = seconds < 0
    seconds = abs(seconds)
    if seconds < 1:
        if seconds >= 1e-3:
            out = f"{seconds * 1e3:g}ms"
        elif seconds >= 1e-6:
            out = f"{seconds * 1e6:g}µs"
        else:
            out = f"{seconds * 1e9:g}ns"
    else:
        h, rem = divmod(seconds, 3600)
        m, s = divmod(rem, 60)
        out = f"{s:g}s"
        if h or m:
            out = f"{int(m)}m" + out
        if h:
            out = f"{int(h)}h" + out
    return ("-" if neg else "") + out
