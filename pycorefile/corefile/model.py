"""The Corefile model: what the parser produces and what plugins read.

Everything here is immutable. Positions (file and line) are kept on every token so
that any later stage (key normalisation, plugin setup) can report ``FILE:LINE``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import CorefileError


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token after env substitution.

    ``file`` is the path as given for the main Corefile, absolute for imported files.
    ``quoted`` tells whether the token was written in double quotes. CoreDNS does not
    keep that distinction: a quoted ``"{"`` opens a block like a bare ``{``.
    """

    text: str
    file: str
    line: int
    quoted: bool = False
    #: 1-based column of the token's first character (its opening quote, if quoted),
    #: for tools; 0 when unknown. CoreDNS's messages name only the line.
    column: int = field(default=0, compare=False)

    def error(self, message: str, *, plugin: str | None = None, kind: str = "parse") -> CorefileError:
        """A :class:`CorefileError` located at this token."""
        return CorefileError(message, self.file, self.line, plugin=plugin, kind=kind)


@dataclass(frozen=True, slots=True)
class Directive:
    """A directive line: its name, arguments and optional nested block.

    Lines inside a nested block are themselves :class:`Directive` objects (a
    property name with its arguments, e.g. ``max_fails 2``, or a hosts entry
    ``10.0.0.1 db.local`` whose ``name`` is the IP). ``block`` is ``None`` when the
    directive had no ``{ }`` and an empty tuple for ``{ }``.

    ``raw`` is every token of the directive in source order, braces included: the
    token stream a CoreDNS plugin's setup reads. Use it where the exact layout
    matters (is the ``{`` on the directive's own line? anything after the ``}``?).
    """

    name_token: Token
    arg_tokens: tuple[Token, ...] = ()
    block: tuple[Directive, ...] | None = None
    raw: tuple[Token, ...] = field(default=(), compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.name_token.text

    @property
    def args(self) -> tuple[str, ...]:
        return tuple(t.text for t in self.arg_tokens)

    @property
    def file(self) -> str:
        return self.name_token.file

    @property
    def line(self) -> int:
        return self.name_token.line

    def error(self, message: str, *, plugin: str | None = None, kind: str = "parse") -> CorefileError:
        """A :class:`CorefileError` at this directive's line."""
        return self.name_token.error(message, plugin=plugin, kind=kind)

    def arg_error(self, plugin: str | None = None) -> CorefileError:
        """CoreDNS's ``Wrong argument count or unexpected line ending after 'X'``.

        X is the last token of the line (the dispenser's position when it ran out).
        """
        last = self.arg_tokens[-1] if self.arg_tokens else self.name_token
        return last.error(
            f"Wrong argument count or unexpected line ending after '{last.text}'", plugin=plugin
        )

    def tokens(self) -> Iterator[Token]:
        """Every token of this directive in source order (braces not included)."""
        yield self.name_token
        yield from self.arg_tokens
        for sub in self.block or ():
            yield from sub.tokens()


@dataclass(frozen=True, slots=True)
class Key:
    """One listening key of a server block, normalised.

    A CIDR key that spans several reverse zones yields several :class:`Key` objects
    that share ``text``.
    """

    text: str          # the key as written (after env substitution)
    scheme: str        # "dns", "tls", "quic", "grpc", "https", "https3", "unix"
    zone: str          # normalised FQDN, lower-case, trailing dot ("." for the root)
    port: str          # decimal string, e.g. "53", "1053", "0"
    file: str = ""
    line: int = 0

    @property
    def address(self) -> str:
        """``scheme://zone:port`` as CoreDNS prints it."""
        return f"{self.scheme}://{self.zone}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServerBlock:
    """A server block: its keys and its directives in Corefile order.

    The execution order of plugins is not the Corefile order; the registry sorts
    them when the chain is built.
    """

    keys: tuple[Key, ...]
    directives: tuple[Directive, ...]
    file: str = ""
    line: int = 0

    @property
    def zones(self) -> tuple[str, ...]:
        """The distinct zones of the keys, in key order."""
        seen: dict[str, None] = {}
        for k in self.keys:
            seen.setdefault(k.zone, None)
        return tuple(seen)

    def directives_named(self, name: str) -> tuple[Directive, ...]:
        return tuple(d for d in self.directives if d.name == name)


@dataclass(frozen=True, slots=True)
class Corefile:
    """A parsed, expanded and validated Corefile."""

    blocks: tuple[ServerBlock, ...]
    filename: str = "Corefile"
    source: str = field(default="", repr=False, compare=False)

    def __iter__(self) -> Iterator[ServerBlock]:
        return iter(self.blocks)

    def __len__(self) -> int:
        return len(self.blocks)
