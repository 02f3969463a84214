"""CoreDNS's ``file``: authoritative answers from RFC 1035 zone files.

Setup (CoreDNS ``plugin/file/setup.go``) reads each zone file once per origin;
queries are answered by :meth:`Zone.lookup <.zone.Zone.lookup>`, CoreDNS's
look-up algorithm. The reply for a question depends only on the zone data (unless
a CNAME had to be resolved through the server), so finished reply bytes are
memoised per question and per the request bits that change them; a reload
empties the memo. Files are checked for a new SOA serial lazily, when a query
arrives after the ``reload`` interval, so the plugin needs no timer or thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from dnslib import RR, DNSHeader, DNSQuestion, DNSRecord

from pycorefile import wire as w
from pycorefile.chain import Next, Plugin, Reply, Request, SetupContext
from pycorefile.corefile.model import Directive
from pycorefile.duration import format_duration, parse_duration
from pycorefile.fall import Fallthrough, longest_zone, normalize_zones
from pycorefile.routing import copy_message, scrub

from .zone import (
    DELEGATION,
    NAME_ERROR,
    NO_DATA,
    SERVER_FAILURE,
    SUCCESS,
    Name,
    Zone,
    ZoneLoadError,
    label_of,
)

__all__ = ["DEFAULT_RELOAD", "MEMO_SIZE", "File", "ZoneFile"]

log = logging.getLogger("pycorefile.plugins.file")

#: CoreDNS checks zone files for a new serial every minute by default.
DEFAULT_RELOAD = 60.0
#: How many finished replies (and fallthrough decisions) one plugin memoises.
MEMO_SIZE = 4096

_KEY_FLAGS = w.OPCODE_MASK | w.RD | w.CD
_AXFR, _IXFR = 252, 251
_NOTIFY = 4
_NEXT = ("next",)

# Sub-requests in flight for CNAME/DNAME targets → their loop count (CoreDNS
# carries it in the context as dnsserver.LoopKey). Shared by every file plugin,
# because a chase can cross server blocks.
_LOOP: dict[int, int] = {}


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


def _go_error(exc: OSError, path: str) -> str:
    """An OSError worded like Go's: ``open PATH: no such file or directory``."""
    reason = (exc.strerror or str(exc)).lower()
    return f"open {path}: {reason}"


class ZoneFile:
    """One origin served from one file: its current data and reload state."""

    def __init__(self, origin: str, path: str) -> None:
        self.origin = origin
        self.path = path
        self.zone: Zone | None = None  # None until the file could be loaded
        self.interval = DEFAULT_RELOAD
        self.by_mtime = False
        self.mtime = 0.0
        self.next_check = 0.0

    def load(self, text: str, mtime: float = 0.0) -> None:
        """Load ``text`` now (setup); raises :class:`ZoneLoadError`."""
        self.zone = Zone.load(text, self.origin, self.path)
        self.mtime = mtime

    def refresh(self) -> bool:
        """Re-read the file if its SOA serial changed (or, with ``reload_by_mtime``,
        its modification time); True when new data was loaded. Problems are logged
        and the old data kept, as CoreDNS does."""
        serial: int | None = self.zone.serial if self.zone is not None else None
        if serial is not None and serial < 0:
            serial = None
        mtime = 0.0
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError as exc:
            if self.by_mtime:
                log.error('Failed to stat zone "%s" in "%s": %s', self.origin, self.path, exc)
                return False
        if self.by_mtime:
            if not mtime > self.mtime:
                return False
            serial = None  # a newer file is loaded whatever its serial
        try:
            text = _read(self.path)
        except OSError as exc:
            log.error(
                'Failed to open zone "%s" in "%s": %s',
                self.origin,
                self.path,
                _go_error(exc, self.path),
            )
            return False
        try:
            zone = Zone.load(text, self.origin, self.path, serial)
        except ZoneLoadError as exc:
            log.error('Parsing zone "%s": %s', self.origin, exc)
            return False
        if zone is None:
            return False  # no change in the SOA serial
        self.zone = zone
        self.mtime = mtime
        log.info(
            'Successfully reloaded zone "%s" in "%s" with %d SOA serial',
            self.origin,
            self.path,
            zone.serial,
        )
        return True


