"""Server-block keys: schemes, ports, zones, reverse zones, duplicates (spec §1.5).

Expected values follow CoreDNS's ``plugin/normalize_test.go`` and
``plugin/pkg/cidr/cidr_test.go``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pycorefile.corefile import Corefile, CorefileError
from pycorefile.corefile.keys import is_domain_name, parse_key, split_host_port

Parse = Callable[..., Corefile]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param(".", [("dns", ".", "53")], id="root"),
        pytest.param(".:53", [("dns", ".", "53")], id="root-port"),
        pytest.param("example.org", [("dns", "example.org.", "53")], id="plain"),
        pytest.param("example.org:1053", [("dns", "example.org.", "1053")], id="port"),
        pytest.param("example.org.:1053", [("dns", "example.org.", "1053")], id="fqdn-port"),
        pytest.param("Example.ORG", [("dns", "example.org.", "53")], id="lower-cased"),
        pytest.param("dns://example.org", [("dns", "example.org.", "53")], id="dns-scheme"),
        pytest.param("tls://example.org", [("tls", "example.org.", "853")], id="tls-default"),
        pytest.param("quic://example.org", [("quic", "example.org.", "853")], id="quic-default"),
        pytest.param("grpc://example.org", [("grpc", "example.org.", "443")], id="grpc-default"),
        pytest.param("https://example.org", [("https", "example.org.", "443")], id="https-default"),
        pytest.param(
            "https3://example.org", [("https3", "example.org.", "443")], id="https3-default"
        ),
        pytest.param("unix://example.org", [("unix", "example.org.", "")], id="unix-no-port"),
        pytest.param("tls://.:8853", [("tls", ".", "8853")], id="tls-port"),
        pytest.param("example.org:01053", [("dns", "example.org.", "1053")], id="port-canonical"),
        pytest.param("example.org:+53", [("dns", "example.org.", "53")], id="port-go-atoi-sign"),
        pytest.param("in-addr.arpa", [("dns", "in-addr.arpa.", "53")], id="plain-arpa"),
        pytest.param("10.0.0.0/24", [("dns", "0.0.10.in-addr.arpa.", "53")], id="cidr-24"),
        pytest.param("10.0.0.0/8:53", [("dns", "10.in-addr.arpa.", "53")], id="cidr-8-port"),
        pytest.param("10.0.0.0/16", [("dns", "0.10.in-addr.arpa.", "53")], id="cidr-16"),
        pytest.param(
            "10.0.0.0/15",
            [("dns", "0.10.in-addr.arpa.", "53"), ("dns", "1.10.in-addr.arpa.", "53")],
            id="cidr-15-splits",
        ),
        pytest.param(
            "192.168.1.1/23",
            [("dns", "0.168.192.in-addr.arpa.", "53"), ("dns", "1.168.192.in-addr.arpa.", "53")],
            id="cidr-23-host-bits",
        ),
        pytest.param(
            "10.129.60.0/22",
            [("dns", f"{n}.129.10.in-addr.arpa.", "53") for n in (60, 61, 62, 63)],
            id="cidr-22",
        ),
        pytest.param("0.0.0.0/0", [("dns", "in-addr.arpa.", "53")], id="cidr-0"),
        pytest.param("2001:db8::/32", [("dns", "8.b.d.0.1.0.0.2.ip6.arpa.", "53")], id="ipv6-32"),
        pytest.param(
            "2001:db8::/31",
            [
                ("dns", "8.b.d.0.1.0.0.2.ip6.arpa.", "53"),
                ("dns", "9.b.d.0.1.0.0.2.ip6.arpa.", "53"),
            ],
            id="ipv6-31",
        ),
        pytest.param(
            "2001:db8::/30",
            [("dns", f"{c}.b.d.0.1.0.0.2.ip6.arpa.", "53") for c in "89ab"],
            id="ipv6-30",
        ),
        pytest.param(
            "2001:db8::/112",
            [("dns", "0.0.0.0." * 5 + "8.b.d.0.1.0.0.2.ip6.arpa.", "53")],
            id="ipv6-112",
        ),
        pytest.param(
            "2001:db8::/115",
            [("dns", f"{c}." + "0." * 20 + "8.b.d.0.1.0.0.2.ip6.arpa.", "53") for c in "01"],
            id="ipv6-115",
        ),
        pytest.param(
            "tls://10.0.0.0/24:8853",
            [("tls", "0.0.10.in-addr.arpa.", "8853")],
            id="cidr-scheme-port",
        ),
    ],
)
def test_parse_key(key: str, expected: list[tuple[str, str, str]]) -> None:
    assert [(k.scheme, k.zone, k.port) for k in parse_key(key)] == expected
    assert all(k.text == key for k in parse_key(key))


def test_non_octet_prefix_below_24_expands_to_host_zones() -> None:
    # Rounded up to the next label boundary: a /25 is 128 /32 reverse zones.
    zones = [k.zone for k in parse_key("192.168.1.0/25")]
    assert len(zones) == 128
    assert zones[0] == "0.1.168.192.in-addr.arpa." and zones[-1] == "127.1.168.192.in-addr.arpa."
    assert len(parse_key("10.0.0.0/27")) == 32
    assert len(parse_key("10.9.3.0/18")) == 64


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param(
            "example.org:", 'expecting data after last colon: "example.org:"', id="trailing-colon"
        ),
        pytest.param(":1053", "zone is not a valid domain name: ", id="port-only"),
        pytest.param("a..b", "zone is not a valid domain name: a..b", id="empty-label"),
        pytest.param(
            ".example.org", "zone is not a valid domain name: .example.org", id="leading-dot"
        ),
        pytest.param(
            "a" * 64 + ".org",
            "zone is not a valid domain name: " + "a" * 64 + ".org",
            id="long-label",
        ),
        pytest.param(
            ".".join(["abcdefghi"] * 26), "specified zone is too long: 259 > 255", id="long-zone"
        ),
        pytest.param("::/0", "invalid CIDR ::/0", id="cidr-leading-colon"),
        pytest.param("::fFFF:B:F/115", "invalid CIDR ::fFFF:B:F/115", id="cidr-v4-mapped"),
        pytest.param("dns://", 'expecting data after last colon: ""', id="scheme-only"),
    ],
)
def test_bad_keys(key: str, message: str) -> None:
    with pytest.raises(CorefileError) as info:
        parse_key(key)
    assert (str(info.value), info.value.kind, info.value.line) == (message, "plain", 0)


def test_split_host_port_raises_value_error() -> None:
    assert split_host_port("example.org:53") == (["example.org"], "53")
    with pytest.raises(ValueError):
        split_host_port("a..b")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        (".", True),
        ("example.org", True),
        ("example.org.", True),
        ("*.example.org", True),
        ("_srv._tcp.example.org", True),
        ("under_score", True),
        ("a\\.b", True),
        ("a\\065b", True),
        ("", False),
        ("a..b", False),
        ("..", False),
        (".a", False),
        ("a\\", False),
    ],
)
def test_is_domain_name(name: str, ok: bool) -> None:
    assert is_domain_name(name) is ok


# -- in a Corefile ----------------------------------------------------------------


def test_block_keys_expand(cparse: Parse) -> None:
    block = cparse("example.org 10.0.0.0/15 tls://b.org:8853 {\n  whoami\n}").blocks[0]
    assert [k.address for k in block.keys] == [
        "dns://example.org.:53",
        "dns://0.10.in-addr.arpa.:53",
        "dns://1.10.in-addr.arpa.:53",
        "tls://b.org.:8853",
    ]
    assert block.zones == ("example.org.", "0.10.in-addr.arpa.", "1.10.in-addr.arpa.", "b.org.")


def test_dns_port_parameter(cparse: Parse) -> None:
    block = cparse(
        "example.org tls://b.org example.com:5300 {\n  whoami\n}", dns_port="1053"
    ).blocks[0]
    assert [k.port for k in block.keys] == ["1053", "853", "5300"]


def test_bad_key_in_corefile_has_no_location(cparse: Parse) -> None:
    with pytest.raises(CorefileError) as info:
        cparse("example.org: {\n  whoami\n}", filename="Corefile")
    assert str(info.value) == 'expecting data after last colon: "example.org:"'
    assert info.value.filename == "Corefile"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            ". {\n whoami\n}\n.:53 {\n log\n}",
            "cannot serve dns://.:53 - it is already defined",
            id="same-zone-same-port",
        ),
        pytest.param(
            "example.org {\n whoami\n}\nExample.ORG. {\n log\n}",
            "cannot serve dns://example.org.:53 - it is already defined",
            id="normalised-duplicate",
        ),
        pytest.param(
            "example.org example.org {\n whoami\n}",
            "cannot serve dns://example.org.:53 - it is already defined",
            id="same-block",
        ),
        pytest.param(
            "10.0.0.0/24 {\n whoami\n}\n10.0.0.0/23 {\n log\n}",
            "cannot serve dns://0.0.10.in-addr.arpa.:53 - it is already defined",
            id="overlapping-cidrs",
        ),
        pytest.param(
            ". {\n bind 127.0.0.1\n}\n. {\n whoami\n}",
            "cannot serve dns://.:53 - zone overlap listener capacity with dns://.:53 on 127.0.0.1",
            id="bound-then-unbound",
        ),
        pytest.param(
            ". {\n whoami\n}\n. {\n bind 127.0.0.1\n}",
            "cannot serve dns://.:53 on 127.0.0.1 - zone overlap listener capacity with dns://.:53",
            id="unbound-then-bound",
        ),
        pytest.param(
            ". {\n bind 127.0.0.1 127.0.0.1\n}",
            "cannot serve dns://.:53 on 127.0.0.1 - it is already defined",
            id="same-bind-twice",
        ),
    ],
)
def test_duplicate_zones(cparse: Parse, text: str, message: str) -> None:
    with pytest.raises(CorefileError) as info:
        cparse(text, filename="Corefile")
    assert (str(info.value), info.value.kind, info.value.line) == (message, "plain", 0)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(".:53 {\n whoami\n}\n.:1053 {\n log\n}", id="different-ports"),
        pytest.param(". {\n whoami\n}\ntls://. {\n log\n}", id="different-schemes"),
        pytest.param(
            ". {\n bind 127.0.0.1\n}\n. {\n bind 127.0.0.2\n}", id="different-bind-addresses"
        ),
        pytest.param(
            ". {\n bind 127.0.0.1 127.0.0.2 {\n  except 127.0.0.2\n }\n}\n. {\n bind 127.0.0.2\n}",
            id="bind-except",
        ),
        pytest.param(". {\n view internal\n whoami\n}\n. {\n log\n}", id="view-shares-zone"),
        pytest.param("a.org {\n whoami\n}\nb.a.org {\n log\n}", id="sub-zone"),
    ],
)
def test_not_duplicates(cparse: Parse, text: str) -> None:
    cparse(text)
