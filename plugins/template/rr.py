"""A template's rendered text → one resource record, as CoreDNS reads it.

CoreDNS hands the rendered text to miekg/dns ``NewRR``: a zone-file parser with
origin ``.`` and a default TTL of 3600 that reads the *first* record of the text.
This module follows that parser's rules and error messages, and builds the record
with dnslib's rdata classes:

* ``OWNER [TTL] [CLASS] TYPE RDATA`` with TTL and class in either order; TTL and
  class are optional (3600, ``IN``); types and classes are case-insensitive;
  ``TYPEnnn``/``CLASSnnn`` spellings; TTLs may use BIND units (``1h30m``);
* relative names are relative to the root (``example.com`` is ``example.com.``),
  ``@`` is the root;
* ``( … )`` groups a record over several lines (the SOA form), ``;`` starts a
  comment, ``"…"`` quotes (TXT), ``\\X`` and ``\\DDD`` escapes;
* errors read like miekg's: ``dns: not a TTL: "test.example." at line: 1:13``.

dnslib's own ``RR.fromZone`` is not used for the text itself: it needs spaces
around parentheses (``(1 60 60 60 60)`` is the form CoreDNS's documentation
uses), knows only three classes and reports no positions. Its rdata classes build
the records, and its ``fromZone`` reads the rdata of the less common types.
"""

from __future__ import annotations

import binascii
import ipaddress
from collections.abc import Callable

from dnslib import AAAA, CAA, CNAME, MX, NS, PTR, RR, SOA, SRV, TXT, A, DNSLabel
from dnslib.dns import RD, RDMAP

from pycorefile.corefile.keys import is_domain_name

__all__ = [
    "CLASS_CODES",
    "CLASS_NAMES",
    "DEFAULT_TTL",
    "TYPE_CODES",
    "TYPE_NAMES",
    "RRParseError",
    "parse_rr",
]

#: The TTL of a record whose text has none (miekg/dns ``NewRR``).
DEFAULT_TTL = 3600

#: miekg/dns ``TypeToString``: the type mnemonics CoreDNS knows (``.Type`` and the
#: ``template`` directive use these spellings).
# fmt: off
TYPE_NAMES: dict[int, str] = {
    0: "None", 1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG",
    9: "MR", 10: "NULL", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX", 16: "TXT", 17: "RP",
    18: "AFSDB", 19: "X25", 20: "ISDN", 21: "RT", 23: "NSAP-PTR", 24: "SIG", 25: "KEY",
    26: "PX", 27: "GPOS", 28: "AAAA", 29: "LOC", 30: "NXT", 31: "EID", 32: "NIMLOC",
    33: "SRV", 34: "ATMA", 35: "NAPTR", 36: "KX", 37: "CERT", 39: "DNAME", 41: "OPT",
    42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
    49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA", 53: "SMIMEA", 55: "HIP",
    56: "NINFO", 57: "RKEY", 58: "TALINK", 59: "CDS", 60: "CDNSKEY", 61: "OPENPGPKEY",
    62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS", 99: "SPF", 100: "UINFO", 101: "UID",
    102: "GID", 103: "UNSPEC", 104: "NID", 105: "L32", 106: "L64", 107: "LP", 108: "EUI48",
    109: "EUI64", 128: "NXNAME", 249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR",
    253: "MAILB", 254: "MAILA", 255: "ANY", 256: "URI", 257: "CAA", 258: "AVC",
    260: "AMTRELAY", 261: "RESINFO", 32768: "TA", 32769: "DLV", 65535: "Reserved",
}
# fmt: on
#: miekg/dns ``StringToType`` (case-sensitive, as the ``template`` directive reads it).
TYPE_CODES: dict[str, int] = {v: k for k, v in TYPE_NAMES.items()}
_TYPES_UPPER: dict[str, int] = {v.upper(): k for k, v in TYPE_NAMES.items()}

