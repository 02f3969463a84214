"""chaos, any, loadbalance, debug, bufsize, erratic, whoami, errors, log: setup and behaviour."""

from __future__ import annotations

import logging
import struct
from collections import Counter

import dns.message
import pytest

import pycorefile
from pycorefile import CorefileError
from pycorefile import wire as w


def resolver(body: str, zone: str = "t.test"):
    return pycorefile.Resolver.from_corefile(f"{zone}:1053 {{\n{body}\n}}\n")


def test_chaos_version_and_authors() -> None:
    with resolver("chaos MyDNS-1 b@x a@x a@x", ".") as r:
        v = r.resolve("version.bind", "TXT", "CH")
        assert v.header.rcode == 0 and v.header.aa == 0
        assert str(v.rr[0].rdata) == '"MyDNS-1"' and v.rr[0].rclass == 3 and v.rr[0].ttl == 0
        authors = r.resolve("authors.bind", "TXT", "CH")
        assert sorted(str(rr.rdata) for rr in authors.rr) == ['"a@x"', '"b@x"']
        assert r.resolve("hostname.bind", "TXT", "CH").rr
        # Other CH names fall through to "no next plugin".
        assert r.resolve("other.bind", "TXT", "CH").header.rcode == w.SERVFAIL


def test_chaos_default_version() -> None:
    with resolver("chaos", ".") as r:
        assert str(r.resolve("version.server", "TXT", "CH").rr[0].rdata) == f'"pycorefile-{pycorefile.__version__}"'


def test_any_gets_hinfo() -> None:
    with resolver("any\n erratic {\n drop 0\n }") as r:
        out = r.handle(w.build_query("x.t.test", 255))
        msg = dns.message.from_wire(out)
        rr = msg.answer[0]
        assert rr.rdtype == 13 and rr.ttl == 8482
        assert rr[0].cpu == b"ANY obsoleted" and rr[0].os == b"See RFC 8482"
        assert r.resolve("x.t.test", "A").rr[0].rtype == 1   # other types pass on


def test_loadbalance_shuffles_addresses() -> None:
    with resolver("loadbalance\n erratic {\n drop 0\n large\n }") as r:
        firsts = Counter()
        for _ in range(40):
            reply = r.resolve("x.t.test", "A")
            assert len(reply.rr) == 30
            firsts[id(reply.rr[0])] += 1
    # dnslib shares one RR object 30 times in erratic's answer, so compare by value and
    # count instead: the shuffle must keep all 30 records.
    assert sum(firsts.values()) == 40


def test_loadbalance_order_of_kinds() -> None:
    from dnslib import CNAME, MX, RR, TXT, A

    from pycorefile.plugins.loadbalance import shuffle

    recs = [RR("a.", 15, rdata=MX("m1.")), RR("a.", 1, rdata=A("1.1.1.1")), RR("a.", 5, rdata=CNAME("b.")),
            RR("a.", 16, rdata=TXT("t")), RR("a.", 1, rdata=A("2.2.2.2")), RR("a.", 15, rdata=MX("m2."))]
    out = shuffle(recs)
    assert [r.rtype for r in out] == [5, 16, 1, 1, 15, 15]
    seen = set()
    for _ in range(200):
        seen.add(tuple(str(r.rdata) for r in shuffle(recs) if r.rtype == 1))
    assert len(seen) == 2


@pytest.mark.parametrize(
    "body, message",
    [("loadbalance weighted /etc/w", "not supported by pycorefile"), ("loadbalance bogus", "unknown policy"),
     ("bufsize 100", "Wrong argument count"), ("bufsize 5000", "Wrong argument count"), ("bufsize x", "Wrong argument count"),
     ("chaos {\n foo\n }", "unknown property 'foo'"), ("any x", "Wrong argument count"), ("whoami x", "Wrong argument count"),
     ("errors stderr", "invalid log file: stderr"), ("errors {\n foo\n }", "Syntax error: Unknown field foo"),
     ("errors\n errors", "can only be used once"), ("errors {\n consolidate 5m\n }", "Wrong argument count"),
     ("errors {\n consolidate 5x .*\n }", "invalid duration"), ("errors {\n consolidate 5m (\n }", "error parsing regexp"),
     ("errors {\n consolidate 5m .* info error\n }", "multiple log levels"), ("log {\n class nope\n }", "invalid class"),
     ("log {\n nope\n }", "unknown property 'nope'"), ("erratic {\n drop -1\n }", "illegal amount"),
     ("erratic {\n bogus\n }", "unknown property 'bogus'"), ("bind", "Wrong argument count"), ("bind not-an-ip-or-iface", "not a valid IP")],
)
def test_setup_errors(body: str, message: str) -> None:
    with pytest.raises(CorefileError, match=message) as exc:
        pycorefile.loads(f".:1053 {{\n {body}\n whoami\n}}\n")
    assert exc.value.line >= 2


def test_bufsize_caps_the_reply_size() -> None:
    with resolver("bufsize 512\n erratic {\n drop 0\n large\n }") as r:
        q = w.build_query("a-long-label-to-grow-the-reply-past-six-hundred-bytes.t.test", 1, edns_size=4096)
        out = r.handle(q)
        msg = dns.message.from_wire(out)
        assert len(out) <= 512 and msg.flags & 0x0200  # TC
        assert msg.payload == 512


