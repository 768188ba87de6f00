"""A small, fixed history for the operator dashboard's tests, written straight into a fresh database.

The period under test is October 2026 (UTC). The expected numbers in the tests are worked out by hand from
the comments here, not computed by Tally's code. Subscriptions are written as the mirror writes them (INSERT,
then UPDATEs), so the history rows come from migration 0005's trigger; only their times are then set.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import psycopg

from tally.db import libpq_url

PLANS_TOML = """
[[plans]]
id = "basic"
name = "Basic"
rank = 1
currency = "usd"
month = { amount = 900, credits = 1000 }
year = { amount = 9000, credits = 12000 }

[[plans]]
id = "pro"
name = "Pro"
rank = 2
currency = "usd"
month = { amount = 2900, credits = 4000 }
year = { amount = 29000, credits = 48000 }

[[plans]]
id = "team"
name = "Team"
rank = 3
currency = "eur"
month = { amount = 4900, credits = 8000 }
year = { amount = 49900, credits = 96000 }
"""

FIRST_DAY, LAST_DAY = "2026-10-01", "2026-10-31"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (subscription, user, [(time, plan, interval, status), ...]) — monthly equivalents: basic/month 900,
# pro/month 2900, pro/year 29000/12 = 2416.67 → 2417, basic/year 9000/12 = 750, team/month 4900 EUR,
# team/year 49900/12 = 4158.33 → 4158 EUR.
SUBSCRIPTIONS: list[tuple[str, str, list[tuple[str, str, str, str]]]] = [
    ("sub_s1", "u1", [("2026-09-10", "basic", "month", "active")]),  # 900 → 900
    ("sub_s2", "u2", [("2026-09-05", "basic", "month", "active"),
                      ("2026-10-10", "pro", "month", "active")]),  # 900 → 2900: expansion 2000
    ("sub_s3", "u3", [("2026-08-01", "pro", "year", "active"),
                      ("2026-10-20", "basic", "year", "active")]),  # 2417 → 750: contraction 1667
    ("sub_s4", "u4", [("2026-09-01", "pro", "month", "active"),
                      ("2026-10-15", "pro", "month", "canceled")]),  # 2900 → 0: churn, voluntary
    ("sub_s5", "u5", [("2026-09-03", "basic", "month", "active"),
                      ("2026-10-05", "basic", "month", "past_due"),
                      ("2026-10-25", "basic", "month", "canceled")]),  # 900 → 0: churn, involuntary
    ("sub_s6", "u6", [("2026-09-15", "team", "month", "active")]),  # EUR 4900 → 4900
    ("sub_s7", "u7", [("2026-10-02", "team", "year", "trialing"),
                      ("2026-10-16", "team", "year", "active")]),  # EUR 0 → 4158: new
    ("sub_s8", "u8", [("2026-10-12", "pro", "month", "active")]),  # 0 → 2900: new
    ("sub_s9", "u9", [("2026-10-20", "basic", "month", "trialing")]),  # trial: 0 → 0
    ("sub_s10", "u10", [("2026-09-20", "basic", "month", "active"),
                        ("2026-10-28", "basic", "month", "past_due")]),  # 900 → 900 (past due still counts)
    ("sub_s11", "u11", [("2026-08-01", "pro", "month", "active"),
                        ("2026-09-20", "pro", "month", "canceled")]),  # gone before the period
    ("sub_s12", "u12", [("2026-11-02", "pro", "month", "active")]),  # starts after the period
]

# (id, user, pack, amount, currency, status, created/paid, refunded, checkout session, payment intent)
ORDERS: list[tuple[str, str, str, int, str, str, str, int, str | None, str | None]] = [
    ("ord-1", "u1", "Starter pack", 499, "usd", "paid", "2026-10-03T10:00", 0, "cs_test_o1", "pi_o1"),
    ("ord-2", "u2", "Plus pack", 999, "usd", "refunded", "2026-10-03T15:00", 999, "cs_test_o2", "pi_o2"),
    ("ord-3", "u3", "Starter pack", 499, "eur", "paid", "2026-10-07T09:00", 0, None, "pi_o3"),
    ("ord-4", "u4", "Starter pack", 2290, "myr", "paid", "2026-10-07T11:00", 0, None, "pi_o4"),
    ("ord-5", "u5", "Plus pack", 999, "usd", "failed", "2026-10-08T12:00", 0, None, "pi_o5"),
    ("ord-6", "u6", "Starter pack", 499, "usd", "paid", "2026-09-30T23:59", 0, "cs_test_o6", "pi_o6"),
    ("ord-7", "u7", "Starter pack", 499, "usd", "pending", "2026-10-20T08:00", 0, "cs_test_o7", None),
    ("ord-8", "u1", "Plus pack", 999, "usd", "paid", "2026-10-31T23:30", 0, "cs_test_o8", "pi_o8"),
]

# (invoice, subscription, user, amount paid, currency, paid at)
INVOICES: list[tuple[str, str, str, int, str, str]] = [
    ("in_1", "sub_s2", "u2", 2000, "usd", "2026-10-10T12:00"),
    ("in_2", "sub_s8", "u8", 2900, "usd", "2026-10-12T12:00"),
    ("in_3", "sub_s7", "u7", 49900, "eur", "2026-10-16T12:00"),
    ("in_4", "sub_s1", "u1", 900, "usd", "2026-10-10T08:00"),
    ("in_5", "sub_s11", "u11", 2900, "usd", "2026-09-20T12:00"),  # before the period
    ("in_6", "sub_s9", "u9", 0, "usd", "2026-10-20T12:00"),  # a trial's 0 invoice: no revenue
]

# Webhook events: (id, type, status, received, object)
SUCCEEDED = [("usd", "card", "2026-10-03"), ("usd", "card", "2026-10-03"), ("usd", "card", "2026-10-10"),
             ("usd", "card", "2026-10-10"), ("usd", "card", "2026-10-12"), ("usd", "card", "2026-10-31"),
             ("eur", "card", "2026-10-07"), ("eur", "card", "2026-10-16"), ("myr", "fpx", "2026-10-07")]
FAILED = [("insufficient_funds", "2026-10-08"), ("insufficient_funds", "2026-10-25"),
          ("generic_decline", "2026-10-08"), (None, "2026-10-05"),  # expired_card: a code, no decline code
          ("do_not_honor", "2026-09-30")]  # before the period


def events() -> list[tuple[str, str, str, str, dict[str, Any], str | None]]:
    out: list[tuple[str, str, str, str, dict[str, Any], str | None]] = []
    for i, (currency, method, day) in enumerate(SUCCEEDED):
        out.append((f"evt_ok_{i}", "charge.succeeded", "ignored", f"{day}T12:00",
                    {"id": f"ch_{i}", "object": "charge", "currency": currency, "status": "succeeded",
                     "payment_method_details": {"type": method}}, None))
    for i, (code, day) in enumerate(FAILED):
        error: dict[str, Any] = {"type": "card_error", "code": "card_declined" if code else "expired_card",
                                 "payment_method": {"id": f"pm_{i}", "type": "card"}}
        if code:
            error["decline_code"] = code
        out.append((f"evt_fail_{i}", "payment_intent.payment_failed", "processed", f"{day}T13:00",
                    {"id": f"pi_f{i}", "object": "payment_intent", "currency": "usd", "last_payment_error": error},
                    None))
    for i in range(5):
        out.append((f"evt_cs_{i}", "checkout.session.completed", "processed", f"2026-10-0{i + 3}T14:00",
                    {"id": f"cs_test_e{i}", "object": "checkout.session"}, None))
    out += [
        ("evt_bad_1", "invoice.paid", "failed", "2026-10-20T10:00", {"id": "in_x1", "object": "invoice"},
         "RuntimeError: subscription sub_x not found"),
        ("evt_bad_2", "customer.subscription.updated", "failed", "2026-10-22T10:00",
         {"id": "sub_x2", "object": "subscription"}, "stripe error: connection reset"),
        ("evt_wait_1", "checkout.session.completed", "pending", "2026-10-31T20:00",
         {"id": "cs_test_w1", "object": "checkout.session"}, None),
        # Before the period; a type no handler takes, so a replay ends "ignored".
        ("evt_bad_0", "customer.updated", "failed", "2026-09-29T10:00", {"id": "cus_u1", "object": "customer"},
         "TimeoutError"),
    ]
    return out


def seed(database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url)) as conn:
        users = sorted({u for _, u, _ in SUBSCRIPTIONS} | {o[1] for o in ORDERS})
        for user in users:
            conn.execute("INSERT INTO users (id, email, stripe_customer_id) VALUES (%s, %s, %s)",
                         (user, f"{user}@example.com", f"cus_{user}"))
        for sub_id, user, states in SUBSCRIPTIONS:
            for n, (day, plan, interval, status) in enumerate(states):
                if n == 0:
                    conn.execute("""INSERT INTO subscriptions (id, user_id, stripe_customer_id, plan_id, interval,
                                    status, stripe_created) VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                                 (sub_id, user, f"cus_{user}", plan, interval, status, int(at(day).timestamp())))
                else:
                    conn.execute("UPDATE subscriptions SET plan_id = %s, interval = %s, status = %s WHERE id = %s",
                                 (plan, interval, status, sub_id))
                conn.execute("""UPDATE subscription_history SET recorded_at = %s WHERE id =
                                (SELECT max(id) FROM subscription_history WHERE subscription_id = %s)""",
                             (at(day), sub_id))
        for oid, user, pack, amount, currency, status, when, refunded, cs, pi in ORDERS:
            paid = at(when) if status in ("paid", "refunded") else None
            conn.execute("""INSERT INTO orders (id, user_id, pack_id, pack_name, amount, currency, coins, bonus,
                            status, kind, stripe_checkout_session_id, stripe_payment_intent_id, amount_refunded,
                            failure_message, created_at, paid_at)
                            VALUES (%s, %s, 'p', %s, %s, %s, 100, 0, %s, %s, %s, %s, %s, %s, %s, %s)""",
                         (oid, user, pack, amount, currency, status, "checkout" if cs else "payment_intent", cs, pi,
                          refunded, "Your card has insufficient funds." if status == "failed" else None,
                          at(when), paid))
        for inv, sub, user, amount, currency, when in INVOICES:
            conn.execute("""INSERT INTO subscription_invoices (id, user_id, subscription_id, billing_reason,
                            amount_paid, currency, paid_at) VALUES (%s, %s, %s, 'subscription_cycle', %s, %s, %s)""",
                         (inv, user, sub, amount, currency, int(at(when).timestamp())))
        for eid, etype, status, when, obj, error in events():
            payload = {"id": eid, "object": "event", "type": etype, "data": {"object": obj}}
            conn.execute("""INSERT INTO webhook_events (id, type, livemode, stripe_created, payload, status, attempts,
                            last_error, received_at, processed_at)
                            VALUES (%s, %s, false, %s, %s, %s, %s, %s, %s, %s)""",
                         (eid, etype, int(at(when).timestamp()), json.dumps(payload), status,
                          6 if status == "failed" else 1, error, at(when),
                          at(when) if status in ("processed", "ignored") else None))
