"""Sources, vendor parsers to ECS, enrichment, event ids, shipping, source health."""
