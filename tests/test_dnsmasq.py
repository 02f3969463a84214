"""``pycorefile convert``: reading dnsmasq.conf, the mapping to a Corefile, and what the
converted Corefile answers (in process; the comparison with a running dnsmasq is in
``tests/integration/test_dnsmasq_convert.py``).

Every converted Corefile in this file must load: :func:`conv` checks it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE

import pycorefile
from pycorefile import cli
from pycorefile.dnsmasq import Conversion, convert, convert_file, read_conf

# Most cases switch off what dnsmasq reads from the machine (/etc/resolv.conf, /etc/hosts),
# so the output does not depend on it.
ISOLATED = "no-resolv\nno-hosts\n"


def conv(text: str, **kwargs: object) -> Conversion:
    """Convert ``text`` and check that pycorefile accepts the result."""
    conversion = convert(textwrap.dedent(text), **kwargs)  # type: ignore[arg-type]
    pycorefile.loads(conversion.corefile)
    return conversion


def _lines(text: str) -> list[str]:
    return [line.strip() for line in textwrap.dedent(text).strip("\n").splitlines()]


def assert_has(corefile: str, snippet: str) -> None:
    """``snippet``'s lines appear one after the other in ``corefile``, indentation aside."""
    want, have = _lines(snippet), _lines(corefile)
    for i in range(len(have) - len(want) + 1):
        if have[i : i + len(want)] == want:
            return
    raise AssertionError(f"not found:\n{snippet}\nin:\n{corefile}")


# ---------------------------------------------------------------------------------------------
# Reading dnsmasq.conf

READ_CASES = [
    # (line, option, value, fields)
    ("address=/a.test/192.0.2.1", "address", "/a.test/192.0.2.1", None),
    ("  bogus-priv  ", "bogus-priv", None, None),
    ("port = 5353", "port", "5353", None),
    ("log-queries=extra", "log-queries", "extra", None),
    ('txt-record=t.test,"x, y",z # a comment', "txt-record", None, ["t.test", "x, y", "z"]),
    ('txt-record=t.test,"tab\\there","q\\"q"', "txt-record", None, ["t.test", "tab\there", 'q"q']),
    ('txt-record=t.test,"a#b"', "txt-record", None, ["t.test", "a#b"]),
    # `#` starts a comment only after white space.
    ("server=/d.test/192.0.2.1#5353", "server", "/d.test/192.0.2.1#5353", None),
    ("address=/#/192.0.2.1", "address", "/#/192.0.2.1", None),
    ("domain-needed #comment", "domain-needed", None, None),
]


@pytest.mark.parametrize(("line", "option", "value", "fields"), READ_CASES)
def test_reads_lines_like_dnsmasq(
    tmp_path: Path, line: str, option: str, value: str | None, fields: list[str] | None
) -> None:
    path = tmp_path / "dnsmasq.conf"
    path.write_text(f"# first line\n\n{line}\n")
    (entry,) = read_conf(path)
    assert (entry.option, entry.lineno, entry.text) == (option, 3, line.strip())
    if value is not None or fields is None:
        assert entry.value == value
    if fields is not None:
        assert entry.fields() == fields


def test_missing_quote_is_reported(tmp_path: Path) -> None:
    out = conv(ISOLATED + 'txt-record=t.test,"open\n')
    assert '# dnsmasq.conf:3: unsupported: txt-record=t.test,"open' in out.corefile
    assert '#     missing "' in out.corefile


