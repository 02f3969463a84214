"""The cache plugin in a real server, in front of the real ``forward`` plugin, against
real upstream servers (NSD) and the fault relay, which counts every query that gets
past the cache.

Time: the cache's clock (``Cache.clock``) is replaced by a fake one where a test
needs hours to pass; one test uses the real clock to show TTLs counting down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dns.asyncquery
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

import pycorefile
from pycorefile.plugins.cache import Cache

from upstreams import (
    A_ADDRESS,
    A_TTL,
    MULTI_ADDRESSES,
    NEGATIVE_TTL,
    SHORT_TTL,
    FaultRelay,
    NsdServer,
)

pytestmark = pytest.mark.integration


class Clock:
    """A clock for the cache that moves only when told to."""

    def __init__(self) -> None:
        # Whole seconds, so that "stored + TTL" is exactly the expiry, not 1e-12 before.
        self.now = float(int(time.monotonic()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def cached_server(
    upstream: str, cache: str = "cache", *, fake_clock: bool = True, forward: str = ""
) -> Iterator[tuple[Any, Cache, Clock]]:
    """``pycorefile.serve`` of ``forward . UPSTREAM`` behind ``cache`` on loopback."""
    block = f" {{\n{forward}\n}}" if forward else ""
    text = f".:0 {{\n    bind 127.0.0.1\n    forward . {upstream}{block}\n    {cache}\n}}\n"
    clock = Clock()
    with pycorefile.serve(text) as srv:
        plugin = next(p for p in srv.engine.plugins() if isinstance(p, Cache))
        if fake_clock:
            plugin.clock = clock
        yield srv, plugin, clock


def ask(
    srv: Any,
    name: str,
    qtype: str = "A",
    *,
    proto: str = "udp",
    edns: int | None = 1232,
    do: bool = False,
    timeout: float = 3.0,
) -> dns.message.Message:
    q = dns.message.make_query(
        name, qtype, use_edns=0 if edns is not None else False, payload=edns or 1232, want_dnssec=do
    )
    if proto == "tcp":
        return dns.query.tcp(q, srv.host, port=srv.port, timeout=timeout)
    return dns.query.udp(q, srv.host, port=srv.port, timeout=timeout)


def ttl(msg: dns.message.Message) -> int:
    return (msg.answer or msg.authority)[0].ttl


def addresses(msg: dns.message.Message) -> list[str]:
    return sorted(r.address for rrset in msg.answer for r in rrset if rrset.rdtype == dns.rdatatype.A)


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_second_query_never_reaches_upstream(relay: FaultRelay) -> None:
    with cached_server(relay.address) as (srv, cache, clock):
        first = ask(srv, "a.example.test")
        assert addresses(first) == [A_ADDRESS] and ttl(first) == A_TTL
        assert relay.count("a.example.test") == 1
        clock.advance(10)
        for proto in ("udp", "tcp"):
            hit = ask(srv, "A.Example.TEST", proto=proto)
            assert addresses(hit) == [A_ADDRESS] and ttl(hit) == A_TTL - 10
            assert hit.flags & dns.flags.AA
            assert str(hit.question[0].name) == "A.Example.TEST."
        assert relay.count("a.example.test") == 1
        assert srv.metrics.sample("coredns_cache_hits_total", {"type": "success"}) == 2
        clock.advance(A_TTL - 10)
        ask(srv, "a.example.test")
        assert relay.count("a.example.test") == 2


def test_ttls_count_down_in_real_time(relay: FaultRelay) -> None:
    with cached_server(relay.address, fake_clock=False) as (srv, cache, clock):
        # short.example.test has TTL 2; the cache's 5 s floor applies at once.
        assert SHORT_TTL < 5
        assert ttl(ask(srv, "short.example.test")) == 5
        time.sleep(1.05)
        assert ttl(ask(srv, "short.example.test")) == 4
        assert relay.count("short.example.test") == 1


def test_nxdomain_cached_with_the_soa_ttl(relay: FaultRelay) -> None:
    with cached_server(relay.address) as (srv, cache, clock):
        miss = ask(srv, "nope.example.test")
        assert miss.rcode() == dns.rcode.NXDOMAIN and ttl(miss) == NEGATIVE_TTL
        clock.advance(NEGATIVE_TTL - 1)
        hit = ask(srv, "nope.example.test")
        assert hit.rcode() == dns.rcode.NXDOMAIN and ttl(hit) == 1
        assert hit.authority[0].rdtype == dns.rdatatype.SOA
        assert relay.count("nope.example.test") == 1
        assert len(cache.denial) == 1
        clock.advance(1)
        ask(srv, "nope.example.test")
        assert relay.count("nope.example.test") == 2


def test_nodata_cached_in_the_denial_cache(relay: FaultRelay) -> None:
    with cached_server(relay.address) as (srv, cache, clock):
        for _ in range(2):
            msg = ask(srv, "a.example.test", "AAAA")
            assert msg.rcode() == dns.rcode.NOERROR and not msg.answer and ttl(msg) == NEGATIVE_TTL
        assert relay.count("a.example.test", "AAAA") == 1 and len(cache.denial) == 1


def test_servfail_cached_for_5_seconds(relay: FaultRelay) -> None:
    with cached_server(relay.address) as (srv, cache, clock):
        relay.mode = "servfail"
        assert ask(srv, "a.example.test").rcode() == dns.rcode.SERVFAIL
        relay.mode = "pass"
        clock.advance(4.9)
        assert ask(srv, "a.example.test").rcode() == dns.rcode.SERVFAIL
        assert relay.count("a.example.test") == 1
        clock.advance(0.2)
        fresh = ask(srv, "a.example.test")
        assert fresh.rcode() == dns.rcode.NOERROR and addresses(fresh) == [A_ADDRESS]
        assert relay.count("a.example.test") == 2


#: 1100 names with their own A record. Distinct positive answers: NSD's response rate
#: limiting (which answers a burst of NXDOMAINs with TC=1) does not group them.
BULK = 1100


@pytest.fixture(scope="module")
def bulk_nsd() -> Iterator[NsdServer]:
    records = "\n".join(f"bulk{i} 300 IN A 198.18.{i // 256}.{i % 256}" for i in range(BULK))
    with NsdServer(extra_records=records) as server:
        yield server


def test_capacity_bound_holds(bulk_nsd: NsdServer) -> None:
    # CoreDNS's sizing: 256 shards of max(10 // 256, 4) entries = 1024.
    with cached_server(bulk_nsd.address, "cache {\n success 10\n}") as (srv, cache, clock):
        names = [f"bulk{i}.example.test" for i in range(BULK)]

        async def run() -> list[dns.message.Message]:
            sem = asyncio.Semaphore(50)

            async def one(name: str) -> dns.message.Message:
                async with sem:
                    q = dns.message.make_query(name, "A")
                    return await dns.asyncquery.udp(q, srv.host, port=srv.port, timeout=5)

            return await asyncio.gather(*(one(n) for n in names))

        replies = asyncio.run(run())
        assert all(len(r.answer) == 1 and not r.flags & dns.flags.TC for r in replies)
        assert len(cache.success) == 1024
        assert srv.metrics.sample("coredns_cache_evictions_total", {"type": "success"}) == BULK - 1024
        assert srv.metrics.sample("coredns_cache_entries", {"type": "success"}) == 1024
        # The newest entries are there; most of the first ones made room.
        assert cache.entry(f"bulk{BULK - 1}.example.test.") is not None


def test_serve_stale_while_upstream_is_stopped(relay: FaultRelay) -> None:
    with cached_server(relay.address, "cache {\n serve_stale 1h\n}") as (srv, cache, clock):
        assert ttl(ask(srv, "a.example.test")) == A_TTL
        relay.stop()
        clock.advance(A_TTL + 60)
        start = time.monotonic()
        stale = ask(srv, "a.example.test")
        assert time.monotonic() - start < 1.0  # answered at once, refreshed behind
        assert addresses(stale) == [A_ADDRESS] and ttl(stale) == 0
        assert srv.metrics.sample("coredns_cache_served_stale_total") >= 1
        relay.start()
        # Once the upstream is back, a background refresh replaces the stale entry.
        wait_until(lambda: ttl(ask(srv, "a.example.test")) == A_TTL, timeout=15)
        assert relay.count("a.example.test") >= 2


def test_serve_stale_verify_timeout_while_upstream_is_silent(relay: FaultRelay) -> None:
    block = "cache {\n serve_stale 1h verify 100ms 30s\n}"
    with cached_server(relay.address, block) as (srv, cache, clock):
        ask(srv, "a.example.test")
        relay.mode = "drop"
        clock.advance(A_TTL + 1)
        start = time.monotonic()
        stale = ask(srv, "a.example.test")
        assert time.monotonic() - start < 1.0
        assert addresses(stale) == [A_ADDRESS] and ttl(stale) == 30
        relay.mode = "pass"
        wait_until(lambda: ttl(ask(srv, "a.example.test")) == A_TTL, timeout=15)


def test_prefetch_refreshes_before_expiry(relay: FaultRelay) -> None:
    with cached_server(relay.address, "cache 100 {\n prefetch 1\n}") as (srv, cache, clock):
        assert ttl(ask(srv, "a.example.test")) == 100
        clock.advance(91)
        assert ttl(ask(srv, "a.example.test")) == 9  # at most 10% left: prefetch
        assert relay.wait_for(2, "a.example.test")
        # The refresh went upstream over TCP, as CoreDNS's prefetch does.
        assert relay.count("a.example.test", proto="tcp") == 1
        wait_until(lambda: cache.entry("a.example.test.").stored == clock.now)
        clock.advance(9)
        msg = ask(srv, "a.example.test")
        assert ttl(msg) == 91 and addresses(msg) == [A_ADDRESS]
        assert relay.count("a.example.test") == 2
        assert srv.metrics.sample("coredns_cache_prefetch_total") == 1


def test_concurrent_misses_make_one_upstream_query(relay: FaultRelay) -> None:
    relay.set_mode("delay", delay=0.3)
    with cached_server(relay.address) as (srv, cache, clock):

        async def run() -> list[dns.message.Message]:
            queries = [dns.message.make_query("multi.example.test", "A") for _ in range(100)]
            return await asyncio.gather(
                *(dns.asyncquery.udp(q, srv.host, port=srv.port, timeout=5) for q in queries)
            )

        replies = asyncio.run(run())
        assert relay.count("multi.example.test") == 1
        assert all(addresses(r) == sorted(MULTI_ADDRESSES) for r in replies)
        assert srv.metrics.sample("coredns_cache_misses_total") == 100


def test_c29_cache_10_caps_long_and_floors_short_ttls(nsd: NsdServer) -> None:
    with cached_server(nsd.address, "cache 10", fake_clock=False) as (srv, cache, clock):
        for _ in range(2):  # miss, then hit
            long = ask(srv, "a.example.test", edns=None)
            assert len(long.answer[0]) == 1 and ttl(long) == 10
            assert ttl(ask(srv, "short.example.test", edns=None)) == 5


@pytest.mark.parametrize("bufsize", [4096, None])
def test_c30_client_opt_echoed(nsd: NsdServer, bufsize: int | None) -> None:
    with cached_server(nsd.address, "cache 10") as (srv, cache, clock):
        for _ in range(2):  # miss, then hit
            msg = ask(srv, "a.example.test", edns=bufsize, do=bufsize is not None)
            if bufsize is None:
                assert msg.edns == -1
            else:
                assert msg.edns == 0 and msg.payload == bufsize
                assert msg.ednsflags & dns.flags.DO
        assert len(cache) == 1
