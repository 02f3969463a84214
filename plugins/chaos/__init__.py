"""CoreDNS's ``chaos``: answer ``version.bind``/``authors.bind``/``hostname.bind`` CH TXT."""

from __future__ import annotations

import random
import socket

from dnslib import RR, TXT

from pycorefile import __version__
from pycorefile.chain import Next, Plugin, Reply, Request, SetupContext
from pycorefile.corefile.model import Directive

AUTHORS = ("pycorefile authors",)
CH = 3


def _trim(text: str) -> str:
    return text[:255]


class Chaos(Plugin):
    """CH-class TXT answers about the server; everything else passes on.

    ``chaos`` also lets non-IN classes reach the block's chain at all (like
    ``forward``): without it the server refuses them.
    """

    name = "chaos"
    enables_chaos = True

    def __init__(self, version: str, authors: tuple[str, ...]) -> None:
        self.version = version
        self.authors = authors

    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        args = directive.args
        if directive.block:
            sub = directive.block[0]
            raise sub.error(f"unknown property '{sub.name}'", plugin=cls.name)
        authors: tuple[str, ...] = AUTHORS
        if not args:
            version = _trim(f"pycorefile-{__version__}")
        elif len(args) == 1:
            version = _trim(args[0])
        else:
            version = args[0]
            authors = tuple(sorted({_trim(a) for a in args[1:]}))
        return cls(version, authors)

    async def serve(self, request: Request, next: Next) -> Reply:
        if request.qclass != CH or request.qtype != 16:
            return await next(request)
        name = request.name
        if name == "authors.bind.":
            texts = random.sample(self.authors, len(self.authors))
        elif name in ("version.bind.", "version.server."):
            texts = [self.version]
        elif name in ("hostname.bind.", "id.server."):
            texts = [_trim(socket.gethostname() or "localhost")]
        else:
            return await next(request)
        msg = request.reply(aa=False)
        for text in texts:
            msg.add_answer(RR(request.qname, 16, CH, 0, TXT(text)))
        return Reply.of(msg, self.name)
