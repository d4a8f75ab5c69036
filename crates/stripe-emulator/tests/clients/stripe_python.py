"""Drives the Stripe emulator with Stripe's official Python library, to show that any Stripe
client works against it (same form encoding, headers and error bodies), not only async-stripe.

Usage: python stripe_python.py EMULATOR_BASE_URL SECRET_KEY
Prints "ok" and exits 0 when every check passes; exits non-zero with the failure otherwise.
"""

import sys

import stripe


def main() -> None:
    base, key = sys.argv[1], sys.argv[2]
    client = stripe.StripeClient(key, base_addresses={"api": base})

    customer = client.v1.customers.create(
        params={"email": "py@acme.test", "metadata": {"org_id": "7"}},
        options={"idempotency_key": "py-customer-1"},
    )
    again = client.v1.customers.create(
        params={"email": "py@acme.test", "metadata": {"org_id": "7"}},
        options={"idempotency_key": "py-customer-1"},
    )
    assert again.id == customer.id, "idempotent replay returns the same customer"
    assert customer.metadata["org_id"] == "7"

    product = client.v1.products.create(params={"name": "Starter"})
    price = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 999,
            "recurring": {"interval": "month"},
            "lookup_key": "py_starter",
        }
    )
    found = client.v1.prices.list(params={"lookup_keys": ["py_starter"]})
    assert [p.id for p in found.data] == [price.id]

    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id, "quantity": 1}],
            "subscription_data": {"trial_period_days": 7, "metadata": {"org_id": "7"}},
            "payment_method_collection": "if_required",
            "success_url": "http://portal.test/ok?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://portal.test/cancel",
        }
    )
    assert session.status == "open" and session.url.startswith(base)

    try:
        client.v1.customers.retrieve("cus_missing")
        raise AssertionError("a missing customer must be an error")
    except stripe.InvalidRequestError as e:
        assert e.http_status == 404 and e.code == "resource_missing", e

    try:
        client.v1.customers.create(params={"email": "x@acme.test", "nonsense": "1"})
        raise AssertionError("an unknown parameter must be refused")
    except stripe.InvalidRequestError as e:
        assert e.http_status == 400 and e.param == "nonsense", e

    # Lists page as Stripe's do: newest first, `created` filters, cursors that auto-paging follows.
    for n in range(3):
        client.v1.customers.create(params={"email": f"page{n}@acme.test"})
    events = client.v1.events.list(params={"limit": 2})
    assert len(events.data) == 2 and events.has_more, events
    created = [e.created for e in events.data]
    assert created == sorted(created, reverse=True), "events are newest first"
    every = [e.id for e in events.auto_paging_iter()]
    assert len(every) == len(set(every)) and len(every) > 4, every
    since = client.v1.events.list(params={"created": {"gte": events.data[0].created}, "limit": 100})
    assert all(e.created >= events.data[0].created for e in since.data)
    newer = client.v1.events.list(params={"created": {"gt": events.data[0].created}})
    assert newer.data == [], "nothing is newer than the newest event"
    subs = client.v1.subscriptions.list(params={"customer": customer.id, "status": "all", "limit": 1})
    assert all(s.customer == customer.id for s in subs.data)
    invoices = client.v1.invoices.list(params={"customer": customer.id, "created": {"gte": 0}})
    assert all(i.customer == customer.id for i in invoices.data)

    print("ok")


if __name__ == "__main__":
    main()
