"""Benchmarks of litestar_sse against the raw ASGI floor and the other Python SSE servers.

Run with ``make bench`` or ``make bench-quick``; see ``benchmarks/README.md``.
"""
