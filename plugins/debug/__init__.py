"""CoreDNS's ``debug``: debug logging for the server."""

from __future__ import annotations

import logging

from pycorefile.chain import Plugin


class Debug(Plugin):
    """Setup only: turns on DEBUG logging for pycorefile's loggers. (In CoreDNS it
    also disables panic recovery; pycorefile always recovers, so a broken plugin
    never takes the server down.)"""

    name = "debug"
    handler = False

    async def start(self, engine: object) -> None:
        logging.getLogger("pycorefile").setLevel(logging.DEBUG)
