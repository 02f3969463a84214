"""Go text/template as the template plugin uses it: output and errors as Go gives them.

Expected values come from Go's behaviour (text/template's and fmt's own test tables and
CoreDNS's plugin/template tests); where Python and Go differ in kind (one int type,
str is text) the tests pin what this implementation promises instead.
"""

from __future__ import annotations

import sys
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pycorefile.plugins.template import gotemplate
from pycorefile.plugins.template.gotemplate import (
    COREDNS_FUNCS,
    NumError,
    Template,
    TemplateError,
    TemplateExecError,
    TemplateSyntaxError,
    compile_template,
    parse_int,
)

# ---------------------------------------------------------------------------------------------
# Data shaped like CoreDNS's template data (plugin/template), for ip-10-95-12-8.example.


@dataclass
class Question:
    Name: str
    Qtype: int
    Qclass: int


@dataclass
class Message:
    Id: int
    Question: list[Question]


@dataclass
class TemplateData:
    Name: str = "ip-10-95-12-8.example."
    Zone: str = "example."
    Class: str = "IN"
    Type: str = "A"
    Match: list[str] = field(default_factory=lambda: ["ip-10-95-12-8.example.", "95", "12", "8"])
    Group: dict[str, str] = field(
        default_factory=lambda: {
            "0": "ip-10-95-12-8.example.",
            "1": "95",
            "2": "12",
            "3": "8",
            "b": "95",
            "c": "12",
            "d": "8",
        }
    )
    Regex: str = r"(^|[.])ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$"
    Message: Message = field(
        default_factory=lambda: Message(4711, [Question("IP-10-95-12-8.Example.", 1, 1)])
    )
    Question: Question = field(default_factory=lambda: Question("IP-10-95-12-8.Example.", 1, 1))
    Remote: str = "10.240.0.1"
    Var: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=lambda: {"foo": "myfoo", "bar": "mybar"})

    def Meta(self, key: str) -> str:
        return self.metadata.get(key, "")


def query_data(name: str = "test.example.", **groups: str) -> TemplateData:
    """Data for a query matched by `.*` (no groups) or by a named-group regex."""
    match = [name, *groups.values()]
    group = {str(i): v for i, v in enumerate(match)} | dict(groups)
    return TemplateData(Name=name, Match=match, Group=group)


DATA = TemplateData()


def render(text: str, data: Any = DATA, funcs: Any = COREDNS_FUNCS) -> str:
    return compile_template(text, funcs=funcs).execute(data)


def exec_error(text: str, data: Any = DATA, funcs: Any = COREDNS_FUNCS) -> TemplateExecError:
    tpl = compile_template(text, funcs=funcs)
    with pytest.raises(TemplateExecError) as info:
        tpl.execute(data)
    return info.value


def syntax_error(text: str, name: str = "answer") -> TemplateSyntaxError:
    with pytest.raises(TemplateSyntaxError) as info:
        compile_template(text, name, funcs=COREDNS_FUNCS)
    return info.value


# ---------------------------------------------------------------------------------------------
# CoreDNS's plugin/template tests: the templates people actually write.

COREDNS_RENDERS = [
    pytest.param(
        "{{ .Name }} 60 IN A {{ .Remote }}",
        DATA,
        "ip-10-95-12-8.example. 60 IN A 10.240.0.1",
        id="IPMatch",
    ),
    pytest.param(
        "{{ .Name }} 60 IN A 10.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}",
        DATA,
        "ip-10-95-12-8.example. 60 IN A 10.95.12.8",
        id="DomainMatch",
    ),
    pytest.param(
        "{{ .Name }} 60 IN A {{ index .Match 1 }}.{{ index .Match 2 }}",
        DATA,
        "ip-10-95-12-8.example. 60 IN A 95.12",
        id="index-match",
    ),
    pytest.param(
        "{{ .Name }} 60 IN A 10.{{ parseInt .Group.b 16 8 }}.{{ parseInt .Group.c 16 8 }}"
        ".{{ parseInt .Group.d 16 8 }}",
        query_data("ip0a5f0c09.example.", b="5f", c="0c", d="09"),
        "ip0a5f0c09.example. 60 IN A 10.95.12.9",
        id="HexIp",
    ),
    pytest.param(
        "{{ .Name }} 60 MX 10 {{ .Name }}",
        DATA,
        "ip-10-95-12-8.example. 60 MX 10 ip-10-95-12-8.example.",
        id="MXMatch",
    ),
    pytest.param(
        '{{ .Meta "foo" }}-{{ .Name }} 60 IN A {{ .Meta "bar" }}.example.',
        DATA,
        "myfoo-ip-10-95-12-8.example. 60 IN A mybar.example.",
        id="mdMatch",
    ),
    pytest.param(
        '{{ .Meta "foofoo" }}{{ .Name }} 60 IN A 10.95.12.8',
        DATA,
        "ip-10-95-12-8.example. 60 IN A 10.95.12.8",
        id="mdMissing",
    ),
    pytest.param("{{ .Name }}", query_data(), "test.example.", id="NonRR-renders"),
    pytest.param(
        "invalid. 60 {{ .Class }} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)",
        DATA,
        "invalid. 60 IN SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)",
        id="InvalidNXDOMAIN-SOA",
    ),
    pytest.param(
        "{{ .Zone }} {{ .Type }} {{ .Class }} {{ .Regex }}",
        DATA,
        "example. A IN " + DATA.Regex,
        id="zone-type-class-regex",
    ),
    pytest.param(
        "{{ .Question.Name }} {{ .Question.Qtype }} {{ .Message.Id }} "
        "{{ (index .Message.Question 0).Name }}",
        DATA,
        "IP-10-95-12-8.Example. 1 4711 IP-10-95-12-8.Example.",
        id="message-question",
    ),
    pytest.param("{{ .Group.nothere }}", DATA, "<no value>", id="missing-group-key"),
    pytest.param('{{ index .Group "nothere" }}|', DATA, "|", id="index-missing-group-key"),
    pytest.param("{{ .Group }}", query_data("x.", b="1"), "map[0:x. 1:1 b:1]", id="group-map"),
    pytest.param("{{ .Match }}", query_data("x.", b="1"), "[x. 1]", id="match-list"),
]


@pytest.mark.parametrize(("text", "data", "want"), COREDNS_RENDERS)
def test_coredns_templates(text: str, data: Any, want: str) -> None:
    assert render(text, data) == want


def test_coredns_broken_template_index_out_of_range() -> None:
    # BrokenTemplate: .Match has only the whole match for the `.*` regex.
    e = exec_error('{{ .Name }} 60 IN TXT "{{ index .Match 2 }}"', query_data())
    assert str(e) == (
        'template: answer:1:26: executing "answer" at <index .Match 2>: '
        "error calling index: index out of range: 2"
    )
    assert (e.name, e.line, e.column, e.context) == ("answer", 1, 26, "index .Match 2")
    assert e.description == "error calling index: index out of range: 2"


def test_coredns_broken_parse_int() -> None:
    e = exec_error('{{ .Name }} 60 IN A 10.{{ parseInt "gg" 16 8 }}.0.1')
    assert str(e) == (
        'template: answer:1:26: executing "answer" at <parseInt "gg" 16 8>: '
        'error calling parseInt: strconv.ParseUint: parsing "gg": invalid syntax'
    )


def test_coredns_setup_compiles_what_coredns_compiles() -> None:
    # Setup accepts these; they fail (or not) only when a query renders them.
    for text in ("{{ parseInt }}", "{{ .Name }} 60 IN A {{ .Grup.d }}", "(?P<x>"):
        assert isinstance(compile_template(text, funcs=COREDNS_FUNCS), Template)
    assert str(exec_error("{{ parseInt }}")) == (
        'template: answer:1:3: executing "answer" at <parseInt>: '
        "wrong number of args for parseInt: want 3 got 0"
    )
    assert str(exec_error("{{ .Name }} 60 IN A {{ .Grup.d }}")) == (
        'template: answer:1:23: executing "answer" at <.Grup.d>: '
        "can't evaluate field Grup in type TemplateData"
    )


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("{{ notAFunction }}", 'template: answer:1: function "notAFunction" not defined'),
        ("{{", "template: answer:1: unclosed action"),
        ("{{ .Name", "template: answer:1: unclosed action"),
        ("ip.example. 60 IN A {{ .Remote", "template: answer:1: unclosed action"),
    ],
)
def test_coredns_setup_errors(text: str, want: str) -> None:
    assert str(syntax_error(text)) == want


