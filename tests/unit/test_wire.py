"""Byte-level helpers: names, queries, OPT records."""

from __future__ import annotations

import struct

import pytest
from dnslib import DNSRecord

from pycorefile import wire as w


@pytest.mark.parametrize(
    "name",
    ["example.org.", ".", "a.b.c.d.e.", "xn--bcher-kva.example.", "with\\.dot.example.", "Mixed.Case."],
)
def test_name_round_trip(name: str) -> None:
    data = w.text_to_wire(name)
    end, compressed = w.read_name(data, 0)
    assert end == len(data) and not compressed
    assert w.name_to_text(data, 0, end) == name


def test_text_to_wire_rejects_long_labels_and_names() -> None:
    with pytest.raises(ValueError):
        w.text_to_wire("a" * 64 + ".example.")
    with pytest.raises(ValueError):
        w.text_to_wire(".".join(["abcdefghi"] * 30) + ".")


@pytest.mark.parametrize(
    "blob, reason",
    [
        (b"\x05abc", "past the end"),
        (b"\xc0", "truncated"),
        (b"\x40abc\x00", "reserved"),
        (b"\x01a\xc0\x05", "forward"),
    ],
)
def test_read_name_rejects_bad_names(blob: bytes, reason: str) -> None:
    with pytest.raises(w.WireError, match=reason):
        w.read_name(blob, 0)


def test_read_name_rejects_pointer_loop() -> None:
    # Two pointers that point at each other (each points backwards from its own position
    # only if we allow it; craft a self-referencing chain at offset 2 -> 0 -> 2).
    data = b"\xc0\x02\xc0\x00"
    with pytest.raises(w.WireError):
        w.read_name(data, 2)


def test_build_query_parses_with_dnslib() -> None:
    q = w.build_query("Example.ORG", 28, qid=4242, edns_size=1232, do=True, cd=True)
    rec = DNSRecord.parse(q)
    assert rec.header.id == 4242
    assert str(rec.q.qname) == "Example.ORG."
    assert rec.q.qtype == 28
    assert rec.header.cd == 1
    opt = [rr for rr in rec.ar if rr.rtype == 41][0]
    assert opt.rclass == 1232
    assert opt.ttl & w.DO_BIT


def test_add_opt_appends_and_counts() -> None:
    base = w.build_query("a.example.", 1)
    out = w.add_opt(base, 4096, do=True)
    assert struct.unpack("!H", out[10:12])[0] == 1
    rec = DNSRecord.parse(out)
    assert rec.ar[0].rtype == 41 and rec.ar[0].rclass == 4096


def test_set_id() -> None:
    q = w.build_query("a.example.", qid=1)
    assert struct.unpack("!H", w.set_id(q, 777)[:2])[0] == 777


@pytest.mark.parametrize(
    "code, text", [(0, "NOERROR"), (2, "SERVFAIL"), (3, "NXDOMAIN"), (5, "REFUSED"), (23, "RCODE23")]
)
def test_rcode_name(code: int, text: str) -> None:
    assert w.rcode_name(code) == text


def test_type_codes() -> None:
    assert w.qtype_code("aaaa") == 28
    assert w.qtype_code("TYPE65") == 65
    assert w.qtype_name(1) == "A"
    with pytest.raises(ValueError):
        w.qtype_code("NOPE")


def test_truncate_keeps_answers_first_and_sets_tc_like_miekg() -> None:
    from dnslib import RR, TXT, A

    from pycorefile.routing import truncate

    msg = DNSRecord.question("t.example.", "A").reply()
    for i in range(10):
        msg.add_answer(RR("t.example.", 1, rdata=A(f"192.0.2.{i}"), ttl=60))
    msg.add_ar(RR("glue.example.", 16, rdata=TXT("x" * 200), ttl=60))
    msg.add_ar(RR("glue.example.", 16, rdata=TXT("y" * 200), ttl=60))
    out = DNSRecord.parse(truncate(msg, 512))
    # Every answer fits; only additional records had to go, and that sets TC too
    # (miekg/dns Msg.Truncate sets TC when any record is excluded).
    assert len(out.rr) == 10 and len(out.ar) < 2 and out.header.tc == 1
    assert len(truncate(msg, 512)) <= 512
