"""CoreDNS's ``log``: one line per query, in CoreDNS's formats."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pycorefile import wire as w
from pycorefile.chain import Next, Plugin, Reply, Request, SetupContext
from pycorefile.corefile.model import Directive
from pycorefile.response import CLASS_OF, typify
from pycorefile.routing import bare_reply

logger = logging.getLogger("pycorefile.plugins.log")

EMPTY = "-"
COMMON = (
    '{remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" '
    "{rcode} {>rflags} {rsize} {duration}"
)
COMBINED = COMMON + ' "{>opcode}"'
CLASSES = ("all", "success", "denial", "error")

_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def _flags(bits: int) -> str:
    out = []
    for bit, name in ((w.QR, "qr"), (w.AA, "aa"), (w.TC, "tc"), (w.RD, "rd"), (w.RA, "ra"),
                      (0x0040, "z"), (w.AD, "ad"), (w.CD, "cd")):
        if bits & bit:
            out.append(name)
    return ",".join(out)


def _addr(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


@dataclass
class _Result:
    rcode: int
    flags: int
    size: int
    seconds: float


Field = Callable[[Request, _Result], str]

FIELDS: dict[str, Field] = {
    "{type}": lambda q, r: q.type_name,
    "{name}": lambda q, r: q.name,
    "{class}": lambda q, r: q.class_name,
    "{proto}": lambda q, r: q.proto,
    "{size}": lambda q, r: str(len(q.wire)),
    "{remote}": lambda q, r: _addr(q.client[0]),
    "{port}": lambda q, r: str(q.client[1]),
    "{local}": lambda q, r: _addr(q.local[0]) if q.local[0] else EMPTY,
    "{>id}": lambda q, r: str(q.id),
    "{>opcode}": lambda q, r: str(q.opcode),
    "{>do}": lambda q, r: "true" if q.do else "false",
    "{>bufsize}": lambda q, r: str(65535 if q.proto == "tcp" else q.udp_size),
    "{rcode}": lambda q, r: w.rcode_name(r.rcode) if not w.rcode_name(r.rcode).startswith("RCODE") else str(r.rcode),
    "{rsize}": lambda q, r: str(r.size),
    "{duration}": lambda q, r: _seconds(r.seconds),
    "{>rflags}": lambda q, r: _flags(r.flags),
}


def _seconds(s: float) -> str:
    # Go: strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s" at nanosecond precision.
    text = f"{round(s, 9):.9f}".rstrip("0").rstrip(".")
    return (text or "0") + "s"


def _meta_field(key: str) -> Field:
    def field(q: Request, r: _Result) -> str:
        return (q.meta or {}).get(key, EMPTY)

    return field


def compile_format(fmt: str) -> Callable[[Request, _Result], str]:
    """Pre-split a format into literals and field functions (done once at setup)."""
    parts: list[str | Field] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(fmt):
        if m.start() > pos:
            parts.append(fmt[pos : m.start()])
        token = m.group(0)
        lower = token.lower() if token.startswith("{>") else token
        if lower in FIELDS:
            parts.append(FIELDS[lower])
        elif token.startswith("{/"):
            key = token[2:-1]
            parts.append(_meta_field(key))
        else:
            parts.append(EMPTY)
        pos = m.end()
    if pos < len(fmt):
        parts.append(fmt[pos:])

    def render(q: Request, r: _Result) -> str:
        return "".join(p if isinstance(p, str) else p(q, r) for p in parts)

    return render


@dataclass
class Rule:
    scope: str
    format: str
    classes: frozenset[str]
    render: Callable[[Request, _Result], str]

    def matches(self, name: str) -> bool:
        return self.scope == "." or name == self.scope or name.endswith("." + self.scope)


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


class Log(Plugin):
    """Logs each query and its reply at INFO level to the ``pycorefile.plugins.log``
    logger (the CLI sends it to stdout as ``[INFO] ...``)."""

    name = "log"

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)

    @classmethod
    def setup_all(cls, directives: Sequence[Directive], ctx: SetupContext) -> list[Plugin]:
        rules: list[Rule] = []
        for d in directives:
            args = list(d.args)
            new: list[tuple[str, str]] = []
            if not args:
                new.append((".", COMMON))
            elif len(args) == 1:
                # CoreDNS: a single argument is always a name scope.
                new.append((_fqdn(args[0].lower()), COMMON))
            else:
                fmt = COMMON
                if "{" in args[-1]:
                    fmt = args.pop().replace("{common}", COMMON).replace("{combined}", COMBINED)
                new.extend((_fqdn(a.lower()), fmt) for a in args)
            classes: set[str] = set()
            for sub in d.block or ():
                if sub.name != "class":
                    raise sub.error(f"unknown property '{sub.name}'", plugin=cls.name)
                if not sub.args:
                    raise sub.arg_error(cls.name)
                for c in sub.args:
                    if c.lower() not in CLASSES:
                        raise sub.error(f"invalid class {c!r}", plugin=cls.name)
                    classes.add(c.lower())
            chosen = frozenset(classes or {"all"})
            for scope, fmt in new:
                rules.append(Rule(scope, fmt, chosen, compile_format(fmt)))
        return [cls(rules)]

    async def serve(self, request: Request, next: Next) -> Reply:
        name = request.name
        for rule in self.rules:
            if not rule.matches(name):
                continue
            start = time.perf_counter()
            reply = await next(request)
            took = time.perf_counter() - start
            if reply.written:
                msg = reply.message
                flags = msg.header.bitmap
                size = len(reply.wire)
                kind = CLASS_OF[typify(msg)]
                rcode = reply.rcode
            else:
                bare = bare_reply(request, reply.rcode)
                flags = w.HEADER.unpack_from(bare)[1]
                size = len(bare)
                rcode = reply.rcode
                kind = "error" if rcode not in (0, 3) else ("denial" if rcode == 3 else "success")
            if "all" in rule.classes or kind in rule.classes:
                logger.info(rule.render(request, _Result(rcode, flags, size, took)))
            return reply
        return await next(request)
