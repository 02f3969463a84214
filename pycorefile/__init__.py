"""pycorefile: CoreDNS's Corefile, in Python.

A node-local DNS server (``pycorefile serve``), an in-process resolver
(:class:`Resolver`) and a pytest plugin, all running the same plugin chains.
"""

from ._version import __version__
from .chain import Plugin, Reply, Request
from .corefile import load, loads
from .corefile.errors import CorefileError
from .resolver import Resolver
from .server import serve

__all__ = [
    "CorefileError",
    "Plugin",
    "Reply",
    "Request",
    "Resolver",
    "__version__",
    "load",
    "loads",
    "patch",
    "serve",
]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # ``patch`` pulls in the process-wide patching layer only when used.
    if name == "patch":
        from .patching import patch

        return patch
    raise AttributeError(name)
