"""The app's Connection record keeps the API key out of its repr (a repr lands in logs and tracebacks)."""

from __future__ import annotations

from ttmt_monitor.ui.app import Connection


def test_connection_repr_hides_the_api_key() -> None:
    key = "ttmt_live_" + "s3cr3t" * 7
    conn = Connection("http://127.0.0.1:1/api/v1", key, True)
    assert conn.api_key == key  # still there for the code that needs it
    assert key not in repr(conn) and "s3cr3t" not in str(conn)
    assert "127.0.0.1" in repr(conn)
