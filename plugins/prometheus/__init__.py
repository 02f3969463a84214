"""CoreDNS's ``prometheus`` (metrics) plugin: ``coredns_dns_*`` metrics and ``/metrics``.

Names, types, labels and buckets are CoreDNS's (``plugin/metrics/vars``), so
dashboards and alert rules written for CoreDNS work unchanged. Recording one query
costs a tuple, a dict look-up and two list adds (see :class:`Recorder`); the series
are derived at scrape time and exposed by prometheus_client.
"""

from __future__ import annotations

import platform
import threading
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from pycorefile import __version__
from pycorefile import wire as w
from pycorefile.chain import Plugin, Reply, Request, SetupContext
from pycorefile.corefile.model import Directive
from pycorefile.httpserver import HTTPListener, acquire, address_arg, release, route
from pycorefile.metrics import DURATION_BUCKETS, SIZE_BUCKETS, Metric, MetricsRegistry

DEFAULT_ADDRESS = "localhost:9153"

#: Query types kept as their own ``type`` label value; everything else is "other"
#: (CoreDNS ``vars.monitorType``).
MONITORED_TYPES = frozenset({
    "A", "AAAA", "CNAME", "DNSKEY", "DS", "MX", "NSEC3", "NSEC", "NS", "PTR", "RRSIG",
    "SOA", "SRV", "TXT", "HTTPS", "SVCB", "IXFR", "AXFR", "ANY",
})
DROPPED = "dropped"


def rcode_label(rcode: int) -> str:
    return w.rcode_name(rcode)


def declare(metrics: MetricsRegistry) -> dict[str, Any]:
    """Declare the core ``coredns_*`` metrics on ``metrics`` (idempotent)."""
    labels = ("server", "zone", "view")
    return {
        "requests": metrics.counter(
            "coredns_dns_requests_total", "Counter of DNS requests made per zone, protocol and family.",
            labels + ("proto", "family", "type"),
        ),
        "do": metrics.counter(
            "coredns_dns_do_requests_total", "Counter of DNS requests with DO bit set per zone.", labels
        ),
        "duration": metrics.histogram(
            "coredns_dns_request_duration_seconds", "Histogram of the time (in seconds) each request took per zone.",
            labels, DURATION_BUCKETS,
        ),
        "req_size": metrics.histogram(
            "coredns_dns_request_size_bytes", "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
            labels + ("proto",), SIZE_BUCKETS,
        ),
        "resp_size": metrics.histogram(
            "coredns_dns_response_size_bytes", "Size of the returned response in bytes.",
            labels + ("proto",), SIZE_BUCKETS,
        ),
        "responses": metrics.counter(
            "coredns_dns_responses_total", "Counter of response status codes.",
            labels + ("rcode", "plugin"),
        ),
        "panics": metrics.counter("coredns_panics_total", "A metrics that counts the number of panics."),
        "build": metrics.gauge(
            "coredns_build_info",
            "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
            ("version", "revision", "goversion"),
        ),
        "enabled": metrics.gauge(
            "coredns_plugin_enabled", "A metric that indicates whether a plugin is enabled on per server and zone basis.",
            ("server", "zone", "view", "name"),
        ),
    }


#: Cells of a raw slot: one count per duration bucket (the last is +Inf), then the
#: sum of the durations.
_DURATIONS = len(DURATION_BUCKETS) + 1
_DSUM = _DURATIONS
_FIRST = DURATION_BUCKETS[0]
#: How many raw slots are kept before they are folded into the label-set totals.
RAW_LIMIT = 4096

#: A raw slot's key: everything the six ``coredns_dns_*`` series of one query depend
#: on, exactly as the query had it (server, zone, proto, is-IPv6, qtype, DO, request
#: size, rcode, plugin, response size).
RawKey = tuple[str, str, str, bool, int, bool, int, int, str, int]


