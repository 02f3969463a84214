"""The ``template`` handler: match a query against the stanzas, render, reply.

Per query (CoreDNS ``Handler.ServeDNS``):

1. the name is not under any template zone → next plugin;
2. stanzas in Corefile order: zone, class and type mismatches are skipped
   silently; the first regex that matches (unanchored, on the lower-cased FQDN)
   wins; no regex matching → the next stanza if ``fallthrough`` covers the name,
   otherwise SERVFAIL;
3. the first matching stanza answers: ``rcode SERVFAIL`` → bare SERVFAIL; else an
   authoritative reply with the rendered records (CNAMEs chased for A/AAAA
   through this server), plus an Extended DNS Error with ``ederror``;
4. no stanza answered → next plugin.

The hot path: a stanza whose records do not read ``.Remote``, ``.Message``,
``.Meta`` or ``.Question`` gives the same reply for the same question, so the
finished reply bytes are memoised per question as sent (and per the request flags
that change the bytes: opcode/RD/CD, EDNS payload size and DO). A repeat query then
costs a dict look-up and a :class:`Reply`; the server only patches the ID and
the question's case. Decisions that pass the query on or fail it are memoised too.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence
from typing import Any

from dnslib import EDNS0, DNSRecord, EDNSOption

from pycorefile import wire as w
from pycorefile.chain import Next, Plugin, Reply, Request, SetupContext
from pycorefile.corefile.model import Directive
from pycorefile.fall import longest_zone
from pycorefile.metrics import MetricsRegistry
from pycorefile.routing import scrub
from pycorefile.zonetext import CLASS_NAMES, TYPE_NAMES, ZoneTextError, parse_rr

from . import gotemplate
from .data import TemplateData
from .setup import RRTemplate, Rule, parse_rules

__all__ = ["MEMO_SIZE", "Template"]

#: How many finished replies (and pass/fail decisions) one handler memoises. An
#: answer entry keeps its bytes and its dnslib record (about 2 kB together).
MEMO_SIZE = 4096
#: How deep CNAME chasing may recurse through templates (CoreDNS has no limit and
#: overflows its stack on a template CNAME loop).
MAX_CHASE_DEPTH = 8

_ANY = 255
_CNAME = 5
_EDE = 15  # EDNS0 option code of Extended DNS Errors (RFC 8914)
_KEY_FLAGS = w.OPCODE_MASK | w.RD | w.CD

# Memo entry kinds.
_WRITTEN, _NEXT, _FAIL = 0, 1, 2

# Sub-requests in flight for CNAME chasing → their depth (shared by every handler,
# because a chase can cross server blocks).
_CHASING: dict[int, int] = {}


class _Failed(Exception):
    """A record could not be rendered or parsed: SERVFAIL with this error."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class Template(Plugin):
    """CoreDNS's ``template`` plugin: answers built from Go templates.

    All ``template`` lines of a server block form one handler (``setup_all``).
    """

    name = "template"

    def __init__(self, rules: Sequence[Rule], *, memo_size: int = MEMO_SIZE) -> None:
        self.rules = list(rules)
        zones: dict[str, None] = {}
        for rule in self.rules:
            zones.update(dict.fromkeys(rule.zones))
        self.zones: tuple[str, ...] = tuple(zones)
        self._static = [rule.static for rule in self.rules]
        self.memo_size = memo_size
        self._memo: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._servers: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.register_metrics(MetricsRegistry())

    # -- setup ------------------------------------------------------------------
    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        return cls.setup_all([directive], ctx)[0]

    @classmethod
    def setup_all(cls, directives: Sequence[Directive], ctx: SetupContext) -> list[Plugin]:
        return [cls(parse_rules(directives, ctx.zones))]

    def register_metrics(self, metrics: MetricsRegistry) -> None:
        labels = ["server", "zone", "view", "class", "type"]
        self.matches = metrics.counter(
            "coredns_template_matches_total", "Counter of template regex matches.", labels
        )
        self.template_failures = metrics.counter(
            "coredns_template_template_failures_total",
            "Counter of go template failures.",
            [*labels, "section", "template"],
        )
        self.rr_failures = metrics.counter(
            "coredns_template_rr_failures_total",
            "Counter of mis-templated RRs.",
            [*labels, "section", "template"],
        )
        self._memo.clear()  # memo entries hold metric children

    # -- serving ----------------------------------------------------------------
    async def serve(self, request: Request, next: Next) -> Reply:
        # The question exactly as sent (not lower-cased): dnslib compresses an
        # owner name against the question only when the case is the same, so the
        # reply bytes depend on the client's spelling.
        key = (
            request.wire[12 : request.qend],
            request.server,
            request.flags & _KEY_FLAGS,
            request.udp_size if request.edns else 0,
            request.do,
        )
        hit = self._memo.get(key)
        if hit is not None:
            kind = hit[0]
            if kind == _WRITTEN:
                # The memoised reply object itself: replies are never mutated after
                # they are returned, so one instance serves every identical query.
                hit[4].value += 1
                return hit[5]  # type: ignore[no-any-return]
            if kind == _NEXT:
                return await next(request)
            if hit[4] is not None:
                hit[4].inc()
            return Reply.fail(w.SERVFAIL)

        name = request.name
        if not longest_zone(self.zones, name):
            self._remember(key, (_NEXT,))
            return await next(request)
        qtype = request.qtype
        qclass = request.qclass
        for index, rule in enumerate(self.rules):
            zone = rule.zone_of(name)
            if not zone:
                continue
            if rule.qclass != _ANY and qclass != _ANY and qclass != rule.qclass:
                continue
            if rule.qtype != _ANY and qtype != _ANY and qtype != rule.qtype:
                continue
            for regex in rule.regexes:
                groups = regex.search(name)
                if groups is not None:
                    return await self._answer(
                        request,
                        rule,
                        self._static[index],
                        key,
                        zone,
                        regex.source,
                        groups,
                        regex.names,
                    )
            if rule.fall.through(name):
                continue
            # Zone matched, no regex did, no fallthrough: SERVFAIL (coredns#3034, #5180).
            self._remember(key, (_FAIL, 0, None, None, None))
            return Reply.fail(w.SERVFAIL)
        self._remember(key, (_NEXT,))
        return await next(request)

    async def _answer(
        self,
        request: Request,
        rule: Rule,
        static: bool,
        key: tuple[Any, ...],
        zone: str,
        regex: str,
        groups: list[str],
        names: list[str],
    ) -> Reply:
        qclass = request.qclass
        qtype = request.qtype
        class_name = CLASS_NAMES.get(rule.qclass if qclass == _ANY else qclass, "")
        type_name = TYPE_NAMES.get(rule.qtype if qtype == _ANY else qtype, "")
        labels = (request.server, zone, "", class_name, type_name)
        child = self.matches.labels(*labels)
        child.inc()

        if rule.rcode == w.SERVFAIL:
            self._remember(key, (_FAIL, 0, None, None, child))
            return Reply.fail(w.SERVFAIL)

        group = {str(i): g for i, g in enumerate(groups)}
        for i, g in enumerate(groups):
            if names[i]:
                group[names[i]] = g
        data = TemplateData(request, zone, regex, groups, group, class_name, type_name)

        msg = request.reply(aa=True, rcode=rule.rcode)
        chased = False
        try:
            for tmpl in rule.answer:
                rr = self._render(tmpl, data, labels)
                msg.rr.append(rr)
                if rr.rtype == _CNAME and qtype in (1, 28):
                    # Resolve the target through this server (CoreDNS: upstream.Lookup).
                    chased = True
                    up = await self._lookup(request, str(rr.rdata.label), qtype)
                    if up is not None:
                        msg.header.tc = up[0]
                        msg.rr.extend(up[1])
            for tmpl in rule.additional:
                msg.ar.append(self._render(tmpl, data, labels))
            for tmpl in rule.authority:
                msg.auth.append(self._render(tmpl, data, labels))
        except _Failed as failed:
            return Reply.fail(w.SERVFAIL, failed.error)

        if rule.ederror is not None:
            code, reason = rule.ederror
            option = EDNSOption(_EDE, struct.pack("!H", code) + reason.encode("utf-8"))
            msg.ar.append(EDNS0(udp_len=4096, flags="do", opts=[option]))
        msg.set_header_qa()

        # Finish the reply for this request here (EDNS as the client's, packed), so
        # the server only patches the ID, and a memoised copy serves repeats.
        # (scrub leaves the reply's OPT alone when the query had none, as CoreDNS's
        # SizeAndDo does: the Extended DNS Error reaches non-EDNS clients too.)
        out = scrub(request, msg)
        if rule.rcode > 0xF:
            # An extended rcode (BADSIG...) lives partly in the OPT record (RFC 6891
            # §6.1.3). Without one, CoreDNS cannot pack the reply and sends nothing.
            opts = [rr for rr in out.ar if rr.rtype == w.OPT]
            if not opts:
                return Reply(0, written=False, error=f"extended rcode {rule.rcode} without OPT")
            for rr in opts:
                rr.ttl = (rr.ttl & 0x00FFFFFF) | ((rule.rcode >> 4) & 0xFF) << 24
        try:
            data_wire = bytes(out.pack())
        except Exception as exc:  # a record dnslib cannot pack (e.g. a bad label)
            return Reply.fail(w.SERVFAIL, exc)
        reply = Reply(rule.rcode, message=out, wire=data_wire, plugin="template")
        if data_wire[12 : request.qend] != request.wire[12 : request.qend]:
            # The question did not pack back to the client's bytes (an unusual name):
            # let the server finish this reply the slow way, and do not memoise it.
            return reply
        reply.final = True
        if static and not chased:
            self._remember(key, (_WRITTEN, rule.rcode, data_wire, out, child, reply))
        return reply

    def _render(self, tmpl: RRTemplate, data: TemplateData, labels: tuple[str, ...]) -> Any:
        try:
            text = tmpl.render(data)
        except gotemplate.TemplateError as exc:
            self.template_failures.labels(*labels, tmpl.section, tmpl.label).inc()
            raise _Failed(exc) from None
        except Exception as exc:  # an evaluator bug must not escape as a crash
            self.template_failures.labels(*labels, tmpl.section, tmpl.label).inc()
            raise _Failed(exc) from None
        try:
            rr = parse_rr(text)
        except ZoneTextError as exc:
            self.rr_failures.labels(*labels, tmpl.section, tmpl.label).inc()
            raise _Failed(exc) from None
        if rr is None:
            self.rr_failures.labels(*labels, tmpl.section, tmpl.label).inc()
            raise _Failed(ValueError(f"dns: no resource record in {text!r}"))
        return rr

    async def _lookup(
        self, request: Request, target: str, qtype: int
    ) -> tuple[int, list[Any]] | None:
        """Resolve ``target`` through the server that received ``request``.

        Returns (TC bit, answer records) of what that server would send, or
        ``None`` when nothing was sent (or there is no server to ask).
        """
        engine = request.engine
        if engine is None:
            return None
        server = self._server(engine, request.server)
        if server is None:
            return None
        depth = _CHASING.get(id(request), 0)
        if depth >= MAX_CHASE_DEPTH:
            return None
        try:
            query = w.build_query(
                target,
                qtype,
                1,
                qid=request.id,
                rd=request.rd,
                cd=request.cd,
                edns_size=request.udp_size if request.edns else None,
                do=request.do,
            )
            sub = Request.from_wire(query, request.client, request.proto)
        except (ValueError, w.WireError):
            return None
        sub.meta = request.meta
        sub.local = request.local
        sub.udp_size = request.udp_size
        _CHASING[id(sub)] = depth + 1
        try:
            reply = await server.serve(sub)
        finally:
            _CHASING.pop(id(sub), None)
        if not reply.written:
            if reply.rcode == 0:
                return None  # dropped: nothing was sent
            return 0, []  # a bare error reply: no answers, TC clear
        msg: DNSRecord = reply.message
        return msg.header.tc, list(msg.rr)

    def _server(self, engine: Any, label: str) -> Any:
        server = self._servers.get(label)
        if server is None:
            for s in getattr(engine, "servers", ()):
                if s.label == label:
                    server = self._servers[label] = s
                    break
        return server

    def _remember(self, key: tuple[Any, ...], entry: tuple[Any, ...]) -> None:
        memo = self._memo
        if len(memo) >= self.memo_size:
            with self._lock:
                try:
                    while len(memo) >= self.memo_size:
                        memo.pop(next(iter(memo)))
                except (StopIteration, KeyError, RuntimeError):
                    pass
        memo[key] = entry

    def __repr__(self) -> str:
        return f"<Template {len(self.rules)} stanza(s) zones={list(self.zones)}>"
