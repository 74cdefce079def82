"""Keyword postings and a change log, for the API's in-memory BM25 index.

- postings: one row per (chunk, term) with the term's frequency in the chunk. API
  processes load a collection's postings once (a binary COPY) into an in-memory inverted
  index (rag_runtime.keyword_index). Existing chunks are backfilled.
- collections.version: bumped by every transaction that adds or removes chunks. The bump
  takes the collection row's lock until commit, so versions commit in order.
- chunks.version and removed_chunks: what each version added and removed, so an index at
  version v catches up by reading only the changes after v. Tombstones older than
  collections.removed_since are pruned; an index older than that reloads.
- The GIN index on chunks.tsv has no reader left and goes.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
# A runtime at 0001 writes chunks without postings or version bumps: API indexes would miss them.
compatible_with_previous = False

UPGRADE = """
ALTER TABLE term_stats ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE term_stats ADD CONSTRAINT term_stats_id_key UNIQUE (id);

ALTER TABLE collections ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE collections ADD COLUMN removed_since bigint NOT NULL DEFAULT 0;
ALTER TABLE chunks ADD COLUMN version bigint NOT NULL DEFAULT 0;
CREATE INDEX chunks_collection_version ON chunks (collection_id, version);

CREATE TABLE removed_chunks (
    collection_id bigint NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    version bigint NOT NULL,
    chunk_id bigint NOT NULL,
    PRIMARY KEY (collection_id, version, chunk_id)
);

-- Removed with their chunk (cascade); term ids come from term_stats in the same transaction.
CREATE TABLE postings (
    chunk_id bigint NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
    term_id bigint NOT NULL,
    tf integer NOT NULL CHECK (tf > 0),
    PRIMARY KEY (chunk_id, term_id) INCLUDE (tf)
);

INSERT INTO postings (chunk_id, term_id, tf)
SELECT ch.id, t.id, greatest(cardinality(u.positions), 1)
FROM chunks ch
CROSS JOIN LATERAL unnest(ch.tsv) u
JOIN term_stats t ON t.collection_id = ch.collection_id AND t.lexeme = u.lexeme;

DROP INDEX IF EXISTS chunks_tsv;
"""

DOWNGRADE = """
CREATE INDEX IF NOT EXISTS chunks_tsv ON chunks USING gin (tsv);
DROP TABLE IF EXISTS postings;
DROP TABLE IF EXISTS removed_chunks;
DROP INDEX IF EXISTS chunks_collection_version;
ALTER TABLE chunks DROP COLUMN IF EXISTS version;
ALTER TABLE collections DROP COLUMN IF EXISTS removed_since;
ALTER TABLE collections DROP COLUMN IF EXISTS version;
ALTER TABLE term_stats DROP CONSTRAINT IF EXISTS term_stats_id_key;
ALTER TABLE term_stats DROP COLUMN IF EXISTS id;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
