"""litestar_sse."""
