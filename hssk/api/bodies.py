"""Request bodies read before the handler runs.

Handlers that touch the database are plain ``def`` (FastAPI runs them in its thread pool); an
``async def`` handler blocks the event loop for every query it makes. The awaitable part, reading
the body, is done by these dependencies, so the handler itself need not be async.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request


async def form_fields(request: Request) -> dict[str, str]:
    """The text fields of a form post (files are not taken here)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def json_or_form(request: Request) -> dict[str, Any]:
    """A JSON object or the text fields of a form, whichever the request carries; {} when the
    body is neither (the handler says what is missing)."""
    try:
        if "application/json" in request.headers.get("content-type", ""):
            data = await request.json()
            return data if isinstance(data, dict) else {}
        return await form_fields(request)
    except ValueError:
        return {}


async def raw_body(request: Request) -> bytes:
    """The request body as sent (the handler parses it and says what is wrong)."""
    return await request.body()


FormFields = Annotated[dict[str, str], Depends(form_fields)]
JsonOrForm = Annotated[dict[str, Any], Depends(json_or_form)]
RawBody = Annotated[bytes, Depends(raw_body)]
