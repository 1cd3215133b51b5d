"""Hunts over stored events: real parsers, real osmem-server, real SQLite, real Sigma rules."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from collectors.fortigate.parse import parse as parse_fortigate
from collectors.parsing import SourceContext
from collectors.windows.parse import parse as parse_windows
from detections.alerts import alert_id
from detections.hunt import (
    HuntError,
    HuntQuery,
    HuntScheduler,
    HuntWatermark,
    add_hunt_parser,
    compile_query,
    get_watermark,
    iso,
    parse_when,
    python_regex_to_lucene,
    run_hunt,
    watermarks,
)
from detections.sigma.loader import LoadedRule, load_rules
from socmon.config import Settings
from socmon.corpus import corpus_dir
from socmon.db import Database
from socmon.embedded import EmbeddedStore
from socmon.errors import StoreError
from socmon.store import Store, build_client

pytestmark = pytest.mark.integration

CTX = SourceContext()
# SigmaHQ regression samples (Sysmon and Security channels) and their rules.
SAMPLES = (
    "rules-emerging-threats/2026/Exploits/CVE-2026-33829/proc_creation_win_exploit_cve_2026_33829",
    "rules-emerging-threats/2026/Exploits/RedSun/pipe_created_win_exploit_redsun_named_pipe",
    "rules-emerging-threats/2025/Malware/Grixba/proc_creation_win_malware_grixba_recon",
    "rules/windows/builtin/security/win_security_susp_scheduled_task_delete_or_disable",
    "rules/windows/file/file_event/file_event_win_creation_system_dll_files",
    # WMI-Activity keeps its data in UserData.
    "rules/windows/builtin/wmi/win_wmi_activity_nteventlogfile_cleareventlog",
)
FORTIGATE_LOG = ("ecs-conformance", "fortinet_fortigate", "log", "test-fortinet.log")
WIDE = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
INGESTED = "2026-11-20T10:00:00.000Z"


@pytest.fixture(scope="module")
def corpus() -> Path:
    base = corpus_dir()
    if base is None:
        pytest.skip("test corpus not found (set SOCMON_CORPUS or place shared/corpus)")
    return base


@dataclass
class Sample:
    name: str
    rule: Path
    match_count: int
    events: list[dict[str, Any]]


def _json_objects(path: Path) -> list[str]:
    """The concatenated (pretty-printed) JSON objects of a SigmaHQ regression sample."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    out: list[str] = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        _, end = decoder.raw_decode(text, i)
        out.append(text[i:end])
        i = end


def _doc_id(source: str, position: int, raw: str) -> str:
    return hashlib.blake2b(f"{source}\x00{position}\x00{raw}".encode(), digest_size=16).hexdigest()


@pytest.fixture(scope="module")
def samples(corpus: Path) -> list[Sample]:
    out: list[Sample] = []
    for rel in SAMPLES:
        folder = corpus / "sigma" / "regression_data" / rel
        info = yaml.safe_load((folder / "info.yml").read_text(encoding="utf-8"))
        test = info["regression_tests_info"][0]
        events: list[dict[str, Any]] = []
        for path in sorted(folder.glob("*.json")):
            for i, raw in enumerate(_json_objects(path)):
                doc = parse_windows(raw, CTX)
                doc["_id"] = _doc_id(str(path.relative_to(corpus)), i, raw)
                events.append(doc)
        rule = corpus / "sigma" / f"{rel}.yml"
        out.append(Sample(rel, rule, int(test.get("match_count", 1)), events))
    return out


@pytest.fixture(scope="module")
def fortigate(corpus: Path) -> list[dict[str, Any]]:
    path = corpus.joinpath(*FORTIGATE_LOG)
    docs: list[dict[str, Any]] = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        doc = parse_fortigate(line, CTX)
        if "@timestamp" not in doc:
            continue
        doc["_id"] = _doc_id("fortigate", i, line)
        docs.append(doc)
    return docs


