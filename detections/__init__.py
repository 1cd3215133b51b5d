"""Sigma loading and matching, correlation, hunts, YARA, threat intel, alerts, rule health."""

from detections.alerts import build_alert
from detections.engine import BUILTIN_RULES, DetectStage, load_matcher

__all__ = ["BUILTIN_RULES", "DetectStage", "build_alert", "load_matcher"]
