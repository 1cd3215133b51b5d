"""Parser throughput: lines/s on one core for every registered parser, on its sample lines.

    .venv/bin/python bench/parsers/run.py [--lines 100000] [--repeat 3] [--only NAME]...
        [--distinct-ips] [--profile NAME] [--observer-ip]

Samples: the ECS conformance records of the parser (the vendor directories and parsers of
`tests/collectors/test_conformance.py`, each record with the `SourceContext` its test config
gives); Windows: the SigmaHQ regression JSON objects the Windows parser test checks against
their EVTX twins; apache and nginx, which have no conformance corpus: their golden fixture
lines. Records the parser refuses (`ParseError`) are left out and counted. The sample is
repeated to `--lines` and parsed `--repeat` times; the best CPU time (`time.process_time`) is
reported (the machine is shared, so the best run is the figure to quote).

`--distinct-ips` gives every repeated line its own IPv4 addresses (the last two octets become
the line's index, so private stays private): address caches then miss as on live traffic,
where the repeated sample lets them hit every time. Without `--only`, both figures are given for
the key=value / CSV firewall formats, which carry the 50,000 lines/s goal.
The goal column is "yes" when the lower of the two figures reaches 50,000 lines/s.
`--profile NAME` runs cProfile over one pass of that parser and prints the top 25 by own time.
`--observer-ip` parses as the pipeline does for a syslog sender (`ctx.observer_ip` set).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import pstats
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import git_rev, machine, table  # noqa: E402

from collectors.parsing import ParseError, Parser, SourceContext  # noqa: E402
from collectors.registry import PARSERS  # noqa: E402
from socmon.corpus import corpus_dir  # noqa: E402
from tests.collectors.conformance import load_cases, vendor_path  # noqa: E402
from tests.collectors.test_conformance import VENDOR_PARSERS  # noqa: E402

GOAL = 50_000
# The key=value / CSV firewall formats, which carry the goal. "kv": named pairs - FortiGate and
# Sophos XG `key=value`, Check Point `key:"value";`, SRX RFC 5424 structured data
# `key="value"`, netfilter `KEY=value` (plus bare flags); "CSV": positional comma-separated
# columns - PAN-OS and pfSense filterlog (pfSense's sample also holds OpenVPN text lines).
# Cisco ASA and IOS are free text with one pattern per message id, so "other", like the
# remaining parsers (syslog, auth, audit, web, IDS, Windows JSON).
FORMATS: dict[str, str] = {
    "fortigate": "kv",
    "sophos_xg": "kv",
    "checkpoint": "kv",
    "srx": "kv",
    "iptables": "kv",
    "panos": "CSV",
    "pfsense": "CSV",
}
FIXTURE_PARSERS = ("apache", "nginx")
WINDOWS_SAMPLES = "sigma/regression_data"

Sample = list[tuple[str, SourceContext]]


@dataclass
class Measure:
    """One parser's figures."""

    name: str
    sample: int
    refused: int
    rate: float
    rate_distinct: float | None


# --------------------------------------------------------------------------- samples


def conformance_samples() -> dict[str, Sample]:
    """Parser name -> its conformance records, each with its test's `SourceContext`."""
    by_function = {id(function): name for name, function in PARSERS.items()}
    samples: dict[str, Sample] = {}
    for vendor, function in VENDOR_PARSERS.items():
        name = by_function.get(id(function))
        path = vendor_path(vendor)
        if name is None or path is None:
            continue
        for case in load_cases(path):
            ctx = case.config.context()
            samples.setdefault(name, []).extend((record, ctx) for record in case.records)
    return samples


