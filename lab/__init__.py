"""Drill scenarios, generators, injection and scoring."""