class Recorder:
    """Records queries into one engine's metrics; shared by every prometheus plugin
    of that engine (and by the engine for queries no block accepted).

    Recording a query costs one tuple, one dict look-up and two list updates: the
    query's raw facts select a *slot* (a list of duration-bucket counts and the
    duration sum), and nothing else is touched. The six ``coredns_dns_*`` metrics
    are derived from the slots when they are read (a scrape, :meth:`sync`). When
    there are :data:`RAW_LIMIT` raw slots (many sizes or types), they are folded
    into per-label-set totals, so memory stays bounded by the label sets.

    Threads: the in-process Resolver records from its callers' threads. An update
    (``slot[i] += 1``) runs no Python call between its read and its write, so the
    GIL never switches threads inside it and no count is lost; new slots are made
    with the atomic ``dict.setdefault``. Reads and folds take the lock. A thread
    that fetched a slot just before a fold moved it can still add to the old slot:
    that one count is lost, which can only happen to a process that records more
    than :data:`RAW_LIMIT` query shapes from several threads at once.
    """

    def __init__(self, metrics: MetricsRegistry) -> None:
        self.m = declare(metrics)
        #: Raw slots: written by the query path without a lock.
        self.raw: dict[RawKey, list[Any]] = {}
        #: Folded totals by label set (type label, size buckets): duration counts,
        #: duration sum, request-size sum, response-size sum.
        self._folded: dict[tuple[Any, ...], list[Any]] = {}
        self._lock = threading.Lock()
        for name in _DERIVED:
            self.m[name].sync = self.sync
        self.m["build"].labels(__version__, "", "python" + platform.python_version()).set(1)

    def slot(self, key: RawKey) -> list[Any]:
        """The raw slot for ``key``, created on first use."""
        if len(self.raw) >= RAW_LIMIT:
            self.fold()
        # setdefault is atomic: two threads recording a new key share one slot.
        return self.raw.setdefault(key, [0] * _DURATIONS + [0.0])

    def record(self, req: Request, zone: str, rcode: int, plugin: str, size: int, seconds: float) -> None:
        """Record one query (the observer in :class:`Prometheus` inlines this)."""
        key = (req.server, zone, req.proto, ":" in req.client[0], req.qtype, req.do,
               len(req.wire), rcode, plugin, size)
        slot = self.raw.get(key) or self.slot(key)
        slot[bisect_left(DURATION_BUCKETS, seconds)] += 1
        slot[_DSUM] += seconds

    def unrouted(self, req: Request, reply: Reply, size: int) -> None:
        # Queries the server answered itself: zone "dropped", no plugin, the size of
        # that reply (CoreDNS server.go errorAndMetricsFunc).
        self.record(req, DROPPED, reply.rcode, "", size, 0.0)

    @staticmethod
    def _totals(key: RawKey, slot: list[Any]) -> tuple[tuple[Any, ...], list[Any]]:
        """A raw slot as its label set (type label, size buckets) and its totals:
        duration counts, duration sum, request-size sum, response-size sum."""
        server, zone, proto, v6, qtype, do, nreq, rcode, plugin, size = key
        count = sum(slot[:_DURATIONS])
        label_set = (server, zone, proto, v6, _TYPE_LABELS.get(qtype, "other"), do,
                     bisect_left(SIZE_BUCKETS, nreq), rcode, plugin, bisect_left(SIZE_BUCKETS, size))
        return label_set, slot[: _DURATIONS + 1] + [count * nreq, count * size]

    def fold(self) -> None:
        """Move the raw slots into the label-set totals and start afresh."""
        with self._lock:
            raw, self.raw = self.raw, {}
            folded = self._folded
            for key, slot in raw.items():
                label_set, totals = self._totals(key, slot)
                into = folded.get(label_set)
                if into is None:
                    folded[label_set] = totals
                else:
                    for i, n in enumerate(totals):
                        into[i] += n

    def sync(self) -> None:
        """Write the current totals into the six derived metrics (at read time)."""
        with self._lock:
            # Copies: a fold after the lock is released must not change these rows.
            rows = [(label_set, totals[:]) for label_set, totals in self._folded.items()]
            rows += [self._totals(key, slot) for key, slot in list(self.raw.items())]
        m = self.m
        requests: dict[tuple[str, ...], Any] = {}
        do: dict[tuple[str, ...], Any] = {}
        duration: dict[tuple[str, ...], Any] = {}
        req_size: dict[tuple[str, ...], Any] = {}
        resp_size: dict[tuple[str, ...], Any] = {}
        responses: dict[tuple[str, ...], Any] = {}
        for (server, zone, proto, v6, qtype, is_do, rq, rcode, plugin, rs), tot in rows:
            count = sum(tot[:_DURATIONS])
            _child(requests, m["requests"], (server, zone, "", proto, "2" if v6 else "1", qtype)).value += count
            if is_do:
                _child(do, m["do"], (server, zone, "")).value += count
            h = _child(duration, m["duration"], (server, zone, ""))
            for i in range(_DURATIONS):
                h.counts[i] += tot[i]
            h.sum += tot[_DSUM]
            h = _child(req_size, m["req_size"], (server, zone, "", proto))
            h.counts[rq] += count
            h.sum += tot[_DSUM + 1]
            h = _child(resp_size, m["resp_size"], (server, zone, "", proto))
            h.counts[rs] += count
            h.sum += tot[_DSUM + 2]
            _child(responses, m["responses"], (server, zone, "", rcode_label(rcode), plugin)).value += count
        m["requests"].replace(requests)
        m["do"].replace(do)
        m["duration"].replace(duration)
        m["req_size"].replace(req_size)
        m["resp_size"].replace(resp_size)
        m["responses"].replace(responses)


