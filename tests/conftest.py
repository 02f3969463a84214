"""Shared pytest fixtures.

Upstream servers (see ``tests/upstreams.py``):

``nsd`` (session)
    :class:`~upstreams.NsdServer` serving ``example.test.``. Shared by the whole session: do
    not stop it from a test; start your own ``NsdServer()`` to test an upstream going away.
``knot`` (session)
    :class:`~upstreams.KnotServer`, same zone.
``authoritative`` (session, parametrized ``nsd`` / ``knot``)
    Runs a test against both authoritative implementations.
``dnsmasq_upstream`` (session)
    :class:`~upstreams.DnsmasqServer` answering the same names from local records.
``relay`` (function)
    A fresh :class:`~upstreams.FaultRelay` in front of the session ``nsd``, in ``pass`` mode
    with no recorded queries; closed after the test.
``relay_factory`` (function)
    ``relay_factory(upstream=None, **kwargs)`` makes more relays (default upstream: the
    session ``nsd``), all closed after the test. For tests with several upstreams.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The helper modules next to this file are imported as top-level modules. pytest's default
# import mode puts this directory on sys.path anyway; this keeps them importable under
# --import-mode=importlib too.
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from upstreams import (  # noqa: E402
    Authoritative,
    DnsmasqServer,
    Endpoint,
    FaultRelay,
    KnotServer,
    NsdServer,
)

# ---------------------------------------------------------------------------------------------
# Upstream DNS servers and the fault-injecting relay.


@pytest.fixture(scope="session")
def nsd() -> Iterator[NsdServer]:
    with NsdServer() as server:
        yield server


@pytest.fixture(scope="session")
def knot() -> Iterator[KnotServer]:
    with KnotServer() as server:
        yield server


@pytest.fixture(scope="session", params=["nsd", "knot"])
def authoritative(request: pytest.FixtureRequest) -> Authoritative:
    server: Authoritative = request.getfixturevalue(request.param)
    return server


@pytest.fixture(scope="session")
def dnsmasq_upstream() -> Iterator[DnsmasqServer]:
    with DnsmasqServer() as server:
        yield server


@pytest.fixture
def relay_factory(nsd: NsdServer) -> Iterator[Callable[..., FaultRelay]]:
    relays: list[FaultRelay] = []

    def make(upstream: str | tuple[str, int] | Endpoint | None = None, **kwargs: Any) -> FaultRelay:
        if not nsd.running:  # a test stopped the shared server after all: bring it back
            nsd.start()
        relay = FaultRelay(nsd if upstream is None else upstream, **kwargs)
        relays.append(relay)
        return relay.start()

    try:
        yield make
    finally:
        for relay in relays:
            relay.close()


@pytest.fixture
def relay(relay_factory: Callable[..., FaultRelay]) -> FaultRelay:
    return relay_factory()
