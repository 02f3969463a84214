"""CoreDNS's ``reload``: re-read the Corefile when its tokens change."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from typing import Any

from pycorefile.chain import Plugin, SetupContext
from pycorefile.corefile import CorefileError, tokenize
from pycorefile.corefile.model import Directive
from pycorefile.duration import parse_duration
from pycorefile.metrics import MetricsRegistry

log = logging.getLogger("pycorefile.plugins.reload")

MIN_INTERVAL = 2.0
MIN_JITTER = 1.0


def corefile_hash(text: str, filename: str = "Corefile") -> str:
    """SHA-512 of the Corefile's token texts: comments, blank lines and indentation do
    not count, as in CoreDNS (which hashes the parsed token structure). Imported files
    are not expanded, so changes inside them are not seen (coredns/coredns#2633)."""
    tokens = [t.text for t in tokenize(text, filename)]
    return hashlib.sha512(json.dumps(tokens).encode()).hexdigest()


class Reload(Plugin):
    """Setup only: checks the Corefile every INTERVAL (± JITTER/2) and asks the
    server to reload when it changed. A Corefile that fails to load is logged and
    the running configuration stays (``coredns_reload_failed_total``)."""

    name = "reload"
    handler = False
    once = True

    def __init__(self, interval: float = 30.0, jitter: float = 15.0) -> None:
        self.interval = interval
        self.jitter = jitter
        self._task: asyncio.Task[Any] | None = None
        self._hash = ""

    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        args = directive.args
        if len(args) > 2:
            raise directive.arg_error(cls.name)
        interval, jitter = 30.0, 15.0
        try:
            if args:
                interval = parse_duration(args[0])
            if len(args) > 1:
                jitter = parse_duration(args[1])
        except ValueError as exc:
            raise directive.error(str(exc), plugin=cls.name) from None
        if interval < MIN_INTERVAL:
            raise directive.error("interval value must be greater or equal to 2s", plugin=cls.name)
        if jitter and jitter < MIN_JITTER:
            raise directive.error("jitter value must be greater or equal to 1s", plugin=cls.name)
        return cls(interval, min(jitter, interval / 2))

    def register_metrics(self, metrics: MetricsRegistry) -> None:
        self.failed = metrics.counter(
            "coredns_reload_failed_total", "Counter of the number of failed reload attempts."
        )
        self.version = metrics.gauge(
            "coredns_reload_version_info", "A metric with a constant '1' value labeled by hash, and value which type of hash generated.",
            ("hash", "value"),
        )

    def _read(self) -> str | None:
        engine = self.engine
        path = engine.corefile.filename if engine is not None else ""
        try:
            with open(path, encoding="utf-8") as f:
                return corefile_hash(f.read(), path)
        except (OSError, CorefileError):
            return None

    async def start(self, engine: Any) -> None:
        self._hash = self._read() or ""
        if self._hash:
            self.version.labels("sha512", self._hash).set(1)
        self._task = asyncio.get_running_loop().create_task(self._watch(engine))

    async def _watch(self, engine: Any) -> None:
        while True:
            delay = self.interval + random.uniform(-self.jitter / 2, self.jitter / 2)
            await asyncio.sleep(max(delay, 0.1))
            current = self._read()
            if current and current != self._hash:
                trigger = engine.shared.get("reload")
                if trigger is None:
                    log.warning("Corefile changed, but this server cannot reload itself")
                    self._hash = current
                    continue
                log.info("Corefile changed: reloading")
                self._hash = current
                trigger()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
