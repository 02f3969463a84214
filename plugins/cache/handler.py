"""The ``cache`` plugin: lookups, the writer that stores replies, prefetch,
serve_stale and singleflight.

Reading order: :meth:`Cache.serve` is the hot path. A hit never awaits: it finds an
:class:`~.item.Entry` with two ``dict.get`` calls, renders its bytes for the request and
returns a final :class:`~.item.CachedReply`. Everything else (a miss, a verify of a
stale entry, a background refresh) goes through :meth:`Cache._fetch`, which makes
sure one key has at most one upstream query in flight (singleflight) and hands each
waiting request its own copy of the answer. :meth:`Cache._absorb` is CoreDNS's
caching ``ResponseWriter``: classify, clamp the TTLs, store.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future as ConcurrentFuture
from typing import TYPE_CHECKING, Any

from dnslib import RR, DNSQuestion, DNSRecord

from pycorefile import wire as w
from pycorefile.chain import Next, Plugin, Reply, Request, SetupContext, to_loop
from pycorefile.corefile.model import Directive
from pycorefile.metrics import MetricsRegistry
from pycorefile.response import Type, typify
from pycorefile.routing import copy_message

from . import setup as cache_setup
from .classify import (
    DENIAL_TYPES,
    NEVER,
    SUCCESS_TYPES,
    classify,
    compute_ttl,
    in_zones,
    matches,
    minimal_ttl,
)
from .item import CachedReply, Entry, hit_reply, pack_entry
from .setup import CacheConfig
from .store import Store

if TYPE_CHECKING:
    from pycorefile.metrics import _Child

log = logging.getLogger("pycorefile.plugins.cache")

SUCCESS = "success"
DENIAL = "denial"

# What an upstream query is for; decides what the writer stores (see _absorb).
MISS = "miss"            # a client is waiting: store anything cacheable
PREFETCH = "prefetch"    # background refresh of a fresh entry
STALE = "stale"          # background refresh of a stale entry (serve_stale immediate)
VERIFY = "verify"        # serve_stale verify, the client waits for it
VERIFY_BG = "verify-bg"  # serve_stale verify with VERIFY_TIMEOUT: may outlive the client
_VERIFYING = frozenset({STALE, VERIFY, VERIFY_BG})
_AS_PREFETCH = frozenset({PREFETCH, STALE, VERIFY_BG})

# Suffixes that make the DO and CD bits part of a key (a key without one ends in the
# 4 bytes of type and class, so the two kinds can never collide).
_VARIANT = (b"", b"\x01", b"\x02", b"\x03")


class Outcome:
    """What one upstream query produced, shared by everyone who waited for it.

    ``reply`` is the next plugin's reply as returned and ``msg`` its message (``None``
    when nothing was written); ``ttl`` the cache duration every record of it gets;
    ``entry`` what was stored, if anything; ``refreshed`` whether a stale entry may
    be replaced by it (a complete, matching NOERROR or NXDOMAIN).
    """

    __slots__ = ("reply", "msg", "ttl", "entry", "refreshed", "truncated")

    def __init__(
        self,
        reply: Reply,
        msg: DNSRecord | None = None,
        ttl: int = 0,
        entry: Entry | None = None,
        refreshed: bool = False,
        truncated: bool = False,
    ) -> None:
        self.reply = reply
        self.msg = msg
        self.ttl = ttl
        self.entry = entry
        self.refreshed = refreshed
        self.truncated = truncated


class _Flight:
    """One upstream query in progress for a key; waiters park futures here."""

    __slots__ = ("lock", "done", "outcome", "futures")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = False
        self.outcome: Outcome | None = None
        self.futures: list[asyncio.Future[Outcome | None]] = []


class _Children:
    """The metric children of one ``server`` label, looked up once."""

    __slots__ = (
        "requests", "misses", "hits_success", "hits_denial", "prefetch", "drops",
        "served_stale", "evictions_success", "evictions_denial", "entries_success",
        "entries_denial",
    )
    requests: _Child
    misses: _Child
    hits_success: _Child
    hits_denial: _Child
    prefetch: _Child
    drops: _Child
    served_stale: _Child
    evictions_success: _Child
    evictions_denial: _Child
    entries_success: _Child
    entries_denial: _Child


def _set_result(fut: asyncio.Future[Outcome | None], outcome: Outcome | None) -> None:
    if not fut.done():
        fut.set_result(outcome)


def _retrieve(task: Any) -> None:
    # Background work logs its own failures; this only keeps asyncio quiet.
    if not task.cancelled():
        task.exception()


class Cache(Plugin):
    """CoreDNS's ``cache``: a success cache and a denial cache in front of the rest
    of the chain (spec §2).

    ``clock`` (default :func:`time.monotonic`) is the time source for TTLs, prefetch
    and serve_stale; tests replace it to move time without sleeping. ``success`` and
    ``denial`` are the two :class:`~.store.Store` objects.
    """

    name = "cache"
    once = True
    #: The time source for TTLs, prefetch and serve_stale (seconds, monotonic).
    #: Replace it on an instance (``cache.clock = fake``) to move time in tests.
    clock: Callable[[], float] = time.monotonic

    def __init__(self, config: CacheConfig | None = None) -> None:
        cfg = config or CacheConfig()
        self.config = cfg
        self.zones = cfg.zones
        self.success = Store(cfg.effective_capacity(cfg.success_capacity), SUCCESS)
        self.denial = Store(cfg.effective_capacity(cfg.denial_capacity), DENIAL)
        self.zones_label = ",".join(cfg.zones)
        self.view_label = ""
        # Hot-path copies of the configuration.
        self._all_zones = "." in cfg.zones
        self._pos = self.success.index
        self._neg = self.denial.index
        self._keepttl = cfg.keepttl
        self._prefetch = cfg.prefetch
        self._stale = cfg.stale_up_to > 0
        # CoreDNS compares -ttl with int(staleUpTo.Seconds()).
        self._stale_secs = int(cfg.stale_up_to)
        self._verify = cfg.verify_stale
        self._prefer = cfg.prefer_positive and cfg.stale_up_to > 0
        self._opt_cache: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self._flights: dict[bytes, _Flight] = {}
        self._tasks: set[Any] = set()
        self._metrics: MetricsRegistry | None = None
        self._children: dict[str, _Children] = {}

    # -- setup ------------------------------------------------------------------
    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        return cls(cache_setup.parse(directive, ctx))

    def register_metrics(self, metrics: MetricsRegistry) -> None:
        self._metrics = metrics
        self._children = {}
        self._declare(metrics)

    @staticmethod
    def _declare(metrics: MetricsRegistry) -> dict[str, Any]:
        szv = ["server", "zones", "view"]
        stzv = ["server", "type", "zones", "view"]
        return {
            "entries": metrics.gauge(
                "coredns_cache_entries", "The number of elements in the cache.", stzv),
            "requests": metrics.counter(
                "coredns_cache_requests_total", "The count of cache requests.", szv),
            "hits": metrics.counter(
                "coredns_cache_hits_total", "The count of cache hits.", stzv),
            "misses": metrics.counter(
                "coredns_cache_misses_total",
                "The count of cache misses. Deprecated, derive misses from cache "
                "hits/requests counters.", szv),
            "prefetch": metrics.counter(
                "coredns_cache_prefetch_total",
                "The number of times the cache has prefetched a cached item.", szv),
            "drops": metrics.counter(
                "coredns_cache_drops_total",
                "The number responses that are not cached, because the reply is malformed.",
                szv),
            "stale": metrics.counter(
                "coredns_cache_served_stale_total",
                "The number of requests served from stale cache entries.", szv),
            "evictions": metrics.counter(
                "coredns_cache_evictions_total", "The count of cache evictions.", stzv),
        }

    def _new_children(self, server: str) -> _Children:
        metrics = self._metrics
        if metrics is None:
            metrics = self._metrics = MetricsRegistry()
        m = self._declare(metrics)
        z, v = self.zones_label, self.view_label
        ch = _Children()
        ch.requests = m["requests"].labels(server, z, v)
        ch.misses = m["misses"].labels(server, z, v)
        ch.hits_success = m["hits"].labels(server, SUCCESS, z, v)
        ch.hits_denial = m["hits"].labels(server, DENIAL, z, v)
        ch.prefetch = m["prefetch"].labels(server, z, v)
        ch.drops = m["drops"].labels(server, z, v)
        ch.served_stale = m["stale"].labels(server, z, v)
        ch.evictions_success = m["evictions"].labels(server, SUCCESS, z, v)
        ch.evictions_denial = m["evictions"].labels(server, DENIAL, z, v)
        ch.entries_success = m["entries"].labels(server, SUCCESS, z, v)
        ch.entries_denial = m["entries"].labels(server, DENIAL, z, v)
        self._children[server] = ch
        return ch

    # -- the hot path -------------------------------------------------------------
    async def serve(self, request: Request, next: Next) -> Reply:
        if not self._all_zones and not in_zones(request.name, self.zones):
            return await next(request)
        key = request.key
        rflags = request.flags
        # DO and CD change the answer, so they are part of the key; AA is not.
        variant = (2 if request.do else 0) | (1 if rflags & w.CD else 0)
        if variant:
            key = key + _VARIANT[variant]
        ch = self._children.get(request.server)
        if ch is None:
            ch = self._new_children(request.server)
        ch.requests.value += 1
        now = self.clock()
        if self._prefer or key in self._neg:
            entry = self._lookup(key, now, ch)
        else:
            # The common case, inlined: no denial entry, look at the success cache.
            entry = self._pos.get(key)
            if entry is not None:
                ttl = entry.ttl - int(now - entry.stored)
                if ttl > 0:
                    ch.hits_success.value += 1
                    if self._prefetch > 0 and self._should_prefetch(entry, now, ttl):
                        self._try_prefetch(request, next, key, entry, now, False, ch)
                    entry.used = True
                    if self._keepttl:
                        ttl = entry.ttl
                    return hit_reply(
                        entry, request, ttl, entry.render(request, ttl, self._opt_cache)
                    )
                if -ttl < self._stale_secs:
                    ch.hits_success.value += 1
                else:
                    entry = None
        if entry is None:
            ch.misses.value += 1
            outcome, led = await self._fetch(request, next, key, MISS)
            return self._miss_reply(request, outcome, led)
        ttl = entry.ttl - int(now - entry.stored)
        if ttl <= 0:
            return await self._serve_stale(request, next, key, entry, ttl, now, ch)
        if self._prefetch > 0 and self._should_prefetch(entry, now, ttl):
            self._try_prefetch(request, next, key, entry, now, False, ch)
        entry.used = True
        if self._keepttl:
            ttl = entry.ttl
        return hit_reply(entry, request, ttl, entry.render(request, ttl, self._opt_cache))

    def _lookup(self, key: bytes, now: float, ch: _Children) -> Entry | None:
        """CoreDNS ``getIfNotStale``: the denial cache first, then the success cache;
        an entry counts while fresh or inside the serve_stale window."""
        stale = self._stale_secs
        if self._prefer:
            # prefer_positive: an answering positive entry wins over any denial.
            p = self._pos.get(key)
            if p is not None:
                p = p.answering_item()
                if p is not None:
                    ttl = p.ttl - int(now - p.stored)
                    if ttl > 0 or -ttl < stale:
                        ch.hits_success.value += 1
                        return p
        n = self._neg.get(key)
        if n is not None:
            ttl = n.ttl - int(now - n.stored)
            if ttl > 0 or -ttl < stale:
                if n.rcode == w.SERVFAIL:
                    # A transient SERVFAIL must not hide a still usable answer (#8003).
                    p = self._pos.get(key)
                    if p is not None:
                        pttl = p.ttl - int(now - p.stored)
                        if pttl > 0 or -pttl < stale:
                            ch.hits_success.value += 1
                            return p
                ch.hits_denial.value += 1
                return n
        p = self._pos.get(key)
        if p is not None:
            ttl = p.ttl - int(now - p.stored)
            if ttl > 0 or -ttl < stale:
                ch.hits_success.value += 1
                return p
        return None

    # -- serve_stale ----------------------------------------------------------------
    async def _serve_stale(
        self, request: Request, next: Next, key: bytes, entry: Entry, ttl: int, now: float,
        ch: _Children,
    ) -> Reply:
        cfg = self.config
        if self._verify:
            recheck = cfg.stale_recheck
            # With FAILURE_RECHECK, one verify per entry and none during the back-off
            # (CoreDNS); without it, concurrent verifies share one upstream query.
            if recheck <= 0 or self._begin(entry, now, recheck):
                reply = await self._verify_stale(request, next, key, entry, recheck)
                if reply is not None:
                    return reply
        else:
            # Serve now, refresh in the background; the refresh starts from the moment
            # the entry expired (CoreDNS shifts "now" to make the TTL 0).
            self._try_prefetch(request, next, key, entry, now + ttl, True, ch)
        ch.served_stale.value += 1
        entry.used = True
        if cfg.stale_ttl > 0:
            shown = cfg.stale_ttl
        elif self._keepttl:
            shown = entry.ttl
        else:
            shown = 0
        return hit_reply(entry, request, shown, entry.render(request, shown, self._opt_cache))

    def _begin(self, entry: Entry, now: float, recheck: float) -> bool:
        with self._lock:
            return entry.begin_refresh(now, recheck)

    async def _verify_stale(
        self, request: Request, next: Next, key: bytes, entry: Entry, recheck: float
    ) -> Reply | None:
        """Ask upstream before serving a stale entry; ``None``: serve the stale one."""
        timeout = self.config.verify_timeout
        engine = request.engine
        if timeout <= 0 or engine is None:
            refreshed = False
            try:
                outcome, led = await self._fetch(request, next, key, VERIFY)
                refreshed = outcome.refreshed
            except Exception:
                # A failing next plugin is a failed verify: the stale entry answers.
                log.exception("cache: verifying %s failed", request.name)
                return None
            finally:
                if recheck > 0:
                    entry.end_refresh(self.clock(), recheck, refreshed)
            return self._miss_reply(request, outcome, led) if refreshed else None
        # Bounded wait: the verify runs as its own task so that it can finish (and
        # refresh the cache) after this client got the stale answer.
        await to_loop(request)
        loop = engine.loop
        if loop is None:  # pragma: no cover - a driver that never gives us a loop
            return None
        task = loop.create_task(self._verify_job(request, next, key, entry, recheck))
        self._track(task)
        try:
            outcome = await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            return None
        except Exception:  # the job logged it; the stale entry is the answer
            return None
        if not outcome.refreshed:
            return None
        fresh = outcome.entry
        if fresh is None:
            return self._miss_reply(request, outcome, False)
        ttl = fresh.ttl if self._keepttl else fresh.remaining(self.clock())
        return hit_reply(fresh, request, ttl, fresh.render(request, ttl, self._opt_cache))

    async def _verify_job(
        self, request: Request, next: Next, key: bytes, entry: Entry, recheck: float
    ) -> Outcome:
        refreshed = False
        try:
            outcome, _ = await self._fetch(request, next, key, VERIFY_BG)
            refreshed = outcome.refreshed
            return outcome
        except Exception:
            log.exception("cache: verifying %s failed", request.name)
            raise
        finally:
            if recheck > 0:
                entry.end_refresh(self.clock(), recheck, refreshed)

    # -- prefetch -----------------------------------------------------------------------
    def _should_prefetch(self, entry: Entry, now: float, ttl: int) -> bool:
        cfg = self.config
        hits = entry.update_hits(cfg.prefetch_duration, now)
        # ceil(percentage / 100 * stored duration), in integers.
        threshold = -((-cfg.prefetch_percentage * entry.ttl) // 100)
        return hits >= self._prefetch and ttl <= threshold

    def _try_prefetch(
        self, request: Request, next: Next, key: bytes, entry: Entry, now: float, stale: bool,
        ch: _Children,
    ) -> None:
        """Start the one background refresh ``entry`` may have (never awaits)."""
        if key in self._flights:
            return  # an upstream query for this key is already on its way
        recheck = self.config.stale_recheck if stale else 0.0
        with self._lock:  # one refresh per entry, also with in-process threads
            if not entry.begin_refresh(self.clock(), recheck):
                return
        job = self._refresh_job(request, next, key, entry, now, stale, ch)
        if not self._spawn(request, job):
            entry.end_refresh(self.clock(), 0.0, True)

    async def _refresh_job(
        self, request: Request, next: Next, key: bytes, entry: Entry, now: float, stale: bool,
        ch: _Children,
    ) -> None:
        recheck = self.config.stale_recheck if stale else 0.0
        refreshed = False
        ch.prefetch.value += 1
        try:
            # The refresh pretends to come over TCP, so the upstream reply is never
            # truncated (CoreDNS's prefetch writer has a TCP remote address).
            outcome, _ = await self._fetch(
                self._as_tcp(request), next, key, STALE if stale else PREFETCH
            )
            refreshed = outcome.refreshed if stale else True
            if refreshed:
                # The new entry inherits the popularity of the one it replaces.
                fresh = self._neg.get(key) or self._pos.get(key)
                if fresh is not None:
                    fresh.reset_hits(now, entry.hits)
        except Exception:
            log.exception("cache: refreshing %s failed", request.name)
        finally:
            entry.end_refresh(self.clock(), recheck, refreshed)

    def _spawn(self, request: Request, coro: Coroutine[Any, Any, Any]) -> bool:
        """Run background work on the engine's loop without awaiting it here; False
        when it could not even start (its ``finally`` blocks did not run).

        On the loop's own thread it becomes a task; from another thread (the
        in-process resolver) it is handed over thread-safely. Without any loop (a
        resolver whose chain never needed one), it runs right here and is dropped
        if it turns out to need one.
        """
        engine = request.engine
        loop = engine.loop if engine is not None else None
        if loop is None:
            try:
                coro.send(None)
            except StopIteration:
                return True
            except Exception:
                log.exception("cache: background refresh of %s failed", request.name)
                return True
            coro.close()
            log.debug("cache: refresh of %s needs an event loop; none is running", request.name)
            return True
        if asyncio._get_running_loop() is loop:
            self._track(loop.create_task(coro))
            return True
        try:
            self._track(asyncio.run_coroutine_threadsafe(coro, loop))
        except RuntimeError:  # the loop is closed
            coro.close()
            return False
        return True

    def _track(self, task: asyncio.Task[Any] | ConcurrentFuture[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_retrieve)

    # -- upstream queries (singleflight) ---------------------------------------------
    async def _fetch(
        self, request: Request, next: Next, key: bytes, mode: str
    ) -> tuple[Outcome, bool]:
        """One upstream query per key at a time. Returns the outcome and whether this
        request led (made the query) or waited for another one."""
        if request.engine is None:
            return await self._lead(request, next, key, mode, None), True
        while True:
            flight = self._flights.get(key)
            if flight is None:
                mine = _Flight()
                flight = self._flights.setdefault(key, mine)
                if flight is mine:
                    return await self._lead(request, next, key, mode, mine), True
            outcome = await self._join(request, flight)
            if outcome is None:
                if request.engine.loop is None:  # pragma: no cover - nothing to wait on
                    return await self._lead(request, next, key, mode, None), True
                continue  # the leader was cancelled: try again (maybe leading)
            if outcome.truncated and request.proto != "udp":
                # A truncated UDP answer is no answer for a TCP client.
                return await self._lead(request, next, key, mode, None), True
            return outcome, False

    async def _join(self, request: Request, flight: _Flight) -> Outcome | None:
        await to_loop(request)
        engine = request.engine
        loop = engine.loop if engine is not None else None
        with flight.lock:
            if flight.done:
                return flight.outcome
            if loop is None:  # pragma: no cover - no loop to wait on
                return None
            fut: asyncio.Future[Outcome | None] = loop.create_future()
            flight.futures.append(fut)
        return await fut

    async def _lead(
        self, request: Request, next: Next, key: bytes, mode: str, flight: _Flight | None
    ) -> Outcome:
        outcome: Outcome | None = None
        try:
            reply = await next(self._upstream(request))
            outcome = self._absorb(request, key, reply, mode)
            return outcome
        except Exception as exc:
            outcome = Outcome(Reply.fail(w.SERVFAIL, exc))
            raise
        finally:
            if flight is not None:
                self._land(key, flight, outcome)

    def _land(self, key: bytes, flight: _Flight, outcome: Outcome | None) -> None:
        if self._flights.get(key) is flight:
            self._flights.pop(key, None)
        with flight.lock:
            flight.done = True
            flight.outcome = outcome
            futures, flight.futures = flight.futures, []
        running = asyncio._get_running_loop()
        for fut in futures:
            loop = fut.get_loop()
            if loop is running:
                _set_result(fut, outcome)
            else:
                try:
                    loop.call_soon_threadsafe(_set_result, fut, outcome)
                except RuntimeError:  # pragma: no cover - loop closed
                    pass

    @staticmethod
    def _upstream(request: Request) -> Request:
        """The query sent on: a copy with AD=1 (CoreDNS asks for AD so that one entry
        can serve clients that set AD and clients that did not)."""
        if request.flags & w.AD:
            return request
        flags = request.flags | w.AD
        wire = request.wire[:2] + w.U16.pack(flags) + request.wire[4:]
        return request.copy(flags=flags, wire=wire, _message=None)

    @staticmethod
    def _as_tcp(request: Request) -> Request:
        return request.copy(proto="tcp")

    # -- the writer: classify, clamp, store ----------------------------------------------
    def _absorb(self, request: Request, key: bytes, reply: Reply, mode: str) -> Outcome:
        """CoreDNS's caching ``ResponseWriter.WriteMsg`` (and, for refreshes of stale
        entries, its ``verifyStaleResponseWriter``)."""
        if not reply.written:
            # Nothing written (e.g. forward's own SERVFAIL): the server answers it
            # with a bare reply and the cache never sees a message.
            return Outcome(reply)
        cfg = self.config
        msg = reply.message
        wall = time.time()
        t, ok, answering = classify(msg, wall)
        if t is Type.NAMEERROR or t is Type.NODATA:
            duration = compute_ttl(
                minimal_ttl(msg, t, cfg.denial_ttl), cfg.denial_min_ttl, cfg.denial_ttl
            )
        elif t is Type.SERVERERROR:
            duration = cfg.servfail_ttl
        else:
            duration = compute_ttl(
                minimal_ttl(msg, t, cfg.success_ttl), cfg.success_min_ttl, cfg.success_ttl
            )
        # Every record of the reply gets this TTL, already on this first reply, so a
        # client does not see 1799 and then 8 (CoreDNS does the same).
        ttl = int(duration)
        truncated = bool(msg.header.tc)
        match = matches(msg, request.key[:-4], request.qtype, request.qclass)

        store = True
        refreshed = True
        if mode in _VERIFYING:
            # Only a complete, matching NOERROR/NXDOMAIN may replace a stale entry.
            store = refreshed = False
            if not truncated and match:
                if self._prefer:
                    # Non-answers are stored (the last good answer stays beside
                    # them) but do not count as a refresh.
                    store = True
                    refreshed = t is Type.NOERROR and answering
                elif typify(msg, wall) not in NEVER and msg.header.rcode in (
                    w.NOERROR, w.NXDOMAIN,
                ):
                    store = refreshed = True
        entry = None
        if store and duration > 0 and ok:
            if match:
                entry = self._store(request, key, msg, t, ttl, answering, mode in _AS_PREFETCH)
            else:
                ch = self._children.get(request.server) or self._new_children(request.server)
                ch.drops.value += 1
        return Outcome(reply, msg, ttl, entry, refreshed, truncated)

    def _store(
        self, request: Request, key: bytes, msg: DNSRecord, t: Type, ttl: int, answering: bool,
        prefetch: bool,
    ) -> Entry | None:
        """CoreDNS ``ResponseWriter.set``."""
        cfg = self.config
        if t in SUCCESS_TYPES:
            if cfg.success_disabled and in_zones(request.name, cfg.success_disabled):
                return None
            kind = SUCCESS
        elif t in DENIAL_TYPES:
            if cfg.denial_disabled and in_zones(request.name, cfg.denial_disabled):
                return None
            kind = DENIAL
        else:  # pragma: no cover - classify() lets nothing else through
            return None
        sections = (
            msg.rr, msg.auth, [rr for rr in msg.ar if rr.rtype != w.OPT],
        )
        wire, offsets, arcount = pack_entry(sections, request)
        h = msg.header
        entry = Entry(
            wire, offsets, arcount, request.qwire, h.rcode, bool(h.ra), bool(h.ad), ttl,
            self.clock(), answering, sections, kind,
        )
        prefer = cfg.prefer_positive
        with self._lock:
            if kind == SUCCESS:
                if prefer and not entry.answering:
                    # Keep the last good answer under a non-answer (prefer_positive).
                    previous = self.success.get(key)
                    if previous is not None:
                        entry.lkg = previous.answering_item()
                evicted = self.success.add(key, entry)
                # A refreshed positive answer is the newest truth for this key.
                if (not prefer and prefetch) or (prefer and entry.answering):
                    self.denial.remove(key)
            else:
                evicted = self.denial.add(key, entry)
            n_success, n_denial = len(self.success), len(self.denial)
        ch = self._children.get(request.server) or self._new_children(request.server)
        if evicted:
            (ch.evictions_success if kind == SUCCESS else ch.evictions_denial).value += evicted
        ch.entries_success.value = n_success
        ch.entries_denial.value = n_denial
        return entry

    # -- replies for requests that waited for upstream -------------------------------------
    def _miss_reply(self, request: Request, outcome: Outcome, led: bool) -> Reply:
        """The upstream's reply for this request, its TTLs rewritten. The plugin that
        wrote it stays its writer (metrics label it, not ``cache``)."""
        reply = outcome.reply
        msg = outcome.msg
        if msg is None:
            return reply
        flags = msg.header.bitmap
        if not request.do and not request.flags & w.AD:
            # AD only for clients that can use it (RFC 6840 §5.7-5.8).
            flags &= ~w.AD
        if not led:
            # Someone else's upstream query: this request's RD (and ID and question).
            flags = (flags & ~w.RD) | (request.flags & w.RD)
        entry = outcome.entry
        if entry is not None:
            # Stored: the final bytes come from the entry, no dnslib encode needed.
            wire = entry.render_with(request, entry.ttl, flags, self._opt_cache)
            out = Reply(reply.rcode, wire=wire, plugin=reply.plugin, error=reply.error)
            out.final = True
            return out
        shaped = _with_ttl(msg, outcome.ttl)
        h = shaped.header
        h.bitmap = flags
        if not led:
            h.id = request.id
            if shaped.questions:
                shaped.questions = [
                    DNSQuestion(request.label, request.qtype, request.qclass)
                ]
        return Reply(reply.rcode, message=shaped, plugin=reply.plugin, error=reply.error)

    # -- lifecycle ---------------------------------------------------------------------
    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    def __len__(self) -> int:
        return len(self.success) + len(self.denial)

    def entry(self, name: str, qtype: int = 1, qclass: int = 1, *, do: bool = False,
              cd: bool = False) -> Entry | None:
        """The stored entry for a question (denial first, as a lookup does), or
        ``None``; for tests and debugging."""
        key = w.lower_wire(w.text_to_wire(name)) + w.QTAIL.pack(qtype, qclass)
        key += _VARIANT[(2 if do else 0) | (1 if cd else 0)]
        return self._neg.get(key) or self._pos.get(key)


def _with_ttl(msg: DNSRecord, ttl: int) -> DNSRecord:
    """A copy of ``msg`` with every record's TTL set to ``ttl`` and OPT dropped (the
    original records are left alone: another plugin may share them)."""
    def section(rrs: list[Any]) -> list[Any]:
        return [RR(r.rname, r.rtype, r.rclass, ttl, r.rdata) for r in rrs if r.rtype != w.OPT]

    out = copy_message(msg)
    out.rr = section(msg.rr)
    out.auth = section(msg.auth)
    out.ar = section(msg.ar)
    out.set_header_qa()
    return out


__all__ = ["Cache", "CachedReply", "CacheConfig", "Entry", "Outcome"]
