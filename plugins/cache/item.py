"""One cached reply (:class:`Entry`) and the reply a hit returns (:class:`CachedReply`).

An entry keeps the reply packed once, at insert, without its OPT record (EDNS is
hop-by-hop), cut into segments at every TTL field. A hit joins the segments with the
remaining TTL behind a fresh ID and flags (plus the client's OPT record): one
``bytes.join`` and a few concatenations, no dnslib decode or encode per query.

The parsed resource records are kept next to the bytes, so the in-process API can
build a :class:`dnslib.DNSRecord` for a hit without parsing the bytes again; that
record is only made when someone asks for ``reply.message`` (never on the server
path).
"""

from __future__ import annotations

import struct
from typing import Any

from dnslib import EDNS0, RR, DNSHeader, DNSQuestion, DNSRecord

from pycorefile import wire as w
from pycorefile.chain import Reply, Request

_U32 = struct.Struct("!I")
_HDR = struct.Struct("!HH")

#: Header bits a hit copies from the request (RFC 1035 §4.1.1; CoreDNS ``SetReply``).
FROM_REQUEST = w.OPCODE_MASK | w.RD | w.CD
_NEG_INF = float("-inf")


class Entry:
    """A cached reply.

    ``segs`` is the packed reply (no OPT) from byte 4 on, cut at every TTL field,
    so a hit is ``id + flags + ttl.join(segs)``; ``segs_edns`` the same with ARCOUNT
    one higher, for clients that get an OPT record appended. ``flags`` are the header
    bits a hit always sends (QR, AA, RA, rcode), ``ad`` the AD bit the stored reply
    had. ``stored`` is the cache clock at insert,
    ``ttl`` the stored duration in whole seconds. ``hits``/``last`` are the prefetch
    frequency counter, ``refreshing``/``retry_after`` bound background refreshes,
    ``used`` is the second-chance bit of the eviction order.
    """

    __slots__ = (
        "segs", "segs_edns", "qwire", "flags", "ad", "rcode", "ttl", "stored",
        "hits", "last", "refreshing", "retry_after", "answering", "lkg", "used",
        "sections", "kind", "_last",
    )

    def __init__(
        self,
        wire: bytes,
        offsets: tuple[int, ...],
        arcount: int,
        qwire: bytes,
        rcode: int,
        ra: bool,
        ad: bool,
        ttl: int,
        stored: float,
        answering: bool,
        sections: tuple[list[Any], list[Any], list[Any]],
        kind: str,
    ) -> None:
        cuts = [4]
        for off in offsets:
            cuts.append(off)
            cuts.append(off + 4)
        cuts.append(len(wire))
        self.segs = tuple(wire[cuts[i] : cuts[i + 1]] for i in range(0, len(cuts), 2))
        first = self.segs[0]
        # ARCOUNT sits at bytes 10-11 of the message, bytes 6-7 of the first segment.
        more = first[:6] + w.U16.pack(arcount + 1) + first[8:]
        self.segs_edns = (more, *self.segs[1:])
        self.qwire = qwire
        self.rcode = rcode
        # AA=1 always on replies built from the cache: some old glibc stubs drop
        # non-authoritative answers (CoreDNS item.toMsg).
        self.flags = w.QR | w.AA | (w.RA if ra else 0) | (rcode & w.RCODE_MASK)
        self.ad = w.AD if ad else 0
        self.ttl = ttl
        self.stored = stored
        self.hits = 0
        self.last = _NEG_INF
        self.refreshing = False
        self.retry_after: float | None = None
        self.answering = answering
        self.lkg: Entry | None = None
        self.used = False
        self.sections = sections
        self.kind = kind
        self._last: tuple[tuple[Any, ...], DNSRecord] | None = None

    # -- TTL and refresh bookkeeping (CoreDNS item.go, freq.go) -----------------
    def remaining(self, now: float) -> int:
        """Seconds left; ``<= 0`` means expired (Go truncates toward zero)."""
        return self.ttl - int(now - self.stored)

    def update_hits(self, window: float, now: float) -> int:
        """Count a hit: restart at 1 when the previous one is older than ``window``."""
        if self.last < now - window:
            self.hits = 1
        else:
            self.hits += 1
        self.last = now
        return self.hits

    def reset_hits(self, now: float, hits: int) -> None:
        self.last = now
        self.hits = hits

    def begin_refresh(self, now: float, recheck: float) -> bool:
        """Claim the one background refresh this entry may have in flight."""
        if recheck > 0 and self.retry_after is not None and now < self.retry_after:
            return False
        if self.refreshing:
            return False
        self.refreshing = True
        return True

    def end_refresh(self, now: float, recheck: float, refreshed: bool) -> None:
        self.retry_after = now + recheck if (recheck > 0 and not refreshed) else None
        self.refreshing = False

    def answering_item(self) -> Entry | None:
        """This entry if it answers its question, else the last known good answer
        it replaced (``serve_stale_policy prefer_positive``)."""
        if self.answering:
            return self
        lkg = self.lkg
        if lkg is not None and lkg.answering:
            return lkg
        return None

    # -- replies --------------------------------------------------------------
    @property
    def wire(self) -> bytes:
        """The stored reply (ID 0, stored flags 0, stored TTLs, no OPT)."""
        return b"\0\0\0\0" + _U32.pack(self.ttl).join(self.segs)

    def render(self, request: Request, ttl: int, opt_cache: dict[int, bytes]) -> bytes:
        """The reply to ``request`` from the cache (a hit): its ID and question
        spelling, ``ttl`` in every record, AA set, RA and rcode as stored, and for
        EDNS clients their OPT record (version 0, their size, DO echoed)."""
        rflags = request.flags
        flags = self.flags | (rflags & FROM_REQUEST)
        # AD only for clients that asked for DNSSEC (DO) or set AD themselves
        # (RFC 6840 §5.7-5.8).
        if self.ad and (request.do or rflags & w.AD):
            flags |= w.AD
        return self.render_with(request, ttl, flags, opt_cache)

    def render_with(
        self, request: Request, ttl: int, flags: int, opt_cache: dict[int, bytes]
    ) -> bytes:
        """The stored reply with the given header flags, ``ttl`` everywhere and the
        request's ID, question spelling and OPT record."""
        if request.edns:
            k = request.udp_size | (0x10000 if request.do else 0)
            opt = opt_cache.get(k)
            if opt is None:
                opt = opt_cache[k] = w.opt_record(request.udp_size, request.do)
            out = _HDR.pack(request.id, flags) + _U32.pack(ttl).join(self.segs_edns) + opt
        else:
            out = _HDR.pack(request.id, flags) + _U32.pack(ttl).join(self.segs)
        qwire = request.qwire
        if qwire != self.qwire:
            # Same name in another case: echo the client's spelling (RFC 4343 §4.1).
            out = out[:12] + qwire + out[12 + len(qwire) :]
        return out

    def message(self, request: Request, ttl: int, flags: int) -> DNSRecord:
        """The same reply as a dnslib record, sharing the stored names and rdata.

        The last record built is kept: hits within the same second (same TTL) for
        the same question spelling and EDNS shape share it, so its ID is that of the
        request it was first built for: callers copy it and set their own."""
        shape = (ttl, flags, request.qwire, request.edns, request.udp_size, request.do)
        last = self._last
        if last is not None and last[0] == shape:
            return last[1]
        msg = self._build(request, ttl, flags)
        self._last = (shape, msg)
        return msg

    def _build(self, request: Request, ttl: int, flags: int) -> DNSRecord:
        rr, auth, ar = self.sections
        header = DNSHeader(id=request.id, bitmap=flags)
        question = DNSQuestion(request.label, request.qtype, request.qclass)
        out_ar = [RR(r.rname, r.rtype, r.rclass, ttl, r.rdata) for r in ar]
        if request.edns:
            out_ar.append(EDNS0(udp_len=max(request.udp_size, 512), flags="do" if request.do else ""))
        return DNSRecord(
            header,
            questions=[question],
            rr=[RR(r.rname, r.rtype, r.rclass, ttl, r.rdata) for r in rr],
            auth=[RR(r.rname, r.rtype, r.rclass, ttl, r.rdata) for r in auth],
            ar=out_ar,
        )


