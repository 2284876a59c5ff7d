import json
from datetime import timedelta
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from connector import keys
from tests.helpers import key_header, signed_by_github, write_github_keys, github_matches

GITHUB_PATH = "/v1/secret-scanning/github"

@pytest.fixture
def github_signer():
    return ec.generate_private_key(ec.SECP256R1())

@pytest.fixture
def keys_file(tmp_path, github_signer):
    path = tmp_path / "gh.json"
    write_github_keys(path, {"k1": github_signer})
    return path

@pytest.fixture
def settings(settings, keys_file):
    return settings.model_copy(update={"github_secret_scanning_keys": keys_file})

def send(client, signer, body, **h):
    headers = signed_by_github(body, signer, "k1")
    headers.update(h)
    return client.post(GITHUB_PATH, data=body, headers=headers)

@pytest.mark.parametrize("body", [b"", b"null", b"{}", b"[1]", b'[{"token": 5, "type": "x"}]', b"\xff\xfe", b"[" * 100000, b'[{"token":"a","type":"b","url":null}]', b'"' + b"a"*10 + b'"'])
def test_bodies(client, github_signer, body):
    r = send(client, github_signer, body)
    print(body[:20], r.status_code, r.get_data(as_text=True)[:300])
    assert r.status_code < 500

def test_huge(client, github_signer):
    body = json.dumps([{"token": "x"*900, "type": "t"}] * 1500).encode()
    r = send(client, github_signer, body)
    print(len(body), r.status_code, r.get_data(as_text=True)[:300])

def test_bad_sigs(client, github_signer, admin_key):
    body = github_matches(admin_key.value)
    for h in [{"Github-Public-Key-Signature": "!!!"}, {"Github-Public-Key-Signature": ""}, {"Github-Public-Key-Identifier": "nope"}, {"Github-Public-Key-Signature": "MEUCIQ=="}]:
        headers = signed_by_github(body, github_signer, "k1"); headers.update(h)
        r = client.post(GITHUB_PATH, data=body, headers=headers)
        print(h, r.status_code, r.json)

def test_v2_leak_after_grace_value_leak(client, services, account, admin_key, standard_key, github_signer):
    old = standard_key.value
    rolled = services.keys.roll(account.id, standard_key.id, timedelta(days=7))
    # old value (still in grace) leaks first
    r = send(client, github_signer, github_matches(old))
    print(r.json)
    # then the new value is leaked
    r = send(client, github_signer, github_matches(rolled.value, url="https://github.com/x/y/blob/z/new.py"))
    print(r.json)
    ev = client.get("/v1/events?type=api_key.leaked", headers=key_header(admin_key.value)).json["data"]
    print(len(ev), [e["data"]["hint"] for e in ev])
    k = services.keys.get(account.id, standard_key.id)
    print(k.leak_url)
    assert len(ev) == 2

def test_echo_ua(client, github_signer, admin_key, services, account):
    body = github_matches(admin_key.value)
    r = send(client, github_signer, body, **{"User-Agent": "GitHub " + admin_key.value})
    print(r.json)
    from connector.paging import PageQuery
    print(services.audit.list(account.id, PageQuery(limit=5)).data)
