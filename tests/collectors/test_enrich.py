from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from collectors.enrich import Enricher, community_id, observer_type
from collectors.intel import Indicator, IndicatorSet, IntelMatch
from collectors.parsing import SourceContext
from collectors.pipeline import RawMessage, parse_message
from collectors.registry import PARSERS
from inventory import Asset, IpLookup, load_inventory
from tests.inventory.test_lookup import INVENTORY


def test_community_id_matches_the_reference_vector() -> None:
    # The Community ID spec's example: TCP 128.232.110.120:34855 -> 66.35.250.204:80.
    doc = {
        "source": {"ip": "128.232.110.120", "port": 34855},
        "destination": {"ip": "66.35.250.204", "port": 80},
        "network": {"transport": "tcp"},
    }
    assert community_id(doc) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    assert community_id({"source": {"ip": "1.2.3.4"}}) is None


def test_inventory_context_direction_and_owner(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY, encoding="utf-8")
    enricher = Enricher(IpLookup(load_inventory(path)))
    doc: dict[str, Any] = {
        "source": {"ip": "198.51.100.7", "port": 40000},
        "destination": {"ip": "10.10.10.10", "port": 22},
        "network": {"transport": "tcp"},
    }
    enricher.enrich(doc)
    assert doc["network"]["direction"] == "inbound"
    assert doc["socmon"]["destination"]["asset"] == "dvc-web-01"
    assert doc["socmon"]["unit"] == "so-tttt" and doc["socmon"]["level"] == 3
    assert "source" not in doc["socmon"]
    assert doc["network"]["community_id"].startswith("1:")
    lateral: dict[str, Any] = {"source": {"ip": "10.50.1.1"}, "destination": {"ip": "10.10.20.5"}}
    enricher.enrich(lateral)
    assert lateral["network"]["direction"] == "internal" and lateral["socmon"]["unit"] == "so-yte"
    kept: dict[str, Any] = {
        "source": {"ip": "10.10.20.5"},
        "destination": {"ip": "8.8.8.8"},
        "network": {"direction": "egress"},
    }
    enricher.enrich(kept)
    assert kept["network"]["direction"] == "egress"  # the device's own direction wins
    assert kept["socmon"]["unit"] == "so-yte"


def test_community_id_agrees_with_the_reference_package() -> None:
    import random

    import communityid

    rng = random.Random(5)
    ref = communityid.CommunityID()
    makers = {
        "tcp": communityid.FlowTuple.make_tcp,
        "udp": communityid.FlowTuple.make_udp,
        "sctp": communityid.FlowTuple.make_sctp,
    }
    for _ in range(2000):
        v6 = rng.random() < 0.3
        ips = [
            ":".join(f"{rng.randrange(65536):x}" for _ in range(8))
            if v6
            else ".".join(str(rng.randrange(256)) for _ in range(4))
            for _ in range(2)
        ]
        if rng.random() < 0.1:
            ips[1] = ips[0]  # same address: ports decide the order
        transport = rng.choice(list(makers))
        sport, dport = rng.randrange(65536), rng.randrange(65536)
        doc = {
            "source": {"ip": ips[0], "port": sport},
            "destination": {"ip": ips[1], "port": dport},
            "network": {"transport": transport},
        }
        assert community_id(doc) == ref.calc(makers[transport](ips[0], ips[1], sport, dport)), doc


# --------------------------------------------------------------------------- observer.*

DEVICES = """
units:
  - {code: so-tttt, name: Sở Thông tin và Truyền thông}
  - {code: ubnd-hbt, name: UBND quận Hai Bà Trưng}
zones:
  - {name: mgmt, cidrs: [10.10.0.0/24], site: ttdl}
  - {name: lan-hbt, cidrs: [10.60.0.0/16], site: hbt}
systems:
  - {code: mang-ttdl, name: Mạng trung tâm dữ liệu, level: 4, unit: so-tttt}
  - {code: mang-hbt, name: Mạng UBND quận, level: 2, unit: ubnd-hbt}
assets:
  - name: fw-ttdl-01
    ips: [10.10.0.1]
    unit: so-tttt
    zone: mgmt
    systems: [mang-ttdl]
    kind: firewall
    vendor: Fortinet
    product: FortiGate 600E
  - name: asa-hbt
    ips: [10.60.0.1]
    unit: ubnd-hbt
    kind: NGFW
    systems: [mang-hbt]
  - name: rt-hbt
    ips: [10.60.0.254]
    unit: ubnd-hbt
    kind: router
    vendor: MikroTik
    product: RouterOS
  - name: srv-ldap
    ips: [10.10.0.20, "fd00:10::20"]
    unit: so-tttt
    zone: mgmt
    hostnames: [LabSZ, ldap.so-tttt.example]
  - {name: web-legacy, ips: [10.10.0.30], unit: so-tttt}
"""


