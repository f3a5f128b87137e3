"""The console's segment builder offers the "recommended products" condition (zh-CN words,
unknown codes and N out of range highlighted, a save refused)."""

from __future__ import annotations

from tests.web.test_config_pages import operator  # noqa: F401 - the fixture


def _post(client, token, data):
    return client.post("/console/segments/build", data={"csrf_token": token, **data})


def test_builder_offers_recommended_and_names_bad_input(client, operator, shop):  # noqa: F811
    client.headers["Accept-Language"] = "zh-CN"
    base = {"r:op": "and", "r.0:field": "recommended"}
    page = _post(client, operator, {**base, "r.0:skus": "BEA-1", "r.0:top": "5"})
    assert page.status_code == 200
    assert "推荐商品" in page.text and "在会员排名前" in page.text
    assert 'name="r.0:top" value="5"' in page.text and 'aria-invalid="true"' not in page.text
    unknown = _post(client, operator, {**base, "r.0:skus": "BEA-1, NOPE-9"})
    assert 'aria-invalid="true"' in unknown.text
    assert "商品目录中没有其中某个编码的商品或品类" in unknown.text
    too_many = _post(client, operator, {**base, "r.0:categories": "fresh", "r.0:top": "11"})
    assert 'aria-invalid="true"' in too_many.text
    assert "商品目录中没有" not in too_many.text  # a bound, not an unknown code
    refused = _post(
        client,
        operator,
        {**base, "r.0:skus": "NOPE-9", "action": "save_segment", "target_code": "r",
         "target_name": "R"},
    )  # fmt: skip
    assert 'aria-invalid="true"' in refused.text
    assert "/console/segments/r" not in refused.text
