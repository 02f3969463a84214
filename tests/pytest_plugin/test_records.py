"""The mapping → chain part (``pycorefile.mock``): what the ``dns_mock`` plugin answers.

Table-driven: each case adds records, asks one question through the in-process
resolver and checks rcode, AA, the answer data and whether the name counts as
unmatched (fail closed).
"""

from __future__ import annotations

import pytest

from pycorefile import wire as w
from pycorefile.mock import MockDNS, Records, mock_registry


def setup_records(m: MockDNS) -> None:
    m.add("db.example.test", "10.0.0.7")
    m.add("x.test", A=["1.2.3.4", "1.2.3.5"], AAAA="::1", MX="10 mx.x.test.",
          TXT="v=spf1 -all", SRV="10 5 5060 sip.x.test.")
    m.add("*.wild.test", "10.1.1.1")
    m.add("exact.wild.test", "10.1.1.2")
    m.add("*.deep.wild.test", "10.1.1.3")
    m.add("/dm.test/", "10.2.2.2")
    m.add("/a.multi.test/b.multi.test/", "10.3.3.3")
    m.add("*.both.test", "10.4.4.1")
    m.add("/both.test/", "10.4.4.2")
    m.add("alias.test", CNAME="db.example.test")
    m.add("dangling.test", CNAME="elsewhere.example.")
    m.add("v6only.test", "2001:db8::1")
    m.add_nxdomain("gone.test")
    m.add_failure("broken.test", "SERVFAIL")
    m.add_failure("refused.test", "REFUSED")
    m.add_failure("slow.test", "TIMEOUT")
    m.add("half.test", ["10.5.5.5", "2001:db8::5"])
    m.add_failure("half.test", "SERVFAIL", qtype="AAAA")


CASES = [
    # name, type, rcode, aa, answers, matched
    ("db.example.test", "A", "NOERROR", 1, ["10.0.0.7"], True),
    ("DB.Example.TEST", "A", "NOERROR", 1, ["10.0.0.7"], True),
    ("db.example.test", "AAAA", "NOERROR", 1, [], True),            # NODATA, not NXDOMAIN
    ("db.example.test", "MX", "NOERROR", 1, [], True),
    ("x.test", "A", "NOERROR", 1, ["1.2.3.4", "1.2.3.5"], True),
    ("x.test", "MX", "NOERROR", 1, ["10 mx.x.test."], True),
    ("x.test", "TXT", "NOERROR", 1, ['"v=spf1 -all"'], True),
    ("x.test", "SRV", "NOERROR", 1, ["10 5 5060 sip.x.test."], True),
    ("a.wild.test", "A", "NOERROR", 1, ["10.1.1.1"], True),
    ("a.b.wild.test", "A", "NOERROR", 1, ["10.1.1.1"], True),
    ("a.wild.test", "AAAA", "NOERROR", 1, [], True),                # wildcard owns the name
    ("wild.test", "A", "NXDOMAIN", 1, [], False),                   # apex is not matched by *.
    ("exact.wild.test", "A", "NOERROR", 1, ["10.1.1.2"], True),     # exact beats wildcard
    ("x.deep.wild.test", "A", "NOERROR", 1, ["10.1.1.3"], True),    # longest suffix wins
    ("dm.test", "A", "NOERROR", 1, ["10.2.2.2"], True),             # /suffix/ includes the name
    ("a.b.dm.test", "A", "NOERROR", 1, ["10.2.2.2"], True),
    ("xdm.test", "A", "NXDOMAIN", 1, [], False),                    # label boundary
    ("b.multi.test", "A", "NOERROR", 1, ["10.3.3.3"], True),
    ("z.a.multi.test", "A", "NOERROR", 1, ["10.3.3.3"], True),
    ("x.both.test", "A", "NOERROR", 1, ["10.4.4.1"], True),         # *. beats /../ at one suffix
    ("both.test", "A", "NOERROR", 1, ["10.4.4.2"], True),
    ("alias.test", "A", "NOERROR", 1, ["db.example.test.", "10.0.0.7"], True),
    ("alias.test", "CNAME", "NOERROR", 1, ["db.example.test."], True),
    ("dangling.test", "A", "NOERROR", 1, ["elsewhere.example."], True),
    ("v6only.test", "AAAA", "NOERROR", 1, ["2001:db8::1"], True),
    ("7.0.0.10.in-addr.arpa", "PTR", "NOERROR", 1, ["db.example.test."], True),   # automatic PTR
    ("gone.test", "A", "NXDOMAIN", 1, [], True),                    # explicit: not a miss
    ("broken.test", "A", "SERVFAIL", 0, [], True),
    ("refused.test", "MX", "REFUSED", 0, [], True),
    ("half.test", "A", "NOERROR", 1, ["10.5.5.5"], True),
    ("half.test", "AAAA", "SERVFAIL", 0, [], True),
    ("nowhere.test", "A", "NXDOMAIN", 1, [], False),
]


@pytest.fixture(scope="module")
def mock():
    with MockDNS() as m:
        setup_records(m)
        yield m


@pytest.mark.parametrize("name, qtype, rcode, aa, answers, matched", CASES)
def test_answers(mock, name, qtype, rcode, aa, answers, matched) -> None:
    mock.reset_calls()
    reply = mock.resolve(name, qtype)
    assert w.rcode_name(reply.header.rcode) == rcode
    assert reply.header.aa == aa
    assert [str(rr.rdata) for rr in reply.rr] == answers
    for rr in reply.rr[:1]:
        assert str(rr.rname) == name.lower() + "."      # owner: the lower-cased qname
    if rcode in ("NXDOMAIN",) or (rcode == "NOERROR" and not answers):
        assert [rr.rtype for rr in reply.auth] == [6]   # SOA for negative caching (RFC 2308)
    (call,) = mock.calls
    assert call.matched is matched
    assert call.plugin == "dns_mock"


