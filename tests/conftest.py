"""Shared fixtures: real backing services and the local Kubernetes cluster."""

pytest_plugins = ["tests.fixtures.services", "tests.fixtures.cluster"]
