"""The cache plugin, in process: every cache row of the spec (C1-C31) plus the
parts pycorefile adds (singleflight, the bytes-only hit path, metrics, eviction).

The next plugin is a scripted fake (:class:`Backend`) and time is a fake clock
(``Cache.clock``), so TTL, prefetch and serve_stale cases need no sleeping. Queries go
through a real :class:`~pycorefile.Resolver` (``handle``: bytes in, bytes out), the
way the server runs them.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from dnslib import EDNS0, QTYPE, RR, DNSHeader, DNSLabel, DNSQuestion, DNSRecord

import pycorefile
from pycorefile import wire as w
from pycorefile.chain import Plugin, Reply, Request, to_loop
from pycorefile.corefile.errors import CorefileError
from pycorefile.plugins.cache import Cache, CachedReply
from pycorefile.plugins.cache.classify import compute_ttl
from pycorefile.plugins.cache.handler import MISS
from pycorefile.registry import Registry
from pycorefile.resolver import Resolver
from pycorefile.routing import Engine

RRSIG_TAIL = (
    "12051 miek.nl. lAaEzB5teQLLKyDenatmyhca7blLRg9DoGNrhe3NReBZN5C5/pMQk8Jc "
    "u25hv2fW23/SLm5IC2zaDpp2Fzgm6Jf7e90/yLcwQPuE7JjS55WMF+HE LEh7Z6AEb+Iq4BWmNhUz6gPxD4d9eRMs7EAzk13o1NYi5/JhfL6IlaYy qkc="
)
SOA_TEXT = "example.org. {ttl} IN SOA sns.dns.icann.org. noc.dns.icann.org. 2016082540 7200 3600 1209600 3600"


# ---------------------------------------------------------------------------------------------
# The fake next plugin, the fake clock, the harness.


class Backend(Plugin):
    """The plugin after ``cache``: ``respond(request)`` returns a dnslib record, a
    :class:`Reply` or an awaitable of either; every request it sees is recorded."""

    name = "backend"

    def __init__(self) -> None:
        self.calls: list[Request] = []
        self.respond: Callable[[Request], Any] = lambda req: positive(req, 60)

    async def serve(self, request: Request, next: Any) -> Reply:
        self.calls.append(request)
        out = self.respond(request)
        if inspect.isawaitable(out):
            out = await out
        return out if isinstance(out, Reply) else Reply.of(out, self.name)


REGISTRY = Registry()
REGISTRY.load_entry_points()
REGISTRY.register(Backend)


class Clock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 10_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def set(self, offset: float) -> None:
        self.now = 10_000.0 + offset

    def advance(self, seconds: float) -> None:
        self.now += seconds


def rr(text: str) -> RR:
    return RR.fromZone(text)[0]


def _reply(req: Request, *, rcode: int = 0, ra: bool = True, ad: bool = False) -> DNSRecord:
    msg = req.reply(aa=False, rcode=rcode)
    msg.header.ra = int(ra)
    msg.header.ad = int(ad)
    return msg


def positive(req: Request, ttl: int, address: str = "127.0.0.53", **kw: Any) -> DNSRecord:
    msg = _reply(req, **kw)
    msg.add_answer(rr(f"{req.qname} {ttl} IN A {address}"))
    return msg


def nxdomain(req: Request, ttl: int, *, soa: bool = True) -> DNSRecord:
    msg = _reply(req, rcode=w.NXDOMAIN)
    if soa:
        msg.add_auth(rr(SOA_TEXT.format(ttl=ttl)))
    return msg


def servfail(req: Request, ttl: int = 60, *, soa: bool = True) -> DNSRecord:
    msg = _reply(req, rcode=w.SERVFAIL)
    if soa:
        msg.add_auth(rr(SOA_TEXT.format(ttl=ttl)))
    return msg


def answer(req: Request, *records: str, auth: tuple[str, ...] = (), rcode: int = 0) -> DNSRecord:
    msg = _reply(req, rcode=rcode)
    for text in records:
        msg.add_answer(rr(text))
    for text in auth:
        msg.add_auth(rr(text))
    return msg


class Harness:
    """One server block ``ZONE:0 { <block>; backend }`` behind an in-process Resolver."""

    def __init__(self, block: str = "cache", zone: str = ".") -> None:
        text = f"{zone}:0 {{\n{block}\nbackend\n}}\n"
        self.engine = Engine(pycorefile.loads(text, registry=REGISTRY), registry=REGISTRY)
        self.resolver = Resolver(self.engine)
        plugins = self.engine.chains[0].plugins
        self.cache: Cache = next(p for p in plugins if isinstance(p, Cache))
        self.backend: Backend = next(p for p in plugins if isinstance(p, Backend))
        self.clock = Clock()
        self.cache.clock = self.clock
        self._qid = 0

    @property
    def calls(self) -> int:
        return len(self.backend.calls)

    def query(
        self,
        name: str,
        qtype: str | int = "A",
        *,
        do: bool = False,
        cd: bool = False,
        ad: bool = False,
        aa: bool = False,
        edns: int | None = None,
        qid: int | None = None,
    ) -> bytes:
        if qid is None:
            self._qid = (self._qid + 1) & 0xFFFF
            qid = self._qid
        size = edns if edns is not None else (1232 if do else None)
        data = w.build_query(name, w.qtype_code(qtype), qid=qid, edns_size=size, do=do, cd=cd)
        extra = (w.AD if ad else 0) | (w.AA if aa else 0)
        if extra:
            flags = w.U16.unpack_from(data, 2)[0] | extra
            data = data[:2] + w.U16.pack(flags) + data[4:]
        return data

    def ask(self, name: str, qtype: str | int = "A", *, proto: str = "udp", **kw: Any) -> DNSRecord:
        out = self.resolver.handle(self.query(name, qtype, **kw), proto=proto)
        return DNSRecord.parse(out)

    def reply(self, name: str, qtype: str | int = "A", **kw: Any) -> tuple[Reply, bytes]:
        """The chain's :class:`Reply` and the bytes the server sends for it."""
        from pycorefile.routing import finish

        req = Request.from_wire(self.query(name, qtype, **kw))
        server = self.resolver.server
        reply = self.resolver._drive(server.serve(req))
        return reply, finish(req, reply)

    def metric(self, name: str, **labels: str) -> float:
        return self.engine.metrics.sample(name, labels or None)

    def close(self) -> None:
        self.resolver.close()


@pytest.fixture
def make() -> Any:
    made: list[Harness] = []

    def factory(block: str = "cache", zone: str = ".") -> Harness:
        h = Harness(block, zone)
        made.append(h)
        return h

    yield factory
    for h in made:
        h.close()


def ttl_of(msg: DNSRecord) -> int:
    return (msg.rr or msg.auth)[0].ttl


def rdata(msg: DNSRecord) -> str:
    return str(msg.rr[0].rdata)


# ---------------------------------------------------------------------------------------------
# C1-C17: what is cached, where, and with which TTL.


def test_c1_ad_and_ra_kept_ttl_capped(make: Any) -> None:
    h = make()
    h.backend.respond = lambda req: answer(
        req, "miek.nl. 3601 IN MX 1 aspmx.l.google.com.", "miek.nl. 3601 IN MX 10 aspmx2.googlemail.com."
    )
    h.backend.respond = _with_flags(h.backend.respond, ad=True, ra=True)
    first = h.ask("miek.nl.", "MX", ad=True)
    assert [r.ttl for r in first.rr] == [3600, 3600]
    hit = h.ask("miek.nl.", "MX", ad=True)
    assert h.calls == 1
    assert hit.header.ad == 1 and hit.header.ra == 1 and hit.header.aa == 1
    assert [r.ttl for r in hit.rr] == [3600, 3600]
    assert [str(r.rdata) for r in hit.rr] == ["1 aspmx.l.google.com.", "10 aspmx2.googlemail.com."]
    # A client that asked for neither DNSSEC nor AD gets AD cleared, from the same entry.
    plain = h.ask("miek.nl.", "MX")
    assert h.calls == 1 and plain.header.ad == 0


