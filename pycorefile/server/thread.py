"""A real server in a background thread: ``with pycorefile.serve(text) as srv``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..corefile.model import Corefile
from ..routing import Engine
from .dns import DNSServer


class ServerThread:
    """A :class:`DNSServer` running on its own event loop in a daemon thread.

    ``addresses`` lists the bound ``(host, port)`` pairs (ports chosen by the
    kernel for ``:0`` keys are resolved); ``host``/``port`` are the first one.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.server = DNSServer(engine)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return self.server.addresses

    @property
    def host(self) -> str:
        return self.addresses[0][0]

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    @property
    def metrics(self) -> Any:
        return self.engine.metrics

    def start(self) -> ServerThread:
        from ..resolver import new_event_loop

        loop = new_event_loop()
        self.loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as exc:  # reported to the starting thread
                self._error = exc
                self._started.set()
                return
            self._started.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="pycorefile-server", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            loop.close()
            raise self._error
        return self

    def stop(self, grace: float = 5.0) -> None:
        loop = self.loop
        if loop is None or self._thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self.server.stop(grace), loop)
        try:
            fut.result(timeout=grace + 5)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=5)
            loop.close()
            self.loop = None

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def serve(corefile: str | Corefile, *, filename: str = "Corefile") -> Iterator[ServerThread]:
    """Run a real UDP/TCP server for ``corefile`` until the ``with`` block ends."""
    from ..resolver import _load

    model = _load(corefile, filename)
    srv = ServerThread(Engine(model)).start()
    try:
        yield srv
    finally:
        srv.stop()
