"""Real-world Corefiles through pycorefile's own plugins.

Every public Corefile in ``tests/corefile/corpus`` that CoreDNS accepts must load in
pycorefile with full plugin option checks, or fail with ``FILE:LINE - plugin 'x' is
not supported by pycorefile`` naming a CoreDNS plugin pycorefile does not implement.
Files CoreDNS itself rejects are listed in ``tests/corefile/test_corefile_corpus.py``;
the few that fail here for another reason are listed below with the reason, so a
regression (or a fix) shows.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import pytest

from pycorefile.corefile import iter_errors

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "corefile"))
from test_corefile_corpus import CORPUS, ENV, EXPECTED_FAILURES  # noqa: E402

# Numbers where the Corefiles expect numbers (the parse-level test only needs strings).
PLUGIN_ENV = {**ENV, "DNS_CACHE_TIME": "30", "DNS_CACHE_SUCCESS": "9984", "DNS_CACHE_DENIAL": "9984",
              "DNS_CACHE_PREFETCH": "10"}

#: file -> (message, why)
OTHER_FAILURES: dict[str, tuple[str, str]] = {
    "2ZZ__dns__Corefile": (
        "Wrong argument count or unexpected line ending after 'http'",
        "cache has no 'http' property: CoreDNS rejects it the same way",
    ),
    "ARPmt__vps-install__Corefile": (
        'failed to resolve "/etc/config/coredns_resolv.conf"',
        "forwards to a resolv.conf that only exists on its author's router; CoreDNS then tries "
        "the path as a host name too, and fails the same way",
    ),
    "coredns__coredns__plugin_loadbalance_README.md__ex2": (
        "the 'weighted' policy is not supported by pycorefile",
        "loadbalance's weighted policy is not implemented; named at its line",
    ),
    "cromatyt__sysopslab-docker__coredns_Corefile": (
        "this plugin can only be used once per Server Block",
        "errors twice in one block: CoreDNS rejects it too",
    ),
    "kubernetes__kubernetes__cluster_addons_dns_nodelocaldns_nodelocaldns.yaml": (
        "not a valid IP address or interface name",
        "a template with __PILLAR__ placeholders for bind: CoreDNS rejects it too",
    ),
}

FILES = sorted(
    p for p in (CORPUS / "corefiles").iterdir() if p.is_file() and p.name not in EXPECTED_FAILURES
)
UNSUPPORTED = re.compile(r":(\d+) - plugin '([a-z0-9_]+)' is not supported by pycorefile")


#: Host-name upstreams in the corpus, looked up without the network: the test must
#: not depend on the machine's resolver (the look-up itself is tested against NSD).
CORPUS_HOSTS = {"dns.quad9.net": ["9.9.9.9", "149.112.112.112"]}


@pytest.fixture(autouse=True)
def _no_network_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    from pycorefile.plugins.forward import setup

    def lookup(hostname: str, resolvers: list[tuple[str, int]]) -> list[str]:
        if hostname in CORPUS_HOSTS:
            return CORPUS_HOSTS[hostname]
        raise LookupError(f"lookup {hostname}: no such host")

    monkeypatch.setattr(setup, "lookup_host", lookup)


@pytest.mark.parametrize("path", FILES, ids=[p.name[:80] for p in FILES])
def test_corefile_loads_or_names_the_unsupported_plugin(path: Path) -> None:
    logging.disable(logging.WARNING)  # missing hosts files etc. are warnings in CoreDNS too
    try:
        errors = iter_errors(path.read_text(encoding="utf-8", errors="replace"), filename=str(path),
                             env=PLUGIN_ENV, mode="pycorefile")
    finally:
        logging.disable(logging.NOTSET)
    if path.name in OTHER_FAILURES:
        message, _why = OTHER_FAILURES[path.name]
        assert errors and message in str(errors[0])
        return
    for err in errors:
        m = UNSUPPORTED.search(str(err))
        assert m is not None, f"unexpected error: {err}"
        assert int(m.group(1)) == err.line > 0
