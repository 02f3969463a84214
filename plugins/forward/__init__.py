"""CoreDNS's ``forward``: send queries to upstream DNS servers.

``forward FROM TO... { options }`` (see ``README.md`` next to this file). One
instance per ``forward`` line; several lines in a block run in Corefile order, and
``next``/``next_on_nodata`` hand a query from one to the following one.

Modules: :mod:`.setup` reads the directive, :mod:`.policy` orders the upstreams,
:mod:`.upstream` talks to them (UDP, TCP, TLS, connection reuse, ID matching),
:mod:`.health` probes an upstream after a failure, :mod:`.replies` shapes the
reply bytes for the client.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from pycorefile import wire as w
from pycorefile.chain import Next, Plugin, Reply, Request, SetupContext, next_plugin, to_loop
from pycorefile.corefile.model import Directive
from pycorefile.metrics import MetricsRegistry

from .health import PROBE_TIMEOUT, HealthCheck
from .policy import POLICIES, Policy, make_policy
from .replies import for_client, is_nodata, matches
from .setup import ForwardConfig, UpstreamSpec, parse_forward
from .upstream import (
    CachedClosed,
    ExchangeError,
    InvalidRequest,
    MockTransport,
    NetTransport,
    Query,
    Transport,
    Upstream,
)

__all__ = [
    "FORWARD_TIMEOUT",
    "POLICIES",
    "PROBE_TIMEOUT",
    "ExchangeError",
    "Forward",
    "ForwardConfig",
    "HealthCheck",
    "MockTransport",
    "NetTransport",
    "Policy",
    "Query",
    "Transport",
    "Upstream",
    "UpstreamSpec",
    "parse_forward",
]

#: How long one query may keep trying upstreams. Checked between attempts only, so
#: with the default 2 s read timeout a query to black holes ends after about 6 s.
FORWARD_TIMEOUT = 5.0
#: The error when every upstream is down and ``failfast_all_unhealthy_upstreams`` is set.
ERR_NO_HEALTHY = "no healthy proxies"


def _in_zone(name: str, zone: str) -> bool:
    """``name`` is ``zone`` or below it (both lower-cased FQDNs in presentation form)."""
    if zone == "." or name == zone:
        return True
    cut = len(name) - len(zone)
    if cut < 2 or not name.endswith(zone) or name[cut - 1] != ".":
        return False
    # The dot before the suffix must be a label separator, not an escaped "\.".
    slashes = 0
    i = cut - 2
    while i >= 0 and name[i] == "\\":
        slashes += 1
        i -= 1
    return slashes % 2 == 0


class Forward(Plugin):
    """One ``forward`` line: its upstreams, their health and the per-query algorithm
    of CoreDNS (spec §1.2)."""

    name = "forward"
    #: CoreDNS lets queries of any class reach forward (the server refuses non-IN
    #: classes only when no plugin of the block handles them).
    enables_chaos = True

    def __init__(self, config: ForwardConfig) -> None:
        self.config = config
        self.from_zone = config.from_zone
        self.ignored = tuple(config.ignored)
        self.force_tcp = config.force_tcp
        self.prefer_udp = config.prefer_udp and not config.force_tcp
        self.max_fails = config.max_fails
        self.max_concurrent = config.max_concurrent
        self.connect_attempts = config.connect_attempts
        self.failover_rcodes = frozenset(config.failover_rcodes)
        self.next_rcodes = frozenset(config.next_rcodes)
        self.next_on_nodata = config.next_on_nodata
        self.failfast = config.failfast
        self.policy: Policy = make_policy(config.policy)
        self.upstreams: list[Upstream] = []
        for spec in config.upstreams:
            transport = NetTransport(
                spec,
                tls=config.tls_context,
                source_address=config.source_address,
                expire=config.expire,
                max_age=config.max_age,
                max_idle_conns=config.max_idle_conns,
                read_timeout=config.read_timeout,
            )
            up = Upstream(spec, transport)
            up.health = HealthCheck(
                up,
                interval=config.hc_interval,
                domain=config.hc_domain,
                recursion_desired=config.hc_recursion_desired,
                proto="tcp" if config.force_tcp else "udp",
            )
            self.upstreams.append(up)
        self._inflight = 0
        self._rng = random.Random()
        self._limit_error = f"concurrent queries exceeded maximum {config.max_concurrent}"
        self.register_metrics(MetricsRegistry())

    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Forward:
        return cls(parse_forward(directive, ctx))

    def register_metrics(self, metrics: MetricsRegistry) -> None:
        self._broken = metrics.counter(
            "coredns_forward_healthcheck_broken_total",
            "Queries that found every upstream of a forward line down.",
        )
        self._rejects = metrics.counter(
            "coredns_forward_max_concurrent_rejects_total",
            "Queries refused because max_concurrent queries were already in flight.",
        )
        for up in self.upstreams:
            up.bind_metrics(metrics)

    # -- lifecycle -----------------------------------------------------------------
    async def start(self, engine: Any) -> None:
        # Sockets are opened lazily by the first query (the in-process Resolver
        # never calls start); this only re-arms health checking after a stop.
        for up in self.upstreams:
            up.transport.reopen()
            if up.health is not None:
                up.health.restart()

    async def stop(self) -> None:
        """Cancel health checks and close every upstream socket (safe to call twice)."""
        for up in self.upstreams:
            if up.health is not None:
                await up.health.stop()
            await up.transport.close()

    # -- serving ------------------------------------------------------------------
    def match(self, name: str) -> bool:
        """Does this line forward ``name``: at or below FROM and not excepted?"""
        zone = self.from_zone
        if zone != "." and not _in_zone(name, zone):
            return False
        if not self.ignored or name == zone:
            return True  # FROM itself can never be excluded
        return not any(_in_zone(name, ig) for ig in self.ignored)

    async def serve(self, request: Request, next: Next) -> Reply:
        if not self.match(request.name):
            return await next(request)
        # From here on everything runs on the engine's loop: sockets, tasks and the
        # counters below are only ever touched from that one thread.
        await to_loop(request)
        limit = self.max_concurrent
        if not limit:
            return await self._forward(request, next)
        self._inflight += 1
        try:
            if self._inflight > limit:
                # REFUSED, not SERVFAIL, so that a cache in front does not store it.
                self._rejects.inc()
                return Reply.fail(w.REFUSED, self._limit_error)
            return await self._forward(request, next)
        finally:
            self._inflight -= 1

    def _proto(self, request: Request, force_tcp: bool) -> str:
        if force_tcp:
            return "tcp"
        if self.prefer_udp:
            return "udp"
        return "udp" if request.proto == "udp" else "tcp"

    async def _forward(self, request: Request, next: Next) -> Reply:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FORWARD_TIMEOUT
        upstreams = self.upstreams
        count = len(upstreams)
        order = self.policy.order(upstreams)
        cap = self.connect_attempts
        attempts = fails = failovers = i = 0
        last_error: BaseException | None = None

        while loop.time() < deadline and (cap == 0 or attempts < cap):
            if i >= len(order):
                # End of the list with time and attempts left: start over.
                i = fails = 0
            up = order[i]
            i += 1
            if up.down(self.max_fails):
                fails += 1
                if fails < count:
                    continue
                self._broken.inc()
                if self.failfast:
                    break
                # Every upstream is down: assume the health checks are what is broken
                # and try one at random anyway.
                up = self._rng.choice(upstreams)

            data, reply, error = await self._attempt(up, request)
            last_error = error
            if data is None or reply is None:
                if isinstance(error, InvalidRequest):
                    return Reply.fail(w.FORMERR, error)
                if self.max_fails and up.health is not None:
                    up.health.kick()
                if cap:
                    attempts += 1
                    if attempts >= cap:
                        break
                if fails < count:
                    continue
                break

            if not matches(data, request.key):
                # A reply for another question: CoreDNS answers FORMERR (written).
                return Reply.of(request.reply(aa=False, rcode=w.FORMERR), self.name)

            rcode = data[3] & 0xF
            if rcode in self.failover_rcodes:
                failovers += 1
                if failovers < count:
                    continue
            if (rcode in self.next_rcodes or (self.next_on_nodata and is_nodata(data))) and (
                isinstance(next_plugin(next), Forward)
            ):
                return await next(request)
            return reply

        if last_error is not None:
            return Reply.fail(w.SERVFAIL, last_error)
        return Reply.fail(w.SERVFAIL, ERR_NO_HEALTHY)

    async def _attempt(
        self, up: Upstream, request: Request
    ) -> tuple[bytes | None, Reply | None, BaseException | None]:
        """One attempt at ``up``: ``(reply bytes, client reply, None)`` or
        ``(None, None, error)``.

        A pooled connection the peer had closed is replaced at once, and with
        ``prefer_udp`` a truncated UDP reply is asked again over TCP; neither
        counts as another attempt. A reply that cannot be decoded is a failed
        exchange, as in CoreDNS.
        """
        force_tcp = self.force_tcp
        while True:
            try:
                data = await up.exchange(request, self._proto(request, force_tcp))
            except CachedClosed:
                continue
            except (ExchangeError, InvalidRequest) as exc:
                return None, None, exc
            if data[2] & 0x02 and self.prefer_udp and not force_tcp:  # TC
                force_tcp = True
                continue
            reply = for_client(request, data, self.name)
            if not reply.final:
                try:
                    reply.message  # noqa: B018 - decode now: a broken reply is an error
                except Exception as exc:
                    return None, None, ExchangeError(f"dns: cannot unpack reply: {exc}")
            return data, reply, None

    def __repr__(self) -> str:
        ups = " ".join(u.addr for u in self.upstreams)
        return f"<Forward {self.from_zone} {ups}>"
