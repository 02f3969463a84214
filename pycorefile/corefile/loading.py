"""Corefile text in, :class:`Corefile` model (or CoreDNS's error) out.

The stages and the order their errors come in are CoreDNS's:

1. reading (``parser``): syntax, ``import``, snippets, env substitution, and the
   directive-name check (``Unknown directive 'x'``);
2. keys (``keys``): schemes, ports, zones, reverse zones;
3. plugin setup (``pycorefile.chain.check_plugins``, only in :func:`loads`);
4. listeners: the same zone twice on one port (``cannot serve ...``).

:func:`parse` runs 1, 2 and 4; :func:`loads` runs all four; :func:`iter_errors`
reports every problem it can find instead of stopping at the first.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .errors import CorefileError
from .keys import check_listeners, parse_key
from .model import Corefile, Key, ServerBlock, Token
from .parser import LINE_ORIENTED_HINT, build_directive, read_blocks

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = ["MODES", "iter_errors", "load", "loads", "parse"]

#: ``"pycorefile"``: a directive naming a CoreDNS plugin that pycorefile does not
#: implement is an error. ``"coredns"``: it is accepted (check a Corefile meant for
#: CoreDNS itself).
MODES = ("pycorefile", "coredns")

# Names people write as directives when the '{' of the plugin they belong to is
# not where CoreDNS needs it (coredns/coredns#7121).
_PLUGIN_OPTIONS = frozenset(
    """
    fallthrough ttl no_reverse except policy max_fails health_check force_tcp prefer_udp
    expire max_concurrent success denial prefetch serve_stale answer additional authority
    match rcode upstream endpoint namespaces pods tls_servername
    """.split()
)


def _unknown_hint(name: str) -> str | None:
    if ";" in name:
        return LINE_ORIENTED_HINT
    if name in _PLUGIN_OPTIONS:
        return (
            f"'{name}' is an option inside a plugin's block; the plugin's '{{' must be "
            "on the plugin's own line"
        )
    return None


class _NameCheck:
    """The directive-name check, CoreDNS's ``Unknown directive`` plus ours.

    A CoreDNS plugin that pycorefile does not implement is collected apart
    (``unsupported``) and reported after the syntax and key errors: such a
    Corefile is valid for CoreDNS, so what makes it invalid *for CoreDNS* is the
    more useful first message.
    """

    def __init__(self, registry: Registry, mode: str) -> None:
        self.registry = registry
        self.mode = mode
        self.statuses: dict[str, str] = {}
        self.unsupported: list[CorefileError] = []

    def __call__(self, tok: Token) -> CorefileError | None:
        name = tok.text
        status = self.statuses.get(name)
        if status is None:
            status = self.statuses[name] = self.registry.status(name)
        if status == "supported":
            return None
        if status == "coredns":
            if self.mode != "coredns":
                self.unsupported.append(
                    CorefileError(
                        f"plugin '{name}' is not supported by pycorefile",
                        tok.file,
                        tok.line,
                        kind="plain",
                        hint="`pycorefile validate --coredns` checks a Corefile meant for "
                        "CoreDNS itself",
                    )
                )
            return None
        # "unknown", and also "special": a directive whose name only *becomes*
        # `import` through env substitution is not an import in CoreDNS (that
        # check is on the raw text) and `import` is no plugin.
        return CorefileError(
            f"Unknown directive '{name}'", tok.file, tok.line, hint=_unknown_hint(name)
        )


def _read(
    text: str,
    filename: str,
    env: Mapping[str, str] | None,
    dns_port: str,
    registry: Registry | None,
    mode: str,
    errors: list[CorefileError],
) -> Corefile | None:
    """Stages 1 and 2; problems go to ``errors``. ``None`` after a syntax error."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if registry is None:
        from ..registry import default_registry

        registry = default_registry()
    check = _NameCheck(registry, mode)
    raw_blocks = read_blocks(
        text,
        filename,
        env=os.environ if env is None else env,
        check_name=check,
        errors=errors,
    )
    if raw_blocks is None:
        errors.extend(check.unsupported)
        return None
    blocks = []
    for raw in raw_blocks:
        keys: list[Key] = []
        for tok in raw.keys:
            try:
                keys.extend(parse_key(tok.text, dns_port=dns_port, file=tok.file, line=tok.line))
            except CorefileError as exc:
                errors.append(exc)
        first = raw.keys[0]
        blocks.append(
            ServerBlock(
                tuple(keys),
                tuple(build_directive(d) for d in raw.directives),
                first.file,
                first.line,
            )
        )
    corefile = Corefile(tuple(blocks), filename, text)
    errors.extend(_with_line_hint(corefile, e) for e in check.unsupported)
    return corefile


def _plugin_errors(corefile: Corefile, registry: Registry | None, mode: str) -> list[CorefileError]:
    """Stage 3, when ``pycorefile.chain`` provides ``check_plugins``."""
    try:
        chain = importlib.import_module("pycorefile.chain")
    except ModuleNotFoundError as exc:
        if exc.name == "pycorefile.chain":
            return []
        raise
    check = getattr(chain, "check_plugins", None)
    if check is None:
        return []
    if registry is None:
        from ..registry import default_registry

        registry = default_registry()
    return [_with_line_hint(corefile, e) for e in check(corefile, registry, mode)]


