"""Reporting duties as data: the regime in force picks forms, recipients and deadlines.

`playbooks/regimes.yml` lists each regime's incident reporting duties; deadlines are read
from the shared compliance catalogue (`controls.yaml`, the duty's `control` and `param`)
when it is present, else from the copy in `regimes.yml`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from playbooks.errors import PlaybookError
from socmon.corpus import REPO_ROOT
from socmon.errors import Location

REGIMES_FILE = Path(__file__).parent / "regimes.yml"
ANCHORS = ("opened", "response_end")


def compliance_file() -> Path | None:
    """The shared compliance catalogue (`SOCMON_COMPLIANCE_FILE` overrides), or None."""
    env = os.environ.get("SOCMON_COMPLIANCE_FILE")
    path = (
        Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "compliance" / "controls.yaml"
    )
    return path if path.is_file() else None


@dataclass(frozen=True)
class Duty:
    """One reporting duty of a regime."""

    id: str
    regime: str
    title: Mapping[str, str]
    form: Mapping[str, str]
    recipients: tuple[Mapping[str, str], ...]
    recipient_ids: tuple[str, ...]
    paths: tuple[str, ...]
    anchor: str
    deadline: timedelta
    control: str | None
    deadline_from: str  # "controls.yaml" or "regimes.yml"
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "duty": self.id,
            "regime": self.regime,
            "title": dict(self.title),
            "form": dict(self.form),
            "recipients": [dict(r) for r in self.recipients],
            "recipient_ids": list(self.recipient_ids),
            "anchor": self.anchor,
            "deadline_seconds": int(self.deadline.total_seconds()),
            "control": self.control,
            "deadline_from": self.deadline_from,
            "source": self.source,
        }


@dataclass(frozen=True)
class Regime:
    id: str
    title: Mapping[str, str]
    in_force_from: date
    duties: tuple[Duty, ...]
    also: tuple[str, ...]


@dataclass(frozen=True)
class Regimes:
    """Every regime, and the choice of the one in force."""

    regimes: Mapping[str, Regime]

    def in_force(self, at: datetime, override: str | None = None) -> Regime:
        if override:
            if override not in self.regimes:
                raise PlaybookError(f"unknown regime {override!r}; known: {sorted(self.regimes)}")
            return self.regimes[override]
        day = at.date()
        candidates = [r for r in self.regimes.values() if r.in_force_from <= day]
        if not candidates:
            raise PlaybookError(f"no reporting regime in force on {day}")
        return max(candidates, key=lambda r: r.in_force_from)

    def duties(self, regime: Regime) -> dict[str, Duty]:
        """The duties of `regime` and of the regimes it keeps (`also`), its own first."""
        out: dict[str, Duty] = {}
        for rid in (regime.id, *regime.also):
            for duty in self.regimes[rid].duties:
                out.setdefault(duty.id, duty)
        return out

    def duty_ids(self) -> set[str]:
        return {d.id for r in self.regimes.values() for d in r.duties}


def _controls(path: Path | None) -> dict[str, Mapping[str, Any]]:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise PlaybookError(f"cannot read the compliance catalogue: {e}", Location(path)) from e
    out: dict[str, Mapping[str, Any]] = {}
    for section in ("controls", "layers"):
        for item in data.get(section) or []:
            if isinstance(item, Mapping) and "id" in item:
                out[str(item["id"])] = item
    return out


def _delta(spec: Any, where: str) -> timedelta:
    if not isinstance(spec, Mapping) or not spec:
        raise PlaybookError(f"{where}: deadline must be a mapping like {{hours: 24}}")
    try:
        return timedelta(**{str(k): float(v) for k, v in spec.items()})
    except (TypeError, ValueError) as e:
        raise PlaybookError(f"{where}: invalid deadline {spec!r}: {e}") from e


def _param_delta(param: str, value: Any) -> timedelta:
    unit = param.rsplit("_", 1)[-1]
    if unit not in ("days", "hours", "minutes"):
        raise PlaybookError(f"control parameter {param!r} has no days/hours/minutes unit")
    return timedelta(**{unit: float(value)})


def load_regimes(path: Path = REGIMES_FILE, controls_path: Path | bool | None = True) -> Regimes:
    """Read the regimes; `controls_path=True` locates the shared catalogue, None/False skips it."""
    loc = Location(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise PlaybookError(f"cannot read reporting regimes: {e}", loc) from e
    cpath = compliance_file() if controls_path is True else (controls_path or None)
    controls = _controls(cpath if isinstance(cpath, Path) else None)
    recipients: Mapping[str, Mapping[str, str]] = data.get("recipients") or {}
    regimes: dict[str, Regime] = {}
    for r in data.get("regimes") or []:
        rid = str(r["id"])
        duties: list[Duty] = []
        for d in r.get("duties") or []:
            where = f"regime {rid} duty {d.get('id')}"
            unknown = [x for x in d.get("recipients") or [] if x not in recipients]
            if unknown or not d.get("recipients"):
                raise PlaybookError(f"{where}: unknown or missing recipients {unknown}", loc)
            anchor = str(d.get("anchor", "opened"))
            if anchor not in ANCHORS:
                raise PlaybookError(f"{where}: anchor must be one of {ANCHORS}", loc)
            deadline, origin = _delta(d.get("deadline"), where), "regimes.yml"
            control, param = d.get("control"), d.get("param")
            if control and control in controls:
                params = controls[control].get("params") or {}
                if param and param in params:
                    deadline, origin = _param_delta(str(param), params[param]), "controls.yaml"
            duties.append(
                Duty(
                    id=str(d["id"]),
                    regime=rid,
                    title=d["title"],
                    form=d["form"],
                    recipients=tuple(recipients[x] for x in d["recipients"]),
                    recipient_ids=tuple(d["recipients"]),
                    paths=tuple(d.get("paths") or ("normal", "serious")),
                    anchor=anchor,
                    deadline=deadline,
                    control=str(control) if control else None,
                    deadline_from=origin,
                    source=str(d.get("source", "")),
                )
            )
        regimes[rid] = Regime(
            id=rid,
            title=r["title"],
            in_force_from=date.fromisoformat(str(r["in_force_from"])),
            duties=tuple(duties),
            also=tuple(r.get("also") or ()),
        )
    for reg in regimes.values():
        missing: Sequence[str] = [a for a in reg.also if a not in regimes]
        if missing:
            raise PlaybookError(f"regime {reg.id}: unknown regimes in also: {missing}", loc)
    return Regimes(regimes)


@lru_cache(maxsize=1)
def default_regimes() -> Regimes:
    return load_regimes()
