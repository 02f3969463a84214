"""CoreDNS's ``any``: answer ANY queries with an RFC 8482 HINFO record."""

from __future__ import annotations

from dnslib import RD, RR

from pycorefile.chain import Next, Plugin, Reply, Request


def _character_string(text: str) -> bytes:
    data = text.encode()
    return bytes([len(data)]) + data


# dnslib has no HINFO type: its RDATA is two <character-string>s (RFC 1035 §3.3.2).
HINFO_RDATA = _character_string("ANY obsoleted") + _character_string("See RFC 8482")


class Any(Plugin):
    """ANY queries get ``HINFO "ANY obsoleted" "See RFC 8482"`` (TTL 8482);
    other types pass on."""

    name = "any"

    async def serve(self, request: Request, next: Next) -> Reply:
        if request.qtype != 255:
            return await next(request)
        msg = request.reply(aa=False)
        msg.add_answer(RR(request.qname, 13, 1, 8482, RD(HINFO_RDATA)))
        return Reply.of(msg, self.name)
