"""Server memory under oversized bodies: the HTTP app alone (no Ray), default limits.

``python -m benchmarks.body_limits`` starts the API in a child process (uvicorn on a free
port, a fresh data directory), then sends, over raw sockets and chunked (no Content-Length),
a 300 MB multipart upload with a valid token and a 200 MB JSON body without one, and reports
the server's resident memory before and at its peak, the status, and how many bytes were
sent before the answer came. ``python -m benchmarks body_limits`` (part of ``make bench``)
writes ``benchmarks/results/body_limits.{json,md}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SERVER = """
import sys, uvicorn
from service.api import create_app, open_manager
from service.auth import create_token
from service.config import Settings
settings = Settings(data_dir=sys.argv[1])
manager = open_manager(settings)
print(create_token(manager.store, "bench", "submit")[1], flush=True)
uvicorn.run(create_app(settings, manager=manager), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning")
"""


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _send(port: int, path: str, headers: dict, prefix: bytes, total: int) -> tuple[int, int]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = [f"POST {path} HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sock.sendall(f"{len(prefix):x}\r\n".encode() + prefix + b"\r\n")
    block, sent, answer = b"x" * (1 << 20), 0, b""
    sock.setblocking(False)
    while sent < total and not answer:
        with contextlib.suppress(BlockingIOError):
            answer = sock.recv(4096)
        try:
            sock.setblocking(True)
            sock.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n")
            sent += len(block)
        except OSError:
            break
        finally:
            sock.setblocking(False)
    sock.setblocking(True)
    while b"\r\n" not in answer:
        answer += sock.recv(4096)
    sock.close()
    return int(answer.split()[1]), sent


def run(quick: bool = False) -> dict:
    """The suite's table: one row per oversized body (``quick`` changes nothing: two requests)."""
    rows = [{"case": name, **figures} for name, figures in _measure().items()]
    return {
        "name": "body_limits",
        "title": "Server memory under oversized bodies (chunked, no Content-Length)",
        "columns": ["case", "status", "body_MB", "sent_MB", "rss_before_MB", "rss_peak_MB",
                    "upload_bytes_left_on_disk"],
        "rows": rows,
        "notes": "The API alone in a child process, default limits (64 MB body); raw sockets. "
        "sent_MB: how much of the body was sent before the server answered.",
    }  # fmt: skip


def _measure() -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tempfile.mkdtemp(prefix="sigmalab-limits-")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, data, str(port)], stdout=subprocess.PIPE, text=True
    )
    token = proc.stdout.readline().strip()
    time.sleep(3)
    cases = {
        "upload_300MB_chunked_with_token": (
            "/v1/jobs",
            {"Authorization": f"Bearer {token}",
             "Content-Type": "multipart/form-data; boundary=b"},
            b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.csv"\r\n\r\n',
            300 << 20,
        ),
        "campaign_200MB_without_token": (
            "/v1/campaigns", {"Content-Type": "application/json"}, b"{", 200 << 20,
        ),
    }  # fmt: skip
    out = {}
    try:
        for name, (path, headers, prefix, total) in cases.items():
            before, peak = _rss_mb(proc.pid), 0.0
            done = threading.Event()

            def watch(done=done):
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, _rss_mb(proc.pid))
                    time.sleep(0.02)

            threading.Thread(target=watch, daemon=True).start()
            status, sent = _send(port, path, headers, prefix, total)
            time.sleep(0.5)
            done.set()
            left = sum(f.stat().st_size for f in Path(data).rglob("*") if f.is_file()
                       and "uploads" in f.parts)  # fmt: skip
            out[name] = {"status": status, "body_MB": total >> 20, "sent_MB": sent >> 20,
                         "rss_before_MB": round(before), "rss_peak_MB": round(peak),
                         "upload_bytes_left_on_disk": left}  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return out


if __name__ == "__main__":
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    print(json.dumps(_measure(), indent=1))
