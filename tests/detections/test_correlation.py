"""Sigma correlation rules on the stream of base-rule matches (detections/correlation.py).

Rules are real Sigma YAML loaded with the loader and compiled with the matcher; events are ECS
dicts (and, end to end, real OpenSSH auth log lines through the real parser).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collectors.pipeline import RawMessage, parse_message
from detections.correlation import CorrelationEngine, CorrelationReport
from detections.engine import BUILTIN_RULES
from detections.sigma.loader import load_rules
from detections.sigma.matcher import Matcher
from socmon.corpus import corpus_path

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
SSH_BRUTE_FORCE = "5c17bb39-c8fa-497a-b9cc-bf6f97b5d59b"
SSH_FAILURE = "aef338a8-0397-4827-83e8-26887dffa43f"
PORT_SCAN = "a9c23311-eed8-49ad-a562-4328a598c6a1"
PORT_DENIED = "da62e527-e477-4c67-bd65-cddeeb4e54b1"

BASE = """
title: Login failure
id: 00000000-0000-4000-8000-000000000001
name: login_failure
logsource: {product: test}
detection:
    selection: {event.action: login, event.outcome: failure}
    condition: selection
---
title: Login success
id: 00000000-0000-4000-8000-000000000002
name: login_success
logsource: {product: test}
detection:
    selection: {event.action: login, event.outcome: success}
    condition: selection
---
title: Denied connection
id: 00000000-0000-4000-8000-000000000003
name: denied
logsource: {product: test}
detection:
    selection: {event.action: deny}
    condition: selection
---
title: Server error
id: 00000000-0000-4000-8000-000000000004
name: server_error
logsource: {product: test}
detection:
    selection: {http.response.status_code: 500}
    condition: selection
---
title: Outbound connection
id: 00000000-0000-4000-8000-000000000005
name: outbound
logsource: {product: test}
detection:
    selection: {event.action: connect}
    condition: selection
"""


def correlation(
    body: str, *, title: str = "Corr", cid: str = "c0000000-0000-4000-8000-00000000000c"
) -> str:
    return f"title: {title}\nid: {cid}\nlevel: high\ntags: [attack.t1110]\ncorrelation:\n{body}"


class Harness:
    """Loader + matcher + correlation engine over rule text, fed with ECS events."""

    def __init__(self, tmp_path: Path, *docs: str, **options: Any) -> None:
        path = tmp_path / "rules.yml"
        path.write_text("\n---\n".join([BASE, *docs]))
        self.ruleset = load_rules([path])
        assert not self.ruleset.errors, self.ruleset.errors
        self.matcher, compile_report = Matcher.from_ruleset(self.ruleset)
        assert not compile_report.unsupported
        options.setdefault("clock", lambda: T0.timestamp() + 10 * 86400)
        self.engine, self.report = CorrelationEngine.from_ruleset(
            self.ruleset, compile_report.compiled, **options
        )
        self.alerts: list[dict[str, Any]] = []
        self._n = 0

    def rule(self, rule_id: str) -> Any:
        return next(r for r in self.matcher.rules if r.id == rule_id)

    def send(self, seconds: float, **fields: Any) -> list[dict[str, Any]]:
        self._n += 1
        event: dict[str, Any] = {
            "@timestamp": (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z"),
            "_id": f"ev{self._n}",
        }
        for dotted, value in fields.items():
            node = event
            *parents, leaf = dotted.split("__")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        matched = self.matcher.match(event)
        out = self.engine.feed_matches(matched, event) if matched else []
        out += self.engine.advance(event)
        self.alerts.extend(out)
        return out


def failure(
    h: Harness, t: float, ip: str = "203.0.113.9", user: str = "root"
) -> list[dict[str, Any]]:
    return h.send(
        t, event__action="login", event__outcome="failure", source__ip=ip, user__name=user
    )


def success(
    h: Harness, t: float, ip: str = "203.0.113.9", user: str = "root"
) -> list[dict[str, Any]]:
    return h.send(
        t, event__action="login", event__outcome="success", source__ip=ip, user__name=user
    )


EVENT_COUNT = correlation(
    """    type: event_count
    rules: [login_failure]
    group-by: [source.ip]
    timespan: 5m
    condition: {gte: 10}
