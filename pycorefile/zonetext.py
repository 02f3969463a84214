"""Zone-file text (RFC 1035 §5) → dnslib records, as CoreDNS's DNS library reads it.

CoreDNS reads presentation-format records in two places, both with miekg/dns's zone
parser, and so does pycorefile, with one lexer, one set of value rules (names,
escapes, TTLs, types, classes) and one reader per record type:

* :func:`parse_rr` is miekg's ``NewRR``: the first record of a text, relative names
  relative to an origin (the root by default), a default TTL of 3600. The
  ``template`` plugin hands it every rendered answer; its errors are miekg's word
  for word (``dns: not a TTL: "test.example." at line: 1:13``).
* :func:`read_records` (and :func:`parse_zone`) is miekg's ``ZoneParser``: a master
  file with ``$ORIGIN``, ``$TTL``, ``$INCLUDE FILE [ORIGIN]`` (relative to the
  including file, at most 7 levels deep), a blank owner meaning "the previous
  owner", and a record without a TTL taking ``$TTL`` or else the last explicit TTL.
  The ``file`` plugin loads its zones with it; its errors name the file, the line
  and the column where the offending token starts.

Both take ``OWNER [TTL] [CLASS] TYPE RDATA`` with TTL and class in either order,
TTL units (``1h30m``), ``TYPEnnn``/``CLASSnnn``, ``( … )`` across lines, ``;``
comments, ``"…"`` strings, ``\\X`` and ``\\DDD`` escapes (in names too:
``a\\.b`` is one label) and RFC 3597's generic ``\\# LENGTH HEX``.

dnslib stays the only wire codec: its rdata classes build the records and its
``fromZone`` readers take the less common types. Its own text parsers are not used
for the rest: they need blanks around parentheses, know three classes, report no
positions and resolve names in rdata against the root whatever the origin.
"""

from __future__ import annotations

import binascii
import ipaddress
import os
import re
from collections.abc import Callable, Iterator

from dnslib import AAAA, CAA, CNAME, MX, NS, PTR, RP, RR, SOA, SRV, TXT, A, DNSBuffer, DNSLabel
from dnslib.dns import NAPTR, RD, RDMAP

from pycorefile.corefile.keys import _go_quote, is_domain_name

__all__ = [
    "CLASS_CODES",
    "CLASS_NAMES",
    "DEFAULT_TTL",
    "DNAME",
    "MAX_INCLUDE_DEPTH",
    "TYPE_CODES",
    "TYPE_NAMES",
    "ZoneTextError",
    "class_text",
    "parse_name",
    "parse_rr",
    "parse_zone",
    "read_records",
    "type_text",
]

#: The TTL of a record whose text has none (miekg/dns ``NewRR``).
DEFAULT_TTL = 3600

#: miekg/dns refuses deeper ``$INCLUDE`` nesting.
MAX_INCLUDE_DEPTH = 7

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
# In zone text the type is looked up in upper case, so "None" and "Reserved" never
# match: ``NONE`` is the class.
_TYPES_UPPER: dict[str, int] = {v: k for k, v in TYPE_NAMES.items() if v.isupper()}

#: miekg/dns ``ClassToString`` / ``StringToClass``.
CLASS_NAMES: dict[int, str] = {1: "IN", 2: "CS", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}
CLASS_CODES: dict[str, int] = {v: k for k, v in CLASS_NAMES.items()}

_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NSEC3, _NSEC3PARAM = 50, 51


def type_text(code: int) -> str:
    """miekg ``Type.String``: the mnemonic or ``TYPEn``."""
    return TYPE_NAMES.get(code) or f"TYPE{code}"


def class_text(code: int) -> str:
    """miekg ``Class.String``: the mnemonic or ``CLASSn``."""
    return CLASS_NAMES.get(code) or f"CLASS{code}"


class ZoneTextError(ValueError):
    """Text that is not a record (or not a zone file), worded like miekg/dns's
    ``ParseError``: ``[FILE: ]dns: MESSAGE: "TOKEN" at line: LINE:COL``."""

    def __init__(
        self, message: str, token: str = "", file: str = "", line: int = 0, col: int = 0
    ) -> None:
        self.message, self.token, self.file, self.line, self.col = message, token, file, line, col
        prefix = f"{file}: " if file else ""
        super().__init__(f"{prefix}dns: {message}: {_quote(token)} at line: {line}:{col}")


