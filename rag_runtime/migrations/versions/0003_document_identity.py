"""Documents with identical content but different descriptions are separate documents.

Until now a collection held one document per content (UNIQUE (collection_id, content_hash)),
so a second upload of the same text under another title, source or metadata (another id in
the caller's system) silently returned the first document and dropped what described it.

- documents.identity_hash: sha256 of the upload's description, the JSON array
  [title, source, metadata] as Postgres prints it (jsonb, so key order does not matter).
  The runtime computes it with the same expression (rag_runtime.store).
- A re-send is the same content with the same description: UNIQUE (collection_id,
  content_hash, identity_hash). Identical content under another description is a document of
  its own; the API names the earlier one as `duplicate_of`. The unique index also serves
  lookups of a collection's documents by content.

A runtime older than this revision cannot ingest on this schema (its insert names the old
unique constraint). The downgrade refuses, naming the collection, while a collection holds
documents with identical content, instead of deleting any.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
# A runtime at 0002 inserts documents naming the dropped unique constraint.
compatible_with_previous = False

IDENTITY_SQL = (
    "encode(sha256(convert_to(jsonb_build_array({title}::text, {source}::text, "
    "{metadata}::jsonb)::text, 'UTF8')), 'hex')"
)

UPGRADE = f"""
ALTER TABLE documents ADD COLUMN identity_hash text;
UPDATE documents SET identity_hash = {
    IDENTITY_SQL.format(title="title", source="source", metadata="metadata")
};
ALTER TABLE documents ALTER COLUMN identity_hash SET NOT NULL;
ALTER TABLE documents DROP CONSTRAINT documents_collection_id_content_hash_key;
ALTER TABLE documents ADD CONSTRAINT documents_upload_key
    UNIQUE (collection_id, content_hash, identity_hash);
"""

DOWNGRADE = """
DO $$
DECLARE
    name text;
BEGIN
    SELECT c.name INTO name FROM documents d JOIN collections c ON c.id = d.collection_id
    GROUP BY c.name, d.collection_id, d.content_hash HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot downgrade below 0003: collection % holds documents with '
            'identical content; delete the duplicates first', name;
    END IF;
END
$$;
ALTER TABLE documents DROP CONSTRAINT IF EXISTS documents_upload_key;
ALTER TABLE documents ADD CONSTRAINT documents_collection_id_content_hash_key
    UNIQUE (collection_id, content_hash);
ALTER TABLE documents DROP COLUMN IF EXISTS identity_hash;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
