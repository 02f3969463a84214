"""Process-wide name lookups through a pycorefile resolver: ``with pycorefile.patch(r):``.

While the ``with`` block runs, every name lookup a Python client makes is answered
by the resolver's chain instead of the system resolver:

* ``socket.getaddrinfo``, ``gethostbyname``, ``gethostbyname_ex`` and
  ``gethostbyaddr`` (PTR) are replaced. Everything built on them follows:
  ``socket.create_connection``, urllib, requests/urllib3, httpx, and asyncio's
  default loop, whose ``getaddrinfo`` runs ``socket.getaddrinfo`` in an executor
  (looked up at call time, so the replacement is what runs);
* uvloop resolves in libuv, never through ``socket``: ``uvloop.Loop.getaddrinfo``,
  ``create_connection`` and ``create_datagram_endpoint`` are wrapped;
* dnspython: resolvers configured from the system (``dns.resolver.Resolver()``,
  ``dns.asyncresolver.Resolver()``, the default resolver, and resolvers created
  earlier whose nameservers are still the system's) query an in-process
  :class:`~dns.nameserver.Nameserver` that hands the query bytes to
  ``resolver.handle``;
* aiodns/pycares: c-ares has its own resolver and speaks DNS over sockets, so a
  :class:`LoopbackServer` serving the same chain is started on 127.0.0.1 on first
  use and ``aiodns.DNSResolver`` is pointed at it (aiohttp's default resolver is
  aiodns when it is installed, its ``ThreadedResolver`` uses ``loop.getaddrinfo``).

Each integration is installed only when its library is importable, and everything
is restored on exit, exception or not. Names that are not sent to the chain go to
whatever was installed when the patch started (so patches stack with each other
and with pytest-socket): no host, literal addresses, ``localhost`` and names under
``.localhost`` (RFC 6761 §6.3: resolvers answer them without DNS), this machine's
host name, and ``passthrough`` names.

The chain's DNS answer becomes what glibc would return: NXDOMAIN →
``gaierror(EAI_NONAME)``, NODATA → ``EAI_NODATA`` (``EAI_NONAME`` where the
platform has no ``EAI_NODATA``), SERVFAIL, REFUSED or no reply → ``EAI_AGAIN``.
"""

from __future__ import annotations

import _socket
import asyncio
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from dnslib import DNSRecord

    from .chain import Reply
    from .resolver import Resolver

__all__ = ["CLIENT", "LoopbackServer", "Patch", "Target", "patch"]

#: Which client path made the query being answered ("getaddrinfo", "dnspython",
#: "uvloop", "aiodns", ...). Set around each query; read by call recorders.
CLIENT: ContextVar[str] = ContextVar("pycorefile_client", default="resolver")

A_TYPE, AAAA_TYPE, CNAME_TYPE, PTR_TYPE = 1, 28, 5, 12
MAX_CNAME_CHAIN = 8

OK, NXDOMAIN, NODATA, FAIL, TIMEOUT = "ok", "nxdomain", "nodata", "fail", "timeout"

_EAI_NODATA: int = getattr(socket, "EAI_NODATA", socket.EAI_NONAME)
# glibc's gai_strerror texts, so messages read like the real thing.
_GAI_TEXT = {
    socket.EAI_NONAME: "Name or service not known",
    socket.EAI_AGAIN: "Temporary failure in name resolution",
    _EAI_NODATA: "No address associated with hostname",
}


class Target(Protocol):
    """What :func:`patch` needs from a resolver (:class:`pycorefile.Resolver`
    and :class:`pycorefile.mock.MockDNS` both qualify)."""

    def resolve_reply(
        self, qname: str, qtype: str | int = ..., qclass: str | int = ...
    ) -> tuple[Reply, DNSRecord]: ...

    def handle(self, query: bytes, client: tuple[str, int] = ..., proto: str = ...) -> bytes: ...

    async def handle_async(
        self, query: bytes, client: tuple[str, int] = ..., proto: str = ...
    ) -> bytes: ...


@contextmanager
def _client(path: str) -> Iterator[None]:
    token = CLIENT.set(path)
    try:
        yield
    finally:
        CLIENT.reset(token)


