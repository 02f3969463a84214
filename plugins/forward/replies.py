"""Byte-level checks and shaping of upstream replies.

Upstream replies are handled as bytes: accepting one (RFC 5452 matching), cutting
an oversized UDP reply down to an empty TC reply, and turning it into the reply the
client gets (ID restored, EDNS OPT made the client's) without a dnslib decode and
re-encode on the common path.
"""

from __future__ import annotations

import struct

from pycorefile import wire as w
from pycorefile.chain import Reply, Request

U32 = struct.Struct("!I")
TSIG = 250

#: Rcodes a server may send without echoing the question (RFC 1035 leaves it open
#: for errors; dnspython accepts these the same way).
_QUESTIONLESS_RCODES = frozenset({w.FORMERR, w.SERVFAIL, w.NOTIMP, w.REFUSED})


def udp_accepts(data: bytes, key: bytes) -> int:
    """Where the question of ``data`` ends if ``data`` answers the query whose
    question is ``key``, else 0 (the datagram is then ignored).

    RFC 5452 §9.1: a UDP reply is accepted only if its ID (checked by the caller),
    question name (case-insensitively), type and class match the query. A reply
    without a question is accepted only for error rcodes (some servers answer
    FORMERR or REFUSED that way); the forward plugin then answers FORMERR, as
    CoreDNS does for any reply whose question does not match.
    """
    if len(data) < 12 or not data[2] & 0x80:  # not a response (QR=0): never ours
        return 0
    if data[4] == 0 and data[5] == 0:
        return 12 if (data[3] & 0xF) in _QUESTIONLESS_RCODES else 0
    got = w.question_key(data)
    if got is None or got[0] != key:
        return 0
    return got[1]


def matches(data: bytes, key: bytes) -> bool:
    """CoreDNS's ``request.Match``: a response with exactly our one question."""
    if len(data) < 12 or not data[2] & 0x80:
        return False
    got = w.question_key(data)
    return got is not None and got[0] == key


def truncated(data: bytes, qend: int) -> bytes:
    """An empty reply with TC=1: header and question of ``data``, no records.

    What CoreDNS makes of a UDP reply that does not fit the buffer it advertised
    (a non-compliant upstream, spec §1.3): the client retries over TCP.
    """
    qdcount = 1 if qend > 12 else 0
    flags = w.U16.unpack_from(data, 2)[0] | w.TC
    return data[:2] + w.HEADER.pack(0, flags, qdcount, 0, 0, 0)[2:] + data[12:qend]


def is_nodata(data: bytes) -> bool:
    """NOERROR with an empty answer section (``next_on_nodata``)."""
    return (data[3] & 0xF) == w.NOERROR and data[6] == 0 and data[7] == 0


def for_client(request: Request, data: bytes, plugin: str = "forward") -> Reply:
    """The written :class:`Reply` for ``request`` from upstream reply ``data``.

    Flags, sections and TTLs stay as the upstream sent them; the ID becomes the
    client's. When the message can be walked cheaply, its OPT record is made what
    the server's scrub would make it (spec §0: version 0, the client's size, DO
    iff the client set DO, upstream options kept; removed for a client without
    EDNS) and the reply is marked final, so the server only patches the ID and the
    question's case. Otherwise the server scrubs it through dnslib.
    """
    out = w.U16.pack(request.id) + data[2:]
    rcode = data[3] & 0xF
    shaped = _fit_opt(request, out)
    if shaped is not None and len(shaped) <= request.max_size:
        reply = Reply(rcode, wire=shaped, plugin=plugin)
        reply.final = True
        return reply
    return Reply(rcode, wire=out, plugin=plugin)


def _skip_rr(data: bytes, pos: int) -> tuple[int, int, int]:
    """(start of the type field, rtype, end) of the record at ``pos``."""
    name_end, _ = w.read_name(data, pos)
    if name_end + 10 > len(data):
        raise w.WireError("record header runs past the end")
    rtype = (data[name_end] << 8) | data[name_end + 1]
    rdlen = (data[name_end + 8] << 8) | data[name_end + 9]
    end = name_end + 10 + rdlen
    if end > len(data):
        raise w.WireError("record data runs past the end")
    return name_end, rtype, end


def _fit_opt(request: Request, data: bytes) -> bytes | None:
    """``data`` with the client's OPT record, or ``None`` to leave it to dnslib."""
    try:
        qd, an, ns, ar = w.HEADER.unpack_from(data)[2:]
        pos = 12
        for _ in range(qd):
            pos, _c = w.read_name(data, pos)
            pos += 4
        if pos > len(data):
            return None
        for _ in range(an + ns):
            pos = _skip_rr(data, pos)[2]
        opt_start = opt_type = opt_end = -1
        for _ in range(ar):
            start = pos
            type_at, rtype, pos = _skip_rr(data, pos)
            if rtype == w.OPT:
                if opt_start >= 0:
                    return None  # two OPT records: let the slow path decide
                opt_start, opt_type, opt_end = start, type_at, pos
            elif rtype == TSIG:
                return None
    except w.WireError:
        return None
    if pos < len(data):
        return None  # trailing bytes after the last record
    if not request.edns:
        if opt_start < 0:
            return data
        if opt_end != len(data):
            return None
        arcount = ar - 1
        return data[:10] + w.U16.pack(arcount) + data[12:opt_start]
    size = max(request.udp_size, 512)
    ttl = w.DO_BIT if request.do else 0
    if opt_start < 0:
        return w.add_opt(data, size, request.do)
    # CLASS is the payload size; TTL holds extended rcode, version and flags.
    return (
        data[: opt_type + 2] + w.U16.pack(size) + U32.pack(ttl) + data[opt_type + 8 :]
    )
