"""Faking DNS in tests with pycorefile's pytest plugin.

Run it with ``pytest examples/test_with_dns_mock.py``: installing pycorefile makes
the ``dns_mock`` and ``dns_server`` fixtures available, nothing to configure.

The code under test below is ordinary code that looks names up the usual way; the
tests decide what those names resolve to. Unknown names fail the test (fail closed):
a forgotten dependency on real DNS shows up as a test failure, not a flaky one.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# -- the code under test ------------------------------------------------------------------


def fetch_status(url: str) -> str:
    """Calls an HTTP service by name (the name is looked up with getaddrinfo)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as resp:
        return resp.read().decode()


def database_address(host: str = "db.internal.test") -> str:
    return socket.gethostbyname(host)


def mail_exchangers(domain: str) -> list[str]:
    import dns.resolver

    answer = dns.resolver.resolve(domain, "MX")
    return [r.exchange.to_text(omit_final_dot=True) for r in sorted(answer, key=lambda r: r.preference)]


async def is_reachable(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


# -- a local service to talk to -----------------------------------------------------------


@pytest.fixture
def status_service():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


# -- the tests ----------------------------------------------------------------------------


def test_address_from_the_mapping(dns_mock):
    dns_mock.add("db.internal.test", "10.0.0.7")
    assert database_address() == "10.0.0.7"
    dns_mock.assert_queried("db.internal.test")


def test_http_client_reaches_a_named_service(dns_mock, status_service):
    # The service really runs on 127.0.0.1; the client only knows its name.
    dns_mock.add("status.internal.test", "127.0.0.1")
    assert fetch_status(f"http://status.internal.test:{status_service}/") == "ok"


def test_other_record_types(dns_mock):
    dns_mock.add("example.test", MX=["20 backup.example.test.", "10 mx.example.test."])
    assert mail_exchangers("example.test") == ["mx.example.test", "backup.example.test"]


def test_wildcards_and_failures(dns_mock):
    dns_mock.add("*.svc.test", "10.1.0.1")           # every name below svc.test
    dns_mock.add_nxdomain("retired.svc.test")        # ... except this one
    dns_mock.add_failure("flaky.test", "SERVFAIL")   # or "TIMEOUT": no answer at all
    assert database_address("api.svc.test") == "10.1.0.1"
    with pytest.raises(socket.gaierror):
        database_address("retired.svc.test")
    with pytest.raises(socket.gaierror) as exc:
        database_address("flaky.test")
    assert exc.value.errno == socket.EAI_AGAIN


@pytest.mark.dns_mock(records={"cache.internal.test": "127.0.0.1"})
def test_asyncio_and_the_marker(dns_mock, status_service):
    assert asyncio.run(is_reachable("cache.internal.test", status_service))


@pytest.mark.dns_mock(corefile="""
corp.test {
    template IN A corp.test {
        answer "{{ .Name }} 60 IN A 10.20.0.1"
    }
}
""")
def test_a_whole_corefile(dns_mock):
    assert database_address("anything.corp.test") == "10.20.0.1"


def test_a_real_server_for_other_processes(dns_server):
    # Subprocesses and C libraries with their own resolver cannot be patched: give
    # them dns_server.host / dns_server.port (same records as dns_mock).
    import dns.resolver

    dns_server.add("db.internal.test", "10.0.0.7")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [dns_server.host]
    resolver.port = dns_server.port
    assert resolver.resolve("db.internal.test")[0].address == "10.0.0.7"