def test_parse_int_without_coredns_funcs_is_not_defined() -> None:
    with pytest.raises(TemplateSyntaxError, match='function "parseInt" not defined'):
        compile_template("{{ parseInt .Group.b 16 8 }}")


# ---------------------------------------------------------------------------------------------
# Fields, methods and the data model.


class Obj:
    """A plain object with attributes, a property and methods."""

    def __init__(self) -> None:
        self.X = "x"
        self.N = 17
        self.Inner = {"k": "v"}
        self.Fn = lambda: "not called"
        self._secret = "hidden"

    @property
    def Prop(self) -> str:
        return "prop"

    def Method0(self) -> str:
        return "M0"

    def Method1(self, n: int) -> int:
        return n

    def Method2(self, n: int, s: str) -> str:
        return f"Method2: {n} {s}"

    def Echo(self, v: Any) -> Any:
        return v

    def Fail(self) -> str:
        raise RuntimeError("it broke")


class Stringer:
    def __str__(self) -> str:
        return "foozle"


@dataclass
class Pair:
    A: int
    B: str


FIELD_CASES = [
    ("{{ .X }}", {"X": "from dict"}, "from dict"),
    ("{{ .x }} {{ .y }}", {"x": 99}, "99 <no value>"),
    ("{{ .cause }}", {"cause": "neglect"}, "neglect"),
    ("{{ .A.B.C }}", {"A": {"B": {"C": "deep"}}}, "deep"),
    ("{{ .A.missing.C }}", {"A": {}}, "<no value>"),
    ("{{ .X }}", Obj(), "x"),
    ("{{ .N }}", Obj(), "17"),
    ("{{ .Inner.k }}", Obj(), "v"),
    ("{{ .Prop }}", Obj(), "prop"),
    ("-{{ .Method0 }}-", Obj(), "-M0-"),
    ("-{{ .Method1 1234 }}-", Obj(), "-1234-"),
    ("-{{ .Method1 .N }}-", Obj(), "-17-"),
    ("-{{ .Method2 3 .X }}-", Obj(), "-Method2: 3 x-"),
    ("-{{ .Method0 | .Method2 16 }}-", Obj(), "-Method2: 16 M0-"),
    ("{{ .Echo nil }}", Obj(), "<nil>"),
    ("{{ $.X }} {{ $x := . }}{{ $x.Method0 }}", Obj(), "x M0"),
    ("{{ (.).X }}", Obj(), "x"),
    ("{{ with .Inner }}{{ .k }}{{ end }}", Obj(), "v"),
    ("{{ .Missing }}", None, "<no value>"),  # nil data: Go's invalid dot
    ("{{ . }}", None, "<no value>"),
    ("{{ (.).foo }}", None, "<no value>"),
    ("{{ .A }}", defaultdict(str, {"A": "a"}), "a"),
    ("{{ .B }}", defaultdict(str), "<no value>"),  # a look must not create the key
    ("{{ .K }}", OrderedDict(K="ordered"), "ordered"),
    ("{{ . }}", Stringer(), "foozle"),
    ("{{ . }}", Pair(1, "b"), "{1 b}"),
    ("{{ .A }}", Pair(1, "b"), "1"),
]


@pytest.mark.parametrize(("text", "data", "want"), FIELD_CASES)
def test_fields(text: str, data: Any, want: str) -> None:
    assert render(text, data) == want


FIELD_ERRORS = [
    ("{{ .Grup }}", Obj(), "at <.Grup>: can't evaluate field Grup in type Obj"),
    ("{{ .X.Y }}", 0, "can't evaluate field X in type int"),
    ("{{ .upper }}", "abc", "can't evaluate field upper in type string"),
    ("{{ ._secret }}", Obj(), "can't evaluate field _secret in type Obj"),
    ("{{ .__class__ }}", Obj(), "can't evaluate field __class__ in type Obj"),
    ("{{ .X 1 }}", Obj(), "X has arguments but cannot be invoked as function"),
    ("{{ .Fn 1 }}", Obj(), "Fn has arguments but cannot be invoked as function"),
    ("{{ .k 1 }}", {"k": "v"}, "k is not a method but has arguments"),
    ("{{ 1 | .X }}", Obj(), "X has arguments but cannot be invoked as function"),
    ("{{ .Method1 }}", Obj(), "wrong number of args for Method1: want 1 got 0"),
    ("{{ .Method0 1 }}", Obj(), "wrong number of args for Method0: want 0 got 1"),
    ("{{ .Method1 `x` }}", Obj(), "expected integer; found `x`"),
    ("{{ .Method1 .X }}", Obj(), "wrong type for value; expected int; got string"),
    ("{{ .Fail }}", Obj(), "at <.Fail>: error calling Fail: it broke"),
    ("{{ .A.B }}", {"A": None}, "nil pointer evaluating interface {}.B"),
]


@pytest.mark.parametrize(("text", "data", "want"), FIELD_ERRORS)
def test_field_errors(text: str, data: Any, want: str) -> None:
    assert want in str(exec_error(text, data))


def test_method_with_a_piped_argument_in_coredns_style() -> None:
    assert render('{{ "foo" | .Meta }}') == "myfoo"


# ---------------------------------------------------------------------------------------------
# Literals and how values print (fmt's %v).


@dataclass
class Values:
    N: int = 17
    F: float = 1.5
    S: str = "xyz"
    B: bool = True
    SI: list[int] = field(default_factory=lambda: [3, 4, 5])
    SIEmpty: list[int] = field(default_factory=list)
    SB: list[bool] = field(default_factory=lambda: [True, False])
    MSI: dict[str, int] = field(default_factory=lambda: {"one": 1, "two": 2, "three": 3})
    MSIone: dict[str, int] = field(default_factory=lambda: {"one": 1})
    MSIEmpty: dict[str, int] = field(default_factory=dict)
    SMSI: list[dict[str, int]] = field(default_factory=lambda: [{"one": 1}, {"eleven": 11}])
    MIS: dict[int, str] = field(default_factory=lambda: {2: "two", 10: "ten", 1: "one"})
    Nil: Any = None
    Empty3: list[int] = field(default_factory=lambda: [7, 8])
    Bytes: bytes = b"hi"
    Pair: Pair = field(default_factory=lambda: Pair(1, "b"))
    Str: Stringer = field(default_factory=Stringer)


VALS = Values()

VALUE_CASES = [
    ("empty", "", ""),
    ("text", "hello, world", "hello, world"),
    ("dot int", "{{ .N }}", "17"),
    ("dot float", "{{ .F }}", "1.5"),
    ("dot string", "{{ .S }}", "xyz"),
    ("dot bool", "{{ .B }}", "true"),
    ("slice", "{{ .SI }}", "[3 4 5]"),
    ("empty slice", "{{ .SIEmpty }}", "[]"),
    ("map sorted", "{{ .MSI }}", "map[one:1 three:3 two:2]"),
    ("int keys sorted", "{{ .MIS }}", "map[1:one 2:two 10:ten]"),
    ("nil", "{{ .Nil }}", "<nil>"),
    ("bytes", "{{ .Bytes }}", "[104 105]"),
    ("struct", "{{ .Pair }}", "{1 b}"),
    ("stringer", "{{ .Str }}", "foozle"),
    ("list of maps", "{{ .SMSI }}", "[map[one:1] map[eleven:11]]"),
    ("string literal", '{{ "a\\tb\\u00e9\\x41\\101" }}', "a\tbéAA"),
    ("raw string", "{{ `a\\tb` }}", "a\\tb"),
    ("raw string drops CR", "{{ `a\r\nb` }}", "a\nb"),
    ("char", "{{ 'a' }} {{ '\\n' }} {{ 'é' }}", "97 10 233"),
    ("decimal", "{{ print 1234 }}", "1234"),
    ("decimal _", "{{ print 12_34 }}", "1234"),
    ("binary", "{{ print 0b101 }} {{ print 0B101 }} {{ print 0b_1_0_1 }}", "5 5 5"),
    ("octal", "{{ print 0377 }} {{ print 0o377 }} {{ print 0O377 }}", "255 255 255"),
    ("hex", "{{ print 0x123 }} {{ print 0X123ABC }} {{ print 0x1_23 }}", "291 1194684 291"),
    ("negative", "{{ -3 }} {{ +3 }}", "-3 3"),
    ("float", "{{ print 123.4 }} {{ print 0_0_1_2_3.4 }}", "123.4 123.4"),
    ("float exp", "{{ 1e6 }} {{ 1.5e-7 }} {{ 123456.0 }} {{ 1.0 }}", "1e+06 1.5e-07 123456 1"),
    ("hex float", "{{ print +0x1.ep+2 }} {{ print +0X1.EP+2 }}", "7.5 7.5"),
    ("print multi", "{{ print 1_2_3_4 7.5_00_00_00 }}", "1234 7.5"),
    ("hex is int", "{{ printf `%T` 0xef }}", "int"),
    ("bool literals", "{{ true }} {{ false }}", "true false"),
    ("parenthesized", "{{ (1) }}", "1"),
    ("comment", "a{{/* a comment */}}b", "ab"),
    ("multiline comment", "a{{/*\n\n*/}}b", "ab"),
    ("newlines in action", "{{ index\n.SI\n1 }}", "4"),
]


