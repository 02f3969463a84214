"""Reading a ``forward`` directive: ``forward FROM TO... { options }``.

Setup only parses: it reads resolv.conf-style files and TLS certificates (so that
a bad path is reported at its line, as CoreDNS does) but opens no socket. Every
error is a :class:`~pycorefile.CorefileError` at the offending line, with
CoreDNS's wording where CoreDNS has one.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from dataclasses import dataclass, field

from pycorefile.chain import SetupContext
from pycorefile.corefile.keys import (
    is_domain_name,
    normalize_name,
    split_host_port,
    split_transport,
)
from pycorefile.corefile.model import Directive, Token
from pycorefile.duration import format_duration, parse_duration

from .resolve import lookup_host

PLUGIN = "forward"

#: CoreDNS refuses more than this many TO addresses in one ``forward`` line.
MAX_UPSTREAMS = 15
DEFAULT_EXPIRE = 10.0
DEFAULT_READ_TIMEOUT = 2.0
DEFAULT_HC_INTERVAL = 0.5
DEFAULT_MAX_FAILS = 2
#: ``max_connect_attempts`` default: this many attempts per configured upstream.
CONNECT_ATTEMPTS_PER_UPSTREAM = 2

DEFAULT_PORTS = {"dns": 53, "tls": 853}

#: miekg/dns ``StringToRcode``: the names ``next`` and ``failover`` accept
#: (case-insensitive).
RCODES: dict[str, int] = {
    "NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5,
    "YXDOMAIN": 6, "YXRRSET": 7, "NXRRSET": 8, "NOTAUTH": 9, "NOTZONE": 10,
    "BADSIG": 16, "BADVERS": 16, "BADKEY": 17, "BADTIME": 18, "BADMODE": 19, "BADNAME": 20,
    "BADALG": 21, "BADTRUNC": 22, "BADCOOKIE": 23,
}


@dataclass(frozen=True)
class UpstreamSpec:
    """One TO address after parsing.

    ``addr`` is the normalised ``IP:PORT`` (``[v6]:PORT``): the ``to`` metric
    label and the key duplicates are removed by. ``server_name`` is the TLS
    name to send and verify (``None``: verify the IP address itself).
    """

    addr: str
    host: str
    port: int
    scheme: str = "dns"          # "dns" or "tls"
    server_name: str | None = None


@dataclass
class ForwardConfig:
    """Everything one ``forward`` line configures, with CoreDNS's defaults."""

    from_zone: str = "."
    ignored: list[str] = field(default_factory=list)
    upstreams: list[UpstreamSpec] = field(default_factory=list)
    force_tcp: bool = False
    prefer_udp: bool = False
    expire: float = DEFAULT_EXPIRE
    max_age: float = 0.0
    max_idle_conns: int = 0
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_fails: int = DEFAULT_MAX_FAILS
    #: ``None``: not configured, i.e. 2 × the number of upstreams; 0: no cap.
    max_connect_attempts: int | None = None
    tls_args: tuple[str, ...] | None = None
    tls_context: ssl.SSLContext | None = None
    tls_servername: str | None = None
    policy: str = "random"
    hc_interval: float = DEFAULT_HC_INTERVAL
    hc_recursion_desired: bool = True
    hc_domain: str = "."
    max_concurrent: int = 0
    next_rcodes: list[int] = field(default_factory=list)
    next_on_nodata: bool = False
    failover_rcodes: list[int] = field(default_factory=list)
    failfast: bool = False
    doh_method: str = "POST"
    source_address: str | None = None
    resolvers: list[str] = field(default_factory=list)

    @property
    def connect_attempts(self) -> int:
        """The per-query attempt cap actually used (0 = none)."""
        if self.max_connect_attempts is None:
            return CONNECT_ATTEMPTS_PER_UPSTREAM * len(self.upstreams)
        return self.max_connect_attempts


