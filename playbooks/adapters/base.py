"""The one adapter interface: `Action.run(params, dry_run=True) -> ActionResult`.

Dry-run is the default everywhere: it returns the exact requests the action would make
(secrets redacted) and touches nothing. Secrets never sit in YAML: a configuration names
the environment variable (`api_key_env`, `password_env`, `headers_env`) that holds them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from playbooks.errors import ActionError

REDACTED = "***"
# Configuration keys that would hold a secret in clear text: refused.
_SECRET_KEYS = {"api_key", "key", "password", "token", "secret", "headers"}


@dataclass
class ActionResult:
    """What an action did (or, in dry-run, would do)."""

    adapter: str
    dry_run: bool
    ok: bool
    message: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "message": self.message,
            "requests": self.requests,
            "responses": self.responses,
        }


class Action:
    """Base of every adapter type; `type` picks the class from the registry."""

    type: ClassVar[str] = ""
    required_options: ClassVar[tuple[str, ...]] = ()
    required_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.options = dict(options)
        bad = sorted(k for k in self.options if k in _SECRET_KEYS)
        if bad:
            raise ActionError(
                f"adapter {name!r}: {', '.join(bad)} must not be in the configuration; "
                f"name an environment variable instead ({', '.join(k + '_env' for k in bad)})"
            )
        missing = [k for k in self.required_options if not self.options.get(k)]
        if missing:
            raise ActionError(f"adapter {name!r} ({self.type}) needs options {missing}")

    def secret(self, option: str, *, required: bool = True) -> str:
        """The value of the environment variable named by option `option` (e.g. api_key_env)."""
        var = self.options.get(option)
        if not var:
            if required:
                raise ActionError(f"adapter {self.name!r}: option {option!r} is not set")
            return ""
        return self.env(str(var), required=required)

    def env(self, var: str, *, required: bool = True) -> str:
        """The value of environment variable `var` (a secret)."""
        value = os.environ.get(var, "")
        if required and not value:
            raise ActionError(f"adapter {self.name!r}: environment variable {var} is empty")
        return value

    def check_params(self, params: Mapping[str, Any]) -> None:
        missing = [k for k in self.required_params if params.get(k) in (None, "")]
        if missing:
            raise ActionError(f"adapter {self.name!r} ({self.type}) needs parameters {missing}")

    def run(self, params: Mapping[str, Any], dry_run: bool = True) -> ActionResult:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """The configuration without secrets (names of the variables only)."""
        return {"name": self.name, "type": self.type, "options": self.options}


def redact_headers(headers: Mapping[str, str], secret_headers: set[str]) -> dict[str, str]:
    return {k: (REDACTED if k.lower() in secret_headers else v) for k, v in headers.items()}
