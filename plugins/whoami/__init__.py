"""CoreDNS's ``whoami``: tell the client its own address and port."""

from __future__ import annotations

from dnslib import AAAA, RR, SRV, A, DNSLabel

from pycorefile.chain import Next, Plugin, Reply, Request


class Whoami(Plugin):
    """Answers every query (it never calls next) with the client's address.

    The reply is authoritative with an empty answer section; the additional
    section holds an A (IPv4 client) or AAAA (IPv6 client) record and an SRV record
    ``_udp.<qname>``/``_tcp.<qname>`` whose port is the client's source port. Both
    have TTL 0, the query's class, and the owner name as the client sent it.
    """

    name = "whoami"

    async def serve(self, request: Request, next: Next) -> Reply:
        msg = request.reply(aa=True)
        ip, port = request.client[0], request.client[1]
        qname = request.qname
        cls = request.qclass
        if ":" in ip:
            msg.add_ar(RR(qname, 28, cls, 0, AAAA(ip.split("%")[0])))
        else:
            msg.add_ar(RR(qname, 1, cls, 0, A(ip)))
        srv_owner = f"_{request.proto}." + ("" if qname == "." else qname)
        msg.add_ar(RR(DNSLabel(srv_owner), 33, cls, 0, SRV(0, 0, port, ".")))
        return Reply.of(msg, self.name)
