"""A small client of the Prometheus HTTP API: one instant query, one value."""

from __future__ import annotations

import math
from typing import Any

import aiohttp


class PrometheusUnreachableError(Exception):
    """Prometheus did not answer, or answered with an error."""


class Prometheus:
    """Instant queries against one Prometheus (a session per operator, closed at cleanup)."""

    def __init__(self, timeout_s: float = 5.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def value(self, address: str, query: str) -> float | None:
        """The single value `query` returns now; None when it returns no sample (no data).

        Raises PrometheusUnreachableError when Prometheus cannot be asked or refuses the query.
        """
        session = await self._get_session()
        url = f"{address.rstrip('/')}/api/v1/query"
        try:
            async with session.get(url, params={"query": query}) as resp:
                body: dict[str, Any] = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise PrometheusUnreachableError(f"Prometheus at {address} unreachable: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusUnreachableError(
                f"Prometheus refused the query: {body.get('error', body)}"[:500]
            )
        return first_value(body.get("data") or {})


def first_value(data: dict[str, Any]) -> float | None:
    """The value of an instant vector of one sample, or a scalar; None for no (finite) data."""
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list):
        raw = result[1]
    elif kind == "vector" and isinstance(result, list) and result:
        raw = result[0]["value"][1]
    else:
        return None
    value = float(raw)
    return value if math.isfinite(value) else None
