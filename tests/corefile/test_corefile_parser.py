"""Structure: CoreDNS's caddyfile parser cases (spec §7.2) and the §1.2 rules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pycorefile.corefile import Corefile, CorefileError, Directive, ServerBlock

Parse = Callable[..., Corefile]
HERE = Path(__file__).resolve().parent


def dir_counts(block: ServerBlock) -> dict[str, int]:
    """Directive name -> token count (name and braces included) over all its
    occurrences: CoreDNS's ``ServerBlock.Tokens`` view."""
    counts: dict[str, int] = {}
    for d in block.directives:
        counts[d.name] = counts.get(d.name, 0) + len(d.raw)
    return counts


def key_texts(block: ServerBlock) -> list[str]:
    """The keys as written (a CIDR key that expands to several zones counts once)."""
    return list(dict.fromkeys(k.text for k in block.keys))


# (input, keys, {directive: token count}) -- one server block each ("parseOne").
ONE_BLOCK_OK = [
    pytest.param("localhost", ["localhost"], {}, id="key-only"),
    pytest.param("localhost\ndir1", ["localhost"], {"dir1": 1}, id="braceless"),
    pytest.param(
        "localhost:1234\ndir1 foo bar", ["localhost:1234"], {"dir1": 3}, id="braceless-args"
    ),
    pytest.param("localhost {\ndir1\n}", ["localhost"], {"dir1": 1}, id="braced"),
    pytest.param(
        "localhost:1234 {\ndir1 foo bar\ndir2\n}",
        ["localhost:1234"],
        {"dir1": 3, "dir2": 1},
        id="braced-two-directives",
    ),
    pytest.param(
        "http://localhost https://localhost\ndir1 foo bar",
        ["http://localhost", "https://localhost"],
        {"dir1": 3},
        id="space-separated-keys",
    ),
    pytest.param(
        "http://localhost https://localhost {\ndir1 foo bar\n}",
        ["http://localhost", "https://localhost"],
        {"dir1": 3},
        id="space-separated-keys-braced",
    ),
    pytest.param(
        "http://localhost, https://localhost {\ndir1 foo bar\n}",
        ["http://localhost", "https://localhost"],
        {"dir1": 3},
        id="comma-keys",
    ),
    pytest.param(
        "host1:80, http://host2.com\ndir1 foo bar\ndir2 baz",
        ["host1:80", "http://host2.com"],
        {"dir1": 3, "dir2": 2},
        id="comma-keys-braceless",
    ),
    pytest.param(
        "http://host1.com,\nhttp://host2.com,\nhttps://host3.com",
        ["http://host1.com", "http://host2.com", "https://host3.com"],
        {},
        id="comma-continued-across-lines",
    ),
    pytest.param(
        "http://host1.com:1234, https://host2.com\ndir1 foo {\nbar baz\n}\ndir2",
        ["http://host1.com:1234", "https://host2.com"],
        {"dir1": 6, "dir2": 1},
        id="directive-block",
    ),
    pytest.param(
        "127.0.0.1\ndir1 {\nbar baz\n}\ndir2 {\nfoo bar\n}",
        ["127.0.0.1"],
        {"dir1": 5, "dir2": 5},
        id="two-directive-blocks",
    ),
    pytest.param("localhost\ndir1 {\n}", ["localhost"], {"dir1": 3}, id="empty-directive-block"),
    pytest.param(
        "localhost\ndir1 {\nnested {\nfoo\n}\n}\ndir2 foo bar",
        ["localhost"],
        {"dir1": 7, "dir2": 3},
        id="nested-blocks",
    ),
    pytest.param(
        "localhost\ndir1 arg1\nimport testdata/import_test1.txt",
        ["localhost"],
        {"dir1": 2, "dir2": 3, "dir3": 1},
        id="import-directives",
    ),
    pytest.param(
        "import testdata/import_test2.txt",
        ["host1"],
        {"dir1": 1, "dir2": 2},
        id="import-whole-block",
    ),
]


