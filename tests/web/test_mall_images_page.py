"""Gift images through the console (upload, refusals in words with nothing stored) and served
to the portal's mall pages."""

from __future__ import annotations

from sqlalchemy import select

from patron.audit.models import AuditRecord
from patron.mall import images
from patron.mall.models import Gift
from tests.mall.helpers import setup_gift
from tests.mall.test_images import picture
from tests.web.test_mall_pages import _operator
from tests.web.test_portal_pages import portal_sign_in

UPLOAD = "/console/mall/gift-images"


def test_upload_in_the_console_and_see_it_in_the_portal(
    client, app, database, clock, auth_headers, make_member, tmp_path
):
    app.state.image_store = images.DiskImageStore(tmp_path / "img")
    setup_gift(client, auth_headers("operator"), "MUG")
    token = _operator(client, database, clock)
    for data, words in (
        (b"not an image", "Upload a JPEG, PNG or WebP image."),
        (picture(50, 50), "between 100 and 8,000 pixels"),
    ):
        r = client.post(
            UPLOAD,
            data={"csrf_token": token, "gift_code": "MUG"},
            files={"image": ("x.png", data, "image/png")},
        )
        assert r.status_code == 422 and words in r.text and 'data-error-for="form"' in r.text
    missing = client.post(
        UPLOAD,
        data={"csrf_token": token, "gift_code": "NOPE"},
        files={"image": ("x.png", picture(200, 200), "image/png")},
    )
    assert missing.status_code == 404
    assert not (tmp_path / "img").exists()  # nothing stored by a refusal
    ok = client.post(
        UPLOAD,
        data={"csrf_token": token, "gift_code": "MUG"},
        files={"image": ("mug.jpg", picture(1600, 1600, "JPEG"), "image/jpeg")},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    with database.unit_of_work() as s:
        key = s.scalar(select(Gift.image_key).where(Gift.code == "MUG"))
        assert key and key.startswith("gifts/MUG/")
        assert s.scalar(select(AuditRecord.action).where(AuditRecord.action == "mall.gift_image"))
    page = client.get("/console/mall").text
    assert 'data-image="MUG"' in page
    thumb = client.get("/console/mall/gifts/MUG/image/thumb")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    client.cookies.clear()
    make_member(phone="13900009999")
    portal_sign_in(client, app, "13900009999")
    assert "/portal/mall/gifts/MUG/image/thumb" in client.get("/portal/mall").text
    assert "/portal/mall/gifts/MUG/image/large" in client.get("/portal/mall/gifts/MUG").text
    large = client.get("/portal/mall/gifts/MUG/image/large")
    assert large.status_code == 200 and large.content[:4] == b"RIFF"
    assert large.headers["etag"] == f'"{key}"'
    assert client.get("/portal/mall/gifts/MUG/image/huge").status_code in (404, 422)
    assert client.get("/portal/mall/gifts/NOPE/image/thumb").status_code == 404


def test_a_large_upload_passes_the_body_cap_and_a_larger_one_is_refused(
    client, app, database, clock, auth_headers, tmp_path
):
    app.state.image_store = images.DiskImageStore(tmp_path / "img")
    setup_gift(client, auth_headers("operator"), "MUG")
    token = _operator(client, database, clock)
    # ~1.3 MB of noise as PNG: above the 1 MB cap other requests have
    import os

    from PIL import Image

    noise = Image.frombytes("RGB", (660, 660), os.urandom(660 * 660 * 3))
    import io

    out = io.BytesIO()
    noise.save(out, "PNG")
    data = out.getvalue()
    assert 1_048_576 < len(data) < app.state.settings.mall_image_max_bytes
    ok = client.post(
        UPLOAD,
        data={"csrf_token": token, "gift_code": "MUG"},
        files={"image": ("noise.png", data, "image/png")},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    too_big = b"\0" * (app.state.settings.mall_image_max_bytes + 128 * 1024)
    r = client.post(
        UPLOAD,
        data={"csrf_token": token, "gift_code": "MUG"},
        files={"image": ("big.png", too_big, "image/png")},
    )
    assert r.status_code == 413
