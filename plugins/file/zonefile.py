"""RFC 1035 master-file reading for the ``file`` plugin.

The syntax CoreDNS accepts is the one of its DNS library's zone parser: ``$ORIGIN``
(relative to the current origin), ``$TTL``, ``$INCLUDE FILE [ORIGIN]`` (relative to the
including file's directory, at most 7 levels deep), ``@``, relative names, a blank owner
meaning "the previous owner", TTL and class in either order, TTLs with units (``1h30m``,
``2W``), parentheses spanning lines, ``;`` comments, quoted strings, ``\\DDD`` and ``\\X``
escapes, and RFC 3597 generic records (``TYPE65280 \\# 2 abcd``). A record without a TTL
takes ``$TTL``, or else the last explicit TTL; with neither it is an error.

dnslib's ``ZoneParser`` has none of $INCLUDE, line numbers, TTL units on records, class
before TTL, or escaped dots, and it resolves SRV and SVCB targets against the root instead
of the origin. So the lexing, the directives and every domain name are handled here, and
the type-specific rdata that holds no domain name goes through dnslib's own per-type zone
readers (``RDMAP[type].fromZone``), so there is still one codec for the wire format.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from dnslib import (
    AAAA,
    CNAME,
    MX,
    NS,
    PTR,
    QTYPE,
    RD,
    RP,
    RR,
    SOA,
    SRV,
    TXT,
    A,
    DNSBuffer,
    DNSLabel,
)
from dnslib.dns import NAPTR, RDMAP

__all__ = ["DNAME", "Name", "ZoneFileError", "parse_name", "parse_zone", "read_records"]

#: A domain name as a tuple of raw labels, left to right, without the root label.
Name = tuple[bytes, ...]

#: miekg/dns refuses deeper ``$INCLUDE`` nesting.
MAX_INCLUDE_DEPTH = 7

_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CLASSES = {"IN": 1, "CS": 2, "CH": 3, "HS": 4, "NONE": 254, "ANY": 255}


class ZoneFileError(ValueError):
    """A zone file that cannot be read, worded like CoreDNS's parser errors:
    ``FILE: dns: bad A A: "1.2.3" at line: 5:9``."""

    def __init__(
        self, message: str, token: str = "", file: str = "", line: int = 0, col: int = 0
    ) -> None:
        self.message = message
        self.token = token
        self.file = file
        self.line = line
        self.col = col
        prefix = f"{file}: " if file else ""
        quoted = '"' + token.replace("\\", "\\\\").replace('"', '\\"') + '"'
        super().__init__(f"{prefix}dns: {message}: {quoted} at line: {line}:{col}")


class DNAME(CNAME):
    """DNAME rdata (RFC 6672): a target name like CNAME's, but never compressed
    (§2.5), and dnslib has no class for it."""

    def pack(self, buffer):  # type: ignore[no-untyped-def]
        buffer.encode_name_nocompress(self.label)


# ---------------------------------------------------------------------------
# Lexing
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    text: str  # as written, escapes kept (quotes removed for quoted strings)
    quoted: bool
    line: int
    col: int


@dataclass
class Entry:
    """One logical line: its tokens and whether it started with a blank (no owner)."""

    tokens: list[Token]
    blank_owner: bool
    line: int


# A bare word: anything up to a blank, a comment, a parenthesis or a quote; a
# backslash escapes the next character (even a blank).
_WORD = re.compile(r'(?:\\.|[^ \t\r\n;()"\\])+|\\', re.DOTALL)


def _lex(text: str, file: str) -> Iterator[Entry]:
    """Split zone text into logical lines (parentheses join physical lines)."""
    i, n = 0, len(text)
    line, line_start = 1, 0
    depth = 0
    tokens: list[Token] = []
    blank_owner = False
    entry_line = 1
    started = False  # has the current entry begun (a token or a parenthesis)?
    opened = (1, 1)  # where the outermost open parenthesis is
    while i < n:
        c = text[i]
        if c == "\n":
            if depth == 0:
                if tokens:
                    yield Entry(tokens, blank_owner, entry_line)
                tokens = []
                started = False
            i += 1
            line += 1
            line_start = i
            continue
        if c in " \t\r":
            i += 1
            continue
        if c == ";":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if not started:
            # A blank before the first token of an entry means "the previous owner".
            started = True
            blank_owner = i > line_start
            entry_line = line
        col = i - line_start + 1
        if c == "(":
            if depth == 0:
                opened = (line, col)
            depth += 1
            i += 1
            continue
        if c == ")":
            if depth == 0:
                raise ZoneFileError("extra closing brace", ")", file, line, col)
            depth -= 1
            i += 1
            continue
        if c == '"':
            j = i + 1
            buf = []
            start_line = line
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    buf.append(text[j : j + 2])
                    j += 2
                    continue
                if text[j] == "\n":
                    line += 1
                    line_start = j + 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise ZoneFileError(
                    "bad string, no closing quote", "".join(buf), file, start_line, col
                )
            tokens.append(Token("".join(buf), True, start_line, col))
            i = j + 1
            continue
        m = _WORD.match(text, i)
        j = m.end() if m is not None else i + 1
        tokens.append(Token(text[i:j], False, line, col))
        i = j
    if depth:
        raise ZoneFileError("extra opening brace", "(", file, *opened)
    if tokens:
        yield Entry(tokens, blank_owner, entry_line)


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


def unescape(text: str) -> bytes:
    """Presentation text to bytes: ``\\DDD`` is a decimal byte, ``\\X`` is X."""
    if "\\" not in text:
        return text.encode("utf-8")
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            d = text[i + 1 : i + 4]
            if len(d) == 3 and d.isdigit():
                value = int(d)
                if value > 255:
                    raise ValueError("escape above 255")
                out.append(value)
                i += 4
                continue
            out += text[i + 1].encode("utf-8")
            i += 2
            continue
        out += c.encode("utf-8")
        i += 1
    return bytes(out)


def _split_labels(text: str) -> list[str]:
    """Split on dots that are not escaped."""
    labels: list[str] = []
    cur: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            cur.append(text[i : i + 2])
            i += 2
            continue
        if c == ".":
            labels.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    labels.append("".join(cur))
    return labels


def _is_absolute(text: str) -> bool:
    """Does the name end with a dot that is not escaped?"""
    if not text.endswith("."):
        return False
    k, slashes = len(text) - 2, 0
    while k >= 0 and text[k] == "\\":
        slashes += 1
        k -= 1
    return slashes % 2 == 0


def parse_name(text: str, origin: Name) -> Name:
    """A name in presentation format, made absolute against ``origin``; ``@`` is
    the origin. Raises ``ValueError`` for empty labels or overlong names."""
    if text == "@":
        return origin
    if text == ".":
        return ()
    absolute = _is_absolute(text)
    parts = _split_labels(text[:-1] if absolute else text)
    labels = []
    for part in parts:
        raw = unescape(part)
        if not raw or len(raw) > 63:
            raise ValueError("bad label")
        labels.append(raw)
    name = tuple(labels) if absolute else tuple(labels) + origin
    if sum(len(label) + 1 for label in name) + 1 > 255:
        raise ValueError("name too long")
    return name


def parse_ttl(text: str) -> int:
    """A TTL or SOA timer: a number, or number+unit groups (``1h30m``)."""
    if text.isdigit():
        value = int(text)
    else:
        value, num = 0, ""
        for c in text.lower():
            if c.isdigit():
                num += c
            elif c in _TTL_UNITS and num:
                value += int(num) * _TTL_UNITS[c]
                num = ""
            else:
                raise ValueError("bad ttl")
        if num or not text:
            raise ValueError("bad ttl")
    if value > 0xFFFFFFFF:
        raise ValueError("ttl too large")
    return value


def _class_code(text: str) -> int | None:
    up = text.upper()
    if up in _CLASSES:
        return _CLASSES[up]
    if up.startswith("CLASS") and up[5:].isdigit():
        return int(up[5:]) & 0xFFFF
    return None


def _type_code(text: str) -> int | None:
    up = text.upper()
    if up.startswith("TYPE") and up[4:].isdigit():
        return int(up[4:]) & 0xFFFF
    code = QTYPE.reverse.get(up)
    return code if isinstance(code, int) else None


def _label(name: Name) -> DNSLabel:
    return DNSLabel(list(name))


# ---------------------------------------------------------------------------
# Rdata
# ---------------------------------------------------------------------------


def _texts(tokens: list[Token]) -> list[str]:
    return [t.text for t in tokens]


def _generic(rtype: int, tokens: list[Token]) -> RD:
    """RFC 3597 ``\\# LENGTH HEX...``, decoded with the type's own class when
    dnslib has one (so that an NS written this way still has a target)."""
    if len(tokens) < 2 or not tokens[1].text.isdigit():
        raise ValueError("bad generic rdata")
    length = int(tokens[1].text)
    data = bytes.fromhex("".join(_texts(tokens[2:])))
    if len(data) != length:
        raise ValueError("generic rdata length mismatch")
    cls = DNAME if rtype == 39 else RDMAP.get(QTYPE.get(rtype, ""))
    if cls is None or rtype in (50, 51):
        return RD(data)
    buffer = DNSBuffer(data)
    rdata = cls.parse(buffer, length)
    if buffer.offset != length:
        raise ValueError("generic rdata length mismatch")
    return rdata


def _rdata(rtype: int, tokens: list[Token], origin: Name) -> RD:
    """Build the rdata of one record (``ValueError`` and friends on bad input)."""
    if tokens and tokens[0].text == "\\#" and not tokens[0].quoted:
        return _generic(rtype, tokens)
    t = _texts(tokens)

    def name(i: int) -> DNSLabel:
        return _label(parse_name(t[i], origin))

    def need(count: int) -> None:
        if len(t) != count:
            raise ValueError("wrong number of fields")

    if rtype == 1:
        need(1)
        return A(str(ipaddress.IPv4Address(t[0])))
    if rtype == 28:
        need(1)
        return AAAA(str(ipaddress.IPv6Address(t[0])))
    if rtype in (2, 5, 12, 39):
        need(1)
        cls = {2: NS, 5: CNAME, 12: PTR, 39: DNAME}[rtype]
        return cls(name(0))
    if rtype == 15:
        need(2)
        return MX(name(1), int(t[0]))
    if rtype == 33:
        need(4)
        return SRV(int(t[0]), int(t[1]), int(t[2]), name(3))
    if rtype == 6:
        need(7)
        if not t[2].isdigit():
            raise ValueError("bad SOA serial")
        serial = int(t[2])
        if serial > 0xFFFFFFFF:
            raise ValueError("bad SOA serial")
        return SOA(name(0), name(1), (serial, *(parse_ttl(x) for x in t[3:])))
    if rtype == 17:
        need(2)
        return RP(name(0), name(1))
    if rtype in (16, 99):
        if not t:
            raise ValueError("no text")
        return TXT([unescape(x) for x in t])
    if rtype == 35:
        need(6)
        return NAPTR(int(t[0]), int(t[1]), unescape(t[2]), unescape(t[3]), unescape(t[4]), name(5))
    if rtype in (64, 65):
        # SVCB/HTTPS share a format; dnslib's reader resolves the target against the
        # root, so hand it an absolute one.
        if len(t) < 2:
            raise ValueError("wrong number of fields")
        target = t[1] if t[1] == "." else _to_text(parse_name(t[1], origin))
        cls = RDMAP["HTTPS"]
        return cls.fromZone([t[0], target, *t[2:]])
    if rtype in (50, 51):
        # NSEC3/NSEC3PARAM: read, so that loading refuses them with CoreDNS's words.
        return RD(b"")
    type_name = QTYPE.get(rtype, "")
    reader = RDMAP.get(type_name)
    if reader is None:
        raise LookupError(f"unsupported record type {type_name or rtype}")
    if rtype == 257:  # CAA: the value is a character string
        need(3)
        return reader(int(t[0]), t[1], unescape(t[2]).decode("utf-8", "replace"))
    return reader.fromZone(list(t), None)


def _to_text(name: Name) -> str:
    if not name:
        return "."
    out = []
    for label in name:
        s = []
        for b in label:
            ch = chr(b)
            if ch in '.\\ "();':
                s.append("\\" + ch)
            elif 0x21 <= b <= 0x7E:
                s.append(ch)
            else:
                s.append(f"\\{b:03d}")
        out.append("".join(s))
    return ".".join(out) + "."


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------


def read_records(
    text: str,
    origin: Name,
    file: str = "",
    *,
    default_ttl: int | None = None,
    depth: int = 0,
) -> Iterator[tuple[RR, int]]:
    """Yield ``(record, line)`` for every record of a zone file's text.

    A generator, so a caller that only wants the SOA serial can stop early.
    Raises :class:`ZoneFileError` at the first problem.
    """
    state = _State(origin, default_ttl)
    yield from _records(text, file, state, depth)


class _State:
    __slots__ = ("origin", "ttl", "ttl_by_directive", "owner")

    def __init__(self, origin: Name, ttl: int | None) -> None:
        self.origin = origin
        self.ttl = ttl
        self.ttl_by_directive = False
        self.owner: Name | None = None


def _records(text: str, file: str, st: _State, depth: int) -> Iterator[tuple[RR, int]]:
    for entry in _lex(text, file):
        toks = entry.tokens
        first = toks[0]
        if not entry.blank_owner and not first.quoted and first.text.startswith("$"):
            yield from _directive(entry, file, st, depth)
            continue
        if entry.blank_owner:
            if st.owner is None:
                raise ZoneFileError("no owner name", first.text, file, first.line, first.col)
            owner = st.owner
            rest = toks
        else:
            try:
                owner = parse_name(first.text, st.origin)
            except ValueError:
                raise ZoneFileError(
                    "bad owner name", first.text, file, first.line, first.col
                ) from None
            st.owner = owner
            rest = toks[1:]
        ttl: int | None = None
        rclass: int | None = None
        rtype: int | None = None
        k = 0
        while k < len(rest):
            tok = rest[k]
            k += 1
            if tok.quoted:
                raise ZoneFileError("unexpected string", tok.text, file, tok.line, tok.col)
            if (
                rclass is None
                and _class_code(tok.text) is not None
                and _type_code(tok.text) is None
            ):
                rclass = _class_code(tok.text)
                continue
            if ttl is None and tok.text[:1].isdigit():
                try:
                    ttl = parse_ttl(tok.text)
                except ValueError:
                    raise ZoneFileError("not a TTL", tok.text, file, tok.line, tok.col) from None
                if not st.ttl_by_directive:
                    st.ttl = ttl
                continue
            rtype = _type_code(tok.text)
            if rtype is None:
                raise ZoneFileError("unknown RR type", tok.text, file, tok.line, tok.col)
            break
        last = rest[k - 1] if rest else first
        if rtype is None:
            raise ZoneFileError("expecting RR type", last.text, file, last.line, last.col)
        if ttl is None:
            if st.ttl is None:
                raise ZoneFileError(
                    "missing TTL with no previous value", last.text, file, last.line, last.col
                )
            ttl = st.ttl
        rdata_tokens = rest[k:]
        type_name = QTYPE.get(rtype, f"TYPE{rtype}")
        try:
            rdata = _rdata(rtype, rdata_tokens, st.origin)
        except LookupError as exc:
            raise ZoneFileError(str(exc), last.text, file, last.line, last.col) from None
        except Exception:
            bad = rdata_tokens[0] if rdata_tokens else last
            raise ZoneFileError(
                f"bad {type_name} rdata", " ".join(_texts(rdata_tokens)), file, bad.line, bad.col
            ) from None
        rr = RR(_label(owner), rtype, rclass if rclass is not None else 1, ttl, rdata)
        yield rr, entry.line


def _directive(entry: Entry, file: str, st: _State, depth: int) -> Iterator[tuple[RR, int]]:
    toks = entry.tokens
    word = toks[0].text.upper()
    args = toks[1:]
    head = toks[0]
    if word == "$ORIGIN":
        if len(args) != 1:
            raise ZoneFileError("expecting $ORIGIN value", head.text, file, head.line, head.col)
        try:
            st.origin = parse_name(args[0].text, st.origin)
        except ValueError:
            raise ZoneFileError(
                "bad origin name", args[0].text, file, args[0].line, args[0].col
            ) from None
        return
    if word == "$TTL":
        if len(args) != 1:
            raise ZoneFileError("expecting $TTL value", head.text, file, head.line, head.col)
        try:
            st.ttl = parse_ttl(args[0].text)
        except ValueError:
            raise ZoneFileError(
                "expecting $TTL value, not this...", args[0].text, file, args[0].line, args[0].col
            ) from None
        st.ttl_by_directive = True
        return
    if word == "$INCLUDE":
        if not args or len(args) > 2:
            raise ZoneFileError("expecting $INCLUDE value", head.text, file, head.line, head.col)
        origin = st.origin
        if len(args) == 2:
            try:
                origin = parse_name(args[1].text, st.origin)
            except ValueError:
                raise ZoneFileError(
                    "bad origin name", args[1].text, file, args[1].line, args[1].col
                ) from None
        if depth >= MAX_INCLUDE_DEPTH:
            raise ZoneFileError(
                "too deeply nested $INCLUDE", args[0].text, file, args[0].line, args[0].col
            )
        path = args[0].text
        if not os.path.isabs(path):
            path = os.path.join(os.path.dirname(file), path)
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                sub_text = f.read()
        except OSError as exc:
            shown = f" as `{path}'" if path != args[0].text else ""
            raise ZoneFileError(
                f"failed to open `{args[0].text}'{shown}: {exc.strerror}",
                args[0].text,
                file,
                args[0].line,
                args[0].col,
            ) from None
        # The included file starts with the current default TTL and the given
        # origin; its $ORIGIN and owner changes do not leak back (RFC 1035 §5.1).
        sub = _State(origin, st.ttl)
        sub.ttl_by_directive = st.ttl_by_directive
        yield from _records(sub_text, path, sub, depth + 1)
        return
    raise ZoneFileError("unsupported directive", head.text, file, head.line, head.col)


def parse_zone(text: str, origin: Name, file: str = "") -> list[tuple[RR, int]]:
    """Every record of a zone file (see :func:`read_records`)."""
    return list(read_records(text, origin, file))