def _with_flags(fn: Callable[[Request], DNSRecord], **flags: bool) -> Callable[[Request], DNSRecord]:
    def respond(req: Request) -> DNSRecord:
        msg = fn(req)
        for k, v in flags.items():
            setattr(msg.header, k, int(v))
        return msg

    return respond


def test_c2_key_is_case_insensitive_and_question_echoed(make: Any) -> None:
    h = make()
    h.backend.respond = lambda req: answer(req, "miek.nl. 3601 IN MX 1 aspmx.l.google.com.")
    h.ask("mIEK.nL.", "MX")
    hit = h.ask("miek.nl.", "MX")
    assert h.calls == 1
    assert str(hit.q.qname) == "miek.nl."
    again = h.ask("MIEK.NL.", "MX")
    assert h.calls == 1 and str(again.q.qname) == "MIEK.NL."


def test_c3_truncated_reply_not_cached(make: Any) -> None:
    h = make()
    h.backend.respond = _with_flags(
        lambda req: answer(req, "miek.nl. 1800 IN MX 1 aspmx.l.google.com."), tc=True
    )
    h.ask("miek.nl.", "MX")
    h.ask("miek.nl.", "MX")
    assert h.calls == 2 and len(h.cache) == 0


def test_c4_nxdomain_with_soa_cached_as_denial(make: Any) -> None:
    h = make()
    h.backend.respond = lambda req: nxdomain(req, 3600)
    first = h.ask("example.org.")
    assert first.header.rcode == w.NXDOMAIN and ttl_of(first) == 1800  # denial max TTL
    hit = h.ask("example.org.")
    assert h.calls == 1
    assert hit.header.rcode == w.NXDOMAIN and hit.header.aa == 1 and hit.header.ra == 1
    assert hit.auth[0].rtype == QTYPE.SOA and hit.auth[0].ttl == 1800
    assert len(h.cache.denial) == 1 and len(h.cache.success) == 0
    assert h.metric("coredns_cache_hits_total", type="denial") == 1


def test_c5_nxdomain_without_soa_not_cached(make: Any) -> None:
    h = make()
    h.backend.respond = lambda req: nxdomain(req, 0, soa=False)
    h.ask("1.1.168.192.in-addr.arpa.", "PTR")
    h.ask("1.1.168.192.in-addr.arpa.", "PTR")
    assert h.calls == 2 and len(h.cache) == 0


@pytest.mark.parametrize("rcode", [w.SERVFAIL, w.NOTIMP])
def test_c6_servfail_and_notimp_cached_for_5s(make: Any, rcode: int) -> None:
    h = make()
    h.backend.respond = lambda req: _reply(req, rcode=rcode)
    assert h.ask("example.org.").header.rcode == rcode
    hit = h.ask("example.org.")
    assert h.calls == 1 and hit.header.rcode == rcode and hit.header.aa == 1
    h.clock.advance(4.9)
    h.ask("example.org.")
    assert h.calls == 1
    h.clock.advance(0.2)
    h.ask("example.org.")
    assert h.calls == 2


def _rrsig(owner: str, ttl: int, expiration: str, inception: str) -> str:
    return f"{owner} {ttl} IN RRSIG MX 8 2 1800 {expiration} {inception} {RRSIG_TAIL}"


def _signed_mx(req: Request, expiration: str, inception: str) -> DNSRecord:
    msg = answer(
        req,
        f"{req.qname} 3600 IN MX 1 aspmx.l.google.com.",
        _rrsig(req.qname, 1800, expiration, inception),
    )
    msg.add_ar(EDNS0(udp_len=4096, flags="do"))
    return msg


def test_c7_expired_rrsig_with_do_not_cached(make: Any) -> None:
    h = make()
    h.backend.respond = lambda req: _signed_mx(req, "20160521031301", "20160421031301")
    h.ask("miek.nl.", "MX", do=True)
    h.ask("miek.nl.", "MX", do=True)
    assert h.calls == 2 and len(h.cache) == 0


def test_c8_valid_rrsig_with_do_cached(make: Any) -> None:
    fmt = "%Y%m%d%H%M%S"
    now = time.time()
    inception = time.strftime(fmt, time.gmtime(now - 86400))
    expiration = time.strftime(fmt, time.gmtime(now + 86400))
    h = make()
    h.backend.respond = lambda req: _signed_mx(req, expiration, inception)
    h.ask("example.org.", "MX", do=True)
    hit = h.ask("example.org.", "MX", do=True)
    assert h.calls == 1
    assert [QTYPE[r.rtype] for r in hit.rr] == ["MX", "RRSIG"]
    # The reply's OPT is the client's: DO echoed, the client's size.
    opt = [r for r in hit.ar if r.rtype == QTYPE.OPT]
    assert len(opt) == 1 and opt[0].edns_do and opt[0].edns_len == 1232


def test_c9_cd_bit_is_its_own_key(make: Any) -> None:
    h = make()
    h.backend.respond = lambda req: _with_flags(lambda r: positive(r, 3600, "127.0.0.1"), cd=True)(req)
    h.ask("dnssec-failed.org.", cd=True)
    hit = h.ask("dnssec-failed.org.", cd=True)
    assert h.calls == 1 and hit.header.cd == 1
    h.ask("dnssec-failed.org.")
    assert h.calls == 2


def test_c10_denial_disabled_for_a_zone(make: Any) -> None:
    h = make("cache {\n disable denial neg-disabled.example.org\n}")
    h.backend.respond = lambda req: nxdomain(req, 3600)
    h.ask("neg-disabled.example.org.")
    h.ask("neg-disabled.example.org.")
    assert h.calls == 2 and len(h.cache) == 0
    h.backend.respond = lambda req: positive(req, 3600)
    h.ask("neg-disabled.example.org.")
    h.ask("neg-disabled.example.org.")
    assert h.calls == 3 and len(h.cache.success) == 1


def test_c11_success_disabled_for_a_zone(make: Any) -> None:
    h = make("cache {\n disable success pos-disabled.example.org\n}")
    h.ask("pos-disabled.example.org.")
    h.ask("pos-disabled.example.org.")
    assert h.calls == 2 and len(h.cache) == 0
    h.backend.respond = lambda req: nxdomain(req, 3600)
    h.ask("pos-disabled.example.org.", "MX")
    h.ask("pos-disabled.example.org.", "MX")
    assert h.calls == 3 and len(h.cache.denial) == 1


def test_disable_without_zones_means_everywhere(make: Any) -> None:
    h = make("cache {\n disable denial\n}")
    h.backend.respond = lambda req: nxdomain(req, 3600)
    h.ask("a.example.")
    h.ask("a.example.")
    assert h.calls == 2


