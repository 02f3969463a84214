"""Server-block keys: scheme, zone and port, as CoreDNS reads them.

A key such as ``tls://Example.ORG:8853`` or ``10.0.0.0/15`` becomes one or more
:class:`~pycorefile.corefile.model.Key` objects. This follows CoreDNS's
``dnsserver.InspectServerBlocks`` and ``plugin.SplitHostPort``:

1. strip a scheme (``dns://`` when none is given);
2. the text after the *last* ``:`` is the port if it parses as a (Go) integer;
3. the rest must be a valid domain name (miekg/dns ``IsDomainName``) of at most
   255 bytes;
4. a CIDR (``10.0.0.0/24``, ``2001:db8::/32``) becomes its reverse zone(s); a
   prefix that is not on a label boundary (8 bits for IPv4, 4 for IPv6) expands to
   every zone on the next boundary (``10.0.0.0/15`` → ``0.10.in-addr.arpa.`` and
   ``1.10.in-addr.arpa.``; ``192.168.1.0/25`` → 128 ``/32`` zones);
5. the zone is lower-cased and made fully qualified.

Errors carry no file or line, exactly as CoreDNS prints them.

The duplicate check (:func:`check_listeners`) is CoreDNS's
``validateZonesAndListeningAddresses``: the same scheme, zone and port twice is an
error unless the blocks listen on different addresses (``bind``), and a block with
a ``view`` may share a zone with another block.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Sequence

from .errors import CorefileError
from .model import Directive, Key, ServerBlock

__all__ = [
    "DEFAULT_PORTS",
    "check_listeners",
    "is_domain_name",
    "listen_hosts",
    "normalize_name",
    "parse_key",
    "split_host_port",
    "split_transport",
]

#: Default port per scheme (``dns`` is the ``-dns.port`` flag, 53 by default).
#: ``unix`` has none: its port stays empty.
DEFAULT_PORTS: dict[str, str] = {
    "dns": "53",
    "tls": "853",
    "quic": "853",
    "grpc": "443",
    "https": "443",
    "https3": "443",
    "unix": "",
}

# Checked in this order (https3 before https, as CoreDNS does).
_SCHEMES = ("tls", "dns", "quic", "grpc", "https3", "https", "unix")

_GO_INT = re.compile(r"[+-]?[0-9]+\Z")
_INT64_MAX = 2**63 - 1


def split_transport(key: str) -> tuple[str, str]:
    """``("tls", "example.org:853")`` for ``tls://example.org:853``; ``dns`` by default."""
    for scheme in _SCHEMES:
        prefix = scheme + "://"
        if key.startswith(prefix):
            return scheme, key[len(prefix) :]
    return "dns", key


def _go_atoi(s: str) -> int | None:
    """Go's ``strconv.Atoi``: optional sign, ASCII digits, fits in an int64."""
    if not _GO_INT.match(s):
        return None
    value = int(s)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        return None
    return value


def _go_quote(s: str) -> str:
    """Go's ``%q`` for a string (close enough for error messages)."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _is_fqdn(s: str) -> bool:
    """miekg/dns ``IsFqdn``: ends in a dot that is not escaped."""
    if not s or s[-1] != ".":
        return False
    s = s[:-1]
    if not s or s[-1] != "\\":
        return True
    stripped = s.rstrip("\\")
    backslashes = len(s) - len(stripped)
    # Go counts bytes from the start of the last non-backslash rune, so a
    # multi-byte character before the backslashes shifts the parity (a miekg/dns
    # quirk, kept so that the same zones are accepted).
    width = len(stripped[-1].encode("utf-8", "surrogatepass")) if stripped else 1
    return (backslashes + width) % 2 != 0


def _fqdn(s: str) -> str:
    return s if _is_fqdn(s) else s + "."


def is_domain_name(s: str) -> bool:
    """miekg/dns ``IsDomainName``: syntax and length only, on the UTF-8 bytes.

    It is lenient on purpose (any byte is allowed in a label); it rejects empty
    names, empty labels (``a..b``), a leading dot (except the root), labels over 63
    octets, names over 255 octets and a trailing lone backslash.
    """
    if not s:
        return False
    b = _fqdn(s).encode("utf-8", "surrogatepass")
    n = len(b)
    off = begin = 0
    was_dot = escape = False
    i = 0
    while i < n:
        c = b[i]
        if c == 0x5C:  # backslash: \DDD or \X
            escape = not escape
            if off + 1 > 256:
                return False
            if n - i - 1 >= 3 and all(0x30 <= d <= 0x39 for d in b[i + 1 : i + 4]):
                i += 3
                begin += 3
            else:
                i += 1
                begin += 1
            was_dot = False
        elif c == 0x2E:  # dot
            escape = False
            if i == 0 and n > 1:
                return False
            if was_dot:
                return False
            was_dot = True
            label_len = i - begin
            if label_len >= 64:
                return False
            off += 1 + label_len
            if off > 256:
                return False
            begin = i + 1
        else:
            escape = False
            was_dot = False
        i += 1
    return not escape


def _go_lower(s: str) -> str:
    # Go's strings.ToLower maps rune by rune (no final-sigma rule, İ -> i).
    if s.isascii():
        return s.lower()
    return "".join(c.lower()[0] if c.lower() else c for c in s)


def normalize_name(name: str) -> str:
    """CoreDNS's ``plugin.Name.Normalize``: lower-case and fully qualified."""
    return _go_lower(_fqdn(name))


