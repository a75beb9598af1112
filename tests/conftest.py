"""Fixtures shared by every test directory: private servers started on 127.0.0.1 and stopped by PID."""

pytest_plugins = ["alert_receivers", "rest_server", "s3_server", "sshd_server"]
