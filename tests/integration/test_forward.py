"""The forward plugin against real upstream servers (NSD, Knot) and the fault relay.

Each CoreDNS forward test case of the spec (§7, F1-F16) has a test here or in
``tests/plugins/test_forward.py`` (setup parsing, F16, and the policy lists, F15,
are unit tests there); the test names say which.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from dnslib import DNSRecord
from forward_helpers import (
    StubUpstream,
    ask,
    forward_corefile,
    forward_of,
    has_ipv6_loopback,
    make_certificate,
    metric,
    non_probe,
    relay_to,
    same_answer,
    server_tls_context,
    wait_until,
)

import pycorefile
from pycorefile import Resolver
from pycorefile.chain import Request
from pycorefile.metrics import DURATION_BUCKETS
from pycorefile.plugins.forward import NetTransport, Upstream
from pycorefile.plugins.forward.setup import UpstreamSpec
from pycorefile.server.thread import ServerThread

from upstreams import A_ADDRESS, BIG_TXT, FaultRelay, NsdServer

pytestmark = pytest.mark.integration

RelayFactory = Callable[..., FaultRelay]

#: Names and types of the test zone that give every kind of answer.
QUERIES = [
    ("a.example.test", "A"),             # one record
    ("multi.example.test", "A"),         # an RRset
    ("mx.example.test", "MX"),
    ("aaaa.example.test", "AAAA"),
    ("c1.example.test", "A"),            # CNAME chain
    ("nope.example.test", "A"),          # NXDOMAIN with SOA
    ("a.example.test", "AAAA"),          # NODATA
    ("example.test", "SOA"),
    ("A.Example.TEST", "A"),             # case kept in the question
]


def serve(text: str) -> AbstractContextManager[ServerThread]:
    """A real UDP/TCP server for ``text`` (``with serve(...) as srv: srv.port``)."""
    return pycorefile.serve(text)


# ---------------------------------------------------------------------------
# Answers are the upstream's answers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_answers_equal_querying_the_upstream(authoritative, proto: str) -> None:
    with serve(forward_corefile(authoritative.address)) as srv:
        for qname, qtype in QUERIES:
            for edns, do in ((None, False), (1232, False), (4096, True)):
                got = ask(srv.port, qname, qtype, proto=proto, edns=edns, do=do)
                want = ask(authoritative.port, qname, qtype, proto=proto, edns=edns, do=do)
                same_answer(got, want)
        # A large RRset: as the upstream sends it (truncated over UDP, whole over TCP).
        big = ask(srv.port, "big.example.test", "TXT", proto=proto, edns=4096)
        same_answer(big, ask(authoritative.port, "big.example.test", "TXT", proto=proto, edns=4096))
        if proto == "tcp":
            assert len(big.answer[0]) == len(BIG_TXT)


def test_answers_through_the_in_process_resolver(nsd) -> None:
    with Resolver.from_corefile(forward_corefile(nsd.address)) as r:
        for qname, qtype in QUERIES:
            got = dns.message.from_wire(bytes(r.resolve(qname, qtype).pack()))
            same_answer(got, ask(nsd.port, qname, qtype))


def test_resolver_sync_async_threads_and_close(nsd, relay_factory: RelayFactory) -> None:
    dead = relay_factory()
    dead.stop()
    text = forward_corefile(nsd.address, options="policy sequential")
    r = Resolver.from_corefile(text)
    assert r.resolve("a.example.test", "A").rr[0].rdata.__str__() == A_ADDRESS

    async def many() -> list[DNSRecord]:
        return await asyncio.gather(*(r.resolve_async("mx.example.test", "MX") for _ in range(20)))

    assert all(rep.header.rcode == 0 and rep.rr for rep in asyncio.run(many()))
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: r.resolve("multi.example.test", "A"), range(24)))
    assert all(len(rep.rr) == 2 for rep in replies)
    fwd = forward_of(r.engine)
    assert fwd.upstreams[0].transport.pool_sizes()["udp"] >= 1
    r.close()
    assert all(n == 0 for n in fwd.upstreams[0].transport.pool_sizes().values())

    # A failing upstream leaves a health-check task behind; close() cancels it.
    r2 = Resolver.from_corefile(forward_corefile(dead.address, options="health_check 50ms"))
    assert r2.resolve("a.example.test", "A").header.rcode == dns.rcode.SERVFAIL
    up = forward_of(r2.engine).upstreams[0]
    assert up.health.task is not None
    r2.close()
    assert up.health.task is None
    assert all(n == 0 for n in up.transport.pool_sizes().values())


def test_stop_closes_everything_and_start_reopens(relay: FaultRelay) -> None:
    with Resolver.from_corefile(forward_corefile(relay.address)) as r:
        assert r.resolve("a.example.test").rr
        fwd = forward_of(r.engine)
        loop = r.engine.loop
        assert loop is not None
        asyncio.run_coroutine_threadsafe(fwd.stop(), loop).result(5)
        sizes = fwd.upstreams[0].transport.pool_sizes
        assert all(n == 0 for n in sizes().values())
        reply, msg = r.resolve_reply("a.example.test")
        assert msg.header.rcode == dns.rcode.SERVFAIL and "stopped" in str(reply.error)
        assert all(n == 0 for n in sizes().values())  # nothing new was opened
        asyncio.run_coroutine_threadsafe(fwd.start(r.engine), loop).result(5)
        assert r.resolve("a.example.test").rr


def test_chaos_class_queries_reach_forward(relay: FaultRelay) -> None:
    with serve(forward_corefile(relay.address)) as srv:
        ask(srv.port, "version.bind", "TXT", qclass="CH")
        assert relay.count("version.bind", "TXT") == 1


# ---------------------------------------------------------------------------
# Failover, time limits, recovery
# ---------------------------------------------------------------------------


def test_failover_with_one_refusing_upstream(relay_factory: RelayFactory) -> None:
    dead, good = relay_factory(), relay_factory()
    dead.stop()
    with serve(forward_corefile(dead.address, good.address, options="policy sequential")) as srv:
        for _ in range(5):
            reply = ask(srv.port, "a.example.test")
            assert reply.rcode() == dns.rcode.NOERROR and reply.answer
        assert len(non_probe(good.queries)) == 5


def test_failover_with_one_black_holed_upstream(relay_factory: RelayFactory) -> None:
    hole, good = relay_factory(), relay_factory()
    hole.mode = "drop"
    options = "policy sequential\n read_timeout 200ms\n health_check 20ms"
    with serve(forward_corefile(hole.address, good.address, options=options)) as srv:
        fwd = forward_of(srv.engine)
        fwd.upstreams[0].health.timeout = 0.05
        start = time.monotonic()
        reply = ask(srv.port, "a.example.test")
        assert reply.rcode() == dns.rcode.NOERROR and reply.answer
        assert 0.2 <= time.monotonic() - start < 1.5
        # Health checks take the black hole out; then it is not even tried.
        assert wait_until(lambda: fwd.upstreams[0].down(2), timeout=3)
        tried = len(non_probe(hole.queries))
        start = time.monotonic()
        assert ask(srv.port, "mx.example.test", "MX").answer
        assert time.monotonic() - start < 0.2  # less than one read timeout
        assert len(non_probe(hole.queries)) == tried


def test_servfail_after_about_six_seconds_when_all_upstreams_are_black_holes(
    relay_factory: RelayFactory,
) -> None:
    """Two silent upstreams, default timeouts: attempts at 0, 2 and 4 s, then SERVFAIL."""
    a, b = relay_factory(), relay_factory()
    a.mode = b.mode = "drop"
    with serve(forward_corefile(a.address, b.address)) as srv:
        start = time.monotonic()
        reply = ask(srv.port, "a.example.test", timeout=10)
        took = time.monotonic() - start
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert 5.5 < took < 7.0
    assert len(non_probe(a.queries)) + len(non_probe(b.queries)) == 3


@pytest.mark.parametrize("force_tcp", [False, True])
def test_servfail_at_once_for_refusing_upstreams_and_attempt_cap_f7(
    relay_factory: RelayFactory, force_tcp: bool
) -> None:
    """F7: refused connections are tried exactly max_connect_attempts times (default 2 per
    upstream); every attempt dials a new connection, so the misses counter counts them."""
    a, b = relay_factory(), relay_factory()
    a.stop()
    b.stop()
    base = "max_fails 0\n" + ("force_tcp\n" if force_tcp else "")
    proto = "tcp" if force_tcp else "udp"
    for options, attempts in ((base, 4), (base + "max_connect_attempts 3", 3)):
        with serve(forward_corefile(a.address, b.address, options=options)) as srv:
            start = time.monotonic()
            reply = ask(srv.port, "a.example.test")
            assert time.monotonic() - start < 1.0
            assert reply.rcode() == dns.rcode.SERVFAIL
            misses = metric(srv.engine, "coredns_proxy_conn_cache_misses_total", proto=proto)
            assert misses == attempts


def test_recovery_after_the_upstream_returns(relay: FaultRelay) -> None:
    options = "max_fails 1\n health_check 50ms\n read_timeout 300ms"
    with serve(forward_corefile(relay.address, options=options)) as srv:
        up = forward_of(srv.engine).upstreams[0]
        assert ask(srv.port, "a.example.test").answer
        relay.stop()
        assert ask(srv.port, "a.example.test").rcode() == dns.rcode.SERVFAIL
        assert wait_until(lambda: up.down(1), timeout=3)
        assert metric(srv.engine, "coredns_proxy_healthcheck_failures_total") >= 2
        relay.start()
        assert wait_until(lambda: not up.down(1), timeout=3)
        assert up.fails == 0
        reply = ask(srv.port, "a.example.test")
        assert reply.rcode() == dns.rcode.NOERROR and reply.answer


def test_proxy_chain_never_servfails_f14(relay_factory: RelayFactory) -> None:
    """F14: upstream 1 drops two queries out of three, upstream 2 is fine, max_fails 1."""
    flaky, good = relay_factory(), relay_factory()
    flaky.set_rule(lambda q, i: "drop" if i % 3 != 2 else None)
    options = "max_fails 1\n read_timeout 150ms\n health_check 20ms"
    with serve(forward_corefile(flaky.address, good.address, options=options)) as srv:
        forward_of(srv.engine).upstreams[0].health.timeout = 0.05
        answered = 0
        for _ in range(10):
            try:
                reply = ask(srv.port, "a.example.test", timeout=0.5)
            except dns.exception.Timeout:
                continue
            assert reply.rcode() == dns.rcode.NOERROR
            answered += 1
        assert answered >= 5


# ---------------------------------------------------------------------------
# Policies, except, max_concurrent
# ---------------------------------------------------------------------------


def _counts(relays: list[FaultRelay]) -> list[int]:
    return [len(non_probe(r.queries)) for r in relays]


def test_policy_order_f15(relay_factory: RelayFactory) -> None:
    relays = [relay_factory() for _ in range(3)]
    addrs = [r.address for r in relays]

    with Resolver.from_corefile(forward_corefile(*addrs, options="policy sequential")) as r:
        for _ in range(6):
            r.resolve("a.example.test")
        assert _counts(relays) == [6, 0, 0]

    for x in relays:
        x.reset()
    with Resolver.from_corefile(forward_corefile(*addrs, options="policy round_robin")) as r:
        order = []
        for _ in range(6):
            before = _counts(relays)
            r.resolve("a.example.test")
            order.append([a - b for a, b in zip(_counts(relays), before, strict=True)].index(1))
        # The counter is incremented before use: the first query starts at the second.
        assert order == [1, 2, 0, 1, 2, 0]

    for x in relays:
        x.reset()
    with Resolver.from_corefile(forward_corefile(*addrs)) as r:  # random is the default
        for _ in range(60):
            r.resolve("a.example.test")
        counts = _counts(relays)
        assert sum(counts) == 60 and all(c > 0 for c in counts)


def test_except_and_from(relay: FaultRelay) -> None:
    text = forward_corefile(relay.address, options="except sub.example.test", extra="    whoami")
    with serve(text) as srv:
        assert ask(srv.port, "a.example.test").answer
        assert relay.count() == 1
        reply = ask(srv.port, "x.sub.example.test")  # excepted: whoami answers
        assert reply.rcode() == dns.rcode.NOERROR and not reply.answer and reply.additional
        assert relay.count() == 1
    # FROM itself can never be excluded; names outside FROM go to the next plugin
    # (none here: SERVFAIL).
    relay.reset()
    text = forward_corefile(
        relay.address, options="except example.test", forward_from="example.test"
    )
    with serve(text) as srv:
        assert ask(srv.port, "example.test", "SOA").answer
        assert ask(srv.port, "a.example.test").rcode() == dns.rcode.SERVFAIL
        assert ask(srv.port, "example.org").rcode() == dns.rcode.SERVFAIL
        assert relay.count() == 1


def test_max_concurrent_refuses_the_excess(relay: FaultRelay) -> None:
    relay.set_mode("delay", delay=0.5)
    with serve(forward_corefile(relay.address, options="max_concurrent 2")) as srv:
        gate = threading.Barrier(5)

        def one(i: int) -> int:
            gate.wait()
            time.sleep(0.05 * (i >= 2))  # the first two are in flight before the others
            return ask(srv.port, f"a{i}.example.test").rcode()

        with ThreadPoolExecutor(5) as pool:
            rcodes = sorted(pool.map(one, range(5)))
        assert rcodes.count(dns.rcode.REFUSED) == 3
        assert rcodes.count(dns.rcode.NXDOMAIN) == 2
        assert metric(srv.engine, "coredns_forward_max_concurrent_rejects_total") == 3


# ---------------------------------------------------------------------------
# Transport: protocol choice, truncation, garbage, spoofing
# ---------------------------------------------------------------------------

PROTOCOL_MATRIX = [
    # options, UDP client → upstream proto, TCP client → upstream proto (F11)
    ("", "udp", "tcp"),
    ("force_tcp", "tcp", "tcp"),
    ("prefer_udp", "udp", "udp"),
    ("force_tcp\nprefer_udp", "tcp", "tcp"),
]


@pytest.mark.parametrize(("options", "from_udp", "from_tcp"), PROTOCOL_MATRIX)
def test_protocol_selection_f11(relay: FaultRelay, options: str, from_udp: str, from_tcp: str):
    with serve(forward_corefile(relay.address, options=options)) as srv:
        ask(srv.port, "a.example.test", proto="udp")
        ask(srv.port, "a.example.test", proto="tcp")
    assert [q.proto for q in non_probe(relay.queries)] == [from_udp, from_tcp]


def test_truncated_reply_is_passed_through(nsd, relay: FaultRelay) -> None:
    with serve(forward_corefile(relay.address)) as srv:
        got = ask(srv.port, "big.example.test", "TXT")
        assert got.flags & dns.flags.TC
        same_answer(got, ask(nsd.port, "big.example.test", "TXT"))
        # The client retries over TCP, and forward then asks over TCP too.
        full = ask(srv.port, "big.example.test", "TXT", proto="tcp")
        assert not full.flags & dns.flags.TC and len(full.answer[0]) == len(BIG_TXT)
    assert [q.proto for q in relay.queries] == ["udp", "tcp"]


def test_prefer_udp_retries_over_tcp_on_truncation(relay: FaultRelay) -> None:
    with serve(forward_corefile(relay.address, options="prefer_udp")) as srv:
        full = ask(srv.port, "big.example.test", "TXT", proto="tcp")
    assert not full.flags & dns.flags.TC and len(full.answer[0]) == len(BIG_TXT)
    assert [q.proto for q in relay.queries] == ["udp", "tcp"]


def _twenty_a_without_compression(query: bytes) -> bytes:
    """A reply of 20 A records, names uncompressed, no EDNS and no TC: about 570 bytes
    for a 512-byte client (the kind of upstream CoreDNS's TestCoreDNSOverflow fakes)."""
    end = query.index(b"\x00", 12) + 5
    qname = query[12 : end - 4]
    header = query[:2] + b"\x81\x80" + struct.pack("!HHHH", 1, 20, 0, 0)
    rrs = b"".join(
        qname + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([127, 0, 0, i]) for i in range(1, 21)
    )
    return header + query[12:end] + rrs


def test_oversized_udp_reply_becomes_empty_tc_f12() -> None:
    with StubUpstream(lambda q, proto: _twenty_a_without_compression(q)) as stub:
        query = dns.message.make_query("example.org", "A").to_wire()
        spec = UpstreamSpec(stub.address, stub.host, stub.port)

        async def exchange(proto: str) -> dns.message.Message:
            up = Upstream(spec, NetTransport(spec, read_timeout=1.0))
            try:
                req = Request.from_wire(query, proto="udp")
                return dns.message.from_wire(await up.exchange(req, proto))
            finally:
                await up.transport.close()

        # No options and prefer_udp both ask over UDP: TC=1 and nothing else.
        truncated = asyncio.run(exchange("udp"))
        assert truncated.flags & dns.flags.TC and not truncated.answer
        # force_tcp: the whole answer.
        full = asyncio.run(exchange("tcp"))
        assert not full.flags & dns.flags.TC and len(full.answer[0]) == 20

        with serve(forward_corefile(stub.address)) as srv:
            reply = ask(srv.port, "example.org")
            assert reply.flags & dns.flags.TC and not reply.answer
            assert len(ask(srv.port, "example.org", proto="tcp").answer[0]) == 20


def test_garbage_before_the_reply_is_skipped_f13(relay: FaultRelay) -> None:
    relay.mode = "garbage"
    with serve(forward_corefile(relay.address)) as srv:
        reply = ask(srv.port, "a.example.test")
        assert reply.rcode() == dns.rcode.NOERROR and reply.answer
        assert metric(srv.engine, "pycorefile_forward_spoofed_replies_total") >= 1


@pytest.mark.parametrize("mode", ["wrong_id", "wrong_question"])
def test_spoofed_replies_never_reach_the_client(relay: FaultRelay, mode: str) -> None:
    relay.set_mode(mode, followup=0.05)
    with serve(forward_corefile(relay.address)) as srv:
        reply = ask(srv.port, "a.example.test")
        assert reply.rcode() == dns.rcode.NOERROR
        assert str(reply.question[0].name) == "a.example.test."
        assert [str(rr) for rr in reply.answer[0]] == [A_ADDRESS]
        assert metric(srv.engine, "pycorefile_forward_spoofed_replies_total") >= 1
    # Without the genuine reply the query times out: SERVFAIL, never the spoof.
    relay.reset()
    relay.set_mode(mode, followup=None)
    options = "read_timeout 200ms\n max_connect_attempts 1\n max_fails 0"
    with serve(forward_corefile(relay.address, options=options)) as srv:
        assert ask(srv.port, "a.example.test").rcode() == dns.rcode.SERVFAIL


def test_wrong_question_over_tcp_is_formerr(relay: FaultRelay) -> None:
    """On a TCP connection nobody can spoof, a reply for another question is the
    upstream's fault: FORMERR, as CoreDNS answers."""
    relay.set_mode("wrong_question", followup=None)
    with serve(forward_corefile(relay.address)) as srv:
        assert ask(srv.port, "a.example.test", proto="tcp").rcode() == dns.rcode.FORMERR


def test_request_that_cannot_be_sent_is_formerr_f10(relay: FaultRelay) -> None:
    """F10: a message too large for any DNS transport: FORMERR after one attempt."""
    query = bytearray(dns.message.make_query("a.example.test", "TXT").to_wire())
    query[10:12] = struct.pack("!H", 1)  # ARCOUNT: one huge TXT record
    query += b"\x00" + struct.pack("!HHIH", 16, 1, 0, 65535) + b"\xff" * 65535
    with Resolver.from_corefile(forward_corefile(relay.address)) as r:
        up = forward_of(r.engine).upstreams[0]
        calls = []
        exchange = up.exchange

        async def counting(request, proto):  # type: ignore[no-untyped-def]
            calls.append(proto)
            return await exchange(request, proto)

        up.exchange = counting
        out = r.handle(bytes(query))
        assert out[3] & 0xF == dns.rcode.FORMERR
        assert len(calls) == 1
        assert relay.count() == 0


# ---------------------------------------------------------------------------
# Health checks
# ---------------------------------------------------------------------------

HEALTH_CASES = [
    # options, probe proto, RD, probe name  (F1, F1 over TCP, F2, F3)
    ("", "udp", True, "."),
    ("force_tcp", "tcp", True, "."),
    ("health_check 0.5s no_rec", "udp", False, "."),
    ("health_check 0.5s domain example.org", "udp", True, "example.org."),
]


@pytest.mark.parametrize(("options", "proto", "rd", "name"), HEALTH_CASES)
def test_health_check_query_f1_f2_f3(
    relay: FaultRelay, options: str, proto: str, rd: bool, name: str
) -> None:
    relay.set_rule(lambda q, i: "drop" if i == 0 else None)  # lose the first query only
    with serve(forward_corefile(relay.address, options=options + "\n read_timeout 200ms")) as srv:
        assert ask(srv.port, "a.example.test").answer  # the second attempt is answered
        assert relay.wait_for(1, qtype="NS", timeout=3)
    probes = [q for q in relay.queries if q.qtype == "NS"]
    assert len(probes) == 1  # answered at once: the probe loop ends
    assert probes[0].qname == name and probes[0].rd is rd and probes[0].proto == proto


def test_upstream_down_after_more_than_max_fails_f4(relay: FaultRelay) -> None:
    relay.mode = "drop"
    options = "read_timeout 100ms\n health_check 20ms\n max_connect_attempts 1"
    with serve(forward_corefile(relay.address, options=options)) as srv:
        up = forward_of(srv.engine).upstreams[0]
        up.health.timeout = 0.05
        assert ask(srv.port, "a.example.test").rcode() == dns.rcode.SERVFAIL
        assert wait_until(lambda: up.fails >= 3, timeout=3)
        assert up.down(2) and not up.down(3)
        assert metric(srv.engine, "coredns_proxy_healthcheck_failures_total") >= 3


def test_max_fails_zero_means_no_health_checks_f5(relay: FaultRelay) -> None:
    relay.mode = "drop"
    options = "max_fails 0\n read_timeout 100ms\n health_check 20ms"
    with serve(forward_corefile(relay.address, options=options)) as srv:
        assert ask(srv.port, "a.example.test").rcode() == dns.rcode.SERVFAIL
        time.sleep(0.2)
        assert relay.count(qtype="NS") == 0
        assert forward_of(srv.engine).upstreams[0].health.task is None


def test_all_upstreams_down_f6(relay_factory: RelayFactory) -> None:
    a, b = relay_factory(), relay_factory()
    a.mode = b.mode = "drop"
    options = "max_fails 1\n failfast_all_unhealthy_upstreams\n read_timeout 200ms"
    with Resolver.from_corefile(forward_corefile(a.address, b.address, options=options)) as r:
        fwd = forward_of(r.engine)
        for up in fwd.upstreams:
            up.fails = 2  # as after two failed health checks each
        reply, msg = r.resolve_reply("a.example.test", "A")
        assert msg.header.rcode == dns.rcode.SERVFAIL
        assert str(reply.error) == "no healthy proxies"
        assert len(non_probe(a.queries)) + len(non_probe(b.queries)) == 0
        assert metric(r.engine, "coredns_forward_healthcheck_broken_total") == 1
        # Without failfast one upstream is tried anyway, once.
        fwd.failfast = False
        reply, msg = r.resolve_reply("a.example.test", "A")
        assert msg.header.rcode == dns.rcode.SERVFAIL
        assert str(reply.error) != "no healthy proxies"
        assert len(non_probe(a.queries)) + len(non_probe(b.queries)) == 1


# ---------------------------------------------------------------------------
# Several forward lines: next, next_on_nodata, failover
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def second_nsd():
    """An NSD with data the shared one lacks."""
    extra = "a IN AAAA 2001:db8::99\nonly2 IN A 192.0.2.99\n"
    with NsdServer(extra_records=extra) as server:
        yield server


def _two_forwards(first: str, second: str, options: str) -> str:
    block = f" {{\n        {options}\n    }}" if options else ""
    return (
        ".:0 {\n    bind 127.0.0.1\n"
        f"    forward . {first}{block}\n"
        f"    forward . {second}\n}}\n"
    )


def test_next_on_nodata_chain_f8(nsd, second_nsd) -> None:
    with serve(_two_forwards(nsd.address, second_nsd.address, "next_on_nodata")) as srv:
        reply = ask(srv.port, "a.example.test", "AAAA")
        assert [str(rr) for rr in reply.answer[0]] == ["2001:db8::99"]
        assert ask(srv.port, "a.example.test").answer  # data from the first: kept
    with serve(_two_forwards(nsd.address, second_nsd.address, "")) as srv:
        reply = ask(srv.port, "a.example.test", "AAAA")
        assert reply.rcode() == dns.rcode.NOERROR and not reply.answer


def test_next_rcode_chain(nsd, second_nsd) -> None:
    with serve(_two_forwards(nsd.address, second_nsd.address, "next NXDOMAIN")) as srv:
        reply = ask(srv.port, "only2.example.test")
        assert [str(rr) for rr in reply.answer[0]] == ["192.0.2.99"]
    with serve(_two_forwards(nsd.address, second_nsd.address, "")) as srv:
        assert ask(srv.port, "only2.example.test").rcode() == dns.rcode.NXDOMAIN


def test_failover_rcodes_f9(relay_factory: RelayFactory) -> None:
    a, b = relay_factory(), relay_factory()
    a.mode = b.mode = "servfail"
    options = "policy sequential\n failover SERVFAIL"
    with serve(forward_corefile(a.address, b.address, options=options)) as srv:
        reply = ask(srv.port, "a.example.test")
        assert reply.rcode() == dns.rcode.SERVFAIL  # the last upstream's own reply
        assert (a.count(), b.count()) == (1, 1)
        b.mode = "pass"
        assert ask(srv.port, "a.example.test").answer
    a.reset()
    a.mode = "servfail"
    with serve(forward_corefile(a.address, b.address, options="policy sequential")) as srv:
        assert ask(srv.port, "a.example.test").rcode() == dns.rcode.SERVFAIL
        assert a.count() == 1


# ---------------------------------------------------------------------------
# DNS over TLS
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory):
    return make_certificate(tmp_path_factory.mktemp("tls"))


