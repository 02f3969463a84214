#!/usr/bin/env python3
"""pycorefile benchmark: pycorefile vs dnsmasq vs a plain dnslib server, in one run.

    python bench/run.py [--quick] [--scenario template,cache,forward,parse]
                        [--duration S] [--json out.json]

Scenarios (see bench/README.md for what every number means):

  template  local answers (api.bench.local, *.apps.bench.local A) over UDP
  cache     cache hits (1000 names under cache.bench.test, warmed first) over UDP
  forward   cache misses (every name unique) over UDP, and local-answer latency while
            a slow upstream is being queried
  parse     in-process: Corefile parse, Resolver.resolve() for a template answer and a
            cache hit, Resolver.handle() bytes -> bytes, against dnslib anchors

Every server is pinned to one CPU (default 0) with taskset, dnsperf and the upstreams to
the other (default 1). All traffic goes to 127.0.0.1. Every process started here is
stopped at the end, also on Ctrl-C and errors.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import peers  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
SCENARIOS = ("template", "cache", "forward", "parse")
LOOPBACK = "127.0.0.1"

# Open-loop ladder (queries per second).
RUNGS = [500, 1000, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 25000, 30000, 40000,
         50000, 65000, 80000, 100000, 120000]
LOSS_LIMIT = 0.001  # loss-free means < 0.1 % lost
LATENCY_QPS = 2000

PROFILES: dict[str, dict[str, Any]] = {
    # ~60 s in all with four servers
    "quick": dict(closed_s=1.0, rounds=1, latency_s=1.0, step_s=0.7, max_steps=3,
                  fwd_s=1.0, fwd_rounds=1, fwd_latency=False, slow_s=1.0,
                  inproc_n=20000, inproc_repeat=2, inproc_budget=0.15,
                  prometheus=False, ab_runs=3, ab_s=2.0),
    # ~4 min with five servers
    "full": dict(closed_s=3.0, rounds=2, latency_s=3.0, step_s=1.0, max_steps=5,
                 fwd_s=3.0, fwd_rounds=1, fwd_latency=True, slow_s=2.0,
                 inproc_n=100000, inproc_repeat=3, inproc_budget=0.4,
                 prometheus=True, ab_runs=6, ab_s=3.0),
}


def say(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


# =======================================================================================
# Processes: everything started is registered and stopped at exit


class Proc:
    def __init__(self, name: str, cmd: list[str], *, log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None, new_session: bool = True) -> None:
        self.name = name
        self.cmd = cmd
        self.log = log
        self.logf = open(log, "wb")
        self.popen = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=new_session, preexec_fn=_die_with_parent,
        )
        self.pid = self.popen.pid
        self.session = new_session
        PROCS.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self) -> str:
        """The most telling line of the process's output: the last error line, else the last."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return reason_line(text)

    def stop(self, grace: float = 3.0) -> None:
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(2)
        with contextlib.suppress(OSError):
            self.logf.close()

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.session:
                os.killpg(self.pid, sig)  # the server and any workers it forked
            else:
                self.popen.send_signal(sig)


PROCS: list[Proc] = []