@pytest.mark.parametrize(("text", "want"), [pytest.param(t, w, id=i) for i, t, w in VALUE_CASES])
def test_values(text: str, want: str) -> None:
    assert render(text, VALS) == want


# ---------------------------------------------------------------------------------------------
# Whitespace trimming: `{{- ` and ` -}}` (the space is required).

TRIM_CASES = [
    ("trim left", "x \r\n\t{{- 3 }}", "x3"),
    ("trim right", "{{ 3 -}}\n\n\ty", "3y"),
    ("trim both", "x \r\n\t{{- 3 -}}\n\n\ty", "x3y"),
    ("trim with newline marker", "x \n{{-\n3\n-}}\n y", "x3y"),
    ("negative number is no marker", "x {{-3}} y", "x -3 y"),
    ("negative number after space", "x {{ -3 }} y", "x -3 y"),
    ("comment trim left", "x \r\n\t{{- /* hi */}}", "x"),
    ("comment trim right", "{{/* hi */ -}}\n\n\ty", "y"),
    ("comment trim both", "x \r\n\t{{- /* */ -}}\n\n\ty", "xy"),
    ("block trims", "{{- range .SI -}}\n  {{ . }},\n{{- end }}", "3,4,5,"),
    (
        "zone file style",
        "{{ .S }} {{- if .B }} 60 IN A {{ .N }} {{- end }}\n",
        "xyz 60 IN A 17\n",
    ),
    ("only whitespace between", "{{ 1 }}   {{- 2 }}", "12"),
]


@pytest.mark.parametrize(("text", "want"), [pytest.param(t, w, id=i) for i, t, w in TRIM_CASES])
def test_trimming(text: str, want: str) -> None:
    assert render(text, VALS) == want


# ---------------------------------------------------------------------------------------------
# Control structures and variables.

CONTROL_CASES = [
    ("if true", "{{ if true }}TRUE{{ end }}", "TRUE"),
    ("if false", "{{ if false }}TRUE{{ else }}FALSE{{ end }}", "FALSE"),
    ("if 1", "{{ if 1 }}NON-ZERO{{ else }}ZERO{{ end }}", "NON-ZERO"),
    ("if 0", "{{ if 0 }}NON-ZERO{{ else }}ZERO{{ end }}", "ZERO"),
    ("if 1.5", "{{ if 1.5 }}NON-ZERO{{ else }}ZERO{{ end }}", "NON-ZERO"),
    ("if empty string", "{{ if `` }}NON-EMPTY{{ else }}EMPTY{{ end }}", "EMPTY"),
    ("if string", "{{ if `x` }}NON-EMPTY{{ else }}EMPTY{{ end }}", "NON-EMPTY"),
    ("if empty slice", "{{ if .SIEmpty }}NON-EMPTY{{ else }}EMPTY{{ end }}", "EMPTY"),
    ("if slice", "{{ if .SI }}NON-EMPTY{{ else }}EMPTY{{ end }}", "NON-EMPTY"),
    ("if empty map", "{{ if .MSIEmpty }}NON-EMPTY{{ else }}EMPTY{{ end }}", "EMPTY"),
    ("if missing key", "{{ if .MSI.none }}NON-ZERO{{ else }}ZERO{{ end }}", "ZERO"),
    ("if nil", "{{ if .Nil }}NON-NIL{{ else }}NIL{{ end }}", "NIL"),
    ("if struct", "{{ if .Pair }}STRUCT{{ end }}", "STRUCT"),
    ("else if", "{{ if false }}FALSE{{ else if true }}TRUE{{ end }}", "TRUE"),
    (
        "else if chain",
        "{{ if eq 1 3 }}1{{ else if eq 2 3 }}2{{ else if eq 3 3 }}3{{ else }}x{{ end }}",
        "3",
    ),
    (
        "if $x with $y",
        "{{ if $x := true }}{{ with $y := .N }}{{ $x }},{{ $y }}{{ end }}{{ end }}",
        "true,17",
    ),
    (
        "shadowing",
        "{{ if $x := true }}{{ with $x := .N }}{{ $x }},{{ end }}{{ $x }}{{ end }}",
        "17,true",
    ),
    ("with true", "{{ with true }}{{ . }}{{ end }}", "true"),
    ("with 0", "{{ with 0 }}{{ . }}{{ else }}ZERO{{ end }}", "ZERO"),
    ("with slice", "{{ with .SI }}{{ . }}{{ else }}EMPTY{{ end }}", "[3 4 5]"),
    ("with map", "{{ with .MSIone }}{{ . }}{{ else }}EMPTY{{ end }}", "map[one:1]"),
    ("with $x", "{{ with $x := .N }}{{ $x }}{{ end }}", "17"),
    ("with $", "{{ with $x := $ }}{{ $x.Pair.B }}{{ end }}", "b"),
    ("with else with", "{{ with 0 }}{{ . }}{{ else with true }}{{ . }}{{ end }}", "true"),
    (
        "with else with chain",
        "{{ with 0 }}a{{ else with false }}b{{ else with `notempty` }}{{ . }}{{ end }}",
        "notempty",
    ),
    ("range slice", "{{ range .SI }}-{{ . }}-{{ end }}", "-3--4--5-"),
    ("range empty", "{{ range .SIEmpty }}-{{ . }}-{{ end }}", ""),
    ("range else", "{{ range .SI }}-{{ . }}-{{ else }}EMPTY{{ end }}", "-3--4--5-"),
    ("range empty else", "{{ range .SIEmpty }}-{{ . }}-{{ else }}EMPTY{{ end }}", "EMPTY"),
    ("range nil else", "{{ range .Nil }}x{{ else }}EMPTY{{ end }}", "EMPTY"),
    ("range missing", "{{ range .MSI.nothere }}x{{ else }}EMPTY{{ end }}", "EMPTY"),
    ("range bools", "{{ range .SB }}-{{ . }}-{{ end }}", "-true--false-"),
    ("range map values", "{{ range .MSI }}-{{ . }}-{{ end }}", "-1--3--2-"),
    (
        "range map keys",
        "{{ range $k, $v := .MSI }}{{ $k }}={{ $v }} {{ end }}",
        "one=1 three=3 two=2 ",
    ),
    ("range int map", "{{ range $k, $v := .MIS }}{{ $k }}{{ end }}", "1210"),
    ("range $x", "{{ range $x := .SI }}<{{ $x }}>{{ end }}", "<3><4><5>"),
    ("range $i $x", "{{ range $i, $x := .SI }}<{{ $i }}={{ $x }}>{{ end }}", "<0=3><1=4><2=5>"),
    ("range int", "{{ range $v := 5 }}{{ printf `%T%d` $v $v }}{{ end }}", "int0int1int2int3int4"),
    ("range 0 else", "{{ range 0 }}x{{ else }}none{{ end }}", "none"),
    ("range break", "{{ range .SI }}-{{ . }}-{{ break }}NOTREACHED{{ else }}EMPTY{{ end }}", "-3-"),
    ("range continue", "{{ range .SI }}-{{ . }}-{{ continue }}NOTREACHED{{ end }}", "-3--4--5-"),
    (
        "break in if",
        "{{ range .SI }}{{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}",
        "3",
    ),
    (
        "continue in if",
        "{{ range .SI }}{{ if eq . 4 }}{{ continue }}{{ end }}{{ . }}{{ end }}",
        "35",
    ),
    (
        "nested range break",
        "{{ range .SI }}[{{ range $.SB }}{{ . }}{{ break }}{{ end }}]{{ end }}",
        "[true][true][true]",
    ),
    ("declare in range", "{{ range $x := .SI }}<{{ $foo := $x }}{{ $x }}>{{ end }}", "<3><4><5>"),
    ("dot and $ in range", "{{ range .SI }}{{ $.S }}{{ . }}{{ end }}", "xyz3xyz4xyz5"),
    ("variable", "{{ $x := 1 }}{{ $x }}", "1"),
    ("assign", "{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", "2"),
    ("assign in range", "{{ $x := 0 }}{{ range .SI }}{{ $x = . }}{{ end }}{{ $x }}", "5"),
    ("range assign one", "{{ $i := 0 }}{{ $x := 0 }}{{ range $i = .SI }}{{ end }}{{ $i }}", "5"),
    (
        "range assign two",
        "{{ $k := 0 }}{{ $v := 0 }}{{ range $k, $v = .SI }}{{ $k }}={{ $v }} {{ end }}",
        "0=3 1=4 2=5 ",
    ),
    ("declaration prints nothing", "a{{ $x := 1 }}b", "ab"),
    ("$ is the data", "{{ with .Pair }}{{ $.S }}-{{ .B }}{{ end }}", "xyz-b"),
    ("variable fields", "{{ $p := .Pair }}{{ $p.A }}{{ $.Pair.B }}", "1b"),
    ("paren field", "{{ (index .SMSI 1).eleven }}", "11"),
    ("paren var", "{{ ($).S }}", "xyz"),
    (
        "or as if",
        '{{ or .SI "slice is empty" }} {{ or .SIEmpty "slice is empty" }}',
        "[3 4 5] slice is empty",
    ),
]


