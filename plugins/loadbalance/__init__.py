"""CoreDNS's ``loadbalance``: shuffle A, AAAA and MX records in replies."""

from __future__ import annotations

import random
from typing import Any

from pycorefile.chain import Next, Plugin, Reply, Request, SetupContext
from pycorefile.corefile.model import Directive
from pycorefile.routing import copy_message

_ADDRESS = (1, 28)


def shuffle(records: list[Any]) -> list[Any]:
    """CoreDNS's round robin: CNAMEs first, then other records, then the shuffled
    addresses, then the shuffled MX records. The input list is not modified."""
    if len(records) <= 1:
        return records
    first = records[0].rtype
    if first in _ADDRESS and all(r.rtype == first for r in records):
        out = list(records)
        random.shuffle(out)
        return out
    cname = [r for r in records if r.rtype == 5]
    address = [r for r in records if r.rtype in _ADDRESS]
    mx = [r for r in records if r.rtype == 15]
    rest = [r for r in records if r.rtype not in (5, 15, 1, 28)]
    random.shuffle(address)
    random.shuffle(mx)
    return cname + rest + address + mx


class LoadBalance(Plugin):
    """Randomises the order of address and MX records in NOERROR replies from
    the plugins below it (answer, authority and additional sections)."""

    name = "loadbalance"

    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        args = directive.args
        if args and args[0] not in ("round_robin", "weighted"):
            raise directive.arg_tokens[0].error(f"unknown policy: {args[0]}", plugin=cls.name)
        if args and args[0] == "weighted":
            raise directive.arg_tokens[0].error(
                "the 'weighted' policy is not supported by pycorefile", plugin=cls.name
            )
        if len(args) > 1:
            raise directive.arg_error(cls.name)
        for sub in directive.block or ():
            if sub.name == "prefer":
                raise sub.error("'prefer' is not supported by pycorefile", plugin=cls.name)
            raise sub.error(f"unknown property '{sub.name}'", plugin=cls.name)
        return cls()

    async def serve(self, request: Request, next: Next) -> Reply:
        reply = await next(request)
        if not reply.written or reply.rcode != 0 or request.qtype in (251, 252):
            return reply
        msg = reply.message
        if len(msg.rr) <= 1 and len(msg.auth) <= 1 and len(msg.ar) <= 1:
            return reply
        out = copy_message(msg)
        out.rr = shuffle(out.rr)
        out.auth = shuffle(out.auth)
        out.ar = shuffle(out.ar)
        return Reply(reply.rcode, message=out, plugin=reply.plugin, cached=reply.cached)
