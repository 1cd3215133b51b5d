"""`socmon match`: real rules, real EVTX / JSON / log files through socmon's real parsers."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from detections import match as match_mod
from detections.match import (
    MatchOptions,
    add_match_parser,
    cmd_match,
    find_inputs,
    main,
    run_match,
)
from socmon.corpus import corpus_dir

CORPUS = corpus_dir()
needs_corpus = pytest.mark.skipif(CORPUS is None, reason="shared test corpus not found")

# A SigmaHQ regression sample whose process-creation event runs `cmd /c "whoami"` on host
# "swachchhanda"; the same events exist as .evtx and as (pretty-printed) evtx JSON.
WHOAMI_SAMPLE = (
    "sigma/regression_data/rules-emerging-threats/2025/Exploits/CVE-2025-55182/"
    "proc_creation_win_exploit_cve_2025_55182_susp_nodejs_server_child_process/"
    "271de298-cc0e-4842-acd8-079a0a99ea65"
)
# SigmaHQ rules and their regression samples (Security, Sysmon file, image load, process).
SIGMAHQ_CASES = [
    "windows/builtin/security/win_security_explicit_credential_local_logon",
    "windows/file/file_event/file_event_win_anydesk_artefact",
    "windows/image_load/image_load_susp_offreg_dll_load",
    "windows/process_creation/proc_creation_win_certutil_download_direct_ip",
    "windows/process_creation/proc_creation_win_clip_execution",
]

WHOAMI_RULE = """\
title: Whoami run through cmd (ECS fields)
id: 11111111-1111-4111-8111-111111111111
status: test
level: high
tags: [attack.discovery, attack.t1033]
logsource: {product: windows, category: process_creation}
detection:
  selection:
    winlog.event_id: 1
    winlog.event_data.CommandLine|contains: whoami
  condition: selection
"""
SSH_RULE = """\
title: SSH password failure from a known scanner
id: 22222222-2222-4222-8222-222222222222
status: test
level: medium
logsource: {product: linux, service: auth}
detection:
  selection:
    event.action: ssh_login
    event.outcome: failure
    source.ip: 173.234.31.186
  condition: selection
"""
EVE_RULE = """\
title: Suricata alert on trojan signature
id: 33333333-3333-4333-8333-333333333333
status: test
level: low
logsource: {product: suricata}
detection:
  selection:
    event.dataset: suricata.eve
    rule.name|contains: Trojan
  condition: selection
