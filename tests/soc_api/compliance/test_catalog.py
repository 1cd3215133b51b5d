"""The control catalogue: the shared controls.yaml loads; broken copies name path and control."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from inventory.vocab import DOSSIER_STATUSES
from soc_api.compliance.catalog import (
    LAYER_IDS,
    CatalogueError,
    applies,
    load_catalogue,
    why_not,
)
from socmon.corpus import default_compliance_catalogue


@dataclass
class Sys:
    level: int
    regime: str


def shared() -> Path:
    path = default_compliance_catalogue()
    assert path is not None, "shared/data/compliance/controls.yaml beside the repository"
    return path


def test_the_shared_catalogue_loads() -> None:
    cat = load_catalogue(shared())
    assert [layer.id for layer in cat.layers] == list(LAYER_IDS)
    assert len(cat.controls) >= 60
    assert cat.version.startswith(cat.as_of + "+") and len(cat.version) == len(cat.as_of) + 13
    assert {c.regime for c in cat.all()} == {"nd85", "nd331", "both"}
    assert {c.confidence for c in cat.all()} == {"solid", "secondary", "unverified"}
    assert cat.retention_days(3) == 92 and cat.retention_days(1) is None
    assert [s.id for s in cat.dossier_statuses] == list(DOSSIER_STATUSES)
    layer3 = cat.get("LAYER3.INDEPENDENT_ASSESSMENT")
    assert layer3 is not None and layer3.layer == 3
    assert layer3.param("max_age_months", 5) == 6 and layer3.param("max_age_months", 3) == 12
    org = cat.get("ND85.ART20.ORG_ASSESSMENT")
    assert org is not None and org.scope == "organisation" and org.param("max_age_months", 2) == 24


def test_the_version_follows_the_content(tmp_path: Path) -> None:
    copy = tmp_path / "controls.yaml"
    copy.write_bytes(shared().read_bytes())
    first = load_catalogue(copy).version
    copy.write_bytes(shared().read_bytes() + b"\n# a comment\n")
    assert load_catalogue(copy).version != first


def test_applies_by_level_and_regime() -> None:
    cat = load_catalogue(shared())
    sys_assess = cat.get("ND85.ART20.SYSTEM_ASSESSMENT")  # nd85, from level 3
    edr = cat.get("TCVN14423.ENDPOINT.EDR_SIEM")  # nd331, from level 3
    link = cat.get("LAYER4.NATIONAL_MONITORING_LINK")  # both, from level 1
    assert sys_assess is not None and edr is not None and link is not None
    assert applies(sys_assess, Sys(3, "nd85")) and not applies(sys_assess, Sys(2, "nd85"))
    assert not applies(sys_assess, Sys(4, "nd331"))
    assert applies(edr, Sys(3, "nd331")) and not applies(edr, Sys(5, "nd85"))
    assert applies(link, Sys(1, "nd85")) and applies(link, Sys(1, "nd331"))
    layer3 = cat.get("LAYER3.INDEPENDENT_ASSESSMENT")  # regime nd85, a layer: by level only
    assert layer3 is not None and layer3.regime == "nd85"
    assert applies(layer3, Sys(3, "nd331")) and not applies(layer3, Sys(2, "nd85"))
    capped = sys_assess.model_copy(update={"max_level": 4})
    assert applies(capped, Sys(4, "nd85")) and not applies(capped, Sys(5, "nd85"))
    assert "levels 3-4" in why_not(capped, Sys(5, "nd85"))[0]
    assert "nd331" in why_not(sys_assess, Sys(3, "nd331"))[0]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  - id: TCVN11930.MGMT.OPS.RISK\n    family: management/operations\n",
            "  - id: TCVN11930.MGMT.OPS.RISK\n    family: management/operations\n"
            "    frequency: yearly\n",
            "TCVN11930.MGMT.OPS.RISK).frequency: Extra inputs are not permitted",
        ),
        (
            "  - id: TT31.MON.REPORTS\n    family: monitoring\n",
            "  - id: TT31.MON.REPORTS\n    family: monitoring\n    max_level: 2\n",
            "TT31.MON.REPORTS): Value error, max_level 2 is below min_level 3",
        ),
        (
            '    regime: nd331\n    confidence: secondary\n    source: "S12 x.7.2.1"',
            '    regime: nd99\n    confidence: secondary\n    source: "S12 x.7.2.1"',
            "(TCVN14423.VULN.SCAN).regime",
        ),
        (
            "  - id: TT20.IR.PLAN\n",
            "  - id: TT20.IR.NOTIFY_5D\n",
            "control TT20.IR.NOTIFY_5D: id appears twice",
        ),
    ],
)
def test_a_broken_copy_names_the_file_and_the_control(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    text = shared().read_text(encoding="utf-8")
    assert old in text  # the edit applies to the real file
    broken = tmp_path / "controls.yaml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(CatalogueError) as e:
        load_catalogue(broken)
    message = str(e.value)
    assert str(broken) in message and expected in message, message


def test_missing_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="SOCMON_COMPLIANCE_CATALOGUE"):
        load_catalogue(None)
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("controls: [\n  - {id: x\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="not valid YAML") as e:
        load_catalogue(bad)
    assert str(bad) in str(e.value)
