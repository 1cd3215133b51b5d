"""The Sigma → socmon ECS field mapping (detections/sigma/mapping.py, decision 0005)."""

from __future__ import annotations

import textwrap

import pytest
from sigma.rule import SigmaRule

from detections.sigma.mapping import UnmappedLogsource, route_variants, variants
from detections.sigma.matcher import Matcher, compile_rule


def sigma(text: str) -> SigmaRule:
    return SigmaRule.from_yaml(textwrap.dedent(text))


PROCESS_CREATION = """
    title: whoami
    id: 11111111-1111-4111-8111-111111111111
    logsource: {category: process_creation, product: windows}
    detection:
        sel:
            Image|endswith: '\\whoami.exe'
            ParentImage|endswith: '\\cmd.exe'
        condition: sel
    level: medium
"""


def _sysmon(image: str, parent: str) -> dict[str, object]:
    return {
        "winlog": {
            "channel": "Microsoft-Windows-Sysmon/Operational",
            "event_id": 1,
            "event_data": {"Image": image, "ParentImage": parent},
        }
    }


def _security(image: str, parent: str) -> dict[str, object]:
    return {
        "winlog": {
            "channel": "Security",
            "event_id": "4688",
            "event_data": {"NewProcessName": image, "ParentProcessName": parent},
        }
    }


def test_process_creation_runs_on_sysmon_and_on_security_4688() -> None:
    rule = sigma(PROCESS_CREATION)
    found, failed = route_variants(rule)
    assert [v.route for v in found] == ["sysmon", "security"] and failed == []
    compiled = [compile_rule(v.rule, route=v.route) for v in found]
    sysmon, security = compiled
    assert "winlog.event_data.Image" in sysmon.fields
    assert "winlog.event_data.NewProcessName" in security.fields
    assert sysmon.required["winlog.event_id"] == {"1"}
    assert security.required["winlog.event_id"] == {"4688"}
    matcher = Matcher(compiled)
    hit = r"C:\Windows\System32\whoami.exe", r"C:\Windows\System32\cmd.exe"
    assert [r.route for r in matcher.match(_sysmon(*hit))] == ["sysmon"]
    assert [r.route for r in matcher.match(_security(*hit))] == ["security"]
    # The channel matters: a Security-shaped event on another channel does not match.
    other = _security(*hit)
    other["winlog"]["channel"] = "System"  # type: ignore[index]
    assert matcher.match(other) == []
    # The original rule is not rewritten.
    assert rule.logsource.service is None
    assert rule.detection.condition == ["sel"]


def test_a_windows_service_becomes_its_channel() -> None:
    rule = sigma("""
        title: log cleared
        logsource: {product: windows, service: security}
        detection:
            sel: {EventID: 1102}
            condition: sel
    """)
    [only] = variants(rule)
    compiled = compile_rule(only)
    assert compiled.required == {
        "winlog.channel": {"security"},
        "winlog.event_id": {"1102"},
    }


def test_userdata_and_spaced_eventdata_names_resolve_like_sigma_names() -> None:
    rule = sigma("""
        title: wmi
        logsource: {product: windows, service: wmi}
        detection:
            sel:
                EventID: 5858
                Operation|contains: ClearEventLog
            condition: sel
    """)
    matcher, _ = Matcher.from_ruleset(_ruleset(rule))
    event = {
        "winlog": {
            "channel": "Microsoft-Windows-WMI-Activity/Operational",
            "event_id": 5858,
            "user_data": {"Operation": "ExecMethod Win32_NTEventlogFile::ClearEventLog"},
        }
    }
    assert len(matcher.match(event)) == 1
    defender = sigma("""
        title: defender
        logsource: {product: windows, service: windefend}
        detection:
            sel: {EventID: 1119, SourceName: Real-Time Protection}
            condition: sel
    """)
    matcher, _ = Matcher.from_ruleset(_ruleset(defender))
    event = {
        "winlog": {
            "channel": "Microsoft-Windows-Windows Defender/Operational",
            "event_id": 1119,
            "event_data": {"Source Name": "Real-Time Protection"},
        }
    }
    assert len(matcher.match(event)) == 1


def test_webserver_fields_map_to_ecs_and_route_to_web_datasets() -> None:
    rule = sigma("""
        title: traversal
        logsource: {category: webserver}
        detection:
            sel:
                cs-uri-query|contains: '../'
                cs-method: GET
            condition: sel
    """)
    [only] = variants(rule)
    compiled = compile_rule(only)
    assert {"url.query", "http.request.method", "event.dataset"} <= compiled.fields
    matcher = Matcher([compiled])
    event = {
        "event": {"dataset": "nginx.access"},
        "http": {"request": {"method": "GET"}},
        "url": {"query": "file=../../etc/passwd"},
    }
    assert matcher.match(event) == [compiled]
    event["event"] = {"dataset": "fortinet.fortigate"}
    assert matcher.match(event) == []


def test_rules_in_socmon_ecs_are_used_as_written() -> None:
    rule = sigma("""
        title: own
        logsource: {category: firewall, product: fortigate}
        detection:
            sel: {event.dataset: fortinet.fortigate, event.action: deny}
            condition: sel
    """)
    [(v)], _ = route_variants(rule)
    assert v.route == "native"
    assert compile_rule(v.rule).fields == {"event.dataset", "event.action"}


@pytest.mark.parametrize(
    ("logsource", "reason"),
    [
        ("{product: aws, service: cloudtrail}", "product=aws, service=cloudtrail"),
        ("{category: proxy}", "category=proxy"),
        ("{category: process_creation, product: linux}", "Linux process_creation"),
        ("{category: antivirus, product: windows}", "category='antivirus'"),
    ],
)
def test_log_sources_socmon_does_not_collect_are_reported(logsource: str, reason: str) -> None:
    rule = sigma(f"""
        title: elsewhere
        logsource: {logsource}
        detection:
            sel: {{x: 1}}
            condition: sel
    """)
    with pytest.raises(UnmappedLogsource, match="no socmon source carries") as e:
        variants(rule)
    assert reason in e.value.reason


def test_placeholders_are_expanded_from_configuration() -> None:
    rule = sigma("""
        title: admin logon
        logsource: {product: windows, service: security}
        detection:
            sel:
                EventID: 4624
                TargetUserName|expand: '%admins%'
            condition: sel
    """)
    matcher, report = Matcher.from_ruleset(
        _ruleset(rule), placeholders={"admins": ["root", "Administrator"]}
    )
    assert report.unsupported == []
    base = {"winlog": {"channel": "Security", "event_id": 4624, "event_data": {}}}
    for user, hits in (("administrator", 1), ("guest", 0)):
        base["winlog"]["event_data"] = {"TargetUserName": user}  # type: ignore[index]
        assert len(matcher.match(base)) == hits
    # Without values the rule is reported, not run.
    _, report = Matcher.from_ruleset(_ruleset(rule))
    assert [reason for _, _, reason in report.unsupported] and "placeholder" in report.unsupported[
        0
    ][2]


def _ruleset(rule: SigmaRule):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from detections.sigma.loader import LoadedRule, RuleSet

    return RuleSet(rules=[LoadedRule(Path("inline.yml"), rule)])
