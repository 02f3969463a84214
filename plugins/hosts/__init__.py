"""CoreDNS's ``hosts``: answer from an /etc/hosts-style file and inline entries."""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dnslib import AAAA, PTR, RR, A

from pycorefile import wire as w
from pycorefile.chain import Next, Plugin, Reply, Request, SetupContext
from pycorefile.corefile.model import Directive
from pycorefile.duration import parse_duration
from pycorefile.fall import Fallthrough, is_subdomain, longest_zone, normalize_zones
from pycorefile.metrics import MetricsRegistry

log = logging.getLogger("pycorefile.plugins.hosts")

DEFAULT_PATH = "/etc/hosts"


@dataclass
class HostsMap:
    """Parsed entries: names → addresses per family, wildcards, and addresses → names."""

    name4: dict[str, list[str]] = field(default_factory=dict)
    name6: dict[str, list[str]] = field(default_factory=dict)
    wild4: dict[str, list[str]] = field(default_factory=dict)
    wild6: dict[str, list[str]] = field(default_factory=dict)
    addr: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.name4) + len(self.name6) + len(self.wild4) + len(self.wild6)


def _fqdn(name: str) -> str:
    name = name.lower()
    return name if name.endswith(".") else name + "."


def parse_hosts(text: str, zones: Sequence[str], reverse: bool = True) -> HostsMap:
    """Parse hosts-file text the way CoreDNS does: ``#`` comments, lines with fewer
    than two fields or an unparsable address skipped, an IPv6 zone (``%eth0``)
    dropped, names lower-cased and fully qualified, names outside ``zones`` ignored.
    ``*.example.com`` is a wildcard for exactly one more label and makes no PTR."""
    m = HostsMap()
    for raw in text.splitlines():
        line = raw.split("#", 1)[0]
        fields = line.split()
        if len(fields) < 2:
            continue
        try:
            ip = ipaddress.ip_address(fields[0].split("%", 1)[0])
        except ValueError:
            continue
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        v4 = ip.version == 4
        addr = str(ip)
        for name in fields[1:]:
            name = _fqdn(name)
            if not longest_zone(zones, name):
                continue
            if name.startswith("*."):
                (m.wild4 if v4 else m.wild6).setdefault(name, []).append(addr)
                continue
            (m.name4 if v4 else m.name6).setdefault(name, []).append(addr)
            if reverse:
                m.addr.setdefault(addr, []).append(name)
    return m


def _lookup(exact: dict[str, list[str]], wild: dict[str, list[str]], name: str) -> list[str]:
    found = exact.get(name)
    if found is not None:
        return found
    # A wildcard covers exactly one label: a.example.com. -> *.example.com.
    dot = name.find(".")
    if 0 < dot < len(name) - 1:
        return wild.get("*" + name[dot:], [])
    return []


def reverse_to_address(name: str) -> str | None:
    """``4.3.2.1.in-addr.arpa.`` → ``1.2.3.4`` (also ip6.arpa nibbles)."""
    if name.endswith(".in-addr.arpa."):
        parts = name[: -len(".in-addr.arpa.")].split(".")
        if len(parts) != 4:
            return None
        try:
            return str(ipaddress.IPv4Address(".".join(reversed(parts))))
        except ValueError:
            return None
    if name.endswith(".ip6.arpa."):
        nibbles = name[: -len(".ip6.arpa.")].split(".")
        if len(nibbles) != 32:
            return None
        try:
            return str(ipaddress.IPv6Address(int("".join(reversed(nibbles)), 16)))
        except ValueError:
            return None
    return None


