"""Reading ``template`` stanzas: CoreDNS's ``templateParse``, error for error.

Every ``template`` line of a server block is read from one token stream, in
Corefile order, exactly as CoreDNS's option dispenser walks it, so that odd
layouts fail (or pass) the way they do in CoreDNS: ``rcode NXDOMAIN fallthrough``
on one line is an ``rcode`` followed by a ``fallthrough``, a ``{`` on the next
line is "Unexpected token '{', expecting argument", and so on.

Regexes are compiled with RE2 (Go's regexp is RE2 syntax and semantics) and the
record templates with the Go ``text/template`` evaluator, both once, here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import re2

from pycorefile import wire as w
from pycorefile.corefile.errors import CorefileError
from pycorefile.corefile.model import Directive, Token
from pycorefile.fall import Fallthrough, longest_zone, normalize_zones
from pycorefile.zonetext import CLASS_CODES, TYPE_CODES

from . import gotemplate

__all__ = ["MAX_REGEXP_LEN", "RCODES", "RRTemplate", "Regex", "Rule", "parse_rules"]

PLUGIN = "template"

#: A hard limit on regex length (CoreDNS: against memory exhaustion at compile time).
MAX_REGEXP_LEN = 10000

#: miekg/dns ``StringToRcode`` (upper case only; ``SUCCESS`` is not in it,
#: coredns/coredns#5327; ``NOTIMPL`` is an old alias).
# fmt: off
RCODES: dict[str, int] = {
    "NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "NOTIMPL": 4,
    "REFUSED": 5, "YXDOMAIN": 6, "YXRRSET": 7, "NXRRSET": 8, "NOTAUTH": 9, "NOTZONE": 10,
    "DSOTYPENI": 11, "BADSIG": 16, "BADKEY": 17, "BADTIME": 18, "BADMODE": 19,
    "BADNAME": 20, "BADALG": 21, "BADTRUNC": 22, "BADCOOKIE": 23,
}
# fmt: on

# RE2's error texts → Go's regexp/syntax ErrorCode texts (the messages users see).
_GO_REGEX_ERRORS = {
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "unexpected )": "unexpected )",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "missing argument to repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid named capture group": "invalid named capture",
    "invalid escape sequence": "invalid escape sequence",
    "invalid character class": "invalid character class",
    "invalid character class range": "invalid character class range",
    "invalid UTF-8": "invalid UTF-8",
    "pattern too large - compile failed": "expression too large",
    "pattern too large - reverse compile failed": "expression too large",
}

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # errors are reported as setup errors, not on stderr
_UNANCHORED = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)

# Go rejects `\C` (any byte), which RE2 accepts.
_BACKSLASH_C = re.compile(r"(?<!\\)(?:\\\\)*\\C")


class RegexError(ValueError):
    """A regex RE2 (or Go) rejects; the text is Go's ``error parsing regexp: …``."""


class Regex:
    """One ``match`` regex: RE2, searched unanchored, Go's group results.

    :meth:`search` returns ``[whole match, group 1, …]`` with ``""`` for groups that
    did not take part (Go's ``FindStringSubmatch``), or ``None``.
    """

    __slots__ = ("source", "names", "_rx", "_compiled", "_all")

    def __init__(self, source: str) -> None:
        if _BACKSLASH_C.search(source):
            raise RegexError("error parsing regexp: invalid escape sequence: `\\C`")
        try:
            compiled = re2.compile(source.encode("utf-8"), _RE2_OPTIONS)
        except re2.error as exc:
            raise RegexError(_go_regex_error(exc, source)) from None
        self.source = source
        self._compiled = compiled
        inner = getattr(compiled, "_regexp", None)
        self._rx = inner if inner is not None and _UNANCHORED is not None else None
        named = compiled.groupindex if self._rx is None else _named_groups(inner)
        ngroups = compiled.groups
        self.names: list[str] = [""] * (ngroups + 1)
        for name, index in named.items():
            self.names[index] = name
        # `.*` (the default) matches every name whole: no need to run RE2.
        self._all = source == ".*"

    def search(self, text: str) -> list[str] | None:
        if self._all:
            return [text]
        data = text.encode("utf-8")
        rx = self._rx
        if rx is not None:
            spans = rx.Match(_UNANCHORED, data, 0, len(data))
            if spans[0][0] < 0:
                return None
            return [data[s:e].decode("utf-8", "replace") if s >= 0 else "" for s, e in spans]
        m = self._compiled.search(data)
        if m is None:
            return None
        groups = [m.group(0), *m.groups()]
        return [g.decode("utf-8", "replace") if g is not None else "" for g in groups]

    def __repr__(self) -> str:
        return f"Regex({self.source!r})"


