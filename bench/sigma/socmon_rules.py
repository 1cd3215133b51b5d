"""socmon's side of `bench/sigma`: loading and compiling the rules, reading the events.

Rules are compiled with socmon's public API, as `socmon match` and the detect stage compile
them: `load_rules`, then `Matcher.from_ruleset(ruleset)`, which rewrites each rule to socmon's
ECS (`detections/sigma/mapping.py`: SigmaHQ's Windows field names to `winlog.*`, logsource
routing to the channels and event ids that carry it, one compiled copy per route).

Events are read as `socmon import evtx` reads them (the `evtx` package, compact JSON) and
parsed with socmon's Windows parser (`collectors.windows.parse.parse`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from zircolite_approach import read_records  # noqa: E402

from collectors.parsing import ParseError, SourceContext  # noqa: E402
from collectors.windows.parse import parse  # noqa: E402
from detections.sigma import CompileReport, Matcher, RuleSet, load_rules  # noqa: E402


@dataclass
class Compiled:
    matcher: Matcher
    ruleset: RuleSet
    report: CompileReport
    load_s: float
    compile_s: float
    cpu_s: float
    """CPU time of loading and compiling"""


def compile_rules(paths: Sequence[Path]) -> Compiled:
    """Load and compile every rule under `paths`, timing both steps."""
    t, cpu = time.perf_counter(), time.process_time()
    ruleset = load_rules(list(paths))
    loaded = time.perf_counter()
    matcher, report = Matcher.from_ruleset(ruleset)
    return Compiled(
        matcher,
        ruleset,
        report,
        loaded - t,
        time.perf_counter() - loaded,
        time.process_time() - cpu,
    )


def read_events(files: Sequence[Path]) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    """(file, record number, ECS event) for every record, parsed as socmon parses it."""
    contexts: dict[Path, SourceContext] = {}
    for path, number, data in read_records(files):
        ctx = contexts.get(path)
        if ctx is None:
            ctx = contexts[path] = SourceContext(extra={"log.file.path": str(path)})
        try:
            doc = parse(data, ctx)
        except ParseError as e:  # stored as a parse failure by the pipeline; matched all the same
            doc = {
                "event": {"kind": "event", "dataset": "windows.other", "original": data},
                "tags": ["_parse_failure"],
                "error": {"message": str(e), "type": "parse_failure"},
            }
        yield path, number, doc