@pytest.mark.parametrize(("text", "keys", "counts"), ONE_BLOCK_OK)
def test_upstream_one_block(
    cparse: Parse, text: str, keys: list[str], counts: dict[str, int]
) -> None:
    corefile = cparse(text)
    assert len(corefile.blocks) == 1
    assert key_texts(corefile.blocks[0]) == keys
    assert dir_counts(corefile.blocks[0]) == counts


# (input, line, message after "FILE:LINE - Error during parsing: ")
ONE_BLOCK_ERRORS = [
    pytest.param(
        "http://localhost, {\n}",
        1,
        "Expected another address but had '{' - check for extra comma",
        id="comma-then-brace",
    ),
    pytest.param("localhost\ndir1 {\nfoo", 3, "Unexpected EOF", id="unclosed-directive-block"),
    pytest.param(
        "localhost\ndir1 {\n} }",
        3,
        "Unexpected '}' because no matching opening brace",
        id="extra-close-brace",
    ),
    pytest.param(
        "import testdata/import_test1.txt testdata/import_test2.txt",
        1,
        "Import takes only one argument (glob pattern or file)",
        id="import-two-arguments",
    ),
    pytest.param(
        "import testdata/not_found.txt",
        1,
        "File to import not found: testdata/not_found.txt",
        id="import-not-found",
    ),
    # The upstream fuzz cases: bad globs, empty or literal patterns, missing files.
    pytest.param('import }{$"', 1, 'File to import not found: }{$"', id="fuzz-unclosed-env"),
    pytest.param(
        "import /*/*.txt",
        1,
        "Glob pattern may only contain one wildcard (*), but has others: /*/*.txt",
        id="fuzz-two-stars",
    ),
    pytest.param(
        "import /???/?*?o",
        1,
        "Glob pattern may only contain one wildcard (*), but has others: /???/?*?o",
        id="fuzz-many-wildcards",
    ),
    pytest.param(
        "import /??",
        1,
        "Glob pattern may only contain one wildcard (*), but has others: /??",
        id="fuzz-two-questions",
    ),
    pytest.param(
        "import /[a-z]",
        1,
        "Glob pattern may only contain one wildcard (*), but has others: /[a-z]",
        id="fuzz-class",
    ),
    pytest.param("import {$}", 1, "File to import not found: {$}", id="fuzz-empty-unix-var"),
    pytest.param("import {%}", 1, "File to import not found: {%}", id="fuzz-empty-windows-var"),
    pytest.param(
        "import {$$}", 1, "Import requires a non-empty filepath", id="fuzz-var-named-dollar"
    ),
    pytest.param("import {%%}", 1, "File to import not found: {%%}", id="fuzz-empty-windows-name"),
]


@pytest.mark.parametrize(("text", "line", "message"), ONE_BLOCK_ERRORS)
def test_upstream_one_block_errors(cparse: Parse, text: str, line: int, message: str) -> None:
    with pytest.raises(CorefileError) as info:
        cparse(text)
    err = info.value
    assert (err.filename, err.line, err.kind, err.message) == (
        str(HERE / "Corefile"),
        line,
        "parse",
        message,
    )
    assert (
        str(err).splitlines()[0] == f"{HERE / 'Corefile'}:{line} - Error during parsing: {message}"
    )


@pytest.mark.parametrize("text", ["", '""', "# just a comment\n", "\n\n"])
def test_empty_corefile_has_no_blocks(cparse: Parse, text: str) -> None:
    assert cparse(text).blocks == ()


