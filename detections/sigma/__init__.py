"""Sigma rules: loading with pySigma and the streaming matcher for single-event rules."""

from detections.sigma.loader import (
    LoadedCorrelation,
    LoadedFilter,
    LoadedRule,
    RuleError,
    RuleLoadError,
    RuleSet,
    load_rules,
    rule_files,
)
from detections.sigma.matcher import (
    CompiledRule,
    CompileReport,
    EventView,
    Matcher,
    UnsupportedRule,
    compile_rule,
)

__all__ = [
    "CompileReport",
    "CompiledRule",
    "EventView",
    "LoadedCorrelation",
    "LoadedFilter",
    "LoadedRule",
    "Matcher",
    "RuleError",
    "RuleLoadError",
    "RuleSet",
    "UnsupportedRule",
    "compile_rule",
    "load_rules",
    "rule_files",
]
