from pathlib import Path
from typing import Any

from collectors.enrich import Enricher, community_id
from inventory import IpLookup, load_inventory
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
