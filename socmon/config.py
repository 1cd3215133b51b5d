"""One settings object for the whole product.

Values come from (highest first): environment variables with the prefix `SOCMON_`, an
optional YAML file (`SOCMON_CONFIG` or `socmon --config PATH`), then the defaults below.
Unknown keys in the YAML file or in `SOCMON_*` variables are an error naming the key.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from socmon.corpus import default_compliance_catalogue
from socmon.errors import ConfigError, Location

ENV_PREFIX = "SOCMON_"
# Variables with the prefix that are not settings keys (read before the settings exist).
_NON_SETTING_ENV = {"SOCMON_CONFIG", "SOCMON_CORPUS"}


class _YamlSource(PydanticBaseSettingsSource):
    """Settings from a YAML file; keys must be settings fields."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except OSError as e:
            raise ConfigError(f"cannot read config file: {e}", Location(self.path)) from e
        except yaml.YAMLError as e:
            raise ConfigError(f"invalid YAML: {e}", Location(self.path)) from e
        if not isinstance(data, dict):
            raise ConfigError(
                "config file must be a mapping of keys to values", Location(self.path)
            )
        unknown = sorted(set(data) - set(self.settings_cls.model_fields))
        if unknown:
            raise ConfigError(f"unknown config key(s): {', '.join(unknown)}", Location(self.path))
        return data


class Settings(BaseSettings):
    """The effective configuration of one socmon process."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("./data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Event store. Empty URL = start the embedded osmem-server.
    es_url: str = ""
    es_username: str = ""
    es_password: SecretStr = SecretStr("")
    es_api_key: SecretStr = SecretStr("")
    es_ca_certs: str = ""
    es_verify_certs: bool = True
    namespace: str = Field(default="default", pattern=r"^[a-z0-9_]+$")
    embedded_max_events: int = Field(default=200_000, ge=1000)
    store_retry_max_seconds: float = Field(default=30.0, gt=0)

    # State database. Empty URL = SQLite file in the data directory.
    db_url: SecretStr = SecretStr("")

    # API.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64)  # processes of `socmon api`

    # Sources. With no `sources` list, one syslog UDP listener from the syslog_* keys.
    syslog_host: str = "0.0.0.0"
    syslog_udp_port: int = Field(default=5514, ge=0, le=65535)
    syslog_tz: str = "UTC"
    syslog_parser: str = "auto"
    sources: list[dict[str, Any]] = Field(default_factory=list)
    inventory_file: Path | None = None  # YAML inventory core (units, zones, systems, assets)
    intel_file: Path | None = None  # threat-intel indicators (CSV or YAML), matched at enrichment
    source_silence_seconds: int = Field(default=900, ge=10)

    # Compliance (issue 7): the control catalogue (controls.yaml; default: shared/ beside the
    # repository), how often statuses are re-evaluated, and how many days of events the store
    # keeps (checked against each level's minimum; docs/decisions/0007).
    compliance_catalogue: Path | None = Field(default_factory=default_compliance_catalogue)
    compliance_interval_seconds: int = Field(default=900, ge=60)
    retention_days: int = Field(default=400, ge=1)

    # Spool.
    spool_max_bytes: int = Field(default=1 << 30, ge=1 << 20)
    spool_fsync: Literal["interval", "always", "never"] = "interval"
    spool_fsync_interval: float = Field(default=0.2, gt=0)

    # Detection.
    rules_dirs: list[Path] = Field(default_factory=list)
    # Which loaded rules run, and their false-positive exceptions (detections.catalog.RulePolicy:
    # statuses, min_level, logsources, tags, enabled, disabled, tuning). Checked at start-up.
    rules_policy: dict[str, Any] = Field(default_factory=dict)
    # Values for Sigma placeholders (`%name%` with |expand), e.g. {"admin_users": ["root"]}.
    sigma_placeholders: dict[str, list[str]] = Field(default_factory=dict)
    # How far behind the newest event time a match may arrive and still count for correlation.
    correlation_lateness_seconds: float = Field(default=300.0, ge=0)
    incident_window_seconds: int = Field(default=3600, ge=1)
    # Incident grouping (soc_api.incidents.IncidentPolicy): rule_windows, tag_windows,
    # rule_groups, attack_groups (ATT&CK tag -> A1..C5), serious_when [{severity, min_level}].
    incident_policy: dict[str, Any] = Field(default_factory=dict)
    # Playbook actions (playbooks.adapters: fortigate, panos, email, webhook); secrets are named
    # environment variables, never values here. Every action is a dry run unless executed.
    playbook_adapters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    playbook_regime: str = ""  # force a reporting regime id; empty = the one in force
    # Scheduled hunts (central): Sigma rules run over stored events with a per-rule watermark.
    hunt_rules_dirs: list[Path] = Field(default_factory=list)
    hunt_interval_seconds: float = Field(default=300.0, gt=0)
    hunt_lag_seconds: float = Field(default=120.0, ge=0)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @field_validator("incident_policy")
    @classmethod
    def _incident_policy(cls, v: dict[str, Any]) -> dict[str, Any]:
        if v:
            from soc_api.incidents import IncidentPolicy

            IncidentPolicy.model_validate(v)
        return v

    @field_validator("rules_policy")
    @classmethod
    def _rules_policy(cls, v: dict[str, Any]) -> dict[str, Any]:
        if v:  # checked here so a bad policy stops start-up with its reason, not a rule later
            from detections.catalog import RulePolicy

            RulePolicy.model_validate(v)
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = os.environ.get("SOCMON_CONFIG")
        return (
            init_settings,
            env_settings,
            _YamlSource(settings_cls, Path(path) if path else None),
        )

    @property
    def effective_db_url(self) -> str:
        url = self.db_url.get_secret_value()
        return url or f"sqlite:///{self.data_dir / 'socmon.db'}"

    @property
    def effective_sources(self) -> list[dict[str, Any]]:
        """The configured sources, or the default syslog UDP listener."""
        if self.sources:
            return self.sources
        return [
            {
                "type": "syslog_udp",
                "host": self.syslog_host,
                "port": self.syslog_udp_port,
                "parser": self.syslog_parser,
                "timezone": self.syslog_tz,
            }
        ]

    @property
    def embedded_store(self) -> bool:
        return not self.es_url

    def masked(self) -> dict[str, Any]:
        """The configuration as plain data with every secret masked (for `socmon config show`)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                out[name] = str(value)
            elif isinstance(value, list):
                out[name] = [str(v) for v in value]
            else:
                out[name] = value
        out["es_url"] = _mask_url(self.es_url)
        out["db_url"] = (
            _mask_url(self.db_url.get_secret_value()) or f"(sqlite) {self.effective_db_url}"
        )
        return out


def _mask_url(url: str) -> str:
    """Hide a password embedded in a URL (scheme://user:pass@host)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:********@{host}"
    return url


def _check_unknown_env() -> None:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | _NON_SETTING_ENV
    unknown = sorted(k for k in os.environ if k.startswith(ENV_PREFIX) and k not in known)
    if unknown:
        raise ConfigError(f"unknown environment setting(s): {', '.join(unknown)}")


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation problems into a ConfigError naming the key."""
    _check_unknown_env()
    try:
        return Settings(**overrides)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '?'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from e


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; never built at import)."""
    return load_settings()
