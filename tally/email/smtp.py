"""A small SMTP sender from ``TALLY_SMTP_URL``: ``smtp://user:pass@host:25``, ``smtps://…:465`` (TLS from the
start) or ``smtp+starttls://…:587``; ``?from=billing@example.com`` sets the sender address."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from .messages import Attachment, Email


@dataclass(frozen=True)
class SmtpSender:
    host: str
    port: int
    mode: str  # plain | ssl | starttls
    username: str | None
    password: str | None
    sender: str
    timeout: float = 20.0

    @classmethod
    def from_url(cls, url: str) -> SmtpSender:
        parts = urlsplit(url)
        modes = {"smtp": "plain", "smtps": "ssl", "smtp+starttls": "starttls"}
        if parts.scheme not in modes or not parts.hostname:
            raise ValueError("TALLY_SMTP_URL must look like smtp://host:25, smtps://host:465 or smtp+starttls://host:587")
        mode = modes[parts.scheme]
        port = parts.port or {"plain": 25, "ssl": 465, "starttls": 587}[mode]
        sender = parse_qs(parts.query).get("from", [f"billing@{parts.hostname}"])[0]
        return cls(parts.hostname, port, mode, unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None, sender)

    def send(self, email: Email, attachment: Attachment | None = None) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = email.to
        message["Subject"] = email.subject
        message.set_content(email.body)
        if email.html:
            message.add_alternative(email.html, subtype="html")
        if attachment is not None:
            maintype, subtype = attachment.content_type.split("/", 1)
            message.add_attachment(attachment.data, maintype=maintype, subtype=subtype,
                                   filename=attachment.filename)
        if self.mode == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                     context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            if self.mode == "starttls":
                client.starttls(context=ssl.create_default_context())
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(message)
