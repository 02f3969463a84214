"""Real upstream DNS servers and a fault-injecting relay for the forward and cache tests.

CoreDNS's own forward tests run against in-process stubs. pycorefile's tests talk to real
servers over real sockets instead, because the interesting failures (truncation, refused
ports, late or spoofed replies, a server that restarts) happen at the process boundary:

* :class:`NsdServer`, :class:`KnotServer` and :class:`DnsmasqServer` start the system's
  ``nsd``, ``knotd`` and ``dnsmasq`` in the foreground on ``127.0.0.1`` and a free high port,
  with every config, zone, pid and database file in a private temporary directory. They share
  the :class:`Authoritative` interface (``host``, ``port``, ``address``, ``start()``,
  ``stop()``) and can be stopped and started again on the same port.
* All of them serve the test zone ``example.test.`` described by the constants below
  (:data:`DEFAULT_ZONE_TEXT` for NSD and Knot, the equivalent command-line records for dnsmasq).
* :class:`FaultRelay` sits between a client and one of those servers and misbehaves on
  demand (drop, delay, SERVFAIL, spoofed IDs, garbage, truncation, a closed port...), while
  recording every query it sees.

The pytest fixtures built on these live in ``tests/conftest.py``.
"""

from __future__ import annotations

import abc
import asyncio
import atexit
import grp
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple, Protocol, TypeVar, cast, get_args

import pytest
from dnslib import EDNS0, QTYPE, RCODE, DNSLabel, DNSRecord

__all__ = [
    "A_ADDRESS",
    "A_TTL",
    "AAAA_ADDRESS",
    "BIG_TXT",
    "DEFAULT_ZONE_TEXT",
    "MULTI_ADDRESSES",
    "MX_EXCHANGE",
    "MX_PREFERENCE",
    "NEGATIVE_TTL",
    "RELAY_MODES",
    "SHORT_ADDRESS",
    "SHORT_TTL",
    "SOA_MINIMUM",
    "SOA_TTL",
    "TWENTY_ADDRESSES",
    "ZONE_ORIGIN",
    "Authoritative",
    "DnsmasqServer",
    "Endpoint",
    "FaultRelay",
    "KnotServer",
    "NsdServer",
    "RelayMode",
    "RelayQuery",
    "free_port",
    "require_binary",
]

LOCALHOST = "127.0.0.1"

# ---------------------------------------------------------------------------------------------
# The test zone.
#
# SOA TTL (60) and SOA MINIMUM (300) differ on purpose: RFC 2308 §5 makes the negative-caching
# TTL the smaller of the two, and CoreDNS's cache follows that (MinimalTTL over the authority
# section), so a test can tell a resolver that uses the right one from one that does not.

ZONE_ORIGIN = "example.test."
SOA_TTL = 60
SOA_MINIMUM = 300
NEGATIVE_TTL = min(SOA_TTL, SOA_MINIMUM)
A_ADDRESS = "192.0.2.1"
A_TTL = 3600
SHORT_ADDRESS = "192.0.2.2"
SHORT_TTL = 2
MULTI_ADDRESSES = ("192.0.2.10", "192.0.2.11")
AAAA_ADDRESS = "2001:db8::1"
MX_PREFERENCE = 10
MX_EXCHANGE = "mail.example.test."
MAIL_ADDRESS = "192.0.2.25"
#: 40 distinct 50-character strings, one TXT record each: about 2.5 kB on the wire, so the
#: RRset overflows both the 512-byte classic UDP limit and the 1232-byte EDNS default.
#: (Distinct, because servers drop duplicate records from an RRset.)
BIG_TXT = tuple(f"big-{i:02d}-".ljust(50, "abcdefghij"[i % 10]) for i in range(40))
#: ``twenty.example.test`` A. About 360 bytes compressed, about 700 without compression.
TWENTY_ADDRESSES = tuple(f"198.51.100.{i}" for i in range(1, 21))