@pytest.fixture
def devices(tmp_path: Path) -> Enricher:
    path = tmp_path / "inventory.yaml"
    path.write_text(DEVICES, encoding="utf-8")
    return Enricher(IpLookup(load_inventory(path)))


def fixture_line(parser: str, case: str) -> str:
    path = Path(__file__).parent / parser / "fixtures" / f"{case}.log"
    return path.read_text(encoding="utf-8").splitlines()[0]


def received(parser: str, line: str, sender: str | None) -> dict[str, Any]:
    msg = RawMessage(
        source="syslog+udp://0.0.0.0:514", data=line.encode(), received_at=1.7e9, sender=sender
    )
    return parse_message(msg) if parser == "auto" else parse_message(replace(msg, parser=parser))


def test_observer_by_parser_ip_keeps_the_parser_vendor_and_product(devices: Enricher) -> None:
    line = fixture_line("fortigate", "traffic_forward_deny")
    doc = PARSERS["fortigate"](line, SourceContext(observer_ip="10.10.0.1"))
    parsed_observer = dict(doc["observer"])
    devices.enrich(doc)
    observer = doc["observer"]
    # The device's own name and the parser's vendor/product win over the inventory's.
    for key in ("vendor", "product", "name", "type"):
        assert observer[key] == parsed_observer[key]
    assert observer["ip"] == ["10.10.0.1"]
    socmon = doc["socmon"]["observer"]
    assert (socmon["asset"], socmon["unit"], socmon["zone"], socmon["site"]) == (
        "fw-ttdl-01",
        "so-tttt",
        "mgmt",
        "ttdl",
    )
    assert socmon["systems"] == ("mang-ttdl",) and socmon["level"] == 4


def test_observer_from_the_syslog_sender(devices: Enricher) -> None:
    line = fixture_line("asa", "deny_acl_interface_prefix")
    doc = received("asa", line, sender="10.60.0.1:51514")
    assert "ip" not in doc["observer"]  # the ASA parser leaves the sender alone
    devices.enrich(doc)
    assert doc["observer"]["ip"] == ["10.60.0.1"]
    assert doc["observer"]["name"] == "asa-hbt"  # the parser named none
    assert doc["observer"]["type"] == "firewall"
    assert (doc["observer"]["vendor"], doc["observer"]["product"]) == ("Cisco", "asa")
    assert doc["socmon"]["observer"]["unit"] == "ubnd-hbt"
    # Neither 10.8.1.9 nor 172.16.1.3 is in the inventory: the firewall's unit owns the event.
    assert "source" not in doc["socmon"] and "destination" not in doc["socmon"]
    assert doc["socmon"]["unit"] == "ubnd-hbt" and doc["socmon"]["level"] == 2


def test_vendor_and_product_from_the_inventory_when_the_parser_has_none(
    devices: Enricher,
) -> None:
    doc = received(
        "syslog",
        "<134>Nov 23 10:00:00 rt-hbt firewall,info: input: in:ether1 out:(none), proto TCP",
        sender="10.60.0.254:514",
    )
    assert "vendor" not in doc.get("observer", {})
    devices.enrich(doc)
    observer = doc["observer"]
    assert (observer["vendor"], observer["product"], observer["type"]) == (
        "MikroTik",
        "RouterOS",
        "router",
    )
    assert observer["name"] == "rt-hbt" and observer["ip"] == ["10.60.0.254"]
    assert doc["socmon"]["unit"] == "ubnd-hbt"


def test_observer_by_hostname_for_a_server_log(devices: Enricher) -> None:
    line = "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186"
    doc = PARSERS["linux_auth"](line, SourceContext())
    assert "observer" not in doc
    devices.enrich(doc)
    assert doc["observer"]["name"] == "srv-ldap"
    assert doc["observer"]["type"] == "server"  # no kind: the role (default "server")
    assert "vendor" not in doc["observer"] and "ip" not in doc["observer"]
    assert doc["socmon"]["observer"]["asset"] == "srv-ldap"
    assert doc["socmon"]["unit"] == "so-tttt"
    fqdn: dict[str, Any] = {"host": {"hostname": "LDAP.so-tttt.example"}}
    for sender in ("[fd00:10:0::20]:514", "fd00:10::20:514"):
        ipv6: dict[str, Any] = {"log": {"source": {"address": sender}}}
        devices.enrich(ipv6)
        assert ipv6["observer"]["ip"] == ["fd00:10::20"]
        assert ipv6["socmon"]["observer"]["asset"] == "srv-ldap"

    devices.enrich(fqdn)
    assert fqdn["socmon"]["observer"]["asset"] == "srv-ldap"