def _parse_cidr(s: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """Go's ``net.ParseCIDR`` (the network part), or ``None`` if it fails."""
    addr, sep, mask = s.partition("/")
    if not sep or "%" in addr:
        return None
    if not mask or not mask.isascii() or not mask.isdigit():
        return None
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    ones = int(mask)
    if ones > ip.max_prefixlen:
        return None
    return ipaddress.ip_network((ip, ones), strict=False)


def _reverse_zones(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    """CoreDNS ``cidr.Split`` + ``cidr.Reverse``: the reverse zones covering ``net``."""
    boundary = 8 if net.version == 4 else 4
    ones = net.prefixlen
    if ones % boundary:
        new_prefix = math.ceil(ones / boundary) * boundary
        subnets: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = net.subnets(
            new_prefix=new_prefix
        )
    else:
        subnets = (net,)
    zones = []
    for sub in subnets:
        labels = sub.network_address.reverse_pointer.split(".")
        skip = (sub.max_prefixlen - sub.prefixlen) // boundary
        zones.append(".".join(labels[skip:]) + ".")
    return zones


def split_host_port(s: str) -> tuple[list[str], str]:
    """CoreDNS's ``plugin.SplitHostPort`` for a key without its scheme.

    Returns the host(s) and the port (``""`` when none was given). Raises
    ``ValueError`` with CoreDNS's message when the key is not usable.
    """
    port = ""
    colon = s.rfind(":")
    # For an empty key rfind gives -1 == len-1: Go says the same thing.
    if colon == len(s) - 1:
        raise ValueError(f"expecting data after last colon: {_go_quote(s)}")
    if colon != -1:
        value = _go_atoi(s[colon + 1 :])
        if value is not None:
            port = str(value)
            s = s[:colon]
    size = len(s.encode("utf-8", "surrogatepass"))
    if size > 255:
        raise ValueError(f"specified zone is too long: {size} > 255")
    if not is_domain_name(s):
        raise ValueError(f"zone is not a valid domain name: {s}")
    net = _parse_cidr(s)
    if net is None:
        return [s], port
    if s[0] == ":" or (s[0] == "0" and ":" in s):
        raise ValueError(f"invalid CIDR {s}")
    return _reverse_zones(net), port


def parse_key(text: str, *, dns_port: str = "53", file: str = "", line: int = 0) -> list[Key]:
    """The :class:`Key` objects of one server-block key (several for a split CIDR).

    Raises :class:`CorefileError` (``kind="plain"``, no location, as CoreDNS
    reports it) for an unusable key.
    """
    scheme, rest = split_transport(text)
    try:
        hosts, port = split_host_port(rest)
        # CoreDNS checks each host again once fully qualified ("ȶ" passes, "ȶ."
        # does not).
        for host in hosts:
            split_host_port(_fqdn(host))
    except ValueError as exc:
        raise CorefileError(str(exc), file, 0, kind="plain") from None
    if not port:
        port = dns_port if scheme == "dns" else DEFAULT_PORTS[scheme]
    return [Key(text, scheme, normalize_name(h), port, file, line) for h in hosts]


def listen_hosts(directives: Sequence[Directive]) -> tuple[str, ...]:
    """The addresses a block listens on, from its ``bind`` directives, as written.

    ``("",)`` (every address) without ``bind``. ``except`` addresses are removed.
    Interface names are kept as names: they are not resolved to addresses here.
    """
    binds = [d for d in directives if d.name == "bind"]
    if not binds:
        return ("",)
    addrs: list[str] = []
    for d in binds:
        excluded = {a for sub in d.block or () if sub.name == "except" for a in sub.args}
        addrs.extend(a for a in d.args if a not in excluded)
    return tuple(addrs)


_ZoneAddr = tuple[str, str, str, str]  # scheme, zone, port, listen address ("" = all)


def _zone_addr(za: _ZoneAddr) -> str:
    scheme, zone, port, address = za
    s = f"{scheme}://{zone}:{port}"
    return f"{s} on {address}" if address else s


def check_listeners(blocks: Sequence[ServerBlock], filename: str = "") -> list[CorefileError]:
    """CoreDNS's startup check that no two blocks serve the same zone on the same listener.

    ``cannot serve dns://example.org.:53 - it is already defined`` for an exact
    duplicate; ``... - zone overlap listener capacity with ...`` when one block is
    bound to an address and another serves the same zone and port on every address.
    Blocks with a ``view`` are filtered: they are checked for overlap but never
    registered, so they may share a zone with another block.
    """
    errors: list[CorefileError] = []
    registered: set[_ZoneAddr] = set()
    unbound: dict[_ZoneAddr, _ZoneAddr] = {}

    def check(za: _ZoneAddr) -> tuple[_ZoneAddr | None, _ZoneAddr | None]:
        if za in registered:
            return za, None
        uz = (za[0], za[1], za[2], "")
        if uz in unbound:
            if za[3] == "":
                # Unbound here, but another block is bound to an address.
                return None, unbound[uz]
            if uz in registered:
                # Bound here, but another block serves the zone on every address.
                return None, uz
        return None, None

    for block in blocks:
        hosts = listen_hosts(block.directives)
        filtered = any(d.name == "view" for d in block.directives)
        for key in block.keys:
            for host in hosts:
                za = (key.scheme, key.zone, key.port, host)
                exist, overlap = check(za)
                if filtered:
                    exist = None
                elif exist is None and overlap is None:
                    registered.add(za)
                    unbound[(za[0], za[1], za[2], "")] = za
                if exist is not None:
                    message = f"cannot serve {_zone_addr(za)} - it is already defined"
                elif overlap is not None:
                    message = (
                        f"cannot serve {_zone_addr(za)} - zone overlap listener capacity "
                        f"with {_zone_addr(overlap)}"
                    )
                else:
                    continue
                errors.append(CorefileError(message, filename, 0, kind="plain"))
    return errors
