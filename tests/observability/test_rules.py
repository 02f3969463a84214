"""Checks for the Prometheus rules and scrape configuration in examples/prometheus/.

Runs the real ``promtool``: ``check rules`` on both rule files, ``check config`` on the scrape
configuration and ``test rules`` on the unit tests next to this file. Without promtool the
tests are skipped on a developer machine and fail in CI (the ``CI`` environment variable).

It also keeps the rules honest against docs/observability.md: every ``coredns_*`` metric name
in the rule files must be in the metric reference there, so a misspelt name (which Prometheus
accepts silently and which then never matches anything) fails a test.

The rule files are read as text: PyYAML is not a dependency. The small expression extractor
below is cross-checked against promtool's own rule count.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "examples" / "prometheus"
TESTS_DIR = Path(__file__).resolve().parent
DOC = ROOT / "docs" / "observability.md"

RULE_FILES = {
    "alerts.yml": PROMETHEUS_DIR / "alerts.yml",
    "slo-rules.yml": PROMETHEUS_DIR / "slo-rules.yml",
}
UNIT_TESTS = {
    "alerts_test.yml": TESTS_DIR / "alerts_test.yml",
    "slo_test.yml": TESTS_DIR / "slo_test.yml",
}
SCRAPE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"

# The job selector every raw-metric selector in the rule files must carry.
JOB_SELECTOR = 'job="pycorefile"'

# Series CoreDNS removed in 1.11; dashboards and the coredns-mixin still use them.
REMOVED_FORWARD_METRICS = {
    "coredns_forward_requests_total",
    "coredns_forward_responses_total",
    "coredns_forward_request_duration_seconds",
    "coredns_forward_healthcheck_failures_total",
}

# coredns_ followed by lower-case letters, digits and underscores, so that names such as
# coredns_dns_https3_responses_total are taken whole.
METRIC_NAME = re.compile(r"coredns_[a-z0-9_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")

DOC_BEGIN = "<!-- metric-reference:begin -->"
DOC_END = "<!-- metric-reference:end -->"


# --------------------------------------------------------------------------------------------
# promtool


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        reason = (
            "promtool not found on PATH; install Prometheus's promtool "
            "(Debian/Ubuntu: apt-get install prometheus)"
        )
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{reason}: CI must provide it", pytrace=False)
        pytest.skip(reason)
    return path


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit status {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


@pytest.mark.parametrize("name", sorted(RULE_FILES))
def test_check_rules(promtool: str, name: str) -> None:
    result = run_promtool(promtool, "check", "rules", str(RULE_FILES[name]))
    assert result.returncode == 0, output(result)
    assert "SUCCESS" in result.stdout, output(result)


def test_check_config(promtool: str) -> None:
    result = run_promtool(promtool, "check", "config", str(SCRAPE_CONFIG))
    assert result.returncode == 0, output(result)
    assert "SUCCESS" in result.stdout, output(result)
    # check config also checks the rule files it loads.
    assert "SUCCESS: 2 rule files found" in result.stdout, output(result)


def test_kubernetes_variant_of_scrape_config(promtool: str, tmp_path: Path) -> None:
    """The commented Kubernetes job, uncommented in place of the static one, is valid."""
    text = SCRAPE_CONFIG.read_text()
    head, _, rest = text.partition("  # ---- Kubernetes variant")
    variant, _, _ = rest.partition("  # ---- end of Kubernetes variant")
    assert variant, "Kubernetes variant markers not found in prometheus.yml"
    job_lines = [
        line[4:] if line.startswith("  # ") else ""
        for line in variant.splitlines()
        if line.startswith("  # ") or line.strip() == "#"
    ]
    # Drop the prose before the job itself.
    start = next(i for i, line in enumerate(job_lines) if line.startswith("- job_name:"))
    job = "\n".join("  " + line if line else "" for line in job_lines[start:])
    before_jobs, _, _ = head.partition("scrape_configs:")
    config = before_jobs.replace("rule_files:\n  - alerts.yml\n  - slo-rules.yml\n", "")
    (tmp_path / "prometheus.yml").write_text(config + "scrape_configs:\n" + job + "\n")

    assert "kubernetes_sd_configs" in job
    result = run_promtool(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    text = result.stdout + result.stderr
    if "field kubernetes_sd_configs not found" in text:
        # Debian's promtool is built without Kubernetes service discovery: it stops at
        # that field. Check the same job with the discovery block replaced by a static
        # target, so everything else in it (relabelling, selectors) is still validated.
        head_part, _, rest = job.partition("    kubernetes_sd_configs:\n")
        lines = rest.splitlines()
        # Drop the discovery block: its lines are indented deeper than the key.
        while lines and (not lines[0].strip() or lines[0].startswith("      ")):
            lines.pop(0)
        static = head_part + "    static_configs:\n      - targets: ['127.0.0.1:9153']\n"
        (tmp_path / "prometheus.yml").write_text(config + "scrape_configs:\n" + static + "\n".join(lines) + "\n")
        assert any("relabel_configs" in line for line in lines)
        result = run_promtool(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, output(result)


@pytest.mark.parametrize("name", sorted(UNIT_TESTS))
def test_promtool_unit_tests(promtool: str, name: str) -> None:
    result = run_promtool(promtool, "test", "rules", str(UNIT_TESTS[name]))
    assert result.returncode == 0, output(result)
    assert "SUCCESS" in result.stdout, output(result)
    assert "FAILED" not in result.stdout + result.stderr, output(result)


def test_expression_extractor_agrees_with_promtool(promtool: str) -> None:
    """The text-level extractor finds exactly as many rules as promtool does."""
    for path in RULE_FILES.values():
        result = run_promtool(promtool, "check", "rules", str(path))
        found = re.search(r"SUCCESS: (\d+) rules found", result.stdout)
        assert found, output(result)
        assert len(expressions(path.read_text())) == int(found.group(1)), path.name


# --------------------------------------------------------------------------------------------
# Text helpers (no YAML parser needed: the files are ours and kept in this shape)


def without_comments(text: str) -> str:
    """The text with whole-line YAML comments removed."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def expressions(text: str) -> list[str]:
    """Every rule's ``expr``, inline or as a block scalar."""
    lines = text.splitlines()
    found: list[str] = []
    i = 0
    while i < len(lines):
        match = re.match(r"^(\s*)expr:\s*(.*)$", lines[i])
        i += 1
        if not match:
            continue
        indent, value = len(match.group(1)), match.group(2).strip()
        if value in ("|", "|-", "|+", ">", ">-", ">+"):
            block = []
            while i < len(lines) and (
                not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
            ):
                block.append(lines[i].strip())
                i += 1
            found.append("\n".join(block).strip())
        else:
            found.append(value.strip("'\""))
    return found