#: miekg/dns ``ClassToString`` / ``StringToClass``.
CLASS_NAMES: dict[int, str] = {1: "IN", 2: "CS", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}
CLASS_CODES: dict[str, int] = {v: k for k, v in CLASS_NAMES.items()}

_ROOT = DNSLabel(".")
_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class RRParseError(ValueError):
    """Rendered text that is not a resource record; the text is miekg/dns's."""


def _go_quote(s: str) -> str:
    """Go's ``strconv.QuoteToASCII``."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


class _Lex:
    """One token: its text (escapes kept), where it ended, and how."""

    __slots__ = ("text", "quoted", "line", "col", "owner", "nl")

    def __init__(self, text: str, quoted: bool, line: int, col: int, owner: bool, nl: bool) -> None:
        self.text = text
        self.quoted = quoted
        self.line = line
        self.col = col
        self.owner = owner  # first on its line with no blank before it: the owner name
        self.nl = nl  # ended by the end of the line


def _error(message: str, lx: _Lex) -> RRParseError:
    return RRParseError(f"dns: {message}: {_go_quote(lx.text)} at line: {lx.line}:{lx.col}")


def _lex(text: str) -> tuple[list[_Lex], _Lex]:
    """The tokens of the first record in ``text``, and the newline that ended it.

    Columns follow miekg's lexer, which reports the column of the character that
    ended a token (the last character when a newline ended it).
    """
    s = text if text.endswith("\n") else text + "\n"
    toks: list[_Lex] = []
    buf: list[str] = []
    line, col = 1, 0
    eol = quote = escape = comment = False
    brace = 0
    owner_ok = line_start = True
    for ch in s:
        if eol:
            line += 1
            col = 0
            eol = False
        if ch == "\n":
            eol = True
        else:
            col += 1
        if comment:
            if ch != "\n":
                continue
            comment = False
        if escape:
            buf.append(ch)
            escape = False
            continue
        if quote:
            if ch == "\\":
                buf.append(ch)
                escape = True
            elif ch == '"':
                toks.append(_Lex("".join(buf), True, line, col, False, False))
                buf = []
                quote = False
            else:
                buf.append(ch)
            continue
        if ch == "\\":
            buf.append(ch)
            escape = True
            line_start = False
            continue
        if ch in ' \t\r();"\n':
            if buf:
                is_owner = owner_ok and ch != "\n" and brace == 0
                toks.append(_Lex("".join(buf), False, line, col, is_owner, ch == "\n"))
                buf = []
                owner_ok = False
            elif line_start and ch in " \t":
                owner_ok = False  # a leading blank: the owner is omitted
            line_start = False
            if ch == "(":
                brace += 1
            elif ch == ")":
                brace -= 1
                if brace < 0:
                    raise _error("extra closing brace", _Lex(")", False, line, col, False, False))
            elif ch == ";":
                comment = True
            elif ch == '"':
                quote = True
            elif ch == "\n" and brace == 0:
                if toks:
                    return toks, _Lex("\n", False, line, col, False, True)
                owner_ok = line_start = True
            continue
        buf.append(ch)
        line_start = False
    end = _Lex("", False, line, col, False, True)
    if quote:
        raise _error("unbalanced quote", end)
    if brace:
        raise _error("unbalanced brace", end)
    return toks, _Lex("\n", False, line, col, False, True)


def _ttl(text: str) -> int | None:
    """miekg ``stringToTTL``: digits with optional s/m/h/d/w units, at most 2^32-1."""
    total = num = 0
    for c in text:
        if "0" <= c <= "9":
            num = num * 10 + (ord(c) - 48)
        else:
            mult = _TTL_UNITS.get(c.lower())
            if mult is None:
                return None
            total += num * mult
            num = 0
    total += num
    return total if total <= 0xFFFFFFFF else None


def _header_ttl(lx: _Lex) -> int:
    value = None if lx.quoted or not lx.text else _ttl(lx.text)
    if value is None:
        raise _error("not a TTL", lx)
    return value


def _rrtype(lx: _Lex) -> int | None:
    if lx.quoted:
        return None
    upper = lx.text.upper()
    code = _TYPES_UPPER.get(upper)
    if code is not None:
        return code
    if upper.startswith("TYPE") and upper[4:].isdigit() and int(upper[4:]) <= 0xFFFF:
        return int(upper[4:])
    return None


def _rrclass(lx: _Lex) -> int | None:
    # miekg's lexer only recognises a class in a token followed by a blank.
    if lx.quoted or lx.nl:
        return None
    upper = lx.text.upper()
    code = CLASS_CODES.get(upper)
    if code is not None:
        return code
    if upper.startswith("CLASS") and upper[5:].isdigit() and int(upper[5:]) <= 0xFFFF:
        return int(upper[5:])
    return None


def _escaped_end(text: str) -> bool:
    """Is the final dot of ``text`` escaped (``a\\.``)?"""
    i = len(text) - 2
    n = 0
    while i >= 0 and text[i] == "\\":
        n += 1
        i -= 1
    return n % 2 == 1


def _absolute(text: str) -> str | None:
    """miekg ``toAbsoluteName`` with origin ``.``."""
    if text == "@":
        return "."
    if not text or not is_domain_name(text):
        return None
    if text.endswith(".") and not _escaped_end(text):
        return text
    return text + "."


def _unescape(text: str) -> bytes:
    """Zone-file escapes → bytes: ``\\DDD`` is a byte, ``\\X`` is X."""
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            digits = text[i + 1 : i + 4]
            if len(digits) == 3 and digits.isdigit():
                out.append(int(digits) & 0xFF)
                i += 4
                continue
            out += text[i + 1].encode("utf-8")
            i += 2
            continue
        out += c.encode("utf-8")
        i += 1
    return bytes(out)


def _label(text: str) -> DNSLabel:
    """An absolute presentation name → a dnslib label (escapes decoded per label)."""
    if text == ".":
        return _ROOT
    labels: list[bytes] = []
    cur: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            cur.append(text[i : i + 2])
            i += 2
            continue
        if c == ".":
            labels.append(_unescape("".join(cur)))
            cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        labels.append(_unescape("".join(cur)))
    return DNSLabel(labels)


def _name_wire(label: DNSLabel) -> bytes:
    out = bytearray()
    for part in label.label:
        out.append(len(part))
        out += part
    out.append(0)
    return bytes(out)


class _Rdata:
    """A cursor over the rdata tokens that raises miekg's errors."""

    __slots__ = ("toks", "i", "end", "tname")

    def __init__(self, toks: list[_Lex], end: _Lex, tname: str) -> None:
        self.toks = toks
        self.i = 0
        self.end = end
        self.tname = tname

    def next(self) -> _Lex:
        if self.i < len(self.toks):
            lx = self.toks[self.i]
            self.i += 1
            return lx
        return self.end

    def name(self, what: str) -> DNSLabel:
        lx = self.next()
        absolute = None if lx.quoted else _absolute(lx.text)
        if absolute is None:
            raise _error(f"bad {self.tname} {what}", lx)
        return _label(absolute)

    def uint(self, what: str, bits: int) -> int:
        lx = self.next()
        text = lx.text
        if lx.quoted or not text.isascii() or not text.isdigit() or int(text) >> bits:
            raise _error(f"bad {self.tname} {what}", lx)
        return int(text)

    def done(self) -> None:
        """miekg ``slurpRemainder``: nothing may follow the rdata."""
        if self.i < len(self.toks):
            raise _error("garbage after rdata", self.toks[self.i])

    def strings(self) -> list[bytes]:
        """miekg ``endingToTxtSlice``: every remaining token is one string (quoted
        or not), split into pieces of at most 255 octets."""
        out: list[bytes] = []
        while self.i < len(self.toks):
            raw = _unescape(self.toks[self.i].text)
            self.i += 1
            if not raw:
                out.append(b"")
            for j in range(0, len(raw), 255):
                out.append(raw[j : j + 255])
        return out


