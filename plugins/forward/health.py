"""In-band health checking of one upstream (CoreDNS's ``proxy`` health checker
driven by ``pkg/up``).

Nothing is probed while exchanges succeed. A failed exchange calls :meth:`kick`,
which starts one probe loop for the upstream unless one is already running: send
``<domain> IN NS`` (RD unless ``no_rec``) on a fresh connection with a 1 s timeout;
*any* reply, whatever its rcode, means healthy: the fail counter goes back to 0
and the loop ends. A failure increments the counter (and
``coredns_proxy_healthcheck_failures_total``), waits the interval and tries again.
The upstream is down while the counter is greater than ``max_fails``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pycorefile import wire as w

from .upstream import ExchangeError, InvalidRequest, Query, Upstream

log = logging.getLogger("pycorefile.plugins.forward")

#: Read/write timeout of one probe (CoreDNS: 1 s).
PROBE_TIMEOUT = 1.0
NS = 2


class HealthCheck:
    """The probe loop of one upstream; at most one runs at a time.

    ``proto`` is ``"udp"`` or ``"tcp"`` (``force_tcp``); TLS upstreams always
    probe over TLS. ``timeout`` may be lowered by tests.
    """

    def __init__(
        self,
        upstream: Upstream,
        *,
        interval: float = 0.5,
        domain: str = ".",
        recursion_desired: bool = True,
        proto: str = "udp",
        timeout: float = PROBE_TIMEOUT,
    ) -> None:
        self.upstream = upstream
        self.interval = interval
        self.domain = domain
        self.recursion_desired = recursion_desired
        self.proto = proto
        self.timeout = timeout
        self.task: asyncio.Task[None] | None = None
        self.stopped = False
        qwire = w.text_to_wire(domain)
        self._key = w.lower_wire(qwire) + w.QTAIL.pack(NS, 1)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def kick(self) -> None:
        """Start probing (on the running loop) unless a probe loop is already running."""
        if self.stopped or self.running:
            return
        self.task = asyncio.get_running_loop().create_task(
            self._run(), name=f"forward health {self.upstream.addr}"
        )

    def query(self) -> Query:
        body = w.build_query(self.domain, NS, 1, qid=0, rd=self.recursion_desired)
        return Query(body, self._key, 512)

    async def check(self) -> bool:
        """One probe: does the upstream answer at all?"""
        try:
            await self.upstream.transport.probe(self.query(), self.proto, self.timeout)
        except (ExchangeError, InvalidRequest, OSError):
            return False
        return True

    async def check_and_count(self) -> bool:
        """One probe with its bookkeeping (CoreDNS's ``Check``)."""
        up = self.upstream
        if await self.check():
            up.fails = 0
            return True
        up.hc_failures.inc()
        up.fails += 1
        return False

    async def _run(self) -> None:
        try:
            while not self.stopped:
                if await self.check_and_count():
                    return
                await asyncio.sleep(self.interval)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not leave an unretrieved task exception
            log.exception("health check of %s failed", self.upstream.addr)

    async def stop(self) -> None:
        """Cancel the probe loop (if any) and wait for it to end."""
        self.stopped = True
        task, self.task = self.task, None
        if task is None or task.done():
            return
        task.cancel()
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            return
        if task.get_loop() is current:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def restart(self) -> None:
        """Allow probing again after :meth:`stop` (a Resolver reused after close)."""
        self.stopped = False
