"""``cache [TTL] [ZONES...] { ... }``: the directive, read as CoreDNS's ``cacheParse`` reads it.

Every default and every rejection follows CoreDNS (``plugin/cache/setup.go``); the
error texts are CoreDNS's, located at the offending token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pycorefile.chain import SetupContext
from pycorefile.corefile.errors import CorefileError
from pycorefile.corefile.keys import normalize_name, split_host_port, split_transport
from pycorefile.corefile.model import Directive, Token
from pycorefile.duration import parse_duration

NAME = "cache"

#: CoreDNS's ``dnsutil.MaximumDefaultTTL`` / ``MinimalDefaultTTL`` (seconds).
MAX_TTL = 3600
MIN_TTL = 5
MAX_NTTL = MAX_TTL // 2
MIN_NTTL = MIN_TTL
DEFAULT_CAPACITY = 10000
#: CoreDNS splits each cache into 256 shards of ``max(CAPACITY // 256, 4)`` entries.
SHARDS = 256
MIN_SHARD = 4
#: RFC 2308 §7.1 / RFC 8767 §4: SERVFAIL and failed-refresh back-off stay under 5 minutes.
FIVE_MINUTES = 300.0
MAX_UINT32 = 2**32 - 1

_GO_INT = re.compile(r"[+-]?[0-9]+\Z")


@dataclass
class CacheConfig:
    """Everything the directive can set, with CoreDNS's defaults (seconds, entries)."""

    zones: tuple[str, ...] = (".",)
    success_capacity: int = DEFAULT_CAPACITY
    success_ttl: int = MAX_TTL
    success_min_ttl: int = MIN_TTL
    denial_capacity: int = DEFAULT_CAPACITY
    denial_ttl: int = MAX_NTTL
    denial_min_ttl: int = MIN_NTTL
    servfail_ttl: float = float(MIN_NTTL)
    prefetch: int = 0
    prefetch_duration: float = 60.0
    prefetch_percentage: int = 10
    stale_up_to: float = 0.0
    verify_stale: bool = False
    verify_timeout: float = 0.0
    stale_ttl: int = 0
    stale_recheck: float = 0.0
    prefer_positive: bool = False
    success_disabled: tuple[str, ...] = ()
    denial_disabled: tuple[str, ...] = ()
    keepttl: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    @staticmethod
    def effective_capacity(capacity: int) -> int:
        """The number of entries a CoreDNS cache of ``capacity`` really holds:
        256 shards of ``max(capacity // 256, 4)`` (so 10000 → 9984, at least 1024)."""
        # Go's integer division truncates toward zero; negative capacities give 4.
        per_shard = max(int(capacity / SHARDS), MIN_SHARD)
        return SHARDS * per_shard


def _arg_err(token: Token) -> CorefileError:
    """CoreDNS's ``c.ArgErr()``: names the token the dispenser stopped on."""
    return token.error(
        f"Wrong argument count or unexpected line ending after '{token.text}'", plugin=NAME
    )


def _err(token: Token, message: str) -> CorefileError:
    return token.error(message, plugin=NAME)


def _atoi(token: Token) -> int:
    """Go ``strconv.Atoi`` with Go's error text."""
    text = token.text
    if not _GO_INT.match(text):
        raise _err(token, f'strconv.Atoi: parsing "{text}": invalid syntax')
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise _err(token, f'strconv.Atoi: parsing "{text}": value out of range')
    return value


def _duration(token: Token, prefix: str = "") -> float:
    try:
        return parse_duration(token.text)
    except ValueError as exc:
        raise _err(token, prefix + str(exc)) from None


def _origins(args: tuple[str, ...], ctx: SetupContext) -> tuple[str, ...]:
    """CoreDNS ``plugin.OriginsFromArgsOrServerBlock``: the zones named on the line
    (unusable ones silently skipped), else the server block's zones."""
    if not args:
        return tuple(ctx.zones)
    out: list[str] = []
    for arg in args:
        _, rest = split_transport(arg)
        try:
            hosts, _port = split_host_port(rest)
        except ValueError:
            continue
        out.extend(normalize_name(h) for h in hosts)
    return tuple(out)


