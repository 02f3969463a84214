"""From tokens to server blocks, exactly as CoreDNS's Corefile reader does it.

The lexical rules are in ``grammar.lark``; this module is the structural part of
coredns/caddy's ``caddyfile`` parser. Structure there is not context free: it
depends on whether a token is the first of its line (counting the newlines inside
the previous token's text), ``import`` splices a file's or snippet's tokens into
the stream while it is being read, and environment variables are substituted
token by token as the parser reaches them. So the parser is a cursor over a token
list, with the same moves as CoreDNS's ``Dispenser``; each CoreDNS corner case it
reproduces is commented where it happens.

The result is a list of :class:`RawBlock` (keys + directive token runs); the
public ``parse`` turns those into the immutable model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import imports
from .env import substitute
from .errors import CorefileError
from .lexer import Lexeme, lex
from .model import Directive, Token

__all__ = [
    "LINE_ORIENTED_HINT",
    "MAX_FILE_EXPANSIONS",
    "MAX_SNIPPET_EXPANSIONS",
    "NameCheck",
    "RawBlock",
    "RawDirective",
    "build_directive",
    "read_blocks",
]

#: CoreDNS's caps on import expansion (they count import statements, not files).
MAX_SNIPPET_EXPANSIONS = 10000
MAX_FILE_EXPANSIONS = 100000

LINE_ORIENTED_HINT = (
    "a Corefile is line oriented: put each directive on its own line, with the "
    "block's '{' at the end of the key line and its '}' on a line of its own; "
    "';' is not a separator (it is read as an argument)"
)

# Brace kinds recorded while a directive is read. CoreDNS decides on the text
# *before* env substitution, so a variable whose value is "{" is not a brace.
_PLAIN, _OPEN, _CLOSE = 0, 1, 2


class _Fatal(Exception):
    """Stops the parse (CoreDNS stops at the first syntax error)."""

    def __init__(self, error: CorefileError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class RawDirective:
    """A directive's tokens as CoreDNS groups them, before structuring.

    ``items`` are the tokens after the name, braces included, each with its brace
    kind and whether it started a new line when it was read.
    """

    name: Token
    items: list[tuple[Token, int, bool]] = field(default_factory=list)


@dataclass
class RawBlock:
    """A server block: keys (env-substituted, comma stripped) and directives."""

    keys: list[Token]
    directives: list[RawDirective]


#: Called for each directive name; returns an error to record (parsing goes on)
#: or ``None``.
NameCheck = Callable[[Token], "CorefileError | None"]


class _Reader:
    """The Corefile reader: CoreDNS's parser and dispenser over a token list."""

    def __init__(
        self,
        tokens: list[Lexeme],
        filename: str,
        env: Mapping[str, str],
        check_name: NameCheck,
        errors: list[CorefileError],
    ) -> None:
        self.toks = tokens
        self.cur = -1
        self.filename = filename
        self.env = env
        self.check_name = check_name
        self.errors = errors
        self.eof = False
        self.snippets: dict[str, list[Lexeme]] = {}
        self.snippet_expansions = 0
        self.file_expansions = 0
        self._file_cache: dict[str, list[Lexeme]] = {}
        self._resolved: dict[tuple[str, str], list[str]] = {}

    # -- dispenser moves --------------------------------------------------
    def next(self) -> bool:
        if self.cur < len(self.toks) - 1:
            self.cur += 1
            return True
        return False

    def val(self) -> str:
        if 0 <= self.cur < len(self.toks):
            return self.toks[self.cur].text
        return ""

    def next_arg(self) -> bool:
        """Advance only if the next token is on the same line as the current one."""
        cur = self.cur
        if cur < 0:
            # CoreDNS quirk: before the first token, NextArg just advances.
            self.cur += 1
            return True
        toks = self.toks
        if cur < len(toks) - 1:
            a, b = toks[cur], toks[cur + 1]
            if a.src == b.src and a.end_line() == b.line:
                self.cur += 1
                return True
        return False

    def is_new_line(self) -> bool:
        """Is the current token the first of its line?

        "Line" counts from where the previous token *ends* (a quoted token may
        contain newlines) and a token from another file always starts a line. A
        token whose line is *before* the previous token's end (a snippet spliced
        in from earlier in the file) is neither on the same line nor a new line:
        CoreDNS compares with ``<`` here and ``==`` in ``next_arg``.
        """
        cur = self.cur
        if cur < 1:
            return True
        if cur > len(self.toks) - 1:
            return False
        prev, tok = self.toks[cur - 1], self.toks[cur]
        return prev.src != tok.src or prev.end_line() < tok.line

    # -- errors -------------------------------------------------------------
    def _where(self) -> tuple[str, int]:
        if 0 <= self.cur < len(self.toks):
            tok = self.toks[self.cur]
            return tok.src or self.filename, tok.line
        return self.filename, 0

    def _line_hint(self) -> str | None:
        """The line-orientation hint, if the failing line looks like a one-liner."""
        if not 0 <= self.cur < len(self.toks):
            return None
        tok = self.toks[self.cur]
        lo = hi = self.cur
        while lo > 0 and self.toks[lo - 1].src == tok.src and self.toks[lo - 1].line == tok.line:
            lo -= 1
        while (
            hi < len(self.toks) - 1
            and self.toks[hi + 1].src == tok.src
            and self.toks[hi + 1].line == tok.line
        ):
            hi += 1
        texts = {t.text for t in self.toks[lo : hi + 1]}
        if ("{" in texts and "}" in texts) or ";" in texts:
            return LINE_ORIENTED_HINT
        return None

    def error(self, message: str, kind: str = "parse") -> _Fatal:
        file, line = self._where()
        return _Fatal(CorefileError(message, file, line, kind=kind, hint=self._line_hint()))

    def syntax_error(self, expected: str) -> _Fatal:
        return self.error(f"Unexpected token '{self.val()}', expecting '{expected}'", "syntax")

    def arg_error(self) -> _Fatal:
        if self.val() == "{":
            return self.error("Unexpected token '{', expecting argument")
        return self.error(f"Wrong argument count or unexpected line ending after '{self.val()}'")

    def token(self, lx: Lexeme, text: str | None = None) -> Token:
        return Token(
            lx.text if text is None else text,
            lx.src or self.filename,
            lx.line,
            lx.quoted,
            lx.column,
        )

    # -- the parser -----------------------------------------------------------
    def read_all(self) -> list[RawBlock]:
        blocks: list[RawBlock] = []
        while self.next():
            block = self.read_block()
            # A block whose keys were all empty ("" or unset variables) or a
            # snippet definition is not a server.
            if block is not None and block.keys:
                blocks.append(block)
        return blocks

    def read_block(self) -> RawBlock | None:
        if not self.toks:
            return None
        keys = self.read_keys()
        block = RawBlock(keys, [])
        if self.eof:
            # Only keys until the end of the input: a block with no directives.
            # (Not even checked for being a snippet, as in CoreDNS.)
            return block
        if len(keys) == 1 and keys[0].text.startswith("(") and keys[0].text.endswith(")"):
            self.define_snippet(keys[0].text[1:].removesuffix(")"))
            return None
        braced = self.val() == "{"
        if not braced:
            # No brace: the block runs to a '}' at the start of a line or to the
            # end of the input (a brace-less single-block Corefile).
            self.cur -= 1
        self.read_directives(block)
        if braced and self.val() != "}":
            raise self.syntax_error("}")
        return block

    def read_keys(self) -> list[Token]:
        keys: list[Token] = []
        expecting_another = False
        while True:
            lx = self.toks[self.cur] if 0 <= self.cur < len(self.toks) else None
            text = substitute(self.val(), self.env)
            if text == "import" and self.is_new_line():
                self.do_import()
                continue
            if text == "{":
                if expecting_another:
                    raise self.error("Expected another address but had '{' - check for extra comma")
                break
            if text != "" and lx is not None:
                # A trailing comma means another key follows, maybe on the next
                # line. (A lone "," thus gives an empty key, which the key check
                # then rejects, as in CoreDNS.)
                expecting_another = text.endswith(",")
                if expecting_another:
                    text = text[:-1]
                keys.append(self.token(lx, text))
            has_next = self.next()
            if expecting_another and not has_next:
                raise self.error("Unexpected EOF")
            if not has_next:
                self.eof = True
                break
            if not expecting_another and self.is_new_line():
                break
        return keys

    def read_directives(self, block: RawBlock) -> None:
        while self.next():
            text = self.val()
            if text == "}":
                break
            if text == "import":
                # Recognised here even right after the block's '{' on the same
                # line; the imported tokens are then read as directives.
                self.do_import()
                self.cur -= 1
                continue
            block.directives.append(self.read_directive())

    def read_directive(self) -> RawDirective:
        lx = self.toks[self.cur]
        name = self.token(lx, substitute(lx.text, self.env))
        problem = self.check_name(name)
        if problem is not None:
            if problem.hint is None:
                hint = self._line_hint()
                if hint is not None:
                    problem = CorefileError(
                        problem.message,
                        problem.filename,
                        problem.line,
                        plugin=problem.plugin,
                        kind=problem.kind,
                        hint=hint,
                    )
            # CoreDNS stops here; we note it and read on, so that a validator can
            # report every unknown directive. The structure is the same either way.
            self.errors.append(problem)
        directive = RawDirective(name)
        items = directive.items
        toks, env, filename = self.toks, self.env, self.filename
        nesting = 0
        # The dispenser moves (next, is_new_line) are inlined here: this loop sees
        # nearly every token of a Corefile.
        while self.cur < len(toks) - 1:
            self.cur += 1
            lx = toks[self.cur]
            text = lx.text
            prev = toks[self.cur - 1]
            new_line = prev.src != lx.src or prev.line + prev.text.count("\n") < lx.line
            kind = _PLAIN
            if text == "{":
                # Also a '{' that starts the next line: it opens this directive's
                # block at the parser level.
                nesting += 1
                kind = _OPEN
            elif nesting == 0 and new_line:
                self.cur -= 1  # read too far: that token starts the next directive
                break
            elif text == "}":
                if nesting == 0:
                    # The one-line block trap: `. { whoami }` ends up here, because
                    # the directive reads to the end of its line and this '}' has
                    # no '{' on that line.
                    raise self.error("Unexpected '}' because no matching opening brace")
                nesting -= 1
                kind = _CLOSE
            elif text == "import" and new_line:
                # Inside a directive's block, `import` at the start of a line
                # splices in plugin sub-lines.
                self.do_import()
                self.cur -= 1
                continue
            if "{" in text:
                # Substituted in place: the next token's "new line?" test counts
                # the newlines of this token's final text.
                text = lx.text = substitute(text, env)
            tok = Token(text, lx.src or filename, lx.line, lx.quoted, lx.column)
            items.append((tok, kind, new_line))
        if nesting > 0:
            raise self.error("Unexpected EOF")
        return directive

    # -- snippets and imports ----------------------------------------------
    def define_snippet(self, name: str) -> None:
        if name in self.snippets:
            raise self.error(f"redeclaration of previously declared snippet {name}")
        if self.val() != "{":
            raise self.syntax_error("{")
        depth = 1
        body: list[Lexeme] = []
        while self.next():
            text = self.val()
            if text == "}":
                depth -= 1
                if depth == 0:
                    break
            elif text == "{":
                depth += 1
            body.append(self.toks[self.cur])
        if depth != 0:
            raise self.syntax_error("}")
        # CoreDNS's guard against a snippet that imports itself directly: an
        # `import NAME` at the start of a line of its own body.
        for i in range(len(body) - 1):
            tok = body[i]
            if tok.text != "import":
                continue
            prev = body[i - 1] if i else None
            at_line_start = prev is None or prev.src != tok.src or prev.line != tok.line
            if at_line_start and substitute(body[i + 1].text, self.env) == name:
                raise self.error(
                    f"maximum snippet import depth ({MAX_SNIPPET_EXPANSIONS}) exceeded"
                )
        self.snippets[name] = body

    def do_import(self) -> None:
        """Replace ``import PATTERN`` by the snippet's or files' tokens.

        On return the cursor is on the first spliced token (or on whatever followed
        the import, if it brought nothing).
        """
        if not self.next_arg():
            raise self.arg_error()
        pattern = substitute(self.val(), self.env)
        if pattern == "":
            raise self.error("Import requires a non-empty filepath")
        if self.next_arg():
            raise self.error("Import takes only one argument (glob pattern or file)")

        spliced: list[Lexeme]
        if pattern in self.snippets:
            if self.snippet_expansions >= MAX_SNIPPET_EXPANSIONS:
                raise self.error(
                    f"maximum snippet import depth ({MAX_SNIPPET_EXPANSIONS}) exceeded"
                )
            self.snippet_expansions += 1
            spliced = [lx.copy() for lx in self.snippets[pattern]]
        else:
            if self.file_expansions >= MAX_FILE_EXPANSIONS:
                # CoreDNS prints the snippet cap in this message too.
                raise self.error(f"maximum file import depth ({MAX_SNIPPET_EXPANSIONS}) exceeded")
            self.file_expansions += 1
            file, _ = self._where()
            try:
                # Resolved once per parse: an import cycle repeats the same
                # import until the cap, and the files do not change meanwhile.
                key = (pattern, file)
                paths = self._resolved.get(key)
                if paths is None:
                    paths = self._resolved[key] = imports.resolve(pattern, file)
                spliced = []
                for path in paths:
                    spliced.extend(self._file_tokens(path))
            except imports.ImportFailed as exc:
                raise self.error(str(exc)) from None

        # The import keyword and its argument are replaced by the new tokens.
        self.toks[self.cur - 1 : self.cur + 1] = spliced
        self.cur -= 1

    def _file_tokens(self, path: str) -> list[Lexeme]:
        src = os.path.abspath(path)
        cached = self._file_cache.get(src)
        if cached is None:
            # Read each file once per parse: an import cycle re-imports the same
            # file until the expansion cap, and its content does not change.
            cached = lex(imports.read_corefile(path), src)
            self._file_cache[src] = cached
        return [lx.copy() for lx in cached]