def _store(store: Store, docs: Sequence[dict[str, Any]], ingested: str | None = INGESTED) -> None:
    """Write parsed documents as the shipper does (deterministic _id, event.ingested)."""
    by_target: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for doc in docs:
        body = {k: v for k, v in doc.items() if k != "_id"}
        body["event"] = dict(body.get("event", {}))
        if ingested is not None:
            body["event"]["ingested"] = ingested
        target = store.events_target(str(body["event"].get("dataset") or "generic"))
        by_target.setdefault(target, []).append((doc["_id"], body))
    for target, items in by_target.items():
        result = store.bulk_create(target, items)
        assert result.created + result.duplicates == len(items), result
        store.refresh(target)


def _rule(text: str) -> LoadedRule:
    rule = SigmaCollection.from_yaml(text).rules[0]
    assert isinstance(rule, SigmaRule)
    return LoadedRule(Path(f"{rule.id}.yml"), rule)


def _fortigate_rule(rule_id: str, extra: str = "") -> LoadedRule:
    return _rule(
        f"""
title: FortiGate traffic denied from a private address
id: {rule_id}
level: medium
logsource: {{product: fortigate}}
detection:
  sel:
    event.dataset: fortinet.fortigate
    event.action: deny
    source.ip|cidr: 10.0.0.0/8
  condition: sel
{extra}
"""
    )


FORTIGATE_ALL = """
title: Every FortiGate event
id: 4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0001
level: low
logsource: {product: fortigate}
detection:
  sel:
    event.dataset: fortinet.fortigate
  condition: sel
"""


def _ts(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(doc["@timestamp"]).replace("Z", "+00:00")).astimezone(UTC)


def _in_private(ip: str | None) -> bool:
    return bool(ip) and str(ip).startswith("10.")


# --------------------------------------------------------------------------------- on demand


def test_sigmahq_rules_find_their_regression_events(
    store: Store, samples: list[Sample], fortigate: list[dict[str, Any]]
) -> None:
    """Each SigmaHQ rule (field-mapped, converted, run as query_string on the store) finds
    exactly its own sample's events, in the number SigmaHQ's regression data states."""
    _store(store, [e for s in samples for e in s.events] + fortigate)
    ruleset = load_rules([s.rule for s in samples])
    assert not ruleset.errors
    report = run_hunt(store, ruleset.rules, *WIDE)
    assert not report.unconvertible, report.unconvertible
    assert report.complete
    by_path = {r.query.path: r for r in report.results}
    for sample in samples:
        result = by_path[sample.rule]
        own = {e["_id"] for e in sample.events}
        found = {m.event["_id"] for m in result.matches}
        assert found <= own, f"{sample.name}: matched events of other samples"
        assert len(found) == sample.match_count, f"{sample.name}: {len(found)} matches"
        assert result.total == len(result.matches) == sample.match_count
        for match in result.matches:
            assert match.index.startswith("logs-windows.")
            assert match.event["winlog"]["channel"]


def test_native_rule_on_fortigate_matches_exactly_the_expected_events(
    store: Store, samples: list[Sample], fortigate: list[dict[str, Any]]
) -> None:
    _store(store, [e for s in samples for e in s.events] + fortigate)
    matching = _fortigate_rule("4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0002")
    silent = _rule(
        """
title: Sysmon process creation of a binary nobody runs
id: 4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0003
logsource: {category: process_creation, product: windows}
detection:
  sel:
    Image|endswith: '\\no-such-binary-anywhere.exe'
  condition: sel
"""
    )
    report = run_hunt(store, [matching, silent], *WIDE)
    expected = {
        d["_id"]
        for d in fortigate
        if d["event"].get("action") == "deny" and _in_private(d.get("source", {}).get("ip"))
    }
    assert expected, "the corpus has denied traffic from 10/8"
    results = {r.query.rule_id: r for r in report.results}
    assert {m.event["_id"] for m in results[matching.rule.id.__str__()].matches} == expected
    assert results[str(silent.rule.id)].matches == []
    assert results[str(silent.rule.id)].total == 0
    assert results[str(silent.rule.id)].query.variants == 2  # Sysmon 1 and Security 4688


CVE_SAMPLE = SAMPLES[0]