"""
)


# --------------------------------------------------------------------------- event_count


def test_event_count_fires_at_n_not_at_n_minus_1(tmp_path: Path) -> None:
    h = Harness(tmp_path, EVENT_COUNT)
    for i in range(9):
        assert failure(h, i * 10) == []
    fired = failure(h, 90)
    assert len(fired) == 1
    alert = fired[0]
    assert alert["rule"]["id"] == "c0000000-0000-4000-8000-00000000000c"
    assert alert["rule"]["name"] == "Corr"
    assert alert["socmon"]["alert"]["level"] == "high"
    assert alert["tags"] == ["attack.t1110"]
    assert alert["socmon"]["alert"]["group_by"] == ["source.ip"]
    assert alert["source"]["ip"] == "203.0.113.9"
    corr = alert["socmon"]["correlation"]
    assert corr["type"] == "event_count" and corr["count"] == 10
    assert corr["event_ids"] == [f"ev{i}" for i in range(1, 11)]
    assert corr["first"] == "2026-01-05T12:00:00.000Z"
    assert corr["last"] == alert["@timestamp"] == "2026-01-05T12:01:30.000Z"
    assert alert["event"]["start"] == corr["first"] and alert["event"]["kind"] == "alert"
    assert alert["_id"] == alert["socmon"]["alert"]["id"]


def test_event_count_window_boundary(tmp_path: Path) -> None:
    """Ten events spanning exactly the timespan fire; spanning one second more do not."""
    h = Harness(tmp_path, EVENT_COUNT)
    for i in range(9):
        failure(h, i, ip="198.51.100.1")
    assert len(failure(h, 300, ip="198.51.100.1")) == 1  # span 0..300 = 5m, inclusive

    for i in range(9):
        failure(h, 1000 + i, ip="198.51.100.2")
    assert failure(h, 1000 + 301, ip="198.51.100.2") == []  # first event now outside


def test_event_count_one_alert_per_window(tmp_path: Path) -> None:
    h = Harness(tmp_path, EVENT_COUNT)
    fired = [a for i in range(40) for a in failure(h, i)]  # 40 failures in 40 s
    assert len(fired) == 1
    # The attack goes on after the window has moved past: one more alert, with new events.
    later = [a for i in range(10) for a in failure(h, 400 + i)]
    assert len(later) == 1
    first_ids = set(fired[0]["socmon"]["correlation"]["event_ids"])
    assert first_ids.isdisjoint(later[0]["socmon"]["correlation"]["event_ids"])
    assert later[0]["_id"] != fired[0]["_id"]


def test_event_count_groups_are_separate(tmp_path: Path) -> None:
    h = Harness(tmp_path, EVENT_COUNT)
    for i in range(9):
        failure(h, i, ip="192.0.2.1")
        failure(h, i, ip="192.0.2.2")
    assert h.alerts == []
    fired = failure(h, 20, ip="192.0.2.2")
    assert [a["source"]["ip"] for a in fired] == ["192.0.2.2"]
    assert failure(h, 21, ip="192.0.2.3") == []


def test_event_without_group_field_is_skipped(tmp_path: Path) -> None:
    h = Harness(tmp_path, EVENT_COUNT)
    for i in range(12):
        h.send(i, event__action="login", event__outcome="failure")
    assert h.alerts == []
    assert h.engine.stats["skipped:missing_group_field"] == 12


def test_an_event_matching_two_referenced_rules_counts_once(tmp_path: Path) -> None:
    doc = """
title: Root login failure
id: 00000000-0000-4000-8000-000000000009
name: root_failure
logsource: {product: test}
detection:
    selection: {event.action: login, event.outcome: failure, user.name: root}
    condition: selection
"""
    h = Harness(
        tmp_path,
        doc,
        correlation(
            """    type: event_count
    rules: [login_failure, root_failure]
    group-by: [source.ip]
    timespan: 5m
    condition: {gte: 3}
