"""hosts (spec §4): entries, families, NODATA, SERVFAIL, PTR, wildcards, reload, setup errors."""

from __future__ import annotations

import os
import time

import pytest

import pycorefile
from pycorefile import CorefileError
from pycorefile import wire as w
from pycorefile.plugins.hosts import parse_hosts

HOSTS = """
# a comment
10.0.0.1   db.example.org db   # trailing comment
10.0.0.2   Web.Example.ORG.
2001:db8::1 web.example.org v6only.example.org
fe80::1%eth0 link.example.org
not-an-ip  broken.example.org
10.0.0.3
10.0.0.9   *.wild.example.org
10.0.0.10  exact.wild.example.org
10.0.0.11  outside.other.test
"""


@pytest.fixture
def hostsfile(tmp_path):
    p = tmp_path / "hosts"
    p.write_text(HOSTS)
    return p


def resolver(hostsfile, block: str = "", keys: str = "example.org:1053"):
    return pycorefile.Resolver.from_corefile(f"{keys} {{\n hosts {hostsfile} {{\n{block}\n }}\n}}\n")


def addrs(reply) -> list[str]:
    return [str(rr.rdata) for rr in reply.rr]


def test_a_and_aaaa(hostsfile) -> None:
    with resolver(hostsfile) as r:
        a = r.resolve("DB.example.org", "A")
        assert a.header.rcode == 0 and a.header.aa == 1
        assert addrs(a) == ["10.0.0.1"] and a.rr[0].ttl == 3600
        assert str(a.rr[0].rname) == "db.example.org."
        assert addrs(r.resolve("web.example.org", "A")) == ["10.0.0.2"]
        assert addrs(r.resolve("web.example.org", "AAAA")) == ["2001:db8::1"]
        assert addrs(r.resolve("link.example.org", "AAAA")) == ["fe80::1"]


def test_nodata_for_the_other_family_and_other_types(hostsfile) -> None:
    with resolver(hostsfile) as r:
        for qname, qtype in (("v6only.example.org", "A"), ("db.example.org", "AAAA"), ("db.example.org", "MX")):
            reply = r.resolve(qname, qtype)
            assert reply.header.rcode == 0 and not reply.rr and not reply.auth and reply.header.aa == 1


def test_unknown_names_servfail_without_fallthrough(hostsfile) -> None:
    with resolver(hostsfile) as r:
        assert r.resolve("nothere.example.org", "A").header.rcode == w.SERVFAIL
        assert r.resolve("broken.example.org", "A").header.rcode == w.SERVFAIL
        assert r.resolve("db", "A").header.rcode == w.REFUSED  # not in the block's zone


def test_fallthrough_passes_unknown_names_on(hostsfile) -> None:
    body = " fallthrough\n"
    text = f"example.org:1053 {{\n hosts {hostsfile} {{\n{body} }}\n erratic {{\n drop 0\n }}\n}}\n"
    with pycorefile.Resolver.from_corefile(text) as r:
        assert addrs(r.resolve("nothere.example.org", "A")) == ["192.0.2.53"]
        assert addrs(r.resolve("db.example.org", "A")) == ["10.0.0.1"]
        # A known name with the other family is still NODATA, never passed on.
        assert r.resolve("v6only.example.org", "A").rr == []


def test_wildcards(hostsfile) -> None:
    with resolver(hostsfile) as r:
        assert addrs(r.resolve("a.wild.example.org", "A")) == ["10.0.0.9"]
        assert addrs(r.resolve("exact.wild.example.org", "A")) == ["10.0.0.10"]
        assert r.resolve("wild.example.org", "A").header.rcode == w.SERVFAIL
        assert r.resolve("b.a.wild.example.org", "A").header.rcode == w.SERVFAIL
        assert r.resolve("9.0.0.10.in-addr.arpa", "PTR").header.rcode == w.REFUSED  # no PTR, outside zones


