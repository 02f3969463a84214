"""Byte-level DNS helpers for the hot path.

dnslib is the project's codec; this module only does what must be cheap: read the
12-byte header, the single question and the EDNS OPT record straight from the bytes,
patch an ID, and build small queries. Anything unusual (compression in the question,
several questions) is reported so the caller can fall back to dnslib or answer
FORMERR, exactly as CoreDNS's DNS library does (see spec §2.2 "which messages are
accepted at all").
"""

from __future__ import annotations

import struct

from dnslib import CLASS, QTYPE, RCODE

HEADER = struct.Struct("!HHHHHH")
U16 = struct.Struct("!H")
QTAIL = struct.Struct("!HH")
RRHEAD = struct.Struct("!HHIH")

# Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2).
QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
AD = 0x0020
CD = 0x0010
OPCODE_MASK = 0x7800
RCODE_MASK = 0x000F

A = 1
AAAA = 28
SRV = 33
OPT = 41
DO_BIT = 0x8000

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
BADVERS = 16


class WireError(ValueError):
    """A message that cannot be decoded.

    ``header_ok`` tells whether the 12-byte header (and so the ID) was readable: then
    the server answers FORMERR, otherwise the datagram is dropped. ``question_end``
    is where a question that decoded ends, when the error came after it (the
    FORMERR reply then repeats the question, as miekg/dns's does).
    """

    def __init__(self, message: str, header_ok: bool = True) -> None:
        super().__init__(message)
        self.header_ok = header_ok
        self.question_end: int | None = None


def read_name(wire: bytes, offset: int) -> tuple[int, bool]:
    """Skip a (possibly compressed) domain name; return (end offset, compressed).

    Rejects label lengths that run past the message, pointer loops, reserved label
    types and names longer than 255 octets (RFC 1035 §2.3.4, §4.1.4).
    """
    n = len(wire)
    total = 0
    jumps = 0
    end = -1
    pos = offset
    while True:
        if pos >= n:
            raise WireError("name runs past the end of the message")
        length = wire[pos]
        if length == 0:
            total += 1
            if total > 255:
                raise WireError("name longer than 255 octets")
            return (pos + 1 if end < 0 else end), end >= 0
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= n:
                raise WireError("truncated compression pointer")
            if end < 0:
                end = pos + 2
            jumps += 1
            if jumps > 127:
                raise WireError("compression pointer loop")
            target = ((length & 0x3F) << 8) | wire[pos + 1]
            if target >= pos:
                # Pointers must point backwards; anything else can loop.
                raise WireError("compression pointer points forward")
            pos = target
            continue
        if kind:
            raise WireError("reserved label type")
        total += length + 1
        if total > 255:
            raise WireError("name longer than 255 octets")
        pos += length + 1


def name_to_text(wire: bytes, start: int, end: int) -> str:
    """Uncompressed name bytes → presentation text with a trailing dot.

    Dots and backslashes inside labels and non-printable bytes are escaped as in
    zone files (RFC 4343 §2.1), so the text round-trips.
    """
    if wire[start] == 0:
        return "."
    parts = []
    pos = start
    while True:
        length = wire[pos]
        if length == 0:
            break
        raw = wire[pos + 1 : pos + 1 + length]
        try:
            label = raw.decode("ascii")
        except UnicodeDecodeError:
            label = None
        if label is None or not label.isprintable() or "." in label or "\\" in label or " " in label:
            out = []
            for b in raw:
                c = chr(b)
                if c in ".\\ \"();":
                    out.append("\\" + c)
                elif 0x21 <= b <= 0x7E:
                    out.append(c)
                else:
                    out.append(f"\\{b:03d}")
            label = "".join(out)
        parts.append(label)
        pos += length + 1
    return ".".join(parts) + "."


_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")


def lower_wire(name_wire: bytes) -> bytes:
    """ASCII lower-casing of name bytes (DNS names compare case-insensitively for
    ASCII only, RFC 4343 §3)."""
    return name_wire.translate(_LOWER)