"""
        ),
    )
    failure(h, 0)
    failure(h, 1)
    assert h.alerts == []
    assert len(failure(h, 2)) == 1


# --------------------------------------------------------------------------- value_count

VALUE_COUNT = correlation(
    """    type: value_count
    rules: [denied]
    group-by: [source.ip]
    timespan: 1m
    condition: {field: destination.port, gte: 20}
"""
)


def deny(h: Harness, t: float, port: int, ip: str = "203.0.113.50") -> list[dict[str, Any]]:
    return h.send(t, event__action="deny", source__ip=ip, destination__port=port)


def test_value_count_counts_distinct_values(tmp_path: Path) -> None:
    h = Harness(tmp_path, VALUE_COUNT)
    for i in range(19):
        deny(h, i, 1000 + i)
        deny(h, i, 1000 + i)  # the same port again adds nothing
    assert h.alerts == []
    fired = deny(h, 30, 2000)
    assert len(fired) == 1
    corr = fired[0]["socmon"]["correlation"]
    assert corr["count"] == 20 and corr["field"] == "destination.port"
    assert sorted(corr["values"]) == sorted(str(p) for p in [*range(1000, 1019), 2000])


def test_value_count_outside_timespan(tmp_path: Path) -> None:
    h = Harness(tmp_path, VALUE_COUNT)
    for i in range(19):
        deny(h, i, 1000 + i)
    assert deny(h, 61, 2000) == []  # port 1000 (t=0) is more than 1 minute before
    assert len(deny(h, 62, 2001)) == 0  # 1001 left too: still 19
    assert len(deny(h, 63, 2002)) == 0
    # A port seen again refreshes its time.
    assert len(deny(h, 64, 1018)) == 0


def test_value_count_missing_field_is_skipped(tmp_path: Path) -> None:
    h = Harness(tmp_path, VALUE_COUNT)
    h.send(0, event__action="deny", source__ip="203.0.113.50")
    assert h.engine.stats["skipped:missing_value_field"] == 1


# --------------------------------------------------------------------------- temporal

TEMPORAL = correlation(
    """    type: {type}
    rules: [login_failure, login_success]
    group-by: [user.name]
    timespan: 10m
"""
)


def test_temporal_any_order(tmp_path: Path) -> None:
    h = Harness(tmp_path, TEMPORAL.replace("{type}", "temporal"))
    assert success(h, 0, user="alice") == []
    fired = failure(h, 599, user="alice")
    assert len(fired) == 1
    corr = fired[0]["socmon"]["correlation"]
    assert corr["count"] == 2 and fired[0]["user"]["name"] == "alice"
    assert set(corr["rules"]) == {
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
    }


def test_temporal_outside_timespan_and_single_rule(tmp_path: Path) -> None:
    h = Harness(tmp_path, TEMPORAL.replace("{type}", "temporal"))
    for i in range(5):
        failure(h, i, user="bob")  # one rule only, many times: not enough
    assert h.alerts == []
    assert success(h, 4 + 601, user="bob") == []  # last failure 601 s earlier
    assert success(h, 700, user="carol") == []  # another user


def test_temporal_ordered_needs_the_order(tmp_path: Path) -> None:
    h = Harness(tmp_path, TEMPORAL.replace("{type}", "temporal_ordered"))
    success(h, 0, user="dave")
    assert failure(h, 10, user="dave") == []  # success before failure: wrong order
    fired = success(h, 20, user="dave")  # failure(10) -> success(20)
    assert len(fired) == 1
    assert fired[0]["socmon"]["correlation"]["event_ids"] == ["ev2", "ev3"]

    h2 = Harness(tmp_path, TEMPORAL.replace("{type}", "temporal"))
    success(h2, 0, user="dave")
    assert len(failure(h2, 10, user="dave")) == 1  # unordered: fires at once


def test_temporal_ordered_with_out_of_order_arrival(tmp_path: Path) -> None:
    """Within the lateness, an earlier failure arriving after the success still orders."""
    h = Harness(tmp_path, TEMPORAL.replace("{type}", "temporal_ordered"))
    success(h, 100, user="erin")
    assert len(failure(h, 50, user="erin")) == 1


def test_temporal_ordered_partial_condition_is_unsupported(tmp_path: Path) -> None:
    rule = TEMPORAL.replace("{type}", "temporal_ordered") + "    condition: {gte: 1}\n"
    h = Harness(tmp_path, rule)
    assert h.engine.correlations == []
    assert "temporal_ordered needs every referenced rule" in h.report.unsupported[0][2]


# --------------------------------------------------------------------------- aliases


def test_aliases_map_fields_per_rule(tmp_path: Path) -> None:
    h = Harness(
        tmp_path,
        correlation(
            """    type: temporal
    rules: [server_error, outbound]
    group-by: [internal_ip]
    timespan: 10s
    aliases:
        internal_ip:
            server_error: destination.ip
            outbound: source.ip
