"""Keyset paging, newest first: an opaque cursor holds the last row's (created_at, id), so a page
deep in a large list costs one index range scan, not an OFFSET."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, or_

from .errors import InvalidCursor

Limit = Annotated[int, Field(ge=1, le=100, description="Items per page (1-100).")]


class PageQuery(BaseModel):
    limit: Limit = 50
    cursor: str | None = Field(default=None, description="next_cursor of the previous page.")


def encode_cursor(created_at: datetime, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created_at, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            raise ValueError("cursor time without a zone")
        return moment, row_id
    except (ValueError, UnicodeError):
        raise InvalidCursor(
            "The cursor is not one this API gave out. Use next_cursor from the previous page, "
            "or leave it out to start from the newest."
        ) from None


def newest_first(query: Select[Any], model: Any, page: PageQuery) -> Select[Any]:
    """``query`` ordered newest first, after the cursor, with one extra row to tell if there is
    a next page."""
    query = query.order_by(model.created_at.desc(), model.id.desc()).limit(page.limit + 1)
    if page.cursor:
        created_at, row_id = _decode_cursor(page.cursor)
        # Spelled out rather than a row-value comparison, so the bound values take the columns'
        # types (SQLite compares datetimes as strings in the column's own format).
        query = query.where(
            or_(
                model.created_at < created_at,
                and_(model.created_at == created_at, model.id < row_id),
            )
        )
    return query


def next_cursor(rows: list[Any], page: PageQuery) -> str | None:
    """Drops the extra row fetched by :func:`newest_first`; the cursor to the page after."""
    if len(rows) <= page.limit:
        return None
    del rows[page.limit :]
    return encode_cursor(rows[-1].created_at, rows[-1].id)