"""
EVE_ALERT = {
    "timestamp": "2024-03-01T10:00:00.000000+0000",
    "event_type": "alert",
    "src_ip": "10.1.2.3",
    "src_port": 51000,
    "dest_ip": "198.51.100.7",
    "dest_port": 443,
    "proto": "TCP",
    "alert": {"signature": "ET MALWARE Generic Trojan Beacon", "signature_id": 2000001},
}


def _corpus(rel: str) -> Path:
    assert CORPUS is not None
    return CORPUS / rel


def _write_rules(folder: Path, *texts: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(texts):
        (folder / f"rule_{i}.yml").write_text(text)
    return folder


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture
def mixed(tmp_path: Path) -> dict[str, Path]:
    """A folder with an EVTX file, evtx JSON, Suricata EVE lines, an auth log and bad files."""
    logs = tmp_path / "logs"
    (logs / "win").mkdir(parents=True)
    (logs / "ids").mkdir()
    (logs / "linux").mkdir()
    shutil.copy(_corpus(WHOAMI_SAMPLE + ".evtx"), logs / "win" / "host1.evtx")
    shutil.copy(_corpus(WHOAMI_SAMPLE + ".json"), logs / "win" / "host1-export.json")
    eve_lines = [
        json.dumps(EVE_ALERT),
        json.dumps({**EVE_ALERT, "alert": {"signature": "ET POLICY curl UA", "signature_id": 7}}),
        json.dumps({"timestamp": "2024-03-01T10:00:01.000000+0000", "event_type": "flow"}),
    ]
    (logs / "ids" / "eve.json").write_text("\n".join(eve_lines) + "\n")
    exported = [  # a Winlogbeat document, then an ECS document from another socmon/Elastic
        {
            "@timestamp": "2024-03-02T08:00:00.000Z",
            "host": {"name": "ws-17"},
            "winlog": {
                "channel": "Microsoft-Windows-Sysmon/Operational",
                "event_id": 1,
                "provider_name": "Microsoft-Windows-Sysmon",
                "record_id": 991,
                "event_data": {
                    "Image": "C:\\Windows\\System32\\whoami.exe",
                    "CommandLine": "whoami /all",
                },
            },
        },
        {
            "@timestamp": "2024-03-02T09:00:00.000Z",
            "host": {"name": "bastion"},
            "event": {"action": "ssh_login", "outcome": "failure", "dataset": "system.auth"},
            "source": {"ip": "173.234.31.186"},
            "user": {"name": "root"},
        },
    ]
    (logs / "export.ndjson").write_text("".join(json.dumps(d) + "\n" for d in exported))
    ssh = _corpus("logs/OpenSSH/OpenSSH_2k.log").read_text().splitlines()[:60]
    (logs / "linux" / "auth.log").write_text("\n".join(ssh) + "\n")
    (logs / "win" / "broken.evtx").write_bytes(b"ElfFile\x00" + bytes(range(256)) * 20)
    (logs / "blob.bin").write_bytes(b"\x00\x01\x02binary\x00" * 100)
    rules = _write_rules(tmp_path / "rules", WHOAMI_RULE, SSH_RULE, EVE_RULE)
    return {"logs": logs, "rules": rules, "missing": tmp_path / "no-such-dir"}


@needs_corpus
def test_own_ecs_rule_matches_evtx_and_its_json_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = _write_rules(tmp_path / "rules", WHOAMI_RULE)
    evtx_path = _corpus(WHOAMI_SAMPLE + ".evtx")
    json_path = _corpus(WHOAMI_SAMPLE + ".json")
    code, out, err = _run(
        capsys, "--rules", rules, "--input", evtx_path, json_path, "--json", "--workers", "1"
    )
    assert code == 0, err
    hits = _json_lines(out)
    assert [h["log.file.path"] for h in hits] == [str(evtx_path), str(json_path)]
    for hit in hits:
        assert hit["rule"] == {
            "id": "11111111-1111-4111-8111-111111111111",
            "title": "Whoami run through cmd (ECS fields)",
            "level": "high",
            "tags": ["attack.discovery", "attack.t1033"],
        }
        assert hit["host.name"] == "swachchhanda"
        assert hit["@timestamp"].startswith("2025-12-06T21:11:02")
        assert hit["winlog.channel"] == "Microsoft-Windows-Sysmon/Operational"
        assert hit["event.code"] == "1"
        assert "whoami" in hit["winlog.event_data.CommandLine"]
        assert hit["winlog.event_data.Image"].lower().endswith("cmd.exe")
        assert isinstance(hit["record"], int)
    assert hits[0]["record"] == hits[0]["winlog.record_id"] or hits[0]["record"] >= 1
    assert "log.offset" in hits[1]  # JSON records carry their byte offset
    assert "2 files read, 0 failed" in err
    assert "2 matches" in err
    assert "rules: 1 files, 1 loaded, 1 evaluated, 0 unsupported, 0 errors" in err


@needs_corpus
@pytest.mark.parametrize("case", SIGMAHQ_CASES)
def test_sigmahq_rule_fires_on_its_regression_sample(
    case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sample_dir = _corpus(f"sigma/regression_data/rules/{case}")
    info = yaml.safe_load((sample_dir / "info.yml").read_text())
    expected = info["rule_metadata"][0]["id"]
    rule = _corpus(f"sigma/rules/{case}.yml")
    code, out, err = _run(
        capsys, "--rules", rule, "--input", sample_dir, "--json", "--workers", "1"
    )
    assert code == 0, err
    hits = _json_lines(out)
    evtx_hits = [h for h in hits if h["log.file.path"].endswith(".evtx")]
    assert {h["rule"]["id"] for h in evtx_hits} == {expected}, err
    # the .json twin of the sample holds the same events and must fire the same way
    json_hits = [h for h in hits if h["log.file.path"].endswith(".json")]
    assert [h["winlog.record_id"] for h in json_hits] == [h["winlog.record_id"] for h in evtx_hits]


@needs_corpus
def test_mixed_folder_reports_failures_and_still_prints_every_match(
    mixed: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        capsys,
        "--rules",
        mixed["rules"],
        "--input",
        mixed["logs"],
        mixed["missing"],
        "--json",
        "--workers",
        "1",
    )
    assert code == 1  # an input could not be read
    hits = _json_lines(out)
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for hit in hits:
        by_rule.setdefault(hit["rule"]["title"], []).append(hit)
    logs = mixed["logs"]
    # Windows: the EVTX file and its JSON export
    whoami = by_rule["Whoami run through cmd (ECS fields)"]
    assert {h["log.file.path"] for h in whoami} == {
        str(logs / "win" / "host1.evtx"),
        str(logs / "win" / "host1-export.json"),
        str(logs / "export.ndjson"),
    }
    winlogbeat = next(h for h in whoami if h["log.file.path"] == str(logs / "export.ndjson"))
    assert (winlogbeat["record"], winlogbeat["host.name"]) == (1, "ws-17")
    assert winlogbeat["winlog.record_id"] == 991
    # an ECS document is matched as it is
    ssh = by_rule["SSH password failure from a known scanner"]
    ecs = [h for h in ssh if h["log.file.path"] == str(logs / "export.ndjson")]
    assert [(h["record"], h["host.name"], h["user.name"]) for h in ecs] == [(2, "bastion", "root")]
    # Linux auth log through the linux_auth parser
    ssh_lines = (logs / "linux" / "auth.log").read_text().splitlines()
    expected_lines = [
        n
        for n, line in enumerate(ssh_lines, 1)
        if ("Failed password" in line or "Invalid user" in line) and "from 173.234.31.186" in line
    ]
    ssh = [h for h in ssh if h["log.file.path"] == str(logs / "linux" / "auth.log")]
    assert expected_lines and [h["record"] for h in ssh] == expected_lines
    assert all(h["source.ip"] == "173.234.31.186" for h in ssh)
    assert all(h["host.name"] == "LabSZ" for h in ssh)
    # Suricata EVE lines through the suricata parser: only the trojan alert
    eve = by_rule["Suricata alert on trojan signature"]
    assert [h["record"] for h in eve] == [1]
    assert eve[0]["source.ip"] == "10.1.2.3"
    assert eve[0]["@timestamp"].startswith("2024-03-01T10:00:00")
    # output order: by file (sorted folder walk), then record
    order = [(h["log.file.path"], h["record"]) for h in hits]
    files_in_order = [str(p) for p in sorted(logs.rglob("*")) if p.is_file()]
    assert order == sorted(order, key=lambda k: (files_in_order.index(k[0]), k[1]))
    # every problem is on stderr with its reason
    assert f"cannot read {logs / 'win' / 'broken.evtx'}: not a readable EVTX file" in err
    assert f"cannot read {mixed['missing']}: no such file or directory" in err
    assert f"skipped {logs / 'blob.bin'}: binary file, not a log" in err
    assert "5 files read, 2 failed, 1 skipped" in err
    assert f"{len(hits)} matches" in err


@needs_corpus
def test_workers_and_split_modes_give_identical_output(
    mixed: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Share even small files among workers, in small blocks, so the events split is exercised.
    monkeypatch.setattr(match_mod, "SPLIT_BYTES", 0)
    monkeypatch.setattr(match_mod, "BLOCK", 3)
    base: list[str | Path] = ["--rules", mixed["rules"], "--input", mixed["logs"]]
    outputs: dict[tuple[str, str, bool], tuple[str, list[str]]] = {}
    for workers, split in [("1", "auto"), ("2", "rules"), ("2", "events")]:
        for as_json in (False, True):
            fmt = ["--json"] if as_json else []
            code, out, err = _run(capsys, *base, "--workers", workers, "--split", split, *fmt)
            assert code == 1, err  # broken.evtx
            outputs[workers, split, as_json] = (out, err.splitlines()[:-1])
    for as_json in (False, True):
        single = outputs["1", "auto", as_json]
        assert single[0].strip()
        assert outputs["2", "rules", as_json] == single
        assert outputs["2", "events", as_json] == single


@needs_corpus
def test_rule_shares_keep_every_rule_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rules split among workers: each rule evaluated once, errors reported once."""
    rules = _write_rules(tmp_path / "rules", WHOAMI_RULE, SSH_RULE, EVE_RULE)
    (rules / "broken.yml").write_text("title: [unclosed\n")
    (rules / "not_a_rule.yml").write_text("just: a mapping\n")
    for case in SIGMAHQ_CASES:
        shutil.copy(_corpus(f"sigma/rules/{case}.yml"), rules / f"{Path(case).name}.yml")
    inputs = [_corpus(f"sigma/regression_data/rules/{case}") for case in SIGMAHQ_CASES]
    options = MatchOptions((rules,))
    one = run_match(inputs, options, workers=1)
    two = run_match(inputs, options, workers=2, split="rules")
    assert two.mode == "rules" and one.mode == "single"
    assert [h.doc for h in two.hits] == [h.doc for h in one.hits]
    assert two.rules.loaded == one.rules.loaded == 3 + len(SIGMAHQ_CASES)
    assert sorted(str(e.path) for e in two.rules.errors) == sorted(
        str(e.path) for e in one.rules.errors
    )
    assert {e.path.name for e in one.rules.errors} == {"broken.yml", "not_a_rule.yml"}
    fired = {h.doc["rule"]["id"] for h in one.hits}
    for case in SIGMAHQ_CASES:
        info = yaml.safe_load(
            (_corpus(f"sigma/regression_data/rules/{case}") / "info.yml").read_text()
        )
        assert info["rule_metadata"][0]["id"] in fired
    capsys.readouterr()


