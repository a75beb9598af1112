"""Showing the plan's state: the disaster-recovery document and runbook (:mod:`.document`), its charts and diagram,
and the Prometheus metrics (:mod:`.metrics`)."""