def alert_blocks(text: str) -> dict[str, str]:
    """Alert name -> the text of its rule (up to the next rule or group)."""
    parts = re.split(r"^\s*- (?=alert:|record:|name:)", text, flags=re.MULTILINE)
    blocks = {}
    for part in parts:
        match = re.match(r"alert:\s*(\S+)", part)
        if match:
            blocks[match.group(1)] = part
    return blocks


def group_names(text: str) -> list[str]:
    return re.findall(r"^\s*- name:\s*(\S+)", text, flags=re.MULTILINE)


def metric_reference() -> str:
    text = DOC.read_text()
    assert DOC_BEGIN in text and DOC_END in text, "metric reference markers missing"
    return text.split(DOC_BEGIN, 1)[1].split(DOC_END, 1)[0]


def documented_metrics() -> set[str]:
    return set(METRIC_NAME.findall(metric_reference()))


def documented_histograms() -> set[str]:
    """Names whose table row says ``histogram`` in the type column."""
    row = re.compile(r"^\|\s*`(coredns_[a-z0-9_]+)`\s*\|\s*histogram\s*\|", re.MULTILINE)
    return set(row.findall(metric_reference()))


def undocumented(names: set[str], documented: set[str]) -> set[str]:
    """Names not in the reference; a histogram's _bucket/_count/_sum count as its name."""
    histograms = documented_histograms()
    missing = set()
    for name in names:
        if name in documented:
            continue
        if any(name.endswith(s) and name[: -len(s)] in histograms for s in HISTOGRAM_SUFFIXES):
            continue
        missing.add(name)
    return missing


