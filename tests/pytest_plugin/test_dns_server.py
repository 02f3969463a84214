"""``dns_server``: the test's chain on a real UDP/TCP port, alone or next to ``dns_mock``.

Clients here are independent of the patch layer: raw sockets, dnspython pointed at the
port, and a subprocess (which no in-process patch can reach).
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from dnslib import DNSRecord

from pycorefile import wire as w


def udp_query(address: tuple[str, int], name: str, qtype: int = 1) -> DNSRecord:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(w.build_query(name, qtype, qid=4242), address)
        return DNSRecord.parse(s.recv(65535))


def tcp_query(address: tuple[str, int], name: str, qtype: int = 1) -> DNSRecord:
    q = w.build_query(name, qtype, qid=4343)
    with socket.create_connection(address, timeout=2) as s:
        s.sendall(len(q).to_bytes(2, "big") + q)
        n = int.from_bytes(s.recv(2), "big")
        data = b""
        while len(data) < n:
            data += s.recv(n - len(data))
    return DNSRecord.parse(data)


def test_alone_udp_and_tcp(dns_server) -> None:
    dns_server.add("db.test", "10.0.0.7")
    assert dns_server.host == "127.0.0.1" and dns_server.port > 0
    assert dns_server.nameserver == f"127.0.0.1:{dns_server.port}"
    udp = udp_query(dns_server.address, "db.test")
    tcp = tcp_query(dns_server.address, "db.test")
    assert udp.header.id == 4242 and [str(r.rdata) for r in udp.rr] == ["10.0.0.7"]
    assert tcp.header.id == 4343 and [str(r.rdata) for r in tcp.rr] == ["10.0.0.7"]
    assert [c.client for c in dns_server.calls] == ["dns_server", "dns_server"]
    # No patch without dns_mock: the process's own lookups are untouched.
    assert socket.getaddrinfo.__module__ == "socket"


def test_same_records_as_dns_mock(dns_mock, dns_server) -> None:
    dns_mock.add("shared.test", "10.0.0.9")
    assert socket.gethostbyname("shared.test") == "10.0.0.9"
    assert [str(r.rdata) for r in udp_query(dns_server.address, "shared.test").rr] == ["10.0.0.9"]
    assert [c.client for c in dns_mock.calls] == ["gethostbyname", "dns_server"]


def test_udp_truncation_then_tcp(dns_server) -> None:
    dns_server.add("big.test", [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(60)])
    assert udp_query(dns_server.address, "big.test").header.tc == 1
    answer = dns_server.dnspython_resolver(lifetime=2).resolve("big.test")
    assert len(answer) == 60
    assert [c.qtype for c in dns_server.calls].count("A") == 3   # UDP, then dnspython's UDP + TCP


def test_resolv_conf(dns_server) -> None:
    import dns.resolver

    text = open(dns_server.resolv_conf).read()
    assert "nameserver 127.0.0.1\n" in text
    assert f"port:{dns_server.port}" in text
    # resolv.conf cannot carry a port for glibc or dnspython: set it on the client.
    r = dns.resolver.Resolver(filename=dns_server.resolv_conf)
    r.port = dns_server.port
    dns_server.add("db.test", "10.0.0.7")
    assert r.resolve("db.test")[0].address == "10.0.0.7"


def test_subprocess(dns_server) -> None:
    dns_server.add("db.test", "10.0.0.7")
    code = (
        "import dns.resolver, sys\n"
        "r = dns.resolver.Resolver(configure=False)\n"
        "r.nameservers = [sys.argv[1]]; r.port = int(sys.argv[2]); r.lifetime = 3\n"
        "print(r.resolve('db.test')[0].address)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, dns_server.host, str(dns_server.port)],
        capture_output=True, text=True, timeout=30, check=True,
    )
    assert out.stdout.strip() == "10.0.0.7"
    dns_server.assert_queried("db.test")


def test_timeout_is_a_dropped_reply(dns_server) -> None:
    dns_server.add_failure("slow.test", "TIMEOUT")
    with pytest.raises(socket.timeout):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.3)
            s.sendto(w.build_query("slow.test", 1), dns_server.address)
            s.recv(512)


@pytest.mark.dns_mock(strict=False)
def test_unknown_names_are_recorded(dns_server) -> None:
    assert udp_query(dns_server.address, "nope.test").header.rcode == w.NXDOMAIN
    assert [c.qname for c in dns_server.unmatched] == ["nope.test"]


def test_corefile_swap_keeps_the_port(dns_server) -> None:
    port = dns_server.port
    dns_server.corefile("""
.:53 {
    template IN A example.test {
        answer "{{ .Name }} 60 IN A 10.30.0.1"
    }
}
""")
    assert dns_server.port == port
    assert [str(r.rdata) for r in udp_query(dns_server.address, "www.example.test").rr] == ["10.30.0.1"]
