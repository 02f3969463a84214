"""Corefile tokens, as CoreDNS's Corefile reader produces them.

The token rules live in ``grammar.lark`` and lark's lexer applies them (with line
numbers). This module turns lark's raw matches into token text the way CoreDNS
does (quotes removed, ``\\"`` unescaped, carriage returns dropped, mid-word
comments cut) and hands the parser a list of :class:`Lexeme` objects.

CoreDNS quirks reproduced here (each checked against the coredns/caddy lexer):

* a leading byte-order mark is dropped (only as the very first character);
* a ``"`` opens a quoted token only as the first character of a token, so
  ``a"b c"`` is the two tokens ``a"b`` and ``c"``; a quoted token ends at its
  closing quote even if a word follows without a space (``"a"b`` is ``a``, ``b``);
* inside quotes ``\\"`` is a quote and every other backslash is kept as written,
  together with the character after it (``"C:\\php"`` stays ``C:\\php``);
* an unterminated quote runs to the end of the input; if it collected nothing
  (a lone ``"`` at the very end) there is no token at all;
* ``#`` at the start of a token comments out the rest of the line; ``#`` in the
  middle of a word ends the word and skips only up to the next whitespace
  (``foo#bar baz`` is ``foo``, ``baz``);
* ``\\r`` outside quotes is dropped wherever it is, even inside a word;
* ``;`` is an ordinary character.
"""

from __future__ import annotations

import re
import threading
from importlib import resources

from lark import Lark

from .model import Token

__all__ = ["Lexeme", "lex", "quote_token", "tokenize"]

_BOM = "\ufeff"

# Go's unicode.IsSpace, the separators of the Corefile lexer.
_SPACE = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)
_build_lock = threading.Lock()


class Lexeme:
    """A token while the parser works on it (mutable, unlike :class:`Token`).

    ``src`` is ``""`` for the main Corefile and the absolute path of an imported
    file, exactly like the ``File`` field CoreDNS keeps: two tokens are "on the
    same line" only if their ``src`` is the same. Env substitution rewrites
    ``text`` in place, as CoreDNS does, because later "is this a new line?"
    decisions count the newlines in the *substituted* text.
    """

    __slots__ = ("text", "line", "src", "quoted", "column")

    def __init__(
        self, text: str, line: int, src: str = "", quoted: bool = False, column: int = 0
    ) -> None:
        self.text = text
        self.line = line
        self.src = src
        self.quoted = quoted
        self.column = column

    def copy(self) -> Lexeme:
        return Lexeme(self.text, self.line, self.src, self.quoted, self.column)

    def end_line(self) -> int:
        """The line this token ends on (a quoted token may contain newlines)."""
        return self.line + self.text.count("\n")

    def to_token(self, main_file: str) -> Token:
        return Token(self.text, self.src or main_file, self.line, self.quoted, self.column)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Lexeme({self.text!r}, line={self.line}, src={self.src!r})"


_lark_lexer: Lark | None = None


def _lark() -> Lark:
    """The lark object for ``grammar.lark``, built once on first use (thread-safe)."""
    global _lark_lexer
    if _lark_lexer is None:
        with _build_lock:
            if _lark_lexer is None:
                grammar = resources.files(__package__).joinpath("grammar.lark").read_text("utf-8")
                _lark_lexer = Lark(grammar, parser="lalr", lexer="basic")
    return _lark_lexer


# The text parts of a match (see grammar.lark: a match also holds the gap after
# the token). A word ends at whitespace or `#` (a carriage return is part of it
# until removed); a quoted token's body is pairs `\X` and non-quote characters.
_WORD_END = re.compile(r"[\t\n\v\f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000#]")
_QUOTED_TEXT = re.compile(r'"((?:\\[\s\S]|[^"\\])*)("?)')


def lex(text: str, src: str = "") -> list[Lexeme]:
    """Tokenise Corefile text into :class:`Lexeme` objects (no env substitution)."""
    if text.startswith(_BOM):
        text = text[1:]
    out: list[Lexeme] = []
    append = out.append
    word_end = _WORD_END.search
    quoted_text = _QUOTED_TEXT.match
    for tok in _lark().lex(text):
        raw = str(tok)
        if tok.type == "WORD":
            end = word_end(raw)
            word = raw if end is None else raw[: end.start()]
            if "\r" in word:
                word = word.replace("\r", "")
            append(Lexeme(word, tok.line or 1, src, False, tok.column or 1))
            continue
        m = quoted_text(raw)
        if m is None:  # pragma: no cover - the grammar only hands us quoted tokens here
            continue
        body, closed = m.group(1), m.group(2)
        if not closed and not body:
            # An unterminated quote that collected nothing (a lone `"`, maybe
            # followed by a lone backslash, at the very end): no token at all.
            continue
        if "\\" in body:
            # Inside the body every `"` belongs to a `\"` pair (an unpaired one
            # would have closed the token), so a plain replace is exact. A lone
            # backslash at the end of input is not part of the body.
            body = body.replace('\\"', '"')
        append(Lexeme(body, tok.line or 1, src, True, tok.column or 1))
    return out


def tokenize(text: str, filename: str = "Corefile") -> list[Token]:
    """The tokens of ``text`` with their lines, as CoreDNS's lexer sees them.

    No env substitution, imports or structure: this is the lexical layer only,
    useful for tools and tests.
    """
    return [lx.to_token(filename) for lx in lex(text)]


def quote_token(text: str) -> str:
    """``text`` written so that the lexer reads it back as one token with that text.

    Bare when possible, otherwise in double quotes with ``"`` escaped. Raises
    ``ValueError`` for the few texts a Corefile cannot express: one that needs
    quotes and contains a backslash right before a quote or at its end (the
    lexer would read ``\\"`` as an escaped quote).
    """
    needs_quotes = (
        text == "" or text[0] in '"\ufeff' or "#" in text or any(c in _SPACE for c in text)
    )
    if not needs_quotes:
        return text
    if text.endswith("\\") or '\\"' in text:
        raise ValueError(f"cannot write {text!r} as a Corefile token")
    return '"' + text.replace('"', '\\"') + '"'