RdataParser = Callable[[_Rdata], RD]


def _rd_a(r: _Rdata) -> RD:
    lx = r.next()
    try:
        if lx.quoted or ":" in lx.text:
            raise ValueError(lx.text)
        ip = ipaddress.IPv4Address(lx.text)
    except ValueError:
        raise _error("bad A A", lx) from None
    r.done()
    return A(str(ip))


def _rd_aaaa(r: _Rdata) -> RD:
    lx = r.next()
    try:
        if lx.quoted or ":" not in lx.text or "%" in lx.text:
            raise ValueError(lx.text)
        ip = ipaddress.IPv6Address(lx.text)
    except ValueError:
        raise _error("bad AAAA AAAA", lx) from None
    r.done()
    return AAAA(str(ip))


def _rd_name(cls: Callable[[DNSLabel], RD], what: str) -> RdataParser:
    def parse(r: _Rdata) -> RD:
        label = r.name(what)
        r.done()
        return cls(label)

    return parse


def _rd_wire_name(what: str) -> RdataParser:
    """Single-name types dnslib has no class for (DNAME, MB, …): raw rdata."""

    def parse(r: _Rdata) -> RD:
        label = r.name(what)
        r.done()
        return RD(_name_wire(label))

    return parse


def _rd_mx(r: _Rdata) -> RD:
    pref = r.uint("Pref", 16)
    label = r.name("Mx")
    r.done()
    return MX(label, pref)