@pytest.mark.parametrize(("text", "want"), [pytest.param(t, w, id=i) for i, t, w in CONTROL_CASES])
def test_control(text: str, want: str) -> None:
    assert render(text, VALS) == want


# ---------------------------------------------------------------------------------------------
# Builtin functions.


def die() -> bool:
    raise RuntimeError("die")


def makemap(*args: str) -> dict[str, str]:
    return dict(zip(args[::2], args[1::2], strict=True))


def add(*args: int) -> int:
    return sum(args)


def one_arg(a: str) -> str:
    return "oneArg=" + a


def two_args(a: str, b: str) -> str:
    return "twoArgs=" + a + b


FUNCS = {
    "die": die,
    "makemap": makemap,
    "add": add,
    "oneArg": one_arg,
    "twoArgs": two_args,
    "mapOfThree": lambda: {"three": 3},
    "zeroArgs": lambda: "zeroArgs",
}

FUNC_CASES = [
    # and / or / not: Go truth, the deciding value, short-circuit.
    ("not", "{{ not true }} {{ not false }} {{ not .SIEmpty }}", "false true true"),
    ("and", "{{ and false 0 }} {{ and 1 0 }} {{ and 0 true }} {{ and 1 1 }}", "false 0 0 1"),
    ("or", "{{ or 0 0 }} {{ or 1 0 }} {{ or 0 true }} {{ or 1 1 }}", "0 1 true 1"),
    ("or short-circuit", "{{ or 0 1 (die) }}", "1"),
    ("and short-circuit", "{{ and 1 0 (die) }}", "0"),
    ("and pipe", "{{ 1 | and 1 }} {{ 0 | and 1 }}", "1 0"),
    ("or pipe", "{{ 1 | or 0 }} {{ 0 | or 0 }}", "1 0"),
    ("and undef", "{{ and 1 .MSI.undefined }}", "<no value>"),
    ("boolean if pipe", "{{ if true | not | and 1 }}TRUE{{ else }}FALSE{{ end }}", "FALSE"),
    # index / slice / len
    ("index slice", "{{ index .SI 0 }} {{ index .SI 2 }}", "3 5"),
    ("index map", "{{ index .MSI `one` }} {{ index .MSI `XXX` }} {{ index .MSI `` }}", "1 0 0"),
    ("index int map", "{{ index .MIS 10 }}", "ten"),
    ("index twice", "{{ index .SMSI 1 `eleven` }}", "11"),
    ("index string byte", "{{ index .S 1 }}", "121"),
    ("index nothing", "{{ index .SI }}", "[3 4 5]"),
    ("slice all", "{{ slice .SI }}", "[3 4 5]"),
    ("slice 1:", "{{ slice .SI 1 }}", "[4 5]"),
    ("slice 1:2", "{{ slice .SI 1 2 }}", "[4]"),
    ("slice 1:2:3", "{{ slice .SI 1 2 3 }}", "[4]"),
    (
        "slice string",
        "{{ slice .S }} {{ slice .S 0 1 }} {{ slice .S 1 }} {{ slice .S 1 2 }}",
        "xyz x yz y",
    ),
    ("len", "{{ len .SI }} {{ len .MSI }} {{ len .S }} {{ len `é` }}", "3 3 3 2"),
    # comparison
    (
        "eq",
        "{{ eq 1 1 }} {{ eq 1 2 }} {{ eq `xy` `xy` }} {{ eq true false }}",
        "true false true false",
    ),
    ("eq any", "{{ eq 3 4 5 6 3 }} {{ eq 3 4 5 6 7 }}", "true false"),
    ("eq float", "{{ eq 1.5 1.5 }} {{ ne 1.5 2.5 }}", "true true"),
    ("eq char", "{{ eq (index `x` 0) 'x' }} {{ eq (index `x` 0) 'y' }}", "true false"),
    (
        "eq nil",
        "{{ eq .Nil .Nil }} {{ eq .Nil 0 }} {{ eq 0 .Nil }} {{ eq .MSI.x `` }}",
        "true false false false",
    ),
    ("eq objects", "{{ eq .Pair .Pair }}", "true"),
    ("ne", "{{ ne 1 1 }} {{ ne 1 2 }} {{ ne `a` `b` }}", "false true true"),
    (
        "lt",
        "{{ lt 1 2 }} {{ lt 2 1 }} {{ lt 1 1 }} {{ lt `xy` `xyz` }} {{ lt 1.5 2.5 }}",
        "true false false true true",
    ),
    (
        "le",
        "{{ le 1 1 }} {{ le 2 1 }} {{ le `xyz` `xy` }} {{ le 1.5 1.5 }}",
        "true false false true",
    ),
    ("gt", "{{ gt 2 1 }} {{ gt 1 1 }} {{ gt `xy` `xyz` }}", "true false false"),
    ("ge", "{{ ge 1 1 }} {{ ge 1 2 }} {{ ge `xyz` `xy` }}", "true false true"),
    # print family
    ("print", '{{ print "hello, print" }}', "hello, print"),
    ("print spaces", "{{ print 1 2 3 }} {{ print `a` 1 2 `b` `c` }}", "1 2 3 a1 2bc"),
    ("print nil", "{{ print nil }} {{ print .Nil }} {{ print .MSI.none }}", "<nil> <nil> <nil>"),
    ("println", "{{ println 1 2 `a` }}", "1 2 a\n"),
    (
        "printf",
        "{{ printf `%04x` 127 }} {{ printf `%g` 3.5 }} {{ printf `%s` `hello` }}",
        "007f 3.5 hello",
    ),
    ("printf field", "{{ printf `%s` .S }} {{ with .N }}{{ printf `%d` . }}{{ end }}", "xyz 17"),
    ("printf pipe", '{{ "x" | printf }} {{ "aaa" | printf "%s%s" "b" }}', "x baaa"),
    ("printf function", "{{ printf `%#q` zeroArgs }}", "`zeroArgs`"),
    # escaping
    (
        "html",
        '{{ html "<script>alert(\\"XSS\\");</script>" }}',
        "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;",
    ),
    ("html pipeline", "{{ printf `<a href='x'>&` | html }}", "&lt;a href=&#39;x&#39;&gt;&amp;"),
    ("html nil", "{{ html .MSI.none }}", "&lt;no value&gt;"),
    ("html args", "{{ html 1 2 }}", "1 2"),
    ("js", "{{ js `It'd be nice.` }}", "It\\'d be nice."),
    (
        "js more",
        '{{ js `Go "jump" \\ <html> a=b &` }}',
        'Go \\"jump\\" \\\\ \\u003Chtml\\u003E a\\u003Db \\u0026',
    ),
    ("js unprintable", "{{ js `x\x01\ufffe` }}", "x\\u0001\\uFFFE"),
    ("urlquery", '{{ "http://www.example.org/" | urlquery }}', "http%3A%2F%2Fwww.example.org%2F"),
    ("urlquery space", "{{ urlquery `a b&c=d` }}", "a+b%26c%3Dd"),
    # call and caller functions
    ("call", "{{ call .Fn }}", "called"),
    ("call args", "{{ call .Add 1 2 }}", "3"),
    ("call pipe", "{{ .Fn | call }}", "called"),
    ("caller func", "{{ add 1 2 3 }}", "6"),
    ("parens", "{{ printf `%d %d %d` (1) (2 | add 3) (add 4 (add 5 6)) }}", "1 5 15"),
    ("paren map", '{{ (makemap "up" "down" "left" "right").left }}', "right"),
    ("function chain", "{{ mapOfThree.three }}-{{ (mapOfThree).three }}", "3-3"),
    (
        "typed piped",
        '{{ "aaa" | twoArgs "bbb" }} {{ "aaa" | oneArg }}',
        "twoArgs=bbbaaa oneArg=aaa",
    ),
]


