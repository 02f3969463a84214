"""Routing in process (spec §2.2-2.4): the same answers the server gives, no sockets."""

from __future__ import annotations

import asyncio
import socket

import pytest
from dnslib import DNSRecord

import pycorefile
from pycorefile import wire as w
from pycorefile.chain import Plugin
from pycorefile.registry import Registry, default_registry

# Two distinguishable answerers: erratic answers A with 192.0.2.53 in the answer
# section; whoami answers with an empty answer and the client in additional.
ROUTED = """
example.org:1053 {
    erratic {
        drop 0
    }
}
sub.example.org:1053 {
    whoami
}
.:1053 {
    log
}
other.test:1053 {
}
"""


def answered_by(reply: DNSRecord) -> str:
    if reply.rr and str(reply.rr[0].rdata) == "192.0.2.53":
        return "erratic"
    if not reply.rr and any(rr.rtype == 33 for rr in reply.ar):
        return "whoami"
    return "none"


@pytest.fixture
def resolver():
    with pycorefile.Resolver.from_corefile(ROUTED) as r:
        yield r


@pytest.mark.parametrize(
    "qname, expected",
    [
        ("example.org", "erratic"),
        ("www.example.org", "erratic"),
        ("sub.example.org", "whoami"),
        ("deep.sub.example.org", "whoami"),
        ("SUB.Example.ORG", "whoami"),
        ("xsub.example.org", "erratic"),  # label boundary, not a string suffix
    ],
)
def test_longest_zone_match(resolver, qname: str, expected: str) -> None:
    reply = resolver.resolve(qname, "A")
    assert reply.header.rcode == 0
    assert reply.header.aa == 1
    assert answered_by(reply) == expected


def test_root_block_catches_the_rest_and_no_next_is_servfail(resolver) -> None:
    # The "." block has only `log`, which passes on: no next plugin -> SERVFAIL.
    reply = resolver.resolve("unrelated.net", "A")
    assert reply.header.rcode == w.SERVFAIL
    assert reply.header.aa == 0
    assert not reply.rr


def test_empty_block_is_refused(resolver) -> None:
    reply = resolver.resolve("a.other.test", "A")
    assert reply.header.rcode == w.REFUSED
    assert not reply.rr and reply.header.aa == 0


def test_no_matching_zone_is_refused() -> None:
    with pycorefile.Resolver.from_corefile("example.org:1053 {\n whoami\n}\n") as r:
        reply = r.resolve("example.net", "A")
        assert reply.header.rcode == w.REFUSED
        # The question is echoed on bare replies.
        assert str(reply.q.qname) == "example.net."


def test_non_in_class_is_refused_unless_chain_enables_chaos(resolver) -> None:
    reply = resolver.resolve("example.org", "TXT", "CH")
    assert reply.header.rcode == w.REFUSED


def test_edns_version_above_zero_is_badvers(resolver) -> None:
    q = bytearray(w.build_query("example.org", 1, qid=9, edns_size=1232))
    # OPT TTL: ext-rcode(8) version(8) flags(16) -> set version 1.
    q[-5] = 1
    out = DNSRecord.parse(resolver.handle(bytes(q)))
    opt = [rr for rr in out.ar if rr.rtype == 41][0]
    assert (opt.ttl >> 24) == 1            # extended rcode 16 = BADVERS (high bits 1)
    assert out.header.rcode == 0           # low 4 bits of 16


def test_a_bare_header_is_servfail_and_qdcount_zero_is_formerr(resolver) -> None:
    # QDCOUNT 1 but nothing after the header: miekg/dns decodes a message without a
    # question and CoreDNS answers SERVFAIL (server.go): ID, QR, RD/CD, no sections.
    q = w.HEADER.pack(77, w.RD | w.CD | w.AD, 1, 0, 0, 0)
    out = resolver.handle(q)
    assert out == w.HEADER.pack(77, w.QR | w.RD | w.CD | w.SERVFAIL, 0, 0, 0, 0)
    # QDCOUNT 0 never gets that far: miekg/dns rejects it with FORMERR.
    q = w.HEADER.pack(78, w.RD, 0, 0, 0, 0)
    assert resolver.handle(q) == w.HEADER.pack(78, w.QR | w.RD | w.FORMERR, 0, 0, 0, 0)


