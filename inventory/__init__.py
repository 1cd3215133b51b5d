"""Assets, zones, sites, links, information systems and the IP -> context lookup."""
