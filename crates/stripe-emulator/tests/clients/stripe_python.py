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

    print("ok")


if __name__ == "__main__":
    main()
