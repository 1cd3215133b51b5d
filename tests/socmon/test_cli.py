import json
from pathlib import Path

import pytest

from socmon.cli import main


def test_config_show_masks_secrets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SOCMON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SOCMON_ES_PASSWORD", "s3cret-pass")
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out)
    assert "s3cret-pass" not in out
    assert shown["es_password"] == "********"
    assert shown["data_dir"] == str(tmp_path)


def test_config_error_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCMON_NO_SUCH_KEY", "1")
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("socmon: error: unknown environment setting(s): SOCMON_NO_SUCH_KEY")
    assert "Traceback" not in err


def test_admin_create_prints_token_once_and_audit_verifies(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SOCMON_DATA_DIR", str(tmp_path))
    assert main(["admin", "create", "alice"]) == 0
    captured = capsys.readouterr()
    token = captured.out.strip()
    assert token.startswith("smk_") and len(token) > 40
    assert "shown once" in captured.err
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("socmon.db*"))
    assert token.encode() not in stored
    assert main(["admin", "create", "alice"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["admin", "create", "bob", "--role", "superuser"]) == 2
    assert "unknown role" in capsys.readouterr().err
    assert main(["audit", "verify"]) == 0
    assert "2 audit records verified" in capsys.readouterr().out


def test_up_with_unreachable_store_fails_cleanly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("SOCMON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SOCMON_ES_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SOCMON_STORE_RETRY_MAX_SECONDS", "1")
    assert main(["up"]) == 2
    err = capsys.readouterr().err
    assert f"socmon: error: store at http://127.0.0.1:{port} unreachable after" in err
    assert "Traceback" not in err


def test_parse_prints_one_ecs_document_per_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    lines = (
        b'<189>date=2026-11-23 time=10:00:00 devname="fw1" devid="FG1" logid="0000000013" type="traffic" '
        b'subtype="forward" srcip=203.0.113.5 srcport=1 dstip=10.0.0.1 dstport=22 proto=6 action="deny"\n'
        b"\n"
        b"not a fortigate line\n"
    )
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(lines)))
    assert main(["parse", "--vendor", "fortigate"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(docs) == 2  # the empty line is skipped
    assert docs[0]["source"]["ip"] == "203.0.113.5" and docs[0]["event"]["action"] == "deny"
    assert docs[1]["tags"] == ["_parse_failure"] and docs[1]["error"]["message"]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"x\n")))
    assert main(["parse", "--vendor", "nope"]) == 2
    assert "unknown vendor 'nope'" in capsys.readouterr().err
