"""Fake DNS from a mapping: the ``dns_mock`` plugin and :class:`MockDNS`.

``MockDNS().add("db.example.test", "10.0.0.7")`` turns a mapping of names into a
real pycorefile chain: a :class:`MockRecords` plugin (directive ``dns_mock``) sits in
the same plugin machinery as ``template`` or ``cache`` and answers with dnslib
records, authoritatively (``aa=1``). :class:`MockDNS` owns the in-process
:class:`~pycorefile.Resolver` running that chain, records every query it answers
(from any thread, any client path) and can serve the same chain on a loopback
port. The pytest plugin (``dns_mock``, ``dns_server``) and ``pycorefile.patch`` are
thin drivers around it.

Name syntax accepted by every ``add*`` method:

* ``db.example.test``: exactly that name;
* ``*.example.test``: every name *below* ``example.test`` (not the apex, RFC 4592);
* ``/example.test/``: dnsmasq's ``address=/example.test/``: the name and everything
  below it; ``/a.test/b.test/`` lists several suffixes at once.

An exact name beats a pattern; among patterns the longest suffix wins, and at the
same suffix ``*.`` beats ``/…/``. A name that has records for some types answers the
other types with NODATA (NOERROR, no answer, SOA in authority), never NXDOMAIN
(RFC 2308 §2.2). A name the mapping does not know gets NXDOMAIN and is marked
*unmatched*: the pytest plugin fails the test for it (fail closed).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from dnslib import AAAA, CNAME, PTR, RD, RR, SOA, TXT, A, DNSLabel, DNSRecord

from . import wire as w
from .chain import Next, Plugin, Reply, Request, SetupContext
from .corefile.errors import CorefileError
from .corefile.model import Corefile, Directive, Token
from .fall import Fallthrough
from .patching import CLIENT, LoopbackServer
from .registry import Registry, default_registry
from .resolver import Resolver
from .routing import Engine

__all__ = [
    "Call",
    "MockDNS",
    "MockRecords",
    "Records",
    "Unmatched",
    "mock_registry",
]

#: Failure rcodes ``add_failure`` accepts; ``TIMEOUT`` means "no reply at all".
FAILURES = {"SERVFAIL": w.SERVFAIL, "REFUSED": w.REFUSED, "NOTIMP": w.NOTIMP,
            "FORMERR": w.FORMERR, "TIMEOUT": -1}
#: Values of a ``records=`` mapping that stand for a failure rather than an address.
SHORTHANDS = frozenset({"NXDOMAIN", *FAILURES})

MAX_CNAME_CHAIN = 8
CNAME_TYPE = 5
SOA_TYPE = 6
PTR_TYPE = 12
ANY_TYPE = 255


def normalize(name: str) -> str:
    """Lower-case, no trailing dot (``""`` is the root)."""
    return name.strip().rstrip(".").lower()


def _in(name: str, suffix: str) -> bool:
    return suffix == "" or name == suffix or name.endswith("." + suffix)


def _parents(name: str) -> Iterator[str]:
    """``a.b.c`` → ``a.b.c``, ``b.c``, ``c``, ``""``."""
    while name:
        yield name
        i = name.find(".")
        name = name[i + 1 :] if i >= 0 else ""
    yield ""


@dataclass(frozen=True)
class _Pattern:
    kind: str             # "exact", "wild" (*.suffix) or "tree" (/suffix/)
    names: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> _Pattern:
        t = text.strip()
        if not t:
            raise ValueError("empty name")
        if t.startswith("/") and t.endswith("/") and len(t) > 1:
            parts = tuple(normalize(p) for p in t.strip("/").split("/"))
            if not parts or any(p == "" and len(parts) > 1 for p in parts):
                raise ValueError(f"bad dnsmasq-style suffix list {text!r}")
            return cls("tree", tuple(_check(p) for p in parts))
        if t == "*" or t == "*.":
            return cls("wild", ("",))
        if t.startswith("*."):
            return cls("wild", (_check(normalize(t[2:])),))
        if "*" in t:
            raise ValueError(f"a wildcard must be the whole first label: {text!r}")
        return cls("exact", (_check(normalize(t)),))


def _check(name: str) -> str:
    if name and any(not label or len(label) > 63 for label in name.split(".")):
        raise ValueError(f"not a valid DNS name: {name!r}")
    return name


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------


@dataclass
class _Entry:
    """What one name (or pattern) answers."""

    zone: str                                    # SOA owner for negative answers
    records: list[tuple[int, int, RD]] = field(default_factory=list)   # (type, ttl, rdata)
    nxdomain: bool = False
    failures: dict[int, str] = field(default_factory=dict)             # 0 = every type

    def failure(self, qtype: int) -> str | None:
        return self.failures.get(qtype) or self.failures.get(0)

    def of_type(self, qtype: int) -> list[tuple[int, int, RD]]:
        if qtype == ANY_TYPE:
            return list(self.records)
        return [r for r in self.records if r[0] == qtype]

    def cname(self) -> str | None:
        for rtype, _, rdata in self.records:
            if rtype == CNAME_TYPE:
                return normalize(str(rdata.label))
        return None


def _rdata(rtype: str, value: Any) -> RD:
    """One record's data from the shorthand value of ``add(..., TYPE=value)``."""
    if isinstance(value, RD):
        return value
    if rtype == "A":
        return A(str(ipaddress.IPv4Address(str(value))))
    if rtype == "AAAA":
        return AAAA(str(ipaddress.IPv6Address(str(value))))
    if rtype in ("CNAME", "PTR"):
        return (CNAME if rtype == "CNAME" else PTR)(DNSLabel(normalize(str(value)) + "."))
    if rtype == "TXT":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        # One TXT record; strings longer than 255 octets are split (RFC 7208 §3.3).
        return TXT([raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""])
    text = " ".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
    try:
        return RR.fromZone(f". 60 IN {rtype} {text}")[0].rdata
    except Exception as exc:
        raise ValueError(f"cannot read {rtype} record {text!r}: {exc}") from None