#: The metrics :class:`Recorder` derives from its slots.
_DERIVED = ("requests", "do", "duration", "req_size", "resp_size", "responses")
_TYPE_LABELS = {w.qtype_code(t): t for t in MONITORED_TYPES}


def _child(children: dict[tuple[str, ...], Any], metric: Metric, labels: tuple[str, ...]) -> Any:
    """The child for ``labels`` in a set being built by :meth:`Recorder.sync`."""
    child = children.get(labels)
    if child is None:
        child = children[labels] = metric.new_child()
    return child


class Prometheus(Plugin):
    """Records every query of its server block and serves ``/metrics``."""

    name = "prometheus"
    once = True
    observer = True

    def __init__(self, address: str, zones: Sequence[str]) -> None:
        self.address = address
        self.zones = tuple(sorted(zones, key=len, reverse=True))
        self._zone_set = frozenset(self.zones)
        self.recorder: Recorder | None = None
        self.listener: HTTPListener | None = None

    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        address = address_arg(directive, cls.name, DEFAULT_ADDRESS)
        for sub in directive.block or ():
            if sub.name == "runtime_metrics":
                if sub.args:
                    raise sub.arg_error(cls.name)
            elif sub.name == "tls":
                raise sub.error(
                    "the 'tls' option (HTTPS metrics) is not supported by pycorefile", plugin=cls.name
                )
            else:
                raise sub.error(f"unknown option: {sub.name}", plugin=cls.name)
        return cls(address, ctx.zones)

    def register_metrics(self, metrics: MetricsRegistry) -> None:
        engine = self.engine
        shared = engine.shared if engine is not None else {}
        rec = shared.get("prometheus.recorder")
        if rec is None:
            rec = shared["prometheus.recorder"] = Recorder(metrics)
            if engine is not None:
                engine.unrouted_hooks.append(rec.unrouted)
        self.recorder = rec
        if engine is not None:
            # coredns_plugin_enabled: one series per handler of this block, per server.
            for server in engine.servers:
                for key in server.keys:
                    if self.server_block is not None and key in self.server_block.keys:
                        for chain in engine.chains:
                            if chain.block is self.server_block:
                                for p in chain.plugins:
                                    rec.m["enabled"].labels(server.label, key.zone, "", p.name).set(1)

    def zone_of(self, name: str) -> str:
        for z in self.zones:
            if z == "." or name == z or name.endswith("." + z):
                return z
        return "."

    def observe(self, request: Request, reply: Reply, seconds: float, after: str) -> None:
        """Record one query of this block. The server calls this after the chain
        (prometheus is an observer, not a link): CoreDNS 1.14 labels a written reply
        with the plugin right after prometheus (``after``), others with ``""``."""
        if reply.written:
            plugin = after
            data = reply._wire
            size = len(data) if data is not None else len(reply.wire)
        else:
            plugin = ""
            size = 0
        zone = request.zone
        if zone not in self._zone_set:
            zone = self.zone_of(request.name)
        # Recorder.record, written out: this runs for every query of the block.
        rec = self.recorder
        key = (request.server, zone, request.proto, ":" in request.client[0], request.qtype,
               request.do, len(request.wire), reply.rcode, plugin, size)
        slot = rec.raw.get(key) or rec.slot(key)  # type: ignore[union-attr]
        # Local answers take well under the first bound (0.25 ms): skip the search.
        slot[0 if seconds <= _FIRST else bisect_left(DURATION_BUCKETS, seconds)] += 1
        slot[_DSUM] += seconds

    async def start(self, engine: Any) -> None:
        def app() -> Any:
            exposition: Any = None

            def metrics(environ: dict[str, Any], start_response: Any) -> Any:
                # prometheus_client (about 10 MB) is imported by the first scrape, not
                # at start: a server nobody scrapes never loads it.
                nonlocal exposition
                if exposition is None:
                    from prometheus_client import make_wsgi_app

                    exposition = make_wsgi_app(engine.metrics.prometheus_registry())
                return exposition(environ, start_response)

            return route("/metrics", metrics)

        self.listener = acquire(engine, "prometheus", self.address, app)

    async def stop(self) -> None:
        lst, self.listener = self.listener, None
        release(self.engine, "prometheus", self.address, lst)
