"""Cheap metrics with CoreDNS's names, exported through prometheus_client.

Recording a query must cost little, so the hot path touches only plain Python
objects: a child (one label set) is looked up once and then incremented with an
attribute add. At scrape time a custom collector turns them into
prometheus_client metric families. Every :class:`MetricsRegistry` is independent
(one per Resolver or server), never prometheus_client's global registry, so two
resolvers or two tests in one process never collide. prometheus_client is only
imported when something asks for an exposition.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

#: CoreDNS's duration buckets (``plugin/metrics/vars``): 0.25 ms · 2^i.
DURATION_BUCKETS: tuple[float, ...] = tuple(0.00025 * 2**i for i in range(16))
#: CoreDNS's request/response size buckets.
SIZE_BUCKETS: tuple[float, ...] = (
    0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000,
)


class _Child:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def set(self, value: float) -> None:
        self.value = value

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class _HistChild:
    __slots__ = ("counts", "sum", "bounds")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


class Metric:
    """A metric family: name, help, label names and its children.

    A metric whose values are derived from something else sets :attr:`sync`: it is
    called before the children are read, and refreshes them with :meth:`replace`.
    """

    kind = "counter"
    sync: Callable[[], None] | None = None

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()
        if not self.labelnames:
            self._children[()] = self.new_child()

    def new_child(self) -> Any:
        return _Child()

    def labels(self, *values: Any) -> Any:
        """The child for these label values (created once, then reused)."""
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            if len(key) != len(self.labelnames):
                raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {key}")
            with self._lock:
                child = self._children.setdefault(key, self.new_child())
        return child

    # Convenience for unlabelled metrics.
    def inc(self, amount: float = 1.0) -> None:
        self._children[()].inc(amount)

    def set(self, value: float) -> None:
        self._children[()].set(value)

    def observe(self, value: float) -> None:
        self._children[()].observe(value)

    def value(self, *values: Any) -> float:
        """Current value of a counter/gauge child (0 when it does not exist)."""
        if self.sync is not None:
            self.sync()
        child = self._children.get(tuple(str(v) for v in values))
        return child.value if child is not None else 0.0

    def remove(self, *values: Any) -> None:
        self._children.pop(tuple(str(v) for v in values), None)

    def items(self, sync: bool = True) -> list[tuple[tuple[str, ...], Any]]:
        if sync and self.sync is not None:
            self.sync()
        return list(self._children.items())

    def replace(self, children: dict[tuple[str, ...], Any]) -> None:
        """Swap in a whole new set of children (a derived metric's refresh)."""
        self._children = children


class Counter(Metric):
    kind = "counter"


class Gauge(Metric):
    kind = "gauge"


class Histogram(Metric):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Iterable[float] = DURATION_BUCKETS,
    ) -> None:
        self.buckets = tuple(float(b) for b in buckets)
        super().__init__(name, documentation, labelnames)

    def new_child(self) -> Any:
        return _HistChild(self.buckets)


class MetricsRegistry:
    """The metrics of one engine (one Resolver or one server process).

    Declaring the same name twice returns the existing metric, so every server
    block can declare what it uses without coordination.
    """

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self._lock = threading.Lock()
        self._prom: Any = None

    def _get(self, cls: type[Metric], name: str, *args: Any, **kw: Any) -> Any:
        m = self._metrics.get(name)
        if m is None:
            with self._lock:
                m = self._metrics.get(name)
                if m is None:
                    m = cls(name, *args, **kw)
                    self._metrics[name] = m
        if not isinstance(m, cls):
            raise ValueError(f"metric {name} already declared as a {m.kind}")
        return m

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
        return self._get(Counter, name, documentation, labelnames)

    def gauge(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self._get(Gauge, name, documentation, labelnames)

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Iterable[float] = DURATION_BUCKETS,
    ) -> Histogram:
        return self._get(Histogram, name, documentation, labelnames, buckets=buckets)

    def get(self, name: str) -> Metric | None:
        return self._metrics.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._metrics

    def names(self) -> list[str]:
        return sorted(self._metrics)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Value of a counter/gauge series (sum over children matching ``labels``)."""
        m = self._metrics.get(name)
        if m is None:
            return 0.0
        total = 0.0
        for key, child in m.items():
            if labels and any(
                key[m.labelnames.index(k)] != v for k, v in labels.items() if k in m.labelnames
            ):
                continue
            if isinstance(child, _HistChild):
                total += sum(child.counts)
            else:
                total += child.value
        return total

    # -- prometheus_client bridge -----------------------------------------
    def collect(self) -> Iterable[Any]:
        """Yield prometheus_client metric families (the custom collector API)."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        fam: Any
        metrics = list(self._metrics.values())
        for sync in {m.sync for m in metrics if m.sync is not None}:
            sync()  # once per source, not once per derived metric
        for m in metrics:
            items = m.items(sync=False)
            if isinstance(m, Histogram):
                fam = HistogramMetricFamily(m.name, m.documentation, labels=m.labelnames)
                for key, child in items:
                    acc = 0
                    buckets = []
                    for bound, count in zip(m.buckets + (float("inf"),), child.counts, strict=False):
                        acc += count
                        buckets.append((_fmt(bound), acc))
                    fam.add_metric(list(key), buckets, child.sum)
            elif isinstance(m, Gauge):
                fam = GaugeMetricFamily(m.name, m.documentation, labels=m.labelnames)
                for key, child in items:
                    fam.add_metric(list(key), child.value)
            else:
                base = m.name[:-6] if m.name.endswith("_total") else m.name
                fam = CounterMetricFamily(base, m.documentation, labels=m.labelnames)
                for key, child in items:
                    fam.add_metric(list(key), child.value)
            yield fam

    def prometheus_registry(self) -> Any:
        """A prometheus_client ``CollectorRegistry`` exposing these metrics
        (plus the process and platform collectors), created once."""
        if self._prom is None:
            from prometheus_client import CollectorRegistry
            from prometheus_client.platform_collector import PlatformCollector
            from prometheus_client.process_collector import ProcessCollector

            reg = CollectorRegistry(auto_describe=False)
            reg.register(_Bridge(self))
            ProcessCollector(registry=reg)
            PlatformCollector(registry=reg)
            self._prom = reg
        return self._prom

    def exposition(self) -> bytes:
        """The text exposition (what ``/metrics`` serves)."""
        from prometheus_client import generate_latest

        return generate_latest(self.prometheus_registry())


class _Bridge:
    def __init__(self, metrics: MetricsRegistry) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Any]:
        return self.metrics.collect()


def _fmt(bound: float) -> str:
    if bound == float("inf"):
        return "+Inf"
    return repr(float(bound)) if bound != int(bound) else f"{bound:.1f}"
