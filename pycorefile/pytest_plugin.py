"""pytest fixtures for faking DNS: ``dns_mock`` and ``dns_server``.

``dns_mock`` answers every name lookup the test process makes (``socket``, asyncio,
uvloop, dnspython, aiodns, and the HTTP clients built on them) from a mapping, in
process; ``dns_server`` serves the same chain on a real UDP/TCP port on 127.0.0.1
for clients that need a server (subprocesses, C libraries). Both are drivers
around one :class:`pycorefile.mock.MockDNS` per test.

Fail closed: a name nothing answers gets NXDOMAIN, is recorded, and fails the test
(listing the names) unless it is allowed with ``passthrough`` or ``strict=False``.
Configuration: ``@pytest.mark.dns_mock(records=..., corefile=..., passthrough=...,
strict=...)`` per test, ini options ``dns_mock_strict`` and
``dns_mock_passthrough`` for the whole suite. See ``docs/pytest.md``.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .mock import MockDNS

_MOCK = pytest.StashKey["MockDNS"]()

MARKER = (
    "dns_mock(records=None, corefile=None, passthrough=None, strict=None): "
    "configure the dns_mock and dns_server fixtures (records: {name: value}, "
    "corefile: Corefile text used as the chain, passthrough: name suffixes resolved for real, "
    "strict: fail the test when a name has no record)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "dns_mock_strict",
        "dns_mock: fail a test that looks up a name with no record (default: true)",
        type="bool",
        default=True,
    )
    parser.addini(
        "dns_mock_passthrough",
        "dns_mock: name suffixes resolved by the real resolver (space or line separated)",
        type="args",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


def _settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    config = request.config
    strict = bool(config.getini("dns_mock_strict"))
    passthrough = list(config.getini("dns_mock_passthrough"))
    records: dict[str, Any] = {}
    corefile = None
    marker = request.node.get_closest_marker("dns_mock")
    if marker is not None:
        if marker.args:
            raise pytest.UsageError("@pytest.mark.dns_mock takes keyword arguments only")
        unknown = set(marker.kwargs) - {"records", "corefile", "passthrough", "strict"}
        if unknown:
            raise pytest.UsageError(f"@pytest.mark.dns_mock: unknown argument(s) {sorted(unknown)}")
        records = dict(marker.kwargs.get("records") or {})
        corefile = marker.kwargs.get("corefile")
        extra = marker.kwargs.get("passthrough") or []
        # The marker adds to the suite-wide passthrough list.
        passthrough += [extra] if isinstance(extra, str) else list(extra)
        if marker.kwargs.get("strict") is not None:
            strict = bool(marker.kwargs["strict"])
    return {"records": records, "corefile": corefile, "passthrough": passthrough, "strict": strict}


@pytest.fixture
def _pycorefile_dns(request: pytest.FixtureRequest) -> Iterator[MockDNS]:
    """The per-test MockDNS shared by ``dns_mock`` and ``dns_server``."""
    from .mock import MockDNS

    mock = MockDNS(**_settings(request))
    request.node.stash[_MOCK] = mock
    try:
        yield mock
    finally:
        mock.close()


@pytest.fixture
def dns_mock(_pycorefile_dns: MockDNS) -> Iterator[MockDNS]:
    """Fake DNS for this test, in process: every lookup the process makes is
    answered by the mapping (``add``, ``add_nxdomain``, ``add_failure``) or a
    Corefile (``corefile``); ``calls``, ``assert_queried``, ``assert_not_queried``,
    ``reset_calls``, ``resolver`` and ``metrics`` inspect it."""
    from .patching import patch

    with patch(_pycorefile_dns):
        yield _pycorefile_dns


class MockServer:
    """The test's fake DNS on a real port: ``host``, ``port``, ``nameserver``
    (``"127.0.0.1:PORT"``), ``address`` and ``resolv_conf``. The records API of
    :class:`~pycorefile.mock.MockDNS` (``add``, ``calls``, ...) is available here
    too, so the fixture works alone or next to ``dns_mock`` (same records)."""

    def __init__(self, mock: MockDNS, resolv_conf: str) -> None:
        self.mock = mock
        self.resolv_conf = resolv_conf

    @property
    def _server(self) -> Any:
        return self.mock.serve_loopback("dns_server")

    @property
    def host(self) -> str:
        return str(self._server.host)

    @property
    def port(self) -> int:
        return int(self._server.port)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def nameserver(self) -> str:
        return f"{self.host}:{self.port}"

    def dnspython_resolver(self, **kwargs: Any) -> Any:
        """A ``dns.resolver.Resolver`` pointed at this server (port included,
        which a resolv.conf cannot say)."""
        import dns.resolver

        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [self.host]
        r.port = self.port
        for k, v in kwargs.items():
            setattr(r, k, v)
        return r

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.mock, name)

    def __repr__(self) -> str:
        return f"<dns_server {self.nameserver}>"


def _write_resolv_conf(directory: str, port: int) -> str:
    path = os.path.join(directory, "resolv.conf")
    with open(path, "w", encoding="ascii") as f:
        # resolv.conf has no port syntax glibc, musl or dnspython understand:
        # "nameserver" names the address, the port is set by the client
        # (dnspython: resolver.port; c-ares: "127.0.0.1:PORT"; dig: -p PORT).
        f.write(f"# pycorefile dns_server on 127.0.0.1 port {port}\n")
        f.write("nameserver 127.0.0.1\n")
        f.write(f"options port:{port} timeout:1 attempts:1\n")
    return path


@pytest.fixture
def dns_server(_pycorefile_dns: MockDNS) -> Iterator[MockServer]:
    """The test's fake DNS served on 127.0.0.1 (UDP and TCP, a free port)."""
    srv = _pycorefile_dns.serve_loopback("dns_server")
    directory = tempfile.mkdtemp(prefix="pycorefile-dns-")
    try:
        yield MockServer(_pycorefile_dns, _write_resolv_conf(directory, srv.port))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------------------