def _numeric(host: str) -> bool:
    """Is ``host`` an address literal (which getaddrinfo never sends to DNS)?

    IPv6 (a ``:`` is never part of a host name) and IPv4 in every form
    ``inet_aton`` accepts (``127.1``, ``0x7f.1``): a last label made of digits or
    starting with ``0x`` is not a DNS name (WHATWG URL "ends in a number").
    """
    if ":" in host:
        return True
    last = host.rstrip(".").rsplit(".", 1)[-1].lower()
    return bool(last) and (last.isdigit() or last.startswith("0x"))


def _enum(value: int, cls: Any) -> Any:
    try:
        return cls(value)
    except ValueError:
        return value


@dataclass
class _Found:
    status: str
    name: str = ""
    aliases: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)


def _same(a: Any, b: str) -> bool:
    return str(a).rstrip(".").lower() == b


class Patch:
    """One active :func:`patch`: what it redirected (``integrations``) and how to
    undo it. Created and undone by :func:`patch`."""

    def __init__(
        self, target: Target, passthrough: Iterable[str] | Callable[[str], bool] | None = None
    ) -> None:
        self.target = target
        if passthrough is None:
            passthrough = getattr(target, "passes_through", None) or ()
        if callable(passthrough):
            self._passthrough: Callable[[str], bool] = passthrough
        else:
            suffixes = tuple(
                s.lower().strip().removeprefix("*.").strip(".") for s in passthrough
            )
            self._passthrough = lambda name: any(
                s == "" or name == s or name.endswith("." + s) for s in suffixes
            )
        self.integrations: list[str] = []
        self._undo: list[Callable[[], None]] = []
        self._orig: dict[str, Any] = {}
        self._hostname = socket.gethostname().rstrip(".").lower()
        self._lock = threading.Lock()
        self._cares_server: str | None = None
        self._own_server: LoopbackServer | None = None
        self._dns_fallback: list[Any] = []

    # -- installing ------------------------------------------------------------
    def _set(self, obj: Any, attr: str, value: Any) -> None:
        if isinstance(obj, type):
            had = attr in obj.__dict__
            old = obj.__dict__.get(attr)
        else:
            had, old = True, getattr(obj, attr)
        setattr(obj, attr, value)

        def undo() -> None:
            if had:
                setattr(obj, attr, old)
            else:
                try:
                    delattr(obj, attr)
                except AttributeError:
                    pass

        self._undo.append(undo)

    def install(self) -> None:
        try:
            self._install_socket()
            for name, fn in (("uvloop", self._install_uvloop), ("dnspython", self._install_dnspython),
                             ("aiodns", self._install_aiodns)):
                try:
                    fn()
                except ImportError:
                    continue
                self.integrations.append(name)
        except BaseException:
            self.uninstall()
            raise

    def uninstall(self) -> None:
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception:  # restore as much as possible
                pass
        srv, self._own_server = self._own_server, None
        if srv is not None:
            srv.stop()

    # -- which names go to the resolver ------------------------------------------
    def name_of(self, host: Any) -> str | None:
        """The name a lookup of ``host`` sends to the resolver (lower-cased, no
        trailing dot), or ``None`` when it resolves as before."""
        if isinstance(host, (bytes, bytearray)):
            try:
                text = bytes(host).decode("ascii")
            except UnicodeDecodeError:
                return None
        elif isinstance(host, str):
            text = host
            if not text.isascii():
                try:
                    text = text.encode("idna").decode("ascii")
                except UnicodeError:
                    return None   # the original raises the same error
        else:
            return None
        text = text.strip()
        if not text or _numeric(text):
            return None
        name = text.rstrip(".").lower()
        if not name or name == "localhost" or name.endswith(".localhost") or name == self._hostname:
            return None
        if self._passthrough(name):
            return None
        return name

    # -- asking the resolver -------------------------------------------------------
    def _ask(self, name: str, qtype: int, client: str) -> tuple[Reply | None, DNSRecord | None]:
        with _client(client):
            try:
                return self.target.resolve_reply(name, qtype)
            except ValueError:   # not a valid DNS name (empty or long label)
                return None, None

    def lookup(self, name: str, qtype: int, client: str) -> _Found:
        """Addresses of ``qtype`` for ``name``, following CNAMEs (also dangling ones,
        as a recursive resolver would)."""
        aliases: list[str] = []
        current = name
        for _ in range(MAX_CNAME_CHAIN):
            reply, msg = self._ask(current, qtype, client)
            if reply is None or msg is None:
                return _Found(NXDOMAIN)
            if reply.dropped:
                return _Found(TIMEOUT)
            rcode = msg.header.rcode
            if rcode == 3:
                return _Found(NXDOMAIN)
            if rcode != 0:
                return _Found(FAIL)
            target = current
            for rr in msg.rr:
                if rr.rtype == CNAME_TYPE and _same(rr.rname, target):
                    aliases.append(target)
                    target = str(rr.rdata.label).rstrip(".").lower()
            addrs = [str(rr.rdata) for rr in msg.rr if rr.rtype == qtype and _same(rr.rname, target)]
            if addrs:
                return _Found(OK, target, aliases, addrs)
            if target == current:
                return _Found(NODATA)
            current = target
        return _Found(FAIL)

    @staticmethod
    def _gai_error(statuses: Iterable[str]) -> socket.gaierror:
        st = set(statuses)
        if NXDOMAIN in st:
            code = socket.EAI_NONAME
        elif st & {FAIL, TIMEOUT}:
            code = socket.EAI_AGAIN
        else:
            code = _EAI_NODATA
        return socket.gaierror(code, _GAI_TEXT[code])

    def resolve_addrinfo(
        self, name: str, port: Any, family: int, type: int, proto: int, flags: int, client: str
    ) -> list[tuple[Any, Any, int, str, Any]]:
        """``getaddrinfo`` for a name the resolver answers."""
        fam = int(family)
        plan: list[tuple[int, int]] = []
        if fam in (socket.AF_UNSPEC, socket.AF_INET6):
            plan.append((socket.AF_INET6, AAAA_TYPE))
        if fam in (socket.AF_UNSPEC, socket.AF_INET):
            plan.append((socket.AF_INET, A_TYPE))
        # Queries go out A first, as glibc sends them; results list IPv6 first
        # (RFC 6724's default policy).
        found = {f: self.lookup(name, qt, client) for f, qt in sorted(plan, key=lambda p: p[1])}
        addrs = [(f, a) for f, _ in plan if found[f].status == OK for a in found[f].addresses]
        if fam == socket.AF_INET6 and flags & socket.AI_V4MAPPED and (
            not addrs or flags & socket.AI_ALL
        ):
            v4 = self.lookup(name, A_TYPE, client)
            found[socket.AF_INET] = v4
            if v4.status == OK:
                addrs += [(socket.AF_INET6, "::ffff:" + a) for a in v4.addresses]
        if not addrs:
            raise self._gai_error(r.status for r in found.values())
        canonical = next(r.name for r in found.values() if r.status == OK)
        numeric = socket.AI_NUMERICHOST | (flags & socket.AI_NUMERICSERV)
        out: list[tuple[Any, Any, int, str, Any]] = []
        for f, ip in addrs:
            # The true getaddrinfo on the literal gives exactly the socket types,
            # protocols and service-name handling the real lookup would (no DNS).
            for af, kind, pr, _, sa in _socket.getaddrinfo(ip, port, f, type, proto, numeric):
                out.append((_enum(af, socket.AddressFamily), _enum(kind, socket.SocketKind), pr, "", sa))
        if flags & socket.AI_CANONNAME and out:
            out[0] = (out[0][0], out[0][1], out[0][2], canonical, out[0][4])
        return out

    # -- socket ---------------------------------------------------------------------
    def _install_socket(self) -> None:
        orig = self._orig
        for attr in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
            orig[attr] = getattr(socket, attr)

        def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                        flags: int = 0) -> list[tuple[Any, Any, int, str, Any]]:
            name = self.name_of(host)
            if (name is None or flags & socket.AI_NUMERICHOST
                    or int(family) not in (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6)):
                return orig["getaddrinfo"](host, port, family, type, proto, flags)  # type: ignore[no-any-return]
            return self.resolve_addrinfo(name, port, family, type, proto, flags, "getaddrinfo")

        def gethostbyname(hostname: str) -> str:
            name = self.name_of(hostname) if isinstance(hostname, str) else None
            if name is None:
                return orig["gethostbyname"](hostname)  # type: ignore[no-any-return]
            found = self.lookup(name, A_TYPE, "gethostbyname")
            if found.status != OK:
                raise self._gai_error([found.status])
            return found.addresses[0]

        def gethostbyname_ex(hostname: str) -> tuple[str, list[str], list[str]]:
            name = self.name_of(hostname) if isinstance(hostname, str) else None
            if name is None:
                return orig["gethostbyname_ex"](hostname)  # type: ignore[no-any-return]
            found = self.lookup(name, A_TYPE, "gethostbyname_ex")
            if found.status != OK:
                raise self._gai_error([found.status])
            return found.name, found.aliases, found.addresses

        def gethostbyaddr(ip_address: str) -> tuple[str, list[str], list[str]]:
            return self.gethostbyaddr(ip_address)

        for fn in (getaddrinfo, gethostbyname, gethostbyname_ex, gethostbyaddr):
            fn.__doc__ = getattr(socket, fn.__name__).__doc__
            self._set(socket, fn.__name__, fn)
        self.integrations.append("socket")

    def gethostbyaddr(self, ip_address: str) -> tuple[str, list[str], list[str]]:
        """``socket.gethostbyaddr``: PTR through the resolver. Loopback and
        unspecified addresses resolve as before (``/etc/hosts`` answers them)."""
        orig = self._orig["gethostbyaddr"]
        if not isinstance(ip_address, str):
            return orig(ip_address)  # type: ignore[no-any-return]
        name = self.name_of(ip_address)
        if name is not None:
            # Like the C function: a host name is resolved first, then reversed.
            infos = self.resolve_addrinfo(name, None, 0, socket.SOCK_STREAM, 0, 0, "gethostbyaddr")
            ip = infos[0][4][0]
        elif _numeric(ip_address.strip()):
            ip = ip_address.strip()
        else:
            return orig(ip_address)  # type: ignore[no-any-return]
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return orig(ip)  # type: ignore[no-any-return]
        if addr.is_loopback or addr.is_unspecified:
            return orig(ip)  # type: ignore[no-any-return]
        reverse = addr.reverse_pointer
        if self._passthrough(reverse):
            return orig(ip)  # type: ignore[no-any-return]
        reply, msg = self._ask(reverse, PTR_TYPE, "gethostbyaddr")
        if reply is None or msg is None or reply.dropped or msg.header.rcode not in (0, 3):
            raise socket.herror(2, "Host name lookup failure")
        names = [str(rr.rdata.label).rstrip(".") for rr in msg.rr if rr.rtype == PTR_TYPE]
        if msg.header.rcode != 0 or not names:
            raise socket.herror(1, "Unknown host")
        return names[0], names[1:], [str(addr)]

    # -- uvloop -------------------------------------------------------------------------
    def _install_uvloop(self) -> None:
        import uvloop

        loop_cls = uvloop.Loop
        orig_gai = loop_cls.getaddrinfo
        orig_cc = loop_cls.create_connection
        orig_dg = loop_cls.create_datagram_endpoint
        patcher = self

        async def getaddrinfo(loop: Any, host: Any, port: Any, *, family: int = 0, type: int = 0,
                              proto: int = 0, flags: int = 0) -> Any:
            name = patcher.name_of(host)
            if (name is None or flags & socket.AI_NUMERICHOST
                    or int(family) not in (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6)):
                return await orig_gai(loop, host, port, family=family, type=type, proto=proto, flags=flags)
            # Off the loop, as uvloop resolves in libuv's thread pool.
            ctx = copy_context()
            return await loop.run_in_executor(
                None, ctx.run, patcher.resolve_addrinfo, name, port, family, type, proto, flags, "uvloop"
            )

        async def create_connection(loop: Any, protocol_factory: Any, host: Any = None,
                                    port: Any = None, **kw: Any) -> Any:
            # uvloop resolves host names inside create_connection without calling
            # getaddrinfo(): resolve here and connect to the addresses in order.
            if host is None or kw.get("sock") is not None or patcher.name_of(host) is None:
                return await orig_cc(loop, protocol_factory, host, port, **kw)
            infos = await loop.getaddrinfo(
                host, port, family=kw.get("family", 0), type=socket.SOCK_STREAM,
                proto=kw.get("proto", 0), flags=kw.get("flags", 0),
            )
            if kw.get("ssl") and kw.get("server_hostname") is None:
                kw["server_hostname"] = host
            errors: list[OSError] = []
            for fam, _, pr, _, sa in infos:
                try:
                    return await orig_cc(loop, protocol_factory, sa[0], sa[1],
                                         **{**kw, "family": fam, "proto": pr, "flags": 0})
                except OSError as exc:
                    errors.append(exc)
            if len(errors) == 1:
                raise errors[0]
            raise OSError("Multiple exceptions: {}".format(", ".join(str(e) for e in errors)))

        async def create_datagram_endpoint(loop: Any, protocol_factory: Any, local_addr: Any = None,
                                           remote_addr: Any = None, **kw: Any) -> Any:
            if remote_addr is not None and patcher.name_of(remote_addr[0]) is not None:
                infos = await loop.getaddrinfo(
                    remote_addr[0], remote_addr[1], family=kw.get("family", 0),
                    type=socket.SOCK_DGRAM, proto=kw.get("proto", 0), flags=kw.get("flags", 0),
                )
                fam, _, _, _, sa = infos[0]
                remote_addr = sa[:2]
                kw["family"] = fam
            return await orig_dg(loop, protocol_factory, local_addr=local_addr,
                                 remote_addr=remote_addr, **kw)

        self._set(loop_cls, "getaddrinfo", getaddrinfo)
        self._set(loop_cls, "create_connection", create_connection)
        self._set(loop_cls, "create_datagram_endpoint", create_datagram_endpoint)

    # -- dnspython ------------------------------------------------------------------------
    def _install_dnspython(self) -> None:
        import dns.asyncresolver
        import dns.inet
        import dns.nameserver
        import dns.resolver

        base = dns.resolver.BaseResolver
        # The system's nameservers, read before anything is patched: passthrough
        # names go there, and resolvers still using them are redirected.
        system: list[str] = []
        try:
            sysres = dns.resolver.Resolver()
            system = [str(n) for n in sysres.nameservers]
            self._dns_fallback = [
                dns.nameserver.Do53Nameserver(n, sysres.port) if isinstance(n, str) else n
                for n in sysres.nameservers
                if not isinstance(n, str) or dns.inet.is_address(n)
            ]
        except Exception:  # no resolv.conf: nothing to fall back to
            self._dns_fallback = []
        ns = _nameserver_class()(self)
        orig_init = base.__init__

        def __init__(res: Any, filename: Any = "/etc/resolv.conf", configure: bool = True) -> None:
            if configure and filename == "/etc/resolv.conf":
                # "Configure from the system": the system is the patched resolver.
                orig_init(res, filename, configure=False)
                res.nameservers = [ns]
            else:
                orig_init(res, filename, configure)

        self._set(base, "__init__", __init__)

        enrich = base.__dict__.get("_enrich_nameservers")
        if isinstance(enrich, classmethod) and system:
            func = enrich.__func__

            def _enrich_nameservers(cls: Any, nameservers: Any, *args: Any, **kwargs: Any) -> Any:
                # Resolvers made before the patch, still on the system's servers.
                if isinstance(nameservers, (list, tuple)) and [str(n) for n in nameservers] == system:
                    return [ns]
                return func(cls, nameservers, *args, **kwargs)

            self._set(base, "_enrich_nameservers", classmethod(_enrich_nameservers))
        self._set(dns.resolver, "default_resolver", None)
        self._set(dns.asyncresolver, "default_resolver", None)

    def dnspython_fallback(self, request: Any) -> Any:
        """The system nameserver for a passthrough name, else ``None``."""
        if not self._dns_fallback or not request.question:
            return None
        name = request.question[0].name.to_text(omit_final_dot=True).lower()
        if self._passthrough(name):
            return self._dns_fallback[0]
        return None

    # -- aiodns / pycares ------------------------------------------------------------------
    def cares_nameserver(self) -> str:
        """``127.0.0.1:PORT`` of a loopback server for the chain (started on first use)."""
        with self._lock:
            if self._cares_server is None:
                serve = getattr(self.target, "serve_loopback", None)
                if callable(serve):
                    srv = serve("aiodns")
                else:
                    from .resolver import Resolver

                    if not isinstance(self.target, Resolver):
                        raise TypeError("aiodns needs a pycorefile.Resolver to serve on loopback")
                    srv = self._own_server = LoopbackServer(self.target, tag="aiodns").start()
                self._cares_server = srv.nameserver
            return self._cares_server

    def _install_aiodns(self) -> None:
        import aiodns
        import pycares

        cls = aiodns.DNSResolver
        orig_init = cls.__init__
        patcher = self

        def __init__(res: Any, nameservers: Any = None, loop: Any = None, **kwargs: Any) -> None:
            if not nameservers and not kwargs.get("servers") and "resolvconf_path" not in kwargs:
                # c-ares accepts "ip:port" (ares_set_servers_csv). No search list: every
                # name goes to the chain once. The hosts file still answers first (the
                # c-ares default, like the socket functions for localhost and this
                # machine's name). ``lookups`` is not passed: pycares 5 does not keep
                # that string alive while c-ares reads it, and about 1 channel in 70
                # then got a garbage lookup order and failed every query.
                nameservers = [patcher.cares_nameserver()]
                flags = kwargs.get("flags")
                kwargs["flags"] = (pycares.ARES_FLAG_EDNS if flags is None else flags) | pycares.ARES_FLAG_NOSEARCH
            orig_init(res, nameservers, loop, **kwargs)

        self._set(cls, "__init__", __init__)


