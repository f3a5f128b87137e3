"""Gift images through the API: upload (multipart), list, fetch and delete, against the disk
store and the S3-compatible store (moto); refusals say why and store nothing; scopes, audit
records and statement budgets."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import func, select

from patron.audit.models import AuditRecord
from patron.mall import images
from patron.mall.models import Gift, GiftImage
from tests.mall.helpers import setup_gift
from tests.mall.test_images import picture
from tests.statements import count_statements

URL = "/api/v1/mall/gifts/MUG/images"


@pytest.fixture(params=["disk", "s3"])
def store(request, app, tmp_path, monkeypatch):
    if request.param == "disk":
        folder = tmp_path / "img"
        app.state.image_store = images.DiskImageStore(folder)
        yield (
            lambda: (
                sorted(str(p.relative_to(folder)) for p in folder.rglob("*.webp"))
                if folder.exists()
                else []
            )
        )
        return
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="gifts")
        app.state.image_store = images.S3ImageStore(client, "gifts", "mall/")

        def keys():
            listed = client.list_objects_v2(Bucket="gifts").get("Contents", [])
            return sorted(o["Key"].removeprefix("mall/") for o in listed)

        yield keys


def _upload(client, headers, data, name="mug.png", ctype="image/png", url=URL):
    return client.post(url, files={"image": (name, data, ctype)}, headers=headers)


def test_upload_list_fetch_and_delete(client, database, auth_headers, store):
    op = auth_headers("operator")
    setup_gift(client, op, "MUG")
    first = _upload(client, op, picture(1600, 1200, "JPEG"), "a.jpg", "image/jpeg")
    assert first.status_code == 201, first.text
    one = first.json()
    assert (one["width"], one["height"], one["main"]) == (1600, 1200, True)
    assert one["key"].startswith("gifts/MUG/")
    second = _upload(client, op, picture(300, 300)).json()
    assert store() == sorted(
        images.size_key(k, s) for k in (one["key"], second["key"]) for s in ("large", "thumb")
    )
    listed = client.get(URL, headers=auth_headers("clerk")).json()["items"]
    assert [(i["id"], i["main"]) for i in listed] == [(second["id"], True), (one["id"], False)]
    thumb = client.get(one["urls"]["thumb"], headers=op)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert thumb.content[:4] == b"RIFF"
    # the same bytes again are the same image
    again = _upload(client, op, picture(300, 300))
    assert again.status_code == 201 and again.json()["id"] == second["id"]
    # deleting the image pages show falls back to the one left, and its files go
    gone = client.delete(f"{URL}/{second['id']}", headers=op)
    assert gone.status_code == 204
    assert store() == sorted(images.size_key(one["key"], s) for s in ("large", "thumb"))
    with database.unit_of_work() as s:
        assert s.scalar(select(Gift.image_key).where(Gift.code == "MUG")) == one["key"]
        actions = s.scalars(select(AuditRecord.action).where(AuditRecord.entity_id == "MUG")).all()
        assert actions.count("mall.gift_image") == 3
        assert actions.count("mall.gift_image_delete") == 1
    assert client.get(f"{URL}/{second['id']}/thumb", headers=op).status_code == 404
    assert client.delete(f"{URL}/{second['id']}", headers=op).status_code == 404
    assert client.delete(f"{URL}/{one['id']}", headers=op).status_code == 204
    assert store() == []
    with database.unit_of_work() as s:
        assert s.scalar(select(Gift.image_key).where(Gift.code == "MUG")) is None
    assert client.get(URL, headers=op).json()["items"] == []


@pytest.mark.parametrize(
    ("data", "ctype", "status", "code"),
    [
        (picture(300, 300), "text/plain", 422, "image_content_type"),
        (picture(300, 300), "application/pdf", 422, "image_content_type"),
        (b"%PDF-1.4 not a picture", "image/png", 422, "image_type"),
        (picture(200, 200, "GIF"), "image/png", 422, "image_type"),
        (picture(60, 300), "image/png", 422, "image_dimensions"),
        (b"", "image/png", 422, "image_empty"),
    ],
)
def test_refusals_store_nothing(client, database, auth_headers, store, data, ctype, status, code):
    op = auth_headers("operator")
    setup_gift(client, op, "MUG")
    r = _upload(client, op, data, ctype=ctype)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert r.json()["error"]["message"]
    assert store() == []
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(GiftImage)) == 0


def test_too_large_and_other_refusals(client, app, auth_headers, store):
    op = auth_headers("operator")
    setup_gift(client, op, "MUG")
    app.state.settings = app.state.settings.model_copy(update={"mall_image_max_bytes": 2000})
    big = _upload(client, op, picture(400, 400, "PNG", "RGB") + b"\0" * 3000)
    assert (big.status_code, big.json()["error"]["code"]) == (422, "image_too_large")
    none = client.post(URL, data={"x": "1"}, headers=op)
    assert (none.status_code, none.json()["error"]["code"]) == (422, "image_empty")
    nope = _upload(client, op, picture(300, 300), url="/api/v1/mall/gifts/NOPE/images")
    assert (nope.status_code, nope.json()["error"]["code"]) == (404, "gift_not_found")
    # the clerk may see the images, not change them
    clerk = auth_headers("clerk")
    assert _upload(client, clerk, picture(300, 300)).status_code == 403
    assert client.delete(f"{URL}/1", headers=clerk).status_code == 403
    assert store() == []


def test_a_body_over_the_upload_cap_is_413(client, app, auth_headers, tmp_path):
    app.state.image_store = images.DiskImageStore(tmp_path / "img")
    op = auth_headers("operator")
    setup_gift(client, op, "MUG")
    cap = app.state.settings.mall_image_max_bytes
    r = _upload(client, op, b"\0" * (cap + 200 * 1024))
    assert r.status_code == 413
    assert not (tmp_path / "img").exists()


# Measured when written: authentication (2), the gift, the image lookup, its insert, the gift's
# update and the audit record; a delete reads the gift, the image and the one left.
BUDGET = {"upload": 10, "delete": 11}


def test_statement_budget(client, database, auth_headers, tmp_path):
    client.app.state.image_store = images.DiskImageStore(tmp_path / "img")
    op = auth_headers("operator")
    setup_gift(client, op, "MUG")
    assert _upload(client, op, picture(200, 200)).status_code == 201  # warms the caches
    with count_statements(database.engine) as log:
        r = _upload(client, op, picture(300, 300))
    assert r.status_code == 201
    assert log.count <= BUDGET["upload"], log.report()
    with count_statements(database.engine) as log:
        assert client.delete(f"{URL}/{r.json()['id']}", headers=op).status_code == 204
    assert log.count <= BUDGET["delete"], log.report()