@dataclass
class CallData(Values):
    Fn: Any = lambda: "called"
    Add: Any = lambda a, b: a + b


@pytest.mark.parametrize(("text", "want"), [pytest.param(t, w, id=i) for i, t, w in FUNC_CASES])
def test_functions(text: str, want: str) -> None:
    assert render(text, CallData(), FUNCS) == want


def test_caller_functions_replace_builtins() -> None:
    # As in Go, the template's own functions are looked up before the builtins.
    assert render("{{ len 1 2 }}", {}, {"len": lambda *a: "mine"}) == "mine"


# ---------------------------------------------------------------------------------------------
# printf: fmt's verbs, flags, widths and error notes.

PRINTF_CASES = [
    ("%d", (42,), "42"),
    ("%5d|%-5d|%05d", (42, 42, 42), "   42|42   |00042"),
    ("%+d % d %+d", (5, 5, -5), "+5  5 -5"),
    ("%05d", (-42,), "-0042"),
    ("%.3d|%.0d|%5.0d", (7, 0, 0), "007||     "),
    ("%x %X %o %O %b", (255, 255, 8, 8, 5), "ff FF 10 0o10 101"),
    ("%#x %#X %#o %#b", (255, 255, 8, 5), "0xff 0XFF 010 0b101"),
    ("%#08x", (255,), "0x000000ff"),
    ("%x", (-255,), "-ff"),
    ("%c%c", (72, 0x263A), "H☺"),
    ("%q %+q", (0x263A, 0x263A), "'☺' '\\u263a'"),
    ("%U %#U", (0x263A, 0x263A), "U+263A U+263A '☺'"),
    ("%v", (17,), "17"),
    ("%s", ("hello",), "hello"),
    ("%10s|%-10s|", ("hi", "hi"), "        hi|hi        |"),
    ("%.2s", ("héllo",), "hé"),
    ("%q", ('a"b\n\x00é',), '"a\\"b\\n\\x00é"'),
    ("%+q", ("é☺",), '"\\u00e9\\u263a"'),
    ("%#q %#q", ("abc", "a`b"), '`abc` "a`b"'),
    ("%x %X", ("hi", "hi"), "6869 6869"),
    ("% x|%#x|% #x", ("hi", "hi", "hi"), "68 69|0x6869|0x68 0x69"),
    ("%v %t", (True, False), "true false"),
    ("%f", (3.14159,), "3.141590"),
    (
        "%.2f|%8.3f|%-8.2f|%08.3f",
        (3.14159, 3.14159, 3.14159, -3.14159),
        "3.14|   3.142|3.14    |-003.142",
    ),
    ("%e %E", (1234.5678, 1234.5678), "1.234568e+03 1.234568E+03"),
    ("%g %g %g %g", (100000.0, 1000000.0, 0.0001, 0.00001), "100000 1e+06 0.0001 1e-05"),
    ("%.3g %.10g %G", (12.345, 1.0 / 3, 1e21), "12.3 0.3333333333 1E+21"),
    ("%#g %#.3g %#.0f", (1.0, 1.0, 3.0), "1.00000 1.00 3."),
    ("%v %v %v", (float("inf"), float("-inf"), float("nan")), "+Inf -Inf NaN"),
    (
        "% v|%+f|%+v|%05v",
        (float("inf"), float("nan"), float("nan"), float("-inf")),
        " Inf|+NaN|NaN| -Inf",
    ),
    ("%5.1f|%+.1f|% .1f", (-0.0, 2.0, 2.0), " -0.0|+2.0| 2.0"),
    ("%x", (1.0,), "0x1p+00"),
    ("%v", ([1, 2],), "[1 2]"),
    ("%d", ([1, 2],), "[1 2]"),
    ("%q", (["a", "b"],), '["a" "b"]'),
    ("%03d", ([1, 2],), "[001 002]"),
    ("%v", ({"b": 2, "a": 1},), "map[a:1 b:2]"),
    ("%s", (b"hi",), "hi"),
    ("%v", (Pair(1, "b"),), "{1 b}"),
    ("%+v", (Pair(1, "b"),), "{A:1 B:b}"),
    ("%#v", (Pair(1, "b"),), 'Pair{A:1, B:"b"}'),
    ("%#v %#v", (["a"], {"k": 1}), '[]string{"a"} map[string]int{"k":1}'),
    ("%#v", ("s",), '"s"'),
    ("%T %T %T %T %T", (1, "s", 1.5, ["a"], True), "int string float64 []string bool"),
    ("%T", (None,), "<nil>"),
    ("%v %s", (Stringer(), Stringer()), "foozle foozle"),
    ("%d%%", (50,), "50%"),
    ("%5%", (), "%"),
    ("%*d|%-*d", (5, 42, 5, 42), "   42|42   "),
    ("%*d", (-5, 42), "42   "),
    ("%.*f", (2, 3.14159), "3.14"),
    ("%[2]d %[1]d", (11, 22), "22 11"),
    ("%d %d %#[1]x %#x", (16, 17), "16 17 0x10 0x11"),
    ("%[3]*.[2]*[1]f", (12.0, 2, 6), " 12.00"),
    # Go's error notes.
    ("%d", ("hi",), "%!d(string=hi)"),
    ("%s", (17,), "%!s(int=17)"),
    ("%z", (5,), "%!z(int=5)"),
    ("%d", (None,), "%!d(<nil>)"),
    ("%v", (None,), "<nil>"),
    ("%d %d", (1,), "1 %!d(MISSING)"),
    ("hi", ("guys",), "hi%!(EXTRA string=guys)"),
    ("hi", (1, None), "hi%!(EXTRA int=1, <nil>)"),
    ("%", (), "%!(NOVERB)"),
    ("%*s", (4.5, "hi"), "%!(BADWIDTH)hi"),
    ("%.*s", (4.5, "hi"), "%!(BADPREC)hi"),
    ("%[3]d", (1,), "%!d(BADINDEX)"),
    ("%t", (1,), "%!t(int=1)"),
    ("%d", (1.5,), "%!d(float64=1.5)"),
]


@pytest.mark.parametrize(("fmt", "args", "want"), PRINTF_CASES)
def test_printf(fmt: str, args: tuple[Any, ...], want: str) -> None:
    # Arbitrary Python values reach printf through the data: {{ printf .F .a0 .a1 ... }}.
    names = [f"a{i}" for i in range(len(args))]
    text = "{{ printf .F " + " ".join(f".{n}" for n in names) + " }}"
    data = {"F": fmt, **dict(zip(names, args, strict=True))}
    assert compile_template(text).execute(data) == want


