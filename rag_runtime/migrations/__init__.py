"""Alembic migrations of the runtime's schema (see rag_runtime.migrate)."""