def _default_zone_text() -> str:
    lines = [
        f"$ORIGIN {ZONE_ORIGIN}",
        "$TTL 3600",
        f"@ {SOA_TTL} IN SOA ns.example.test. hostmaster.example.test. "
        f"1 3600 900 604800 {SOA_MINIMUM}",
        "@ IN NS ns.example.test.",
        "ns IN A 192.0.2.53",
        f"a {A_TTL} IN A {A_ADDRESS}",
        f"short {SHORT_TTL} IN A {SHORT_ADDRESS}",
        *(f"multi IN A {ip}" for ip in MULTI_ADDRESSES),
        f"aaaa IN AAAA {AAAA_ADDRESS}",
        f"mx IN MX {MX_PREFERENCE} {MX_EXCHANGE}",
        f"mail IN A {MAIL_ADDRESS}",
        *(f'big IN TXT "{text}"' for text in BIG_TXT),
        "c1 IN CNAME c2.example.test.",
        "c2 IN CNAME a.example.test.",
        *(f"twenty IN A {ip}" for ip in TWENTY_ADDRESSES),
    ]
    return "\n".join(lines) + "\n"


#: Zone file for :data:`ZONE_ORIGIN`, as served by NSD and Knot.
DEFAULT_ZONE_TEXT = _default_zone_text()


# ---------------------------------------------------------------------------------------------
# Small helpers.

# Debian installs the servers in /usr/sbin, which is not on an ordinary user's PATH.
_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def require_binary(name: str) -> str:
    """Return the path of executable ``name``, or end the test when it is not installed.

    On a developer machine a missing server skips the test. In CI (``CI`` set to any
    non-empty value) it fails it: a CI run that silently skips the integration tests proves
    nothing.
    """
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *_SBIN_DIRS])
    path = shutil.which(name, path=search)
    if path is not None:
        return path
    reason = f"{name!r} is not installed (see .ci/install-debian-packages.sh)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; in CI a missing tool is an error, not a skip", pytrace=False)
    pytest.skip(reason)


