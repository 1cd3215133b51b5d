"""Sigma loading and matching, correlation, hunts, YARA, threat intel, alerts, rule health."""