def _variant(doc: dict[str, Any], suffix: str, **event_data: str) -> dict[str, Any]:
    """A copy of a parsed Windows event with other EventData values and its own id."""
    copy_ = json.loads(json.dumps(doc))
    copy_["winlog"]["event_data"].update(event_data)
    copy_["_id"] = doc["_id"] + suffix
    return copy_


def test_strings_match_case_insensitively_as_in_sigma(store: Store, samples: list[Sample]) -> None:
    """SigmaHQ's rule for the CVE sample also finds the same process written in capitals (the
    stock Lucene query, `*\\SnippingTool.exe`, would not: keyword terms are case-sensitive)."""
    sample = next(s for s in samples if s.name == CVE_SAMPLE)
    hits = [e for e in sample.events if "SnippingTool.exe" in e["winlog"]["event_data"]["Image"]]
    original = hits[0]
    data = original["winlog"]["event_data"]
    shouted = _variant(
        original, "-upper", Image=data["Image"].upper(), CommandLine=data["CommandLine"].upper()
    )
    other = _variant(original, "-other", Image=data["Image"].replace("SnippingTool", "Paint"))
    _store(store, [*sample.events, shouted, other])
    rules = load_rules([sample.rule]).rules
    found = {m.event["_id"] for m in run_hunt(store, rules, *WIDE).matches}
    assert shouted["_id"] in found and original["_id"] in found
    assert other["_id"] not in found


def _cli_rule(rule_id: str, cond: str) -> LoadedRule:
    return _rule(
        f"""
title: regex {rule_id[-4:]}
id: {rule_id}
logsource: {{category: process_creation, product: windows}}
detection:
  sel:
{cond}
  condition: sel
"""
    )


def test_regular_expressions_search_like_sigma(store: Store, samples: list[Sample]) -> None:
    sample = next(s for s in samples if s.name == CVE_SAMPLE)
    _store(store, sample.events)
    line = next(
        e["winlog"]["event_data"]["CommandLine"]
        for e in sample.events
        if "ms-screensketch" in e["winlog"]["event_data"].get("CommandLine", "")
    )
    assert not line.startswith("ms-screensketch")
    rules = {
        # unanchored: found inside the command line (a bare Lucene regexp must match it all)
        "search": _cli_rule(
            "4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0040",
            "    CommandLine|re: 'screensketch:edit\\?&filePath=(\\\\\\\\|http)'",
        ),
        # case-insensitive by flag and by inline flag
        "flag_i": _cli_rule(
            "4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0041", "    CommandLine|re|i: 'SCREENSKETCH:EDIT'"
        ),
        "inline_i": _cli_rule(
            "4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0042",
            "    CommandLine|re: '(?i)snippingtool\\.EXE.{1,40}SCREENSKETCH'",
        ),
        # case matters without the flag; anchors hold
        "cased": _cli_rule(
            "4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0043", "    CommandLine|re: 'SCREENSKETCH'"
        ),
        "anchored": _cli_rule(
            "4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0044", "    CommandLine|re: '^ms-screensketch'"
        ),
    }
    report = run_hunt(store, list(rules.values()), *WIDE)
    assert not report.unconvertible, report.unconvertible
    counts = {name: 0 for name in rules}
    by_id = {str(r.rule.id): name for name, r in rules.items()}
    for result in report.results:
        counts[by_id[result.query.rule_id]] = len(result.matches)
    expected = sum(
        1
        for e in sample.events
        if re.search(
            r"screensketch:edit\?&filePath=(\\\\|http)",
            e["winlog"]["event_data"].get("CommandLine", ""),
        )
    )
    assert expected > 0
    assert counts["search"] == expected
    assert counts["flag_i"] >= expected and counts["inline_i"] >= expected
    assert counts["cased"] == 0 and counts["anchored"] == 0


