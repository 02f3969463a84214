"""The upstream test infrastructure itself: real servers answer the test zone as documented,
restart on their port, and every FaultRelay mode does what the forward tests rely on."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from upstreams import (
    A_ADDRESS,
    A_TTL,
    AAAA_ADDRESS,
    BIG_TXT,
    MULTI_ADDRESSES,
    MX_EXCHANGE,
    MX_PREFERENCE,
    NEGATIVE_TTL,
    RELAY_MODES,
    SHORT_ADDRESS,
    SHORT_TTL,
    SOA_MINIMUM,
    SOA_TTL,
    TWENTY_ADDRESSES,
    Authoritative,
    DnsmasqServer,
    Endpoint,
    FaultRelay,
    KnotServer,
    NsdServer,
    free_port,
    require_binary,
)

pytestmark = pytest.mark.integration

# Short client timeouts: every "no answer" assertion costs exactly this long.
SILENCE = 0.3


def ask(
    server: Endpoint,
    qname: str,
    qtype: str = "A",
    *,
    proto: str = "udp",
    edns: bool = True,
    timeout: float = 2.0,
    raise_on_truncation: bool = True,
    ignore_errors: bool = False,
) -> dns.message.Message:
    """One dnspython query; ``ignore_errors`` makes a UDP client skip replies that do not
    match (wrong ID, wrong question, junk) and wait for the right one."""
    query = dns.message.make_query(qname, qtype, use_edns=0 if edns else False)
    if proto == "udp":
        return dns.query.udp(
            query,
            server.host,
            port=server.port,
            timeout=timeout,
            raise_on_truncation=raise_on_truncation,
            ignore_errors=ignore_errors,
        )
    return dns.query.tcp(query, server.host, port=server.port, timeout=timeout)


def rdatas(reply: dns.message.Message, qname: str, qtype: str) -> set[str]:
    rrset = reply.get_rrset(
        reply.answer, dns.name.from_text(qname), dns.rdataclass.IN, dns.rdatatype.from_text(qtype)
    )
    return set() if rrset is None else {rdata.to_text() for rdata in rrset}


def ttl(reply: dns.message.Message, qname: str, qtype: str) -> int:
    rrset = reply.find_rrset(
        reply.answer, dns.name.from_text(qname), dns.rdataclass.IN, dns.rdatatype.from_text(qtype)
    )
    return rrset.ttl


def raw_exchange(
    address: tuple[str, int], wire: bytes, *, proto: str, count: int, timeout: float = SILENCE
) -> list[bytes]:
    """Send ``wire`` and collect up to ``count`` messages (datagrams or TCP frames) until a
    read times out: unlike a DNS client, this keeps spoofed and junk replies."""
    messages: list[bytes] = []
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        if proto == "udp":
            sock.send(wire)
        else:
            sock.sendall(struct.pack("!H", len(wire)) + wire)
        stream = b""
        try:
            while len(messages) < count:
                if proto == "udp":
                    messages.append(sock.recv(65535))
                    continue
                chunk = sock.recv(65535)
                if not chunk:
                    break
                stream += chunk
                while len(stream) >= 2 and len(stream) >= 2 + struct.unpack("!H", stream[:2])[0]:
                    size = struct.unpack("!H", stream[:2])[0]
                    messages.append(stream[2 : 2 + size])
                    stream = stream[2 + size :]
        except TimeoutError:
            pass
    return messages


# ---------------------------------------------------------------------------------------------
# Helpers


def test_free_port_is_free_for_udp_and_tcp() -> None:
    port = free_port()
    assert port >= 1024
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", port))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind(("127.0.0.1", port))


def test_require_binary_returns_path() -> None:
    assert require_binary("sh").endswith("/sh")


def test_require_binary_skips_on_a_developer_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_binary("no-such-dns-server")


def test_require_binary_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="missing tool is an error"):
        require_binary("no-such-dns-server")


# ---------------------------------------------------------------------------------------------
# The servers answer the test zone


@pytest.fixture(params=["nsd", "knot", "dnsmasq_upstream"])
def zone_server(request: pytest.FixtureRequest) -> Authoritative:
    server: Authoritative = request.getfixturevalue(request.param)
    return server


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_a_record(zone_server: Authoritative, proto: str) -> None:
    reply = ask(zone_server, "a.example.test", proto=proto)
    assert reply.rcode() == dns.rcode.NOERROR
    assert rdatas(reply, "a.example.test.", "A") == {A_ADDRESS}
    assert ttl(reply, "a.example.test.", "A") == A_TTL


@pytest.mark.parametrize(
    ("qname", "qtype", "expected"),
    [
        ("short.example.test.", "A", {SHORT_ADDRESS}),
        ("multi.example.test.", "A", set(MULTI_ADDRESSES)),
        ("aaaa.example.test.", "AAAA", {AAAA_ADDRESS}),
        ("mx.example.test.", "MX", {f"{MX_PREFERENCE} {MX_EXCHANGE}"}),
        ("twenty.example.test.", "A", set(TWENTY_ADDRESSES)),
    ],
)
def test_zone_records(
    zone_server: Authoritative, qname: str, qtype: str, expected: set[str]
) -> None:
    reply = ask(zone_server, qname, qtype)
    assert reply.rcode() == dns.rcode.NOERROR
    assert rdatas(reply, qname, qtype) == expected


def test_short_ttl(zone_server: Authoritative) -> None:
    assert ttl(ask(zone_server, "short.example.test"), "short.example.test.", "A") == SHORT_TTL


def test_cname_chain(zone_server: Authoritative) -> None:
    reply = ask(zone_server, "c1.example.test")
    assert rdatas(reply, "c1.example.test.", "CNAME") == {"c2.example.test."}
    assert rdatas(reply, "c2.example.test.", "CNAME") == {"a.example.test."}
    assert rdatas(reply, "a.example.test.", "A") == {A_ADDRESS}


def test_nxdomain_carries_the_soa(authoritative: Authoritative) -> None:
    reply = ask(authoritative, "missing.example.test")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.flags & dns.flags.AA
    [soa] = reply.authority
    assert soa.rdtype == dns.rdatatype.SOA
    assert soa.ttl == SOA_TTL == NEGATIVE_TTL
    assert soa[0].minimum == SOA_MINIMUM


def test_dnsmasq_nxdomain_has_no_soa(dnsmasq_upstream: DnsmasqServer) -> None:
    # dnsmasq is not authoritative: its NXDOMAIN for a --local domain is bare.
    reply = ask(dnsmasq_upstream, "missing.example.test")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.authority == []


def test_big_is_truncated_over_udp_without_edns(zone_server: Authoritative) -> None:
    reply = ask(zone_server, "big.example.test", "TXT", edns=False, raise_on_truncation=False)
    assert reply.flags & dns.flags.TC
    assert len(rdatas(reply, "big.example.test.", "TXT")) < len(BIG_TXT)


def test_big_is_truncated_over_udp_with_default_edns(zone_server: Authoritative) -> None:
    query = dns.message.make_query("big.example.test", "TXT", use_edns=0, payload=1232)
    reply = dns.query.udp(query, zone_server.host, port=zone_server.port, timeout=2)
    assert reply.flags & dns.flags.TC


def test_big_is_complete_over_tcp(zone_server: Authoritative) -> None:
    reply = ask(zone_server, "big.example.test", "TXT", proto="tcp", edns=False)
    assert not reply.flags & dns.flags.TC
    assert rdatas(reply, "big.example.test.", "TXT") == {f'"{text}"' for text in BIG_TXT}
    assert len(reply.to_wire()) > 1232


def _port_refuses(host: str, port: int) -> bool:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=1).close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        sock.connect((host, port))
        sock.send(dns.message.make_query("a.example.test", "A").to_wire())
        with pytest.raises(ConnectionRefusedError):
            sock.recv(512)
    return True


@pytest.mark.parametrize(
    "make",
    [
        lambda: NsdServer(extra_records="extra IN A 192.0.2.99"),
        lambda: KnotServer(extra_records="extra IN A 192.0.2.99"),
        lambda: DnsmasqServer(extra_args=["--host-record=extra.example.test,192.0.2.99"]),
    ],
    ids=["nsd", "knot", "dnsmasq"],
)
def test_stop_and_start_on_the_same_port(make: Callable[[], Authoritative]) -> None:
    with make() as server:
        port = server.port
        assert rdatas(ask(server, "extra.example.test"), "extra.example.test.", "A") == {
            "192.0.2.99"
        }
        server.stop()
        assert not server.running
        assert _port_refuses(server.host, port)
        server.start()
        assert server.port == port and server.address == f"127.0.0.1:{port}"
        assert rdatas(ask(server, "a.example.test", proto="tcp"), "a.example.test.", "A") == {
            A_ADDRESS
        }
        proc = server._proc
    assert proc is not None and proc.poll() is not None
    assert server.workdir is None


@pytest.mark.parametrize("cls", [NsdServer, KnotServer], ids=["nsd", "knot"])
def test_extra_zones(cls: type[Authoritative]) -> None:
    other = (
        "$ORIGIN other.test.\n@ 60 IN SOA ns hostmaster 1 3600 900 604800 300\n"
        "@ IN NS ns\nns IN A 192.0.2.53\nwww IN A 192.0.2.80\n"
    )
    with cls(extra_zones={"other.test": other}) as server:
        assert rdatas(ask(server, "www.other.test"), "www.other.test.", "A") == {"192.0.2.80"}
        assert rdatas(ask(server, "a.example.test"), "a.example.test.", "A") == {A_ADDRESS}


def test_a_server_that_never_gets_ready_is_killed() -> None:
    # The zone does not parse: NSD starts but never serves example.test.
    server = NsdServer(zone_text="this is not a zone file\n", startup_timeout=1.0)
    with pytest.raises(RuntimeError, match="did not answer|exited") as excinfo:
        with server:
            pass
    assert "log:" in str(excinfo.value)
    assert server._proc is not None and server._proc.poll() is not None
    assert server.workdir is None


def test_dnsmasq_as_caching_forwarder(relay: FaultRelay) -> None:
    relay.mode = "drop"  # start-up must not depend on the upstream answering
    with DnsmasqServer(servers=[relay], cache_size=100) as forwarder:
        relay.mode = "pass"
        for _ in range(2):
            reply = ask(forwarder, "a.example.test")
            assert rdatas(reply, "a.example.test.", "A") == {A_ADDRESS}
            assert reply.flags & dns.flags.RA
    assert relay.count("a.example.test", "A") == 1  # the second answer came from its cache


# ---------------------------------------------------------------------------------------------
# FaultRelay

PROTOS = pytest.mark.parametrize("proto", ["udp", "tcp"])


@PROTOS
def test_relay_pass_records_queries(relay: FaultRelay, proto: str) -> None:
    reply = ask(relay, "a.example.test", proto=proto)
    assert rdatas(reply, "a.example.test.", "A") == {A_ADDRESS}
    [seen] = relay.queries
    assert (seen.proto, seen.qname, seen.qtype) == (proto, "a.example.test.", "A")
    assert seen.rd and "rd" in seen.flags
    assert seen.edns == 1232
    assert relay.count() == 1
    assert relay.count(qname="A.EXAMPLE.TEST", qtype="a") == 1
    assert relay.count(qtype="AAAA") == relay.count(proto="xyz") == 0
    relay.reset()
    assert relay.queries == [] and relay.count() == 0


def test_relay_records_flags_and_edns(relay: FaultRelay) -> None:
    query = dns.message.make_query(
        "a.example.test", "A", use_edns=0, payload=4096, want_dnssec=True
    )
    query.flags = dns.flags.CD  # RD cleared, as in a no_rec health check
    dns.query.udp(query, relay.host, port=relay.port, timeout=2)
    [seen] = relay.queries
    assert seen.flags == {"cd", "do"}
    assert not seen.rd and seen.do
    assert seen.edns == 4096
    assert seen.id == query.id


@PROTOS
def test_relay_passes_truncation_through(relay: FaultRelay, proto: str) -> None:
    reply = ask(
        relay, "big.example.test", "TXT", proto=proto, edns=False, raise_on_truncation=False
    )
    if proto == "udp":
        assert reply.flags & dns.flags.TC
    else:
        assert len(rdatas(reply, "big.example.test.", "TXT")) == len(BIG_TXT)


@PROTOS
def test_relay_drop(relay: FaultRelay, proto: str) -> None:
    relay.mode = "drop"
    with pytest.raises(dns.exception.Timeout):
        ask(relay, "a.example.test", proto=proto, timeout=SILENCE)
    assert relay.count("a.example.test") == 1


@PROTOS
def test_relay_delay(relay: FaultRelay, proto: str) -> None:
    relay.set_mode("delay", delay=0.3)
    start = time.monotonic()
    reply = ask(relay, "a.example.test", proto=proto)
    assert time.monotonic() - start >= 0.3
    assert rdatas(reply, "a.example.test.", "A") == {A_ADDRESS}


def test_relay_delay_does_not_block_other_queries(relay: FaultRelay) -> None:
    relay.set_mode("delay", delay=0.5)
    relay.set_rule(lambda q, i: "pass" if q.qname.startswith("short.") else None)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as slow:
        slow.connect((relay.host, relay.port))
        slow.send(dns.message.make_query("a.example.test", "A").to_wire())
        start = time.monotonic()
        ask(relay, "short.example.test")
        assert time.monotonic() - start < 0.4


@PROTOS
@pytest.mark.parametrize(
    ("mode", "rcode"),
    [
        ("servfail", dns.rcode.SERVFAIL),
        ("refused", dns.rcode.REFUSED),
        ("nxdomain", dns.rcode.NXDOMAIN),
    ],
)
def test_relay_synthetic_rcodes(relay: FaultRelay, proto: str, mode: str, rcode: int) -> None:
    relay.mode = mode
    reply = ask(relay, "a.example.test", proto=proto)
    assert reply.rcode() == rcode
    assert reply.answer == reply.authority == []
    assert reply.flags & dns.flags.RD and reply.flags & dns.flags.RA
    assert not reply.flags & dns.flags.AA
    assert reply.edns == 0
    assert relay.count() == 1


@PROTOS
def test_relay_wrong_id_alone(relay: FaultRelay, proto: str) -> None:
    relay.mode = "wrong_id"
    query = dns.message.make_query("a.example.test", "A")
    [spoofed] = raw_exchange((relay.host, relay.port), query.to_wire(), proto=proto, count=2)
    reply = dns.message.from_wire(spoofed)
    assert reply.id != query.id
    assert rdatas(reply, "a.example.test.", "A") == {A_ADDRESS}


@PROTOS
def test_relay_wrong_id_then_the_real_reply(relay: FaultRelay, proto: str) -> None:
    relay.set_mode("wrong_id", followup=0.1)
    query = dns.message.make_query("a.example.test", "A")
    spoofed, real = raw_exchange((relay.host, relay.port), query.to_wire(), proto=proto, count=2)
    assert dns.message.from_wire(spoofed).id != query.id
    assert dns.message.from_wire(real).id == query.id
    if proto == "udp":
        # A spoof-resistant client ignores the first reply and gets the real one.
        reply = dns.query.udp(query, relay.host, port=relay.port, timeout=2, ignore_errors=True)
        assert rdatas(reply, "a.example.test.", "A") == {A_ADDRESS}


@PROTOS
def test_relay_wrong_question(relay: FaultRelay, proto: str) -> None:
    relay.mode = "wrong_question"
    query = dns.message.make_query("a.example.test", "A")
    [wrong] = raw_exchange((relay.host, relay.port), query.to_wire(), proto=proto, count=2)
    reply = dns.message.from_wire(wrong)
    assert reply.id == query.id
    assert reply.question[0].name == dns.name.from_text("wrong.a.example.test.")
    with pytest.raises(dns.query.BadResponse):
        ask(relay, "a.example.test", proto=proto)


def test_relay_wrong_question_then_the_real_reply(relay: FaultRelay) -> None:
    relay.set_mode("wrong_question", followup=0.05)
    query = dns.message.make_query("a.example.test", "A")
    reply = dns.query.udp(query, relay.host, port=relay.port, timeout=2, ignore_errors=True)
    assert reply.question == query.question


@PROTOS
def test_relay_garbage_then_the_real_reply(relay: FaultRelay, proto: str) -> None:
    relay.mode = "garbage"
    query = dns.message.make_query("a.example.test", "A")
    junk, real = raw_exchange((relay.host, relay.port), query.to_wire(), proto=proto, count=2)
    assert junk == FaultRelay.GARBAGE
    with pytest.raises(dns.exception.DNSException):
        dns.message.from_wire(junk)
    assert rdatas(dns.message.from_wire(real), "a.example.test.", "A") == {A_ADDRESS}
    if proto == "udp":
        reply = dns.query.udp(query, relay.host, port=relay.port, timeout=2, ignore_errors=True)
        assert rdatas(reply, "a.example.test.", "A") == {A_ADDRESS}


@PROTOS
def test_relay_truncate(relay: FaultRelay, proto: str) -> None:
    relay.mode = "truncate"
    reply = ask(relay, "a.example.test", proto=proto, raise_on_truncation=False)
    if proto == "udp":
        assert reply.flags & dns.flags.TC
        assert reply.answer == []
    else:  # the TCP retry a truncated UDP reply asks for gets the full answer
        assert not reply.flags & dns.flags.TC
        assert rdatas(reply, "a.example.test.", "A") == {A_ADDRESS}


def test_relay_stop_refuses_and_start_reopens_the_port(relay: FaultRelay) -> None:
    port = relay.port
    relay.stop()
    assert relay.mode == "stop" and not relay.running
    assert _port_refuses(relay.host, port)
    relay.start()
    assert relay.port == port and relay.mode == "pass"
    for proto in ("udp", "tcp"):
        assert rdatas(ask(relay, "a.example.test", proto=proto), "a.example.test.", "A") == {
            A_ADDRESS
        }


def test_relay_stop_as_a_mode(relay: FaultRelay) -> None:
    relay.mode = "stop"
    assert _port_refuses(relay.host, relay.port)
    relay.mode = "servfail"  # any other mode opens the port again
    assert ask(relay, "a.example.test").rcode() == dns.rcode.SERVFAIL


def test_relay_stop_closes_open_tcp_connections(relay: FaultRelay) -> None:
    relay.mode = "drop"
    with socket.create_connection((relay.host, relay.port), timeout=2) as conn:
        wire = dns.message.make_query("a.example.test", "A").to_wire()
        conn.sendall(struct.pack("!H", len(wire)) + wire)
        assert relay.wait_for(1, "a.example.test", proto="tcp", timeout=2)
        relay.stop()
        try:
            assert conn.recv(10) == b""
        except ConnectionResetError:
            pass


def test_relay_rule_drops_two_queries_out_of_three(relay: FaultRelay) -> None:
    relay.set_rule(lambda query, index: None if index % 3 == 0 else "drop")
    answered = 0
    for _ in range(3):
        try:
            ask(relay, "a.example.test", timeout=SILENCE)
            answered += 1
        except dns.exception.Timeout:
            pass
    assert answered == 1 and relay.count() == 3


def test_relay_wait_for(relay: FaultRelay) -> None:
    relay.mode = "drop"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(dns.message.make_query(".", "NS").to_wire(), (relay.host, relay.port))
        assert relay.wait_for(1, ".", "NS", timeout=2)
    assert not relay.wait_for(2, timeout=0.05)


def test_relay_without_an_answering_upstream_is_silent(
    relay_factory: Callable[..., FaultRelay],
) -> None:
    dead = relay_factory(("127.0.0.1", free_port()), upstream_timeout=0.2)
    for proto in ("udp", "tcp"):
        with pytest.raises(dns.exception.Timeout):
            ask(dead, "a.example.test", proto=proto, timeout=SILENCE + 0.2)
    assert dead.count() == 2


def test_relay_in_front_of_another_server(
    relay_factory: Callable[..., FaultRelay], knot: KnotServer
) -> None:
    in_front_of_knot = relay_factory(knot)
    assert in_front_of_knot.upstream == (knot.host, knot.port)
    assert rdatas(ask(in_front_of_knot, "a.example.test"), "a.example.test.", "A") == {A_ADDRESS}


def test_relay_rejects_unknown_modes(relay: FaultRelay) -> None:
    assert set(RELAY_MODES) >= {"pass", "drop", "delay", "stop", "wrong_id", "garbage"}
    with pytest.raises(ValueError, match="unknown relay mode"):
        relay.mode = "flaky"
