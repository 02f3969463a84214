"""Cache hits in process: the hot path against its anchors, and memory per entry.

Measures, in one process, calls per second for:

* ``Resolver.handle(query_bytes)`` on a cache hit (bytes in, bytes out, as the UDP
  server does), with and without EDNS; target ≥ 100k/s;
* ``Resolver.resolve(name, "A")`` on a cache hit (returns a ``dnslib.DNSRecord``);
* the cache plugin alone: ``Cache.serve`` on a hit, driven without an event loop, and
  the bytes it renders (``Entry.render``);
* two anchors: "bare" (the question parsed from the bytes, a dict look-up and the
  ID/TTL patched in place, the Python limit) and "dnslib" (parse the query, build a
  reply from cached RRs and pack it, what a plain dnslib server does per hit);

and the memory a cached entry costs (tracemalloc over 10,000 distinct names, each a
one-record A answer, as the in-process resolver stores them).

    python bench/bench_cache.py [--seconds 1.0] [--repeat 5] [--entries 10000]

Each rate is the best of ``--repeat`` runs of about ``--seconds`` each (the best run
is the one least disturbed by other load on the machine).
"""

from __future__ import annotations

import argparse
import gc
import struct
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dnslib import RR, A, DNSRecord  # noqa: E402

import pycorefile  # noqa: E402
from pycorefile import wire as w  # noqa: E402
from pycorefile.chain import Plugin, Reply, Request  # noqa: E402
from pycorefile.plugins.cache import Cache  # noqa: E402
from pycorefile.registry import Registry  # noqa: E402
from pycorefile.resolver import Resolver  # noqa: E402
from pycorefile.routing import Engine  # noqa: E402

TARGETS = {"handle": 100_000}


class Upstream(Plugin):
    """Stands in for forward: one A record per name, TTL 3600, never awaits."""

    name = "bench_upstream"

    async def serve(self, request: Request, next: Any) -> Reply:
        msg = request.reply(aa=False)
        msg.header.ra = 1
        msg.add_answer(RR(request.qname, 1, 1, 3600, A("10.0.1.1")))
        return Reply.of(msg, self.name)


def resolver(block: str = "cache") -> tuple[Resolver, Cache]:
    registry = Registry()
    registry.load_entry_points()
    registry.register(Upstream)
    text = f".:1053 {{\n    {block}\n    bench_upstream\n}}\n"
    engine = Engine(pycorefile.loads(text, registry=registry), registry=registry)
    cache = next(p for p in engine.plugins() if isinstance(p, Cache))
    return Resolver(engine), cache


def rate(fn: Callable[[], object], seconds: float, repeat: int) -> float:
    """Best calls per second over ``repeat`` runs of about ``seconds`` each."""
    fn()
    batch = 1000
    best = 0.0
    for _ in range(repeat):
        calls = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(batch):
                fn()
            calls += batch
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, calls / (now - start))
    return best


def drive(coro: Any) -> Any:
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("a cache hit awaited")


def bare_anchor() -> Callable[[], bytes]:
    """The Python limit: key on the raw question, patch ID and TTL into stored bytes."""
    query = w.build_query("hit.bench.test", 1, qid=7)
    stored = bytes(
        DNSRecord.question("hit.bench.test")
        .replyZone("hit.bench.test. 3600 IN A 10.0.1.1")
        .pack()
    )
    table = {query[12:]: (stored, len(stored) - 10)}
    u16 = struct.Struct("!H")
    u32 = struct.Struct("!I")

    def hit() -> bytes:
        entry = table.get(query[12:])
        assert entry is not None
        buf = bytearray(entry[0])
        u16.pack_into(buf, 0, u16.unpack_from(query)[0])
        u32.pack_into(buf, entry[1], 3599)
        return bytes(buf)

    return hit


def dnslib_anchor() -> Callable[[], bytes]:
    """A plain dnslib server's hit: parse, build a reply sharing cached RRs, pack."""
    query = w.build_query("hit.bench.test", 1, qid=7)
    cached = {("hit.bench.test.", 1): RR.fromZone("hit.bench.test. 3600 IN A 10.0.1.1")}

    def hit() -> bytes:
        q = DNSRecord.parse(query)
        reply = q.reply()
        for rr in cached[(str(q.q.qname).lower(), q.q.qtype)]:
            reply.add_answer(rr)
        return bytes(reply.pack())

    return hit


def memory_per_entry(entries: int) -> tuple[float, float]:
    """(bytes per entry with the parsed records kept, bytes per entry of the packed
    reply alone) after ``entries`` distinct names were cached."""
    r, cache = resolver("cache {\n        success 20000\n    }")
    queries = [w.build_query(f"name-{i:05d}.bench.test", 1, qid=i & 0xFFFF) for i in range(entries)]
    r.handle(queries[0])  # first-use allocations (metric children, OPT cache) out of the way
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for q in queries[1:]:
        r.handle(q)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(cache.success) == entries, len(cache.success)
    total = (after - before) / (entries - 1)
    packed = sum(len(s) for e in cache.success.index.values() for s in e.segs) / entries
    return total, packed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--entries", type=int, default=10_000)
    args = ap.parse_args()

    r, cache = resolver()
    plain = w.build_query("hit.bench.test", 1, qid=7)
    edns = w.build_query("hit.bench.test", 1, qid=7, edns_size=1232, do=True)
    r.handle(plain)
    r.handle(edns)
    request = Request.from_wire(plain)
    request.server, request.engine = r.server.label, r.engine

    async def no_next(req: Request) -> Reply:
        raise RuntimeError("a hit called next")

    entry = cache.entry("hit.bench.test.")
    assert entry is not None
    opt_cache: dict[int, bytes] = {}

    rows: list[tuple[str, float, str]] = [
        ("handle(bytes), hit", rate(lambda: r.handle(plain), args.seconds, args.repeat), "handle"),
        ("handle(bytes), hit, EDNS+DO", rate(lambda: r.handle(edns), args.seconds, args.repeat), ""),
        ("resolve(name), hit", rate(lambda: r.resolve("hit.bench.test"), args.seconds, args.repeat), ""),
        ("Cache.serve alone, hit", rate(lambda: drive(cache.serve(request, no_next)), args.seconds, args.repeat), ""),
        ("Entry.render alone", rate(lambda: entry.render(request, 3599, opt_cache), args.seconds, args.repeat), ""),
        ("anchor: bare dict + patch", rate(bare_anchor(), args.seconds, args.repeat), ""),
        ("anchor: dnslib parse+build+pack", rate(dnslib_anchor(), args.seconds, args.repeat), ""),
    ]
    assert r.engine.loop is None, "a hit needed the event loop"
    print(f"{'in-process cache hits':34} {'calls/s':>12} {'µs/call':>9}  target")
    for label, per_sec, target in rows:
        goal = TARGETS.get(target)
        mark = ""
        if goal:
            mark = f">= {goal:,}/s {'ok' if per_sec >= goal else 'MISSED'}"
        print(f"{label:34} {per_sec:12,.0f} {1e6 / per_sec:9.2f}  {mark}")
    hits = r.engine.metrics.sample("coredns_cache_hits_total")
    print(f"(cache hits counted: {hits:,.0f}; backend calls: 2)")

    total, packed = memory_per_entry(args.entries)
    print()
    print(f"memory per cached entry ({args.entries:,} one-record A answers, tracemalloc):")
    print(f"  {total:,.0f} bytes in total, of which {packed:,.0f} bytes of packed reply")
    r.close()


if __name__ == "__main__":
    main()
