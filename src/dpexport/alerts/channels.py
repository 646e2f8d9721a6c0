"""The channels an alert is delivered by (CONTRACT §10): PagerDuty Events API v2, a Slack
incoming webhook, email over SMTP.

Each channel makes one attempt per ``send`` and raises a :class:`ChannelError` that says
whether a retry may help (a ``TransientError``: refused, no answer, HTTP 429/5xx, SMTP
4xx) or not (a ``TerminalError``: HTTP 4xx, SMTP 5xx); ``dpexport.alerts.deliver``
retries. Its message names the channel and the HTTP status or SMTP reply code, never a
URL (a Slack webhook URL is the secret itself), a key, a password or the server's reply
text.

The standard library does the work: ``urllib.request`` for the two JSON POSTs and
``smtplib`` with ``email.message`` for mail. Both take a socket timeout per call, both
ship with Python, and ``requests`` is only present here as a dependency of the optional
cloud SDKs, so a core feature does not lean on it.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from dpexport.alerts.model import Alert, Channel
from dpexport.config.models.operations import AlertChannel
from dpexport.errors import TerminalError, TransientError
from dpexport.security import transit

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SOURCE = "dpexport"
SUBJECT_PREFIX = "[dpexport]"


class ChannelError(Exception):
    """A secret-free reason a channel could not be configured or used."""


class NotConfigured(ChannelError):
    """The channel lacks a setting or an environment variable: delivery is skipped."""


class ChannelDown(TransientError):
    """Worth retrying: refused, no answer, HTTP 429/5xx, SMTP 4xx."""


class ChannelRefused(TerminalError):
    """Not worth retrying: the request itself was refused (HTTP 4xx, SMTP 5xx)."""


def _env(channel: str, key: str, var: str | None) -> str:
    """The secret in environment variable ``var`` (named by ``key``); its value is never
    in a message, only the variable's name."""
    if not var:
        raise NotConfigured(f"{channel}: no {key} set")
    value = os.environ.get(var)
    if not value:
        raise NotConfigured(f"{channel}: environment variable {var} ({key}) is not set")
    return value


def _network_error(channel: str, exc: BaseException | str, timeout: float) -> ChannelDown:
    """``exc``: the socket error, or urllib's reason (an error or a short text)."""
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return ChannelDown(f"{channel}: no answer within {timeout:.1f} s", code="TIMEOUT")
    if isinstance(exc, ConnectionRefusedError):
        return ChannelDown(f"{channel}: connection refused", code="SERVICE_UNAVAILABLE")
    kind = "" if isinstance(exc, str) else f" ({type(exc).__name__})"
    return ChannelDown(f"{channel}: connection failed{kind}", code="SERVICE_UNAVAILABLE")


def _http_status_error(channel: str, status: int) -> Exception:
    if status == 429:
        return ChannelDown(f"{channel}: HTTP 429", code="RATE_LIMIT_EXCEEDED")
    if status >= 500:
        return ChannelDown(f"{channel}: HTTP {status}", code="SERVICE_UNAVAILABLE")
    return ChannelRefused(f"{channel}: HTTP {status}", code="INVALID_ARGUMENT")


def post_json(channel: str, url: str, body: dict[str, Any], timeout: float) -> int:
    """POST ``body`` as JSON to ``url``; the HTTP status on 2xx, else ChannelDown or
    ChannelRefused naming ``channel`` and the status (never the URL)."""
    try:
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "User-Agent": SOURCE},
            method="POST",
        )
        context = transit.ssl_context()  # spec 6.3 in_transit
        with urllib.request.urlopen(request, timeout=timeout, context=context) as reply:
            reply.read()
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise _http_status_error(channel, exc.code) from None
    except urllib.error.URLError as exc:
        raise _network_error(channel, exc.reason, timeout) from None
    except (OSError, ValueError) as exc:  # a reset, a timeout reading the reply, a bad URL
        if isinstance(exc, ValueError):
            raise ChannelRefused(f"{channel}: not a valid URL", code="INVALID_ARGUMENT") from None
        raise _network_error(channel, exc, timeout) from None


@dataclass
class PagerDuty:
    """PagerDuty Events API v2: a trigger or resolve event per incident (``dedup_key``)."""

    config: AlertChannel
    name: str = "pagerduty"

    def body(self, alert: Alert) -> dict[str, Any]:
        key = _env(self.name, "routing_key_env", self.config.routing_key_env)
        event: dict[str, Any] = {
            "routing_key": key,
            "event_action": alert.action,
            "dedup_key": alert.dedup_key,
        }
        if alert.action == "trigger":
            event["payload"] = {
                "summary": alert.summary[:1024],  # the API's limit
                "source": SOURCE,
                "severity": alert.severity,
                "custom_details": {"rule": alert.rule, "table": alert.table, **alert.details},
            }
        return event

    def send(self, alert: Alert, recipients: str | None, timeout: float) -> None:
        url = self.config.events_url or PAGERDUTY_EVENTS_URL
        post_json(self.name, url, self.body(alert), timeout)


def text_of(alert: Alert) -> str:
    """One line for people: the rule, the table, the summary (Slack text, email body)."""
    where = f" {alert.table}" if alert.table else ""
    if alert.action == "resolve":
        return f"{SUBJECT_PREFIX} RESOLVED {alert.rule}{where}: {alert.summary}"
    return f"{SUBJECT_PREFIX} {alert.severity.upper()} {alert.rule}{where}: {alert.summary}"