def parse_forward(directive: Directive, ctx: SetupContext) -> ForwardConfig:
    """Parse one ``forward`` line and its block into a :class:`ForwardConfig`."""
    cfg = ForwardConfig()
    args = directive.arg_tokens
    if not args:
        raise directive.arg_error(PLUGIN)
    zones = normalize_exact(args[0].text)
    if not zones:
        raise args[0].error(f"unable to normalize '{args[0].text}'", plugin=PLUGIN)
    # A CIDR that is not on an octet boundary expands to several reverse zones; like
    # CoreDNS, only the first one is used.
    cfg.from_zone = zones[0]
    to = args[1:]
    if not to:
        raise directive.arg_error(PLUGIN)

    # The block first (as CoreDNS does), then the TO addresses.
    max_age_line: Directive | None = None
    for sub in directive.block or ():
        _parse_option(sub, cfg, ctx)
        if sub.name == "max_age":
            max_age_line = sub
    if cfg.max_age > 0 and cfg.max_age < cfg.expire:
        where = max_age_line or directive
        raise where.error(
            f"max_age ({format_duration(cfg.max_age)}) must not be less than expire "
            f"({format_duration(cfg.expire)})",
            plugin=PLUGIN,
        )

    entries = 0
    seen: set[str] = set()
    for tok in to:
        found = parse_to(tok, ctx.config_dir, cfg.resolvers)
        if found is None:
            continue  # a resolv.conf file without nameservers is skipped
        entries += 1
        for spec in found:
            if spec.addr in seen:
                continue
            seen.add(spec.addr)
            cfg.upstreams.append(_tls_name(spec, cfg, tok))
    if entries > MAX_UPSTREAMS:
        raise directive.error(
            f"more than {MAX_UPSTREAMS} TOs configured: {entries}", plugin=PLUGIN
        )
    if not cfg.upstreams:
        raise directive.error("no valid upstream addresses found", plugin=PLUGIN)
    if cfg.tls_context is None and any(s.scheme == "tls" for s in cfg.upstreams):
        # No ``tls`` option: the system's CAs, TLS 1.2 or newer.
        cfg.tls_context = make_tls_context(())
    return cfg


def _tls_name(spec: UpstreamSpec, cfg: ForwardConfig, tok: Token) -> UpstreamSpec:
    """Apply ``tls_servername``; it cannot be combined with ``tls://IP%name``."""
    if spec.scheme != "tls":
        return spec
    if spec.server_name and cfg.tls_servername:
        raise tok.error(
            f"both forward ('{cfg.tls_servername}') and proxy level ('{spec.server_name}') "
            f"TLS servernames are set for upstream proxy 'tls://{spec.addr}'",
            plugin=PLUGIN,
        )
    name = cfg.tls_servername or spec.server_name
    return UpstreamSpec(spec.addr, spec.host, spec.port, "tls", name)


# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------


def _no_args(sub: Directive) -> None:
    if sub.args:
        raise sub.arg_error(PLUGIN)


def _one_arg(sub: Directive) -> Token:
    if len(sub.arg_tokens) != 1:
        raise sub.arg_error(PLUGIN)
    return sub.arg_tokens[0]


def _some_args(sub: Directive) -> tuple[Token, ...]:
    if not sub.arg_tokens:
        raise sub.arg_error(PLUGIN)
    return sub.arg_tokens


def _duration(tok: Token) -> float:
    try:
        return parse_duration(tok.text)
    except ValueError as exc:
        raise tok.error(str(exc), plugin=PLUGIN) from None


_DIGITS = re.compile(r"[0-9]+\Z")
_GO_INT = re.compile(r"[+-]?[0-9]+\Z")


def _uint32(tok: Token) -> int:
    """Go's ``strconv.ParseUint(s, 10, 32)`` with its error text."""
    s = tok.text
    if not _DIGITS.match(s):
        raise tok.error(f'strconv.ParseUint: parsing "{s}": invalid syntax', plugin=PLUGIN)
    value = int(s)
    if value > 0xFFFFFFFF:
        raise tok.error(f'strconv.ParseUint: parsing "{s}": value out of range', plugin=PLUGIN)
    return value


