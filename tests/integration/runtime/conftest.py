"""Fixtures for runtime integration tests: one database per module on the shared Postgres."""

from __future__ import annotations

import re

import pytest

from hack.services import PostgresService


@pytest.fixture(scope="module")
def database_url(postgres: PostgresService, request: pytest.FixtureRequest) -> str:
    """A fresh database for this test module."""
    name = "rt_" + re.sub(r"[^a-z0-9]+", "_", request.module.__name__.split(".")[-1].lower())
    return postgres.create_database(name[:60])
