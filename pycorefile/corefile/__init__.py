"""The Corefile language: CoreDNS's configuration syntax, read exactly as CoreDNS reads it.

``parse`` turns Corefile text into the immutable model (:class:`Corefile` of
:class:`ServerBlock` with :class:`Key` and :class:`Directive`); ``loads``/``load``
also run every plugin's option check; ``iter_errors`` lists every problem for a
validator. Every error is a :class:`CorefileError` whose text is CoreDNS's
(``FILE:LINE - Error during parsing: ...``).
"""

from .errors import CorefileError
from .lexer import quote_token, tokenize
from .loading import MODES, iter_errors, load, loads, parse
from .model import Corefile, Directive, Key, ServerBlock, Token

__all__ = [
    "MODES",
    "Corefile",
    "CorefileError",
    "Directive",
    "Key",
    "ServerBlock",
    "Token",
    "iter_errors",
    "load",
    "loads",
    "parse",
    "quote_token",
    "tokenize",
]
