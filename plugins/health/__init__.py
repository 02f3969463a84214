"""CoreDNS's ``health``: ``GET /health`` answers 200 ``OK`` while the process runs."""

from __future__ import annotations

from typing import Any

from pycorefile.chain import Plugin, SetupContext
from pycorefile.corefile.model import Directive
from pycorefile.duration import parse_duration
from pycorefile.httpserver import HTTPListener, acquire, address_arg, release, route, text_app

DEFAULT_ADDRESS = ":8080"


class Health(Plugin):
    """Setup only: an HTTP liveness endpoint.

    ``lameduck DURATION`` delays shutdown by DURATION while DNS and ``/health`` keep
    answering, so load balancers notice before the process goes away.
    """

    name = "health"
    handler = False

    def __init__(self, address: str, lameduck: float) -> None:
        self.address = address
        self.lameduck = lameduck
        self.listener: HTTPListener | None = None

    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        address = address_arg(directive, cls.name, DEFAULT_ADDRESS)
        lameduck = 0.0
        for sub in directive.block or ():
            if sub.name != "lameduck":
                raise sub.error(f"unknown property '{sub.name}'", plugin=cls.name)
            if len(sub.args) != 1:
                raise sub.arg_error(cls.name)
            try:
                lameduck = parse_duration(sub.args[0])
            except ValueError as exc:
                raise sub.error(
                    f"unable to parse lameduck duration value: '{sub.args[0]}' : {exc}", plugin=cls.name
                ) from None
        return cls(address, lameduck)

    @classmethod
    def setup_all(cls, directives: Any, ctx: SetupContext) -> list[Plugin]:
        # CoreDNS reads every "health" line of a block and keeps the last.
        return [cls.setup(directives[-1], ctx)] if len(directives) > 1 else super().setup_all(directives, ctx)

    async def start(self, engine: Any) -> None:
        self.listener = acquire(
            engine, "health", self.address, lambda: route("/health", text_app(lambda: (200, "OK")))
        )

    async def stop(self) -> None:
        lst, self.listener = self.listener, None
        release(self.engine, "health", self.address, lst)
