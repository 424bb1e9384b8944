"""The Kinde stand-in's dev endpoints over a real socket: bad framing is a 400, never a crash."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from local.kinde import KindeStandIn


def raw_post(url: str, path: str, headers: str, body: bytes = b"") -> tuple[int, bytes]:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as conn:
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode() + body)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                length = int(
                    next(
                        (
                            line.split(b":")[1]
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length")
                        ),
                        b"0",
                    )
                )
                if len(rest) >= length:
                    return int(head.split(b" ")[1]), rest[:length]
    raise AssertionError("no response")


@pytest.mark.parametrize("length", ["abc", "\u00b2", "-5", "99999999999"])
def test_garbage_content_length_is_a_400(kinde: KindeStandIn, length: str) -> None:
    status, body = raw_post(kinde.url, "/dev/token", f"Content-Length: {length}\r\n")
    assert status == 400
    assert "user" in json.loads(body)["errors"][0]["message"]
    # and it keeps serving
    status, body = raw_post(
        kinde.url,
        "/dev/token",
        "Content-Length: 17\r\nContent-Type: application/json\r\n",
        b'{"user":"kp_bob"}',
    )
    assert status == 200 and json.loads(body)["access_token"]
