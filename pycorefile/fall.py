"""Fallthrough: when a plugin that has no answer passes the query on.

CoreDNS's ``plugin/pkg/fall``. A plugin such as ``template`` or ``hosts`` normally
owns every name in its zones: with no answer it replies itself (SERVFAIL, NXDOMAIN
or NODATA, depending on the plugin). ``fallthrough`` relaxes that: with no zones it
applies to every name (the root zone ``.``); with zones it only applies to query
names under them. Zones are normalised like server-block keys (lower-cased, fully
qualified, a CIDR becomes its reverse zones); an argument that cannot be normalised
is silently dropped, as CoreDNS does.

Zone matching is CoreDNS's ``plugin.Zones.Matches``: label-wise suffix comparison,
the longest matching zone wins. It lives here because fallthrough is its main user;
plugins that scope themselves to zones (``template``) use the same helpers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .corefile.keys import normalize_name, split_host_port, split_transport

__all__ = ["Fallthrough", "is_subdomain", "longest_zone", "normalize_zones"]


def normalize_zones(args: Iterable[str]) -> tuple[str, ...]:
    """CoreDNS's ``plugin.Host(arg).NormalizeExact()`` over every argument.

    A scheme (``dns://``) and a port are stripped, a CIDR (``10.0.0.0/8``) becomes
    its reverse zone(s), the rest is lower-cased and fully qualified. Arguments
    that are not valid zones are dropped without an error.
    """
    out: list[str] = []
    for arg in args:
        _, rest = split_transport(arg)
        try:
            hosts, _ = split_host_port(rest)
        except ValueError:
            continue
        out.extend(normalize_name(h) for h in hosts)
    return tuple(out)


def is_subdomain(zone: str, name: str) -> bool:
    """Is ``name`` equal to or below ``zone``? Both lower-cased FQDNs.

    Labels are compared, not characters: ``a\\.example.`` is one label and so is
    *not* below ``example.`` (miekg/dns ``IsSubDomain``).
    """
    if zone == ".":
        return True
    if not name.endswith(zone):
        return False
    cut = len(name) - len(zone)
    if cut == 0:
        return True
    if name[cut - 1] != ".":
        return False
    # The dot before the zone must not be escaped: count the backslashes before it.
    i = cut - 2
    slashes = 0
    while i >= 0 and name[i] == "\\":
        slashes += 1
        i -= 1
    return slashes % 2 == 0


def longest_zone(zones: Sequence[str], name: str) -> str:
    """The longest of ``zones`` that ``name`` is in, or ``""`` (``plugin.Zones.Matches``)."""
    best = ""
    for zone in zones:
        if len(zone) > len(best) and is_subdomain(zone, name):
            best = zone
    return best


class Fallthrough:
    """The zones a plugin falls through for.

    ``Fallthrough()`` (no zones) never falls through: the plugin has no
    ``fallthrough`` line. ``Fallthrough.parse(args)`` reads the arguments of a
    ``fallthrough`` line: none means every name.
    """

    __slots__ = ("zones",)

    def __init__(self, zones: Iterable[str] = ()) -> None:
        self.zones: tuple[str, ...] = tuple(zones)

    @classmethod
    def parse(cls, args: Sequence[str]) -> Fallthrough:
        """``fallthrough [ZONE...]``: no arguments means the root zone (everything)."""
        if not args:
            return cls((".",))
        return cls(normalize_zones(args))

    def through(self, name: str) -> bool:
        """Should a query for ``name`` (lower-cased FQDN) go to the next plugin?"""
        zones = self.zones
        if not zones:
            return False
        if zones == (".",):
            return True
        return longest_zone(zones, name) != ""

    def __bool__(self) -> bool:
        return bool(self.zones)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fallthrough) and other.zones == self.zones

    def __hash__(self) -> int:
        return hash(self.zones)

    def __repr__(self) -> str:
        return f"Fallthrough({list(self.zones)!r})"