def _atoi(tok: Token) -> int:
    """Go's ``strconv.Atoi`` with its error text."""
    s = tok.text
    if not _GO_INT.match(s):
        raise tok.error(f'strconv.Atoi: parsing "{s}": invalid syntax', plugin=PLUGIN)
    value = int(s)
    if not -(2**63) <= value < 2**63:
        raise tok.error(f'strconv.Atoi: parsing "{s}": value out of range', plugin=PLUGIN)
    return value


def _rcodes(tokens: tuple[Token, ...]) -> list[int]:
    out = []
    for tok in tokens:
        code = RCODES.get(tok.text.upper())
        if code is None:
            raise tok.error(f"{tok.text} is not a valid rcode", plugin=PLUGIN)
        out.append(code)
    return out


def _parse_option(sub: Directive, cfg: ForwardConfig, ctx: SetupContext) -> None:
    name = sub.name
    if name == "except":
        for tok in _some_args(sub):
            # CoreDNS ignores names it cannot normalise (they can never match).
            cfg.ignored.extend(normalize_exact(tok.text))
    elif name == "max_fails":
        cfg.max_fails = _uint32(_one_arg(sub))
    elif name == "max_connect_attempts":
        cfg.max_connect_attempts = _uint32(_one_arg(sub))
    elif name == "health_check":
        _parse_health_check(sub, cfg)
    elif name == "force_tcp":
        _no_args(sub)
        cfg.force_tcp = True
    elif name == "prefer_udp":
        _no_args(sub)
        cfg.prefer_udp = True
    elif name == "tls":
        if len(sub.args) > 3:
            raise sub.arg_error(PLUGIN)
        paths = tuple(
            p if os.path.isabs(p) else os.path.join(ctx.config_dir, p) for p in sub.args
        )
        try:
            cfg.tls_context = make_tls_context(paths)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise sub.error(str(exc), plugin=PLUGIN) from None
        cfg.tls_args = paths
    elif name == "tls_servername":
        cfg.tls_servername = _one_arg(sub).text
    elif name in ("expire", "max_age"):
        tok = _one_arg(sub)
        value = _duration(tok)
        if value < 0:
            raise tok.error(
                f"{name} can't be negative: {format_duration(value)}", plugin=PLUGIN
            )
        setattr(cfg, name, value)
    elif name == "max_idle_conns":
        tok = _one_arg(sub)
        n = _atoi(tok)
        if n < 0:
            raise tok.error(f"max_idle_conns can't be negative: {n}", plugin=PLUGIN)
        cfg.max_idle_conns = n
    elif name == "read_timeout":
        tok = _one_arg(sub)
        value = _duration(tok)
        if value <= 0:
            raise tok.error(
                f"read_timeout must be positive: {format_duration(value)}", plugin=PLUGIN
            )
        cfg.read_timeout = value
    elif name == "doh_method":
        tok = _one_arg(sub)
        if tok.text not in ("POST", "GET"):
            raise tok.error("doh_method must be either POST or GET", plugin=PLUGIN)
        cfg.doh_method = tok.text
    elif name == "policy":
        tok = _one_arg(sub)
        if tok.text not in ("random", "round_robin", "sequential"):
            raise tok.error(f"unknown policy '{tok.text}'", plugin=PLUGIN)
        cfg.policy = tok.text
    elif name == "max_concurrent":
        tok = _one_arg(sub)
        n = _atoi(tok)
        if n < 0:
            raise tok.error(f"max_concurrent can't be negative: {n}", plugin=PLUGIN)
        cfg.max_concurrent = n
    elif name == "next":
        cfg.next_rcodes.extend(_rcodes(_some_args(sub)))
    elif name == "next_on_nodata":
        _no_args(sub)
        cfg.next_on_nodata = True
    elif name == "failfast_all_unhealthy_upstreams":
        _no_args(sub)
        cfg.failfast = True
    elif name == "failover":
        tokens = _some_args(sub)
        codes = _rcodes(tokens)
        for tok, code in zip(tokens, codes, strict=True):
            if code == 0:
                raise tok.error("NoError cannot be used in failover", plugin=PLUGIN)
        cfg.failover_rcodes.extend(codes)
    elif name == "resolver":
        for tok in _some_args(sub):
            if _ip_or_ip_port(tok.text) is None:
                raise tok.error(
                    f'resolver must be an IP address or IP:port: "{tok.text}"', plugin=PLUGIN
                )
            cfg.resolvers.append(tok.text)
    elif name == "source_address":
        tok = _one_arg(sub)
        ip = _parse_ip(tok.text)
        if ip is None:
            raise tok.error(f"invalid IP address: {tok.text}", plugin=PLUGIN)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # Go's net.ParseIP("::ffff:192.0.2.1") is the IPv4 address
        cfg.source_address = str(ip)
    else:
        raise sub.error(f"unknown property '{name}'", plugin=PLUGIN)


