"""``pycorefile convert`` against the real thing: dnsmasq and the converted Corefile must give
the same answers.

Each case is a dnsmasq.conf. dnsmasq runs it (on 127.0.0.1 and a free port, nothing else on
its command line that changes answers), the converter turns it into a Corefile, and an
in-process :class:`pycorefile.Resolver` runs that. Every query of the case is asked to both,
and the rcode, the answer records (owner, type, data, TTL) and the absence of an SOA in the
authority section must be the same. dnsmasq rotates address records, so records are
compared as sets.

The differences that cannot be closed are documented in ``docs/dnsmasq.md``; the tests at
the end pin them, so the page stays true.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

import pycorefile
from pycorefile.dnsmasq import convert_file

from upstreams import DnsmasqServer, _query

pytestmark = pytest.mark.integration


class ConfDnsmasq(DnsmasqServer):
    """dnsmasq reading one configuration file: only where and how to run comes from the
    command line, every DNS setting from the file."""

    def __init__(self, conf: Path) -> None:
        super().__init__(records=False)
        self.conf = conf

    def _argv(self, executable: str, workdir: Path) -> list[str]:
        argv = super()._argv(executable, workdir)
        # Keep the process options (-k, port, address, user, log); take the DNS settings
        # from the file. --no-resolv and --no-hosts stay: every case says them too.
        keep = [a for a in argv if not a.startswith(("--conf-file=", "--local-ttl="))]
        return [*keep, f"--conf-file={self.conf}"]


Answer = tuple[str, frozenset[tuple[str, str, str, int]], bool]


def _summary(reply: DNSRecord) -> Answer:
    """(rcode, answer records, SOA in authority) of a reply."""
    records = frozenset(
        (str(rr.rname).lower(), QTYPE.get(rr.rtype), str(rr.rdata).lower(), rr.ttl)
        for rr in reply.rr
    )
    soa = any(rr.rtype == QTYPE.SOA for rr in reply.auth)
    return RCODE.get(reply.header.rcode), records, soa


def _compare(tmp_path: Path, conf: str, queries: list[str]) -> None:
    path = tmp_path / "dnsmasq.conf"
    path.write_text(conf)
    conversion = convert_file(path)
    corefile = conversion.corefile
    pycorefile.loads(corefile)
    mismatches = []
    with ConfDnsmasq(path) as dnsmasq, pycorefile.Resolver.from_corefile(corefile) as resolver:
        for query in queries:
            name, _, qtype = query.partition(" ")
            theirs = _query(
                dnsmasq.host, dnsmasq.port, name, qtype or "A", "IN", tcp=False, timeout=2.0
            )
            assert theirs is not None, f"dnsmasq did not answer {query}"
            ours = resolver.resolve(name, qtype or "A")
            if _summary(theirs) != _summary(ours):
                mismatches.append(
                    f"{query}:\n  dnsmasq    {_summary(theirs)}\n  pycorefile {_summary(ours)}"
                )
    assert not mismatches, "\n".join(mismatches) + "\n\nCorefile:\n" + corefile


def _queries(text: str) -> list[str]:
    """One query (``NAME TYPE``) per line; ``#`` starts a comment."""
    lines = (line.partition("#")[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


# ---------------------------------------------------------------------------------------------
# The cases: local answers only (no upstream), so every answer is dnsmasq's own.

ADDRESS = """\
no-resolv
no-hosts
address=/d4.test/192.0.2.4
address=/d6.test/2001:db8::6
address=/both.test/192.0.2.5
address=/both.test/2001:db8::5
address=/two.test/192.0.2.21
address=/two.test/192.0.2.22
address=/nx.test/
address=/null.test/#
address=/m1.test/m2.test/192.0.2.7
address=/sub.d4.test/192.0.2.44
address=/*wild.test/192.0.2.8
address=/*.kids.test/192.0.2.9
address=/.dot.test/192.0.2.10
address=/local.test/192.0.2.11
local=/local.test/
"""
ADDRESS_QUERIES = _queries("""
    d4.test A
    a.b.d4.test A
    d4.test AAAA
    d4.test MX
    d4.test TXT
    sub.d4.test A
    x.sub.d4.test A
    sub.d4.test AAAA
    d6.test AAAA
    d6.test A
    www.d6.test AAAA
    both.test A
    both.test AAAA
    x.both.test AAAA
    two.test A
    nx.test A
    a.nx.test AAAA
    nx.test MX
    nx.test SOA
    null.test A
    x.null.test AAAA
    null.test MX
    m1.test A
    x.m2.test A
    wild.test A
    xwild.test A
    a.wild.test A
    kids.test A
    a.kids.test A
    dot.test A
    a.dot.test A
    local.test A
    x.local.test A
    local.test AAAA
    x.local.test MX
    other.test A
    other.test AAAA
""")

LONG_TXT = "x" * 300
RECORDS = f"""\
no-resolv
no-hosts
local-ttl=42
local=/lan/
address=/d4.lan/192.0.2.4
host-record=nas.lan,192.168.1.10
host-record=dual.lan,Dual2.lan,192.168.1.11,2001:db8::11,300
host-record=multi.lan,192.168.1.21
host-record=multi.lan,192.168.1.22
host-record=other.lan,192.168.1.21
host-record=out.test,192.0.2.99
txt-record=txt.lan,"hello, world",second
txt-record=txt.lan,another
txt-record=quote.lan,"say \\"hi\\"",{{{{ .Name }}}},a\\b
txt-record=long.lan,{LONG_TXT}
cname=alias.lan,nas.lan
cname=alias6.lan,dual.lan,77
cname=outside.lan,nowhere.test
mx-host=lan,mail.lan,5
mx-host=mx2.lan,mx.lan
srv-host=_ldap._tcp.lan,ldap.lan,389,1,2
srv-host=_none._tcp.lan
srv-host=_port._tcp.lan,p.lan,80
ptr-record=1.0.0.10.in-addr.arpa,ptrtarget.lan
caa-record=lan,0,issue,ca.example
"""
RECORDS_QUERIES = _queries("""
    nas.lan A
    nas.lan AAAA
    nas.lan MX
    nas.lan TXT
    sub.nas.lan A
    10.1.168.192.in-addr.arpa PTR
    dual.lan A
    dual.lan AAAA
    dual2.lan A
    11.1.168.192.in-addr.arpa PTR
    1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa PTR
    multi.lan A
    21.1.168.192.in-addr.arpa PTR
    22.1.168.192.in-addr.arpa PTR
    other.lan A
    out.test A
    out.test AAAA
    99.2.0.192.in-addr.arpa PTR
    txt.lan TXT
    txt.lan A
    quote.lan TXT
    long.lan TXT
    alias.lan A
    alias.lan AAAA
    alias.lan CNAME
    alias.lan MX
    alias6.lan AAAA
    outside.lan A
    lan MX
    lan A
    lan SOA
    lan CAA
    mx2.lan MX
    _ldap._tcp.lan SRV
    _none._tcp.lan SRV
    _port._tcp.lan SRV
    _ldap._tcp.lan A
    _tcp.lan A
    1.0.0.10.in-addr.arpa PTR
    1.0.0.10.in-addr.arpa A
    2.0.0.10.in-addr.arpa PTR
    d4.lan A
    x.d4.lan A
    d4.lan AAAA
    d4.lan MX
    unknown.lan A
    unknown.lan TXT
    unknown.test A
""")

PRECEDENCE = """\
no-resolv
no-hosts
local=/lan/
address=/lan/192.0.2.1
host-record=nas.lan,192.0.2.2
txt-record=t.sub.lan,text
address=/sub.lan/192.0.2.3
local=/zone.test/
address=/x.zone.test/2001:db8::3
txt-record=t.x.zone.test,here
local=/168.192.in-addr.arpa/
host-record=rev.test,192.168.7.1
local=/10.in-addr.arpa/
ptr-record=5.5.5.10.in-addr.arpa,p.lan
"""
PRECEDENCE_QUERIES = _queries("""
    lan A
    lan AAAA
    x.lan A
    x.lan AAAA
    x.lan MX
    nas.lan A
    nas.lan AAAA
    nas.lan TXT
    t.sub.lan A
    t.sub.lan TXT
    t.sub.lan AAAA
    u.sub.lan AAAA
    x.zone.test AAAA
    x.zone.test A
    y.x.zone.test A
    t.x.zone.test A
    t.x.zone.test TXT
    zone.test A
    1.7.168.192.in-addr.arpa PTR
    1.7.168.192.in-addr.arpa A
    7.168.192.in-addr.arpa PTR
    5.5.5.10.in-addr.arpa A
    5.5.10.in-addr.arpa PTR
    6.5.10.in-addr.arpa PTR
""")

PLAIN_AND_PRIVATE = """\
no-resolv
no-hosts
domain-needed
bogus-priv
host-record=plain,192.0.2.30
host-record=priv.lan,192.168.5.5
host-record=v6priv.lan,fd00::5
"""
PLAIN_AND_PRIVATE_QUERIES = _queries("""
    arpa A
    plain A
    plain AAAA
    lan A
    lan AAAA
    lan MX
    other A
    other AAAA
    other MX
    1.1.168.192.in-addr.arpa PTR
    168.192.in-addr.arpa PTR
    1.1.168.192.in-addr.arpa A
    x.1.1.168.192.in-addr.arpa PTR
    5.5.168.192.in-addr.arpa PTR
    1.0.0.127.in-addr.arpa PTR
    1.2.3.20.172.in-addr.arpa PTR
    2.3.20.172.in-addr.arpa PTR
    2.3.32.172.in-addr.arpa PTR
    1.2.3.4.5.in-addr.arpa PTR
    x.1.1.168.192.in-addr.arpa PTR
    1.2.0.192.in-addr.arpa PTR
    1.100.51.198.in-addr.arpa PTR
    1.1.1.1.in-addr.arpa PTR
    5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa PTR
    6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa PTR
    1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa PTR
    1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.f.ip6.arpa PTR
""")

CASES = {
    "address": (ADDRESS, ADDRESS_QUERIES),
    "records": (RECORDS, RECORDS_QUERIES),
    "precedence": (PRECEDENCE, PRECEDENCE_QUERIES),
    "plain-and-private": (PLAIN_AND_PRIVATE, PLAIN_AND_PRIVATE_QUERIES),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_answers_as_dnsmasq(tmp_path: Path, case: str) -> None:
    conf, queries = CASES[case]
    _compare(tmp_path, conf, queries)


# ---------------------------------------------------------------------------------------------
# With an upstream: the types dnsmasq does not answer itself go there, in both.


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[ConfDnsmasq]:
    # TTL 0 answers: what either cache does with them cannot change the TTLs compared.
    conf = tmp_path / "upstream.conf"
    conf.write_text(
        "no-resolv\nno-hosts\nlocal-ttl=0\n"
        "address=/test/192.0.2.200\naddress=/test/2001:db8::200\nlocal=/test/\n"
        "txt-record=out.test,upstream\nmx-host=d4.test,mx.test,9\n"
        "txt-record=hosts.test,upstream\n"
    )
    with ConfDnsmasq(conf) as server:
        yield server


UPSTREAM_QUERIES = _queries("""
    d4.test A
    d4.test AAAA
    d4.test MX
    x.d4.test AAAA
    out.test A
    out.test AAAA
    out.test TXT
    hosts.test A
    hosts.test TXT
    60.2.0.192.in-addr.arpa PTR
    shadowed.local.test A
    shadowed.local.test AAAA
    nothing.local.test A
    elsewhere.test A
    elsewhere.test AAAA
    # Again: the cache has seen them now.
    d4.test A
    out.test A
    elsewhere.test A
""")


def test_same_answers_with_an_upstream(tmp_path: Path, upstream: ConfDnsmasq) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.60 hosts.test\n192.0.2.61 shadowed.local.test\n")
    conf = f"""\
no-resolv
no-hosts
local-ttl=5
server=127.0.0.1#{upstream.port}
addn-hosts={hosts}
address=/d4.test/192.0.2.4
host-record=out.test,192.0.2.99
local=/local.test/
cache-size=100
"""
    _compare(tmp_path, conf, UPSTREAM_QUERIES)


# ---------------------------------------------------------------------------------------------
# The differences docs/dnsmasq.md lists: pinned, so that the page stays true.


def test_documented_differences(tmp_path: Path, upstream: ConfDnsmasq) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.70 onlyv4.test\n")
    path = tmp_path / "dnsmasq.conf"
    path.write_text(
        f"no-resolv\nno-hosts\nserver=127.0.0.1#{upstream.port}\naddn-hosts={hosts}\n"
        "local=/lan/\nhost-record=n.lan,192.0.2.1\ntxt-record=n.lan,hi\n"
        "cname=out.lan,elsewhere.test\n"
    )
    corefile = convert_file(path).corefile
    with ConfDnsmasq(path) as dnsmasq, pycorefile.Resolver.from_corefile(corefile) as resolver:

        def both(name: str, qtype: str) -> tuple[DNSRecord, DNSRecord]:
            theirs = _query(dnsmasq.host, dnsmasq.port, name, qtype, "IN", tcp=False, timeout=2)
            assert theirs is not None
            return theirs, resolver.resolve(name, qtype)

        # Hosts files: TTL 1 instead of 0.
        theirs, ours = both("onlyv4.test", "A")
        assert [rr.ttl for rr in theirs.rr] == [0] and [rr.ttl for rr in ours.rr] == [1]
        # Hosts files: NODATA for the other family, where dnsmasq forwards.
        theirs, ours = both("onlyv4.test", "AAAA")
        assert [str(rr.rdata) for rr in theirs.rr] == ["2001:db8::200"] and not ours.rr
        # A CNAME to a name that is not local: pycorefile follows it.
        theirs, ours = both("out.lan", "A")
        assert len(theirs.rr) == 1
        assert [str(rr.rdata) for rr in ours.rr] == ["elsewhere.test.", "192.0.2.200"]
        # The AA bit of local denials.
        theirs, ours = both("nothing.lan", "A")
        assert (theirs.header.rcode, ours.header.rcode) == (RCODE.NXDOMAIN, RCODE.NXDOMAIN)
        assert (theirs.header.aa, ours.header.aa) == (0, 1)
        # ANY: only the first template's records.
        theirs, ours = both("n.lan", "ANY")
        assert sorted(QTYPE.get(rr.rtype) for rr in theirs.rr) == ["A", "TXT"]
        assert [QTYPE.get(rr.rtype) for rr in ours.rr] == ["A"]
