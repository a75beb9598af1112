"""Alerts: what is wrong (or, weekly, that nothing is), sent by email and webhooks, de-duplicated and rate-limited.

:mod:`.collect` turns the plan, the observed state and the state database into :class:`~.message.Alert` records;
:mod:`.notify` decides what to send and records it; :mod:`.email` and :mod:`.webhook` deliver.
"""
