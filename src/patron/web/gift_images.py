"""Gift images served from the image store, for the console and the portal (each route keeps
its own sign-in)."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from patron.errors import NotFound
from patron.mall import images
from patron.mall import service as mall
from patron.web.pages import get_session


def serve_image(request: Request, code: str, size: str) -> Response:
    """A gift's image at one size, from the image store (for the console and the portal)."""
    gift = mall.get_gift(get_session(request), code)
    blob = (
        images.for_app(request.app.state).get(images.size_key(gift.image_key, size))
        if gift.image_key
        else None
    )
    if blob is None:
        raise NotFound("image_not_found", f"Gift {code} has no image.")
    # content-addressed keys: a new upload is a new address, so the bytes never change
    return Response(
        blob,
        media_type=images.CONTENT_TYPE,
        headers={"Cache-Control": "private, max-age=86400", "ETag": f'"{gift.image_key}"'},
    )