def test_host_name_is_not_the_observer_of_a_device_log(devices: Enricher) -> None:
    # FortiGate's host.name is the client PC; the firewall itself is unknown here.
    doc: dict[str, Any] = {
        "observer": {"vendor": "Fortinet", "ip": ["192.0.2.1"]},
        "host": {"name": "srv-ldap"},
        "log": {"source": {"address": "10.10.0.1:514"}},
    }
    devices.enrich(doc)
    assert "socmon" not in doc and "name" not in doc["observer"]
    unknown: dict[str, Any] = {"log": {"source": {"address": "192.0.2.77:514"}}}
    devices.enrich(unknown)
    assert unknown == {"log": {"source": {"address": "192.0.2.77:514"}}}


def test_source_and_destination_own_the_event_before_the_observer(devices: Enricher) -> None:
    doc: dict[str, Any] = {
        "observer": {"ip": "10.10.0.1"},
        "source": {"ip": "10.60.3.3"},
        "destination": {"ip": "203.0.113.9"},
    }
    devices.enrich(doc)
    assert doc["socmon"]["observer"]["unit"] == "so-tttt"
    assert doc["socmon"]["source"]["zone"] == "lan-hbt"
    assert doc["network"]["direction"] == "outbound"
    # lan-hbt has no system: the source has no unit, so the firewall's unit and level apply.
    assert doc["socmon"]["unit"] == "so-tttt" and doc["socmon"]["level"] == 4


def test_old_inventory_without_device_attributes(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY, encoding="utf-8")
    enricher = Enricher(IpLookup(load_inventory(path)))
    doc: dict[str, Any] = {"observer": {"ip": ["10.10.20.5"]}}
    enricher.enrich(doc)
    assert doc["observer"] == {"ip": ["10.10.20.5"], "name": "his-db-01", "type": "server"}
    assert doc["socmon"]["unit"] == "so-yte" and doc["socmon"]["level"] == 4


@pytest.mark.parametrize(
    ("kind", "role", "expected"),
    [
        ("firewall", "server", "firewall"),
        ("UTM", "server", "firewall"),
        ("Switch", "server", "switch"),
        ("ids", "server", "ids"),
        ("waf_appliance", "server", "waf-appliance"),
        (None, "database", "server"),
        (None, "router", "router"),
    ],
)
def test_observer_type_from_kind_or_role(kind: str | None, role: str, expected: str) -> None:
    assert observer_type(Asset("a", (), "u", role=role, kind=kind)) == expected


# --------------------------------------------------------------------------- threat intel


def test_enricher_applies_threat_intel_matches(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(DEVICES, encoding="utf-8")
    indicators = tmp_path / "indicators.csv"
    indicators.write_text(
        "type,value,description,source,confidence\nip,173.234.31.186,SSH brute force,VNCERT,80\n",
        encoding="utf-8",
    )
    enricher = Enricher(IpLookup(load_inventory(inventory)), IndicatorSet.load(indicators))
    line = "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186"
    doc = PARSERS["linux_auth"](line, SourceContext())
    enricher.enrich(doc)
    assert doc["threat"]["enrichments"] == [
        {
            "indicator": {
                "type": "ipv4-addr",
                "name": "173.234.31.186",
                "ip": "173.234.31.186",
                "provider": "VNCERT",
                "confidence": "High",
                "description": "SSH brute force",
            },
            "matched": {
                "atomic": "173.234.31.186",
                "field": "source.ip",
                "type": "indicator_match_rule",
            },
        }
    ]
    assert "threat-intel" in doc["tags"]
    assert doc["socmon"]["unit"] == "so-tttt"  # the inventory still applies
    enricher.enrich(doc)  # enriching twice adds nothing
    assert len(doc["threat"]["enrichments"]) == 1 and doc["tags"].count("threat-intel") == 1
    clean: dict[str, Any] = {"source": {"ip": "198.51.100.1"}}
    Enricher(intel=IndicatorSet.load(indicators)).enrich(clean)
    assert "threat" not in clean and "tags" not in clean


class WatchedUsers:
    """Another `ThreatIntel`: the hook takes any object with `match(event)`."""

    def __init__(self, indicator: Indicator) -> None:
        self.indicator = indicator

    def match(self, event: Mapping[str, Any]) -> list[IntelMatch]:
        name = event.get("user", {}).get("name")
        return [IntelMatch(self.indicator, "user.name", name)] if name == "USER-NAME" else []


def test_any_threat_intel_implementation_plugs_in() -> None:
    indicator = Indicator("domain", "corp.example", description="watched account's domain")
    enricher = Enricher(intel=WatchedUsers(indicator))
    line = fixture_line("fortigate", "traffic_forward_deny")
    doc = PARSERS["fortigate"](line, SourceContext())
    enricher.enrich(doc)
    assert doc["threat"]["enrichments"][0]["matched"] == {
        "atomic": "USER-NAME",
        "field": "user.name",
        "type": "indicator_match_rule",
    }
    assert doc["tags"][-1] == "threat-intel"