def text_to_wire(name: str) -> bytes:
    """Presentation name → uncompressed wire bytes (escapes honoured)."""
    if name in (".", ""):
        return b"\x00"
    if not name.endswith(".") or name.endswith("\\."):
        name += "."
    out = bytearray()
    label = bytearray()
    i = 0
    n = len(name)
    while i < n:
        c = name[i]
        if c == "\\" and i + 1 < n:
            if name[i + 1 : i + 4].isdigit() and len(name[i + 1 : i + 4]) == 3:
                label.append(int(name[i + 1 : i + 4]))
                i += 4
                continue
            label += name[i + 1].encode("latin-1")
            i += 2
            continue
        if c == ".":
            if not label:
                raise ValueError(f"empty label in {name!r}")
            if len(label) > 63:
                raise ValueError(f"label longer than 63 octets in {name!r}")
            out.append(len(label))
            out += label
            label = bytearray()
        else:
            label += c.encode("utf-8")
        i += 1
    out.append(0)
    if len(out) > 255:
        raise ValueError(f"name longer than 255 octets: {name!r}")
    return bytes(out)


def build_query(
    name: str,
    qtype: int = 1,
    qclass: int = 1,
    *,
    qid: int = 0,
    rd: bool = True,
    edns_size: int | None = None,
    do: bool = False,
    cd: bool = False,
) -> bytes:
    """A one-question query in wire format (optionally with an OPT record)."""
    flags = (RD if rd else 0) | (CD if cd else 0)
    arcount = 1 if edns_size is not None else 0
    out = HEADER.pack(qid, flags, 1, 0, 0, arcount) + text_to_wire(name) + QTAIL.pack(qtype, qclass)
    if edns_size is not None:
        out += b"\x00" + RRHEAD.pack(OPT, edns_size, DO_BIT if do else 0, 0)
    return out


def set_id(wire: bytes, qid: int) -> bytes:
    """A copy of ``wire`` with the message ID replaced."""
    return U16.pack(qid) + wire[2:]


def rcode_name(code: int) -> str:
    """CoreDNS's rcode text: ``NOERROR`` …, ``RCODE<n>`` when unknown."""
    name = RCODE.get(code)
    if name is None or not isinstance(name, str) or name.isdigit():
        return f"RCODE{code}"
    return name


def qtype_name(code: int) -> str:
    name = QTYPE.get(code)
    return name if isinstance(name, str) and not name.isdigit() else f"TYPE{code}"


def qclass_name(code: int) -> str:
    name = CLASS.get(code)
    return name if isinstance(name, str) and not name.isdigit() else f"CLASS{code}"


def qtype_code(name: str | int) -> int:
    """``"A"`` → 1; accepts ints and ``TYPE65`` spellings."""
    if isinstance(name, int):
        return name
    upper = name.upper()
    if upper.startswith("TYPE") and upper[4:].isdigit():
        return int(upper[4:])
    try:
        code = getattr(QTYPE, upper)
    except Exception:
        code = None
    if not isinstance(code, int):
        raise ValueError(f"unknown query type {name!r}")
    return code


def qclass_code(name: str | int) -> int:
    if isinstance(name, int):
        return name
    upper = name.upper()
    if upper.startswith("CLASS") and upper[5:].isdigit():
        return int(upper[5:])
    try:
        code = getattr(CLASS, upper)
    except Exception:
        code = None
    if not isinstance(code, int):
        raise ValueError(f"unknown query class {name!r}")
    return code


def opt_record(udp_size: int, do: bool = False, ext_rcode: int = 0) -> bytes:
    """An OPT pseudo-record (RFC 6891 §6.1.2) with no options, as the server echoes
    it to EDNS clients: version 0, the given payload size, DO as requested."""
    ttl = ((ext_rcode & 0xFF) << 24) | (DO_BIT if do else 0)
    return b"\x00" + RRHEAD.pack(OPT, max(udp_size, 512), ttl, 0)


def add_opt(message: bytes, udp_size: int, do: bool = False) -> bytes:
    """``message`` (which has no OPT) with an OPT record appended and ARCOUNT + 1."""
    arcount = U16.unpack_from(message, 10)[0] + 1
    return message[:10] + U16.pack(arcount) + message[12:] + opt_record(udp_size, do)


def question_key(message: bytes) -> tuple[bytes, int] | None:
    """The question of a message with exactly one question, in the form of
    ``Request.key`` (lower-cased name bytes, type and class), and the offset where the
    question ends; ``None`` when there is no such question or it cannot be read
    (a compression pointer inside the question is invalid: it could only point
    into the header)."""
    if len(message) < 17 or message[4] != 0 or message[5] != 1:
        return None
    try:
        end, compressed = read_name(message, 12)
    except WireError:
        return None
    if compressed or end + 4 > len(message):
        return None
    return lower_wire(message[12:end]) + message[end : end + 4], end + 4
