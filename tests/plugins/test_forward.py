"""The forward plugin without real upstreams: setup parsing (F16), policies (F15), the
per-query algorithm over a test-double transport, and the reply byte shaping.

Real servers, sockets and timing are in ``tests/integration/test_forward.py``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest
from forward_helpers import forward_of

import pycorefile
from pycorefile import CorefileError, Resolver
from pycorefile import wire as w
from pycorefile.chain import Request
from pycorefile.corefile import parse
from pycorefile.plugins import forward as fwd_pkg
from pycorefile.plugins.forward import Forward, MockTransport
from pycorefile.plugins.forward import _in_zone as in_zone
from pycorefile.plugins.forward.policy import Random, RoundRobin, Sequential
from pycorefile.plugins.forward.replies import for_client, truncated, udp_accepts
from pycorefile.plugins.forward.setup import DEFAULT_EXPIRE, DEFAULT_READ_TIMEOUT
from pycorefile.routing import Engine, finish

# ---------------------------------------------------------------------------
# Setup (F16)
# ---------------------------------------------------------------------------


def setup(body: str, config_dir: str | None = None) -> Forward:
    """The (first) forward plugin of a one-block Corefile whose body is ``body``."""
    text = ".:53 {\n" + body + "\n}\n"
    engine = Engine(parse(text), config_dir=config_dir)
    return forward_of(engine)


def setup_error(body: str) -> str:
    with pytest.raises(CorefileError) as info:
        pycorefile.loads(".:53 {\n" + body + "\n}\n")
    return str(info.value)


def test_defaults_f16() -> None:
    f = setup("forward . 127.0.0.1")
    c = f.config
    assert f.from_zone == "." and f.ignored == ()
    assert [u.addr for u in f.upstreams] == ["127.0.0.1:53"]
    assert (c.max_fails, c.hc_recursion_desired, c.hc_domain, c.hc_interval) == (2, True, ".", 0.5)
    assert (c.expire, c.max_age, c.max_idle_conns) == (DEFAULT_EXPIRE, 0, 0)
    assert c.read_timeout == DEFAULT_READ_TIMEOUT == 2.0
    assert (c.force_tcp, c.prefer_udp, c.policy, c.max_concurrent) == (False, False, "random", 0)
    assert c.max_connect_attempts is None and f.connect_attempts == 2
    assert not c.failfast and not c.next_on_nodata and c.doh_method == "POST"
    assert type(f.policy) is Random
    assert f.enables_chaos


@pytest.mark.parametrize(
    ("line", "addrs"),
    [
        ("forward . 127.0.0.1:53", ["127.0.0.1:53"]),
        ("forward . 127.0.0.1:8080", ["127.0.0.1:8080"]),
        ("forward . dns://127.0.0.1", ["127.0.0.1:53"]),
        ("forward . [::1]:53", ["[::1]:53"]),
        ("forward . ::1", ["[::1]:53"]),
        ("forward . [2003::1]:5353", ["[2003::1]:5353"]),
        ("forward . tls://127.0.0.1", ["127.0.0.1:853"]),
        ("forward . tls://[2400:3200::1%dns.alidns.com]:853", ["[2400:3200::1]:853"]),
        # Duplicates go, first seen wins (the scheme does not make an address different).
        ("forward . 10.0.0.1 10.0.0.2 dns://10.0.0.1:53 10.0.0.2:53", ["10.0.0.1:53", "10.0.0.2:53"]),
    ],
)
def test_upstream_forms(line: str, addrs: list[str]) -> None:
    assert [u.addr for u in setup(line).upstreams] == addrs


def test_from_cidr_and_except_are_normalised_f16() -> None:
    assert setup("forward 10.9.3.0/18 127.0.0.1").from_zone == "0.9.10.in-addr.arpa."
    f = setup("forward Example.ORG 127.0.0.1 {\nexcept Miek.NL 10.0.0.0/24\n}")
    assert f.from_zone == "example.org."
    assert f.ignored == ("miek.nl.", "0.0.10.in-addr.arpa.")


def test_options_parse_f16() -> None:
    f = setup(
        """forward . 127.0.0.1 127.0.0.2 {
            max_fails 3
            max_connect_attempts 5
            health_check 1s no_rec domain Example.org
            force_tcp
            prefer_udp
            expire 20s
            max_age 30s
            max_idle_conns 10
            read_timeout 500ms
            policy round_robin
            max_concurrent 1000
            next NXDOMAIN servfail
            next_on_nodata
            failover SERVFAIL REFUSED
            failfast_all_unhealthy_upstreams
            doh_method GET
            source_address ::ffff:192.0.2.1
            resolver 8.8.8.8 [2001:4860::8888]:53
        }"""
    )
    c = f.config
    assert (c.max_fails, c.max_connect_attempts, f.connect_attempts) == (3, 5, 5)
    assert (c.hc_interval, c.hc_recursion_desired, c.hc_domain) == (1.0, False, "example.org.")
    assert c.force_tcp and c.prefer_udp and f.force_tcp and not f.prefer_udp  # force_tcp wins
    assert (c.expire, c.max_age, c.max_idle_conns, c.read_timeout) == (20.0, 30.0, 10, 0.5)
    assert type(f.policy) is RoundRobin and c.max_concurrent == 1000
    assert c.next_rcodes == [3, 2] and c.next_on_nodata
    assert c.failover_rcodes == [2, 5] and c.failfast and c.doh_method == "GET"
    assert c.source_address == "192.0.2.1"
    assert c.resolvers == ["8.8.8.8", "[2001:4860::8888]:53"]
    hc = f.upstreams[0].health
    assert (hc.interval, hc.recursion_desired, hc.domain, hc.proto) == (
        1.0, False, "example.org.", "tcp",
    )
    assert setup("forward . 127.0.0.1 {\nmax_connect_attempts 0\n}").connect_attempts == 0
    assert setup("forward . 1.1.1.1 1.0.0.1 9.9.9.9").connect_attempts == 6
    assert setup("forward . 127.0.0.1 {\nhealth_check 0.5s domain .\n}").config.hc_domain == "."


def test_several_lines_chain_in_order() -> None:
    engine = Engine(
        pycorefile.loads(
            ".:53 {\n forward 1st.example.org 10.0.0.1\n forward 2nd.example.org 10.0.0.2\n"
            " forward 3rd.example.org 10.0.0.3\n}\n"
        )
    )
    chain = engine.chains[0]
    assert [p.from_zone for p in chain.plugins] == [
        "1st.example.org.", "2nd.example.org.", "3rd.example.org.",
    ]
    link = chain.head
    for p in chain.plugins:
        assert link.plugin is p  # type: ignore[union-attr]
        link = link.next  # type: ignore[union-attr]


def test_resolv_conf_files_f16(tmp_path: Path) -> None:
    (tmp_path / "resolv.conf").write_text(
        "# comment\nsearch example.org\nnameserver 10.10.255.252\nnameserver 10.10.255.253\n"
    )
    (tmp_path / "v6.conf").write_text("nameserver 0388:d254:7aec:6892:9f7f:e93b:5806:1b0f%en0\n")
    (tmp_path / "empty.conf").write_text("# nameserver 1.1.1.1\n")
    cfg = str(tmp_path)
    f = setup("forward . resolv.conf", config_dir=cfg)  # relative to the Corefile's directory
    assert [u.addr for u in f.upstreams] == ["10.10.255.252:53", "10.10.255.253:53"]
    f = setup(f"forward . {tmp_path / 'v6.conf'}", config_dir=cfg)
    assert [u.addr for u in f.upstreams] == ["[388:d254:7aec:6892:9f7f:e93b:5806:1b0f]:53"]
    f = setup("forward . empty.conf 127.0.0.1", config_dir=cfg)
    assert [u.addr for u in f.upstreams] == ["127.0.0.1:53"]
    with pytest.raises(CorefileError, match="no valid upstream addresses found"):
        Engine(parse(".:53 {\n forward . empty.conf\n}\n"), config_dir=cfg)


def test_tls_server_names_f16(tmp_path: Path) -> None:
    f = setup("forward . tls://127.0.0.1 {\ntls_servername dns\n}")
    assert f.upstreams[0].spec.server_name == "dns"
    f = setup("forward . tls://127.0.0.1%example.net {\ntls\n}")
    assert f.upstreams[0].spec.server_name == "example.net"
    assert f.upstreams[0].addr == "127.0.0.1:853"
    f = setup(
        "forward . tls://127.0.0.1%example.net:854 tls://127.0.0.2%example.net "
        "tls://fe80::1%example.com {\ntls\n}"
    )
    assert [(u.addr, u.spec.server_name) for u in f.upstreams] == [
        ("127.0.0.1:854", "example.net"),
        ("127.0.0.2:853", "example.net"),
        ("[fe80::1]:853", "example.com"),
    ]
    f = setup("forward . tls://[2400:3200::1]:853 {\ntls\ntls_servername dns.alidns.com\n}")
    assert f.upstreams[0].spec.server_name == "dns.alidns.com"
    tls = f.upstreams[0].transport.tls
    assert isinstance(tls, ssl.SSLContext) and tls.minimum_version == ssl.TLSVersion.TLSv1_2
    assert tls.verify_mode == ssl.CERT_REQUIRED and tls.check_hostname
    # tls on a plain upstream is accepted and unused; tls:// alone uses the system CAs.
    assert setup("forward . 127.0.0.1 {\ntls\n}").upstreams[0].transport.tls is None
    assert setup("forward . tls://127.0.0.1").upstreams[0].transport.tls is not None


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("forward", 2, "Wrong argument count or unexpected line ending after 'forward'"),
        ("forward .", 2, "Wrong argument count or unexpected line ending after '.'"),
        ("forward . https://1.1.1.1/", 2, "DNS over HTTPS (https://) upstreams are not supported by pycorefile"),
        ("forward . https://127.0.0.1", 2, "DNS over HTTPS (https://) upstreams are not supported by pycorefile"),
        ("forward . quic://127.0.0.1", 2, "'quic' is not supported as a destination protocol in forward"),
        # A host name is looked up while loading (here through a closed port, so the
        # test needs no network); something that is not a name cannot be.
        ("forward . a27.0.0.1 {\nresolver 127.0.0.1:9\n}", 2,
         'failed to resolve "a27.0.0.1": no addresses found for "a27.0.0.1"'),
        ("forward . ;; {\nresolver 127.0.0.1:9\n}", 2, 'failed to resolve ";;"'),
        ("forward . a..b", 2, 'not an IP address, file, or valid domain: "a..b"'),
        ("forward . 127.0.0.1:99999", 2, "invalid port"),
        ("forward . 127.0.0.1 {\nblaatl\n}", 3, "unknown property 'blaatl'"),
        ("forward . 127.0.0.1 {\nhealth_check 0.5s domain\n}", 3, "Wrong argument count or unexpected line ending after 'domain'"),
        ("forward . 127.0.0.1 {\nhealth_check no_rec\n}", 3, 'time: invalid duration "no_rec"'),
        ("forward . 127.0.0.1 {\nhealth_check 0.5s rec\n}", 3, "health_check: unknown option rec"),
        ("forward . 127.0.0.1 {\nhealth_check 0.5s domain example..org\n}", 3, "health_check: invalid domain name example..org"),
        ("forward . 127.0.0.1 {\nhealth_check -1s\n}", 3, "health_check can't be negative"),
        ("forward " + "x" * 64 + " 127.0.0.1", 2, "unable to normalize '" + "x" * 64 + "'"),
        ("forward . 127.0.0.1 {\nmax_fails -1\n}", 3, 'strconv.ParseUint: parsing "-1": invalid syntax'),
        ("forward . 127.0.0.1 {\nmax_connect_attempts many\n}", 3, "invalid syntax"),
        ("forward . 127.0.0.1 {\nmax_concurrent many\n}", 3, "invalid syntax"),
        ("forward . 127.0.0.1 {\nmax_concurrent -4\n}", 3, "max_concurrent can't be negative: -4"),
        ("forward . 127.0.0.1 {\nmax_idle_conns -1\n}", 3, "max_idle_conns can't be negative: -1"),
        ("forward . 127.0.0.1 {\nexpire -1s\n}", 3, "expire can't be negative: -1s"),
        ("forward . 127.0.0.1 {\nmax_age -1s\n}", 3, "max_age can't be negative"),
        ("forward . 127.0.0.1 {\nmax_age invalid\n}", 3, 'time: invalid duration "invalid"'),
        ("forward . 127.0.0.1 {\nexpire 30s\nmax_age 10s\n}", 4, "max_age (10s) must not be less than expire (30s)"),
        ("forward . 127.0.0.1 {\nread_timeout 0s\n}", 3, "read_timeout must be positive: 0s"),
        ("forward . 127.0.0.1 {\nread_timeout\n}", 3, "Wrong argument count or unexpected line ending after 'read_timeout'"),
        ("forward . 127.0.0.1 {\npolicy random2\n}", 3, "unknown policy 'random2'"),
        ("forward . 127.0.0.1 {\nnext NOPE\n}", 3, "NOPE is not a valid rcode"),
        ("forward . 127.0.0.1 {\nfailover NOERROR\n}", 3, "NoError cannot be used in failover"),
        ("forward . 127.0.0.1 {\nfailfast_all_unhealthy_upstreams false\n}", 3, "Wrong argument count"),
        ("forward . 127.0.0.1 {\nforce_tcp yes\n}", 3, "Wrong argument count or unexpected line ending after 'yes'"),
        ("forward . 127.0.0.1 {\ndoh_method PUT\n}", 3, "doh_method must be either POST or GET"),
        ("forward . 127.0.0.1 {\nsource_address not-an-ip\n}", 3, "invalid IP address: not-an-ip"),
        ("forward . 127.0.0.1 {\nsource_address\n}", 3, "Wrong argument count or unexpected line ending after 'source_address'"),
        ("forward . 127.0.0.1 {\nresolver example.org\n}", 3, 'resolver must be an IP address or IP:port: "example.org"'),
        ("forward . 127.0.0.1 {\ntls a b c d\n}", 3, "Wrong argument count"),
        ("forward . 127.0.0.1 {\ntls /nonexistent/ca.pem\n}", 3, "error reading /nonexistent/ca.pem"),
        ("forward . 127.0.0.1 {\ntls /nonexistent/c.pem /nonexistent/k.pem\n}", 3, "could not load TLS cert"),
        (
            "forward . tls://127.0.0.1%example.net:854 {\ntls_servername foo\n}",
            2,
            "both forward ('foo') and proxy level ('example.net') TLS servernames are set "
            "for upstream proxy 'tls://127.0.0.1:854'",
        ),
        ("forward . " + " ".join(f"10.0.0.{i}" for i in range(16)), 2, "more than 15 TOs configured: 16"),
    ],
)
def test_setup_errors_f16(body: str, line: int, message: str) -> None:
    text = setup_error(body)
    assert text.startswith(f"plugin/forward: Corefile:{line} - ")
    assert message in text


def test_fifteen_upstreams_are_fine() -> None:
    f = setup("forward . " + " ".join(f"10.0.0.{i}" for i in range(15)))
    assert len(f.upstreams) == 15


def test_setup_opens_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("setup opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    setup("forward . 127.0.0.1 tls://127.0.0.2 {\nhealth_check 1s\n}")


# ---------------------------------------------------------------------------
# Policies (F15)
# ---------------------------------------------------------------------------


def test_round_robin_rotates_f15() -> None:
    rr = RoundRobin()
    # CoreDNS increments before use: the first list starts with the second item.
    assert [rr.order([1, 2, 3]) for _ in range(4)] == [[2, 1, 3], [3, 1, 2], [1, 2, 3], [2, 1, 3]]


def test_sequential_keeps_order_f15() -> None:
    assert Sequential().order([1, 2, 3]) == [1, 2, 3]


def test_random_shuffles_f15() -> None:
    r = Random()
    assert r.order([1]) == [1]
    assert {tuple(r.order([1, 2])) for _ in range(200)} == {(1, 2), (2, 1)}
    seen = {tuple(r.order([1, 2, 3])) for _ in range(500)}
    assert len(seen) == 6
    items = [1, 2, 3]
    r.order(items)
    assert items == [1, 2, 3]  # the configured list is never reordered


# ---------------------------------------------------------------------------
# The per-query algorithm, over a test-double transport
# ---------------------------------------------------------------------------


def answer(rcode: int = 0, *, records: int = 1, qname: str | None = None) -> Callable:
    """A mock upstream handler answering every query with ``rcode``."""

    def handle(query: bytes, proto: str) -> bytes:
        q = dns.message.from_wire(query)
        r = dns.message.make_response(q)
        r.set_rcode(rcode)
        if qname is not None:
            r.question[0] = dns.rrset.RRset(dns.name.from_text(qname), 1, 1)
        for i in range(records if rcode == 0 else 0):
            r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", f"192.0.2.{i + 1}"))
        return r.to_wire()

    return handle


def refuse(query: bytes, proto: str) -> bytes:
    raise ConnectionRefusedError(111, "Connection refused")


def mocked(body: str, *handlers: Callable) -> tuple[Resolver, Forward, list[MockTransport]]:
    r = Resolver.from_corefile(".:53 {\n" + body + "\n}\n")
    f = forward_of(r.engine)
    ups = [u for p in r.engine.chains[0].plugins if p.name == "forward" for u in p.upstreams]
    mocks = []
    for up, handler in zip(ups, handlers, strict=True):
        up.transport = MockTransport(handler, to=up.addr)
        mocks.append(up.transport)
    return r, f, mocks


def test_answer_is_the_upstream_reply() -> None:
    r, _, (m,) = mocked("forward . 10.0.0.1", answer(records=3))
    with r:
        reply, msg = r.resolve_reply("example.org", "A")
        assert reply.plugin == "forward" and reply.written
        assert [str(rr.rdata) for rr in msg.rr] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        assert msg.header.id != 0 and msg.rr[0].ttl == 60
        assert len(m.calls) == 1 and m.calls[0][1] == "udp"


def test_attempt_cap_f7() -> None:
    r, _, (a, b) = mocked("forward . 10.0.0.1 10.0.0.2 {\nmax_fails 0\n}", refuse, refuse)
    with r:
        reply, msg = r.resolve_reply("example.org")
        assert msg.header.rcode == w.SERVFAIL and not reply.written
        assert (len(a.calls), len(b.calls)) == (2, 2)
        assert "connection refused" in str(reply.error)
    r, _, (a,) = mocked("forward . 10.0.0.1 {\nmax_fails 0\nmax_connect_attempts 7\n}", refuse)
    with r:
        r.resolve("example.org")
        assert len(a.calls) == 7


def test_all_down_failfast_f6() -> None:
    body = "forward . 10.0.0.1 10.0.0.2 {\nmax_fails 1\nfailfast_all_unhealthy_upstreams\n}"
    r, f, (a, b) = mocked(body, answer(), answer())
    with r:
        for up in f.upstreams:
            up.fails = 2
        reply, msg = r.resolve_reply("example.org")
        assert msg.header.rcode == w.SERVFAIL and str(reply.error) == "no healthy proxies"
        assert a.calls == b.calls == []
        f.failfast = False
        reply, msg = r.resolve_reply("example.org")
        assert msg.header.rcode == w.NOERROR and len(a.calls) + len(b.calls) == 1
        assert r.metrics.sample("coredns_forward_healthcheck_broken_total") == 2


def test_down_upstreams_are_skipped() -> None:
    body = "forward . 10.0.0.1 10.0.0.2 {\npolicy sequential\n}"
    r, f, (a, b) = mocked(body, answer(), answer())
    with r:
        f.upstreams[0].fails = 3
        for _ in range(3):
            r.resolve("example.org")
        assert (len(a.calls), len(b.calls)) == (0, 3)


def test_failover_f9() -> None:
    body = "forward . 10.0.0.1 10.0.0.2 {\npolicy sequential\nfailover SERVFAIL\n}"
    r, _, (a, b) = mocked(body, answer(w.SERVFAIL), answer(w.SERVFAIL))
    with r:
        reply, msg = r.resolve_reply("example.org")
        assert msg.header.rcode == w.SERVFAIL and reply.written  # the upstream's own reply
        assert (len(a.calls), len(b.calls)) == (1, 1)
    r, _, (a, b) = mocked(body, answer(w.SERVFAIL), answer())
    with r:
        assert r.resolve("example.org").header.rcode == w.NOERROR
    r, _, (a, b) = mocked("forward . 10.0.0.1 10.0.0.2 {\npolicy sequential\n}",
                          answer(w.REFUSED), answer())
    with r:
        assert r.resolve("example.org").header.rcode == w.REFUSED  # no failover configured


def test_question_mismatch_is_formerr() -> None:
    r, _, _ = mocked("forward . 10.0.0.1", answer(qname="other.example."))
    with r:
        reply, msg = r.resolve_reply("example.org")
        assert msg.header.rcode == w.FORMERR and reply.written and not msg.rr
        assert str(msg.q.qname) == "example.org."


def test_next_hands_over_only_to_another_forward() -> None:
    body = "forward . 10.0.0.1 {\nnext NXDOMAIN\n}\nforward . 10.0.0.2"
    r, _, (a, b) = mocked(body, answer(w.NXDOMAIN), answer())
    with r:
        assert r.resolve("example.org").header.rcode == w.NOERROR
        assert (len(a.calls), len(b.calls)) == (1, 1)
    # The last forward has no forward after it: its reply stands.
    r, _, (a,) = mocked("forward . 10.0.0.1 {\nnext NXDOMAIN\n}\nwhoami", answer(w.NXDOMAIN))
    with r:
        assert r.resolve("example.org").header.rcode == w.NXDOMAIN


def test_next_on_nodata_f8() -> None:
    body = "forward . 10.0.0.1 {\nnext_on_nodata\n}\nforward . 10.0.0.2"
    r, _, (a, b) = mocked(body, answer(records=0), answer(records=1))
    with r:
        assert len(r.resolve("example.org").rr) == 1
        assert (len(a.calls), len(b.calls)) == (1, 1)


def test_truncated_reply_retried_over_tcp_only_with_prefer_udp() -> None:
    def tc_over_udp(query: bytes, proto: str) -> bytes:
        out = bytearray(answer(records=2)(query, proto))
        if proto == "udp":
            out[2] |= 0x02
        return bytes(out)

    r, _, (m,) = mocked("forward . 10.0.0.1 {\nprefer_udp\n}", tc_over_udp)
    with r:
        msg = r.resolve("example.org")
        assert not msg.header.tc and [p for _, p in m.calls] == ["udp", "tcp"]
    r, _, (m,) = mocked("forward . 10.0.0.1", tc_over_udp)
    with r:
        # Without prefer_udp the TC reply goes back to the client as is (bytes level:
        # Resolver.resolve itself would retry over TCP like any stub resolver).
        out = dns.message.from_wire(r.handle(w.build_query("example.org", 1)))
        assert out.flags & dns.flags.TC and [p for _, p in m.calls] == ["udp"]
        assert not r.resolve("example.org").header.tc
        assert [p for _, p in m.calls] == ["udp", "udp", "tcp"]


def test_max_concurrent_refuses() -> None:
    release = asyncio.Event()

    async def slow(query: bytes, proto: str) -> bytes:
        await release.wait()
        return answer()(query, proto)

    r, f, _ = mocked("forward . 10.0.0.1 {\nmax_concurrent 2\n}", slow)

    async def main() -> list[int]:
        async def one(i: int) -> int:
            msg = await r.resolve_async(f"q{i}.example.org")
            return msg.header.rcode

        tasks = [asyncio.ensure_future(one(i)) for i in range(5)]
        await asyncio.sleep(0.1)
        r.engine.loop.call_soon_threadsafe(release.set)  # type: ignore[union-attr]
        return sorted(await asyncio.gather(*tasks))

    with r:
        rcodes = asyncio.run(main())
        assert rcodes.count(w.REFUSED) == 3 and rcodes.count(w.NOERROR) == 2
        assert r.metrics.sample("coredns_forward_max_concurrent_rejects_total") == 3
        assert f._inflight == 0


def test_names_outside_from_and_excepted_names_go_to_next() -> None:
    r, f, (m,) = mocked("forward example.org 10.0.0.1 {\nexcept a.example.org\n}\nwhoami", answer())
    with r:
        assert r.resolve("example.org").header.rcode == w.NOERROR
        assert r.resolve("b.example.org").header.rcode == w.NOERROR
        assert len(m.calls) == 2
        for name in ("a.example.org", "x.a.example.org", "example.net", "xexample.org"):
            reply, _ = r.resolve_reply(name)
            assert reply.plugin == "whoami"
        assert len(m.calls) == 2
    assert f.match("example.org.") and not f.match("a.example.org.")


@pytest.mark.parametrize(
    ("name", "zone", "inside"),
    [
        ("example.org.", ".", True),
        ("example.org.", "example.org.", True),
        ("a.example.org.", "example.org.", True),
        ("aexample.org.", "example.org.", False),
        ("a\\.example.org.", "example.org.", False),
        ("a\\\\.example.org.", "example.org.", True),
        ("org.", "example.org.", False),
    ],
)
def test_in_zone(name: str, zone: str, inside: bool) -> None:
    assert in_zone(name, zone) is inside


# ---------------------------------------------------------------------------
# Reply bytes
# ---------------------------------------------------------------------------


def _request(edns: int | None = None, do: bool = False, proto: str = "udp") -> Request:
    q = dns.message.make_query("Example.ORG", "A", use_edns=edns is not None, payload=edns or 512,
                               want_dnssec=do, id=4321)
    return Request.from_wire(q.to_wire(), proto=proto)


def _upstream_reply(edns: int | None, *, options: bool = False) -> bytes:
    q = dns.message.make_query("example.org", "A", use_edns=edns is not None, payload=edns or 512,
                               id=777)
    r = dns.message.make_response(q)
    r.flags |= dns.flags.AA
    r.answer.append(dns.rrset.from_text("example.org.", 300, "IN", "A", "192.0.2.1"))
    if edns is not None:
        opts = [dns.edns.GenericOption(10, b"\x01\x02\x03\x04\x05\x06\x07\x08")] if options else []
        r.use_edns(0, dns.flags.DO, 4096, options=opts)
    return r.to_wire()


@pytest.mark.parametrize("client_edns", [None, 1232])
@pytest.mark.parametrize("upstream_edns", [None, 4096])
@pytest.mark.parametrize("do", [False, True])
def test_for_client_matches_the_slow_path(client_edns, upstream_edns, do) -> None:
    if do and client_edns is None:
        return
    req = _request(client_edns, do)
    data = _upstream_reply(upstream_edns, options=True)
    fast = for_client(req, data)
    assert fast.final and fast.rcode == 0
    slow = for_client(req, data)
    slow.final = False
    got = dns.message.from_wire(finish(req, fast))
    want = dns.message.from_wire(finish(req, slow))
    assert got.id == want.id == 4321
    assert got == want
    assert got.flags & dns.flags.AA and got.answer[0].ttl == 300
    assert (got.edns >= 0) == (client_edns is not None)
    if client_edns is not None:
        assert got.payload == client_edns and bool(got.ednsflags & dns.flags.DO) == do
        if upstream_edns is not None:
            assert [o.otype for o in got.options] == [10]  # upstream options are kept


def test_truncated_and_udp_acceptance() -> None:
    req = _request()
    data = _upstream_reply(None)
    qend = udp_accepts(data, req.key)
    assert qend == 12 + len(w.text_to_wire("example.org")) + 4
    tc = dns.message.from_wire(truncated(data, qend))
    assert tc.flags & dns.flags.TC and tc.flags & dns.flags.AA and not tc.answer
    assert str(tc.question[0].name) == "example.org."
    # Another question, a query (QR=0), a question-less NOERROR: not accepted.
    other = _request().key.replace(b"org", b"net")
    assert udp_accepts(data, other) == 0
    query = dns.message.make_query("example.org", "A").to_wire()
    assert udp_accepts(query, req.key) == 0
    bare = bytearray(data[:12])
    bare[4:6] = b"\x00\x00"
    bare[6:8] = b"\x00\x00"
    assert udp_accepts(bytes(bare), req.key) == 0
    bare[3] = (bare[3] & 0xF0) | w.REFUSED
    assert udp_accepts(bytes(bare), req.key) == 12  # error rcodes may omit the question


def test_exported_names() -> None:
    assert set(fwd_pkg.__all__) == {
        "FORWARD_TIMEOUT", "POLICIES", "PROBE_TIMEOUT", "ExchangeError", "Forward",
        "ForwardConfig", "HealthCheck", "MockTransport", "NetTransport", "Policy", "Query",
        "Transport", "Upstream", "UpstreamSpec", "parse_forward",
    }
    for name in fwd_pkg.__all__:
        assert hasattr(fwd_pkg, name)