"""
        ),
    )
    h.send(0, http__response__status_code=500, destination__ip="10.0.0.5", source__ip="1.2.3.4")
    assert h.send(5, event__action="connect", source__ip="10.0.0.6") == []  # other host
    fired = h.send(6, event__action="connect", source__ip="10.0.0.5", destination__ip="1.2.3.4")
    assert len(fired) == 1
    assert fired[0]["internal_ip"] == "10.0.0.5"
    assert fired[0]["socmon"]["alert"]["group_by"] == ["internal_ip"]
    assert fired[0]["socmon"]["correlation"]["group"] == {"internal_ip": "10.0.0.5"}


def test_alias_naming_an_unreferenced_rule_is_reported(tmp_path: Path) -> None:
    h = Harness(
        tmp_path,
        correlation(
            """    type: temporal
    rules: [server_error, outbound]
    group-by: [internal_ip]
    timespan: 10s
    aliases:
        internal_ip:
            server_error: destination.ip
            denied: source.ip
"""
        ),
    )
    assert h.engine.correlations == []
    ((rule_id, path, reason),) = h.report.unsupported
    assert rule_id == "c0000000-0000-4000-8000-00000000000c" and path is not None
    assert "alias 'internal_ip'" in reason


# --------------------------------------------------------------------------- event time


def test_late_events_are_counted_and_not_used(tmp_path: Path) -> None:
    h = Harness(tmp_path, EVENT_COUNT, lateness=60)
    for i in range(9):
        failure(h, 1000 + i)
    h.send(2000, event__action="other")  # event time moves on: watermark 1940
    assert failure(h, 1009) == []  # would be the 10th, but it is late
    assert h.engine.stats["late"] == 1
    # Within the lateness an out-of-order event still counts.
    for i in range(9):
        failure(h, 1950 + i, ip="192.0.2.77")
    h.send(2001, event__action="other")
    assert len(failure(h, 1945, ip="192.0.2.77")) == 1
    assert h.engine.stats["late"] == 1


def test_events_far_in_the_future_do_not_move_the_watermark(tmp_path: Path) -> None:
    h = Harness(tmp_path, EVENT_COUNT, lateness=60, clock=lambda: T0.timestamp() + 100)
    failure(h, 10)
    failure(h, 10 * 86400, ip="192.0.2.200")  # a device whose clock is ten days ahead
    assert h.engine.stats["future"] == 1
    for i in range(9):
        failure(h, 11 + i)
    assert h.engine.stats["late"] == 0
    assert [a["source"]["ip"] for a in h.alerts] == ["203.0.113.9"]


def test_idle_groups_are_evicted(tmp_path: Path) -> None:
    h = Harness(tmp_path, EVENT_COUNT, lateness=60)
    for n in range(5):
        failure(h, n, ip=f"192.0.2.{n}")
    assert h.engine.group_count() == 5
    h.send(300 + 60, event__action="other")  # timespan + lateness after the last: not yet
    assert h.engine.group_count() == 5
    h.send(300 + 60 + 5, event__action="other")
    assert h.engine.group_count() == 0
    assert h.engine.stats["evicted:idle"] == 5


def test_group_cap_evicts_least_recently_used(tmp_path: Path) -> None:
    h = Harness(tmp_path, EVENT_COUNT, max_groups=2)
    for i in range(9):
        failure(h, i, ip="192.0.2.1")
    failure(h, 10, ip="192.0.2.2")
    failure(h, 11, ip="192.0.2.3")  # evicts 192.0.2.1, the least recently used
    assert h.engine.group_count() == 2
    assert h.engine.stats["evicted:cap"] == 1
    assert failure(h, 12, ip="192.0.2.1") == []  # its nine failures are gone


def test_lt_condition_is_decided_when_the_window_closes(tmp_path: Path) -> None:
    h = Harness(
        tmp_path,
        correlation(
            """    type: event_count
    rules: [login_success]
    group-by: [user.name]
    timespan: 1m
    condition: {lt: 3}