@dataclass
class Slack:
    """A Slack incoming webhook: ``{"text": ...}``; the webhook URL is the secret."""

    config: AlertChannel
    name: str = "slack"

    def body(self, alert: Alert) -> dict[str, Any]:
        lines = [text_of(alert)]
        lines += [f"{k}: {v}" for k, v in alert.details.items()]
        return {"text": "\n".join(lines)}

    def send(self, alert: Alert, recipients: str | None, timeout: float) -> None:
        url = _env(self.name, "url_env", self.config.url_env)
        post_json(self.name, url, self.body(alert), timeout)


@dataclass
class Email:
    """One SMTP message per alert, subject ``[dpexport] ...``; ``Email to finance`` goes
    to the ``recipients: {finance: [...]}`` list, anything else to ``to``."""

    config: AlertChannel
    name: str = "email"

    def recipients_for(self, recipients: str | None) -> list[str]:
        if recipients:
            named = {k.lower(): v for k, v in self.config.recipients.items()}
            if not named.get(recipients.lower()):
                raise NotConfigured(f"{self.name}: no recipients list {recipients!r}")
            return list(named[recipients.lower()])
        if not self.config.to:
            raise NotConfigured(f"{self.name}: no 'to' addresses")
        return list(self.config.to)

    def login(self) -> tuple[str, str] | None:
        """(user, password) from the environment, or None when no login is configured."""
        c = self.config
        if not (c.username_env or c.smtp_password_env):
            return None
        if not c.starttls:
            raise NotConfigured(
                f"{self.name}: a login without starttls would send the password in clear; "
                "set starttls: true"
            )
        user = _env(self.name, "username_env", c.username_env)
        return user, _env(self.name, "smtp_password_env", c.smtp_password_env)

    def message(self, alert: Alert, to: list[str]) -> EmailMessage:
        if not self.config.sender:
            raise NotConfigured(f"{self.name}: no sender set")
        msg = EmailMessage()
        state = "RESOLVED" if alert.action == "resolve" else alert.severity.upper()
        where = f" {alert.table}" if alert.table else ""
        msg["Subject"] = f"{SUBJECT_PREFIX} {state} {alert.rule}{where}: {alert.summary}"[:200]
        msg["From"] = self.config.sender
        msg["To"] = ", ".join(to)
        details = "".join(f"{k}: {v}\n" for k, v in alert.details.items())
        msg.set_content(f"{text_of(alert)}\n\n{details}incident: {alert.dedup_key}\n")
        return msg

    def send(self, alert: Alert, recipients: str | None, timeout: float) -> None:
        c = self.config
        if not c.smtp_host:
            raise NotConfigured(f"{self.name}: no smtp_host set")
        to = self.recipients_for(recipients)
        msg = self.message(alert, to)
        login = self.login()
        port = c.smtp_port or (587 if c.starttls else 25)
        try:
            with smtplib.SMTP(c.smtp_host, port, timeout=timeout) as smtp:
                if c.starttls:
                    smtp.starttls(context=transit.ssl_context())
                if login:
                    smtp.login(*login)
                smtp.send_message(msg, to_addrs=to)
        except smtplib.SMTPResponseException as exc:
            raise _smtp_error(self.name, exc.smtp_code) from None
        except smtplib.SMTPRecipientsRefused:
            raise ChannelRefused(f"{self.name}: every recipient refused") from None
        except ssl.SSLError as exc:  # a certificate it cannot verify: not worth a retry
            raise ChannelRefused(f"{self.name}: TLS failed ({type(exc).__name__})") from None
        except smtplib.SMTPServerDisconnected as exc:  # smtplib's word for a timeout too
            raise _network_error(self.name, exc, timeout) from None
        except smtplib.SMTPNotSupportedError:
            raise ChannelRefused(f"{self.name}: the server offers no STARTTLS") from None
        except smtplib.SMTPException as exc:
            raise ChannelDown(f"{self.name}: SMTP failed ({type(exc).__name__})") from None
        except OSError as exc:
            raise _network_error(self.name, exc, timeout) from None
            raise _network_error(self.name, exc, timeout) from None


def _smtp_error(channel: str, code: int) -> Exception:
    if 400 <= code < 500:
        return ChannelDown(f"{channel}: SMTP reply {code}", code="SERVICE_UNAVAILABLE")
    denied = code in (530, 534, 535)
    return ChannelRefused(
        f"{channel}: SMTP reply {code}" + (" (login refused)" if denied else ""),
        code="PERMISSION_DENIED" if denied else "INVALID_ARGUMENT",
    )


#: channel kind by the first word of an ``alert:`` part
KINDS: dict[str, type[PagerDuty] | type[Slack] | type[Email]] = {
    "pagerduty": PagerDuty,
    "slack": Slack,
    "email": Email,
}


def channel_for(name: str, config: AlertChannel) -> Channel:
    """The channel named ``name`` (``metrics.channels`` key) with its settings."""
    kind = KINDS.get(name.lower())
    if kind is None:
        raise NotConfigured(f"{name}: no such channel kind (known: {', '.join(KINDS)})")
    return kind(config, name.lower())