def test_timeout_is_no_reply(mock) -> None:
    reply_obj, record = mock.resolve_reply("slow.test", "A")
    assert reply_obj.dropped
    assert mock.handle(w.build_query("slow.test", 1)) == b""
    assert mock.calls[-1].rcode == "TIMEOUT"


def test_add_accumulates_and_clears_failures() -> None:
    with MockDNS() as m:
        m.add("db.test", "10.0.0.1")
        m.add("db.test", ["10.0.0.1", "10.0.0.2"])
        assert [str(r.rdata) for r in m.resolve("db.test").rr] == ["10.0.0.1", "10.0.0.2"]
        m.add_failure("db.test")
        assert m.resolve("db.test").header.rcode == w.SERVFAIL
        m.add("db.test", "10.0.0.1")                      # recovery: the latest call wins
        assert m.resolve("db.test").header.rcode == 0
        m.remove("db.test")
        assert m.resolve("db.test").header.rcode == w.NXDOMAIN


def test_records_mapping_shorthand() -> None:
    records = {
        "a.test": "10.0.0.1",
        "b.test": ["10.0.0.2", "::2"],
        "c.test": {"MX": "10 mx.c.test.", "TXT": ["one", "two"]},
        "d.test": "NXDOMAIN",
        "e.test": "SERVFAIL",
        "f.test": "TIMEOUT",
    }
    with MockDNS(records=records) as m:
        assert [str(r.rdata) for r in m.resolve("b.test", "AAAA").rr] == ["::2"]
        assert len(m.resolve("c.test", "TXT").rr) == 2
        assert m.resolve("d.test").header.rcode == w.NXDOMAIN
        assert m.resolve("e.test").header.rcode == w.SERVFAIL
        assert m.resolve_reply("f.test")[0].dropped
        assert not m.unmatched


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.add("x.test", "not-an-ip"),
        lambda r: r.add("x.test"),
        lambda r: r.add("x.test", CNAME="a.test", A="1.2.3.4"),
        lambda r: r.add("a*.test", "1.2.3.4"),
        lambda r: r.add("a..test", "1.2.3.4"),
        lambda r: r.add("x.test", MX="not a preference"),
        lambda r: r.add_failure("x.test", "BROKEN"),
    ],
)
def test_bad_input_is_a_value_error(call) -> None:
    records = Records()
    with pytest.raises(ValueError):
        call(records)
    assert records.lookup("x.test") is None   # a failed add leaves nothing behind


def test_ttl_and_long_txt() -> None:
    with MockDNS() as m:
        m.add("t.test", TXT="x" * 300, ttl=5)
        (rr,) = m.resolve("t.test", "TXT").rr
        assert rr.ttl == 5
        assert [len(s) for s in rr.rdata.data] == [255, 45]


def test_corefile_mode_mapping_wins() -> None:
    corefile = """
example.test:53 {
    template IN A example.test {
        answer "{{ .Name }} 60 IN A 10.9.9.9"
    }
    cache 30
}
"""
    with MockDNS(corefile=corefile) as m:
        m.add("db.example.test", "10.0.0.7")      # added after the Corefile: still wins
        m.add("other.test", "10.0.0.8")           # outside the Corefile's zones
        answers = {n: [str(r.rdata) for r in m.resolve(n).rr]
                   for n in ("db.example.test", "x.example.test", "other.test")}
        assert answers == {"db.example.test": ["10.0.0.7"], "x.example.test": ["10.9.9.9"],
                           "other.test": ["10.0.0.8"]}
        m.resolve("x.example.test")
        assert [(c.qname, c.plugin, c.cached) for c in m.calls] == [
            ("db.example.test", "dns_mock", False),
            ("x.example.test", "template", False),
            ("other.test", "dns_mock", False),
            ("x.example.test", "cache", True),
        ]
        assert m.resolve("nowhere.test").header.rcode == w.NXDOMAIN
        # A type the template does not answer: nothing answered, a fail-closed miss.
        m.resolve("x.example.test", "MX")
        assert [c.qname + " " + c.qtype for c in m.unmatched] == [
            "nowhere.test A", "x.example.test MX"
        ]


def test_dns_mock_directive_is_private() -> None:
    import pycorefile

    assert "dns_mock" in mock_registry().ordered()
    with pytest.raises(pycorefile.CorefileError):
        pycorefile.loads(".:53 {\n dns_mock\n}\n")
    order = mock_registry().ordered()
    assert order.index("dns_mock") < order.index("cache") < order.index("template")


def test_metrics_count_mock_answers() -> None:
    with MockDNS() as m:
        m.add("a.test", "10.0.0.1")
        m.resolve("a.test")
        m.resolve("b.test")
        assert m.metrics.sample("coredns_dns_requests_total") == 2
        assert m.metrics.sample("coredns_dns_responses_total", {"rcode": "NXDOMAIN"}) == 1
        assert m.metrics.sample("coredns_dns_responses_total", {"plugin": "dns_mock"}) == 2


def test_explicit_directive_with_fallthrough_zones() -> None:
    corefile = """
.:53 {
    dns_mock {
        fallthrough corp.test
    }
    template IN A corp.test {
        answer "{{ .Name }} 60 IN A 10.20.0.1"
    }
}
"""
    with MockDNS(corefile=corefile) as m:
        assert [c.names for c in m.resolver.engine.chains] == [["dns_mock", "template"]]
        assert [str(r.rdata) for r in m.resolve("web.corp.test").rr] == ["10.20.0.1"]
        assert m.resolve("web.other.test").header.rcode == w.NXDOMAIN   # the mapping owns the rest
        assert [c.matched for c in m.calls] == [True, False]