NOT_ANSWERING = {
    "dangling": ("A", ["alias.example.org. 3600 IN CNAME target1.example.net.",
                       "target1.example.net. 3600 IN CNAME target2.example.net."]),
    "ends in AAAA for A": ("A", ["alias.example.org. 3600 IN CNAME target.example.net.",
                                 "target.example.net. 3600 IN AAAA ::1"]),
    "MX chain without MX": ("MX", ["alias.example.org. 3600 IN CNAME target.example.net."]),
    "unrelated A off the chain": ("A", ["alias.example.org. 3600 IN CNAME target.example.net.",
                                        "unrelated.example.net. 3600 IN A 192.0.2.1"]),
    "two targets": ("A", ["alias.example.org. 3600 IN CNAME target1.example.net.",
                          "alias.example.org. 3600 IN CNAME target2.example.net.",
                          "target1.example.net. 3600 IN A 192.0.2.1"]),
    "two targets reversed": ("A", ["alias.example.org. 3600 IN CNAME target2.example.net.",
                                   "alias.example.org. 3600 IN CNAME target1.example.net.",
                                   "target1.example.net. 3600 IN A 192.0.2.1"]),
    "loop": ("A", ["alias.example.org. 3600 IN CNAME target.example.net.",
                   "target.example.net. 3600 IN CNAME alias.example.org.",
                   "alias.example.org. 3600 IN A 192.0.2.1"]),
    "wrong class": ("A", ["alias.example.org. 60 CH A 192.0.2.20"]),
}


@pytest.mark.parametrize("case", sorted(NOT_ANSWERING))
def test_c12_cname_chain_not_answering_without_soa_not_cached(make: Any, case: str) -> None:
    qtype, records = NOT_ANSWERING[case]
    h = make()
    h.backend.respond = lambda req: answer(req, *records)
    h.ask("alias.example.org.", qtype)
    h.ask("alias.example.org.", qtype)
    assert h.calls == 2 and len(h.cache) == 0


ANSWERING = {
    "MX chain ending in MX": ("MX", ["alias.example.org. 3600 IN CNAME target.example.net.",
                                     "target.example.net. 3600 IN MX 10 mail.example.net."]),
    "A chain": ("A", ["alias.example.org. 3600 IN CNAME target.example.net.",
                      "target.example.net. 3600 IN A 127.0.0.1"]),
    "out of order": ("A", ["target.example.net. 3600 IN A 127.0.0.1",
                           "alias.example.org. 3600 IN CNAME target.example.net."]),
    "duplicate CNAME": ("A", ["alias.example.org. 3600 IN CNAME target.example.net.",
                              "alias.example.org. 3600 IN CNAME target.example.net.",
                              "target.example.net. 3600 IN A 127.0.0.1"]),
    "lone CNAME for ANY": ("ANY", ["alias.example.org. 3600 IN CNAME target.example.net."]),
    "lone CNAME for CNAME": ("CNAME", ["alias.example.org. 3600 IN CNAME target.example.net."]),
    "case differs": ("A", ["ALIAS.example.org. 3600 IN CNAME Target.Example.NET.",
                           "target.example.net. 3600 IN A 127.0.0.1"]),
}


@pytest.mark.parametrize("case", sorted(ANSWERING))
def test_c13_cname_chain_answering_cached(make: Any, case: str) -> None:
    qtype, records = ANSWERING[case]
    h = make()
    h.backend.respond = lambda req: answer(req, *records)
    first = h.ask("alias.example.org.", qtype)
    hit = h.ask("alias.example.org.", qtype)
    assert h.calls == 1 and len(h.cache.success) == 1
    assert [str(r.rdata) for r in hit.rr] == [str(r.rdata) for r in first.rr]


def test_c14_cname_chain_not_answering_with_soa_is_nodata(make: Any) -> None:
    h = make()
    h.backend.respond = lambda req: answer(
        req,
        "alias.example.org. 300 IN CNAME missing.example.net.",
        auth=("example.org. 300 IN SOA ns.example.org. hostmaster.example.org. 1 7200 3600 1209600 300",),
    )
    h.ask("alias.example.org.")
    hit = h.ask("alias.example.org.")
    assert h.calls == 1
    assert len(h.cache.denial) == 1 and len(h.cache.success) == 0
    assert hit.header.rcode == 0 and hit.rr[0].ttl == 300
    assert h.metric("coredns_cache_hits_total", type="denial") == 1


def test_c15_zero_ttl_with_zero_min_is_not_cached(make: Any) -> None:
    h = make("cache {\n success 10000 3600 0\n denial 10000 1800 0\n}")
    h.backend.respond = lambda req: positive(req, 0)
    assert ttl_of(h.ask("example.org.")) == 0
    h.ask("example.org.")
    assert h.calls == 2 and len(h.cache) == 0


def test_c16_configured_max_above_default(make: Any) -> None:
    h = make("cache {\n success 10000 7200 0\n}")
    h.backend.respond = lambda req: positive(req, 86400)
    assert ttl_of(h.ask("example.org.")) == 7200
    assert ttl_of(h.ask("example.org.")) == 7200 and h.calls == 1


def test_c17_servfail_zero_disables_servfail_caching(make: Any) -> None:
    h = make("cache {\n servfail 0\n}")
    h.backend.respond = lambda req: servfail(req)
    h.ask("example.org.")
    h.ask("example.org.")
    assert h.calls == 2 and len(h.cache) == 0


def test_unwritten_failure_is_not_cached(make: Any) -> None:
    # forward's own SERVFAIL (nothing written): the server answers it, cache never sees it.
    h = make()
    h.backend.respond = lambda req: Reply.fail(w.SERVFAIL, "no upstream")
    assert h.ask("example.org.").header.rcode == w.SERVFAIL
    h.ask("example.org.")
    assert h.calls == 2 and len(h.cache) == 0


def test_formerr_and_refused_are_not_cached(make: Any) -> None:
    h = make()
    h.backend.respond = lambda req: _reply(req, rcode=w.FORMERR)
    h.ask("example.org.")
    h.backend.respond = lambda req: _reply(req, rcode=w.REFUSED)
    h.ask("example.org.")
    h.ask("example.org.")
    assert h.calls == 3 and len(h.cache) == 0


def test_empty_noerror_cached_5s_delegation_too(make: Any) -> None:
    h = make()
    h.backend.respond = lambda req: _reply(req)
    h.ask("empty.example.")
    h.ask("empty.example.")
    assert h.calls == 1
    h.clock.advance(5)
    h.ask("empty.example.")
    assert h.calls == 2
    h.backend.respond = lambda req: answer(req, auth=("sub.example. 3600 IN NS ns.sub.example.",))
    h.ask("www.sub.example.")
    hit = h.ask("www.sub.example.")
    assert h.calls == 3 and hit.auth[0].ttl == 5  # delegations: the 5 s default


def test_spoofed_question_not_cached_and_counted(make: Any) -> None:
    h = make()

    def spoof(req: Request) -> DNSRecord:
        # A reply that answers its own question, which is not the one asked.
        msg = DNSRecord(DNSHeader(id=req.id, qr=1, ra=1), q=DNSQuestion("example.net.", 1))
        msg.add_answer(rr("example.net. 300 IN A 127.0.0.53"))
        return msg

    h.backend.respond = spoof
    h.ask("example.org.")
    h.ask("example.org.")
    assert h.calls == 2 and len(h.cache) == 0
    assert h.metric("coredns_cache_drops_total") == 2


def test_reply_without_qr_not_cached(make: Any) -> None:
    h = make()
    h.backend.respond = _with_flags(lambda req: positive(req, 300), qr=False)
    h.ask("example.net.")
    h.ask("example.net.")
    assert h.calls == 2 and len(h.cache) == 0


# ---------------------------------------------------------------------------------------------
# C18-C23, C27: serve_stale.


