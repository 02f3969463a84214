"""Forwarding cost: pycorefile's ``forward`` (no cache) against asking the upstream directly.

Starts a dnsmasq upstream answering the test zone of ``tests/upstreams.py`` and a
``pycorefile serve`` process whose Corefile is only ``forward . <dnsmasq>``, then
measures, for the same queries sent straight to dnsmasq and through pycorefile:

* latency: N sequential dnspython queries (alternating between the two targets), with
  p50/p90/p99 and the latency pycorefile adds;
* throughput: C concurrent dnspython (asyncio) clients for S seconds; and, when
  ``dnsperf`` is installed, a dnsperf run, which the Python client cannot saturate;
* pycorefile's CPU time per forwarded query (from /proc).

    python bench/bench_forward.py [-n 2000] [-c 32] [-s 5] [--no-dnsperf]

Every query is uncached in pycorefile (there is no cache plugin in its Corefile), so
each one is a real upstream exchange over a pooled UDP socket.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.query
import dns.rcode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from upstreams import DnsmasqServer, free_port  # noqa: E402

QUERIES = [
    ("a.example.test", "A"),
    ("multi.example.test", "A"),
    ("mx.example.test", "MX"),
    ("aaaa.example.test", "AAAA"),
    ("c1.example.test", "A"),
    ("twenty.example.test", "A"),
]
HOST = "127.0.0.1"


def start_pycorefile(upstream: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    corefile = workdir / "Corefile"
    corefile.write_text(f".:{port} {{\n    bind {HOST}\n    forward . {upstream}\n}}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pycorefile", "serve", "--conf", str(corefile), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    q = dns.message.make_query("a.example.test", "A")
    for _ in range(200):
        try:
            dns.query.udp(q, HOST, port=port, timeout=0.2)
            return proc, port
        except Exception:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else "exited"
                raise RuntimeError(err) from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("pycorefile did not answer")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latency(ports: dict[str, int], n: int) -> dict[str, list[float]]:
    msgs = [dns.message.make_query(name, qtype) for name, qtype in QUERIES]
    out: dict[str, list[float]] = {k: [] for k in ports}
    for i in range(n):
        q = msgs[i % len(msgs)]
        for label, port in ports.items():
            start = time.perf_counter()
            r = dns.query.udp(q, HOST, port=port, timeout=2, raise_on_truncation=False)
            out[label].append(time.perf_counter() - start)
            assert r.rcode() == dns.rcode.NOERROR, (label, r)
    return out


async def _throughput(port: int, clients: int, seconds: float) -> tuple[int, int]:
    msgs = [dns.message.make_query(name, qtype) for name, qtype in QUERIES]
    done = failed = 0
    end = time.perf_counter() + seconds

    async def client(k: int) -> None:
        nonlocal done, failed
        i = k
        while time.perf_counter() < end:
            try:
                await dns.asyncquery.udp(msgs[i % len(msgs)], HOST, port=port, timeout=2)
                done += 1
            except Exception:
                failed += 1
            i += 1

    await asyncio.gather(*(client(k) for k in range(clients)))
    return done, failed


def dnsperf(port: int, seconds: float, workdir: Path) -> float | None:
    exe = shutil.which("dnsperf")
    if exe is None:
        return None
    qfile = workdir / "queries.txt"
    qfile.write_text("".join(f"{name} {qtype}\n" for name, qtype in QUERIES))
    res = subprocess.run(
        [exe, "-s", HOST, "-p", str(port), "-d", str(qfile), "-l", str(seconds), "-c", "8",
         "-q", "200"],
        capture_output=True, text=True, check=False,
    )
    for line in res.stdout.splitlines():
        if "Queries per second" in line:
            return float(line.split()[-1])
    return None


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="sequential queries per target")
    ap.add_argument("-c", type=int, default=32, help="concurrent dnspython clients")
    ap.add_argument("-s", type=float, default=5.0, help="seconds per throughput run")
    ap.add_argument("--no-dnsperf", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-forward-") as tmp, DnsmasqServer() as up:
        workdir = Path(tmp)
        proc, port = start_pycorefile(up.address, workdir)
        try:
            ports = {"direct": up.port, "forwarded": port}
            latency(ports, 200)  # warm-up
            lat = latency(ports, args.n)
            print(f"latency over {args.n} sequential queries (ms):")
            print(f"  {'':10} {'p50':>8} {'p90':>8} {'p99':>8} {'mean':>8}")
            for label, vals in lat.items():
                ms = [v * 1000 for v in vals]
                print(f"  {label:10} {pct(ms, 50):8.3f} {pct(ms, 90):8.3f} {pct(ms, 99):8.3f} "
                      f"{statistics.fmean(ms):8.3f}")
            added50 = (pct(lat["forwarded"], 50) - pct(lat["direct"], 50)) * 1e6
            added99 = (pct(lat["forwarded"], 99) - pct(lat["direct"], 99)) * 1e6
            print(f"  added by pycorefile: p50 {added50:.0f} us, p99 {added99:.0f} us")

            print(f"throughput, {args.c} concurrent dnspython clients, {args.s:g} s:")
            for label, p in ports.items():
                cpu0 = cpu_seconds(proc.pid)
                done, failed = asyncio.run(_throughput(p, args.c, args.s))
                cpu = cpu_seconds(proc.pid) - cpu0
                extra = ""
                if label == "forwarded" and done:
                    extra = f", pycorefile CPU {cpu / done * 1e6:.0f} us/query"
                print(f"  {label:10} {done / args.s:8.0f} qps ({failed} timeouts){extra}")
            if not args.no_dnsperf:
                for label, p in ports.items():
                    cpu0 = cpu_seconds(proc.pid)
                    qps = dnsperf(p, args.s, workdir)
                    if qps is None:
                        print("  dnsperf not installed: skipped")
                        break
                    cpu = cpu_seconds(proc.pid) - cpu0
                    extra = ""
                    if label == "forwarded" and cpu > 0:
                        extra = f", {qps * args.s / cpu:.0f} queries per pycorefile CPU-second"
                    print(f"  dnsperf {label:10} {qps:8.0f} qps{extra}")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
