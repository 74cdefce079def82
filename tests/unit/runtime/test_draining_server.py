"""`rag-runtime serve` drains on SIGTERM: it keeps serving `delay` seconds, then stops.

Aspects covered: with a delay, SIGTERM does not set should_exit at once but after the delay;
a second signal or SIGINT stops at once; without a delay SIGTERM stops at once.
"""

from __future__ import annotations

import signal
import time

import uvicorn

from rag_runtime.cli import DrainingServer


def _server(delay: float) -> DrainingServer:
    return DrainingServer(uvicorn.Config(app=lambda *a: None), delay)


def test_sigterm_keeps_serving_for_the_delay_then_stops() -> None:
    server = _server(0.3)
    server.handle_exit(signal.SIGTERM, None)
    assert not server.should_exit
    deadline = time.monotonic() + 30
    while not server.should_exit and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.should_exit


def test_sigint_or_a_second_signal_stops_at_once() -> None:
    server = _server(30)
    server.handle_exit(signal.SIGINT, None)
    assert server.should_exit
    server = _server(30)
    server.handle_exit(signal.SIGTERM, None)
    server.handle_exit(signal.SIGTERM, None)
    assert server.should_exit


def test_no_delay_stops_at_once() -> None:
    server = _server(0)
    server.handle_exit(signal.SIGTERM, None)
    assert server.should_exit
