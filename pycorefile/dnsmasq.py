"""dnsmasq.conf → Corefile, for dnsmasq users moving to pycorefile (``pycorefile convert``).

The converter reads a dnsmasq configuration the way dnsmasq 2.86+ reads it (``option=value``
lines, quoting, ``#`` comments, ``conf-file=``/``conf-dir=`` includes) and writes a Corefile
that answers the same questions the same way: same rcode, same records, same TTLs. Every
line it cannot express is listed, with its file and line number, at the top of the output.

How dnsmasq answers, and therefore what the Corefile has to reproduce (checked against
dnsmasq 2.90; ``tests/integration/test_dnsmasq_convert.py`` compares the two):

* Local records (``host-record``, ``txt-record``, ``cname``, ...) and hosts files win over
  everything else for their exact names and types, with TTL ``local-ttl`` (default 0).
* ``address=``, ``server=`` and ``local=`` share one domain table; the longest domain
  that matches the query name decides. An ``address=/d/1.2.3.4`` answers A queries for ``d``
  and every name below it. Since 2.86 a query of another type (AAAA, MX...) is *not*
  answered locally: dnsmasq goes on to the next shorter domain, and in the end to the
  upstream servers. Only with ``local=/d/`` on the same domain is it NODATA.
* ``local=/d/`` (also ``server=/d/`` and ``address=/d/``) answers NXDOMAIN for names under
  ``d`` that it has no record for, and NODATA (no SOA) for other types of names it has.
* With no upstream server at all, a query dnsmasq cannot answer gets REFUSED.

A Corefile runs its plugins in a fixed order (``template`` before ``hosts`` before
``forward``), so the converter turns local records into exact-name ``template`` stanzas (a
``match`` on the whole name, ``fallthrough`` for everything else), the domain table into
``template`` stanzas whose zone is the domain, ordered from the most to the least specific,
and each ``server=/domain/`` into a server block of its own with ``forward``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .corefile import quote_token

__all__ = ["ConfLine", "Conversion", "convert", "convert_file", "read_conf"]

# ---------------------------------------------------------------------------------------------
# Reading dnsmasq.conf

# Inside double quotes dnsmasq removes the special meaning of `,` `:` `.` `#` (and `/` for
# our splitting): they are swapped for private-use characters while the line is split into
# fields, and swapped back in each field.
_HIDDEN = {",": "\ue000", ":": "\ue001", ".": "\ue002", "#": "\ue003", "/": "\ue004"}
_UNHIDE = str.maketrans({v: k for k, v in _HIDDEN.items()})
_ESCAPES = {"\\": "\\", '"': '"', "t": "\t", "n": "\n", "e": "\x1b", "b": "\b", "r": "\r"}


@dataclass(frozen=True)
class ConfLine:
    """One line of a dnsmasq configuration file (or of a hosts file)."""

    file: str
    """The file it was read from, as named on the command line or in ``conf-file=``."""
    lineno: int
    text: str
    """The line as written, without surrounding white space."""
    option: str = ""
    """The option name (``address``); empty for a line that is not an option."""
    masked: str | None = field(default=None, repr=False)
    """The value after ``=`` with quotes removed and quoted separators masked (internal:
    use :attr:`value` and :meth:`fields`); ``None`` for a flag (``bogus-priv``)."""
    error: str = ""
    """Why dnsmasq would not accept the line (``missing "``), or why it could not be read."""

    @property
    def where(self) -> str:
        """``FILE:LINE``."""
        return f"{self.file}:{self.lineno}"

    @property
    def value(self) -> str | None:
        """The value after ``=``, quotes removed; ``None`` for a flag."""
        return None if self.masked is None else self.masked.translate(_UNHIDE)

    def fields(self, sep: str = ",") -> list[str]:
        """The value split at unquoted ``sep`` characters."""
        if self.masked is None:
            return []
        return [f.translate(_UNHIDE) for f in self.masked.split(sep)]


def _split_line(raw: str) -> tuple[str | None, str | None]:
    """dnsmasq's ``read_file``: quotes, escapes and comments. Returns (line, error)."""
    out: list[str] = []
    white = True
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == '"':
            i += 1
            while i < n and raw[i] != '"':
                ch = raw[i]
                if ch == "\\" and i + 1 < n and raw[i + 1] in _ESCAPES:
                    ch = _ESCAPES[raw[i + 1]]
                    i += 1
                out.append(_HIDDEN.get(ch, ch))
                i += 1
            if i >= n:
                return None, 'missing "'
            i += 1
            white = False
            continue
        if c.isspace():
            out.append(" ")
            white = True
        elif white and c == "#":
            break
        else:
            out.append(c)
            white = False
        i += 1
    return "".join(out).strip(" "), None


def _conf_dir_files(directory: Path, spec: Sequence[str]) -> list[Path]:
    """The files ``conf-dir=DIR[,EXT...]`` reads, in dnsmasq's order and with its filters."""
    only = [e[1:] for e in spec if e.startswith("*")]
    skip = [e for e in spec if e and not e.startswith("*")]
    files = []
    for path in sorted(directory.iterdir(), key=lambda p: p.name):
        name = path.name
        if (
            name.endswith("~")
            or name.startswith(".")
            or (len(name) > 1 and name.startswith("#") and name.endswith("#"))
        ):
            continue
        if only and not any(name.endswith(e) for e in only):
            continue
        if any(name.endswith(e) for e in skip):
            continue
        if path.is_file():
            files.append(path)
    return files


def _read_text(text: str, display: str, base: Path, seen: set[str], out: list[ConfLine]) -> None:
    for lineno, raw in enumerate(text.splitlines(), 1):
        shown = raw.strip()
        line, error = _split_line(raw)
        if error:
            out.append(ConfLine(display, lineno, shown, error=error))
            continue
        if not line:
            continue
        if "=" in line:
            name, _, value = line.partition("=")
            entry = ConfLine(display, lineno, shown, name.strip(" "), value.strip(" "))
        else:
            entry = ConfLine(display, lineno, shown, line, None)
        if entry.option in ("conf-file", "servers-file") and entry.value:
            _include(entry, base, seen, out)
        elif entry.option == "conf-dir" and entry.value:
            _include_dir(entry, base, seen, out)
        else:
            out.append(entry)


def _resolve(path: str, base: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else base / p


def _include(entry: ConfLine, base: Path, seen: set[str], out: list[ConfLine]) -> None:
    name = entry.value or ""
    path = _resolve(name, base)
    try:
        _read_file(path, name, seen, out)
    except OSError as exc:
        out.append(ConfLine(entry.file, entry.lineno, entry.text, error=f"cannot read: {exc}"))


def _include_dir(entry: ConfLine, base: Path, seen: set[str], out: list[ConfLine]) -> None:
    directory, *spec = entry.fields()
    path = _resolve(directory, base)
    try:
        files = _conf_dir_files(path, spec)
        for f in files:
            _read_file(f, os.path.join(directory, f.name), seen, out)
    except OSError as exc:
        out.append(ConfLine(entry.file, entry.lineno, entry.text, error=f"cannot read: {exc}"))


def _read_file(path: Path, display: str, seen: set[str], out: list[ConfLine]) -> None:
    real = os.path.realpath(path)
    if real in seen:  # dnsmasq reads a file included twice only once
        return
    seen.add(real)
    text = path.read_text(encoding="utf-8", errors="replace")
    _read_text(text, display, path.parent, seen, out)


def read_conf(path: str | os.PathLike[str]) -> list[ConfLine]:
    """The option lines of a dnsmasq configuration file and of the files it includes
    (``conf-file=``, ``conf-dir=``, ``servers-file=``; relative paths are relative to the
    including file's directory), in the order dnsmasq reads them.

    Raises ``OSError`` when ``path`` itself cannot be read; an include that cannot be read
    becomes a line with its :attr:`ConfLine.error` set.
    """
    out: list[ConfLine] = []
    _read_file(Path(path), os.fspath(path), set(), out)
    return out


# ---------------------------------------------------------------------------------------------
# What dnsmasq would serve


class _Unsupported(Exception):
    """A line the Corefile cannot express; the message says why (or is empty)."""


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _number(text: str, what: str = "TTL") -> int:
    if not text.strip().isdigit():
        raise _Unsupported(f"{what} {text!r} is not a number")
    return int(text)


_LABEL = re.compile(r"^[a-z0-9_*-]([a-z0-9_*-]{0,62})$")


def _name(text: str) -> str:
    """A domain name as dnsmasq takes it: case-folded, without surrounding dots."""
    name = text.strip().strip(".").lower()
    if not name:
        raise _Unsupported("empty name")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise _Unsupported(f"bad name {text!r}") from exc
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise _Unsupported(f"bad name {text!r}")
    return name


def _regex_name(name: str) -> str:
    """``name`` as an RE2 literal."""
    return "".join("\\" + c if c in ".^$*+?()[]{}|\\" else c for c in name)


def _in_zone(name: str, zone: str) -> bool:
    return zone == "." or name == zone or name.endswith("." + zone)


@dataclass(frozen=True)
class _Upstream:
    host: str
    port: int = 53

    def __str__(self) -> str:
        if self.port == 53:
            return self.host
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass
class _Rule:
    """An entry of dnsmasq's domain table (``address``/``server``/``local``), or one of the
    built-in rules ``domain-needed`` and ``bogus-priv`` that act like a ``local=`` entry for
    some query types."""

    pattern: str
    zones: list[str]
    regex: str | None = None
    rank: tuple[int, int] = (0, 0)
    lines: list[ConfLine] = field(default_factory=list)
    v4: list[str] = field(default_factory=list)
    v6: list[str] = field(default_factory=list)
    null: bool = False
    local: bool = False
    local_types: tuple[str, ...] = ("ANY",)
    servers: list[_Upstream] = field(default_factory=list)
    use_default: bool = False
    builtin: bool = False

    def matches(self, name: str) -> bool:
        if not any(_in_zone(name, z) for z in self.zones):
            return False
        return self.regex is None or re.search(self.regex, name + ".") is not None

    @property
    def has_address(self) -> bool:
        return bool(self.v4 or self.v6 or self.null)

    def answers(self, qtype: str) -> bool:
        """Does this rule answer ``qtype`` with an address or a local denial?"""
        if qtype == "A" and (self.v4 or self.null):
            return True
        if qtype == "AAAA" and (self.v6 or self.null):
            return True
        return self.local and ("ANY" in self.local_types or qtype in self.local_types)

    @property
    def is_block(self) -> bool:
        return bool(self.servers) or self.use_default


@dataclass
class _Record:
    rdata: str
    ttl: int
    line: ConfLine
    auto: bool = False
    """A PTR made from an address (host-record, hosts file), not a ptr-record line."""


@dataclass
class _Name:
    """The local records of one name (host-record, txt-record, hosts-file entries...)."""

    name: str
    types: dict[str, list[_Record]] = field(default_factory=dict)

    def add(self, rtype: str, rdata: str, ttl: int, line: ConfLine, auto: bool = False) -> None:
        records = self.types.setdefault(rtype, [])
        if all(r.rdata != rdata for r in records):
            records.append(_Record(rdata, ttl, line, auto))

    @property
    def named(self) -> bool:
        """Does dnsmasq know this name (check_for_local_domain)? PTRs made from addresses
        do not count: they are reverse entries of its cache."""
        return any(not r.auto for records in self.types.values() for r in records)


@dataclass
class _HostsEntry:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    names: list[str]
    line: ConfLine


# RFC 6303 reverse zones, the set dnsmasq's --bogus-priv answers NXDOMAIN for (its
# private_net()/private_net6()). IPv4-mapped IPv6 reverse names are left out.
_ZEROS = ".".join("0" * 31)
_BOGUS_PRIV_ZONES = (
    ["10.in-addr.arpa"]
    + [f"{i}.172.in-addr.arpa" for i in range(16, 32)]
    + [
        "168.192.in-addr.arpa",
        "0.in-addr.arpa",
        "127.in-addr.arpa",
        "254.169.in-addr.arpa",
        "2.0.192.in-addr.arpa",
        "100.51.198.in-addr.arpa",
        "113.0.203.in-addr.arpa",
        "255.255.255.255.in-addr.arpa",
        f"0.{_ZEROS}.ip6.arpa",
        f"1.{_ZEROS}.ip6.arpa",
        "d.f.ip6.arpa",
    ]
    + [f"{n}.e.f.ip6.arpa" for n in "89abcdef"]
    + ["8.b.d.0.1.0.0.2.ip6.arpa"]
)
# dnsmasq only recognises a reverse name made of numbers (IPv4) or at most 32 nibbles (IPv6);
# deeper names are forwarded.
_BOGUS_PRIV_REGEX = r"^(([0-9]+\.)+in-addr|([0-9a-f]\.){1,32}ip6)\.arpa\.$"

# Options of dnsmasq's DHCP, TFTP, PXE and router-advertisement servers.
_DHCP_PREFIXES = ("dhcp-", "tftp-", "pxe-", "bootp-", "ra-", "quiet-dhcp", "no-dhcp")
_DHCP_OPTIONS = {
    "enable-tftp",
    "enable-ra",
    "leasefile-ro",
    "read-ethers",
    "log-dhcp",
    "quiet-ra",
    "no-ping",
    "script-arp",
    "script-on-renewal",
    "shared-network",
    "domain",
    "slaac",
    "bridge-interface",
    "ethers",
}
# Options about running the process: a service manager does that for pycorefile.
_PROCESS_OPTIONS = {
    "user",
    "group",
    "pid-file",
    "keep-in-foreground",
    "no-daemon",
    "log-facility",
    "log-async",
    "log-debug",
    "enable-dbus",
    "enable-ubus",
    "test",
}
_REASONS = {
    "neg-ttl": "pycorefile's cache never stores a negative reply without SOA",
    "max-ttl": "no equivalent: the cache caps stored TTLs only (see max-cache-ttl)",
    "all-servers": "forward asks one upstream at a time",
    "expand-hosts": "the hosts plugin does not add a domain to plain names",
    "except-interface": "bind cannot exclude an interface by name",
    "local-service": "no filter by client address: listen with bind, or use a firewall",
    "stop-dns-rebind": "no equivalent",
    "dnssec": "pycorefile does not validate DNSSEC",
    "trust-anchor": "pycorefile does not validate DNSSEC",
    "dnssec-check-unsigned": "pycorefile does not validate DNSSEC",
    "proxy-dnssec": "forward passes the AD bit on as it is",
    "conf-script": "scripts are not run",
    "localmx": "no equivalent",
    "selfmx": "no equivalent",
    "naptr-record": "not converted",
    "interface-name": "addresses of interfaces are not looked up",
    "dynamic-host": "addresses of interfaces are not looked up",
    "synth-domain": "no equivalent (a template with a regex can do it by hand)",
    "use-stale-cache": "not converted (see the cache plugin's serve_stale)",
    "edns-packet-max": "not converted (see the bufsize plugin)",
}


def _txt_string(data: bytes) -> str:
    """One TXT character-string in zone-file syntax. Quotes, backslashes, braces (Go
    template actions, Corefile environment variables) and non-printable bytes are written
    as ``\\DDD``, which keeps the Corefile token free of ``\\"`` sequences."""
    out = []
    for b in data:
        c = chr(b)
        if 32 <= b < 127 and c not in '"\\{}':
            out.append(c)
        else:
            out.append(f"\\{b:03d}")
    return '"' + "".join(out) + '"'


# ---------------------------------------------------------------------------------------------
# Hosts files


def _read_hosts(path: str, display: str) -> list[_HostsEntry] | None:
    """The entries of a hosts file, or of every file in a directory; ``None`` if unreadable."""
    p = Path(path)
    try:
        files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
        out = []
        for f in files:
            shown = display if f == p else os.path.join(display, f.name)
            for lineno, raw in enumerate(
                f.read_text(encoding="utf-8", errors="replace").splitlines(), 1
            ):
                words = raw.split("#", 1)[0].split()
                if len(words) < 2:
                    continue
                ip = _ip(words[0])
                if ip is None:
                    continue
                names = []
                for w in words[1:]:
                    try:
                        names.append(_name(w))
                    except _Unsupported:
                        continue
                if names:
                    line = ConfLine(shown, lineno, raw.strip())
                    out.append(_HostsEntry(ip, names, line))
        return out
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# Writing the Corefile


@dataclass
class _Stanza:
    qclass: str
    qtype: str
    zones: list[str]
    match: str | None = None
    answers: list[str] = field(default_factory=list)
    ttl: int = 0
    """The largest TTL of the answers."""
    rcode: str | None = None
    fallthrough: bool = False
    sources: list[ConfLine] = field(default_factory=list)
    comment: str | None = None

    def lines(self) -> list[str]:
        out = []
        if self.comment:
            out.append(f"# {self.comment}")
        seen: list[ConfLine] = []
        for src in self.sources:
            if src not in seen:
                seen.append(src)
        for src in seen[:3]:
            out.append(f"# {src.where}: {src.text}")
        if len(seen) > 3:
            out.append(f"# ... and {len(seen) - 3} more lines")
        zones = " ".join(quote_token(z) for z in self.zones)
        out.append(f"template {self.qclass} {self.qtype} {zones} {{")
        if self.match is not None:
            out.append(f"    match {quote_token(self.match)}")
        out.extend(f"    answer {quote_token(a)}" for a in self.answers)
        if self.rcode is not None:
            out.append(f"    rcode {self.rcode}")
        if self.fallthrough:
            out.append("    fallthrough")
        out.append("}")
        return out


@dataclass
class _Block:
    zone: str
    upstreams: list[str]
    lines: list[ConfLine] = field(default_factory=list)
    rules: list[_Rule] = field(default_factory=list)
    names: list[_Name] = field(default_factory=list)


@dataclass
class Conversion:
    """The result of a conversion."""

    corefile: str
    """The Corefile text, with the unsupported lines and notes as comments at the top."""
    unsupported: list[tuple[ConfLine, str]]
    """The lines the Corefile does not express, each with the reason (may be empty)."""
    notes: list[str]
    """Where the Corefile behaves a little differently, one sentence each."""

    def __str__(self) -> str:
        return self.corefile


def _where(lines: Iterable[ConfLine]) -> str:
    """``file:1,2,5`` (several files: ``a:1,2; b:3``)."""
    by_file: dict[str, list[str]] = {}
    for line in lines:
        by_file.setdefault(line.file, []).append(str(line.lineno))
    return "; ".join(f"{f}:{','.join(nums)}" for f, nums in by_file.items())


def _exact_regex(name: str) -> str:
    return "^" + _regex_name(name) + "\\.$"


def _exact_stanzas(entry: _Name) -> list[_Stanza]:
    """One template per type of a name with local records, matching that name only."""
    out = []
    for rtype, records in entry.types.items():
        qtype = "ANY" if rtype == "CNAME" else rtype  # a CNAME answers every type
        out.append(
            _Stanza(
                "IN",
                qtype,
                [entry.name],
                _exact_regex(entry.name),
                [f"{entry.name}. {r.ttl} IN {rtype} {r.rdata}" for r in records],
                ttl=max(r.ttl for r in records),
                fallthrough=True,
                sources=[r.line for r in records],
            )
        )
    return out


class _Converter:
    """Builds the model of one dnsmasq configuration and writes the Corefile."""

    def __init__(self, lines: Sequence[ConfLine], source: str) -> None:
        self.lines = lines
        self.source = source
        self.unsupported: list[tuple[ConfLine, str]] = []
        self.dhcp: list[ConfLine] = []
        self.notes: list[tuple[ConfLine | None, str]] = []
        self.rules: dict[str, _Rule] = {}
        self.names: dict[str, _Name] = {}
        self.servers: list[_Upstream] = []
        self.server_lines: list[ConfLine] = []
        self.resolv_file: str | None = None
        self.no_resolv = False
        self.no_hosts = False
        self.addn_hosts: list[tuple[str, ConfLine]] = []
        self.local_ttl = 0
        self.cache_size = 150
        self.min_cache_ttl = 0
        self.max_cache_ttl = 0
        self.no_negcache = False
        self.strict_order = False
        self.port: int | None = None
        self.listen: list[str] = []
        self.interfaces: list[str] = []
        self.log_queries = False
        self.domain_needed: ConfLine | None = None
        self.bogus_priv: ConfLine | None = None
        self.mx_target: str | None = None
        self.blocks: dict[str, _Block] = {}
        self.snapshots = 0  # hosts-file records copied into templates

    # -- pass 1: options -------------------------------------------------------------------

    def read(self) -> None:
        """Apply every line. Records come last: they use local-ttl and mx-target, which
        dnsmasq applies wherever they are written."""
        records = {
            "host-record",
            "txt-record",
            "cname",
            "mx-host",
            "srv-host",
            "ptr-record",
            "caa-record",
            "dns-rr",
        }
        for line in self.lines:
            if line.option not in records:
                self._dispatch(line)
        for line in self.lines:
            if line.option in records:
                self._dispatch(line)

    def _dispatch(self, line: ConfLine) -> None:
        opt = line.option
        if line.error or not opt:
            self.unsupported.append((line, line.error))
            return
        handler = getattr(self, "_opt_" + opt.replace("-", "_"), None)
        if handler is None:
            if opt in _DHCP_OPTIONS or opt.startswith(_DHCP_PREFIXES):
                self.dhcp.append(line)
            elif opt in _PROCESS_OPTIONS:
                self.unsupported.append((line, "process setting: the service manager does this"))
            else:
                self.unsupported.append((line, _REASONS.get(opt, "")))
            return
        try:
            handler(line)
        except _Unsupported as exc:
            self.unsupported.append((line, str(exc)))

    def _flag(self, line: ConfLine) -> None:
        if line.masked is not None:
            raise _Unsupported(f"{line.option} takes no value")

    # The domain table: address=, server=, local=, rev-server=.

    def _patterns(self, line: ConfLine, specs: list[str]) -> list[_Rule]:
        """The domain-table entries for ``/spec/spec/...``, created as needed. Every spec
        is checked before any entry changes, so a bad line changes nothing."""
        parsed = []
        for spec in specs:
            spec = spec.strip().lower()
            if spec == "#":
                key, zones, regex, rank = "#", ["."], None, (0, 0)
            elif spec == "":
                # `//` ("names without a dot") has no effect on local answers in dnsmasq
                # 2.90 and forward cannot select such names.
                raise _Unsupported("the // (plain names) pattern is not converted")
            elif spec.startswith("*"):
                rest = spec[1:]
                if rest.startswith("."):
                    # /*.example.com/: below example.com, not example.com itself.
                    zone = _name(rest)
                    key, zones, regex = spec, [zone], "\\." + _regex_name(zone) + "\\.$"
                else:
                    # /*example.com/: any name ending in "example.com", even
                    # "myexample.com"; the zone is what follows the partial label.
                    text = _name(rest)
                    zone = text.partition(".")[2] or "."
                    key, zones, regex = spec, [zone], _regex_name(text) + "\\.$"
                rank = (len(rest.strip(".")), 0)  # the non-wildcard form wins a tie
            else:
                zone = _name(spec)
                key, zones, regex, rank = zone, [zone], None, (len(zone), 1)
            parsed.append((key, zones, regex, rank))
        rules = []
        for key, zones, regex, rank in parsed:
            rule = self.rules.get(key)
            if rule is None:
                rule = self.rules[key] = _Rule(key, zones, regex, rank)
            if line not in rule.lines:
                rule.lines.append(line)
            rules.append(rule)
        return rules

    def _domain_line(self, line: ConfLine) -> tuple[list[str], str]:
        value = line.masked or ""
        if not value.startswith("/"):
            raise _Unsupported(f"{line.option}= needs /domain/")
        parts = value.split("/")
        if len(parts) < 3:
            raise _Unsupported("missing closing /")
        return [p.translate(_UNHIDE) for p in parts[1:-1]], parts[-1].translate(_UNHIDE)

    def _opt_address(self, line: ConfLine) -> None:
        domains, target = self._domain_line(line)
        target = target.strip()
        ip = _ip(target) if target not in ("", "#") else None
        if target not in ("", "#") and ip is None:
            raise _Unsupported(f"{target!r} is not an IP address")
        for rule in self._patterns(line, domains):
            if target == "":
                rule.local = True
            elif target == "#":
                rule.null = True
            elif ip is not None and ip.version == 4:
                if str(ip) not in rule.v4:
                    rule.v4.append(str(ip))
            elif ip is not None and str(ip) not in rule.v6:
                rule.v6.append(str(ip))

    def _upstream(self, spec: str, line: ConfLine) -> _Upstream:
        main, _, source = spec.partition("@")
        if source:
            self.notes.append((line, f"the source address or interface @{source} is not used"))
        host, _, port = main.partition("#")
        host = host.strip()
        if "%" in host:
            host, _, scope = host.partition("%")
            self.notes.append((line, f"the IPv6 scope %{scope} is not used"))
        ip = _ip(host)
        if ip is None:
            raise _Unsupported(f"upstream {host!r} is not an IP address (forward needs addresses)")
        return _Upstream(str(ip), _number(port, "port") if port else 53)

    def _opt_server(self, line: ConfLine) -> None:
        value = line.masked or ""
        if not value.startswith("/"):
            if line.option == "local" or not value.strip():
                raise _Unsupported(f"{line.option}= without a domain or a server")
            self.servers.append(self._upstream(value.translate(_UNHIDE), line))
            self.server_lines.append(line)
            return
        domains, spec = self._domain_line(line)
        spec = spec.strip()
        if [d.strip() for d in domains] == ["#"]:
            # /#/ matches every domain: an ordinary upstream.
            if spec in ("", "#"):
                raise _Unsupported("no upstream")
            self.servers.append(self._upstream(spec, line))
            self.server_lines.append(line)
            return
        if spec and any(d.strip().startswith("*") for d in domains):
            # Server blocks are zones: forward cannot pick names by pattern.
            raise _Unsupported("forwarding by pattern cannot be expressed")
        upstream = self._upstream(spec, line) if spec not in ("", "#") else None
        for rule in self._patterns(line, domains):
            if spec == "":
                rule.local = True
            elif spec == "#":
                rule.use_default = True
            elif upstream is not None and upstream not in rule.servers:
                rule.servers.append(upstream)

    _opt_local = _opt_server

    def _opt_rev_server(self, line: ConfLine) -> None:
        fields = line.fields()
        net_text, spec = fields[0].strip(), ",".join(fields[1:]).strip()
        try:
            net = ipaddress.ip_network(net_text, strict=False)
        except ValueError as exc:
            raise _Unsupported(f"bad network {net_text!r}") from exc
        # dnsmasq uses the reverse zone of the whole labels covered by the prefix.
        step = 8 if net.version == 4 else 4
        labels = net.prefixlen // step
        rev = net.network_address.reverse_pointer.split(".")
        total = 4 if net.version == 4 else 32
        zone = ".".join(rev[total - labels :])
        if net.prefixlen % step:
            self.notes.append((line, f"{net} is served as the reverse zone {zone}"))
        rule = self._patterns(line, [zone])[0]
        if spec == "":
            rule.local = True
        elif spec == "#":
            rule.use_default = True
        else:
            upstream = self._upstream(spec, line)
            if upstream not in rule.servers:
                rule.servers.append(upstream)

    # Upstream servers and the cache.

    def _opt_resolv_file(self, line: ConfLine) -> None:
        if self.resolv_file is not None:
            raise _Unsupported("only the first resolv-file is used")
        self.resolv_file = (line.value or "").strip()
        self.server_lines.append(line)

    def _opt_no_resolv(self, line: ConfLine) -> None:
        self._flag(line)
        self.no_resolv = True

    def _opt_strict_order(self, line: ConfLine) -> None:
        self._flag(line)
        self.strict_order = True

    def _opt_no_poll(self, line: ConfLine) -> None:
        # forward reads a resolv.conf once, at start: exactly no-poll.
        self._flag(line)

    def _opt_no_round_robin(self, line: ConfLine) -> None:
        # pycorefile keeps the record order unless the loadbalance plugin is used.
        self._flag(line)

    def _opt_cache_size(self, line: ConfLine) -> None:
        self.cache_size = _number((line.value or ""), "cache size")

    def _opt_no_negcache(self, line: ConfLine) -> None:
        self._flag(line)
        self.no_negcache = True

    def _opt_min_cache_ttl(self, line: ConfLine) -> None:
        # dnsmasq caps it at one hour.
        self.min_cache_ttl = min(_number(line.value or ""), 3600)

    def _opt_max_cache_ttl(self, line: ConfLine) -> None:
        self.max_cache_ttl = _number(line.value or "")

    def _opt_local_ttl(self, line: ConfLine) -> None:
        self.local_ttl = _number(line.value or "")

    # Listening.

    def _opt_port(self, line: ConfLine) -> None:
        port = _number((line.value or ""), "port")
        if port > 65535:
            raise _Unsupported(f"port {port} out of range")
        self.port = port

    def _opt_listen_address(self, line: ConfLine) -> None:
        for text in line.fields():
            ip = _ip(text)
            if ip is None:
                raise _Unsupported(f"{text!r} is not an IP address")
            if str(ip) not in self.listen:
                self.listen.append(str(ip))

    def _opt_interface(self, line: ConfLine) -> None:
        for name in line.fields():
            name = name.strip()
            if not name or "*" in name:
                raise _Unsupported("interface wildcards cannot be expressed")
            if name not in self.interfaces:
                self.interfaces.append(name)

    def _opt_bind_interfaces(self, line: ConfLine) -> None:
        # pycorefile binds the addresses of `bind` themselves: what bind-interfaces does.
        self._flag(line)

    def _opt_bind_dynamic(self, line: ConfLine) -> None:
        self._flag(line)
        self.notes.append(
            (line, "addresses that appear after start are not listened on until a restart")
        )

    def _opt_log_queries(self, line: ConfLine) -> None:
        self.log_queries = True

    def _opt_domain_needed(self, line: ConfLine) -> None:
        self._flag(line)
        self.domain_needed = line

    def _opt_bogus_priv(self, line: ConfLine) -> None:
        self._flag(line)
        self.bogus_priv = line

    # Hosts files.

    def _opt_no_hosts(self, line: ConfLine) -> None:
        self._flag(line)
        self.no_hosts = True

    def _opt_addn_hosts(self, line: ConfLine) -> None:
        path = (line.value or "").strip()
        if not path:
            raise _Unsupported("no file")
        self.addn_hosts.append((path, line))

    _opt_hostsdir = _opt_addn_hosts

    # Local records.

    def _record_name(self, text: str) -> _Name:
        name = _name(text)
        if "*" in name:
            raise _Unsupported("wildcard names are for authoritative zones only")
        entry = self.names.get(name)
        if entry is None:
            entry = self.names[name] = _Name(name)
        return entry

    def _opt_host_record(self, line: ConfLine) -> None:
        names: list[str] = []
        addrs: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        ttl = self.local_ttl
        fields = [f.strip() for f in line.fields()]
        for i, text in enumerate(fields):
            ip = _ip(text)
            if ip is not None:
                addrs.append(ip)
            elif i == len(fields) - 1 and text.isdigit() and addrs:
                ttl = int(text)
            elif text and not addrs:
                names.append(text)
            elif text:
                raise _Unsupported(f"{text!r} is not an address")
        if not names or not addrs:
            raise _Unsupported("host-record needs a name and an address")
        entries = [self._record_name(n) for n in names]
        for ip in addrs:
            rtype = "A" if ip.version == 4 else "AAAA"
            for entry in entries:
                entry.add(rtype, str(ip), ttl, line)
            # The first name of the first record for an address gets the PTR.
            self._add_ptr(ip, entries[0].name, ttl, line)

    def _add_ptr(
        self,
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
        target: str,
        ttl: int,
        line: ConfLine,
    ) -> None:
        rev = ip.reverse_pointer
        entry = self.names.get(rev)
        if entry is not None and "PTR" in entry.types:
            return
        self._record_name(rev).add("PTR", target + ".", ttl, line, auto=True)

    def _opt_txt_record(self, line: ConfLine) -> None:
        name, *texts = line.fields()
        strings: list[str] = []
        for text in texts or [""]:
            data = text.encode("utf-8")
            # Longer strings are split into 255-byte chunks.
            strings.extend(_txt_string(data[i : i + 255]) for i in range(0, max(len(data), 1), 255))
        self._record_name(name).add("TXT", " ".join(strings), self.local_ttl, line)

    def _opt_cname(self, line: ConfLine) -> None:
        fields = [f.strip() for f in line.fields()]
        ttl = self.local_ttl
        if len(fields) > 2 and fields[-1].isdigit():
            ttl = int(fields.pop())
        if len(fields) < 2:
            raise _Unsupported("cname needs a name and a target")
        target = _name(fields[-1])
        entries = [self._record_name(alias) for alias in fields[:-1]]
        for entry in entries:
            if entry.types:
                raise _Unsupported(f"{entry.name} already has records")
        for entry in entries:
            entry.add("CNAME", target + ".", ttl, line)

    def _opt_mx_host(self, line: ConfLine) -> None:
        fields = [f.strip() for f in line.fields()]
        name, rest = fields[0], fields[1:]
        pref = 1
        if rest and rest[-1].isdigit():
            pref = int(rest.pop())
        if rest:
            target = _name(rest[0])
        elif self.mx_target is not None:
            target = self.mx_target
        else:
            target = _name(socket.gethostname())
            self.notes.append(
                (line, f"the MX target is this machine's host name, {target}, at conversion")
            )
        self._record_name(name).add("MX", f"{pref} {target}.", self.local_ttl, line)

    def _opt_mx_target(self, line: ConfLine) -> None:
        self.mx_target = _name(line.value or "")
        if not any(o.option == "mx-host" for o in self.lines):
            raise _Unsupported("an MX record for this machine's name is not created")

    def _opt_srv_host(self, line: ConfLine) -> None:
        fields = [f.strip() for f in line.fields()]
        name = fields[0]
        target = _name(fields[1]) + "." if len(fields) > 1 and fields[1] else "."
        nums = [_number(f, "number") for f in fields[2:5]]
        port, priority, weight = nums + [1, 0, 0][len(nums) :]  # dnsmasq's defaults
        rdata = f"{priority} {weight} {port} {target}"
        self._record_name(name).add("SRV", rdata, self.local_ttl, line)

    def _opt_ptr_record(self, line: ConfLine) -> None:
        fields = [f.strip() for f in line.fields()]
        if len(fields) < 2 or not fields[1]:
            raise _Unsupported("a PTR record without a target")
        self._record_name(fields[0]).add("PTR", _name(fields[1]) + ".", self.local_ttl, line)

    def _opt_caa_record(self, line: ConfLine) -> None:
        fields = line.fields()
        if len(fields) < 4:
            raise _Unsupported("caa-record needs name, flags, tag and value")
        flags, tag = _number(fields[1].strip(), "flags"), fields[2].strip()
        value = _txt_string(",".join(fields[3:]).encode("utf-8"))
        self._record_name(fields[0]).add("CAA", f"{flags} {tag} {value}", self.local_ttl, line)

    def _opt_dns_rr(self, line: ConfLine) -> None:
        from dnslib import QTYPE

        fields = line.fields()
        if len(fields) < 2:
            raise _Unsupported("dns-rr needs a name and a type number")
        number = _number(fields[1], "type")
        mnemonic = QTYPE.get(number, None)
        if not re.fullmatch(r"[A-Z][A-Z0-9]*", str(mnemonic)) or mnemonic in ("ANY", "OPT"):
            raise _Unsupported(f"type {number} has no name a template can use")
        hexdata = re.sub(r"[\s:]", "", ",".join(fields[2:]))
        if not re.fullmatch(r"([0-9a-fA-F]{2})*", hexdata):
            raise _Unsupported("the data is not hexadecimal")
        rdata = f"\\# {len(hexdata) // 2} {hexdata.lower()}" if hexdata else "\\# 0"
        self._record_name(fields[0]).add(mnemonic, rdata, self.local_ttl, line)

    def build(self, port: int | None, listen: Sequence[str] | None) -> Conversion:
        self.read()
        if port is not None:
            self.port = port
        if listen:
            self.listen, self.interfaces = list(listen), []
        if self.port == 0:
            self.notes.append((None, "port=0: dnsmasq serves no DNS, so there is no server block"))
            return self._finish([])
        self._add_builtin_rules()
        blocks = self._blocks()
        hosts_file, inline = self._hosts(blocks)
        out: list[str] = []
        for block in blocks:
            out.append("")
            out.extend(self._render_block(block, hosts_file, inline))
        return self._finish(out)

    # -- model → blocks ----------------------------------------------------------------

    def _add_builtin_rules(self) -> None:
        if self.domain_needed is not None:
            # Plain names (no dot) are never forwarded for A and AAAA: NXDOMAIN unless a
            # local record has the name (then NODATA for the missing type).
            self.rules["domain-needed"] = _Rule(
                "domain-needed",
                ["."],
                r"^[^.]+\.$",
                (0, 1),
                [self.domain_needed],
                local=True,
                local_types=("A", "AAAA"),
                builtin=True,
            )
        if self.bogus_priv is not None:
            self.rules["bogus-priv"] = _Rule(
                "bogus-priv",
                list(_BOGUS_PRIV_ZONES),
                _BOGUS_PRIV_REGEX,
                (0, 1),
                [self.bogus_priv],
                local=True,
                local_types=("PTR",),
                builtin=True,
            )

    def _resolv_conf(self) -> str | None:
        """The resolv.conf file dnsmasq reads its upstream servers from, if any."""
        return None if self.no_resolv else self.resolv_file or "/etc/resolv.conf"

    def _default_upstreams(self) -> list[str]:
        ups = [str(s) for s in self.servers]
        resolv = self._resolv_conf()
        if resolv is not None:
            ups.append(resolv)
        seen: list[str] = []
        for u in ups:
            if u not in seen:
                seen.append(u)
        if len(seen) > 15:
            self.notes.append(
                (None, f"forward takes at most 15 upstreams; {len(seen) - 15} dropped")
            )
            seen = seen[:15]
        return seen

    def _blocks(self) -> list[_Block]:
        default = self._default_upstreams()
        root = _Block(".", default, list(self.server_lines))
        blocks = {".": root}
        for rule in self.rules.values():
            if rule.is_block:
                zone = rule.zones[0]
                ups = list(dict.fromkeys([str(s) for s in rule.servers]))
                if rule.use_default and not rule.servers:
                    ups = default
                blocks[zone] = _Block(zone, ups, list(rule.lines))
                if rule.servers and rule.use_default:
                    self.notes.append(
                        (rule.lines[0], f"{zone}: both servers and # given; the servers are used")
                    )

        self.blocks = blocks
        for rule in self.rules.values():
            if rule.has_address or rule.local:
                # bogus-priv stays in the root block: a server= for a private reverse zone
                # takes those names to its own block, where dnsmasq forwards them too.
                block = root if rule.builtin else self._block_of(rule.zones[0])
                block.rules.append(rule)
        for entry in self.names.values():
            self._block_of(entry.name).names.append(entry)
        # The root first, then the others from the most specific.
        return [root] + sorted(
            (b for b in blocks.values() if b is not root), key=lambda b: (-len(b.zone), b.zone)
        )

    def _block_of(self, name: str) -> _Block:
        """The server block that gets queries for ``name``: the longest zone match."""
        zones = [z for z in self.blocks if z != "." and _in_zone(name, z)]
        return self.blocks[max(zones, key=len)] if zones else self.blocks["."]

    def _covered(self, name: str, qtype: str) -> bool:
        """Would a domain rule's template answer ``name qtype`` before the hosts plugin?"""
        block = self._block_of(name)
        return any(r.matches(name) and r.answers(qtype) for r in block.rules)

    def _snapshot(self, name: str, rtype: str, rdata: str, line: ConfLine) -> None:
        """Copy a hosts-file record into the local records (and its block)."""
        entry = self.names.get(name)
        if entry is None:
            entry = self.names[name] = _Name(name)
        entry.add(rtype, rdata, self.local_ttl, line, auto=rtype == "PTR")
        self.snapshots += 1
        block = self._block_of(name)
        if entry not in block.names:
            block.names.append(entry)

    def _hosts(self, blocks: list[_Block]) -> tuple[str | None, list[_HostsEntry]]:
        """The hosts plugin's file and inline entries; names that a template would shadow
        (template runs before hosts) become local records instead."""
        sources: list[tuple[str, ConfLine | None]] = []
        if not self.no_hosts:
            sources.append(("/etc/hosts", None))
        sources.extend(self.addn_hosts)
        if not sources:
            return None, []
        primary: str | None = None
        if not Path(sources[0][0]).is_dir():
            primary = sources[0][0]
        inline: list[_HostsEntry] = []
        ptr_done: set[str] = {n for n, e in self.names.items() if "PTR" in e.types}
        any_rules = any(b.rules for b in blocks)
        for index, (path, line) in enumerate(sources):
            entries = _read_hosts(path, path)
            if entries is None:
                if index == 0 and primary is not None:
                    if any_rules:
                        self.notes.append(
                            (
                                line,
                                f"{path} could not be read here: names in it that lie under "
                                "address=, local=, domain-needed or bogus-priv rules are "
                                "answered by those rules, not by the file",
                            )
                        )
                else:
                    assert line is not None
                    self.unsupported.append((line, f"{path} could not be read"))
                continue
            if index > 0 or primary is None:
                self.notes.append(
                    (
                        line,
                        f"the entries of {path} are copied into the Corefile: "
                        "convert again after changing it",
                    )
                )
            inlined = index > 0 or primary is None
            for entry in entries:
                rtype = "A" if entry.ip.version == 4 else "AAAA"
                keep = [n for n in entry.names if not self._covered(n, rtype)]
                for n in entry.names:
                    if n not in keep:
                        self._snapshot(n, rtype, str(entry.ip), entry.line)
                # The first name of the first entry for an address gets the PTR. An
                # inline entry without that name would give the hosts plugin another one.
                rev = entry.ip.reverse_pointer
                if rev not in ptr_done:
                    ptr_done.add(rev)
                    lost = inlined and entry.names[0] not in keep
                    if lost or self._covered(rev, "PTR"):
                        self._snapshot(rev, "PTR", entry.names[0] + ".", entry.line)
                if inlined and keep:
                    inline.append(_HostsEntry(entry.ip, keep, entry.line))
        if self.snapshots and primary is not None:
            self.notes.append(
                (
                    None,
                    "hosts-file names under address=/local=/domain-needed/bogus-priv rules "
                    "are copied into templates (template runs before hosts): convert again "
                    "after changing them",
                )
            )
        return primary or "/dev/null", inline

    # -- blocks → text -----------------------------------------------------------------

    def _key(self, zone: str) -> str:
        return zone if self.port is None else f"{zone}:{self.port}"

    def _stanzas(self, block: _Block) -> list[_Stanza]:
        out: list[_Stanza] = []
        for entry in block.names:
            out.extend(_exact_stanzas(entry))
        # Query types of local names already given NODATA by a more specific rule.
        decided: dict[str, set[str]] = {}
        for rule in sorted(block.rules, key=lambda r: r.rank, reverse=True):
            out.extend(self._rule_stanzas(rule, block, decided))
        return out

    def _rule_stanzas(
        self, rule: _Rule, block: _Block, decided: dict[str, set[str]]
    ) -> list[_Stanza]:
        out: list[_Stanza] = []
        fall = rule.regex is not None
        ttl = self.local_ttl
        if rule.v4 or rule.null:
            ips = rule.v4 + (["0.0.0.0"] if rule.null else [])
            out.append(
                _Stanza(
                    "IN",
                    "A",
                    rule.zones,
                    rule.regex,
                    [f"{{{{ .Name }}}} {ttl} IN A {ip}" for ip in ips],
                    ttl=ttl,
                    fallthrough=fall,
                    sources=rule.lines,
                )
            )
        if rule.v6 or rule.null:
            ips = rule.v6 + (["::"] if rule.null else [])
            out.append(
                _Stanza(
                    "IN",
                    "AAAA",
                    rule.zones,
                    rule.regex,
                    [f"{{{{ .Name }}}} {ttl} IN AAAA {ip}" for ip in ips],
                    ttl=ttl,
                    fallthrough=fall,
                    sources=rule.lines,
                )
            )
        if not rule.local or rule.is_block:
            # With upstream servers for the same domain, dnsmasq forwards.
            return out
        # A local domain with an address of another type answers NODATA, without one
        # NXDOMAIN - except for names with local records, which get NODATA.
        rcode = "NOERROR" if rule.has_address else "NXDOMAIN"
        if rcode == "NXDOMAIN":
            for name, types in self._existing(rule, block).items():
                if "CNAME" in types:
                    continue
                done = decided.setdefault(name, set())
                if "ANY" in done:
                    continue
                missing = (
                    ["ANY"]
                    if "ANY" in rule.local_types
                    else [t for t in rule.local_types if t not in types and t not in done]
                )
                done.update(missing)
                for qtype in missing:
                    out.append(
                        _Stanza(
                            "ANY" if qtype == "ANY" else "IN",
                            qtype,
                            [name],
                            _exact_regex(name),
                            rcode="NOERROR",
                            fallthrough=True,
                            comment=f"{name} exists: NODATA rather than NXDOMAIN",
                        )
                    )
        qtypes = ["ANY"] if "ANY" in rule.local_types else list(rule.local_types)
        for qtype in qtypes:
            out.append(
                _Stanza(
                    "ANY" if qtype == "ANY" else "IN",
                    qtype,
                    rule.zones,
                    rule.regex,
                    rcode=rcode,
                    fallthrough=fall,
                    sources=rule.lines,
                )
            )
        return out

    def _existing(self, rule: _Rule, block: _Block) -> dict[str, set[str]]:
        """The names under ``rule`` that dnsmasq considers to exist, with their record
        types: names with local records and every name above one (an "empty
        non-terminal"), as dnsmasq's check_for_local_domain() sees them. bogus-priv does
        not look above a name."""
        out: dict[str, set[str]] = {}
        for entry in block.names:
            if not entry.named:
                continue
            name = entry.name
            while name:
                if rule.matches(name):
                    known = self.names.get(name)
                    out.setdefault(name, set(known.types) if known is not None else set())
                if rule.pattern == "bogus-priv":
                    break
                name = name.partition(".")[2]
        return out

    def _render_block(
        self, block: _Block, hosts_file: str | None, inline: list[_HostsEntry]
    ) -> list[str]:
        body: list[str] = []
        binds = self.listen + self.interfaces
        if self.interfaces and "lo" not in binds:
            binds.append("lo")  # dnsmasq adds the loopback interface to --interface
        if binds:
            body.append("bind " + " ".join(binds))
        if self.log_queries:
            body.append("log")
        stanzas = self._stanzas(block)
        if block.upstreams and self.cache_size > 0:
            body.extend(self._cache(stanzas))
        for stanza in stanzas:
            body.extend(stanza.lines())
        if hosts_file is not None:
            body.extend(self._hosts_directive(hosts_file, inline))
        if block.upstreams:
            if block.zone == ".":
                body.extend(f"# {line.where}: {line.text}" for line in block.lines)
            fwd = "forward . " + " ".join(quote_token(u) for u in block.upstreams)
            # A resolv.conf file can name several servers.
            files = [u for u in block.upstreams if u == self._resolv_conf()]
            if self.strict_order and (len(block.upstreams) > 1 or files):
                body.extend([fwd + " {", "    policy sequential", "}"])
            else:
                body.append(fwd)
        elif hosts_file is None:
            body.extend(
                [
                    "# No upstream server: dnsmasq answers REFUSED.",
                    f"template ANY ANY {block.zone} {{",
                    "    rcode REFUSED",
                    "}",
                ]
            )
        head = []
        if block.zone != ".":
            head = [f"# {line.where}: {line.text}" for line in block.lines[:3]]
        return (
            head + [self._key(block.zone) + " {"] + ["    " + b if b else b for b in body] + ["}"]
        )

    def _cache(self, stanzas: list[_Stanza]) -> list[str]:
        success_max = self.max_cache_ttl or 3600
        denial_max = self.max_cache_ttl or 1800
        lines = [
            "cache {",
            f"    success {self.cache_size} {success_max} {self.min_cache_ttl}",
            f"    denial {self.cache_size} {denial_max} {self.min_cache_ttl}",
        ]
        # dnsmasq never caches its own answers: their TTL stays the same on every reply.
        # Keep them out of the cache when they have a TTL to count down.
        answering = [s for s in stanzas if s.answers]
        zones = {z for s in answering if s.ttl > 0 for z in s.zones}
        # The cache still rewrites every TTL it passes into [MINTTL, TTL].
        if any(not self.min_cache_ttl <= s.ttl <= success_max for s in answering):
            note = (
                None,
                f"local answers pass the cache, which shows their TTLs as at least "
                f"{self.min_cache_ttl} and at most {success_max} (min-/max-cache-ttl); "
                "dnsmasq does not",
            )
            if note not in self.notes:
                self.notes.append(note)
        # A zone covers the names below it: list only the topmost ones.
        local = [
            z
            for z in sorted(zones, key=lambda z: (z.count("."), z))
            if not any(o != z and _in_zone(z, o) for o in zones)
        ]
        if local:
            lines.append("    disable success " + " ".join(local))
        if self.no_negcache:
            lines.append("    disable denial")
        lines.append("}")
        return lines

    def _hosts_directive(self, path: str, inline: list[_HostsEntry]) -> list[str]:
        lines = [f"hosts {quote_token(path)} {{"]
        for entry in inline:
            lines.append(f"    {entry.ip} {' '.join(entry.names)}")
        # dnsmasq's TTL for hosts entries is local-ttl (default 0); hosts needs 1..65535.
        lines.append(f"    ttl {min(max(self.local_ttl, 1), 65535)}")
        lines.append("    fallthrough")
        lines.append("    fallthrough_unsupported")
        lines.append("}")
        return lines

    def _finish(self, body: list[str]) -> Conversion:
        head = [f"# Corefile for pycorefile, converted from {self.source} by 'pycorefile convert'."]
        # In the order of the configuration (records were read in a second pass).
        order = {id(line): i for i, line in enumerate(self.lines)}
        self.unsupported.sort(key=lambda item: order.get(id(item[0]), len(order)))
        for line, reason in self.unsupported:
            head.append(f"# {line.where}: unsupported: {line.text}")
            if reason:
                head.append(f"#     {reason}")
        if self.dhcp:
            opts = ", ".join(dict.fromkeys(line.option for line in self.dhcp))
            head.append(
                f"# {_where(self.dhcp)}: unsupported: {len(self.dhcp)} DHCP/TFTP/RA "
                f"line{'s' if len(self.dhcp) > 1 else ''} ({opts}): pycorefile serves DNS only"
            )
        notes = []
        for nline, text in self.notes:
            notes.append(f"{nline.where}: {text}" if nline is not None else text)
            head.append(
                f"# {nline.where}: note: {text}" if nline is not None else f"# note: {text}"
            )
        if self.local_ttl == 0 and not (self.no_hosts and not self.addn_hosts) and self.port != 0:
            text = "hosts-file answers have TTL 1 (dnsmasq: 0); the hosts plugin needs 1..65535"
            notes.append(text)
            head.append(f"# note: {text}")
        return Conversion("\n".join(head + body) + "\n", list(self.unsupported), notes)


# ---------------------------------------------------------------------------------------------
# Entry points


def convert(
    text: str,
    *,
    filename: str = "dnsmasq.conf",
    base_dir: str | os.PathLike[str] | None = None,
    port: int | None = None,
    listen: Sequence[str] | None = None,
) -> Conversion:
    """Convert dnsmasq configuration text.

    ``filename`` names the text in the comments; ``base_dir`` is where relative
    ``conf-file=``/``conf-dir=`` paths are looked up (default: the working directory).
    ``port`` and ``listen`` override ``port=`` and ``listen-address=``/``interface=``.
    """
    lines: list[ConfLine] = []
    _read_text(text, filename, Path(base_dir or "."), set(), lines)
    return _Converter(lines, filename).build(port, listen)


def convert_file(
    path: str | os.PathLike[str],
    *,
    port: int | None = None,
    listen: Sequence[str] | None = None,
) -> Conversion:
    """Convert a dnsmasq configuration file and the files it includes.

    Raises ``OSError`` when ``path`` cannot be read.
    """
    return _Converter(read_conf(path), os.fspath(path)).build(port, listen)