# Fail closed and reporting
# ---------------------------------------------------------------------------


def _fail_text(mock: MockDNS) -> str:
    names = mock.unmatched_names()
    lines = [f"dns_mock: {len(names)} name(s) with no record looked up (fail closed):"]
    lines += [f"  {n}" for n in names]
    lines.append(
        "Add them with dns_mock.add(...) / add_nxdomain(...), allow them with "
        "@pytest.mark.dns_mock(passthrough=[...]) or the dns_mock_passthrough ini option, "
        "or turn the check off with @pytest.mark.dns_mock(strict=False)."
    )
    return "\n".join(lines)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    mock = item.stash.get(_MOCK, None)
    if mock is None:
        return
    rep = outcome.get_result()
    if rep.when != "call":
        return
    missing = bool(mock.unmatched)
    if missing and mock.strict and rep.passed:
        rep.outcome = "failed"
        rep.longrepr = _fail_text(mock)
    elif missing and mock.strict and rep.failed:
        rep.sections.append(("dns_mock: names with no record", _fail_text(mock)))
    if rep.failed:
        rep.sections.append(("dns_mock calls", mock.format_calls()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield
    if _MOCK not in item.stash:
        return
    # pytest-socket lifts its guards in its own teardown hook, which runs before the
    # fixtures are finalised; restoring the patch then puts back the guard that was
    # there at setup. Lift it again so the next test starts clean.
    ps = sys.modules.get("pytest_socket")
    if ps is not None and item.config.pluginmanager.is_registered(ps):
        if socket.getaddrinfo is getattr(ps, "_guarded_getaddrinfo", None) or (
            socket.gethostbyname is getattr(ps, "_guarded_gethostbyname", None)
        ):
            ps.enable_socket()