def _quote(s: str) -> str:
    """Go's ``strconv.QuoteToASCII``, which miekg/dns uses for the token: Go's
    ``%q`` with every non-ASCII character escaped as well."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    quoted = _go_quote(s)
    if quoted.isascii():
        return quoted
    return "".join(
        c if c.isascii() else f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
        for c in quoted
    )


class DNAME(CNAME):
    """DNAME rdata (RFC 6672): a target name like CNAME's, but never compressed
    (§2.5), and dnslib has no class for it."""

    def pack(self, buffer):  # type: ignore[no-untyped-def]
        buffer.encode_name_nocompress(self.label)


# ---------------------------------------------------------------------------
# Lexing
# ---------------------------------------------------------------------------


class _Token:
    """One token: its text (escapes kept, quotes removed) and where it starts."""

    __slots__ = ("text", "quoted", "line", "col", "nl")

    def __init__(self, text: str, quoted: bool, line: int, col: int, nl: bool) -> None:
        self.text, self.quoted, self.line, self.col = text, quoted, line, col
        self.nl = nl  # a bare word ended by a newline (or the end of the text)

    def end(self) -> tuple[int, int]:
        """Where miekg's lexer reports the token (``NewRR``'s errors): at the
        character that ended it, which is the closing quote of a string, the blank
        after a word, or the word's last character when a newline ended it."""
        text = self.text
        width = len(text) if self.quoted else len(text) - self.nl
        k = text.rfind("\n")  # a string over several lines, or an escaped newline
        if k < 0:
            return self.line, self.col + width + self.quoted  # (and the opening quote)
        return self.line + text.count("\n"), width - k


class _EndOfRecord(_Token):
    """The newline (or the end of the text) that ended a record; ``NewRR`` names
    it in errors about missing rdata (``bad A rdata: "\\n"``)."""

    __slots__ = ()

    def __init__(self, line: int, col: int) -> None:
        self.text, self.quoted, self.line, self.col, self.nl = "\n", False, line, col, True

    def end(self) -> tuple[int, int]:
        return self.line, self.col


class _Entry:
    """One record's worth of tokens: a line, or several joined by parentheses."""

    __slots__ = ("tokens", "line", "blank", "owner", "end")

    def __init__(
        self, tokens: list[_Token], line: int, blank: bool, owner: bool, end: _EndOfRecord
    ) -> None:
        self.tokens = tokens
        self.line = line  # where it starts (its first token or parenthesis)
        # The master-file rule: a blank at the start of the line means "no owner,
        # the previous one" (RFC 1035 §5.1).
        self.blank = blank
        # NewRR's rule, from miekg's lexer: the first token is the owner name only if
        # the line starts with it (a carriage return does not count as a blank
        # there), outside parentheses, and a blank follows it.
        self.owner = owner
        self.end = end


class _Unbalanced(Exception):
    """A string, or parentheses, that the text never closes (or closes too often).
    Each reader words it its own way."""

    def __init__(self, kind: str, token: _Token) -> None:
        super().__init__(kind)
        self.kind = kind  # "quote", "brace" (not closed) or "closing" (one too many)
        self.token = token


# Blanks, then one item: a newline, a parenthesis, a comment (to the end of the
# line), a string (its body, and its closing quote if there is one) or a bare word,
# in which a backslash escapes the next character, even a blank or a newline. Every
# character but a blank starts one of these, so only trailing blanks go unmatched.
_ITEM = re.compile(
    r'[ \t\r]*(?:(\n)|(\()|(\))|(;)[^\n]*|"((?:[^"\\]|\\.?)*)(")?|((?:[^ \t\r\n;()"\\]|\\.?)+))',
    re.S,
)
_NEWLINE, _OPEN, _CLOSE, _COMMENT, _OPEN_STRING, _STRING, _WORD = range(1, 8)


# What makes a text more than blank-separated words on lines.
_SPECIAL = re.compile(r'["();\\]')


def _entries(text: str) -> Iterator[_Entry]:
    """The records of ``text``, one token list each, lazily: ``NewRR`` stops after
    the first, and a zone file's errors come in the order of its lines."""
    if _SPECIAL.search(text) is None:
        return _plain_entries(text)
    return _scanned_entries(text)


