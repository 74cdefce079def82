"""HTTP API: dependencies and routers; `rag_runtime.app.create_app` assembles them."""