"""
        ),
        lateness=10,
    )
    success(h, 0, user="rare")
    success(h, 30, user="rare")
    for i in range(3):
        success(h, 5 + i, user="busy")
    assert h.alerts == []
    h.send(60 + 10, event__action="other")  # watermark 60: window [0, 60] not over yet
    assert h.alerts == []
    fired = h.send(71, event__action="other")
    assert [(a["user"]["name"], a["socmon"]["correlation"]["count"]) for a in fired] == [
        ("rare", 2)
    ]


# --------------------------------------------------------------------------- generate, chaining


def test_generate_decides_whether_base_rules_alert(tmp_path: Path) -> None:
    h = Harness(tmp_path, EVENT_COUNT)
    assert not h.engine.generates(h.rule("00000000-0000-4000-8000-000000000001"))
    assert h.engine.generates(h.rule("00000000-0000-4000-8000-000000000002"))

    generating = EVENT_COUNT.replace("type: event_count", "type: event_count\n    generate: true")
    h2 = Harness(tmp_path, generating)
    assert h2.engine.generates(h2.rule("00000000-0000-4000-8000-000000000001"))


def test_unsupported_correlations_are_reported_and_silence_nothing(tmp_path: Path) -> None:
    unknown = correlation(
        """    type: event_count
    rules: [no_such_rule]
    group-by: [source.ip]
    timespan: 5m
    condition: {gte: 2}
""",
        cid="c0000000-0000-4000-8000-000000000001",
    )
    value_sum = correlation(
        """    type: value_sum
    rules: [denied]
    group-by: [source.ip]
    timespan: 5m
    condition: {field: network.bytes, gte: 2}
""",
        cid="c0000000-0000-4000-8000-000000000002",
    )
    extended = correlation(
        """    type: temporal
    rules: [login_failure, login_success]
    group-by: [user.name]
    timespan: 5m
    condition: login_failure and not login_success
""",
        cid="c0000000-0000-4000-8000-000000000003",
    )
    cycle_a = """title: A
id: c0000000-0000-4000-8000-000000000004
name: cycle_a
correlation:
    type: event_count
    rules: [cycle_b]
    group-by: [source.ip]
    timespan: 5m
    condition: {gte: 2}
"""
    cycle_b = cycle_a.replace("title: A", "title: B").replace(
        "04\nname: cycle_a", "05\nname: cycle_b"
    )
    cycle_b = cycle_b.replace("rules: [cycle_b]", "rules: [cycle_a]")
    h = Harness(tmp_path, unknown, value_sum, extended, cycle_a, cycle_b)
    reasons = {rid[-2:]: reason for rid, _path, reason in h.report.unsupported}
    assert set(reasons) == {"01", "02", "03", "04", "05"}
    assert "'no_such_rule' not found" in reasons["01"]
    assert "value_sum" in reasons["02"]
    assert "extended" in reasons["03"]
    assert "cycle" in reasons["04"] and "cycle" in reasons["05"]
    assert h.engine.correlations == []
    # None of them runs, so none silences the rules it references.
    assert all(h.engine.generates(rule) for rule in h.matcher.rules)


def test_reference_to_an_uncompiled_rule_gives_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(
        """title: Keyword number
id: 00000000-0000-4000-8000-0000000000aa
name: numeric_keyword
logsource: {product: test}
detection:
    keywords: [42]
    condition: keywords