def _parse_health_check(sub: Directive, cfg: ForwardConfig) -> None:
    tokens = sub.arg_tokens
    if not tokens:
        raise sub.arg_error(PLUGIN)
    interval = _duration(tokens[0])
    if interval < 0:
        raise tokens[0].error(
            f"health_check can't be negative: {format_duration(interval)}", plugin=PLUGIN
        )
    cfg.hc_interval = interval
    cfg.hc_domain = "."
    i = 1
    while i < len(tokens):
        opt = tokens[i].text
        if opt == "no_rec":
            cfg.hc_recursion_desired = False
        elif opt == "domain":
            if i + 1 >= len(tokens):
                raise sub.arg_error(PLUGIN)
            i += 1
            domain = tokens[i].text
            if not is_domain_name(domain):
                raise tokens[i].error(
                    f"health_check: invalid domain name {domain}", plugin=PLUGIN
                )
            cfg.hc_domain = normalize_name(domain)
        else:
            raise tokens[i].error(f"health_check: unknown option {opt}", plugin=PLUGIN)
        i += 1


# ---------------------------------------------------------------------------
# Names and addresses
# ---------------------------------------------------------------------------


def normalize_exact(text: str) -> list[str]:
    """CoreDNS's ``plugin.Host(text).NormalizeExact()``: the zone(s) of a name or a
    CIDR (reverse zones), scheme and port stripped; empty when it is not usable."""
    _, rest = split_transport(text)
    try:
        hosts, _ = split_host_port(rest)
    except ValueError:
        return []
    return [normalize_name(h) for h in hosts]


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _strip_zone(host: str) -> tuple[str, str]:
    """``("fe80::1", "eth0")`` for ``fe80::1%eth0``: the part after the last ``%``."""
    i = host.rfind("%")
    if i < 0:
        return host, ""
    return host[:i], host[i + 1 :]