def _named_groups(inner: object) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, index in inner.NamedCapturingGroups():  # type: ignore[attr-defined]
        out[name.decode("utf-8") if isinstance(name, bytes) else name] = index
    return out


def _go_regex_error(exc: BaseException, source: str) -> str:
    raw = exc.args[0] if exc.args else str(exc)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    code, sep, arg = text.partition(": ")
    go_code = _GO_REGEX_ERRORS.get(code, code)
    if not sep:
        arg = source
    return f"error parsing regexp: {go_code}: `{arg}`"


# Field names whose value depends on more than the question (qname, qtype, qclass).
_DYNAMIC_FIELD = re.compile(r"\.(?:Remote|Message|Meta|Question|Var)(?![A-Za-z0-9_])")
# The data as a whole (a lone `.` or `$`): printing it shows every field.
_WHOLE_DATA = re.compile(r"(?<![A-Za-z0-9_)\]\"'`.])\.(?![A-Za-z_])|\$(?![A-Za-z0-9_.])")
_ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)


def depends_on_question_only(source: str) -> bool:
    """Does a template's output depend only on the question (name, type, class)?

    True unless an action reads ``.Remote``, ``.Message``, ``.Meta`` or
    ``.Question``, or uses the whole data (``{{ . }}``, ``printf "%v" $``).
    Conservative: anything doubtful counts as dynamic (the reply is then not
    memoised, which is only slower).
    """
    for action in _ACTION.findall(source):
        if _DYNAMIC_FIELD.search(action) or _WHOLE_DATA.search(action):
            return False
    return "{{" not in _ACTION.sub("", source)


class RRTemplate:
    """One ``answer``/``additional``/``authority`` argument, compiled once."""

    __slots__ = ("section", "source", "compiled", "label", "static")

    def __init__(self, section: str, source: str) -> None:
        self.section = section
        self.source = source
        self.compiled = gotemplate.compile_template(
            source, name=section, funcs=gotemplate.COREDNS_FUNCS
        )
        # The metrics' `template` label: CoreDNS uses the parse tree printed back.
        self.label = _tree_text(self.compiled, source)
        self.static = depends_on_question_only(source)

    def render(self, data: object) -> str:
        return self.compiled.execute(data)

    def __repr__(self) -> str:
        return f"RRTemplate({self.section!r}, {self.source!r})"


_GO_ACTION = re.compile(
    r"(?P<lt>[ \t\r\n]*)\{\{(?P<ltrim>-[ \t\r\n])?(?P<body>(?:\"(?:\\.|[^\"\\])*\"|`[^`]*`|'(?:\\.|[^'\\])*'|[^\"`'}]|\}(?!\}))*?)(?P<rtrim>[ \t\r\n]-)?\}\}(?P<rt>[ \t\r\n]*)",
    re.S,
)
_GO_LEXEME = re.compile(r"\"(?:\\.|[^\"\\])*\"|`[^`]*`|'(?:\\.|[^'\\])*'|\s+|[^\s\"`']+", re.S)