class Hosts(Plugin):
    """Answers A/AAAA (and PTR) from a hosts file plus inline entries.

    Names it knows with the other family (or any other type) get NODATA; names it
    does not know get SERVFAIL (there is no SOA for an NXDOMAIN) unless
    ``fallthrough`` passes them on. The file is re-read when its size or
    modification time changes, checked at most every ``reload`` interval.
    """

    name = "hosts"
    once = True

    def __init__(
        self,
        path: str,
        zones: Sequence[str],
        inline: str,
        *,
        ttl: int = 3600,
        reverse: bool = True,
        reload: float = 5.0,
        fall: Fallthrough | None = None,
        fall_unsupported: bool = False,
    ) -> None:
        self.path = path
        self.zones = tuple(zones)
        self.ttl = ttl
        self.reverse = reverse
        self.reload = reload
        self.fall = fall or Fallthrough()
        self.fall_unsupported = fall_unsupported
        self.inline = parse_hosts(inline, self.zones, reverse)
        self.file = HostsMap()
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._entries: Any = None
        self._reload_ts: Any = None
        self._read()

    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        args = list(directive.args)
        path = DEFAULT_PATH
        if args:
            path = args.pop(0)
            if not os.path.isabs(path):
                root = ctx.shared.get("root")
                if root:
                    path = os.path.join(root, path)
            if not os.path.exists(path):
                log.warning("File does not exist: %s", path)
            elif os.path.isdir(path):
                log.warning("Hosts file %r is a directory", path)
        zones = normalize_zones(args) if args else ctx.zones
        ttl, reverse, reload = 3600, True, 5.0
        fall = Fallthrough()
        fall_unsupported = False
        inline: list[str] = []
        for sub in directive.block or ():
            a = sub.args
            if sub.name == "fallthrough":
                fall = Fallthrough.parse(a)
            elif sub.name == "fallthrough_unsupported":
                if a:
                    raise sub.arg_error(cls.name)
                fall_unsupported = True
            elif sub.name == "no_reverse":
                reverse = False
            elif sub.name == "ttl":
                if not a:
                    raise sub.error("ttl needs a time in second", plugin=cls.name)
                try:
                    ttl = int(a[0])
                except ValueError:
                    raise sub.error("ttl needs a number of second", plugin=cls.name) from None
                if ttl <= 0 or ttl > 65535:
                    raise sub.error("ttl provided is invalid", plugin=cls.name)
            elif sub.name == "reload":
                if len(a) != 1:
                    raise sub.error("reload needs a duration (zero seconds to disable)", plugin=cls.name)
                try:
                    reload = parse_duration(a[0])
                except ValueError:
                    raise sub.error(f"invalid duration for reload '{a[0]}'", plugin=cls.name) from None
                if reload < 0:
                    raise sub.error(f"invalid negative duration for reload '{a[0]}'", plugin=cls.name)
            elif not fall:
                # Every other line is an inline entry, until a fallthrough was seen.
                inline.append(" ".join([sub.name, *a]))
            else:
                raise sub.error(f"unknown property '{sub.name}'", plugin=cls.name)
        if fall_unsupported and not fall:
            raise directive.error("fallthrough_unsupported requires fallthrough", plugin=cls.name)
        return cls(path, zones, "\n".join(inline), ttl=ttl, reverse=reverse, reload=reload,
                   fall=fall, fall_unsupported=fall_unsupported)

    def register_metrics(self, metrics: MetricsRegistry) -> None:
        self._entries = metrics.gauge("coredns_hosts_entries", "The combined number of entries in hosts and Corefile.", ("hostsfile",))
        self._reload_ts = metrics.gauge("coredns_hosts_reload_timestamp_seconds", "The timestamp of the last reload of hosts file.")
        self._entries.labels(self.path).set(len(self.file) + len(self.inline))

    # -- the file ------------------------------------------------------------
    def _read(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            return
        stamp = (st.st_mtime, st.st_size)
        if stamp == self._stamp:
            return
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            return
        self.file = parse_hosts(text, self.zones, self.reverse)
        self._stamp = stamp
        if self._entries is not None:
            self._entries.labels(self.path).set(len(self.file) + len(self.inline))
            self._reload_ts.set(st.st_mtime)

    def _maybe_reload(self) -> None:
        if self.reload <= 0:
            return
        now = time.monotonic()
        if now - self._checked >= self.reload:
            with self._lock:
                if now - self._checked >= self.reload:
                    self._checked = now
                    self._read()

    def lookup(self, name: str, v4: bool) -> list[str]:
        f, i = self.file, self.inline
        if v4:
            return _lookup(f.name4, f.wild4, name) + _lookup(i.name4, i.wild4, name)
        return _lookup(f.name6, f.wild6, name) + _lookup(i.name6, i.wild6, name)

    def lookup_addr(self, addr: str) -> list[str]:
        return self.file.addr.get(addr, []) + self.inline.addr.get(addr, [])

    # -- queries ------------------------------------------------------------
    async def serve(self, request: Request, next: Next) -> Reply:
        name = request.name
        qtype = request.qtype
        if not any(is_subdomain(z, name) for z in self.zones) and qtype != 12:
            return await next(request)
        self._maybe_reload()
        answers: list[RR] = []
        if qtype == 12:
            addr = reverse_to_address(name)
            names = self.lookup_addr(addr) if addr else []
            if not names:
                return await next(request)
            answers = [RR(name, 12, 1, self.ttl, PTR(n)) for n in names]
        elif qtype == 1:
            answers = [RR(name, 1, 1, self.ttl, A(ip)) for ip in self.lookup(name, True)]
        elif qtype == 28:
            answers = [RR(name, 28, 1, self.ttl, AAAA(ip)) for ip in self.lookup(name, False)]
        elif self.fall_unsupported and self.fall.through(name):
            return await next(request)
        if not answers and not self.lookup(name, True) and not self.lookup(name, False):
            if self.fall.through(name):
                return await next(request)
            # No SOA to build an NXDOMAIN with: CoreDNS answers SERVFAIL.
            return Reply.fail(w.SERVFAIL)
        msg = request.reply(aa=True)
        for rr in answers:
            msg.add_answer(rr)
        return Reply.of(msg, self.name)
