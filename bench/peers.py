"""Reference servers for the benchmark: what pycorefile is measured against.

Every peer answers the same names as ``bench/corefiles/node-local.Corefile``:

* template names: ``api.bench.local`` and ``*.apps.bench.local`` -> A 10.0.0.1, TTL 60,
  answered locally;
* every other name is forwarded to the upstream (a dnsmasq answering
  ``*.cache.bench.test`` and ``*.fwd.bench.test``), and cached;
* ``*.slow.bench.test`` is forwarded, uncached, to a deliberately slow upstream.

Peers (run as ``python bench/peers.py KIND ...``; ``bench/run.py`` starts them):

``dnslib``
    dnslib's ``DNSServer`` (threaded socketserver, per-query logging off) with a
    ``BaseResolver`` subclass: the "plain dnslib server" anchor. Cache hits build a new
    ``DNSRecord`` that shares the cached RRs; misses use ``DNSRecord.send`` like dnslib's
    ``ProxyResolver``.
``bare``
    The "Python limit": a loop that keys a dict on the raw question bytes and returns
    prepared reply bytes with the ID (and, for cached upstream answers, the TTLs) patched
    in place. dnslib only runs on the first query of a name. ``--loop`` picks a blocking
    ``recvfrom`` loop, uvloop, or stock asyncio. It forwards synchronously on a miss, so it
    is only meaningful for local answers and cache hits, not for the miss path.
``slow``
    An upstream that answers every A query with 10.0.2.1 after ``--delay`` seconds,
    without blocking (uvloop timers), for the "slow upstream must not block local answers"
    check.

dnsmasq itself is configured from ``bench/dnsmasq/*.conf``; :func:`dnsmasq_command` builds
its command line.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import struct
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------
# The records every server answers. Keep in sync with bench/corefiles/*.Corefile and
# bench/dnsmasq/*.conf (run.py checks the answers agree before it measures anything).
TEMPLATE_RE = re.compile(r"^(?:.+\.)?(?:apps|api)\.bench\.local\.$", re.IGNORECASE)
TEMPLATE_IP = "10.0.0.1"
TEMPLATE_TTL = 60
SLOW_ZONE = "slow.bench.test."
SLOW_IP = "10.0.2.1"
CACHE_MAX_TTL = 3600
RCVBUF = 4 * 1024 * 1024


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def parse_hostport(text: str, default_port: int = 53) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        return text, default_port
    return host, int(port)


def substitute(text: str, values: dict[str, object]) -> str:
    """Replace ``{$NAME}`` placeholders (the Corefile env-var syntax) with ``values``."""

    def repl(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise KeyError(f"no value for placeholder {{${key}}}")
        return str(values[key])

    return re.sub(r"\{\$([A-Za-z_][A-Za-z0-9_]*)\}", repl, text)


# ---------------------------------------------------------------------------------------
# dnsmasq


def dnsmasq_command(conf_path: str | os.PathLike[str]) -> list[str]:
    """Foreground dnsmasq reading only ``conf_path`` (not /etc/dnsmasq.conf)."""
    return ["dnsmasq", "--keep-in-foreground", f"--conf-file={conf_path}"]


# ---------------------------------------------------------------------------------------
# dnslib: the resolver used by the DNSServer peer and the in-process anchors


def _dnslib():
    import dnslib

    return dnslib


class DnslibTemplate:
    """In-process anchor "dnslib template answer": regex match + a DNSRecord reply built
    with dnslib on every call (header, question, one A RR)."""

    def __init__(self) -> None:
        d = _dnslib()
        self.d = d
        self.a = d.A(TEMPLATE_IP)

    def answer(self, request):  # request: DNSRecord (or None) -> DNSRecord or None
        d = self.d
        q = request.q
        if q.qtype != d.QTYPE.A or not TEMPLATE_RE.match(str(q.qname)):
            return None
        reply = request.reply()
        reply.add_answer(d.RR(q.qname, d.QTYPE.A, rdata=self.a, ttl=TEMPLATE_TTL))
        return reply

    def resolve(self, name: str, qtype: str = "A"):
        """Same shape as ``pycorefile.Resolver.resolve(name, type)``."""
        d = self.d
        return self.answer(d.DNSRecord.question(name, qtype))


class DnslibCache:
    """Cache keyed on (lower-cased qname, qtype, qclass): stores the question and the RR
    objects. A hit is a new DNSRecord (fresh header and ID) sharing the cached RRs: the
    in-process "dnslib cache hit" anchor, and the dnslib server's cache."""

    def __init__(self, upstream: tuple[str, int] | None, timeout: float = 2.0) -> None:
        self.d = _dnslib()
        self.upstream = upstream
        self.timeout = timeout
        self.entries: dict[tuple[str, int, int], tuple[float, object, list, list, list, int]] = {}

    def _key(self, q) -> tuple[str, int, int]:
        return (str(q.qname).lower(), q.qtype, q.qclass)

    def lookup(self, request):
        ent = self.entries.get(self._key(request.q))
        if ent is None:
            return None
        expires, question, rr, auth, ar, rcode = ent
        if expires < time.monotonic():
            return None
        d = self.d
        h = request.header
        return d.DNSRecord(
            d.DNSHeader(id=h.id, qr=1, rd=h.rd, ra=1, rcode=rcode),
            questions=[question],
            rr=list(rr),
            auth=list(auth),
            ar=list(ar),
        )

    def insert(self, request, reply) -> None:
        ttls = [r.ttl for r in (*reply.rr, *reply.auth)]
        ttl = min([*ttls, CACHE_MAX_TTL]) if ttls else 5
        ar = [r for r in reply.ar if r.rtype != self.d.QTYPE.OPT]
        self.entries[self._key(request.q)] = (
            time.monotonic() + ttl,
            request.q,
            list(reply.rr),
            list(reply.auth),
            ar,
            reply.header.rcode,
        )

    def resolve_name(self, name: str, qtype: str = "A"):
        """In-process form (name, type) -> DNSRecord, like ``pycorefile.Resolver.resolve``."""
        d = self.d
        key = (name.lower().rstrip(".") + ".", getattr(d.QTYPE, qtype), 1)
        ent = self.entries.get(key)
        if ent is None or ent[0] < time.monotonic():
            return self.resolve(d.DNSRecord.question(name, qtype))
        _expires, question, rr, auth, ar, rcode = ent
        return d.DNSRecord(
            d.DNSHeader(id=random.getrandbits(16), qr=1, rd=1, ra=1, rcode=rcode),
            questions=[question],
            rr=list(rr),
            auth=list(auth),
            ar=list(ar),
        )

    def forward(self, request, upstream: tuple[str, int] | None = None):
        d = self.d
        host, port = upstream or self.upstream  # type: ignore[misc]
        try:
            data = request.send(host, port, timeout=self.timeout)
            reply = d.DNSRecord.parse(data)
        except (OSError, d.DNSError):
            reply = request.reply()
            reply.header.rcode = d.RCODE.SERVFAIL
            return reply
        return reply

    def resolve(self, request):
        reply = self.lookup(request)
        if reply is not None:
            return reply
        reply = self.forward(request)
        if reply.header.rcode in (0, 3):  # NOERROR, NXDOMAIN
            self.insert(request, reply)
        return reply