def _rd_srv(r: _Rdata) -> RD:
    prio = r.uint("Priority", 16)
    weight = r.uint("Weight", 16)
    port = r.uint("Port", 16)
    target = r.name("Target")
    r.done()
    return SRV(prio, weight, port, target)


def _rd_soa(r: _Rdata) -> RD:
    ns = r.name("Ns")
    mbox = r.name("Mbox")
    times = []
    for i in range(5):
        lx = r.next()
        value: int | None = None
        text = lx.text
        if not lx.quoted and text.isascii() and text.isdigit() and int(text) <= 0xFFFFFFFF:
            value = int(text)
        elif i > 0 and not lx.quoted and text:
            value = _ttl(text)  # refresh, retry, expire and minimum may use units
        if value is None:
            raise _error("bad SOA zone parameter", lx)
        times.append(value)
    r.done()
    return SOA(ns, mbox, times)


def _rd_txt(r: _Rdata) -> RD:
    return TXT(r.strings())


def _rd_caa(r: _Rdata) -> RD:
    flags = r.uint("Flag", 8)
    tag = r.next()
    if tag.quoted or tag is r.end:
        raise _error("bad CAA Tag", tag)
    values = r.strings()
    if len(values) != 1:
        raise _error("bad CAA Value", tag)
    return CAA(flags, tag.text, values[0].decode("utf-8", "replace"))


def _rd_hinfo(r: _Rdata) -> RD:
    chunks = r.strings()
    if len(chunks) == 1:
        parts = chunks[0].split()
        chunks = parts if len(parts) > 1 else [chunks[0], b""]
    cpu, rest = chunks[0], b" ".join(chunks[1:])
    return RD(bytes([len(cpu)]) + cpu + bytes([len(rest)]) + rest)


_PARSERS: dict[int, RdataParser] = {
    1: _rd_a,
    28: _rd_aaaa,
    2: _rd_name(NS, "Ns"),
    5: _rd_name(CNAME, "Target"),
    12: _rd_name(PTR, "Ptr"),
    39: _rd_wire_name("Target"),
    3: _rd_wire_name("Md"),
    4: _rd_wire_name("Mf"),
    7: _rd_wire_name("Mb"),
    8: _rd_wire_name("Mg"),
    9: _rd_wire_name("Mr"),
    15: _rd_mx,
    33: _rd_srv,
    6: _rd_soa,
    16: _rd_txt,
    99: _rd_txt,
    257: _rd_caa,
    13: _rd_hinfo,
}