---
"""
        + correlation(
            """    type: event_count
    rules: [numeric_keyword]
    group-by: [source.ip]
    timespan: 5m
    condition: {gte: 2}
"""
        )
    )
    ruleset = load_rules([path])
    _matcher, compile_report = Matcher.from_ruleset(ruleset)
    assert compile_report.unsupported
    _engine, report = CorrelationEngine.from_ruleset(ruleset, compile_report.compiled)
    assert isinstance(report, CorrelationReport)
    ((_rid, _p, reason),) = report.unsupported
    assert "'numeric_keyword' is not evaluated by the matcher" in reason


def test_chained_correlations(tmp_path: Path) -> None:
    """The specification's example: many failed logins, then a success of the same user."""
    inner = """title: Multiple failed logins
id: c0000000-0000-4000-8000-0000000000f1
name: many_failures
correlation:
    type: event_count
    rules: [login_failure]
    group-by: [user.name]
    timespan: 10m
    condition: {gte: 3}
"""
    outer = correlation(
        """    type: temporal_ordered
    rules: [many_failures, login_success]
    group-by: [user.name]
    timespan: 10m
""",
        title="Failed logins followed by success",
    )
    h = Harness(tmp_path, inner, outer)
    inner_corr = next(c for c in h.engine.correlations if c.type == "event_count")
    assert not h.engine.generates(inner_corr)  # only the outermost alerts
    assert not h.engine.generates(h.rule("00000000-0000-4000-8000-000000000001"))
    success(h, 0, user="frank")
    for i in range(3):
        failure(h, 10 + i, user="frank", ip=f"192.0.2.{i}")
    assert h.alerts == []  # inner fired, silently
    assert h.engine.stats["alerts"] == 1
    fired = success(h, 100, user="frank")
    assert [a["rule"]["name"] for a in fired] == ["Failed logins followed by success"]
    assert fired[0]["user"]["name"] == "frank"


# --------------------------------------------------------------------------- own rules, end to end


def _ssh_lines() -> list[str]:
    path = corpus_path("logs", "OpenSSH", "OpenSSH_2k.log")
    return path.read_text(encoding="utf-8").splitlines()


# sshd's "Failed <method> for [invalid user ]<user> from <ip> port <port>"; the user name may
# hold spaces ("invalid user  0101").
_FAILED = re.compile(
    r"^(\w+ +\d+ [\d:]+) \S+ sshd\[\d+\]: Failed \S+ for (?:invalid user )?.+? from (\S+) port"
)


def _expected_brute_force(lines: Iterable[str], year: int) -> set[str]:
    """Independently: source IPs with >= 10 `Failed` lines within some 300 s window."""
    times: dict[str, list[datetime]] = {}
    for line in lines:
        m = _FAILED.match(line)
        if m:
            ts = datetime.strptime(f"{year} {m[1]}", "%Y %b %d %H:%M:%S")
            times.setdefault(m[2], []).append(ts)
    found = set()
    for ip, stamps in times.items():
        stamps.sort()
        for i in range(len(stamps) - 9):
            if stamps[i + 9] - stamps[i] <= timedelta(seconds=300):
                found.add(ip)
    return found