def test_dns_over_tls(certificate, nsd) -> None:
    cert, key = certificate
    handler = relay_to(nsd.host, nsd.port)
    with StubUpstream(handler, tls=server_tls_context(cert, key)) as stub:
        port = stub.tls_port
        good = [
            (f"tls://127.0.0.1:{port}", f"tls {cert}\n tls_servername dns.test"),
            (f"tls://127.0.0.1%dns.test:{port}", f"tls {cert}"),
            (f"tls://127.0.0.1:{port}", f"tls {cert}"),  # verified against the IP SAN
        ]
        for to, options in good:
            with serve(forward_corefile(to, options=options)) as srv:
                for proto in ("udp", "tcp"):
                    got = ask(srv.port, "mx.example.test", "MX", proto=proto)
                    same_answer(got, ask(nsd.port, "mx.example.test", "MX", proto=proto))
                # One TLS connection, reused.
                hits = metric(srv.engine, "coredns_proxy_conn_cache_hits_total", proto="tcp-tls")
                assert hits == 1
        assert stub.count(proto="tls") == 6 and stub.count(proto="udp") == 0

        bad = [
            (f"tls://127.0.0.1:{port}", f"tls {cert}\n tls_servername other.test"),
            (f"tls://127.0.0.1:{port}", ""),  # the system CAs do not know the test CA
        ]
        for to, options in bad:
            opts = options + "\n max_fails 0"
            with Resolver.from_corefile(forward_corefile(to, options=opts)) as r:
                reply, msg = r.resolve_reply("a.example.test")
                assert msg.header.rcode == dns.rcode.SERVFAIL
                assert "certificate" in str(reply.error)