def _split_host_port(text: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort``: ``None`` when ``text`` is not ``host:port``."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not text[end + 1 :].startswith(":"):
            return None
        host, port = text[1:end], text[end + 2 :]
        if ":" in port or "[" in port or "]" in port:
            return None
        return host, port
    if text.count(":") != 1:
        return None
    host, _, port = text.partition(":")
    if "[" in host or "]" in host:
        return None
    return host, port


def _ip_or_ip_port(text: str) -> str | None:
    hp = _split_host_port(text)
    host = hp[0] if hp is not None else text
    return host if _parse_ip(host) is not None else None


def _resolver_address(text: str) -> tuple[str, int]:
    """A ``resolver`` argument (``IP`` or ``IP:PORT``, checked at parse) as (IP, port)."""
    hp = _split_host_port(text)
    if hp is None:
        return text, 53
    return hp[0], int(hp[1] or 53)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_to(tok: Token, config_dir: str, resolvers: list[str] | None = None) -> list[UpstreamSpec] | None:
    """The upstream(s) of one TO token: an address, a resolv.conf-style file, or a
    host name, looked up now (through ``resolvers`` if given, else the system's).

    Returns ``None`` for a file without any ``nameserver`` line (CoreDNS skips it).
    Raises :class:`CorefileError` at the token for anything unusable.
    """
    text = tok.text
    scheme, rest = split_transport(text)
    if scheme == "https":
        raise tok.error(
            f"{text}: DNS over HTTPS (https://) upstreams are not supported by pycorefile",
            plugin=PLUGIN,
        )
    if scheme not in ("dns", "tls"):
        raise tok.error(
            f"'{scheme}' is not supported as a destination protocol in forward: {text}",
            plugin=PLUGIN,
        )
    if not rest:
        raise tok.error(f'invalid address: "{text}"', plugin=PLUGIN)

    hp = _split_host_port(rest)
    if hp is not None:
        host_zone, port_text = hp
    else:
        host_zone, port_text = rest.strip("[]"), ""
    host, zone = _strip_zone(host_zone)
    ip = _parse_ip(host)
    if ip is None:
        path = rest if os.path.isabs(rest) else os.path.join(config_dir, rest)
        if scheme == "dns" and os.path.isfile(path):
            return _resolv_conf(tok, path)
        if host and is_domain_name(host) and not host.replace(".", "").isdigit():
            return _by_host_name(tok, scheme, host, zone, port_text, resolvers or [])
        raise tok.error(f'not an IP address, file, or valid domain: "{text}"', plugin=PLUGIN)
    port = _port(tok, scheme, port_text)
    host = str(ip) if ip.version == 6 else host
    server_name = zone if scheme == "tls" and zone else None
    return [UpstreamSpec(_join(host, port), host, port, scheme, server_name)]


def _port(tok: Token, scheme: str, port_text: str) -> int:
    """The port written after the address, or the scheme's default."""
    if not port_text:
        return DEFAULT_PORTS[scheme]
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise tok.error(f'invalid port in "{tok.text}"', plugin=PLUGIN)
    return int(port_text)


def _by_host_name(
    tok: Token, scheme: str, host: str, zone: str, port_text: str, resolvers: list[str]
) -> list[UpstreamSpec]:
    """One upstream per address of ``host`` (CoreDNS ``expandAndDedup``). For TLS the
    certificate is checked against the address, or against ``%name`` when given,
    exactly as for an upstream written as an IP."""
    port = _port(tok, scheme, port_text)
    try:
        ips = lookup_host(host, [_resolver_address(r) for r in resolvers])
    except LookupError as exc:
        raise tok.error(f'failed to resolve "{host}": {exc}', plugin=PLUGIN) from None
    server_name = zone if scheme == "tls" and zone else None
    out = []
    for text in ips:
        ip = _parse_ip(text)
        if ip is None:
            continue
        addr = str(ip)
        out.append(UpstreamSpec(_join(addr, port), addr, port, scheme, server_name))
    if not out:
        raise tok.error(f'failed to resolve "{host}": no addresses found', plugin=PLUGIN)
    return out


def _resolv_conf(tok: Token, path: str) -> list[UpstreamSpec] | None:
    """The ``nameserver`` lines of a resolv.conf-style file, each as ``IP:53``."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise tok.error(f'failed to open file "{path}": {exc.strerror}', plugin=PLUGIN) from None
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) < 2 or fields[0] != "nameserver":
            continue
        host, _ = _strip_zone(fields[1])
        ip = _parse_ip(host)
        if ip is None:
            raise tok.error(
                f"{path}: nameserver {fields[1]} is not an IP address", plugin=PLUGIN
            )
        host = str(ip)
        out.append(UpstreamSpec(_join(host, 53), host, 53, "dns", None))
    return out or None


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------


def make_tls_context(paths: tuple[str, ...]) -> ssl.SSLContext:
    """The client TLS context for ``tls [CERT KEY [CA]]`` (CoreDNS's
    ``NewTLSConfigFromArgs``): no args, the system CAs; one, a CA file; two, a
    client certificate and key with the system CAs; three, all of them. The peer
    is always verified; TLS 1.2 is the minimum."""
    if len(paths) > 3:
        raise ValueError(f"maximum of three arguments allowed for TLS config, found {len(paths)}")
    ca = paths[0] if len(paths) == 1 else paths[2] if len(paths) == 3 else None
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"error reading {ca}: {_reason(exc)}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if len(paths) >= 2:
        try:
            ctx.load_cert_chain(paths[0], paths[1])
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"could not load TLS cert: {_reason(exc)}") from None
    return ctx


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)
