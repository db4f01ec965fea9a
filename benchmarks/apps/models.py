"""Pydantic model of the benchmark record (FastAPI's native shape, and a litestar_sse variant)."""

from __future__ import annotations

import pydantic


class ItemModel(pydantic.BaseModel):
    id: int
    name: str
    price: float
    tags: list[str]
    in_stock: bool