@pytest.mark.parametrize(
    ("pattern", "flags", "matching", "not_matching"),
    [
        (r"who.mi", "", "cmd /c whoami /all", "WHOAMI"),
        (r"(?i)who.mi", "", "cmd /c WHOAMI", "wh mi"),
        (r"^cmd\.exe$", "", "cmd.exe", "xcmd.exe"),
        (r"[a-c]{2}\d+", "i", "xxBC12", "xxBD12"),
        (r"(?:evil|bad)\.com/x", "", "http://bad.com/x?y", "bad.com/y"),
        (r"C:\\Temp\\[^\\]+\.ps1", "i", r"c:\temp\a.PS1", r"c:\temp\a\b.ps1"),
        (r"a+?b", "", "aaab", "ac"),
        (r"@&~#<>\"", "", 'x@&~#<>"y', "x@&~#<>y"),
    ],
)
def test_regex_translation_matches_like_python(
    pattern: str, flags: str, matching: str, not_matching: str
) -> None:
    """The translated regexp read as Lucene reads it (whole-term match): Python's `fullmatch`
    (the constructs emitted mean the same in both); osmem runs such regexps in the tests above."""
    lucene = python_regex_to_lucene(pattern, ignorecase="i" in flags)
    py = re.compile(lucene)
    assert py.fullmatch(matching), lucene
    assert not py.fullmatch(not_matching), lucene
    reference = re.compile(pattern, re.IGNORECASE if flags else 0)
    assert reference.search(matching) and not reference.search(not_matching)


@pytest.mark.parametrize("pattern", [r"a(?=b)", r"\bword\b", r"(a)\1", r"a\tb", r"(^a|b$)", r"a*+"])
def test_regex_without_lucene_equivalent_is_refused(pattern: str) -> None:
    with pytest.raises(SigmaError):
        python_regex_to_lucene(pattern)


def test_value_list_is_one_alternation_and_matches_each_value(
    store: Store, fortigate: list[dict[str, Any]]
) -> None:
    _store(store, fortigate)
    actions = sorted({str(d["event"]["action"]) for d in fortigate if d["event"].get("action")})
    assert len(actions) >= 4
    chosen = actions[:3]
    rule = _rule(
        f"""
title: Some FortiGate actions
id: 4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0050
logsource: {{product: fortigate}}
detection:
  sel:
    event.dataset: fortinet.fortigate
    event.action:
{"".join(f"      - '{a.upper()}'{chr(10)}" for a in chosen)}
  condition: sel
"""
    )
    query = compile_query(rule.rule, rule.path)
    assert isinstance(query, HuntQuery)
    text = json.dumps(query.query)
    assert text.count("event.action:/") == 1  # one regexp for the three values
    report = run_hunt(store, [rule], *WIDE)
    expected = {d["_id"] for d in fortigate if d["event"].get("action") in chosen}
    assert {m.event["_id"] for m in report.matches} == expected


def test_time_window_is_half_open_on_event_time(
    store: Store, fortigate: list[dict[str, Any]]
) -> None:
    _store(store, fortigate)
    times = sorted({_ts(d) for d in fortigate})
    since, until = times[3], times[-3]
    report = run_hunt(store, [_rule(FORTIGATE_ALL)], since, until)
    found = {m.event["_id"] for m in report.matches}
    expected = {d["_id"] for d in fortigate if since <= _ts(d) < until}
    assert found == expected
    assert any(_ts(d) == since for d in fortigate if d["_id"] in found)  # start included
    assert not any(_ts(d) == until for d in fortigate if d["_id"] in found)  # end excluded
    with pytest.raises(HuntError):
        run_hunt(store, [_rule(FORTIGATE_ALL)], until, since)


def test_pagination_reads_everything_and_a_cap_is_reported(
    store: Store, fortigate: list[dict[str, Any]]
) -> None:
    _store(store, fortigate)
    report = run_hunt(store, [_rule(FORTIGATE_ALL)], *WIDE, page_size=4)
    (result,) = report.results
    assert len(fortigate) > 4 * 5  # many pages
    assert {m.event["_id"] for m in result.matches} == {d["_id"] for d in fortigate}
    assert len(result.matches) == len(fortigate) == result.total
    assert not result.truncated and report.complete

    capped = run_hunt(store, [_rule(FORTIGATE_ALL)], *WIDE, page_size=4, max_matches=9)
    (result,) = capped.results
    assert result.truncated
    assert len(result.matches) == 9
    assert result.total == len(fortigate)
    assert not capped.complete
    assert capped.to_dict()["rules"][0]["truncated"] is True


