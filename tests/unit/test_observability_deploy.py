"""deploy/prometheus/alerts.yml and deploy/grafana/waooaw.json, offline: every expression parses as
PromQL (promql-parser, Prometheus's grammar) and names only metrics, and labels, the code exports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY

import agents.telemetry  # noqa: F401 - registers the decision metrics
import bot.metrics  # noqa: F401 - registers the edge's metrics

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "waooaw.json"
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
    "summary": ("_count", "_sum"),
}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def exported() -> dict[str, set[str]]:
    """Each series name our metrics export, with the labels it may carry."""
    series: dict[str, set[str]] = {}
    for collector in REGISTRY._collector_to_names:  # no public way to read a metric's labels
        labels = set(getattr(collector, "_labelnames", ()))
        kind = getattr(collector, "_type", "gauge")
        base = getattr(collector, "_name", None)
        if base is None or not base.startswith("waooaw_"):
            continue
        for suffix in SUFFIXES.get(kind, ("",)):
            series[base + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


def selectors(node: Any) -> Iterator[promql_parser.VectorSelector]:
    if isinstance(node, promql_parser.VectorSelector):
        yield node
        return
    for attribute in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        if child is not None and not isinstance(child, (str, int, float)):
            yield from selectors(child)
    for argument in getattr(node, "args", None) or []:
        yield from selectors(argument)


def check(expression: str, where: str) -> None:
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    try:
        tree = promql_parser.parse(expression)
    except ValueError as error:
        pytest.fail(f"{where}: {expression!r} is not PromQL: {error}")
    series = exported()
    named = list(selectors(tree))
    assert named, f"{where}: {expression!r} selects no metric"
    for selector in named:
        assert selector.name in series, f"{where}: {selector.name} is no metric WAOOAW exports"
        for matcher in selector.matchers.matchers:
            assert matcher.name in series[selector.name], f"{where}: {selector.name} has no label {matcher.name}"


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_alert_is_complete_and_its_expression_names_metrics_that_exist():
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names)), "alert names are unique"
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]
        check(rule["expr"], rule["alert"])


def test_the_alerts_cover_dead_letters_lag_budget_and_the_breaker():
    expressions = " ".join(rule["expr"] for rule in rules())
    for metric in (
        "waooaw_bus_dead_letters",
        "waooaw_bus_oldest_seconds",
        "waooaw_llm_budget_usd",
        "waooaw_llm_breaker_state",
    ):
        assert metric in expressions


def test_the_dashboard_queries_name_metrics_that_exist():
    dashboard = json.loads(DASHBOARD.read_text())
    targets = [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]
    assert targets
    for title, expression in targets:
        check(expression, title)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"


def test_a_name_no_metric_has_fails_the_check():
    with pytest.raises(AssertionError, match="no metric"):
        check("sum(rate(waooaw_not_a_metric_total[5m]))", "probe")
    with pytest.raises(AssertionError, match="no label"):
        check('sum(waooaw_deliveries_total{repo="a/b"})', "probe")