def test_includes_keep_their_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "extra.conf").write_text("# extra\nenable-tftp\n")
    d = tmp_path / "dnsmasq.d"
    d.mkdir()
    (d / "10-a.conf").write_text("address=/a.test/192.0.2.1\n")
    (d / "20-b.conf").write_text("tftp-root=/srv\n")
    (d / "30-c.bak").write_text("address=/c.test/192.0.2.3\n")
    (d / ".hidden.conf").write_text("address=/h.test/192.0.2.4\n")
    (d / "40-d.conf~").write_text("address=/d.test/192.0.2.5\n")
    main = tmp_path / "dnsmasq.conf"
    main.write_text(
        "no-resolv\nno-hosts\nconf-file=extra.conf\nconf-dir=dnsmasq.d,*.conf\n"
        "conf-file=dnsmasq.conf\nconf-file=missing.conf\n"
    )
    lines = read_conf(main)
    assert [(Path(line.file).name, line.lineno, line.option) for line in lines] == [
        ("dnsmasq.conf", 1, "no-resolv"),
        ("dnsmasq.conf", 2, "no-hosts"),
        ("extra.conf", 2, "enable-tftp"),
        ("10-a.conf", 1, "address"),
        ("20-b.conf", 1, "tftp-root"),
        ("dnsmasq.conf", 6, ""),  # missing.conf cannot be read
    ]
    out = convert_file(main).corefile
    pycorefile.loads(out)
    assert "# extra.conf:2; dnsmasq.d/20-b.conf:1: unsupported: 2 DHCP/TFTP/RA lines" in out
    assert f"# {main}:6: unsupported: conf-file=missing.conf" in out
    assert "template IN A a.test" in out
    assert "c.test" not in out and "h.test" not in out and "d.test" not in out


