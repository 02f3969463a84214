"""prometheus, health and ready over real HTTP, scraped and checked with promtool."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import dns.message
import dns.query
import pytest
from prometheus_client.parser import text_string_to_metric_families

import pycorefile

from upstreams import free_port, require_binary

pytestmark = pytest.mark.integration


def get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def node_local(mport: int, hport: int, rport: int) -> str:
    # The talk's three blocks (template replaced by erratic/whoami so this test only
    # depends on the core), every block naming the same metrics address.
    return f"""
api.custom-dns.local:0 {{
    bind 127.0.0.1
    prometheus 127.0.0.1:{mport}
    erratic {{
        drop 0
    }}
}}
apps.custom-dns.local:0 {{
    bind 127.0.0.1
    prometheus 127.0.0.1:{mport}
    whoami
}}
.:0 {{
    bind 127.0.0.1
    prometheus 127.0.0.1:{mport}
    health 127.0.0.1:{hport}
    ready 127.0.0.1:{rport}
    whoami
}}
"""


@pytest.fixture(scope="module")
def served():
    ports = free_port(), free_port(), free_port()
    with pycorefile.serve(node_local(*ports)) as srv:
        yield srv, ports


def test_scrape_after_real_queries(served) -> None:
    srv, (mport, _, _) = served
    for name in ("api.custom-dns.local", "x.apps.custom-dns.local", "example.org"):
        dns.query.udp(dns.message.make_query(name, "A"), srv.host, port=srv.port, timeout=2)
    dns.query.tcp(dns.message.make_query("example.org", "AAAA"), srv.host, port=srv.port, timeout=2)
    status, text = get(f"http://127.0.0.1:{mport}/metrics")
    assert status == 200
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("coredns_dns_requests", "coredns_dns_responses", "coredns_dns_request_duration_seconds",
                 "coredns_dns_request_size_bytes", "coredns_dns_response_size_bytes", "coredns_build_info",
                 "coredns_plugin_enabled", "coredns_panics"):
        assert name in fams, name
    reqs = [s for s in fams["coredns_dns_requests"].samples if s.name == "coredns_dns_requests_total"]
    server = f"dns://127.0.0.1:{srv.port}"
    zones = {(s.labels["server"], s.labels["zone"], s.labels["proto"]) for s in reqs}
    assert (server, "api.custom-dns.local.", "udp") in zones
    assert (server, "apps.custom-dns.local.", "udp") in zones
    assert (server, ".", "tcp") in zones
    assert fams["coredns_dns_requests"].type == "counter"
    assert fams["coredns_dns_request_duration_seconds"].type == "histogram"


def test_only_metrics_path_is_served(served) -> None:
    _, (mport, _, _) = served
    assert get(f"http://127.0.0.1:{mport}/")[0] == 404
    assert get(f"http://127.0.0.1:{mport}/metricsx")[0] == 404


def test_promtool_check_metrics(served) -> None:
    srv, (mport, _, _) = served
    dns.query.udp(dns.message.make_query("api.custom-dns.local", "A"), srv.host, port=srv.port, timeout=2)
    promtool = require_binary("promtool")
    _, text = get(f"http://127.0.0.1:{mport}/metrics")
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    # promtool prints lint problems per metric; our exposition must have none.
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == ""


def test_health_and_ready(served) -> None:
    _, (_, hport, rport) = served
    assert get(f"http://127.0.0.1:{hport}/health") == (200, "OK")
    assert get(f"http://127.0.0.1:{hport}/other")[0] == 404
    assert get(f"http://127.0.0.1:{rport}/ready") == (200, "OK")


def test_lameduck_keeps_answering_after_sigterm(tmp_path) -> None:
    dport, hport, rport = free_port(), free_port(), free_port()
    cf = tmp_path / "Corefile"
    cf.write_text(
        f".:{dport} {{\n bind 127.0.0.1\n health 127.0.0.1:{hport} {{\n lameduck 1500ms\n }}\n"
        f" ready 127.0.0.1:{rport}\n whoami\n}}\n"
    )
    proc = subprocess.Popen([sys.executable, "-m", "pycorefile", "-conf", str(cf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if get(f"http://127.0.0.1:{hport}/health", timeout=0.5)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        # Still serving DNS and health during lameduck.
        r = dns.query.udp(dns.message.make_query("x.test", "A"), "127.0.0.1", port=dport, timeout=2)
        assert r.rcode() == 0
        assert get(f"http://127.0.0.1:{hport}/health")[0] == 200
        assert get(f"http://127.0.0.1:{rport}/ready") == (503, "Shutting down")
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - stopped_at >= 1.4
    finally:
        if proc.poll() is None:
            proc.kill()


def test_ready_reports_plugins_not_ready() -> None:
    from pycorefile.chain import Plugin
    from pycorefile.registry import Registry, default_registry

    class Slow(Plugin):
        name = "slowstart"
        after = "whoami"
        is_ready = False

        def ready(self) -> bool:
            return Slow.is_ready

    reg = Registry()
    for n in default_registry().ordered():
        reg.register(default_registry().get(n), n)
    reg.register(Slow)
    rport = free_port()
    text = f".:0 {{\n bind 127.0.0.1\n ready 127.0.0.1:{rport}\n slowstart\n whoami\n}}\n"
    from pycorefile.routing import Engine
    from pycorefile.server import ServerThread

    srv = ServerThread(Engine(pycorefile.loads(text, registry=reg), registry=reg)).start()
    try:
        assert get(f"http://127.0.0.1:{rport}/ready") == (503, "slowstart")
        Slow.is_ready = True
        assert get(f"http://127.0.0.1:{rport}/ready") == (200, "OK")
    finally:
        srv.stop()


def test_two_servers_same_process_do_not_collide() -> None:
    m1, m2 = free_port(), free_port()
    t = ".:0 {{\n bind 127.0.0.1\n prometheus 127.0.0.1:{}\n whoami\n}}\n"
    with pycorefile.serve(t.format(m1)) as a, pycorefile.serve(t.format(m2)) as b:
        for _ in range(2):
            dns.query.udp(dns.message.make_query("x.test", "A"), a.host, port=a.port, timeout=2)
        dns.query.udp(dns.message.make_query("x.test", "A"), b.host, port=b.port, timeout=2)

        def total(port: int) -> float:
            text = get(f"http://127.0.0.1:{port}/metrics")[1]
            fam = [f for f in text_string_to_metric_families(text) if f.name == "coredns_dns_requests"][0]
            return sum(s.value for s in fam.samples)

        assert total(m1) == 2 and total(m2) == 1


def test_prometheus_client_is_loaded_by_the_first_scrape() -> None:
    """A server with `prometheus` does not import prometheus_client (about 10 MB in
    some builds) until /metrics is fetched. Checked in a fresh interpreter."""
    script = (
        "import sys, urllib.request, pycorefile\n"
        "text = '.:0 {\\n bind 127.0.0.1\\n prometheus 127.0.0.1:0\\n whoami\\n}\\n'\n"
        "with pycorefile.serve(text) as s:\n"
        "    before = 'prometheus_client' in sys.modules\n"
        "    port = list(s.engine.shared['prometheus.listeners'].values())[0].port\n"
        "    body = urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics', timeout=5).read()\n"
        "    print(before, 'prometheus_client' in sys.modules, b'coredns_build_info' in body)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True"]
