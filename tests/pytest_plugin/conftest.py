"""Fixtures for the pytest plugin's tests.

``pytester`` is registered here rather than with ``pytest_plugins`` (which pytest only
allows in the top-level conftest) so that ``pytest tests`` and ``pytest
tests/pytest_plugin`` both work.

``http_server`` (function)
    A tiny HTTP server on 127.0.0.1 (any free port) in a thread. Every GET answers
    ``hello <Host header>``: a client that reached it through ``myservice.test`` sees its
    own host name echoed. ``.port``, ``.url(host)``, ``.hosts`` (Host headers seen).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
    # In-process pytester runs drop every module they imported; hypothesis's pytest
    # plugin imports hypothesis at the end of each run (seconds, with assertion
    # rewriting). Importing it once here keeps the inner runs fast.
    try:
        import hypothesis.internal.observability  # noqa: F401
    except ImportError:
        pass


class HTTPServer:
    def __init__(self) -> None:
        self.hosts: list[str] = []
        seen = self.hosts

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                host = self.headers.get("Host", "")
                seen.append(host)
                body = f"hello {host}".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def url(self, host: str = "myservice.test") -> str:
        return f"http://{host}:{self.port}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server() -> Iterator[HTTPServer]:
    srv = HTTPServer()
    try:
        yield srv
    finally:
        srv.close()
