"""Email delivery by SMTP (``TALLY_SMTP_URL``) against a real SMTP server in the test process (aiosmtpd):
the sender logs in and sends what the outbox holds; the worker's ``deliver_queued`` marks accepted emails
``sent``, keeps a refused one ``queued`` with the server's answer, and never sends an email twice."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tally.config import Settings
from tally.db import Database, libpq_url
from tally.email.service import Email, deliver_queued, enqueue
from tally.email.smtp import SmtpSender
from tests.tally_harness import free_port

REFUSED = "bounce@example.com"


@dataclass
class Mailbox:
    """An SMTP server's handler: accepts mail for anyone but ``REFUSED``; a login must be ada/secret."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address == REFUSED:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"ada", b"secret")
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    # AUTH over plain TCP: a loopback test server has no certificate (smtps/starttls use the same code path).
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, authenticator=mailbox.authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def test_sender_logs_in_and_delivers(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    sender = SmtpSender.from_url(f"smtp://ada:secret@127.0.0.1:{port}?from=billing%40shop.example")
    assert (sender.mode, sender.sender) == ("plain", "billing@shop.example")
    sender.send(Email("ada@example.com", "Your payment failed — please update your card", "Update it here:\nhttps://x"))
    [message] = mailbox.messages
    assert mailbox.logins and mailbox.envelopes == [("billing@shop.example", ["ada@example.com"])]
    assert message["From"] == "billing@shop.example" and message["To"] == "ada@example.com"
    assert message["Subject"] == "Your payment failed — please update your card"  # non-ASCII survives
    assert message.get_content().splitlines() == ["Update it here:", "https://x"]  # CRLF on the wire

    assert SmtpSender.from_url("smtps://mail.example").port == 465
    assert SmtpSender.from_url("smtp+starttls://u%40x:p@mail.example").username == "u@x"
    with pytest.raises(ValueError):
        SmtpSender.from_url("http://mail.example")


async def test_worker_sends_queued_emails_once(smtp_server: tuple[Mailbox, int], database_url: str) -> None:
    mailbox, port = smtp_server
    settings = Settings(TALLY_DATABASE_URL=database_url, STRIPE_SECRET_KEY="sk_test_not_the_sandbox",
                        TALLY_SMTP_URL=f"smtp://ada:secret@127.0.0.1:{port}?from=billing%40shop.example")
    db = Database(database_url, pool_size=2)
    try:
        async with db.transaction() as session:
            for key, to in (("smtp-test:good", "grace@example.com"), ("smtp-test:refused", REFUSED)):
                assert await enqueue(session, settings, dedupe_key=key, kind="test", user_id=None,
                                     email=Email(to, f"Hello {to}", "Body"))
            assert not await enqueue(session, settings, dedupe_key="smtp-test:good", kind="test", user_id=None,
                                     email=Email("grace@example.com", "Again", "Body"))
        assert await deliver_queued(db, settings) == 1
        assert await deliver_queued(db, settings) == 0  # the refused one stays queued; the sent one is done
    finally:
        await db.dispose()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT dedupe_key, status, last_error, sent_at IS NOT NULL FROM outbox_emails "
            "WHERE dedupe_key LIKE 'smtp-test:%'").fetchall()}
    assert rows["smtp-test:good"] == ("sent", None, True)
    status, error, sent = rows["smtp-test:refused"]
    assert status == "queued" and not sent and "550" in error and "No such mailbox" in error
    assert [m["To"] for m in mailbox.messages] == ["grace@example.com"]
    assert mailbox.messages[0]["Subject"] == "Hello grace@example.com"
