"""Which failed connections `rag-runtime migrate` waits out (`rag_runtime.migrate.worth_waiting`).

Aspects covered: no answer (refused, timeout, unknown host) and a server starting up are
waited for; a missing database, a wrong password, a pg_hba refusal and a missing privilege
fail at once; an error that carries a SQLSTATE is judged by it.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from rag_runtime.migrate import worth_waiting


class _DriverError(Exception):
    def __init__(self, text: str, sqlstate: str | None = None) -> None:
        super().__init__(text)
        self.sqlstate = sqlstate


def _error(text: str, sqlstate: str | None = None) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("connect", {}, _DriverError(text, sqlstate))


@pytest.mark.parametrize(
    "text",
    [
        'connection failed: connection to server at "10.96.0.12", port 5432 failed: '
        "Connection refused",
        "connection timeout expired",
        'failed to resolve host "demo-postgres": [Errno -2] Name or service not known',
        "FATAL:  the database system is starting up",
    ],
)
def test_no_answer_yet_is_waited_for(text: str) -> None:
    assert worth_waiting(_error(text)) is True


@pytest.mark.parametrize(
    "text",
    [
        'FATAL:  database "rag" does not exist',
        'FATAL:  password authentication failed for user "rag"',
        'FATAL:  no pg_hba.conf entry for host "10.0.0.5"',
        'FATAL:  permission denied for database "rag"',
    ],
)
def test_a_server_that_said_no_fails_at_once(text: str) -> None:
    assert worth_waiting(_error(text)) is False


def test_a_sqlstate_decides_when_there_is_one() -> None:
    assert worth_waiting(_error("the database system is starting up", "57P03")) is True
    assert worth_waiting(_error("whatever it says", "28P01")) is False
