"""The compliance control catalogue (`controls.yaml`, kept in `shared/`, never copied here).

`load_catalogue(path)` validates the whole file (unknown keys are errors; a message names the
file, the control id and the field) and versions it: `as_of` plus a short sha256 of the
bytes, so a status row records which catalogue judged it. `applies(control, system)` says
whether a control binds a system: its level inside `min_level..max_level` and its regime
(a system levelled under `nd85` gets the controls of `nd85` and `both`; `nd331` those of
`nd331` and `both`). Controls of scope `organisation` bind the system's owner unit: they are
evaluated once per unit (subject `unit:<code>`) and shown with every system of that unit.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from socmon.errors import Location, SocmonError

Evidence = Literal["live", "attested"]
Regime = Literal["nd85", "nd331", "both"]
Confidence = Literal["solid", "secondary", "unverified"]
ControlScope = Literal["system", "organisation"]
LAYER_IDS = (
    "LAYER1.ONSITE_FORCE",
    "LAYER2.PROFESSIONAL_MONITORING",
    "LAYER3.INDEPENDENT_ASSESSMENT",
    "LAYER4.NATIONAL_MONITORING_LINK",
)


class CatalogueError(SocmonError):
    """The control catalogue is missing or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Control(_Strict):
    """One control (or one of the four layers) of the catalogue."""

    id: str = Field(min_length=1, max_length=120)
    family: str
    title_vi: str
    title_en: str
    min_level: int = Field(ge=1, le=5)
    max_level: int | None = Field(default=None, ge=1, le=5)
    evidence: Evidence
    live_check: str | None = None
    attested_doc: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    scope: ControlScope = "system"
    regime: Regime
    confidence: Confidence
    source: str
    applies_to: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Control:
        if self.max_level is not None and self.max_level < self.min_level:
            raise ValueError(f"max_level {self.max_level} is below min_level {self.min_level}")
        if self.evidence == "live" and not self.live_check:
            raise ValueError("a live control needs live_check")
        if self.evidence == "attested" and not self.attested_doc:
            raise ValueError("an attested control needs attested_doc")
        return self

    @property
    def is_layer(self) -> bool:
        return self.id.startswith("LAYER")

    @property
    def layer(self) -> int:
        """1-4 for a layer, 0 for a control."""
        return int(self.id[5]) if self.is_layer else 0

    def param(self, name: str, level: int) -> Any:
        """A parameter for `level`: a per-level map (`{3: 12, 5: 6}`) or one value."""
        value = self.params.get(name)
        if isinstance(value, dict):
            return value.get(level)
        return value


class Retention(_Strict):
    unit: Literal["days"]
    basis: str
    confidence: Confidence
    levels: dict[int, int | None]
    months: dict[int, int | None]
    other_minimums: dict[str, int] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


class DossierStatus(_Strict):
    id: str
    vi: str
    en: str


class Catalogue(_Strict):
    schema_version: Literal[1]
    as_of: str
    sources: dict[str, str]
    retention: Retention
    dossier_statuses: list[DossierStatus]
    incident_groups: dict[str, Any]
    layers: list[Control]
    controls: list[Control]
    # Filled by `load_catalogue`, not read from the file.
    version: str = ""
    path: str = ""

    @model_validator(mode="after")
    def _unique(self) -> Catalogue:
        seen: set[str] = set()
        for control in (*self.layers, *self.controls):
            if control.id in seen:
                raise ValueError(f"control {control.id}: id appears twice")
            seen.add(control.id)
        got = tuple(layer.id for layer in self.layers)
        if got != LAYER_IDS:
            raise ValueError(f"layers must be {', '.join(LAYER_IDS)} in order, got {got}")
        for control in self.controls:
            if control.is_layer:
                raise ValueError(f"control {control.id}: LAYER ids belong under `layers`")
        return self

    def all(self) -> list[Control]:
        return [*self.layers, *self.controls]

    def get(self, control_id: str) -> Control | None:
        return self._index().get(control_id)

    def _index(self) -> dict[str, Control]:
        index: dict[str, Control] | None = self.__dict__.get("_by_id")
        if index is None:
            index = {c.id: c for c in self.all()}
            self.__dict__["_by_id"] = index
        return index

    def retention_days(self, level: int) -> int | None:
        return self.retention.levels.get(level)


