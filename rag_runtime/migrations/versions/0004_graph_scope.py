"""A graph scope: the id that makes this database's nodes in Neo4j its own.

The graph was keyed by the collection's and the chunk's integer ids, which every database
numbers from 1. Two databases writing one Neo4j (systems sharing an external Neo4j, a system
restored from another's backup) wrote each other's nodes, and the graph sweep, which removes
graph collections its Postgres lacks, deleted the other database's graph.

- graph_scope: one row (singleton is its key and can only be true) holding a UUID that
  Postgres generates here. Every node the runtime writes carries it as `scope`; Neo4j's
  uniqueness constraints are composite with it; reads, deletes and the sweep match it.
- A restore gives the restored database a scope of its own (the target's own when it had
  one, a new one otherwise), never the backup's: the source may still be serving.

Graph nodes written before this revision have no scope and are not seen; a restore (or
re-ingesting the documents) rebuilds them. A runtime at 0003 ignores the table.

The downgrade keeps the table (a runtime at 0003 ignores it): upgrading again finds the same
scope, and with it the graph written under it, instead of a new one that sees none of it. A
downgrade below 0003 that refuses therefore loses nothing here either.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
# Adds a table only: a runtime at 0003 serves this schema as before.
compatible_with_previous = True

UPGRADE = """
CREATE TABLE IF NOT EXISTS graph_scope (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO graph_scope DEFAULT VALUES ON CONFLICT (singleton) DO NOTHING;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    """Keeps graph_scope: the database's nodes in Neo4j stay its own across a downgrade."""
