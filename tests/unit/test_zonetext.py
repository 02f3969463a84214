"""Zone-file text: one record (miekg/dns NewRR) and whole zone files (ZoneParser),
read by the same lexer and the same per-type readers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from dnslib import DNSBuffer, DNSLabel

from pycorefile import zonetext
from pycorefile.zonetext import DNAME, ZoneTextError, parse_name, parse_rr, parse_zone, read_records


def wire(rr) -> bytes:
    buffer = DNSBuffer()
    rr.rdata.pack(buffer)
    return bytes(buffer.data)


def zone(text: str, origin: str = "example.test.", file: str = "db") -> list[str]:
    return [
        f"{rr.rname} {rr.ttl} {rr.rclass} {rr.rtype} {rr.rdata} @{line}"
        for rr, line in parse_zone(text, origin, file)
    ]


# ---------------------------------------------------------------------------------------------
# One record


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # TTL and class in either order, both optional; types and classes in any case.
        ("a.example. 60 IN A 10.0.0.1", "a.example. 60 1 1 10.0.0.1"),
        ("a.example. IN 60 A 10.0.0.1", "a.example. 60 1 1 10.0.0.1"),
        ("a.example. a 10.0.0.1", "a.example. 3600 1 1 10.0.0.1"),
        ("a.example. ch 1h30m txt x", 'a.example. 5400 3 16 "x"'),
        ("a.example. CLASS4 TYPE1 10.0.0.1", "a.example. 3600 4 1 10.0.0.1"),
        # Names: relative to the root, @ is the root, escapes decoded per label.
        ("a.example 60 CNAME b.example", "a.example. 60 1 5 b.example."),
        ("@ 60 NS ns", ". 60 1 2 ns."),
        ("a\\065. 60 PTR x.", "aA. 60 1 12 x."),
        # Parentheses group lines, comments end them, strings keep blanks and escapes.
        (
            "ex. 60 SOA ns.ex. hm.ex. (\n 2024 1h 10m ; refresh, retry\n 1w 300 )",
            "ex. 60 1 6 ns.ex. hm.ex. 2024 3600 600 604800 300",
        ),
        ("ex. 60 SOA ns.ex. hm.ex. (1 60 60 60 60)", "ex. 60 1 6 ns.ex. hm.ex. 1 60 60 60 60"),
        ("a. 60 MX 10 mail.a.", "a. 60 1 15 10 mail.a."),
        ("a. 60 SRV 0 5 53 ns.a.", "a. 60 1 33 0 5 53 ns.a."),
        ("a. 60 AAAA 2001:db8::1", "a. 60 1 28 2001:db8::1"),
        ('a. CAA 0 issue "letsencrypt.org"', 'a. 3600 1 257 0 issue "letsencrypt.org"'),
        ("a. HTTPS 1 web. alpn=h2", "a. 3600 1 65 1 web. alpn=h2"),
        # RFC 3597: any type, raw rdata.
        ("a. TYPE999 \\# 2 ab CD", "a. 3600 1 999 \\# 2 ABCD"),
        ("a. A \\# 4 0a000001", "a. 3600 1 1 \\# 4 0A000001"),
        # Only the first record counts.
        ("a. 60 A 10.0.0.1\nb. 60 A 10.0.0.2", "a. 60 1 1 10.0.0.1"),
        ("\n\n  ; nothing yet\na. 60 A 10.0.0.1\n", "a. 60 1 1 10.0.0.1"),
    ],
)
def test_parse_rr(text: str, expected: str) -> None:
    rr = parse_rr(text)
    assert rr is not None
    assert f"{rr.rname} {rr.ttl} {rr.rclass} {rr.rtype} {rr.rdata}" == expected


def test_parse_rr_escapes() -> None:
    rr = parse_rr("a\\.b.example. 60 PTR c\\032d.")
    assert (
        rr is not None
        and rr.rname.label == (b"a.b", b"example")
        and rr.rdata.label.label == (b"c d",)
    )
    rr = parse_rr('a. TXT "x \\"y\\"" z\\032w \\065 "\\255"')
    assert rr is not None and rr.rdata.data == [b'x "y"', b"z w", b"A", b"\xff"]


def test_parse_rr_origin_and_default_ttl() -> None:
    rr = parse_rr("www CNAME web", origin="example.org.", default_ttl=30)
    assert rr is not None
    assert (str(rr.rname), rr.ttl, str(rr.rdata)) == ("www.example.org.", 30, "web.example.org.")
    rr = parse_rr("@ MX 10 mail", origin="example.org.")
    assert (
        rr is not None
        and str(rr.rname) == "example.org."
        and str(rr.rdata) == "10 mail.example.org."
    )


@pytest.mark.parametrize("text", ["", "\n", "   ; only a comment", "( )\n"])
def test_parse_rr_nothing(text: str) -> None:
    assert parse_rr(text) is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        # miekg's words and positions: the character that ended the token (the
        # template plugin's tests pin the most common ones).
        ("a. IN IN A 1.2.3.4", 'dns: expecting RR type or TTL, not this...: "IN" at line: 1:9'),
        # A class must be followed by a blank, the owner must start the line.
        ("a. 60 IN", 'dns: expecting RR type or class, not this...: "IN" at line: 1:8'),
        ("60", 'dns: expecting RR type or class, not this...: "\\n" at line: 1:2'),
        (" a. A 1.2.3.4", 'dns: not a TTL: "a." at line: 1:4'),
        ("\tA 1.2.3.4", 'dns: bad owner name: "A" at line: 1:3'),
        ('a. A "1.2.3.4"', 'dns: bad A A: "1.2.3.4" at line: 1:14'),
        ("a. MX 10", 'dns: bad MX Mx: "\\n" at line: 1:8'),
        ("a. CAA 0", 'dns: bad CAA Tag: "\\n" at line: 1:8'),
        ("a. RP mbox. txt. extra", 'dns: bad RP rdata: "mbox." at line: 1:12'),
        ("a. TYPE999 \\# 3 abcd", 'dns: bad TYPE999 rdata: "3" at line: 1:16'),
        ("a. TYPE999 \\# 2 xyzw", 'dns: bad TYPE999 rdata: "\\\\#" at line: 1:14'),
        (
            "a. URI 10 1 x",
            'dns: pycorefile cannot build URI records from text (use the \\# form): "10" at line: 1:10',
        ),
        # Strings and parentheses.
        ('a. TXT "x\ny', 'dns: unbalanced quote: "" at line: 2:1'),
        ("a. SOA ns. mb. (1 2 3 4 5", 'dns: unbalanced brace: "" at line: 1:25'),
        ("a. A 1.2.3.4)", 'dns: extra closing brace: ")" at line: 1:13'),
        ('a. A "x\ny"', 'dns: bad A A: "x\\ny" at line: 2:2'),
        # Non-ASCII tokens are quoted as Go's QuoteToASCII does.
        ("é. A 1.2.3.4 é", 'dns: garbage after rdata: "\\u00e9" at line: 1:14'),
    ],
)
def test_parse_rr_errors(text: str, error: str) -> None:
    with pytest.raises(ZoneTextError) as info:
        parse_rr(text)
    assert str(info.value) == error


def test_parse_rr_long_strings_are_split() -> None:
    rr = parse_rr('a. TXT "' + "x" * 300 + '"')
    assert rr is not None and [len(s) for s in rr.rdata.data] == [255, 45]


def test_names_too_long() -> None:
    label = "a" * 63
    assert parse_rr(f"{label}.{label}.{label}.{'b' * 61}. A 1.2.3.4") is not None  # 255 octets
    with pytest.raises(ZoneTextError, match="bad owner name"):
        parse_rr(f"{label}.{label}.{label}.{'b' * 62}. A 1.2.3.4")
    with pytest.raises(ZoneTextError, match="bad owner name"):
        parse_rr(f"{'a' * 64}. A 1.2.3.4")


def test_dname_is_never_compressed() -> None:
    rr = parse_rr("a.example. DNAME example.")
    assert rr is not None and isinstance(rr.rdata, DNAME)
    buffer = DNSBuffer()
    buffer.encode_name(DNSLabel("example."))
    rr.rdata.pack(buffer)
    assert bytes(buffer.data).endswith(b"\x07example\x00\x07example\x00")


# ---------------------------------------------------------------------------------------------
# Zone files


def test_zone_syntax() -> None:
    text = (
        "; comment\n"
        "$TTL 1h30m\n"
        "@ SOA ns hm ( 1 ; serial\n"
        "              2 3 4 5 )\n"
        "a 60 IN A 192.0.2.1\n"
        "b IN 60 A 192.0.2.2\n"
        "  AAAA 2001:db8::2\n"
        "c CH TXT x\n"
        "d MX 10 mail\n"
        "$ORIGIN sub\n"
        "f CNAME @\n"
    )
    assert zone(text) == [
        "example.test. 5400 1 6 ns.example.test. hm.example.test. 1 2 3 4 5 @3",
        "a.example.test. 60 1 1 192.0.2.1 @5",
        "b.example.test. 60 1 1 192.0.2.2 @6",
        "b.example.test. 5400 1 28 2001:db8::2 @7",
        'c.example.test. 5400 3 16 "x" @8',
        "d.example.test. 5400 1 15 10 mail.example.test. @9",
        "f.sub.example.test. 5400 1 5 sub.example.test. @11",
    ]


def test_zone_escaped_dots() -> None:
    ((rr, _),) = parse_zone("a\\.b 60 CNAME c\\.d\n", "example.test.")
    assert rr.rname.label == (b"a.b", b"example", b"test")
    assert rr.rdata.label.label == (b"c.d", b"example", b"test")


def test_zone_ttl_without_directive_follows_the_last_explicit_one() -> None:
    assert [r.split()[1] for r in zone("a 60 A 192.0.2.1\nb A 192.0.2.2\n")] == ["60", "60"]
    assert [r.split()[1] for r in zone("a 60 A 192.0.2.1\nb A 192.0.2.2\n", file="")] == [
        "60",
        "60",
    ]
    with pytest.raises(ZoneTextError, match="missing TTL with no previous value"):
        zone("a A 192.0.2.1\n")


def test_zone_generic_records_get_their_type_class() -> None:
    (ns, _), (other, _) = parse_zone(
        "$TTL 60\na NS \\# 3 016200\nb TYPE65280 \\# 2 abcd\n", "example.test."
    )
    assert str(ns.rdata.label) == "b." and str(other.rdata) == "\\# 2 ABCD"


def test_zone_include(tmp_path: Path) -> None:
    (tmp_path / "sub.inc").write_text("inc A 192.0.2.9\n$ORIGIN deeper\nx A 192.0.2.10\n")
    (tmp_path / "db").write_text("$TTL 60\n$INCLUDE sub.inc other\ny A 192.0.2.11\n")
    main = str(tmp_path / "db")
    records = [
        (str(rr.rname), line)
        for rr, line in parse_zone((tmp_path / "db").read_text(), "example.test.", main)
    ]
    # The include's $ORIGIN does not leak back.
    assert records == [
        ("inc.other.example.test.", 1),
        ("x.deeper.other.example.test.", 3),
        ("y.example.test.", 3),
    ]

    (tmp_path / "loop.inc").write_text("$INCLUDE loop.inc\n")
    with pytest.raises(ZoneTextError, match="too deeply nested"):
        parse_zone("$INCLUDE loop.inc\n", "example.test.", str(tmp_path / "db"))


@pytest.mark.parametrize(
    ("text", "message", "line", "col"),
    [
        # Positions are where the offending token starts.
        ("$TTL 60\na IN A 192.0.2\n", 'db: dns: bad A rdata: "192.0.2" at line: 2:8', 2, 8),
        (
            "$TTL 60\na IN MX 10 mail extra\n",
            'db: dns: bad MX rdata: "10 mail extra" at line: 2:9',
            2,
            9,
        ),
        ("$TTL 60\n\na IN BOGUS x\n", 'db: dns: unknown RR type: "BOGUS" at line: 3:6', 3, 6),
        (
            '$TTL 60\na TXT "open\n',
            'db: dns: bad string, no closing quote: "open\\n" at line: 2:7',
            2,
            7,
        ),
        ("$TTL 60\na A ( 192.0.2.1\n", 'db: dns: extra opening brace: "(" at line: 2:5', 2, 5),
        ("$TTL 60\na A 192.0.2.1 )\n", 'db: dns: extra closing brace: ")" at line: 2:15', 2, 15),
        ("$TTL 60\n  A 192.0.2.1\n", 'db: dns: no owner name: "A" at line: 2:3', 2, 3),
        ("$TTL 60\na.. A 192.0.2.1\n", 'db: dns: bad owner name: "a.." at line: 2:1', 2, 1),
        ("$TTL 60\na 1x A 192.0.2.1\n", 'db: dns: not a TTL: "1x" at line: 2:3', 2, 3),
        ('$TTL 60\na "IN" A 192.0.2.1\n', 'db: dns: unexpected string: "IN" at line: 2:3', 2, 3),
        ("$TTL 60\na IN\n", 'db: dns: expecting RR type: "IN" at line: 2:3', 2, 3),
        (
            "$TTL 60\na URI 10 1 x\n",
            'db: dns: unsupported record type URI: "URI" at line: 2:3',
            2,
            3,
        ),
        ("$TTL x\n", 'db: dns: expecting $TTL value, not this...: "x" at line: 1:6', 1, 6),
        ("$ORIGIN a..b\n", 'db: dns: bad origin name: "a..b" at line: 1:9', 1, 9),
        (
            "$GENERATE 1-2 $ A 192.0.2.$\n",
            'db: dns: unsupported directive: "$GENERATE" at line: 1:1',
            1,
            1,
        ),
        (
            "$INCLUDE nowhere.inc\n",
            "db: dns: failed to open `nowhere.inc': No such file or directory",
            1,
            10,
        ),
    ],
)
def test_zone_errors(text: str, message: str, line: int, col: int) -> None:
    with pytest.raises(ZoneTextError) as info:
        zone(text)
    assert str(info.value).startswith(message)
    assert (info.value.file, info.value.line, info.value.col) == ("db", line, col)


def test_read_records_is_lazy() -> None:
    records = read_records("$TTL 60\n@ SOA ns hm 7 1 1 1 1\nbad A x\n", "example.test.")
    rr, line = next(records)
    assert rr.rdata.times[0] == 7 and line == 2
    with pytest.raises(ZoneTextError):
        next(records)


# ---------------------------------------------------------------------------------------------
# Both entry points share the readers


@pytest.mark.parametrize(
    "rdata",
    [
        "A 192.0.2.1",
        "AAAA 2001:db8::1",
        "NS ns.example.",
        "CNAME a\\.b.example.",
        "DNAME example.",
        "PTR ptr.example.",
        "MX 10 mail.example.",
        "SRV 1 2 3 target.example.",
        "SOA ns.example. hm.example. 1 1h 2m 3d 1w",
        'TXT "a b" c \\255',
        "SPF v=spf1",
        'CAA 0 issue "ca.example"',
        'HINFO "PC" "Linux"',
        "MB mail.example.",
        "RP mbox.example. txt.example.",
        'NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:x@example!" .',
        "HTTPS 1 web.example. alpn=h2",
        "SVCB 1 . port=443",
        "DS 12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE",
        "TLSA 3 1 1 abcdef",
        "TYPE65280 \\# 2 abcd",
    ],
)
def test_same_rdata_from_both_entry_points(rdata: str) -> None:
    one = parse_rr(f"x.example. 60 {rdata}")
    ((other, _),) = parse_zone(f"x 60 {rdata}\n", "example.")
    assert one is not None and (one.rtype, wire(one)) == (other.rtype, wire(other))


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        (".", ()),
        ("@", (b"origin",)),
        ("a.b.", (b"a", b"b")),
        ("a", (b"a", b"origin")),
        ("a\\.b.", (b"a.b",)),
        ("a\\.", (b"a.", b"origin")),
        ("\\065\\032.", (b"A ",)),
        ("é.", ("é".encode(),)),
    ],
)
def test_parse_name(text: str, labels: tuple[bytes, ...]) -> None:
    assert parse_name(text, (b"origin",)) == labels


@pytest.mark.parametrize("text", ["", "a..b", ".a", "a\\", "a" * 64])
def test_parse_name_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_name(text)


# ---------------------------------------------------------------------------------------------
# The lexer's fast path


def _dump(entries) -> list[object]:
    return [
        (
            e.line,
            e.blank,
            e.owner,
            e.end.end(),
            [(t.text, t.line, t.col, t.nl, t.end()) for t in e.tokens],
        )
        for e in entries
    ]


def test_plain_text_lexes_the_same_on_both_paths() -> None:
    """Text without strings, parentheses, comments or escapes skips the item-by-item
    scan; both must see the same tokens, positions and owner rules."""
    rng = random.Random(1035)
    alphabet = ["a", ".", "1", " ", " ", "\t", "\r", "\n", "\n", "é", "\x0b", "@"]
    texts = ["a. 60 IN A 10.0.0.1", " a A x", "\r a A", "a\r\nb\n", "a.\t", "", "\n\n x \n"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25))) for _ in range(2000)]
    for text in texts:
        assert _dump(zonetext._plain_entries(text)) == _dump(zonetext._scanned_entries(text)), text
