"""FortiGate parser throughput: lines/s on one core for the conformance corpus lines.

    .venv/bin/python bench/parsers/fortigate.py [--lines 100000] [--repeat 3] [--profile]

The 56 lines of `fortinet_fortigate/log/test-fortinet.log` are repeated to `--lines` and parsed
`--repeat` times; the best CPU time (`time.process_time`) of the runs is reported, as lines/s,
with the spread of the runs (the machine is shared, so the best run is the figure to quote).
`--observer-ip` parses as the pipeline does for a syslog sender (`ctx.observer_ip` set).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from collectors.fortigate import parse  # noqa: E402
from collectors.parsing import SourceContext  # noqa: E402
from socmon.corpus import corpus_dir  # noqa: E402

CORPUS_FILE = "ecs-conformance/fortinet_fortigate/log/test-fortinet.log"


def corpus_lines() -> list[str]:
    base = corpus_dir()
    if base is None or not (base / CORPUS_FILE).is_file():
        raise SystemExit(f"corpus not found ({CORPUS_FILE}): set SOCMON_CORPUS")
    text = (base / CORPUS_FILE).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def run(lines: list[str], ctx: SourceContext) -> float:
    """CPU seconds to parse every line once."""
    started = time.process_time()
    for line in lines:
        parse(line, ctx)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--observer-ip", action="store_true", help="set ctx.observer_ip")
    parser.add_argument("--profile", action="store_true", help="cProfile one run instead")
    args = parser.parse_args()

    sample = corpus_lines()
    lines = (sample * (args.lines // len(sample) + 1))[: args.lines]
    ctx = SourceContext(observer_ip="192.0.2.10" if args.observer_ip else None)
    run(sample, ctx)  # warm the caches and the imports
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run, lines, ctx)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    times = [run(lines, ctx) for _ in range(args.repeat)]
    rates = sorted(len(lines) / t for t in times)
    print(
        f"fortigate: {len(lines)} lines ({len(sample)} distinct), best of {args.repeat}: "
        f"{rates[-1]:,.0f} lines/s (runs: {', '.join(f'{r:,.0f}' for r in rates)})"
    )


if __name__ == "__main__":
    main()