def free_port(host: str = LOCALHOST) -> int:
    """Return a port that is currently free on ``host`` for both UDP and TCP.

    Nothing is reserved: another process can still take the port before it is bound, which
    is why the servers below retry with a new port when binding fails at first start.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port free for both UDP and TCP on {host}")


class Endpoint(Protocol):
    """Anything with ``host`` and ``port``: the servers here, a :class:`FaultRelay`."""

    host: str
    port: int


def _parse_address(address: str | tuple[str, int] | Endpoint) -> tuple[str, int]:
    if isinstance(address, str):
        host, sep, port = address.rpartition(":")
        return (host.strip("[]"), int(port)) if sep else (address, 53)
    if isinstance(address, tuple):
        return address
    return address.host, address.port


def _query(
    host: str,
    port: int,
    qname: str,
    qtype: str,
    qclass: str = "IN",
    *,
    tcp: bool,
    timeout: float,
) -> DNSRecord | None:
    """One query, no retries; ``None`` on any network or parse failure.

    The UDP socket is connected, so a port nobody listens on fails at once (ICMP port
    unreachable) instead of after ``timeout``: that keeps start-up polling fast.
    """
    query = DNSRecord.question(qname, qtype, qclass)
    kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
    try:
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.settimeout(timeout)
            sock.connect((host, port))
            if tcp:
                wire = query.pack()
                sock.sendall(struct.pack("!H", len(wire)) + wire)
                size = struct.unpack("!H", _recv_exactly(sock, 2))[0]
                raw = _recv_exactly(sock, size)
            else:
                sock.send(query.pack())
                raw = sock.recv(65535)
        reply = DNSRecord.parse(raw)
    except Exception:
        return None
    return reply if reply.header.id == query.header.id else None


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed mid-message")
        data += chunk
    return data


# Every process started here, so that an interpreter that exits without running fixture
# teardown (Ctrl-C during a session fixture, an internal error) still leaves nothing behind.
_live_processes: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


def _kill_process_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    # SIGTERM goes to the server's main process only, so that it shuts down its own children
    # (NSD forks server and xfrd processes) in its usual order. Each server runs in its own
    # session (start_new_session=True), so its process group id is its pid: the final
    # SIGKILL to the group catches anything that outlived the main process.
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    with _live_lock:
        _live_processes.discard(proc)


@atexit.register
def _kill_leftovers() -> None:
    with _live_lock:
        leftovers = list(_live_processes)
    for proc in leftovers:
        _kill_process_group(proc, grace=1.0)


def _user_and_group() -> tuple[str, str]:
    """Names of the current user and group, to tell servers not to switch identity."""
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


# ---------------------------------------------------------------------------------------------
# Servers.

_S = TypeVar("_S", bound="Authoritative")


class _ExitedEarly(RuntimeError):
    """The server process ended during start-up (most often: its port was taken)."""


class Authoritative(abc.ABC):
    """A DNS server process on ``127.0.0.1`` that serves the test zone.

    Use it as a context manager, or call :meth:`start` / :meth:`close`. The port is chosen
    when the object is created, so :attr:`address` is known before the server starts, and it
    stays the same across :meth:`stop` / :meth:`start`: a test can take an upstream away and
    bring it back where the resolver under test expects it.

    ``extra_records`` is zone-file text appended to the default zone (relative names are
    relative to ``example.test.``); ``zone_text`` replaces the default zone entirely;
    ``extra_zones`` maps further origins to their zone-file text.
    """

    #: Short name, used for the temporary directory and log file.
    name: str = ""
    #: Executable looked up with :func:`require_binary`.
    binary: str = ""

    def __init__(
        self,
        *,
        zone_text: str | None = None,
        extra_records: str = "",
        extra_zones: Mapping[str, str] | None = None,
        port: int | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.host = LOCALHOST
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.startup_timeout = startup_timeout
        text = zone_text if zone_text is not None else DEFAULT_ZONE_TEXT
        if extra_records:
            text = text + extra_records.strip("\n") + "\n"
        self.zones: dict[str, str] = {ZONE_ORIGIN: text}
        for origin, body in (extra_zones or {}).items():
            self.zones[origin if origin.endswith(".") else origin + "."] = body
        self.workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- the interface ----------------------------------------------------------------------

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"``, the form a Corefile ``forward`` line takes."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self: _S) -> _S:
        """Start the server and wait until it answers over UDP and TCP.

        Raises ``RuntimeError`` (with the server's log) when it exits or does not answer
        within ``startup_timeout``. Starting a running server does nothing.
        """
        if self.running:
            return self
        executable = require_binary(self.binary)
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"pycorefile-{self.name}-"))
        # A port picked by free_port() can be taken by someone else before the server binds
        # it; on the first start only (a restart must keep its port) try a fresh one.
        attempts = 1 if (self._fixed_port or self._proc is not None) else 3
        for attempt in range(attempts):
            self._write_files(self.workdir)
            try:
                self._launch(executable)
                return self
            except _ExitedEarly:
                if attempt == attempts - 1:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL). Files and port number are kept."""
        if self._proc is not None:
            _kill_process_group(self._proc)

    def close(self) -> None:
        """Stop the server and remove its temporary directory."""
        self.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def log_text(self) -> str:
        """Everything the server wrote to stdout/stderr (and its log file) so far."""
        if self.workdir is None:
            return ""
        path = self.workdir / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self: _S) -> _S:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.address} {state}>"

    # -- what each server provides ---------------------------------------------------------

    @abc.abstractmethod
    def _write_files(self, workdir: Path) -> None:
        """Write config and zone files for the current port."""

    @abc.abstractmethod
    def _argv(self, executable: str, workdir: Path) -> list[str]:
        """Command line that runs the server in the foreground."""

    def _readiness_queries(self) -> list[tuple[str, str, str]]:
        """(qname, qtype, qclass) that must all be answered before the server counts as up."""
        return [(origin, "SOA", "IN") for origin in self.zones]

    def _is_ready(self, reply: DNSRecord) -> bool:
        # An authoritative server answers REFUSED or SERVFAIL until its zone is loaded.
        return reply.header.rcode == RCODE.NOERROR and any(rr.rtype == QTYPE.SOA for rr in reply.rr)

    def _probe(self, *, tcp: bool, timeout: float) -> bool:
        for qname, qtype, qclass in self._readiness_queries():
            reply = _query(self.host, self.port, qname, qtype, qclass, tcp=tcp, timeout=timeout)
            if reply is None or not self._is_ready(reply):
                return False
        return True

    # -- process handling ------------------------------------------------------------------

    def _launch(self, executable: str) -> None:
        assert self.workdir is not None
        log_path = self.workdir / f"{self.name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                self._argv(executable, self.workdir),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with _live_lock:
            _live_processes.add(proc)
        self._proc = proc
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if self._probe(tcp=False, timeout=0.2) and self._probe(tcp=True, timeout=1.0):
                return
            time.sleep(0.02)
        status = proc.poll()
        _kill_process_group(proc)
        if status is not None:
            raise _ExitedEarly(
                f"{self.name} on {self.address} exited with status {status}; "
                f"log:\n{self.log_text()}"
            )
        raise RuntimeError(
            f"{self.name} on {self.address} did not answer within {self.startup_timeout}s; "
            f"log:\n{self.log_text()}"
        )