def _with_line_hint(corefile: Corefile, error: CorefileError) -> CorefileError:
    """Add the line-orientation hint to a plugin error caused by a one-line layout.

    The talk's three-line version of ``. { forward . 10.0.0.1 ; cache 30 }``
    parses, and forward then fails on the address ``;`` (an error CoreDNS prints
    with no line). We point at ``;`` when the failing line has one (or has both
    braces), or, for an error without a line, when any directive has a lone ``;``.
    """
    if error.hint:
        return error
    suspicious = False
    for block in corefile.blocks:
        for directive in block.directives:
            toks = directive.raw or tuple(directive.tokens())
            if error.line:
                on_line = {
                    t.text for t in toks if t.line == error.line and t.file == error.filename
                }
                if ";" in on_line or ("{" in on_line and "}" in on_line):
                    suspicious = True
            elif any(t.text == ";" for t in toks):
                suspicious = True
    if not suspicious:
        return error
    return CorefileError(
        error.message,
        error.filename,
        error.line,
        plugin=error.plugin,
        kind=error.kind,
        hint=LINE_ORIENTED_HINT,
    )


def parse(
    text: str,
    filename: str | os.PathLike[str] = "Corefile",
    *,
    env: Mapping[str, str] | None = None,
    dns_port: str = "53",
    registry: Registry | None = None,
    mode: str = "pycorefile",
) -> Corefile:
    """Parse Corefile text into the model, as CoreDNS reads it.

    Covers syntax, ``import`` (files relative to ``filename``'s directory, and
    snippets), ``{$VAR}``/``{%VAR%}`` substitution from ``env`` (default
    ``os.environ``), keys (``dns_port`` is the default port of ``dns://`` keys, the
    ``-dns.port`` flag), directive names (checked against ``registry``, default
    the installed plugins) and duplicate zones. Plugin options are *not* checked:
    use :func:`loads` for that. An empty Corefile gives zero blocks (CoreDNS would
    then serve its built-in default; that is the caller's choice).

    Raises :class:`CorefileError` with CoreDNS's message for the first problem.
    """
    filename = os.fspath(filename)
    errors: list[CorefileError] = []
    corefile = _read(text, filename, env, dns_port, registry, mode, errors)
    if corefile is not None and not errors:
        errors.extend(check_listeners(corefile.blocks, filename))
    if errors or corefile is None:
        raise errors[0]
    return corefile


def loads(
    text: str,
    filename: str | os.PathLike[str] = "Corefile",
    *,
    env: Mapping[str, str] | None = None,
    dns_port: str = "53",
    registry: Registry | None = None,
    mode: str = "pycorefile",
) -> Corefile:
    """:func:`parse`, then every plugin's option check (its setup, without side effects).

    Raises :class:`CorefileError` for the first problem, in CoreDNS's order
    (parse, keys, plugin setup, duplicate zones).
    """
    filename = os.fspath(filename)
    errors: list[CorefileError] = []
    corefile = _read(text, filename, env, dns_port, registry, mode, errors)
    if errors or corefile is None:
        raise errors[0]
    errors = _plugin_errors(corefile, registry, mode)
    errors.extend(check_listeners(corefile.blocks, filename))
    if errors:
        raise errors[0]
    return corefile


def load(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    dns_port: str = "53",
    registry: Registry | None = None,
    mode: str = "pycorefile",
) -> Corefile:
    """:func:`loads` for a file; errors name it as given (imports: absolute path)."""
    return loads(
        read_text(path), os.fspath(path), env=env, dns_port=dns_port, registry=registry, mode=mode
    )


def read_text(path: str | os.PathLike[str]) -> str:
    """A Corefile's text: UTF-8, undecodable bytes replaced (CoreDNS reads runes)."""
    with open(path, "rb") as fh:
        return fh.read().decode("utf-8", "replace")


def iter_errors(
    text: str,
    filename: str | os.PathLike[str] = "Corefile",
    *,
    env: Mapping[str, str] | None = None,
    dns_port: str = "53",
    registry: Registry | None = None,
    mode: str = "pycorefile",
) -> list[CorefileError]:
    """Every problem in a Corefile, for validators; ``[]`` when it is valid.

    Reading problems come first: every unknown or unsupported directive, the
    syntax error that stopped the read (if any) and every bad key. Only when
    there are none are the plugins checked, and then every plugin error and every
    duplicate zone is reported.
    """
    filename = os.fspath(filename)
    errors: list[CorefileError] = []
    corefile = _read(text, filename, env, dns_port, registry, mode, errors)
    if errors or corefile is None:
        return errors
    errors = _plugin_errors(corefile, registry, mode)
    errors.extend(check_listeners(corefile.blocks, filename))
    return errors
