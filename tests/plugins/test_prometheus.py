"""prometheus, health and ready: setup, labels, buckets, per-resolver registries."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

import pycorefile
from pycorefile import CorefileError
from pycorefile.metrics import DURATION_BUCKETS, SIZE_BUCKETS

BLOCKS = """
api.custom-dns.local:1053 {
    prometheus
    erratic {
        drop 0
    }
}
apps.custom-dns.local:1053 {
    prometheus
    errors
    whoami
}
.:1053 {
    prometheus :9153
    log
}
"""


def families(resolver) -> dict:
    text = resolver.metrics.exposition().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fams: dict, name: str, sample: str | None = None) -> list:
    fam = fams[name]
    return [s for s in fam.samples if sample is None or s.name == sample]


@pytest.fixture
def resolver():
    with pycorefile.Resolver.from_corefile(BLOCKS) as r:
        yield r


def test_per_zone_request_and_response_labels(resolver) -> None:
    resolver.resolve("api.custom-dns.local", "A")
    resolver.resolve("x.apps.custom-dns.local", "AAAA")
    resolver.resolve("example.org", "MX")
    resolver.resolve("example.org", "NAPTR")
    fams = families(resolver)
    req = {(s.labels["zone"], s.labels["type"]): s for s in samples(fams, "coredns_dns_requests", "coredns_dns_requests_total")}
    assert set(req) == {("api.custom-dns.local.", "A"), ("apps.custom-dns.local.", "AAAA"), (".", "MX"), (".", "other")}
    s = req[("api.custom-dns.local.", "A")]
    assert s.labels == {"server": "dns://:1053", "zone": "api.custom-dns.local.", "view": "", "proto": "udp", "family": "1", "type": "A"}
    assert s.value == 1
    resp = {(s.labels["zone"], s.labels["rcode"], s.labels["plugin"]) for s in samples(fams, "coredns_dns_responses", "coredns_dns_responses_total")}
    # erratic answers; errors sits right after prometheus (1.14 plugin label);
    # "log" only passes on so its block ends in an unwritten SERVFAIL: plugin "".
    assert resp == {
        ("api.custom-dns.local.", "NOERROR", "erratic"),
        ("apps.custom-dns.local.", "NOERROR", "errors"),
        (".", "SERVFAIL", ""),
    }


def test_dropped_zone_for_refused_queries() -> None:
    with pycorefile.Resolver.from_corefile("example.org:1053 {\n whoami\n prometheus\n}\n") as r:
        assert r.resolve("google.com", "A").header.rcode == 5
        fams = families(r)
    resp = samples(fams, "coredns_dns_responses", "coredns_dns_responses_total")
    assert [(s.labels["zone"], s.labels["rcode"], s.labels["plugin"], s.value) for s in resp] == [
        ("dropped", "REFUSED", "", 1.0)
    ]


def test_histogram_buckets_are_coredns(resolver) -> None:
    resolver.resolve("api.custom-dns.local", "A")
    fams = families(resolver)
    les = [s.labels["le"] for s in samples(fams, "coredns_dns_request_duration_seconds", "coredns_dns_request_duration_seconds_bucket")]
    assert [float(x) for x in les[:-1]] == list(DURATION_BUCKETS) and les[-1] == "+Inf"
    assert les[0] == "0.00025" and les[-2] == "8.192"
    for name in ("coredns_dns_request_size_bytes", "coredns_dns_response_size_bytes"):
        fam_les = [s.labels["le"] for s in samples(fams, name, name + "_bucket")]
        assert [float(x) for x in fam_les[:-1]] == [float(b) for b in SIZE_BUCKETS]
        assert set(s.labels["proto"] for s in samples(fams, name, name + "_bucket")) == {"udp"}
    # An in-process query is ~33 bytes: it lands in the le=100 bucket.
    req_size = {s.labels["le"]: s.value for s in samples(fams, "coredns_dns_request_size_bytes", "coredns_dns_request_size_bytes_bucket")}
    assert req_size["0.0"] == 0 and req_size["100.0"] == 1


def test_build_info_plugin_enabled_and_panics(resolver) -> None:
    fams = families(resolver)
    build = samples(fams, "coredns_build_info")[0]
    assert build.value == 1 and set(build.labels) == {"version", "revision", "goversion"}
    enabled = {(s.labels["zone"], s.labels["name"]) for s in samples(fams, "coredns_plugin_enabled")}
    assert ("api.custom-dns.local.", "erratic") in enabled
    assert ("apps.custom-dns.local.", "errors") in enabled and ("apps.custom-dns.local.", "whoami") in enabled
    assert (".", "log") in enabled and (".", "prometheus") in enabled
    assert not any(name == "cache" for _, name in enabled)
    assert "coredns_panics" in fams


def test_do_bit_counted(resolver) -> None:
    resolver.resolve("api.custom-dns.local", "A", dnssec=True)
    fams = families(resolver)
    do = samples(fams, "coredns_dns_do_requests", "coredns_dns_do_requests_total")
    assert [(s.labels["zone"], s.value) for s in do] == [("api.custom-dns.local.", 1.0)]


def test_two_resolvers_do_not_share_metrics() -> None:
    a = pycorefile.Resolver.from_corefile(BLOCKS)
    b = pycorefile.Resolver.from_corefile(BLOCKS)
    try:
        for _ in range(3):
            a.resolve("api.custom-dns.local", "A")
        b.resolve("api.custom-dns.local", "A")
        def count(r):
            return r.metrics.sample("coredns_dns_requests_total", {"zone": "api.custom-dns.local."})
        assert count(a) == 3 and count(b) == 1
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    "text, message",
    [
        ("prometheus a b", "Wrong argument count"),
        ("prometheus nocolon", "missing port in address"),
        ("prometheus :9153 {\n bogus\n }", "unknown option: bogus"),
        ("prometheus :9153 {\n tls cfg.yaml\n }", "not supported by pycorefile"),
        ("prometheus\n prometheus :9154", "can only be used once per Server Block"),
        ("health a b", "Wrong argument count"),
        ("health nocolon", "missing port"),
        ("health :8080 {\n lameduck\n }", "Wrong argument count"),
        ("health :8080 {\n lameduck soon\n }", "unable to parse lameduck duration value"),
        ("health :8080 {\n other 1\n }", "unknown property 'other'"),
        ("ready a b", "Wrong argument count"),
        ("ready :8181 {\n monitor sometimes\n }", "monitor type 'sometimes' not supported"),
        ("ready :8181 {\n other\n }", "unknown property 'other'"),
        ("ready\n ready :8182", "can only be used once per Server Block"),
    ],
)
def test_setup_errors(text: str, message: str) -> None:
    with pytest.raises(CorefileError, match=message):
        pycorefile.loads(f".:1053 {{\n {text}\n whoami\n}}\n")


@pytest.mark.parametrize(
    "text",
    ["prometheus", "prometheus localhost:9153", "prometheus [::1]:9153", "prometheus :9153 {\n runtime_metrics\n }",
     "health", "health :8080 {\n lameduck 5s\n }", "ready", "ready 127.0.0.1:8181 {\n monitor continuously\n }"],
)
def test_setup_ok(text: str) -> None:
    pycorefile.loads(f".:1053 {{\n {text}\n whoami\n}}\n")


# -- the recorder: raw slots, folding, reads while recording -------------------------

FOLD = """
example.org:1053 {
    prometheus
    template IN ANY example.org {
        answer "{{ .Name }} 60 IN TXT \\"{{ .Name }}\\""
    }
}
"""


def totals(fams: dict) -> dict:
    """What the six coredns_dns_* series say, summed over their label sets."""
    out: dict = {}
    for s in samples(fams, "coredns_dns_requests", "coredns_dns_requests_total"):
        key = ("requests", s.labels["type"])
        out[key] = out.get(key, 0) + s.value
    for s in samples(fams, "coredns_dns_responses", "coredns_dns_responses_total"):
        out[("responses", s.labels["rcode"])] = out.get(("responses", s.labels["rcode"]), 0) + s.value
    for s in samples(fams, "coredns_dns_request_duration_seconds"):
        # Durations differ from run to run: only the count and the +Inf bucket are fixed.
        if s.name.endswith("_count") or s.labels.get("le") == "+Inf":
            key = (s.name, s.labels.get("le", ""))
            out[key] = out.get(key, 0) + s.value
    for name in ("coredns_dns_request_size_bytes", "coredns_dns_response_size_bytes"):
        for s in samples(fams, name):
            if s.name.endswith(("_count", "_sum")):
                key = (s.name, s.labels.get("proto", ""))
                out[key] = round(out.get(key, 0) + s.value, 9)
            elif s.name.endswith("_bucket"):
                key = (s.name, s.labels["le"])
                out[key] = out.get(key, 0) + s.value
    do = samples(fams, "coredns_dns_do_requests", "coredns_dns_do_requests_total")
    out["do"] = sum(s.value for s in do)
    return out


def test_requests_of_many_shapes_are_counted_exactly(monkeypatch) -> None:
    """Every name length and type gives its own raw slot; with a tiny limit they are
    folded into label-set totals many times over, and the totals stay exact."""
    from pycorefile.plugins import prometheus as prom

    names = [f"{'x' * n}.example.org" for n in range(1, 40)]
    types = ["A", "AAAA", "TXT", "MX", "NAPTR", "CAA"]

    def run(r) -> None:
        for name in names:
            for qtype in types:
                r.resolve(name, qtype)
        r.resolve("do.example.org", "A", dnssec=True)

    with pycorefile.Resolver.from_corefile(FOLD) as plain:
        run(plain)
        want = totals(families(plain))
        assert len(plain.engine.shared["prometheus.recorder"].raw) > 200
    monkeypatch.setattr(prom, "RAW_LIMIT", 7)
    with pycorefile.Resolver.from_corefile(FOLD) as folded:
        run(folded)
        rec = folded.engine.shared["prometheus.recorder"]
        assert len(rec.raw) <= 7
        got = totals(families(folded))
    assert got == want
    n = len(names) * len(types) + 1
    assert want[("requests", "other")] == len(names) * 2  # NAPTR and CAA are not kept types
    assert sum(v for k, v in want.items() if k[0] == "requests") == n
    assert want[("coredns_dns_request_size_bytes_count", "udp")] == n
    assert want[("coredns_dns_request_duration_seconds_count", "")] == n
    assert want[("coredns_dns_request_duration_seconds_bucket", "+Inf")] == n
    assert want["do"] == 1


def test_counters_never_go_back_across_a_fold(monkeypatch) -> None:
    from pycorefile.plugins import prometheus as prom

    monkeypatch.setattr(prom, "RAW_LIMIT", 3)
    with pycorefile.Resolver.from_corefile(FOLD) as r:
        seen = 0.0
        for i in range(60):
            r.resolve(f"{'y' * (i % 9 + 1)}.example.org", ("A", "TXT", "SRV", "NAPTR")[i % 4])
            now = r.metrics.sample("coredns_dns_requests_total")
            assert now == seen + 1
            seen = now
        size_sum = r.metrics.get("coredns_dns_request_size_bytes")
        assert size_sum is not None
        assert sum(c.sum for _, c in size_sum.items()) > 60 * 12  # at least a header per query


def test_do_series_appears_only_with_a_do_query() -> None:
    # CoreDNS increments coredns_dns_do_requests_total only for DO queries, so the
    # series does not exist before the first one.
    with pycorefile.Resolver.from_corefile(FOLD) as r:
        r.resolve("a.example.org", "A")
        assert not samples(families(r), "coredns_dns_do_requests", "coredns_dns_do_requests_total")
        r.resolve("a.example.org", "A", dnssec=True)
        do = samples(families(r), "coredns_dns_do_requests", "coredns_dns_do_requests_total")
        assert [(s.labels["zone"], s.value) for s in do] == [("example.org.", 1.0)]


def test_scrapes_while_threads_record() -> None:
    """Scraping from another thread while several threads record never fails and
    every query is counted once."""
    import threading

    with pycorefile.Resolver.from_corefile(FOLD) as r:
        stop = threading.Event()
        errors: list[BaseException] = []

        def scrape() -> None:
            last = 0.0
            try:
                while not stop.is_set():
                    now = r.metrics.sample("coredns_dns_requests_total")
                    assert now >= last
                    last = now
                    r.metrics.exposition()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        def query(k: int) -> None:
            for i in range(300):
                r.resolve(f"t{k}-{i % 50}.example.org", ("A", "TXT")[i % 2])

        scraper = threading.Thread(target=scrape)
        scraper.start()
        workers = [threading.Thread(target=query, args=(k,)) for k in range(4)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        stop.set()
        scraper.join()
        assert errors == []
        assert r.metrics.sample("coredns_dns_requests_total") == 4 * 300


def test_dropped_queries_record_the_size_of_the_reply_sent() -> None:
    """CoreDNS reports the server's own REFUSED/SERVFAIL replies under zone
    "dropped" with the size of that reply; a bare header (no question) is one."""
    from pycorefile import wire as w

    with pycorefile.Resolver.from_corefile("example.org:1053 {\n whoami\n prometheus\n}\n") as r:
        refused = r.handle(w.build_query("google.com", 1, qid=3, edns_size=1232))
        bare = r.handle(w.HEADER.pack(4, w.RD, 1, 0, 0, 0))
        fams = families(r)
    assert refused[3] & 0xF == w.REFUSED and bare[3] & 0xF == w.SERVFAIL
    sizes = {s.name: s.value for s in samples(fams, "coredns_dns_response_size_bytes")
             if s.name.endswith(("_sum", "_count"))}
    assert sizes == {"coredns_dns_response_size_bytes_sum": len(refused) + len(bare),
                     "coredns_dns_response_size_bytes_count": 2}
    req = {(s.labels["zone"], s.labels["type"]): s.value
           for s in samples(fams, "coredns_dns_requests", "coredns_dns_requests_total")}
    assert req == {("dropped", "A"): 1, ("dropped", "other"): 1}