def test_dns_over_tls_health_checks_use_tls(certificate, nsd) -> None:
    cert, key = certificate
    seen = {"a": 0}
    relay = relay_to(nsd.host, nsd.port)

    def drop_first_a(data: bytes, proto: str) -> bytes | None:
        if dns.message.from_wire(data).question[0].rdtype == dns.rdatatype.A:
            seen["a"] += 1
            if seen["a"] == 1:
                return None
        return relay(data, proto)

    with StubUpstream(drop_first_a, tls=server_tls_context(cert, key)) as stub:
        to = f"tls://127.0.0.1%dns.test:{stub.tls_port}"
        with serve(forward_corefile(to, options=f"tls {cert}\n read_timeout 200ms")) as srv:
            assert ask(srv.port, "a.example.test").answer
            assert wait_until(lambda: stub.count(qtype="NS") >= 1, timeout=3)
        assert stub.count(qtype="NS", proto="tls") == stub.count(qtype="NS")


# ---------------------------------------------------------------------------
# Connection reuse and metrics
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_connections_are_reused(relay: FaultRelay, proto: str) -> None:
    with serve(forward_corefile(relay.address)) as srv:
        for _ in range(3):
            assert ask(srv.port, "a.example.test", proto=proto).answer
        labels = {"proto": proto, "to": relay.address, "proxy_name": "forward"}
        assert metric(srv.engine, "coredns_proxy_conn_cache_misses_total", **labels) == 1
        assert metric(srv.engine, "coredns_proxy_conn_cache_hits_total", **labels) == 2
    if proto == "tcp":
        assert len(relay.queries) == 3  # three queries on one TCP connection


