"""The one error type a bad Corefile produces.

CoreDNS prints configuration problems as ``FILE:LINE - Error during parsing: MESSAGE``
(or ``plugin/NAME: FILE:LINE - ...`` when a plugin's setup rejects its directive).
:class:`CorefileError` carries the same pieces as attributes so tools can point at
the offending line, and renders the same text so people recognise it.
"""

from __future__ import annotations


class CorefileError(Exception):
    """A Corefile that cannot be loaded.

    ``filename`` and ``line`` locate the offending token (``line`` is 0 when CoreDNS
    itself reports no line, e.g. a duplicate zone). ``plugin`` names the plugin whose
    setup failed, if any. ``kind`` is ``"parse"`` (``Error during parsing``) or
    ``"syntax"`` (``Syntax error``), or ``"plain"`` for messages CoreDNS prints bare.
    """

    def __init__(
        self,
        message: str,
        filename: str = "",
        line: int = 0,
        *,
        plugin: str | None = None,
        kind: str = "parse",
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.filename = filename
        self.line = line
        self.plugin = plugin
        self.kind = kind
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        if self.kind == "syntax":
            body = f"Syntax error: {self.message}"
        elif self.kind == "parse":
            body = f"Error during parsing: {self.message}"
        else:
            body = self.message
        where = f"{self.filename}:{self.line} - " if self.filename and self.line else ""
        prefix = f"plugin/{self.plugin}: " if self.plugin else ""
        text = f"{prefix}{where}{body}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    @property
    def location(self) -> str:
        """``FILE:LINE`` (or just ``FILE``/empty when unknown)."""
        if self.filename and self.line:
            return f"{self.filename}:{self.line}"
        return self.filename