def test_c18_serve_stale_window(make: Any) -> None:
    h = make("cache {\n serve_stale 1h\n}")
    h.ask("cached.org.")
    # Upstream broken from now on: what the client gets tells where it came from.
    h.backend.respond = lambda req: _reply(req, rcode=w.REFUSED)
    for minutes, from_cache in ((30, True), (60, True), (70, False)):
        h.clock.set(minutes * 60)
        msg = h.ask("cached.org.")
        assert (msg.header.rcode == w.NOERROR) == from_cache, minutes
        if from_cache:
            assert ttl_of(msg) == 0
    assert h.ask("notcached.org.").header.rcode == w.REFUSED


STALE_TTL_CASES = {
    "legacy default": ("serve_stale 1h immediate", w.NOERROR, 120, 0),
    "immediate positive": ("serve_stale 1h immediate 30s", w.NOERROR, 120, 30),
    "exact expiry": ("serve_stale 1h immediate 30s", w.NOERROR, 60, 30),
    "immediate negative": ("serve_stale 1h immediate 25s", w.NXDOMAIN, 120, 25),
    "verify failure": ("serve_stale 1h verify 0 45s", w.NOERROR, 120, 45),
    "stale ttl overrides keepttl": ("serve_stale 1h immediate 17s\nkeepttl", w.NOERROR, 120, 17),
    "fresh response is unchanged": ("serve_stale 1h immediate 30s", w.NOERROR, 10, 50),
}


@pytest.mark.parametrize("case", sorted(STALE_TTL_CASES))
def test_c19_stale_response_ttl(make: Any, case: str) -> None:
    config, prime, advance, expected = STALE_TTL_CASES[case]
    h = make(f"cache {{\n{config}\n}}")
    h.backend.respond = (lambda req: positive(req, 60)) if prime == 0 else (lambda req: nxdomain(req, 60))
    h.ask("cached.org.")
    h.clock.advance(advance)
    h.backend.respond = lambda req: servfail(req)
    msg = h.ask("cached.org.")
    assert msg.header.rcode == prime
    assert ttl_of(msg) == expected


def test_c20_verify_mode(make: Any) -> None:
    h = make("cache {\n serve_stale 1h verify\n}")
    h.backend.respond = lambda req: positive(req, 120)
    h.ask("cached.org.")
    steps = [
        (1, lambda req: positive(req, 200), w.NOERROR, 60),   # fresh: from the cache
        (3, lambda req: positive(req, 200), w.NOERROR, 200),  # stale: upstream answers
        (7, lambda req: servfail(req, 200), w.NOERROR, 0),    # stale, upstream fails
        (8, lambda req: nxdomain(req, 150), w.NXDOMAIN, 150),  # upstream says NXDOMAIN
    ]
    for minutes, backend, rcode, ttl in steps:
        h.clock.set(minutes * 60)
        h.backend.respond = backend
        msg = h.ask("cached.org.")
        assert (msg.header.rcode, ttl_of(msg)) == (rcode, ttl), minutes


def test_c21_verify_timeout_serves_stale_and_refreshes_in_background(make: Any) -> None:
    h = make("cache {\n serve_stale 1h verify 50ms 30s\n}")
    h.backend.respond = lambda req: positive(req, 120)
    h.ask("cached.org.")
    h.clock.advance(180)
    done = threading.Event()

    async def slow(req: Request) -> DNSRecord:
        await to_loop(req)
        await asyncio.sleep(0.5)
        done.set()
        return positive(req, 60, "127.0.0.54")

    h.backend.respond = slow
    start = time.monotonic()
    msg = h.ask("cached.org.")
    elapsed = time.monotonic() - start
    assert elapsed < 0.4
    assert rdata(msg) == "127.0.0.53" and ttl_of(msg) == 30
    assert done.wait(5)
    _wait_until(lambda: h.cache.entry("cached.org.").ttl == 60)
    fresh = h.ask("cached.org.")
    assert rdata(fresh) == "127.0.0.54" and ttl_of(fresh) == 60 and h.calls == 2


def _wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_c22_verify_timeout_fast_upstream_gets_fresh_answer(make: Any) -> None:
    h = make("cache {\n serve_stale 1h verify 500ms\n}")
    h.backend.respond = lambda req: positive(req, 120)
    h.ask("cached.org.")
    h.clock.advance(180)
    h.backend.respond = lambda req: positive(req, 200)
    msg = h.ask("cached.org.")
    assert ttl_of(msg) == 200 and msg.header.aa == 1


def test_c23_stale_denial_replaced_by_background_refresh(make: Any) -> None:
    h = make("cache {\n serve_stale 10m\n}")
    h.backend.respond = lambda req: nxdomain(req, 60)
    assert h.ask("cached.org.").header.rcode == w.NXDOMAIN
    h.backend.respond = lambda req: Reply.fail(255, "tried upstream")
    assert h.ask("cached.org.").header.rcode == w.NXDOMAIN and h.calls == 1
    h.clock.set(5 * 60)
    h.backend.respond = lambda req: positive(req, 303)
    stale = h.ask("cached.org.")
    assert stale.header.rcode == w.NXDOMAIN and h.calls == 2  # served stale, refreshed behind
    assert len(h.cache.denial) == 0 and len(h.cache.success) == 1
    h.backend.respond = lambda req: Reply.fail(255, "tried upstream")
    fresh = h.ask("cached.org.")
    assert fresh.header.rcode == 0 and rdata(fresh) == "127.0.0.53" and h.calls == 2
    assert h.metric("coredns_cache_served_stale_total") == 1


def test_c27_servfail_does_not_shadow_positive(make: Any) -> None:
    h = make("cache {\n serve_stale\n}")
    h.backend.respond = lambda req: positive(req, 120)
    h.ask("example.org.")
    # A SERVFAIL lands in the denial cache for the same key (as a refresh could).
    req = Request.from_wire(h.query("example.org."))
    req.server, req.engine = h.resolver.server.label, h.engine
    h.cache._absorb(req, req.key, Reply.of(servfail(req, 5)), MISS)
    assert len(h.cache.denial) == 1
    h.clock.advance(30)
    msg = h.ask("example.org.")
    assert msg.header.rcode == 0 and ttl_of(msg) == 90 and h.calls == 1
    assert h.metric("coredns_cache_hits_total", type="success") == 1
    assert h.metric("coredns_cache_hits_total", type="denial") == 0


def test_stale_refresh_failure_keeps_stale_and_recheck_suppresses(make: Any) -> None:
    h = make("cache {\n success 10000 3600 0\n serve_stale 1h immediate 30s 30s\n}")
    h.backend.respond = lambda req: positive(req, 1)
    h.ask("cached.org.")
    h.clock.advance(2)
    h.backend.respond = lambda req: servfail(req, 30)
    msg = h.ask("cached.org.")
    assert (rdata(msg), ttl_of(msg), h.calls) == ("127.0.0.53", 30, 2)
    msg = h.ask("cached.org.")
    assert (rdata(msg), h.calls) == ("127.0.0.53", 2)  # within FAILURE_RECHECK: no refresh
    h.clock.advance(31)
    h.ask("cached.org.")
    assert h.calls == 3
    assert h.cache.entry("cached.org.").rcode == 0  # the failed refresh replaced nothing


@pytest.mark.parametrize("invalid", ["truncated", "mismatched question"])
def test_invalid_refresh_never_replaces_stale(make: Any, invalid: str) -> None:
    h = make("cache {\n success 10000 3600 0\n serve_stale 1h immediate 30s 30s\n}")
    h.backend.respond = lambda req: positive(req, 1)
    h.ask("cached.org.")
    h.clock.advance(2)

    def bad(req: Request) -> DNSRecord:
        if invalid == "truncated":
            return _with_flags(lambda r: positive(r, 60, "192.0.2.20"), tc=True)(req)
        msg = DNSRecord(DNSHeader(id=req.id, qr=1), q=DNSQuestion("other.org.", 1))
        msg.add_answer(rr("other.org. 60 IN A 192.0.2.20"))
        return msg

    h.backend.respond = bad
    assert rdata(h.ask("cached.org.")) == "127.0.0.53"
    assert rdata(h.ask("cached.org.")) == "127.0.0.53"
    assert h.calls == 2


