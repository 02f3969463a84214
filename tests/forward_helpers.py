"""Helpers for the forward plugin's tests (on top of ``tests/upstreams.py``).

* :class:`StubUpstream`: a tiny scripted DNS server on loopback (UDP, TCP and
  optionally DNS over TLS) for what real servers will not do on purpose, e.g. send
  an oversized reply without TC, or speak TLS with a test certificate.
* :func:`make_certificate`: a self-signed certificate from the ``openssl`` tool.
* :func:`forward_corefile`, :func:`ask`, :func:`same_answer`, :func:`forward_of`,
  :func:`wait_until`: small conveniences shared by the unit and integration tests.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import pytest

LOCALHOST = "127.0.0.1"

#: ``handler(query_bytes, proto)`` → reply bytes, a list of them (sent in order),
#: or ``None`` (no reply).
StubHandler = Callable[[bytes, str], "bytes | list[bytes] | None"]


class StubUpstream:
    """A scripted DNS server on ``127.0.0.1``: UDP and TCP on one port, and DNS over
    TLS on :attr:`tls_port` when ``tls`` (a server ``SSLContext``) is given.

    Every query is recorded in :attr:`queries` as ``(proto, dns.message.Message)``
    with proto ``"udp"``, ``"tcp"`` or ``"tls"``.
    """

    def __init__(
        self, handler: StubHandler, *, tls: ssl.SSLContext | None = None, host: str = LOCALHOST
    ) -> None:
        self.handler = handler
        self.tls = tls
        self.host = host
        self.port = 0
        self.tls_port = 0
        self.queries: list[tuple[str, dns.message.Message]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._closers: list[Any] = []

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> StubUpstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(timeout=10)
        return self

    def close(self) -> None:
        async def shut() -> None:
            for c in self._closers:
                c.close()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> StubUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self, qtype: str | None = None, proto: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for p, m in self.queries
                if (proto is None or p == proto)
                and (qtype is None or dns.rdatatype.to_text(m.question[0].rdtype) == qtype)
            )

    def _answer(self, data: bytes, proto: str) -> list[bytes]:
        try:
            msg = dns.message.from_wire(data)
        except Exception:
            return []
        with self._lock:
            self.queries.append((proto, msg))
        out = self.handler(data, proto)
        if out is None:
            return []
        return out if isinstance(out, list) else [out]

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        stub = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                for reply in stub._answer(data, "udp"):
                    self.transport.sendto(reply, addr)

        # UDP and TCP on the same port: retry until both binds succeed.
        for _ in range(50):
            udp, _ = await loop.create_datagram_endpoint(Udp, local_addr=(self.host, 0))
            port = udp.get_extra_info("sockname")[1]
            try:
                tcp = await asyncio.start_server(self._stream("tcp"), self.host, port)
            except OSError:
                udp.close()
                continue
            self.port = port
            self._closers += [udp, tcp]
            break
        else:  # pragma: no cover
            raise RuntimeError("no free port for the stub upstream")
        if self.tls is not None:
            tls = await asyncio.start_server(self._stream("tls"), self.host, 0, ssl=self.tls)
            self.tls_port = tls.sockets[0].getsockname()[1]
            self._closers.append(tls)

    def _stream(self, proto: str) -> Callable[..., Any]:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    size = struct.unpack("!H", await reader.readexactly(2))[0]
                    data = await reader.readexactly(size)
                    for reply in self._answer(data, proto):
                        writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        return serve


def relay_to(host: str, port: int) -> StubHandler:
    """A stub handler that asks a real server over UDP (TCP when truncated)."""

    def handle(data: bytes, proto: str) -> bytes | None:
        q = dns.message.from_wire(data)
        try:
            r = dns.query.udp(q, host, port=port, timeout=2, ignore_unexpected=True)
            if r.flags & dns.flags.TC:
                r = dns.query.tcp(q, host, port=port, timeout=2)
        except Exception:
            return None
        return r.to_wire(max_size=65535)

    return handle


def make_certificate(directory: Path, name: str = "dns.test") -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` and ``127.0.0.1`` (also its own CA),
    and its key, made with the ``openssl`` command line tool."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
            "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1",
            "-addext", "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def forward_corefile(
    *upstreams: str, options: str = "", zone: str = ".", extra: str = "", forward_from: str = "."
) -> str:
    """A one-block Corefile on ``127.0.0.1`` and a kernel-chosen port with one
    ``forward`` line (``options`` go into its block) and ``extra`` directives."""
    block = f" {{\n{options}\n    }}" if options.strip() else ""
    return (
        f"{zone}:0 {{\n"
        f"    bind 127.0.0.1\n"
        f"    forward {forward_from} {' '.join(upstreams)}{block}\n"
        f"{extra}\n"
        f"}}\n"
    )


def ask(
    port: int,
    qname: str,
    qtype: str = "A",
    *,
    proto: str = "udp",
    edns: int | None = None,
    do: bool = False,
    host: str = LOCALHOST,
    timeout: float = 5.0,
    qclass: str = "IN",
) -> dns.message.Message:
    """One dnspython query (no retries; TC replies are returned, not retried)."""
    q = dns.message.make_query(
        qname,
        qtype,
        qclass,
        use_edns=edns is not None,
        payload=edns or 1232,
        want_dnssec=do,
    )
    if proto == "udp":
        return dns.query.udp(q, host, port=port, timeout=timeout, raise_on_truncation=False)
    return dns.query.tcp(q, host, port=port, timeout=timeout)


def same_answer(got: dns.message.Message, want: dns.message.Message) -> None:
    """Assert what a client can tell apart (spec §0): rcode, header flags, question,
    every section with TTLs, EDNS presence and the DO bit. Not the ID, not the bytes."""
    assert got.rcode() == want.rcode()
    assert got.flags == want.flags, (dns.flags.to_text(got.flags), dns.flags.to_text(want.flags))
    assert got.question == want.question
    for section in ("answer", "authority"):
        g, wnt = getattr(got, section), getattr(want, section)
        assert sorted(map(str, g)) == sorted(map(str, wnt)), section
        assert [r.ttl for r in sorted(g, key=str)] == [r.ttl for r in sorted(wnt, key=str)]
    assert sorted(map(str, got.additional)) == sorted(map(str, want.additional))
    assert (got.edns >= 0) == (want.edns >= 0)
    assert bool(got.ednsflags & dns.flags.DO) == bool(want.ednsflags & dns.flags.DO)


def forward_of(engine: Any, index: int = 0) -> Any:
    """The ``index``-th forward plugin of an engine (a Resolver's or a server's)."""
    found = [p for c in engine.chains for p in c.plugins if p.name == "forward"]
    return found[index]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def metric(engine: Any, name: str, **labels: str) -> float:
    return float(engine.metrics.sample(name, labels or None))


def non_probe(queries: Iterable[Any]) -> list[Any]:
    """Relay queries that are not health checks (``NS`` probes)."""
    return [q for q in queries if q.qtype != "NS"]


__all__ = [
    "StubUpstream",
    "ask",
    "forward_corefile",
    "forward_of",
    "has_ipv6_loopback",
    "make_certificate",
    "metric",
    "non_probe",
    "relay_to",
    "same_answer",
    "server_tls_context",
    "wait_until",
]
