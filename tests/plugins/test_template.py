"""The template plugin: CoreDNS's setup and handler cases, plus pycorefile's own.

Tables follow CoreDNS's ``plugin/template/setup_test.go``, ``template_test.go`` and
``cname_test.go``; the rest covers setup errors with their positions, Go template
semantics through the plugin, metrics and the memoised hot path.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from dnslib import QTYPE, RR, TXT, DNSRecord

import pycorefile
from pycorefile import wire as w
from pycorefile.chain import Plugin, Reply, Request, SetupContext
from pycorefile.corefile import parse
from pycorefile.fall import Fallthrough, is_subdomain, longest_zone, normalize_zones
from pycorefile.plugins.template import Template
from pycorefile.plugins.template.setup import depends_on_question_only
from pycorefile.registry import Registry, default_registry
from pycorefile.zonetext import ZoneTextError, parse_rr

IP_REGEX = r"(^|[.])ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$"
IP_ANSWER = "{{ .Name }} 60 IN A 10.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"


# ---------------------------------------------------------------------------------------------
# Helpers


class Marker(Plugin):
    """The next plugin in handler tests: a TXT "fallthrough" answer."""

    name = "tplmarker"
    after = "template"

    async def serve(self, request: Request, next: Any) -> Reply:
        msg = request.reply(aa=False)
        msg.add_answer(RR(request.qname, QTYPE.TXT, request.qclass, 0, TXT("fallthrough")))
        return Reply.of(msg, self.name)


class Upstub(Plugin):
    """Answers ``test.up.`` A with TC set (CoreDNS's cname_test Upstub)."""

    name = "tplupstub"
    after = "template"

    async def serve(self, request: Request, next: Any) -> Reply:
        if request.name != "test.up." or request.qtype != 1:
            return await next(request)
        msg = request.reply(aa=True)
        msg.header.tc = 1
        msg.add_answer(*RR.fromZone("test.up. 600 IN A 1.2.3.4"))
        return Reply.of(msg, self.name)


def registry() -> Registry:
    reg = Registry()
    reg.register(Marker)
    reg.register(Upstub)
    return reg


def resolver(text: str) -> pycorefile.Resolver:
    reg = registry()
    return pycorefile.Resolver.from_corefile(pycorefile.loads(text, registry=reg), registry=reg)


def handler(stanzas: str, keys: str = ".") -> Template:
    """A Template built from ``template`` lines, as in a block with ``keys``."""
    cf = parse(f"{keys} {{\n{stanzas}\n}}\n")
    block = cf.blocks[0]
    ctx = SetupContext(block=block, registry=default_registry())
    plugin = Template.setup_all(block.directives_named("template"), ctx)[0]
    assert isinstance(plugin, Template)
    return plugin


NEXT = Reply.fail(3841, "next plugin")  # CoreDNS's rcodeFallthrough marker


def serve(
    plugin: Template,
    qname: str,
    qtype: str | int = "A",
    qclass: str | int = "IN",
    *,
    client: tuple[str, int] = ("127.0.0.1", 5300),
    meta: dict[str, str] | None = None,
    edns: int | None = None,
    do: bool = False,
) -> Reply:
    """Handler-level call (CoreDNS's ``handler.ServeDNS`` with a recorder)."""
    wire = w.build_query(
        qname, w.qtype_code(qtype), w.qclass_code(qclass), qid=4242, edns_size=edns, do=do
    )
    req = Request.from_wire(wire, client)
    req.server = "dns://:53"
    req.meta = meta

    async def nxt(_: Request) -> Reply:
        return NEXT

    coro = plugin.serve(req, nxt)
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    raise AssertionError("the template handler awaited")


def load_error(text: str) -> pycorefile.CorefileError:
    with pytest.raises(pycorefile.CorefileError) as info:
        pycorefile.loads(text)
    return info.value


# ---------------------------------------------------------------------------------------------
# Setup: CoreDNS's TestSetupParse (block keys domain.com.:8053 dynamic.domain.com.:8053)

SETUP_CASES: list[tuple[str, bool]] = [
    ("template", True),
    ("template X", True),
    ("template ANY", True),
    ("template ANY X", True),
    ("template ANY ANY .* {\n notavailable\n}", True),
    ("template ANY ANY {\n answer\n}", True),
    ("template ANY ANY {\n additional\n}", True),
    ("template ANY ANY {\n rcode\n}", True),
    ("template ANY ANY {\n rcode UNDEFINED\n}", True),
    ('template ANY ANY {\n answer\t"{{"\n}', True),
    ('template ANY ANY {\n additional "{{"\n}', True),
    ('template ANY ANY {\n authority "{{"\n}', True),
    ('template ANY ANY {\n answer "{{ notAFunction }}"\n}', True),
    (
        'template ANY ANY {\n answer "{{ parseInt }}"\n additional "{{ parseInt }}"\n'
        ' authority "{{ parseInt }}"\n}',
        False,
    ),
    ("template ANY ANY (?P<x>", False),
    ("template ANY ANY {\n\n}", False),
    (
        "template ANY A example.com {\n"
        " match ip-(?P<a>[0-9]*)-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]com\n"
        ' answer "{{ .Name }} A {{ .Group.a }}.{{ .Group.b }}.{{ .Group.c }}.{{ .Grup.d }}."\n'
        " fallthrough\n}",
        False,
    ),
    (
        "template ANY AAAA example.com {\n"
        " match ip-(?P<a>[0-9]*)-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]com\n"
        ' authority "example.com 60 IN SOA ns.example.com hostmaster.example.com (1 60 60 60 60)"\n'
        " fallthrough\n}",
        False,
    ),
    (
        "template IN ANY example.com {\n"
        ' match "[.](example[.]com[.]dc1[.]example[.]com[.])$"\n'
        " rcode NXDOMAIN\n"
        ' authority "{{ index .Match 1 }} 60 IN SOA ns.{{ index .Match 1 }} hostmaster.example.com'
        ' (1 60 60 60 60)"\n'
        " fallthrough example.com\n}",
        False,
    ),
    (
        "template IN A example {\n"
        " match ^ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$\n"
        f' answer "{IP_ANSWER}"\n'
        "}\n"
        "template IN MX example. {\n"
        " match ^ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$\n"
        ' answer "{{ .Name }} 60 IN MX 10 {{ .Name }}"\n'
        f' additional "{IP_ANSWER}"\n'
        "}",
        False,
    ),
    (
        "template IN A example {\n"
        " match ^ip0a(?P<b>[a-f0-9]{2})(?P<c>[a-f0-9]{2})(?P<d>[a-f0-9]{2})[.]example[.]$\n"
        ' answer "{{ .Name }} 3600 IN A 10.{{ parseInt .Group.b 16 8 }}.'
        '{{ parseInt .Group.c 16 8 }}.{{ parseInt .Group.d 16 8 }}"\n'
        "}",
        False,
    ),
    (
        "template IN MX example {\n"
        " match ^ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$\n"
        ' answer "{{ .Name }} 60 IN MX 10 {{ .Name }}"\n'
        f' additional "{IP_ANSWER}"\n'
        ' authority  "example. 60 IN NS ns0.example."\n'
        ' authority  "example. 60 IN NS ns1.example."\n'
        ' additional "ns0.example. 60 IN A 203.0.113.8"\n'
        ' additional "ns1.example. 60 IN A 198.51.100.8"\n'
        "}",
        False,
    ),
    (
        "template ANY ANY invalid {\n rcode NXDOMAIN\n"
        ' authority "invalid. 60 {{ .Class }} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)"\n'
        ' ederror 21 "Blocked according to RFC2606"\n}',
        False,
    ),
    (
        "template ANY ANY invalid {\n rcode NXDOMAIN\n"
        ' authority "invalid. 60 {{ .Class }} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)"\n'
        ' ederror invalid "Blocked according to RFC2606"\n}',
        True,
    ),
    (
        "template ANY ANY invalid {\n rcode NXDOMAIN\n"
        ' authority "invalid. 60 {{ .Class }} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)"\n'
        " ederror too many arguments\n}",
        True,
    ),
    (f"template ANY A example.com {{\n match {'a' * 10001}\n}}", True),
]


@pytest.mark.parametrize(("stanzas", "should_err"), SETUP_CASES)
def test_setup_parse(stanzas: str, should_err: bool) -> None:
    text = f"domain.com.:8053 dynamic.domain.com.:8053 {{\n{stanzas}\n}}\n"
    if should_err:
        err = load_error(text)
        assert str(err).startswith("plugin/template: Corefile:")
    else:
        pycorefile.loads(text)


def test_setup_large_regex_says_too_long() -> None:
    err = load_error(
        f"example.com {{\ntemplate ANY A example.com {{\n match {'a' * 10001}\n}}\n}}\n"
    )
    assert "too long" in str(err)
    assert str(err) == (
        "plugin/template: Corefile:3 - Error during parsing: regex pattern too long: 10001 > 10000"
    )


def test_setup_rcode_then_setup_ok() -> None:
    # CoreDNS's TestSetup: a broken then a fixed template.
    load_error(". {\ntemplate ANY ANY {\n rcode\n}\n}\n")
    pycorefile.loads(". {\ntemplate ANY ANY {\n rcode NXDOMAIN\n}\n}\n")


# Every setup error of spec §3.1, with CoreDNS's text and the line it is reported on.
SETUP_ERRORS: list[tuple[str, int, str]] = [
    ("template", 2, "Wrong argument count or unexpected line ending after 'template'"),
    ("template IN", 2, "Wrong argument count or unexpected line ending after 'IN'"),
    ("template in A", 2, "invalid query class in"),
    ("template XX A", 2, "invalid query class XX"),
    ("template IN a", 2, "invalid RR class a"),
    ("template IN TYPE65", 2, "invalid RR class TYPE65"),
    (
        "template IN A {\n  notavailable x\n}",
        3,
        "Wrong argument count or unexpected line ending after 'notavailable'",
    ),
    (
        "template IN A {\n  answer\n}",
        3,
        "Wrong argument count or unexpected line ending after 'answer'",
    ),
    (
        "template IN A {\n  additional\n}",
        3,
        "Wrong argument count or unexpected line ending after 'additional'",
    ),
    (
        "template IN A {\n  authority\n}",
        3,
        "Wrong argument count or unexpected line ending after 'authority'",
    ),
    (
        "template IN A {\n  match\n}",
        3,
        "Wrong argument count or unexpected line ending after 'match'",
    ),
    (
        "template IN A {\n  rcode\n}",
        3,
        "Wrong argument count or unexpected line ending after 'rcode'",
    ),
    ("template IN A {\n  rcode UNDEFINED\n}", 3, "unknown rcode UNDEFINED"),
    ("template IN A {\n  rcode SUCCESS\n}", 3, "unknown rcode SUCCESS"),
    ("template IN A {\n  rcode nxdomain\n}", 3, "unknown rcode nxdomain"),
    (
        "template IN A {\n  rcode NXDOMAIN extra\n}",
        3,
        "Wrong argument count or unexpected line ending after 'extra'",
    ),
    (
        'template IN A {\n\n  answer "{{"\n}',
        4,
        "could not compile template: {{, template: answer:1: unclosed action",
    ),
    (
        'template IN A {\n  additional "{{"\n}',
        3,
        "could not compile template: {{, template: additional:1: unclosed action",
    ),
    (
        'template IN A {\n  authority "{{"\n}',
        3,
        "could not compile template: {{, template: authority:1: unclosed action",
    ),
    (
        'template IN A {\n  answer "{{ notAFunction }}" "last"\n}',
        3,
        'could not compile template: last, template: answer:1: function "notAFunction" not defined',
    ),
    (
        'template IN A {\n  match "(?P<x>"\n}',
        3,
        "could not parse regex: (?P<x>, error parsing regexp: missing closing ): `(?P<x>`",
    ),
    (
        "template IN A {\n  match ok [z-a]\n}",
        3,
        "could not parse regex: [z-a], error parsing regexp: invalid character class range: `z-a`",
    ),
    (
        "template IN A {\n  match a**\n}",
        3,
        "could not parse regex: a**, error parsing regexp: invalid nested repetition operator: `**`",
    ),
    (
        "template IN A {\n  match (?=x)\n}",
        3,
        "could not parse regex: (?=x), error parsing regexp: invalid or unsupported Perl syntax: `(?=`",
    ),
    (
        "template IN A {\n  match a\\C\n}",
        3,
        "could not parse regex: a\\C, error parsing regexp: invalid escape sequence: `\\C`",
    ),
    (f"template IN A {{\n  match {'x' * 10001}\n}}", 3, "regex pattern too long: 10001 > 10000"),
    (
        "template IN A {\n  ederror\n}",
        3,
        "Wrong argument count or unexpected line ending after 'ederror'",
    ),
    (
        "template IN A {\n  ederror 1 2 3\n}",
        3,
        "Wrong argument count or unexpected line ending after '3'",
    ),
    (
        'template IN A {\n  ederror invalid "the reason"\n}',
        3,
        'error parsing extended DNS error code the reason, strconv.ParseUint: parsing "invalid": invalid syntax',
    ),
    (
        "template IN A {\n  ederror 70000\n}",
        3,
        'error parsing extended DNS error code 70000, strconv.ParseUint: parsing "70000": value out of range',
    ),
    ("template IN A {\n  var a 1\n}", 3, "'var' is not supported by pycorefile"),
    ("template IN A {\n  expr name() == 'a.'\n}", 3, "'expr' is not supported by pycorefile"),
    ("template IN A\n{\n  answer x\n}", 3, "Unexpected token '{', expecting argument"),
    (
        'template IN A {\n  answer "a. A 1.2.3.4" {\n  }\n}',
        3,
        "Unexpected token '{', expecting argument",
    ),
]


@pytest.mark.parametrize(("stanzas", "line", "message"), SETUP_ERRORS)
def test_setup_errors_at_file_line(stanzas: str, line: int, message: str) -> None:
    err = load_error(f"example.org {{\n{stanzas}\n}}\n")
    assert str(err).startswith(
        f"plugin/template: Corefile:{line} - Error during parsing: {message}"
    ), str(err)
    assert err.line == line
    assert err.plugin == "template"


def test_setup_error_in_a_later_stanza_points_at_it() -> None:
    text = (
        "example.org {\n"
        "    template IN A {\n"
        '        answer "{{ .Name }} 60 A 127.0.0.1"\n'
        "    }\n"
        "    template IN AAAA {\n"
        "        rcode NOPE\n"
        "    }\n"
        "}\n"
    )
    err = load_error(text)
    assert str(err) == "plugin/template: Corefile:6 - Error during parsing: unknown rcode NOPE"


def test_setup_stanzas_form_one_handler_in_corefile_order() -> None:
    text = (
        "example.org:1053 {\n"
        "    template IN A example.org {\n"
        '        answer "{{ .Name }} 1 A 10.0.0.1"\n'
        "    }\n"
        "    whoami\n"
        "    template IN AAAA {\n"
        "        rcode NXDOMAIN\n"
        "    }\n"
        "    template IN A sub.example.org {\n"
        '        answer "{{ .Name }} 2 A 10.0.0.2"\n'
        "    }\n"
        "}\n"
    )
    r = pycorefile.Resolver.from_corefile(text)
    templates = [p for c in r.engine.chains for p in c.plugins if isinstance(p, Template)]
    assert len(templates) == 1
    rules = templates[0].rules
    assert [(x.qtype, x.zones) for x in rules] == [
        (1, ("example.org.",)),
        (28, ("example.org.",)),
        (1, ("sub.example.org.",)),
    ]
    # First matching stanza wins: the first (zone example.org) answers sub.example.org too.
    reply = r.resolve("a.sub.example.org", "A")
    assert [rr.ttl for rr in reply.rr] == [1]


def test_setup_dispenser_reads_like_coredns() -> None:
    # `rcode NXDOMAIN fallthrough` on one line: an rcode, then a fallthrough option.
    plugin = handler("template IN A {\n rcode NXDOMAIN fallthrough\n}")
    assert plugin.rules[0].rcode == 3
    assert plugin.rules[0].fall == Fallthrough((".",))
    # upstream is accepted and ignored
    handler("template IN A {\n upstream 8.8.8.8\n}")


def test_setup_zones() -> None:
    plugin = handler(
        "template IN PTR 10.0.0.0/15 Example.ORG dns://x.org:53 bad..zone {\n"
        " fallthrough 10.0.0.0/8 nope..zone\n}",
        keys="example.net:1053",
    )
    rule = plugin.rules[0]
    assert rule.zones == ("0.10.in-addr.arpa.", "1.10.in-addr.arpa.", "example.org.", "x.org.")
    assert rule.fall.zones == ("10.in-addr.arpa.",)
    # No zones: the server block's zones.
    plugin = handler("template IN A", keys="a.example:53 B.example.:53")
    assert plugin.rules[0].zones == ("a.example.", "b.example.")
    assert plugin.zones == ("a.example.", "b.example.")


def test_default_regex_matches_everything() -> None:
    plugin = handler("template IN A")
    assert [r.source for r in plugin.rules[0].regexes] == [".*"]
    reply = serve(plugin, "anything.at.all")
    assert reply.written and reply.rcode == 0
    assert DNSRecord.parse(reply.wire).header.aa == 1


# ---------------------------------------------------------------------------------------------
# Handler: CoreDNS's TestHandler (zones ".", fallthrough everywhere, next = marker)


def tmpl(body: str, qclass: str = "ANY", qtype: str = "ANY") -> str:
    return f"template {qclass} {qtype} . {{\n{body}\n fallthrough\n}}"


EXAMPLE_A = tmpl(f' match "{IP_REGEX}"\n answer "{IP_ANSWER}"')
EXAMPLE_HEX = tmpl(
    ' match "^ip0a(?P<b>[a-f0-9]{2})(?P<c>[a-f0-9]{2})(?P<d>[a-f0-9]{2})[.]example[.]$"\n'
    ' answer "{{ .Name }} 60 IN A 10.{{ parseInt .Group.b 16 8 }}.{{ parseInt .Group.c 16 8 }}.'
    '{{ parseInt .Group.d 16 8 }}"'
)
EXAMPLE_IP = tmpl(' match .*\n answer "{{ .Name }} 60 IN A {{ .Remote }}"', "IN", "A")
EXAMPLE_ANS = tmpl(
    f' match "{IP_REGEX}"\n answer "{IP_ANSWER}"\n'
    ' additional "ns0.example. IN A 203.0.113.8"\n'
    ' authority "example. IN NS ns0.example.com."'
)
EXAMPLE_MX = tmpl(
    f' match "{IP_REGEX}"\n answer "{{{{ .Name }}}} 60 MX 10 {{{{ .Name }}}}"\n'
    f' additional "{IP_ANSWER}"'
)
INVALID_NX = tmpl(
    ' match "[.]invalid[.]$"\n rcode NXDOMAIN\n'
    ' answer "invalid. 60 {{ .Class }} SOA a.invalid. b.invalid. (1 60 60 60 60)"'
)
RCODE_SERVFAIL = tmpl(" match .*\n rcode SERVFAIL")
BROKEN = tmpl(' match "[.]example[.]$"\n answer "{{ .Name }} 60 IN TXT \\"{{ index .Match 2 }}\\""')
BROKEN_PARSEINT = tmpl(
    ' match "[.]example[.]$"\n answer "{{ .Name }} 60 IN TXT \\"{{ parseInt \\"gg\\" 16 8 }}\\""'
)
NON_RR = tmpl(' match "[.]example[.]$"\n answer "{{ .Name }}"')
NON_RR_ADDITIONAL = tmpl(' match "[.]example[.]$"\n additional "{{ .Name }}"')
NON_RR_AUTHORITY = tmpl(' match "[.]example[.]$"\n authority "{{ .Name }}"')
CNAME = tmpl(' match "example[.]net[.]"\n answer "example.net 60 IN CNAME target.example.com"')
MD = tmpl(
    f' match "{IP_REGEX}"\n'
    ' answer "{{ .Meta \\"foo\\" }}-{{ .Name }} 60 IN A 10.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"\n'
    ' additional "{{ .Meta \\"bar\\" }}.example. IN A 203.0.113.8"\n'
    ' authority "example. IN NS {{ .Meta \\"bar\\" }}.example.com."'
)
MD_MISSING = tmpl(
    f' match "{IP_REGEX}"\n'
    ' answer "{{ .Meta \\"foofoo\\" }}{{ .Name }} 60 IN A 10.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"'
)
EDE = tmpl(
    " match .*\n rcode NXDOMAIN\n"
    ' authority "invalid. 60 {{ .Class }} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)"\n'
    ' ederror 21 "Blocked due to RFC2606"'
)


def msg_of(reply: Reply) -> DNSRecord:
    assert reply.written, reply
    return DNSRecord.parse(reply.wire)


def check_a(value: str) -> Callable[[DNSRecord], None]:
    def check(m: DNSRecord) -> None:
        assert len(m.rr) == 1
        assert m.rr[0].rtype == QTYPE.A
        assert str(m.rr[0].rdata) == value

    return check


def check_mx(m: DNSRecord) -> None:
    assert [rr.rtype for rr in m.rr] == [QTYPE.MX]
    assert [rr.rtype for rr in m.ar] == [QTYPE.A]


def check_ans(m: DNSRecord) -> None:
    assert [rr.rtype for rr in m.rr] == [QTYPE.A]
    assert [rr.rtype for rr in m.ar] == [QTYPE.A]
    assert [rr.rtype for rr in m.auth] == [QTYPE.NS]


def check_nxdomain_soa(m: DNSRecord) -> None:
    assert [rr.rtype for rr in m.rr] == [QTYPE.SOA]


def check_one(m: DNSRecord) -> None:
    assert len(m.rr) == 1


def check_md(m: DNSRecord) -> None:
    assert [str(rr.rname) for rr in m.rr] == ["myfoo-ip-10-95-12-8.example."]
    assert [str(rr.rname) for rr in m.ar] == ["mybar.example."]
    assert [rr.rtype for rr in m.auth] == [QTYPE.NS]
    assert str(m.auth[0].rdata) == "mybar.example.com."


def check_md_missing(m: DNSRecord) -> None:
    assert [str(rr.rname) for rr in m.rr] == ["ip-10-95-12-8.example."]


def check_ede(m: DNSRecord) -> None:
    opts = [rr for rr in m.ar if rr.rtype == QTYPE.OPT]
    assert opts, "expected EDNS"
    ede = [o for o in opts[0].rdata if o.code == 15]
    assert ede and struct.unpack("!H", ede[0].data[:2])[0] == 21
    assert ede[0].data[2:] == b"Blocked due to RFC2606"


HANDLER_CASES: list[tuple[str, str, str, str, str, dict[str, Any]]] = [
    # name, template, qname, qtype, outcome, extra
    ("RcodeServFail", RCODE_SERVFAIL, "test.invalid.", "A", "servfail", {}),
    ("ExampleDomainNameMismatch", EXAMPLE_A, "test.invalid.", "A", "next", {}),
    (
        "BrokenTemplate",
        BROKEN,
        "test.example.",
        "ANY",
        "servfail",
        {
            "error": 'template: answer:1:26: executing "answer" at <index .Match 2>: '
            "error calling index: index out of range: 2"
        },
    ),
    (
        "NonRRTemplate",
        NON_RR,
        "test.example.",
        "ANY",
        "servfail",
        {"error": 'dns: not a TTL: "test.example." at line: 1:13'},
    ),
    (
        "NonRRAdditionalTemplate",
        NON_RR_ADDITIONAL,
        "test.example.",
        "ANY",
        "servfail",
        {"error": 'dns: not a TTL: "test.example." at line: 1:13'},
    ),
    (
        "NonRRAuthorityTemplate",
        NON_RR_AUTHORITY,
        "test.example.",
        "ANY",
        "servfail",
        {"error": 'dns: not a TTL: "test.example." at line: 1:13'},
    ),
    (
        "ExampleIPMatch",
        EXAMPLE_IP,
        "test.example.",
        "A",
        "ok",
        {"check": check_a("10.240.0.1"), "client": ("10.240.0.1", 40212)},
    ),
    (
        "ExampleDomainMatch",
        EXAMPLE_A,
        "ip-10-95-12-8.example.",
        "A",
        "ok",
        {"check": check_a("10.95.12.8")},
    ),
    (
        "ExampleDomainMatchHexIp",
        EXAMPLE_HEX,
        "ip0a5f0c09.example.",
        "A",
        "ok",
        {"check": check_a("10.95.12.9")},
    ),
    (
        "BrokenParseIntTemplate",
        BROKEN_PARSEINT,
        "test.example.",
        "ANY",
        "servfail",
        {
            "error": 'template: answer:1:26: executing "answer" at <parseInt "gg" 16 8>: '
            'error calling parseInt: strconv.ParseUint: parsing "gg": invalid syntax'
        },
    ),
    ("ExampleDomainMXMatch", EXAMPLE_MX, "ip-10-95-12-8.example.", "MX", "ok", {"check": check_mx}),
    (
        "ExampleDomainANSMatch",
        EXAMPLE_ANS,
        "ip-10-95-12-8.example.",
        "A",
        "ok",
        {"check": check_ans},
    ),
    (
        "ExampleInvalidNXDOMAIN",
        INVALID_NX,
        "test.invalid.",
        "MX",
        "ok",
        {"check": check_nxdomain_soa, "rcode": 3},
    ),
    ("CNAMEWithoutUpstream", CNAME, "example.net.", "A", "ok", {"check": check_one}),
    (
        "mdMatch",
        MD,
        "ip-10-95-12-8.example.",
        "A",
        "ok",
        {"check": check_md, "meta": {"foo": "myfoo", "bar": "mybar", "foobar": "myfoobar"}},
    ),
    (
        "mdMissing",
        MD_MISSING,
        "ip-10-95-12-8.example.",
        "A",
        "ok",
        {"check": check_md_missing, "meta": {"foo": "myfoo"}},
    ),
    ("EDNS error", EDE, "test.invalid.", "A", "ok", {"check": check_ede, "rcode": 3}),
]


@pytest.mark.parametrize(
    ("name", "template", "qname", "qtype", "outcome", "extra"),
    HANDLER_CASES,
    ids=[c[0] for c in HANDLER_CASES],
)
def test_handler(
    name: str, template: str, qname: str, qtype: str, outcome: str, extra: dict[str, Any]
) -> None:
    plugin = handler(template)
    reply = serve(
        plugin,
        qname,
        qtype,
        client=extra.get("client", ("127.0.0.1", 5300)),
        meta=extra.get("meta"),
    )
    if outcome == "next":
        assert reply is NEXT
        return
    if outcome == "servfail":
        assert not reply.written and reply.rcode == w.SERVFAIL
        if "error" in extra:
            assert str(reply.error) == extra["error"]
        else:
            assert reply.error is None
        return
    assert reply.written and reply.error is None
    m = msg_of(reply)
    assert m.header.rcode == extra.get("rcode", 0)
    assert m.header.aa == 1
    assert m.header.id == 4242
    extra["check"](m)


def test_truncated_cname() -> None:
    # CoreDNS's TestTruncatedCNAME: the upstream's TC bit and answers are copied.
    text = (
        ".:1053 {\n"
        "    template IN A test {\n"
        '        match "^cname\\.test\\.$"\n'
        '        answer "cname.test. 600 IN CNAME test.up"\n'
        "    }\n"
        "    tplupstub\n"
        "}\n"
    )
    r = resolver(text)
    reply = r.resolve("cname.test", "A")
    assert reply.header.tc == 1
    assert [str(rr) for rr in reply.rr] == [
        str(RR.fromZone("cname.test. 600 IN CNAME test.up.")[0]),
        str(RR.fromZone("test.up. 600 IN A 1.2.3.4")[0]),
    ]


# CoreDNS's TestMultiSection (block key test.:8053).
MULTI = """\
# REFUSE IN A for the server zone (test.)
template IN A {
    rcode REFUSED
}
# Fallthrough everything IN TXT for test.
template IN TXT {
    match "$^"
    rcode SERVFAIL
    fallthrough
}
# Answer CH TXT *.coredns.invalid. / coredns.invalid.
template CH TXT coredns.invalid {
    answer "{{ .Name }} 60 CH TXT \\"test\\""
}
# Answer example. ip templates and fallthrough otherwise
template IN A example {
    match ^ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$
    answer "{{ .Name }} 60 IN A 10.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"
    fallthrough
}
# Answer MX record requests for ip templates in example. and never fall through
template IN MX example {
    match ^ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$
    answer "{{ .Name }} 60 IN MX 10 {{ .Name }}"
    additional "{{ .Name }} 60 IN A 10.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"
}
"""


def test_multi_section() -> None:
    plugin = handler(MULTI, keys="test.:8053")
    reply = serve(plugin, "some.test.", "A")
    assert reply.written and reply.rcode == w.REFUSED and reply.error is None
    assert serve(plugin, "some.test.", "TXT") is NEXT
    reply = serve(plugin, "coredns.invalid.", "TXT", "CH")
    m = msg_of(reply)
    assert m.header.rcode == 0 and len(m.rr) == 1
    assert m.rr[0].rtype == QTYPE.TXT and m.rr[0].rdata.data == [b"test"]
    m = msg_of(serve(plugin, "ip-10-11-12-13.example.", "A"))
    assert m.header.rcode == 0 and [rr.rtype for rr in m.rr] == [QTYPE.A]
    m = msg_of(serve(plugin, "ip-10-11-12-13.example.", "MX"))
    assert m.header.rcode == 0 and [rr.rtype for rr in m.rr] == [QTYPE.MX]
    assert serve(plugin, "something.example.", "A") is NEXT
    reply = serve(plugin, "something.example.", "MX")
    assert reply is not NEXT and not reply.written and reply.rcode == w.SERVFAIL


def test_multi_section_through_the_server() -> None:
    indented = "\n".join("    " + line for line in MULTI.splitlines())
    r = resolver(f"test.:8053 {{\n{indented}\n    tplmarker\n}}\n")
    assert r.resolve("some.test", "A").header.rcode == w.REFUSED
    assert [str(rr.rdata) for rr in r.resolve("some.test", "TXT").rr] == ['"fallthrough"']
    # Names outside the block's zone never reach it; neither does a CH query (no
    # chaos or forward plugin in the block).
    assert r.resolve("ip-10-11-12-13.example", "A").header.rcode == w.REFUSED
    assert r.resolve("a.test", "TXT", "CH").header.rcode == w.REFUSED


# ---------------------------------------------------------------------------------------------
# Matching rules (spec §3.2)


def test_matching_rules() -> None:
    plugin = handler(
        "template IN A example.org {\n"
        "    match ^www[.]\n"
        '    answer "{{ .Name }} 60 IN A 10.0.0.1"\n'
        "}\n"
        "template IN A example.org {\n"
        '    answer "{{ .Name }} 60 IN A 10.0.0.2"\n'
        "}\n",
        keys="example.org",
    )
    # Outside the zones: next.
    assert serve(plugin, "example.com", "A") is NEXT
    # Type mismatch: a silent skip, not NODATA.
    assert serve(plugin, "www.example.org", "AAAA") is NEXT
    # First regex of the first matching template wins.
    assert str(msg_of(serve(plugin, "www.example.org")).rr[0].rdata) == "10.0.0.1"
    # Zone matched, regex did not, no fallthrough: SERVFAIL (never the second template).
    reply = serve(plugin, "mail.example.org")
    assert not reply.written and reply.rcode == w.SERVFAIL and reply.error is None
    # Query type ANY matches an A template; the answer is not filtered.
    assert msg_of(serve(plugin, "www.example.org", "ANY")).rr[0].rtype == QTYPE.A


def test_search_is_unanchored_on_lowercase_fqdn() -> None:
    plugin = handler(
        "template IN A custom-dns.local {\n match .*\\.apps\\.custom-dns\\.local\n"
        ' answer "{{ .Name }} 30 IN A 127.0.0.1"\n}',
        keys="custom-dns.local",
    )
    assert msg_of(serve(plugin, "X.Apps.Custom-DNS.local")).rr[0].ttl == 30
    assert msg_of(serve(plugin, "x.apps.custom-dns.localfoo.custom-dns.local")).rr
    assert not serve(plugin, "apps.custom-dns.local").written


def test_class_and_type_any_rules() -> None:
    plugin = handler(
        'template ANY TXT {\n answer "{{ .Name }} 60 TXT \\"{{ .Class }} {{ .Type }}\\""\n}'
    )
    m = msg_of(serve(plugin, "a.example", "TXT", "CH"))
    assert m.rr[0].rdata.data == [b"CH TXT"]
    # Query class and type ANY: .Class and .Type are the template's (ANY, TXT).
    m = msg_of(serve(plugin, "a.example", "ANY", 255))
    assert m.rr[0].rdata.data == [b"ANY TXT"]
    assert serve(plugin, "a.example", "A") is NEXT
    # A template of type ANY answers every type, and its records are not filtered.
    plugin = handler('template IN ANY {\n answer "{{ .Name }} 60 TXT \\"{{ .Type }}\\""\n}')
    m = msg_of(serve(plugin, "a.example", "MX"))
    assert m.rr[0].rtype == QTYPE.TXT and m.rr[0].rdata.data == [b"MX"]


def test_fallthrough_zones() -> None:
    plugin = handler(
        "template IN A . {\n match ^never$\n fallthrough in-addr.arpa example.org\n}",
    )
    assert serve(plugin, "a.example.org") is NEXT
    assert not serve(plugin, "a.example.net").written


def test_template_data_fields() -> None:
    plugin = handler(
        "template IN TXT example.org sub.example.org {\n"
        '    match "^(?P<first>[a-z]+)[.](sub)[.]"\n'
        '    answer "{{ .Name }} 60 IN TXT \\"{{ .Zone }}|{{ .Class }}|{{ .Type }}|{{ index .Match 0 }}'
        '|{{ index .Match 1 }}|{{ .Group.first }}|{{ index .Group \\"2\\" }}|{{ .Group.nothere }}'
        "|{{ .Regex }}|{{ .Remote }}|{{ .Question.Name }}|{{ .Question.Qtype }}|{{ .Message.Id }}"
        '|{{ .Message.RecursionDesired }}\\""\n'
        "}",
        keys="example.org",
    )
    m = msg_of(serve(plugin, "AbC.Sub.Example.ORG", "TXT", client=("192.0.2.7", 1)))
    fields = m.rr[0].rdata.data[0].decode().split("|")
    assert fields == [
        "sub.example.org.",
        "IN",
        "TXT",
        "abc.sub.",
        "abc",
        "abc",
        "sub",
        "<no value>",
        "^(?P<first>[a-z]+)[.](sub)[.]",
        "192.0.2.7",
        "AbC.Sub.Example.ORG.",
        "16",
        "4242",
        "true",
    ]
    assert str(m.rr[0].rname) == "abc.sub.example.org."


def test_question_prints_like_miekg() -> None:
    plugin = handler('template IN TXT {\n answer "{{ .Name }} TXT \\"{{ .Question }}\\""\n}')
    m = msg_of(serve(plugin, "q.example", "TXT"))
    assert m.rr[0].rdata.data == [b";q.example.\tIN\t TXT"]


# ---------------------------------------------------------------------------------------------
# Go template semantics through the plugin


GO_CASES: list[tuple[str, str]] = [
    ('{{ .Name | printf \\"%s-x\\" }}', "a.example.-x"),
    ('{{ printf \\"%03d\\" 7 }}', "007"),
    ("{{ .Group.missing }}", "<no value>"),
    ('{{ if eq .Type \\"TXT\\" }}yes{{ else }}no{{ end }}', "yes"),
    ("{{ $n := .Name }}{{ len $n }}", "10"),
    ("{{ range $i, $m := .Match }}{{ $i }}={{ $m }};{{ end }}", "0=a.;1=a;"),
    ("{{- .Type -}}", "TXT"),
    ('{{ parseInt \\"ff\\" 16 8 }}', "255"),
    ("{{ and 1 0 }}|{{ or 0 2 }}|{{ not true }}", "0|2|false"),
]


@pytest.mark.parametrize(("expr", "expected"), GO_CASES)
def test_go_template_semantics(expr: str, expected: str) -> None:
    plugin = handler(
        f'template IN TXT {{\n match "^([a-z])[.]"\n answer "{{{{ .Name }}}} 60 TXT \\"{expr}\\""\n}}'
    )
    m = msg_of(serve(plugin, "a.example", "TXT"))
    assert m.rr[0].rdata.data == [expected.encode()]


RUNTIME_ERRORS: list[tuple[str, str]] = [
    ("{{ .Grup.d }}", "can't evaluate field Grup"),
    ("{{ index .Match 5 }}", "index out of range: 5"),
    ('{{ parseInt \\"x\\" 10 8 }}', 'strconv.ParseUint: parsing "x": invalid syntax'),
    ('{{ parseInt \\"300\\" 10 8 }}', 'strconv.ParseUint: parsing "300": value out of range'),
    ("{{ .Meta }}", "wrong number of args for Meta"),
]


@pytest.mark.parametrize(("expr", "fragment"), RUNTIME_ERRORS)
def test_runtime_errors_are_servfail(expr: str, fragment: str) -> None:
    r = resolver(
        f'example.org {{\n errors\n template IN A {{\n answer "{{{{ .Name }}}} 60 A {expr}"\n }}\n}}\n'
    )
    reply, msg = r.resolve_reply("a.example.org", "A")
    assert msg.header.rcode == w.SERVFAIL and not msg.rr and msg.header.aa == 0
    assert fragment in str(reply.error)
    assert str(reply.error).startswith("template: answer:1:")
    assert r.metrics.sample("coredns_template_template_failures_total") == 1


def test_errors_plugin_logs_template_errors(caplog: pytest.LogCaptureFixture) -> None:
    r = resolver('. {\n errors\n template ANY ANY {\n answer "{{ .Name }}"\n }\n}\n')
    with caplog.at_level("ERROR", logger="pycorefile.plugins.errors"):
        assert r.resolve("test.example", "A").header.rcode == w.SERVFAIL
    assert '2 test.example. A: dns: not a TTL: "test.example." at line: 1:13' in caplog.text


# ---------------------------------------------------------------------------------------------
# Reply building (spec §3.4)


def test_reply_flags_and_sections() -> None:
    plugin = handler(
        "template IN MX example.org {\n"
        '    answer "{{ .Name }} 60 IN MX 10 mail.example.org." "{{ .Name }} MX 20 mx2"\n'
        '    authority "example.org. 300 NS ns1.example.org."\n'
        '    additional "mail.example.org. 60 A 192.0.2.1"\n'
        "    rcode NXDOMAIN\n"
        "}",
        keys="example.org",
    )
    m = msg_of(serve(plugin, "example.org", "MX"))
    assert (m.header.qr, m.header.aa, m.header.rd, m.header.ra) == (1, 1, 1, 0)
    assert m.header.rcode == 3
    assert [(str(rr.rdata), rr.ttl) for rr in m.rr] == [
        ("10 mail.example.org.", 60),
        ("20 mx2.", 3600),
    ]
    assert [str(rr.rdata) for rr in m.auth] == ["ns1.example.org."]
    assert [str(rr.rdata) for rr in m.ar] == ["192.0.2.1"]


def test_rcode_servfail_is_bare() -> None:
    r = resolver(
        'example.org {\n template IN A {\n  rcode SERVFAIL\n  answer "x. A 1.2.3.4"\n }\n}\n'
    )
    reply, msg = r.resolve_reply("example.org", "A")
    assert msg.header.rcode == w.SERVFAIL and msg.header.aa == 0 and not msg.rr
    assert reply.error is None
    assert r.metrics.sample("coredns_template_matches_total") == 1


def test_cname_chased_through_the_same_server() -> None:
    r = resolver(
        ".:1053 {\n"
        "    template IN ANY alias.test {\n"
        '        answer "alias.test. 60 IN CNAME target.example."\n'
        "    }\n"
        "    template IN A example {\n"
        '        answer "{{ .Name }} 120 IN A 192.0.2.10"\n'
        "    }\n"
        "    template IN AAAA example {\n"
        "        rcode SERVFAIL\n"
        "    }\n"
        "}\n"
    )
    m = r.resolve("alias.test", "A")
    assert [(rr.rtype, str(rr.rdata)) for rr in m.rr] == [
        (QTYPE.CNAME, "target.example."),
        (QTYPE.A, "192.0.2.10"),
    ]
    assert m.header.tc == 0 and m.header.aa == 1
    # Unresolvable target (SERVFAIL there): the CNAME alone, still NOERROR.
    m = r.resolve("alias.test", "AAAA")
    assert m.header.rcode == 0 and [rr.rtype for rr in m.rr] == [QTYPE.CNAME]
    # No chasing for other types.
    m = r.resolve("alias.test", "MX")
    assert [rr.rtype for rr in m.rr] == [QTYPE.CNAME]


def test_cname_loop_is_cut() -> None:
    r = resolver(
        '.:1053 {\n template IN A {\n  answer "{{ .Name }} 60 IN CNAME {{ .Name }}"\n }\n}\n'
    )
    m = r.resolve("loop.example", "A")
    assert m.header.rcode == 0
    assert all(rr.rtype == QTYPE.CNAME for rr in m.rr)
    assert 1 < len(m.rr) <= 16


def test_ederror_through_the_server_with_edns() -> None:
    r = resolver(
        ". {\n template ANY ANY invalid {\n  rcode NXDOMAIN\n"
        '  authority "invalid. 60 {{ .Class }} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)"\n'
        '  ederror 21 "Blocked according to RFC2606"\n }\n}\n'
    )
    query = w.build_query("foo.invalid", 1, qid=99, edns_size=1232)
    m = DNSRecord.parse(r.handle(query))
    assert m.header.rcode == 3 and m.header.aa == 1
    (opt,) = [rr for rr in m.ar if rr.rtype == QTYPE.OPT]
    # The server normalises the OPT to the client's: its size, DO only if asked.
    assert opt.rclass == 1232 and not (opt.ttl & w.DO_BIT)
    (ede,) = [o for o in opt.rdata if o.code == 15]
    assert ede.data == struct.pack("!H", 21) + b"Blocked according to RFC2606"
    m = DNSRecord.parse(r.handle(w.build_query("foo.invalid", 1, qid=99, edns_size=4096, do=True)))
    (opt,) = [rr for rr in m.ar if rr.rtype == QTYPE.OPT]
    assert opt.rclass == 4096 and opt.ttl & w.DO_BIT


def test_rcode_refused_is_written() -> None:
    r = resolver(
        'example.org {\n template IN A {\n  rcode REFUSED\n  answer "{{ .Name }} A 1.2.3.4"\n }\n}\n'
    )
    m = r.resolve("example.org", "A")
    assert m.header.rcode == w.REFUSED and m.header.aa == 1 and len(m.rr) == 1


def test_default_ttl_and_relative_names() -> None:
    plugin = handler('template IN CNAME {\n answer "{{ .Name }} CNAME target.example.com"\n}')
    rr = msg_of(serve(plugin, "a.example", "CNAME")).rr[0]
    assert rr.ttl == 3600 and rr.rclass == 1 and str(rr.rdata) == "target.example.com."


def test_truncation_over_udp() -> None:
    many = " ".join(f'"{{{{ .Name }}}} 60 IN TXT \\"{"x" * 200}\\""' for _ in range(5))
    r = resolver(f"example.org {{\n template IN TXT {{\n  answer {many}\n }}\n}}\n")
    udp = DNSRecord.parse(r.handle(w.build_query("example.org", 16, qid=1), proto="udp"))
    assert udp.header.tc == 1 and len(udp.rr) < 5
    tcp = DNSRecord.parse(r.handle(w.build_query("example.org", 16, qid=1), proto="tcp"))
    assert tcp.header.tc == 0 and len(tcp.rr) == 5


# ---------------------------------------------------------------------------------------------
# The node-local example (spec §5), in process

NODE_LOCAL = """\
api.custom-dns.local:1053 {
    bind 127.0.0.1
    template IN A api.custom-dns.local {
        answer "{{ .Name }} 30 IN A 127.0.0.1"
    }
}
apps.custom-dns.local:1053 {
    bind 127.0.0.1
    template IN A apps.custom-dns.local {
        match .*\\.apps\\.custom-dns\\.local
        answer "{{ .Name }} 30 IN A 127.0.0.1"
    }
}
"""


@pytest.mark.parametrize(
    ("qname", "qtype", "rcode", "answer"),
    [
        ("api.custom-dns.local", "A", 0, "api.custom-dns.local."),
        ("x.api.custom-dns.local", "A", 0, "x.api.custom-dns.local."),
        ("x.apps.custom-dns.local", "A", 0, "x.apps.custom-dns.local."),
        ("Foo.APPS.custom-dns.local", "A", 0, "foo.apps.custom-dns.local."),
        ("apps.custom-dns.local", "A", w.SERVFAIL, None),
        ("api.custom-dns.local", "AAAA", w.SERVFAIL, None),
        ("x.apps.custom-dns.local", "AAAA", w.SERVFAIL, None),
        ("api.custom-dns.local", "MX", w.SERVFAIL, None),
        ("other.example", "A", w.REFUSED, None),
    ],
)
def test_node_local_example(qname: str, qtype: str, rcode: int, answer: str | None) -> None:
    r = pycorefile.Resolver.from_corefile(NODE_LOCAL)
    for _ in range(2):  # the second time from the memo
        m = r.resolve(qname, qtype)
        assert m.header.rcode == rcode
        if answer is None:
            assert not m.rr and m.header.aa == 0
        else:
            assert m.header.aa == 1
            assert [(str(rr.rname), rr.ttl, rr.rtype, str(rr.rdata)) for rr in m.rr] == [
                (answer, 30, QTYPE.A, "127.0.0.1")
            ]


def test_examples_corefile_loads() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "Corefile"
    reg = default_registry()
    for name in ("forward", "cache", "prometheus"):
        if reg.get(name) is None or not hasattr(reg.get(name), "setup"):
            pytest.skip(f"the {name} plugin is not available")
    try:
        cf = pycorefile.load(path)
    except pycorefile.CorefileError as exc:  # pragma: no cover - depends on other plugins
        if "not supported" in str(exc) or "Unknown directive" in str(exc):
            pytest.skip(str(exc))
        raise
    zones = {k.zone for b in cf.blocks for k in b.keys}
    assert zones == {"api.custom-dns.local.", "apps.custom-dns.local.", "."}


# ---------------------------------------------------------------------------------------------
# Metrics (spec §3.5): CoreDNS's names, labels and label values


def test_metrics() -> None:
    r = resolver(
        "example.org:1053 {\n"
        "    bind 127.0.0.1\n"
        "    template IN ANY example.org {\n"
        '        match "^ok[.]"\n'
        '        answer "{{ .Name }} 60 IN A 10.0.0.1"\n'
        '        additional "{{ .Name }}"\n'
        "        fallthrough\n"
        "    }\n"
        "    template IN A example.org {\n"
        '        match "^bad[.]"\n'
        '        answer "{{ .Name }} 60 IN A {{ .Nope }}"\n'
        "    }\n"
        "}\n"
    )
    r.resolve("ok.example.org", "ANY")
    r.resolve("ok.example.org", "ANY")
    r.resolve("bad.example.org", "A")
    m = r.metrics
    server = "dns://127.0.0.1:1053"
    base = {"server": server, "zone": "example.org.", "view": "", "class": "IN"}
    assert m.sample("coredns_template_matches_total", {**base, "type": "ANY"}) == 2
    assert m.sample("coredns_template_matches_total", {**base, "type": "A"}) == 1
    assert (
        m.sample(
            "coredns_template_rr_failures_total",
            {**base, "type": "ANY", "section": "additional", "template": "{{.Name}}"},
        )
        == 2
    )
    assert (
        m.sample(
            "coredns_template_template_failures_total",
            {**base, "type": "A", "section": "answer", "template": "{{.Name}} 60 IN A {{.Nope}}"},
        )
        == 1
    )
    text = m.exposition().decode()
    assert (
        'coredns_template_matches_total{class="IN",server="dns://127.0.0.1:1053",type="ANY",view="",zone="example.org."} 2.0'
        in text
    )


# ---------------------------------------------------------------------------------------------
# The memoised hot path


def test_memo_replies_are_identical_and_counted() -> None:
    r = pycorefile.Resolver.from_corefile(NODE_LOCAL)
    q1 = w.build_query("x.apps.custom-dns.local", 1, qid=1)
    q2 = w.build_query("x.apps.custom-dns.local", 1, qid=2)
    a1, a2 = r.handle(q1), r.handle(q2)
    assert a1[:2] == b"\x00\x01" and a2[:2] == b"\x00\x02" and a1[2:] == a2[2:]
    plugins = [p for c in r.engine.chains for p in c.plugins if isinstance(p, Template)]
    assert sum(len(p._memo) for p in plugins) == 1
    assert r.metrics.sample("coredns_template_matches_total") == 2


def test_memo_keeps_flags_edns_and_case() -> None:
    r = pycorefile.Resolver.from_corefile(NODE_LOCAL)
    name = "x.apps.custom-dns.local"
    for _ in range(2):
        plain = DNSRecord.parse(r.handle(w.build_query(name, 1, qid=5)))
        assert not [rr for rr in plain.ar if rr.rtype == QTYPE.OPT]
        nord = DNSRecord.parse(r.handle(w.build_query(name, 1, qid=5, rd=False)))
        assert nord.header.rd == 0 and plain.header.rd == 1
        cd = DNSRecord.parse(r.handle(w.build_query(name, 1, qid=5, cd=True)))
        assert cd.header.cd == 1
        edns = DNSRecord.parse(r.handle(w.build_query(name, 1, qid=5, edns_size=1232, do=True)))
        (opt,) = [rr for rr in edns.ar if rr.rtype == QTYPE.OPT]
        assert opt.rclass == 1232 and opt.ttl & w.DO_BIT
        edns2 = DNSRecord.parse(r.handle(w.build_query(name, 1, qid=5, edns_size=4096)))
        (opt,) = [rr for rr in edns2.ar if rr.rtype == QTYPE.OPT]
        assert opt.rclass == 4096 and not opt.ttl & w.DO_BIT
        mixed = DNSRecord.parse(r.handle(w.build_query("X.Apps.Custom-DNS.Local", 1, qid=5)))
        assert str(mixed.questions[0].qname) == "X.Apps.Custom-DNS.Local."
        assert str(mixed.rr[0].rname) == "x.apps.custom-dns.local."


def test_dynamic_templates_are_not_memoised() -> None:
    r = pycorefile.Resolver.from_corefile(
        'example.org {\n template IN A {\n  answer "{{ .Name }} 60 IN A {{ .Remote }}"\n }\n}\n'
    )
    a = r.resolve("example.org", "A", client=("10.0.0.1", 1))
    b = r.resolve("example.org", "A", client=("10.0.0.2", 1))
    assert str(a.rr[0].rdata) == "10.0.0.1" and str(b.rr[0].rdata) == "10.0.0.2"


@pytest.mark.parametrize(
    ("source", "static"),
    [
        ("{{ .Name }} 60 IN A 10.{{ .Group.b }}.1.2", True),
        ("{{ .Name }} 60 IN A {{ index .Match 1 }}", True),
        ('{{ .Name }} 60 IN A {{ parseInt "ff" 16 8 }}.0.0.1', True),
        ("{{ .Name }} 60 IN A {{ .Remote }}", False),
        ('{{ .Meta "foo" }}.x. A 1.2.3.4', False),
        ("{{ .Name }} TXT {{ .Question.Name }}", False),
        ("{{ .Name }} TXT {{ .Message.Id }}", False),
        ('{{ .Name }} TXT "{{ . }}"', False),
        ('{{ .Name }} TXT "{{ printf "%v" $ }}"', False),
        ("{{ with $x := . }}{{ $x.Name }}{{ end }} A 1.2.3.4", False),
        ("{{ $.Name }} A 1.2.3.4", True),
    ],
)
def test_static_detection(source: str, static: bool) -> None:
    assert depends_on_question_only(source) is static


def test_memo_is_bounded() -> None:
    plugin = handler('template IN A {\n answer "{{ .Name }} 60 A 10.0.0.1"\n}')
    plugin.memo_size = 8
    for i in range(50):
        assert serve(plugin, f"h{i}.example").written
    assert len(plugin._memo) <= 8


# ---------------------------------------------------------------------------------------------
# Rendered text → record (miekg/dns NewRR rules)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a.example. 60 IN A 10.0.0.1", "a.example.              60      IN      A       10.0.0.1"),
        ("a.example 60 A 10.0.0.1", "a.example.              60      IN      A       10.0.0.1"),
        ("a.example. IN 60 A 10.0.0.1", "a.example.              60      IN      A       10.0.0.1"),
        ("a.example. A 10.0.0.1", "a.example.              3600    IN      A       10.0.0.1"),
        ("a.example. 1h a 10.0.0.1", "a.example.              3600    IN      A       10.0.0.1"),
        ('a.example. CH TXT "x y" z', 'a.example.              3600    CH      TXT     "x y" "z"'),
        (
            "invalid. 60 IN SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)",
            "invalid.                60      IN      SOA     ns.invalid. hostmaster.invalid. 1 60 60 60 60",
        ),
        (
            "ex. 60 SOA ns.ex. hm.ex. (\n  2024 1h 10m 1w 300 ) ; comment",
            "ex.                     60      IN      SOA     ns.ex. hm.ex. 2024 3600 600 604800 300",
        ),
        ("@ 60 NS ns.example", ".                       60      IN      NS      ns.example."),
        ("a. 60 AAAA 2001:db8::1", "a.                      60      IN      AAAA    2001:db8::1"),
        ("a. SRV 0 5 53 ns.a.", "a.                      3600    IN      SRV     0 5 53 ns.a."),
        ("a. PTR b.", "a.                      3600    IN      PTR     b."),
        ("a. TYPE999 \\# 2 abcd", "a.                      3600    IN      TYPE999 \\# 2 ABCD"),
        (
            "a. 60 A 10.0.0.1\nb. 60 A 10.0.0.2",
            "a.                      60      IN      A       10.0.0.1",
        ),
    ],
)
def test_parse_rr(text: str, expected: str) -> None:
    rr = parse_rr(text)
    assert rr is not None
    assert str(rr) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("test.example.", 'dns: not a TTL: "test.example." at line: 1:13'),
        ("a. FOO 1.2.3.4", 'dns: not a TTL: "FOO" at line: 1:7'),
        ("a. 60 FOO 1.2.3.4", 'dns: expecting RR type or class, not this...: "FOO" at line: 1:10'),
        ("a. 60 IN FOO 1.2.3.4", 'dns: unknown RR type: "FOO" at line: 1:13'),
        ("a. 60 IN A 1.2.3", 'dns: bad A A: "1.2.3" at line: 1:16'),
        ("a. 60 IN A 1.2.3.4 5", 'dns: garbage after rdata: "5" at line: 1:20'),
        ("a. AAAA 1.2.3.4", 'dns: bad AAAA AAAA: "1.2.3.4" at line: 1:15'),
        ("a. MX x b.", 'dns: bad MX Pref: "x" at line: 1:8'),
        ("a. SOA ns. mb. 1 2 3", 'dns: bad SOA zone parameter: "\\n" at line: 1:20'),
        ("a..b. A 1.2.3.4", 'dns: bad owner name: "a..b." at line: 1:6'),
        ('a. TXT "open', 'dns: unbalanced quote: "" at line: 1:12'),
        ("a. 60 IN A ", 'dns: bad A rdata: "\\n" at line: 1:11'),
    ],
)
def test_parse_rr_errors(text: str, error: str) -> None:
    with pytest.raises(ZoneTextError) as info:
        parse_rr(text)
    assert str(info.value) == error


