from pathlib import Path

import pytest

from socmon.config import load_settings
from socmon.errors import ConfigError


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.data_dir == tmp_path / "data"
    assert s.api_port == 8000
    assert s.syslog_udp_port == 5514
    assert s.embedded_store
    assert s.effective_db_url == f"sqlite:///{tmp_path / 'data' / 'socmon.db'}"


def test_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCMON_API_PORT", "9100")
    monkeypatch.setenv("SOCMON_ES_URL", "http://es:9200")
    s = load_settings()
    assert s.api_port == 9100
    assert not s.embedded_store


def test_unknown_env_key_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCMON_API_PROT", "1")
    with pytest.raises(ConfigError, match="SOCMON_API_PROT"):
        load_settings()


def test_yaml_file_and_unknown_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "socmon.yaml"
    cfg.write_text("api_port: 8123\nsyslog_udp_port: 6514\n")
    monkeypatch.setenv("SOCMON_CONFIG", str(cfg))
    s = load_settings()
    assert (s.api_port, s.syslog_udp_port) == (8123, 6514)
    # The environment wins over the file.
    monkeypatch.setenv("SOCMON_API_PORT", "8124")
    assert load_settings().api_port == 8124
    cfg.write_text("api_port: 8123\nsyslgo_port: 1\n")
    with pytest.raises(ConfigError, match="syslgo_port") as err:
        load_settings()
    assert str(cfg) in str(err.value)


def test_invalid_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCMON_API_PORT", "seventy")
    with pytest.raises(ConfigError, match="api_port"):
        load_settings()


def test_masked_hides_secrets() -> None:
    s = load_settings(
        es_url="https://elastic:hunter2@es.example:9200",
        es_password="hunter2",
        db_url="postgresql://socmon:pw123@db/socmon",
    )
    shown = s.masked()
    text = repr(shown)
    assert "hunter2" not in text and "pw123" not in text
    assert shown["es_password"] == "********"
    assert shown["es_url"] == "https://elastic:********@es.example:9200"
    assert shown["db_url"] == "postgresql://socmon:********@db/socmon"
