"""The ``dns_mock`` fixture itself: the call log, assertions, marker and ini options,
fail closed, isolation, xdist and pytest-socket.

Tests that need a test run of their own (a failing test, ini files, ``-n 2``) use
``pytester``; the rest use the fixture directly.
"""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import pycorefile

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "test_with_dns_mock.py"
# Plugins a subprocess run does not need (hypothesis's imports all of hypothesis at the end).
QUIET_PLUGINS = ("-p", "no:hypothesispytest")


# -- in this run -------------------------------------------------------------------------


def test_calls_are_recorded_from_worker_threads(dns_mock) -> None:
    dns_mock.add("*.pool.test", "10.0.0.1")
    names = [f"w{i}.pool.test" for i in range(32)]
    with ThreadPoolExecutor(8) as ex:
        assert set(ex.map(socket.gethostbyname, names)) == {"10.0.0.1"}
    assert sorted(c.qname for c in dns_mock.calls) == sorted(names)
    assert len({c.thread for c in dns_mock.calls}) > 1
    assert threading.current_thread().name not in {c.thread for c in dns_mock.calls}
    for name in names:
        dns_mock.assert_queried(name, times=1)


def test_call_records(dns_mock) -> None:
    dns_mock.add("db.test", "10.0.0.7")
    socket.getaddrinfo("db.test", 5432, socket.AF_INET)
    (call,) = dns_mock.calls
    assert (call.qname, call.qtype, call.rcode, call.answers) == ("db.test", "A", "NOERROR", ("10.0.0.7",))
    assert (call.client, call.plugin, call.cached, call.matched) == ("getaddrinfo", "dns_mock", False, True)
    assert 0 <= call.duration < 1
    assert "db.test A -> NOERROR [10.0.0.7] via getaddrinfo" in str(call)


def test_assertion_helpers(dns_mock) -> None:
    dns_mock.add("db.test", "10.0.0.7")
    socket.gethostbyname("db.test")
    socket.gethostbyname("DB.TEST.")
    dns_mock.assert_queried("db.test", times=2)
    dns_mock.assert_queried("db.test.", qtype=None)
    dns_mock.assert_not_queried("other.test")
    dns_mock.assert_not_queried("db.test", "AAAA")
    with pytest.raises(AssertionError, match="queried 2 time"):
        dns_mock.assert_queried("db.test", times=1)
    with pytest.raises(AssertionError, match="never queried"):
        dns_mock.assert_queried("db.test", "MX")
    with pytest.raises(AssertionError, match=r"db.test A -> NOERROR"):
        dns_mock.assert_not_queried("db.test")
    dns_mock.reset_calls()
    dns_mock.assert_not_queried("db.test")


def test_nodata_for_missing_types(dns_mock) -> None:
    dns_mock.add("v4only.test", "10.0.0.4")
    with pytest.raises(socket.gaierror) as exc:
        socket.getaddrinfo("v4only.test", 80, socket.AF_INET6)
    assert exc.value.errno == getattr(socket, "EAI_NODATA", socket.EAI_NONAME)
    reply = dns_mock.resolver.resolve("v4only.test", "AAAA")
    assert (reply.header.rcode, reply.header.aa, reply.rr) == (0, 1, [])
    assert all(c.matched for c in dns_mock.calls)      # NODATA is not a fail-closed miss


def test_wildcards(dns_mock) -> None:
    dns_mock.add("*.svc.test", "10.1.0.1")
    dns_mock.add("/internal.test/", "10.2.0.1")
    dns_mock.add_nxdomain("svc.test")
    assert socket.gethostbyname("a.b.svc.test") == "10.1.0.1"
    assert socket.gethostbyname("internal.test") == "10.2.0.1"
    assert socket.gethostbyname("x.internal.test") == "10.2.0.1"
    with pytest.raises(socket.gaierror):
        socket.gethostbyname("svc.test")


@pytest.mark.dns_mock(records={"db.test": "10.0.0.7", "mail.test": {"MX": "10 mx.test."},
                               "gone.test": "NXDOMAIN"})
def test_marker_records(dns_mock) -> None:
    assert socket.gethostbyname("db.test") == "10.0.0.7"
    assert [str(r.rdata) for r in dns_mock.resolver.resolve("mail.test", "MX").rr] == ["10 mx.test."]
    with pytest.raises(socket.gaierror):
        socket.gethostbyname("gone.test")