def test_expired_connections_are_not_reused(relay: FaultRelay) -> None:
    with serve(forward_corefile(relay.address, options="expire 100ms")) as srv:
        up = forward_of(srv.engine).upstreams[0]
        for proto in ("udp", "tcp"):
            ask(srv.port, "a.example.test", proto=proto)
            time.sleep(0.25)
            # The janitor closed the idle connection.
            assert up.transport.pool_sizes()[proto] == 0
            ask(srv.port, "a.example.test", proto=proto)
            assert metric(srv.engine, "coredns_proxy_conn_cache_misses_total", proto=proto) == 2


def test_one_udp_socket_carries_many_queries_at_once(relay: FaultRelay) -> None:
    """ID multiplexing: concurrent queries share a socket, up to its in-flight limit."""
    relay.set_mode("delay", delay=0.3)
    with Resolver.from_corefile(forward_corefile(relay.address)) as r:
        up = forward_of(r.engine).upstreams[0]

        async def many(n: int) -> list[DNSRecord]:
            return await asyncio.gather(*(r.resolve_async("a.example.test") for _ in range(n)))

        assert all(rep.header.rcode == 0 and rep.rr for rep in asyncio.run(many(60)))
        assert up.transport.pool_sizes()["udp"] == 1
        assert metric(r.engine, "coredns_proxy_conn_cache_misses_total", proto="udp") == 1
        assert metric(r.engine, "coredns_proxy_conn_cache_hits_total", proto="udp") == 59
        # More than UDP_INFLIGHT_PER_SOCKET (100) in flight: a second socket.
        assert all(rep.header.rcode == 0 for rep in asyncio.run(many(150)))
        assert up.transport.pool_sizes()["udp"] == 2


