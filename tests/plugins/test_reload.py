"""reload: setup rules, the token hash, and a live reload through the CLI."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import dns.message
import dns.query
import pytest

import pycorefile
from pycorefile import CorefileError
from pycorefile.plugins.reload import Reload, corefile_hash

from upstreams import free_port


@pytest.mark.parametrize(
    "args, interval, jitter",
    [("", 30, 15), ("10s", 10, 5), ("10s 2s", 10, 2), ("2s 0", 2, 0), ("1m 45s", 60, 30)],
)
def test_setup_values(args: str, interval: float, jitter: float) -> None:
    cf = pycorefile.loads(f".:1053 {{\n reload {args}\n whoami\n}}\n")
    d = cf.blocks[0].directives_named("reload")[0]
    plugin = Reload.setup(d, None)  # type: ignore[arg-type]
    assert (plugin.interval, plugin.jitter) == (interval, jitter)


@pytest.mark.parametrize(
    "args, message",
    [("1s", "interval value must be greater or equal to 2s"), ("5s 500ms", "jitter value must be greater or equal to 1s"),
     ("a", "invalid duration"), ("5s 1s 1s", "Wrong argument count")],
)
def test_setup_errors(args: str, message: str) -> None:
    with pytest.raises(CorefileError, match=message) as exc:
        pycorefile.loads(f".:1053 {{\n reload {args}\n whoami\n}}\n")
    assert exc.value.line == 2


def test_hash_ignores_comments_and_whitespace() -> None:
    a = ".:53 {\n whoami\n}\n"
    b = "# a comment\n.:53   {\n\twhoami   # trailing\n\n}\n"
    c = ".:53 {\n log\n}\n"
    assert corefile_hash(a) == corefile_hash(b) != corefile_hash(c)


def test_reload_plugin_picks_up_a_changed_corefile(tmp_path) -> None:
    port = free_port()
    cf = tmp_path / "Corefile"
    cf.write_text(f"r.test:{port} {{\n bind 127.0.0.1\n reload 2s 1s\n whoami\n}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "pycorefile", "-conf", str(cf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        q = dns.message.make_query("r.test", "A")
        deadline = time.monotonic() + 15
        while True:
            try:
                r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.3)
                break
            except Exception:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert not r.answer                                   # whoami
        cf.write_text(f"r.test:{port} {{\n bind 127.0.0.1\n reload 2s 1s\n erratic {{\n drop 0\n }}\n}}\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=1)
            if r.answer:
                break
            time.sleep(0.2)
        assert r.answer and r.answer[0][0].address == "192.0.2.53"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert "Reloading complete" in proc.stdout.read()
