def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_register_and_get(client, auth_headers, make_member):
    no = make_member("+86 138 0013 8000", name="张伟")
    r = client.get(f"/api/v1/members/{no}", headers=auth_headers("clerk"))
    assert r.status_code == 200, r.text
    assert r.json()["phone"] == "138****8000"
    r = client.get(f"/api/v1/members/{no}", headers=auth_headers("admin"))
    assert r.json()["phone"] == "13800138000"
