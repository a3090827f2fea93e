"""A fake GitLab on 127.0.0.1, for the tests of the commands that talk to GitLab
(`pdmpolicy note`, `verify --gitlab-url`): no proxy in the way, the token in its variable,
the server on a thread for the length of a test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import HTTPServer

import pytest

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def offline(monkeypatch: pytest.MonkeyPatch, token: str, *unset: str) -> None:
    """Proxies (and `unset`, both spellings) removed, loopback exempt, the token set."""
    for name in (*unset, *PROXY_VARIABLES):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("PDMPOLICY_GITLAB_TOKEN", token)


@contextmanager
def serving(server: HTTPServer) -> Iterator[str]:
    """`server` answering on its thread; yields its URL, and stops it afterwards."""
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
