"""Environment substitution in Corefile tokens: ``{$NAME}`` and ``{%NAME%}``.

CoreDNS substitutes per token, after lexing, so a value never splits into several
tokens (``forward . {$SERVERS}`` with ``SERVERS="1.1.1.1 8.8.8.8"`` gives forward one
argument with a space in it, coredns/coredns#3657).

The exact rules (from the coredns/caddy parser):

* ``{%NAME%}`` references are replaced first, then ``{$NAME}`` ones.
* An unset variable becomes the empty string.
* After each replacement the token is scanned again from its start, so a value
  that itself contains ``{$OTHER}`` is expanded too.
* A reference with no closing delimiter stops the scan and stays literal
  (``{%ADDRESS}`` is kept as written); an empty name (``{$}``, ``{%%}``) stops the
  scan for the rest of the token.
* ``{$NAME}`` ends at the first ``}``: in the Go-template text ``{{$x}}`` the inner
  ``{$x}`` is a (normally unset) variable, so it becomes ``{}``. Write
  ``{{ $x }}`` with spaces.
* Caddy v2's ``{env.NAME}`` and defaults such as ``{$NAME:default}`` are not
  supported: they stay literal / name a variable called ``NAME:default``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["substitute"]

# CoreDNS rescans after every replacement and would loop forever on a variable
# whose value refers to itself (X="{$X}"). We stop after this many replacements
# per token and keep what we have.
_MAX_REPLACEMENTS = 1000


def _replace(s: str, start: str, stop: str, env: Mapping[str, str], budget: list[int]) -> str:
    index = s.find(start)
    while index != -1:
        # The closing delimiter is searched from the opening one (not after it), so
        # for "{%}" the `%}` overlaps the `{%`: that is an empty name.
        end = s.find(stop, index)
        if end == -1:
            break
        if end <= index + len(start):
            return s
        ref = s[index : end + len(stop)]
        s = s.replace(ref, env.get(ref[len(start) : -len(stop)], ""))
        budget[0] -= 1
        if budget[0] <= 0:
            return s
        index = s.find(start)
    return s


def substitute(text: str, env: Mapping[str, str]) -> str:
    """``text`` with ``{%NAME%}`` then ``{$NAME}`` replaced from ``env``."""
    if "{" not in text:
        return text
    budget = [_MAX_REPLACEMENTS]
    if "{%" in text:
        text = _replace(text, "{%", "%}", env, budget)
    if "{$" in text:
        text = _replace(text, "{$", "}", env, budget)
    return text