def parse(directive: Directive, ctx: SetupContext) -> CacheConfig:
    """Read one ``cache`` directive; raise :class:`CorefileError` at the bad token."""
    cfg = CacheConfig()
    tokens = list(directive.arg_tokens)
    if tokens and _GO_INT.match(tokens[0].text):
        ttl = _atoi(tokens[0])
        # CoreDNS reserves 0 and below.
        if ttl <= 0:
            raise _err(tokens[0], f"cache TTL can not be zero or negative: {ttl}")
        cfg.success_ttl = cfg.denial_ttl = ttl
        tokens = tokens[1:]
    cfg.zones = _origins(tuple(t.text for t in tokens), ctx)

    stale_seen = False
    policy_seen = False
    for sub in directive.block or ():
        key = sub.name
        args = sub.arg_tokens
        last = args[-1] if args else sub.name_token
        if key in ("success", "denial"):
            if not args:
                raise _arg_err(last)
            capacity = _atoi(args[0])
            ttl_max = ttl_min = None
            if len(args) > 1:
                ttl_max = _atoi(args[1])
                if ttl_max <= 0:
                    raise _err(args[1], f"cache TTL can not be zero or negative: {ttl_max}")
                if len(args) > 2:
                    ttl_min = _atoi(args[2])
                    if ttl_min < 0:
                        raise _err(args[2], f"cache min TTL can not be negative: {ttl_min}")
            # CoreDNS ignores a fourth number.
            if key == "success":
                cfg.success_capacity = capacity
                if ttl_max is not None:
                    cfg.success_ttl = ttl_max
                if ttl_min is not None:
                    cfg.success_min_ttl = ttl_min
            else:
                cfg.denial_capacity = capacity
                if ttl_max is not None:
                    cfg.denial_ttl = ttl_max
                if ttl_min is not None:
                    cfg.denial_min_ttl = ttl_min
        elif key == "prefetch":
            if not args or len(args) > 3:
                raise _arg_err(last)
            amount = _atoi(args[0])
            if amount < 0:
                raise _err(args[0], f"prefetch amount should be positive: {amount}")
            cfg.prefetch = amount
            if len(args) > 1:
                cfg.prefetch_duration = _duration(args[1])
            if len(args) > 2:
                pct = args[2].text
                if not pct.endswith("%"):
                    raise _err(
                        args[2],
                        f"last character of percentage should be `%`, but is: '{pct[-1:]}'",
                    )
                num = _atoi(Token(pct[:-1], args[2].file, args[2].line))
                if num < 10 or num > 90:
                    raise _err(args[2], f"percentage should fall in range [10, 90]: {num}")
                cfg.prefetch_percentage = num
        elif key == "serve_stale":
            stale_seen = True
            _serve_stale(cfg, sub)
        elif key == "serve_stale_policy":
            if policy_seen:
                raise _err(sub.name_token, "serve_stale_policy can only be specified once")
            policy_seen = True
            if len(args) != 1:
                raise _arg_err(last)
            if args[0].text.lower() != "prefer_positive":
                raise _err(args[0], f"invalid serve_stale_policy: {args[0].text}")
            cfg.prefer_positive = True
        elif key == "servfail":
            if len(args) != 1:
                raise _arg_err(last)
            d = _duration(args[0])
            if d < 0:
                raise _err(args[0], "invalid negative ttl for servfail")
            if d > FIVE_MINUTES:
                raise _err(args[0], "caching SERVFAIL responses over 5 minutes is not permitted")
            cfg.servfail_ttl = d
        elif key == "disable":
            if not args:
                raise _arg_err(last)
            zones = tuple(normalize_name(t.text) for t in args[1:]) or (".",)
            kind = args[0].text
            if kind == "denial":
                cfg.denial_disabled = zones
            elif kind == "success":
                cfg.success_disabled = zones
            else:
                raise _err(args[0], 'cache type for disable must be "success" or "denial"')
        elif key == "keepttl":
            if args:
                raise _arg_err(last)
            cfg.keepttl = True
        else:
            raise _arg_err(sub.name_token)
    if policy_seen and not stale_seen:
        raise _err(directive.name_token, "serve_stale_policy requires serve_stale")
    return cfg


def _serve_stale(cfg: CacheConfig, sub: Directive) -> None:
    """``serve_stale [DURATION [immediate [RESPONSE_TTL [FAILURE_RECHECK]]
    | verify [VERIFY_TIMEOUT [RESPONSE_TTL [FAILURE_RECHECK]]]]]``"""
    args = sub.arg_tokens
    if len(args) > 5:
        raise _arg_err(args[-1])
    # Every serve_stale line starts from the defaults again, as in CoreDNS.
    cfg.stale_up_to = 3600.0
    cfg.stale_ttl = 0
    cfg.stale_recheck = 0.0
    cfg.verify_stale = False
    cfg.verify_timeout = 0.0
    if args:
        d = _duration(args[0])
        if d < 0:
            raise _err(args[0], "invalid negative duration for serve_stale")
        cfg.stale_up_to = d
    if len(args) > 1:
        mode = args[1].text.lower()
        if mode not in ("immediate", "verify"):
            raise _err(args[1], f"invalid value for serve_stale refresh mode: {mode}")
        cfg.verify_stale = mode == "verify"
    if len(args) > 2:
        rest = list(args[2:])
        if cfg.verify_stale:
            t = _duration(rest.pop(0), "invalid serve_stale verify timeout: ")
            if t < 0:
                raise _err(args[2], "invalid negative timeout for serve_stale verify")
            cfg.verify_timeout = t
        elif len(args) > 4:
            raise _arg_err(args[-1])
        if rest:
            cfg.stale_ttl = _stale_ttl(rest[0])
        if len(rest) > 1:
            cfg.stale_recheck = _stale_recheck(rest[1])


def _stale_ttl(token: Token) -> int:
    ttl = _duration(token, "invalid serve_stale response TTL: ")
    if ttl < 0:
        raise _err(token, "invalid negative response TTL for serve_stale")
    # Whole seconds only; compare in nanoseconds as Go does, so 1.5s is rejected
    # and 4294967295s is not lost to float rounding.
    nanos = round(ttl * 1e9)
    if nanos % 1_000_000_000:
        raise _err(token, "serve_stale response TTL must be a whole number of seconds")
    seconds = nanos // 1_000_000_000
    if seconds > MAX_UINT32:
        raise _err(token, "serve_stale response TTL exceeds the DNS TTL range")
    return seconds


def _stale_recheck(token: Token) -> float:
    recheck = _duration(token, "invalid serve_stale failure recheck: ")
    if recheck < 0:
        raise _err(token, "invalid negative failure recheck for serve_stale")
    if recheck > FIVE_MINUTES:
        raise _err(token, "serve_stale failure recheck cannot exceed 5 minutes")
    return recheck