def test_printf_literals_in_template() -> None:
    assert render(
        '{{ printf "%05d|%x|%q|%v|%-4s|%+.2f" 42 255 "a\\tb" .SI "ab" 3.14159 }}', VALS
    ) == ('00042|ff|"a\\tb"|[3 4 5]|ab  |+3.14')


# ---------------------------------------------------------------------------------------------
# Execution errors: Go's messages and locations.

EXEC_ERRORS = [
    (
        "index out of range",
        "{{ index .SI 10 }}",
        'template: answer:1:3: executing "answer" at <index .SI 10>: error calling index: index out of range: 10',
    ),
    # Go checks index <= len before reflect does the real bounds check.
    ("index == len", "{{ index .SI 3 }}", "error calling index: reflect: slice index out of range"),
    ("index negative", "{{ index .SI -1 }}", "error calling index: index out of range: -1"),
    ("index wrong type", "{{ index .SI `hello` }}", "cannot index slice/array with type string"),
    ("index nil index", "{{ index .SI nil }}", "cannot index slice/array with nil"),
    ("index map nil", "{{ index .MSI nil }}", "value is nil; should be of type string"),
    ("index map wrong key", "{{ index .MSI 10 }}", "value has type int; should be string"),
    ("index nil", "{{ index nil 1 }}", "error calling index: index of untyped nil"),
    ("index int", "{{ index 3 1 }}", "can't index item of type int"),
    ("index string", '{{ index "hi" 5 }}', "error calling index: index out of range: 5"),
    ("slice negative", "{{ slice .SI -1 }}", "index out of range: -1"),
    ("slice reversed", "{{ slice .SI 2 1 }}", "invalid slice index: 2 > 1"),
    ("slice 3 reversed", "{{ slice .SI 2 2 1 }}", "invalid slice index: 2 > 1"),
    ("slice out of range", "{{ slice .SI 4 5 }}", "index out of range: 4"),
    ("slice string 3", "{{ slice .S 1 2 2 }}", "cannot 3-index slice a string"),
    ("slice int", "{{ slice 3 }}", "can't slice item of type int"),
    ("len int", "{{ len 3 }}", "error calling len: len of type int"),
    ("len nil", "{{ len .Nil }}", "len of nil pointer"),
    (
        "eq types",
        "{{ eq 1 `1` }}",
        "error calling eq: incompatible types for comparison: int and string",
    ),
    ("eq int float", "{{ eq 2 2.0 }}", "incompatible types for comparison: int and float64"),
    ("eq no args", "{{ eq 1 }}", "error calling eq: missing argument for comparison"),
    ("eq map", "{{ eq .MSI .MSI }}", "non-comparable type"),
    (
        "lt types",
        "{{ lt 1 `a` }}",
        "error calling lt: incompatible types for comparison: int and string",
    ),
    ("lt bool", "{{ lt true true }}", "error calling lt: invalid type for comparison"),
    ("lt slice", "{{ lt .SI .SI }}", "error calling lt: invalid type for comparison"),
    ("or evaluates", "{{ or 0 0 (die) }}", "error calling die: die"),
    ("and evaluates", "{{ and 1 1 (die) }}", "error calling die: die"),
    ("arg count", "{{ not 1 2 }}", "at <not>: wrong number of args for not: want 1 got 2"),
    ("arg count variadic", "{{ index }}", "wrong number of args for index: want at least 1 got 0"),
    ("printf format type", "{{ printf 3 }}", "expected string; found 3"),
    ("printf pipe type", "{{ true | printf }}", "wrong type for value; expected string; got bool"),
    ("typed arg", "{{ oneArg 1 }}", "at <1>: expected string; found 1"),
    (
        "typed field arg",
        "{{ oneArg .N }}",
        "at <.N>: wrong type for value; expected string; got int",
    ),
    ("typed piped arg", "{{ 1 | oneArg }}", "wrong type for value; expected string; got int"),
    ("typed missing arg", "{{ oneArg .MSI.none }}", "invalid value; expected string"),
    ("not a function", "{{ 3 2 }}", "can't give argument to non-function 3"),
    ("var not a function", "{{ $x := 1 }}{{ $x 2 }}", "can't give argument to non-function $x"),
    ("pipe into var", "{{ $x := 1 }}{{ 3 | $x }}", "can't give argument to non-function $x"),
    ("paren not a function", "{{ (1) 2 }}", "can't give argument to non-function (1)"),
    ("nil command", "{{ nil }}", "at <nil>: nil is not a command"),
    ("if nil", "{{ if nil }}TRUE{{ end }}", "nil is not a command"),
    (
        "field of int",
        "{{ $x := 1.0 }}{{ $x.anything }}",
        "can't evaluate field anything in type float64",
    ),
    ("range string", "{{ range .S }}{{ end }}", "range can't iterate over xyz"),
    (
        "range int two vars",
        "{{ range $i, $v := 3 }}{{ end }}",
        "can't use 3 to iterate over more than one variable",
    ),
    ("call nil", "{{ call nil }}", "error calling call: call of nil"),
    ("call non-function", "{{ call .S }}", "error calling call: non-function .S of type string"),
    (
        "call arg count",
        "{{ call .Add 1 }}",
        "error calling call: wrong number of args for .Add: got 1 want 2",
    ),
    (
        "undefined at run time",
        "{{ if false }}{{ $x := 1 }}{{ else }}{{ $x }}{{ end }}",
        "undefined variable: $x",
    ),
    ("assign undeclared", "{{ $x = 1 }}", "undefined variable: $x"),
    ("caller func raises", "{{ die }}", "at <die>: error calling die: die"),
]


@pytest.mark.parametrize(("text", "want"), [pytest.param(t, w, id=i) for i, t, w in EXEC_ERRORS])
def test_exec_errors(text: str, want: str) -> None:
    e = exec_error(text, CallData(), dict(FUNCS))
    assert want in str(e)
    assert str(e).startswith("template: answer:")
    assert isinstance(e, TemplateError)


def test_exec_error_location_on_later_line() -> None:
    text = "line 1\nline 2\n  x {{ index .SI 7 }}"
    e = exec_error(text, VALS)
    assert str(e) == (
        'template: answer:3:7: executing "answer" at <index .SI 7>: error calling index: index out of range: 7'
    )
    assert (e.line, e.column) == (3, 7)


def test_exec_error_column_counts_bytes() -> None:
    # Go counts bytes: "é" is two.
    e = exec_error("é{{ .Nope.X }}", Obj())
    assert e.column == 5
    assert 'executing "answer" at <.Nope.X>' in str(e)


def test_exec_error_uses_template_name() -> None:
    tpl = compile_template("{{ index .SI 9 }}", "additional")
    with pytest.raises(
        TemplateExecError, match=r'^template: additional:1:3: executing "additional"'
    ):
        tpl.execute(VALS)


def test_exec_stops_at_the_error() -> None:
    e = exec_error("a{{ .Nope }}b", Obj())
    assert "can't evaluate field Nope in type Obj" in str(e)


# ---------------------------------------------------------------------------------------------
# Compile (syntax) errors: Go's parser messages, with the line of the offending token.