def _tree_text(compiled: object, source: str) -> str:
    """Go's ``template.Tree.Root.String()`` of ``source``: the metrics' ``template``
    label. Actions are printed back tightly (``{{ .Name }}`` → ``{{.Name}}``), trim
    markers applied, comments dropped, as Go's parse tree prints itself."""
    for attr in ("root_string", "tree_string"):
        value = getattr(compiled, attr, None)
        if value is not None:
            return str(value() if callable(value) else value)

    def action(m: re.Match[str]) -> str:
        body = m.group("body").strip()
        if body.startswith("/*") and body.endswith("*/"):
            text = ""
        else:
            parts = []
            for lexeme in _GO_LEXEME.findall(body):
                parts.append(" " if lexeme.isspace() else lexeme)
            text = "{{" + re.sub(r"\( | \)", lambda p: p.group(0).strip(), "".join(parts)) + "}}"
        left = "" if m.group("ltrim") else m.group("lt")
        right = "" if m.group("rtrim") else m.group("rt")
        return left + text + right

    return _GO_ACTION.sub(action, source)


@dataclass
class Rule:
    """One ``template`` stanza (CoreDNS's ``template`` struct)."""

    qclass: int
    qtype: int
    zones: tuple[str, ...]
    regexes: list[Regex] = field(default_factory=list)
    answer: list[RRTemplate] = field(default_factory=list)
    additional: list[RRTemplate] = field(default_factory=list)
    authority: list[RRTemplate] = field(default_factory=list)
    rcode: int = w.NOERROR
    ederror: tuple[int, str] | None = None
    fall: Fallthrough = field(default_factory=Fallthrough)

    @property
    def static(self) -> bool:
        """True when the reply depends only on the question (it can be memoised)."""
        return all(t.static for t in (*self.answer, *self.additional, *self.authority))

    def zone_of(self, name: str) -> str:
        return longest_zone(self.zones, name)


# ---------------------------------------------------------------------------
# The dispenser: CoreDNS's (Caddy's) cursor over a directive's tokens.
# ---------------------------------------------------------------------------


class _Dispenser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.cursor = -1
        self.nesting = 0

    @property
    def token(self) -> Token:
        return self.tokens[min(max(self.cursor, 0), len(self.tokens) - 1)]

    def val(self) -> str:
        if 0 <= self.cursor < len(self.tokens):
            return self.tokens[self.cursor].text
        return ""

    def next(self) -> bool:
        if self.cursor < len(self.tokens) - 1:
            self.cursor += 1
            return True
        return False

    def next_arg(self) -> bool:
        if self.cursor < 0:
            self.cursor += 1
            return True
        if self.cursor >= len(self.tokens) - 1:
            return False
        cur, nxt = self.tokens[self.cursor], self.tokens[self.cursor + 1]
        if cur.file == nxt.file and cur.line + cur.text.count("\n") == nxt.line:
            self.cursor += 1
            return True
        return False

    def remaining_args(self) -> list[str]:
        args: list[str] = []
        while self.next_arg():
            if self.val() == "{":
                self.cursor -= 1
                break
            args.append(self.val())
        return args

    def next_block(self) -> bool:
        if self.nesting > 0:
            if not self.next():
                return False
            if self.val() == "}":
                self.nesting -= 1
                return False
            return True
        if not self.next_arg():
            return False
        if self.val() != "{":
            self.cursor -= 1
            return False
        if not self.next():
            return False
        if self.val() == "}":
            return False
        self.nesting += 1
        return True

    def err(self, message: str) -> CorefileError:
        return self.token.error(message, plugin=PLUGIN)

    def arg_err(self) -> CorefileError:
        if self.val() == "{":
            return self.err("Unexpected token '{', expecting argument")
        return self.err(f"Wrong argument count or unexpected line ending after '{self.val()}'")


def _raw_tokens(d: Directive) -> list[Token]:
    """The directive's tokens in source order, braces included."""
    raw = getattr(d, "raw", ())
    if raw:
        return list(raw)
    # A model built by hand: rebuild the stream (braces on the line of the token
    # before them, the closing one on the line after the last token).
    out = [d.name_token, *d.arg_tokens]
    if d.block is not None:
        last = out[-1]
        out.append(Token("{", last.file, last.line))
        for sub in d.block:
            out.extend(_raw_tokens(sub))
        end = out[-1]
        out.append(Token("}", end.file, end.line + 1 + end.text.count("\n")))
    return out


