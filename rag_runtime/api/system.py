"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from rag_runtime.api.deps import RuntimeDep

router = APIRouter()


@router.get("/api/v1/health", tags=["system"])
async def health() -> dict[str, str]:
    """The process is alive (no dependency is checked)."""
    return {"status": "ok"}


class ReadyOut(BaseModel):
    status: str = Field(description="ready or not ready")
    checks: dict[str, dict[str, Any]] = Field(description="State of each dependency.")


@router.get(
    "/api/v1/ready",
    tags=["system"],
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "A required dependency is down"}},
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """Per-dependency status; 503 when a required dependency is down."""
    ok, checks = await runtime.readiness()
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "checks": checks},
        status_code=200 if ok else 503,
    )


@router.get("/metrics", tags=["system"], include_in_schema=False)
async def metrics(runtime: RuntimeDep) -> Response:
    await runtime.refresh_gauges()
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
