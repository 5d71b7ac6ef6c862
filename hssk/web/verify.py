"""The page a document's QR code opens (``/verify/<token>``): whether the platform issued it.

Public, like the paper it is printed on: whoever holds the document scans the code and reads
what the platform signed — the kind of document, the holder's initials, when it was issued and
the code of its content (printed in the footer) — nothing more of the person's record. The
page reads no data: it checks the token's signature with the platform's key.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hssk.access.signing import read_claims
from hssk.web import render

router = APIRouter(include_in_schema=False)
MAX_TOKEN = 2000


@router.get("/verify/{token}")
def verify_page(token: str, request: Request) -> Response:
    claims = read_claims(request.app.state.settings, token) if len(token) <= MAX_TOKEN else None
    issued = None
    if claims and isinstance(claims.get("i"), str):
        try:
            issued = datetime.fromisoformat(claims["i"].replace("Z", "+00:00"))
        except ValueError:
            claims = None
    return render.page(
        request, "verify.html", claims=claims, issued=issued, status=200 if claims else 400
    )
