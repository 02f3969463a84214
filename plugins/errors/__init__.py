"""CoreDNS's ``errors``: log the errors returned by the plugins below it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import re2

from pycorefile.chain import Next, Plugin, Reply, Request, SetupContext
from pycorefile.corefile.model import Directive
from pycorefile.duration import format_duration, parse_duration

logger = logging.getLogger("pycorefile.plugins.errors")

MAX_REGEXP_LEN = 10000
LEVELS: dict[str, int] = {
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}


@dataclass
class Pattern:
    """``consolidate PERIOD REGEXP [LEVEL] [show_first]``: errors matching REGEXP are
    counted for PERIOD after the first one, then reported in one line."""

    period: float
    source: str
    regex: object
    level: int = logging.ERROR
    show_first: bool = False
    count: int = 0
    timer: threading.Timer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def flush(self) -> None:
        with self.lock:
            cnt, self.count = self.count, 0
            self.timer = None
        if cnt and (cnt > 1 or not self.show_first):
            logger.log(
                self.level,
                "%d errors like '%s' occurred in last %s",
                cnt, self.source, format_duration(self.period),
            )


class Errors(Plugin):
    """Logs ``RCODE QNAME QTYPE: ERROR`` for every error from below (CoreDNS
    format, logger ``pycorefile.plugins.errors``). The reply is not changed."""

    name = "errors"
    once = True

    def __init__(self, patterns: list[Pattern] | None = None, stacktrace: bool = False) -> None:
        self.patterns = patterns or []
        self.stacktrace = stacktrace
        self._stopped = False

    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        args = directive.args
        if len(args) > 1:
            raise directive.arg_error(cls.name)
        if args and args[0] != "stdout":
            raise directive.arg_tokens[0].error(f"invalid log file: {args[0]}", plugin=cls.name)
        patterns: list[Pattern] = []
        stacktrace = False
        for sub in directive.block or ():
            if sub.name == "stacktrace":
                stacktrace = True
            elif sub.name == "consolidate":
                patterns.append(_consolidate(sub))
            else:
                raise sub.error(f"Unknown field {sub.name}", plugin=cls.name, kind="syntax")
        return cls(patterns, stacktrace)

    async def serve(self, request: Request, next: Next) -> Reply:
        reply = await next(request)
        err = reply.error
        if err is not None:
            self.report(request, reply.rcode, err)
        return reply

    def report(self, request: Request, rcode: int, err: object) -> None:
        text = str(err)
        log: Callable[..., None] = logger.error
        level = logging.ERROR
        for p in self.patterns:
            if p.regex.search(text):  # type: ignore[attr-defined]
                if self._consolidate(p):
                    return
                level = p.level
                break
        log = logger.log  # type: ignore[assignment]
        log(level, "%d %s %s: %s", rcode, request.name, request.type_name, text)

    def _consolidate(self, p: Pattern) -> bool:
        """True when the error is swallowed into the pattern's count."""
        if self._stopped:
            return False
        with p.lock:
            p.count += 1
            first = p.count == 1
            if first:
                t = threading.Timer(p.period, p.flush)
                t.daemon = True
                p.timer = t
                t.start()
        if first:
            return not p.show_first
        return True

    async def stop(self) -> None:
        self._stopped = True
        for p in self.patterns:
            t = p.timer
            if t is not None:
                t.cancel()
                p.flush()


def _consolidate(sub: Directive) -> Pattern:
    args = sub.args
    if len(args) < 2 or len(args) > 4:
        raise sub.arg_error("errors")
    try:
        period = parse_duration(args[0])
    except ValueError as exc:
        raise sub.error(str(exc), plugin="errors") from None
    if len(args[1]) > MAX_REGEXP_LEN:
        raise sub.error(
            f"regex pattern too long: {len(args[1])} > {MAX_REGEXP_LEN}", plugin="errors"
        )
    try:
        regex = re2.compile(args[1])
    except re2.error as exc:
        raise sub.error(f"error parsing regexp: {exc}", plugin="errors") from None
    level: int | None = None
    show_first = False
    for arg in args[2:]:
        if arg in LEVELS:
            if level is not None:
                raise sub.error("multiple log levels specified in consolidate", plugin="errors")
            if show_first:
                raise sub.error("log level must come before show_first in consolidate", plugin="errors")
            level = LEVELS[arg]
        elif arg == "show_first":
            show_first = True
        else:
            raise sub.error(f"unknown option in consolidate: {arg}", plugin="errors")
    return Pattern(period, args[1], regex, level if level is not None else logging.ERROR, show_first)
