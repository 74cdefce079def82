"""`rag-runtime serve` drains on SIGTERM: it keeps serving `delay` seconds, then until no
request has come for `quiet` seconds, at most `most` seconds in all, then stops.

Aspects covered: with a delay, SIGTERM does not set should_exit at once but after the delay;
requests still arriving keep it serving past the delay, and it stops once they stop (a load
balancer slow to drop the endpoint); `most` bounds the drain however busy; a second signal
or SIGINT stops at once; without a delay SIGTERM stops at once; the rule itself.
"""

from __future__ import annotations

import signal
import time

import pytest
import uvicorn

from rag_runtime.cli import DrainingServer, drain_over


def _server(delay: float, quiet: float = 1.0, most: float = 0.0) -> DrainingServer:
    return DrainingServer(uvicorn.Config(app=lambda *a: None), delay, quiet=quiet, most=most)


def _wait_exit(server: DrainingServer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not server.should_exit and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.should_exit


def test_requests_still_coming_keep_it_serving_past_the_delay() -> None:
    server = _server(0.1, quiet=5.0, most=120)
    server.handle_exit(signal.SIGTERM, None)
    start = time.monotonic()
    last = start
    while last - start < 1.5:  # requests every 50 ms, well past the delay
        server.server_state.total_requests += 1
        last = time.monotonic()  # the drain sees this request at this time or later
        time.sleep(0.05)
        assert not server.should_exit
    _wait_exit(server)
    assert time.monotonic() - last >= 5.0  # it stopped only after the quiet time


def test_the_drain_stops_at_most_however_busy() -> None:
    server = _server(0.1, quiet=60.0, most=0.5)
    server.handle_exit(signal.SIGTERM, None)
    start = time.monotonic()
    while not server.should_exit and time.monotonic() - start < 60:
        server.server_state.total_requests += 1
        time.sleep(0.02)
    assert server.should_exit
    assert time.monotonic() - start >= 0.5


@pytest.mark.parametrize(
    ("elapsed", "quiet_for", "over"),
    [
        (0.5, 9.0, False),  # before the delay, even with no traffic
        (2.0, 0.2, False),  # after the delay, requests still arriving
        (2.0, 1.0, True),  # after the delay and quiet
        (20.0, 0.0, True),  # at the bound, whatever the traffic
    ],
)
def test_drain_rule(elapsed: float, quiet_for: float, over: bool) -> None:
    assert drain_over(elapsed, quiet_for, delay=1.0, quiet=1.0, most=20.0) is over


def test_sigterm_keeps_serving_for_the_delay_then_stops() -> None:
    server = _server(0.3, quiet=0.1)
    start = time.monotonic()
    server.handle_exit(signal.SIGTERM, None)
    assert not server.should_exit
    _wait_exit(server)
    assert time.monotonic() - start >= 0.3


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
