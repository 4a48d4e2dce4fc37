"""The board's guard: which hosts a browser may reach it by."""

from __future__ import annotations

import pytest

from fintune.board.guard import BoardGuard, _host_name, is_loopback


@pytest.mark.parametrize("header, host", [("127.0.0.1:7860", "127.0.0.1"), ("[::1]:7860", "::1"),
                                          ("LocalHost", "localhost"), ("evil.example:80", "evil.example")])
def test_host_names(header: str, host: str) -> None:
    assert _host_name(header) == host


@pytest.mark.parametrize("bind, host, allowed", [
    ("127.0.0.1", "localhost", True), ("127.0.0.1", "rebind.evil.example", False),
    ("127.0.0.1", "10.0.0.5", False),             # loopback only: not another address
    ("0.0.0.0", "10.0.0.5", True),                # every interface: any IP literal (cannot be rebound)
    ("0.0.0.0", "rebind.evil.example", False),    # but never a foreign name
    ("10.0.0.5", "10.0.0.5", True),
])
def test_allowed_hosts(bind: str, host: str, allowed: bool) -> None:
    assert BoardGuard(lambda *a: None, bind=bind)._host_allowed(host) is allowed
    assert BoardGuard(lambda *a: None, bind=bind, allowed_hosts=[host])._host_allowed(host)


def test_loopback() -> None:
    assert is_loopback("127.0.0.2") and is_loopback("::1") and not is_loopback("0.0.0.0")
