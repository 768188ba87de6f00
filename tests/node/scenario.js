// A Node.js backend's use of the sandbox, through the official `stripe` package pinned in package.json.
// Usage: node scenario.js http://127.0.0.1:PORT
// Each step is a test of node's own runner (node:test); tests/sandbox/test_node_sdk.py runs this file.
"use strict";

const assert = require("node:assert/strict");
const http = require("node:http");
const { test, before, after } = require("node:test");
const Stripe = require("stripe");

const base = new URL(process.argv[2] || process.env.SANDBOX_URL);
const stripe = new Stripe("sk_test_node_scenario", {
  host: base.hostname, port: Number(base.port), protocol: base.protocol.replace(":", ""), maxNetworkRetries: 0,
});
const RETURN_URL = "https://shop.example/return";

// A webhook receiver that verifies each delivery with stripe.webhooks.constructEvent.
const received = [];
const refused = [];
let receiver;
let waiters = [];
let endpointSecret;

before(async () => {
  receiver = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      try {
        const event = stripe.webhooks.constructEvent(Buffer.concat(chunks), req.headers["stripe-signature"],
          endpointSecret);
        received.push(event);
        waiters = waiters.filter((w) => !w(event));
        res.writeHead(200).end("{}");
      } catch (err) {
        refused.push(String(err));
        res.writeHead(400).end(String(err));
      }
    });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const endpoint = await stripe.webhookEndpoints.create({
    url: `http://127.0.0.1:${receiver.address().port}/hooks`, enabled_events: ["*"],
  });
  endpointSecret = endpoint.secret;
});

after(() => new Promise((resolve) => receiver.close(resolve)));

