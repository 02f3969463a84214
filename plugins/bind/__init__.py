"""CoreDNS's ``bind``: the addresses a server block listens on."""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Sequence

from pycorefile.chain import Plugin, SetupContext
from pycorefile.corefile.model import Directive


def interface_addresses(name: str) -> list[str]:
    """IPv4 and IPv6 addresses of a network interface (Linux), empty if unknown."""
    out: list[str] = []
    try:
        import fcntl

        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            req = struct.pack("256s", name.encode()[:15])
            res = fcntl.ioctl(s.fileno(), 0x8915, req)  # SIOCGIFADDR
            out.append(socket.inet_ntoa(res[20:24]))
        finally:
            s.close()
    except OSError:
        pass
    try:
        with open("/proc/net/if_inet6") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and parts[5] == name:
                    raw = bytes.fromhex(parts[0])
                    addr = str(ipaddress.IPv6Address(raw))
                    if addr.startswith("fe80"):
                        addr += f"%{name}"
                    out.append(addr)
    except OSError:
        pass
    return out


def _is_interface(name: str) -> bool:
    try:
        return any(n == name for _, n in socket.if_nameindex())
    except OSError:
        return False


class Bind(Plugin):
    """Setup only: restricts the listeners of its block to the given addresses."""

    name = "bind"
    handler = False

    def __init__(self, addresses: Sequence[str]) -> None:
        self.bind_addresses = tuple(addresses)

    @classmethod
    def setup_all(cls, directives: Sequence[Directive], ctx: SetupContext) -> list[Plugin]:
        addrs: list[str] = []
        excluded: set[str] = set()
        for d in directives:
            if not d.args:
                raise d.arg_error(cls.name)
            for tok in d.arg_tokens:
                addrs.extend(_resolve(tok.text, d))
            for sub in d.block or ():
                if sub.name != "except":
                    raise sub.error(f"unknown property '{sub.name}'", plugin=cls.name)
                if not sub.args:
                    raise sub.arg_error(cls.name)
                for a in sub.args:
                    excluded.update(_resolve(a, sub))
        seen: dict[str, None] = {}
        for a in addrs:
            if a not in excluded:
                seen.setdefault(a, None)
        if not seen:
            raise directives[0].error("no valid addresses to bind", plugin=cls.name)
        return [cls(list(seen))]


def _resolve(text: str, d: Directive) -> list[str]:
    try:
        return [str(ipaddress.ip_address(text.split("%")[0])) + ("%" + text.split("%")[1] if "%" in text else "")]
    except ValueError:
        pass
    if _is_interface(text):
        return interface_addresses(text)
    raise d.error(f"not a valid IP address or interface name: {text!r}", plugin="bind")