def test_ssh_brute_force_from_real_auth_log(tmp_path: Path) -> None:
    lines = _ssh_lines()
    ruleset = load_rules([BUILTIN_RULES])
    matcher, compile_report = Matcher.from_ruleset(ruleset)
    engine, report = CorrelationEngine.from_ruleset(
        ruleset, compile_report.compiled, clock=lambda: datetime(2100, 1, 1).timestamp()
    )
    assert SSH_BRUTE_FORCE in {c.id for c in report.compiled}
    failure_rule = next(r for r in matcher.rules if r.id == SSH_FAILURE)
    assert not engine.generates(failure_rule)

    alerts: list[dict[str, Any]] = []
    base_matches = 0
    for n, line in enumerate(lines):
        event = parse_message(
            RawMessage(
                source="file:///var/log/auth.log",
                data=line.encode(),
                received_at=0.0,
                parser="linux_auth",
            )
        )
        event["_id"] = f"line{n}"
        matched = matcher.match(event)
        base_matches += failure_rule in matched
        alerts += engine.feed_matches(matched, event)
        alerts += engine.advance(event)
    year = int(alerts[0]["@timestamp"][:4]) if alerts else datetime.now(UTC).year
    expected = _expected_brute_force(lines, year)
    assert expected, "the corpus has brute force sources"
    assert base_matches == sum(1 for line in lines if _FAILED.match(line))
    brute = [a for a in alerts if a["rule"]["id"] == SSH_BRUTE_FORCE]
    assert {a["source"]["ip"] for a in brute} == expected
    for alert in brute:
        corr = alert["socmon"]["correlation"]
        # The first alert of a source fires at its 10th failure; after a quiet window the next
        # one reports every failure of its window.
        assert corr["count"] >= 10 and len(corr["event_ids"]) == min(corr["count"], 100)
        span = datetime.fromisoformat(corr["last"]) - datetime.fromisoformat(corr["first"])
        assert span <= timedelta(minutes=5)
        assert alert["socmon"]["alert"]["level"] == "high"
        assert "socmon.group.a4" in alert["socmon"]["alert"]["tags"]
    first_alerts = {a["source"]["ip"]: a for a in reversed(brute)}
    assert all(a["socmon"]["correlation"]["count"] == 10 for a in first_alerts.values())
    # One alert per window: the busiest source (hundreds of failures) is not alerted per event.
    per_ip: dict[str, int] = {}
    for a in brute:
        per_ip[a["source"]["ip"]] = per_ip.get(a["source"]["ip"], 0) + 1
    assert max(per_ip.values()) < base_matches / 10


def test_fortigate_port_scan_rule(tmp_path: Path) -> None:
    ruleset = load_rules([BUILTIN_RULES])
    matcher, compile_report = Matcher.from_ruleset(ruleset)
    engine, report = CorrelationEngine.from_ruleset(ruleset, compile_report.compiled)
    assert PORT_SCAN in {c.id for c in report.compiled}

    def line(src: str, port: int, second: int, action: str = "deny") -> RawMessage:
        text = (
            f'<189>date=2026-11-23 time=10:00:{second:02d} devname="fw-dc" devid="FG100E" '
            f'logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" '
            f'srcip={src} srcport=51000 srcintf="wan1" dstip=10.0.0.5 dstport={port} '
            f'dstintf="dmz" sessionid=1 proto=6 action="{action}" policyid=0 service="x"'
        )
        return RawMessage(source="syslog+udp://192.0.2.1", data=text.encode(), received_at=0.0)

    feed: Callable[[RawMessage, str], list[dict[str, Any]]]

    def feed(msg: RawMessage, eid: str) -> list[dict[str, Any]]:
        event = parse_message(msg)
        event["_id"] = eid
        return engine.feed_matches(matcher.match(event), event)

    out: list[dict[str, Any]] = []
    for p in range(19):
        out += feed(line("203.0.113.66", 7000 + p, p), f"a{p}")
        out += feed(line("203.0.113.67", 7000 + p, p, action="accept"), f"b{p}")  # allowed
    assert [a for a in out if a["rule"]["id"] == PORT_SCAN] == []
    fired = [
        a for a in feed(line("203.0.113.66", 8000, 30), "a-last") if a["rule"]["id"] == PORT_SCAN
    ]
    assert len(fired) == 1
    assert fired[0]["source"]["ip"] == "203.0.113.66"
    assert fired[0]["socmon"]["correlation"]["count"] == 20
    denied = next(r for r in matcher.rules if r.id == PORT_DENIED)
    assert not engine.generates(denied)


@pytest.mark.parametrize(
    "rule_file", ["linux/ssh_brute_force.yml", "network/fortigate_port_scan.yml"]
)
def test_own_correlation_files_load_cleanly(rule_file: str) -> None:
    ruleset = load_rules([BUILTIN_RULES / rule_file])
    assert not ruleset.errors and len(ruleset.correlations) == 1 and len(ruleset.rules) == 1