function eventFor(type, objectId) {
  const match = (e) => e.type === type && e.data.object.id === objectId;
  const found = received.find(match);
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} for ${objectId}`)), 15000);
    waiters.push((e) => (match(e) ? (clearTimeout(timer), resolve(e), true) : false));
  });
}

async function rejected(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail("the call succeeded");
}

test("customers: create, update, retrieve, and every page of a list", async () => {
  const tag = `node-${Date.now()}`;
  const made = [];
  for (let i = 0; i < 5; i++) {
    made.push(await stripe.customers.create({ email: `c${i}@example.com`, metadata: { tag } }));
  }
  const updated = await stripe.customers.update(made[0].id, { name: "Ada Lovelace" });
  assert.equal(updated.name, "Ada Lovelace");
  assert.equal((await stripe.customers.retrieve(made[0].id)).email, "c0@example.com");
  const page = await stripe.customers.list({ limit: 2 });
  assert.equal(page.data.length, 2);
  assert.equal(page.has_more, true);
  const all = await stripe.customers.list({ limit: 2 }).autoPagingToArray({ limit: 1000 });
  for (const c of made) assert.ok(all.some((x) => x.id === c.id), `${c.id} listed`);
  assert.equal(new Set(all.map((c) => c.id)).size, all.length, "no customer twice across pages");
});

test("products, prices, coupons and promotion codes", async () => {
  const product = await stripe.products.create({ name: "100 credits" });
  const price = await stripe.prices.create({ product: product.id, unit_amount: 999, currency: "eur" });
  assert.equal(price.product, product.id);
  const monthly = await stripe.prices.create({
    product: product.id, unit_amount: 500, currency: "eur", recurring: { interval: "month" },
  });
  assert.equal(monthly.type, "recurring");
  const listed = await stripe.prices.list({ product: product.id });
  assert.deepEqual(new Set(listed.data.map((p) => p.id)), new Set([price.id, monthly.id]));
  const coupon = await stripe.coupons.create({ percent_off: 25, duration: "once" });
  const code = await stripe.promotionCodes.create({
    promotion: { type: "coupon", coupon: coupon.id }, code: `NODE${Date.now()}`,
  });
  assert.equal(code.active, true);
  const found = await stripe.promotionCodes.list({ code: code.code });
  assert.deepEqual(found.data.map((c) => c.id), [code.id]);
});

test("Checkout in payment and subscription mode", async () => {
  const product = await stripe.products.create({ name: "Plan" });
  const once = await stripe.prices.create({ product: product.id, unit_amount: 1200, currency: "usd" });
  const monthly = await stripe.prices.create({
    product: product.id, unit_amount: 700, currency: "usd", recurring: { interval: "month" },
  });
  const payment = await stripe.checkout.sessions.create({
    mode: "payment", line_items: [{ price: once.id, quantity: 2 }], success_url: `${RETURN_URL}?s={CHECKOUT_SESSION_ID}`,
  });
  assert.equal(payment.status, "open");
  assert.equal(payment.amount_total, 2400);
  assert.match(payment.url, /^http/);
  const lines = await stripe.checkout.sessions.listLineItems(payment.id);
  assert.equal(lines.data[0].quantity, 2);
  const subscription = await stripe.checkout.sessions.create({
    mode: "subscription", line_items: [{ price: monthly.id, quantity: 1 }], success_url: RETURN_URL,
  });
  assert.equal(subscription.mode, "subscription");
  const expired = await stripe.checkout.sessions.expire(subscription.id);
  assert.equal(expired.status, "expired");
  const wrongMode = await rejected(stripe.checkout.sessions.create({
    mode: "payment", line_items: [{ price: monthly.id, quantity: 1 }], success_url: RETURN_URL,
  }));
  assert.equal(wrongMode.type, "StripeInvalidRequestError");
});

test("PaymentIntents: a card payment, and the webhook verified by constructEvent", async () => {
  const pi = await stripe.paymentIntents.create({
    amount: 2000, currency: "usd", payment_method: "pm_card_visa", payment_method_types: ["card"], confirm: true,
  });
  assert.equal(pi.status, "succeeded");
  const event = await eventFor("payment_intent.succeeded", pi.id);
  assert.equal(event.data.object.amount_received, 2000);
});

test("PaymentIntents: declines answer a StripeCardError with Stripe's codes", async () => {
  for (const [pm, declineCode] of [["pm_card_chargeDeclined", "generic_decline"],
    ["pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"]]) {
    const err = await rejected(stripe.paymentIntents.create({
      amount: 1500, currency: "usd", payment_method: pm, payment_method_types: ["card"], confirm: true,
    }));
    assert.equal(err.type, "StripeCardError");
    assert.equal(err.code, "card_declined");
    assert.equal(err.decline_code, declineCode);
    assert.equal(err.statusCode, 402);
    assert.equal(err.payment_intent.status, "requires_payment_method");
  }
});

test("PaymentIntents: 3D Secure asks for an action, and a missing return_url is refused", async () => {
  const pi = await stripe.paymentIntents.create({
    amount: 3000, currency: "eur", payment_method: "pm_card_authenticationRequired",
    payment_method_types: ["card"], confirm: true, return_url: RETURN_URL,
  });
  assert.equal(pi.status, "requires_action");
  assert.equal(pi.next_action.type, "redirect_to_url");
  assert.equal(pi.next_action.redirect_to_url.return_url, RETURN_URL);
  const err = await rejected(stripe.paymentIntents.create({
    amount: 3000, currency: "eur", payment_method: "pm_card_visa", confirm: true,
  }));
  assert.equal(err.type, "StripeInvalidRequestError");
  assert.match(err.message, /you must provide a `return_url`/);
});

test("PaymentIntents with local methods: a redirect and a bank debit", async () => {
  const grabpay = await stripe.paymentIntents.create({
    amount: 1000, currency: "sgd", payment_method_types: ["grabpay"], confirm: true,
    payment_method_data: { type: "grabpay" }, return_url: RETURN_URL,
  });
  assert.equal(grabpay.status, "requires_action");
  assert.ok(grabpay.next_action, "a next action");
  const sepa = await stripe.paymentIntents.create({
    amount: 1000, currency: "eur", payment_method_types: ["sepa_debit"], confirm: true,
    payment_method_data: {
      type: "sepa_debit", sepa_debit: { iban: "DE89370400440532013000" },
      billing_details: { name: "Ada Lovelace", email: "ada@example.com" },
    },
    mandate_data: { customer_acceptance: { type: "online", online: { ip_address: "127.0.0.1", user_agent: "node" } } },
  });
  assert.equal(sepa.status, "processing");
});

test("idempotency: a replay answers the same, a conflict is refused", async () => {
  const key = `node-idem-${Date.now()}`;
  const first = await stripe.customers.create({ email: "idem@example.com" }, { idempotencyKey: key });
  const again = await stripe.customers.create({ email: "idem@example.com" }, { idempotencyKey: key });
  assert.equal(again.id, first.id);
  const err = await rejected(stripe.customers.create({ email: "other@example.com" }, { idempotencyKey: key }));
  assert.equal(err.type, "StripeIdempotencyError");
});

test("refunds: partial then the rest", async () => {
  const pi = await stripe.paymentIntents.create({
    amount: 5000, currency: "usd", payment_method: "pm_card_visa", payment_method_types: ["card"], confirm: true,
  });
  const part = await stripe.refunds.create({ payment_intent: pi.id, amount: 2000 });
  assert.equal(part.status, "succeeded");
  await stripe.refunds.create({ payment_intent: pi.id });
  const charge = await stripe.charges.retrieve(pi.latest_charge);
  assert.equal(charge.amount_refunded, 5000);
  assert.equal(charge.refunded, true);
  const refunds = await stripe.refunds.list({ payment_intent: pi.id });
  assert.equal(refunds.data.length, 2);
});

test("test clocks: a subscription renews when its clock advances", async () => {
  const start = Math.floor(Date.now() / 1000);
  const clock = await stripe.testHelpers.testClocks.create({ frozen_time: start });
  const customer = await stripe.customers.create({
    test_clock: clock.id, payment_method: "pm_card_visa", invoice_settings: { default_payment_method: "pm_card_visa" },
  });
  const product = await stripe.products.create({ name: "Clocked" });
  const price = await stripe.prices.create({
    product: product.id, unit_amount: 900, currency: "usd", recurring: { interval: "month" },
  });
  const sub = await stripe.subscriptions.create({
    customer: customer.id, items: [{ price: price.id }],
    default_payment_method: customer.invoice_settings.default_payment_method,
  });
  assert.equal(sub.status, "active");
  await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: start + 32 * 86400 });
  let advanced = await stripe.testHelpers.testClocks.retrieve(clock.id);
  for (let i = 0; advanced.status !== "ready" && i < 100; i++) {
    await new Promise((r) => setTimeout(r, 50));
    advanced = await stripe.testHelpers.testClocks.retrieve(clock.id);
  }
  assert.equal(advanced.status, "ready");
  const invoices = await stripe.invoices.list({ subscription: sub.id });
  assert.equal(invoices.data.length, 2);
  assert.ok(invoices.data.every((i) => i.status === "paid"));
});

test("billing portal: a session for a customer", async () => {
  const customer = await stripe.customers.create({ email: "portal@example.com" });
  const session = await stripe.billingPortal.sessions.create({ customer: customer.id, return_url: RETURN_URL });
  assert.equal(session.object, "billing_portal.session");
  assert.match(session.url, /^http/);
  assert.equal(session.return_url, RETURN_URL);
});

test("webhooks: every delivery so far verified, none refused", () => {
  assert.deepEqual(refused, []);
  assert.ok(received.length > 0);
});
