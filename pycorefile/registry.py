"""Plugin discovery and the fixed execution order.

CoreDNS runs the plugins of a server block in the order of its ``plugin.cfg``, never
in Corefile order. :data:`COREDNS_ORDER` is that table (CoreDNS at 1.14.x). Built-in
and third-party plugins register through the ``pycorefile.plugins`` entry-point
group; a third-party plugin that is not in the table declares where it sits with
``Plugin.after`` / ``Plugin.before``.
"""

from __future__ import annotations

import importlib.metadata
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .chain import Plugin

#: CoreDNS's ``plugin.cfg`` order (first runs first).
COREDNS_ORDER: tuple[str, ...] = (
    "root", "metadata", "geoip", "cancel", "proxyproto", "quic", "grpc_server", "https",
    "https3", "timeouts", "multisocket", "reload", "nsid", "bufsize", "bind", "debug",
    "trace", "ready", "health", "pprof", "shed", "prometheus", "errors", "log", "dnstap",
    "local", "dns64", "any", "chaos", "loadbalance", "tsig", "rewrite", "autopath", "acl",
    "cache", "header", "dnssec", "tls", "minimal", "template", "transfer", "hosts",
    "route53", "azure", "clouddns", "k8s_external", "kubernetes", "file", "auto",
    "secondary", "etcd", "loop", "forward", "grpc", "erratic", "whoami", "on", "sign",
    "view", "nomad",
)

#: Directive names CoreDNS knows besides plugins (handled by the parser itself).
SPECIAL_DIRECTIVES = frozenset({"import"})

ENTRY_POINT_GROUP = "pycorefile.plugins"


class Registry:
    """Name → plugin class, plus the execution order.

    The default registry (:func:`default_registry`) loads entry points once, lazily.
    Tests may build their own and :meth:`register` classes directly.
    """

    def __init__(self) -> None:
        self._plugins: dict[str, type[Plugin]] = {}
        self._order: list[str] = list(COREDNS_ORDER)
        self._loaded = False
        self._lock = threading.Lock()
        self._failed: dict[str, str] = {}

    # -- discovery --------------------------------------------------------
    def load_entry_points(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
            for ep in eps:
                if ep.name in self._plugins:
                    continue
                try:
                    cls = ep.load()
                except Exception as exc:  # a broken third-party plugin must not break the rest
                    self._failed[ep.name] = f"{type(exc).__name__}: {exc}"
                    continue
                self._add(ep.name, cls)

    def register(self, cls: type[Plugin], name: str | None = None) -> type[Plugin]:
        """Register a plugin class (usable as a decorator)."""
        with self._lock:
            self._add(name or cls.name, cls)
        return cls

    def _add(self, name: str, cls: type[Plugin]) -> None:
        self._plugins[name] = cls
        if name in self._order:
            return
        after = getattr(cls, "after", None)
        before = getattr(cls, "before", None)
        if before and before in self._order:
            self._order.insert(self._order.index(before), name)
        elif after and after in self._order:
            self._order.insert(self._order.index(after) + 1, name)
        else:
            # Unplaced plugins run last, just before nothing: like an unknown
            # plugin appended to plugin.cfg.
            self._order.append(name)

    # -- queries ----------------------------------------------------------
    def get(self, name: str) -> type[Plugin] | None:
        self.load_entry_points()
        return self._plugins.get(name)

    def status(self, name: str) -> str:
        """``"supported"``, ``"coredns"`` (a CoreDNS plugin we do not implement),
        ``"special"`` (``import``) or ``"unknown"``."""
        self.load_entry_points()
        if name in self._plugins:
            return "supported"
        if name in SPECIAL_DIRECTIVES:
            return "special"
        if name in COREDNS_ORDER:
            return "coredns"
        return "unknown"

    def position(self, name: str) -> int:
        self.load_entry_points()
        try:
            return self._order.index(name)
        except ValueError:
            return len(self._order)

    def ordered(self) -> list[str]:
        """Registered plugin names in execution order."""
        self.load_entry_points()
        return [n for n in self._order if n in self._plugins]

    def failed(self) -> dict[str, str]:
        """Entry points that could not be imported, with the reason."""
        self.load_entry_points()
        return dict(self._failed)


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry of installed plugins."""
    global _default
    if _default is None:
        _default = Registry()
    return _default
