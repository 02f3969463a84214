"""The file plugin against NSD: the same zone file, the same queries, over UDP.

pycorefile serves the zone with ``file`` on a loopback port; NSD serves the same text
on another. dnspython asks both and the rcode, the AA bit and the answer, authority
and additional sections (RRsets with their TTLs, order-insensitive) must match.

Where CoreDNS's ``file`` plugin and NSD disagree, CoreDNS is the reference: the case
names the difference and the test asserts CoreDNS's behaviour, and NSD's, so that
both stay documented:

* ``negative_ttl``: NSD gives the SOA of a negative answer the TTL
  min(SOA TTL, SOA MINIMUM) (RFC 2308 §3); CoreDNS serves the SOA record as it is.
* ``ns_authority``: CoreDNS puts the apex NS RRset in the authority section of every
  positive answer, also after a CNAME that leaves the zone or loops, and after a
  DNAME-synthesized CNAME; NSD leaves the authority section empty there.
* ``ent_wildcard``: a name that exists only as an empty non-terminal is NODATA for
  NSD (RFC 4592 §2.2.2); CoreDNS synthesizes it from a wildcard one level up.
* ``any``: NSD answers ANY with one RRset (RFC 8482); CoreDNS's ``file`` has no
  ANY handling and answers NODATA.
* ``apex_only``: in a zone with nothing but the apex SOA and NS, CoreDNS answers
  NXDOMAIN for other types at the apex (its own tests call this wrong and keep it);
  NSD answers NODATA.

NSD runs with ``minimal-responses: no``, because CoreDNS always fills in the authority
section; the zone's name servers are out of zone so that NSD adds no addresses for
them to the additional section (CoreDNS never does for positive answers).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

import pycorefile

from upstreams import NsdServer, require_binary

pytestmark = pytest.mark.integration

SOA_TTL = 3600
ZONE = """\
$ORIGIN example.test.
$TTL 1h
@          IN SOA   ns1.example.net. hostmaster ( 2024010101 2h 1h 2w 300 )
           IN NS    ns1.example.net.
           IN NS    ns2.example.net.
           IN MX    10 mail
           IN A     192.0.2.1
mail   300 IN A     192.0.2.25
           IN AAAA  2001:db8::25
www        IN CNAME web
web        IN A     192.0.2.80
chain      IN CNAME www
apexalias  IN CNAME @
ext        IN CNAME www.example.net.
dangling   IN CNAME nothere
*.apps     IN A     192.0.2.100
*.apps     IN TXT   "wild"
*.svc      IN CNAME web
*.mx       IN MX    5 mail
*.dyn      IN A     192.0.2.99
host.ent.dyn IN A   192.0.2.98
_http._tcp IN SRV   0 5 80 web
lab        IN NS    ns.lab
           IN NS    ns.example.net.
ns.lab     IN A     192.0.2.200
           IN AAAA  2001:db8::200
tolab      IN CNAME host.lab
deep.ent   IN TXT   "hello world" "two"
sub        IN DNAME example.test.
loop1      IN CNAME loop2
loop2      IN CNAME loop1
"""

#: A second zone with nothing but its apex.
APEX_ONLY = """\
$TTL 1h
@ IN SOA ns1.example.net. hostmaster.example.test. 1 2h 1h 2w 300
  IN NS  ns1.example.net.
