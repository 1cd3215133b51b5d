"""The playbook library: schema validation of every file, coverage of every group × path,
clear errors naming file and path, includes and overrides, regime data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from playbooks.errors import PlaybookError
from playbooks.library import GROUPS, LIBRARY_DIR, PATHS, ROLES, load_library, validate_document
from playbooks.regimes import compliance_file, load_regimes


def test_whole_library_is_valid_and_covers_every_group_and_path() -> None:
    lib = load_library(collect_errors=True)
    assert [str(i) for i in lib.issues] == []
    assert lib.missing() == []
    assert len(lib.playbooks) == len(GROUPS) * len(PATHS) == 38
    for group in GROUPS:
        for path in PATHS:
            pb = lib.for_incident(group, path)
            assert pb is not None and pb.group == group and pb.path == path


def test_every_file_passes_the_json_schema_on_its_own() -> None:
    files = sorted(LIBRARY_DIR.glob("*.yml"))
    assert len(files) >= 19 + 3  # one per group and a base per family at least
    problems = []
    for f in files:
        problems += validate_document(yaml.safe_load(f.read_text(encoding="utf-8")), f.name)
    assert problems == []


def test_tasks_are_bilingual_owned_and_timed() -> None:
    lib = load_library()
    for pb in lib.playbooks.values():
        assert pb.title["vi"] and pb.title["en"] and pb.description["vi"] and pb.description["en"]
        ids = [t.id for t in pb.tasks]
        assert len(ids) == len(set(ids)), pb.id
        for t in pb.tasks:
            assert t.title["vi"] != t.title["en"], (pb.id, t.id)
            assert t.owner in ROLES
            if t.kind == "report":
                assert t.sla is None and t.report  # the deadline comes from the regime
            else:
                assert t.sla_seconds and t.sla_seconds > 0
            if t.kind == "action":
                assert t.action and t.action["adapter"]


def test_serious_path_adds_escalation_and_stricter_reporting() -> None:
    lib = load_library()
    for group in GROUPS:
        normal = lib.for_incident(group, "normal")
        serious = lib.for_incident(group, "serious")
        assert normal is not None and serious is not None
        n_ids = {t.id for t in normal.tasks}
        s_ids = {t.id for t in serious.tasks}
        assert {"escalate-leadership", "activate-emergency-plan"} <= s_ids - n_ids
        assert any(
            t.kind == "action" and t.action and t.action["adapter"] == "notify-email"
            for t in serious.tasks
        )
        duties = {t.report["duty"] for t in serious.tasks if t.report}
        assert {"serious_notice_24h", "initial_report", "incident_report_72h"} <= duties
        family = group[0].lower()
        assert f"{family}-triage" in n_ids and f"{family}-triage" in s_ids
    a4 = lib.for_incident("A4", "normal")
    assert a4 is not None
    block = next(t for t in a4.tasks if t.id == "a-block-source")
    assert block.action == {
        "adapter": "perimeter-firewall",
        "params": {"ips": "${source.ips}", "comment": "socmon incident ${incident.id}"},
    }


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text, encoding="utf-8")


BASE = """
kind: fragment
id: base
title: {vi: "Cơ sở", en: "Base"}
tasks:
  - id: t1
    title: {vi: "Một", en: "One"}
    phase: triage
    owner: analyst
    sla: 30m
    kind: manual
"""

PLAYBOOK = """
kind: playbook
id: a1
group: A1
title: {vi: "A1", en: "A1"}
description: {vi: "Mô tả", en: "Description"}
include: [base]
tasks: %s
paths:
  normal: {}
  serious: {tasks: [{id: s1, title: {vi: "Hai", en: "Two"}, phase: escalation, owner: manager, sla: 1h, kind: manual}]}