@pytest.mark.dns_mock(corefile="""
corp.test {
    template IN A corp.test {
        answer "{{ .Name }} 60 IN A 10.20.0.1"
    }
}
""")
def test_marker_corefile(dns_mock) -> None:
    dns_mock.add("db.corp.test", "10.0.0.7")     # the mapping wins over the Corefile
    assert socket.gethostbyname("web.corp.test") == "10.20.0.1"
    assert socket.gethostbyname("db.corp.test") == "10.0.0.7"
    assert {c.plugin for c in dns_mock.calls} == {"template", "dns_mock"}


def test_corefile_method_swaps_the_chain_while_patched(dns_mock) -> None:
    dns_mock.add("db.test", "10.0.0.7")
    dns_mock.corefile("""
.:53 {
    template IN A example.test {
        answer "{{ .Name }} 60 IN A 10.30.0.1"
    }
}
""")
    assert socket.gethostbyname("www.example.test") == "10.30.0.1"
    assert socket.gethostbyname("db.test") == "10.0.0.7"


@pytest.fixture
def outer_dns():
    """An earlier patch standing in for 'the real resolver' (installed first)."""
    with pycorefile.mock.MockDNS() as outer:
        outer.add("pypi.example.org", "192.0.2.10")
        with pycorefile.patch(outer):
            yield outer


@pytest.mark.dns_mock(passthrough=["example.org"])
def test_passthrough_goes_to_the_resolver_installed_before(outer_dns, dns_mock) -> None:
    dns_mock.add("api.example.org", "10.0.0.1")    # an explicit entry beats passthrough
    assert socket.gethostbyname("pypi.example.org") == "192.0.2.10"
    assert socket.gethostbyname("api.example.org") == "10.0.0.1"
    dns_mock.assert_not_queried("pypi.example.org")
    outer_dns.assert_queried("pypi.example.org")


def test_resolver_and_metrics(dns_mock) -> None:
    dns_mock.add("db.test", "10.0.0.7")
    assert isinstance(dns_mock.resolver, pycorefile.Resolver)
    socket.gethostbyname("db.test")
    assert dns_mock.metrics.sample("coredns_dns_requests_total", {"type": "A"}) == 1


def test_no_socket_is_opened_in_process(dns_mock, monkeypatch) -> None:
    import dns.resolver

    def refuse(*args, **kwargs):
        raise AssertionError("a socket was opened")

    dns_mock.add("db.test", "10.0.0.7")
    monkeypatch.setattr(socket, "socket", refuse)
    assert socket.gethostbyname("db.test") == "10.0.0.7"
    assert dns.resolver.resolve("db.test")[0].address == "10.0.0.7"
    assert dns_mock.resolver.engine.loop is None      # and no event loop either


# -- in a test run of their own -------------------------------------------------------------


FAIL_CLOSED = """
import socket, pytest

def test_unknown_name(dns_mock):
    dns_mock.add("db.test", "10.0.0.7")
    socket.gethostbyname("db.test")
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("nope.test", 80)

@pytest.mark.dns_mock(strict=False)
def test_lenient(dns_mock):
    with pytest.raises(socket.gaierror):
        socket.gethostbyname("nope.test")
    assert [c.qname for c in dns_mock.unmatched] == ["nope.test"]

def test_failing_anyway(dns_mock):
    socket.gethostbyname("also-nope.test")
"""


def test_fail_closed_fails_the_test_and_lists_names(pytester) -> None:
    pytester.makepyfile(FAIL_CLOSED)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*test_unknown_name*",
        "dns_mock: 1 name(s) with no record looked up (fail closed):",
        "  nope.test A/AAAA (getaddrinfo)",
        "*passthrough*strict=False*",
        "*dns_mock calls*",
        "*db.test A -> NOERROR [[]10.0.0.7] via gethostbyname*",
        "*nope.test AAAA -> NXDOMAIN*<- no record",
    ])
    # A test failing for its own reason also gets the names and the call log.
    result.stdout.fnmatch_lines(["*test_failing_anyway*", "*gaierror*",
                                 "*dns_mock: names with no record*", "*also-nope.test A*"])