def _plain_entries(text: str) -> Iterator[_Entry]:
    """:func:`_entries` for a text without strings, parentheses, comments or
    escapes (most rendered answers): each line is one record, its words split at
    the blanks."""
    line_no = 0
    for line in text.split("\n"):
        line_no += 1
        tokens: list[_Token] = []
        col = 1
        for word in line.replace("\t", " ").replace("\r", " ").split(" "):
            if word:
                tokens.append(_Token(word, False, line_no, col, False))
            col += len(word) + 1
        if tokens:
            last = tokens[-1]
            last.nl = last.col + len(last.text) > len(line)
            lead = line[0]
            owner = lead not in " \t" and not tokens[0].nl
            end = _EndOfRecord(line_no, len(line))
            yield _Entry(tokens, line_no, lead in " \t\r", owner, end)


def _scanned_entries(text: str) -> Iterator[_Entry]:
    """:func:`_entries` for any text, item by item."""
    n = len(text)
    line, line_start = 1, 0
    depth = 0
    tokens: list[_Token] = []
    started = False  # has the current record begun (a token or a parenthesis)?
    first_line = 1
    blank = owner_ok = owner = False
    opened = _Token("(", False, 0, 0, False)  # the outermost open parenthesis
    for m in _ITEM.finditer(text):
        kind = m.lastindex
        if kind == _WORD:
            start = m.start(_WORD)
        elif kind == _STRING or kind == _OPEN_STRING:
            start = m.start(_OPEN_STRING) - 1
        elif kind == _NEWLINE:
            pos = m.start(kind)
            if depth == 0:
                if tokens:
                    yield _Entry(
                        tokens, first_line, blank, owner, _EndOfRecord(line, pos - line_start)
                    )
                    tokens = []
                started = False
            line += 1
            line_start = pos + 1
            continue
        elif kind == _COMMENT:
            continue
        else:
            start = m.end() - 1  # a parenthesis
        if not started:
            started = True
            first_line = line
            lead = text[line_start]
            blank = lead in " \t\r"
            owner_ok = lead not in " \t"
        col = start - line_start + 1
        if kind == _WORD:
            word = m.group(kind)
            end = m.end()
            tok = _Token(word, False, line, col, end == n or text[end] == "\n")
            if not tokens:
                owner = owner_ok and depth == 0 and not tok.nl
            tokens.append(tok)
            if "\n" in word:  # an escaped newline
                line += word.count("\n")
                line_start = start + word.rfind("\n") + 1
        elif kind == _STRING or kind == _OPEN_STRING:
            body = m.group(_OPEN_STRING)
            tok = _Token(body, True, line, col, False)
            if kind == _OPEN_STRING:
                raise _Unbalanced("quote", tok)
            if not tokens:
                owner = False
            tokens.append(tok)
            if "\n" in body:
                line += body.count("\n")
                line_start = start + 1 + body.rfind("\n") + 1
        elif kind == _OPEN:
            if depth == 0:
                opened = _Token("(", False, line, col, False)
            depth += 1
        else:
            if depth == 0:
                raise _Unbalanced("closing", _Token(")", False, line, col, False))
            depth -= 1
    if depth:
        raise _Unbalanced("brace", opened)
    if tokens:
        yield _Entry(tokens, first_line, blank, owner, _EndOfRecord(line, n - line_start))


def _end_of_text(text: str) -> tuple[int, int]:
    """Where miekg's lexer is when ``NewRR``'s text runs out (it ends the text
    with a newline if it has none)."""
    n = len(text) - 1 if text.endswith("\n") else len(text)
    return text.count("\n", 0, n) + 1, n - text.rfind("\n", 0, n) - 1


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


def _ttl(text: str) -> int | None:
    """miekg ``stringToTTL``: digits with optional s/m/h/d/w units (``1h30m``,
    ``2W``, even ``5m3``), at most 2^32-1."""
    if not text:
        return None
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


def _code(text: str, mnemonics: dict[str, int], prefix: str) -> int | None:
    """A mnemonic (any case), or the RFC 3597 spelling ``TYPEnnn``/``CLASSnnn``."""
    upper = text.upper()
    code = mnemonics.get(upper)
    if code is None and upper.startswith(prefix):
        number = upper[len(prefix) :]
        if number.isdigit() and int(number) <= 0xFFFF:
            code = int(number)
    return code