"""


def test_a_broken_task_is_reported_with_file_and_json_path(tmp_path: Path) -> None:
    write(tmp_path, "_base.yml", BASE)
    bad = "[{id: x1, title: {vi: 'Ba'}, phase: triage, owner: root, sla: 4h, kind: manual}]"
    write(tmp_path, "a1.yml", PLAYBOOK % bad)
    lib = load_library(tmp_path, collect_errors=True)
    messages = [str(i) for i in lib.issues]
    assert any(m.startswith("a1.yml: $.tasks[0].owner:") and "'root'" in m for m in messages)
    assert any(m.startswith("a1.yml: $.tasks[0].title:") and "'en'" in m for m in messages)
    with pytest.raises(PlaybookError) as err:
        load_library(tmp_path)
    assert "a1.yml" in str(err.value) and "$.tasks[0]" in str(err.value)


def test_includes_overrides_and_duplicates(tmp_path: Path) -> None:
    write(tmp_path, "_base.yml", BASE)
    override = "[{id: t1, override: true, title: {vi: 'Một khác', en: 'Other one'}, phase: triage, owner: sysadmin, sla: 2h, kind: manual}]"
    write(tmp_path, "a1.yml", PLAYBOOK % override)
    lib = load_library(tmp_path, collect_errors=True)
    assert lib.issues == []
    serious = lib.playbooks["a1-serious"]
    assert [(t.id, t.owner) for t in serious.tasks] == [("t1", "sysadmin"), ("s1", "manager")]
    assert lib.missing() and ("A1", "normal") not in lib.missing()

    duplicate = "[{id: t1, title: {vi: 'Một', en: 'One'}, phase: triage, owner: analyst, sla: 2h, kind: manual}]"
    write(tmp_path, "a1.yml", PLAYBOOK % duplicate)
    issues = [str(i) for i in load_library(tmp_path, collect_errors=True).issues]
    assert any("a1.yml: $.tasks[0].id: task id 't1' already included" in m for m in issues)

    write(tmp_path, "a1.yml", (PLAYBOOK % "[]").replace("[base]", "[nosuch]"))
    issues = [str(i) for i in load_library(tmp_path, collect_errors=True).issues]
    assert any("a1.yml: $.include[0]: unknown fragment 'nosuch'" in m for m in issues)


def test_report_tasks_need_a_known_duty_and_no_sla(tmp_path: Path) -> None:
    write(tmp_path, "_base.yml", BASE)
    task = "[{id: r1, title: {vi: 'Báo cáo', en: 'Report'}, phase: reporting, owner: manager, kind: report, report: {duty: no_such_duty}}]"
    write(tmp_path, "a1.yml", PLAYBOOK % task)
    issues = [str(i) for i in load_library(tmp_path, collect_errors=True).issues]
    assert any("unknown reporting duty 'no_such_duty'" in m for m in issues)
    timed = task.replace("kind: report,", "kind: report, sla: 1h,")
    write(tmp_path, "a1.yml", PLAYBOOK % timed)
    issues = [str(i) for i in load_library(tmp_path, collect_errors=True).issues]
    assert any(m.startswith("a1.yml: $.tasks[0]:") for m in issues)


def test_regime_deadlines_come_from_the_compliance_catalogue() -> None:
    path = compliance_file()
    assert path is not None, "shared/data/compliance/controls.yaml is expected beside the repo"
    with_catalogue = load_regimes()
    without = load_regimes(controls_path=None)
    for rid, regime in with_catalogue.regimes.items():
        for duty in regime.duties:
            twin = next(d for d in without.regimes[rid].duties if d.id == duty.id)
            assert duty.deadline == twin.deadline, (rid, duty.id)  # the copy agrees
            if duty.control:
                assert duty.deadline_from == "controls.yaml", (rid, duty.id)
    nd331 = with_catalogue.regimes["nd331"]
    by_id = {d.id: d for d in nd331.duties}
    assert by_id["incident_report_72h"].deadline.total_seconds() == 72 * 3600
    assert by_id["serious_notice_24h"].paths == ("serious",)


def test_the_regime_in_force_follows_the_open_date(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    regimes = load_regimes()
    assert regimes.in_force(datetime(2026, 3, 1, tzinfo=UTC)).id == "nd85"
    assert regimes.in_force(datetime(2026, 7, 1, tzinfo=UTC)).id == "nd331"
    assert regimes.in_force(datetime(2026, 11, 1, tzinfo=UTC), "nd85").id == "nd85"
    nd331 = regimes.duties(regimes.regimes["nd331"])
    assert {"incident_report_72h", "serious_notice_24h", "incident_notice", "end_report"} <= set(
        nd331
    )
    # A changed catalogue changes the deadline: nothing is hard-coded.
    changed = tmp_path / "controls.yaml"
    changed.write_text(
        "controls:\n  - id: ND331.INCIDENT.REPORT_72H\n    params: {deadline_hours: 48}\n",
        encoding="utf-8",
    )
    moved = load_regimes(controls_path=changed)
    duty = next(d for d in moved.regimes["nd331"].duties if d.id == "incident_report_72h")
    assert duty.deadline.total_seconds() == 48 * 3600 and duty.deadline_from == "controls.yaml"
