from datetime import UTC, datetime, timedelta, timezone

import pytest

from collectors.parsing import ParseError, SourceContext
from collectors.syslog.parse import parse

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_rfc5424_with_structured_data() -> None:
    msg = (
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 "
        '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][meta x="a\\"b"] '
        "'su root' failed for lonvick"
    )
    doc = parse(msg, SourceContext(), now=NOW)
    s = doc["log"]["syslog"]
    assert s["facility"]["code"] == 4 and s["severity"]["code"] == 2
    assert (
        s["hostname"] == "mymachine.example.com" and s["appname"] == "su" and s["msgid"] == "ID47"
    )
    assert "procid" not in s
    assert s["structured_data"]["exampleSDID@32473"]["eventID"] == "1011"
    assert s["structured_data"]["meta"]["x"] == 'a"b'
    assert doc["message"] == "'su root' failed for lonvick"
    assert doc["@timestamp"] == "2003-10-11T22:14:15.003000Z"
    assert doc["event"]["original"] == msg


def test_rfc5424_nil_values_and_bom() -> None:
    doc = parse("<165>1 - - - - - - \ufeffhello", SourceContext(), now=NOW)
    assert doc["message"] == "hello"
    assert doc["@timestamp"].startswith("2026-11-23T12:00")


def test_rfc3164_uses_source_timezone_and_year_rollover() -> None:
    ict = timezone(timedelta(hours=7))
    doc = parse(
        "<13>Feb  5 17:32:18 web01 sshd[123]: Accepted password for root",
        SourceContext(tz=ict),
        now=NOW,
    )
    assert doc["@timestamp"] == "2026-02-05T10:32:18Z"
    assert doc["process"] == {"name": "sshd", "pid": 123}
    assert doc["host"]["hostname"] == "web01"
    assert doc["message"] == "Accepted password for root"
    january = datetime(2027, 1, 1, 0, 5, tzinfo=UTC)
    late = parse("<13>Dec 31 23:59:00 h app: x", SourceContext(), now=january)
    assert late["@timestamp"].startswith("2026-12-31")


def test_pri_then_free_text_is_kept_whole() -> None:
    doc = parse('<189>date=2020-04-23 time=01:16:08 devname="fw1"', SourceContext(), now=NOW)
    assert doc["message"] == 'date=2020-04-23 time=01:16:08 devname="fw1"'
    assert doc["log"]["syslog"]["priority"] == 189


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("", "empty"),
        ("no header at all", "neither a syslog PRI"),
        ("<999>x", "out of range"),
        ("<13>a\x00b", "NUL"),
        ("<13>1 2026-13-45T99:99:99Z host app - - - msg", "bad RFC 5424 timestamp"),
    ],
)
def test_malformed_is_a_parse_error_with_reason(message: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(message, SourceContext(), now=NOW)


def test_log_file_lines_without_pri() -> None:
    line = "Nov 23 10:00:01 web01 sshd[4242]: Failed password for root from 203.0.113.7 port 50022 ssh2"
    doc = parse(line, SourceContext(), now=NOW)
    assert doc["host"]["hostname"] == "web01" and doc["process"] == {"name": "sshd", "pid": 4242}
    assert doc["message"].startswith("Failed password for root")
    assert "priority" not in doc["log"]["syslog"]
    iso = parse("2026-11-23T10:00:01.123+07:00 web01 CRON[77]: job done", SourceContext(), now=NOW)
    assert iso["@timestamp"] == "2026-11-23T03:00:01.123000Z" and iso["process"]["name"] == "CRON"


def test_every_line_of_the_real_linux_and_ssh_samples_parses() -> None:
    from socmon.corpus import corpus_dir

    base = corpus_dir()
    if base is None:
        pytest.skip("corpus absent: set SOCMON_CORPUS (CI always has it)")
    for name in ("Linux/Linux_2k.log", "OpenSSH/OpenSSH_2k.log"):
        lines = (base / "logs" / name).read_text(encoding="utf-8", errors="replace").splitlines()
        docs = [parse(line, SourceContext(), now=NOW) for line in lines if line]
        assert len(docs) >= 1999
        assert sum(1 for d in docs if "process" in d) >= 1990, name  # a few lines carry no tag
        assert all(d["host"]["hostname"] in ("combo", "LabSZ") for d in docs), name
