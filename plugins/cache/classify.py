"""Which replies the cache keeps, in which cache, and for how long.

This is CoreDNS's ``plugin/cache`` reading of a reply (spec §2.3, §2.4): start from
:func:`pycorefile.response.typify` and add the CNAME-chain rules CoreDNS applies on
top of it, so that a NOERROR reply whose answer section does not actually answer the
question is either cached as NODATA (it carries an SOA) or not cached at all
(RFC 2308 §5: no SOA, no negative caching).
"""

from __future__ import annotations

from collections.abc import Sequence

from dnslib import DNSLabel, DNSRecord

from pycorefile import wire as w
from pycorefile.response import Type, typify

SOA = 6
CNAME = 5
ANY = 255
CLASS_ANY = 255

#: Types that never enter either cache.
NEVER = frozenset({Type.OTHERERROR, Type.META, Type.UPDATE})
SUCCESS_TYPES = frozenset({Type.NOERROR, Type.DELEGATION})
DENIAL_TYPES = frozenset({Type.NAMEERROR, Type.NODATA, Type.SERVERERROR})


def _lname(label: DNSLabel) -> tuple[bytes, ...]:
    # DNS names compare case-insensitively, ASCII only (RFC 4343 §3).
    return tuple(part.lower() for part in label.label)


def has_soa(msg: DNSRecord) -> bool:
    return any(rr.rtype == SOA for rr in msg.auth)


def _class_matches(rr_class: int, qclass: int) -> bool:
    return qclass == CLASS_ANY or rr_class == qclass


def _cname_target(
    answer: Sequence, owner: tuple[bytes, ...], qclass: int
) -> tuple[tuple[bytes, ...] | None, bool]:
    """The one canonical name ``owner`` is aliased to (``None``: no CNAME, a terminal
    owner). ``False`` when ``owner`` has two different targets (RFC 2181 §10.1);
    duplicates naming the same target are tolerated."""
    target: tuple[bytes, ...] | None = None
    for rr in answer:
        if rr.rtype != CNAME or not _class_matches(rr.rclass, qclass):
            continue
        if _lname(rr.rname) != owner:
            continue
        t = _lname(rr.rdata.label)
        if target is not None and target != t:
            return None, False
        target = t
    return target, True


def _canonical_name(
    answer: Sequence, name: tuple[bytes, ...], qclass: int
) -> tuple[tuple[bytes, ...], bool]:
    """Follow the CNAME chain from ``name``; ``False`` for an ambiguous chain or a loop
    (RFC 1034 §3.6.2), which the cache treats as not answering."""
    visited: set[tuple[bytes, ...]] = set()
    while True:
        if name in visited:
            return name, False
        visited.add(name)
        target, ok = _cname_target(answer, name, qclass)
        if not ok:
            return name, False
        if target is None:
            return name, True
        name = target


def answer_has_type(answer: Sequence, qname: DNSLabel, qtype: int, qclass: int) -> bool:
    """Does ``answer`` answer (qname, qtype, qclass), following CNAMEs?"""
    if not answer:
        return False
    name = _lname(qname)
    if qtype == ANY:
        # ANY is answered by any record at the queried owner, in the class asked.
        return any(_class_matches(rr.rclass, qclass) and _lname(rr.rname) == name for rr in answer)
    if qtype == CNAME:
        target, ok = _cname_target(answer, name, qclass)
        return ok and target is not None
    terminal, ok = _canonical_name(answer, name, qclass)
    if not ok:
        return False
    return any(
        rr.rtype == qtype and _class_matches(rr.rclass, qclass) and _lname(rr.rname) == terminal
        for rr in answer
    )


def answers_question(msg: DNSRecord) -> bool:
    """A NOERROR reply whose answer section reaches the queried type."""
    if msg.header.rcode != w.NOERROR or not msg.questions or not msg.rr:
        return False
    q = msg.questions[0]
    return answer_has_type(msg.rr, q.qname, q.qtype, q.qclass)


def is_nodata(msg: DNSRecord) -> bool:
    """Answers present, but they do not answer the question (an empty answer
    section is not NODATA here: whoami-style replies carry data elsewhere)."""
    return bool(msg.rr) and not answers_question(msg)


def classify(msg: DNSRecord, now: float | None = None) -> tuple[Type, bool, bool]:
    """``(type, cacheable, answering)`` of a reply, walking its CNAME chain once.

    * type: ``typify``, with a CNAME chain that does not answer but carries an SOA
      reclassified as NODATA (CoreDNS ``cacheResponseType``);
    * cacheable: whether it may be stored at all (CoreDNS ``key``): never truncated
      replies, errors, meta or update replies, NXDOMAIN without SOA (negative caching
      needs the SOA for its TTL, RFC 2308 §5), nor a dangling CNAME chain without SOA
      (an SOA-less NODATA);
    * answering: a NOERROR reply whose answers reach the queried type.
    """
    t = typify(msg, now)
    answering = answers_question(msg)
    nodata = bool(msg.rr) and not answering
    soa = has_soa(msg)
    if t is Type.NOERROR and soa and nodata:
        t = Type.NODATA
    ok = not (
        msg.header.tc
        or t in NEVER
        or (t is Type.NAMEERROR and not soa)
        or (t is Type.NOERROR and not soa and nodata)
    )
    return t, ok, answering


def minimal_ttl(msg: DNSRecord, t: Type, maximum: int) -> int:
    """The smallest TTL in the reply, at most ``maximum`` (CoreDNS
    ``dnsutil.MinimalTTLWithMaximum``); 5 s for types without a TTL of their own
    and for replies with no records at all."""
    if t not in (Type.NOERROR, Type.NAMEERROR, Type.NODATA):
        return 5
    extra = [rr for rr in msg.ar if rr.rtype != w.OPT]
    if not msg.rr and not msg.auth and not extra:
        return 5
    low = maximum
    for section in (msg.rr, msg.auth, extra):
        for rr in section:
            if rr.ttl < low:
                low = rr.ttl
    return low


def compute_ttl(msg_ttl: float, min_ttl: float, max_ttl: float) -> float:
    """Clamp a message TTL to [min_ttl, max_ttl] (the maximum wins a conflict)."""
    return min(max(msg_ttl, min_ttl), max_ttl)


def label_wire(label: DNSLabel) -> bytes:
    """Lower-cased uncompressed wire form of a dnslib name."""
    return w.lower_wire(b"".join(bytes((len(part),)) + part for part in label.label) + b"\x00")


def matches(msg: DNSRecord, name_wire: bytes, qtype: int, qclass: int) -> bool:
    """CoreDNS ``request.Match``: one question, QR set, same name (any case), type
    and class. ``name_wire`` is the request's lower-cased question name in wire form."""
    if len(msg.questions) != 1 or not msg.header.qr:
        return False
    q = msg.questions[0]
    return q.qtype == qtype and q.qclass == qclass and label_wire(q.qname) == name_wire


def in_zones(name: str, zones: Sequence[str]) -> bool:
    """``name`` (lower-cased FQDN) is at or below one of ``zones``."""
    for z in zones:
        if z == "." or name == z or name.endswith("." + z):
            return True
    return False