class _Upstream:
    """Resolves a CNAME/DNAME target through the server that got the request
    (CoreDNS ``plugin/pkg/upstream``): the whole chain again, zone routing included,
    with the original request's EDNS and flags."""

    __slots__ = ("request", "used", "servers")

    def __init__(self, request: Request, servers: dict[str, Any]) -> None:
        self.request = request
        self.used = False
        self.servers = servers

    async def __call__(self, target: Name, qtype: int, loop: int) -> tuple[list[RR], int]:
        self.used = True
        request = self.request
        engine = request.engine
        server = self.servers.get(request.server)
        if server is None and engine is not None:
            for s in engine.servers:
                if s.label == request.server:
                    server = self.servers[request.server] = s
                    break
        if server is None:
            # CoreDNS: "no full server is running".
            return [], SERVER_FAILURE
        flags = request.flags & (w.OPCODE_MASK | w.RD | w.CD)
        query = w.HEADER.pack(request.id, flags, 1, 0, 0, 1 if request.edns else 0)
        query += b"".join(bytes([len(label)]) + label for label in target) + b"\x00"
        query += w.QTAIL.pack(qtype, 1)  # CoreDNS asks for class IN
        if request.edns:
            query += w.opt_record(request.udp_size, request.do)
        try:
            sub = Request.from_wire(query, request.client, request.proto)
        except w.WireError:
            return [], SERVER_FAILURE
        sub.meta = request.meta
        sub.local = request.local
        _LOOP[id(sub)] = loop
        try:
            reply = await server.serve(sub)
        finally:
            _LOOP.pop(id(sub), None)
        if not reply.written:
            if reply.rcode == 0:
                return [], SUCCESS  # nothing written at all
            rcode, answer = reply.rcode, []
        else:
            msg = reply.message
            rcode, answer = msg.header.rcode, list(msg.rr)
        if rcode == w.NXDOMAIN:
            return answer, NAME_ERROR
        if rcode == w.SERVFAIL:
            return answer, SERVER_FAILURE
        if rcode == 0 and not answer:
            return answer, NO_DATA
        return answer, SUCCESS


