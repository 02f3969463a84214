"""The lexer: CoreDNS's caddyfile lexer cases (spec §7.1) and its corner cases (§1.1)."""

from __future__ import annotations

import pytest

from pycorefile.corefile import tokenize

# (input, [(text, line), ...]) -- the upstream lexer table, row by row.
UPSTREAM_CASES = [
    pytest.param("host:123", [("host:123", 1)], id="1-single"),
    pytest.param(
        "host:123\n\n\t\t\t\t\tdirective", [("host:123", 1), ("directive", 3)], id="2-blank-line"
    ),
    pytest.param(
        "host:123 {\n\t\t\t\t\t\tdirective\n\t\t\t\t\t}",
        [("host:123", 1), ("{", 1), ("directive", 2), ("}", 3)],
        id="3-block",
    ),
    pytest.param(
        "host:123 { directive }",
        [("host:123", 1), ("{", 1), ("directive", 1), ("}", 1)],
        id="4-one-line",
    ),
    pytest.param(
        "host:123 {\n  #comment\n  directive\n  # comment\n  foobar # another comment\n}",
        [("host:123", 1), ("{", 1), ("directive", 3), ("foobar", 5), ("}", 6)],
        id="5-comments",
    ),
    pytest.param(
        'a "quoted value" b\n  foobar',
        [("a", 1), ("quoted value", 1), ("b", 1), ("foobar", 2)],
        id="6-quoted",
    ),
    pytest.param(
        'A "quoted \\"value\\" inside" B',
        [("A", 1), ('quoted "value" inside', 1), ("B", 1)],
        id="7-escaped-quote",
    ),
    pytest.param('"don\'t\\escape"', [("don't\\escape", 1)], id="8-backslash-kept"),
    pytest.param('"don\'t\\\\escape"', [("don't\\\\escape", 1)], id="9-two-backslashes-kept"),
    pytest.param(
        'A "quoted value with line\n\t\t\t\t\tbreak inside" {\n\t\t\t\t\t\tfoobar\n\t\t\t\t\t}',
        [
            ("A", 1),
            ("quoted value with line\n\t\t\t\t\tbreak inside", 1),
            ("{", 2),
            ("foobar", 3),
            ("}", 4),
        ],
        id="10-quoted-newline",
    ),
    pytest.param('"C:\\php\\php-cgi.exe"', [("C:\\php\\php-cgi.exe", 1)], id="11-windows-path"),
    pytest.param('empty "" string', [("empty", 1), ("", 1), ("string", 1)], id="12-empty-quoted"),
    pytest.param(
        "skip those\r\nCR characters",
        [("skip", 1), ("those", 1), ("CR", 2), ("characters", 2)],
        id="13-crlf",
    ),
    pytest.param("\ufeff:8080", [(":8080", 1)], id="14-bom"),
]


@pytest.mark.parametrize(("text", "expected"), UPSTREAM_CASES)
def test_upstream_lexer_cases(text: str, expected: list[tuple[str, int]]) -> None:
    assert [(t.text, t.line) for t in tokenize(text)] == expected


# Corner cases of §1.1, each checked against the coredns/caddy lexer.
CORNER_CASES = [
    # quotes open a token only at its start
    pytest.param('a"b c"', [('a"b', 1), ('c"', 1)], id="quote-mid-token"),
    pytest.param('"a"b', [("a", 1), ("b", 1)], id="quoted-then-word-no-space"),
    pytest.param('"a""b"', [("a", 1), ("b", 1)], id="two-quoted-no-space"),
    # comments
    pytest.param("foo#bar baz", [("foo", 1), ("baz", 1)], id="hash-mid-token-ends-at-space"),
    pytest.param(
        "foo#bar baz\nqux", [("foo", 1), ("baz", 1), ("qux", 2)], id="hash-mid-token-line"
    ),
    pytest.param("foo #bar baz\nqux", [("foo", 1), ("qux", 2)], id="hash-token-start-ends-line"),
    pytest.param('"a"#c d\ne', [("a", 1), ("e", 2)], id="hash-after-quoted-is-line-comment"),
    pytest.param('"a # b"', [("a # b", 1)], id="hash-inside-quotes"),
    pytest.param("#only\n#comments", [], id="only-comments"),
    # separators and whitespace
    pytest.param("whoami;", [("whoami;", 1)], id="semicolon-is-ordinary"),
    pytest.param("a ; b", [("a", 1), (";", 1), ("b", 1)], id="free-semicolon-is-a-token"),
    pytest.param(
        "log a \\\nb", [("log", 1), ("a", 1), ("\\", 1), ("b", 2)], id="no-line-continuation"
    ),
    pytest.param("a\rb", [("ab", 1)], id="cr-dropped-mid-word"),
    pytest.param('"a\rb"', [("a\rb", 1)], id="cr-kept-in-quotes"),
    pytest.param("a\u00a0b\u3000c", [("a", 1), ("b", 1), ("c", 1)], id="unicode-spaces"),
    pytest.param("a\x1cb", [("a\x1cb", 1)], id="file-separator-is-not-space-in-go"),
    pytest.param("x \ufeffy", [("x", 1), ("\ufeffy", 1)], id="bom-only-at-start"),
    # unterminated quotes
    pytest.param('a "b c', [("a", 1), ("b c", 1)], id="unterminated-runs-to-eof"),
    pytest.param('a "', [("a", 1)], id="lone-quote-at-eof-no-token"),
    pytest.param('a "b\\', [("a", 1), ("b", 1)], id="lone-backslash-at-eof-dropped"),
    pytest.param('"b\\"', [('b"', 1)], id="escaped-quote-at-eof"),
    # line counting through quoted newlines
    pytest.param(
        '"x\n\ny" z\nw', [("x\n\ny", 1), ("z", 3), ("w", 4)], id="lines-after-multiline-quote"
    ),
    pytest.param("a\n\n\n\nb", [("a", 1), ("b", 5)], id="blank-lines"),
]


@pytest.mark.parametrize(("text", "expected"), CORNER_CASES)
def test_lexer_corner_cases(text: str, expected: list[tuple[str, int]]) -> None:
    assert [(t.text, t.line) for t in tokenize(text)] == expected


def test_tokens_record_quoting_and_file() -> None:
    toks = tokenize('a "b"', filename="conf/Corefile")
    assert [(t.quoted, t.file) for t in toks] == [(False, "conf/Corefile"), (True, "conf/Corefile")]


def test_grammar_is_package_data() -> None:
    from importlib import resources

    text = resources.files("pycorefile.corefile").joinpath("grammar.lark").read_text("utf-8")
    assert "QUOTED" in text and "WORD" in text


def test_columns() -> None:
    toks = tokenize('ab  "c d"\n  e#x f\r\n\tg')
    assert [(t.text, t.line, t.column) for t in toks] == [
        ("ab", 1, 1),
        ("c d", 1, 5),
        ("e", 2, 3),
        ("f", 2, 7),
        ("g", 3, 2),
    ]
