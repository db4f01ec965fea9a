"""The Redis Streams backend: one history shared by many processes (needs redis-py)."""
