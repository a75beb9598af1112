"""Prometheus metrics of the plan: per asset and repository the last good snapshot, RPO compliance, snapshot counts;
per step the last duration, bytes and outcome; check errors, findings, drills and guard verdicts where recorded.

Gathered on demand from the repositories (snapshot objects only) and the state database; :class:`PlanCollector`
caches one gathering for ``ttl`` seconds so a scrape every 15 s does not re-read every repository.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sauvegarde.alerts.collect import latest_steps
from sauvegarde.plan.model import Plan
from sauvegarde.plan.observe import observe
from sauvegarde.plan.observed import Observation
from sauvegarde.plan.rules import SEVERITIES, Finding, asset_size, evaluate
from sauvegarde.state.db import StateDB
from sauvegarde.state.peers import guard_verdicts


@dataclass
class Facts:
    plan: Plan
    obs: Observation
    findings: list[Finding]
    db: StateDB


def gather(plan: Plan, db: StateDB, now: datetime) -> Facts:
    obs = observe(plan, db, now)
    return Facts(plan, obs, evaluate(plan, obs), db)


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"sauvegarde_{name}", doc, labels=labels)


def asset_metrics(f: Facts) -> Iterator[Metric]:
    rpo = _gauge("asset_rpo_seconds", "Recovery point objective of the asset", ["asset", "criticality"])
    rto = _gauge("asset_rto_seconds", "Recovery time objective of the asset", ["asset"])
    size = _gauge("asset_size_bytes", "Size of the asset at its newest good snapshot", ["asset"])
    last = _gauge(
        "last_success_timestamp_seconds", "Time of the newest good snapshot of the asset", ["asset", "repository"]
    )
    ok = _gauge("rpo_compliant", "1 when the newest good snapshot is younger than the RPO", ["asset", "repository"])
    count = _gauge("snapshots", "Snapshots of the asset in the repository", ["asset", "repository"])
    for name, asset in f.plan.assets.items():
        rpo.add_metric([name, asset.criticality], asset.rpo.total_seconds())
        rto.add_metric([name], asset.rto.total_seconds())
        size.add_metric([name], asset_size(name, f.plan, f.obs))
        for r in asset.repositories:
            state = f.obs.repository(r)
            newest = state.newest_good(name) if state.reachable else None
            if newest is not None:
                last.add_metric([name, r], newest.time.timestamp())
            fresh = newest is not None and f.obs.now - newest.time <= asset.rpo
            ok.add_metric([name, r], 1.0 if fresh else 0.0)
            count.add_metric([name, r], len(state.snapshots.get(name, [])))
    yield from (rpo, rto, size, last, ok, count)


def repository_metrics(f: Facts) -> Iterator[Metric]:
    up = _gauge("repository_up", "1 when the repository could be opened and read", ["repository"])
    errors = _gauge("repository_check_errors", "Errors found by the latest check", ["repository"])
    immutable = _gauge(
        "repository_immutable_days", "Object Lock retention configured in the repository", ["repository"]
    )
    for name in f.plan.repositories:
        state = f.obs.repository(name)
        up.add_metric([name], 1.0 if state.reachable else 0.0)
        if state.last_check is not None:
            errors.add_metric([name], state.last_check.errors)
        if state.immutable_days is not None:
            immutable.add_metric([name], state.immutable_days)
    yield from (up, errors, immutable)


def step_metrics(f: Facts) -> Iterator[Metric]:
    labels = ["kind", "asset", "repository"]
    when = _gauge("step_last_timestamp_seconds", "Start of the latest step", labels)
    duration = _gauge("step_last_duration_seconds", "Duration of the latest step", labels)
    size = _gauge(
        "step_last_bytes", "Bytes added (backup, copy), read (check) or freed (prune) by the latest step", labels
    )
    failed = _gauge("step_last_failed", "1 when the latest step failed", labels)
    success = _gauge("step_last_success_timestamp_seconds", "Start of the latest successful step", labels)
    for s in latest_steps(f.plan, f.db):
        key = [s.kind, s.asset or "", s.repository]
        when.add_metric(key, s.started)
        duration.add_metric(key, s.duration_s)
        size.add_metric(key, s.bytes)
        failed.add_metric(key, 1.0 if s.outcome == "failed" else 0.0)
        good = f.db.last_step(s.kind, repository=s.repository, asset=s.asset, outcomes=("ok", "partial"))
        if good is not None:
            success.add_metric(key, good.started)
    yield from (when, duration, size, failed, success)


def finding_metrics(f: Facts) -> Iterator[Metric]:
    g = _gauge("findings", "Findings of `plan check` per rule and severity", ["rule", "severity"])
    counts: dict[tuple[str, str], int] = {}
    for x in f.findings:
        counts[(x.rule, x.severity)] = counts.get((x.rule, x.severity), 0) + 1
    for (rule, severity), n in sorted(counts.items(), key=lambda kv: (kv[0][0], SEVERITIES.index(kv[0][1]))):
        g.add_metric([rule, severity], n)
    yield g


def drill_metrics(f: Facts) -> Iterator[Metric]:
    labels = ["asset", "repository"]
    when = _gauge("drill_last_timestamp_seconds", "Start of the latest restore drill", labels)
    passed = _gauge("drill_last_passed", "1 when the latest restore drill passed", labels)
    duration = _gauge("drill_last_duration_seconds", "Duration of the latest restore drill", labels)
    full = _gauge("drill_estimated_full_restore_seconds", "Full restore time extrapolated by the latest drill", labels)
    latest = {(d.asset, d.repository): d for d in f.db.drills()}
    for (asset, repo), d in sorted(latest.items()):
        when.add_metric([asset, repo], d.started)
        passed.add_metric([asset, repo], 1.0 if d.passed else 0.0)
        duration.add_metric([asset, repo], d.duration_s)
        if d.estimated_full_s is not None:
            full.add_metric([asset, repo], d.estimated_full_s)
    yield from (when, passed, duration, full)


def guard_metrics(f: Facts) -> Iterator[Metric]:
    labels = ["asset", "repository"]
    suspicious = _gauge("guard_last_suspicious", "1 when the latest guard verdict is suspicious (not released)", labels)
    when = _gauge("guard_last_timestamp_seconds", "Time of the latest guard verdict", labels)
    latest = {(v.asset, v.repository): v for v in guard_verdicts(f.db)}
    for (asset, repo), v in sorted(latest.items()):
        suspicious.add_metric([asset, repo], 1.0 if v.suspicious else 0.0)
        when.add_metric([asset, repo], v.time)
    yield from (suspicious, when)


def all_metrics(f: Facts) -> Iterator[Metric]:
    info = _gauge("plan_info", "The plan being measured", ["organisation", "plan"])
    info.add_metric([f.plan.organisation.name, f.plan.source], 1.0)
    yield info
    for part in (asset_metrics, repository_metrics, step_metrics, finding_metrics, drill_metrics, guard_metrics):
        yield from part(f)


class PlanCollector(Collector):
    """Metrics from ``facts()``, gathered at most once every ``ttl`` seconds."""

    def __init__(self, facts: Callable[[], Facts], ttl: float = 0.0) -> None:
        self.facts = facts
        self.ttl = ttl
        self._cached: tuple[float, list[Metric]] | None = None
        self._lock = threading.Lock()

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] >= self.ttl:
                self._cached = (time.monotonic(), list(all_metrics(self.facts())))
            return list(self._cached[1])


def exposition(facts: Facts) -> bytes:
    """The Prometheus text format of ``facts``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlanCollector(lambda: facts))
    return bytes(generate_latest(registry))


def serve(facts: Callable[[], Facts], host: str, port: int, ttl: float = 30.0) -> tuple[WSGIServer, threading.Thread]:
    """Serve the metrics over HTTP (any path; ``/metrics`` by convention) from a daemon thread."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlanCollector(facts, ttl))
    return start_http_server(port, addr=host, registry=registry)
