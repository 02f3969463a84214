"""Error messages (spec §1.6), directive names, hints, ``iter_errors`` and ``loads``."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator

import pytest

from pycorefile.corefile import Corefile, CorefileError, iter_errors, loads, parse
from pycorefile.corefile.model import Directive, Token
from pycorefile.registry import Registry

Parse = Callable[..., Corefile]

# The §1.6 table, row by row: (Corefile, the full first line of the error).
TABLE = [
    pytest.param(
        ". {\n  nosuchplugin\n}",
        "Corefile:2 - Error during parsing: Unknown directive 'nosuchplugin'",
        id="unknown-directive",
    ),
    pytest.param(
        ". { whoami }",
        "Corefile:1 - Error during parsing: Unexpected '}' because no matching opening brace",
        id="close-brace-on-directive-line",
    ),
    pytest.param(
        ". {\n  whoami\n  log",
        "Corefile:3 - Syntax error: Unexpected token 'log', expecting '}'",
        id="block-never-closed",
    ),
    pytest.param(
        ". {\n  forward . 1.1.1.1 {\n    max_fails 2\n",
        "Corefile:3 - Error during parsing: Unexpected EOF",
        id="directive-block-never-closed",
    ),
    pytest.param(
        "a.org,\n",
        "Corefile:1 - Error during parsing: Unexpected EOF",
        id="trailing-comma-at-eof",
    ),
    pytest.param(
        "a.org, {\n  whoami\n}",
        "Corefile:1 - Error during parsing: Expected another address but had '{' - check for extra comma",
        id="comma-then-brace",
    ),
    pytest.param(
        ". {\n  import\n}",
        "Corefile:2 - Error during parsing: Wrong argument count or unexpected line ending after 'import'",
        id="missing-argument",
    ),
]


@pytest.mark.parametrize(("text", "first_line"), TABLE)
def test_error_table(cparse: Parse, text: str, first_line: str) -> None:
    with pytest.raises(CorefileError) as info:
        cparse(text, filename="Corefile")
    assert str(info.value).splitlines()[0] == first_line


def test_error_table_plugin_rows_render_like_coredns() -> None:
    # Rows raised by plugin setups, not by the parser: the error type renders
    # them exactly as CoreDNS prints them.
    tok = Token("{", "Corefile", 3)
    assert str(tok.error("Unexpected token '{', expecting argument")) == (
        "Corefile:3 - Error during parsing: Unexpected token '{', expecting argument"
    )
    once = CorefileError(
        "this plugin can only be used once per Server Block", plugin="hosts", kind="plain"
    )
    assert str(once) == "plugin/hosts: this plugin can only be used once per Server Block"
    d = Directive(Token("hosts", "Corefile", 7), (Token("a", "Corefile", 7),))
    assert str(d.arg_error(plugin="hosts")) == (
        "plugin/hosts: Corefile:7 - Error during parsing: Wrong argument count or unexpected line ending after 'a'"
    )


def test_error_attributes(cparse: Parse) -> None:
    with pytest.raises(CorefileError) as info:
        cparse(". {\n  whoami\n  nosuch\n}", filename="conf/Corefile")
    err = info.value
    assert (err.filename, err.line, err.kind, err.message, err.plugin) == (
        "conf/Corefile",
        3,
        "parse",
        "Unknown directive 'nosuch'",
        None,
    )
    assert err.location == "conf/Corefile:3"


# -- directive names ------------------------------------------------------------


def test_coredns_plugin_not_supported(cparse: Parse) -> None:
    with pytest.raises(CorefileError) as info:
        cparse(". {\n  kubernetes cluster.local\n}", filename="Corefile")
    err = info.value
    assert (
        str(err).splitlines()[0]
        == "Corefile:2 - plugin 'kubernetes' is not supported by pycorefile"
    )
    assert err.kind == "plain" and err.line == 2
    assert err.hint and "--coredns" in err.hint


def test_coredns_mode_accepts_coredns_plugins(cparse: Parse) -> None:
    cf = cparse(". {\n  kubernetes cluster.local\n  loop\n}", mode="coredns")
    assert [d.name for d in cf.blocks[0].directives] == ["kubernetes", "loop"]


def test_coredns_mode_still_rejects_unknown(cparse: Parse) -> None:
    with pytest.raises(CorefileError, match="Unknown directive 'gslb'"):
        cparse(". {\n  gslb x\n}", mode="coredns")


def test_bad_mode(cparse: Parse) -> None:
    with pytest.raises(ValueError):
        cparse(".", mode="caddy")


def test_nested_lines_are_not_directive_names(cparse: Parse) -> None:
    cparse(". {\n  hosts {\n    10.0.0.1 a.local\n    anything goes\n  }\n}")


def test_syntax_errors_come_before_unsupported_plugins(cparse: Parse) -> None:
    # Valid for CoreDNS matters more than "not implemented here".
    with pytest.raises(CorefileError, match="no matching opening brace"):
        cparse(". { kubernetes cluster.local }")


def test_default_registry_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import pycorefile.registry as registry_module

    private = Registry()
    monkeypatch.setattr(private, "load_entry_points", lambda: None)
    monkeypatch.setattr(registry_module, "_default", private)
    with pytest.raises(CorefileError, match="plugin 'whoami' is not supported"):
        parse(". {\n  whoami\n}", env={})


# -- hints --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hinted"),
    [
        pytest.param(
            ". { forward . 10.0.0.1 ; cache 30 ; prometheus :9153 }", True, id="talk-one-liner"
        ),
        pytest.param(". { whoami }", True, id="one-line-block"),
        pytest.param(". {\n  whoami;\n}", True, id="semicolon-glued-to-name"),
        pytest.param(". {\n  whoami ; log\n}", False, id="free-semicolon-parses"),
        pytest.param(". {\n  whoami\n  nosuch\n}", False, id="plain-unknown"),
        pytest.param(". {\n  whoami\n  log", False, id="unclosed"),
    ],
)
def test_line_oriented_hint(cparse: Parse, text: str, hinted: bool) -> None:
    try:
        cparse(text)
    except CorefileError as err:
        assert (err.hint is not None and "line oriented" in err.hint) is hinted
        if hinted:
            assert "\n  hint: " in str(err)
    else:
        assert not hinted


def test_fallthrough_hint(cparse: Parse) -> None:
    # coredns/coredns#7121: the '{' of hosts is on the next line but one.
    with pytest.raises(CorefileError) as info:
        cparse(". {\n  hosts /etc/hosts\n\n  fallthrough\n}")
    assert "Unknown directive 'fallthrough'" in str(info.value)
    assert info.value.hint and "plugin's own line" in info.value.hint


# -- iter_errors and loads --------------------------------------------------------


def test_iter_errors_valid(registry: Registry) -> None:
    assert iter_errors(". {\n  whoami\n}", env={}, registry=registry) == []


def test_iter_errors_collects_every_unknown_directive(registry: Registry) -> None:
    errors = iter_errors(
        ". {\n  a1\n  whoami\n  a2\n}\nb.org {\n  a3\n}", env={}, registry=registry
    )
    assert [(e.message, e.line) for e in errors] == [
        ("Unknown directive 'a1'", 2),
        ("Unknown directive 'a2'", 4),
        ("Unknown directive 'a3'", 7),
    ]


def test_iter_errors_unknown_then_syntax_then_unsupported(registry: Registry) -> None:
    errors = iter_errors(". {\n  loop\n  nosuch\n  whoami }\n", env={}, registry=registry)
    assert [e.message for e in errors] == [
        "Unknown directive 'nosuch'",
        "Unexpected '}' because no matching opening brace",
        "plugin 'loop' is not supported by pycorefile",
    ]


def test_iter_errors_bad_keys(registry: Registry) -> None:
    errors = iter_errors("a..b {\n}\nc.org: {\n}", env={}, registry=registry)
    assert [str(e) for e in errors] == [
        "zone is not a valid domain name: a..b",
        'expecting data after last colon: "c.org:"',
    ]


@pytest.fixture
def fake_chain(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Corefile, object, str]]]:
    """A stand-in ``pycorefile.chain`` whose check fails every ``forward``."""
    calls: list[tuple[Corefile, object, str]] = []

    def check_plugins(corefile: Corefile, registry: object, mode: str) -> list[CorefileError]:
        calls.append((corefile, registry, mode))
        errors = []
        for block in corefile:
            for d in block.directives:
                if d.name != "forward":
                    continue
                if d.block is not None:
                    # An error located at the directive's line.
                    errors.append(d.error("unknown property 'x'", plugin="forward"))
                else:
                    # Like CoreDNS's forward: the bad address, no line.
                    bad = ";" if ";" in d.args else d.args[1]
                    errors.append(
                        CorefileError(
                            f"not an IP address or file: {bad!r}", plugin="forward", kind="plain"
                        )
                    )
        return errors

    module = types.ModuleType("pycorefile.chain")
    module.check_plugins = check_plugins  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pycorefile.chain", module)
    yield calls


def test_loads_runs_plugin_checks(fake_chain: list, registry: Registry) -> None:
    text = ". {\n  forward . 1.1.1.1\n}"
    with pytest.raises(CorefileError, match="plugin/forward: not an IP address"):
        loads(text, env={}, registry=registry, mode="coredns")
    assert fake_chain[0][1] is registry and fake_chain[0][2] == "coredns"
    cf = parse(text, env={}, registry=registry)
    assert len(cf.blocks) == 1  # parse alone does not run plugin checks


def test_loads_without_chain_module(monkeypatch: pytest.MonkeyPatch, registry: Registry) -> None:
    module = types.ModuleType("pycorefile.chain")  # no check_plugins yet
    monkeypatch.setitem(sys.modules, "pycorefile.chain", module)
    assert len(loads(". {\n  forward . 1.1.1.1\n}", env={}, registry=registry).blocks) == 1


def test_plugin_errors_then_duplicates(fake_chain: list, registry: Registry) -> None:
    text = ". {\n  forward . 1.1.1.1\n}\n. {\n  whoami\n}"
    errors = iter_errors(text, env={}, registry=registry)
    assert [str(e) for e in errors] == [
        "plugin/forward: not an IP address or file: '1.1.1.1'",
        "cannot serve dns://.:53 - it is already defined",
    ]
    with pytest.raises(CorefileError, match="plugin/forward"):
        loads(text, env={}, registry=registry)


def test_plugin_error_without_line_gets_semicolon_hint(
    fake_chain: list, registry: Registry
) -> None:
    # The talk's Corefile written over three lines parses; forward then fails on
    # the address ";" (CoreDNS gives no line for that one).
    text = ". {\n  forward . 10.0.0.1 ; cache 30 ; prometheus :9153\n}"
    errors = iter_errors(text, env={}, registry=registry)
    assert [str(e).splitlines()[0] for e in errors] == [
        "plugin/forward: not an IP address or file: ';'"
    ]
    assert errors[0].hint and "line oriented" in errors[0].hint


def test_plugin_error_on_one_line_block_gets_hint(fake_chain: list, registry: Registry) -> None:
    text = ". {\n  forward . 1.2.3.4 { x 1 }\n}"
    (error,) = iter_errors(text, "Corefile", env={}, registry=registry)
    assert str(error).splitlines()[0] == (
        "plugin/forward: Corefile:2 - Error during parsing: unknown property 'x'"
    )
    assert error.hint and "line oriented" in error.hint


def test_plugin_error_elsewhere_gets_no_hint(fake_chain: list, registry: Registry) -> None:
    (error,) = iter_errors(". {\n  forward . 1.1.1.1\n}", env={}, registry=registry)
    assert error.hint is None