def test_errors_logs_in_coredns_format(caplog) -> None:
    with resolver("errors\n log"), caplog.at_level(logging.ERROR):
        pass
    with resolver("errors\n log") as r, caplog.at_level(logging.INFO):
        r.resolve("x.t.test", "A")
    errs = [rec.getMessage() for rec in caplog.records if rec.name == "pycorefile.plugins.errors"]
    assert errs == ["2 x.t.test. A: plugin/log: no next plugin found"]
    logs = [rec.getMessage() for rec in caplog.records if rec.name == "pycorefile.plugins.log"]
    assert len(logs) == 1
    assert '"A IN x.t.test. udp' in logs[0] and " SERVFAIL qr,rd " in logs[0]


def test_errors_consolidate(caplog) -> None:
    with resolver("errors {\n consolidate 1h \"no next plugin\" warning\n }") as r, caplog.at_level(logging.INFO):
        for _ in range(3):
            r.resolve("x.t.test", "A")
        assert not [rec for rec in caplog.records if rec.name == "pycorefile.plugins.errors"]
    # Closing the resolver flushes the pending summary.
    msgs = [rec for rec in caplog.records if rec.name == "pycorefile.plugins.errors"]
    assert len(msgs) == 1 and msgs[0].levelno == logging.WARNING
    assert msgs[0].getMessage() == "3 errors like 'no next plugin' occurred in last 1h0m0s"


@pytest.mark.parametrize(
    "body, qname, expect_logged",
    [("log", "x.t.test", True), ("log other.test", "x.t.test", False), ("log {\n class denial\n }", "x.t.test", False),
     ("log {\n class error\n }", "x.t.test", True), ("log . \"{type} {name} {rcode}\"", "x.t.test", True)],
)
def test_log_rules_and_classes(caplog, body: str, qname: str, expect_logged: bool) -> None:
    with resolver(body + "\n erratic {\n drop 0\n }" if "error" not in body else body) as r, caplog.at_level(logging.INFO):
        r.resolve(qname, "A")
    logs = [rec.getMessage() for rec in caplog.records if rec.name == "pycorefile.plugins.log"]
    assert bool(logs) == expect_logged
    if "{type}" in body:
        assert logs == ["A x.t.test. NOERROR"]


def test_whoami_ipv6_client() -> None:
    with resolver("whoami") as r:
        reply = r.resolve("x.t.test", "A", client=("2001:db8::7", 5353))
        assert reply.ar[0].rtype == 28 and str(reply.ar[0].rdata) == "2001:db8::7"
        assert reply.ar[1].rdata.port == 5353


@pytest.mark.parametrize(
    "client, proto, qname, edns",
    [(("192.0.2.7", 40000), "udp", "Mixed.Case.T.test", False),
     (("2001:db8::7", 5353), "tcp", "x.t.test", True),
     (("198.51.100.1", 53), "udp", ".", True)],
)
def test_whoami_reply_bytes(client, proto: str, qname: str, edns: bool) -> None:
    """Every part of the reply, decoded by dnspython, and the names written out
    uncompressed, as CoreDNS (miekg/dns) sends a reply this small."""
    import dns.message
    import dns.rdatatype

    zone = "." if qname == "." else "t.test"
    with pycorefile.Resolver.from_corefile(f"{zone}:1053 {{\n whoami\n}}\n") as r:
        query = dns.message.make_query(qname, "TXT", use_edns=0 if edns else False, payload=1232)
        query.flags |= dns.flags.CD
        query.id = 4242
        data = r.handle(query.to_wire(), client=client, proto=proto)
    reply = dns.message.from_wire(data)
    assert reply.id == 4242 and reply.rcode() == 0
    assert reply.flags & dns.flags.QR and reply.flags & dns.flags.AA
    assert reply.flags & dns.flags.RD and reply.flags & dns.flags.CD
    assert not reply.answer and not reply.authority
    assert reply.question[0].name.to_text() == (qname if qname == "." else qname + ".")
    ip, srv = reply.additional
    assert ip.name == reply.question[0].name and ip.ttl == 0
    assert ip.rdtype == (dns.rdatatype.AAAA if ":" in client[0] else dns.rdatatype.A)
    assert ip[0].address == client[0]
    owner = f"_{proto}." + ("" if qname == "." else qname + ".")
    assert srv.name.to_text() == owner and srv.ttl == 0
    assert (srv[0].priority, srv[0].weight, srv[0].port, srv[0].target.to_text()) == (0, 0, client[1], ".")
    assert (reply.edns, reply.payload if edns else None) == ((0, 1232) if edns else (-1, None))
    # No compression: both owner names are spelled out as the client sent them.
    qwire = query.to_wire()[12:-4 - (11 if edns else 0)]
    addr = 16 if ":" in client[0] else 4
    size = 12 + len(qwire) + 4 + (len(qwire) + 10 + addr) + (5 + len(qwire) + 10 + 7) + (11 if edns else 0)
    assert len(data) == size
    assert data[12 + len(qwire) + 4:].startswith(qwire)


def test_whoami_for_a_notify_copies_no_rd() -> None:
    # miekg/dns SetReply copies RD and CD only for opcode QUERY.
    with pycorefile.Resolver.from_corefile("t.test:1053 {\n whoami\n}\n") as r:
        q = bytearray(w.build_query("x.t.test", 6, qid=5))
        struct.pack_into("!H", q, 2, (4 << 11) | w.RD)
        out = r.handle(bytes(q))
    assert struct.unpack_from("!H", out, 2)[0] == w.QR | w.AA | (4 << 11)
