"""Real clients against names that exist only in the fixture.

Every HTTP test connects to ``http://myservice.test:PORT/`` where the fixture maps
``myservice.test`` to 127.0.0.1 and a real HTTP server listens: the request only
succeeds if the client's lookup went through the mock. ``calls`` then shows which
client path asked.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from typing import Any

import pytest


def clients(dns_mock, name: str = "myservice.test") -> set[str]:
    return {c.client for c in dns_mock.calls if c.qname == name}


@pytest.fixture
def myservice(dns_mock):
    dns_mock.add("myservice.test", "127.0.0.1")
    return dns_mock


# -- socket ---------------------------------------------------------------------------


def test_socket_functions(dns_mock) -> None:
    dns_mock.add("db.internal.test", ["10.0.0.7", "10.0.0.8"])
    dns_mock.add("db.internal.test", "fd00::7")
    assert socket.gethostbyname("db.internal.test") == "10.0.0.7"
    assert socket.gethostbyname_ex("DB.Internal.Test.") == (
        "db.internal.test", [], ["10.0.0.7", "10.0.0.8"]
    )
    infos = socket.getaddrinfo("db.internal.test", 5432, type=socket.SOCK_STREAM)
    assert [i[4][0] for i in infos] == ["fd00::7", "10.0.0.7", "10.0.0.8"]
    assert socket.gethostbyaddr("10.0.0.7") == ("db.internal.test", [], ["10.0.0.7"])
    dns_mock.assert_queried("db.internal.test", "A")
    dns_mock.assert_queried("db.internal.test", "AAAA", times=1)
    assert clients(dns_mock, "db.internal.test") == {
        "gethostbyname", "gethostbyname_ex", "getaddrinfo"
    }


def test_socket_create_connection(myservice, http_server) -> None:
    with socket.create_connection(("myservice.test", http_server.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: myservice.test\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.endswith(b"hello myservice.test")
    assert clients(myservice) == {"getaddrinfo"}


# -- sync HTTP clients ------------------------------------------------------------------


def test_urllib(myservice, http_server) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(http_server.url(), timeout=5) as resp:
        assert resp.read() == f"hello myservice.test:{http_server.port}".encode()
    myservice.assert_queried("myservice.test")


def test_requests(myservice, http_server) -> None:
    requests = pytest.importorskip("requests")
    with requests.Session() as s:
        s.trust_env = False
        r = s.get(http_server.url(), timeout=5)
    assert r.text == f"hello myservice.test:{http_server.port}"
    assert clients(myservice) == {"getaddrinfo"}


def test_httpx_sync(myservice, http_server) -> None:
    httpx = pytest.importorskip("httpx")
    with httpx.Client(trust_env=False) as client:
        r = client.get(http_server.url(), timeout=5)
    assert r.text == f"hello myservice.test:{http_server.port}"
    myservice.assert_queried("myservice.test")


# -- asyncio --------------------------------------------------------------------------------


async def fetch_raw(host: str, port: int) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data


def test_asyncio_open_connection(myservice, http_server) -> None:
    # asyncio's loop.getaddrinfo runs socket.getaddrinfo in an executor.
    data = asyncio.run(fetch_raw("myservice.test", http_server.port))
    assert data.endswith(b"hello myservice.test")
    assert clients(myservice) == {"getaddrinfo"}
    assert any(c.thread != "MainThread" for c in myservice.calls)   # the executor's thread


def test_asyncio_loop_getaddrinfo_errors(dns_mock) -> None:
    dns_mock.add_nxdomain("gone.test")

    async def main():
        with pytest.raises(socket.gaierror) as exc:
            await asyncio.get_running_loop().getaddrinfo("gone.test", 80)
        return exc.value.errno

    assert asyncio.run(main()) == socket.EAI_NONAME


def test_httpx_async(myservice, http_server) -> None:
    httpx = pytest.importorskip("httpx")

    async def main():
        async with httpx.AsyncClient(trust_env=False) as client:
            return await client.get(http_server.url(), timeout=5)

    assert asyncio.run(main()).text == f"hello myservice.test:{http_server.port}"
    myservice.assert_queried("myservice.test")


# -- uvloop ---------------------------------------------------------------------------------


def run_uvloop(coro):
    uvloop = pytest.importorskip("uvloop")
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_uvloop_open_connection_and_getaddrinfo(myservice, http_server) -> None:
    async def main():
        infos = await asyncio.get_running_loop().getaddrinfo("myservice.test", 80)
        return infos, await fetch_raw("myservice.test", http_server.port)

    infos, data = run_uvloop(main())
    assert {i[4][0] for i in infos} == {"127.0.0.1"}
    assert data.endswith(b"hello myservice.test")
    assert clients(myservice) == {"uvloop"}


def test_uvloop_unknown_name_is_nxdomain(dns_mock) -> None:
    dns_mock.add_nxdomain("gone.test")

    async def main():
        await asyncio.open_connection("gone.test", 80)

    with pytest.raises(socket.gaierror) as exc:
        run_uvloop(main())
    assert exc.value.errno == socket.EAI_NONAME
    dns_mock.assert_queried("gone.test")


def test_httpx_async_on_uvloop(myservice, http_server) -> None:
    httpx = pytest.importorskip("httpx")

    async def main():
        async with httpx.AsyncClient(trust_env=False) as client:
            return await client.get(http_server.url(), timeout=5)

    assert run_uvloop(main()).text == f"hello myservice.test:{http_server.port}"
    assert clients(myservice) == {"uvloop"}


# -- aiohttp ---------------------------------------------------------------------------------


async def aiohttp_get(url: str, resolver=None) -> str:
    import aiohttp

    connector = aiohttp.TCPConnector(resolver=resolver) if resolver is not None else None
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
            return await resp.text()


def test_aiohttp_default_resolver(myservice, http_server) -> None:
    aiohttp = pytest.importorskip("aiohttp")
    text = asyncio.run(aiohttp_get(http_server.url()))
    assert text == f"hello myservice.test:{http_server.port}"
    # With aiodns installed aiohttp's DefaultResolver is the c-ares AsyncResolver.
    expected = "aiodns" if aiohttp.DefaultResolver is aiohttp.AsyncResolver else "getaddrinfo"
    assert clients(myservice) == {expected}


def test_aiohttp_threaded_resolver(myservice, http_server) -> None:
    aiohttp = pytest.importorskip("aiohttp")

    async def main():
        return await aiohttp_get(http_server.url(), aiohttp.ThreadedResolver())

    assert asyncio.run(main()) == f"hello myservice.test:{http_server.port}"
    assert clients(myservice) == {"getaddrinfo"}


def test_aiohttp_threaded_resolver_on_uvloop(myservice, http_server) -> None:
    aiohttp = pytest.importorskip("aiohttp")

    async def main():
        return await aiohttp_get(http_server.url(), aiohttp.ThreadedResolver())

    assert run_uvloop(main()) == f"hello myservice.test:{http_server.port}"
    assert clients(myservice) == {"uvloop"}


# -- dnspython ---------------------------------------------------------------------------------


def test_dnspython_sync(dns_mock) -> None:
    import dns.resolver

    dns_mock.add("x.test", A=["1.2.3.4"], AAAA="::1", MX="10 mx.x.test.", TXT="v=spf1 -all")
    dns_mock.add_nxdomain("gone.test")
    assert [r.to_text() for r in dns.resolver.resolve("x.test", "MX")] == ["10 mx.x.test."]
    assert [r.to_text() for r in dns.resolver.resolve("x.test", "TXT")] == ['"v=spf1 -all"']
    r = dns.resolver.Resolver()
    assert set(r.resolve_name("x.test").addresses()) == {"1.2.3.4", "::1"}
    assert r.resolve_address("1.2.3.4").rrset[0].to_text() == "x.test."
    with pytest.raises(dns.resolver.NXDOMAIN):
        r.resolve("gone.test")
    with pytest.raises(dns.resolver.NoAnswer):   # NODATA
        r.resolve("x.test", "SRV")
    assert clients(dns_mock, "x.test") == {"dnspython"}


def test_dnspython_resolver_created_before_the_patch(dns_mock) -> None:
    # Resolvers configured from the system before the test started (module-level
    # globals, say) are redirected too, as long as they still use the system's servers.
    if EARLY_RESOLVER is None:
        pytest.skip("no system resolver configuration on this machine")
    dns_mock.add("early.test", "10.1.2.3")
    assert [r.address for r in EARLY_RESOLVER.resolve("early.test")] == ["10.1.2.3"]


try:
    import dns.resolver as _dnsresolver

    EARLY_RESOLVER = _dnsresolver.Resolver()
except Exception:  # no resolv.conf on this machine
    EARLY_RESOLVER = None


def test_dnspython_timeout_and_servfail(dns_mock) -> None:
    import dns.exception
    import dns.resolver

    dns_mock.add_failure("slow.test", "TIMEOUT")
    dns_mock.add_failure("broken.test", "SERVFAIL")
    r = dns.resolver.Resolver()
    r.lifetime = 0.2
    with pytest.raises(dns.exception.Timeout):
        r.resolve("slow.test")
    with pytest.raises(dns.resolver.NoNameservers):
        r.resolve("broken.test")


def test_dnspython_truncation_retries_over_tcp(dns_mock) -> None:
    import dns.resolver

    many = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(60)]
    dns_mock.add("big.test", many)
    answer = dns.resolver.Resolver().resolve("big.test")
    assert len(answer) == 60
    assert dns_mock.resolver.metrics.sample(
        "coredns_dns_requests_total", {"proto": "tcp"}
    ) == 1   # the UDP reply was truncated at 512 octets, the TCP retry was not


def test_dnspython_async(dns_mock) -> None:
    import dns.asyncresolver

    dns_mock.add("x.test", MX="10 mx.x.test.")

    async def main():
        answer = await dns.asyncresolver.resolve("x.test", "MX")
        return [r.to_text() for r in answer]

    assert asyncio.run(main()) == ["10 mx.x.test."]
    assert clients(dns_mock, "x.test") == {"dnspython"}


# -- aiodns ------------------------------------------------------------------------------


def test_aiodns(dns_mock) -> None:
    aiodns = pytest.importorskip("aiodns")
    dns_mock.add("x.test", A="1.2.3.4", MX="10 mx.x.test.")
    dns_mock.add_nxdomain("gone.test")

    async def main():
        r = aiodns.DNSResolver()
        mx = await r.query_dns("x.test", "MX")
        info = await r.getaddrinfo("x.test", port=80, family=socket.AF_INET)
        with pytest.raises(aiodns.error.DNSError):
            await r.query_dns("gone.test", "A")
        return mx, info

    mx, info = asyncio.run(main())
    assert mx.answer[0].data.exchange == "mx.x.test"
    assert [n.addr for n in info.nodes] == [(b"1.2.3.4", 80)]
    assert clients(dns_mock, "x.test") == {"aiodns"}
    dns_mock.assert_queried("gone.test", times=1)   # no search-list retries


def test_aiodns_every_new_channel_answers(dns_mock) -> None:
    """aiohttp makes a c-ares channel per event loop. Each one must reach the chain:
    passing ``lookups`` to pycares 5 made about 1 channel in 70 fail every query
    ("Could not contact DNS servers"), so 150 fresh channels would almost surely
    show it. The hosts file still answers first, as for the socket functions."""
    aiodns = pytest.importorskip("aiodns")
    dns_mock.add("x.test", "1.2.3.4")

    async def one() -> list[tuple[bytes, int]]:
        r = aiodns.DNSResolver()
        try:
            info = await r.getaddrinfo("x.test", port=80, family=socket.AF_INET)
            return [n.addr for n in info.nodes]
        finally:
            r.cancel()

    async def main() -> tuple[list[Any], Any]:
        got = [await one() for _ in range(150)]
        local = await aiodns.DNSResolver().getaddrinfo("localhost", port=80, family=socket.AF_INET)
        return got, local

    got, local = asyncio.run(main())
    assert got == [[(b"1.2.3.4", 80)]] * 150
    assert [n.addr for n in local.nodes] == [(b"127.0.0.1", 80)]
    assert dns_mock.calls and not [c for c in dns_mock.calls if c.qname == "localhost"]


def test_aiodns_explicit_nameservers_are_kept(dns_mock, dns_server) -> None:
    aiodns = pytest.importorskip("aiodns")
    dns_mock.add("x.test", "1.2.3.4")

    async def main():
        r = aiodns.DNSResolver(nameservers=[dns_server.nameserver])
        return await r.query_dns("x.test", "A")

    assert asyncio.run(main()).answer[0].data.addr == "1.2.3.4"
    assert clients(dns_mock, "x.test") == {"dns_server"}


def test_uvloop_datagram_endpoint(myservice) -> None:
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    echo.settimeout(5)

    async def main():
        loop = asyncio.get_running_loop()
        got = loop.create_future()

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                got.set_result(data)

        transport, _ = await loop.create_datagram_endpoint(
            Proto, remote_addr=("myservice.test", echo.getsockname()[1])
        )
        transport.sendto(b"ping")
        data, addr = await loop.run_in_executor(None, echo.recvfrom, 64)
        echo.sendto(data.upper(), addr)
        try:
            return await asyncio.wait_for(got, 5)
        finally:
            transport.close()

    try:
        assert run_uvloop(main()) == b"PING"
    finally:
        echo.close()
    assert clients(myservice) == {"uvloop"}