def test_verify_failure_recheck(make: Any) -> None:
    h = make("cache {\n success 10000 3600 0\n serve_stale 1h verify 0 0 30s\n}")
    h.backend.respond = lambda req: positive(req, 1)
    h.ask("cached.org.")
    h.clock.advance(2)
    h.backend.respond = lambda req: servfail(req, 30)
    h.ask("cached.org.")
    h.ask("cached.org.")
    assert h.calls == 2
    h.clock.advance(31)
    h.ask("cached.org.")
    assert h.calls == 3


def test_verify_without_recheck_asks_every_time(make: Any) -> None:
    h = make("cache {\n success 10000 3600 0\n serve_stale 1h verify\n}")
    h.backend.respond = lambda req: positive(req, 1)
    h.ask("cached.org.")
    h.clock.advance(2)
    h.backend.respond = lambda req: servfail(req, 30)
    h.ask("cached.org.")
    h.ask("cached.org.")
    assert h.calls == 3


def test_prefer_positive_beats_fresh_denial(make: Any) -> None:
    for policy, expected in (("", w.NXDOMAIN), ("serve_stale_policy prefer_positive", w.NOERROR)):
        h = make(f"cache {{\n serve_stale\n {policy}\n}}")
        h.backend.respond = lambda req: positive(req, 60, "192.0.2.1")
        h.ask("example.org.")
        h.clock.advance(120)
        # The stale answer is served while the refresh learns the name is gone.
        h.backend.respond = lambda req: nxdomain(req, 300)
        assert h.ask("example.org.").header.rcode == w.NOERROR
        assert len(h.cache.denial) == 1
        assert h.ask("example.org.").header.rcode == expected, policy


def test_prefer_positive_keeps_last_known_good(make: Any) -> None:
    h = make("cache {\n serve_stale\n serve_stale_policy prefer_positive\n}")
    h.backend.respond = lambda req: positive(req, 60, "192.0.2.10")
    h.ask("cached.org.")
    h.clock.advance(120)
    refreshes = [
        lambda req: _reply(req),
        lambda req: answer(req, auth=("example.org. 60 IN NS ns.example.org.",)),
    ]
    for refresh in refreshes:
        h.backend.respond = refresh
        h.ask("cached.org.")
        msg = h.ask("cached.org.")
        assert rdata(msg) == "192.0.2.10"


@pytest.mark.parametrize("backend", ["NXDOMAIN", "NODATA", "SERVFAIL", "NOTIMP"])
def test_prefer_positive_verify_keeps_stale_on_non_answers(make: Any, backend: str) -> None:
    h = make("cache {\n serve_stale 1h verify\n serve_stale_policy prefer_positive\n}")
    h.ask("cached.org.")
    h.clock.advance(120)
    h.backend.respond = {
        "NXDOMAIN": lambda req: nxdomain(req, 300),
        "NODATA": lambda req: answer(
            req, auth=("example.org. 300 IN SOA ns.example.org. h.example.org. 1 7200 3600 1209600 300",)
        ),
        "SERVFAIL": lambda req: servfail(req, 300),
        "NOTIMP": lambda req: _reply(req, rcode=w.NOTIMP),
    }[backend]
    msg = h.ask("cached.org.")
    assert msg.header.rcode == 0 and ttl_of(msg) == 0
    assert len(h.cache.denial) == 1


# ---------------------------------------------------------------------------------------------
# C24-C26, C28: TTL arithmetic, keepttl, keys, prefetch.


@pytest.mark.parametrize(
    "msg_ttl, lo, hi, expected",
    [(1800, 300, 3600, 1800), (299, 300, 3600, 300), (299, 0, 3600, 299), (3601, 300, 3600, 3600)],
)
def test_c24_compute_ttl(msg_ttl: int, lo: int, hi: int, expected: int) -> None:
    assert compute_ttl(msg_ttl, lo, hi) == expected


def test_c25_keepttl(make: Any) -> None:
    h = make("cache {\n keepttl\n}")
    assert ttl_of(h.ask("cached.org.")) == 60
    for seconds in (0, 30):
        h.clock.set(seconds)
        assert ttl_of(h.ask("cached.org.")) == 60
    h.clock.set(60)
    assert ttl_of(h.ask("uncached.org.")) == 60
    assert h.calls == 2


def test_ttl_counts_down(make: Any) -> None:
    h = make()
    h.ask("cached.org.")
    for seconds, ttl in ((0.5, 60), (1, 59), (59.9, 1)):
        h.clock.set(seconds)
        assert ttl_of(h.ask("cached.org.")) == ttl
    h.clock.set(60)
    h.ask("cached.org.")
    assert h.calls == 2


SEPARATION = {
    "qtype": ({}, {"qtype": "AAAA"}),
    "DO": ({}, {"do": True}),
    "CD": ({}, {"cd": True}),
    "DO and CD": ({}, {"do": True, "cd": True}),
    "CD, DO and qtype": ({}, {"do": True, "cd": True, "qtype": "MX"}),
}


@pytest.mark.parametrize("case", sorted(SEPARATION))
def test_c26_key_separation(make: Any, case: str) -> None:
    first, second = SEPARATION[case]
    h = make()
    h.ask("example.org.", **first)
    h.ask("example.org.", **second)
    assert h.calls == 2


def test_c26_aa_bit_is_not_part_of_the_key(make: Any) -> None:
    h = make()
    h.ask("example.org.")
    h.ask("example.org.", aa=True)
    assert h.calls == 1


def _counting(ttl: int) -> Callable[[Request], DNSRecord]:
    served = [0]

    def respond(req: Request) -> DNSRecord:
        served[0] += 1
        return positive(req, ttl, f"127.0.0.{served[0]}")

    return respond


PREFETCH_CASES = {
    "hits.reset.example.org.": (80, 1, [
        (0, "127.0.0.1", 80, {}, True),
        (73, "127.0.0.1", 7, {}, True),   # 7 <= ceil(10% of 80): prefetch
        (80, "127.0.0.2", 73, {}, False),
    ]),
    "short.ttl.example.org.": (5, 1, [
        (0, "127.0.0.1", 5, {}, True),
        (1, "127.0.0.1", 4, {}, False),
        (4, "127.0.0.1", 1, {}, True),
        (5, "127.0.0.2", 4, {}, False),
    ]),
    "no.prefetch.example.org.": (30, 0, [
        (0, "127.0.0.1", 30, {}, True),
        (15, "127.0.0.1", 15, {}, False),
        (29, "127.0.0.1", 1, {}, False),
        (30, "127.0.0.2", 30, {}, True),
    ]),
    "do.prefetch.example.org.": (80, 1, [
        (0, "127.0.0.1", 80, {"do": True}, True),
        (73, "127.0.0.1", 7, {"do": True}, True),
        (80, "127.0.0.2", 73, {"do": True}, False),
        (80, "127.0.0.3", 80, {}, True),  # the DO prefetch did not fill the plain key
    ]),
    "cd.prefetch.example.org.": (80, 1, [
        (0, "127.0.0.1", 80, {"cd": True}, True),
        (73, "127.0.0.1", 7, {"cd": True}, True),
        (80, "127.0.0.2", 73, {"cd": True}, False),
        (80, "127.0.0.3", 80, {}, True),
    ]),
}


