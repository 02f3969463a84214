"""CoreDNS's ``erratic``: a static answer that is sometimes dropped, delayed or truncated.

Useful to test clients (and pycorefile itself: graceful shutdown with queries in
flight, client retries). A and AAAA queries get 192.0.2.53 / 2001:db8::53 (RFC 5737,
RFC 3849); other types get SERVFAIL.
"""

from __future__ import annotations

import asyncio
import itertools

from dnslib import AAAA, RR, A

from pycorefile.chain import Next, Plugin, Reply, Request, SetupContext, to_loop
from pycorefile.corefile.model import Directive
from pycorefile.duration import parse_duration


class Erratic(Plugin):
    """Answers every query itself; every Nth query is dropped, delayed or truncated."""

    name = "erratic"

    def __init__(self, drop: int = 2, delay: int = 0, duration: float = 0.1,
                 truncate: int = 0, large: bool = False) -> None:
        self.drop = drop
        self.delay = delay
        self.duration = duration
        self.truncate = truncate
        self.large = large
        self._counter = itertools.count()

    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        if directive.args:
            raise directive.arg_error(cls.name)
        drop, delay, duration, truncate, large = 2, 0, 0.1, 0, False
        saw_drop = False
        for sub in directive.block or ():
            args = sub.args
            if sub.name == "drop":
                if len(args) > 1:
                    raise sub.arg_error(cls.name)
                if args:
                    drop = _amount(sub, args[0])
                    saw_drop = True
            elif sub.name == "delay":
                if len(args) > 2:
                    raise sub.arg_error(cls.name)
                delay, duration = 2, 0.1
                if args:
                    delay = _amount(sub, args[0])
                if len(args) > 1:
                    try:
                        duration = parse_duration(args[1])
                    except ValueError as exc:
                        raise sub.error(str(exc), plugin=cls.name) from None
            elif sub.name == "truncate":
                if len(args) > 1:
                    raise sub.arg_error(cls.name)
                truncate = _amount(sub, args[0]) if args else 2
            elif sub.name == "large":
                large = True
            else:
                raise sub.error(f"unknown property '{sub.name}'", plugin=cls.name)
        # As in CoreDNS: configuring delay or truncate without an explicit
        # "drop AMOUNT" turns the default dropping off.
        if (delay or truncate) and not saw_drop:
            drop = 0
        return cls(drop, delay, duration, truncate, large)

    async def serve(self, request: Request, next: Next) -> Reply:
        n = self._counter.__next__()  # query number, counted from 0
        drop = self.drop > 0 and n % self.drop == 0
        delay = self.delay > 0 and n % self.delay == 0
        trunc = self.truncate > 0 and n % self.truncate == 0
        if delay:
            await to_loop(request)
            await asyncio.sleep(self.duration)
        if drop:
            return Reply.drop()
        if request.qtype not in (1, 28):
            return Reply.fail(2)
        msg = request.reply(aa=True)
        if trunc:
            msg.header.tc = 1
        if request.qtype == 1:
            rr = RR(request.qname, 1, 1, 0, A("192.0.2.53"))
            for _ in range(30 if self.large else 1):
                msg.add_answer(rr)
        else:
            msg.add_answer(RR(request.qname, 28, 1, 0, AAAA("2001:db8::53")))
        return Reply.of(msg, self.name)


def _amount(sub: Directive, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise sub.error(f'strconv.ParseInt: parsing "{text}": invalid syntax', plugin="erratic") from None
    if value < 0:
        raise sub.error(f'illegal amount value given "{text}"', plugin="erratic")
    return value
