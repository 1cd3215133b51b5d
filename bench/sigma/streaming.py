"""Streaming steady state of socmon's Sigma matcher: events/s on one core, all rules loaded.

    .venv/bin/python bench/sigma/streaming.py [--rules DIR] [--evtx DIR] [--replay N]
        [--min-events 50000] [--quick] [--json-out FILE] [--profile]

The rules are loaded and compiled once (timed). Every EVTX record is parsed with socmon's
Windows parser into its ECS dict beforehand (not timed). Then `matcher.match(event)` runs over
the events, the corpus repeated `--replay` times (at least `--min-events` events in all), in
this one process: events/s by CPU time (`time.process_time`, what one core does whatever else
the shared machine runs) and by wall-clock time. Peak RSS is this process's (rules compiled,
events held in memory).
"""

from __future__ import annotations

import argparse
import cProfile
import math
import pstats
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from socmon_rules import compile_rules, read_events
from zircolite_approach import (
    default_evtx,
    default_rules,
    evtx_files,
    quick_subset,
    rule_files,
)


def run(
    rule_paths: Sequence[Path],
    files: Sequence[Path],
    *,
    replay: int | None = None,
    min_events: int = 50_000,
    profile: bool = False,
) -> dict[str, Any]:
    compiled = compile_rules(rule_paths)
    events = [ev for _, _, ev in read_events(files)]
    if not events:
        raise SystemExit("no events read")
    n = replay if replay is not None else max(1, math.ceil(min_events / len(events)))
    stream = events * n
    match = compiled.matcher.match
    for ev in events[:200]:  # warm the caches the first events fill
        match(ev)
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [match(ev) for ev in stream])
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    matched: Counter[str] = Counter()
    cpu, wall = time.process_time(), time.perf_counter()
    for ev in stream:
        for rule in match(ev):
            matched[rule.id] += 1
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "rules_files": len(compiled.ruleset.files),
        "rules_loaded": len(compiled.ruleset.rules),
        "rules_compiled": len(compiled.report.compiled),
        "rule_ids_compiled": len({r.id for r in compiled.report.compiled}),
        "rules_unsupported": len(compiled.report.unsupported),
        "rule_errors": len(compiled.ruleset.errors),
        "load_s": compiled.load_s,
        "compile_s": compiled.compile_s,
        "compile_cpu_s": compiled.cpu_s,
        "corpus_events": len(events),
        "replay": n,
        "events": len(stream),
        "matches": sum(matched.values()),
        "rules_matched": len(matched),
        "match_cpu_s": cpu,
        "match_wall_s": wall,
        "events_per_s_cpu": len(stream) / cpu if cpu else float("inf"),
        "events_per_s_wall": len(stream) / wall if wall else float("inf"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rules", type=Path, action="append", help="rule folder or file")
    parser.add_argument("--evtx", type=Path, action="append", help="EVTX folder or file")
    parser.add_argument("--replay", type=int, help="repeat the corpus N times")
    parser.add_argument("--min-events", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="a subset of rules and files")
    parser.add_argument("--profile", action="store_true", help="cProfile a pass first")
    parser.add_argument("--json-out", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)
    rule_paths = args.rules or [default_rules()]
    files = evtx_files(args.evtx or [default_evtx()])
    if args.quick:
        rule_paths = quick_subset(rule_files(rule_paths), 150)
        files = quick_subset(files, 40)
    result = run(
        rule_paths, files, replay=args.replay, min_events=args.min_events, profile=args.profile
    )
    if args.json_out is not None:
        args.json_out.write_bytes(orjson.dumps(result))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
