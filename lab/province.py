"""A fictional province at realistic scale (DOMAIN.md §1, §6): the sample inventory.

Tỉnh Sông Lam (fictional): the provincial data centre (TTDL) with its zones, ~40 physical and
~250 virtual servers, 4 data-centre firewalls, 20 agency firewalls, edge routers, sensors,
storage; 18 departments on the WAN; 10 districts and 240 communes on TSLCD (250 TSLCD sites);
15 information systems (levels 2-4, dossiers at every stage, one state-secret system, both
regimes) with public ranges in every NCSC state. Deterministic (fixed seed): the committed
output in `lab/sample_province/` must equal a fresh generation (tests/lab/test_province.py).

    .venv/bin/python -m lab.province --out lab/sample_province

writes `province.yaml` and `csv/*.csv` through the inventory exporter (generated document
→ import into a scratch SQLite database → export), so the files are exactly what
`socmon inventory import` reads.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

SEED = 20261124
PROVINCE = "UBND-SL"
DC_UNIT = "TTCDS"  # the centre that runs the data centre
DC_SITE = "TTDL"

DEPARTMENTS = [
    ("VP-UBND", "Văn phòng UBND tỉnh"),
    ("SO-KHCN", "Sở Khoa học và Công nghệ"),
    ("SO-NV", "Sở Nội vụ"),
    ("SO-TC", "Sở Tài chính"),
    ("SO-TP", "Sở Tư pháp"),
    ("SO-CT", "Sở Công Thương"),
    ("SO-NNMT", "Sở Nông nghiệp và Môi trường"),
    ("SO-XD", "Sở Xây dựng"),
    ("SO-VHTTDL", "Sở Văn hóa, Thể thao và Du lịch"),
    ("SO-GDDT", "Sở Giáo dục và Đào tạo"),
    ("SO-YT", "Sở Y tế"),
    ("SO-DTTG", "Sở Dân tộc và Tôn giáo"),
    ("THANH-TRA", "Thanh tra tỉnh"),
    ("BQL-KKT", "Ban Quản lý Khu kinh tế"),
    ("DAI-PTTH", "Đài Phát thanh và Truyền hình"),
    ("SO-NGV", "Sở Ngoại vụ"),
    ("BCH-QS", "Bộ Chỉ huy Quân sự tỉnh"),
    ("CA-TINH", "Công an tỉnh"),
]
DISTRICTS = [
    "Sông Lam",
    "Hưng Phú",
    "An Hòa",
    "Đông Sơn",
    "Thạch Bàn",
    "Kỳ Lân",
    "Ngọc Sơn",
    "Phước Long",
    "Tân Yên",
    "Vĩnh Lộc",
]
COMMUNE_WORDS = [
    "An",
    "Bình",
    "Cẩm",
    "Diễn",
    "Đức",
    "Gia",
    "Hòa",
    "Hưng",
    "Khánh",
    "Lạc",
    "Minh",
    "Nghĩa",
    "Phú",
    "Quang",
    "Sơn",
    "Tân",
    "Thạch",
    "Thanh",
    "Trung",
    "Vĩnh",
    "Xuân",
    "Yên",
]
COMMUNE_TAILS = [
    "Thịnh",
    "Lộc",
    "Phước",
    "Hải",
    "Tiến",
    "Thuận",
    "Hòa",
    "Lâm",
    "Phong",
    "Mỹ",
    "Long",
    "Trạch",
]

# Data-centre zones (DOMAIN.md §1): kind, CIDR, internal.
DC_ZONES = [
    ("ttdl-edge", "outside_edge", "10.0.0.0/24", False),
    ("ttdl-soc", "soc", "10.0.1.0/24", True),
    ("ttdl-core", "core", "10.0.2.0/24", True),
    ("ttdl-dmz", "dmz", "10.0.16.0/22", True),
    ("ttdl-internal", "internal_servers", "10.0.32.0/21", True),
    ("ttdl-db", "database", "10.0.48.0/22", True),
    ("ttdl-storage", "storage", "10.0.56.0/24", True),
    ("ttdl-mgmt", "management", "10.0.60.0/24", True),
]

# code, name, owner, level, dossier, regime, secret, tiers (web/app/db VMs), public /28s
# with their NCSC status.
SYSTEMS: list[tuple[str, str, str, int, str, str, bool, tuple[int, int, int], list[str]]] = [
    (
        "CONG-TTDT",
        "Cổng thông tin điện tử tỉnh",
        "VP-UBND",
        3,
        "approved",
        "nd85",
        False,
        (6, 4, 2),
        ["registered", "registered"],
    ),
    (
        "DVC",
        "Cổng dịch vụ công và Hệ thống thông tin giải quyết thủ tục hành chính (một cửa điện tử)",
        "VP-UBND",
        3,
        "approved",
        "nd85",
        False,
        (8, 10, 4),
        ["registered", "submitted"],
    ),
    (
        "QLVB",
        "Hệ thống quản lý văn bản và điều hành (QLVB&ĐH)",
        "VP-UBND",
        3,
        "approved",
        "nd85",
        False,
        (4, 8, 3),
        ["registered"],
    ),
    (
        "LGSP",
        "Nền tảng tích hợp, chia sẻ dữ liệu cấp tỉnh (LGSP, ESB)",
        DC_UNIT,
        3,
        "appraised",
        "nd331",
        False,
        (2, 8, 2),
        ["unregistered"],
    ),
    (
        "SSO",
        "Hệ thống xác thực tập trung (IAM/SSO)",
        DC_UNIT,
        3,
        "returned",
        "nd331",
        False,
        (2, 4, 2),
        ["submitted"],
    ),
    (
        "EMAIL",
        "Hệ thống thư điện tử công vụ",
        DC_UNIT,
        2,
        "approved",
        "nd85",
        False,
        (4, 6, 2),
        ["registered"],
    ),
    (
        "BAOCAO",
        "Hệ thống thông tin báo cáo tỉnh",
        "VP-UBND",
        2,
        "submitted",
        "nd331",
        False,
        (2, 4, 2),
        [],
    ),
    (
        "CSDL-DC",
        "Cơ sở dữ liệu dùng chung của tỉnh",
        DC_UNIT,
        3,
        "draft",
        "nd331",
        False,
        (0, 4, 8),
        [],
    ),
    (
        "HNTH",
        "Hệ thống hội nghị truyền hình trực tuyến",
        "VP-UBND",
        2,
        "approved",
        "nd85",
        False,
        (2, 4, 1),
        ["unregistered"],
    ),
    (
        "SOC",
        "Hệ thống giám sát an toàn thông tin tập trung (SOC)",
        DC_UNIT,
        3,
        "appraised",
        "nd331",
        False,
        (0, 8, 4),
        [],
    ),
    (
        "QLVB-MAT",
        "Hệ thống quản lý văn bản mật",
        "VP-UBND",
        4,
        "approved",
        "nd85",
        True,
        (0, 3, 2),
        [],
    ),
    (
        "CSDL-DATDAI",
        "Cơ sở dữ liệu đất đai",
        "SO-NNMT",
        3,
        "approved",
        "nd85",
        False,
        (2, 6, 4),
        ["registered"],
    ),
    (
        "YTE-KCB",
        "Hệ thống quản lý khám chữa bệnh và hồ sơ sức khỏe",
        "SO-YT",
        3,
        "draft",
        "nd331",
        False,
        (2, 6, 4),
        ["unregistered"],
    ),
    (
        "GDDT",
        "Cơ sở dữ liệu ngành giáo dục",
        "SO-GDDT",
        2,
        "redetermination",
        "nd331",
        False,
        (2, 4, 2),
        ["submitted"],
    ),
    (
        "HATANG-TTDL",
        "Hạ tầng Trung tâm dữ liệu tỉnh",
        DC_UNIT,
        4,
        "approved",
        "nd85",
        False,
        (0, 0, 0),
        ["registered"],
    ),
]

WINDOWS = ["Windows Server 2019", "Windows Server 2022"]
LINUX = ["Ubuntu 22.04", "Ubuntu 24.04", "Red Hat Enterprise Linux 8", "Oracle Linux 8"]


def _linux_sources(role: str) -> list[str]:
    out = ["system.auth", "auditd.log"]
    if role == "web":
        out.append("nginx.access")
    return out


def generate(seed: int = SEED) -> dict[str, list[dict[str, Any]]]:
    """The province as an import document (see inventory/io.py)."""
    rng = random.Random(seed)
    units: list[dict[str, Any]] = [
        {"code": PROVINCE, "name": "UBND tỉnh Sông Lam", "kind": "province"},
        {
            "code": DC_UNIT,
            "name": "Trung tâm Chuyển đổi số tỉnh",
            "kind": "centre",
            "parent": "SO-KHCN",
        },
        {
            "code": "VNPT-SL",
            "name": "VNPT Sông Lam (đơn vị cung cấp dịch vụ giám sát)",
            "kind": "provider",
        },
    ]
    sites: list[dict[str, Any]] = [
        {"code": DC_SITE, "name": "Trung tâm dữ liệu tỉnh", "kind": "data_centre", "unit": DC_UNIT}
    ]
    links: list[dict[str, Any]] = []
    zones: list[dict[str, Any]] = [
        {"name": n, "kind": k, "cidrs": [c], "internal": internal, "site": DC_SITE}
        for n, k, c, internal in DC_ZONES
    ]
    assets: list[dict[str, Any]] = []
    members: dict[str, list[str]] = {s[0]: [] for s in SYSTEMS}

    def asset(**kw: Any) -> dict[str, Any]:
        kw.setdefault("virtual", False)
        assets.append(kw)
        return kw

    # Data-centre network and security devices.
    for i, (vendor, product, src, soft) in enumerate(
        [
            ("Fortinet", "FortiGate 1800F", "fortinet.fortigate", False),
            ("Fortinet", "FortiGate 1800F", "fortinet.fortigate", False),
            ("Palo Alto Networks", "PA-5220", "panw.panos", False),
            ("Netgate", "pfSense", "pfsense.log", True),
        ],
        start=1,
    ):
        asset(
            name=f"dc-fw{i:02d}",
            kind="firewall",
            role="firewall",
            unit=DC_UNIT,
            site=DC_SITE,
            zone="ttdl-edge" if i <= 2 else "ttdl-core",
            ips=[f"10.0.{0 if i <= 2 else 2}.{i}"],
            vendor=vendor,
            product=product,
            virtual=soft,
            log_sources=[src],
        )
        members["HATANG-TTDL"].append(f"dc-fw{i:02d}")
    edge = [("tslcd", "rt-tslcd01"), ("wan", "rt-wan01"), ("internet", "rt-inet01")]
    edge.append(("internet", "rt-inet02"))
    for n, (_, name) in enumerate(edge, start=1):
        asset(
            name=name,
            kind="router",
            role="edge-router",
            unit=DC_UNIT,
            site=DC_SITE,
            zone="ttdl-edge",
            ips=[f"10.0.0.{10 + n}"],
            vendor="Cisco",
            product="ASR 1001-X",
            log_sources=["cisco_ios.log"],
        )
        members["HATANG-TTDL"].append(name)
    for n, zone in enumerate(["ttdl-edge", "ttdl-dmz", "ttdl-db"], start=1):
        asset(
            name=f"sensor{n:02d}",
            kind="sensor",
            role="nids",
            unit=DC_UNIT,
            site=DC_SITE,
            zone="ttdl-soc",
            ips=[f"10.0.1.{20 + n}"],
            vendor="OISF",
            product="Suricata",
            os="Ubuntu 22.04",
            log_sources=["suricata.eve", "system.auth"],
        )
        members["SOC"].append(f"sensor{n:02d}")
        del zone
    for n in (1, 2):
        asset(
            name=f"dc-ddos{n:02d}",
            kind="anti_ddos",
            role="anti-ddos",
            unit=DC_UNIT,
            site=DC_SITE,
            zone="ttdl-edge",
            ips=[f"10.0.0.{30 + n}"],
            vendor="Arbor",
            product="APS 2800",
            log_sources=["syslog"],
        )
        asset(
            name=f"dc-core-sw{n:02d}",
            kind="switch",
            role="core-switch",
            unit=DC_UNIT,
            site=DC_SITE,
            zone="ttdl-core",
            ips=[f"10.0.2.{10 + n}"],
            vendor="Cisco",
            product="Nexus 9300",
            log_sources=["cisco_ios.log"],
        )
        members["HATANG-TTDL"] += [f"dc-ddos{n:02d}", f"dc-core-sw{n:02d}"]
    for n in range(1, 6):
        asset(
            name=f"dc-san{n:02d}",
            kind="storage",
            role="san",
            unit=DC_UNIT,
            site=DC_SITE,
            zone="ttdl-storage",
            ips=[f"10.0.56.{10 + n}"],
            vendor="Dell",
            product="PowerStore 1200T",
            log_sources=["syslog"],
        )
    asset(
        name="dc-nas-backup01",
        kind="storage",
        role="backup",
        unit=DC_UNIT,
        site=DC_SITE,
        zone="ttdl-storage",
        ips=["10.0.56.50"],
        vendor="Synology",
        product="RS3621xs+",
        log_sources=["syslog"],
    )
    links += [
        {
            "code": "TTDL-TSLCD",
            "kind": "tslcd",
            "site": DC_SITE,
            "edge_router": "rt-tslcd01",
            "sensor": "sensor01",
            "bandwidth_mbps": 1000.0,
            "provider": "Cục Bưu điện Trung ương",
        },
        {
            "code": "TTDL-WAN",
            "kind": "wan",
            "site": DC_SITE,
            "edge_router": "rt-wan01",
            "sensor": "sensor01",
            "bandwidth_mbps": 1000.0,
            "provider": "VNPT",
        },
        {
            "code": "TTDL-INET1",
            "kind": "internet",
            "site": DC_SITE,
            "edge_router": "rt-inet01",
            "sensor": "sensor01",
            "bandwidth_mbps": 200.0,
            "provider": "Viettel",
        },
        {
            "code": "TTDL-INET2",
            "kind": "internet",
            "site": DC_SITE,
            "edge_router": "rt-inet02",
            "sensor": "sensor01",
            "bandwidth_mbps": 100.0,
            "provider": "VNPT",
        },
    ]

    # Physical servers: hypervisors, database hosts, backup, SOC hardware.
    physical = 0
    for n in range(1, 25):
        physical += 1
        asset(
            name=f"dc-hv{n:02d}",
            kind="server",
            role="hypervisor",
            unit=DC_UNIT,
            site=DC_SITE,
            zone="ttdl-mgmt",
            ips=[f"10.0.60.{10 + n}"],
            os="VMware ESXi 8.0",
            vendor="Dell",
            product="PowerEdge R750",
            log_sources=["syslog"],
        )
        members["HATANG-TTDL"].append(f"dc-hv{n:02d}")
    for n in range(1, 9):
        physical += 1
        asset(
            name=f"dc-dbphys{n:02d}",
            kind="server",
            role="database",
            unit=DC_UNIT,
            site=DC_SITE,
            zone="ttdl-db",
            ips=[f"10.0.48.{200 + n}"],
            os=rng.choice(["Oracle Linux 8", "Red Hat Enterprise Linux 8"]),
            vendor="HPE",
            product="ProLiant DL380 Gen10",
            log_sources=["system.auth", "auditd.log"],
        )
        members["CSDL-DC"].append(f"dc-dbphys{n:02d}")
    for n in range(1, 5):
        physical += 1
        asset(
            name=f"dc-bk{n:02d}",
            kind="server",
            role="backup",
            unit=DC_UNIT,
            site=DC_SITE,
            zone="ttdl-storage",
            ips=[f"10.0.56.{100 + n}"],
            os="Windows Server 2022",
            vendor="Dell",
            product="PowerEdge R650",
            log_sources=["windows.other"],
        )
        members["HATANG-TTDL"].append(f"dc-bk{n:02d}")
    for n in range(1, 5):
        physical += 1
        asset(
            name=f"soc-node{n:02d}",
            kind="server",
            role="siem",
            unit=DC_UNIT,
            site=DC_SITE,
            zone="ttdl-soc",
            ips=[f"10.0.1.{100 + n}"],
            hostnames=[f"soc-node{n:02d}.ttdl.songlam.gov.vn"],
            os="Ubuntu 24.04",
            vendor="Dell",
            product="PowerEdge R760",
            log_sources=["system.auth", "auditd.log", "journald"],
        )
        members["SOC"].append(f"soc-node{n:02d}")
    assert physical == 40

    # Virtual servers of the systems: web in the DMZ, app in the internal zone, db in DB.
    counters = {"ttdl-dmz": 10, "ttdl-internal": 10, "ttdl-db": 10}
    bases = {"ttdl-dmz": (10, 0, 16), "ttdl-internal": (10, 0, 32), "ttdl-db": (10, 0, 48)}

    def next_ip(zone: str) -> str:
        a, b, c = bases[zone]
        n = counters[zone]
        counters[zone] += 1
        return f"{a}.{b}.{c + n // 256}.{n % 256}"

    virtual = 0
    for code, _name, owner, *_rest, tiers, _ranges in SYSTEMS:
        for tier, count, zone in zip(
            ("web", "app", "db"), tiers, ("ttdl-dmz", "ttdl-internal", "ttdl-db"), strict=True
        ):
            for n in range(1, count + 1):
                virtual += 1
                name = f"{code.lower()}-{tier}{n:02d}"
                windows = tier == "app" and rng.random() < 0.3
                os_name = rng.choice(WINDOWS) if windows else rng.choice(LINUX)
                asset(
                    name=name,
                    kind="server",
                    role={"web": "web", "app": "application", "db": "database"}[tier],
                    unit=owner,
                    site=DC_SITE,
                    zone=zone,
                    ips=[next_ip(zone)],
                    hostnames=[f"{name}.ttdl.songlam.gov.vn"],
                    os=os_name,
                    virtual=True,
                    log_sources=["windows.other"] if windows else _linux_sources(tier),
                )
                members[code].append(name)
    # Shared virtual infrastructure (AD, DNS, antivirus, patching, jump hosts...).
    shared = [
        ("ad", "directory", "ttdl-internal", True),
        ("dns", "dns", "ttdl-dmz", False),
        ("av", "antivirus", "ttdl-internal", True),
        ("wsus", "patching", "ttdl-internal", True),
        ("jump", "bastion", "ttdl-mgmt", False),
        ("ntp", "ntp", "ttdl-internal", False),
        ("proxy", "proxy", "ttdl-dmz", False),
        ("mon", "monitoring", "ttdl-mgmt", False),
    ]
    mgmt = 100
    while virtual < 250:
        for short, role, zone, windows in shared:
            if virtual >= 250:
                break
            virtual += 1
            name = f"dc-{short}{virtual:03d}"
            if zone == "ttdl-mgmt":
                mgmt += 1
                ip = f"10.0.60.{mgmt}"
            else:
                ip = next_ip(zone)
            asset(
                name=name,
                kind="server",
                role=role,
                unit=DC_UNIT,
                site=DC_SITE,
                zone=zone,
                ips=[ip],
                os=rng.choice(WINDOWS) if windows else rng.choice(LINUX),
                virtual=True,
                log_sources=["windows.other"] if windows else _linux_sources(role),
            )
            members["HATANG-TTDL"].append(name)

    # Departments on the WAN: a unit, an office, its LAN and its perimeter firewall.
    for d, (code, name) in enumerate(DEPARTMENTS, start=1):
        units.append({"code": code, "name": name, "kind": "department", "parent": PROVINCE})
        site = f"{code}-TS"
        sites.append({"code": site, "name": f"Trụ sở {name}", "kind": "department", "unit": code})
        zones.append(
            {
                "name": f"lan-{code.lower()}",
                "kind": "agency_lan",
                "cidrs": [f"10.20.{d}.0/24"],
                "internal": True,
                "site": site,
            }
        )
        fw = f"fw-{code.lower()}"
        vendor, product, src = rng.choice(
            [
                ("Fortinet", "FortiGate 100F", "fortinet.fortigate"),
                ("Sophos", "XGS 2100", "sophos.xg"),
                ("Cisco", "Firepower 1140", "cisco_asa.log"),
            ]
        )
        asset(
            name=fw,
            kind="firewall",
            role="perimeter-firewall",
            unit=code,
            site=site,
            zone=f"lan-{code.lower()}",
            ips=[f"10.20.{d}.1"],
            vendor=vendor,
            product=product,
            log_sources=[src],
        )
        links.append(
            {
                "code": f"{code}-WAN",
                "kind": "wan",
                "site": site,
                "edge_router": fw,
                "bandwidth_mbps": float(rng.choice([50, 100, 200])),
                "provider": "VNPT",
            }
        )

    # Districts (TSLCD) and their communes (TSLCD): 10 + 240 sites.
    commune_names: set[str] = set()
    c = 0
    for k, dname in enumerate(DISTRICTS, start=1):
        dcode = f"H{k:02d}"
        units.append(
            {
                "code": dcode,
                "name": f"UBND huyện {dname}",
                "kind": "district",
                "parent": PROVINCE,
            }
        )
        site = f"{dcode}-TS"
        sites.append(
            {"code": site, "name": f"Trụ sở UBND huyện {dname}", "kind": "district", "unit": dcode}
        )
        zones.append(
            {
                "name": f"lan-{dcode.lower()}",
                "kind": "agency_lan",
                "cidrs": [f"172.17.{k}.0/24"],
                "internal": True,
                "site": site,
            }
        )
        edge_router = None
        if k <= 2:  # the two districts with their own perimeter firewall (20 agency firewalls)
            edge_router = f"fw-{dcode.lower()}"
            asset(
                name=edge_router,
                kind="firewall",
                role="perimeter-firewall",
                unit=dcode,
                site=site,
                zone=f"lan-{dcode.lower()}",
                ips=[f"172.17.{k}.1"],
                vendor="Fortinet",
                product="FortiGate 60F",
                log_sources=["fortinet.fortigate"],
            )
        links.append(
            {
                "code": f"{dcode}-TSLCD",
                "kind": "tslcd",
                "site": site,
                "edge_router": edge_router,
                "bandwidth_mbps": 100.0,
                "provider": "Cục Bưu điện Trung ương",
            }
        )
        for _ in range(24):
            c += 1
            while True:
                cname = f"{rng.choice(COMMUNE_WORDS)} {rng.choice(COMMUNE_TAILS)}"
                if cname not in commune_names:
                    commune_names.add(cname)
                    break
            ccode = f"X{c:03d}"
            kind = "phường" if rng.random() < 0.2 else "xã"
            units.append(
                {"code": ccode, "name": f"UBND {kind} {cname}", "kind": "commune", "parent": dcode}
            )
            csite = f"{ccode}-TS"
            sites.append(
                {
                    "code": csite,
                    "name": f"Trụ sở UBND {kind} {cname}",
                    "kind": "commune",
                    "unit": ccode,
                }
            )
            zones.append(
                {
                    "name": f"lan-{ccode.lower()}",
                    "kind": "agency_lan",
                    "cidrs": [f"172.16.{c}.0/24"],
                    "internal": True,
                    "site": csite,
                }
            )
            links.append(
                {
                    "code": f"{ccode}-TSLCD",
                    "kind": "tslcd",
                    "site": csite,
                    "bandwidth_mbps": float(rng.choice([10, 20, 40])),
                    "provider": "Cục Bưu điện Trung ương",
                }
            )

    systems: list[dict[str, Any]] = []
    block = 0
    for n, (code, name, owner, level, status, regime, secret, _tiers, statuses) in enumerate(
        SYSTEMS, start=1
    ):
        ranges = []
        for st in statuses:
            net = (
                f"203.0.113.{block * 16}/28" if block < 16 else f"198.51.100.{(block - 16) * 16}/28"
            )
            block += 1
            r: dict[str, Any] = {"cidr": net, "ncsc_status": st}
            if st == "registered":
                r["registered_on"] = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            ranges.append(r)
        sys_row: dict[str, Any] = {
            "code": code,
            "name": name,
            "unit": owner,
            "level": level,
            "dossier_status": status,
            "regime": regime,
            "state_secret": secret,
            "assets": sorted(members[code]),
            "public_ranges": ranges,
        }
        if status == "approved":
            year = 2020 + rng.randint(0, 5)
            sys_row["decision_number"] = f"{rng.randint(100, 3999)}/QĐ-UBND"
            sys_row["decision_date"] = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        systems.append(sys_row)
        del n
    return {
        "units": units,
        "sites": sites,
        "links": links,
        "zones": zones,
        "assets": assets,
        "systems": systems,
    }


def render(doc: dict[str, list[dict[str, Any]]]) -> tuple[str, dict[str, str]]:
    """The document through import and export: (YAML text, CSV files). Raises on any
    import error (the generator and the validation disagree)."""
    import yaml

    from inventory.io import import_document, read_yaml, snapshot, to_csv, to_yaml
    from socmon.db import Database

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'province.db'}")
        try:
            db.migrate()
            with db.session() as session:
                text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
                result = import_document(session, read_yaml(text, "province"), actor="lab")
                if result.errors:
                    raise ValueError("\n".join(str(e) for e in result.errors[:20]))
            with db.session() as session:
                snap = snapshot(session)
        finally:
            db.dispose()
    return to_yaml(snap), to_csv(snap)


def write(out: Path, seed: int = SEED) -> list[Path]:
    text, files = render(generate(seed))
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "province.yaml"]
    written[0].write_text(text, encoding="utf-8")
    csv_dir = out / "csv"
    if csv_dir.exists():
        shutil.rmtree(csv_dir)
    csv_dir.mkdir()
    for name, body in files.items():
        (csv_dir / name).write_text(body, encoding="utf-8")
        written.append(csv_dir / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", default="lab/sample_province", type=Path)
    parser.add_argument("--seed", default=SEED, type=int)
    args = parser.parse_args(argv)
    for p in write(args.out, args.seed):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
