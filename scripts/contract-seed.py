"""Seeds a fresh local server for the contract step (scripts/contract) and writes the
schemathesis configuration that uses what it made.

Run by scripts/contract with the .venv's Python: `contract-seed.py BASE_URL CONFIG_PATH`.

Through the API only (sandbox WeChat logins and the sandbox verifier, see the README), it makes:
- `schemathesis` (the member schemathesis acts as: its bearer token comes from the same sandbox
  login, re-fetched whenever a call answers 401, e.g. after it tried POST /v1/auth/logout),
  verified, with a published and a draft listing, following `schemathesis-other`, a favourite
  and a share of the other's listing;
- `schemathesis-other`, verified, with a published listing, following `schemathesis`;
- two orders: `schemathesis` buying the other's listing, and the other buying its listing (both
  unpaid: their actions answer 409 until a payment, which the contract does not make).
Their ids go into dictionaries that the path parameters draw from half of the time, so member
routes reach real records (their own, another's, a draft) and not only 404s.
"""

import json
import sys

import requests

TIMEOUT = 10


def call(base, method, path, token=None, body=None, expect=(200,)):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    reply = requests.request(method, base + path, json=body, headers=headers, timeout=TIMEOUT)
    if reply.status_code not in expect:
        sys.exit(f"contract-seed: {method} {path} answered {reply.status_code}: {reply.text[:500]}")
    return reply.json() if reply.content else None


def member(base, name, real_name, id_number):
    login = call(base, "POST", "/v1/auth/wechat", body={"code": f"sandbox:{name}"})
    token = login["token"]
    verification = call(
        base,
        "POST",
        "/v1/me/verification",
        token,
        {"kind": "person", "real_name": real_name, "id_number": id_number},
        expect=(201,),
    )
    if verification["status"] != "verified":
        sys.exit(f"contract-seed: the sandbox verifier did not verify {name}: {verification}")
    return token, login["user"]["id"]


def listing(base, token, title, status, price_fen=None, kind="service"):
    body = {
        "kind": kind,
        "title": title,
        "description": "contract test listing",
        "category": "photography",
        "city": "北京",
        "location": {"lat": 39.9087, "lng": 116.3975},
        "images": ["https://img.example.com/1.jpg"],
        "status": status,
    }
    if price_fen is not None:
        body["price_fen"] = price_fen
    return call(base, "POST", "/v1/listings", token, body, expect=(201,))["id"]


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def main():
    base, config_path = sys.argv[1].rstrip("/"), sys.argv[2]
    me_token, me = member(base, "schemathesis", "张三", "110101199003074477")
    other_token, other = member(base, "schemathesis-other", "李四", "440308199901010012")
    mine = listing(base, me_token, "婚礼摄影跟拍", "published", price_fen=150000)
    draft = listing(base, me_token, "招募群演", "draft", kind="recruitment")
    theirs = listing(base, other_token, "新娘跟妆", "published", price_fen=80000)
    call(base, "PUT", f"/v1/me/following/{other}", me_token, expect=(204,))
    call(base, "PUT", f"/v1/me/following/{me}", other_token, expect=(204,))
    call(base, "PUT", f"/v1/me/favorites/{theirs}", me_token, expect=(204,))
    call(base, "POST", f"/v1/listings/{theirs}/shares", me_token, {"channel": "link"}, expect=(201,))
    bought = call(base, "POST", "/v1/orders", me_token, {"listing_id": theirs, "quantity": 1}, expect=(201,))["id"]
    sold = call(base, "POST", "/v1/orders", other_token, {"listing_id": mine, "quantity": 2}, expect=(201,))["id"]

    users, listings = toml_list([me, other]), toml_list([mine, draft, theirs])
    orders = toml_list([bought, sold])
    with open(config_path, "a", encoding="utf-8") as config:
        config.write(
            f"""
[dictionaries.users]
values = {users}

[dictionaries.listings]
values = {listings}

[[operations]]
include-path-regex = "^/v1/(users/|me/following/)"
parameters = {{ "path.id" = {{ dictionary = "users", probability = 0.5 }}, "path.user_id" = {{ dictionary = "users", probability = 0.5 }} }}

[[operations]]
include-path-regex = "^/v1/(listings/|me/favorites/)"
parameters = {{ "path.id" = {{ dictionary = "listings", probability = 0.5 }}, "path.listing_id" = {{ dictionary = "listings", probability = 0.5 }} }}

[dictionaries.orders]
values = {orders}

[[operations]]
include-path-regex = "^/v1/orders/"
parameters = {{ "path.id" = {{ dictionary = "orders", probability = 0.5 }} }}
"""
        )
    print(
        f"seeded: members {me} (schemathesis), {other}; listings {mine}, {draft} (draft), {theirs};"
        f" orders {bought} (bought), {sold} (sold)"
    )


if __name__ == "__main__":
    main()