def test_ini_options(pytester) -> None:
    pytester.makeini("""
[pytest]
dns_mock_strict = false
dns_mock_passthrough = example.org
""")
    pytester.makepyfile("""
import socket, pytest

def test_lenient_by_ini(dns_mock):
    with pytest.raises(socket.gaierror):
        socket.gethostbyname("nope.test")
    assert dns_mock.passes_through("files.example.org")

@pytest.mark.dns_mock(strict=True)
def test_marker_overrides_ini(dns_mock):
    with pytest.raises(socket.gaierror):
        socket.gethostbyname("nope.test")
""")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_marker_overrides_ini*", "*nope.test A (gethostbyname)*"])


def test_marker_is_registered(pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.dns_mock(records=None, corefile=None, *"])
    pytester.makepyfile("""
import pytest

@pytest.mark.dns_mock(record={"x.test": "10.0.0.1"})
def test_typo(dns_mock):
    pass
""")
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown argument(s)*record*"])


ISOLATION = """
import socket, pytest

def test_first(dns_mock):
    dns_mock.add("iso.test", "10.0.0.1")
    assert socket.gethostbyname("iso.test") == "10.0.0.1"

@pytest.mark.dns_mock(strict=False)
def test_second_sees_nothing_of_the_first(dns_mock):
    with pytest.raises(socket.gaierror):
        socket.gethostbyname("iso.test")
    assert [c.qname for c in dns_mock.calls] == ["iso.test"]

def test_third_is_unpatched():
    # Outside the fixture the process resolves as before.
    assert socket.getaddrinfo.__module__ == "socket"
"""


def test_isolation_between_tests(pytester) -> None:
    pytester.makepyfile(ISOLATION)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


XDIST = """
import socket, pytest

@pytest.mark.parametrize("i", range(8))
def test_each_worker_has_its_own(dns_mock, i):
    dns_mock.add("svc.test", f"10.0.0.{i + 1}")
    assert socket.gethostbyname("svc.test") == f"10.0.0.{i + 1}"
    dns_mock.assert_queried("svc.test", times=1)

def test_fail_closed_under_xdist(dns_mock):
    with pytest.raises(socket.gaierror):
        socket.gethostbyname("unknown.test")
"""


def test_xdist(pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(XDIST)
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", *QUIET_PLUGINS)
    result.assert_outcomes(passed=8, failed=1)
    result.stdout.fnmatch_lines(["*unknown.test A (gethostbyname)*"])


SOCKET_DISABLED = """
import socket, pytest
import pytest_socket

def test_in_process_path_needs_no_socket(dns_mock):
    import dns.resolver
    dns_mock.add("db.test", "10.0.0.7")
    assert socket.gethostbyname("db.test") == "10.0.0.7"
    assert socket.getaddrinfo("db.test", 80, socket.AF_INET)[0][4] == ("10.0.0.7", 80)
    assert dns.resolver.resolve("db.test")[0].address == "10.0.0.7"
    # Names the mock does not handle still reach pytest-socket's guard.
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.getaddrinfo("127.0.0.1", 80)
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.socket()

@pytest.mark.enable_socket
def test_guards_are_gone_afterwards():
    socket.getaddrinfo("127.0.0.1", 80)
"""


def test_pytest_socket_disable_socket(pytester) -> None:
    pytest.importorskip("pytest_socket")
    pytester.makepyfile(SOCKET_DISABLED)
    pytester.runpytest("--disable-socket", "-p", "no:randomly").assert_outcomes(passed=2)


SOCKET_MARKER = """
import socket, pytest

@pytest.mark.disable_socket
def test_disabled_with_mock(dns_mock):
    dns_mock.add("db.test", "10.0.0.7")
    assert socket.gethostbyname("db.test") == "10.0.0.7"

def test_next_test_is_not_left_guarded():
    socket.getaddrinfo("127.0.0.1", 80)
    socket.gethostbyname("127.0.0.1")
"""


def test_pytest_socket_guards_do_not_leak(pytester) -> None:
    pytest.importorskip("pytest_socket")
    pytester.makepyfile(SOCKET_MARKER)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_example_file_runs(pytester) -> None:
    pytester.makepyfile(test_example=EXAMPLE.read_text())
    pytester.runpytest().assert_outcomes(passed=len(EXAMPLE.read_text().split("\ndef test_")) - 1)
