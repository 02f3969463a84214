"""The template plugin over real sockets: a server in a thread, dnspython as the client.

The talk's node-local example (spec §5) is served on 127.0.0.1 with a kernel-chosen
port and queried over UDP and TCP, plus the reply details that only show on the
wire: EDNS and the Extended DNS Error option, truncation, CNAME chasing through the
server and the client's question case.
"""

from __future__ import annotations

from collections.abc import Iterator

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

import pycorefile

pytestmark = pytest.mark.integration

NODE_LOCAL = """\
api.custom-dns.local:0 {
    bind 127.0.0.1
    template IN A api.custom-dns.local {
        answer "{{ .Name }} 30 IN A 127.0.0.1"
    }
}
apps.custom-dns.local:0 {
    bind 127.0.0.1
    template IN A apps.custom-dns.local {
        match .*\\.apps\\.custom-dns\\.local
        answer "{{ .Name }} 30 IN A 127.0.0.1"
    }
}
example.:0 {
    bind 127.0.0.1
    # First matching template wins: the more specific one goes first.
    template ANY ANY invalid.example {
        rcode NXDOMAIN
        authority "invalid.example. 60 {{ .Class }} SOA ns.invalid.example. hostmaster.invalid.example. (1 60 60 60 60)"
        ederror 21 "Blocked according to RFC2606"
    }
    template IN A example {
        answer "{{ .Name }} 60 IN A 192.0.2.10"
    }
    template IN TXT big.example {
        answer "{{ .Name }} 60 IN TXT \\"{{ .Name }}-0-0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\\""
        answer "{{ .Name }} 60 IN TXT \\"{{ .Name }}-1-0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\\""
        answer "{{ .Name }} 60 IN TXT \\"{{ .Name }}-2-0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\\""
        answer "{{ .Name }} 60 IN TXT \\"{{ .Name }}-3-0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\\""
        answer "{{ .Name }} 60 IN TXT \\"{{ .Name }}-4-0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\\""
    }
    template IN TXT who.example {
        answer "{{ .Name }} 0 IN TXT \\"{{ .Remote }}\\""
    }
}
alias.test:0 {
    bind 127.0.0.1
    template IN ANY alias.test {
        answer "{{ .Name }} 60 IN CNAME target.example."
    }
}
"""


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    with pycorefile.serve(NODE_LOCAL) as srv:
        yield srv.host, srv.port


def ask(
    server: tuple[str, int], name: str, rdtype: str = "A", *, tcp: bool = False, **kw: object
) -> dns.message.Message:
    host, port = server
    query = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    if tcp:
        return dns.query.tcp(query, host, port=port, timeout=5)
    return dns.query.udp(query, host, port=port, timeout=5)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize(
    "name",
    [
        "api.custom-dns.local.",
        "x.api.custom-dns.local.",
        "x.apps.custom-dns.local.",
        "Web.Apps.Custom-DNS.local.",
    ],
)
def test_node_local_answers(server: tuple[str, int], name: str, tcp: bool) -> None:
    for _ in range(2):  # first rendered, then from the memo
        reply = ask(server, name, tcp=tcp)
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.flags & dns.flags.AA
        assert not reply.flags & dns.flags.RA
        assert reply.question[0].name.to_text() == name  # case as sent
        (rrset,) = reply.answer
        assert rrset.name.to_text() == name.lower()
        assert rrset.ttl == 30
        assert [r.to_text() for r in rrset] == ["127.0.0.1"]


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize(
    ("name", "rdtype"),
    [
        ("apps.custom-dns.local.", "A"),
        ("api.custom-dns.local.", "AAAA"),
        ("x.apps.custom-dns.local.", "AAAA"),
        ("api.custom-dns.local.", "MX"),
    ],
)
def test_node_local_servfail(server: tuple[str, int], name: str, rdtype: str, tcp: bool) -> None:
    reply = ask(server, name, rdtype, tcp=tcp)
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert not reply.flags & dns.flags.AA
    assert not reply.answer and not reply.authority


def test_unknown_zone_is_refused(server: tuple[str, int]) -> None:
    assert ask(server, "other.invalid.").rcode() == dns.rcode.REFUSED


def test_edns_and_extended_error(server: tuple[str, int]) -> None:
    reply = ask(server, "x.invalid.example.", "A", use_edns=0, payload=1232, want_dnssec=True)
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.flags & dns.flags.AA
    assert reply.edns == 0 and reply.payload == 1232 and reply.ednsflags & dns.flags.DO
    (ede,) = [o for o in reply.options if o.otype == dns.edns.EDE]
    assert ede.code == 21 and ede.text == "Blocked according to RFC2606"
    (soa,) = reply.authority
    assert soa.rdtype == dns.rdatatype.SOA and soa.ttl == 60


def test_extended_error_without_edns_in_the_query(server: tuple[str, int]) -> None:
    # As CoreDNS: the reply's own OPT record (4096, DO) is kept for a client that sent
    # none, so the Extended DNS Error still reaches it.
    reply = ask(server, "y.invalid.example.", "A")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.edns == 0 and reply.payload == 4096
    assert [(o.otype, o.code) for o in reply.options] == [(dns.edns.EDE, 21)]


def test_edns_payload_follows_the_client(server: tuple[str, int]) -> None:
    for payload in (1232, 4096, 1232):
        reply = ask(server, "api.custom-dns.local.", use_edns=0, payload=payload)
        assert reply.payload == payload and not reply.ednsflags & dns.flags.DO
    assert ask(server, "api.custom-dns.local.").edns == -1


def test_truncation_udp_then_tcp(server: tuple[str, int]) -> None:
    udp = ask(server, "big.example.", "TXT")
    assert udp.flags & dns.flags.TC
    tcp = ask(server, "big.example.", "TXT", tcp=True)
    assert not tcp.flags & dns.flags.TC
    assert len(tcp.answer[0]) == 5
    big = ask(server, "big.example.", "TXT", use_edns=0, payload=4096)
    assert not big.flags & dns.flags.TC and len(big.answer[0]) == 5


def test_cname_chased_through_the_server(server: tuple[str, int]) -> None:
    # alias.test and example. are different blocks on the same listener.
    reply = ask(server, "alias.test.", "A")
    assert reply.rcode() == dns.rcode.NOERROR
    assert [(r.rdtype, r[0].to_text()) for r in reply.answer] == [
        (dns.rdatatype.CNAME, "target.example."),
        (dns.rdatatype.A, "192.0.2.10"),
    ]
    reply = ask(server, "alias.test.", "TXT")
    assert [r.rdtype for r in reply.answer] == [dns.rdatatype.CNAME]


def test_remote_is_the_client_address(server: tuple[str, int]) -> None:
    for tcp in (False, True):
        reply = ask(server, "who.example.", "TXT", tcp=tcp)
        assert reply.answer[0][0].strings == (b"127.0.0.1",)


def test_message_id_is_echoed(server: tuple[str, int]) -> None:
    host, port = server
    for qid in (1, 2, 65535):
        query = dns.message.make_query("api.custom-dns.local.", "A")
        query.id = qid
        assert dns.query.udp(query, host, port=port, timeout=5).id == qid