def _type_code(rtype: str) -> int:
    code = w.qtype_code(rtype)
    if code in (0, ANY_TYPE, w.OPT):
        raise ValueError(f"cannot add {rtype} records")
    return code


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, set, frozenset)):
        return list(value)
    return [value]


def _address_type(value: Any) -> str:
    try:
        ip = ipaddress.ip_address(str(value))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address: pass other data by type, "
            f"e.g. add(name, CNAME={value!r}) or add(name, TXT={value!r})"
        ) from None
    return "A" if ip.version == 4 else "AAAA"


class Records:
    """Names → records, with ``*.`` wildcards and dnsmasq-style ``/suffix/``.

    Thread-safe: writers take a lock and replace the tables (copy on write), so
    readers (any thread answering a query) never see a table mid-update.
    ``passthrough`` lists suffixes the mapping does not own: queries for them
    go on to the rest of the chain (or to the process's real resolver).
    """

    def __init__(self, passthrough: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._exact: dict[str, _Entry] = {}
        self._wild: dict[str, _Entry] = {}
        self._tree: dict[str, _Entry] = {}
        self._ptr: dict[str, tuple[str, int]] = {}   # reverse name → (name, ttl)
        self.passthrough: tuple[str, ...] = tuple(
            normalize(s[2:] if s.startswith("*.") else s) for s in passthrough
        )

    # -- writing ------------------------------------------------------------
    def _entries(self, name: str) -> list[_Entry]:
        """The entries ``name`` designates, created empty when new (lock held)."""
        pat = _Pattern.parse(name)
        table = {"exact": "_exact", "wild": "_wild", "tree": "_tree"}[pat.kind]
        new = dict(getattr(self, table))
        out = []
        for n in pat.names:
            entry = new.get(n)
            if entry is None:
                entry = new[n] = _Entry(zone=n)
            out.append(entry)
        setattr(self, table, new)
        return out

    def add(self, name: str, value: Any = None, *, ttl: int = 60, **types: Any) -> None:
        """Add records: ``value`` is one IP address or a list of them (A or AAAA by
        syntax); ``types`` maps a record type to one value or a list
        (``MX="10 mx.x.test."``, ``TXT="v=spf1 -all"``, ``CNAME="real.test"``...).

        Records accumulate (duplicates are ignored). Adding records to a name
        clears an earlier :meth:`add_nxdomain` / :meth:`add_failure` for it.
        """
        wanted: list[tuple[str, Any]] = [(_address_type(v), v) for v in _values(value)]
        for rtype, vals in types.items():
            wanted.extend((rtype.upper(), v) for v in _values(vals))
        if not wanted:
            raise ValueError("add() needs a value or TYPE=value records")
        made = [(_type_code(t), int(ttl), _rdata(t, v)) for t, v in wanted]
        with self._lock:
            saved = (self._exact, self._wild, self._tree)
            entries = self._entries(name)
            merged = []
            for entry in entries:
                records = list(entry.records)
                for rec in made:
                    if not any(r[0] == rec[0] and r[2] == rec[2] for r in records):
                        records.append(rec)
                cnames = sum(1 for r in records if r[0] == CNAME_TYPE)
                if cnames and (cnames > 1 or len(records) > cnames):
                    self._exact, self._wild, self._tree = saved
                    # RFC 1034 §3.6.2: a CNAME owner has no other data.
                    raise ValueError(f"{name}: a CNAME cannot coexist with other records")
                merged.append(records)
            for entry, records in zip(entries, merged, strict=True):
                entry.records = records
                entry.nxdomain = False
                entry.failures = {}
            if _Pattern.parse(name).kind == "exact":
                self._index_ptr(normalize(name), made)

    def _index_ptr(self, name: str, made: list[tuple[int, int, RD]]) -> None:
        ptr = dict(self._ptr)
        for rtype, ttl, rdata in made:
            if rtype in (1, 28):
                rev = ipaddress.ip_address(str(rdata)).reverse_pointer
                ptr.setdefault(rev, (name, ttl))
        self._ptr = ptr

    def add_nxdomain(self, name: str) -> None:
        """``name`` does not exist (an explicit NXDOMAIN is not a fail-closed miss)."""
        with self._lock:
            for entry in self._entries(name):
                entry.records = []
                entry.failures = {}
                entry.nxdomain = True

    def add_failure(self, name: str, rcode: str = "SERVFAIL", *, qtype: str | None = None) -> None:
        """Queries for ``name`` fail: ``SERVFAIL`` (or ``REFUSED``, ``NOTIMP``,
        ``FORMERR``), or ``TIMEOUT`` (no reply at all). ``qtype`` limits the failure
        to one type (``qtype="AAAA"``: a server that breaks on AAAA only)."""
        rc = rcode.upper()
        if rc not in FAILURES:
            raise ValueError(f"rcode must be one of {sorted(FAILURES)}, not {rcode!r}")
        code = _type_code(qtype) if qtype else 0
        with self._lock:
            for entry in self._entries(name):
                entry.failures = {**entry.failures, code: rc}

    def remove(self, name: str) -> None:
        """Forget ``name`` (or the pattern) entirely."""
        pat = _Pattern.parse(name)
        table = {"exact": "_exact", "wild": "_wild", "tree": "_tree"}[pat.kind]
        with self._lock:
            new = dict(getattr(self, table))
            for n in pat.names:
                new.pop(n, None)
                if pat.kind == "exact":
                    self._ptr = {k: v for k, v in self._ptr.items() if v[0] != n}
            setattr(self, table, new)

    def load(self, mapping: Mapping[str, Any]) -> None:
        """A ``records=`` mapping: ``{name: "10.0.0.7" | [ips] | {"MX": ...} |
        "NXDOMAIN" | "SERVFAIL" | "TIMEOUT"}``."""
        for name, value in mapping.items():
            if isinstance(value, Mapping):
                self.add(name, **dict(value))
            elif isinstance(value, str) and value.upper() in SHORTHANDS:
                if value.upper() == "NXDOMAIN":
                    self.add_nxdomain(name)
                else:
                    self.add_failure(name, value.upper())
            else:
                self.add(name, value)

    # -- reading ------------------------------------------------------------
    def lookup(self, name: str, qtype: int = 1) -> _Entry | None:
        """The entry answering ``name`` (normalised), or ``None``."""
        entry = self._exact.get(name)
        if entry is not None:
            return entry
        wild, tree = self._wild, self._tree
        for suffix in _parents(name):
            if suffix != name:
                hit = wild.get(suffix)
                if hit is not None:
                    return hit
            hit = tree.get(suffix)
            if hit is not None:
                return hit
        if qtype in (PTR_TYPE, ANY_TYPE):
            auto = self._ptr.get(name)
            if auto is not None:
                # Reverse records for the addresses of exact names, like CoreDNS's hosts.
                return _Entry(zone=name, records=[(PTR_TYPE, auto[1], PTR(DNSLabel(auto[0] + ".")))])
        return None

    def owns(self, name: str) -> bool:
        """Does the mapping have anything (records, NXDOMAIN, failure) for ``name``?"""
        return self.lookup(normalize(name), ANY_TYPE) is not None

    def passes_through(self, name: str) -> bool:
        """Is ``name`` under a passthrough suffix (and not in the mapping)?"""
        n = normalize(name)
        return any(_in(n, s) for s in self.passthrough) and not self.owns(n)


# ---------------------------------------------------------------------------
# The plugin
# ---------------------------------------------------------------------------


class Unmatched(Reply):
    """The NXDOMAIN given to a name the mapping has no entry for (fail closed)."""

    __slots__ = ()


_BUILDING: ContextVar[Records | None] = ContextVar("pycorefile_mock_records", default=None)


@contextmanager
def _building(records: Records) -> Iterator[None]:
    token = _BUILDING.set(records)
    try:
        yield
    finally:
        _BUILDING.reset(token)


class MockRecords(Plugin):
    """``dns_mock [{ fallthrough [ZONES...] }]``: answer from a :class:`Records` mapping.

    Without ``fallthrough`` (for the name's zone) a name the mapping does not know gets NXDOMAIN (an
    :class:`Unmatched` reply); with it, the query goes on to the next plugin.
    Names under a passthrough suffix always go on. The directive only exists in
    the engines :class:`MockDNS` builds (see :func:`mock_registry`).
    """

    name = "dns_mock"
    once = True
    # After rewrite/acl, before cache: answers that change mid-test are never
    # hidden by a cached upstream answer.
    before = "cache"

    def __init__(self, records: Records, fallthrough: Fallthrough | None = None) -> None:
        self.records = records
        self.fall = fallthrough or Fallthrough()

    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        records = _BUILDING.get()
        if records is None:
            raise directive.error(
                "dns_mock is only available in engines built by pycorefile.mock.MockDNS",
                plugin=cls.name,
            )
        if directive.args:
            raise directive.arg_error(cls.name)
        fall = Fallthrough()
        for sub in directive.block or ():
            if sub.name != "fallthrough":
                raise sub.error(f"unknown property '{sub.name}'", plugin=cls.name)
            fall = Fallthrough.parse(sub.args)
        return cls(records, fall)

    async def serve(self, request: Request, next: Next) -> Reply:
        name = normalize(request.name)
        qtype = request.qtype
        entry = self.records.lookup(name, qtype)
        if entry is None:
            if self.fall.through(request.name) or self.records.passes_through(name):
                return await next(request)
            return self._negative(request, w.NXDOMAIN, "", unmatched=True)
        failure = entry.failure(qtype)
        if failure == "TIMEOUT":
            dropped = Reply.drop()
            dropped.plugin = self.name
            return dropped
        if failure is not None:
            msg = request.reply(aa=False, rcode=FAILURES[failure])
            return Reply.of(msg, plugin=self.name)
        if entry.nxdomain:
            return self._negative(request, w.NXDOMAIN, entry.zone)
        msg = request.reply(aa=True)
        self._answer(msg, name, entry, qtype)
        if not msg.rr:
            # NODATA (RFC 2308 §2.2): the name exists, this type does not.
            msg.add_auth(_soa(entry.zone))
        return Reply.of(msg, plugin=self.name)

    def _answer(self, msg: DNSRecord, name: str, entry: _Entry, qtype: int) -> None:
        owner = name
        seen = {name}
        for _ in range(MAX_CNAME_CHAIN):
            for rtype, ttl, rdata in entry.of_type(qtype):
                msg.add_answer(RR(owner + ".", rtype, ttl=ttl, rdata=rdata))
            target = entry.cname() if qtype not in (CNAME_TYPE, ANY_TYPE) else None
            if target is None:
                return
            for rtype, ttl, rdata in entry.of_type(CNAME_TYPE):
                msg.add_answer(RR(owner + ".", rtype, ttl=ttl, rdata=rdata))
            # Chase the alias inside the mapping, as an authoritative server does
            # for in-zone targets (RFC 1034 §4.3.2 step 3a).
            if target in seen:
                return
            seen.add(target)
            nxt = self.records.lookup(target, qtype)
            if nxt is None or nxt.nxdomain or nxt.failure(qtype):
                return
            owner, entry = target, nxt

    def _negative(self, request: Request, rcode: int, zone: str, *, unmatched: bool = False) -> Reply:
        msg = request.reply(aa=True, rcode=rcode)
        msg.add_auth(_soa(zone))
        if unmatched:
            return Unmatched(rcode, message=msg, plugin=self.name)
        return Reply.of(msg, plugin=self.name)


def _soa(zone: str) -> RR:
    return RR(zone + ".", SOA_TYPE, ttl=60, rdata=SOA(
        "ns.dns-mock.invalid.", "hostmaster.dns-mock.invalid.", (1, 3600, 600, 86400, 60)
    ))


_REGISTRY: Registry | None = None
_REGISTRY_LOCK = threading.Lock()


def mock_registry() -> Registry:
    """A private registry: every installed plugin plus ``dns_mock``.

    The process-wide registry is left alone, so ``pycorefile validate`` and other
    engines never see the test-only directive.
    """
    global _REGISTRY
    with _REGISTRY_LOCK:
        if _REGISTRY is None:
            base = default_registry()
            reg = Registry()
            for n in base.ordered():
                cls = base.get(n)
                if cls is not None:
                    reg.register(cls, n)
            reg.register(MockRecords, MockRecords.name)
            _REGISTRY = reg
        return _REGISTRY


def _unmatched(reply: Reply) -> bool:
    """No plugin had an answer: the mock's own miss, or a bare error that no plugin
    wrote (no zone, an empty block, no next plugin)."""
    if isinstance(reply, Unmatched):
        return True
    return (
        not reply.written
        and not reply.plugin
        and reply.rcode in (w.SERVFAIL, w.REFUSED)
        and not isinstance(reply.error, BaseException)
    )


# ---------------------------------------------------------------------------
# MockDNS: records + resolver + call log
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One query the fake DNS answered.

    ``qname`` is lower-cased without the trailing dot; ``rcode`` is the rcode's
    name or ``"TIMEOUT"`` when no reply was sent; ``answers`` holds the answer
    section's data as text (``"10.0.0.7"``, ``"10 mx.x.test."``); ``client`` is the
    path that asked (``"getaddrinfo"``, ``"gethostbyname"``, ``"dnspython"``,
    ``"uvloop"``, ``"aiodns"``, ``"dns_server"``, ``"resolver"``...); ``plugin`` the
    plugin that wrote the reply; ``matched`` is False for names nothing answered.
    """

    qname: str
    qtype: str
    rcode: str
    answers: tuple[str, ...]
    client: str
    plugin: str
    cached: bool
    duration: float
    matched: bool
    thread: str

    def __str__(self) -> str:
        data = ", ".join(self.answers) if self.answers else "-"
        flags = " cached" if self.cached else ""
        miss = "  <- no record" if not self.matched else ""
        return (f"{self.qname} {self.qtype} -> {self.rcode} [{data}] via {self.client}"
                f" (plugin {self.plugin or '-'}{flags}, {self.duration * 1000:.1f} ms){miss}")


MOCK_COREFILE = """.:53 {
    prometheus
    dns_mock
}
"""


class MockDNS:
    """Fake DNS for tests: a mapping (optionally over a full Corefile), an
    in-process resolver for it, and a log of every query.

    ``resolve_reply``/``handle``/``handle_async`` make it a drop-in target for
    :func:`pycorefile.patch`, so the chain can be swapped (:meth:`corefile`)
    while the process stays patched. :meth:`serve_loopback` serves the same chain
    on 127.0.0.1 for clients that need a real server (c-ares, subprocesses).
    """

    def __init__(
        self,
        *,
        records: Mapping[str, Any] | None = None,
        corefile: str | None = None,
        passthrough: Iterable[str] = (),
        strict: bool = True,
    ) -> None:
        self.records = Records(passthrough)
        self.strict = strict
        self.calls: list[Call] = []
        self.unmatched: list[Call] = []
        self._lock = threading.RLock()
        self._servers: dict[str, Any] = {}
        self._closed = False
        self._resolver = self._build(corefile)
        if records:
            self.records.load(records)

    # -- building the chain ----------------------------------------------------
    def _build(self, text: str | None) -> Resolver:
        from .corefile import loads

        reg = mock_registry()
        with _building(self.records):
            if text is None:
                model = loads(MOCK_COREFILE, filename="dns_mock", registry=reg)
                if self.records.passthrough and os.path.exists("/etc/resolv.conf"):
                    # Passthrough names reaching the chain (c-ares, dns_server
                    # clients) are resolved for real, through the system's servers.
                    forward = MOCK_COREFILE.replace(
                        "dns_mock\n", "dns_mock\n    forward . /etc/resolv.conf\n"
                    )
                    try:
                        model = loads(forward, filename="dns_mock", registry=reg)
                    except CorefileError:  # an unusable resolv.conf: no passthrough there
                        pass
            else:
                model = _with_mock(loads(text, filename="Corefile", registry=reg))
            engine = Engine(model, registry=reg)
        engine.listeners.append(self._record)
        return Resolver(engine)

    def corefile(self, text: str) -> None:
        """Use a full Corefile (template, forward, cache...) as the chain.

        The mapping stays in front: a ``dns_mock { fallthrough }`` directive is
        added to every server block, so names added with :meth:`add` win, before
        or after this call; other names go through the Corefile's plugins. When
        the Corefile has no ``.`` block one is added with just the mapping (names
        outside the Corefile's zones: mapping or NXDOMAIN). Servers already
        started keep their ports.
        """
        with self._lock:
            new = self._build(text)
            old, self._resolver = self._resolver, new
            running = {tag: srv.port for tag, srv in self._servers.items()}
            for srv in self._servers.values():
                srv.stop()
            self._servers = {}
            for tag, port in running.items():
                self.serve_loopback(tag, port=port)
        old.close()

    # -- records ---------------------------------------------------------------
    def add(self, name: str, value: Any = None, *, ttl: int = 60, **types: Any) -> None:
        """See :meth:`Records.add`."""
        self.records.add(name, value, ttl=ttl, **types)

    def add_nxdomain(self, name: str) -> None:
        self.records.add_nxdomain(name)

    def add_failure(self, name: str, rcode: str = "SERVFAIL", *, qtype: str | None = None) -> None:
        self.records.add_failure(name, rcode, qtype=qtype)

    def remove(self, name: str) -> None:
        self.records.remove(name)

    def passes_through(self, name: str) -> bool:
        return self.records.passes_through(name)

    # -- the resolver ----------------------------------------------------------
    @property
    def resolver(self) -> Resolver:
        """The in-process resolver running the current chain."""
        return self._resolver

    @property
    def metrics(self) -> Any:
        """The chain's metrics registry (``coredns_dns_*`` from the prometheus plugin)."""
        return self._resolver.metrics

    def resolve(self, qname: str, qtype: str | int = "A") -> DNSRecord:
        return self._resolver.resolve(qname, qtype)

    def resolve_reply(
        self, qname: str, qtype: str | int = "A", qclass: str | int = "IN"
    ) -> tuple[Reply, DNSRecord]:
        return self._resolver.resolve_reply(qname, qtype, qclass)

    def handle(self, query: bytes, client: tuple[str, int] = ("127.0.0.1", 0), proto: str = "udp") -> bytes:
        return self._resolver.handle(query, client, proto)

    async def handle_async(
        self, query: bytes, client: tuple[str, int] = ("127.0.0.1", 0), proto: str = "udp"
    ) -> bytes:
        return await self._resolver.handle_async(query, client, proto)

    def serve_loopback(self, tag: str = "dns_server", *, port: int = 0) -> Any:
        """The chain on 127.0.0.1 (UDP and TCP), started on first use; queries
        arriving there are recorded with ``client=tag``."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this MockDNS is closed")
            srv = self._servers.get(tag)
            if srv is None:
                srv = self._servers[tag] = LoopbackServer(self._resolver, tag=tag, port=port).start()
            return srv

    def close(self) -> None:
        """Stop loopback servers and the resolver (idempotent)."""
        with self._lock:
            self._closed = True
            servers, self._servers = list(self._servers.values()), {}
        for srv in servers:
            srv.stop()
        self._resolver.close()

    def __enter__(self) -> MockDNS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the call log ----------------------------------------------------------
    def _record(self, request: Request, reply: Reply, seconds: float) -> None:
        answers: tuple[str, ...] = ()
        if reply.written:
            try:
                answers = tuple(str(rr.rdata) for rr in reply.message.rr)
            except Exception:  # an unparsable reply must not break the query
                answers = ()
        call = Call(
            qname=normalize(request.qname) or ".",
            qtype=request.type_name,
            rcode="TIMEOUT" if reply.dropped else w.rcode_name(reply.rcode),
            answers=answers,
            client=CLIENT.get(),
            plugin=reply.plugin,
            cached=reply.cached,
            duration=seconds,
            matched=not _unmatched(reply),
            thread=threading.current_thread().name,
        )
        self.calls.append(call)   # list.append is atomic: any thread may answer
        if not call.matched:
            self.unmatched.append(call)

    def reset_calls(self) -> None:
        """Forget the recorded calls (names without records still fail the test)."""
        self.calls.clear()

    def queries(self, name: str, qtype: str | None = None) -> list[Call]:
        """Recorded calls for ``name`` (any type when ``qtype`` is None)."""
        n = normalize(name) or "."
        t = qtype.upper() if qtype else None
        return [c for c in list(self.calls) if c.qname == n and (t is None or c.qtype == t)]

    def assert_queried(self, name: str, qtype: str | None = "A", *, times: int | None = None) -> None:
        """Fail unless ``name`` was queried (``times`` times exactly, when given).
        ``qtype=None`` counts every type."""
        found = self.queries(name, qtype)
        what = f"{normalize(name)} {qtype.upper() if qtype else '(any type)'}"
        if times is None and not found:
            raise AssertionError(f"{what} was never queried\n{self.format_calls()}")
        if times is not None and len(found) != times:
            raise AssertionError(
                f"{what} was queried {len(found)} time(s), expected {times}\n{self.format_calls()}"
            )

    def assert_not_queried(self, name: str, qtype: str | None = None) -> None:
        """Fail if ``name`` was queried (any type unless ``qtype`` is given)."""
        found = self.queries(name, qtype)
        if found:
            raise AssertionError(
                f"{normalize(name)} was queried {len(found)} time(s)\n{self.format_calls()}"
            )

    def format_calls(self) -> str:
        calls = list(self.calls)
        if not calls:
            return "recorded DNS queries: none"
        return "recorded DNS queries:\n" + "\n".join(f"  {c}" for c in calls)

    def unmatched_names(self) -> list[str]:
        """``name TYPES (clients)`` for every name nothing answered, first seen first."""
        seen: dict[str, tuple[dict[str, None], dict[str, None]]] = {}
        for c in list(self.unmatched):
            types, clients = seen.setdefault(c.qname, ({}, {}))
            types[c.qtype] = None
            clients[c.client] = None
        return [f"{n} {'/'.join(t)} ({', '.join(cl)})" for n, (t, cl) in seen.items()]


def _with_mock(model: Corefile) -> Corefile:
    """``model`` with ``dns_mock { fallthrough }`` in every block (and a ``.`` block
    on the first server's address when the Corefile has none)."""
    blocks = list(model.blocks)
    if not blocks:
        return model

    def directive(file: str, line: int, fallthrough: bool = True) -> Directive:
        tok = Token("dns_mock", file, line)
        if not fallthrough:
            return Directive(tok)
        return Directive(tok, (), (Directive(Token("fallthrough", file, line)),))

    out = []
    for block in blocks:
        if any(d.name == MockRecords.name for d in block.directives):
            out.append(block)
            continue
        out.append(dataclasses.replace(
            block, directives=(*block.directives, directive(block.file, block.line))
        ))
    first = blocks[0]
    port = first.keys[0].port
    scheme = first.keys[0].scheme
    if not any(k.zone == "." and k.port == port and k.scheme == scheme for b in blocks for k in b.keys):
        from .corefile.model import Key

        # The in-process resolver serves the first server: give it a root zone
        # (on the same bind addresses) so mapping entries outside the Corefile's
        # zones are still answered; other names get the mapping's NXDOMAIN.
        binds = tuple(d for d in first.directives if d.name == "bind")
        root = dataclasses.replace(
            first,
            keys=(Key(f"{scheme}://.:{port}", scheme, ".", port, first.file, first.line),),
            directives=(*binds, directive(first.file, first.line, fallthrough=False)),
        )
        out.append(root)
    return dataclasses.replace(model, blocks=tuple(out))

