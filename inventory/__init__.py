"""Assets, zones, sites, links, information systems and the IP -> context lookup."""

from inventory.load import InventoryError, load_inventory
from inventory.lookup import IpContext, IpLookup
from inventory.model import Asset, InfoSystem, Inventory, Link, Site, Unit, Zone

__all__ = [
    "Asset",
    "InfoSystem",
    "Inventory",
    "InventoryError",
    "IpContext",
    "IpLookup",
    "Link",
    "Site",
    "Unit",
    "Zone",
    "load_inventory",
]
