import json
import pytest
from tests.helpers import key_header

ODD_TIMES = [
    "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59Z", "2027-01-01T00:00:00", "2027-01-01", "2027-01-01T00:00:00+25:00",
    "1970-01-01T00:00:00Z", 12345, 1e20, True, "", "now", "0001-01-07T00:00:00Z",
    "0001-01-08T00:00:00Z",
]

@pytest.mark.parametrize("when", ODD_TIMES)
def test_rotate_by_odd(client, admin_key, when):
    r = client.patch(f"/v1/api-keys/{admin_key.id}", json={"rotate_by": when}, headers=key_header(admin_key.value))
    print(when, r.status_code, r.json)
    assert r.status_code < 500
    r = client.get("/v1/api-keys", headers=key_header(admin_key.value))
    print(r.status_code, r.json and r.json.get("data", r.json)[0].get("rotate_by") if r.status_code==200 else r.json)
    assert r.status_code < 500
    r = client.get("/v1/api-keys?rotation=due,overdue", headers=key_header(admin_key.value))
    assert r.status_code < 500
    r = client.get(f"/v1/api-keys/{admin_key.id}", headers=key_header(admin_key.value))
    assert r.status_code < 500

@pytest.mark.parametrize("days", [0, 1, 3650, 3651, -1, True, 1.0, 1.5, "30", None, 10**30])
def test_policy_odd(client, admin_key, days):
    r = client.put("/v1/key-policy", json={"max_age_days": days}, headers=key_header(admin_key.value))
    print(days, r.status_code, r.json)
    assert r.status_code < 500
    r = client.get("/v1/api-keys", headers=key_header(admin_key.value))
    assert r.status_code == 200

@pytest.mark.parametrize("body", [{"on_leak": "ROLL"}, {"on_leak": None}, {"x": 1}, [], "x", {"max_age_days": 5, "on_leak": "roll"}])
def test_policy_body(client, admin_key, body):
    r = client.put("/v1/key-policy", json=body, headers=key_header(admin_key.value))
    print(body, r.status_code, r.json)
    assert r.status_code < 500

@pytest.mark.parametrize("q", ["rotation=", "rotation=,", "rotation=due,,overdue", "rotation=DUE", "rotation=due&rotation=overdue", "rotation=%00", "rotation=" + "due,"*5000])
def test_filter(client, admin_key, q):
    r = client.get("/v1/api-keys?" + q, headers=key_header(admin_key.value))
    print(q[:40], r.status_code, r.json)
    assert r.status_code < 500

@pytest.mark.parametrize("q", ["action=nope", "target=" + "x"*300, "cursor=zzz", "limit=0", "limit=1000", "target=%00", "action=api_key.created&target=abc"])
def test_audit_query(client, admin_key, q):
    r = client.get("/v1/audit-log?" + q, headers=key_header(admin_key.value))
    print(q[:40], r.status_code, r.json)
    assert r.status_code < 500

@pytest.mark.parametrize("method", ["put", "patch", "delete", "post"])
def test_audit_405(client, admin_key, method):
    r = getattr(client, method)("/v1/audit-log", headers=key_header(admin_key.value))
    print(method, r.status_code, r.json)
    e = client.get("/v1/audit-log", headers=key_header(admin_key.value)).json["data"][0]["id"]
    r2 = getattr(client, method)(f"/v1/audit-log/{e}", headers=key_header(admin_key.value))
    print(method, r2.status_code, r2.json)
    assert r.status_code == 405 and r2.status_code == 405

def test_standard_key(client, standard_key):
    for path in ["/v1/audit-log", "/v1/key-policy"]:
        r = client.get(path, headers=key_header(standard_key.value))
        print(path, r.status_code, r.json)
    r = client.post("/v1/api-keys/leaks", json={"leaks": [{"sha256": "0"*64, "location": "x"}]}, headers=key_header(standard_key.value))
    print(r.status_code, r.json)

def test_location_echo(client, admin_key, standard_key):
    from connector import keys
    fresh = keys.NewKeyValue.generate()
    loc = f"config/{fresh.value}.py:3"
    r = client.post("/v1/api-keys/leaks", json={"leaks": [{"sha256": keys.fingerprint(standard_key.value), "location": loc}]}, headers=key_header(admin_key.value))
    print(r.status_code, r.json)
    listed = client.get("/v1/api-keys", headers=key_header(admin_key.value)).json
    print(json.dumps(listed)[:3000])
    assert fresh.value not in r.get_data(as_text=True)