def fixture_sample(name: str) -> Sample:
    """The golden fixture lines of a parser without conformance corpus."""
    ctx = SourceContext()
    folder = ROOT / "tests" / "collectors" / name / "fixtures"
    return [
        (line, ctx)
        for path in sorted(folder.glob("*.log"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def windows_sample(base: Path) -> Sample:
    """The (pretty-printed) evtx JSON objects of the SigmaHQ regression samples."""
    ctx = SourceContext()
    decoder = json.JSONDecoder()
    out: Sample = []
    for path in sorted((base / WINDOWS_SAMPLES).rglob("*.json")):
        text = path.read_text(encoding="utf-8")
        i = 0
        while True:
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                break
            _, end = decoder.raw_decode(text, i)
            out.append((text[i:end], ctx))
            i = end
    return out


def all_samples() -> dict[str, Sample]:
    base = corpus_dir()
    if base is None:
        raise SystemExit("corpus not found: set SOCMON_CORPUS")
    samples = conformance_samples()
    for name in FIXTURE_PARSERS:
        samples[name] = fixture_sample(name)
    samples["windows"] = windows_sample(base)
    return samples


def accepted(parse: Parser, sample: Sample) -> Sample:
    """The records `parse` turns into a document (refusals are not what is measured)."""
    kept = []
    for line, ctx in sample:
        try:
            parse(line, ctx)
        except ParseError:
            continue
        kept.append((line, ctx))
    return kept


_IPV4 = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}\b")


def distinct_ips(lines: Sample) -> Sample:
    """`lines` with the last two octets of each IPv4 address replaced by the line's index."""
    out = []
    for index, (line, ctx) in enumerate(lines):
        tail = f"{(index >> 8) & 255}.{index & 255}"

        def replace(match: re.Match[str], tail: str = tail) -> str:
            return f"{match[1]}.{match[2]}.{tail}"

        out.append((_IPV4.sub(replace, line), ctx))
    return out


def repeated(sample: Sample, count: int) -> Sample:
    return (sample * (count // len(sample) + 1))[:count]


# --------------------------------------------------------------------------- measuring


def run(parse: Parser, lines: Sample) -> float:
    """CPU seconds to parse every line once."""
    started = time.process_time()
    for line, ctx in lines:
        parse(line, ctx)
    return time.process_time() - started


def best_rate(parse: Parser, lines: Sample, repeat: int) -> float:
    run(parse, lines[:2000])  # warm imports and caches
    return len(lines) / min(run(parse, lines) for _ in range(repeat))


def checked(parse: Parser, lines: Sample) -> Sample:
    """`lines` without the records the parser refuses once their addresses were changed."""
    return [pair for pair in lines if _parses(parse, pair)]


def _parses(parse: Parser, pair: tuple[str, SourceContext]) -> bool:
    try:
        parse(*pair)
    except ParseError:
        return False
    return True


def measure(name: str, sample: Sample, args: argparse.Namespace, distinct: bool) -> Measure:
    parse = PARSERS[name]
    kept = accepted(parse, sample)
    lines = repeated(kept, args.lines)
    rate = best_rate(parse, lines, args.repeat)
    rate_distinct = None
    if distinct:
        rate_distinct = best_rate(parse, checked(parse, distinct_ips(lines)), args.repeat)
    return Measure(name, len(kept), len(sample) - len(kept), rate, rate_distinct)


def profile(name: str, sample: Sample, args: argparse.Namespace) -> None:
    parse = PARSERS[name]
    lines = repeated(accepted(parse, sample), args.lines)
    if args.distinct_ips:
        lines = checked(parse, distinct_ips(lines))
    run(parse, lines[:2000])
    profiler = cProfile.Profile()
    profiler.runcall(run, parse, lines)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def _row(m: Measure) -> list[object]:
    kind = FORMATS.get(m.name, "other")
    figures = [m.rate] if m.rate_distinct is None else [m.rate, m.rate_distinct]
    goal = "—"
    if m.name in FORMATS:
        goal = "yes" if min(figures) >= GOAL else "no"
    distinct = "—" if m.rate_distinct is None else f"{m.rate_distinct:,.0f}"
    return [
        m.name,
        kind,
        m.sample if not m.refused else f"{m.sample} (+{m.refused} refused)",
        f"{m.rate:,.0f}",
        f"{1e6 / m.rate:.1f}",
        distinct,
        "—" if m.rate_distinct is None else f"{1e6 / m.rate_distinct:.1f}",
        goal,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000, help="lines per pass (≥ sample)")
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best is reported")
    parser.add_argument("--only", action="append", choices=sorted(PARSERS), metavar="NAME")
    parser.add_argument("--distinct-ips", action="store_true", help="also with no address repeat")
    parser.add_argument("--profile", choices=sorted(PARSERS), metavar="NAME")
    parser.add_argument("--observer-ip", action="store_true", help="set ctx.observer_ip")
    args = parser.parse_args()

    samples = all_samples()
    if args.observer_ip:
        samples = {
            name: [
                (line, dataclasses.replace(ctx, observer_ip="192.0.2.10")) for line, ctx in sample
            ]
            for name, sample in samples.items()
        }
    if args.profile:
        profile(args.profile, samples[args.profile], args)
        return
    names = args.only or [name for name in PARSERS if name in samples]
    missing = [name for name in PARSERS if name not in samples]
    measures = []
    for name in names:
        distinct = args.distinct_ips or (not args.only and name in FORMATS)
        measures.append(measure(name, samples[name], args, distinct))
        print(f"  {name}: {measures[-1].rate:,.0f} lines/s", file=sys.stderr, flush=True)

    print(f"machine: {machine()}; commit {git_rev()}")
    print(f"{args.lines:,} lines per pass, best of {args.repeat} (CPU time, one core)\n")
    headers = ["parser", "format", "sample lines", "lines/s", "µs/line"]
    headers += ["lines/s, distinct IPs", "µs/line, distinct IPs", f"≥ {GOAL:,}/s"]
    print(table(headers, [_row(m) for m in measures]))
    if missing and not args.only:
        print(f"\nnot measured (no sample lines): {', '.join(missing)}")


if __name__ == "__main__":
    main()
