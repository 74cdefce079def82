"""Alembic environment: one connection, a session advisory lock around every upgrade."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlalchemy.pool import NullPool

from rag_runtime.migrate import ADVISORY_LOCK_ID

url = context.config.attributes["url"]
engine = sa.create_engine(url, poolclass=NullPool)
with engine.connect() as connection:
    # Two migrators (e.g. an init job and an API pod) serialize here; the second finds the
    # schema current and does nothing.
    connection.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
    connection.commit()
    try:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        connection.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
        connection.commit()
engine.dispose()