def make_dnslib_resolver(upstream: tuple[str, int], slow: tuple[str, int] | None):
    d = _dnslib()
    from dnslib.server import BaseResolver

    class BenchResolver(BaseResolver):
        """Template answers locally; the slow zone forwarded uncached; the rest cached."""

        def __init__(self) -> None:
            self.template = DnslibTemplate()
            self.cache = DnslibCache(upstream)

        def resolve(self, request, handler):
            reply = self.template.answer(request)
            if reply is not None:
                return reply
            qname = str(request.q.qname).lower()
            if slow is not None and (qname == SLOW_ZONE or qname.endswith("." + SLOW_ZONE)):
                reply = self.cache.forward(request, slow)
            else:
                reply = self.cache.resolve(request)
            reply.header.id = request.header.id
            return reply

    del d
    return BenchResolver()


def run_dnslib(args: argparse.Namespace) -> None:
    from dnslib.server import DNSLogger, DNSServer

    resolver = make_dnslib_resolver(
        parse_hostport(args.upstream), parse_hostport(args.slow) if args.slow else None
    )
    # Per-query logging off (dnslib's default prints every request and reply).
    logger = DNSLogger("-recv,-send,-request,-reply,-truncated,-data", prefix=False)
    server = DNSServer(resolver, address=args.address, port=args.port, logger=logger)
    log(f"dnslib DNSServer on {args.address}:{args.port}")
    try:
        server.start()
    except KeyboardInterrupt:
        pass


# ---------------------------------------------------------------------------------------
# The bare responder ("Python limit")