def unit_test_cases(text: str) -> list[tuple[str, bool]]:
    """(alertname, fires) for every alert_rule_test item; fires = exp_alerts is not []."""
    items = re.split(
        r"^\s*-\s*\{?\s*(?=(?:eval_time|alertname|exp_alerts)\s*:)", text, flags=re.MULTILINE
    )
    cases = []
    for item in items[1:]:
        name = re.search(r"alertname:\s*([A-Za-z0-9_]+)", item)
        exp = re.search(r"exp_alerts:\s*(\[\s*\])?", item)
        assert name and exp, f"cannot read alert_rule_test item: {item[:200]!r}"
        cases.append((name.group(1), exp.group(1) is None))
    return cases


# --------------------------------------------------------------------------------------------
# Metric names


def test_reference_lists_the_core_metrics() -> None:
    documented = documented_metrics()
    for name in (
        "coredns_dns_requests_total",
        "coredns_dns_responses_total",
        "coredns_dns_request_duration_seconds",
        "coredns_dns_request_size_bytes",
        "coredns_dns_response_size_bytes",
        "coredns_dns_do_requests_total",
        "coredns_build_info",
        "coredns_panics_total",
        "coredns_plugin_enabled",
        "coredns_reload_failed_total",
        "coredns_reload_version_info",
        "coredns_template_matches_total",
        "coredns_cache_entries",
        "coredns_cache_requests_total",
        "coredns_cache_hits_total",
        "coredns_cache_misses_total",
        "coredns_proxy_request_duration_seconds",
        "coredns_proxy_healthcheck_failures_total",
        "coredns_forward_healthcheck_broken_total",
        "coredns_forward_max_concurrent_rejects_total",
    ):
        assert name in documented, name
    assert documented_histograms() == {
        "coredns_dns_request_duration_seconds",
        "coredns_dns_request_size_bytes",
        "coredns_dns_response_size_bytes",
        "coredns_proxy_request_duration_seconds",
    }
    # Removed series are explained elsewhere in the page, never listed as exported.
    assert not documented & REMOVED_FORWARD_METRICS


@pytest.mark.parametrize("name", sorted(RULE_FILES))
def test_rule_metric_names_are_documented(name: str) -> None:
    text = without_comments(RULE_FILES[name].read_text())
    used = set(METRIC_NAME.findall(text))
    missing = undocumented(used, documented_metrics())
    assert not missing, f"{name} uses metrics not in docs/observability.md: {sorted(missing)}"


def test_expressions_use_coredns_metrics() -> None:
    used = set()
    for path in RULE_FILES.values():
        for expr in expressions(path.read_text()):
            used |= set(METRIC_NAME.findall(expr))
    assert "coredns_dns_responses_total" in used
    assert "coredns_proxy_request_duration_seconds_bucket" in used


def test_misspelt_metric_name_is_caught() -> None:
    documented = documented_metrics()
    typo = 'rate(coredns_dns_response_total{job="pycorefile"}[5m])'
    assert undocumented(set(METRIC_NAME.findall(typo)), documented) == {
        "coredns_dns_response_total"
    }
    assert undocumented({"coredns_dns_request_duration_seconds_bucket"}, documented) == set()
    assert undocumented({"coredns_dns_requests_total_bucket"}, documented) == {
        "coredns_dns_requests_total_bucket"
    }


@pytest.mark.parametrize("name", sorted(RULE_FILES))
def test_removed_forward_metrics_are_not_used(name: str) -> None:
    text = without_comments(RULE_FILES[name].read_text())
    used = {m for m in METRIC_NAME.findall(text)}
    stale = {
        m
        for m in used
        for removed in REMOVED_FORWARD_METRICS
        if m == removed or m.startswith(removed + "_")
    }
    assert not stale, f"{name} uses series removed in CoreDNS 1.11: {sorted(stale)}"


