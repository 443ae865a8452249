"""Email through the SMTP server of SMTP_URL (SPEC §14): STARTTLS for smtp://, TLS from the start for smtps://.

Certificates are verified against the system's trust store (OpenSSL's SSL_CERT_FILE / SSL_CERT_DIR name another)."""
from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from webapp.config import SmtpSettings

TIMEOUT_SECONDS = 10


class MailError(Exception):
    """The message could not be handed to the SMTP server; the text says why (never the server's password)."""


def send(settings: SmtpSettings, to: str, subject: str, body: str) -> None:
    """Send a plain-text message, or raise MailError."""
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = " ".join(subject.split())  # a header is one line
    message["Message-ID"] = make_msgid(domain=settings.host)
    message.set_content(body)
    context = ssl.create_default_context()
    try:
        if settings.implicit_tls:
            client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=TIMEOUT_SECONDS, context=context)
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT_SECONDS)
        with client:
            if not settings.implicit_tls:
                client.starttls(context=context)  # refuses a server without STARTTLS: no password in clear text
            if settings.username:
                client.login(settings.username, settings.password or "")
            client.send_message(message)
    except smtplib.SMTPNotSupportedError:
        raise MailError(f"the SMTP server {settings.host}:{settings.port} does not offer STARTTLS") from None
    except smtplib.SMTPAuthenticationError:
        raise MailError(f"the SMTP server {settings.host}:{settings.port} refused the user name or password") from None
    except (smtplib.SMTPException, ssl.SSLError, OSError) as error:
        raise MailError(f"the SMTP server {settings.host}:{settings.port} could not be used ({error})") from None