def test_unconvertible_rules_are_reported_and_the_rest_still_run(
    store: Store, corpus: Path, fortigate: list[dict[str, Any]]
) -> None:
    _store(store, fortigate)
    cased = _rule(
        """
title: Case-sensitive match
id: 4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0010
logsource: {product: fortigate}
detection:
  sel:
    event.action|cased: deny
  condition: sel
"""
    )
    lookahead = _rule(
        """
title: Regex with a lookahead
id: 4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0011
logsource: {category: process_creation, product: windows}
detection:
  sel:
    CommandLine|re: 'who(?=ami)'
  condition: sel
"""
    )
    proxy = _rule(
        """
title: Proxy log source socmon has not
id: 4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0012
logsource: {category: proxy}
detection:
  sel:
    c-uri|contains: '/evil'
  condition: sel
"""
    )
    fieldref = load_rules(
        [
            corpus / "sigma" / "rules/windows/builtin/security/"
            "win_security_explicit_credential_local_logon.yml"
        ]
    ).rules[0]
    report = run_hunt(store, [cased, lookahead, proxy, fieldref, _rule(FORTIGATE_ALL)], *WIDE)
    reasons = {u.rule_id: u.reason for u in report.unconvertible}
    assert set(reasons) == {str(r.rule.id) for r in (cased, lookahead, proxy, fieldref)}
    assert "case-sensitive" in reasons[str(cased.rule.id)].lower()
    assert "(?=" in reasons[str(lookahead.rule.id)]
    assert "proxy" in reasons[str(proxy.rule.id)]
    assert "field references" in reasons[str(fieldref.rule.id)]
    assert len(report.results) == 1 and len(report.matches) == len(fortigate)
    assert not report.complete
    assert isinstance(compile_query(proxy.rule, proxy.path), type(report.unconvertible[0]))


def test_alerts_are_written_once_with_deterministic_ids(
    store: Store, fortigate: list[dict[str, Any]]
) -> None:
    _store(store, fortigate)
    rule = _fortigate_rule("4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0020", "tags: [attack.t1046]")
    first = run_hunt(store, [rule], *WIDE, write_alerts=True)
    n = len(first.matches)
    assert n > 0
    assert (first.alerts_created, first.alerts_existing) == (n, 0)
    store.refresh(store.alerts_target)
    again = run_hunt(store, [rule], *WIDE, write_alerts=True)
    assert (again.alerts_created, again.alerts_existing) == (0, n)
    store.refresh(store.alerts_target)
    assert store.count(store.alerts_target) == n
    hits = store.search(store.alerts_target, size=100)["hits"]["hits"]
    rule_id = str(rule.rule.id)
    assert {h["_id"] for h in hits} == {alert_id(rule_id, m.event["_id"]) for m in first.matches}
    for hit in hits:
        alert = hit["_source"]
        assert alert["rule"]["id"] == rule_id
        assert alert["event"]["kind"] == "alert"
        assert alert["event"]["ingested"]  # the incident service's alert puller reads it
        assert alert["socmon"]["alert"]["id"] == hit["_id"]
        assert alert["tags"] == ["attack.t1046"]
        assert alert["source"]["ip"].startswith("10.")
        assert alert["socmon"]["hunt"]["index"].startswith("logs-fortinet.fortigate-")


# --------------------------------------------------------------------------------- scheduled


T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _ingested_series(
    fortigate: list[dict[str, Any]], step: timedelta
) -> list[tuple[dict[str, Any], datetime]]:
    """Each FortiGate event stored at T0 + i*step (event.ingested), in order."""
    return [(doc, T0 + i * step) for i, doc in enumerate(fortigate)]


def _store_series(store: Store, series: list[tuple[dict[str, Any], datetime]]) -> None:
    for doc, ingested in series:
        _store(store, [doc], ingested=iso(ingested))