@pytest.mark.parametrize("name", sorted(RULE_FILES))
def test_raw_selectors_carry_the_job_selector(name: str) -> None:
    for expr in expressions(RULE_FILES[name].read_text()):
        for match in re.finditer(r"\b(coredns_[a-z0-9_]+|up)\b(\{[^}]*\})?", expr):
            metric, matchers = match.group(1), match.group(2) or ""
            assert JOB_SELECTOR in matchers, f"{metric} without {JOB_SELECTOR} in: {expr}"


# --------------------------------------------------------------------------------------------
# Alerts: shape, documentation, test coverage


def all_alerts() -> dict[str, str]:
    blocks: dict[str, str] = {}
    for path in RULE_FILES.values():
        for alert, block in alert_blocks(path.read_text()).items():
            assert alert not in blocks, f"alert {alert} defined twice"
            blocks[alert] = block
    return blocks


def test_expected_alerts_exist() -> None:
    assert set(all_alerts()) == {
        "CoreDNSDown",
        "CoreDNSAbsent",
        "CoreDNSHighSERVFAILRate",
        "CoreDNSHighNXDOMAINRate",
        "CoreDNSLatencyP99High",
        "CoreDNSCacheHitRateLow",
        "CoreDNSPanics",
        "CoreDNSForwardLatencyHigh",
        "CoreDNSForwardErrorsHigh",
        "CoreDNSForwardHealthcheckFailures",
        "CoreDNSForwardAllUpstreamsDown",
        "CoreDNSForwardMaxConcurrentRejects",
        "CoreDNSAvailabilityBurnRateFast",
        "CoreDNSAvailabilityBurnRateMedium",
        "CoreDNSAvailabilityBurnRateSlow",
        "CoreDNSLatencyBurnRateFast",
        "CoreDNSLatencyBurnRateMedium",
        "CoreDNSLatencyBurnRateSlow",
    }


def test_every_alert_has_severity_summary_and_description() -> None:
    for alert, block in all_alerts().items():
        assert re.search(r"^\s+severity:\s*(critical|warning)\s*$", block, re.MULTILINE), alert
        assert re.search(r"^\s+summary:", block, re.MULTILINE), alert
        assert re.search(r"^\s+description:", block, re.MULTILINE), alert


def test_alerts_and_groups_are_documented() -> None:
    doc = DOC.read_text()
    for alert in all_alerts():
        assert f"`{alert}`" in doc, f"{alert} is not documented in docs/observability.md"
    for path in RULE_FILES.values():
        for group in group_names(path.read_text()):
            assert f"`{group}`" in doc, f"group {group} is not documented"


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    cases = []
    for path in UNIT_TESTS.values():
        cases += unit_test_cases(path.read_text())
    assert cases
    for alert in all_alerts():
        outcomes = {fires for name, fires in cases if name == alert}
        assert True in outcomes, f"{alert} has no firing unit test"
        assert False in outcomes, f"{alert} has no quiet unit test"


def test_promql_in_the_docs_matches_the_rules() -> None:
    """Every ``# AlertName`` snippet in a promql block of the docs is the rule's expression."""
    rule_exprs = {}
    for path in RULE_FILES.values():
        for alert, block in alert_blocks(path.read_text()).items():
            (expr,) = expressions(block)
            rule_exprs[alert] = expr
    doc = DOC.read_text()
    checked = set()
    for block in re.findall(r"```promql\n(.*?)```", doc, flags=re.DOTALL):
        for snippet in re.split(r"\n\s*\n", block.strip()):
            header, _, expr = snippet.partition("\n")
            name = re.match(r"#\s*([A-Za-z0-9]+)", header)
            if not name or name.group(1) not in rule_exprs:
                continue
            alert = name.group(1)
            assert re.sub(r"\s+", "", expr) == re.sub(r"\s+", "", rule_exprs[alert]), (
                f"docs/observability.md shows another expression for {alert}"
            )
            checked.add(alert)
    # All of alerts.yml is shown, and at least one burn-rate alert.
    assert set(alert_blocks(RULE_FILES["alerts.yml"].read_text())) <= checked
    assert "CoreDNSAvailabilityBurnRateFast" in checked