def test_conf_dir_skips_extensions(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.conf").write_text("address=/a.test/192.0.2.1\n")
    (d / "b.dpkg-old").write_text("address=/b.test/192.0.2.2\n")
    (d / "#c#").write_text("address=/c.test/192.0.2.3\n")
    out = conv(ISOLATED + "conf-dir=d,.dpkg-old\n", base_dir=tmp_path).corefile
    assert "a.test" in out and "b.test" not in out and "c.test" not in out


# ---------------------------------------------------------------------------------------------
# The mapping: dnsmasq lines → Corefile text

MAPPING = [
    pytest.param(
        "address=/ads.test/192.0.2.1",
        """
        # dnsmasq.conf:3: address=/ads.test/192.0.2.1
        template IN A ads.test {
            answer "{{ .Name }} 0 IN A 192.0.2.1"
        }
        """,
        id="address",
    ),
    pytest.param(
        "address=/a.test/b.test/2001:db8::1",
        """
        template IN AAAA b.test {
            answer "{{ .Name }} 0 IN AAAA 2001:db8::1"
        }
        """,
        id="address-ipv6-several-domains",
    ),
    pytest.param(
        "address=/null.test/#",
        """
        template IN A null.test {
            answer "{{ .Name }} 0 IN A 0.0.0.0"
        }
        # dnsmasq.conf:3: address=/null.test/#
        template IN AAAA null.test {
            answer "{{ .Name }} 0 IN AAAA ::"
        }
        """,
        id="address-null",
    ),
    pytest.param(
        "address=/gone.test/",
        """
        template ANY ANY gone.test {
            rcode NXDOMAIN
        }
        """,
        id="address-nxdomain",
    ),
    pytest.param(
        "address=/*.kids.test/192.0.2.9",
        r"""
        template IN A kids.test {
            match \.kids\.test\.$
            answer "{{ .Name }} 0 IN A 192.0.2.9"
            fallthrough
        }
        """,
        id="address-wildcard-subdomains",
    ),
    pytest.param(
        "address=/*ads.test/192.0.2.9",
        r"""
        template IN A test {
            match ads\.test\.$
        """,
        id="address-wildcard-suffix",
    ),
    pytest.param(
        "local=/lan/\nhost-record=nas.lan,192.0.2.10",
        r"""
        # nas.lan exists: NODATA rather than NXDOMAIN
        template ANY ANY nas.lan {
            match ^nas\.lan\.$
            rcode NOERROR
            fallthrough
        }
        # lan exists: NODATA rather than NXDOMAIN
        template ANY ANY lan {
            match ^lan\.$
            rcode NOERROR
            fallthrough
        }
        # dnsmasq.conf:3: local=/lan/
        template ANY ANY lan {
            rcode NXDOMAIN
        }
        """,
        id="local",
    ),
    pytest.param(
        "host-record=nas.lan,192.0.2.10,2001:db8::10,300",
        r"""
        # dnsmasq.conf:3: host-record=nas.lan,192.0.2.10,2001:db8::10,300
        template IN A nas.lan {
            match ^nas\.lan\.$
            answer "nas.lan. 300 IN A 192.0.2.10"
            fallthrough
        }
        # dnsmasq.conf:3: host-record=nas.lan,192.0.2.10,2001:db8::10,300
        template IN AAAA nas.lan {
            match ^nas\.lan\.$
            answer "nas.lan. 300 IN AAAA 2001:db8::10"
            fallthrough
        }
        # dnsmasq.conf:3: host-record=nas.lan,192.0.2.10,2001:db8::10,300
        template IN PTR 10.2.0.192.in-addr.arpa {
            match ^10\.2\.0\.192\.in-addr\.arpa\.$
            answer "10.2.0.192.in-addr.arpa. 300 IN PTR nas.lan."
            fallthrough
        }
        """,
        id="host-record",
    ),
    pytest.param(
        "host-record=nas.lan,NAS2.lan,192.0.2.10",
        r"""
        template IN A nas2.lan {
            match ^nas2\.lan\.$
            answer "nas2.lan. 0 IN A 192.0.2.10"
            fallthrough
        }
        # dnsmasq.conf:3: host-record=nas.lan,NAS2.lan,192.0.2.10
        template IN PTR 10.2.0.192.in-addr.arpa {
            match ^10\.2\.0\.192\.in-addr\.arpa\.$
            answer "10.2.0.192.in-addr.arpa. 0 IN PTR nas.lan."
        """,
        id="host-record-two-names",
    ),
    pytest.param(
        'txt-record=t.lan,"v=spf1 -all",second\nlocal-ttl=60',
        r"""
        template IN TXT t.lan {
            match ^t\.lan\.$
            answer "t.lan. 60 IN TXT \"v=spf1 -all\" \"second\""
            fallthrough
        }
        """,
        id="txt-record",
    ),
    pytest.param(
        'txt-record=t.lan,"say \\"hi\\" {{ x }}"',
        r"""
        answer "t.lan. 0 IN TXT \"say \034hi\034 \123\123 x \125\125\""
        """,
        id="txt-record-escapes",
    ),
    pytest.param(
        "cname=www.lan,web.lan,nas.lan,120",
        r"""
        template IN ANY web.lan {
            match ^web\.lan\.$
            answer "web.lan. 120 IN CNAME nas.lan."
            fallthrough
        }
        """,
        id="cname",
    ),
    pytest.param(
        "mx-host=lan,mail.lan,5\nmx-host=other.lan,mail.lan",
        r"""
        answer "lan. 0 IN MX 5 mail.lan."
        """,
        id="mx-host",
    ),
    pytest.param(
        "mx-target=relay.lan\nmx-host=other.lan",
        r"""
        answer "other.lan. 0 IN MX 1 relay.lan."
        """,
        id="mx-target",
    ),
    pytest.param(
        "srv-host=_ldap._tcp.lan,ldap.lan,389,1,2\nsrv-host=_none._tcp.lan",
        r"""
        answer "_ldap._tcp.lan. 0 IN SRV 1 2 389 ldap.lan."
        """,
        id="srv-host",
    ),
    pytest.param(
        "ptr-record=1.2.0.192.in-addr.arpa,printer.lan",
        r"""
        answer "1.2.0.192.in-addr.arpa. 0 IN PTR printer.lan."
        """,
        id="ptr-record",
    ),
    pytest.param(
        "caa-record=lan,0,issue,ca.test",
        r"""
        answer "lan. 0 IN CAA 0 issue \"ca.test\""
        """,
        id="caa-record",
    ),
    pytest.param(
        "dns-rr=x.lan,16,03:61:62:63",
        r"""
        answer "x.lan. 0 IN TXT \# 4 03616263"
        """,
        id="dns-rr",
    ),
    pytest.param(
        "server=192.0.2.53\nserver=2001:db8::53#5353\nstrict-order",
        """
        forward . 192.0.2.53 [2001:db8::53]:5353 {
            policy sequential
        }
        """,
        id="server-strict-order",
    ),
    pytest.param(
        "server=192.0.2.53\nserver=/corp.test/10.0.0.53#5353\nserver=/pub.corp.test/#",
        """
        # dnsmasq.conf:5: server=/pub.corp.test/#
        pub.corp.test {
            cache {
                success 150 3600 0
                denial 150 1800 0
            }
            forward . 192.0.2.53
        }

        # dnsmasq.conf:4: server=/corp.test/10.0.0.53#5353
        corp.test {
            cache {
                success 150 3600 0
                denial 150 1800 0
            }
            forward . 10.0.0.53:5353
        }
        """,
        id="server-per-domain",
    ),
    pytest.param(
        "server=192.0.2.53\nrev-server=10.1.0.0/16,10.0.0.53",
        """
        1.10.in-addr.arpa {
        """,
        id="rev-server",
    ),
    pytest.param(
        "server=192.0.2.53\ncache-size=1000\nmin-cache-ttl=30\nmax-cache-ttl=600\nno-negcache",
        """
        cache {
            success 1000 600 30
            denial 1000 600 30
            disable denial
        }
        """,
        id="cache",
    ),
    pytest.param(
        "server=192.0.2.53\nlocal-ttl=60\naddress=/ads.test/192.0.2.1\n"
        "address=/x.ads.test/192.0.2.2\nhost-record=h.lan,192.0.2.3",
        """
        disable success ads.test h.lan 3.2.0.192.in-addr.arpa
        """,
        id="cache-skips-local-answers",
    ),
    pytest.param(
        "port=5353\nlisten-address=127.0.0.1,::1\nbind-interfaces\nlog-queries",
        """
        .:5353 {
            bind 127.0.0.1 ::1
            log
        """,
        id="listen",
    ),
    pytest.param(
        "interface=lo",
        """
        bind lo
        """,
        id="interface",
    ),
    pytest.param(
        "domain-needed",
        r"""
        # dnsmasq.conf:3: domain-needed
        template IN A . {
            match ^[^.]+\.$
            rcode NXDOMAIN
            fallthrough
        }
        """,
        id="domain-needed",
    ),
    pytest.param(
        "bogus-priv",
        r"""
        match ^(([0-9]+\.)+in-addr|([0-9a-f]\.){1,32}ip6)\.arpa\.$
        rcode NXDOMAIN
        """,
        id="bogus-priv",
    ),
    pytest.param(
        "",
        """
        # No upstream server: dnsmasq answers REFUSED.
        template ANY ANY . {
            rcode REFUSED
        }
        """,
        id="no-upstream",
    ),
]


@pytest.mark.parametrize(("conf", "snippet"), MAPPING)
def test_mapping(conf: str, snippet: str) -> None:
    assert_has(conv(ISOLATED + conf + "\n").corefile, snippet)


def test_no_cache() -> None:
    out = conv(ISOLATED + "server=192.0.2.53\ncache-size=0\n").corefile
    assert "cache" not in out.replace("# Corefile", "")


def test_resolv_file(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\n")
    out = conv(f"no-hosts\nserver=192.0.2.1\nresolv-file={resolv}\n").corefile
    assert f"forward . 192.0.2.1 {resolv}" in out


def test_default_upstream_is_the_systems_resolv_conf() -> None:
    out = convert("no-hosts\n").corefile
    assert "forward . /etc/resolv.conf" in out


def test_port_and_listen_override() -> None:
    out = conv(
        ISOLATED + "port=53\nlisten-address=192.0.2.1\n", port=1053, listen=["127.0.0.1"]
    ).corefile
    assert ".:1053 {" in out and "bind 127.0.0.1" in out and "192.0.2.1" not in out


def test_port_zero_serves_nothing() -> None:
    out = conv(ISOLATED + "port=0\naddress=/a.test/192.0.2.1\n").corefile
    assert "{" not in out and "# note: port=0" in out


NOTES = [
    # (lines, note)
    ("server=192.0.2.53@eth0", "the source address or interface @eth0 is not used"),
    ("server=fe80::1%eth0", "the IPv6 scope %eth0 is not used"),
    ("bind-dynamic", "addresses that appear after start are not listened on until a restart"),
    (
        "rev-server=10.1.0.0/20,192.0.2.53",
        "10.1.0.0/20 is served as the reverse zone 1.10.in-addr.arpa",
    ),
    (
        "server=192.0.2.53\nmin-cache-ttl=60\naddress=/a.test/192.0.2.1",
        "local answers pass the cache, which shows their TTLs as at least 60 and at most 3600",
    ),
]


@pytest.mark.parametrize(("conf", "note"), NOTES)
def test_notes(conf: str, note: str) -> None:
    out = conv(ISOLATED + conf + "\n")
    assert any(note in n for n in out.notes), out.notes
    assert note in out.corefile


def test_mx_host_defaults_to_the_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "Gateway")
    out = conv(ISOLATED + "mx-host=lan\n").corefile
    assert 'answer "lan. 0 IN MX 1 gateway."' in out
    assert "the MX target is this machine's host name, gateway" in out


def test_server_and_address_on_one_domain() -> None:
    out = conv(ISOLATED + "server=/d.test/192.0.2.53\naddress=/d.test/192.0.2.1\nlocal=/d.test/\n")
    block = out.corefile.split("d.test {", 1)[1]
    # The address answers A, everything else is forwarded (the servers win over local=).
    assert "template IN A d.test" in block and "forward . 192.0.2.53" in block
    assert "rcode" not in block


def test_more_specific_domains_first() -> None:
    out = conv(
        ISOLATED
        + "address=/test/192.0.2.1\naddress=/*b.test/192.0.2.2\naddress=/ab.test/192.0.2.3\n"
    ).corefile
    order = [out.index(f"IN A {ip}") for ip in ("192.0.2.3", "192.0.2.2", "192.0.2.1")]
    assert order == sorted(order)
    r = pycorefile.Resolver.from_corefile(out)
    for name, ip in [("ab.test", "192.0.2.3"), ("cb.test", "192.0.2.2"), ("c.test", "192.0.2.1")]:
        assert [str(rr.rdata) for rr in r.resolve(name, "A").rr] == [ip]


# ---------------------------------------------------------------------------------------------
# Lines without an equivalent


def test_unsupported_lines_are_listed_at_the_top() -> None:
    conf = ISOLATED + textwrap.dedent("""\
        dhcp-range=192.168.1.50,192.168.1.150,12h
        neg-ttl=60
        dhcp-option=3,192.168.1.1
        enable-tftp
        server=/plain.test/dns.example.com
        not-an-option=1
        user=nobody
        address=/a.test/192.0.2.1
    """)
    out = conv(conf)
    head = out.corefile.split("\n\n", 1)[0].splitlines()
    assert head[1:] == [
        "# dnsmasq.conf:4: unsupported: neg-ttl=60",
        "#     pycorefile's cache never stores a negative reply without SOA",
        "# dnsmasq.conf:7: unsupported: server=/plain.test/dns.example.com",
        "#     upstream 'dns.example.com' is not an IP address (forward needs addresses)",
        "# dnsmasq.conf:8: unsupported: not-an-option=1",
        "# dnsmasq.conf:9: unsupported: user=nobody",
        "#     process setting: the service manager does this",
        "# dnsmasq.conf:3,5,6: unsupported: 3 DHCP/TFTP/RA lines (dhcp-range, dhcp-option, "
        "enable-tftp): pycorefile serves DNS only",
    ]
    assert [(line.lineno, reason != "") for line, reason in out.unsupported] == [
        (4, True),
        (7, True),
        (8, False),
        (9, True),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "server=//192.0.2.53",
        "local=//",
        "server=/*.test/192.0.2.53",
        "interface=eth*",
        "address=/a.test/not-an-ip",
        "cache-size=lots",
        "host-record=nothing.lan",
        "ptr-record=1.2.0.192.in-addr.arpa",
        "dns-rr=x.lan,65280,00",
        "bogus-priv=yes",
    ],
)
def test_lines_that_cannot_be_expressed(line: str) -> None:
    out = conv(ISOLATED + line + "\n")
    assert f"# dnsmasq.conf:3: unsupported: {line}" in out.corefile


