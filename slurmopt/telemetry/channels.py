"""Where alert events go: the log, a webhook (JSON POST), email (SMTP); and the history DB.

A failing channel is logged and counted; it never stops the other channels.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

from slurmopt.errors import SlurmoptError
from slurmopt.telemetry.alerts import AlertEvent
from slurmopt.telemetry.store import AlertRecord, TelemetryStore

log = logging.getLogger(__name__)


class Channel(Protocol):
    name: str

    def send(self, events: Sequence[AlertEvent]) -> None:
        """Deliver ``events``; raises on failure (the dispatcher logs it)."""
        ...


class LogChannel:
    name = "log"

    def send(self, events: Sequence[AlertEvent]) -> None:
        for e in events:
            level = logging.WARNING if e.status == "firing" else logging.INFO
            log.log(
                level, "alert %s %s [%s] %s: %s", e.status, e.rule, e.severity, e.subject, e.message
            )


@dataclass
class WebhookChannel:
    """POST ``{"source": "slurmopt", "alerts": [event, ...]}`` as JSON to ``url``."""

    url: str
    timeout_s: float = 10.0
    headers: dict[str, str] = field(default_factory=dict)
    name: str = "webhook"

    def send(self, events: Sequence[AlertEvent]) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s): {self.url!r}")
        body = json.dumps({"source": "slurmopt", "alerts": [e.to_dict() for e in events]})
        req = urllib.request.Request(  # scheme checked above
            self.url,
            data=body.encode(),
            method="POST",
            headers={"Content-Type": "application/json", **self.headers},
        )
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            if resp.status >= 300:
                raise urllib.error.HTTPError(
                    self.url, resp.status, "webhook refused", resp.headers, None
                )


@dataclass
class EmailChannel:
    """One email per batch of events over SMTP (optional STARTTLS and login)."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0
    name: str = "email"

    def send(self, events: Sequence[AlertEvent]) -> None:
        firing = sum(e.status == "firing" for e in events)
        msg = EmailMessage()
        msg["Subject"] = f"[slurmopt] {firing} alert(s) firing, {len(events) - firing} resolved"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        lines = [
            f"{e.status.upper():9} {e.severity:8} {e.rule} {e.subject}: {e.message}" for e in events
        ]
        msg.set_content("\n".join(lines) + "\n")
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(msg)


@dataclass
class Dispatcher:
    """Sends events to every channel and records them in the store."""

    channels: Sequence[Channel]
    store: TelemetryStore | None = None
    failures: dict[str, int] = field(default_factory=dict)

    def dispatch(self, events: Sequence[AlertEvent]) -> int:
        """Deliver ``events``; returns how many channels failed."""
        if not events:
            return 0
        failed = 0
        for ch in self.channels:
            try:
                ch.send(events)
            except Exception as exc:  # a channel must not stop the others
                failed += 1
                self.failures[ch.name] = self.failures.get(ch.name, 0) + 1
                log.error("alert channel %s failed: %s", ch.name, exc)
        if self.store is not None:
            try:
                self._record(self.store, events)
            except SlurmoptError as exc:
                failed += 1
                self.failures["store"] = self.failures.get("store", 0) + 1
                log.error("recording alerts failed: %s", exc)
        return failed

    @staticmethod
    def _record(store: TelemetryStore, events: Sequence[AlertEvent]) -> None:
        for e in events:
            if e.status == "firing" and e.at == e.since:
                store.open_alert(AlertRecord(e.at, e.rule, e.subject, e.severity, e.message))
            elif e.status == "resolved":
                store.resolve_alert(e.rule, e.subject, e.at)
