"""A real SMTP server on loopback for the product's email (Django's SMTP backend talks to it):
the `smtp_server` fixture points the settings at it and collects what arrives in `.received`."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for Django's backend: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def handle(self) -> None:
        def reply(line: str) -> None:
            self.wfile.write((line + "\r\n").encode())

        reply("220 localhost test SMTP")
        sender, recipients, data, reading = "", [], [], False
        while raw := self.rfile.readline():
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if reading:
                if line == ".":
                    self.server.received.append(
                        {"from": sender, "to": recipients, "data": "\n".join(data)}
                    )
                    recipients, data, reading = [], [], False
                    reply("250 OK: queued")
                else:
                    data.append(line[1:] if line.startswith("..") else line)
                continue
            command = line[:4].upper()
            if command == "EHLO":
                reply("250-localhost")
                reply("250 8BITMIME")
            elif command in {"HELO", "RSET", "NOOP"}:
                reply("250 OK")
            elif command == "MAIL":
                sender = line.split(":", 1)[1].strip()
                reply("250 OK")
            elif command == "RCPT":
                recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                reply("250 OK")
            elif command == "DATA":
                reading = True
                reply("354 End data with <CR><LF>.<CR><LF>")
            elif command == "QUIT":
                reply("221 Bye")
                return
            else:
                reply("502 Not implemented")


class SmtpServer:
    """The loopback server on a free port, in a thread; `.received` collects the messages."""

    def __init__(self) -> None:
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
        self.server.daemon_threads = True
        self.server.received = []
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self.server.server_address

    @property
    def received(self) -> list[dict[str, Any]]:
        return self.server.received

    def start(self) -> SmtpServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def smtp_server(settings) -> Iterator[Any]:
    """A loopback SMTP server that Django's SMTP backend of this process sends to."""
    server = SmtpServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.address
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.PUBLIC_URL = "https://support.acme.example"
    try:
        yield server
    finally:
        server.stop()
