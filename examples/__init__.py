"""Runnable example apps: ``.venv/bin/uvicorn examples.<name>:app``, or ``make demo``."""