class File(Plugin):
    """CoreDNS's ``file`` plugin: authoritative data from zone files.

    All ``file`` lines of a server block form one plugin (CoreDNS sets them up
    together); a query goes to the zone with the longest matching origin.
    """

    name = "file"

    def __init__(
        self,
        zones: dict[str, ZoneFile],
        fall: Fallthrough | None = None,
        *,
        memo_size: int = MEMO_SIZE,
    ) -> None:
        self.zones = zones
        self.names: tuple[str, ...] = tuple(zones)
        self.fall = fall or Fallthrough()
        self.memo_size = memo_size
        self._memo: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()
        self._servers: dict[str, Any] = {}
        self._last: bool | None = None
        # Bumped on every reload, so that a reply computed from the old data while
        # the reload ran is not memoised after the memo was emptied.
        self._generation = 0
        now = time.monotonic()
        for zf in zones.values():
            zf.next_check = now + zf.interval
        self._next_check = self._earliest()

    # -- setup ------------------------------------------------------------------
    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        return cls.setup_all([directive], ctx)[0]

    @classmethod
    def setup_all(cls, directives: Sequence[Directive], ctx: SetupContext) -> list[Plugin]:
        zones: dict[str, ZoneFile] = {}
        fall = Fallthrough()
        # As in CoreDNS, these outlive one line: a later ``file`` line without its
        # own ``reload`` inherits the previous line's.
        reload = DEFAULT_RELOAD
        by_mtime = False
        open_error: tuple[Directive, str] | None = None
        for d in directives:
            if not d.args:
                raise d.arg_error(cls.name)
            path = cls._path(d.args[0], ctx)
            origins = normalize_zones(d.args[1:]) if len(d.args) > 1 else tuple(ctx.zones)
            text: str | None = None
            mtime = 0.0
            try:
                text = _read(path)
                mtime = os.stat(path).st_mtime
            except OSError as exc:
                open_error = (d, _go_error(exc, path))
            for origin in origins:
                zf = ZoneFile(origin, path)
                if text is not None:
                    try:
                        zf.load(text, mtime)
                    except ZoneLoadError as exc:
                        raise d.error(str(exc), plugin=cls.name, kind="plain") from None
                zones[origin] = zf
            for sub in d.block or ():
                a = sub.args
                if sub.name == "fallthrough":
                    fall = Fallthrough.parse(a)
                elif sub.name == "reload":
                    if not a:
                        raise sub.error(
                            "reload duration value is expected", plugin=cls.name, kind="plain"
                        )
                    try:
                        reload = parse_duration(a[0])
                    except ValueError as exc:
                        raise sub.error(str(exc), plugin=cls.name, kind="plain") from None
                    if reload < 0:
                        # Go accepts it and CoreDNS then panics starting its ticker.
                        raise sub.error(
                            f"invalid negative duration for reload '{a[0]}'", plugin=cls.name
                        )
                elif sub.name == "reload_by_mtime":
                    if a:
                        raise sub.arg_tokens[0].error(f"unknown property '{a[0]}'", plugin=cls.name)
                    by_mtime = True
                elif sub.name == "upstream":
                    pass  # accepted and ignored, as CoreDNS does ("remove soon")
                else:
                    raise sub.error(f"unknown property '{sub.name}'", plugin=cls.name)
            for origin in origins:
                zones[origin].interval = reload
                zones[origin].by_mtime = by_mtime
        if open_error is not None:
            d, message = open_error
            if reload == 0:
                raise d.error(message, plugin=cls.name, kind="plain")
            log.warning('Failed to open "%s": trying again in %s', message, format_duration(reload))
        return [cls(zones, fall)]

    @staticmethod
    def _path(name: str, ctx: SetupContext) -> str:
        """DBFILE: absolute, or relative to the ``root`` directory if one is set,
        otherwise to the Corefile's directory."""
        if os.path.isabs(name):
            return os.path.normpath(name)
        base = ctx.config_dir
        root = ctx.shared.get("root")
        if root:
            base = os.path.join(base, str(root))
        return os.path.normpath(os.path.join(base, name))

    # -- reloading ----------------------------------------------------------------
    def _earliest(self) -> float:
        due = [zf.next_check for zf in self.zones.values() if zf.interval > 0]
        return min(due) if due else float("inf")

    def _reload_due(self, now: float) -> None:
        with self._lock:
            if now < self._next_check:
                return
            changed = False
            for zf in self.zones.values():
                if zf.interval > 0 and now >= zf.next_check:
                    zf.next_check = now + zf.interval
                    changed |= zf.refresh()
            self._next_check = self._earliest()
            if changed:
                self._generation += 1
                self._memo.clear()

    # -- serving ------------------------------------------------------------------
    async def serve(self, request: Request, next: Next) -> Reply:
        if self._next_check <= time.monotonic():
            self._reload_due(time.monotonic())
        loop = _LOOP.get(id(request), 0) if _LOOP else 0
        key = (
            request.key,
            request.flags & _KEY_FLAGS,
            request.udp_size if request.edns else 0,
            request.do,
        )
        if not loop:
            hit = self._memo.get(key)
            if hit is not None:
                if hit is _NEXT:
                    return await next(request)
                return self._replay(request, hit)

        origin = longest_zone(self.names, request.name)
        if not origin:
            if self._is_last():
                # CoreDNS: with no next plugin REFUSED is the more correct answer
                # for an authoritative server.
                return Reply.fail(w.REFUSED)
            return await next(request)
        qtype = request.qtype
        if qtype == _AXFR or qtype == _IXFR:
            return Reply.fail(w.REFUSED)  # transfers need the transfer plugin
        if request.opcode == _NOTIFY:
            # Only secondary zones (not supported) accept NOTIFY; CoreDNS writes nothing.
            log.info("Dropping notify from %s for %s", request.client[0], origin)
            return Reply.drop()
        zf = self.zones[origin]
        zone = zf.zone
        if zone is None or zone.soa is None:
            return Reply.fail(w.SERVFAIL)

        generation = self._generation
        qname = _labels(request.key)
        upstream = _Upstream(request, self._servers)
        answer, ns, extra, result = await zone.lookup(qname, qtype, loop, upstream)
        memoise = not loop and not upstream.used and generation == self._generation

        # Only a missing name falls through (an empty non-terminal counts as one).
        if not answer and result in (NAME_ERROR, SUCCESS) and self.fall.through(request.name):
            if memoise:
                self._remember(key, _NEXT)
            return await next(request)

        aa = True
        rcode = 0
        if result == NAME_ERROR:
            rcode = w.NXDOMAIN
        elif result == DELEGATION:
            # A referral is not authoritative; a CNAME leading into one keeps AA.
            aa = bool(answer)
        elif result == SERVER_FAILURE:
            if not answer:
                return Reply.fail(w.SERVFAIL)
            rcode = w.SERVFAIL  # the target's rcode (RFC 6604 §3), with the CNAMEs
        flags = w.QR | (request.flags & (w.OPCODE_MASK | w.RD | w.CD)) | (w.AA if aa else 0) | rcode
        header = DNSHeader(id=request.id, bitmap=flags, q=1)
        question = DNSQuestion(label_of(qname), qtype, request.qclass)
        msg = DNSRecord(
            header, questions=[question], rr=list(answer), auth=list(ns), ar=list(extra)
        )
        out = scrub(request, msg)
        try:
            data = bytes(out.pack())
        except Exception as exc:  # a record dnslib cannot pack (an overlong DNAME result)
            return Reply.fail(w.SERVFAIL, exc)
        if data[12 : 12 + len(request.key)] != request.key:
            # The question did not pack back to the client's bytes (an unusual name):
            # let the server finish this reply the slow way, and do not memoise it.
            return Reply(rcode, message=out, plugin=self.name)
        entry = (rcode, data, out)
        if memoise:
            self._remember(key, entry)
        return self._replay(request, entry)

    def _replay(self, request: Request, entry: tuple[int, bytes, DNSRecord]) -> Reply:
        rcode, data, msg = entry
        if len(data) > request.max_size and request.qwire != request.key[:-4]:
            # This one gets truncated from the record, so give it the question as the
            # client spelled it (the bytes path patches the question in place).
            spelled = copy_message(msg)
            spelled.questions = [
                DNSQuestion(label_of(_labels(request.qwire)), request.qtype, request.qclass)
            ]
            return Reply(rcode, message=spelled, plugin=self.name)
        reply = Reply(rcode, message=msg, wire=data, plugin=self.name)
        reply.final = True
        return reply

    def _remember(self, key: tuple[Any, ...], entry: Any) -> None:
        memo = self._memo
        if len(memo) >= self.memo_size:
            with self._lock:
                try:
                    while len(memo) >= self.memo_size:
                        memo.pop(next(iter(memo)))
                except (StopIteration, KeyError, RuntimeError):
                    pass
        memo[key] = entry

    def _is_last(self) -> bool:
        """Is this plugin the last of its chain (CoreDNS: ``f.Next == nil``)?"""
        if self._last is None:
            last = False
            engine = self.engine
            for chain in getattr(engine, "chains", ()) if engine is not None else ():
                if any(p is self for p in chain.plugins):
                    last = chain.plugins[-1] is self
                    break
            self._last = last
        return self._last

    def __repr__(self) -> str:
        return f"<File zones={list(self.names)}>"


def _labels(name_wire: bytes) -> Name:
    """Labels of an uncompressed wire name (the request key is lower-cased already)."""
    out = []
    i = 0
    while True:
        n = name_wire[i]
        if n == 0:
            break
        out.append(name_wire[i + 1 : i + 1 + n])
        i += n + 1
    return tuple(out)
