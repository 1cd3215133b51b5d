from pathlib import Path

import pytest

from inventory import InventoryError, IpLookup, load_inventory

INVENTORY = """
units:
  - {code: so-tttt, name: Sở Thông tin và Truyền thông}
  - {code: so-yte, name: Sở Y tế}
zones:
  - {name: dmz, cidrs: [10.10.10.0/24], site: ttdl}
  - {name: internal-servers, cidrs: [10.10.20.0/24], site: ttdl}
  - {name: dc, cidrs: [10.10.0.0/16], site: ttdl}
  - {name: lan-so-yte, cidrs: [10.50.0.0/16, "fd00:50::/32"], site: so-yte}
  - {name: outside, cidrs: [100.64.0.0/10], internal: false}
systems:
  - {code: cong-dvc, name: Cổng dịch vụ công, level: 3, unit: so-tttt, public_ranges: [203.0.113.0/28]}
  - {code: his, name: Bệnh án điện tử, level: 4, unit: so-yte, state_secret: true}
assets:
  - {name: dvc-web-01, ips: [10.10.10.10], unit: so-tttt, zone: dmz, systems: [cong-dvc]}
  - {name: his-db-01, ips: [10.10.20.5], unit: so-yte, role: database, zone: internal-servers, systems: [his]}
"""


@pytest.fixture
def lookup(tmp_path: Path) -> IpLookup:
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY, encoding="utf-8")
    return IpLookup(load_inventory(path))


def test_asset_zone_system_unit_level(lookup: IpLookup) -> None:
    web = lookup.lookup("10.10.10.10")
    assert web is not None
    assert (web.asset, web.zone, web.site, web.systems, web.unit, web.level) == (
        "dvc-web-01",
        "dmz",
        "ttdl",
        ("cong-dvc",),
        "so-tttt",
        3,
    )
    db = lookup.lookup("10.10.20.5")
    assert db is not None and db.level == 4 and db.state_secret and db.role == "database"


def test_most_specific_zone_wins_and_ranges(lookup: IpLookup) -> None:
    assert lookup.lookup("10.10.10.77").zone == "dmz"  # type: ignore[union-attr]
    assert lookup.lookup("10.10.99.1").zone == "dc"  # type: ignore[union-attr]
    assert lookup.lookup("fd00:50::1").zone == "lan-so-yte"  # type: ignore[union-attr]
    public = lookup.lookup("203.0.113.5")
    assert public is not None and public.systems == ("cong-dvc",) and public.unit == "so-tttt"
    outside = lookup.lookup("100.64.1.1")
    assert outside is not None and outside.internal is False
    assert lookup.lookup("8.8.8.8") is None
    assert lookup.lookup("not-an-ip") is None


def test_bad_inventory_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("systems:\n  - {code: x, level: 7, unit: u}\n")
    with pytest.raises(InventoryError, match=r"systems\[0\]\.level: 7 is not a security level"):
        load_inventory(path)
    path.write_text("zones:\n  - {name: z, cidrs: [10.0.0.0/33]}\n")
    with pytest.raises(InventoryError, match=r"zones\[0\]: invalid CIDR"):
        load_inventory(path)
    path.write_text("assets:\n  - {name: a, ips: [10.0.0.1], unit: u, systems: [nope]}\n")
    with pytest.raises(InventoryError, match="unknown system"):
        load_inventory(path)


DEVICE_INVENTORY = """
units:
  - {code: so-tttt, name: Sở Thông tin và Truyền thông}
zones:
  - {name: mgmt, cidrs: [10.10.0.0/24], site: ttdl}
systems:
  - {code: mang-ttdl, name: Mạng trung tâm dữ liệu, level: 4, unit: so-tttt}
assets:
  - name: fw-ttdl-01
    ips: [10.10.0.1, "2001:db8:10::1"]
    unit: so-tttt
    zone: mgmt
    systems: [mang-ttdl]
    kind: firewall
    vendor: Fortinet
    product: FortiGate 600E
    hostnames: [FW-TTDL-01.so-tttt.example, fgt600e]
  - {name: sw-core, ips: [10.10.0.2], unit: so-tttt, kind: switch, hostnames: core-sw}
"""


def test_device_attributes_and_names(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(DEVICE_INVENTORY, encoding="utf-8")
    inventory = load_inventory(path)
    fw, sw = inventory.assets
    assert (fw.kind, fw.vendor, fw.product) == ("firewall", "Fortinet", "FortiGate 600E")
    assert fw.hostnames == ("fw-ttdl-01.so-tttt.example", "fgt600e")
    assert (sw.kind, sw.vendor, sw.hostnames, sw.role) == ("switch", None, ("core-sw",), "server")
    lookup = IpLookup(inventory)
    assert lookup.asset("10.10.0.1") is fw and lookup.asset("10.10.0.9") is None
    assert lookup.asset("2001:db8:10:0::1") is fw  # another spelling of the address
    assert lookup.asset("not-an-ip") is None
    for name in ("FGT600E", "fw-ttdl-01", "fw-ttdl-01.so-tttt.example", "fgt600e.local"):
        assert lookup.asset_by_hostname(name) is fw, name
    assert lookup.asset_by_hostname("core-sw") is sw
    assert lookup.asset_by_hostname("nobody.example") is None
    ctx = lookup.asset_context(fw)
    assert (ctx.asset, ctx.zone, ctx.site, ctx.unit, ctx.level, ctx.internal) == (
        "fw-ttdl-01",
        "mgmt",
        "ttdl",
        "so-tttt",
        4,
        True,
    )
    assert ctx == lookup.lookup("10.10.0.1")  # by name or by address: the same context


def test_old_inventory_assets_have_no_device_attributes(lookup: IpLookup) -> None:
    db = lookup.asset("10.10.20.5")
    assert db is not None and (db.kind, db.vendor, db.product, db.hostnames) == (
        None,
        None,
        None,
        (),
    )
    assert lookup.asset_by_hostname("HIS-DB-01") is db  # the inventory name is a host name


def test_bad_hostnames_name_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("assets:\n  - {name: a, ips: [10.0.0.1], unit: u, hostnames: [1, '']}\n")
    with pytest.raises(InventoryError, match=r"assets\[0\]\.hostnames: expected a list"):
        load_inventory(path)