def _rd_generic(r: _Rdata) -> RD:
    """RFC 3597 ``\\# LENGTH HEX…``, for any type."""
    marker = r.next()
    length = r.next()
    if length.quoted or not length.text.isdigit():
        raise _error(f"bad {r.tname} rdata", length)
    hexdata = "".join(t.text for t in r.toks[r.i :])
    r.i = len(r.toks)
    try:
        data = binascii.unhexlify(hexdata)
    except (binascii.Error, ValueError):
        raise _error(f"bad {r.tname} rdata", marker) from None
    if len(data) != int(length.text):
        raise _error(f"bad {r.tname} rdata", length)
    return RD(data)


def _rd_dnslib(r: _Rdata) -> RD:
    """The types dnslib can read from zone text (DS, DNSKEY, TLSA, HTTPS, NAPTR…)."""
    # SVCB has the same presentation format as HTTPS (RFC 9460).
    cls = RDMAP.get("HTTPS" if r.tname == "SVCB" else r.tname)
    first = r.toks[0]
    if cls is None:
        raise _error(
            f"pycorefile cannot build {r.tname} records from text (use the \\# form)", first
        )
    try:
        return cls.fromZone([t.text for t in r.toks], _ROOT)  # type: ignore[no-any-return]
    except Exception:
        raise _error(f"bad {r.tname} rdata", first) from None


def parse_rr(text: str) -> RR | None:
    """The first resource record in ``text``; ``None`` when the text has none.

    Raises :class:`RRParseError` with miekg/dns's message for anything else.
    """
    toks, end = _lex(text)
    if not toks:
        return None
    owner: str | None = None
    ttl = DEFAULT_TTL
    rclass = 1
    rtype: int | None = None
    n = len(toks)
    i = 0
    # The header: [OWNER], then TTL and CLASS in either order, then the type
    # (miekg's states zExpectOwnerDir, zExpectAny, zExpectAnyNoTTL, …).
    state = "owner"
    while True:
        if i >= n:
            if state == "owner":
                return None  # nothing but a TTL: no record (miekg)
            raise _error(_EXPECTING[state], end)
        lx = toks[i]
        i += 1
        if state == "owner" and lx.owner:
            owner = _absolute(lx.text)
            if owner is None:
                raise _error("bad owner name", lx)
            state = "any"
            continue
        t = _rrtype(lx)
        if t is not None:
            rtype = t
            break
        c = _rrclass(lx)
        if state in ("owner", "any"):
            if c is not None:
                rclass = c
                state = "no-class"
            else:
                ttl = _header_ttl(lx)
                state = "no-ttl"
        elif state == "no-ttl":
            if c is None:
                raise _error(_EXPECTING[state], lx)
            rclass = c
            state = "type"
        elif state == "no-class":
            if c is not None:
                raise _error(_EXPECTING[state], lx)
            ttl = _header_ttl(lx)
            state = "type"
        else:
            raise _error(_EXPECTING[state], lx)
    if owner is None:
        # No owner (a leading blank, or the type came first): miekg builds a record
        # with an empty name, which cannot be sent.
        raise _error("bad owner name", toks[0])
    tname = TYPE_NAMES.get(rtype, f"TYPE{rtype}")
    rest = toks[i:]
    if not rest:
        # miekg accepts this as an empty ("dynamic update") record; one cannot be
        # sent in an answer, so it is an error here.
        raise _error(f"bad {tname} rdata", end)
    r = _Rdata(rest, end, tname)
    if rest[0].text == "\\#" and not rest[0].quoted:
        rdata = _rd_generic(r)
    else:
        rdata = _PARSERS.get(rtype, _rd_dnslib)(r)
    return RR(rname=_label(owner), rtype=rtype, rclass=rclass, ttl=ttl, rdata=rdata)


_EXPECTING = {
    "any": "expecting RR type, TTL or class, not this...",
    "no-ttl": "expecting RR type or class, not this...",
    "no-class": "expecting RR type or TTL, not this...",
    "type": "unknown RR type",
}
