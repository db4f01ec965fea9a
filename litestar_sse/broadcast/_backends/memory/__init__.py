"""The in-memory backend: one process's history, no setup."""
