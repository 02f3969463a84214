"""CoreDNS's ``ready``: ``GET /ready`` is 200 when every plugin reports ready."""

from __future__ import annotations

from typing import Any

from pycorefile.chain import Plugin, SetupContext
from pycorefile.corefile.model import Directive
from pycorefile.httpserver import HTTPListener, acquire, address_arg, release, route, text_app

DEFAULT_ADDRESS = ":8181"
MONITOR_TYPES = ("until-ready", "continuously")


class Ready(Plugin):
    """Setup only: an HTTP readiness endpoint.

    200 ``OK`` once every handler plugin of every server block reports ready
    (``Plugin.ready()``), else 503 with the names of those that are not, comma
    separated and sorted. With ``monitor until-ready`` (default) a plugin that was
    ready once is not asked again; ``continuously`` asks every time. While the
    server shuts down the answer is 503 ``Shutting down``.
    """

    name = "ready"
    handler = False
    once = True

    def __init__(self, address: str, continuously: bool) -> None:
        self.address = address
        self.continuously = continuously
        self.listener: HTTPListener | None = None
        self._done: set[int] = set()
        self._running = False

    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        address = address_arg(directive, cls.name, DEFAULT_ADDRESS)
        continuously = False
        for sub in directive.block or ():
            if sub.name != "monitor":
                raise sub.error(f"unknown property '{sub.name}'", plugin=cls.name)
            if len(sub.args) != 1:
                raise sub.arg_error(cls.name)
            if sub.args[0] not in MONITOR_TYPES:
                raise sub.error(f"monitor type '{sub.args[0]}' not supported", plugin=cls.name)
            continuously = sub.args[0] == "continuously"
        return cls(address, continuously)

    def status(self) -> tuple[int, str]:
        if not self._running or self.engine is None:
            return 503, "Shutting down"
        waiting = set()
        for p in self.engine.plugins():
            if not p.handler or id(p) in self._done:
                continue
            if p.ready():
                if not self.continuously:
                    self._done.add(id(p))
            else:
                waiting.add(p.name)
        if not waiting:
            return 200, "OK"
        return 503, ",".join(sorted(waiting))

    async def start(self, engine: Any) -> None:
        self._running = True
        self.listener = acquire(
            engine, "ready", self.address, lambda: route("/ready", text_app(self.status))
        )

    def draining(self) -> None:
        # During lameduck and shutdown /ready answers 503 "Shutting down".
        self._running = False

    async def stop(self) -> None:
        self._running = False
        lst, self.listener = self.listener, None
        release(self.engine, "ready", self.address, lst)
