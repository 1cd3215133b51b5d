"""Compliance of information systems: catalogue, live checks, evaluation, reports (issue 7)."""