class NsdServer(Authoritative):
    """NSD 4 in the foreground (``nsd -d``): no chroot, no user switch, no database file."""

    name = "nsd"
    binary = "nsd"

    def _write_files(self, workdir: Path) -> None:
        zones = []
        for i, (origin, text) in enumerate(self.zones.items()):
            (workdir / f"zone{i}.zone").write_text(text)
            zones.append(f'zone:\n  name: "{origin}"\n  zonefile: "zone{i}.zone"\n')
        config = f"""\
server:
  ip-address: {self.host}@{self.port}
  port: {self.port}
  do-ip4: yes
  do-ip6: no
  # Empty username and chroot: stay who we are, so the same config works as root and not.
  username: ""
  chroot: ""
  zonesdir: "{workdir}"
  database: ""
  pidfile: "{workdir}/nsd.pid"
  xfrdfile: "{workdir}/xfrd.state"
  xfrdir: "{workdir}"
  zonelistfile: "{workdir}/zone.list"
  # The file its captured stdout/stderr also goes to (both append).
  logfile: "{workdir}/nsd.log"
  server-count: 1
  verbosity: 1
  hide-version: yes
  # No NS/glue in positive answers: keeps reply sizes and minimum TTLs predictable.
  minimal-responses: yes
  reuseport: no
remote-control:
  control-enable: no
{"".join(zones)}"""
        (workdir / "nsd.conf").write_text(config)

    def _argv(self, executable: str, workdir: Path) -> list[str]:
        return [executable, "-d", "-c", str(workdir / "nsd.conf")]


class KnotServer(Authoritative):
    """Knot DNS (``knotd``, foreground by default) with its rundir and LMDB databases private."""

    name = "knot"
    binary = "knotd"

    def _write_files(self, workdir: Path) -> None:
        (workdir / "db").mkdir(exist_ok=True)
        zones = []
        for i, (origin, text) in enumerate(self.zones.items()):
            (workdir / f"zone{i}.zone").write_text(text)
            zones.append(f'  - domain: "{origin}"\n    file: "{workdir}/zone{i}.zone"\n')
        user, group = _user_and_group()
        config = f"""\
server:
    listen: {self.host}@{self.port}
    rundir: "{workdir}"
    pidfile: "{workdir}/knot.pid"
    user: {user}:{group}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{workdir}/db"
control:
    listen: "{workdir}/knot.sock"
log:
  - target: stderr
    any: info
template:
  - id: default
    storage: "{workdir}"
    # Serve the zone file as written: never write it back, no journal, no checks.
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
{"".join(zones)}"""
        (workdir / "knot.conf").write_text(config)

    def _argv(self, executable: str, workdir: Path) -> list[str]:
        return [executable, "-c", str(workdir / "knot.conf")]


def _dnsmasq_records() -> list[str]:
    """The test zone as dnsmasq options (TTLs from ``--local-ttl`` unless given)."""
    z = ZONE_ORIGIN.rstrip(".")
    return [
        f"--host-record=a.{z},{A_ADDRESS},{A_TTL}",
        f"--host-record=short.{z},{SHORT_ADDRESS},{SHORT_TTL}",
        *(f"--host-record=multi.{z},{ip}" for ip in MULTI_ADDRESSES),
        f"--host-record=aaaa.{z},{AAAA_ADDRESS}",
        f"--mx-host=mx.{z},{MX_EXCHANGE.rstrip('.')},{MX_PREFERENCE}",
        f"--host-record=mail.{z},{MAIL_ADDRESS}",
        *(f"--txt-record=big.{z},{text}" for text in BIG_TXT),
        f"--cname=c1.{z},c2.{z}",
        f"--cname=c2.{z},a.{z}",
        *(f"--host-record=twenty.{z},{ip}" for ip in TWENTY_ADDRESSES),
    ]