def test_scheduler_catches_up_after_downtime_in_bounded_slices(
    store: Store, db: Database, fortigate: list[dict[str, Any]]
) -> None:
    series = _ingested_series(fortigate, timedelta(minutes=10))
    _store_series(store, series)
    rule = _rule(FORTIGATE_ALL)
    rid = str(rule.rule.id)
    lag, lookback, slice_, per_run = 60.0, 3600.0, 1800.0, 3
    sched = HuntScheduler(
        store,
        db,
        [rule],
        lag=lag,
        max_slice=slice_,
        max_slices=per_run,
        initial_lookback=lookback,
    )
    seen: set[str] = set()

    def expect(start: datetime, end: datetime) -> set[str]:
        return {d["_id"] for d, t in series if start <= t < end}

    # First run: no watermark, looks back `lookback` from now - lag.
    now1 = T0 + timedelta(hours=1, minutes=5)
    run = sched.run_rule(rid, now=now1)
    end1 = now1 - timedelta(seconds=lag)
    assert run.error is None and not run.behind
    assert run.windows[0][0] == end1 - timedelta(seconds=lookback)
    assert run.windows[-1][1] == end1 == get_watermark(db, rid)
    assert all(b - a <= timedelta(seconds=slice_) for a, b in run.windows)
    first = expect(end1 - timedelta(seconds=lookback), end1)
    assert run.matches == len(first) > 0
    seen |= first

    # Downtime of five hours: each run covers at most `per_run` slices, then the next run
    # continues from the persisted watermark until it reaches now - lag.
    now2 = now1 + timedelta(hours=5)
    end2 = now2 - timedelta(seconds=lag)
    runs = []
    while True:
        run = sched.run_rule(rid, now=now2)
        assert run.error is None
        runs.append(run)
        if not run.behind:
            break
    assert len(runs) == 4  # 5 h in 30-min slices, 3 per run: 3 + 3 + 3 + 1
    windows = [w for r in runs for w in r.windows]
    assert windows[0][0] == end1 and windows[-1][1] == end2
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))  # no gaps
    assert sum(r.matches for r in runs) == len(expect(end1, end2))
    seen |= expect(end1, end2)
    assert get_watermark(db, rid) == end2

    # Nothing new: a run covers the short tail only.
    quiet = sched.run_rule(rid, now=now2)
    assert quiet.matches == 0 and quiet.windows == []

    store.refresh(store.alerts_target)
    assert store.count(store.alerts_target) == len(seen)
    with db.session() as session:
        row = session.get(HuntWatermark, rid)
        assert row is not None and row.matches == len(seen) and row.last_error is None


def test_late_event_is_found_by_its_ingest_time_and_restart_resumes(
    store: Store, db: Database, fortigate: list[dict[str, Any]]
) -> None:
    rule = _rule(FORTIGATE_ALL)
    rid = str(rule.rule.id)
    sched = HuntScheduler(store, db, [rule], lag=0, initial_lookback=600)
    sched.run_rule(rid, now=T0)
    assert get_watermark(db, rid) == T0
    # An event from 2020 that reaches the store only now (a collector was offline).
    late = fortigate[0]
    assert _ts(late) < T0 - timedelta(days=365)
    _store(store, [late], ingested=iso(T0 + timedelta(minutes=1)))

    # socmon restarts: a new scheduler on the same database resumes from the watermark.
    restarted = HuntScheduler(store, db, [rule], lag=0, initial_lookback=600)
    run = restarted.run_rule(rid, now=T0 + timedelta(minutes=5))
    assert run.windows == [(T0, T0 + timedelta(minutes=5))]
    assert run.matches == 1
    assert watermarks(db) == {rid: T0 + timedelta(minutes=5)}


def test_store_failure_keeps_the_watermark(
    store: Store, db: Database, settings: Settings, osmem: EmbeddedStore
) -> None:
    rule = _rule(FORTIGATE_ALL)
    rid = str(rule.rule.id)
    HuntScheduler(store, db, [rule], lag=0).run_rule(rid, now=T0)
    # The same store's namespace, reached at an address where nothing listens.
    dead = Store(settings, build_client(settings, "http://127.0.0.1:9"), store.info, "dead")
    try:
        run = HuntScheduler(dead, db, [rule], lag=0).run_rule(rid, now=T0 + timedelta(hours=1))
    finally:
        dead.close()
    assert run.error and run.windows == []
    assert get_watermark(db, rid) == T0
    with db.session() as session:
        row = session.get(HuntWatermark, rid)
        assert row is not None and row.last_error and "failed" in row.last_error


