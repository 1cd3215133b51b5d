"""FortiGate parser throughput: lines/s on one core for the conformance corpus lines.

    .venv/bin/python bench/parsers/fortigate.py [--lines 100000] [--repeat 3] [--profile]

The 56 lines of `fortinet_fortigate/log/test-fortinet.log` are repeated to `--lines` and parsed
`--repeat` times; the best CPU time (`time.process_time`) of the runs is reported, as lines/s,
with the spread of the runs (the machine is shared, so the best run is the figure to quote).
`--observer-ip` parses as the pipeline does for a syslog sender (`ctx.observer_ip` set).
`--distinct-ips` gives every repeated line its own IPv4 addresses (the last two octets become the
line's index, so private stays private): the parser's address caches then miss as they do on
live traffic, where the repeated corpus lets them hit every time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from collectors.fortigate import parse
from collectors.parsing import SourceContext
from socmon.corpus import corpus_dir

CORPUS_FILE = "ecs-conformance/fortinet_fortigate/log/test-fortinet.log"


def corpus_lines() -> list[str]:
    base = corpus_dir()
    if base is None or not (base / CORPUS_FILE).is_file():
        raise SystemExit(f"corpus not found ({CORPUS_FILE}): set SOCMON_CORPUS")
    text = (base / CORPUS_FILE).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


_IPV4 = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}\b")


def distinct_ips(lines: list[str]) -> list[str]:
    """`lines` with the last two octets of each IPv4 address replaced by the line's index."""
    out = []
    for index, line in enumerate(lines):
        tail = f"{(index >> 8) & 255}.{index & 255}"
        out.append(_IPV4.sub(lambda m, tail=tail: f"{m[1]}.{m[2]}.{tail}", line))
    return out


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
    parser.add_argument("--distinct-ips", action="store_true", help="no address repeats")
    parser.add_argument("--profile", action="store_true", help="cProfile one run instead")
    args = parser.parse_args()

    sample = corpus_lines()
    lines = (sample * (args.lines // len(sample) + 1))[: args.lines]
    if args.distinct_ips:
        lines = distinct_ips(lines)
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
        f"fortigate: {len(lines)} lines ({len(sample)} distinct"
        f"{', distinct IPs' if args.distinct_ips else ''}), best of {args.repeat}: "
        f"{rates[-1]:,.0f} lines/s (runs: {', '.join(f'{r:,.0f}' for r in rates)})"
    )


if __name__ == "__main__":
    main()