# ---------------------------------------------------------------------------
# templateParse
# ---------------------------------------------------------------------------


def parse_rules(directives: Sequence[Directive], block_zones: Sequence[str]) -> list[Rule]:
    """Every ``template`` stanza of one server block, in Corefile order.

    Raises :class:`CorefileError` (``plugin/template: FILE:LINE - Error during
    parsing: …``) at the token CoreDNS reports.
    """
    tokens: list[Token] = []
    for d in directives:
        tokens.extend(_raw_tokens(d))
    c = _Dispenser(tokens)
    rules: list[Rule] = []
    while c.next():
        if not c.next_arg():
            raise c.arg_err()
        qclass = CLASS_CODES.get(c.val())
        if qclass is None:
            raise c.err(f"invalid query class {c.val()}")
        if not c.next_arg():
            raise c.arg_err()
        qtype = TYPE_CODES.get(c.val())
        if qtype is None:
            # CoreDNS's message says "class" for a bad type.
            raise c.err(f"invalid RR class {c.val()}")
        args = c.remaining_args()
        zones = normalize_zones(args) if args else tuple(block_zones)
        rule = Rule(qclass=qclass, qtype=qtype, zones=zones)
        while c.next_block():
            _option(c, rule)
        if not rule.regexes:
            rule.regexes.append(Regex(".*"))
        rules.append(rule)
    return rules


def _option(c: _Dispenser, rule: Rule) -> None:
    word = c.val()
    if word == "match":
        args = c.remaining_args()
        if not args:
            raise c.arg_err()
        for source in args:
            size = len(source.encode("utf-8"))
            if size > MAX_REGEXP_LEN:
                raise c.err(f"regex pattern too long: {size} > {MAX_REGEXP_LEN}")
            try:
                rule.regexes.append(Regex(source))
            except RegexError as exc:
                raise c.err(f"could not parse regex: {source}, {exc}") from None
    elif word in ("answer", "additional", "authority"):
        args = c.remaining_args()
        if not args:
            raise c.arg_err()
        for source in args:
            try:
                tmpl = RRTemplate(word, source)
            except gotemplate.TemplateError as exc:
                # CoreDNS prints the last token of the line, not the failing one.
                raise c.err(f"could not compile template: {c.val()}, {exc}") from None
            getattr(rule, word).append(tmpl)
    elif word in ("var", "expr"):
        raise c.err(
            f"'{word}' is not supported by pycorefile (expr-lang expressions); "
            "use 'match' regexes and Go template logic instead"
        )
    elif word == "rcode":
        if not c.next_arg():
            raise c.arg_err()
        rcode = RCODES.get(c.val())
        if rcode is None:
            raise c.err(f"unknown rcode {c.val()}")
        rule.rcode = rcode
    elif word == "ederror":
        args = c.remaining_args()
        if len(args) not in (1, 2):
            raise c.arg_err()
        code = _parse_uint16(args[0])
        if isinstance(code, str):
            # As CoreDNS: the message names the line's last argument.
            raise c.err(f"error parsing extended DNS error code {c.val()}, {code}")
        rule.ederror = (code, args[1] if len(args) == 2 else "")
    elif word == "fallthrough":
        rule.fall = Fallthrough.parse(c.remaining_args())
    elif word == "upstream":
        c.remaining_args()  # accepted and ignored (CoreDNS: "remove soon")
    else:
        raise c.arg_err()


def _parse_uint16(text: str) -> int | str:
    """Go's ``strconv.ParseUint(text, 10, 16)``: the value, or the error text."""
    if not text or not text.isascii() or not text.isdigit():
        return f'strconv.ParseUint: parsing "{text}": invalid syntax'
    value = int(text)
    if value > 0xFFFF:
        return f'strconv.ParseUint: parsing "{text}": value out of range'
    return value