_NS_CLASS: type | None = None


def _nameserver_class() -> type:
    """``InProcessNameserver``: a dnspython Nameserver answering through the chain."""
    global _NS_CLASS
    if _NS_CLASS is not None:
        return _NS_CLASS
    import dns.exception
    import dns.message
    import dns.nameserver

    class InProcessNameserver(dns.nameserver.Nameserver):
        """Queries go to ``target.handle(bytes)``: no socket. A query the chain
        drops waits ``timeout`` and raises :class:`dns.exception.Timeout`, like a
        server that never answers (set the resolver's ``lifetime`` low in tests)."""

        def __init__(self, patch: Patch) -> None:
            super().__init__()
            self.patch = patch

        def __str__(self) -> str:
            return "pycorefile:in-process"

        def kind(self) -> str:
            return "pycorefile"

        def is_always_max_size(self) -> bool:
            return False

        def answer_nameserver(self) -> str:
            return "127.0.0.1"

        def answer_port(self) -> int:
            return 53

        @staticmethod
        def _parse(request: Any, out: bytes, max_size: bool, one_rr_per_rrset: bool,
                   ignore_trailing: bool) -> Any:
            return dns.message.from_wire(
                out, keyring=request.keyring, request_mac=request.mac,
                one_rr_per_rrset=one_rr_per_rrset, ignore_trailing=ignore_trailing,
                raise_on_truncation=not max_size,
            )

        def query(self, request: Any, timeout: float, source: Any, source_port: int,
                  max_size: bool, one_rr_per_rrset: bool = False,
                  ignore_trailing: bool = False) -> Any:
            fallback = self.patch.dnspython_fallback(request)
            if fallback is not None:
                return fallback.query(request, timeout, source, source_port, max_size,
                                      one_rr_per_rrset, ignore_trailing)
            with _client("dnspython"):
                out = self.patch.target.handle(
                    request.to_wire(), ("127.0.0.1", 0), "tcp" if max_size else "udp"
                )
            if not out:
                time.sleep(max(timeout or 0.0, 0.0))
                raise dns.exception.Timeout(timeout=timeout)
            return self._parse(request, out, max_size, one_rr_per_rrset, ignore_trailing)

        async def async_query(self, request: Any, timeout: float, source: Any, source_port: int,
                              max_size: bool, backend: Any, one_rr_per_rrset: bool = False,
                              ignore_trailing: bool = False) -> Any:
            fallback = self.patch.dnspython_fallback(request)
            if fallback is not None:
                return await fallback.async_query(request, timeout, source, source_port, max_size,
                                                  backend, one_rr_per_rrset, ignore_trailing)
            token = CLIENT.set("dnspython")
            try:
                out = await self.patch.target.handle_async(
                    request.to_wire(), ("127.0.0.1", 0), "tcp" if max_size else "udp"
                )
            finally:
                CLIENT.reset(token)
            if not out:
                await backend.sleep(max(timeout or 0.0, 0.0))
                raise dns.exception.Timeout(timeout=timeout)
            return self._parse(request, out, max_size, one_rr_per_rrset, ignore_trailing)

    _NS_CLASS = InProcessNameserver
    return InProcessNameserver


