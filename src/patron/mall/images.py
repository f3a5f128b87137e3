"""Gift images: validated with Pillow, resized, and kept behind one ``ImageStore`` interface —
on disk (the default) or in an S3-compatible bucket.

An upload is checked before anything is stored: its size in bytes, that Pillow reads it as a
JPEG, PNG or WebP (the declared content type is not trusted), and its dimensions. It is then
stored twice, re-encoded (which also drops metadata such as a phone's GPS position): a large
image (at most ``LARGE`` pixels on its longer side) and a thumbnail (``THUMB``). Keys are
content-addressed (``gifts/<code>/<sha256 prefix>-large.webp``), so a new upload never
overwrites what a page is still showing.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from PIL import Image, UnidentifiedImageError

from patron.errors import Invalid

FORMATS: Final = {"JPEG", "PNG", "WEBP"}
MIN_SIDE: Final = 100
MAX_SIDE: Final = 8000
LARGE: Final = 1200
THUMB: Final = 320
SIZES: Final = {"large": LARGE, "thumb": THUMB}
CONTENT_TYPE: Final = "image/webp"


class ImageStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def delete(self, key: str) -> None: ...


class DiskImageStore:
    """Files under one folder; a write goes to a temporary file renamed into place."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        path = (self.folder / key).resolve()
        if not path.is_relative_to(self.folder.resolve()):
            raise ValueError(f"image key {key!r} leaves the image folder")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        del content_type  # served from the key's extension
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except ValueError:
            return


class S3ImageStore:
    """Objects in an S3-compatible bucket (AWS S3, MinIO, OSS, COS…) under ``prefix``."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType=content_type
        )

    def get(self, key: str) -> bytes | None:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except self.client.exceptions.NoSuchKey:
            return None
        return bytes(obj["Body"].read())

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)


def store_from_settings(settings: Any) -> ImageStore:
    """The store the app's settings name (``mall_image_backend``)."""
    if settings.mall_image_backend == "s3":
        import boto3  # type: ignore[import-untyped]

        client = boto3.client("s3", endpoint_url=settings.mall_image_endpoint_url or None)
        return S3ImageStore(client, settings.mall_image_bucket, settings.mall_image_prefix)
    return DiskImageStore(Path(settings.mall_image_dir))


def for_app(state: Any) -> ImageStore:
    """The app's store, made on first use (``app.state.image_store``; tests set their own)."""
    store: ImageStore | None = getattr(state, "image_store", None)
    if store is None:
        store = state.image_store = store_from_settings(state.settings)
    return store


@dataclass(frozen=True, slots=True)
class Prepared:
    key: str  # the base key; the sizes are ``<key>-large.webp`` and ``<key>-thumb.webp``
    renditions: dict[str, bytes]
    width: int
    height: int


def size_key(key: str, size: str) -> str:
    return f"{key}-{size}.webp"


def prepare(gift_code: str, data: bytes, max_bytes: int, *, prefix: str = "gifts") -> Prepared:
    """Validate an upload and make its renditions; refuses with 422 and stores nothing.
    ``prefix`` files it under its owner (contest entries use ``ugc``)."""
    if not data:
        raise Invalid("image_empty", "Choose an image file to upload.")
    if len(data) > max_bytes:
        raise Invalid(
            "image_too_large",
            f"The image is {len(data):,} bytes; at most {max_bytes:,} are accepted.",
            details={"max_bytes": max_bytes},
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = img.format
            if fmt not in FORMATS:
                raise Invalid(
                    "image_type",
                    f"The file is {fmt or 'not an image'}; upload a JPEG, PNG or WebP image.",
                )
            width, height = img.size
            if max(width, height) > MAX_SIDE or min(width, height) < MIN_SIDE:
                raise Invalid(
                    "image_dimensions",
                    f"The image is {width}×{height} pixels; each side must be between "
                    f"{MIN_SIDE} and {MAX_SIDE}.",
                    details={"width": width, "height": height},
                )
            img.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombWarning, SyntaxError):
        raise Invalid(
            "image_type", "The file is not an image Pillow can read; upload a JPEG, PNG or WebP."
        ) from None
    flat = img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB")
    renditions = {}
    for name, side in SIZES.items():
        copy = flat.copy()
        copy.thumbnail((side, side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        copy.save(out, format="WEBP", quality=82, method=4)
        renditions[name] = out.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    return Prepared(f"{prefix}/{gift_code}/{digest}", renditions, width, height)


def save(store: ImageStore, prepared: Prepared) -> None:
    for name, blob in prepared.renditions.items():
        store.put(size_key(prepared.key, name), blob, CONTENT_TYPE)


def remove(store: ImageStore, key: str) -> None:
    """Delete every rendition of an image (one that is missing already is no error)."""
    for name in SIZES:
        store.delete(size_key(key, name))
