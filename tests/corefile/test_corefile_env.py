"""Environment substitution (spec §1.3), from CoreDNS's parser tests and beyond."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pycorefile.corefile import Corefile, CorefileError
from pycorefile.corefile.env import substitute
from pycorefile.corefile.parser import read_blocks

Parse = Callable[..., Corefile]

ENV = {"ADDRESS": "servername.com", "PORT": "8080", "PARTIAL_DIR": "r1", "FOOBAR": "foobar"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("{$ADDRESS}", "servername.com", id="unix"),
        pytest.param("di{$PARTIAL_DIR}", "dir1", id="partial"),
        pytest.param("{$ADDRESS}:{$PORT}", "servername.com:8080", id="two"),
        pytest.param("{%ADDRESS%}:{$PORT}", "servername.com:8080", id="windows-then-unix"),
        pytest.param("{$ADDRESS}:{%PORT%}", "servername.com:8080", id="unix-then-windows"),
        pytest.param("{%ADDRESS%}/{%FOOBAR%}", "servername.com/foobar", id="two-windows"),
        pytest.param("{%ADDRESS}", "{%ADDRESS}", id="malformed-stays-literal"),
        pytest.param(":{$PORT$}", ":", id="unset-is-empty"),
        pytest.param("Test {$FOOBAR} test", "Test foobar test", id="inside-text"),
        pytest.param("{{ .Name }} {$FOOBAR}", "{{ .Name }} foobar", id="next-to-template"),
        pytest.param("{{$x}}", "{}", id="template-variable-trap"),
        pytest.param("{{ $x }}", "{{ $x }}", id="template-variable-with-spaces-is-safe"),
        pytest.param("{env.ADDRESS}", "{env.ADDRESS}", id="caddy-v2-env-not-supported"),
        pytest.param("{$ADDRESS:default}", "", id="no-default-syntax"),
        pytest.param("{$}{$ADDRESS}", "{$}{$ADDRESS}", id="empty-name-stops-scan"),
        pytest.param("a{$PORT}b{$PORT}", "a8080b8080", id="repeated"),
    ],
)
def test_substitute(text: str, expected: str) -> None:
    assert substitute(text, ENV) == expected


def test_value_is_rescanned() -> None:
    # CoreDNS scans the token again after each replacement.
    assert substitute("{$A}", {"A": "<{$B}>", "B": "b"}) == "<b>"


def test_self_reference_terminates() -> None:
    # CoreDNS would loop forever here; we stop after a bounded number of rounds.
    assert substitute("{$X}", {"X": "{$X}"}) == "{$X}"


def test_keys_directives_and_args() -> None:
    # The upstream parser case `:{%PORT%}` / `dir1 {$FOOBAR}`, at the reader level:
    # the key `:8080` itself is then refused by the zone check (as in CoreDNS).
    errors: list[CorefileError] = []
    blocks = read_blocks(
        ":{%PORT%}\ndir1 {$FOOBAR}", "Corefile", env=ENV, check_name=lambda t: None, errors=errors
    )
    assert errors == [] and blocks is not None
    assert [k.text for k in blocks[0].keys] == [":8080"]
    assert [t.text for t, _, _ in blocks[0].directives[0].items] == ["foobar"]


def test_port_only_key_is_not_a_zone(cparse: Parse) -> None:
    with pytest.raises(CorefileError) as info:
        cparse(":{%PORT%}\ndir1 {$FOOBAR}", env=ENV)
    assert str(info.value) == "zone is not a valid domain name: "


def test_key_from_env(cparse: Parse) -> None:
    block = cparse("{$ADDRESS}:{$PORT} {\n  whoami\n}", env=ENV).blocks[0]
    assert [(k.text, k.zone, k.port) for k in block.keys] == [
        ("servername.com:8080", "servername.com.", "8080")
    ]


def test_directive_name_from_env(cparse: Parse) -> None:
    block = cparse(". {\n  di{$PARTIAL_DIR} a\n}", env=ENV).blocks[0]
    assert [(d.name, d.args) for d in block.directives] == [("dir1", ("a",))]


def test_quoted_argument(cparse: Parse) -> None:
    block = cparse(
        '. {\n  template IN A {\n    answer "{{ .Name }} {$FOOBAR}"\n  }\n}', env=ENV
    ).blocks[0]
    assert block.directives[0].block[0].args == ("{{ .Name }} foobar",)  # type: ignore[index]


def test_value_with_spaces_stays_one_token(cparse: Parse) -> None:
    # coredns/coredns#3657: forward . {$SERVERS} gives forward ONE argument.
    block = cparse(". {\n  forward . {$SERVERS}\n}", env={"SERVERS": "1.1.1.1 8.8.8.8"}).blocks[0]
    assert block.directives[0].args == (".", "1.1.1.1 8.8.8.8")


def test_empty_key_from_unset_variable_is_skipped(cparse: Parse) -> None:
    block = cparse("{$UNSET} example.org {\n  whoami\n}").blocks[0]
    assert [k.text for k in block.keys] == ["example.org"]


def test_only_empty_keys_drop_the_block(cparse: Parse) -> None:
    assert cparse("{$UNSET} {\n  whoami\n}\n").blocks == ()


def test_default_env_is_process_environment(cparse: Parse, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYCOREFILE_TEST_ZONE", "env.example")
    block = cparse("{$PYCOREFILE_TEST_ZONE} {\n  whoami\n}", env=None).blocks[0]
    assert block.keys[0].zone == "env.example."


def test_unknown_directive_reports_substituted_name(cparse: Parse) -> None:
    with pytest.raises(CorefileError, match="Unknown directive 'nope'"):
        cparse(". {\n  {$D}\n}", env={"D": "nope"})


def test_brace_from_env_is_not_a_brace(cparse: Parse) -> None:
    # Brace checks look at the text before substitution.
    block = cparse(". {\n  log {$B} x\n}", env={"B": "{"}).blocks[0]
    assert block.directives[0].args == ("{", "x")
    assert block.directives[0].block is None


def test_import_keyword_from_env_is_not_an_import(cparse: Parse) -> None:
    # Inside a block CoreDNS checks the raw text for `import`, then the
    # substituted name for validity: "import" is no directive.
    with pytest.raises(CorefileError, match="Unknown directive 'import'"):
        cparse(". {\n  {$I} x\n}", env={"I": "import"})