def test_ptr(hostsfile) -> None:
    text = f"example.org:1053 in-addr.arpa:1053 ip6.arpa:1053 {{\n hosts {hostsfile}\n}}\n"
    with pycorefile.Resolver.from_corefile(text) as r:
        reply = r.resolve("1.0.0.10.in-addr.arpa", "PTR")
        assert [str(rr.rdata) for rr in reply.rr] == ["db.example.org."]
        v6 = r.resolve("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "PTR")
        assert sorted(str(rr.rdata) for rr in v6.rr) == ["v6only.example.org.", "web.example.org."]
        # Unknown address: next plugin (none) -> SERVFAIL.
        assert r.resolve("99.0.0.10.in-addr.arpa", "PTR").header.rcode == w.SERVFAIL


def test_no_reverse_and_ttl(hostsfile) -> None:
    text = f"example.org:1053 in-addr.arpa:1053 {{\n hosts {hostsfile} {{\n no_reverse\n ttl 60\n }}\n}}\n"
    with pycorefile.Resolver.from_corefile(text) as r:
        assert r.resolve("1.0.0.10.in-addr.arpa", "PTR").header.rcode == w.SERVFAIL
        assert r.resolve("db.example.org", "A").rr[0].ttl == 60


def test_inline_entries_and_zones_argument(tmp_path) -> None:
    text = (".:1053 {\n hosts /nonexistent/hosts example.org {\n 192.0.2.7 inline.example.org\n"
            " 192.0.2.8 skipped.other.test\n fallthrough\n }\n erratic {\n drop 0\n }\n}\n")
    with pycorefile.Resolver.from_corefile(text) as r:
        assert addrs(r.resolve("inline.example.org", "A")) == ["192.0.2.7"]
        # Outside the hosts zones: straight to the next plugin.
        assert addrs(r.resolve("skipped.other.test", "A")) == ["192.0.2.53"]


def test_file_reload(hostsfile) -> None:
    with resolver(hostsfile, " reload 10ms") as r:
        assert r.resolve("new.example.org", "A").header.rcode == w.SERVFAIL
        hostsfile.write_text(HOSTS + "10.0.0.77 new.example.org\n")
        st = hostsfile.stat()
        os.utime(hostsfile, (st.st_atime, st.st_mtime + 5))
        time.sleep(0.05)
        assert addrs(r.resolve("new.example.org", "A")) == ["10.0.0.77"]


def test_parse_hosts_skips_names_outside_zones() -> None:
    m = parse_hosts(HOSTS, ["example.org."])
    assert "outside.other.test." not in m.name4
    assert m.addr["10.0.0.1"] == ["db.example.org."]


@pytest.mark.parametrize(
    "block, message",
    [
        ("ttl", "ttl needs a time in second"),
        ("ttl x", "ttl needs a number of second"),
        ("ttl 0", "ttl provided is invalid"),
        ("ttl 70000", "ttl provided is invalid"),
        ("reload", "reload needs a duration"),
        ("reload x", "invalid duration for reload 'x'"),
        ("reload -1s", "invalid negative duration for reload '-1s'"),
        ("fallthrough\n  10.0.0.1 late.example.org", "unknown property '10.0.0.1'"),
        ("fallthrough_unsupported", "fallthrough_unsupported requires fallthrough"),
    ],
)
def test_setup_errors(block: str, message: str) -> None:
    with pytest.raises(CorefileError, match=message):
        pycorefile.loads(f".:1053 {{\n hosts /nonexistent {{\n  {block}\n }}\n}}\n")


def test_once_per_block() -> None:
    with pytest.raises(CorefileError, match="can only be used once per Server Block"):
        pycorefile.loads(".:1053 {\n hosts\n hosts /etc/other\n}\n")


def test_fallthrough_unsupported(hostsfile) -> None:
    text = (f"example.org:1053 {{\n hosts {hostsfile} {{\n fallthrough\n fallthrough_unsupported\n }}\n"
            " erratic {\n drop 0\n }\n}\n")
    with pycorefile.Resolver.from_corefile(text) as r:
        assert r.resolve("db.example.org", "MX").header.rcode == w.SERVFAIL  # erratic: non-A -> SERVFAIL
        assert addrs(r.resolve("db.example.org", "A")) == ["10.0.0.1"]
