"""Prometheus metrics of the server: requests, bytes, errors per repository and user, and the last write time.

Every series carries a ``user`` label (``-`` before authentication), so a scrape can be limited to one user's own
series (:meth:`ServerMetrics.render` with ``user``), which is what a client sees under ``--private-repos``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


class ServerMetrics:
    """One registry per server (tests run several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("repo", "user")
        self.requests = Counter(
            "sauvegarde_server_requests", "Requests", (*labels, "method", "status"), registry=self.registry
        )
        self.bytes_received = Counter(
            "sauvegarde_server_received_bytes", "Object bytes received", labels, registry=self.registry
        )
        self.bytes_sent = Counter("sauvegarde_server_sent_bytes", "Object bytes sent", labels, registry=self.registry)
        self.errors = Counter(
            "sauvegarde_server_errors", "Requests answered with a 4xx or 5xx status", labels, registry=self.registry
        )
        self.last_write = Gauge(
            "sauvegarde_server_last_write_timestamp_seconds",
            "Unix time of the last object stored",
            labels,
            registry=self.registry,
        )

    def observe(self, repo: str, user: str, method: str, status: int, received: int, sent: int) -> None:
        self.requests.labels(repo, user, method, str(status)).inc()
        if received:
            self.bytes_received.labels(repo, user).inc(received)
        if sent:
            self.bytes_sent.labels(repo, user).inc(sent)
        if status >= 400:
            self.errors.labels(repo, user).inc()

    def wrote(self, repo: str, user: str) -> None:
        self.last_write.labels(repo, user).set(time.time())

    def render(self, user: str | None = None) -> bytes:
        """The text exposition: every series, or with ``user`` only the series labelled ``user="USER"``."""
        return generate_latest(self.registry if user is None else _OneUser(self.registry, user))


class _OneUser(Collector):
    """The registry's metrics with only the samples of one user (families keep their HELP and TYPE lines)."""

    def __init__(self, registry: CollectorRegistry, user: str) -> None:
        self.registry = registry
        self.user = user

    def collect(self) -> Iterable[Metric]:
        for family in self.registry.collect():
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            kept.samples = [s for s in family.samples if s.labels.get("user") == self.user]
            yield kept
