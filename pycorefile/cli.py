"""The ``pycorefile`` command: serve, validate, query, plugins.

Flags mirror CoreDNS's where they exist (``-conf``, ``-dns.port``, ``-quiet``,
``-version``), so a static-pod manifest can swap the binary and keep its args.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence

from . import __version__
from .corefile.errors import CorefileError

log = logging.getLogger("pycorefile")


class _Format(logging.Formatter):
    """CoreDNS's log lines: ``[LEVEL] plugin/NAME: message``."""

    def format(self, record: logging.LogRecord) -> str:
        level = {"WARNING": "WARNING", "CRITICAL": "FATAL"}.get(record.levelname, record.levelname)
        msg = record.getMessage()
        name = record.name
        if name.startswith("pycorefile.plugins.") and name != "pycorefile.plugins.log":
            msg = f"plugin/{name.rsplit('.', 1)[1]}: {msg}"
        text = f"[{level}] {msg}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Format())
    root = logging.getLogger("pycorefile")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _read_corefile(path: str | None, dns_port: str | None) -> tuple[str, str]:
    """(text, filename): ``-conf stdin``, a path, ``./Corefile``, or the built-in default."""
    from .resolver import DEFAULT_COREFILE

    if path == "stdin":
        return sys.stdin.read(), "stdin"
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    if os.path.exists("Corefile"):
        with open("Corefile", encoding="utf-8") as f:
            return f.read(), "Corefile"
    return DEFAULT_COREFILE.replace(".:1053", f".:{dns_port}" if dns_port else ".:1053"), "Corefile"


def _build_engine(text: str, filename: str, dns_port: str | None):  # type: ignore[no-untyped-def]
    from . import corefile as cf
    from .routing import Engine

    model = cf.loads(text, filename=filename, dns_port=dns_port or "53")
    if not model.blocks:
        from .resolver import DEFAULT_COREFILE

        model = cf.loads(DEFAULT_COREFILE.replace(".:1053", f".:{dns_port or 53}"), filename=filename)
    return Engine(model)


def cmd_serve(args: argparse.Namespace) -> int:
    from .server.dns import DNSServer

    setup_logging()
    conf = args.conf or args.corefile
    try:
        text, filename = _read_corefile(conf, args.dns_port)
        engine = _build_engine(text, filename, args.dns_port)
    except CorefileError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot read Corefile: {exc}", file=sys.stderr)
        return 1

    from .resolver import new_event_loop

    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    server = DNSServer(engine)
    stop = asyncio.Event()
    reload_requested = asyncio.Event()
    status = {"code": 0}

    def fatal(message: str) -> None:
        # A plugin found a problem the server cannot run with (loop): stop, exit 1.
        status["code"] = 1
        stop.set()

    async def main() -> int:
        try:
            await server.start()
        except OSError as exc:
            print(f"listen failed: {exc}", file=sys.stderr)
            return 1
        # Everything loaded so far lives as long as the server: move it out of the
        # collector's sight, and collect less often, so the query path rarely pauses.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload_requested.set)
        engine.shared["reload"] = reload_requested.set
        engine.shared["fatal"] = fatal
        if not args.quiet:
            for srv in server.engine.servers:
                for key in srv.keys:
                    print(f"{key.scheme}://{key.zone}:{srv.port}")
            print(f"pycorefile-{__version__}")
            sys.stdout.flush()
        while True:
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(reload_requested.wait())]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w_ in waiters:
                w_.cancel()
            if stop.is_set():
                break
            reload_requested.clear()
            await _reload(server, conf, args.dns_port)
        for p in server.engine.plugins():
            p.draining()
        grace = max((getattr(p, "lameduck", 0.0) for p in server.engine.plugins()), default=0.0)
        if grace:
            await asyncio.sleep(grace)
        await server.stop(5.0)
        return status["code"]

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