def test_apscheduler_jobs_one_per_rule_with_its_interval(store: Store, db: Database) -> None:
    hourly = _rule(FORTIGATE_ALL.replace("level: low", "level: low\nhunt_interval: 1h"))
    other = _fortigate_rule("4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0030")
    proxy = _rule(
        """
title: Unmapped
id: 4a8a0b0e-5f0e-4c59-9b7e-2f7b1c3d0031
logsource: {category: proxy}
detection: {sel: {c-uri: x}, condition: sel}
"""
    )
    sched = HuntScheduler(store, db, [hourly, other, proxy], interval=600)
    assert [u.rule_id for u in sched.unconvertible] == [str(proxy.rule.id)]
    sched.start(run_now=False)
    try:
        assert sorted(sched.jobs()) == sorted(
            [(f"hunt:{hourly.rule.id}", 3600.0), (f"hunt:{other.rule.id}", 600.0)]
        )
    finally:
        sched.shutdown()
    assert sched.jobs() == []


# --------------------------------------------------------------------------------- CLI, time


def test_parse_when() -> None:
    now = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
    assert parse_when("now", now) == now.replace(microsecond=123000)
    assert parse_when("-24h", now) == parse_when("now", now) - timedelta(hours=24)
    assert parse_when("-7d", now) == parse_when("now", now) - timedelta(days=7)
    assert parse_when("90m", now) == parse_when("-90m", now)
    assert parse_when("2026-11-01T00:00:00Z") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_when("2026-11-01T02:00:00+02:00") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_when("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(HuntError):
        parse_when("yesterday")


def _cli(argv: list[str]) -> tuple[int, str]:
    import argparse

    parser = argparse.ArgumentParser(prog="socmon")
    add_hunt_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out = io.StringIO()
    with redirect_stdout(out):
        code = int(args.func(args))
    return code, out.getvalue()


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, store: Store, osmem: EmbeddedStore, tmp_path: Path
) -> Iterator[None]:
    monkeypatch.setenv("SOCMON_ES_URL", osmem.url)
    monkeypatch.setenv("SOCMON_NAMESPACE", store.namespace)
    monkeypatch.setenv("SOCMON_DATA_DIR", str(tmp_path / "cli"))
    yield


def test_cli_hunt_json_and_write_alerts(
    cli_env: None, store: Store, fortigate: list[dict[str, Any]], tmp_path: Path
) -> None:
    _store(store, fortigate)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "all.yml").write_text(FORTIGATE_ALL, encoding="utf-8")
    code, out = _cli(
        [
            "hunt",
            str(rules),
            "--since",
            "2020-04-23T00:00:00Z",
            "--until",
            "2020-04-24T00:00:00Z",
            "--json",
            "--write-alerts",
        ]
    )
    report = json.loads(out)
    day = {
        d["_id"]
        for d in fortigate
        if datetime(2020, 4, 23, tzinfo=UTC) <= _ts(d) < datetime(2020, 4, 24, tzinfo=UTC)
    }
    assert code == 0 and report["complete"]
    assert {m["event_id"] for m in report["rules"][0]["matches"]} == day
    assert report["alerts_created"] == len(day)

    (rules / "proxy.yml").write_text(
        "title: p\nlogsource: {category: proxy}\ndetection: {s: {c-uri: x}, condition: s}\n",
        encoding="utf-8",
    )
    (rules / "broken.yml").write_text("title: [unclosed\n", encoding="utf-8")
    code, out = _cli(["hunt", str(rules), "--since", "30d"])
    assert code == 1
    assert "NOT RUN" in out and "proxy" in out
    assert "NOT LOADED" in out and "broken.yml" in out


def test_cli_without_store_address_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCMON_DATA_DIR", str(tmp_path))
    rule = tmp_path / "r.yml"
    rule.write_text(FORTIGATE_ALL, encoding="utf-8")
    with pytest.raises(StoreError, match="SOCMON_ES_URL"):
        _cli(["hunt", str(rule)])
