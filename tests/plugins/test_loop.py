"""loop: a server forwarding to itself is detected and stops with status 1."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pycorefile
from pycorefile import CorefileError

from upstreams import free_port


def test_setup() -> None:
    pycorefile.loads(".:1053 {\n loop\n whoami\n}\n")
    with pytest.raises(CorefileError, match="Wrong argument count"):
        pycorefile.loads(".:1053 {\n loop x\n whoami\n}\n")
    with pytest.raises(CorefileError, match="only be used once"):
        pycorefile.loads(".:1053 {\n loop\n loop\n whoami\n}\n")


def test_in_process_resolver_never_probes() -> None:
    with pycorefile.Resolver.from_corefile(".:1053 {\n loop\n whoami\n}\n") as r:
        assert r.resolve("1.2.test", "HINFO").header.rcode == 0
        assert r.engine.loop is None


def test_forwarding_to_itself_is_fatal(tmp_path) -> None:
    port = free_port()
    cf = tmp_path / "Corefile"
    cf.write_text(f".:{port} {{\n bind 127.0.0.1\n loop\n forward . 127.0.0.1:{port} {{\n max_fails 0\n }}\n}}\n")
    proc = subprocess.run([sys.executable, "-m", "pycorefile", "-conf", str(cf)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "Loop (127.0.0.1:" in proc.stdout and f"-> 127.0.0.1:{port}) detected for zone" in proc.stdout


def test_healthy_server_keeps_running(tmp_path) -> None:
    port = free_port()
    cf = tmp_path / "Corefile"
    cf.write_text(f".:{port} {{\n bind 127.0.0.1\n loop\n whoami\n}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "pycorefile", "-conf", str(cf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=3)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "Loop" not in proc.stdout.read()