SYNTAX_ERRORS = [
    ("function", "{{ foo }}", 'template: answer:1: function "foo" not defined'),
    ("function line", "line1\n{{\nx\n}}", 'template: answer:3: function "x" not defined'),
    ("unclosed", "line1\n{{", "template: answer:2: unclosed action"),
    (
        "unclosed multi-line",
        'line1\n{{"x"\n"y"\n',
        "template: answer:4: unclosed action started at answer:2",
    ),
    ("unclosed paren at eof", "{{(.X 1 2 3", "template: answer:1: unclosed action"),
    ("unclosed comment", "{{/*}}", "template: answer:1: unclosed comment"),
    ("unclosed comment lines", "{{/*\nhello\n}}", "template: answer:1: unclosed comment"),
    (
        "comment not at delimiter",
        "{{/* a */ }}",
        "template: answer:1: comment ends before closing delimiter",
    ),
    ("comment needs no space", "{{ /* a */ }}", 'template: answer:1: unexpected "/" in command'),
    ("lparen", "{{ .X (1 2 3 }}", "template: answer:1: unclosed left paren"),
    ("rparen", "{{ .X 1 2 3 ) }}", "template: answer:1: unexpected right paren"),
    ("no space", "{{ `x`3 }}", 'template: answer:1: unexpected "3" in operand'),
    ("bad char", "{{ a# }}", "template: answer:1: bad character U+0023 '#'"),
    ("bad char in action", "{{ # }}", 'template: answer:1: unexpected "#" in command'),
    ("char const", "{{ 'a }}", "template: answer:1: unterminated character constant"),
    ("string const", '{{ "a }}', "template: answer:1: unterminated quoted string"),
    ("raw string const", "{{ `a }}", "template: answer:1: unterminated raw quoted string"),
    (
        "raw string line",
        "hello\n\n{{`unterminated\n\n}}\n",
        "template: answer:3: unterminated raw quoted string",
    ),
    ("number", "{{ 0xi }}", 'template: answer:1: bad number syntax: "0xi"'),
    ("bad escape", '{{ "\\q" }}', "template: answer:1: invalid syntax"),
    ("bad char const", "{{ 'ab' }}", "template: answer:1: malformed character constant: 'ab'"),
    ("eof in range", "{{ range .X }}", "template: answer:1: unexpected EOF"),
    ("eof in if", "{{ if .X }}\n{{ else }}", "template: answer:2: unexpected EOF"),
    ("stray end", "a{{ end }}", "template: answer:1: unexpected {{end}}"),
    ("stray else", "{{ else }}", "template: answer:1: unexpected {{else}}"),
    (
        "else if in with",
        "{{ with .X }}{{ else if .Y }}{{ end }}",
        "template: answer:1: unexpected {{else}}",
    ),
    ("end argument", "{{ if 1 }}{{ end .X }}", 'template: answer:1: unexpected ".X" in end'),
    (
        "field declaration",
        "{{ $x := 23 }}{{ with $x.y := 3 }}{{ end }}",
        'unexpected ":=" in operand',
    ),
    (
        "too many declarations",
        "{{ $a, $b := 23 }}",
        "template: answer:1: too many declarations in command",
    ),
    (
        "three declarations",
        "{{ range $a, $b, $c := . }}{{ end }}",
        "too many declarations in range",
    ),
    ("undefined variable", "{{ $a }}", 'template: answer:1: undefined variable "$a"'),
    (
        "variable out of scope",
        "{{ if 1 }}{{ $x := 1 }}{{ end }}{{ $x }}",
        'undefined variable "$x"',
    ),
    (
        "range variable out of scope",
        "{{ range $i := . }}{{ end }}{{ $i }}",
        'undefined variable "$i"',
    ),
    ("term chain", "{{ true.any }}", 'template: answer:1: unexpected . after term "true"'),
    ("dot chain", '{{ "x".any }}', 'unexpected . after term "\\"x\\""'),
    (
        "literal stage",
        "{{ 12 | false }}",
        "template: answer:1: non executable command in pipeline stage 2",
    ),
    ("empty action", "{{ }}", "template: answer:1: missing value for command"),
    ("empty if", "{{ if }}{{ end }}", "template: answer:1: missing value for if"),
    ("empty range", "{{ range }}{{ end }}", "template: answer:1: missing value for range"),
    ("empty with", "{{ with }}{{ end }}", "template: answer:1: missing value for with"),
    ("empty parens", "{{ ( ) }}", "template: answer:1: missing value for parenthesized pipeline"),
    (
        "range missing value",
        "{{ range $k, }}{{ end }}",
        "template: answer:1: missing value for range",
    ),
    ("range missing value 2", "{{ range $k, $v := }}{{ end }}", "missing value for range"),
    (
        "range non-variable",
        "{{ range $k, . }}{{ end }}",
        "template: answer:1: range can only initialize variables",
    ),
    (
        "range non-variable 2",
        "{{ range $k, 123 := . }}{{ end }}",
        "range can only initialize variables",
    ),
    ("double pipe", "{{ .X | | .Y }}", 'template: answer:1: unexpected "|" in command'),
    ("break outside range", "{{ break }}", "template: answer:1: {{break}} outside {{range}}"),
    (
        "continue outside range",
        "{{ if 1 }}{{ continue }}{{ end }}",
        "{{continue}} outside {{range}}",
    ),
    (
        "break in range else",
        "{{ range . }}{{ else }}{{ break }}{{ end }}",
        "{{break}} outside {{range}}",
    ),
    ("keyword as function", "{{ .X | if }}", "template: answer:1: unexpected <if> in command"),
    (
        "template unsupported",
        '{{ template "x" }}',
        "template: answer:1: {{template}} is not supported",
    ),
    ("define unsupported", '{{ define "x" }}', "{{define}} is not supported"),
]


@pytest.mark.parametrize(("text", "want"), [pytest.param(t, w, id=i) for i, t, w in SYNTAX_ERRORS])
def test_syntax_errors(text: str, want: str) -> None:
    assert want in str(syntax_error(text))


def test_syntax_error_attributes() -> None:
    e = syntax_error("ip.example. 60 IN A\n{{ nope .X }}", "authority")
    assert str(e) == 'template: authority:2: function "nope" not defined'
    assert (e.name, e.line, e.column) == ("authority", 2, 3)
    assert e.description == 'function "nope" not defined'
    assert e.excerpt == "{{ nope .X }}\n   ^"
    assert isinstance(e, TemplateError)


