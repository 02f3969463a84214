"""The real server over UDP and TCP on 127.0.0.1 (spec §2.2, forward-cache-prometheus §0)."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

import pycorefile
from pycorefile import wire as w

pytestmark = pytest.mark.integration

COREFILE = """
example.org:0 {
    bind 127.0.0.1
    erratic {
        drop 0
    }
}
sub.example.org:0 {
    bind 127.0.0.1
    whoami
}
big.test:0 {
    bind 127.0.0.1
    erratic {
        drop 0
        large
    }
}
empty.test:0 {
    bind 127.0.0.1
}
"""


@pytest.fixture(scope="module")
def server():
    with pycorefile.serve(COREFILE) as srv:
        yield srv


def udp(srv, q, timeout=2.0):
    return dns.query.udp(q, srv.host, port=srv.port, timeout=timeout)


def tcp(srv, q, timeout=2.0):
    return dns.query.tcp(q, srv.host, port=srv.port, timeout=timeout)


def test_one_listener_for_blocks_on_the_same_port(server) -> None:
    # All blocks use ":0" with the same bind: one server, one ephemeral port.
    assert len(server.addresses) == 1
    assert server.host == "127.0.0.1"


@pytest.mark.parametrize("send", [udp, tcp])
def test_routing_over_the_wire(server, send) -> None:
    r = send(server, dns.message.make_query("www.example.org", "A"))
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert r.answer[0][0].address == "192.0.2.53"
    r = send(server, dns.message.make_query("x.sub.example.org", "A"))
    assert not r.answer and any(rr.rdtype == 33 for rr in r.additional)
    r = send(server, dns.message.make_query("nowhere.net", "A"))
    assert r.rcode() == dns.rcode.REFUSED
    r = send(server, dns.message.make_query("a.empty.test", "A"))
    assert r.rcode() == dns.rcode.REFUSED


def test_whoami_reports_tcp(server) -> None:
    r = tcp(server, dns.message.make_query("sub.example.org", "A"))
    srv = [rr for rr in r.additional if rr.rdtype == 33][0]
    assert srv.name.to_text().startswith("_tcp.")


def test_edns_is_echoed_with_the_clients_size_and_do(server) -> None:
    q = dns.message.make_query("example.org", "A", use_edns=0, payload=1400, want_dnssec=True)
    r = udp(server, q)
    assert r.edns == 0 and r.payload == 1400 and r.ednsflags & dns.flags.DO
    q = dns.message.make_query("example.org", "A")
    assert udp(server, q).edns == -1


def test_udp_truncation_and_tcp_full(server) -> None:
    name = "a-rather-long-label-to-make-the-question-big.big.test"
    r = udp(server, dns.message.make_query(name, "A"))
    assert r.flags & dns.flags.TC
    assert len(r.to_wire()) <= 512
    q = dns.message.make_query(name, "A", use_edns=0, payload=4096)
    r = udp(server, q)
    assert not r.flags & dns.flags.TC and len(r.answer[0]) >= 1
    r = tcp(server, dns.message.make_query(name, "A"))
    assert not r.flags & dns.flags.TC


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def test_tcp_pipelining(server) -> None:
    msgs = [w.build_query(f"p{i}.example.org", 1, qid=100 + i) for i in range(5)]
    with socket.create_connection((server.host, server.port), timeout=2) as s:
        s.sendall(b"".join(struct.pack("!H", len(m)) + m for m in msgs))
        ids = set()
        for _ in msgs:
            n = struct.unpack("!H", _recv_exact(s, 2))[0]
            ids.add(struct.unpack("!H", _recv_exact(s, n)[:2])[0])
    assert ids == {100, 101, 102, 103, 104}


def _udp_raw(server, payload: bytes, timeout: float = 0.5) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, (server.host, server.port))
        try:
            return s.recv(4096)
        except TimeoutError:
            return None


BAD = [
    ("short", b"\x12\x34\x01", None),
    ("label-past-end", w.HEADER.pack(1, 0, 1, 0, 0, 0) + b"\x3fabc", w.FORMERR),
    ("pointer-loop", w.HEADER.pack(2, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01", w.FORMERR),
    ("two-questions", w.HEADER.pack(3, 0, 2, 0, 0, 0) + b"\x00\x00\x01\x00\x01" * 2, w.FORMERR),
    ("update-opcode", w.HEADER.pack(4, 5 << 11, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01", w.NOTIMP),
    ("is-a-response", w.HEADER.pack(5, w.QR, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01", None),
    ("name-too-long", w.HEADER.pack(6, 0, 1, 0, 0, 0) + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01", w.FORMERR),
    ("two-opts", w.build_query("example.org", 1, qid=7)[:10] + b"\x00\x02" + w.build_query("example.org", 1)[12:] + w.opt_record(1232) * 2, w.FORMERR),
]


@pytest.mark.parametrize("label, payload, rcode", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_formerr_or_a_counted_drop(server, label, payload, rcode) -> None:
    before = server.engine.drops
    out = _udp_raw(server, payload)
    if rcode is None:
        assert out is None
        assert server.engine.drops > before
    else:
        assert out is not None
        assert struct.unpack("!H", out[:2])[0] == struct.unpack("!H", payload[:2])[0]
        assert out[3] & 0x0F == rcode
    # The server keeps answering.
    assert udp(server, dns.message.make_query("example.org", "A")).rcode() == 0


def test_tcp_garbage_and_slow_clients_do_not_block_others(server) -> None:
    slow = socket.create_connection((server.host, server.port), timeout=2)
    slow.sendall(b"\xff\xff" + b"\x00" * 10)  # a huge length, then nothing more
    garbage = socket.create_connection((server.host, server.port), timeout=2)
    garbage.sendall(b"\x00\x03abc")          # a "message" shorter than a header
    try:
        for _ in range(3):
            assert tcp(server, dns.message.make_query("example.org", "A")).rcode() == 0
        garbage.settimeout(1)
        assert garbage.recv(10) == b""          # closed by the server
    finally:
        slow.close()
        garbage.close()


def test_two_ports_and_bind() -> None:
    text = "a.test:0 {\n bind 127.0.0.1\n whoami\n}\nb.test:0 {\n bind 127.0.0.2\n erratic {\n drop 0\n }\n}\n"
    try:
        srv_ctx = pycorefile.serve(text)
        srv = srv_ctx.__enter__()
    except OSError as exc:  # 127.0.0.2 missing on some systems
        pytest.skip(f"cannot bind a second loopback address: {exc}")
    try:
        addrs = dict(srv.addresses)
        assert set(addrs) == {"127.0.0.1", "127.0.0.2"}
        r = dns.query.udp(dns.message.make_query("a.test", "A"), "127.0.0.1", port=addrs["127.0.0.1"], timeout=2)
        assert any(rr.rdtype == 33 for rr in r.additional)
        r = dns.query.udp(dns.message.make_query("b.test", "A"), "127.0.0.2", port=addrs["127.0.0.2"], timeout=2)
        assert r.answer[0][0].address == "192.0.2.53"
        r = dns.query.udp(dns.message.make_query("b.test", "A"), "127.0.0.1", port=addrs["127.0.0.1"], timeout=2)
        assert r.rcode() == dns.rcode.REFUSED
    finally:
        srv_ctx.__exit__(None, None, None)


def _free_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def _start_cli(tmp_path, text: str, *extra: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    cf = tmp_path / "Corefile"
    cf.write_text(text.replace("PORT", str(port)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pycorefile", "serve", "-conf", str(cf), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            dns.query.udp(dns.message.make_query("probe.test", "A"), "127.0.0.1", port=port, timeout=0.2)
            return proc, port
        except (dns.exception.Timeout, OSError):
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read()) from None
    proc.kill()
    raise AssertionError("server did not start")


def test_cli_serve_routes_and_stops_on_sigterm_finishing_in_flight(tmp_path) -> None:
    text = (
        "probe.test:PORT {\n bind 127.0.0.1\n whoami\n}\n"
        "slow.test:PORT {\n bind 127.0.0.1\n erratic {\n delay 1 700ms\n }\n}\n"
    )
    proc, port = _start_cli(tmp_path, text)
    try:
        q = dns.message.make_query("slow.test", "A")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(q.to_wire(), ("127.0.0.1", port))
            time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            data = s.recv(4096)
        r = dns.message.from_wire(data)
        assert r.id == q.id and r.answer[0][0].address == "192.0.2.53"
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    out = proc.stdout.read()
    assert f"dns://probe.test.:{port}" in out


def test_cli_reload_keeps_old_config_when_new_one_is_bad(tmp_path) -> None:
    text = "probe.test:PORT {\n bind 127.0.0.1\n whoami\n}\n"
    proc, port = _start_cli(tmp_path, text)
    cf = tmp_path / "Corefile"
    try:
        cf.write_text(f"probe.test:{port} {{\n bind 127.0.0.1\n nonsense\n}}\n")
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        r = dns.query.udp(dns.message.make_query("probe.test", "A"), "127.0.0.1", port=port, timeout=2)
        assert any(rr.rdtype == 33 for rr in r.additional)    # still whoami
        cf.write_text(f"probe.test:{port} {{\n bind 127.0.0.1\n erratic {{\n drop 0\n }}\n}}\n")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            r = dns.query.udp(dns.message.make_query("probe.test", "A"), "127.0.0.1", port=port, timeout=2)
            if r.answer:
                break
            time.sleep(0.1)
        assert r.answer[0][0].address == "192.0.2.53"           # new config serving
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    out = proc.stdout.read()
    assert "reload failed" in out and "Unknown directive 'nonsense'" in out


def test_default_corefile_without_any_file(tmp_path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pycorefile", "-dns.port", str(port)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 15
        r = None
        while time.monotonic() < deadline and r is None:
            try:
                r = dns.query.udp(dns.message.make_query("hello.test", "A"), "127.0.0.1", port=port, timeout=0.3)
            except (dns.exception.Timeout, OSError):
                time.sleep(0.1)
        assert r is not None and any(rr.rdtype == 1 for rr in r.additional)   # whoami
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert "hello.test." in proc.stdout.read()   # the log plugin's line
