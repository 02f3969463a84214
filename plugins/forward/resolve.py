"""Upstreams given by host name: looked up once, when the Corefile is loaded.

As CoreDNS's forward does it (``plugin/forward/resolve.go``): with ``resolver``
addresses, each is asked for A and then AAAA records over UDP (2 s per query) until
one gives an address; without, the system resolver is used. The names are not
looked up again until the next reload.
"""

from __future__ import annotations

import secrets
import socket

from dnslib import DNSRecord

from pycorefile import wire as w

#: CoreDNS's dns.Client read and write timeouts for these look-ups.
TIMEOUT = 2.0


def lookup_host(hostname: str, resolvers: list[tuple[str, int]]) -> list[str]:
    """The IP addresses of ``hostname`` (asking the ``(IP, port)`` resolvers in order,
    or the system's when there are none); :class:`LookupError` when there are none."""
    if not resolvers:
        return _system_lookup(hostname)
    return _dns_lookup(hostname, resolvers)


def _system_lookup(hostname: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(hostname, None, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise LookupError(f"lookup {hostname}: {reason}") from None
    out: list[str] = []
    for family, *_, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            ip = str(sockaddr[0]).split("%")[0]
            if ip not in out:
                out.append(ip)
    if not out:
        raise LookupError(f'no addresses found for "{hostname}"')
    return out


def _ask(hostname: str, qtype: int, resolver: tuple[str, int]) -> list[str]:
    """One UDP query for ``qtype``; the addresses in its answer section."""
    family = socket.AF_INET6 if ":" in resolver[0] else socket.AF_INET
    qid = secrets.randbits(16)
    query = w.build_query(hostname, qtype, qid=qid)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(resolver)
        sock.send(query)
        while True:
            data = sock.recv(65535)
            if len(data) >= 12 and w.U16.unpack_from(data, 0)[0] == qid:
                break
    reply = DNSRecord.parse(data)
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == qtype]


def _dns_lookup(hostname: str, resolvers: list[tuple[str, int]]) -> list[str]:
    last: Exception | None = None
    for resolver in resolvers:
        try:
            ips = _ask(hostname, w.A, resolver)
        except Exception as exc:  # noqa: BLE001 - sockets, timeouts and dnslib's own errors
            last = exc
            continue
        try:
            ips += _ask(hostname, w.AAAA, resolver)
        except Exception as exc:  # noqa: BLE001
            if ips:
                return ips  # A records are enough when AAAA fails
            last = exc
            continue
        if ips:
            return ips
    if last is not None:
        raise LookupError(f'no addresses found for "{hostname}": {_reason(last)}')
    raise LookupError(f'no addresses found for "{hostname}"')


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "i/o timeout"
    return str(exc) or type(exc).__name__