@needs_corpus
def test_level_and_rule_id_filters(
    mixed: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base: list[str | Path] = ["--rules", mixed["rules"], "--input", mixed["logs"], "--json"]
    _, out, err = _run(capsys, *base, "--level", "medium")
    titles = {h["rule"]["title"] for h in _json_lines(out)}
    assert titles == {
        "Whoami run through cmd (ECS fields)",
        "SSH password failure from a known scanner",
    }
    assert "1 left out by --level/--rule-id" in err
    _, out, _ = _run(capsys, *base, "--rule-id", "33333333-3333-4333-8333-333333333333")
    assert {h["rule"]["level"] for h in _json_lines(out)} == {"low"}


@needs_corpus
def test_human_table(mixed: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(
        capsys, "--rules", mixed["rules"], "--input", mixed["logs"] / "win", "--workers", "1"
    )
    assert code == 1  # broken.evtx
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "LEVEL", "RULE", "HOST", "FILE:RECORD", "DETAILS"]
    row = next(line for line in lines if "host1.evtx:" in line)
    for expected in ("high", "Whoami run through cmd (ECS fields)", "swachchhanda", "whoami"):
        assert expected in row
    assert "cmd=" in row and "user=" in row
    assert "socmon match: inputs:" in err


def test_rule_errors_are_reported_and_no_rules_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = _write_rules(tmp_path / "rules", WHOAMI_RULE)
    (rules / "bad.yml").write_text("title: x\ndetection: {condition: nothing}\n")
    log = tmp_path / "app.log"
    log.write_text("Jan 10 10:00:01 host1 app[1]: hello\n")
    code, out, err = _run(capsys, "--rules", rules, "--input", log)
    assert code == 0
    assert out == ""
    assert f"rule not loaded {rules / 'bad.yml'}" in err
    assert "1 files read, 0 failed, 0 skipped; 1 events, 0 parse failures" in err
    code, _, err = _run(capsys, "--rules", tmp_path / "empty-nothing", "--input", log)
    assert code == 2
    assert "no Sigma rule file found" in err


def test_find_inputs_sniffs_kinds(tmp_path: Path) -> None:
    (tmp_path / "a.evtx").write_bytes(b"ElfFile\x00rest")
    (tmp_path / "b.log").write_text('{"x": 1}\n')
    (tmp_path / "c").write_text("plain line\n")
    (tmp_path / "d.dat").write_bytes(b"\x00\x00\x00")
    (tmp_path / "e.log").symlink_to(tmp_path / "gone.log")
    files, failures, skipped = find_inputs([tmp_path, tmp_path / "c", tmp_path / "nope"])
    assert [(f.path.name, f.kind) for f in files] == [
        ("a.evtx", "evtx"),
        ("b.log", "json"),
        ("c", "lines"),
    ]
    assert failures == [(str(tmp_path / "nope"), "no such file or directory")]
    assert skipped == [
        (str(tmp_path / "d.dat"), "binary file, not a log"),
        (str(tmp_path / "e.log"), "broken symbolic link"),
    ]


def test_gzip_log_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import gzip

    rules = _write_rules(tmp_path / "rules", SSH_RULE)
    line = (
        "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster "
        "from 173.234.31.186 port 38926 ssh2\n"
    )
    with gzip.open(tmp_path / "auth.log.1.gz", "wt") as f:
        f.write("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 1.2.3.4\n" + line)
    code, out, err = _run(capsys, "--rules", rules, "--input", tmp_path / "auth.log.1.gz", "--json")
    assert code == 0, err
    assert [h["record"] for h in _json_lines(out)] == [2]


def test_add_match_parser_registers_the_subcommand(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="socmon")
    sub = parser.add_subparsers(dest="command", required=True)
    add_match_parser(sub)
    argv = ["match", "--rules", "r1", "--rules", "r2", "--input", "a", "b", "--input", "c"]
    args = parser.parse_args(
        [*argv, "--json", "--level", "high", "--rule-id", "x", "--workers", "2"]
    )
    assert args.func is cmd_match
    assert args.rules == [Path("r1"), Path("r2")]
    assert args.input == [Path("a"), Path("b"), Path("c")]
    assert (args.json, args.level, args.rule_id, args.workers, args.split) == (
        True,
        "high",
        ["x"],
        2,
        "auto",
    )


def test_choose_split_prefers_rules_for_small_inputs(tmp_path: Path) -> None:
    small = tmp_path / "small.log"
    small.write_text("x\n" * 100)
    files, _, _ = find_inputs([small])
    assert match_mod.choose_split(500, files) == "rules"
    big = [match_mod.InputFile(0, small, "lines", 10 << 30)]
    assert match_mod.choose_split(500, big) == "events"


FAILED_LOGON_RULE = """\
title: Failed logon (ECS fields)
id: 44444444-4444-4444-8444-444444444444
status: test
level: medium
logsource: {product: windows, service: security}
detection:
  selection:
    winlog.channel: Security
    winlog.event_id: 4625
  condition: selection
"""


@needs_corpus
def test_unreadable_records_are_reported_and_the_rest_is_matched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged EVTX file (3 MiB: shared among workers by record blocks) is read around the
    damage; the lost records are reported, exit status 1, the same output with 1 or 2 workers."""
    data = bytearray(_corpus("evtx/DeepBlueCLI/smb-password-guessing-security.evtx").read_bytes())
    assert len(data) > match_mod.SPLIT_BYTES
    for offset in (7608, 13608, 24608):  # inside the records of the first chunk
        data[offset : offset + 200] = b"\xff" * 200
    damaged = tmp_path / "damaged.evtx"
    damaged.write_bytes(bytes(data))
    rules = _write_rules(tmp_path / "rules", FAILED_LOGON_RULE)
    runs = {}
    for workers, split in [("1", "auto"), ("2", "events")]:
        code, out, err = _run(
            capsys,
            "--rules",
            rules,
            "--input",
            damaged,
            "--json",
            "--workers",
            workers,
            "--split",
            split,
        )
        assert code == 1
        runs[workers] = (out, err.splitlines()[:-1])
        summary = err.splitlines()[-1]
        assert "1 files read, 1 failed" in summary
        assert " 0 unreadable records" not in summary
    assert runs["1"] == runs["2"]
    out, problems = runs["1"]
    hits = _json_lines(out)
    assert len(hits) > 100
    assert {(h["winlog.channel"], h["event.code"]) for h in hits} == {("Security", "4625")}
    assert any(
        line.startswith(f"socmon match: cannot read {damaged}: ") and "unreadable records" in line
        for line in problems
    )