def _skip_name(buf: bytes, off: int) -> int:
    while True:
        n = buf[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def ttl_offsets(wire: bytes) -> list[tuple[int, int]]:
    """(offset, ttl) of every RR's TTL field, OPT excluded: the places to patch on a hit."""
    qd, an, ns, ar = struct.unpack_from("!4H", wire, 4)
    off = 12
    for _ in range(qd):
        off = _skip_name(wire, off) + 4
    out = []
    for _ in range(an + ns + ar):
        off = _skip_name(wire, off)
        rtype, _rclass, ttl, rdlen = struct.unpack_from("!HHIH", wire, off)
        if rtype != 41:
            out.append((off + 4, ttl))
        off += 10 + rdlen
    return out


class BareCore:
    """bytes -> bytes. Hit: one dict look-up on the question bytes, ID patch, TTL patch
    for upstream answers. Miss: dnslib decides once (template or blocking forward)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.table: dict[bytes, tuple[bytearray, tuple[tuple[int, int], ...], float, float]] = {}
        self.template = DnslibTemplate()
        self.fwd_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.fwd_sock.settimeout(2.0)
        self.fwd_sock.connect(upstream)

    def handle(self, data: bytes) -> bytes | bytearray | None:
        ent = self.table.get(data[12:])
        if ent is not None:
            buf, offs, born, expires = ent
            if offs:
                now = time.monotonic()
                if now >= expires:
                    return self.miss(data)
                age = int(now - born)
                for off, ttl in offs:
                    struct.pack_into("!I", buf, off, ttl - age)
            buf[0:2] = data[0:2]
            return buf
        return self.miss(data)

    def miss(self, data: bytes) -> bytes | None:
        d = self.template.d
        try:
            request = d.DNSRecord.parse(data)
        except d.DNSError:
            return None
        if len(request.questions) != 1:
            reply = request.reply()
            reply.header.rcode = d.RCODE.FORMERR
            return reply.pack()
        reply = self.template.answer(request)
        if reply is not None:
            wire = bytearray(reply.pack())
            self.table[data[12:]] = (wire, (), 0.0, 0.0)
            return bytes(wire)
        wire = self.forward(data)
        if wire is None:
            return None
        offs = ttl_offsets(wire)
        rcode = wire[3] & 0x0F
        if rcode in (0, 3):
            ttl = min([t for _, t in offs] + [CACHE_MAX_TTL]) if offs else 5
            now = time.monotonic()
            self.table[data[12:]] = (bytearray(wire), tuple(offs), now, now + ttl)
        return wire

    def forward(self, data: bytes) -> bytes | None:
        qid = random.getrandbits(16)
        pkt = struct.pack("!H", qid) + data[2:]
        try:
            self.fwd_sock.send(pkt)
            while True:
                resp = self.fwd_sock.recv(65535)
                if resp[:2] == pkt[:2]:
                    return data[:2] + resp[2:]
        except OSError:
            return None


def _udp_socket(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.bind((address, port))
    return sock


def run_bare(args: argparse.Namespace) -> None:
    import gc

    core = BareCore(parse_hostport(args.upstream))
    sock = _udp_socket(args.address, args.port)
    gc.freeze()
    log(f"bare responder ({args.loop}) on {args.address}:{args.port}")
    if args.loop == "blocking":
        handle = core.handle
        recvfrom = sock.recvfrom
        sendto = sock.sendto
        try:
            while True:
                data, addr = recvfrom(4096)
                out = handle(data)
                if out is not None:
                    sendto(out, addr)
        except KeyboardInterrupt:
            return

    import asyncio

    class Proto(asyncio.DatagramProtocol):
        def connection_made(self, transport):  # type: ignore[override]
            self.sendto = transport.sendto

        def datagram_received(self, data, addr):  # type: ignore[override]
            out = core.handle(data)
            if out is not None:
                self.sendto(bytes(out), addr)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(Proto, sock=sock)
        await asyncio.Event().wait()

    _run_loop(main(), args.loop)


def _run_loop(coro, kind: str) -> None:
    import asyncio

    try:
        if kind == "uvloop":
            import uvloop

            uvloop.run(coro)
        else:
            asyncio.run(coro)
    except KeyboardInterrupt:
        pass


# ---------------------------------------------------------------------------------------
# A slow upstream


def run_slow(args: argparse.Namespace) -> None:
    import asyncio

    d = _dnslib()
    delay = args.delay

    class Proto(asyncio.DatagramProtocol):
        def connection_made(self, transport):  # type: ignore[override]
            self.transport = transport
            self.loop = asyncio.get_running_loop()

        def datagram_received(self, data, addr):  # type: ignore[override]
            try:
                request = d.DNSRecord.parse(data)
            except d.DNSError:
                return
            reply = request.reply()
            if request.q.qtype == d.QTYPE.A:
                reply.add_answer(d.RR(request.q.qname, d.QTYPE.A, rdata=d.A(SLOW_IP), ttl=5))
            self.loop.call_later(delay, self.transport.sendto, reply.pack(), addr)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = _udp_socket(args.address, args.port)
        await loop.create_datagram_endpoint(Proto, sock=sock)
        await asyncio.Event().wait()

    log(f"slow upstream ({delay * 1000:.0f} ms) on {args.address}:{args.port}")
    _run_loop(main(), "uvloop")


# ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="kind", required=True)
    for kind in ("dnslib", "bare", "slow"):
        s = sub.add_parser(kind)
        s.add_argument("--address", default="127.0.0.1")
        s.add_argument("--port", type=int, required=True)
        if kind != "slow":
            s.add_argument("--upstream", required=True, help="HOST:PORT of the upstream")
        if kind == "dnslib":
            s.add_argument("--slow", help="HOST:PORT of the slow upstream for slow.bench.test")
        if kind == "bare":
            s.add_argument("--loop", choices=("blocking", "uvloop", "asyncio"), default="uvloop")
        if kind == "slow":
            s.add_argument("--delay", type=float, default=0.2, help="seconds (default 0.2)")
    args = p.parse_args(argv)
    if args.address not in ("127.0.0.1", "::1", "localhost"):
        p.error("peers only listen on loopback")
    {"dnslib": run_dnslib, "bare": run_bare, "slow": run_slow}[args.kind](args)


if __name__ == "__main__":
    main()