"""

APEX_NS = ["example.test. 3600 IN NS ns1.example.net.", "example.test. 3600 IN NS ns2.example.net."]

# (qname, qtype, difference or None)
CASES = [
    ("example.test", "SOA", None),
    ("example.test", "NS", None),
    ("example.test", "A", None),
    ("example.test", "MX", None),
    ("example.test", "AAAA", "negative_ttl"),
    ("nope.example.test", "A", "negative_ttl"),
    ("a.b.nope.example.test", "TXT", "negative_ttl"),
    ("web.example.test", "MX", "negative_ttl"),
    ("x.www.example.test", "A", "negative_ttl"),
    ("www.example.test", "A", None),
    ("WwW.ExAmPlE.TeSt", "A", None),
    ("www.example.test", "CNAME", None),
    ("chain.example.test", "A", None),
    ("apexalias.example.test", "MX", None),
    ("ext.example.test", "A", "ns_authority"),
    ("dangling.example.test", "A", "negative_ttl"),
    ("x.apps.example.test", "A", None),
    ("x.apps.example.test", "TXT", None),
    ("y.x.apps.example.test", "A", None),
    ("x.apps.example.test", "AAAA", "negative_ttl"),
    ("*.apps.example.test", "A", None),
    ("apps.example.test", "A", "negative_ttl"),
    ("a.svc.example.test", "A", None),
    ("a.mx.example.test", "MX", None),
    ("ent.dyn.example.test", "A", "ent_wildcard"),
    ("x.ent.dyn.example.test", "A", "negative_ttl"),
    ("other.dyn.example.test", "A", None),
    ("_http._tcp.example.test", "SRV", None),
    ("a.lab.example.test", "A", None),
    ("lab.example.test", "NS", None),
    ("lab.example.test", "A", None),
    ("lab.example.test", "DS", "negative_ttl"),
    ("x.lab.example.test", "DS", None),
    ("ns.lab.example.test", "A", None),
    ("tolab.example.test", "A", None),
    ("ent.example.test", "A", "negative_ttl"),
    ("deep.ent.example.test", "TXT", None),
    ("www.sub.example.test", "A", None),
    ("www.sub.example.test", "CNAME", "ns_authority"),
    ("sub.example.test", "DNAME", None),
    ("loop1.example.test", "A", "ns_authority"),
    ("example.test", "ANY", "any"),
    ("empty.test", "SOA", None),
    ("empty.test", "A", "apex_only"),
    ("www.empty.test", "A", "negative_ttl"),
]

View = tuple[str, bool, frozenset[str], frozenset[str], frozenset[str]]


class FullResponsesNsd(NsdServer):
    """NSD with its default ``minimal-responses: no``: authority sections filled in."""

    def _write_files(self, workdir: Path) -> None:
        super()._write_files(workdir)
        conf = workdir / "nsd.conf"
        conf.write_text(conf.read_text().replace("minimal-responses: yes", "minimal-responses: no"))


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    require_binary("nsd")
    zones = tmp_path_factory.mktemp("zones")
    (zones / "db.example.test").write_text(ZONE)
    (zones / "db.empty.test").write_text(APEX_ONLY)
    corefile = (
        "example.test:0 empty.test:0 {\n    bind 127.0.0.1\n"
        f"    file {zones / 'db.example.test'} example.test\n"
        f"    file {zones / 'db.empty.test'} empty.test\n}}\n"
    )
    nsd = FullResponsesNsd(zone_text=ZONE, extra_zones={"empty.test.": APEX_ONLY})
    with nsd, pycorefile.serve(corefile) as srv:
        yield nsd.port, srv.port


def ask(port: int, qname: str, qtype: str) -> View:
    reply = dns.query.udp(dns.message.make_query(qname, qtype), "127.0.0.1", port=port, timeout=3)

    def lines(section: list) -> frozenset[str]:
        out = set()
        for rrset in section:
            rrset.name = rrset.name.canonicalize()
            out.update(rrset.to_text().splitlines())
        return frozenset(out)

    return (
        dns.rcode.to_text(reply.rcode()),
        bool(reply.flags & dns.flags.AA),
        lines(reply.answer),
        lines(reply.authority),
        lines(reply.additional),
    )


def coredns_view(nsd: View, difference: str | None, qname: str) -> View:
    """What CoreDNS answers, given NSD's answer and the documented difference."""
    rcode, aa, answer, authority, additional = nsd
    if difference == "negative_ttl":
        # NSD lowered the SOA's TTL to its MINIMUM; CoreDNS keeps the record's own.
        (soa,) = authority
        owner, ttl, rest = soa.split(" ", 2)
        assert int(ttl) < SOA_TTL
        return rcode, aa, answer, frozenset({f"{owner} {SOA_TTL} {rest}"}), additional
    if difference == "ns_authority":
        assert not authority
        return rcode, aa, answer, frozenset(APEX_NS), additional
    if difference == "ent_wildcard":
        # NSD: NODATA for the empty non-terminal. CoreDNS: the wildcard's data.
        assert rcode == "NOERROR" and not answer
        return (
            rcode,
            aa,
            frozenset({f"{qname.lower()}. 3600 IN A 192.0.2.99"}),
            frozenset(APEX_NS),
            additional,
        )
    if difference == "apex_only":
        # NSD: NODATA. CoreDNS: NXDOMAIN, with the SOA as it is.
        assert rcode == "NOERROR" and not answer
        return coredns_view(("NXDOMAIN", aa, answer, authority, additional), "negative_ttl", qname)
    if difference == "any":
        # NSD: one RRset (RFC 8482). CoreDNS: NODATA with the SOA.
        assert answer
        soa = "example.test. 3600 IN SOA ns1.example.net. hostmaster.example.test. 2024010101 7200 3600 1209600 300"
        return rcode, aa, frozenset(), frozenset({soa}), additional
    assert difference is None
    return nsd


@pytest.mark.parametrize("qname, qtype, difference", CASES, ids=[f"{q}/{t}" for q, t, _ in CASES])
def test_same_answers_as_nsd(
    servers: tuple[int, int], qname: str, qtype: str, difference: str | None
) -> None:
    nsd_port, our_port = servers
    expected = coredns_view(ask(nsd_port, qname, qtype), difference, qname)
    assert ask(our_port, qname, qtype) == expected


def test_every_zone_file_query_is_repeatable(servers: tuple[int, int]) -> None:
    # The second round is served from the memo: still the same bytes' meaning.
    _, our_port = servers
    for qname, qtype, _ in CASES:
        assert ask(our_port, qname, qtype) == ask(our_port, qname, qtype)