@pytest.mark.parametrize("qname", sorted(PREFETCH_CASES))
def test_c28_prefetch(make: Any, qname: str) -> None:
    ttl, amount, steps = PREFETCH_CASES[qname]
    h = make(f"cache {{\n prefetch {amount}\n}}" if amount else "cache")
    h.backend.respond = _counting(ttl)
    for after, address, shown, flags, fetch in steps:
        h.clock.set(after)
        before = h.calls
        msg = h.ask(qname, edns=512, **flags)
        assert (h.calls > before) == fetch, after
        assert (rdata(msg), ttl_of(msg)) == (address, shown), after
    if amount:
        assert h.metric("coredns_cache_prefetch_total") >= 1
        # The prefetch pretended to be TCP, so its reply cannot come back truncated.
        assert [r.proto for r in h.backend.calls][1] == "tcp"


def test_prefetch_window_restarts_count(make: Any) -> None:
    h = make("cache {\n prefetch 2 10s 50%\n}")
    h.backend.respond = _counting(100)
    h.ask("pop.example.")
    h.clock.set(40)
    h.ask("pop.example.")  # hits = 1
    h.clock.set(55)
    h.ask("pop.example.")  # 15 s later than the previous hit: count restarts at 1
    assert h.calls == 1
    h.clock.set(60)
    h.ask("pop.example.")  # hits = 2, TTL 40 <= 50: prefetch
    assert h.calls == 2


def test_prefetch_dedup_one_refresh_in_flight(make: Any) -> None:
    h = make("cache {\n prefetch 1 1m 50%\n}")
    release = threading.Event()

    async def respond(req: Request) -> DNSRecord:
        await to_loop(req)  # needs the resolver's loop, as forward would
        if len(h.backend.calls) > 1:
            await asyncio.get_running_loop().run_in_executor(None, release.wait, 5)
        return positive(req, 100, f"127.0.0.{len(h.backend.calls)}")

    h.backend.respond = respond
    h.ask("dedup.example.org.")
    h.clock.set(70)
    for _ in range(200):
        assert rdata(h.ask("dedup.example.org.")) == "127.0.0.1"
    release.set()
    _wait_until(lambda: h.cache.entry("dedup.example.org.").stored == h.clock.now)
    assert h.calls == 2


# ---------------------------------------------------------------------------------------------
# C29-C30: TTL caps and EDNS on the wire (the forward + upstream version is in
# tests/integration/test_cache.py).


def test_c29_cache_10_caps_and_floors(make: Any) -> None:
    h = make("cache 10")
    h.backend.respond = lambda req: positive(req, 3600 if req.name == "example.org." else 1)
    for _ in range(2):
        assert ttl_of(h.ask("example.org.")) == 10
        assert ttl_of(h.ask("short.example.org.")) == 5
    assert h.calls == 2


@pytest.mark.parametrize("edns", [4096, None])
def test_c30_opt_echo(make: Any, edns: int | None) -> None:
    h = make("cache 10")
    for _ in range(2):  # the miss and the hit
        msg = h.ask("example.org.", do=edns is not None, edns=edns)
        opts = [r for r in msg.ar if r.rtype == QTYPE.OPT]
        if edns is None:
            assert opts == []
        else:
            assert len(opts) == 1 and opts[0].edns_do and opts[0].edns_len == 4096
    assert h.calls == 1


# ---------------------------------------------------------------------------------------------
# C31: setup.


def _config(text: str) -> Any:
    engine = Engine(pycorefile.loads(text))
    return next(p for p in engine.chains[0].plugins if isinstance(p, Cache)).config


SETUP_OK = [
    ("cache", 10000, 10000, 1800, 5, 3600, 5, 0),
    ("cache {}", 10000, 10000, 1800, 5, 3600, 5, 0),
    ("cache example.nl {\n success 10\n}", 10000, 10, 1800, 5, 3600, 5, 0),
    ("cache example.nl {\n success 10 1800 30\n}", 10000, 10, 1800, 5, 1800, 30, 0),
    ("cache example.nl {\n success 10\n denial 10 15\n}", 10, 10, 15, 5, 3600, 5, 0),
    ("cache example.nl {\n success 10\n denial 10 15 2\n}", 10, 10, 15, 2, 3600, 5, 0),
    ("cache 25 example.nl {\n success 10\n denial 10 15\n}", 10, 10, 15, 5, 25, 5, 0),
    ("cache 25 example.nl {\n success 10\n denial 10 15 5\n}", 10, 10, 15, 5, 25, 5, 0),
    ("cache aaa example.nl", 10000, 10000, 1800, 5, 3600, 5, 0),
    ("cache {\n prefetch 10\n}", 10000, 10000, 1800, 5, 3600, 5, 10),
]


@pytest.mark.parametrize("line, ncap, pcap, nttl, min_nttl, pttl, min_pttl, prefetch", SETUP_OK)
def test_c31_setup(
    line: str, ncap: int, pcap: int, nttl: int, min_nttl: int, pttl: int, min_pttl: int, prefetch: int
) -> None:
    cfg = _config(f".:53 {{\n{line}\n}}\n")
    assert (cfg.denial_capacity, cfg.success_capacity) == (ncap, pcap)
    assert (cfg.denial_ttl, cfg.denial_min_ttl, cfg.success_ttl, cfg.success_min_ttl) == (
        nttl, min_nttl, pttl, min_pttl,
    )
    assert cfg.prefetch == prefetch
    assert cfg.servfail_ttl == 5 and cfg.prefetch_duration == 60 and cfg.prefetch_percentage == 10
    assert cfg.stale_up_to == 0 and not cfg.keepttl


def test_c31_zones() -> None:
    assert _config(".:53 {\ncache aaa example.nl\n}\n").zones == ("aaa.", "example.nl.")
    assert _config("example.org:53 Example.NET {\ncache\n}\n").zones == ("example.org.", "example.net.")
    assert _config(".:53 {\ncache 30\n}\n").zones == (".",)


SETUP_BAD = {
    "cache example.nl {\n success\n denial 10 15\n}": "Wrong argument count or unexpected line ending after 'success'",
    "cache example.nl {\n success 15\n denial aaa\n}": 'strconv.Atoi: parsing "aaa": invalid syntax',
    "cache example.nl {\n positive 15\n negative aaa\n}": "unexpected line ending after 'positive'",
    "cache 0 example.nl": "cache TTL can not be zero or negative: 0",
    "cache -1 example.nl": "cache TTL can not be zero or negative: -1",
    "cache 1 example.nl {\n positive 0\n}": "after 'positive'",
    "cache 1 example.nl {\n prefetch -1\n}": "prefetch amount should be positive: -1",
    "cache 1 example.nl {\n prefetch 0 blurp\n}": 'time: invalid duration "blurp"',
    "cache 1 {\n prefetch 1 1m 5%\n}": "percentage should fall in range [10, 90]: 5",
    "cache 1 {\n prefetch 1 1m 50\n}": "last character of percentage should be `%`",
    "cache 1 {\n prefetch 1 1m 50% 3\n}": "unexpected line ending after '3'",
    "cache\ncache": "this plugin can only be used once per Server Block",
    "cache {\n success 10 0\n}": "cache TTL can not be zero or negative: 0",
    "cache {\n denial 10 10 -1\n}": "cache min TTL can not be negative: -1",
    "cache {\n keepttl arg1\n}": "after 'arg1'",
}


@pytest.mark.parametrize("text", sorted(SETUP_BAD))
def test_c31_setup_errors(text: str) -> None:
    with pytest.raises(CorefileError) as info:
        pycorefile.loads(f".:53 {{\n{text}\n}}\n")
    assert SETUP_BAD[text] in str(info.value)
    assert "plugin/cache" in str(info.value)


