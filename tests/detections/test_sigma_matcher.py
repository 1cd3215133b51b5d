"""The streaming Sigma matcher: one test per modifier/feature, positive and negative.

Every rule here is real YAML parsed by pySigma; nothing is mocked.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule

from detections.sigma import (
    CompiledRule,
    Matcher,
    UnsupportedRule,
    compile_rule,
    load_rules,
)
from socmon.corpus import corpus_dir
from socmon.errors import SocmonError

RULES_DIR = Path(__file__).resolve().parents[2] / "detections" / "rules"
DC_ADMIN_PORT_RULE = RULES_DIR / "network" / "fortigate_dc_admin_port_denied.yml"
ADMIN_LOGIN_RULE = RULES_DIR / "network" / "fortigate_admin_login_failure.yml"


def sigma_rule(detection: str, **header: Any) -> SigmaRule:
    """A pySigma rule from a YAML detection block (plus optional top-level keys)."""
    doc: dict[str, Any] = {
        "title": header.pop("title", "test rule"),
        "id": header.pop("id", "5a1b8a3e-0c4f-4d55-9a53-2f0d9c7a1e01"),
        "logsource": header.pop("logsource", {"product": "test"}),
        **header,
    }
    text = yaml.safe_dump(doc) + "detection:\n" + textwrap.indent(textwrap.dedent(detection), "  ")
    return SigmaCollection.from_yaml(text).rules[0]  # type: ignore[return-value]


def rule(detection: str, **header: Any) -> CompiledRule:
    return compile_rule(sigma_rule(detection, **header))


# ---------------------------------------------------------------------------------------------
# Strings


def test_plain_string_is_exact_and_case_insensitive() -> None:
    r = rule("""
        sel:
          event.action: Deny
        condition: sel
    """)
    assert r.matches({"event": {"action": "deny"}})
    assert r.matches({"event": {"action": "DENY"}})
    assert not r.matches({"event": {"action": "denied"}})
    assert not r.matches({"event": {"action": "xdeny"}})
    assert not r.matches({})


def test_cased_modifier_is_case_sensitive() -> None:
    r = rule("""
        sel:
          user.name|cased: Admin
        condition: sel
    """)
    assert r.matches({"user": {"name": "Admin"}})
    assert not r.matches({"user": {"name": "admin"}})
    contains = rule("""
        sel:
          message|contains|cased: EVIL
        condition: sel
    """)
    assert contains.matches({"message": "an EVIL thing"})
    assert not contains.matches({"message": "an evil thing"})


def test_wildcards_star_and_question_mark() -> None:
    r = rule("""
        sel:
          process.name: 'p?wer*.exe'
        condition: sel
    """)
    assert r.matches({"process": {"name": "PowerShell.exe"}})
    assert r.matches({"process": {"name": "pxwer.exe"}})
    assert not r.matches({"process": {"name": "pwer.exe"}})  # ? needs exactly one character
    assert not r.matches({"process": {"name": "powershell.exe.bak"}})
    middle = rule("""
        sel:
          url.path: '/a*/b*/c'
        condition: sel
    """)
    assert middle.matches({"url": {"path": "/a1/b2/c"}})
    assert middle.matches({"url": {"path": "/a/b/c"}})
    assert not middle.matches({"url": {"path": "/a1/c/b2"}})
    assert not middle.matches({"url": {"path": "/a/b/cd"}})


def test_escaped_wildcards_are_literal() -> None:
    r = rule(r"""
        sel:
          file.name: 'report\*.txt'
        condition: sel
    """)
    assert r.matches({"file": {"name": "report*.txt"}})
    assert not r.matches({"file": {"name": "report2024.txt"}})
    q = rule(r"""
        sel:
          url.query: 'id=1\?'
        condition: sel
    """)
    assert q.matches({"url": {"query": "id=1?"}})
    assert not q.matches({"url": {"query": "id=12"}})


def test_a_lone_star_matches_any_present_value() -> None:
    r = rule("""
        sel:
          user.name: '*'
        condition: sel
    """)
    assert r.matches({"user": {"name": "bob"}})
    assert r.matches({"user": {"name": ""}})
    assert not r.matches({"user": {}})
    assert not r.matches({"user": {"name": None}})


def test_empty_string_matches_only_empty_string() -> None:
    r = rule("""
        sel:
          user.name: ''
        condition: sel
    """)
    assert r.matches({"user": {"name": ""}})
    assert not r.matches({"user": {"name": "x"}})
    assert not r.matches({})


def test_contains_startswith_endswith() -> None:
    contains = rule("""
        sel:
          process.command_line|contains: ' -EncodedCommand '
        condition: sel
    """)
    assert contains.matches({"process": {"command_line": "powershell -encodedcommand AAA"}})
    assert not contains.matches({"process": {"command_line": "powershell -enc AAA"}})
    starts = rule("""
        sel:
          process.executable|startswith: 'C:\\Users\\'
        condition: sel
    """)
    assert starts.matches({"process": {"executable": "c:\\users\\bob\\a.exe"}})
    assert not starts.matches({"process": {"executable": "D:\\c:\\users\\a.exe"}})
    ends = rule("""
        sel:
          process.executable|endswith: '\\cmd.exe'
        condition: sel
    """)
    assert ends.matches({"process": {"executable": "C:\\Windows\\System32\\CMD.EXE"}})
    assert not ends.matches({"process": {"executable": "C:\\Windows\\cmd.exe.bak"}})


def test_prefix_and_suffix_together_need_room_for_both() -> None:
    r = rule("""
        sel:
          host.name: 'ab*ba'
        condition: sel
    """)
    assert r.matches({"host": {"name": "abba"}})
    assert r.matches({"host": {"name": "ab-x-ba"}})
    assert not r.matches({"host": {"name": "aba"}})  # prefix and suffix would overlap


def test_value_list_is_or() -> None:
    r = rule("""
        sel:
          process.name:
            - cmd.exe
            - powershell.exe
          process.args|endswith:
            - .ps1
            - .bat
        condition: sel
    """)
    assert r.matches({"process": {"name": "cmd.exe", "args": "x.bat"}})
    assert r.matches({"process": {"name": "POWERSHELL.EXE", "args": "a.PS1"}})
    assert not r.matches({"process": {"name": "bash", "args": "x.bat"}})
    assert not r.matches({"process": {"name": "cmd.exe", "args": "x.sh"}})


def test_all_modifier_is_and() -> None:
    r = rule("""
        sel:
          process.command_line|contains|all:
            - ' -nop '
            - ' -w hidden '
        condition: sel
    """)
    assert r.matches({"process": {"command_line": "powershell -nop -w hidden -c x"}})
    assert r.matches({"process": {"command_line": "powershell -W HIDDEN -x -NOP -c"}})
    assert not r.matches({"process": {"command_line": "powershell -nop -c x"}})


def test_string_values_match_numbers_and_booleans_by_their_text() -> None:
    r = rule("""
        sel:
          winlog.event_id: '4624'
          winlog.flag: 'true'
        condition: sel
    """)
    assert r.matches({"winlog": {"event_id": 4624, "flag": True}})
    assert r.matches({"winlog": {"event_id": "4624", "flag": "TRUE"}})
    assert not r.matches({"winlog": {"event_id": 4625, "flag": True}})
    assert not r.matches({"winlog": {"event_id": 4624, "flag": False}})


# ---------------------------------------------------------------------------------------------
# Other value types


def test_numbers_compare_numerically_and_accept_numeric_strings() -> None:
    r = rule("""
        sel:
          destination.port: 22
        condition: sel
    """)
    assert r.matches({"destination": {"port": 22}})
    assert r.matches({"destination": {"port": 22.0}})
    assert r.matches({"destination": {"port": "22"}})
    assert r.matches({"destination": {"port": " 22 "}})
    assert not r.matches({"destination": {"port": 2222}})
    assert not r.matches({"destination": {"port": "22a"}})
    assert not r.matches({"destination": {"port": "0x16"}})
    assert not r.matches({"destination": {"port": True}})
    floats = rule("""
        sel:
          metric: 1.5
        condition: sel
    """)
    assert floats.matches({"metric": "1.50"})
    assert not floats.matches({"metric": 1})


def test_booleans() -> None:
    r = rule("""
        sel:
          tls.established: true
        condition: sel
    """)
    assert r.matches({"tls": {"established": True}})
    assert r.matches({"tls": {"established": "True"}})
    assert not r.matches({"tls": {"established": False}})
    assert not r.matches({"tls": {"established": 1}})
    assert not r.matches({})
    false = rule("""
        sel:
          tls.established: false
        condition: sel
    """)
    assert false.matches({"tls": {"established": False}})
    assert not false.matches({"tls": {"established": True}})


def test_null_matches_absent_or_none() -> None:
    r = rule("""
        sel:
          event.action: deny
          user.name: null
        condition: sel
    """)
    assert r.matches({"event": {"action": "deny"}})
    assert r.matches({"event": {"action": "deny"}, "user": {"name": None}})
    assert r.matches({"event": {"action": "deny"}, "user": {"name": []}})
    assert not r.matches({"event": {"action": "deny"}, "user": {"name": "bob"}})
    assert not r.matches({"event": {"action": "deny"}, "user": {"name": ""}})


def test_exists_modifier() -> None:
    present = rule("""
        sel:
          user.name|exists: true
        condition: sel
    """)
    absent = rule("""
        sel:
          user.name|exists: false
        condition: sel
    """)
    assert present.matches({"user": {"name": "bob"}})
    assert present.matches({"user": {"name": ""}})
    # Sigma: exists checks presence only, "be it empty or null".
    assert present.matches({"user": {"name": None}})
    assert not present.matches({"user": {}})
    assert absent.matches({"user": {}})
    assert absent.matches({})
    assert not absent.matches({"user": {"name": "bob"}})


def test_regular_expression_and_flags() -> None:
    r = rule("""
        sel:
          process.command_line|re: '\\s-[eE]nc\\s'
        condition: sel
    """)
    assert r.matches({"process": {"command_line": "powershell -enc AAA"}})  # searched, unanchored
    assert not r.matches({"process": {"command_line": "powershell -ENC AAA"}})  # case-sensitive
    i = rule("""
        sel:
          process.command_line|re|i: '^powershell'
        condition: sel
    """)
    assert i.matches({"process": {"command_line": "PowerShell -c x"}})
    assert not i.matches({"process": {"command_line": "cmd /c powershell"}})
    m = rule("""
        sel:
          message|re|m: '^second$'
        condition: sel
    """)
    assert m.matches({"message": "first\nsecond\nthird"})
    no_m = rule("""
        sel:
          message|re: '^second$'
        condition: sel
    """)
    assert not no_m.matches({"message": "first\nsecond\nthird"})
    s = rule("""
        sel:
          message|re|s: 'begin.end'
        condition: sel
    """)
    assert s.matches({"message": "begin\nend"})
    no_s = rule("""
        sel:
          message|re: 'begin.end'
        condition: sel
    """)
    assert not no_s.matches({"message": "begin\nend"})


def test_cidr_ipv4_and_ipv6() -> None:
    r = rule("""
        sel:
          source.ip|cidr:
            - 10.0.0.0/8
            - 2001:db8::/32
        condition: sel
    """)
    assert r.matches({"source": {"ip": "10.1.2.3"}})
    assert r.matches({"source": {"ip": "2001:db8::1"}})
    assert r.matches({"source": {"ip": "::ffff:10.0.0.1"}})  # IPv4-mapped IPv6 is IPv4
    assert r.matches({"source": {"ip": ["8.8.8.8", "10.9.9.9"]}})
    assert not r.matches({"source": {"ip": "11.0.0.1"}})
    assert not r.matches({"source": {"ip": "2001:db9::1"}})
    assert not r.matches({"source": {"ip": "not an ip"}})
    assert not r.matches({"source": {"ip": "10.1.2.3.4"}})
    assert not r.matches({})


def test_numeric_comparisons() -> None:
    r = rule("""
        sel_gt:
          bytes|gt: 100
        sel_gte:
          bytes|gte: 100
        sel_lt:
          bytes|lt: 10
        sel_lte:
          bytes|lte: 10
        condition: 1 of sel_*
    """)
    gt = compile_rule(sigma_rule("sel:\n  bytes|gt: 100\ncondition: sel"))
    gte = compile_rule(sigma_rule("sel:\n  bytes|gte: 100\ncondition: sel"))
    lt = compile_rule(sigma_rule("sel:\n  bytes|lt: 10\ncondition: sel"))
    lte = compile_rule(sigma_rule("sel:\n  bytes|lte: 10\ncondition: sel"))
    assert gt.matches({"bytes": 101}) and not gt.matches({"bytes": 100})
    assert gte.matches({"bytes": 100}) and not gte.matches({"bytes": 99.5})
    assert lt.matches({"bytes": "9"}) and not lt.matches({"bytes": 10})
    assert lte.matches({"bytes": 10}) and not lte.matches({"bytes": "10.5"})
    assert not gt.matches({"bytes": "lots"})
    assert not gt.matches({})
    assert r.matches({"bytes": 5}) and r.matches({"bytes": 500}) and not r.matches({"bytes": 50})


def test_neq_modifier() -> None:
    r = rule("""
        sel:
          event.action: login
          user.name|neq: root
        condition: sel
    """)
    assert r.matches({"event": {"action": "login"}, "user": {"name": "bob"}})
    assert not r.matches({"event": {"action": "login"}, "user": {"name": "ROOT"}})


def test_base64_modifier() -> None:
    r = rule("""
        sel:
          payload|base64: 'cmd.exe'
        condition: sel
    """)
    assert r.matches({"payload": base64.b64encode(b"cmd.exe").decode()})
    assert not r.matches({"payload": base64.b64encode(b"cmd.ex").decode()})
    assert not r.matches({"payload": "cmd.exe"})


@pytest.mark.parametrize("prefix", [b"", b"x", b"xy", b"powershell -c "])
def test_base64offset_modifier_finds_the_value_at_any_offset(prefix: bytes) -> None:
    r = rule("""
        sel:
          process.command_line|base64offset|contains: 'http://'
        condition: sel
    """)
    encoded = base64.b64encode(prefix + b"http://evil.example/x").decode()
    assert r.matches({"process": {"command_line": f"powershell -enc {encoded}"}})
    other = base64.b64encode(prefix + b"https://good.example/x").decode()
    assert not r.matches({"process": {"command_line": f"powershell -enc {other}"}})


def test_wide_and_utf16be_modifiers() -> None:
    wide = rule("""
        sel:
          process.command_line|wide|base64offset|contains: 'ping'
        condition: sel
    """)
    utf16le = base64.b64encode("a ping b".encode("utf-16le")).decode()
    assert wide.matches({"process": {"command_line": f"-e {utf16le}"}})
    assert not wide.matches({"process": {"command_line": base64.b64encode(b"a ping b").decode()}})
    be = rule("""
        sel:
          blob|utf16be|base64: 'cmd'
        condition: sel
    """)
    assert be.matches({"blob": base64.b64encode("cmd".encode("utf-16be")).decode()})
    assert not be.matches({"blob": base64.b64encode("cmd".encode("utf-16le")).decode()})


def test_utf16_modifier_is_unsupported_because_pysigma_mis_encodes_the_bom() -> None:
    with pytest.raises(UnsupportedRule, match="modifier 'utf16'"):
        rule("""
            sel:
              blob|utf16|base64: 'cmd'
            condition: sel
        """)


def test_windash_modifier() -> None:
    r = rule("""
        sel:
          process.command_line|windash|contains: ' -exec bypass'
        condition: sel
    """)
    for dash in ("-", "/", "\u2013", "\u2014", "\u2015"):
        assert r.matches({"process": {"command_line": f"powershell {dash}exec bypass"}})
    assert not r.matches({"process": {"command_line": "powershell +exec bypass"}})


def test_fieldref_modifier() -> None:
    same = rule("""
        sel:
          source.ip|fieldref: destination.ip
        condition: sel
    """)
    assert same.matches({"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.1"}})
    assert not same.matches({"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2"}})
    assert not same.matches({"source": {"ip": "10.0.0.1"}})
    assert same.matches({"source": {"ip": 5}, "destination": {"ip": "5.0"}})  # numerically equal
    starts = rule("""
        sel:
          file.path|fieldref|startswith: process.working_directory
        condition: sel
    """)
    ev = {"file": {"path": "C:\\Temp\\x.exe"}, "process": {"working_directory": "c:\\temp"}}
    assert starts.matches(ev)
    ev["process"]["working_directory"] = "D:\\"
    assert not starts.matches(ev)


def test_keywords_search_every_value_including_message_and_original() -> None:
    r = rule("""
        keywords:
          - 'mimikatz'
          - 'sekurlsa::*'
        condition: keywords
    """)
    assert r.matches({"message": "Running MIMIKATZ now"})
    assert r.matches({"event": {"original": "<13>x: sekurlsa::logonpasswords"}})
    assert r.matches({"process": {"args": ["a", "mimikatz.exe"]}})
    assert not r.matches({"message": "nothing to see", "mimikatz": "key names are not values"})
    assert not r.matches({})


def test_keywords_with_modifiers_and_regex() -> None:
    r = rule("""
        keywords:
          '|contains|all':
            - 'failed'
            - 'root'
        condition: keywords
    """)
    assert r.matches({"message": "Failed password for root"})
    assert r.matches({"message": "failed", "user": {"name": "root"}})
    assert not r.matches({"message": "Failed password for bob"})
    rx = rule("""
        keywords:
          '|re': 'user=[a-z]+ uid=0\\b'
        condition: keywords
    """)
    assert rx.matches({"message": "session opened user=toor uid=0 by"})
    assert not rx.matches({"message": "session opened user=toor uid=01"})


def test_numeric_keyword_is_unsupported() -> None:
    with pytest.raises(UnsupportedRule, match=r"keyword .* SigmaNumber"):
        rule("""
            keywords:
              - 4624
            condition: keywords
        """)


# ---------------------------------------------------------------------------------------------
# Conditions


def test_condition_and_or_not_parentheses() -> None:
    r = rule("""
        a:
          x: 1
        b:
          y: 1
        c:
          z: 1
        condition: a and not (b or c)
    """)
    assert r.matches({"x": 1})
    assert not r.matches({"x": 1, "y": 1})
    assert not r.matches({"x": 1, "z": 1})
    assert not r.matches({"y": 1})
    r2 = rule("""
        a:
          x: 1
        b:
          y: 1
        c:
          z: 1
        condition: (a or b) and c
    """)
    assert r2.matches({"y": 1, "z": 1})
    assert not r2.matches({"y": 1})


def test_one_of_pattern_all_of_them_one_of_them() -> None:
    one_of = rule("""
        selection_a:
          x: 1
        selection_b:
          y: 1
        filter:
          z: 1
        condition: 1 of selection_* and not filter
    """)
    assert one_of.matches({"y": 1})
    assert not one_of.matches({"y": 1, "z": 1})
    assert not one_of.matches({"z": 1})
    all_of = rule("""
        a:
          x: 1
        b:
          y: 1
        condition: all of them
    """)
    assert all_of.matches({"x": 1, "y": 1})
    assert not all_of.matches({"x": 1})
    any_of = rule("""
        a:
          x: 1
        b:
          y: 1
        condition: 1 of them
    """)
    assert any_of.matches({"y": 1})
    assert not any_of.matches({"z": 1})


def test_list_of_maps_is_or_and_map_is_and() -> None:
    r = rule("""
        sel:
          - x: 1
            y: 2
          - z: 3
        condition: sel
    """)
    assert r.matches({"x": 1, "y": 2})
    assert r.matches({"z": 3})
    assert not r.matches({"x": 1})


def test_several_conditions_are_or() -> None:
    r = rule("""
        a:
          x: 1
        b:
          y: 1
        condition:
          - a
          - b
    """)
    assert r.matches({"x": 1}) and r.matches({"y": 1}) and not r.matches({"z": 1})


def test_unsupported_constructs_are_reported_with_a_reason() -> None:
    with pytest.raises(UnsupportedRule, match="placeholder '%admins%'") as e:
        rule("""
            sel:
              user.name|expand: '%admins%'
            condition: sel
        """)
    assert isinstance(e.value, SocmonError)
    assert e.value.rule_id == "5a1b8a3e-0c4f-4d55-9a53-2f0d9c7a1e01"
    with pytest.raises(UnsupportedRule, match="modifier 'hour'"):
        rule("""
            sel:
              '@timestamp|hour': 3
            condition: sel
        """)
    with pytest.raises(UnsupportedRule, match="condition refers to no detection"):
        rule("""
            sel:
              x: 1
            condition: sel and not 1 of filter_*
        """)
    with pytest.raises(UnsupportedRule, match="'startswith' combined with 're'"):
        rule("""
            sel:
              process.name|re|startswith: 'cmd'
            condition: sel
        """)


# ---------------------------------------------------------------------------------------------
# Event model


def test_nested_flat_and_mixed_field_paths() -> None:
    r = rule("""
        sel:
          source.ip: 1.2.3.4
        condition: sel
    """)
    assert r.matches({"source": {"ip": "1.2.3.4"}})
    assert r.matches({"source.ip": "1.2.3.4"})
    assert not r.matches({"source": {"ip": "1.2.3.5"}})
    assert not r.matches({"source": "1.2.3.4"})
    mixed = rule("""
        sel:
          winlog.event_data.A.B: 1
        condition: sel
    """)
    assert mixed.matches({"winlog": {"event_data": {"A.B": 1}}})
    assert mixed.matches({"winlog.event_data": {"A": {"B": "1"}}})
    assert mixed.matches({"winlog": {"event_data": {"A": {"B": 1}}}})
    assert not mixed.matches({"winlog": {"event_data": {"A.B": 2}}})


def test_list_fields_match_when_any_element_matches() -> None:
    r = rule("""
        sel:
          event.category: authentication
          related.ip|cidr: 10.0.0.0/8
        condition: sel
    """)
    assert r.matches(
        {
            "event": {"category": ["network", "authentication"]},
            "related": {"ip": ["8.8.8.8", "10.0.0.1"]},
        }
    )
    assert not r.matches({"event": {"category": ["network"]}, "related": {"ip": ["10.0.0.1"]}})
    objects = rule("""
        sel:
          threat.indicator.ip: 9.9.9.9
        condition: sel
    """)
    assert objects.matches({"threat": {"indicator": [{"ip": "1.1.1.1"}, {"ip": "9.9.9.9"}]}})
    assert not objects.matches({"threat": {"indicator": [{"ip": "1.1.1.1"}]}})


def test_field_map_renames_fields_at_compile_time() -> None:
    sigma = sigma_rule("""
        sel:
          Image|endswith: '\\cmd.exe'
          SourceIp|fieldref: DestinationIp
        condition: sel
    """)
    names = {
        "Image": "process.executable",
        "SourceIp": "source.ip",
        "DestinationIp": "destination.ip",
    }
    r = compile_rule(sigma, field_map=lambda f: names.get(f, f))
    ev = {
        "process": {"executable": "C:\\Windows\\cmd.exe"},
        "source": {"ip": "1.1.1.1"},
        "destination": {"ip": "1.1.1.1"},
    }
    assert r.matches(ev)
    assert not r.matches({"Image": "C:\\Windows\\cmd.exe"})
    assert r.fields == {"process.executable", "source.ip", "destination.ip"}


def test_compiled_rule_metadata_and_custom_keys(tmp_path: Path) -> None:
    sigma = sigma_rule(
        """
        sel:
          x: 1
        condition: sel
        """,
        title="Metadata",
        level="high",
        tags=["attack.t1133", "socmon.group.a4"],
        logsource={"category": "firewall", "product": "fortigate"},
        group_by=["source.ip"],
    )
    r = compile_rule(sigma, path=tmp_path / "r.yml")
    assert r.id == "5a1b8a3e-0c4f-4d55-9a53-2f0d9c7a1e01"
    assert (r.title, r.level) == ("Metadata", "high")
    assert r.tags == ("attack.t1133", "socmon.group.a4")
    assert r.logsource == ("firewall", "fortigate", None)
    assert r.path == tmp_path / "r.yml"
    assert r.custom["group_by"] == ["source.ip"]


# ---------------------------------------------------------------------------------------------
# Matcher


def _random_rules() -> list[CompiledRule]:
    detections = [
        "sel:\n  EventID: 4624\n  LogonType: 10\ncondition: sel",
        "sel:\n  EventID: [4624, 4625]\ncondition: sel",
        "sel:\n  EventID: 4625\n  user|startswith: adm\ncondition: sel",
        "sel:\n  event.action: deny\ncondition: sel",
        "sel:\n  event.action: [deny, drop]\n  port: 22\ncondition: sel",
        "sel:\n  user|contains: adm\ncondition: sel",
        "sel:\n  EventID: 4624\nfilter:\n  user: admin\ncondition: sel and not filter",
        "a:\n  EventID: 1\nb:\n  event.action: deny\ncondition: a or b",
        "keywords:\n  - admin\ncondition: keywords",
        "sel:\n  user: null\ncondition: sel",
    ]
    return [
        compile_rule(sigma_rule(d, id=f"00000000-0000-4000-8000-{i:012d}"))
        for i, d in enumerate(detections)
    ]


def _random_events(n: int) -> list[dict[str, Any]]:
    rnd = random.Random(7)
    events = []
    for _ in range(n):
        ev: dict[str, Any] = {}
        if rnd.random() < 0.8:
            ev["EventID"] = rnd.choice([1, 4624, "4625", 4688, 4624.0])
        if rnd.random() < 0.6:
            ev["LogonType"] = rnd.choice([2, 10, "10"])
        if rnd.random() < 0.6:
            ev["user"] = rnd.choice(["admin", "Administrator", "bob", None])
        if rnd.random() < 0.5:
            ev["event"] = {"action": rnd.choice(["deny", "DENY", "accept", "drop"])}
        if rnd.random() < 0.5:
            ev["port"] = rnd.choice([22, "22", 443])
        events.append(ev)
    return events


def test_matcher_index_gives_the_same_answers_as_evaluating_every_rule() -> None:
    rules = _random_rules()
    matcher = Matcher(rules)
    assert matcher.indexed_fields  # the index is in use
    pruned = 0
    for ev in _random_events(400):
        expected = [r for r in rules if r.matches(ev)]
        assert matcher.match(ev) == expected, ev
        pruned += len(rules) - len(matcher.candidates(ev))
    assert pruned > 0  # and it does rule out candidates


def test_matcher_indexes_rules_by_a_required_equality() -> None:
    rules = _random_rules()
    matcher = Matcher(rules)
    by_id = {r.id[-2:]: r for r in rules}
    # EventID 4624 AND LogonType 10: required on both fields.
    assert by_id["00"].required == {"EventID": {"4624"}, "LogonType": {"10"}}
    # An OR of two different fields has no single required field.
    assert by_id["07"].required == {}
    # A NOT never makes a requirement, the positive part still does.
    assert by_id["06"].required == {"EventID": {"4624"}}
    candidates = matcher.candidates({"EventID": 4688})
    assert by_id["00"] not in candidates
    # A keyword rule is filed under its literal: a candidate only where the text occurs.
    assert by_id["08"].lits == {("*", "admin")}
    assert by_id["08"] not in candidates
    assert by_id["08"] in matcher.candidates({"EventID": 4688, "user": "Administrator"})
    # No required value but a literal it must contain: filed under the literal instead.
    assert by_id["05"].required == {} and by_id["05"].needs == {"user"}
    assert by_id["05"].lits == {("user", "adm")}
    assert by_id["05"] not in matcher.candidates({"user": "guest"})
    assert by_id["05"] in matcher.candidates({"user": "sysadmin"})


def test_presence_index_finds_fields_however_the_event_spells_them() -> None:
    contains = rule("""
        sel:
          process.command_line|re: 'who[a]mi'
        condition: sel
    """)
    negated = rule("""
        sel:
          user.name: root
        condition: not sel
    """)
    matcher = Matcher([contains, negated])
    assert contains.needs == {"process.command_line"} and contains.required == {}
    assert negated.needs == frozenset()
    assert matcher.presence_fields == {"process.command_line": 1}
    assert matcher.unindexed_count == 1
    for event in (
        {"process": {"command_line": "cmd /c whoami"}},
        {"process.command_line": "cmd /c whoami"},
        {"process": [{"command_line": "x"}, {"command_line": "whoami /all"}]},
    ):
        assert matcher.match(event) == [contains, negated]
    assert matcher.candidates({"process": {"name": "cmd"}}) == [negated]


def test_required_fields_follow_the_boolean_structure() -> None:
    r = rule("""
        sel:
          x: 1
        alt:
          - y|contains: a
          - z: 2
        filter:
          w: null
        condition: sel and alt and not filter
    """)
    assert r.needs == {"x"}  # y or z: neither is needed on its own; "not" needs nothing
    both = rule("""
        a:
          x|startswith: a
          y: 1
        b:
          x|endswith: b
        condition: a or b
    """)
    assert both.needs == {"x"} and both.required == {}


def test_from_ruleset_reports_unsupported_rules(tmp_path: Path) -> None:
    good = "title: ok\nlogsource: {product: t}\ndetection:\n  sel: {x: 1}\n  condition: sel\n"
    bad = (
        "title: bad\nid: 9d9d9d9d-0000-4000-8000-000000000001\nlogsource: {product: t}\n"
        "detection:\n  sel: {'t|hour': 3}\n  condition: sel\n"
    )
    (tmp_path / "good.yml").write_text(good)
    (tmp_path / "bad.yml").write_text(bad)
    matcher, report = Matcher.from_ruleset(load_rules([tmp_path]), mapping=False)
    assert len(matcher) == 1 and len(report.compiled) == 1
    assert report.unsupported == [
        (
            "9d9d9d9d-0000-4000-8000-000000000001",
            tmp_path / "bad.yml",
            "modifier 'hour' (time part of a date) not supported",
        )
    ]
    assert report.reasons() == {"modifier 'hour' (time part of a date) not supported": 1}
    assert matcher.match({"x": 1}) == report.compiled


# ---------------------------------------------------------------------------------------------
# socmon's own rules


def _fortigate_deny(src: str, dst: str, port: Any, action: str = "deny") -> dict[str, Any]:
    return {
        "@timestamp": "2026-11-23T01:16:08.000Z",
        "event": {
            "dataset": "fortinet.fortigate",
            "action": action,
            "category": ["network"],
            "type": ["connection", "end", "denied"],
            "outcome": "success",
        },
        "source": {"ip": src, "port": 51234},
        "destination": {"ip": dst, "port": port},
        "network": {"transport": "tcp"},
        "observer": {"vendor": "Fortinet", "product": "Fortigate", "type": "firewall"},
    }


@pytest.fixture(scope="module")
def socmon_rules() -> dict[str, CompiledRule]:
    ruleset = load_rules([RULES_DIR])
    assert ruleset.errors == []
    _, report = Matcher.from_ruleset(ruleset)
    assert report.unsupported == []
    return {r.path.name: r for r in report.compiled if r.path is not None}


def test_dc_admin_port_rule_loads_with_its_metadata(socmon_rules: dict[str, CompiledRule]) -> None:
    r = socmon_rules[DC_ADMIN_PORT_RULE.name]
    assert r.id == "d68a873f-6857-441b-a820-02ad753c96ea"
    assert r.level == "high"
    assert {"attack.initial_access", "attack.t1133", "socmon.group.a4"} <= set(r.tags)
    assert r.logsource == ("firewall", "fortigate", None)
    assert r.custom["group_by"] == ["source.ip", "destination.ip"]
    assert r.sigma_rule is not None and str(r.sigma_rule.status) == "experimental"


def test_dc_admin_port_rule_matches_internet_deny_to_dc_ssh(
    socmon_rules: dict[str, CompiledRule],
) -> None:
    r = socmon_rules[DC_ADMIN_PORT_RULE.name]
    assert r.matches(_fortigate_deny("203.0.113.7", "10.10.10.10", 22))
    assert r.matches(_fortigate_deny("2001:db8::7", "192.168.1.5", "3389"))
    assert r.matches(_fortigate_deny("198.51.100.1", "172.16.4.4", 10443))


@pytest.mark.parametrize(
    ("case", "event"),
    [
        ("allowed", _fortigate_deny("203.0.113.7", "10.10.10.10", 22, action="accept")),
        ("internal source", _fortigate_deny("10.20.0.5", "10.10.10.10", 22)),
        ("internal 172.16/12", _fortigate_deny("172.31.255.1", "10.10.10.10", 22)),
        ("not an admin port", _fortigate_deny("203.0.113.7", "10.10.10.10", 80)),
        ("public destination", _fortigate_deny("203.0.113.7", "8.8.8.8", 22)),
        ("outside 172.16/12", _fortigate_deny("203.0.113.7", "172.32.0.1", 22)),
    ],
)
def test_dc_admin_port_rule_does_not_match(
    socmon_rules: dict[str, CompiledRule], case: str, event: dict[str, Any]
) -> None:
    assert not socmon_rules[DC_ADMIN_PORT_RULE.name].matches(event), case


def test_dc_admin_port_rule_needs_a_source_address(socmon_rules: dict[str, CompiledRule]) -> None:
    event = _fortigate_deny("203.0.113.7", "10.10.10.10", 22)
    del event["source"]["ip"]
    assert not socmon_rules[DC_ADMIN_PORT_RULE.name].matches(event)


def _elastic_fortigate_docs() -> list[dict[str, Any]]:
    base = corpus_dir()
    if base is None:
        pytest.skip("corpus not found (set SOCMON_CORPUS): Elastic FortiGate samples needed")
    path = base / "ecs-conformance" / "fortinet_fortigate" / "log"
    docs = json.loads((path / "test-fortinet.log-expected.json").read_text())["expected"]
    out = []
    for doc in docs:
        doc = copy.deepcopy(doc)
        # Elastic sets the dataset from the data stream, not in the pipeline output.
        doc.setdefault("event", {})["dataset"] = "fortinet.fortigate"
        out.append(doc)
    return out


def test_socmon_fortigate_rules_on_elastics_own_ecs_documents(
    socmon_rules: dict[str, CompiledRule],
) -> None:
    docs = _elastic_fortigate_docs()
    login = socmon_rules[ADMIN_LOGIN_RULE.name]
    deny = socmon_rules[DC_ADMIN_PORT_RULE.name]
    login_failures = [
        d
        for d in docs
        if d["event"].get("action") == "login" and d["event"].get("outcome") == "failure"
    ]
    assert login_failures
    assert [d for d in docs if login.matches(d)] == login_failures
    # The sample denies are all from internal sources: none is an attack from outside.
    assert any(d["event"].get("action") == "deny" for d in docs)
    assert not any(deny.matches(d) for d in docs)