# ---------------------------------------------------------------------------------------------
# What the converted Corefile answers (dnsmasq 2.90's answers, checked against it by the
# integration test). No upstream: what dnsmasq would forward gets REFUSED.

BEHAVIOUR_CONF = ISOLATED + textwrap.dedent("""\
    local-ttl=7
    address=/d4.test/192.0.2.4
    address=/sub.d4.test/192.0.2.44
    address=/null.test/#
    address=/nx.test/
    address=/both.test/192.0.2.5
    address=/both.test/2001:db8::5
    address=/only4.test/192.0.2.6
    local=/only4.test/
    local=/lan/
    address=/d4.lan/192.0.2.14
    host-record=nas.lan,192.0.2.10,600
    host-record=deep.tree.lan,192.0.2.11
    txt-record=nas.lan,hello
    cname=www.lan,nas.lan
    mx-host=lan,mail.lan,5
    srv-host=_ldap._tcp.lan,ldap.lan,389
    domain-needed
    bogus-priv
    host-record=plain,192.0.2.30
    host-record=priv.lan,10.1.2.3
""")

BEHAVIOUR = [
    # (query, type, rcode, answers)
    ("d4.test", "A", "NOERROR", {"d4.test. 7 A 192.0.2.4"}),
    ("a.b.d4.test", "A", "NOERROR", {"a.b.d4.test. 7 A 192.0.2.4"}),
    ("x.sub.d4.test", "A", "NOERROR", {"x.sub.d4.test. 7 A 192.0.2.44"}),
    # Since dnsmasq 2.86 other types are forwarded, not answered NODATA.
    ("d4.test", "AAAA", "REFUSED", set()),
    ("d4.test", "MX", "REFUSED", set()),
    ("null.test", "AAAA", "NOERROR", {"null.test. 7 AAAA ::"}),
    ("x.nx.test", "TXT", "NXDOMAIN", set()),
    ("both.test", "AAAA", "NOERROR", {"both.test. 7 AAAA 2001:db8::5"}),
    # address= and local= on the same domain: NODATA for the other types.
    ("only4.test", "AAAA", "NOERROR", set()),
    ("x.only4.test", "MX", "NOERROR", set()),
    ("nas.lan", "A", "NOERROR", {"nas.lan. 600 A 192.0.2.10"}),
    ("nas.lan", "TXT", "NOERROR", {'nas.lan. 7 TXT "hello"'}),
    ("nas.lan", "AAAA", "NOERROR", set()),
    ("10.2.0.192.in-addr.arpa", "PTR", "NOERROR", {"10.2.0.192.in-addr.arpa. 600 PTR nas.lan."}),
    ("www.lan", "A", "NOERROR", {"www.lan. 7 CNAME nas.lan.", "nas.lan. 600 A 192.0.2.10"}),
    ("www.lan", "MX", "NOERROR", {"www.lan. 7 CNAME nas.lan."}),
    ("lan", "MX", "NOERROR", {"lan. 7 MX 5 mail.lan."}),
    ("lan", "A", "NOERROR", set()),
    ("_ldap._tcp.lan", "SRV", "NOERROR", {"_ldap._tcp.lan. 7 SRV 0 0 389 ldap.lan."}),
    # A name above a local record exists too (an empty non-terminal).
    ("tree.lan", "A", "NOERROR", set()),
    ("unknown.lan", "A", "NXDOMAIN", set()),
    ("sub.nas.lan", "A", "NXDOMAIN", set()),
    # The local domain above wins over an address= domain for other types.
    ("d4.lan", "AAAA", "NXDOMAIN", set()),
    ("d4.lan", "A", "NOERROR", {"d4.lan. 7 A 192.0.2.14"}),
    ("plain", "A", "NOERROR", {"plain. 7 A 192.0.2.30"}),
    ("plain", "AAAA", "NOERROR", set()),
    ("other", "A", "NXDOMAIN", set()),
    ("other", "TXT", "REFUSED", set()),
    ("4.3.2.10.in-addr.arpa", "PTR", "NXDOMAIN", set()),
    ("3.2.1.10.in-addr.arpa", "PTR", "NOERROR", {"3.2.1.10.in-addr.arpa. 7 PTR priv.lan."}),
    ("1.1.1.1.in-addr.arpa", "PTR", "REFUSED", set()),
    ("example.com", "A", "REFUSED", set()),
]