def pack_entry(
    sections: tuple[list[Any], list[Any], list[Any]], request: Request
) -> tuple[bytes, tuple[int, ...], int]:
    """Pack the answer, authority and additional records (no OPT) under the request's
    question; return the bytes, the offset of every TTL field and ARCOUNT."""
    question = DNSQuestion(request.label, request.qtype, request.qclass)
    rr, auth, ar = sections
    out = DNSRecord(DNSHeader(id=0, bitmap=0), questions=[question], rr=rr, auth=auth, ar=ar)
    data = bytes(out.pack())
    _, _, qd, an, ns, arcount = w.HEADER.unpack_from(data)
    pos = 12
    for _ in range(qd):
        pos = w.read_name(data, pos)[0] + 4
    offsets = []
    for _ in range(an + ns + arcount):
        pos = w.read_name(data, pos)[0]
        offsets.append(pos + 4)
        rdlen = w.U16.unpack_from(data, pos + 8)[0]
        pos += 10 + rdlen
    return data, tuple(offsets), arcount


class CachedReply(Reply):
    """A cache hit: final packed bytes, with a dnslib view built only on demand."""

    __slots__ = ("_entry", "_request", "_ttl")
    _entry: Entry
    _request: Request
    _ttl: int

    @property
    def message(self) -> DNSRecord:
        msg = self._msg
        if msg is None:
            flags = w.U16.unpack_from(self._wire, 2)[0]  # type: ignore[arg-type]
            msg = self._msg = self._entry.message(self._request, self._ttl, flags)
        return msg

    @message.setter
    def message(self, value: DNSRecord) -> None:
        self._msg = value
        self._wire = None
        self.final = False


_new_reply = object.__new__


def hit_reply(entry: Entry, request: Request, ttl: int, wire: bytes) -> CachedReply:
    """A written, final reply by ``cache`` (built without ``Reply.__init__``'s
    keyword handling: this runs once per hit)."""
    r = _new_reply(CachedReply)
    r.rcode = entry.rcode
    r._msg = None
    r._wire = wire
    r.written = True
    r.plugin = "cache"
    r.error = None
    r.cached = True
    r.final = True
    r._entry = entry
    r._request = request
    r._ttl = ttl
    return r
