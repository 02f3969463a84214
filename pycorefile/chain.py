"""The plugin API: :class:`Plugin`, :class:`Request`, :class:`Reply` and chains.

A server block's plugins form a chain in the registry's fixed order. Each plugin's
``serve(request, next)`` either returns a written :class:`Reply` or awaits ``next``.
The chain is ``async`` so that plugins doing network I/O (forward) can wait, but a
chain that never awaits (template, hosts, whoami, a cache hit) runs to completion
when the driver calls ``coroutine.send(None)`` once: no event loop is involved.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from dnslib import DNSHeader, DNSLabel, DNSQuestion, DNSRecord

from . import wire as w
from .corefile.errors import CorefileError
from .corefile.model import Corefile, Directive, ServerBlock
from .registry import Registry, default_registry

if TYPE_CHECKING:
    from .metrics import MetricsRegistry
    from .routing import Engine


# ---------------------------------------------------------------------------
# Request
# ---------------------------------------------------------------------------


#: Question names seen recently: wire bytes → (text as sent, lower-cased text,
#: lower-cased wire). Bounded; cleared when full (names repeat a lot on a node).
_NAMES: dict[bytes, tuple[str, str, bytes]] = {}
_NAMES_MAX = 8192


def _remember(qwire: bytes, text: str) -> tuple[str, str, bytes]:
    lower = w.lower_wire(qwire)
    entry = (text, text.lower() if lower != qwire else text, lower)
    if len(_NAMES) >= _NAMES_MAX:
        _NAMES.clear()
    _NAMES[bytes(qwire)] = entry
    return entry


class Request:
    """One query, decoded lazily.

    The header, the question and the EDNS OPT record are read straight from the
    bytes when the request is built (about a microsecond); the full dnslib message
    is decoded only if a plugin asks for :attr:`message`.

    Attributes plugins use most: ``name`` (lower-cased FQDN), ``qname`` (as sent),
    ``qtype``, ``qclass``, ``id``, ``flags``, ``client`` (ip, port), ``proto``
    (``"udp"``/``"tcp"``), ``edns`` (True when an OPT record was sent), ``do``,
    ``udp_size`` (the client's advertised payload size, at least 512), ``zone``
    (the server-block zone that matched), ``server`` (``dns://host:port``) and
    ``key`` (lower-cased question bytes: name, type and class, for dict look-ups).
    """


    wire: bytes
    client: tuple[str, int]
    proto: str
    id: int
    flags: int
    qdcount: int
    qname: str
    name: str
    qtype: int
    qclass: int
    qwire: bytes
    qend: int
    key: bytes

    # Defaults live on the class (no __slots__): a request only stores what differs,
    # which keeps decoding one request to a few attribute stores.
    _message: DNSRecord | None = None
    zone = "."
    server = ""
    engine: Engine | None = None
    meta: dict[str, str] | None = None
    local: tuple[str, int] = ("", 0)
    edns = False
    do = False
    udp_size = 512
    edns_version = 0
    opt_count = 0

    @classmethod
    def from_wire(
        cls, data: bytes, client: tuple[str, int] = ("127.0.0.1", 0), proto: str = "udp"
    ) -> Request:
        """Decode header, question and OPT; raise :class:`~pycorefile.wire.WireError`.

        Mirrors what CoreDNS's DNS library accepts (spec §2.2): shorter than a
        header → drop; QDCOUNT ≠ 1, too many records, undecodable body or two OPT
        records → FORMERR.
        """
        if len(data) < 12:
            raise w.WireError("message shorter than a header", header_ok=False)
        qid, flags, qd, an, ns, ar = w.HEADER.unpack_from(data)
        self = cls.__new__(cls)
        self.wire = data if type(data) is bytes else bytes(data)
        self.client = client
        self.proto = proto
        self.id = qid
        self.flags = flags
        self.qdcount = qd
        if qd != 1 or an > 1 or ns > 1 or ar > 2:
            # miekg/dns rejects these from the header alone (DefaultMsgAcceptFunc).
            raise w.WireError("bad section counts")
        if len(data) == 12:
            # A bare header: miekg/dns decodes it as a message without a question,
            # and CoreDNS answers SERVFAIL (server.go). qdcount 0 marks it.
            self.qdcount = 0
            self.qname = self.name = ""
            self.qtype = self.qclass = 0
            self.qwire = b""
            self.qend = 12
            self.key = b""
            return self
        # Hot path: a plain query (no records after the question) whose name was
        # seen before needs no label walk: the name is everything up to the last
        # four bytes, and the cache only holds names that were validated once.
        qwire = data[12:-4] if not (an or ns or ar) else None
        hit = _NAMES.get(qwire) if qwire is not None else None
        if hit is None:
            end, compressed = w.read_name(data, 12)
            if end + 4 > len(data):
                raise w.WireError("question runs past the end of the message")
            if compressed:
                # A pointer inside the question can only point into the header: invalid.
                raise w.WireError("compression in the question")
            qwire = data[12:end]
            hit = _remember(qwire, w.name_to_text(data, 12, end))
        else:
            end = len(data) - 4
        self.qwire = qwire  # type: ignore[assignment]
        self.qname, self.name, lower = hit
        self.qtype, self.qclass = w.QTAIL.unpack_from(data, end)
        self.qend = end + 4
        self.key = lower + data[end : end + 4]
        if an or ns or ar:
            try:
                self._scan_records(data, an + ns, ar)
            except w.WireError as exc:
                exc.question_end = self.qend  # the question itself was fine
                raise
        return self

    def _scan_records(self, data: bytes, skip: int, ar: int) -> None:
        pos = self.qend
        n = len(data)
        for i in range(skip + ar):
            pos, _ = w.read_name(data, pos)
            if pos + 10 > n:
                raise w.WireError("record header runs past the end of the message")
            rtype, rclass, ttl, rdlen = w.RRHEAD.unpack_from(data, pos)
            pos += 10 + rdlen
            if pos > n:
                raise w.WireError("record data runs past the end of the message")
            if i >= skip and rtype == w.OPT:
                self.opt_count += 1
                if self.opt_count > 1:
                    raise w.WireError("more than one OPT record")  # RFC 6891 §6.1.1
                self.edns = True
                self.udp_size = max(rclass, 512)
                self.edns_version = (ttl >> 16) & 0xFF
                self.do = bool(ttl & w.DO_BIT)

    # -- derived views ---------------------------------------------------
    @property
    def message(self) -> DNSRecord:
        """The whole query as a dnslib record (decoded on first use)."""
        if self._message is None:
            self._message = DNSRecord.parse(self.wire)
        return self._message

    @property
    def label(self) -> DNSLabel:
        """The question name as a dnslib label, built from the wire labels so names
        with escaped dots or odd bytes survive exactly as the client sent them."""
        labels = []
        q = self.qwire
        pos = 0
        while q[pos]:
            n = q[pos]
            labels.append(q[pos + 1 : pos + 1 + n])
            pos += n + 1
        return DNSLabel(labels)

    @property
    def opcode(self) -> int:
        return (self.flags & w.OPCODE_MASK) >> 11

    @property
    def rd(self) -> bool:
        return bool(self.flags & w.RD)

    @property
    def cd(self) -> bool:
        return bool(self.flags & w.CD)

    @property
    def type_name(self) -> str:
        return w.qtype_name(self.qtype)

    @property
    def class_name(self) -> str:
        return w.qclass_name(self.qclass)

    @property
    def family(self) -> int:
        """1 for IPv4 clients, 2 for IPv6 (CoreDNS's ``family`` label)."""
        return 2 if ":" in self.client[0] else 1

    @property
    def max_size(self) -> int:
        """How large a reply may be before it must be truncated."""
        return 65535 if self.proto != "udp" else self.udp_size

    def reply(self, *, aa: bool = True, rcode: int = 0) -> DNSRecord:
        """A dnslib reply skeleton: ID, question (as sent), RD/CD copied, QR set."""
        flags = w.QR | (self.flags & (w.OPCODE_MASK | w.RD | w.CD)) | (w.AA if aa else 0) | (rcode & 0xF)
        header = DNSHeader(id=self.id, bitmap=flags, q=1 if self.qdcount else 0)
        questions = [DNSQuestion(self.label, self.qtype, self.qclass)] if self.qdcount else []
        return DNSRecord(header, questions=questions)

    def copy(self, **changes: Any) -> Request:
        """A shallow copy with some attributes replaced."""
        new = Request.__new__(Request)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    def __repr__(self) -> str:
        return f"<Request {self.qname} {self.type_name} from {self.client[0]}:{self.client[1]}/{self.proto}>"


# ---------------------------------------------------------------------------
# Reply
# ---------------------------------------------------------------------------


class Reply:
    """What a chain returns.

    ``written`` replies carry a message, as a dnslib record (:attr:`message`) or as
    packed bytes (:attr:`wire`); either view is produced on demand. Unwritten
    replies only carry an rcode (and maybe an error): the server then sends a bare
    reply with that rcode, as CoreDNS does for SERVFAIL/REFUSED/FORMERR/NOTIMP.

    ``plugin`` names the plugin that wrote the reply (metrics, the pytest plugin),
    ``error`` is what the errors plugin logs, ``cached`` marks cache hits.
    Packed-wire replies have their ID and question bytes patched to the request's
    by the server; they must otherwise be final.
    """

    __slots__ = ("rcode", "_msg", "_wire", "written", "plugin", "error", "cached", "final")

    def __init__(
        self,
        rcode: int = 0,
        *,
        message: DNSRecord | None = None,
        wire: bytes | None = None,
        written: bool = True,
        plugin: str = "",
        error: BaseException | str | None = None,
        cached: bool = False,
    ) -> None:
        self.rcode = rcode
        self._msg = message
        self._wire = wire
        self.written = written
        self.plugin = plugin
        self.error = error
        self.cached = cached
        # True when ``wire`` is already scrubbed for this request (EDNS, size).
        self.final = False

    @classmethod
    def of(cls, message: DNSRecord, plugin: str = "") -> Reply:
        """A written reply from a dnslib record (rcode taken from its header)."""
        return cls(message.header.rcode, message=message, plugin=plugin)

    @classmethod
    def fail(cls, rcode: int = w.SERVFAIL, error: BaseException | str | None = None) -> Reply:
        """An unwritten error: the server sends a bare reply with ``rcode``."""
        return cls(rcode, written=False, error=error)

    @classmethod
    def drop(cls) -> Reply:
        """Nothing is sent at all (the client times out), like a CoreDNS plugin that
        returns NOERROR without writing."""
        return cls(0, written=False)

    @property
    def dropped(self) -> bool:
        return not self.written and self.rcode == 0

    @property
    def message(self) -> DNSRecord:
        if self._msg is None:
            if self._wire is None:
                raise ValueError("an unwritten reply has no message")
            self._msg = DNSRecord.parse(self._wire)
        return self._msg

    @message.setter
    def message(self, value: DNSRecord) -> None:
        self._msg = value
        self._wire = None
        self.final = False

    @property
    def has_wire(self) -> bool:
        return self._wire is not None

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = bytes(self.message.pack())
        return self._wire

    def __repr__(self) -> str:
        state = "written" if self.written else "unwritten"
        return f"<Reply {w.rcode_name(self.rcode)} {state} by {self.plugin or '-'}>"


# ---------------------------------------------------------------------------
# Plugins
# ---------------------------------------------------------------------------


Next = Callable[[Request], Awaitable[Reply]]


@dataclass
class SetupContext:
    """What a plugin's setup may look at.

    ``block`` is the server block being set up; ``zones`` its normalised zones;
    ``config_dir`` the directory of the Corefile (for relative file names);
    ``registry`` the plugin registry; ``shared`` a dict shared by every block of
    one Corefile load (for process-wide resources such as HTTP listeners).
    """

    block: ServerBlock
    registry: Registry
    config_dir: str = "."
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def zones(self) -> tuple[str, ...]:
        return self.block.zones


class Plugin:
    """Base class of every plugin.

    Subclasses set ``name`` (the directive), implement :meth:`setup` (or
    :meth:`setup_all` when several lines form one plugin) and :meth:`serve`.
    Plugins keep no per-query state: one instance serves concurrent queries from
    tasks and threads.

    Class attributes:

    * ``once``: a second directive in one block is a setup error (CoreDNS's
      ``this plugin can only be used once per Server Block``).
    * ``handler``: False for setup-only plugins (bind, health, ready, reload).
    * ``observer``: the plugin only watches queries (prometheus): instead of
      ``serve`` the server calls ``observe(request, reply, seconds, after)`` once the
      chain is done, ``after`` naming the plugin that follows it.
    * ``enables_chaos``: non-IN classes reach this block's chain (chaos, forward).
    * ``after`` / ``before``: where a third-party plugin sits in the order.
    """

    name: ClassVar[str] = ""
    once: ClassVar[bool] = False
    handler: ClassVar[bool] = True
    observer: ClassVar[bool] = False
    enables_chaos: ClassVar[bool] = False
    after: ClassVar[str | None] = None
    before: ClassVar[str | None] = None

    # Set by the engine when the chain is built.
    engine: Engine | None = None
    server_block: ServerBlock | None = None

    @classmethod
    def setup(cls, directive: Directive, ctx: SetupContext) -> Plugin:
        """Read one directive; raise :class:`CorefileError` at the offending token.

        The default accepts a bare directive (no arguments, no block).
        """
        if directive.args:
            raise directive.arg_tokens[0].error(
                f"Wrong argument count or unexpected line ending after '{directive.name}'",
                plugin=cls.name,
            )
        if directive.block:
            raise directive.block[0].error(
                f"Wrong argument count or unexpected line ending after '{directive.name}'",
                plugin=cls.name,
            )
        return cls()

    @classmethod
    def setup_all(cls, directives: Sequence[Directive], ctx: SetupContext) -> list[Plugin]:
        """Set up every directive of this plugin in one block (Corefile order).

        The default makes one plugin per directive, chained in order (like several
        ``forward`` lines), after the once-per-block check.
        """
        if cls.once and len(directives) > 1:
            # CoreDNS prints no position here; pointing at the second use helps more.
            second = directives[1]
            raise CorefileError(
                "this plugin can only be used once per Server Block",
                second.file,
                second.line,
                plugin=cls.name,
                kind="plain",
            )
        return [cls.setup(d, ctx) for d in directives]

    async def serve(self, request: Request, next: Next) -> Reply:
        """Answer ``request`` or pass it on with ``await next(request)``."""
        return await next(request)

    async def start(self, engine: Engine) -> None:
        """Open listeners or start background tasks (runs on the engine's loop)."""

    async def stop(self) -> None:
        """Undo :meth:`start`; must be safe to call twice."""

    def ready(self) -> bool:
        """For the ``ready`` plugin: is this plugin ready to serve?"""
        return True

    def draining(self) -> None:
        """The server is about to stop: called before the lameduck delay."""

    def register_metrics(self, metrics: MetricsRegistry) -> None:
        """Declare this plugin's metrics (called once per engine)."""

    def observe(self, request: Request, reply: Reply, seconds: float, after: str) -> None:
        """For ``observer`` plugins: one finished query (see the class docstring)."""

    def enables_chaos_for(self) -> bool:
        return type(self).enables_chaos


class _End:
    """The terminal ``next``: CoreDNS's ``plugin/NAME: no next plugin found``."""

    __slots__ = ("reply", "next")

    def __init__(self, last: str) -> None:
        self.reply = Reply.fail(w.SERVFAIL, f"plugin/{last}: no next plugin found")
        self.next = None

    async def __call__(self, request: Request) -> Reply:
        return Reply.fail(self.reply.rcode, self.reply.error)

    async def serve(self, request: Request, next: Any) -> Reply:
        return Reply.fail(self.reply.rcode, self.reply.error)


class _Link:
    """``next`` for one position of a chain: calls the plugin with its own next."""

    __slots__ = ("plugin", "next", "serve")

    def __init__(self, plugin: Plugin, next: Next) -> None:
        self.plugin = plugin
        self.next = next
        self.serve = plugin.serve

    def __call__(self, request: Request) -> Awaitable[Reply]:
        return self.serve(request, self.next)


def next_plugin(next: Next) -> Plugin | None:
    """The plugin that ``next`` calls (``None`` at the end of the chain).

    CoreDNS plugins sometimes need it: forward hands a query to a following
    forward (``next``), prometheus labels replies with the plugin after it.
    """
    return next.plugin if isinstance(next, _Link) else None


@dataclass
class Chain:
    """The handler plugins of one server block, in execution order."""

    block: ServerBlock
    plugins: list[Plugin]
    all_plugins: list[Plugin]   # handlers and setup-only plugins
    head: Next | None = None
    enables_chaos: bool = False

    observer: Plugin | None = None
    after_observer: str = ""

    def link(self) -> None:
        # An observer (prometheus) is not called as a link: the server calls its
        # observe() around the whole chain, which costs one call instead of a
        # coroutine and a link per query. after_observer is the plugin label
        # CoreDNS 1.14 gives replies: the handler right after it.
        handlers = [p for p in self.plugins if not p.observer]
        observers = [p for p in self.plugins if p.observer]
        self.observer = observers[0] if observers else None
        if self.observer is not None:
            after = self.plugins[self.plugins.index(self.observer) + 1 :]
            following = [p for p in after if not p.observer]
            self.after_observer = following[0].name if following else ""
        nxt: Next = _End(self.plugins[-1].name if self.plugins else "")
        for p in reversed(handlers):
            nxt = _Link(p, nxt)
        self.head = nxt if self.plugins else None
        self.enables_chaos = any(p.enables_chaos_for() for p in self.plugins)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.plugins]


def build_chain(
    block: ServerBlock,
    registry: Registry | None = None,
    *,
    config_dir: str = ".",
    shared: dict[str, Any] | None = None,
    mode: str = "pycorefile",
) -> Chain:
    """Set up every plugin of ``block`` and link them in the registry's order.

    In ``mode="coredns"`` directives of CoreDNS plugins pycorefile does not
    implement are skipped (used only for validation).
    """
    registry = registry or default_registry()
    ctx = SetupContext(block=block, registry=registry, config_dir=config_dir, shared=shared or {})
    grouped: dict[str, list[Directive]] = {}
    for d in block.directives:
        grouped.setdefault(d.name, []).append(d)
    made: list[tuple[int, int, Plugin]] = []
    counter = itertools.count()
    for name, directives in grouped.items():
        cls = registry.get(name)
        if cls is None:
            status = registry.status(name)
            if status == "coredns" and mode == "coredns":
                continue
            d = directives[0]
            if status == "coredns":
                raise CorefileError(
                    f"plugin '{name}' is not supported by pycorefile", d.file, d.line, kind="plain"
                )
            raise d.error(f"Unknown directive '{name}'")
        try:
            plugins = cls.setup_all(directives, ctx)
        except CorefileError as exc:
            if exc.plugin is None:
                exc.plugin = name
                exc.args = (exc._render(),)
            raise
        pos = registry.position(name)
        for p in plugins:
            p.server_block = block
            made.append((pos, next(counter), p))
    made.sort(key=lambda t: (t[0], t[1]))
    all_plugins = [p for _, _, p in made]
    chain = Chain(block, [p for p in all_plugins if p.handler], all_plugins)
    chain.link()
    return chain


def check_plugins(
    corefile: Corefile, registry: Registry | None = None, mode: str = "pycorefile"
) -> list[CorefileError]:
    """Run every plugin's setup on ``corefile``; return the errors (empty: valid).

    Setup only parses options; nothing is started and no socket is opened.
    """
    import os

    errors: list[CorefileError] = []
    shared: dict[str, Any] = {}
    config_dir = os.path.dirname(os.path.abspath(corefile.filename)) if corefile.filename else "."
    for block in corefile.blocks:
        try:
            build_chain(block, registry, config_dir=config_dir, shared=shared, mode=mode)
        except CorefileError as exc:
            errors.append(exc)
    return errors


# ---------------------------------------------------------------------------
# Driving coroutines without a loop
# ---------------------------------------------------------------------------


class Resume:
    """Awaitable that continues a coroutine already started with ``send(None)``.

    ``first`` is what the coroutine yielded (a future, or ``None`` for a bare
    reschedule). Awaiting this object inside a task hands the yields to the event
    loop exactly as if the task had run the coroutine from its start.
    """

    __slots__ = ("coro", "first")

    def __init__(self, coro: Any, first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self):  # type: ignore[no-untyped-def]
        coro = self.coro
        to_yield = self.first
        while True:
            try:
                sent = yield to_yield
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - forwarded into the coroutine
                try:
                    to_yield = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    to_yield = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class _ToLoop:
    """``await to_loop(engine)``: make sure the rest runs on the engine's loop.

    When the current thread runs the engine's loop this costs nothing. Otherwise
    (the in-process resolver drove the chain eagerly from plain code) it yields
    ``None``; the driver then moves the coroutine onto the engine's loop thread.
    """

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop

    def __await__(self):  # type: ignore[no-untyped-def]
        if self.loop is None or asyncio._get_running_loop() is not self.loop:
            yield None
        return None


def to_loop(request: Request) -> _ToLoop:
    """Awaitable a plugin uses before its first network I/O (see :class:`_ToLoop`)."""
    engine = request.engine
    loop = engine.loop if engine is not None else None
    return _ToLoop(loop)
