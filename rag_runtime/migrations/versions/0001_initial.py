"""Initial schema: collections, documents, chunks (pgvector + full text), term statistics.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
# Nothing ran before the first schema.
compatible_with_previous = False

UPGRADE = """
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE collections (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    embedding_model text NOT NULL,
    embedding_dimensions integer NOT NULL CHECK (embedding_dimensions > 0),
    chunk_count bigint NOT NULL DEFAULT 0,
    total_length bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    collection_id bigint NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    title text NOT NULL DEFAULT '',
    source text,
    content_type text NOT NULL,
    content text NOT NULL,
    content_hash text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    error text,
    attempts integer NOT NULL DEFAULT 0,
    chunk_count integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (collection_id, content_hash)
);
CREATE INDEX documents_collection_page ON documents (collection_id, created_at, id);
CREATE INDEX documents_pending ON documents (updated_at) WHERE status IN ('queued', 'processing');

CREATE TABLE chunks (
    id bigserial PRIMARY KEY,
    document_id uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    collection_id bigint NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    ordinal integer NOT NULL,
    text text NOT NULL,
    tsv tsvector NOT NULL,
    length integer NOT NULL,
    embedding vector NOT NULL,
    embedding_dim integer NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (document_id, ordinal)
);
CREATE INDEX chunks_collection ON chunks (collection_id);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
CREATE INDEX chunks_metadata ON chunks USING gin (metadata jsonb_path_ops);
-- One HNSW index per embedding dimension (expression + partial index on an untyped vector
-- column); the runtime creates the index for other dimensions when a collection needs it.
CREATE INDEX chunks_embedding_384 ON chunks
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE embedding_dim = 384;

-- Document frequencies per collection, kept by ingestion, for BM25 keyword scoring.
CREATE TABLE term_stats (
    collection_id bigint NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    lexeme text NOT NULL,
    df integer NOT NULL,
    PRIMARY KEY (collection_id, lexeme)
);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS term_stats;
DROP TABLE IF EXISTS chunks;
DROP TABLE IF EXISTS documents;
DROP TABLE IF EXISTS collections;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