def test_parse_rr_nothing() -> None:
    assert parse_rr("") is None
    assert parse_rr("   ; only a comment") is None


# ---------------------------------------------------------------------------------------------
# pycorefile.fall


def test_fallthrough_helper() -> None:
    assert not Fallthrough().through("a.example.")
    assert Fallthrough.parse([]).through("anything.")
    f = Fallthrough.parse(["Example.ORG", "10.0.0.0/8", "bad..zone"])
    assert f.zones == ("example.org.", "10.in-addr.arpa.")
    assert f.through("a.example.org.") and f.through("example.org.")
    assert f.through("4.3.2.10.in-addr.arpa.")
    assert not f.through("example.com.") and not f.through("xexample.org.")
    assert Fallthrough.parse(["bad..zone"]).zones == ()
    assert not Fallthrough.parse(["bad..zone"]).through("a.")


def test_zone_helpers() -> None:
    assert is_subdomain(".", "a.b.")
    assert is_subdomain("b.", "a.b.") and is_subdomain("a.b.", "a.b.")
    assert not is_subdomain("b.", "ab.")
    assert not is_subdomain("b.", "a\\.b.")
    assert is_subdomain("b.", "a\\\\.b.")
    assert longest_zone(["b.", "a.b.", "."], "x.a.b.") == "a.b."
    assert longest_zone(["c."], "x.a.b.") == ""
    assert normalize_zones(["dns://Example.org:53", "2001:db8::/32"]) == (
        "example.org.",
        "8.b.d.0.1.0.0.2.ip6.arpa.",
    )


def test_extended_rcode_needs_an_opt_record() -> None:
    # BADCOOKIE (23) = 7 in the header + 1 in the OPT record's extended-rcode byte.
    plugin = handler("template IN A {\n rcode BADCOOKIE\n}")
    m = msg_of(serve(plugin, "a.example", "A", edns=1232))
    (opt,) = [rr for rr in m.ar if rr.rtype == QTYPE.OPT]
    assert m.header.rcode == 7 and opt.ttl >> 24 == 1 and opt.rclass == 1232
    # Without EDNS CoreDNS cannot pack such a reply: nothing is sent.
    reply = serve(plugin, "a.example", "A")
    assert not reply.written and reply.rcode == 0 and "extended rcode" in str(reply.error)