ACCEPTED = [
    "{{ .X | }}",  # Go's parser lets a trailing | through
    "{{if(.X)}}a{{end}}",
    "{{if.X}}a{{end}}",
    "{{ $x := 1 }}{{ if $x := 2 }}{{ $x }}{{ end }}",
    "{{ range $i, $e := . }}{{ $i }}{{ $e }}{{ else }}{{ $i }}{{ end }}",
    "{{ with $x := . }}{{ else }}{{ $x }}{{ end }}",
    "{{/* comment with {{ braces }} */}}",
    '{{ "{{" }}',
    "{{\n.X\n}}",
    "{{- /* */ -}}",
    "{{ (index . 1).Foo.Bar }}",
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_accepted_syntax(text: str) -> None:
    assert isinstance(compile_template(text), Template)


def test_trailing_pipe_and_string_delimiters_render() -> None:
    assert render("{{ .X | }}", {"X": 1}) == "1"
    assert render('{{ "{{" }}{{/*c*/}}{{ .S }}', VALS) == "{{xyz"


# ---------------------------------------------------------------------------------------------
# parseInt: Go's strconv.ParseUint.

PARSE_INT_OK = [
    ("5f", 16, 8, 95),
    ("0c", 16, 8, 12),
    ("ff", 16, 8, 255),
    ("FF", 16, 8, 255),
    ("255", 10, 8, 255),
    ("0", 10, 8, 0),
    ("777", 8, 16, 511),
    ("z", 36, 8, 35),
    ("0x1f", 0, 64, 31),
    ("0b101", 0, 8, 5),
    ("0o17", 0, 8, 15),
    ("017", 0, 8, 15),
    ("1_000", 0, 16, 1000),
    ("18446744073709551615", 10, 64, 2**64 - 1),
    ("18446744073709551615", 10, 0, 2**64 - 1),
]


@pytest.mark.parametrize(("s", "base", "bits", "want"), PARSE_INT_OK)
def test_parse_int(s: str, base: int, bits: int, want: int) -> None:
    assert parse_int(s, base, bits) == want


PARSE_INT_ERRORS = [
    ("gg", 16, 8, 'strconv.ParseUint: parsing "gg": invalid syntax'),
    ("", 16, 8, 'strconv.ParseUint: parsing "": invalid syntax'),
    ("100", 16, 8, 'strconv.ParseUint: parsing "100": value out of range'),
    ("256", 10, 8, 'strconv.ParseUint: parsing "256": value out of range'),
    ("-1", 10, 8, 'strconv.ParseUint: parsing "-1": invalid syntax'),
    ("+1", 10, 8, 'strconv.ParseUint: parsing "+1": invalid syntax'),
    ("0x1f", 16, 8, 'strconv.ParseUint: parsing "0x1f": invalid syntax'),
    ("1_000", 10, 16, 'strconv.ParseUint: parsing "1_000": invalid syntax'),
    ("1__0", 0, 16, 'strconv.ParseUint: parsing "1__0": invalid syntax'),
    ("1", 1, 8, 'strconv.ParseUint: parsing "1": invalid base 1'),
    ("1", 37, 8, 'strconv.ParseUint: parsing "1": invalid base 37'),
    ("1", 10, 65, 'strconv.ParseUint: parsing "1": invalid bit size 65'),
    (
        "18446744073709551616",
        10,
        64,
        'strconv.ParseUint: parsing "18446744073709551616": value out of range',
    ),
    ("a\tb", 16, 8, 'strconv.ParseUint: parsing "a\\tb": invalid syntax'),
]


@pytest.mark.parametrize(("s", "base", "bits", "want"), PARSE_INT_ERRORS)
def test_parse_int_errors(s: str, base: int, bits: int, want: str) -> None:
    with pytest.raises(NumError) as info:
        parse_int(s, base, bits)
    assert str(info.value) == want
    assert info.value.func == "ParseUint" and info.value.num == s


def test_parse_int_type_checks_in_templates() -> None:
    # parseInt(string, int, int): Go checks the argument types when it calls.
    assert 'expected integer; found "16"' in str(exec_error('{{ parseInt .Group.b "16" 8 }}'))
    assert "invalid value; expected string" in str(exec_error("{{ parseInt .Group.nothere 16 8 }}"))
    assert render("{{ parseInt .Group.b 16.0 8 }}") == "149"  # an integral float constant is an int


# ---------------------------------------------------------------------------------------------
# The API.


def test_compile_once_execute_many() -> None:
    tpl = compile_template("{{ .Name }} 60 IN A {{ .Remote }}", "answer")
    assert tpl.name == "answer"
    assert tpl.text == "{{ .Name }} 60 IN A {{ .Remote }}"
    for i in range(3):
        data = TemplateData(Name=f"n{i}.example.", Remote=f"10.0.0.{i}")
        assert tpl.execute(data) == f"n{i}.example. 60 IN A 10.0.0.{i}"
    assert "answer" in repr(tpl)


def test_executions_do_not_share_variables() -> None:
    tpl = compile_template("{{ if .A }}{{ $x := .A }}{{ $x }}{{ else }}-{{ end }}")
    assert [tpl.execute({"A": a}) for a in ("1", "", "2")] == ["1", "-", "2"]


def test_variables_are_forgotten_after_their_block_like_go_pops_them() -> None:
    # $x from the if-branch of an earlier iteration must not leak into the else-branch.
    text = "{{ range . }}{{ if . }}{{ $x := . }}{{ else }}{{ $x }}{{ end }}{{ end }}"
    tpl = compile_template(text)
    assert tpl.execute([1, 2]) == ""
    with pytest.raises(TemplateExecError, match=r"undefined variable: \$x"):
        tpl.execute([1, 0])


def test_caller_functions() -> None:
    calls: list[tuple[Any, ...]] = []

    def record(*args: Any) -> str:
        calls.append(args)
        return "ok"

    tpl = compile_template("{{ rec 1 `a` .X .Missing }}", funcs={"rec": record})
    assert tpl.execute({"X": [1]}) == "ok"
    assert calls == [(1, "a", [1], None)]  # a missing value arrives as None (Go's nil)


def test_caller_function_errors_are_execution_errors() -> None:
    def boom(s: str) -> str:
        raise ValueError(f"bad {s}")

    e = exec_error('{{ boom "x" }}', {}, {"boom": boom})
    assert (
        str(e)
        == 'template: answer:1:3: executing "answer" at <boom "x">: error calling boom: bad x'
    )


def test_caller_function_arity_from_signature() -> None:
    e = exec_error("{{ two 1 }}", {}, {"two": lambda a, b: a})
    assert "wrong number of args for two: want 2 got 1" in str(e)
    assert render("{{ opt 1 }} {{ opt 1 2 }}", {}, {"opt": lambda a, b=0: a + b}) == "1 3"


@pytest.mark.parametrize("name", ["", "2", "a-b", "a b"])
def test_bad_function_names(name: str) -> None:
    with pytest.raises(ValueError, match="not a valid identifier"):
        compile_template("x", funcs={name: lambda: 1})


def test_function_must_be_callable() -> None:
    with pytest.raises(ValueError, match="not a function"):
        compile_template("x", funcs={"f": 3})


@pytest.mark.parametrize("name", ["_", "a", "a1", "Ӵ"])
def test_good_function_names(name: str) -> None:
    assert compile_template("{{ " + name + " }}", funcs={name: lambda: "y"}).execute(None) == "y"


def test_coredns_funcs_is_read_only_and_has_parse_int() -> None:
    assert COREDNS_FUNCS["parseInt"] is parse_int
    with pytest.raises(TypeError):
        COREDNS_FUNCS["x"] = len  # type: ignore[index]


def test_error_hierarchy() -> None:
    assert issubclass(TemplateSyntaxError, TemplateError)
    assert issubclass(TemplateExecError, TemplateError)
    assert issubclass(TemplateError, Exception)
    assert issubclass(NumError, ValueError)


def test_grammar_ships_next_to_the_module() -> None:
    assert Path(gotemplate.__file__).with_name("gotemplate.lark").is_file()


def test_execute_is_a_few_small_calls() -> None:
    """The typical answer renders with about 16 small Python calls (a few µs).

    Counting calls keeps this deterministic where a timing assertion would be flaky.
    """
    tpl = compile_template("{{ .Name }} 60 IN A {{ index .Match 1 }}.{{ index .Match 2 }}")
    data = {"Name": "ip-10-95-12-8.example.", "Match": ["ip-10-95-12-8.example.", "95", "12", "8"]}
    assert tpl.execute(data) == "ip-10-95-12-8.example. 60 IN A 95.12"
    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(profile)
    try:
        tpl.execute(data)
    finally:
        sys.setprofile(None)
    assert calls <= 20, calls


class BadStringer:
    def __str__(self) -> str:
        raise ValueError("bad")


def test_a_failing_str_is_reported_in_the_output_like_fmt_does() -> None:
    assert render("{{ . }}", BadStringer()) == "%!v(PANIC=String method: bad)"


ROOT_STRINGS = [
    ("{{ .Name }} 60 IN A {{ index .Match 1 }}", "{{.Name}} 60 IN A {{index .Match 1}}"),
    ("x \n {{- .A -}} \n y{{/* gone */}}", "x{{.A}}y"),
    ('{{ printf "%d" ( len .L ) | print }}', '{{printf "%d" (len .L) | print}}'),
    ("{{ $x = 1 }}{{ $y := 2 }}", "{{$x := 1}}{{$y := 2}}"),  # Go prints := for both
    (
        "{{ if .A }}a{{ else if .B }}b{{ else }}c{{ end }}",
        "{{if .A}}a{{else}}{{if .B}}b{{else}}c{{end}}{{end}}",
    ),
    (
        "{{ with .W }}w{{ else with .V }}v{{ end }}",
        "{{with .W}}w{{else}}{{with .V}}v{{end}}{{end}}",
    ),
    (
        "{{ range $i, $e := .L }}{{ break }}{{ continue }}{{ else }}none{{ end }}",
        "{{range $i, $e := .L}}{{break}}{{continue}}{{else}}none{{end}}",
    ),
    (
        "{{ (index .M 1).Foo `raw` 0x1F 'c' nil true . $ }}",
        "{{(index .M 1).Foo `raw` 0x1F 'c' nil true . $}}",
    ),
]


@pytest.mark.parametrize(("text", "want"), ROOT_STRINGS)
def test_root_string_prints_the_tree_like_go(text: str, want: str) -> None:
    # CoreDNS labels its template metrics with Go's Tree.Root.String().
    assert compile_template(text).root_string == want


def test_absurd_nesting_is_a_syntax_error_not_a_crash() -> None:
    text = "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"
    assert str(syntax_error(text)) == "template: answer:1: max expression depth exceeded"
    assert render("{{ " + "(" * 50 + "1" + ")" * 50 + " }}") == "1"
