"""``pycorefile.patch(resolver)`` on its own, outside the fixtures: what is redirected,
what the answers look like to ``getaddrinfo`` callers, and that everything is restored.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

import pycorefile
from pycorefile.mock import MockDNS

TEMPLATE = """
corp.test:53 {
    template IN A corp.test {
        match "^(?P<host>[a-z]+)[.]corp[.]test[.]$"
        answer "{{ .Name }} 60 IN A 10.20.0.1"
    }
    template IN AAAA corp.test {
        rcode NXDOMAIN
    }
}
"""

ORIGINALS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr")


@pytest.fixture
def mock():
    with MockDNS() as m:
        m.add("db.test", "10.0.0.7")
        m.add("dual.test", ["10.0.0.8", "fd00::8"])
        m.add("v6.test", "fd00::6")
        m.add("alias.test", CNAME="db.test")
        m.add("ext.test", CNAME="db.elsewhere.test")
        m.add("db.elsewhere.test", "10.0.0.9")
        m.add_nxdomain("gone.test")
        m.add_failure("broken.test")
        m.add_failure("slow.test", "TIMEOUT")
        m.add("only-mx.test", MX="10 mx.test.")
        yield m


CANNED = {
    "getaddrinfo": [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.99", 80))],
    "gethostbyname": "192.0.2.99",
    "gethostbyname_ex": ("system", [], ["192.0.2.99"]),
    "gethostbyaddr": ("system", [], ["192.0.2.99"]),
}


@pytest.fixture
def fake_system(monkeypatch):
    """Record what reaches 'the system resolver' (whatever was installed before the
    patch); it answers 192.0.2.99 without touching the network."""
    seen: list[tuple[str, object]] = []

    def make(name):
        def fn(host, *args, **kwargs):
            seen.append((name, host))
            return CANNED[name]
        return fn

    for name in ORIGINALS:
        monkeypatch.setattr(socket, name, make(name))
    return seen


def test_resolver_from_a_corefile() -> None:
    with pycorefile.Resolver.from_corefile(TEMPLATE) as r, pycorefile.patch(r) as p:
        assert "socket" in p.integrations
        assert socket.gethostbyname("web.corp.test") == "10.20.0.1"
        # One family answering is enough, even when the other says NXDOMAIN.
        assert {i[4][0] for i in socket.getaddrinfo("web.corp.test", 80)} == {"10.20.0.1"}
        with pytest.raises(socket.gaierror) as exc:
            socket.getaddrinfo("web.corp.test", 80, socket.AF_INET6)
        assert exc.value.errno == socket.EAI_NONAME


def test_everything_is_restored(mock) -> None:
    import dns.resolver
    import uvloop

    before = {name: getattr(socket, name) for name in ORIGINALS}
    default = dns.resolver.default_resolver
    init = dns.resolver.BaseResolver.__dict__["__init__"]
    enrich = dns.resolver.BaseResolver.__dict__["_enrich_nameservers"]
    with pycorefile.patch(mock) as p:
        assert set(p.integrations) >= {"socket", "uvloop", "dnspython", "aiodns"}
        assert socket.getaddrinfo is not before["getaddrinfo"]
        assert "getaddrinfo" in uvloop.Loop.__dict__
    assert {name: getattr(socket, name) for name in ORIGINALS} == before
    assert "getaddrinfo" not in uvloop.Loop.__dict__
    assert "create_connection" not in uvloop.Loop.__dict__
    assert dns.resolver.BaseResolver.__dict__["__init__"] is init
    assert dns.resolver.BaseResolver.__dict__["_enrich_nameservers"] is enrich
    assert dns.resolver.default_resolver is default


def test_restored_on_exception(mock) -> None:
    before = socket.getaddrinfo
    with pytest.raises(RuntimeError), pycorefile.patch(mock):
        raise RuntimeError("boom")
    assert socket.getaddrinfo is before


def test_patches_stack(mock) -> None:
    with MockDNS() as outer:
        outer.add("outer.test", "10.9.0.1")
        with pycorefile.patch(outer):
            with pycorefile.patch(mock, passthrough=["outer.test"]):
                assert socket.gethostbyname("db.test") == "10.0.0.7"
                assert socket.gethostbyname("outer.test") == "10.9.0.1"   # via the outer patch
            with pytest.raises(socket.gaierror):
                socket.gethostbyname("db.test")                          # inner one is gone
            assert socket.gethostbyname("outer.test") == "10.9.0.1"
        assert [c.qname for c in mock.calls] == ["db.test"]
        assert [c.qname for c in outer.calls] == ["outer.test", "db.test", "outer.test"]


@pytest.mark.parametrize(
    "host, kwargs",
    [
        ("127.0.0.1", {}),
        ("::1", {}),
        ("127.1", {}),                   # inet_aton forms are literals too
        ("localhost", {}),               # RFC 6761: never sent to DNS
        ("api.localhost", {}),
        (None, {"flags": socket.AI_PASSIVE}),
        ("db.test", {"flags": socket.AI_NUMERICHOST}),
        ("pass.example.org", {}),
    ],
)
def test_not_sent_to_the_resolver(mock, fake_system, host, kwargs) -> None:
    with pycorefile.patch(mock, passthrough=["example.org"]):
        assert socket.getaddrinfo(host, 80, **kwargs) == CANNED["getaddrinfo"]
    assert fake_system == [("getaddrinfo", host)]
    assert mock.calls == []


def test_own_hostname_resolves_as_before(mock, fake_system) -> None:
    with pycorefile.patch(mock):
        assert socket.gethostbyname(socket.gethostname()) == "192.0.2.99"
        assert socket.gethostbyaddr("127.0.0.1") == CANNED["gethostbyaddr"]
    assert mock.calls == []


def test_families_and_order(mock) -> None:
    with pycorefile.patch(mock):
        addrs = [i[4][0] for i in socket.getaddrinfo("dual.test", 80, type=socket.SOCK_STREAM)]
        assert addrs == ["fd00::8", "10.0.0.8"]     # IPv6 first, RFC 6724's default
        v4 = socket.getaddrinfo("dual.test", 80, socket.AF_INET, socket.SOCK_STREAM)
        assert v4 == [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.8", 80))]
        v6 = socket.getaddrinfo("dual.test", 80, socket.AF_INET6, socket.SOCK_STREAM)
        assert v6 == [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00::8", 80, 0, 0))]
        mapped = socket.getaddrinfo("db.test", 80, socket.AF_INET6, socket.SOCK_STREAM,
                                    flags=socket.AI_V4MAPPED)
        assert [i[4][0] for i in mapped] == ["::ffff:10.0.0.7"]
        # No type: one entry per socket type, as the real getaddrinfo gives.
        kinds = {i[1] for i in socket.getaddrinfo("db.test", 53)}
        assert {socket.SOCK_STREAM, socket.SOCK_DGRAM} <= kinds
        assert socket.getaddrinfo("db.test", "http", socket.AF_INET, socket.SOCK_STREAM)[0][4] == (
            "10.0.0.7", 80
        )
        assert socket.getaddrinfo("db.test", None, socket.AF_INET, socket.SOCK_DGRAM)[0][4] == (
            "10.0.0.7", 0
        )
        canon = socket.getaddrinfo("alias.test", 80, socket.AF_INET, socket.SOCK_STREAM,
                                   flags=socket.AI_CANONNAME)
        assert canon[0][3] == "db.test"
        assert socket.getaddrinfo(b"db.test", 80, socket.AF_INET)[0][4][0] == "10.0.0.7"
        with pytest.raises(socket.gaierror) as exc:
            socket.getaddrinfo("db.test", "no-such-service", socket.AF_INET)
        assert exc.value.errno == socket.EAI_SERVICE
    # AF_UNSPEC asks A then AAAA.
    assert [c.qtype for c in mock.calls if c.qname == "dual.test"][:2] == ["A", "AAAA"]


@pytest.mark.parametrize(
    "name, family, errno",
    [
        ("gone.test", socket.AF_UNSPEC, socket.EAI_NONAME),
        ("nowhere.test", socket.AF_INET, socket.EAI_NONAME),
        ("broken.test", socket.AF_INET, socket.EAI_AGAIN),
        ("slow.test", socket.AF_INET, socket.EAI_AGAIN),
        ("only-mx.test", socket.AF_UNSPEC, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)),
        ("v6.test", socket.AF_INET, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)),
    ],
)
def test_errors_are_glibcs(mock, name, family, errno) -> None:
    with pycorefile.patch(mock):
        with pytest.raises(socket.gaierror) as exc:
            socket.getaddrinfo(name, 80, family)
        assert exc.value.errno == errno
        with pytest.raises(socket.gaierror) as exc:
            socket.gethostbyname(name)


def test_one_family_failing_still_returns_the_other(mock) -> None:
    mock.add("half.test", ["10.5.5.5", "fd00::5"])
    mock.add_failure("half.test", "SERVFAIL", qtype="AAAA")
    with pycorefile.patch(mock):
        assert [i[4][0] for i in socket.getaddrinfo("half.test", 80, type=socket.SOCK_STREAM)] == [
            "10.5.5.5"
        ]


def test_cname_chains(mock) -> None:
    with pycorefile.patch(mock):
        assert socket.gethostbyname_ex("alias.test") == ("db.test", ["alias.test"], ["10.0.0.7"])
        # The mapping only has a CNAME: its target is asked for next, as a
        # recursive resolver would.
        assert socket.gethostbyname_ex("ext.test") == (
            "db.elsewhere.test", ["ext.test"], ["10.0.0.9"]
        )


def test_gethostbyaddr(mock) -> None:
    mock.add("9.9.0.10.in-addr.arpa", PTR="named.test")
    with pycorefile.patch(mock):
        assert socket.gethostbyaddr("10.0.0.7") == ("db.test", [], ["10.0.0.7"])
        assert socket.gethostbyaddr("10.0.9.9") == ("named.test", [], ["10.0.9.9"])
        assert socket.gethostbyaddr("db.test")[0] == "db.test"      # forward, then reverse
        assert socket.gethostbyaddr("fd00::8")[0] == "dual.test"
        assert socket.getfqdn("db.test") == "db.test"
        with pytest.raises(socket.herror) as exc:
            socket.gethostbyaddr("192.0.2.1")
        assert exc.value.errno == 1
        # Loopback is /etc/hosts territory: resolved as before, not asked.
        socket.gethostbyaddr("127.0.0.1")
    assert "1.0.0.127.in-addr.arpa" not in {c.qname for c in mock.calls}


def test_idna_names(mock) -> None:
    mock.add("xn--bcher-kva.test", "10.0.0.66")
    with pycorefile.patch(mock):
        assert socket.gethostbyname("bücher.test") == "10.0.0.66"


def test_asyncio_default_loop_is_covered(mock) -> None:
    async def main():
        return await asyncio.get_running_loop().getaddrinfo("db.test", 80, family=socket.AF_INET)

    with pycorefile.patch(mock):
        infos = asyncio.run(main())
    assert infos[0][4] == ("10.0.0.7", 80)
    assert mock.calls[0].client == "getaddrinfo"


def test_aiodns_with_a_plain_resolver_gets_its_own_loopback_server() -> None:
    aiodns = pytest.importorskip("aiodns")

    async def main():
        return await aiodns.DNSResolver().query_dns("web.corp.test", "A")

    with pycorefile.Resolver.from_corefile(TEMPLATE) as r:
        with pycorefile.patch(r) as p:
            result = asyncio.run(main())
            server = p._own_server
            assert server is not None and server.port > 0
        assert result.answer[0].data.addr == "10.20.0.1"
        assert p._own_server is None     # stopped with the patch


def test_patch_stays_the_function_after_importing_its_module(mock) -> None:
    import pycorefile.patching  # noqa: F401 - importing the module must not shadow it

    assert pycorefile.patch is pycorefile.patching.patch
    with pycorefile.patch(mock):
        assert socket.gethostbyname("db.test") == "10.0.0.7"