STALE_SETUP = [
    ("serve_stale", 3600, False, 0, 0, 0),
    ("serve_stale 20m", 1200, False, 0, 0, 0),
    ("serve_stale 1h20m", 4800, False, 0, 0, 0),
    ("serve_stale 0m", 0, False, 0, 0, 0),
    ("serve_stale 0 verify", 0, True, 0, 0, 0),
    ("serve_stale 0 VERIFY", 0, True, 0, 0, 0),
    ("serve_stale 0 immediate", 0, False, 0, 0, 0),
    ("serve_stale 1h immediate 30s", 3600, False, 0, 30, 0),
    ("serve_stale 1h immediate 30s 30s", 3600, False, 0, 30, 30),
    ("serve_stale 1h immediate 4294967295s", 3600, False, 0, 4294967295, 0),
    ("serve_stale 1h immediate 0", 3600, False, 0, 0, 0),
    ("serve_stale 1h verify 100ms", 3600, True, 0.1, 0, 0),
    ("serve_stale 1h verify 100ms 30s", 3600, True, 0.1, 30, 0),
    ("serve_stale 1h verify 100ms 30s 250ms", 3600, True, 0.1, 30, 0.25),
    ("serve_stale 1h verify 0 1m", 3600, True, 0, 60, 0),
    ("serve_stale 1h verify 0 0 5m", 3600, True, 0, 0, 300),
]


@pytest.mark.parametrize("line, up_to, verify, timeout, ttl, recheck", STALE_SETUP)
def test_c31_serve_stale_setup(
    line: str, up_to: float, verify: bool, timeout: float, ttl: int, recheck: float
) -> None:
    cfg = _config(f".:53 {{\ncache {{\n{line}\n}}\n}}\n")
    assert (cfg.stale_up_to, cfg.verify_stale, cfg.verify_timeout, cfg.stale_ttl) == (
        up_to, verify, pytest.approx(timeout), ttl,
    )
    assert cfg.stale_recheck == pytest.approx(recheck)


STALE_BAD = [
    "serve_stale 20", "serve_stale -20m", "serve_stale aa", "serve_stale 1m nono",
    "serve_stale 0 after nono", "serve_stale 1h immediate 100ms",
    "serve_stale 1h immediate 4294967296s", "serve_stale 1h immediate -1s",
    "serve_stale 1h immediate garbage", "serve_stale 1h immediate 30s 30s extra",
    "serve_stale 1h verify -1ms", "serve_stale 1h verify garbage",
    "serve_stale 1h verify 100ms 500ms", "serve_stale 1h verify 100ms -1s",
    "serve_stale 1h verify 100ms 30s extra extra", "serve_stale 1h immediate 30s -1s",
    "serve_stale 1h immediate 30s 5m1s", "serve_stale 1h verify 100ms 30s -1s",
    "serve_stale_policy prefer_positive", "serve_stale\nserve_stale_policy",
    "serve_stale\nserve_stale_policy prefer_positive extra", "serve_stale\nserve_stale_policy invalid",
    "serve_stale\nserve_stale_policy prefer_positive\nserve_stale_policy prefer_positive",
    "servfail", "servfail 6m", "servfail 20", "servfail -1s", "servfail aa", "servfail 1m invalid",
    "disable invalid example.com", "disable",
]


@pytest.mark.parametrize("line", STALE_BAD)
def test_c31_option_errors(line: str) -> None:
    with pytest.raises(CorefileError):
        pycorefile.loads(f".:53 {{\ncache {{\n{line}\n}}\n}}\n")


def test_c31_options_parsed() -> None:
    cfg = _config(
        ".:53 {\ncache {\n serve_stale\n serve_stale_policy PREFER_POSITIVE\n servfail 0\n"
        " disable denial Example.com example.org\n disable success\n keepttl\n}\n}\n"
    )
    assert cfg.prefer_positive and cfg.servfail_ttl == 0 and cfg.keepttl
    assert cfg.denial_disabled == ("example.com.", "example.org.")
    assert cfg.success_disabled == (".",)
    assert _config(".:53 {\ncache {\n servfail 5m\n}\n}\n").servfail_ttl == 300


# ---------------------------------------------------------------------------------------------
# Beyond CoreDNS: singleflight, the bytes-only hit path, eviction, metrics, zones.


def test_singleflight_100_concurrent_misses_make_one_query(make: Any) -> None:
    h = make()

    async def respond(req: Request) -> DNSRecord:
        await to_loop(req)
        await asyncio.sleep(0.2)
        return positive(req, 300)

    h.backend.respond = respond
    names = [("".join(c.upper() if (i >> j) & 1 else c for j, c in enumerate("flight")) + ".example.")
             for i in range(100)]

    async def main() -> list[bytes]:
        queries = [h.query(n, qid=1000 + i, edns=1232 if i % 2 else None) for i, n in enumerate(names)]
        return await asyncio.gather(*(h.resolver.handle_async(q) for q in queries))

    replies = [DNSRecord.parse(b) for b in asyncio.run(main())]
    assert h.calls == 1
    for i, (name, msg) in enumerate(zip(names, replies, strict=True)):
        assert msg.header.id == 1000 + i
        assert str(msg.q.qname) == name  # each in its own spelling
        assert rdata(msg) == "127.0.0.53" and ttl_of(msg) == 300
        assert any(r.rtype == QTYPE.OPT for r in msg.ar) == bool(i % 2)
    assert h.metric("coredns_cache_misses_total") == 100
    assert len(h.cache._flights) == 0


def test_singleflight_failure_reaches_every_waiter(make: Any) -> None:
    h = make()

    async def respond(req: Request) -> Reply:
        await to_loop(req)
        await asyncio.sleep(0.1)
        return Reply.fail(w.SERVFAIL, "upstream down")

    h.backend.respond = respond

    async def main() -> list[bytes]:
        return await asyncio.gather(*(h.resolver.handle_async(h.query("down.example.")) for _ in range(20)))

    replies = [DNSRecord.parse(b) for b in asyncio.run(main())]
    assert h.calls == 1
    assert {m.header.rcode for m in replies} == {w.SERVFAIL}