def reason_line(text: str, limit: int = 240) -> str:
    """The line that says why a process failed: a traceback's last line, else the last
    line that is not an indented continuation or a hint."""
    raw = [x.rstrip() for x in text.splitlines() if x.strip()]
    line = ""
    for x in reversed(raw):
        if not x[:1].isspace() and not x.lower().startswith("hint"):
            line = x
            break
    line = (line or (raw[-1].strip() if raw else "")).replace(tempfile.gettempdir() + "/", "")
    line = re.sub(r"pycorefile-bench-\w+/", "", line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _die_with_parent() -> None:
    """Children get SIGTERM if the harness dies without cleaning up (Linux prctl)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def stop_all() -> None:
    while PROCS:
        PROCS.pop().stop()


def _on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def taskset(cpu: int | None, cmd: list[str]) -> list[str]:
    if cpu is None or not shutil.which("taskset"):
        return cmd
    return ["taskset", "-c", str(cpu), *cmd]


# =======================================================================================
# /proc readings


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def process_tree(root: int) -> list[int]:
    """root and its live descendants (a server may fork workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime (all threads, live or finished) summed over pids."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


def vm_hwm_mb(pids: list[int]) -> tuple[float | None, int]:
    """Largest VmHWM (peak RSS) among pids, in MB, and how many processes had one."""
    best, n = None, 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        kb = int(line.split()[1])
                        best = kb / 1024 if best is None else max(best, kb / 1024)
                        n += 1
        except OSError:
            pass
    return best, n


# =======================================================================================
# DNS probing


def free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((LOOPBACK, 0))
            port = u.getsockname()[1]
            if port < 10000:
                continue
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def query(port: int, name: str, qtype: str = "A", timeout: float = 1.0):
    """One UDP query to 127.0.0.1:port; the parsed dnslib reply or None."""
    from dnslib import DNSRecord

    q = DNSRecord.question(name, qtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(q.pack(), (LOOPBACK, port))
            deadline = time.monotonic() + timeout
            while True:
                data, _ = s.recvfrom(65535)
                if data[:2] == q.pack()[:2]:
                    return DNSRecord.parse(data)
                if time.monotonic() > deadline:
                    return None
        except Exception:  # timeouts, refused ports, unparsable replies
            return None


def summarize_answer(reply) -> str:
    if reply is None:
        return "no reply"
    from dnslib import QTYPE, RCODE

    rcode = RCODE.get(reply.header.rcode)
    addrs = sorted(str(r.rdata) for r in reply.rr if r.rtype == QTYPE.A)
    return f"{rcode} {','.join(addrs) or '-'}"


# =======================================================================================
# dnsperf


@dataclass
class PerfResult:
    sent: int = 0
    completed: int = 0
    lost: int = 0
    runtime: float = 0.0
    qps: float = 0.0
    rcodes: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def loss(self) -> float:
        return self.lost / self.sent if self.sent else 1.0

    def pct(self, p: float) -> float | None:
        if not self.latencies:
            return None
        xs = sorted(self.latencies)
        k = max(0, min(len(xs) - 1, math.ceil(p / 100 * len(xs)) - 1))
        return xs[k]


_NUM = {
    "sent": r"Queries sent:\s+(\d+)",
    "completed": r"Queries completed:\s+(\d+)",
    "lost": r"Queries lost:\s+(\d+)",
    "runtime": r"Run time \(s\):\s+([\d.]+)",
    "qps": r"Queries per second:\s+([\d.]+)",
}
_VLINE = re.compile(r"^> (\S+) \S+ \S+ ([\d.]+)$", re.M)


def dnsperf_cmd(cfg: Config, port: int, qfile: Path, *, duration: float | None = None,
                qps: int | None = None, outstanding: int = 100, timeout: float = 1.0,
                verbose: bool = False, max_runs: int | None = None,
                clients: int | None = None) -> list[str]:
    cmd = ["dnsperf", "-s", LOOPBACK, "-p", str(port), "-d", str(qfile),
           "-c", str(clients or cfg.clients), "-q", str(outstanding), "-t", f"{timeout:g}"]
    if duration:
        cmd += ["-l", f"{duration:g}"]
    if qps:
        cmd += ["-Q", str(int(qps))]
    if max_runs:
        cmd += ["-n", str(max_runs)]
    if verbose:
        cmd += ["-v"]
    return taskset(cfg.client_cpu, cmd)


def parse_dnsperf(out: str) -> PerfResult:
    r = PerfResult()
    for key, rx in _NUM.items():
        m = re.search(rx, out)
        if m:
            setattr(r, key, float(m.group(1)) if key in ("runtime", "qps") else int(m.group(1)))
    m = re.search(r"Response codes:\s+(.*)", out)
    if m:
        r.rcodes = {k: int(v) for k, v in re.findall(r"([A-Z]+) (\d+) \(", m.group(1))}
    r.latencies = [float(x) for _, x in _VLINE.findall(out)]
    if "Statistics:" not in out:
        r.error = out.strip().splitlines()[-1] if out.strip() else "dnsperf gave no output"
    return r


def run_dnsperf(cmd: list[str], budget: float) -> PerfResult:
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=budget + 15)
    except subprocess.TimeoutExpired:
        return PerfResult(error="dnsperf timed out")
    return parse_dnsperf(p.stdout)


# =======================================================================================
# Servers


@dataclass
class Server:
    key: str                 # "pycorefile", "pycorefile+prom", "dnsmasq", "dnslib", "limit"
    label: str
    role: str                # "target" or "anchor"
    port: int = 0
    proc: Proc | None = None
    unavailable: str = ""    # why it is not measured ("" = available)
    scenarios: tuple[str, ...] = ("template", "cache", "forward")
    wrong: dict[str, str] = field(default_factory=dict)  # scenario -> answer mismatch

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid) if self.proc else []


@dataclass
class Config:
    profile: dict[str, Any]
    scenarios: list[str]
    server_cpu: int | None
    client_cpu: int | None
    clients: int
    tmp: Path
    python: str
    bare_loop: str
    keep_logs: bool = False
    ports: dict[str, int] = field(default_factory=dict)
    pyc_env: dict[str, str] | None = None
    pyc_source: str = ""


def pycorefile_env() -> tuple[dict[str, str] | None, str, str]:
    """Find an interpreter environment where ``import pycorefile`` gives a Resolver:
    first as installed, then from the source tree. (env, where, why-not)."""
    probe = "import pycorefile, sys; pycorefile.Resolver.from_corefile; print(pycorefile.__file__)"
    reasons = []
    for where in ("installed", "source tree"):
        env = dict(os.environ)
        if where == "source tree":
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        try:
            p = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tempfile.gettempdir(),
                               capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            reasons.append(f"{where}: import timed out")
            continue
        if p.returncode == 0:
            return env, f"{where} ({p.stdout.strip()})", ""
        reasons.append(f"{where}: {reason_line(p.stderr) or 'import failed'}")
    return None, "", "; ".join(reasons)


def wait_ready(srv: Server, name: str, timeout: float) -> str:
    """'' when srv answers on its port, else the reason it does not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.proc is None or not srv.proc.alive():
            code = srv.proc.popen.returncode if srv.proc else "?"
            tail = srv.proc.log_tail() if srv.proc else ""
            return f"exited ({code}): {tail}" if tail else f"exited ({code})"
        if query(srv.port, name, timeout=0.3) is not None:
            return ""
        time.sleep(0.1)
    tail = srv.proc.log_tail() if srv.proc else ""
    return f"no answer on 127.0.0.1:{srv.port} after {timeout:g} s" + (f": {tail}" if tail else "")


def render(template: Path, out: Path, values: dict[str, object]) -> Path:
    out.write_text(peers.substitute(template.read_text(), values))
    return out


def start_infra(cfg: Config) -> None:
    """The upstream dnsmasq and the slow upstream, pinned with dnsperf (client CPU)."""
    up = cfg.ports["upstream"] = free_port()
    slow = cfg.ports["slow"] = free_port()
    conf = render(BENCH / "dnsmasq" / "upstream.conf", cfg.tmp / "upstream.conf", {"UPSTREAM_PORT": up})
    infra = [
        Server("upstream", "upstream dnsmasq", "infra", up),
        Server("slow", "slow upstream", "infra", slow),
    ]
    infra[0].proc = Proc("upstream", taskset(cfg.client_cpu, peers.dnsmasq_command(conf)),
                         log=cfg.tmp / "upstream.log")
    infra[1].proc = Proc("slow", taskset(cfg.client_cpu, [cfg.python, str(BENCH / "peers.py"), "slow",
                                                         "--port", str(slow), "--delay", "0.2"]),
                         log=cfg.tmp / "slow.log")
    for srv, name in ((infra[0], "h0.cache.bench.test"), (infra[1], "x.slow.bench.test")):
        why = wait_ready(srv, name, 10)
        if why:
            raise SystemExit(f"cannot start the {srv.label}: {why}")


def start_server(cfg: Config, srv: Server) -> None:
    values = {"PORT": srv.port, "UPSTREAM_PORT": cfg.ports["upstream"], "SLOW_PORT": cfg.ports["slow"]}
    up = f"{LOOPBACK}:{cfg.ports['upstream']}"
    log = cfg.tmp / f"{srv.key}.log"
    if srv.key.startswith("pycorefile"):
        if cfg.pyc_env is None:
            return
        name = "node-local-prometheus.Corefile" if srv.key.endswith("+prom") else "node-local.Corefile"
        if srv.key.endswith("+prom"):
            values["METRICS_PORT"] = free_port()
        conf = render(BENCH / "corefiles" / name, cfg.tmp / name, values)
        env = dict(cfg.pyc_env, **{k: str(v) for k, v in values.items()})
        attempts = [[cfg.python, "-m", "pycorefile", "serve", "-conf", str(conf)]]
        script = Path(cfg.python).with_name("pycorefile")
        if script.exists():
            attempts.append([str(script), "serve", str(conf)])
        reasons = []
        for cmd in attempts:
            srv.proc = Proc(srv.key, taskset(cfg.server_cpu, cmd), log=log, env=env, cwd=cfg.tmp)
            why = wait_ready(srv, "api.bench.local", 15)
            if not why:
                return
            reasons.append(why)
            srv.proc.stop()
            PROCS.remove(srv.proc)
            srv.proc = None
            if "__main__" not in why:  # only a missing `python -m` entry point is worth a retry
                break
        srv.unavailable = "serve failed: " + reasons[0]
        return
    if srv.key == "dnsmasq":
        conf = render(BENCH / "dnsmasq" / "local.conf", cfg.tmp / "local.conf", values)
        cmd = peers.dnsmasq_command(conf)
    elif srv.key == "dnslib":
        cmd = [cfg.python, str(BENCH / "peers.py"), "dnslib", "--port", str(srv.port),
               "--upstream", up, "--slow", f"{LOOPBACK}:{cfg.ports['slow']}"]
    elif srv.key == "limit":
        cmd = [cfg.python, str(BENCH / "peers.py"), "bare", "--port", str(srv.port),
               "--upstream", up, "--loop", cfg.bare_loop]
    else:
        raise ValueError(srv.key)
    srv.proc = Proc(srv.key, taskset(cfg.server_cpu, cmd), log=log)
    why = wait_ready(srv, "api.bench.local", 10)
    if why:
        srv.unavailable = why
        srv.proc.stop()


# =======================================================================================
# Scenarios over UDP

EXPECTED = {
    "template": ("NOERROR", peers.TEMPLATE_IP),
    "cache": ("NOERROR", "10.0.1.1"),
    "forward": ("NOERROR", "10.0.1.2"),
    "slow": ("NOERROR", peers.SLOW_IP),
}


def query_names(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def write_unique(cfg: Config, zone: str, tag: str, n: int) -> Path:
    path = cfg.tmp / f"{tag}.{zone}.txt"
    with open(path, "w") as f:
        f.writelines(f"u{i}-{tag}.{zone} A\n" for i in range(n))
    return path


def verify(cfg: Config, servers: list[Server], scenario: str, names: list[str]) -> None:
    """Every server must give the expected answer for a sample of the scenario's names."""
    rcode, addr = EXPECTED[scenario]
    want = f"{rcode} {addr}"
    for srv in servers:
        for name in names:
            got = summarize_answer(query(srv.port, name, timeout=2.0))
            if got != want:
                srv.wrong[scenario] = f"{name}: got {got}, want {want}"
                break


def measure_closed(cfg: Config, srv: Server, qfile: Path, duration: float, *,
                   max_runs: int | None = None) -> dict[str, Any]:
    pids = srv.pids()
    c0, t0 = cpu_seconds(pids), time.monotonic()
    r = run_dnsperf(dnsperf_cmd(cfg, srv.port, qfile, duration=duration, outstanding=100,
                                timeout=2, max_runs=max_runs), duration)
    wall = time.monotonic() - t0
    cpu = cpu_seconds(pids) - c0
    out: dict[str, Any] = {
        "qps": r.qps, "completed": r.completed, "sent": r.sent, "lost": r.lost,
        "cpu_s": round(cpu, 3), "wall_s": round(wall, 3), "rcodes": r.rcodes,
        "answers_per_cpu_s": (r.completed / cpu) if cpu > 0 else None,
        "cpu_pct": 100 * cpu / r.runtime if r.runtime else None,
    }
    if r.error:
        out["error"] = r.error
    return out


def measure_latency(cfg: Config, srv: Server, qfile: Path, duration: float,
                    rate: int = LATENCY_QPS) -> dict[str, Any]:
    r = run_dnsperf(dnsperf_cmd(cfg, srv.port, qfile, duration=duration, qps=rate,
                                outstanding=1000, timeout=1, verbose=True), duration)
    return _latency_dict(r, rate)


def _latency_dict(r: PerfResult, rate: int) -> dict[str, Any]:
    p50, p99 = r.pct(50), r.pct(99)
    return {"rate": rate, "sent": r.sent, "lost": r.lost, "samples": len(r.latencies),
            "p50_ms": p50 * 1000 if p50 is not None else None,
            "p99_ms": p99 * 1000 if p99 is not None else None,
            "error": r.error or None}


def open_loop_step(cfg: Config, srv: Server, qfile: Path, rate: int, duration: float) -> dict[str, Any]:
    # Outstanding limit = 50 ms of traffic: enough to keep sending through a short server
    # stall (that is what makes it open-loop), small enough to avoid dnsperf's own bursts.
    outstanding = max(200, min(10000, rate // 20))
    r = run_dnsperf(dnsperf_cmd(cfg, srv.port, qfile, duration=duration, qps=rate,
                                outstanding=outstanding, timeout=0.5), duration)
    expected = rate * duration
    gen_limited = r.sent < 0.97 * expected
    ok = not r.error and r.sent > 0 and r.loss < LOSS_LIMIT and not gen_limited
    return {"rate": rate, "sent": r.sent, "lost": r.lost, "loss": r.loss, "pass": ok,
            "generator_limited": gen_limited, "error": r.error or None}


class Ladder:
    """Bisect the rungs between "assumed loss-free" (below the first rung) and "assumed
    lossy" (the first rung above the closed-loop qps, which dnsperf cannot exceed anyway).
    Result: the highest rung that passed, exact when the bracket closed within max_steps,
    else a lower bound ("at least")."""

    def __init__(self, closed_qps: float | None, max_steps: int) -> None:
        ceiling = (closed_qps or 0) * 1.05
        self.lo = -1  # index of the best rung that passed (-1: none yet)
        self.hi = next((i for i, r in enumerate(RUNGS) if r > ceiling), len(RUNGS))
        self.hi = max(self.hi, 1)
        self.max_steps = max_steps
        self.steps: list[dict[str, Any]] = []
        self.note = ""
        self.failed: set[int] = set()  # rung indexes actually tried and lossy

    @property
    def done(self) -> bool:
        return self.hi - self.lo <= 1 or len(self.steps) >= self.max_steps

    @property
    def rate(self) -> int:
        return RUNGS[(self.lo + self.hi) // 2]

    def record(self, step: dict[str, Any]) -> None:
        self.steps.append(step)
        mid = (self.lo + self.hi) // 2
        if step["pass"]:
            self.lo = mid
        else:
            self.hi = mid
            self.failed.add(mid)
            if step.get("generator_limited") and step.get("lost", 0) <= step.get("sent", 0) * LOSS_LIMIT:
                self.note = "load generator limit"

    def result(self) -> dict[str, Any]:
        best = RUNGS[self.lo] if self.lo >= 0 else 0
        exact = self.hi - self.lo <= 1
        upper = RUNGS[self.hi] if self.hi < len(RUNGS) else None
        tried = self.hi in self.failed
        return {"rate": best, "exact": exact, "next_rung_failed": upper if exact and tried else None,
                "bracket": [best, upper], "note": self.note,
                "below_first_rung": self.lo < 0 and exact, "steps": self.steps}


def udp_scenario(cfg: Config, scenario: str, servers: list[Server]) -> dict[str, Any]:
    P = cfg.profile
    res: dict[str, Any] = {"servers": {}, "notes": []}
    live = [s for s in servers if not s.unavailable and scenario in s.scenarios]
    for s in servers:
        row: dict[str, Any] = {"label": s.label, "role": s.role}
        if s.unavailable:
            row["unavailable"] = s.unavailable
        elif scenario not in s.scenarios:
            row["unavailable"] = "n/a for this scenario"
        res["servers"][s.key] = row

    if scenario == "template":
        qfile = BENCH / "queries" / "template.txt"
    elif scenario == "cache":
        qfile = BENCH / "queries" / "cache.txt"
    else:
        qfile = BENCH / "queries" / "template.txt"  # local-answer latency in forward
    names = query_names(qfile)

    # warm up (fills caches and memo tables), then check the answers
    if scenario in ("template", "cache"):
        for s in live:
            run_dnsperf(dnsperf_cmd(cfg, s.port, qfile, max_runs=1, outstanding=20, timeout=2), 10)
        sample = names[:: max(1, len(names) // 25)][:25]
        verify(cfg, live, scenario, sample)
    else:
        for s in live:
            warm = write_unique(cfg, "fwd.bench.test", f"warm-{s.key.replace('+', '')}", 200)
            run_dnsperf(dnsperf_cmd(cfg, s.port, warm, max_runs=1, outstanding=20, timeout=2), 10)
        verify(cfg, live, "forward", [f"check{i}.fwd.bench.test" for i in range(5)])
        verify(cfg, [s for s in live if "forward" not in s.wrong], "slow",
               [f"check{i}.slow.bench.test" for i in range(2)])
        for s in live:
            if "slow" in s.wrong:
                res["notes"].append(f"{s.label}: slow-upstream check skipped, wrong answer: "
                                    + s.wrong["slow"])
    for s in live:
        if scenario in s.wrong:
            res["servers"][s.key]["unavailable"] = "wrong answer: " + s.wrong[scenario]
    live = [s for s in live if scenario not in s.wrong]
    if not live:
        return res

    # 1. closed loop, interleaved rounds (rotating the order), best round kept
    rounds: dict[str, list[dict[str, Any]]] = {s.key: [] for s in live}
    for rnd in range(P["fwd_rounds"] if scenario == "forward" else P["rounds"]):
        order = live[rnd % len(live):] + live[: rnd % len(live)]
        for s in order:
            say(f"  {scenario}: closed loop {s.label} (round {rnd + 1})")
            if scenario == "forward":
                n = int(60000 * P["fwd_s"]) + 1000
                qf = write_unique(cfg, "fwd.bench.test", f"{s.key.replace('+', '')}-r{rnd}", n)
                m = measure_closed(cfg, s, qf, P["fwd_s"], max_runs=1)
                qf.unlink()
            else:
                m = measure_closed(cfg, s, qfile, P["closed_s"])
            rounds[s.key].append(m)
    for s in live:
        best = max(rounds[s.key], key=lambda m: m["answers_per_cpu_s"] or 0)
        row = res["servers"][s.key]
        row["closed"] = best
        row["closed_rounds"] = rounds[s.key]
        bad = {k: v for k, v in best["rcodes"].items() if k != "NOERROR"}
        if bad:
            res["notes"].append(f"{s.label}: non-NOERROR answers in the closed-loop run: {bad}")

    # 1b. the cost of metrics: pycorefile and pycorefile+prom loaded side by side.
    # Run-to-run noise on a shared machine is larger than the difference being measured,
    # so the two rows of step 1 are not compared with each other for this.
    pair = [s for s in live if s.key == "pycorefile"] + [s for s in live if s.key == "pycorefile+prom"]
    if len(pair) == 2 and P["ab_runs"]:
        if scenario == "forward":
            # Fresh unique names every run; each server has its own cache, so both
            # can be sent the same ones.
            def names_for(run: int) -> Path:
                return write_unique(cfg, "fwd.bench.test", f"ab-r{run}", int(8000 * P["ab_s"]) + 1000)
        else:
            def names_for(run: int) -> Path:
                return qfile
        res["prometheus_ab"] = paired_ratio(cfg, scenario, pair[0], pair[1], names_for,
                                            P["ab_runs"], P["ab_s"])

    # 2. latency at 2000 qps
    if scenario in ("template", "cache") or P["fwd_latency"]:
        for s in live:
            say(f"  {scenario}: latency at {LATENCY_QPS} qps {s.label}")
            if scenario == "forward":
                qf = write_unique(cfg, "fwd.bench.test", f"lat-{s.key.replace('+', '')}",
                                  int(LATENCY_QPS * P["latency_s"] * 1.1) + 100)
                res["servers"][s.key]["latency"] = measure_latency(cfg, s, qf, P["latency_s"])
            else:
                res["servers"][s.key]["latency"] = measure_latency(cfg, s, qfile, P["latency_s"])

    # 3. forward only: local answers while a slow upstream is queried
    if scenario == "forward":
        for s in [s for s in live if "slow" not in s.wrong]:
            say(f"  forward: local latency with a slow upstream {s.label}")
            res["servers"][s.key]["slow_upstream"] = slow_upstream_check(cfg, s)

    # 4. open-loop ladder, interleaved step by step
    if scenario in ("template", "cache"):
        ladders = {s.key: Ladder(res["servers"][s.key]["closed"]["qps"], P["max_steps"])
                   for s in live}
        while any(not lad.done for lad in ladders.values()):
            for s in live:
                lad = ladders[s.key]
                if lad.done:
                    continue
                say(f"  {scenario}: open loop {s.label} at {lad.rate} qps")
                lad.record(open_loop_step(cfg, s, qfile, lad.rate, P["step_s"]))
                time.sleep(0.2)
        for s in live:
            res["servers"][s.key]["loss_free"] = ladders[s.key].result()

    # 5. peak RSS so far (VmHWM)
    for s in live:
        hwm, nproc = vm_hwm_mb(s.pids())
        res["servers"][s.key]["peak_rss_mb"] = hwm
        res["servers"][s.key]["processes"] = nproc
    return res


def paired_ratio(cfg: Config, scenario: str, base: Server, other: Server,
                 names_for: Callable[[int], Path], runs: int, duration: float) -> dict[str, Any]:
    """answers/CPU-s of ``other`` over ``base``, both loaded at the same time.

    Both servers share the server CPU and each gets its own dnsperf (half the
    clients), so every run measures the two under the same conditions: a slow
    moment of a shared machine slows both. Each run gives one ratio; the median
    and the range are reported.
    """
    clients = max(1, cfg.clients // 2)
    ratios: list[float] = []
    extra_us: list[float] = []  # CPU per answer added by ``other``, in µs
    for i in range(runs):
        say(f"  {scenario}: side-by-side run {i + 1}/{runs} {base.label} + {other.label}")
        qfile = names_for(i)
        pids = {s.key: s.pids() for s in (base, other)}
        c0 = {k: cpu_seconds(v) for k, v in pids.items()}
        procs = {s.key: subprocess.Popen(
            dnsperf_cmd(cfg, s.port, qfile, duration=duration, outstanding=100, timeout=2,
                        clients=clients),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for s in (base, other)}
        outs = {}
        for k, p in procs.items():
            try:
                outs[k] = parse_dnsperf(p.communicate(timeout=duration + 15)[0])
            except subprocess.TimeoutExpired:
                p.kill()
                outs[k] = PerfResult(error="dnsperf timed out")
        per_cpu = {}
        for k, r in outs.items():
            cpu = cpu_seconds(pids[k]) - c0[k]
            per_cpu[k] = r.completed / cpu if cpu > 0 and not r.error else None
        if scenario == "forward":
            qfile.unlink()
        if per_cpu[base.key] and per_cpu[other.key]:
            ratios.append(per_cpu[other.key] / per_cpu[base.key])
            extra_us.append(1e6 / per_cpu[other.key] - 1e6 / per_cpu[base.key])
    if not ratios:
        return {"error": "no complete run"}
    ratios.sort()
    return {"runs": len(ratios), "seconds": duration, "median": statistics.median(ratios),
            "min": ratios[0], "max": ratios[-1], "ratios": ratios,
            "extra_us": statistics.median(extra_us)}


def slow_upstream_check(cfg: Config, srv: Server) -> dict[str, Any]:
    P = cfg.profile
    dur = P["slow_s"]
    slow_rate = 200
    slow_file = write_unique(cfg, "slow.bench.test", f"s-{srv.key.replace('+', '')}",
                             int(slow_rate * (dur + 1.5)) + 100)
    bg_cmd = dnsperf_cmd(cfg, srv.port, slow_file, duration=dur + 0.5, qps=slow_rate,
                         outstanding=2000, timeout=3, clients=4)
    bg = Proc(f"dnsperf-slow-{srv.key}", bg_cmd, log=cfg.tmp / f"dnsperf-slow-{srv.key}.log",
              new_session=False)
    try:
        time.sleep(0.3)
        fg = run_dnsperf(dnsperf_cmd(cfg, srv.port, BENCH / "queries" / "template.txt",
                                     duration=dur, qps=LATENCY_QPS, outstanding=1000,
                                     timeout=1, verbose=True), dur)
        bg.popen.wait(dur + 15)
    finally:
        bg.stop()
        if bg in PROCS:
            PROCS.remove(bg)
    slow = parse_dnsperf(bg.log.read_text(errors="replace"))
    out = _latency_dict(fg, LATENCY_QPS)
    out["slow_sent"], out["slow_completed"] = slow.sent, slow.completed
    return out


# =======================================================================================
# In-process ("parse" scenario): run in a separate pinned interpreter


INPROC_ROWS = [
    # key, label, anchor key, unit
    ("loads_cold", "pycorefile.loads(Corefile), first call", None),
    ("loads_warm", "pycorefile.loads(Corefile), again", None),
    ("from_corefile", "Resolver.from_corefile(text)", None),
    ("resolve_template", "Resolver.resolve() template answer", "dnslib_template"),
    ("resolve_cache", "Resolver.resolve() cache hit", "dnslib_cache"),
    ("handle_template", "Resolver.handle() bytes->bytes, template", "dnslib_wire"),
    ("handle_cache", "Resolver.handle() bytes->bytes, cache hit", "dnslib_wire"),
]
ANCHOR_ROWS = [
    # key, label, short name for the "anchor" column
    ("dnslib_template", "dnslib in-process template answer", "dnslib template"),
    ("dnslib_cache", "dnslib in-process cache hit", "dnslib cache hit"),
    ("dnslib_wire", "dnslib parse + build + pack (wire)", "dnslib wire"),
    ("bare_wire", "bare question parse + dict + ID patch", "bare wire"),
]


TIME_PER_REPEAT = 0.4  # seconds; the worker sets it from --_budget


def _timeit(fn, args: list[Any], n: int, repeat: int) -> float:
    """Best-of-repeat seconds per call, cycling over args; at most n calls per repeat and
    about TIME_PER_REPEAT seconds (but always every arg at least once)."""
    k = min(len(args), 100)
    t = time.perf_counter()
    for a in args[:k]:
        fn(a)
    per_call = max((time.perf_counter() - t) / k, 1e-9)
    n = max(len(args), min(n, int(TIME_PER_REPEAT / per_call)))
    seq = (args * (n // len(args) + 1))[:n]
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for a in seq:
            fn(a)
        best = min(best, time.perf_counter() - t)
    return best / n


class _Broken:
    def __init__(self, why: str) -> None:
        self.why = why

    def __getattr__(self, name: str):
        raise RuntimeError(self.why)


def inproc_worker(which: str, corefile: str, upstream_port: int, n: int, repeat: int) -> dict[str, Any]:
    """Runs inside the pinned child interpreter; returns {row: {"us": ..} or {"error": ..}}."""
    from dnslib import DNSRecord

    tnames = query_names(BENCH / "queries" / "template.txt")
    cnames = query_names(BENCH / "queries" / "cache.txt")
    tqueries = [bytes(DNSRecord.question(x, "A").pack()) for x in tnames]
    cqueries = [bytes(DNSRecord.question(x, "A").pack()) for x in cnames]
    out: dict[str, Any] = {}

    def check(reply, want: str) -> None:
        got = summarize_answer(reply)
        if got != want:
            raise AssertionError(f"wrong answer: got {got}, want {want}")

    def row(key: str, fn) -> None:
        try:
            out[key] = {"us": fn() * 1e6}
        except Exception as e:  # noqa: BLE001 - reported, not raised
            out[key] = {"error": reason_line(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")}

    if which == "anchors":
        tmpl = peers.DnslibTemplate()
        cache = peers.DnslibCache((LOOPBACK, upstream_port))

        def dnslib_template():
            check(tmpl.resolve(tnames[1], "A"), f"NOERROR {peers.TEMPLATE_IP}")
            return _timeit(tmpl.resolve, tnames, n // 4, repeat)

        def dnslib_cache():
            for x in cnames:
                cache.resolve_name(x, "A")
            check(cache.resolve_name(cnames[1], "A"), "NOERROR 10.0.1.1")
            return _timeit(cache.resolve_name, cnames, n, repeat)

        def wire(q: bytes) -> bytes:
            return tmpl.answer(DNSRecord.parse(q)).pack()

        def dnslib_wire():
            check(DNSRecord.parse(wire(tqueries[1])), f"NOERROR {peers.TEMPLATE_IP}")
            return _timeit(wire, tqueries, n // 4, repeat)

        def bare_wire():
            bare = peers.BareCore((LOOPBACK, upstream_port))
            for q in tqueries:
                bare.handle(q)
            check(DNSRecord.parse(bare.handle(tqueries[1])), f"NOERROR {peers.TEMPLATE_IP}")
            return _timeit(bare.handle, tqueries, n * 4, repeat)

        row("dnslib_template", dnslib_template)
        row("dnslib_cache", dnslib_cache)
        row("dnslib_wire", dnslib_wire)
        row("bare_wire", bare_wire)
    else:
        t = time.perf_counter()
        import pycorefile

        out["import_ms"] = (time.perf_counter() - t) * 1000

        def once(fn):
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t

        row("loads_cold", lambda: once(lambda: pycorefile.loads(corefile)))
        row("loads_warm", lambda: _timeit(lambda _: pycorefile.loads(corefile), [0], 50, repeat))
        row("from_corefile", lambda: _timeit(lambda _: pycorefile.Resolver.from_corefile(corefile), [0], 5, 1))
        try:
            r = pycorefile.Resolver.from_corefile(corefile)
        except Exception as e:  # noqa: BLE001 - every row below reports it
            r = _Broken(f"from_corefile: {type(e).__name__}: {e}")

        def resolve_template():
            check(r.resolve(tnames[1], "A"), f"NOERROR {peers.TEMPLATE_IP}")
            return _timeit(lambda x: r.resolve(x, "A"), tnames, n, repeat)

        def resolve_cache():
            for x in cnames:
                r.resolve(x, "A")
            check(r.resolve(cnames[1], "A"), "NOERROR 10.0.1.1")
            return _timeit(lambda x: r.resolve(x, "A"), cnames, n, repeat)

        client = ("127.0.0.1", 5353)

        def handle_template():
            check(DNSRecord.parse(r.handle(tqueries[1], client=client, proto="udp")), f"NOERROR {peers.TEMPLATE_IP}")
            return _timeit(lambda q: r.handle(q, client=client, proto="udp"), tqueries, n, repeat)

        def handle_cache():
            check(DNSRecord.parse(r.handle(cqueries[1], client=client, proto="udp")), "NOERROR 10.0.1.1")
            return _timeit(lambda q: r.handle(q, client=client, proto="udp"), cqueries, n, repeat)

        row("resolve_template", resolve_template)
        row("resolve_cache", resolve_cache)
        row("handle_template", handle_template)
        row("handle_cache", handle_cache)
    hwm, _ = vm_hwm_mb([os.getpid()])
    out["peak_rss_mb"] = hwm
    return out


def parse_scenario(cfg: Config) -> dict[str, Any]:
    P = cfg.profile
    values = {"PORT": 0, "UPSTREAM_PORT": cfg.ports["upstream"], "SLOW_PORT": cfg.ports["slow"]}
    corefile = render(BENCH / "corefiles" / "node-local.Corefile", cfg.tmp / "inproc.Corefile", values)
    res: dict[str, Any] = {"anchors": {}, "pycorefile": {}}
    for which in ("anchors", "pycorefile"):
        if which == "pycorefile" and cfg.pyc_env is None:
            res["pycorefile"] = {"unavailable": cfg.pyc_source}
            continue
        say(f"  parse: in-process {which}")
        cmd = taskset(cfg.server_cpu, [cfg.python, str(Path(__file__).resolve()), "--_inproc", which,
                                       "--_corefile", str(corefile),
                                       "--_upstream", str(cfg.ports["upstream"]),
                                       "--_n", str(P["inproc_n"]), "--_repeat", str(P["inproc_repeat"]),
                                       "--_budget", str(P["inproc_budget"])])
        env = cfg.pyc_env if which == "pycorefile" else None
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cfg.tmp, timeout=240)
        except subprocess.TimeoutExpired:
            res[which] = {"unavailable": "in-process benchmark timed out"}
            continue
        try:
            res[which] = json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            res[which] = {"unavailable": reason_line(p.stderr) or "no output"}
    return res


# =======================================================================================
# Output


def fmt_num(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "-"
    if digits == 0 and abs(x) >= 10000:
        return f"{x / 1000:.1f}k"
    return f"{x:,.{digits}f}"


def fmt_us(us: float) -> str:
    if us >= 1000:
        return f"{us / 1000:,.1f} ms"
    return f"{us:.2f} us" if us < 100 else f"{us:.1f} us"


def fmt_ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    r = a / b
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x"


def _get(row: dict[str, Any], *path: str) -> Any:
    for p in path:
        if not isinstance(row, dict):
            return None
        row = row.get(p)  # type: ignore[assignment]
    return row


def loss_free_text(row: dict[str, Any]) -> str:
    lf = row.get("loss_free")
    if not lf:
        return "-"
    if lf["below_first_rung"]:
        return f"<{fmt_num(RUNGS[0])}"
    txt = fmt_num(lf["rate"]) if lf["rate"] else "?"
    if not lf["exact"]:
        lo, hi = lf["bracket"]
        return f"{fmt_num(lo) if lo else '<'}..{fmt_num(hi) if hi else ''}".replace("<..", "<")
    if lf["note"] or lf["next_rung_failed"] is None:
        txt = ">=" + txt  # dnsperf could not send the next rung
    return txt


TITLES = {
    "template": "template: local answers (api.bench.local, *.apps.bench.local A)",
    "cache": "cache: cache hits (1000 names, warmed), forward+cache in front of dnsmasq",
    "forward": "forward: cache misses (unique names) to the upstream dnsmasq",
}


def print_udp_table(scenario: str, res: dict[str, Any], servers: list[Server]) -> list[str]:
    rows = res["servers"]
    lines = [f"== {TITLES[scenario]} =="]
    anchor = {k: _get(rows.get(k, {}), "closed", "answers_per_cpu_s") for k in ("dnsmasq", "dnslib")}
    if scenario == "forward":
        hdr = ["server", "qps", "ans/CPU-s", "vs dnsmasq", "vs dnslib", "cpu%", "p50 ms", "p99 ms",
               "local p99 +slow", "RSS MB"]
    else:
        hdr = ["server", "qps", "ans/CPU-s", "vs dnsmasq", "vs dnslib", "cpu%", "p50 ms", "p99 ms",
               "loss-free q/s", "RSS MB"]
    table = [hdr]
    for s in servers:
        row = rows.get(s.key, {})
        if row.get("unavailable"):
            why = row["unavailable"]
            table.append([s.label, f"not available: {why}" if s.unavailable else why])
            continue
        apc = _get(row, "closed", "answers_per_cpu_s")
        cells = [
            s.label,
            fmt_num(_get(row, "closed", "qps")),
            fmt_num(apc),
            fmt_ratio(apc, anchor["dnsmasq"]),
            fmt_ratio(apc, anchor["dnslib"]),
            fmt_num(_get(row, "closed", "cpu_pct")),
            fmt_num(_get(row, "latency", "p50_ms"), 3),
            fmt_num(_get(row, "latency", "p99_ms"), 3),
        ]
        if scenario == "forward":
            cells.append(fmt_num(_get(row, "slow_upstream", "p99_ms"), 3))
        else:
            cells.append(loss_free_text(row))
        rss = row.get("peak_rss_mb")
        cells.append(fmt_num(rss, 1) + (f" x{row['processes']}" if (row.get("processes") or 1) > 1 else ""))
        table.append(cells)
    lines += _layout(table)
    # ratio lines for pycorefile rows
    for s in servers:
        if s.role != "target":
            continue
        row = rows.get(s.key, {})
        if row.get("unavailable"):
            continue
        for ak, alabel in (("dnsmasq", "dnsmasq"), ("dnslib", "dnslib")):
            a = rows.get(ak, {})
            if a.get("unavailable") or "closed" not in a:
                continue
            parts = [f"ans/CPU-s {fmt_ratio(_get(row, 'closed', 'answers_per_cpu_s'), _get(a, 'closed', 'answers_per_cpu_s'))}",
                     f"qps {fmt_ratio(_get(row, 'closed', 'qps'), _get(a, 'closed', 'qps'))}"]
            if scenario != "forward":
                parts.append(f"loss-free {fmt_ratio(_get(row, 'loss_free', 'rate'), _get(a, 'loss_free', 'rate'))}")
            parts.append(f"p99 {fmt_ratio(_get(row, 'latency', 'p99_ms'), _get(a, 'latency', 'p99_ms'))}")
            parts.append(f"RSS {fmt_ratio(row.get('peak_rss_mb'), a.get('peak_rss_mb'))}")
            parts = [x for x in parts if not x.endswith(" -")]
            lines.append(f"  {s.label}/{alabel}: " + ", ".join(parts))
        if s.key == "pycorefile+prom":
            base = rows.get("pycorefile", {})
            ab = res.get("prometheus_ab", {})
            if "median" in ab:
                lines.append(f"  {s.label}/pycorefile: ans/CPU-s {ab['median']:.2f}x, median of "
                             f"{ab['runs']} side-by-side runs (range {ab['min']:.2f}-{ab['max']:.2f}x; "
                             f"prometheus target >= 0.85x, floor 0.7x)")
                solo = _get(base, "closed", "answers_per_cpu_s")
                if solo:
                    # The runs above share one CPU, which adds the same cost to both servers
                    # and so flatters the ratio a little: apply the measured extra CPU per
                    # answer to the plain server's own rate instead.
                    implied = (1e6 / solo) / (1e6 / solo + ab["extra_us"])
                    lines.append(f"  {s.label}/pycorefile: +{ab['extra_us']:.2f} us CPU per answer; "
                                 f"on pycorefile's own {fmt_num(solo)} ans/CPU-s that is {implied:.2f}x")
            elif "closed" in base:
                lines.append(f"  {s.label}/pycorefile: ans/CPU-s "
                             f"{fmt_ratio(_get(row, 'closed', 'answers_per_cpu_s'), _get(base, 'closed', 'answers_per_cpu_s'))}"
                             f" (prometheus target >= 0.85x, floor 0.7x)")
    for note in res.get("notes", []):
        lines.append(f"  note: {note}")
    return lines


def print_parse_table(res: dict[str, Any]) -> list[str]:
    lines = ["== parse: in-process (Corefile parse, Resolver.resolve/handle) =="]
    anchors, pyc = res.get("anchors", {}), res.get("pycorefile", {})
    table = [["measurement", "time/op", "ops/s", "vs anchor", "anchor", "vs bare wire"]]
    short = {k: sh for k, _, sh in ANCHOR_ROWS}
    for key, label, _ in ANCHOR_ROWS:
        a = anchors.get(key, {})
        if "us" in a:
            table.append([label + " (anchor)", fmt_us(a["us"]), fmt_num(1e6 / a["us"]), "1.00x", "", ""])
        else:
            table.append([label + " (anchor)", a.get("error") or anchors.get("unavailable", "-")])
    if "unavailable" in pyc:
        table.append(["pycorefile", "not available: " + pyc["unavailable"]])
    else:
        for key, label, akey in INPROC_ROWS:
            m = pyc.get(key, {})
            if "us" not in m:
                table.append([label, m.get("error", "-")])
                continue
            a = anchors.get(akey, {}) if akey else {}
            us = m["us"]
            if key.startswith("loads") or key == "from_corefile":
                table.append([label, fmt_us(us), fmt_num(1e6 / us), "-", "", ""])
            else:
                bare = _get(anchors, "bare_wire", "us") if key.startswith("handle") else None
                table.append([label, fmt_us(us), fmt_num(1e6 / us),
                              fmt_ratio(a.get("us"), us) if "us" in a else "-",
                              short.get(akey or "", ""), fmt_ratio(bare, us) if bare else ""])
        if pyc.get("import_ms") is not None:
            lines.append(f"  import pycorefile: {pyc['import_ms']:.0f} ms, worker peak RSS "
                         f"{fmt_num(pyc.get('peak_rss_mb'), 1)} MB")
    lines[1:1] = _layout(table)
    lines.append("  vs anchor = anchor time / pycorefile time (above 1.00x: pycorefile is faster)")
    return lines


def _layout(table: list[list[str]]) -> list[str]:
    full = [r for r in table if len(r) == len(table[0])]
    widths = [max(len(r[i]) for r in full) for i in range(len(table[0]))]
    out = []
    for r in table:
        if len(r) != len(table[0]):
            out.append(f"{r[0]:<{widths[0]}}  " + "  ".join(r[1:]))
            continue
        out.append("  ".join([f"{r[0]:<{widths[0]}}"] + [f"{c:>{w}}" for c, w in zip(r[1:], widths[1:], strict=True)]))
    return out


# =======================================================================================


def tool_version(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(r"[Vv]ersion\s+(\S+)", p.stdout + p.stderr)
    return m.group(1) if m else "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short run (about a minute)")
    ap.add_argument("--scenario", default=",".join(SCENARIOS),
                    help="comma-separated subset of: " + ",".join(SCENARIOS))
    ap.add_argument("--duration", type=float,
                    help="seconds per closed-loop run (latency and forward runs use the same; "
                         "open-loop steps half of it)")
    ap.add_argument("--json", metavar="PATH", help="also write all results as JSON")
    ap.add_argument("--servers", help="comma-separated subset of: pycorefile,pycorefile+prom,dnsmasq,dnslib,limit")
    ap.add_argument("--prometheus", action=argparse.BooleanOptionalAction, default=None,
                    help="include the pycorefile+prometheus row (default: full runs only)")
    ap.add_argument("--clients", type=int, default=8, help="dnsperf -c (default 8)")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--bare-loop", choices=("uvloop", "blocking", "asyncio"), default="uvloop",
                    help="event loop of the Python-limit responder (default uvloop)")
    ap.add_argument("--keep-logs", action="store_true", help="keep the server logs and configs")
    # internal: the in-process worker
    ap.add_argument("--_inproc", help=argparse.SUPPRESS)
    ap.add_argument("--_corefile", help=argparse.SUPPRESS)
    ap.add_argument("--_upstream", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--_n", type=int, default=20000, help=argparse.SUPPRESS)
    ap.add_argument("--_repeat", type=int, default=3, help=argparse.SUPPRESS)
    ap.add_argument("--_budget", type=float, default=0.4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._inproc:
        global TIME_PER_REPEAT
        TIME_PER_REPEAT = args._budget
        out = inproc_worker(args._inproc, Path(args._corefile).read_text(), args._upstream,
                            args._n, args._repeat)
        print(json.dumps(out))
        return 0

    scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
    bad = [s for s in scenarios if s not in SCENARIOS]
    if bad:
        ap.error(f"unknown scenario(s) {bad}; choose from {','.join(SCENARIOS)}")
    profile = dict(PROFILES["quick" if args.quick else "full"])
    if args.duration:
        d = args.duration
        profile.update(closed_s=d, latency_s=d, fwd_s=d, slow_s=d, step_s=max(0.5, d / 2))
    if args.prometheus is not None:
        profile["prometheus"] = args.prometheus
    for tool in ("dnsperf", "dnsmasq"):
        if not shutil.which(tool):
            ap.error(f"{tool} is not installed (Debian: apt-get install {tool})")

    ncpu = os.cpu_count() or 1
    server_cpu, client_cpu = args.server_cpu, args.client_cpu
    if ncpu < 2:
        say("warning: one CPU only; server and load generator share it")
        server_cpu = client_cpu = 0

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)  # also when started with SIGINT ignored (background)
    atexit.register(stop_all)
    tmp = Path(tempfile.mkdtemp(prefix="pycorefile-bench-"))
    cfg = Config(profile=profile, scenarios=scenarios, server_cpu=server_cpu, client_cpu=client_cpu,
                 clients=args.clients, tmp=tmp, python=sys.executable, bare_loop=args.bare_loop,
                 keep_logs=args.keep_logs)
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {client_cpu})  # keep the harness off the server CPU

    t_start = time.monotonic()
    report: dict[str, Any] = {
        "meta": {
            "profile": "quick" if args.quick else "full",
            "params": profile, "clients": args.clients, "cpus": ncpu,
            "server_cpu": server_cpu, "client_cpu": client_cpu,
            "dnsperf": tool_version(["dnsperf", "-h"]), "dnsmasq": tool_version(["dnsmasq", "--version"]),
            "python": platform.python_version(), "bare_loop": args.bare_loop,
            "kernel": platform.release(),
            "rmem_default": _read_int("/proc/sys/net/core/rmem_default"),
            "rmem_max": _read_int("/proc/sys/net/core/rmem_max"),
        },
        "scenarios": {},
    }
    out_lines: list[str] = []
    try:
        env, where, why = pycorefile_env()
        cfg.pyc_env, cfg.pyc_source = env, (where if env else why)
        report["meta"]["pycorefile"] = where if env else f"not available: {why}"
        say(f"pycorefile: {report['meta']['pycorefile']}")

        start_infra(cfg)
        servers = [
            Server("pycorefile", "pycorefile", "target"),
            Server("pycorefile+prom", "pycorefile+prom", "target"),
            Server("dnsmasq", "dnsmasq", "anchor"),
            Server("dnslib", "dnslib DNSServer", "anchor"),
            Server("limit", f"Python limit ({args.bare_loop})", "anchor",
                   scenarios=("template", "cache")),
        ]
        wanted = set(args.servers.split(",")) if args.servers else None
        if not profile["prometheus"] and not (wanted and "pycorefile+prom" in wanted):
            servers = [s for s in servers if s.key != "pycorefile+prom"]
        if wanted:
            servers = [s for s in servers if s.key in wanted]
        udp = [s for s in scenarios if s != "parse"]
        if udp:
            for s in servers:
                s.port = free_port()
                if s.key.startswith("pycorefile") and env is None:
                    s.unavailable = why
                    continue
                say(f"starting {s.label} on 127.0.0.1:{s.port}")
                start_server(cfg, s)
                if s.unavailable:
                    say(f"  {s.label}: not available: {s.unavailable}")
        for scenario in scenarios:
            say(f"scenario {scenario}")
            t_scn = time.monotonic()
            if scenario == "parse":
                res = parse_scenario(cfg)
                lines = print_parse_table(res)
            else:
                res = udp_scenario(cfg, scenario, servers)
                lines = print_udp_table(scenario, res, servers)
            res["elapsed_s"] = round(time.monotonic() - t_scn, 1)
            say(f"scenario {scenario}: {res['elapsed_s']:.0f} s")
            report["scenarios"][scenario] = res
            print("\n".join(lines) + "\n", flush=True)
            out_lines += lines
    except KeyboardInterrupt:
        say("interrupted; stopping servers")
        return 130
    finally:
        stop_all()
        elapsed = time.monotonic() - t_start
        report["meta"]["elapsed_s"] = round(elapsed, 1)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
        if args.keep_logs:
            say(f"logs and configs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    m = report["meta"]
    print(f"dnsperf {m['dnsperf']}, dnsmasq {m['dnsmasq']}, Python {m['python']}; servers on CPU "
          f"{server_cpu}, dnsperf on CPU {client_cpu}; {m['profile']} run, {m['elapsed_s']:.0f} s"
          + (f"; JSON: {args.json}" if args.json else ""))
    return 0


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    sys.exit(main())
