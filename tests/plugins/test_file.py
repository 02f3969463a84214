"""file: look-ups (CoreDNS plugin/file/lookup.go), setup, zone-file syntax, reload, memo.

The look-up table runs against one small zone that has every case CoreDNS's
``Zone.Lookup`` distinguishes: apex SOA/NS, CNAME chains in and out of the zone,
wildcards (RFC 4592) with empty non-terminals, a delegation with glue and DS, a
DNAME, additional-section processing, NODATA, NXDOMAIN and ANY.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import dns.message
import dns.rcode
import pytest
from dnslib import DNSRecord

import pycorefile
from pycorefile import CorefileError
from pycorefile import wire as w
from pycorefile.chain import build_chain
from pycorefile.plugins.file.zone import Zone
from pycorefile.zonetext import ZoneTextError, parse_name, parse_zone

ZONE = textwrap.dedent("""\
    $ORIGIN example.test.
    $TTL 1h
    @        IN SOA   ns1 hostmaster (
                      2024010101 ; serial
                      2h 1h 2w   ; refresh retry expire
                      300 )      ; minimum: smaller than the SOA's own TTL on purpose
             IN NS    ns1
             IN NS    ns2.example.net.
             IN MX    10 mail
             IN MX    20 mail
             IN A     192.0.2.1
    ns1      IN A     192.0.2.53
             IN AAAA  2001:db8::53
    mail 300 IN A     192.0.2.25
             IN AAAA  2001:db8::25
    www      IN CNAME web
    web      IN A     192.0.2.80
             IN AAAA  2001:db8::80
    chain    IN CNAME www
    ext      IN CNAME www.example.net.
    dangling IN CNAME nothere
    *.apps   IN A     192.0.2.100
    *.svc    IN CNAME web
    *.mail   IN MX    5 mail
    _http._tcp IN SRV 0 5 80 web
             IN SRV   0 5 8080 web
    txt      IN TXT   "v=spf1 -all" "second string"
    deep.ent IN TXT   "below an empty non-terminal"
    lab      IN NS    ns.lab
             IN NS    ns2.example.net.
             IN DS    12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    ns.lab   IN A     192.0.2.200
             IN AAAA  2001:db8::200
    tolab    IN CNAME host.lab
    sub      IN DNAME example.test.
    loop1    IN CNAME loop2
    loop2    IN CNAME loop1
    """)

SOA = "example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 300"
NS = ["example.test. 3600 IN NS ns1.example.test.", "example.test. 3600 IN NS ns2.example.net."]
MAIL = ["mail.example.test. 300 IN A 192.0.2.25", "mail.example.test. 3600 IN AAAA 2001:db8::25"]
WEB = ["web.example.test. 3600 IN A 192.0.2.80", "web.example.test. 3600 IN AAAA 2001:db8::80"]
LAB_NS = ["lab.example.test. 3600 IN NS ns.lab.example.test.", "lab.example.test. 3600 IN NS ns2.example.net."]
LAB_GLUE = ["ns.lab.example.test. 3600 IN A 192.0.2.200", "ns.lab.example.test. 3600 IN AAAA 2001:db8::200"]
DS = "lab.example.test. 3600 IN DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture
def zonefile(tmp_path: Path) -> Path:
    path = tmp_path / "db.example.test"
    path.write_text(ZONE)
    return path


@pytest.fixture
def resolver(zonefile: Path):
    with pycorefile.Resolver.from_corefile(f"example.test:1053 {{\n file {zonefile}\n}}\n") as r:
        yield r


def view(msg: DNSRecord) -> tuple[str, bool, list[str], list[str], list[str]]:
    """rcode, aa and the three sections as sorted zone-file lines (owners lower-cased)."""
    m = dns.message.from_wire(bytes(msg.pack()))

    def lines(section: list) -> list[str]:
        out = []
        for rrset in section:
            rrset.name = rrset.name.canonicalize()
            out.extend(rrset.to_text().splitlines())
        return sorted(out)

    return dns.rcode.to_text(m.rcode()), bool(msg.header.aa), lines(m.answer), lines(m.authority), lines(m.additional)


# (qname, qtype, rcode, aa, answer, authority, additional)
CASES = [
    # The apex: SOA with the NS in authority; NS with the addresses of in-zone servers.
    ("example.test", "SOA", "NOERROR", True, [SOA], NS, []),
    ("example.test", "NS", "NOERROR", True, NS, [], ["ns1.example.test. 3600 IN A 192.0.2.53",
                                                      "ns1.example.test. 3600 IN AAAA 2001:db8::53"]),
    ("example.test", "A", "NOERROR", True, ["example.test. 3600 IN A 192.0.2.1"], NS, []),
    # NODATA and NXDOMAIN carry the SOA with its own TTL (CoreDNS does not lower it
    # to the SOA minimum).
    ("example.test", "AAAA", "NOERROR", True, [], [SOA], []),
    ("nope.example.test", "A", "NXDOMAIN", True, [], [SOA], []),
    ("web.example.test", "MX", "NOERROR", True, [], [SOA], []),
    ("x.www.example.test", "A", "NXDOMAIN", True, [], [SOA], []),
    # Additional processing: MX/SRV targets in the zone, once per target.
    ("example.test", "MX", "NOERROR", True,
     ["example.test. 3600 IN MX 10 mail.example.test.", "example.test. 3600 IN MX 20 mail.example.test."], NS, MAIL),
    ("_http._tcp.example.test", "SRV", "NOERROR", True,
     ["_http._tcp.example.test. 3600 IN SRV 0 5 80 web.example.test.",
      "_http._tcp.example.test. 3600 IN SRV 0 5 8080 web.example.test."], NS, WEB),
    ("txt.example.test", "TXT", "NOERROR", True,
     ['txt.example.test. 3600 IN TXT "v=spf1 -all" "second string"'], NS, []),
    # CNAMEs: followed inside the zone; the qtype CNAME gets the record itself.
    ("www.example.test", "A", "NOERROR", True,
     ["www.example.test. 3600 IN CNAME web.example.test.", WEB[0]], NS, []),
    ("WwW.Example.TEST", "AAAA", "NOERROR", True,
     ["www.example.test. 3600 IN CNAME web.example.test.", WEB[1]], NS, []),
    ("chain.example.test", "A", "NOERROR", True,
     ["chain.example.test. 3600 IN CNAME www.example.test.",
      "www.example.test. 3600 IN CNAME web.example.test.", WEB[0]], NS, []),
    ("www.example.test", "CNAME", "NOERROR", True, ["www.example.test. 3600 IN CNAME web.example.test."], NS, []),
    ("www.example.test", "MX", "NOERROR", True, ["www.example.test. 3600 IN CNAME web.example.test."], NS, []),
    # Out-of-zone target: resolved through the server, which has no zone for it.
    ("ext.example.test", "A", "NOERROR", True, ["ext.example.test. 3600 IN CNAME www.example.net."], NS, []),
    # A target missing from the zone: NXDOMAIN with the CNAME (RFC 6604).
    ("dangling.example.test", "A", "NXDOMAIN", True,
     ["dangling.example.test. 3600 IN CNAME nothere.example.test."], [SOA], []),
    # Empty non-terminals: NODATA.
    ("ent.example.test", "TXT", "NOERROR", True, [], [SOA], []),
    ("deep.ent.example.test", "TXT", "NOERROR", True,
     ['deep.ent.example.test. 3600 IN TXT "below an empty non-terminal"'], NS, []),
    ("apps.example.test", "A", "NOERROR", True, [], [SOA], []),
    # Wildcards: any depth below, owner rewritten; NODATA for other types; the
    # wildcard name itself; wildcard CNAME and MX (with additional processing).
    ("x.apps.example.test", "A", "NOERROR", True, ["x.apps.example.test. 3600 IN A 192.0.2.100"], NS, []),
    ("a.b.apps.example.test", "A", "NOERROR", True, ["a.b.apps.example.test. 3600 IN A 192.0.2.100"], NS, []),
    ("x.apps.example.test", "AAAA", "NOERROR", True, [], [SOA], []),
    ("*.apps.example.test", "A", "NOERROR", True, ["*.apps.example.test. 3600 IN A 192.0.2.100"], NS, []),
    ("api.svc.example.test", "A", "NOERROR", True,
     ["api.svc.example.test. 3600 IN CNAME web.example.test.", WEB[0]], NS, []),
    ("in.mail.example.test", "MX", "NOERROR", True, ["in.mail.example.test. 3600 IN MX 5 mail.example.test."],
     NS, MAIL),
    # Delegation: a referral (aa=0) with in-bailiwick glue only.
    ("host.lab.example.test", "A", "NOERROR", False, [], LAB_NS, LAB_GLUE),
    ("lab.example.test", "NS", "NOERROR", False, [], LAB_NS, LAB_GLUE),
    ("ns.lab.example.test", "A", "NOERROR", False, [], LAB_NS, LAB_GLUE),
    ("lab.example.test", "A", "NOERROR", False, [], LAB_NS, LAB_GLUE),
    # DS lives in the parent: answered at the cut, a referral below it.
    ("lab.example.test", "DS", "NOERROR", True, [DS], NS, []),
    ("x.lab.example.test", "DS", "NOERROR", False, [], LAB_NS, LAB_GLUE),
    # A CNAME into the delegation keeps AA and adds the referral.
    ("tolab.example.test", "A", "NOERROR", True, ["tolab.example.test. 3600 IN CNAME host.lab.example.test."],
     LAB_NS, LAB_GLUE),
    # DNAME: the DNAME, a synthesized CNAME, then the target's chain.
    ("www.sub.example.test", "A", "NOERROR", True,
     ["sub.example.test. 3600 IN DNAME example.test.", "www.sub.example.test. 3600 IN CNAME www.example.test.",
      "www.example.test. 3600 IN CNAME web.example.test.", WEB[0]], NS, []),
    ("www.sub.example.test", "CNAME", "NOERROR", True,
     ["sub.example.test. 3600 IN DNAME example.test.", "www.sub.example.test. 3600 IN CNAME www.example.test."],
     NS, []),
    ("sub.example.test", "DNAME", "NOERROR", True, ["sub.example.test. 3600 IN DNAME example.test."], NS, []),
    # ANY is not special in CoreDNS's file plugin: NODATA (or the CNAME alone).
    ("example.test", "ANY", "NOERROR", True, [], [SOA], []),
    ("www.example.test", "ANY", "NOERROR", True, ["www.example.test. 3600 IN CNAME web.example.test."], NS, []),
]


@pytest.mark.parametrize("qname, qtype, rcode, aa, answer, authority, additional", CASES,
                         ids=[f"{c[0]}/{c[1]}" for c in CASES])
def test_lookup(resolver, qname, qtype, rcode, aa, answer, authority, additional) -> None:
    got = view(resolver.resolve(qname, qtype))
    assert got == (rcode, aa, sorted(answer), sorted(authority), sorted(additional))


def test_lookup_is_stable_across_the_memo(resolver) -> None:
    # Every case again, now answered from memoised bytes.
    for qname, qtype, rcode, aa, answer, authority, additional in CASES:
        first = view(resolver.resolve(qname, qtype))
        again = view(resolver.resolve(qname, qtype))
        assert first == again == (rcode, aa, sorted(answer), sorted(authority), sorted(additional))


def test_cname_loop_stops_after_nine_hops(resolver) -> None:
    reply = resolver.resolve("loop1.example.test", "A")
    assert reply.header.rcode == 0 and reply.header.aa
    assert [rr.rtype for rr in reply.rr] == [5] * 10


def test_apex_only_zone_answers_nxdomain_like_coredns(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\n@ IN NS ns.example.net.\n")
    with pycorefile.Resolver.from_corefile(f"example.test:1053 {{\n file {tmp_path / 'db'}\n}}\n") as r:
        # No data besides the apex: CoreDNS answers NXDOMAIN, not NODATA, for the apex.
        assert r.resolve("example.test", "A").header.rcode == w.NXDOMAIN
        assert r.resolve("example.test", "SOA").header.rcode == 0


def test_https_targets_in_the_zone_get_their_addresses(tmp_path: Path) -> None:
    # web.example.test. as a relative target, and in the RFC 3597 form (which dnslib
    # decodes into bytearray labels).
    generic = "\\# 20 0001 03776562 076578616d706c65 0474657374 00"
    (tmp_path / "db").write_text(
        "$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\n@ IN NS ns.example.net.\n"
        f"svc IN HTTPS 1 web alpn=h2\nraw IN HTTPS {generic}\nweb IN A 192.0.2.80\n"
    )
    with pycorefile.Resolver.from_corefile(f"example.test:1053 {{\n file {tmp_path / 'db'}\n}}\n") as r:
        for name in ("svc.example.test", "raw.example.test"):
            reply = r.resolve(name, "HTTPS")
            assert reply.header.rcode == 0 and len(reply.rr) == 1
            assert [str(rr.rdata) for rr in reply.ar] == ["192.0.2.80"]


def test_wildcard_at_an_empty_non_terminal_matches_coredns(tmp_path: Path) -> None:
    (tmp_path / "db").write_text(
        "$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\n@ IN NS ns.example.net.\n"
        "*.dyn IN A 192.0.2.99\nhost.ent.dyn IN A 192.0.2.98\n"
    )
    with pycorefile.Resolver.from_corefile(f"example.test:1053 {{\n file {tmp_path / 'db'}\n}}\n") as r:
        # CoreDNS synthesizes from *.dyn for the empty non-terminal ent.dyn itself
        # (RFC 4592 would say NODATA); below it the closer ENT wins: NXDOMAIN.
        assert [str(rr.rdata) for rr in r.resolve("ent.dyn.example.test", "A").rr] == ["192.0.2.99"]
        assert r.resolve("x.ent.dyn.example.test", "A").header.rcode == w.NXDOMAIN
        assert [str(rr.rdata) for rr in r.resolve("other.dyn.example.test", "A").rr] == ["192.0.2.99"]


def test_axfr_refused_and_notify_dropped(resolver) -> None:
    assert resolver.resolve("example.test", "AXFR").header.rcode == w.REFUSED
    assert resolver.resolve("example.test", "IXFR").header.rcode == w.REFUSED
    notify = bytearray(w.build_query("example.test", 6, qid=9))
    notify[2] |= 0x20  # opcode 4
    assert not resolver.handle(bytes(notify))  # nothing is sent back


def test_out_of_zone_names(zonefile: Path) -> None:
    # file last in the chain: REFUSED, as CoreDNS does when it has no next plugin.
    with pycorefile.Resolver.from_corefile(f".:1053 {{\n file {zonefile} example.test\n}}\n") as r:
        assert r.resolve("example.org", "A").header.rcode == w.REFUSED
        assert r.resolve("www.example.test", "A").header.rcode == 0
    # With a next plugin the query is passed on.
    text = f".:1053 {{\n file {zonefile} example.test\n erratic {{\n drop 0\n }}\n}}\n"
    with pycorefile.Resolver.from_corefile(text) as r:
        assert [str(rr.rdata) for rr in r.resolve("example.org", "A").rr] == ["192.0.2.53"]


def test_fallthrough_only_for_missing_names(zonefile: Path) -> None:
    text = f"example.test:1053 {{\n file {zonefile} {{\n fallthrough\n }}\n erratic {{\n drop 0\n }}\n}}\n"
    with pycorefile.Resolver.from_corefile(text) as r:
        for _ in range(2):  # the second round comes from the memo
            # NXDOMAIN and empty non-terminals go on to the next plugin...
            assert [str(rr.rdata) for rr in r.resolve("nope.example.test", "A").rr] == ["192.0.2.53"]
            assert [str(rr.rdata) for rr in r.resolve("ent.example.test", "A").rr] == ["192.0.2.53"]
            # ...NODATA, answers and referrals do not.
            nodata = r.resolve("web.example.test", "MX")
            assert nodata.header.rcode == 0 and not nodata.rr and nodata.auth[0].rtype == 6
            assert [str(rr.rdata) for rr in r.resolve("web.example.test", "A").rr] == ["192.0.2.80"]
            assert r.resolve("a.lab.example.test", "A").header.aa == 0
    text = (f"example.test:1053 {{\n file {zonefile} {{\n fallthrough apps.example.test\n }}\n"
            " erratic {\n drop 0\n }\n}\n")
    with pycorefile.Resolver.from_corefile(text) as r:
        assert r.resolve("nope.example.test", "A").header.rcode == w.NXDOMAIN
        assert [str(rr.rdata) for rr in r.resolve("x.apps.example.test", "A").rr] == ["192.0.2.100"]


def test_cname_target_in_another_block_is_resolved_through_the_server(tmp_path: Path) -> None:
    (tmp_path / "db").write_text(
        "$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\n@ IN NS ns.example.net.\nalias IN CNAME api.example.net.\n"
    )
    text = (f"example.test:1053 {{\n file {tmp_path / 'db'}\n}}\n"
            'example.net:1053 {\n template IN A example.net {\n answer "{{ .Name }} 30 IN A 192.0.2.44"\n }\n}\n')
    with pycorefile.Resolver.from_corefile(text) as r:
        reply = r.resolve("alias.example.test", "A")
        assert [(str(rr.rname), rr.rtype) for rr in reply.rr] == [("alias.example.test.", 5), ("api.example.net.", 1)]
        assert reply.header.aa and reply.header.rcode == 0


def test_zones_argument_and_several_lines(tmp_path: Path) -> None:
    (tmp_path / "db.one").write_text("$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\nwww IN A 192.0.2.1\n")
    (tmp_path / "db.rev").write_text(
        "$TTL 60\n@ IN SOA ns.example.test. hm.example.test. 1 2 3 4 5\n10 IN PTR host.example.test.\n"
    )
    text = (f".:1053 {{\n file {tmp_path / 'db.one'} one.test two.test\n"
            f" file {tmp_path / 'db.rev'} 192.0.2.0/24\n}}\n")
    with pycorefile.Resolver.from_corefile(text) as r:
        # One file, two origins: relative names follow each origin.
        assert [str(rr.rname) for rr in r.resolve("www.one.test", "A").rr] == ["www.one.test."]
        assert [str(rr.rname) for rr in r.resolve("www.two.test", "A").rr] == ["www.two.test."]
        # A CIDR becomes its reverse zone.
        assert [str(rr.rdata) for rr in r.resolve("10.2.0.192.in-addr.arpa", "PTR").rr] == ["host.example.test."]


def test_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "db.example.test").write_text(ZONE)
    corefile = tmp_path / "Corefile"
    corefile.write_text("example.test:1053 {\n file zones/db.example.test\n}\n")
    # Relative to the Corefile's directory...
    with pycorefile.Resolver.from_corefile(pycorefile.load(str(corefile))) as r:
        assert r.resolve("web.example.test", "A").rr
    # ...or to the root directory when the root plugin set one.
    block = pycorefile.loads("example.test:1053 {\n file db.example.test\n}\n").blocks[0]
    chain = build_chain(block, config_dir="/nonexistent", shared={"root": str(tmp_path / "zones")})
    assert chain.plugins[0].zones["example.test."].zone is not None


def test_include_and_origin(tmp_path: Path) -> None:
    (tmp_path / "hosts.inc").write_text("nas IN A 192.0.2.10\n")
    (tmp_path / "lab.inc").write_text("printer IN A 192.0.2.11\n")
    (tmp_path / "db").write_text(
        "$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\n$INCLUDE hosts.inc\n$INCLUDE lab.inc office.example.test.\n"
        "after IN A 192.0.2.12\n"
    )
    with pycorefile.Resolver.from_corefile(f"example.test:1053 {{\n file {tmp_path / 'db'}\n}}\n") as r:
        assert r.resolve("nas.example.test", "A").rr
        assert r.resolve("printer.office.example.test", "A").rr
        # The included origin does not leak back.
        assert r.resolve("after.example.test", "A").rr


# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------


def load(text: str):
    return pycorefile.loads(text, filename="Corefile")


def test_setup_errors(tmp_path: Path, zonefile: Path) -> None:
    cases = {
        "file\n": "Wrong argument count or unexpected line ending after 'file'",
        f"file {zonefile} {{\n reload\n }}\n": "reload duration value is expected",
        f"file {zonefile} {{\n reload x\n }}\n": 'time: invalid duration "x"',
        f"file {zonefile} {{\n reload 10\n }}\n": 'time: missing unit in duration "10"',
        f"file {zonefile} {{\n reload -1s\n }}\n": "invalid negative duration for reload '-1s'",
        f"file {zonefile} {{\n transfer from 127.0.0.1\n }}\n": "unknown property 'transfer'",
        f"file {zonefile} {{\n reload_by_mtime yes\n }}\n": "unknown property 'yes'",
        f"file {tmp_path / 'missing'} {{\n reload 0\n }}\n": f"open {tmp_path / 'missing'}: no such file or directory",
    }
    for body, message in cases.items():
        with pytest.raises(CorefileError) as info:
            load(f"example.test:1053 {{\n{body}}}\n")
        assert message in str(info.value)
        assert str(info.value).startswith("plugin/file: Corefile:")


def test_parse_errors_name_the_zone_file_and_the_directive(tmp_path: Path) -> None:
    bad = tmp_path / "db.bad"
    bad.write_text("$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\nwww IN A 192.0.2\n")
    with pytest.raises(CorefileError) as info:
        load(f"example.test:1053 {{\n\n file {bad}\n}}\n")
    text = str(info.value)
    assert text.startswith("plugin/file: Corefile:3 - ")
    assert f'failed to parse file "{bad}" for origin example.test.' in text
    assert 'bad A rdata: "192.0.2" at line: 3:' in text
    assert info.value.line == 3

    nosoa = tmp_path / "db.nosoa"
    nosoa.write_text("$TTL 60\nwww IN A 192.0.2.1\n")
    with pytest.raises(CorefileError, match=f'file "{nosoa}" has no SOA record for origin example.test.'):
        load(f"example.test:1053 {{\n file {nosoa}\n}}\n")

    nsec3 = tmp_path / "db.nsec3"
    nsec3.write_text("$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\n@ IN NSEC3PARAM \\# 5 0100000a00\n")
    with pytest.raises(CorefileError, match="NSEC3 zone is not supported"):
        load(f"example.test:1053 {{\n file {nsec3}\n}}\n")


def test_accepted_options(zonefile: Path) -> None:
    cf = load(f"example.test:1053 {{\n file {zonefile} {{\n reload 30s\n reload_by_mtime\n"
              " upstream 8.8.8.8\n fallthrough\n }\n}\n")
    plugin = build_chain(cf.blocks[0]).plugins[0]
    zf = plugin.zones["example.test."]
    assert zf.interval == 30 and zf.by_mtime and plugin.fall.through("x.example.test.")


def test_missing_file_serves_servfail_then_loads(tmp_path: Path, caplog) -> None:
    path = tmp_path / "db.later"
    with pycorefile.Resolver.from_corefile(f"example.test:1053 {{\n file {path} {{\n reload 10ms\n }}\n}}\n") as r:
        assert "trying again in 10ms" in caplog.text
        assert r.resolve("web.example.test", "A").header.rcode == w.SERVFAIL
        path.write_text(ZONE)
        time.sleep(0.03)
        assert [str(rr.rdata) for rr in r.resolve("web.example.test", "A").rr] == ["192.0.2.80"]


# ---------------------------------------------------------------------------
# Reload
# ---------------------------------------------------------------------------


def test_reload_on_serial_change_only(zonefile: Path, caplog) -> None:
    caplog.set_level("INFO", logger="pycorefile.plugins.file")
    with pycorefile.Resolver.from_corefile(f"example.test:1053 {{\n file {zonefile} {{\n reload 10ms\n }}\n}}\n") as r:
        assert r.resolve("new.example.test", "A").header.rcode == w.NXDOMAIN  # now memoised
        # New data, same serial: not loaded (CoreDNS compares serials).
        zonefile.write_text(ZONE + "new IN A 192.0.2.77\n")
        time.sleep(0.03)
        assert r.resolve("new.example.test", "A").header.rcode == w.NXDOMAIN
        # A new serial (any change, even downwards): loaded, and the memo is gone.
        zonefile.write_text(ZONE.replace("2024010101", "2024010100") + "new IN A 192.0.2.77\n")
        time.sleep(0.03)
        assert [str(rr.rdata) for rr in r.resolve("new.example.test", "A").rr] == ["192.0.2.77"]
        assert 'Successfully reloaded zone "example.test."' in caplog.text
        assert "with 2024010100 SOA serial" in caplog.text
        # A broken file keeps the old data.
        zonefile.write_text(ZONE.replace("2024010101", "2024010102") + "bad IN A nope\n")
        time.sleep(0.03)
        assert r.resolve("new.example.test", "A").rr
        assert 'Parsing zone "example.test."' in caplog.text


def test_reload_disabled_and_by_mtime(zonefile: Path) -> None:
    with pycorefile.Resolver.from_corefile(f"example.test:1053 {{\n file {zonefile} {{\n reload 0\n }}\n}}\n") as r:
        zonefile.write_text(ZONE.replace("2024010101", "2024010102") + "new IN A 192.0.2.77\n")
        time.sleep(0.02)
        assert r.resolve("new.example.test", "A").header.rcode == w.NXDOMAIN
    zonefile.write_text(ZONE)
    text = f"example.test:1053 {{\n file {zonefile} {{\n reload 10ms\n reload_by_mtime\n }}\n}}\n"
    with pycorefile.Resolver.from_corefile(text) as r:
        assert r.resolve("new.example.test", "A").header.rcode == w.NXDOMAIN
        zonefile.write_text(ZONE + "new IN A 192.0.2.77\n")  # same serial
        st = zonefile.stat()
        os.utime(zonefile, (st.st_atime, st.st_mtime + 5))
        time.sleep(0.03)
        assert r.resolve("new.example.test", "A").rr


# ---------------------------------------------------------------------------
# The memo and the wire
# ---------------------------------------------------------------------------


def test_memoised_bytes_follow_the_request(resolver) -> None:
    plain = w.build_query("www.example.test", 1, qid=1)
    edns = w.build_query("WWW.example.test", 1, qid=2, edns_size=1232, do=True)
    for _ in range(2):
        a = DNSRecord.parse(resolver.handle(plain))
        b = DNSRecord.parse(resolver.handle(edns))
        assert a.header.id == 1 and not [rr for rr in a.ar if rr.rtype == w.OPT]
        assert b.header.id == 2 and str(b.q.qname) == "WWW.example.test."
        opt = [rr for rr in b.ar if rr.rtype == w.OPT]
        assert len(opt) == 1 and opt[0].rclass == 1232 and opt[0].ttl & w.DO_BIT
        assert len(a.rr) == len(b.rr) == 2
    reply, _ = resolver.resolve_reply("www.example.test", "A")
    assert reply.plugin == "file" and reply.final


def test_truncation_keeps_the_question_as_sent(tmp_path: Path) -> None:
    records = "".join(f'big IN TXT "{i:02d}-{"x" * 60}"\n' for i in range(20))
    (tmp_path / "db").write_text(f"$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\n{records}")
    with pycorefile.Resolver.from_corefile(f"example.test:1053 {{\n file {tmp_path / 'db'}\n}}\n") as r:
        for _ in range(2):
            reply = DNSRecord.parse(r.handle(w.build_query("BIG.example.test", 16, qid=3)))
            assert reply.header.tc and str(reply.q.qname) == "BIG.example.test."
        # The in-process resolver retries over TCP and gets everything.
        assert len(r.resolve("big.example.test", "TXT").rr) == 20


# ---------------------------------------------------------------------------
# Zone-file syntax
# ---------------------------------------------------------------------------


ORIGIN = parse_name("example.test.", ())


def records(text: str) -> list[str]:
    def rdata(rr) -> str:
        return repr(rr.rdata.data) if rr.rtype == 16 else str(rr.rdata)

    return [f"{rr.rname} {rr.ttl} {rr.rclass} {rr.rtype} {rdata(rr)}" for rr, _ in parse_zone(text, ORIGIN, "db")]


def test_zone_syntax() -> None:
    text = textwrap.dedent("""\
        ; comment
        $TTL 1h30m
        @ SOA ns hm ( 1 ; serial
                      2 3 4 5 )
        a 60 IN A 192.0.2.1
        b IN 60 A 192.0.2.2      ; class before TTL
          AAAA 2001:db8::2        ; blank owner: b again, the $TTL
        c CH TXT "a \\"quoted\\" word" \\065bc
        d SRV 1 2 3 target       ; relative target
        $ORIGIN sub
        e CNAME f
        f TYPE65280 \\# 2 abcd
        """)
    assert records(text) == [
        "example.test. 5400 1 6 ns.example.test. hm.example.test. 1 2 3 4 5",
        "a.example.test. 60 1 1 192.0.2.1",
        "b.example.test. 60 1 1 192.0.2.2",
        "b.example.test. 5400 1 28 2001:db8::2",
        "c.example.test. 5400 3 16 [b'a \"quoted\" word', b'Abc']",
        "d.example.test. 5400 1 33 1 2 3 target.example.test.",
        "e.sub.example.test. 5400 1 5 f.sub.example.test.",
        "f.sub.example.test. 5400 1 65280 \\# 2 ABCD",
    ]


def test_ttl_without_ttl_directive_follows_the_last_explicit_one() -> None:
    assert [r.split()[1] for r in records("a 60 A 192.0.2.1\nb A 192.0.2.2\n")] == ["60", "60"]
    with pytest.raises(ZoneTextError, match="missing TTL with no previous value"):
        records("a A 192.0.2.1\n")


@pytest.mark.parametrize(
    "text, message, line",
    [
        ("$TTL 60\na IN A 192.0.2\n", "bad A rdata", 2),
        ("$TTL 60\n\na IN BOGUS x\n", "unknown RR type", 3),
        ("$TTL 60\na IN MX mail\n", "bad MX rdata", 2),
        ("$TTL 60\na IN TXT \"open\n", "bad string, no closing quote", 2),
        ("$TTL 60\na IN A ( 192.0.2.1\n", "extra opening brace", 2),
        ("$TTL 60\n$GENERATE 1-2 $ A 192.0.2.$\n", "unsupported directive", 2),
        ("$TTL 60\n$INCLUDE nowhere.inc\n", "failed to open `nowhere.inc'", 2),
        ("$TTL 60\n  A 192.0.2.1\n", "no owner name", 2),
        ("$TTL 60\na IN URI 10 1 \"https://example.test/\"\n", "unsupported record type URI", 2),
    ],
)
def test_zone_syntax_errors(text: str, message: str, line: int) -> None:
    with pytest.raises(ZoneTextError) as info:
        records(text)
    assert message in str(info.value) and info.value.line == line


def test_insert_normalises_like_coredns() -> None:
    zone = Zone.load(
        "$TTL 60\n@ IN SOA NS.Example.TEST. HM.example.test. 7 2 3 4 5\n"
        "WWW IN CNAME Web\n_SIP._tcp IN SRV 0 0 5060 SIP.example.test.\n",
        "example.test.", "db",
    )
    assert zone is not None and zone.serial == 7
    assert str(zone.soa.rdata.mname) == "ns.example.test."
    www = zone.nodes[(b"www", b"example", b"test")]
    assert str(www.get(5)[0].rname) == "www.example.test." and str(www.get(5)[0].rdata) == "web.example.test."
    # SRV owners keep their case (CoreDNS does not lower-case them), look-ups do not care.
    srv = zone.nodes[(b"_sip", b"_tcp", b"example", b"test")]
    assert str(srv.get(33)[0].rname) == "_SIP._tcp.example.test."
    # An unchanged serial means "nothing to load".
    assert Zone.load("$TTL 60\n@ IN SOA ns hm 7 2 3 4 5\n", "example.test.", "db", serial=7) is None
