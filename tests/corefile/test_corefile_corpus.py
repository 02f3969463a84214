"""Real-world Corefiles: each one reads as CoreDNS would read it.

``corpus/`` holds public Corefiles (``manifest.tsv`` says where each comes from).
Every file must parse in ``mode="coredns"`` with CoreDNS's own directive list, or
fail with the error CoreDNS gives for it; the failures are listed below with the
reason, so a regression in either direction shows. Only the Corefile layer is
checked here (syntax, imports, env, keys, directive names, duplicate zones), not
plugin options.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pycorefile.corefile import CorefileError, parse
from pycorefile.corefile.loading import read_text
from pycorefile.registry import Registry

CORPUS = Path(__file__).resolve().parent / "corpus"

#: Values for the variables the corpus files use (``{$NAME}``).
ENV = {
    "ADDITIONAL_ZONES": "example.org",
    "CACHE_TTL": "30",
    "COREDNS_BIND_IP": "10.0.0.1",
    "COREDNS_LISTEN_ADDR": "10.0.0.1",
    "DNS_BIND_IP": "10.0.0.1",
    "DNS_CACHE_DENIAL": "10.0.0.1",
    "DNS_CACHE_PREFETCH": "10.0.0.1",
    "DNS_CACHE_SUCCESS": "10.0.0.1",
    "DNS_CACHE_TIME": "10.0.0.1",
    "DNS_EXPIRATION_TIME": "10.0.0.1",
    "DNS_HEALTH_PORT": "9153",
    "DNS_IP": "10.0.0.1",
    "DNS_PROMETHEUS_PORT": "9153",
    "DNS_SERVER1": "10.0.0.1",
    "DNS_SERVER2": "10.0.0.1",
    "DNS_UPSTREAM": "10.0.0.1",
    "DNS_UPSTREAM1": "10.0.0.1",
    "DNS_UPSTREAM2": "10.0.0.1",
    "DNS_UPSTREAM_NAME": "10.0.0.1",
    "DOMAIN": "example.org",
    "DOMAIN_ZONE_FILE": "example.org",
    "DOMEXT": "example.org",
    "DROVE_ACCESS_TOKEN": "x",
    "DROVE_ENDPOINT": "x",
    "DROVE_PASSWORD": "x",
    "DROVE_USERNAME": "x",
    "ENABLE_IPV6": "10.0.0.1",
    "ETCD_IP": "10.0.0.1",
    "FALLTHROUGH_ZONES": "example.org",
    "HEALTH_PORT": "9153",
    "HOSTNAME": "example.org",
    "HOST_IP": "10.0.0.1",
    "LOG_CLASS": "x",
    "NSID": "x",
    "NS_1": "10.0.0.1",
    "NS_2": "10.0.0.1",
    "NS_3": "10.0.0.1",
    "OMADA_IGNORE_STARTUP_ERRORS": "x",
    "OMADA_PASSWORD": "x",
    "OMADA_SITE": "x",
    "OMADA_URL": "x",
    "OMADA_USERNAME": "x",
    "PORT": "9153",
    "PROMETHEUS_PORT": "9153",
    "PUBLIC_RESOLVER": "10.0.0.1",
    "READINESS_PORT": "9153",
    "RECURSION_AVAILABLE": "x",
    "SECRET_DOMAIN": "example.org",
    "SECRET_DOMAIN_WORK": "example.org",
    "SERVER_IP": "10.0.0.1",
    "TAILSCALE_CIDR": "x",
    "TAILSCALE_IP": "10.0.0.1",
    "UPSTREAM_DNS": "10.0.0.1",
}

#: file -> (the error message, why CoreDNS fails on it too)
EXPECTED_FAILURES: dict[str, tuple[str, str]] = {
    "AdguardTeam__AdGuardDNS__Corefile": (
        "Unknown directive 'ratelimit'",
        "third-party plugin 'ratelimit', not in CoreDNS's plugin.cfg",
    ),
    "Benjamin-Yim__dnsexample__Corefile": (
        "Unknown directive 'example'",
        "third-party plugin 'example', not in CoreDNS's plugin.cfg",
    ),
    "CA17__edns__Corefile": (
        "Unknown directive 'setecs'",
        "third-party plugin 'setecs', not in CoreDNS's plugin.cfg",
    ),
    "CA17__geoforward__Corefile": (
        "Unknown directive 'datahub'",
        "third-party plugin 'datahub', not in CoreDNS's plugin.cfg",
    ),
    "Horstexplorer__coredns-docker__Corefile": (
        "Unknown directive 'coredns-docker'",
        "third-party plugin 'coredns-docker', not in CoreDNS's plugin.cfg",
    ),
    "HuiMi24__coredns_gfw__config_Corefile": (
        "Unknown directive 'dnsredir'",
        "third-party plugin 'dnsredir', not in CoreDNS's plugin.cfg",
    ),
    "Icedroid__coredns-gslb__Corefile": (
        "Unknown directive 'gslb'",
        "third-party plugin 'gslb', not in CoreDNS's plugin.cfg",
    ),
    "Jamakasi__BlockBusterDNS__docker-compose-allinone_coredns_Corefile": (
        "Unknown directive 'dmatcher'",
        "third-party plugin 'dmatcher', not in CoreDNS's plugin.cfg",
    ),
    "Jamakasi__BlockBusterDNS__docker_Corefile": (
        "Unknown directive 'dmatcher'",
        "third-party plugin 'dmatcher', not in CoreDNS's plugin.cfg",
    ),
    "Kuadrant__dns-operator__config_coredns_Corefile": (
        "Unknown directive 'kuadrant'",
        "third-party plugin 'kuadrant', not in CoreDNS's plugin.cfg",
    ),
    "Kuadrant__dns-operator__coredns_examples_Corefile": (
        "Unknown directive 'kuadrant'",
        "third-party plugin 'kuadrant', not in CoreDNS's plugin.cfg",
    ),
    "LibFRi__coredns-docker__Corefile": (
        "Unknown directive 'ads'",
        "third-party plugin 'ads', not in CoreDNS's plugin.cfg",
    ),
    "LukeShortCloud__container-coredns-unbound__Corefile": (
        "Unknown directive 'unbound'",
        "third-party plugin 'unbound', not in CoreDNS's plugin.cfg",
    ),
    "MrRoundRobin__AzurePrivateLinkResolver__src_forward_Corefile": (
        "Unknown directive 'alternate'",
        "third-party plugin 'alternate', not in CoreDNS's plugin.cfg",
    ),
    "MrRoundRobin__AzurePrivateLinkResolver__src_recursive_Corefile": (
        "Unknown directive 'alternate'",
        "third-party plugin 'alternate', not in CoreDNS's plugin.cfg",
    ),
    "NicolaiSoeborg__CensurDNS__Corefile": (
        "Unknown directive 'rrl'",
        "third-party plugin 'rrl', not in CoreDNS's plugin.cfg",
    ),
    "PhonePe__coredns-drove__cmd_coredns_Corefile": (
        "Unknown directive 'drove'",
        "third-party plugin 'drove', not in CoreDNS's plugin.cfg",
    ),
    "PhonePe__coredns-drove__cmd_coredns_example_Corefile": (
        "Unknown directive 'drove'",
        "third-party plugin 'drove', not in CoreDNS's plugin.cfg",
    ),
    "Ramblurr__home-ops__archive_k8s_k8s-prod_workloads_networking_k8s-gateway_app_helm-release.yaml__L34": (
        "Unknown directive 'k8s_gateway'",
        "third-party plugin 'k8s_gateway', not in CoreDNS's plugin.cfg",
    ),
    "Ramblurr__home-ops__dns_Corefile": (
        "File to import not found: /etc/coredns/common.conf",
        "imports an absolute path outside the corpus (CoreDNS: same error)",
    ),
    "Ramblurr__homelab-balena-coredns__config_Corefile": (
        "File to import not found: /config/common.conf",
        "imports an absolute path outside the corpus (CoreDNS: same error)",
    ),
    "RushX__SuSDNS__coredns_Corefile": (
        "Unknown directive 'dgadetect'",
        "third-party plugin 'dgadetect', not in CoreDNS's plugin.cfg",
    ),
    "Sekkyo__coredns_omada__Corefile": (
        "Unknown directive 'omada'",
        "third-party plugin 'omada', not in CoreDNS's plugin.cfg",
    ),
    "Sekkyo__coredns_omada__corefile-examples_additional-hosts_Corefile": (
        "Unknown directive 'omada'",
        "third-party plugin 'omada', not in CoreDNS's plugin.cfg",
    ),
    "Sekkyo__coredns_omada__corefile-examples_debug_Corefile": (
        "Unknown directive 'omada'",
        "third-party plugin 'omada', not in CoreDNS's plugin.cfg",
    ),
    "Sekkyo__coredns_omada__corefile-examples_environment-variables_Corefile": (
        "Unknown directive 'omada'",
        "third-party plugin 'omada', not in CoreDNS's plugin.cfg",
    ),
    "SiweiWang__docker-coreDNS__Corefile": (
        "Unknown directive 'proxy'",
        "proxy was removed from CoreDNS (1.6); forward replaced it",
    ),
    "SoarYu__nacos-coredns-docker__conf_Corefile": (
        "Unknown directive 'nacos'",
        "third-party plugin 'nacos', not in CoreDNS's plugin.cfg",
    ),
    "TomTonic__coredns-fanout__Corefile": (
        "Unknown directive 'filterlist'",
        "third-party plugin 'filterlist', not in CoreDNS's plugin.cfg",
    ),
    "af3556__coredns-templates__Corefile": (
        "cannot serve dns://c.corp.example.com.:53 - it is already defined",
        "the same zone in two blocks, a real mistake in the file",
    ),
    "ahmetb__coredns-grpc-backend-sample__Corefile": (
        "Unknown directive 'proxy'",
        "proxy was removed from CoreDNS (1.6); forward replaced it",
    ),
    "airdb__nodecache__Corefile": (
        "Unknown directive 'nodecache'",
        "third-party plugin 'nodecache', not in CoreDNS's plugin.cfg",
    ),
    "ajeygore__coredns_ui__Corefile": (
        "Unknown directive 'redis'",
        "third-party plugin 'redis', not in CoreDNS's plugin.cfg",
    ),
    "ajruckman__ContraCore__Corefile": (
        "Unknown directive 'contracore'",
        "third-party plugin 'contracore', not in CoreDNS's plugin.cfg",
    ),
    "akraino-edge-stack__nc-ovs-dpdk-unicycle__coredns_Corefile": (
        "Unknown directive 'proxy'",
        "proxy was removed from CoreDNS (1.6); forward replaced it",
    ),
    "aledbf__coredns-memory-spike__Corefile": (
        "Unknown directive 'proxy'",
        "proxy was removed from CoreDNS (1.6); forward replaced it",
    ),
    "aledbf__coredns-memory-spike__Corefile-dnsperf": (
        "Unknown directive 'proxy'",
        "proxy was removed from CoreDNS (1.6); forward replaced it",
    ),
    "ardantus__localdns__Corefile": (
        "Unknown directive 'pdsql'",
        "third-party plugin 'pdsql', not in CoreDNS's plugin.cfg",
    ),
    "boyzhujian__installscript__coredns_Corefile": (
        "Unknown directive '.:53'",
        "line 1 is a Markdown link, read as keys; `.:53` on line 3 is then a directive",
    ),
    "cassimans__docker-swarm-labo__coredns_Corefile": (
        "Unknown directive 'proxy'",
        "proxy was removed from CoreDNS (1.6); forward replaced it",
    ),
    "dfuchslin__coredns-mdns__coredns_corefile": (
        "Unknown directive 'alternate'",
        "third-party plugin 'alternate', not in CoreDNS's plugin.cfg",
    ),
    "dmachard__coredns-gslb__tests_Corefile": (
        "Unknown directive 'gslb'",
        "third-party plugin 'gslb', not in CoreDNS's plugin.cfg",
    ),
    "ftrueck__rpi_pihole_selfmaint__coredns_Corefile": (
        "Unknown directive 'omada'",
        "third-party plugin 'omada', not in CoreDNS's plugin.cfg",
    ),
    "hmilkovi__urban-dns__dns_Corefile": (
        "Unknown directive 'pdsql'",
        "third-party plugin 'pdsql', not in CoreDNS's plugin.cfg",
    ),
    "ihcsim__kubernetes-terraform-secured__k8s_network_coredns.yaml__L49": (
        "Unknown directive 'proxy'",
        "proxy was removed from CoreDNS (1.6); forward replaced it",
    ),
    "issenn__coredns-config__config_coredns_Corefile": (
        "Unknown directive 'dnsredir'",
        "third-party plugin 'dnsredir', not in CoreDNS's plugin.cfg",
    ),
    "jeffscrum__coredns-blocker__config_Corefile": (
        "Unknown directive 'blocker'",
        "third-party plugin 'blocker', not in CoreDNS's plugin.cfg",
    ),
    "jess-sys__coredns-dockerdiscovery__config_Corefile": (
        "Unknown directive 'docker'",
        "third-party plugin 'docker', not in CoreDNS's plugin.cfg",
    ),
    "jsimonetti__docker-coredns-ads__config_Corefile": (
        "Unknown directive 'ads'",
        "third-party plugin 'ads', not in CoreDNS's plugin.cfg",
    ),
    "julienbardi__homelab__archive_10.89.12.4-legacy_etc_coredns_Corefile": (
        "Unknown directive 'doh'",
        "third-party plugin 'doh', not in CoreDNS's plugin.cfg",
    ),
    "julienbardi__homelab__config_coredns_Corefile": (
        "Unknown directive 'doh'",
        "third-party plugin 'doh', not in CoreDNS's plugin.cfg",
    ),
    "kindmesh__kindmesh__config_Corefile": (
        "Unknown directive 'hijack'",
        "third-party plugin 'hijack', not in CoreDNS's plugin.cfg",
    ),
    "litobro__docker-coredns-flatten__conf_Corefile": (
        "Unknown directive 'flatten'",
        "third-party plugin 'flatten', not in CoreDNS's plugin.cfg",
    ),
    "mattorb__dns-shield__docker_Corefile": (
        "Unknown directive 'proxy'",
        "proxy was removed from CoreDNS (1.6); forward replaced it",
    ),
    "murarisumit__localdns__dns_Corefile": (
        "Unknown directive 'proxy'",
        "proxy was removed from CoreDNS (1.6); forward replaced it",
    ),
    "netsys-lab__ietf-scion-testbed__config_coredns_Corefile": (
        "Unknown directive 'scitra'",
        "third-party plugin 'scitra', not in CoreDNS's plugin.cfg",
    ),
    "sjpuas__coredns-traefik__config_Corefile": (
        "Unknown directive 'proxy'",
        "proxy was removed from CoreDNS (1.6); forward replaced it",
    ),
    "tofudns__tofudns__config_Corefile": (
        "Unknown directive 'postgresql'",
        "third-party plugin 'postgresql', not in CoreDNS's plugin.cfg",
    ),
    "templated/JerkyTreats__dns__configs_coredns_Corefile.template": (
        "Unknown directive '{{/*'",
        "Go text/template source, not yet a Corefile",
    ),
    "templated/Noah-Kennedy__hearth__salt_states_dns_Corefile.jinja": (
        "Unknown directive '{%-'",
        "Jinja source, not yet a Corefile",
    ),
    "templated/Wilkes-Liberty__infra__ansible_roles_wl-onprem_templates_Corefile.j2": (
        "cannot serve dns://int.wilkesliberty.com.:53 on {{ - it is already defined",
        "Jinja source: `bind {{ ip }}` binds the words '{{' ... twice (CoreDNS's bind setup rejects '{{' first)",
    ),
    "templated/ajeygore__coredns_ui__scripts_files_Corefile": (
        "Unknown directive 'redis'",
        "third-party plugin 'redis', not in CoreDNS's plugin.cfg",
    ),
    "templated/habitat-sh__core-plans__coredns_config_Corefile": (
        "zone is not a valid domain name: .:{{cfg.port}}",
        "Habitat template placeholder in the key",
    ),
    "templated/kubernetes__kubernetes__cmd_kubeadm_app_phases_addons_dns_manifests.go": (
        "Unknown directive '{{-'",
        "Go text/template source, not yet a Corefile",
    ),
    "templated/modanub__simple-coredns-manager__templates_corefile.html": (
        "Unknown directive '{{template'",
        "Go text/template source, not yet a Corefile",
    ),
    "templated/modanub__simple-coredns-manager__templates_corefile_preview.html": (
        "Unknown directive '{{template'",
        "Go text/template source, not yet a Corefile",
    ),
    "templated/mutablelogic__tf-nomad__coredns_config_Corefile": (
        "Unknown directive '{{'",
        "Nomad (Go) template source, not yet a Corefile",
    ),
}


def _manifest() -> list[str]:
    with open(CORPUS / "manifest.tsv", newline="", encoding="utf-8") as fh:
        return [row["file"] for row in csv.DictReader(fh, delimiter="\t")]


MANIFEST = _manifest()


class _CoreDNSDirectives(Registry):
    """No pycorefile plugin at all: a name is valid iff it is in CoreDNS's plugin.cfg."""

    def load_entry_points(self) -> None:
        return None


def test_manifest_matches_files() -> None:
    on_disk = {
        str(p.relative_to(CORPUS / "corefiles"))
        for p in (CORPUS / "corefiles").rglob("*")
        if p.is_file()
    }
    assert set(MANIFEST) == on_disk
    assert set(EXPECTED_FAILURES) <= on_disk


@pytest.mark.parametrize("name", MANIFEST)
def test_corpus_file(name: str) -> None:
    path = CORPUS / "corefiles" / name
    text = read_text(path)
    expected = EXPECTED_FAILURES.get(name)
    if expected is None:
        parse(text, str(path), env=ENV, registry=_CoreDNSDirectives(), mode="coredns")
        return
    with pytest.raises(CorefileError) as info:
        parse(text, str(path), env=ENV, registry=_CoreDNSDirectives(), mode="coredns")
    assert info.value.message == expected[0], expected[1]