# ---------------------------------------------------------------------------
# A real server for clients that need one
# ---------------------------------------------------------------------------


class _Tagged:
    """A :class:`~pycorefile.routing.Server` whose queries are recorded as ``tag``."""

    def __init__(self, server: Any, tag: str) -> None:
        self._server = server
        self._tag = tag

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)

    def dispatch(self, data: bytes, client: tuple[str, int], proto: str) -> Any:
        token = CLIENT.set(self._tag)
        try:
            out = self._server.dispatch(data, client, proto)
        finally:
            CLIENT.reset(token)
        if out is None or type(out) is bytes:
            return out
        return self._finish(out)

    async def _finish(self, pending: Any) -> Any:
        CLIENT.set(self._tag)   # inside the task that finishes the query
        return await pending


class LoopbackServer:
    """A resolver's chain on ``host`` (127.0.0.1) over UDP and TCP.

    The listener runs on the resolver's own event loop, the one its plugins
    (forward) do I/O on, so the served chain is the very one the in-process
    resolver runs: same plugins, same cache, same metrics. Queries are recorded
    with ``client=tag``. Stop it before closing the resolver.
    """

    def __init__(self, resolver: Resolver, *, tag: str = "dns_server", host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.resolver = resolver
        self.tag = tag
        self._host = host
        self._port = port
        self._listener: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> LoopbackServer:
        from .server.dns import Listener

        loop = self.resolver._ensure_loop()
        lst = Listener(_Tagged(self.resolver.server, self.tag), self._host, self._port)  # type: ignore[arg-type]
        asyncio.run_coroutine_threadsafe(lst.open(), loop).result(timeout=10)
        self._listener, self._loop = lst, loop
        self._port = lst.port
        return self

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return self._host, self._port

    @property
    def nameserver(self) -> str:
        """``host:port``, as c-ares and ``pycorefile query --server`` take it."""
        return f"{self._host}:{self._port}"

    def stop(self) -> None:
        lst, self._listener = self._listener, None
        loop = self._loop
        if lst is None or loop is None or loop.is_closed():
            return

        async def close() -> None:
            lst.stop_accepting()
            await lst.drain(1.0)

        try:
            asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=5)
        except Exception:  # the loop is going away anyway
            pass

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def patch(
    resolver: Target, *, passthrough: Iterable[str] | Callable[[str], bool] | None = None
) -> Iterator[Patch]:
    """Answer the process's name lookups with ``resolver`` until the block ends.

    ``passthrough`` lists name suffixes (or is a predicate on the lower-cased
    name) resolved by whatever was installed before; by default the resolver's
    own ``passes_through`` when it has one (:class:`pycorefile.mock.MockDNS`).
    Yields the :class:`Patch` (``.integrations`` lists what was redirected).
    """
    p = Patch(resolver, passthrough)
    p.install()
    try:
        yield p
    finally:
        p.uninstall()
