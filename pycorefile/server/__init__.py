"""The network front end: asyncio UDP and TCP listeners around the sans-I/O core.

:class:`DNSServer` opens one UDP socket and one TCP listener per server address
(scheme ``dns`` only), hands every message to :meth:`Server.dispatch
<pycorefile.routing.Server.dispatch>`, and sends what comes back. Answers that
need no waiting are sent from inside ``datagram_received``; the rest continue as
tasks. :func:`serve` runs a server in a background thread for tests and embedding.
"""

from __future__ import annotations

from .dns import DNSServer, Listener
from .thread import ServerThread, serve

__all__ = ["DNSServer", "Listener", "ServerThread", "serve"]
