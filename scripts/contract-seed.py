"""Seeds a fresh local server for the contract step (scripts/contract) and writes the
schemathesis configuration that uses what it made.

Run by scripts/contract with the .venv's Python:
`contract-seed.py BASE_URL CONFIG_PATH SANDBOX_JSON` (the server's sandbox URLs, which it writes
into its data folder at start).

Through the API only (sandbox WeChat logins and the sandbox verifier, see the README), it makes:
- `schemathesis` (the member schemathesis acts as: its bearer token comes from the same sandbox
  login, re-fetched whenever a call answers 401, e.g. after it tried POST /v1/auth/logout),
  verified, with a published and a draft listing, following `schemathesis-other`, a favourite
  and a share of the other's listing;
- `schemathesis-other`, verified, with a published listing, following `schemathesis`;
- orders each way in the states the order actions leave from, paid through the sandbox WeChat
  Pay and Alipay (their `/sandbox/pay` calls, which notify the server as the providers would):
  `schemathesis` buying the other's listing unpaid (to pay or cancel), paid (to cancel: refunded)
  and accepted (to confirm or ask a refund); the other buying its listing unpaid, paid (to accept
  or decline) and with a refund requested (to approve or decline); a completed order each way,
  the other's reviewed (so that `schemathesis`, its seller, may answer the review).
Their ids go into dictionaries that the path parameters draw from half of the time, so member
routes reach real records (their own, another's, a draft) and not only 404s.
"""

import json
import sys
import time

import requests

TIMEOUT = 10


def call(base, method, path, token=None, body=None, expect=(200,)):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    reply = requests.request(method, base + path, json=body, headers=headers, timeout=TIMEOUT)
    if reply.status_code not in expect:
        sys.exit(f"contract-seed: {method} {path} answered {reply.status_code}: {reply.text[:500]}")
    return reply.json() if reply.content else None


def member(base, name, real_name, id_number, alipay_account):
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
    # Payout accounts (a service is published only by a seller with one, and buyers pay only
    # through the sellers' channels): the member's own WeChat account and an Alipay account.
    call(base, "PUT", "/v1/me/payout-accounts/wechat", token, expect=(200,))
    call(
        base,
        "PUT",
        "/v1/me/payout-accounts/alipay",
        token,
        {"account": alipay_account, "name": real_name},
        expect=(200,),
    )
    return token, login["user"]["id"]


def upload(base, token, purpose="listing_image"):
    """A media URL of the member's own: an upload form from POST /v1/uploads, POSTed to the
    local server's stand-in bucket as the mini-program's wx.uploadFile does (file last)."""
    data = b"\xff\xd8\xff\xe0 contract test image"
    form = call(
        base,
        "POST",
        "/v1/uploads",
        token,
        {"purpose": purpose, "content_type": "image/jpeg", "size": len(data)},
        expect=(201,),
    )
    reply = requests.post(
        form["url"],
        data=form["fields"],
        files={"file": ("image.jpg", data, "image/jpeg")},
        timeout=TIMEOUT,
    )
    if reply.status_code != 204:
        sys.exit(f"contract-seed: the upload answered {reply.status_code}: {reply.text[:500]}")
    return form["media_url"]


def listing(base, token, title, status, price_fen=None, kind="service"):
    body = {
        "kind": kind,
        "title": title,
        "description": "contract test listing",
        "category": "photography",
        "city": "北京",
        "location": {"lat": 39.9087, "lng": 116.3975},
        "images": [upload(base, token)],
        "status": status,
    }
    if price_fen is not None:
        body["price_fen"] = price_fen
    return call(base, "POST", "/v1/listings", token, body, expect=(201,))["id"]


