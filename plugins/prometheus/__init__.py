"""CoreDNS's ``prometheus`` (metrics) plugin: ``coredns_dns_*`` metrics and ``/metrics``.

Names, types, labels and buckets are CoreDNS's (``plugin/metrics/vars``), so
dashboards and alert rules written for CoreDNS work unchanged. Recording one query
costs a dict look-up (label children are bound once per label set) and a few
integer adds; the exposition is built by prometheus_client at scrape time.
"""

from __future__ import annotations

import platform
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from pycorefile import __version__
from pycorefile import wire as w
from pycorefile.chain import Plugin, Reply, Request, SetupContext
from pycorefile.corefile.model import Directive
from pycorefile.httpserver import HTTPListener, acquire, address_arg, release, route
from pycorefile.metrics import DURATION_BUCKETS, SIZE_BUCKETS, MetricsRegistry

DEFAULT_ADDRESS = "localhost:9153"

#: Query types kept as their own ``type`` label value; everything else is "other"
#: (CoreDNS ``vars.monitorType``).
MONITORED_TYPES = frozenset({
    "A", "AAAA", "CNAME", "DNSKEY", "DS", "MX", "NSEC3", "NSEC", "NS", "PTR", "RRSIG",
    "SOA", "SRV", "TXT", "HTTPS", "SVCB", "IXFR", "AXFR", "ANY",
})
DROPPED = "dropped"


def type_label(qtype: int) -> str:
    name = w.qtype_name(qtype)
    return name if name in MONITORED_TYPES else "other"


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


class _Children:
    """The label children one (server, zone, proto, family, type) needs."""

    __slots__ = ("requests", "do", "duration", "req_size", "resp_size", "resp", "server", "zone")

    def __init__(self, m: dict[str, Any], server: str, zone: str, proto: str, family: str, qtype: str) -> None:
        self.server = server
        self.zone = zone
        self.requests = m["requests"].labels(server, zone, "", proto, family, qtype)
        self.do = m["do"].labels(server, zone, "")
        self.duration = m["duration"].labels(server, zone, "")
        self.req_size = m["req_size"].labels(server, zone, "", proto)
        self.resp_size = m["resp_size"].labels(server, zone, "", proto)
        self.resp: dict[tuple[int, str], Any] = {}


class Recorder:
    """Records queries into one engine's metrics; shared by every prometheus plugin
    of that engine (and by the engine for queries no block accepted)."""

    def __init__(self, metrics: MetricsRegistry) -> None:
        self.m = declare(metrics)
        #: (server, zone, proto, client address, qtype) → children: the client's
        #: address stands for its family without computing it per query.
        self._children: dict[tuple[str, str, str, str, int], _Children] = {}
        self._by_labels: dict[tuple[str, str, str, int, int], _Children] = {}
        self.m["build"].labels(__version__, "", "python" + platform.python_version()).set(1)

    def children(self, req: Request, zone: str) -> _Children:
        """The label children for this query's label set (the per-client cache in
        :meth:`record` points at these; one set per family, not per client)."""
        key = (req.server, zone, req.proto, req.family, req.qtype)
        c = self._by_labels.get(key)
        if c is None:
            c = self._by_labels[key] = _Children(
                self.m, req.server, zone, req.proto, str(req.family), type_label(req.qtype)
            )
        if len(self._children) >= 65536:
            self._children.clear()  # bounded: many distinct clients
        return c

    def record(self, req: Request, zone: str, rcode: int, plugin: str, size: int, seconds: float) -> None:
        # Runs for every query: the updates are written out with locals rather than
        # method calls, and the label children come from one dict look-up.
        key = (req.server, zone, req.proto, req.client[0], req.qtype)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = self.children(req, zone)
        c.requests.value += 1
        if req.do:
            c.do.value += 1
        h = c.duration
        h.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
        h.sum += seconds
        n = len(req.wire)
        h = c.req_size
        h.counts[bisect_left(SIZE_BUCKETS, n)] += 1
        h.sum += n
        h = c.resp_size
        h.counts[bisect_left(SIZE_BUCKETS, size)] += 1
        h.sum += size
        child = c.resp.get((rcode, plugin))
        if child is None:
            child = c.resp[(rcode, plugin)] = self.m["responses"].labels(
                c.server, zone, "", rcode_label(rcode), plugin
            )
        child.value += 1

    def unrouted(self, req: Request, reply: Reply) -> None:
        # Queries the server refused itself: zone "dropped", no plugin (server.go).
        self.record(req, DROPPED, reply.rcode, "", 0, 0.0)


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
        self.recorder.record(request, zone, reply.rcode, plugin, size, seconds)  # type: ignore[union-attr]

    async def start(self, engine: Any) -> None:
        def app() -> Any:
            from prometheus_client import make_wsgi_app

            return route("/metrics", make_wsgi_app(engine.metrics.prometheus_registry()))

        self.listener = acquire(engine, "prometheus", self.address, app)

    async def stop(self) -> None:
        lst, self.listener = self.listener, None
        release(self.engine, "prometheus", self.address, lst)