def _type_code(text: str) -> int | None:
    return _code(text, _TYPES_UPPER, "TYPE")


def _class_code(text: str) -> int | None:
    return _code(text, CLASS_CODES, "CLASS")


# ``\DDD`` is the byte DDD (modulo 256, as miekg packs it), ``\X`` is X. Working on
# the UTF-8 bytes keeps an escaped multi-byte character whole.
_ESCAPE = re.compile(rb"\\(?:([0-9]{3})|(.))", re.S)


def _escaped(m: re.Match[bytes]) -> bytes:
    digits = m.group(1)
    return bytes((int(digits) & 0xFF,)) if digits is not None else m.group(2)


def _unescape(text: str) -> bytes:
    """Presentation text → bytes. Undecodable bytes of a zone file (read with
    ``surrogateescape``) come back as they were."""
    raw = text.encode("utf-8", "surrogateescape")
    return _ESCAPE.sub(_escaped, raw) if b"\\" in raw else raw


# A label in a name with escapes: up to a dot that is not escaped.
_LABEL = re.compile(r"(?:[^.\\]|\\.)+", re.S)


def _escaped_end(text: str) -> bool:
    """Is the final dot of ``text`` escaped (``a\\.``)?"""
    i = len(text) - 2
    n = 0
    while i >= 0 and text[i] == "\\":
        n += 1
        i -= 1
    return n % 2 == 1


def _name(text: str, origin: tuple[bytes, ...]) -> tuple[bytes, ...] | None:
    """miekg ``toAbsoluteName`` → raw labels: ``@`` is the origin, a name without a
    final (unescaped) dot is relative to it. ``None`` when ``text`` is not a domain
    name (miekg ``IsDomainName``: no empty labels, at most 63 octets a label) or the
    absolute name is longer than 255 octets."""
    if text == "@":
        return origin
    if "\\" in text:
        if not is_domain_name(text):
            return None
        absolute = text.endswith(".") and not _escaped_end(text)
        labels = tuple(map(_unescape, _LABEL.findall(text[:-1] if absolute else text)))
    else:
        if text == ".":
            return ()
        absolute = text.endswith(".")
        raw = (text[:-1] if absolute else text).encode("utf-8", "surrogateescape")
        labels = tuple(raw.split(b"."))
        lengths = list(map(len, labels))
        if min(lengths) == 0 or max(lengths) > 63:
            return None
    name = labels if absolute else labels + origin
    if len(name) + sum(map(len, name)) > 254:  # a length octet each, and the root
        return None
    return name


def parse_name(text: str, origin: tuple[bytes, ...] = ()) -> tuple[bytes, ...]:
    """A name in presentation format → its raw labels, left to right, without the
    root; relative names and ``@`` against ``origin``. ``ValueError`` if it is not a
    domain name."""
    name = _name(text, origin)
    if name is None:
        raise ValueError(f"not a domain name: {text!r}")
    return name


# ---------------------------------------------------------------------------
# Rdata: one reader per type, for both entry points
# ---------------------------------------------------------------------------


