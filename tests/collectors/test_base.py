from pathlib import Path

import pytest
import yaml

from collectors.base import build_collectors, collector_types
from socmon.config import load_settings
from socmon.corpus import REPO_ROOT
from socmon.errors import ConfigError


def test_every_collector_type_is_registered() -> None:
    assert set(collector_types()) >= {
        "syslog_udp",
        "syslog_tcp",
        "syslog_tls",
        "file",
        "journald",
        "windows_folder",
    }


def test_sample_collector_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/deploy/collect.example.yaml: every key a real setting, every source valid."""
    sample = REPO_ROOT / "docs/deploy/collect.example.yaml"
    monkeypatch.setenv("SOCMON_CONFIG", str(sample))
    settings = load_settings()
    types = collector_types()
    for spec in settings.sources:
        types[spec["type"]].Options.model_validate(spec)
    assert [s["type"] for s in settings.sources][:3] == ["syslog_udp", "syslog_tcp", "syslog_tls"]
    assert yaml.safe_load(sample.read_text())["spool_max_bytes"] == settings.spool_max_bytes


def test_bad_sources_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\]\.type: unknown source type 'syslog_udpp'"):
        build_collectors([{"type": "syslog_udpp"}])
    with pytest.raises(ConfigError, match=r"sources\[0\]\.prot"):
        build_collectors([{"type": "syslog_udp", "prot": 514}])
    with pytest.raises(ConfigError, match=r"sources\[0\]\.timezone.*unknown time zone"):
        build_collectors([{"type": "syslog_udp", "timezone": "Asia/Hanoi_City"}])
    with pytest.raises(
        ConfigError, match=r"sources\[1\]: udp 5514 is already used by sources\[0\]"
    ):
        build_collectors(
            [{"type": "syslog_udp", "port": 5514}, {"type": "syslog_udp", "port": 5514}]
        )


def test_default_source_is_the_udp_listener() -> None:
    s = load_settings(syslog_udp_port=6000, syslog_tz="Asia/Ho_Chi_Minh")
    (collector,) = build_collectors(s.effective_sources)
    assert collector.type_name == "syslog_udp" and collector.options.port == 6000
