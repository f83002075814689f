"""Alert channels against real local servers: HTTP (webhook) and SMTP (email), and the DB."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from slurmopt.telemetry.alerts import AlertEvent
from slurmopt.telemetry.channels import Dispatcher, EmailChannel, LogChannel, WebhookChannel
from slurmopt.telemetry.store import AlertRecord, MemoryStore

FIRING = AlertEvent("temperature", "gpu-a1:gpu0", "firing", "warning", "GPU at 91C", 100, 100)
RESOLVED = AlertEvent("temperature", "gpu-a1:gpu0", "resolved", "warning", "recovered: x", 200, 100)


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(Hook.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_url() -> Iterator[str]:
    Hook.received = []
    Hook.status = 200
    srv = HTTPServer(("127.0.0.1", 0), Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook"
    srv.shutdown()
    srv.server_close()


class SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: EHLO/HELO, MAIL, RCPT, DATA, QUIT."""

    messages: ClassVar[list[dict[str, Any]]] = []

    def reply(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())

    def handle(self) -> None:
        self.reply("220 localhost test SMTP")
        sender, rcpts = "", []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            cmd = raw.decode().strip()
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 localhost")
            elif verb == "MAIL":
                sender = cmd.split(":", 1)[1].strip(" <>")
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpts.append(cmd.split(":", 1)[1].strip(" <>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with .")
                data = b""
                while (line := self.rfile.readline()) not in (b".\r\n", b""):
                    data += line[1:] if line.startswith(b"..") else line
                SmtpHandler.messages.append({"from": sender, "to": rcpts, "data": data})
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")


@pytest.fixture
def smtp_port() -> Iterator[int]:
    SmtpHandler.messages = []
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SmtpHandler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield int(srv.server_address[1])
    srv.shutdown()
    srv.server_close()


def test_webhook_posts_json(http_url: str) -> None:
    WebhookChannel(http_url, timeout_s=5).send([FIRING, RESOLVED])
    ((ctype, body),) = Hook.received
    assert ctype == "application/json" and body["source"] == "slurmopt"
    assert [a["status"] for a in body["alerts"]] == ["firing", "resolved"]
    assert body["alerts"][0] == FIRING.to_dict()


def test_webhook_error_is_raised_and_counted_by_dispatcher(http_url: str) -> None:
    Hook.status = 500
    store = MemoryStore()
    d = Dispatcher([WebhookChannel(http_url, timeout_s=5), LogChannel()], store)
    assert d.dispatch([FIRING]) == 1 and d.failures == {"webhook": 1}
    assert [r.rule for r in store.alerts()] == ["temperature"]  # still recorded
    with pytest.raises(ValueError):
        WebhookChannel("file:///etc/passwd").send([FIRING])


def test_email_over_local_smtp(smtp_port: int) -> None:
    EmailChannel(
        "127.0.0.1", smtp_port, "slurmopt@cluster", ("ops@cluster", "b@c"), timeout_s=5
    ).send([FIRING, RESOLVED])
    (m,) = SmtpHandler.messages
    assert m["from"] == "slurmopt@cluster" and m["to"] == ["ops@cluster", "b@c"]
    msg = message_from_bytes(m["data"])
    assert msg["Subject"] == "[slurmopt] 1 alert(s) firing, 1 resolved"
    body = msg.get_payload()
    assert "FIRING" in body and "GPU at 91C" in body and "RESOLVED" in body


def test_dispatcher_records_open_and_resolved(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    d = Dispatcher([LogChannel()], store)
    with caplog.at_level("INFO"):
        assert d.dispatch([FIRING]) == 0
        d.dispatch([RESOLVED])
    assert store.alerts() == [
        AlertRecord(100, "temperature", "gpu-a1:gpu0", "warning", "GPU at 91C", 200)
    ]
    assert "alert firing temperature" in caplog.text and "alert resolved" in caplog.text
    assert d.dispatch([]) == 0


def test_history_store_round_trip(tmp_path: Path) -> None:
    from slurmopt.history import db
    from slurmopt.telemetry.store import GpuPoint, HistoryStore

    engine = db.make_engine(f"sqlite:///{tmp_path / 'h.sqlite'}")
    db.upgrade(engine)
    store = HistoryStore(engine)
    pts = [
        GpuPoint(100, "n1", 0, "NVIDIA T4", 5, 50.0, 1000.0, 70.0, 60.0),
        GpuPoint(160, "n1", 0, "NVIDIA T4", 5, 10.0, 1000.0, 30.0, 55.0),
    ]
    assert store.add_points(pts) == 2 and store.add_points(pts) == 0
    assert store.points_since(150) == pts[1:]
    d = Dispatcher([], store)
    d.dispatch([FIRING])
    d.dispatch([RESOLVED])
    assert store.alerts() == [
        AlertRecord(100, "temperature", "gpu-a1:gpu0", "warning", "GPU at 91C", 200)
    ]


def test_cli_alerts_probe_files_webhook_dedup_and_recovery(http_url: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from slurmopt.cli.main import cli
    from slurmopt.telemetry.gpus import GpuSample
    from slurmopt.telemetry.probe import ProbeResult

    def run(temp: int, at: int) -> Any:
        pf = tmp_path / f"p{at}.json"
        g = GpuSample(0, uuid="GPU-0", temperature_c=temp, util_sm_pct=50)
        pf.write_text(
            json.dumps(ProbeResult("gpu-a1", float(at), gpus=(g,), nvml_ok=True).to_dict())
        )
        return CliRunner().invoke(
            cli,
            [
                "alerts",
                "--probe-file",
                str(pf),
                "--state-file",
                str(tmp_path / "st.json"),
                "--no-record",
                "--webhook",
                http_url,
                "--max-temp",
                "85",
                "--json",
                "--now",
                str(at),
            ],
        )

    r1, r2 = run(95, 1000), run(96, 1400)  # temperature_for_s is 300 s
    assert r1.exit_code == 0 and r1.stdout == "", r1.output
    assert r2.exit_code == 0, r2.output
    (ev,) = [json.loads(line) for line in r2.stdout.splitlines()]
    assert (ev["rule"], ev["status"], ev["subject"]) == ("temperature", "firing", "gpu-a1:gpu0")
    assert run(97, 1500).stdout == ""  # deduplicated
    r4 = run(60, 1600)
    assert [json.loads(x)["status"] for x in r4.stdout.splitlines()] == ["resolved"]
    assert [b["alerts"][0]["status"] for _, b in Hook.received] == ["firing", "resolved"]
    Hook.status = 500
    assert run(99, 1700).exit_code == 0  # nothing new to send yet
    assert run(99, 2100).exit_code == 12  # firing again, the webhook fails


def test_cli_alerts_from_db_gpu_idle_recorded(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from slurmopt.cli.main import cli
    from slurmopt.history import db
    from slurmopt.telemetry.store import GpuPoint, HistoryStore

    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    store = HistoryStore(engine)
    t0 = 1_800_000_000
    # Job 42 holds gpu-a1 GPU 3 and leaves it idle for 40 minutes (one sample a minute).
    store.add_points(
        [GpuPoint(t0 + 60 * i, "gpu-a1", 3, "T4", 42, 0.0, 100.0, 30.0, 40.0) for i in range(41)]
    )
    args = [
        "alerts",
        "--from-db",
        "--db",
        url,
        "--state-file",
        str(tmp_path / "s.json"),
        "--json",
        "--now",
        str(t0 + 2400),
    ]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    ev = [json.loads(x) for x in res.stdout.splitlines()]
    assert [(e["rule"], e["subject"]) for e in ev] == [("gpu_idle", "gpu-a1:gpu3")]
    assert "job 42" in ev[0]["message"]
    assert [(a.rule, a.subject, a.resolved_at) for a in store.alerts()] == [
        ("gpu_idle", "gpu-a1:gpu3", None)
    ]
    # Back to work: the next run reads only the new samples, resolves and records it.
    store.add_points(
        [
            GpuPoint(t0 + 2460 + 60 * i, "gpu-a1", 3, "T4", 42, 97.0, 9000.0, 250.0, 70.0)
            for i in range(10)
        ]
    )
    res = CliRunner().invoke(cli, [*args[:-1], str(t0 + 3000)])
    assert [json.loads(x)["status"] for x in res.stdout.splitlines()] == ["resolved"]
    assert store.alerts()[0].resolved_at == t0 + 3000