async def _reload(server, conf: str | None, dns_port: str | None) -> bool:  # type: ignore[no-untyped-def]
    """Re-read the Corefile; on any error keep serving the old config."""
    try:
        text, filename = _read_corefile(conf, dns_port)
        # Built off the event loop: setup may look up host-name upstreams (forward),
        # and the old config keeps answering meanwhile.
        engine = await asyncio.get_running_loop().run_in_executor(
            None, _build_engine, text, filename, dns_port
        )
        for key in ("reload", "fatal"):
            engine.shared[key] = server.engine.shared.get(key)
        await server.swap(engine)
    except (CorefileError, OSError) as exc:
        log.error("Corefile changed but reload failed: %s", exc)
        m = server.engine.metrics.get("coredns_reload_failed_total")
        if m is not None:
            m.inc()
        return False
    log.info("Reloading complete")
    return True


def cmd_query(args: argparse.Namespace) -> int:
    from dnslib import DNSRecord

    from . import wire as w

    if args.server:
        host, _, port = args.server.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        q = DNSRecord.question(args.name, args.type.upper())
        try:
            data = q.send(host, int(port or 53), tcp=args.tcp, timeout=5)
        except OSError as exc:
            print(f";; connection failed: {exc}", file=sys.stderr)
            return 1
        print(DNSRecord.parse(data))
        return 0
    from .resolver import Resolver

    try:
        if args.conf:
            r = Resolver.from_path(args.conf)
        elif os.path.exists("Corefile"):
            r = Resolver.from_path("Corefile")
        else:
            r = Resolver.from_corefile("")
    except CorefileError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    with r:
        try:
            w.qtype_code(args.type)
        except ValueError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        print(r.resolve(args.name, args.type.upper()))
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from .registry import default_registry

    reg = default_registry()
    for name in reg.ordered():
        print(name)
    for name, why in reg.failed().items():
        print(f"# {name}: failed to load: {why}", file=sys.stderr)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from .dnsmasq import convert_file

    try:
        conversion = convert_file(args.file, port=args.port, listen=args.listen)
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    sys.stdout.write(conversion.corefile)
    return 0


def cmd_validate(argv: Sequence[str]) -> int:
    from .corefile import validate

    return validate.main(list(argv))


def _go_flags(argv: list[str]) -> list[str]:
    """Accept CoreDNS's single-dash long flags (``-conf``, ``-dns.port``)."""
    out = []
    for a in argv:
        if a.startswith("-") and not a.startswith("--") and len(a) > 2:
            out.append("-" + a)
        else:
            out.append(a)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "validate":
        return cmd_validate(argv[1:])
    argv = _go_flags(argv)
    if argv and argv[0] in ("--version", "--v"):
        print(f"pycorefile-{__version__}")
        return 0
    if not argv or argv[0].startswith("-"):
        # Like the coredns binary: flags alone mean "serve".
        argv = ["serve", *argv]

    p = argparse.ArgumentParser(prog="pycorefile", description="CoreDNS's Corefile, in Python.")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="serve a Corefile over UDP and TCP")
    s.add_argument("corefile", nargs="?", help="Corefile path (default ./Corefile)")
    s.add_argument("--conf", help="Corefile path, or 'stdin'")
    s.add_argument("--dns.port", dest="dns_port", help="default port for keys without one")
    s.add_argument("--quiet", action="store_true", help="no startup banner")
    s.add_argument("--version", action="version", version=f"pycorefile-{__version__}")
    s.set_defaults(func=cmd_serve)

    q = sub.add_parser("query", help="resolve a name in-process or against a server")
    q.add_argument("name")
    q.add_argument("type", nargs="?", default="A")
    q.add_argument("--conf", help="Corefile to resolve with (in-process)")
    q.add_argument("--server", help="HOST:PORT of a running server")
    q.add_argument("--tcp", action="store_true", help="use TCP with --server")
    q.set_defaults(func=cmd_query)

    pl = sub.add_parser("plugins", help="list plugins in execution order")
    pl.set_defaults(func=cmd_plugins)

    sub.add_parser("validate", help="check Corefiles (see 'pycorefile validate --help')")

    c = sub.add_parser("convert", help="print the Corefile equivalent to a dnsmasq.conf")
    c.add_argument("file", help="the dnsmasq configuration file")
    c.add_argument("--port", type=int, help="the port to serve (instead of port=)")
    c.add_argument("--listen", action="append", metavar="ADDR",
                   help="an address or interface to bind, repeatable (instead of "
                        "listen-address= and interface=)")
    c.set_defaults(func=cmd_convert)

    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
