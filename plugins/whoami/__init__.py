"""CoreDNS's ``whoami``: tell the client its own address and port."""

from __future__ import annotations

import socket
import struct

from pycorefile import wire as w
from pycorefile.chain import Next, Plugin, Reply, Request

_RR = struct.Struct("!HHIH")          # type, class, TTL, RDLENGTH
_SRV_DATA = struct.Struct("!HHHB")    # priority, weight, port, target "." (one zero byte)
_PROTO_LABEL = {"udp": b"\x04_udp", "tcp": b"\x04_tcp"}


class Whoami(Plugin):
    """Answers every query (it never calls next) with the client's address.

    The reply is authoritative with an empty answer section; the additional
    section holds an A (IPv4 client) or AAAA (IPv6 client) record and an SRV record
    ``_udp.<qname>``/``_tcp.<qname>`` whose port is the client's source port. Both
    have TTL 0, the query's class, and the owner name as the client sent it.

    The reply is written as bytes, names uncompressed, the way CoreDNS sends a
    reply this small (miekg/dns compresses only what would not fit otherwise).
    """

    name = "whoami"

    async def serve(self, request: Request, next: Next) -> Reply:
        ip, port = request.client[0], request.client[1]
        if ":" in ip:
            rtype, addr = w.AAAA, socket.inet_pton(socket.AF_INET6, ip.split("%")[0])
        else:
            rtype, addr = w.A, socket.inet_aton(ip)
        owner = request.qwire
        cls = request.qclass
        flags = request.flags
        opcode = flags & w.OPCODE_MASK
        # miekg/dns SetReply: ID, QR, the opcode, RD and CD for QUERY; then aa=1.
        out = w.HEADER.pack(
            request.id, w.QR | w.AA | opcode | (0 if opcode else flags & (w.RD | w.CD)),
            1, 0, 0, 3 if request.edns else 2,
        )
        out += (
            request.wire[12 : request.qend]
            + owner + _RR.pack(rtype, cls, 0, len(addr)) + addr
            # "_udp." + the name; for the root that is "_udp." itself.
            + _PROTO_LABEL.get(request.proto, b"\x04_tcp") + owner
            + _RR.pack(w.SRV, cls, 0, _SRV_DATA.size) + _SRV_DATA.pack(0, 0, port, 0)
        )
        if request.edns:
            out += w.opt_record(request.udp_size, request.do)
        reply = Reply(0, wire=out, plugin=self.name)
        reply.final = True  # already shaped for this request; the server patches nothing
        return reply