@pytest.fixture(scope="module")
def behaviour() -> pycorefile.Resolver:
    return pycorefile.Resolver.from_corefile(conv(BEHAVIOUR_CONF).corefile)


@pytest.mark.parametrize(("name", "qtype", "rcode", "answers"), BEHAVIOUR)
def test_answers(
    behaviour: pycorefile.Resolver, name: str, qtype: str, rcode: str, answers: set[str]
) -> None:
    reply = behaviour.resolve(name, qtype)
    got = {f"{rr.rname} {rr.ttl} {QTYPE.get(rr.rtype)} {rr.rdata}" for rr in reply.rr}
    assert (RCODE.get(reply.header.rcode), got) == (rcode, answers)
    # dnsmasq never sends an SOA with its local answers.
    assert not reply.auth


# ---------------------------------------------------------------------------------------------
# Hosts files


def test_hosts_files(tmp_path: Path) -> None:
    main, extra = tmp_path / "hosts", tmp_path / "hosts.extra"
    main.write_text("192.0.2.1 plain\n192.0.2.2 web.lan www # comment\n192.0.2.3 open.test\n")
    extra.write_text("192.0.2.4 extra.test\n192.0.2.5 other.lan\n")
    out = conv(
        f"no-resolv\nno-hosts\naddn-hosts={main}\naddn-hosts={extra}\nlocal=/lan/\n"
        "domain-needed\nlocal-ttl=30\n"
    ).corefile
    # Names a template would shadow (template runs before hosts) become templates.
    assert_has(
        out,
        rf"""
        # {main}:1: 192.0.2.1 plain
        template IN A plain {{
            match ^plain\.$
            answer "plain. 30 IN A 192.0.2.1"
    """,
    )
    assert "template IN A web.lan" in out and "template IN A other.lan" in out
    # The rest stays with the hosts plugin: the first file read live, the others inline.
    assert_has(
        out,
        f"""
        hosts {main} {{
            192.0.2.4 extra.test
            ttl 30
            fallthrough
            fallthrough_unsupported
        }}
    """,
    )
    r = pycorefile.Resolver.from_corefile(out)
    for name, address in [
        ("plain", "192.0.2.1"),
        ("www", "192.0.2.2"),
        ("web.lan", "192.0.2.2"),
        ("open.test", "192.0.2.3"),
        ("extra.test", "192.0.2.4"),
        ("other.lan", "192.0.2.5"),
    ]:
        assert [str(rr.rdata) for rr in r.resolve(name, "A").rr] == [address], name
    assert RCODE.get(r.resolve("nothing.lan", "A").header.rcode) == "NXDOMAIN"