def test_udp_sockets_are_retired_after_their_query_budget(
    relay: FaultRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pycorefile.plugins.forward import upstream as upstream_module

    monkeypatch.setattr(upstream_module, "UDP_QUERIES_PER_SOCKET", 3)
    with Resolver.from_corefile(forward_corefile(relay.address)) as r:
        for _ in range(7):
            assert r.resolve("a.example.test").rr
        assert metric(r.engine, "coredns_proxy_conn_cache_misses_total", proto="udp") == 3


def test_max_age_closes_busy_connections(relay: FaultRelay) -> None:
    with serve(forward_corefile(relay.address, options="expire 100ms\n max_age 150ms")) as srv:
        for proto in ("udp", "tcp"):
            for _ in range(6):  # never idle for 100 ms, but older than 150 ms after a while
                ask(srv.port, "a.example.test", proto=proto)
                time.sleep(0.06)
            assert metric(srv.engine, "coredns_proxy_conn_cache_misses_total", proto=proto) >= 2


@pytest.mark.parametrize(("options", "kept"), [("", 5), ("max_idle_conns 1", 1)])
def test_max_idle_conns(relay: FaultRelay, options: str, kept: int) -> None:
    relay.set_mode("delay", delay=0.2)
    with serve(forward_corefile(relay.address, options=options)) as srv:
        with ThreadPoolExecutor(5) as pool:
            list(pool.map(lambda i: ask(srv.port, f"q{i}.example.test", proto="tcp"), range(5)))
        assert forward_of(srv.engine).upstreams[0].transport.pool_sizes()["tcp"] == kept


def test_source_address(relay: FaultRelay) -> None:
    with Resolver.from_corefile(forward_corefile(relay.address, options="source_address 127.0.0.1")) as r:
        assert r.resolve("a.example.test").rr
    options = "source_address 192.0.2.1\n max_fails 0"
    with Resolver.from_corefile(forward_corefile(relay.address, options=options)) as r:
        reply, msg = r.resolve_reply("a.example.test")
        assert msg.header.rcode == dns.rcode.SERVFAIL
        assert "cannot assign requested address" in str(reply.error)


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_upstream(nsd) -> None:
    with StubUpstream(relay_to(nsd.host, nsd.port), host="::1") as stub:
        with serve(forward_corefile(stub.address)) as srv:
            for proto in ("udp", "tcp"):
                same_answer(ask(srv.port, "mx.example.test", "MX", proto=proto),
                            ask(nsd.port, "mx.example.test", "MX", proto=proto))
            assert forward_of(srv.engine).upstreams[0].addr == f"[::1]:{stub.port}"


def test_metrics_names_labels_and_buckets(relay: FaultRelay) -> None:
    with serve(forward_corefile(relay.address)) as srv:
        ask(srv.port, "a.example.test")
        ask(srv.port, "nope.example.test")
        m = srv.engine.metrics
        hist = m.get("coredns_proxy_request_duration_seconds")
        assert hist is not None and hist.kind == "histogram"
        assert hist.labelnames == ("proxy_name", "to", "rcode")
        assert hist.buckets == DURATION_BUCKETS
        assert {k for k, _ in hist.items()} == {
            ("forward", relay.address, "NOERROR"),
            ("forward", relay.address, "NXDOMAIN"),
        }
        labelled = {
            "coredns_proxy_healthcheck_failures_total": ("proxy_name", "to"),
            "coredns_proxy_conn_cache_hits_total": ("proxy_name", "to", "proto"),
            "coredns_proxy_conn_cache_misses_total": ("proxy_name", "to", "proto"),
            "coredns_forward_healthcheck_broken_total": (),
            "coredns_forward_max_concurrent_rejects_total": (),
            "pycorefile_forward_spoofed_replies_total": ("to",),
        }
        for name, labels in labelled.items():
            got = m.get(name)
            assert got is not None and got.kind == "counter" and got.labelnames == labels
        # The exposition (prometheus_client writes label names sorted).
        text = m.exposition().decode()
        assert (
            f'coredns_proxy_request_duration_seconds_count{{proxy_name="forward",'
            f'rcode="NOERROR",to="{relay.address}"}} 1.0' in text
        )
        assert (
            f'coredns_proxy_request_duration_seconds_bucket{{le="0.00025",proxy_name="forward",'
            f'rcode="NOERROR",to="{relay.address}"}}' in text
        )
        assert (
            f'coredns_proxy_conn_cache_misses_total{{proto="udp",proxy_name="forward",'
            f'to="{relay.address}"}} 1.0' in text
        )


# ---------------------------------------------------------------------------
# Upstreams given by host name (CoreDNS forward: resolved when the Corefile loads)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def naming() -> Iterator[NsdServer]:
    """A second NSD whose zone names the upstream: dns-up.example.test → 127.0.0.1."""
    with NsdServer(extra_records="dns-up IN A 127.0.0.1\n") as server:
        yield server


def test_host_name_upstream_through_the_resolver_option(naming, knot) -> None:
    text = forward_corefile(
        f"dns-up.example.test:{knot.port}", options=f"        resolver 127.0.0.9:9 {naming.address}"
    )
    with serve(text) as srv:
        fwd = forward_of(srv.engine)
        assert [s.addr for s in fwd.config.upstreams] == [f"127.0.0.1:{knot.port}"]
        r = ask(srv.port, "a.example.test")
        assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].address == A_ADDRESS


