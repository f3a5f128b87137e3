"""Thin routes of a gift's images: upload (multipart), list, fetch a rendition and delete.
Uploads are validated and re-encoded by ``images.prepare`` before anything is stored."""

from __future__ import annotations

import re
from typing import Annotated, Final

from fastapi import Depends, Form, Path, Request, UploadFile
from fastapi.responses import Response
from starlette.background import BackgroundTask

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.errors import Invalid, NotFound
from patron.mall import gallery, images
from patron.mall import service as mall
from patron.mall.models import Gift, GiftImage
from patron.mall.schemas import GiftImageList, GiftImageOut, GiftImageUpload
from patron.web.deps import ClockDep, SessionDep, require
from patron.web.openapi import errors
from patron.web.routing import api_router

router = api_router("/api/v1/mall", tags=["mall"])
Code = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Read = Annotated[Principal, Depends(require(perm.MALL_READ))]
Manage = Annotated[Principal, Depends(require(perm.MALL_MANAGE))]

#: the upload's address (its body may be larger than other requests', see app.py)
API_UPLOAD: Final = re.compile(r"^/api/v1/mall/gifts/[A-Za-z0-9_-]{1,32}/images$")
#: declared content types accepted (Pillow still decides what the bytes are)
CONTENT_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/webp"})


def read_upload(image: UploadFile | None, max_bytes: int) -> bytes:
    """An uploaded image's bytes (one more than allowed, so ``images.prepare`` sees it is too
    large), refused when missing or declared as another type than JPEG, PNG or WebP."""
    if image is None:
        raise Invalid("image_empty", "Choose an image file to upload (multipart field image).")
    declared = (image.content_type or "").split(";")[0].strip().lower()
    if declared not in CONTENT_TYPES:
        raise Invalid(
            "image_content_type",
            f"The file is sent as {declared or 'no type'}; send a JPEG, PNG or WebP image "
            "(image/jpeg, image/png or image/webp).",
            details={"content_type": declared},
        )
    return image.file.read(max_bytes + 1)


def image_out(gift: Gift, row: GiftImage) -> GiftImageOut:
    base = f"/api/v1/mall/gifts/{gift.code}/images/{row.id}"
    return GiftImageOut(
        id=row.id,
        key=row.key,
        width=row.width,
        height=row.height,
        main=row.key == gift.image_key,
        created_at=row.created_at,
        created_by=row.created_by,
        urls={size: f"{base}/{size}" for size in images.SIZES},
    )


@router.post(
    "/gifts/{code}/images",
    response_model=GiftImageOut,
    status_code=201,
    summary="Upload an image of a gift (multipart field `image`: JPEG, PNG or WebP)",
    operation_id="upload_gift_image",
    responses=errors(404, 413, 422),
)
def upload_image(
    code: Code,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    principal: Manage,
    form: Annotated[GiftImageUpload, Form(media_type="multipart/form-data")],
) -> GiftImageOut:
    """Checked before anything is stored: the declared type, the size, that Pillow reads it
    as an image and its dimensions; stored re-encoded as WebP in two sizes; the gift's pages
    show it from then on."""
    gift = mall.get_gift(session, code)
    max_bytes = request.app.state.settings.mall_image_max_bytes
    prepared = images.prepare(gift.code, read_upload(form.image, max_bytes), max_bytes)
    images.save(images.for_app(request.app.state), prepared)
    row = gallery.add(session, principal, gift, prepared, clock.now())
    return image_out(gift, row)


@router.get(
    "/gifts/{code}/images",
    response_model=GiftImageList,
    summary="A gift's images, newest first",
    responses=errors(404),
)
def list_images(code: Code, session: SessionDep, _p: Read) -> GiftImageList:
    gift = mall.get_gift(session, code)
    return GiftImageList(items=[image_out(gift, r) for r in gallery.of_gift(session, gift)])


@router.get(
    "/gifts/{code}/images/{image_id}/{size}",
    response_class=Response,
    summary="One rendition of a gift's image (image/webp)",
    responses={**errors(404), 200: {"content": {images.CONTENT_TYPE: {}}}},
)
def get_image(
    code: Code,
    image_id: int,
    size: Annotated[str, Path(pattern=r"^(large|thumb)$")],
    request: Request,
    session: SessionDep,
    _p: Read,
) -> Response:
    gift = mall.get_gift(session, code)
    row = session.get(GiftImage, image_id)
    blob = (
        images.for_app(request.app.state).get(images.size_key(row.key, size))
        if row is not None and row.gift_id == gift.id
        else None
    )
    if row is None or blob is None:
        raise NotFound("image_not_found", f"Gift {gift.code} has no image {image_id}.")
    return Response(blob, media_type=images.CONTENT_TYPE, headers={"ETag": f'"{row.key}"'})


@router.delete(
    "/gifts/{code}/images/{image_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an image of a gift (its pages show the latest one left)",
    responses=errors(404),
)
def delete_image(
    code: Code,
    image_id: int,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    principal: Manage,
) -> Response:
    row = gallery.delete(session, principal, code, image_id, clock.now())
    # the renditions go after the response, i.e. once the deletion is committed (a failed
    # commit sends no response and keeps them)
    store = images.for_app(request.app.state)
    return Response(status_code=204, background=BackgroundTask(images.remove, store, row.key))
