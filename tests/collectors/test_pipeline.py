from pathlib import Path

import orjson

from collectors.pipeline import Pipeline, RawMessage, parse_message
from socmon.spool import Spool

FGT = (
    b'<189>date=2020-04-23 time=01:16:08 devname="fw1" devid="FG100E" logid="0000000013" '
    b'type="traffic" subtype="forward" level="notice" vd="root" eventtime=1592961368 '
    b'srcip=203.0.113.50 srcport=60899 srcintf="wan1" dstip=10.10.10.10 dstport=22 '
    b'dstintf="dmz" sessionid=1 proto=6 action="deny" policyid=0 service="SSH"'
)


def msg(data: bytes, parser: str = "auto") -> RawMessage:
    return RawMessage(
        source="syslog+udp://192.0.2.1",
        data=data,
        received_at=1_700_000_000.0,
        sender="192.0.2.1:514",
        parser=parser,
    )


def test_auto_detects_fortigate() -> None:
    doc = parse_message(msg(FGT))
    assert doc["event"]["dataset"] == "fortinet.fortigate"
    assert doc["event"]["action"] == "deny"
    assert doc["source"]["ip"] == "203.0.113.50" and doc["destination"]["port"] == 22
    assert doc["log"]["source"]["address"] == "192.0.2.1:514"
    assert doc["event"]["original"] == FGT.decode()
    assert "_parse_failure" not in doc.get("tags", [])


def test_unparseable_lines_are_kept_with_reason() -> None:
    for data, reason in [
        (b"no pri here", "neither a syslog PRI"),
        (b"<13>\xff\xfe binary", "invalid UTF-8"),
        (b"<13>bad\x00nul", "NUL"),
    ]:
        doc = parse_message(msg(data))
        assert doc["tags"] == ["_parse_failure"]
        assert reason in doc["error"]["message"]
        assert doc["event"]["original"]
        assert doc["@timestamp"] == "2023-11-14T22:13:20.000Z"


def test_forced_parser_failure_is_kept() -> None:
    doc = parse_message(msg(b"<13>plain text, not fortigate", parser="fortigate"))
    assert "_parse_failure" in doc["tags"] and doc["event"]["dataset"] == "fortinet.fortigate"
    unknown = parse_message(msg(b"<13>x", parser="nosuch"))
    assert "unknown parser" in unknown["error"]["message"]


def test_ids_are_deterministic_per_position(tmp_path: Path) -> None:
    with Spool(tmp_path / "s", consumers=["ship"]) as spool:
        pipe = Pipeline(spool)
        seqs = pipe.process([msg(FGT), msg(FGT)])
        assert len(seqs) == 2
        records = spool.reader("ship").read(10)
        ids = [orjson.loads(r.payload)["_id"] for r in records]
        # The same line twice from a socket is two events (different spool positions).
        assert len(set(ids)) == 2
        with_pos = RawMessage(
            source="file:///var/log/x", data=b"<13>a", received_at=0, position="fp:0"
        )
        pipe.process([with_pos, with_pos])
        more = spool.reader("ship").read(10)
        assert len(more) == 2
        file_ids = {orjson.loads(r.payload)["_id"] for r in more}
        # The same position twice (a replay) is one event.
        assert len(file_ids) == 1


def test_transport_notes_are_kept_on_the_event() -> None:
    cut = RawMessage(
        source="syslog+tcp://192.0.2.1",
        data=b"<13>Nov 23 10:00:00 h app: " + b"x" * 100,
        received_at=0.0,
        notes=("message of 70004 bytes cut to 65536",),
    )
    doc = parse_message(cut)
    assert "_framing" in doc["tags"] and "_parse_failure" not in doc["tags"]
    assert doc["error"]["message"] == "message of 70004 bytes cut to 65536"
    broken = parse_message(
        RawMessage(source="s", data=b"no pri", received_at=0.0, notes=("truncated frame",))
    )
    assert broken["error"]["message"].startswith("truncated frame; neither a syslog PRI")


def test_auto_detects_cisco_formats() -> None:
    from collectors import registry

    assert (
        registry.detect("<166>Jan 01 2026 10:00:00: %ASA-6-302013: Built inbound TCP connection")
        == "asa"
    )
    assert (
        registry.detect(
            "<189>12: *Mar  1 18:46:11: %LINK-3-UPDOWN: Interface Gi0/1, changed state to up"
        )
        == "ios"
    )
    assert registry.detect("<13>Nov 23 10:00:00 h sshd[1]: Accepted password") == "syslog"


def test_auto_detects_ids_and_sophos() -> None:
    from collectors import registry

    assert (
        registry.detect('{"timestamp":"2026-11-23T10:00:00Z","event_type":"alert"}') == "suricata"
    )
    assert (
        registry.detect(
            "11/23-10:00:00.000 [**] [1:2000:1] ET SCAN [**] [Priority: 2] {TCP} 1.2.3.4:1 -> 5.6.7.8:2"
        )
        == "snort"
    )
    assert (
        registry.detect('<30>device="SFW" date=2026-11-23 log_id=010101600001 device_id=C01001')
        == "sophos_xg"
    )