def test_host_name_upstreams_are_deduplicated_with_the_rest(naming, knot) -> None:
    text = forward_corefile(
        f"127.0.0.1:{knot.port}", f"dns-up.example.test:{knot.port}", "tls://dns-up.example.test%ns.test",
        options=f"        resolver {naming.address}",
    )
    with Resolver.from_corefile(text) as r:
        specs = forward_of(r.engine).config.upstreams
    assert [(s.addr, s.scheme, s.server_name) for s in specs] == [
        (f"127.0.0.1:{knot.port}", "dns", None),
        ("127.0.0.1:853", "tls", "ns.test"),
    ]


def test_a_host_name_that_does_not_resolve_fails_at_its_line(naming) -> None:
    text = forward_corefile("nothing-here.example.test", options=f"        resolver {naming.address}")
    with pytest.raises(pycorefile.CorefileError) as err:
        pycorefile.Resolver.from_corefile(text)
    assert 'failed to resolve "nothing-here.example.test"' in str(err.value)
    assert "Corefile:3" in str(err.value)


def test_host_name_upstream_through_the_system_resolver(knot) -> None:
    # "localhost" comes from /etc/hosts: no network needed.
    with serve(forward_corefile(f"localhost:{knot.port}")) as srv:
        addrs = [s.addr for s in forward_of(srv.engine).config.upstreams]
        assert f"127.0.0.1:{knot.port}" in addrs
        assert set(addrs) <= {f"127.0.0.1:{knot.port}", f"[::1]:{knot.port}"}
        r = ask(srv.port, "a.example.test")
        assert r.answer[0][0].address == A_ADDRESS
