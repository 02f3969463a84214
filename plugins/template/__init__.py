"""CoreDNS's ``template`` plugin: dynamic answers from Go templates.

``template CLASS TYPE [ZONE...] { match / answer / additional / authority / rcode /
ederror / fallthrough / upstream }``; see this folder's README.md. The pieces:
``setup`` (reading the stanzas), ``handler`` (matching and replying), ``data``
(what a template sees), ``rr`` (rendered text → record) and ``gotemplate`` (the
Go ``text/template`` evaluator).
"""

from .handler import Template

__all__ = ["Template"]
