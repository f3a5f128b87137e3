"""Gift images: Pillow validation (type, bytes, dimensions) and resizing, the disk store and the
S3-compatible store (moto's mock of S3) behind one interface."""

from __future__ import annotations

import io

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from patron.errors import PatronError
from patron.mall import images


def picture(width: int, height: int, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), (200, 30, 60) if mode == "RGB" else None).save(out, fmt)
    return out.getvalue()


def test_an_upload_is_resized_into_two_webp_renditions():
    prepared = images.prepare("MUG", picture(2400, 1600, "JPEG"), 5_000_000)
    assert (prepared.width, prepared.height) == (2400, 1600)
    assert prepared.key.startswith("gifts/MUG/")
    sizes = {n: Image.open(io.BytesIO(b)) for n, b in prepared.renditions.items()}
    assert {n: (i.format, i.size) for n, i in sizes.items()} == {
        "large": ("WEBP", (1200, 800)),
        "thumb": ("WEBP", (320, 213)),
    }
    # the same bytes give the same key; other bytes another one
    assert images.prepare("MUG", picture(2400, 1600, "JPEG"), 5_000_000).key == prepared.key
    assert images.prepare("MUG", picture(300, 300), 5_000_000).key != prepared.key
    small = images.prepare("MUG", picture(150, 120, "WEBP"), 5_000_000)
    assert Image.open(io.BytesIO(small.renditions["large"])).size == (150, 120)  # never enlarged
    rgba = images.prepare("MUG", picture(200, 200, "PNG", "RGBA"), 5_000_000)
    assert Image.open(io.BytesIO(rgba.renditions["thumb"])).mode == "RGBA"


@pytest.mark.parametrize(
    ("data", "limit", "code"),
    [
        (b"", 1000, "image_empty"),
        (b"GIF89a not really", 1000, "image_type"),
        (b"%PDF-1.4 a document", 1000, "image_type"),
        (picture(200, 200, "GIF"), 100_000, "image_type"),
        (picture(200, 200, "BMP"), 1_000_000, "image_type"),
        (picture(99, 400), 100_000, "image_dimensions"),
        (picture(8001, 120), 10_000_000, "image_dimensions"),
        (picture(400, 400), 100, "image_too_large"),
    ],
)
def test_bad_uploads_are_refused(data, limit, code):
    with pytest.raises(PatronError) as refused:
        images.prepare("MUG", data, limit)
    assert (refused.value.code, refused.value.status) == (code, 422)


def test_a_truncated_image_is_refused():
    data = picture(400, 400, "PNG")
    with pytest.raises(PatronError) as refused:
        images.prepare("MUG", data[: len(data) // 2], 1_000_000)
    assert refused.value.code == "image_type"


def test_the_disk_store(tmp_path):
    store = images.DiskImageStore(tmp_path / "img")
    prepared = images.prepare("MUG", picture(400, 300), 1_000_000)
    images.save(store, prepared)
    for size in ("large", "thumb"):
        key = images.size_key(prepared.key, size)
        assert store.get(key) == prepared.renditions[size]
        assert (tmp_path / "img" / key).is_file()
    assert store.get("gifts/MUG/nothing-large.webp") is None
    assert store.get("../../etc/passwd") is None  # a key never leaves the folder
    with pytest.raises(ValueError):
        store.put("../outside.webp", b"x", images.CONTENT_TYPE)


def test_the_s3_store_with_moto(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="gifts")
        store = images.S3ImageStore(client, "gifts", "mall/")
        prepared = images.prepare("MUG", picture(400, 300), 1_000_000)
        images.save(store, prepared)
        key = images.size_key(prepared.key, "thumb")
        head = client.head_object(Bucket="gifts", Key="mall/" + key)
        assert head["ContentType"] == "image/webp"
        assert store.get(key) == prepared.renditions["thumb"]
        assert store.get("gifts/MUG/none-thumb.webp") is None


def test_the_store_follows_the_settings(tmp_path, monkeypatch):
    from patron.config import Settings

    disk = images.store_from_settings(Settings(mall_image_dir=tmp_path))
    assert isinstance(disk, images.DiskImageStore) and disk.folder == tmp_path
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = images.store_from_settings(
        Settings(mall_image_backend="s3", mall_image_bucket="b", mall_image_prefix="p/")
    )
    assert isinstance(s3, images.S3ImageStore) and (s3.bucket, s3.prefix) == ("b", "p/")