def test_hit_uses_no_dnslib_and_never_awaits(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    h = make()
    h.ask("fast.example.", do=True)

    def boom(*a: Any, **k: Any) -> Any:
        raise AssertionError("dnslib used on a hit")

    monkeypatch.setattr(DNSRecord, "parse", boom)
    monkeypatch.setattr(DNSRecord, "pack", boom)
    out = h.resolver.handle(h.query("FAST.example.", qid=4242, do=True))
    monkeypatch.undo()
    msg = DNSRecord.parse(out)
    assert msg.header.id == 4242 and str(msg.q.qname) == "FAST.example." and msg.header.aa
    assert h.engine.loop is None  # nothing was ever scheduled on an event loop


def test_hit_reply_is_final_and_message_built_lazily(make: Any) -> None:
    h = make()
    h.ask("lazy.example.")
    reply, data = h.reply("Lazy.Example.", edns=1400)
    assert isinstance(reply, CachedReply)
    assert reply.cached and reply.final and reply.plugin == "cache" and reply.written
    assert reply._msg is None  # the server path never built a dnslib record
    parsed = DNSRecord.parse(data)
    msg = reply.message
    assert msg.header.id == parsed.header.id and msg.header.bitmap == parsed.header.bitmap
    assert str(msg.q.qname) == "Lazy.Example."
    # (Owner names may differ in case: the packed reply compresses them against the
    # client's spelling of the question.)
    assert [(str(r.rname).lower(), r.ttl, str(r.rdata)) for r in msg.rr] == [
        (str(r.rname).lower(), r.ttl, str(r.rdata)) for r in parsed.rr
    ]
    assert [r.rtype for r in msg.ar] == [QTYPE.OPT]
    entry = h.cache.entry("lazy.example.")
    assert msg.rr[0].rdata is entry.sections[0][0].rdata  # shared, not copied


def test_miss_reply_keeps_the_writer_and_hits_say_cache(make: Any) -> None:
    h = make()
    miss, _ = h.reply("who.example.")
    hit, _ = h.reply("who.example.")
    assert (miss.plugin, miss.cached) == ("backend", False)
    assert (hit.plugin, hit.cached) == ("cache", True)


def test_upstream_query_asks_for_ad_and_entry_serves_both(make: Any) -> None:
    h = make()
    h.backend.respond = _with_flags(lambda req: positive(req, 300), ad=True)
    assert h.ask("invent.example.org.").header.ad == 0
    assert h.backend.calls[0].flags & w.AD
    assert h.ask("invent.example.org.", ad=True).header.ad == 1
    # DO is another key (a miss); a DNSSEC client gets the AD bit on the miss and the hit.
    assert h.ask("invent.example.org.", do=True).header.ad == 1
    assert h.ask("invent.example.org.", do=True).header.ad == 1
    assert h.calls == 2


def test_big_hit_truncated_for_small_udp_clients(make: Any) -> None:
    h = make()
    texts = [f"txt-{i:02d}-".ljust(50, "x") for i in range(40)]
    h.backend.respond = lambda req: answer(req, *(f'{req.qname} 300 IN TXT "{t}"' for t in texts))
    full = h.ask("big.example.", "TXT", proto="tcp")
    assert len(full.rr) == 40 and not full.header.tc
    small = h.ask("big.example.", "TXT")  # UDP, no EDNS: 512 bytes
    assert small.header.tc and len(small.rr) < 40
    assert len(h.resolver.handle(h.query("big.example.", "TXT"))) <= 512
    again = h.ask("big.example.", "TXT", proto="tcp")
    assert len(again.rr) == 40 and h.calls == 1


def test_rd_copied_from_each_request(make: Any) -> None:
    h = make()
    h.ask("rd.example.")
    q = h.query("rd.example.")
    q = q[:2] + w.U16.pack(w.U16.unpack_from(q, 2)[0] & ~w.RD) + q[4:]
    msg = DNSRecord.parse(h.resolver.handle(q))
    assert msg.header.rd == 0 and msg.header.ra == 1


def test_capacity_bound_and_evictions(make: Any) -> None:
    h = make("cache {\n success 10\n}")  # CoreDNS: 256 shards x max(10 // 256, 4) = 1024
    assert h.cache.success.capacity == 1024
    for i in range(1100):
        h.ask(f"n{i}.example.")
    assert len(h.cache.success) == 1024
    assert h.metric("coredns_cache_evictions_total", type="success") == 76
    assert h.metric("coredns_cache_entries", type="success") == 1024
    assert h.cache.entry("n0.example.") is None and h.cache.entry("n1099.example.") is not None


def test_recently_hit_entries_survive_eviction(make: Any) -> None:
    h = make("cache {\n success 1024\n}")
    for i in range(1024):
        h.ask(f"n{i}.example.")
    h.ask("n0.example.")  # a hit: second chance
    h.ask("new.example.")
    assert h.cache.entry("n0.example.") is not None
    assert h.cache.entry("n1.example.") is None
    assert len(h.cache.success) == 1024


def test_default_capacity_is_coredns_effective() -> None:
    assert Cache().success.capacity == 9984 and Cache().denial.capacity == 9984


def test_metrics_names_and_labels(make: Any) -> None:
    h = make("cache example.org example.net")
    h.ask("a.example.org.")
    h.ask("a.example.org.")
    h.ask("b.example.net.")
    text = h.engine.metrics.exposition().decode()
    server = h.resolver.server.label
    for line in (
        f'coredns_cache_requests_total{{server="{server}",view="",zones="example.org.,example.net."}} 3.0',
        f'coredns_cache_hits_total{{server="{server}",type="success",view="",zones="example.org.,example.net."}} 1.0',
        f'coredns_cache_misses_total{{server="{server}",view="",zones="example.org.,example.net."}} 2.0',
        f'coredns_cache_entries{{server="{server}",type="success",view="",zones="example.org.,example.net."}} 2.0',
        f'coredns_cache_entries{{server="{server}",type="denial",view="",zones="example.org.,example.net."}} 0.0',
    ):
        assert line in text
    for name in ("prefetch_total", "drops_total", "served_stale_total", "evictions_total"):
        assert f"coredns_cache_{name}" in text


def test_names_outside_the_zones_pass_through(make: Any) -> None:
    h = make("cache example.org")
    h.ask("other.test.")
    h.ask("other.test.")
    assert h.calls == 2 and h.metric("coredns_cache_requests_total") == 0
    h.ask("www.example.org.")
    h.ask("www.example.org.")
    assert h.calls == 3


def test_block_zones_are_the_default(make: Any) -> None:
    h = make("cache", zone="example.org")
    assert h.cache.zones == ("example.org.",)


def test_tcp_and_udp_share_entries(make: Any) -> None:
    h = make()
    h.ask("both.example.", proto="tcp")
    h.ask("both.example.", proto="udp")
    assert h.calls == 1


def test_background_refresh_without_loop_that_needs_one_is_dropped(make: Any) -> None:
    h = make("cache {\n prefetch 1\n}")
    h.backend.respond = lambda req: positive(req, 80)
    h.ask("noloop.example.")
    h.clock.set(75)

    async def needs_loop(req: Request) -> DNSRecord:
        await to_loop(req)
        return positive(req, 80, "192.0.2.99")

    h.backend.respond = needs_loop
    msg = h.ask("noloop.example.")
    assert rdata(msg) == "127.0.0.53"
    entry = h.cache.entry("noloop.example.")
    assert not entry.refreshing and len(h.cache._flights) == 0


def test_prefetch_runs_on_the_resolver_loop(make: Any) -> None:
    h = make("cache {\n prefetch 1\n}")

    async def respond(req: Request) -> DNSRecord:
        await to_loop(req)
        return positive(req, 80, f"127.0.0.{len(h.backend.calls)}")

    h.backend.respond = respond
    h.ask("loop.example.")
    assert h.engine.loop is not None
    h.clock.set(75)
    assert rdata(h.ask("loop.example.")) == "127.0.0.1"
    _wait_until(lambda: h.cache.entry("loop.example.").stored == h.clock.now)
    assert rdata(h.ask("loop.example.")) == "127.0.0.2" and h.calls == 2


def test_stop_cancels_background_work(make: Any) -> None:
    h = make("cache {\n prefetch 1\n}")
    started = threading.Event()

    async def respond(req: Request) -> DNSRecord:
        await to_loop(req)
        if len(h.backend.calls) > 1:
            started.set()
            await asyncio.sleep(30)
        return positive(req, 80)

    h.backend.respond = respond
    h.ask("stop.example.")
    h.clock.set(75)
    h.ask("stop.example.")
    assert started.wait(5)
    assert h.cache._tasks
    h.resolver.close()
    assert not h.cache._tasks


def test_request_label_keeps_bytes() -> None:
    from pycorefile.chain import Request

    req = Request.from_wire(w.build_query("A\\.b.Example.", 1))
    label = req.label
    assert label.label == (b"A.b", b"Example") and isinstance(label, DNSLabel)