class LevelledSystem(Protocol):
    """What `applies` needs of a system (an `inventory.tables.SystemRow` has it)."""

    @property
    def level(self) -> int: ...

    @property
    def regime(self) -> str: ...


def regime_applies(control: Control, regime: str) -> bool:
    return control.regime == "both" or control.regime == regime


def level_applies(control: Control, level: int) -> bool:
    return control.min_level <= level and (control.max_level is None or level <= control.max_level)


def applies(control: Control, system: LevelledSystem) -> bool:
    """True when `control` binds `system` (by level range and regime; organisation-scope
    controls bind the system's owner unit, see the module docstring).

    The four layers bind by level only: Directive 14 is not tied to Decree 85 (no
    restatement under Law 116 was found, COMPLIANCE.md §e), so layer 3 — `regime: nd85` in
    the catalogue — stays required from level 3 for systems levelled under Decree 331 too.
    """
    if control.is_layer:
        return level_applies(control, system.level)
    return level_applies(control, system.level) and regime_applies(control, system.regime)


def why_not(control: Control, system: LevelledSystem) -> tuple[str, str]:
    """(English, Vietnamese) reason a control does not bind the system."""
    if not level_applies(control, system.level):
        upper = f"-{control.max_level}" if control.max_level else "+"
        return (
            f"applies to levels {control.min_level}{upper}; the system is level {system.level}",
            f"áp dụng cho cấp độ {control.min_level}{upper}; hệ thống cấp độ {system.level}",
        )
    return (
        f"belongs to regime {control.regime}; the system was levelled under {system.regime}",
        f"thuộc chế độ {control.regime}; hệ thống được xác định cấp độ theo {system.regime}",
    )


def _error_path(loc: tuple[int | str, ...], raw: Any) -> str:
    """`controls[12] (ND85.LEVEL.APPROVED).min_level` from a pydantic location."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and 0 <= item < len(node):
                node = node[item]
                if isinstance(node, dict) and "id" in node:
                    label += f" ({node['id']})"
            else:
                node = None
            parts.append(label)
        else:
            parts.append(f".{item}" if parts else str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts)


def parse_catalogue(data: bytes, path: Path | str) -> Catalogue:
    """Validate the YAML bytes of a catalogue (errors name `path`, the control id, the field)."""
    where = Location(path)
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise CatalogueError(f"not valid YAML: {e}", Location(path, line)) from e
    if not isinstance(raw, dict):
        raise CatalogueError("the catalogue must be a mapping", where)
    try:
        catalogue = Catalogue.model_validate(raw)
    except ValidationError as e:
        msgs = [f"{_error_path(err['loc'], raw)}: {err['msg']}" for err in e.errors()[:20]]
        raise CatalogueError("invalid catalogue: " + "; ".join(msgs), where) from e
    version = f"{catalogue.as_of}+{hashlib.sha256(data).hexdigest()[:12]}"
    return catalogue.model_copy(update={"version": version, "path": str(path)})


@lru_cache(maxsize=8)
def _cached(path: str, _mtime_ns: int, _size: int) -> Catalogue:
    return parse_catalogue(Path(path).read_bytes(), path)


def load_catalogue(path: Path | str | None) -> Catalogue:
    """The catalogue at `path` (re-read when the file changes)."""
    if path is None:
        raise CatalogueError(
            "no compliance catalogue: set SOCMON_COMPLIANCE_CATALOGUE or place "
            "shared/data/compliance/controls.yaml beside the repository"
        )
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise CatalogueError(f"cannot read the catalogue: {e.strerror}", Location(p)) from e
    return _cached(str(p.resolve()), st.st_mtime_ns, st.st_size)