def read_blocks(
    text: str,
    filename: str,
    *,
    env: Mapping[str, str],
    check_name: NameCheck,
    errors: list[CorefileError],
) -> list[RawBlock] | None:
    """Read ``text`` into raw server blocks.

    Directive-name problems are appended to ``errors`` and reading goes on; a
    syntax error is appended and ends the read (``None`` is returned).
    """
    reader = _Reader(lex(text), filename, env, check_name, errors)
    try:
        return reader.read_all()
    except _Fatal as fatal:
        errors.append(fatal.error)
        return None


# -- structuring: directive token runs -> nested Directive objects ------------


def build_directive(raw: RawDirective) -> Directive:
    """The model :class:`Directive` for a directive's token run."""
    return _build(raw.name, raw.items)


def _build(name: Token, items: list[tuple[Token, int, bool]]) -> Directive:
    all_tokens = (name, *(t for t, _, _ in items))
    if not items:
        return Directive(name, (), None, all_tokens)
    if not any(kind for _, kind, _ in items):
        return Directive(name, tuple(t for t, _, _ in items), None, all_tokens)
    args: list[Token] = []
    block: list[Directive] | None = None
    i, n = 0, len(items)
    while i < n:
        tok, kind, _ = items[i]
        if kind == _OPEN:
            depth, j = 1, i + 1
            while j < n and depth:
                if items[j][1] == _OPEN:
                    depth += 1
                elif items[j][1] == _CLOSE:
                    depth -= 1
                j += 1
            inner = items[i + 1 : j - 1] if depth == 0 else items[i + 1 : j]
            if block is None:
                block = []
            # A second block (`dir { a }` then `{ b }` on the next line) adds to
            # the first: CoreDNS hands the plugin one token stream either way.
            block.extend(_build_lines(inner))
            i = j
        else:
            # Tokens after a block's '}' on the same line are kept as arguments.
            args.append(tok)
            i += 1
    return Directive(name, tuple(args), tuple(block) if block is not None else None, all_tokens)


def _build_lines(items: list[tuple[Token, int, bool]]) -> list[Directive]:
    """Split a block's contents into lines, each a :class:`Directive`."""
    groups: list[list[tuple[Token, int, bool]]] = []
    depth = 0
    for item in items:
        _, kind, new_line = item
        # A line starts at the first token of the block and at every token that
        # starts a source line outside nested braces, except a '{' (which, as at
        # the top level, opens the block of the line before it).
        if not groups or (depth == 0 and new_line and kind != _OPEN):
            groups.append([item])
        else:
            groups[-1].append(item)
        if kind == _OPEN:
            depth += 1
        elif kind == _CLOSE:
            depth -= 1
    return [_build(group[0][0], group[1:]) for group in groups]
