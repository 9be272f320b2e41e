"""Webhook deliveries against real HTTP receivers on 127.0.0.1: deadlines, redirects, schemes."""

import socket
import threading
import time

import pytest
from helpers import Receiver, free_port

from mlflow_observe.monitoring.webhook import WebhookURLError, check_webhook_url, post_json


class Trickler:
    """Accepts, reads the request, then sends one byte of a header every ``every`` seconds."""

    def __init__(self, every=1.0):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.every, self.stop = every, threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn):
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
                if self.stop.wait(self.every):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self):
        self.stop.set()
        self.sock.close()


def test_a_trickling_receiver_cannot_hold_past_the_deadline():
    trickler = Trickler(every=0.5)
    try:
        started = time.monotonic()
        delivery = post_json(trickler.url, {"level": "critical"}, timeout=3.0, attempts=2)
        elapsed = time.monotonic() - started
    finally:
        trickler.close()
    assert not delivery.delivered and delivery.attempts == 2
    assert "timed out" in delivery.error
    # Bytes kept coming every 0.5 s (a per-read timeout would never fire); the total did.
    assert 2.5 <= elapsed < 4.0


def test_a_redirect_is_a_failed_delivery_not_followed():
    receiver = Receiver([302])
    try:
        delivery = post_json(receiver.url, {"level": "warning"}, timeout=5.0)
    finally:
        receiver.shutdown()
    assert not delivery.delivered and delivery.status == 302 and delivery.attempts == 1
    assert "redirect to /elsewhere, not followed" in str(delivery)
    assert len(receiver.posts) == 1 and receiver.gets == []  # no GET without the payload


def test_retries_5xx_not_4xx_and_succeeds_on_2xx():
    flaky = Receiver([503, 204])
    refused = Receiver([400])
    try:
        delivered = post_json(flaky.url, {"n": 1}, timeout=5.0, backoff=0.1)
        rejected = post_json(refused.url, {"n": 2}, timeout=5.0, backoff=0.1)
    finally:
        flaky.shutdown()
        refused.shutdown()
    assert delivered.delivered and delivered.attempts == 2 and delivered.status == 204
    assert flaky.posts == [{"n": 1}, {"n": 1}]
    assert not rejected.delivered and rejected.attempts == 1 and "HTTP 400" in rejected.error
    refused_port = post_json(f"http://127.0.0.1:{free_port()}/", {}, timeout=2.0, backoff=0.1)
    assert not refused_port.delivered and "ConnectionRefusedError" in refused_port.error


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "data:,hello", "ftp://127.0.0.1/x", "http://", "hooks/observe"]
)
def test_only_http_urls(url):
    with pytest.raises(WebhookURLError, match="must be an http:// or https:// URL"):
        check_webhook_url(url)
    delivery = post_json(url, {"level": "critical"})
    assert not delivery.delivered and delivery.attempts == 0 and delivery.status is None
