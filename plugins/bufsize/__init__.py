"""CoreDNS's ``bufsize``: cap the EDNS0 UDP buffer size of requests."""

from __future__ import annotations

from pycorefile import wire as w
from pycorefile.chain import Next, Plugin, Reply, Request, SetupContext
from pycorefile.corefile.model import Directive

DEFAULT = 1232  # DNS flag day 2020


class Bufsize(Plugin):
    """Requests advertising a larger EDNS0 buffer are rewritten to SIZE before the
    plugins below see them (forward passes it upstream) and the reply is sized to
    it too (DNS flag day 2020: avoid IP fragmentation)."""

    name = "bufsize"

    def __init__(self, size: int) -> None:
        self.size = size

    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        args = directive.args
        if len(args) > 1:
            raise directive.arg_error(cls.name)
        if not args:
            return cls(DEFAULT)
        try:
            size = int(args[0])
        except ValueError:
            raise directive.arg_error(cls.name) from None
        if not 512 <= size <= 4096:  # RFC 6891
            raise directive.arg_error(cls.name)
        return cls(size)

    async def serve(self, request: Request, next: Next) -> Reply:
        if request.edns and request.udp_size > self.size:
            request.wire = set_opt_size(request.wire, request.qend, self.size)
            request.udp_size = self.size
            request._message = None
        return await next(request)


def set_opt_size(data: bytes, start: int, size: int) -> bytes:
    """A copy of ``data`` whose OPT record advertises ``size``."""
    pos = start
    an, ns, ar = w.HEADER.unpack_from(data)[3:]
    out = bytearray(data)
    for _ in range(an + ns + ar):
        pos, _ = w.read_name(data, pos)
        rtype = w.U16.unpack_from(data, pos)[0]
        if rtype == w.OPT:
            w.U16.pack_into(out, pos + 2, size)
        rdlen = w.U16.unpack_from(data, pos + 8)[0]
        pos += 10 + rdlen
    return bytes(out)