# "parseAll": (input, number of blocks, keys of each block)
ALL_BLOCKS = [
    pytest.param("localhost", [["localhost"]], id="one"),
    pytest.param("localhost:1234", [["localhost:1234"]], id="one-with-port"),
    pytest.param(
        "localhost:1234 {\n}\nlocalhost:2015 {\n}",
        [["localhost:1234"], ["localhost:2015"]],
        id="two-in-order",
    ),
    pytest.param(
        "localhost:1234, http://host2", [["localhost:1234", "http://host2"]], id="two-keys"
    ),
    pytest.param(
        "localhost:1234, http://host2 {\n}\nhttps://host3, localhost:4000 {\n}",
        [["localhost:1234", "http://host2"], ["https://host3", "localhost:4000"]],
        id="two-blocks-two-keys",
    ),
    pytest.param(
        "import testdata/import_glob*.txt",
        [["glob0.host0"], ["glob0.host1"], ["glob1.host0"], ["glob2.host0"]],
        id="glob-in-name-order",
    ),
    pytest.param("import notfound/*", [], id="unmatched-glob-is-fine"),
    pytest.param(
        "a.org {\nwhoami\n} b.org {\nlog\n}", [["a.org"], ["b.org"]], id="close-then-next-key"
    ),
    pytest.param(
        "a.org\nwhoami\n}\nb.org\nlog", [["a.org"], ["b.org"]], id="braceless-ends-at-close"
    ),
]


@pytest.mark.parametrize(("text", "keys"), ALL_BLOCKS)
def test_upstream_all_blocks(cparse: Parse, text: str, keys: list[list[str]]) -> None:
    assert [key_texts(b) for b in cparse(text).blocks] == keys


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("localhost:1234, http://host2,", "Unexpected EOF", id="trailing-comma-eof"),
        pytest.param(
            "import notfound/file.conf",
            "File to import not found: notfound/file.conf",
            id="missing-file",
        ),
    ],
)
def test_upstream_all_blocks_errors(cparse: Parse, text: str, message: str) -> None:
    with pytest.raises(CorefileError, match=message):
        cparse(text)


# -- the model: nested directives --------------------------------------------


def _shape(d: Directive) -> object:
    """A directive as (name, args, block shapes) for compact assertions."""
    return (d.name, d.args, None if d.block is None else [_shape(s) for s in d.block])


STRUCTURE = [
    pytest.param("forward . 1.1.1.1", ("forward", (".", "1.1.1.1"), None), id="no-block"),
    pytest.param("forward . 1.1.1.1 {\n}", ("forward", (".", "1.1.1.1"), []), id="empty-block"),
    pytest.param(
        "forward . 1.1.1.1 {\nmax_fails 2\npolicy random\n}",
        ("forward", (".", "1.1.1.1"), [("max_fails", ("2",), None), ("policy", ("random",), None)]),
        id="block-lines",
    ),
    pytest.param(
        "forward . 1.2.3.4 { max_fails 2 }",
        ("forward", (".", "1.2.3.4"), [("max_fails", ("2",), None)]),
        id="one-line-directive-block-works",
    ),
    pytest.param(
        "hosts\n{\n10.0.0.1 db.local\nfallthrough\n}",
        ("hosts", (), [("10.0.0.1", ("db.local",), None), ("fallthrough", (), None)]),
        id="brace-on-next-line-opens-block",
    ),
    pytest.param(
        'template IN A {\nmatch x\nanswer "{{ .Name }} 60 IN A 1.2.3.4"\n}',
        (
            "template",
            ("IN", "A"),
            [("match", ("x",), None), ("answer", ("{{ .Name }} 60 IN A 1.2.3.4",), None)],
        ),
        id="quoted-braces-in-argument",
    ),
    pytest.param(
        "forward . 1.1.1.1 {\ntls {\nca x\n}\n}",
        ("forward", (".", "1.1.1.1"), [("tls", (), [("ca", ("x",), None)])]),
        id="nested-two-levels",
    ),
    pytest.param(
        "dir1 { a } b",
        ("dir1", ("b",), [("a", (), None)]),
        id="tokens-after-block-are-args",
    ),
]


@pytest.mark.parametrize(("body", "shape"), STRUCTURE)
def test_directive_structure(cparse: Parse, body: str, shape: object) -> None:
    block = cparse(f". {{\n{body}\n}}", mode="coredns").blocks[0]
    assert len(block.directives) == 1
    assert _shape(block.directives[0]) == shape