def test_rejected_messages_keep_the_query_header_bits(resolver) -> None:
    """miekg/dns answers a rejected message with the query's own header: QR set, AA
    and Z cleared, TC/RD/RA/AD/CD kept, no records; FORMERR sets opcode QUERY,
    NOTIMP keeps the opcode. Only a question that decoded is repeated."""
    bits = w.AA | w.TC | w.RD | w.RA | w.AD | w.CD | 0x0040  # 0x0040: the Z bit
    kept = w.TC | w.RD | w.RA | w.AD | w.CD
    two = w.HEADER.pack(6, bits, 2, 0, 0, 0) + b"\x00\x00\x01\x00\x01" * 2
    assert resolver.handle(two) == w.HEADER.pack(6, w.QR | kept | w.FORMERR, 0, 0, 0, 0)
    update = w.HEADER.pack(7, (5 << 11) | bits, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01"
    assert resolver.handle(update) == w.HEADER.pack(7, w.QR | (5 << 11) | kept | w.NOTIMP, 0, 0, 0, 0)
    # An opcode miekg/dns does not implement is checked before the body: NOTIMP even
    # when the sections are bad too.
    update_two = w.HEADER.pack(8, 2 << 11, 2, 0, 0, 0)
    assert resolver.handle(update_two) == w.HEADER.pack(8, w.QR | (2 << 11) | w.NOTIMP, 0, 0, 0, 0)
    # A good question followed by a record that runs past the end: the question is kept.
    query = w.build_query("example.org", 1, qid=9)
    question = query[12:]
    broken = w.HEADER.pack(9, w.RD, 1, 0, 0, 1) + question + b"\x00\x00\x29\x04"
    assert resolver.handle(broken) == w.HEADER.pack(9, w.QR | w.RD | w.FORMERR, 1, 0, 0, 0) + question


def test_plugin_order_is_not_corefile_order() -> None:
    # erratic runs before whoami in plugin.cfg, whatever the Corefile says.
    a = "o.test:1053 {\n whoami\n erratic {\n drop 0\n }\n}\n"
    b = "o.test:1053 {\n erratic {\n drop 0\n }\n whoami\n}\n"
    for text in (a, b):
        with pycorefile.Resolver.from_corefile(text) as r:
            assert answered_by(r.resolve("o.test", "A")) == "erratic"


def test_ports_select_the_server() -> None:
    text = "a.test:1053 {\n whoami\n}\nb.test:2053 {\n erratic {\n drop 0\n }\n}\n"
    with pycorefile.Resolver.from_corefile(text, port=2053) as r:
        assert answered_by(r.resolve("b.test", "A")) == "erratic"
        assert r.resolve("a.test", "A").header.rcode == w.REFUSED
    with pycorefile.Resolver.from_corefile(text) as r:
        assert answered_by(r.resolve("a.test", "A")) == "whoami"


def test_formerr_and_drops_in_process(resolver) -> None:
    assert resolver.handle(b"\x00\x01\x02") == b""                   # shorter than a header
    bad = w.HEADER.pack(5, 0, 1, 0, 0, 0) + b"\x3fabc"                 # label runs past the end
    out = DNSRecord.parse(resolver.handle(bad))
    assert out.header.id == 5 and out.header.rcode == w.FORMERR
    two = w.HEADER.pack(6, 0, 2, 0, 0, 0) + b"\x00\x00\x01\x00\x01" * 2  # QDCOUNT 2
    assert DNSRecord.parse(resolver.handle(two)).header.rcode == w.FORMERR
    update = w.HEADER.pack(7, 5 << 11, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01"
    assert DNSRecord.parse(resolver.handle(update)).header.rcode == w.NOTIMP
    response = w.HEADER.pack(8, w.QR, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01"
    assert resolver.handle(response) == b""
    assert resolver.engine.drops >= 2


class Boom(Plugin):
    name = "boom"
    after = "whoami"

    async def serve(self, request, next):
        raise RuntimeError("kaboom")


def test_plugin_exception_is_servfail_and_counted(caplog) -> None:
    reg = Registry()
    for n in default_registry().ordered():
        reg.register(default_registry().get(n), n)
    reg.register(Boom)
    with pycorefile.Resolver.from_corefile("b.test:1053 {\n boom\n}\n", registry=reg) as r:
        reply = r.resolve("b.test", "A")
        assert reply.header.rcode == w.SERVFAIL
        assert r.engine.panics == 1
        # The resolver is still fine afterwards.
        assert r.resolve("b.test", "A").header.rcode == w.SERVFAIL
    assert "kaboom" in caplog.text


def test_dropped_reply_reads_as_servfail_in_process() -> None:
    with pycorefile.Resolver.from_corefile("d.test:1053 {\n erratic {\n drop 1\n }\n}\n") as r:
        assert r.resolve("d.test", "A").header.rcode == w.SERVFAIL
        assert r.handle(w.build_query("d.test", 1)) == b""


def test_resolve_opens_no_socket(monkeypatch, resolver) -> None:
    def refuse(*a, **kw):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "socket", refuse)
    for name in ("example.org", "sub.example.org", "nowhere.net", "a.other.test"):
        resolver.resolve(name, "A")
    assert resolver.engine.loop is None   # no event loop was needed either


def test_resolve_async_and_sync_inside_a_running_loop() -> None:
    text = "slow.test:1053 {\n erratic {\n delay 1 10ms\n }\n}\nfast.test:1053 {\n whoami\n}\n"

    async def main(r):
        fast = await r.resolve_async("fast.test", "A")
        slow = await r.resolve_async("slow.test", "A")
        # The blocking API also works from inside a running loop (it waits on the
        # resolver's own loop, not the caller's).
        blocking = r.resolve("slow.test", "A")
        return fast, slow, blocking

    with pycorefile.Resolver.from_corefile(text) as r:
        fast, slow, blocking = asyncio.run(main(r))
    assert answered_by(fast) == "whoami"
    assert answered_by(slow) == "erratic" and answered_by(blocking) == "erratic"


def test_resolve_from_threads(resolver) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda i: resolver.resolve(f"h{i}.example.org", "A"), range(40)))
    assert all(answered_by(r) == "erratic" for r in results)


def test_delayed_chain_moves_to_the_resolver_loop() -> None:
    text = "slow.test:1053 {\n erratic {\n delay 1 10ms\n }\n}\n"
    with pycorefile.Resolver.from_corefile(text) as r:
        reply = r.resolve("slow.test", "A")
        assert answered_by(reply) == "erratic"
        assert r.engine.loop is not None
    assert r.engine.loop is None