def test_hosts_ttl_cannot_be_zero() -> None:
    out = conv("no-resolv\n").corefile
    assert "hosts /etc/hosts {" in out and "ttl 1" in out
    assert "# note: hosts-file answers have TTL 1 (dnsmasq: 0)" in out


def test_unreadable_hosts_file(tmp_path: Path) -> None:
    out = conv(
        f"no-resolv\nno-hosts\naddn-hosts={tmp_path}/a\naddn-hosts={tmp_path}/b\nlocal=/lan/\n"
    ).corefile
    assert f"hosts {tmp_path}/a {{" in out
    assert "could not be read here" in out
    assert f"# dnsmasq.conf:4: unsupported: addn-hosts={tmp_path}/b" in out


# ---------------------------------------------------------------------------------------------
# The command


def test_cli_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "dnsmasq.conf"
    path.write_text(ISOLATED + "address=/a.test/192.0.2.1\nport=5353\n")
    assert cli.main(["convert", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == convert_file(path).corefile
    assert ".:5353 {" in out
    assert cli.main(["convert", "--port", "1053", "--listen", "127.0.0.1", str(path)]) == 0
    out = capsys.readouterr().out
    assert ".:1053 {" in out and "bind 127.0.0.1" in out
    pycorefile.loads(out)


def test_cli_convert_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["convert", str(tmp_path / "nope.conf")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"cannot read {tmp_path / 'nope.conf'}: No such file or directory\n"


def test_example_converts() -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "dnsmasq.conf"
    out = convert_file(example).corefile
    pycorefile.loads(out)
    # DHCP lines are grouped in one comment.
    assert "unsupported: 3 DHCP/TFTP/RA lines (dhcp-range, dhcp-option, dhcp-host)" in out
    assert "corp.example {" in out and "0.10.in-addr.arpa" not in out