def test_raw_tokens_keep_braces_and_lines(cparse: Parse) -> None:
    d = cparse(". {\nhosts\n{\nfallthrough\n}\n}").blocks[0].directives[0]
    assert [(t.text, t.line) for t in d.raw] == [
        ("hosts", 2),
        ("{", 3),
        ("fallthrough", 4),
        ("}", 5),
    ]
    assert [t.text for t in d.tokens()] == ["hosts", "fallthrough"]


def test_positions(cparse: Parse) -> None:
    cf = cparse("# comment\n\nexample.org:1053 {\n  whoami\n  log\n}\n")
    block = cf.blocks[0]
    assert (block.file, block.line) == (str(HERE / "Corefile"), 3)
    assert [(d.name, d.line) for d in block.directives] == [("whoami", 4), ("log", 5)]
    assert (block.keys[0].file, block.keys[0].line) == (str(HERE / "Corefile"), 3)


def test_directives_keep_corefile_order_and_repeats(cparse: Parse) -> None:
    block = cparse(". {\nlog\ntemplate IN A a.org\nwhoami\ntemplate IN AAAA a.org\n}").blocks[0]
    assert [d.name for d in block.directives] == ["log", "template", "whoami", "template"]
    assert [d.args[1] for d in block.directives_named("template")] == ["A", "AAAA"]


def test_one_line_block_error_has_hint(cparse: Parse) -> None:
    with pytest.raises(CorefileError) as info:
        cparse(". { forward . 10.0.0.1 ; cache 30 ; prometheus :9153 }", filename="Corefile")
    err = info.value
    assert str(err).splitlines()[0] == (
        "Corefile:1 - Error during parsing: Unexpected '}' because no matching opening brace"
    )
    assert err.hint and "line oriented" in err.hint and "';' is not a separator" in err.hint


def test_one_line_whoami_is_an_error(cparse: Parse) -> None:
    with pytest.raises(CorefileError, match="no matching opening brace") as info:
        cparse(". { whoami }")
    assert info.value.hint is not None


def test_three_line_version_parses_with_semicolons_as_arguments(cparse: Parse) -> None:
    block = cparse(". {\nforward . 10.0.0.1 ; cache 30 ; prometheus :9153\n}").blocks[0]
    assert [d.name for d in block.directives] == ["forward"]
    assert block.directives[0].args == (
        ".",
        "10.0.0.1",
        ";",
        "cache",
        "30",
        ";",
        "prometheus",
        ":9153",
    )


def test_missing_final_brace_after_nested_block_goes_unnoticed(cparse: Parse) -> None:
    # CoreDNS mistakes the nested block's '}' for the server block's.
    block = cparse(". {\ndir1 {\nfoo\n}\n").blocks[0]
    assert dir_counts(block) == {"dir1": 4}


def test_extra_close_brace_is_a_block_named_brace(cparse: Parse) -> None:
    cf = cparse(". {\nwhoami\n}\n}")
    assert [b.keys[0].zone for b in cf.blocks] == [".", "}."]


def test_snippet_key_at_eof_is_a_server_block(cparse: Parse) -> None:
    # Only a `(name)` key followed by a block defines a snippet; alone at the end
    # of the file it is an ordinary (odd) key, as in CoreDNS.
    assert [k.zone for k in cparse("(s)").blocks[0].keys] == ["(s)."]


def test_quoted_brace_is_a_brace(cparse: Parse) -> None:
    # The lexer does not tell CoreDNS's parser that a token was quoted.
    block = cparse('. "{"\nwhoami\n"}"').blocks[0]
    assert [d.name for d in block.directives] == ["whoami"]


def test_import_word_as_argument_is_kept(cparse: Parse, tmp_path: Path) -> None:
    inner = tmp_path / "site.conf"
    inner.write_text(
        "example.com {\n  # not an import: an argument\n  basicauth / import password\n}\n"
    )
    block = cparse(f"import {inner}").blocks[0]
    assert block.directives[0].args == ("/", "import", "password")
