"""How long a system's resync loop sleeps between passes."""

from __future__ import annotations

from rag_operator.handlers import wait_seconds


def test_the_resync_period_without_anything_due() -> None:
    assert wait_seconds(5.0, None, None, now=100.0) == 5.0


def test_a_due_analysis_wakes_the_loop_sooner() -> None:
    assert wait_seconds(5.0, 101.5, None, now=100.0) == 1.5
    assert wait_seconds(5.0, 99.0, None, now=100.0) == 0.05  # overdue: at once


def test_a_backoff_is_waited_out_instead_of_polled() -> None:
    # An overdue analysis while backing off used to wake the loop every 50 ms for nothing.
    assert wait_seconds(5.0, 99.0, 104.0, now=100.0) == 4.0
    assert wait_seconds(5.0, None, 130.0, now=100.0) == 30.0
    assert wait_seconds(5.0, 101.0, 99.0, now=100.0) == 1.0  # a backoff that is over