class _RdataError(Exception):
    """Rdata that cannot be read: miekg's message and the token it names.
    ``unsupported``: the type has no reader here (only the RFC 3597 form works)."""

    def __init__(self, message: str, token: _Token, unsupported: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.token = token
        self.unsupported = unsupported


class _Rdata:
    """A cursor over a record's rdata tokens that raises miekg's errors."""

    __slots__ = ("toks", "i", "end", "tname", "origin")

    def __init__(
        self, toks: list[_Token], end: _Token, tname: str, origin: tuple[bytes, ...]
    ) -> None:
        self.toks = toks
        self.i = 0
        self.end = end
        self.tname = tname
        self.origin = origin

    def next(self) -> _Token:
        if self.i < len(self.toks):
            lx = self.toks[self.i]
            self.i += 1
            return lx
        return self.end

    def bad(self, what: str, lx: _Token) -> _RdataError:
        return _RdataError(f"bad {self.tname} {what}", lx)

    def name(self, what: str) -> DNSLabel:
        lx = self.next()
        name = None if lx.quoted or lx is self.end else _name(lx.text, self.origin)
        if name is None:
            raise self.bad(what, lx)
        return DNSLabel(name)

    def uint(self, what: str, bits: int) -> int:
        lx = self.next()
        text = lx.text
        if lx.quoted or not text.isascii() or not text.isdigit() or int(text) >> bits:
            raise self.bad(what, lx)
        return int(text)

    def done(self) -> None:
        """miekg ``slurpRemainder``: nothing may follow the rdata."""
        if self.i < len(self.toks):
            raise _RdataError("garbage after rdata", self.toks[self.i])

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


RdataReader = Callable[[_Rdata], RD]


def _rd_address(cls: Callable[[str], RD], v6: bool, what: str) -> RdataReader:
    """A and AAAA: one address of the family (miekg checks for the colon, so an
    IPv4 address is no AAAA), without a zone index."""
    parse = ipaddress.IPv6Address if v6 else ipaddress.IPv4Address

    def read(r: _Rdata) -> RD:
        lx = r.next()
        text = lx.text
        try:
            if lx.quoted or (":" in text) != v6 or "%" in text:
                raise ValueError(text)
            ip = parse(text)
        except ValueError:
            raise r.bad(what, lx) from None
        r.done()
        return cls(str(ip))

    return read


def _rd_name(cls: Callable[[DNSLabel], RD], what: str) -> RdataReader:
    def read(r: _Rdata) -> RD:
        label = r.name(what)
        r.done()
        return cls(label)

    return read


def _rd_wire_name(what: str) -> RdataReader:
    """Single-name types dnslib has no class for (MB, MG, …): raw rdata."""

    def read(r: _Rdata) -> RD:
        label = r.name(what)
        r.done()
        buffer = DNSBuffer()
        buffer.encode_name_nocompress(label)
        return RD(bytes(buffer.data))

    return read


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
        elif i > 0 and not lx.quoted:
            value = _ttl(text)  # refresh, retry, expire and minimum may use units
        if value is None:
            raise _RdataError("bad SOA zone parameter", lx)
        times.append(value)
    r.done()
    return SOA(ns, mbox, times)


def _rd_txt(r: _Rdata) -> RD:
    return TXT(r.strings())


def _rd_caa(r: _Rdata) -> RD:
    flags = r.uint("Flag", 8)
    tag = r.next()
    if tag.quoted or tag is r.end:
        raise r.bad("Tag", tag)
    values = r.strings()
    if len(values) != 1:
        raise r.bad("Value", tag)
    return CAA(flags, tag.text, values[0].decode("utf-8", "replace"))


def _rd_hinfo(r: _Rdata) -> RD:
    chunks = r.strings()
    if len(chunks) == 1:
        parts = chunks[0].split()
        chunks = parts if len(parts) > 1 else [chunks[0], b""]
    cpu, rest = chunks[0], b" ".join(chunks[1:])
    return RD(bytes([len(cpu)]) + cpu + bytes([len(rest)]) + rest)


def _whole(read: RdataReader) -> RdataReader:
    """A reader whose errors name the whole rdata: ``bad RP rdata`` at its first
    token, as for the types dnslib reads (these three hold names relative to the
    origin, which dnslib's readers would resolve against the root)."""

    def whole(r: _Rdata) -> RD:
        try:
            return read(r)
        except Exception:
            raise r.bad("rdata", r.toks[0]) from None

    return whole


@_whole
def _rd_rp(r: _Rdata) -> RD:
    mbox, txt = r.name("Mbox"), r.name("Txt")
    r.done()
    return RP(mbox, txt)


@_whole
def _rd_naptr(r: _Rdata) -> RD:
    if len(r.toks) != 6:
        raise ValueError("NAPTR rdata has six fields")
    order, pref = r.uint("Order", 16), r.uint("Preference", 16)
    flags, service, regexp = (_unescape(r.next().text) for _ in range(3))
    return NAPTR(order, pref, flags, service, regexp, r.name("Replacement"))


@_whole
def _rd_svcb(r: _Rdata) -> RD:
    """SVCB and HTTPS (the same format, RFC 9460): dnslib reads the parameters."""
    prio = r.next()
    target = r.name("Target")
    rdata = RDMAP["HTTPS"].fromZone([prio.text, ".", *(t.text for t in r.toks[2:])])
    rdata.target = list(target.label)
    return rdata  # type: ignore[no-any-return]


_READERS: dict[int, RdataReader] = {
    1: _rd_address(A, False, "A"),
    28: _rd_address(AAAA, True, "AAAA"),
    2: _rd_name(NS, "Ns"),
    5: _rd_name(CNAME, "Target"),
    12: _rd_name(PTR, "Ptr"),
    39: _rd_name(DNAME, "Target"),
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
    17: _rd_rp,
    35: _rd_naptr,
    64: _rd_svcb,
    65: _rd_svcb,
}


def _rd_generic(r: _Rdata) -> RD:
    """RFC 3597 ``\\# LENGTH HEX…``, for any type: raw rdata."""
    marker = r.next()
    length = r.next()
    if length.quoted or not length.text.isdigit():
        raise r.bad("rdata", length)
    hexdata = "".join(t.text for t in r.toks[r.i :])
    r.i = len(r.toks)
    try:
        data = binascii.unhexlify(hexdata)
    except (binascii.Error, ValueError):
        raise r.bad("rdata", marker) from None
    if len(data) != int(length.text):
        raise r.bad("rdata", length)
    return RD(data)


def _rd_dnslib(r: _Rdata) -> RD:
    """The types dnslib can read from zone text (DS, DNSKEY, TLSA, SSHFP, LOC…)."""
    cls = RDMAP.get(r.tname)
    first = r.toks[0]
    if cls is None:
        raise _RdataError("", first, unsupported=True)
    try:
        return cls.fromZone([t.text for t in r.toks], DNSLabel(r.origin))  # type: ignore[no-any-return]
    except Exception:
        raise r.bad("rdata", first) from None


def _is_generic(tokens: list[_Token]) -> bool:
    return tokens[0].text == "\\#" and not tokens[0].quoted


def _rdata(
    rtype: int, tname: str, tokens: list[_Token], end: _Token, origin: tuple[bytes, ...]
) -> RD:
    """The rdata of one record (raises :class:`_RdataError`)."""
    if not tokens:
        # miekg accepts this as an empty ("dynamic update") record; one cannot be
        # sent in an answer or served from a zone, so it is an error here.
        raise _RdataError(f"bad {tname} rdata", end)
    r = _Rdata(tokens, end, tname, origin)
    if _is_generic(tokens):
        return _rd_generic(r)
    return _READERS.get(rtype, _rd_dnslib)(r)


# ---------------------------------------------------------------------------
# One record: miekg/dns NewRR
# ---------------------------------------------------------------------------


def _rr_error(message: str, lx: _Token) -> ZoneTextError:
    return ZoneTextError(message, lx.text, "", *lx.end())


def _header_ttl(lx: _Token) -> int:
    value = None if lx.quoted else _ttl(lx.text)
    if value is None:
        raise _rr_error("not a TTL", lx)
    return value


_EXPECTING = {
    "any": "expecting RR type, TTL or class, not this...",
    "no-ttl": "expecting RR type or class, not this...",
    "no-class": "expecting RR type or TTL, not this...",
    "type": "unknown RR type",
}


def parse_rr(text: str, *, origin: str = ".", default_ttl: int = DEFAULT_TTL) -> RR | None:
    """The first resource record in ``text`` (miekg/dns ``NewRR``); ``None`` when
    the text has none. Relative names are relative to ``origin``.

    Raises :class:`ZoneTextError` with miekg/dns's message for anything else.
    """
    try:
        entry = next(_entries(text), None)
    except _Unbalanced as exc:
        if exc.kind == "closing":
            raise ZoneTextError(
                "extra closing brace", ")", "", exc.token.line, exc.token.col
            ) from None
        what = "unbalanced quote" if exc.kind == "quote" else "unbalanced brace"
        raise ZoneTextError(what, "", "", *_end_of_text(text)) from None
    if entry is None:
        return None
    base = () if origin == "." else parse_name(origin)
    toks = entry.tokens
    owner: tuple[bytes, ...] | None = None
    ttl = default_ttl
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
            raise _rr_error(_EXPECTING[state], entry.end)
        lx = toks[i]
        i += 1
        if state == "owner" and i == 1 and entry.owner:
            owner = _name(lx.text, base)
            if owner is None:
                raise _rr_error("bad owner name", lx)
            state = "any"
            continue
        t = None if lx.quoted else _type_code(lx.text)
        if t is not None:
            rtype = t
            break
        # miekg's lexer only recognises a class in a token followed by a blank.
        c = None if lx.quoted or lx.nl else _class_code(lx.text)
        if state in ("owner", "any"):
            if c is not None:
                rclass = c
                state = "no-class"
            else:
                ttl = _header_ttl(lx)
                state = "no-ttl"
        elif state == "no-ttl":
            if c is None:
                raise _rr_error(_EXPECTING[state], lx)
            rclass = c
            state = "type"
        elif state == "no-class":
            if c is not None:
                raise _rr_error(_EXPECTING[state], lx)
            ttl = _header_ttl(lx)
            state = "type"
        else:
            raise _rr_error(_EXPECTING[state], lx)
    if owner is None:
        # No owner (a leading blank, or the type came first): miekg builds a record
        # with an empty name, which cannot be sent.
        raise _rr_error("bad owner name", toks[0])
    tname = type_text(rtype)
    try:
        rdata = _rdata(rtype, tname, toks[i:], entry.end, base)
    except _RdataError as exc:
        if exc.unsupported:
            exc.message = f"pycorefile cannot build {tname} records from text (use the \\# form)"
        raise _rr_error(exc.message, exc.token) from None
    return RR(rname=DNSLabel(owner), rtype=rtype, rclass=rclass, ttl=ttl, rdata=rdata)


# ---------------------------------------------------------------------------
# A zone file: miekg/dns ZoneParser
# ---------------------------------------------------------------------------


def _zone_error(message: str, tok: _Token, file: str) -> ZoneTextError:
    return ZoneTextError(message, tok.text, file, tok.line, tok.col)


def _typed(rtype: int, rdata: RD) -> RD:
    """Generic rdata decoded with the type's own class when dnslib has one, so that
    an NS written as ``\\# …`` still has a target to follow."""
    cls = DNAME if rtype == 39 else RDMAP.get(TYPE_NAMES.get(rtype, ""))
    if cls is None or rtype in (_NSEC3, _NSEC3PARAM):
        return rdata
    data = rdata.data
    buffer = DNSBuffer(data)
    typed = cls.parse(buffer, len(data))
    if buffer.offset != len(data):
        raise ValueError("generic rdata length mismatch")
    return typed  # type: ignore[no-any-return]


class _State:
    __slots__ = ("origin", "ttl", "ttl_by_directive", "owner")

    def __init__(self, origin: tuple[bytes, ...], ttl: int | None) -> None:
        self.origin = origin
        self.ttl = ttl
        self.ttl_by_directive = False
        self.owner: tuple[bytes, ...] | None = None


def read_records(
    text: str,
    origin: str | tuple[bytes, ...],
    file: str = "",
    *,
    default_ttl: int | None = None,
    depth: int = 0,
) -> Iterator[tuple[RR, int]]:
    """Yield ``(record, line)`` for every record of a zone file's text; ``origin``
    is a name or its labels (see :func:`parse_name`).

    A generator, so a caller that only wants the SOA serial can stop early.
    Raises :class:`ZoneTextError` at the first problem.
    """
    if isinstance(origin, str):
        origin = parse_name(origin)
    yield from _records(text, file, _State(origin, default_ttl), depth)


def parse_zone(text: str, origin: str | tuple[bytes, ...], file: str = "") -> list[tuple[RR, int]]:
    """Every record of a zone file (see :func:`read_records`)."""
    return list(read_records(text, origin, file))


def _zone_entries(text: str, file: str) -> Iterator[_Entry]:
    try:
        yield from _entries(text)
    except _Unbalanced as exc:
        tok = exc.token
        if exc.kind == "quote":
            raise _zone_error("bad string, no closing quote", tok, file) from None
        what = "extra opening brace" if exc.kind == "brace" else "extra closing brace"
        raise _zone_error(what, tok, file) from None


def _records(text: str, file: str, st: _State, depth: int) -> Iterator[tuple[RR, int]]:
    for entry in _zone_entries(text, file):
        toks = entry.tokens
        first = toks[0]
        if not entry.blank and not first.quoted and first.text.startswith("$"):
            yield from _directive(entry, file, st, depth)
            continue
        if entry.blank:
            if st.owner is None:
                raise _zone_error("no owner name", first, file)
            owner = st.owner
            rest = toks
        else:
            name = _name(first.text, st.origin)
            if name is None:
                raise _zone_error("bad owner name", first, file)
            owner = st.owner = name
            rest = toks[1:]
        ttl: int | None = None
        rclass: int | None = None
        rtype: int | None = None
        k = 0
        while k < len(rest):
            tok = rest[k]
            k += 1
            if tok.quoted:
                raise _zone_error("unexpected string", tok, file)
            if rclass is None and _type_code(tok.text) is None:
                rclass = _class_code(tok.text)
                if rclass is not None:
                    continue
            if ttl is None and tok.text[:1].isdigit():
                ttl = _ttl(tok.text)
                if ttl is None:
                    raise _zone_error("not a TTL", tok, file)
                if not st.ttl_by_directive:
                    st.ttl = ttl
                continue
            rtype = _type_code(tok.text)
            if rtype is None:
                raise _zone_error("unknown RR type", tok, file)
            break
        last = rest[k - 1] if rest else first
        if rtype is None:
            raise _zone_error("expecting RR type", last, file)
        if ttl is None:
            if st.ttl is None:
                raise _zone_error("missing TTL with no previous value", last, file)
            ttl = st.ttl
        tokens = rest[k:]
        tname = type_text(rtype)
        try:
            if rtype in (_NSEC3, _NSEC3PARAM) and not (tokens and _is_generic(tokens)):
                # Read (not built), so that loading refuses them in CoreDNS's words.
                rdata = RD(b"")
            else:
                rdata = _rdata(rtype, tname, tokens, entry.end, st.origin)
                if _is_generic(tokens):
                    rdata = _typed(rtype, rdata)
        except _RdataError as exc:
            if exc.unsupported:
                message = f"unsupported record type {TYPE_NAMES.get(rtype, rtype)}"
                raise _zone_error(message, last, file) from None
            raise _bad_rdata(tname, tokens, last, file) from None
        except Exception:
            raise _bad_rdata(tname, tokens, last, file) from None
        yield RR(DNSLabel(owner), rtype, 1 if rclass is None else rclass, ttl, rdata), entry.line


def _bad_rdata(tname: str, tokens: list[_Token], last: _Token, file: str) -> ZoneTextError:
    """The file plugin's one word for any rdata problem, naming the whole rdata."""
    at = tokens[0] if tokens else last
    text = " ".join(t.text for t in tokens)
    return ZoneTextError(f"bad {tname} rdata", text, file, at.line, at.col)


def _directive(entry: _Entry, file: str, st: _State, depth: int) -> Iterator[tuple[RR, int]]:
    toks = entry.tokens
    head = toks[0]
    word = head.text.upper()
    args = toks[1:]
    if word == "$ORIGIN":
        if len(args) != 1:
            raise _zone_error("expecting $ORIGIN value", head, file)
        origin = _name(args[0].text, st.origin)
        if origin is None:
            raise _zone_error("bad origin name", args[0], file)
        st.origin = origin
        return
    if word == "$TTL":
        if len(args) != 1:
            raise _zone_error("expecting $TTL value", head, file)
        ttl = _ttl(args[0].text)
        if ttl is None:
            raise _zone_error("expecting $TTL value, not this...", args[0], file)
        st.ttl = ttl
        st.ttl_by_directive = True
        return
    if word == "$INCLUDE":
        if not args or len(args) > 2:
            raise _zone_error("expecting $INCLUDE value", head, file)
        origin = st.origin
        if len(args) == 2:
            named = _name(args[1].text, st.origin)
            if named is None:
                raise _zone_error("bad origin name", args[1], file)
            origin = named
        if depth >= MAX_INCLUDE_DEPTH:
            raise _zone_error("too deeply nested $INCLUDE", args[0], file)
        path = args[0].text
        if not os.path.isabs(path):
            path = os.path.join(os.path.dirname(file), path)
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                sub_text = f.read()
        except OSError as exc:
            shown = f" as `{path}'" if path != args[0].text else ""
            message = f"failed to open `{args[0].text}'{shown}: {exc.strerror}"
            raise _zone_error(message, args[0], file) from None
        # The included file starts with the current default TTL and the given
        # origin; its $ORIGIN and owner changes do not leak back (RFC 1035 §5.1).
        sub = _State(origin, st.ttl)
        sub.ttl_by_directive = st.ttl_by_directive
        yield from _records(sub_text, path, sub, depth + 1)
        return
    raise _zone_error("unsupported directive", head, file)