class DnsmasqServer(Authoritative):
    """dnsmasq in the foreground (``-k``): local test records, a forwarder, or both.

    By default (no ``servers``) it answers the test zone from ``--host-record``/``--txt-record``
    /``--mx-host``/``--cname`` options, with ``--local=/example.test/`` so other names in the
    zone are NXDOMAIN. Unlike NSD and Knot it is not authoritative: those NXDOMAIN replies
    carry no SOA, and there is no SOA record at the apex.

    ``servers`` (``"host:port"`` strings, ``(host, port)`` pairs, servers or relays) makes it a caching forwarder
    (``--server=HOST#PORT``); then the local records are off unless ``records=True``.
    ``cache_size`` sets ``--cache-size`` (dnsmasq's default is 150; 0 disables the cache).
    ``extra_args`` are appended to the command line (e.g. ``--address=/blocked.test/0.0.0.0``).
    ``zone_text``/``extra_records``/``extra_zones`` do not apply.
    """

    name = "dnsmasq"
    binary = "dnsmasq"

    def __init__(
        self,
        *,
        servers: Sequence[str | tuple[str, int] | Endpoint] = (),
        cache_size: int | None = None,
        records: bool | None = None,
        extra_args: Iterable[str] = (),
        port: int | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        super().__init__(port=port, startup_timeout=startup_timeout)
        self.servers = [_parse_address(s) for s in servers]
        self.cache_size = cache_size
        self.records = (not self.servers) if records is None else records
        self.extra_args = list(extra_args)

    def _write_files(self, workdir: Path) -> None:
        pass  # everything is on the command line

    def _argv(self, executable: str, workdir: Path) -> list[str]:
        user, group = _user_and_group()
        argv = [
            executable,
            "-k",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            f"--port={self.port}",
            f"--listen-address={self.host}",
            "--bind-interfaces",
            "--pid-file=",  # empty: no pid file, the Popen handle is enough
            "--log-facility=-",
            # The current identity: as root this stops the switch to "nobody", as anyone
            # else it is a no-op.
            f"--user={user}",
            f"--group={group}",
            f"--local-ttl={A_TTL}",
        ]
        if self.cache_size is not None:
            argv.append(f"--cache-size={self.cache_size}")
        for host, port in self.servers:
            argv.append(f"--server={host}#{port}")
        if self.records:
            argv.append(f"--local=/{ZONE_ORIGIN.rstrip('.')}/")
            argv.extend(_dnsmasq_records())
        argv.extend(self.extra_args)
        return argv

    def _readiness_queries(self) -> list[tuple[str, str, str]]:
        # dnsmasq answers this CHAOS query itself: it works for a forwarder whose upstream
        # is down or a black hole, where a forwarded query would never be answered.
        return [("version.bind.", "TXT", "CH")]

    def _is_ready(self, reply: DNSRecord) -> bool:
        return bool(reply.header.rcode == RCODE.NOERROR)


# ---------------------------------------------------------------------------------------------
# The fault-injecting relay.

RelayMode = Literal[
    "pass",
    "drop",
    "delay",
    "servfail",
    "refused",
    "nxdomain",
    "wrong_id",
    "wrong_question",
    "garbage",
    "truncate",
    "stop",
]
#: Every mode :class:`FaultRelay` knows, in the order of its docstring.
RELAY_MODES: tuple[str, ...] = get_args(RelayMode)

_SYNTHETIC_RCODES = {
    "servfail": RCODE.SERVFAIL,
    "refused": RCODE.REFUSED,
    "nxdomain": RCODE.NXDOMAIN,
}


class _Unset:
    """Marks an argument that was not given (``None`` is a meaningful value)."""


_UNSET = _Unset()


class RelayQuery(NamedTuple):
    """One query seen by a :class:`FaultRelay`."""

    proto: str  # "udp" or "tcp"
    qname: str  # as sent, with the trailing dot; "" if the query did not parse
    qtype: str  # "A", "NS", ...
    flags: frozenset[str]  # header flags set: "rd", "cd", "ad"; plus "do" for the EDNS DO bit
    id: int
    edns: int | None  # advertised EDNS UDP payload size; None without an OPT record

    @property
    def rd(self) -> bool:
        return "rd" in self.flags

    @property
    def do(self) -> bool:
        return "do" in self.flags


def _describe(data: bytes, proto: str) -> RelayQuery:
    try:
        msg = DNSRecord.parse(data)
    except Exception:
        qid = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 0
        return RelayQuery(proto, "", "", frozenset(), qid, None)
    h = msg.header
    flags = {name for name in ("rd", "cd", "ad") if getattr(h, name)}
    edns = None
    for rr in msg.ar:
        if rr.rtype == QTYPE.OPT:
            edns = rr.rclass
            if rr.ttl & 0x8000:
                flags.add("do")
    if msg.questions:
        q = msg.questions[0]
        qname, qtype = str(q.qname), QTYPE[q.qtype]
    else:
        qname, qtype = "", ""
    return RelayQuery(proto, qname, str(qtype), frozenset(flags), h.id, edns)


def _same_name(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


class _UdpListener(asyncio.DatagramProtocol):
    def __init__(self, relay: FaultRelay) -> None:
        self.relay = relay
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's selector datagram transport does not inherit from DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        transport = self.transport
        assert transport is not None

        def send(reply: bytes) -> None:
            if not transport.is_closing():
                transport.sendto(reply, addr)

        self.relay._spawn(self.relay._handle(data, "udp", send))

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors from clients that went away


class FaultRelay:
    """A UDP+TCP DNS relay in front of one upstream that misbehaves on demand.

    It listens on ``127.0.0.1`` and a free port (kept across :meth:`stop`/:meth:`start`) and
    runs an asyncio loop in a daemon thread. Each query is relayed over the protocol it
    arrived on (UDP→UDP, TCP→TCP, one upstream connection per query), unless :attr:`mode`
    says otherwise:

    ``pass``
        relay faithfully.
    ``drop``
        a black hole: record the query, never answer (TCP connections stay open).
    ``delay``
        relay, but hold the reply for :attr:`delay` seconds (other queries are not blocked).
    ``servfail`` / ``refused`` / ``nxdomain``
        answer at once with that rcode without asking upstream: ID, question and RD copied,
        QR and RA set, AA clear, no records (so the NXDOMAIN has no SOA), an OPT record only
        if the query had one.
    ``wrong_id``
        send upstream's reply with a different ID; if :attr:`followup` is a number, send the
        genuine reply that many seconds later (a spoof-resistant client gets the real one).
    ``wrong_question``
        send upstream's reply with the same ID but another qname (``wrong.`` prepended);
        the genuine reply follows after :attr:`followup` seconds if that is set.
    ``garbage``
        send a datagram (a TCP frame) of junk bytes, then the genuine reply.
    ``truncate``
        UDP: an empty reply with TC=1 and nothing asked upstream; TCP queries are relayed,
        so a client that retries over TCP (``prefer_udp``) gets the full answer.
    ``stop``
        close the sockets: UDP clients get ICMP port unreachable (ECONNREFUSED on a connected
        socket), TCP connects are refused. Setting another mode, or :meth:`start`, opens the
        same port again.

    If the upstream does not answer within ``upstream_timeout`` (or refuses), the client
    gets nothing, as from a real forwarder that lost the reply.

    Every query is recorded in :attr:`queries` (also in ``drop`` and synthetic modes).
    :meth:`set_rule` picks a mode per query, e.g. "drop two queries out of three".
    """

    #: Sent by ``garbage``: shorter than a DNS header, so it cannot be mistaken for a reply.
    GARBAGE = b"\xde\xad\xbe\xef garbage"

    def __init__(
        self,
        upstream: str | tuple[str, int] | Endpoint,
        *,
        port: int | None = None,
        upstream_timeout: float = 2.0,
    ) -> None:
        self.upstream = _parse_address(upstream)
        self.host = LOCALHOST
        self._fixed_port = port is not None
        self._started = False
        self.port = port if port is not None else free_port()
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._seen = threading.Condition(self._lock)
        self._mode: str = "pass"
        self._delay = 1.0
        self._followup: float | None = None
        self._rule: Callable[[RelayQuery, int], str | None] | None = None
        self._queries: list[RelayQuery] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- configuration (any thread) --------------------------------------------------------

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"``, the form a Corefile ``forward`` line takes."""
        return f"{self.host}:{self.port}"

    @property
    def mode(self) -> str:
        with self._lock:
            return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        self.set_mode(mode)

    @property
    def delay(self) -> float:
        """Seconds the ``delay`` mode holds each reply."""
        with self._lock:
            return self._delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        with self._lock:
            self._delay = seconds

    @property
    def followup(self) -> float | None:
        """Seconds after a spoofed reply (``wrong_id``, ``wrong_question``) that the genuine
        one is sent; ``None``: never."""
        with self._lock:
            return self._followup

    @followup.setter
    def followup(self, seconds: float | None) -> None:
        with self._lock:
            self._followup = seconds

    def set_mode(
        self,
        mode: str,
        *,
        delay: float | None = None,
        followup: float | None | _Unset = _UNSET,
    ) -> None:
        """Switch mode (and optionally :attr:`delay` / :attr:`followup`) atomically.

        ``"stop"`` closes the listening sockets; any other mode reopens them if stopped.
        """
        if mode not in RELAY_MODES:
            raise ValueError(f"unknown relay mode {mode!r}; expected one of {RELAY_MODES}")
        with self._lock:
            if delay is not None:
                self._delay = delay
            if not isinstance(followup, _Unset):
                self._followup = followup
            previous, self._mode = self._mode, mode
        if mode == "stop" and previous != "stop":
            self._run(self._close_sockets())
        elif mode != "stop" and previous == "stop":
            self._run(self._open_sockets())

    def set_rule(self, rule: Callable[[RelayQuery, int], str | None] | None) -> None:
        """Choose the mode per query: ``rule(query, index)`` returns a mode name, or ``None``
        for the current :attr:`mode`. ``index`` counts queries from 0 since the last
        :meth:`reset`. ``"stop"`` is not allowed here. ``None`` removes the rule."""
        with self._lock:
            self._rule = rule

    # -- observation -------------------------------------------------------------------------

    @property
    def queries(self) -> list[RelayQuery]:
        """A copy of the queries seen since the last :meth:`reset`, in arrival order."""
        with self._lock:
            return list(self._queries)

    def count(
        self, qname: str | None = None, qtype: str | None = None, proto: str | None = None
    ) -> int:
        """Number of recorded queries matching every given filter (qname case-insensitive,
        trailing dot optional)."""
        return sum(1 for q in self.queries if self._matches(q, qname, qtype, proto))

    def wait_for(
        self,
        n: int,
        qname: str | None = None,
        qtype: str | None = None,
        proto: str | None = None,
        *,
        timeout: float = 5.0,
    ) -> bool:
        """Block until at least ``n`` matching queries were seen; ``False`` on timeout.

        For queries a resolver sends in the background (health checks, prefetch).
        """

        def enough() -> bool:
            return sum(1 for q in self._queries if self._matches(q, qname, qtype, proto)) >= n

        with self._seen:
            return self._seen.wait_for(enough, timeout=timeout)

    def reset(self) -> None:
        """Forget recorded queries and rule; back to ``pass`` (reopening if stopped), delay
        1 s, no follow-up."""
        self.set_rule(None)
        self.set_mode("pass")
        with self._lock:
            self._queries.clear()
            self._delay = 1.0
            self._followup = None

    @staticmethod
    def _matches(q: RelayQuery, qname: str | None, qtype: str | None, proto: str | None) -> bool:
        return (
            (qname is None or _same_name(q.qname, qname))
            and (qtype is None or q.qtype == qtype.upper())
            and (proto is None or q.proto == proto)
        )

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the relay's sockets are open."""
        return self._udp is not None

    def start(self) -> FaultRelay:
        """Open the sockets (starting the loop thread on first use). After ``stop`` the
        mode goes back to ``pass``; otherwise it is kept."""
        if self._thread is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name=f"FaultRelay-{self.port}", daemon=True
            )
            thread.start()
            self._loop, self._thread = loop, thread
        with self._lock:
            if self._mode == "stop":
                self._mode = "pass"
        # As for the servers: a port from free_port() may be gone by now; only the first
        # start may move to another one.
        attempts = 1 if (self._fixed_port or self._started) else 3
        for attempt in range(attempts):
            try:
                self._run(self._open_sockets())
                break
            except OSError:
                if attempt == attempts - 1:
                    raise
                self.port = free_port()
        self._started = True
        return self

    def stop(self) -> None:
        """Same as ``mode = "stop"``: the port refuses until :meth:`start`."""
        self.set_mode("stop")

    def close(self) -> None:
        """Close the sockets, end the loop thread. The relay cannot be used afterwards."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._run(self._close_sockets())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FaultRelay:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        host, port = self.upstream
        return f"<FaultRelay {self.address} -> {host}:{port} mode={self.mode}>"

    # -- inside the loop thread ---------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the loop thread and wait for it (no-op before the first start)."""
        if self._loop is None:
            coro.close()
            return
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open_sockets(self) -> None:
        if self._udp is not None:
            return
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpListener(self), local_addr=(self.host, self.port)
        )
        try:
            # reuse_address: a restart must not trip over TIME_WAIT from earlier connections.
            self._tcp = await asyncio.start_server(
                self._serve_tcp, self.host, self.port, reuse_address=True
            )
        except BaseException:
            transport.close()
            raise
        self._udp = transport

    async def _close_sockets(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        # Replies still being delayed or fetched must not leak out once the port is "closed".
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)

        def send(reply: bytes) -> None:
            if not writer.is_closing():
                writer.write(struct.pack("!H", len(reply)) + reply)

        try:
            while True:
                # Queries on one connection are handled concurrently and may be answered out
                # of order (RFC 7766 §6.2.1.1), which is what pipelining clients expect.
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                data = await reader.readexactly(size)
                self._spawn(self._handle(data, "tcp", send))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            if not writer.is_closing():
                writer.close()

    def _record(self, data: bytes, proto: str) -> tuple[RelayQuery, str, float, float | None]:
        query = _describe(data, proto)
        with self._seen:
            index = len(self._queries)
            self._queries.append(query)
            self._seen.notify_all()
            mode, delay, followup, rule = self._mode, self._delay, self._followup, self._rule
        if rule is not None:
            chosen = rule(query, index)
            if chosen is not None:
                if chosen not in RELAY_MODES or chosen == "stop":
                    raise ValueError(f"relay rule returned an invalid mode {chosen!r}")
                mode = chosen
        return query, mode, delay, followup

    async def _handle(self, data: bytes, proto: str, send: Callable[[bytes], None]) -> None:
        _, mode, delay, followup = self._record(data, proto)
        if mode == "drop":
            return
        if mode in _SYNTHETIC_RCODES or (mode == "truncate" and proto == "udp"):
            reply = _synthetic_reply(
                data, rcode=_SYNTHETIC_RCODES.get(mode, 0), tc=mode == "truncate"
            )
            if reply is not None:
                send(reply)
            return
        if mode == "delay":
            await asyncio.sleep(delay)
        real = await self._exchange(data, proto)
        if real is None:
            return
        if mode == "wrong_id":
            qid = struct.unpack("!H", real[:2])[0]
            send(struct.pack("!H", qid ^ 0x5A5A) + real[2:])
        elif mode == "wrong_question":
            send(_with_other_question(real))
        elif mode == "garbage":
            send(self.GARBAGE)
            send(real)
            return
        else:  # pass, delay, truncate over TCP
            send(real)
            return
        if followup is not None:
            await asyncio.sleep(followup)
            send(real)

    async def _exchange(self, data: bytes, proto: str) -> bytes | None:
        try:
            if proto == "udp":
                return await asyncio.wait_for(self._exchange_udp(data), self.upstream_timeout)
            return await asyncio.wait_for(self._exchange_tcp(data), self.upstream_timeout)
        except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError):
            return None

    async def _exchange_udp(self, data: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            # Connected, so a refusing upstream is an immediate ConnectionRefusedError.
            sock.connect(self.upstream)
            await loop.sock_sendall(sock, data)
            while True:
                reply = await loop.sock_recv(sock, 65535)
                if reply[:2] == data[:2]:
                    return reply

    async def _exchange_tcp(self, data: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(*self.upstream)
        try:
            writer.write(struct.pack("!H", len(data)) + data)
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            return await reader.readexactly(size)
        finally:
            writer.close()


def _synthetic_reply(query: bytes, *, rcode: int, tc: bool) -> bytes | None:
    try:
        msg = DNSRecord.parse(query)
    except Exception:
        return None
    reply = msg.reply(ra=1, aa=0)
    reply.header.rcode = rcode
    reply.header.tc = int(tc)
    # RFC 6891 §7: a responder that understands EDNS answers an EDNS query with an OPT.
    if any(rr.rtype == QTYPE.OPT for rr in msg.ar):
        reply.add_ar(EDNS0(udp_len=1232))
    packed: bytes = reply.pack()
    return packed


def _with_other_question(reply: bytes) -> bytes:
    msg = DNSRecord.parse(reply)
    for q in msg.questions:
        q.qname = DNSLabel("wrong." + str(q.qname).lstrip("."))
    packed: bytes = msg.pack()
    return packed
