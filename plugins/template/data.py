"""What a template sees: CoreDNS's ``templateData`` and Go-struct-like views.

Field names are CoreDNS's (``.Name``, ``.Zone``, ``.Match`` …) so that templates
written for CoreDNS render the same. ``.Message`` and ``.Question`` mirror the
miekg/dns structs (``.Message.Id``, ``.Question.Name`` in the case the client sent,
``.Question.Qtype`` as a number) and are built only when a template reads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pycorefile import wire as w
from pycorefile.zonetext import class_text, type_text

if TYPE_CHECKING:
    from pycorefile.chain import Request

__all__ = ["MessageView", "QuestionView", "RRView", "TemplateData"]

_OPCODES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE"}
# fmt: off
_RCODES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 11: "DSOTYPENI",
}
# fmt: on


class QuestionView:
    """miekg/dns ``Question``: ``Name`` (as sent), ``Qtype``, ``Qclass`` (numbers)."""

    __slots__ = ("Name", "Qtype", "Qclass")

    def __init__(self, name: str, qtype: int, qclass: int) -> None:
        self.Name = name
        self.Qtype = qtype
        self.Qclass = qclass

    def String(self) -> str:
        return str(self)

    def __str__(self) -> str:
        # miekg: ";" name TAB class TAB " " type
        return f";{self.Name}\t{class_text(self.Qclass)}\t {type_text(self.Qtype)}"


class RRHeaderView:
    """miekg/dns ``RR_Header``."""

    __slots__ = ("Name", "Rrtype", "Class", "Ttl", "Rdlength")

    def __init__(self, name: str, rrtype: int, rclass: int, ttl: int, rdlength: int) -> None:
        self.Name = name
        self.Rrtype = rrtype
        self.Class = rclass
        self.Ttl = ttl
        self.Rdlength = rdlength


class RRView:
    """A record of the request (``.Message.Extra`` holds the OPT record)."""

    __slots__ = ("Hdr", "_text")

    def __init__(self, rr: Any) -> None:
        rdata = getattr(rr, "rdata", None)
        self.Hdr = RRHeaderView(str(rr.rname), rr.rtype, rr.rclass, rr.ttl, 0)
        if rr.rtype == w.OPT:
            do = " do" if rr.ttl & w.DO_BIT else ""
            version = (rr.ttl >> 16) & 0xFF
            self._text = (
                f"\n;; OPT PSEUDOSECTION:\n; EDNS: version {version}; flags:{do}; udp: {rr.rclass}"
            )
        else:
            self._text = (
                f"{rr.rname}\t{rr.ttl}\t{class_text(rr.rclass)}\t{type_text(rr.rtype)}\t{rdata}"
            )

    def Header(self) -> RRHeaderView:
        return self.Hdr

    def String(self) -> str:
        return self._text

    def __str__(self) -> str:
        return self._text


class MessageView:
    """miekg/dns ``Msg`` of the request: header fields, sections, ``String``."""

    __slots__ = (
        "Id",
        "Response",
        "Opcode",
        "Authoritative",
        "Truncated",
        "RecursionDesired",
        "RecursionAvailable",
        "Zero",
        "AuthenticatedData",
        "CheckingDisabled",
        "Rcode",
        "Compress",
        "Question",
        "Answer",
        "Ns",
        "Extra",
    )

    def __init__(self, request: Request) -> None:
        flags = request.flags
        self.Id = request.id
        self.Response = bool(flags & w.QR)
        self.Opcode = (flags & w.OPCODE_MASK) >> 11
        self.Authoritative = bool(flags & w.AA)
        self.Truncated = bool(flags & w.TC)
        self.RecursionDesired = bool(flags & w.RD)
        self.RecursionAvailable = bool(flags & w.RA)
        self.Zero = bool(flags & 0x0040)
        self.AuthenticatedData = bool(flags & w.AD)
        self.CheckingDisabled = bool(flags & w.CD)
        self.Rcode = flags & w.RCODE_MASK
        self.Compress = False
        self.Question = [QuestionView(request.qname, request.qtype, request.qclass)]
        self.Answer: list[RRView] = []
        self.Ns: list[RRView] = []
        self.Extra: list[RRView] = []
        if request.wire[6:12] != b"\x00\x00\x00\x00\x00\x00":
            msg = request.message
            self.Answer = [RRView(rr) for rr in msg.rr]
            self.Ns = [RRView(rr) for rr in msg.auth]
            self.Extra = [RRView(rr) for rr in msg.ar]

    @property
    def MsgHdr(self) -> MessageView:
        return self

    def String(self) -> str:
        return str(self)

    def __str__(self) -> str:
        flags = "".join(
            f" {name}"
            for name, on in (
                ("qr", self.Response),
                ("aa", self.Authoritative),
                ("tc", self.Truncated),
                ("rd", self.RecursionDesired),
                ("ra", self.RecursionAvailable),
                ("z", self.Zero),
                ("ad", self.AuthenticatedData),
                ("cd", self.CheckingDisabled),
            )
            if on
        )
        extra = [rr for rr in self.Extra if rr.Hdr.Rrtype != w.OPT]
        opt = [rr for rr in self.Extra if rr.Hdr.Rrtype == w.OPT]
        out = [
            f";; opcode: {_OPCODES.get(self.Opcode, '')}, status: {_RCODES.get(self.Rcode, '')}, "
            f"id: {self.Id}\n;; flags:{flags}; QUERY: {len(self.Question)}, "
            f"ANSWER: {len(self.Answer)}, AUTHORITY: {len(self.Ns)}, ADDITIONAL: {len(self.Extra)}\n"
        ]
        if opt:
            out.append(str(opt[0]) + "\n")
        for title, rows in (
            ("QUESTION", self.Question),
            ("ANSWER", self.Answer),
            ("AUTHORITY", self.Ns),
            ("ADDITIONAL", extra),
        ):
            if rows:
                out.append(f"\n;; {title} SECTION:\n")
                out.extend(str(r) + "\n" for r in rows)
        return "".join(out)


class TemplateData:
    """CoreDNS's ``templateData``: the fields a template can read.

    ``.Message`` and ``.Question`` are computed on first use; ``.Meta "name"`` is
    the request's metadata value (empty when there is none).
    """

    __slots__ = (
        "Zone",
        "Name",
        "Regex",
        "Match",
        "Group",
        "Class",
        "Type",
        "Remote",
        "_req",
        "_msg",
    )

    def __init__(
        self,
        request: Request,
        zone: str,
        regex: str,
        match: list[str],
        group: dict[str, str],
        qclass: str,
        qtype: str,
    ) -> None:
        self.Zone = zone
        self.Name = request.name
        self.Regex = regex
        self.Match = match
        self.Group = group
        self.Class = qclass
        self.Type = qtype
        self.Remote = request.client[0]
        self._req = request
        self._msg: MessageView | None = None

    @property
    def Message(self) -> MessageView:
        if self._msg is None:
            self._msg = MessageView(self._req)
        return self._msg

    @property
    def Question(self) -> QuestionView:
        req = self._req
        return QuestionView(req.qname, req.qtype, req.qclass)

    def Meta(self, name: str) -> str:
        """The value of metadata ``name``; ``""`` when unknown (CoreDNS behaviour)."""
        meta = self._req.meta
        if not meta:
            return ""
        value = meta.get(name)
        if value is None:
            return ""
        return value() if callable(value) else str(value)