def sandbox_urls(path):
    """The sandbox URLs the server wrote at start (just after it began to answer)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                sys.exit(f"contract-seed: no sandbox URLs in {path}")
            time.sleep(0.1)


def paid_order(base, sandbox, buyer, listing, channel):
    """An order of `listing` by `buyer`, paid through `channel`'s sandbox: its id."""
    order = call(base, "POST", "/v1/orders", buyer, {"listing_id": listing, "quantity": 1}, expect=(201,))["id"]
    started = call(base, "POST", f"/v1/orders/{order}/payments", buyer, {"channel": channel})
    if channel == "wechat":
        pay = (sandbox["wechatpay"], {"out_trade_no": order}, "204")
    elif channel == "alipay":
        pay = (sandbox["alipay"], {"order_string": started["order_string"]}, "success")
    else:
        pay = (sandbox["alipay"], {"url": started["url"]}, "success")
    url, body, notified = pay
    reply = requests.post(url + "/sandbox/pay", json=body, timeout=TIMEOUT)
    if reply.status_code != 200 or reply.json().get("notified") != notified:
        sys.exit(f"contract-seed: the sandbox payment of {order} failed: {reply.status_code} {reply.text[:500]}")
    return order


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def main():
    base, config_path = sys.argv[1].rstrip("/"), sys.argv[2]
    sandbox = sandbox_urls(sys.argv[3])
    me_token, me = member(base, "schemathesis", "张三", "110101199003074477", "2088101126765726")
    other_token, other = member(base, "schemathesis-other", "李四", "440308199901010012", "2088101126765727")
    # Staff suspend and restore members: schemathesis does it to a member of its own, not to the
    # two it signs in as and sells with (a suspended member's sessions end and sign-in is refused).
    suspendee = call(base, "POST", "/v1/auth/wechat", body={"code": "sandbox:schemathesis-suspendee"})["user"]["id"]
    mine = listing(base, me_token, "婚礼摄影跟拍", "published", price_fen=150000)
    draft = listing(base, me_token, "招募群演", "draft", kind="recruitment")
    theirs = listing(base, other_token, "新娘跟妆", "published", price_fen=80000)
    call(base, "PUT", f"/v1/me/following/{other}", me_token, expect=(204,))
    call(base, "PUT", f"/v1/me/following/{me}", other_token, expect=(204,))
    call(base, "PUT", f"/v1/me/favorites/{theirs}", me_token, expect=(204,))
    call(base, "POST", f"/v1/listings/{theirs}/shares", me_token, {"channel": "link"}, expect=(201,))
    order = lambda buyer, listing_id: call(  # noqa: E731
        base, "POST", "/v1/orders", buyer, {"listing_id": listing_id, "quantity": 1}, expect=(201,)
    )["id"]
    # Two unpaid orders every order route may draw (mostly in the wrong state: 409, 403).
    bought = order(me_token, theirs)
    sold = call(base, "POST", "/v1/orders", other_token, {"listing_id": mine, "quantity": 2}, expect=(201,))["id"]
    # Then, for each action, orders of its own in the state it leaves from, so that one action
    # (accept, say) does not move the order another (decline) needed first.
    to_pay = order(me_token, theirs)
    to_cancel = order(me_token, theirs)
    call(base, "POST", f"/v1/orders/{to_cancel}/payments", me_token, {"channel": "wechat"})
    to_cancel_paid = paid_order(base, sandbox, me_token, theirs, "wechat")
    to_confirm = paid_order(base, sandbox, me_token, theirs, "alipay")
    to_refund = paid_order(base, sandbox, me_token, theirs, "alipay_wap")
    for accepted in (to_confirm, to_refund):
        call(base, "POST", f"/v1/orders/{accepted}/accept", other_token)
    to_accept = paid_order(base, sandbox, other_token, mine, "wechat")
    to_decline = paid_order(base, sandbox, other_token, mine, "alipay")
    to_approve = paid_order(base, sandbox, other_token, mine, "wechat")
    to_refuse = paid_order(base, sandbox, other_token, mine, "alipay_wap")
    for asked in (to_approve, to_refuse):
        call(base, "POST", f"/v1/orders/{asked}/accept", me_token)
        call(base, "POST", f"/v1/orders/{asked}/refund", other_token, {"reason": "行程有变"})
    # Completed orders: one for schemathesis to review, and one of its listing the other
    # reviewed, so that schemathesis (the seller) may answer that review.
    to_review = paid_order(base, sandbox, me_token, theirs, "wechat")
    reviewed = paid_order(base, sandbox, other_token, mine, "wechat")
    for done, seller_token, buyer_token in ((to_review, other_token, me_token), (reviewed, me_token, other_token)):
        call(base, "POST", f"/v1/orders/{done}/accept", seller_token)
        call(base, "POST", f"/v1/orders/{done}/confirm", buyer_token)
    review = call(base, "POST", f"/v1/orders/{reviewed}/reviews", other_token, {"rating": 4, "text": "很准时"}, expect=(201,))["id"]
    own = {
        "payments": [to_pay],
        "cancel": [to_cancel, to_cancel_paid],
        "confirm": [to_confirm],
        "refund": [to_refund],
        "accept": [to_accept],
        "decline": [to_decline],
        "refund/approve": [to_approve],
        "refund/decline": [to_refuse],
        "reviews": [to_review, reviewed],
    }
    every = [bought, sold] + [o for orders in own.values() for o in orders]

    users, listings = toml_list([me, other]), toml_list([mine, draft, theirs])
    sections = [
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
values = {toml_list(every)}

[dictionaries.suspendees]
values = {toml_list([suspendee])}

[[operations]]
include-path-regex = "^/admin/v1/members/[^/]+/(suspend|restore)$"
parameters = {{ "path.id" = {{ dictionary = "suspendees", probability = 0.5 }} }}

[[operations]]
include-path-regex = "^/admin/v1/members/"
parameters = {{ "path.id" = {{ dictionary = "users", probability = 0.5 }} }}

[[operations]]
include-path-regex = "^/admin/v1/listings/"
parameters = {{ "path.id" = {{ dictionary = "listings", probability = 0.5 }} }}

[[operations]]
include-path-regex = "^/admin/v1/orders/"
parameters = {{ "path.id" = {{ dictionary = "orders", probability = 0.5 }} }}
"""
    ]
    # The first [[operations]] entry naming an option wins: the actions' own before the rest.
    for action, orders in own.items():
        name = "orders-" + action.replace("/", "-")
        sections.append(
            f"""
[dictionaries.{name}]
values = {toml_list(orders + [bought, sold])}

[[operations]]
include-path = "/v1/orders/{{id}}/{action}"
parameters = {{ "path.id" = {{ dictionary = "{name}", probability = 0.5 }} }}
"""
        )
    sections.append(
        f"""
[dictionaries.reviews]
values = {toml_list([review])}

[[operations]]
include-path-regex = "^/v1/reviews/"
parameters = {{ "path.id" = {{ dictionary = "reviews", probability = 0.5 }} }}
"""
    )
    sections.append(
        """
[[operations]]
include-path-regex = "^/v1/orders/"
parameters = { "path.id" = { dictionary = "orders", probability = 0.5 } }
"""
    )
    with open(config_path, "a", encoding="utf-8") as config:
        config.write("".join(sections))
    print(
        f"seeded: members {me} (schemathesis), {other}, {suspendee} (suspended by staff); listings {mine}, {draft} (draft), {theirs};"
        f" orders {bought}, {sold} (unpaid), and for each action: "
        + ", ".join(f"{action} {' '.join(orders)}" for action, orders in own.items())
    )


if __name__ == "__main__":
    main()
