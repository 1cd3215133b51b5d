"""socmon's Sigma engine against the Zircolite approach: same run, same machine, same events.

    .venv/bin/python bench/sigma/run.py [--rules DIR] [--evtx DIR] [--replay N]
        [--skip-peer] [--quick] [--workers 2] [--examples 3] [--out DIR]

Three measurements, one after the other, each in its own process (wall time from launch to
exit, so start-up and imports count; peak RSS from `wait4`, the largest process of its tree,
and the peak of the whole tree's RSS sampled every 50 ms):

(a) peer: `bench/sigma/zircolite_approach.py` - every SigmaHQ Windows rule converted with
    pySigma's SQLite backend as Zircolite's rulesets are, the EVTX records flattened to
    Zircolite's columns and loaded into an in-memory SQLite table, every query run. The time
    without rule conversion (Zircolite ships its rules converted) is reported too;
(b) `socmon match --rules DIR --input <the .evtx files> --json` (or `python -m
    detections.match` while the subcommand is not registered in the CLI), `--workers` processes
    (default 2: this machine's cores). The `.evtx` files are named one by one so that both sides
    read the same events (the corpus folder also holds README/LICENSE text files, which
    `socmon match` would read as log lines);
(c) streaming steady state (`bench/sigma/streaming.py`): rules compiled once, events parsed
    into dicts beforehand, `matcher.match(event)` over the corpus repeated `--replay` times
    (default: enough for 50,000 events), one core.

Then the sets of (rule id, EVTX file, record number) matches of (a) and (b) are compared, and
the differences are printed by rule with counts and the first `--examples` events.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(HERE))

from common import git_rev, machine, table  # noqa: E402
from zircolite_approach import (  # noqa: E402
    default_evtx,
    default_rules,
    evtx_files,
    quick_subset,
    rule_files,
)

PYTHON = str(ROOT / ".venv" / "bin" / "python")
SOCMON = ROOT / ".venv" / "bin" / "socmon"
OFFLINE_SPEEDUP_GOAL = 3.0
STREAMING_GOAL = 10_000
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

Key = tuple[str, str, int]
"""(rule id, EVTX file, record number)"""


# ---------------------------------------------------------------------------------------------
# Running one measured process


def _tree_rss_kb(root: int) -> int:
    """Resident memory of `root` and all its descendants, in KiB (from /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
            with open(f"/proc/{entry}/statm", encoding="ascii") as f:
                pages = int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = pages * PAGE_KB
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(rss.get(pid, 0) for pid in tree)


@dataclass
class Measured:
    argv: list[str]
    returncode: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    maxrss_mb: float = 0.0
    """largest single process of the tree (wait4)"""
    tree_rss_mb: float = 0.0
    """peak of the sum over the process tree, sampled"""
    load: str = ""
    """1-minute load average at the start and at the end (the machine is shared)"""
    stdout: bytes = b""
    stderr: bytes = b""


def measure(argv: list[str], *, env: dict[str, str] | None = None) -> Measured:
    """Run `argv` to completion; wall time, CPU time and memory of its process tree."""
    result = Measured(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=ROOT, env=env)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.05):
                with contextlib.suppress(OSError):
                    peak = max(peak, _tree_rss_kb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        result.wall_s = time.perf_counter() - started
        result.load = f"{load_before:.1f}->{os.getloadavg()[0]:.1f}"
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        result.returncode = proc.returncode
        result.cpu_s = usage.ru_utime + usage.ru_stime
        result.maxrss_mb = usage.ru_maxrss / 1024
        result.tree_rss_mb = max(peak / 1024, result.maxrss_mb)
        out.seek(0)
        err.seek(0)
        result.stdout, result.stderr = out.read(), err.read()
    return result


def _check(m: Measured, what: str, allowed: tuple[int, ...] = (0,)) -> None:
    if m.returncode not in allowed:
        tail = m.stderr.decode(errors="replace")[-3000:]
        raise SystemExit(f"{what} failed (exit {m.returncode}): {' '.join(m.argv[:6])} …\n{tail}")


# ---------------------------------------------------------------------------------------------
# The three measurements


def socmon_match_command() -> tuple[list[str], str]:
    """`socmon match` when the CLI has it, else the module's own entry point."""
    probe = subprocess.run(
        [str(SOCMON), "match", "--help"], capture_output=True, cwd=ROOT, check=False
    )
    if probe.returncode == 0:
        return [str(SOCMON), "match"], "socmon match"
    return [PYTHON, "-m", "detections.match"], "python -m detections.match"


def run_peer(
    rule_args: list[Path], files: list[Path], out: Path
) -> tuple[Measured, dict[str, Any]]:
    argv = [PYTHON, str(HERE / "zircolite_approach.py"), "--json-out", str(out)]
    for p in rule_args:
        argv += ["--rules", str(p)]
    for f in files:
        argv += ["--evtx", str(f)]
    m = measure(argv)
    _check(m, "peer")
    return m, orjson.loads(out.read_bytes())


def run_socmon_match(
    rule_args: list[Path], files: list[Path], workers: int
) -> tuple[Measured, str, list[dict[str, Any]]]:
    command, label = socmon_match_command()
    argv = [*command]
    for p in rule_args:
        argv += ["--rules", str(p)]
    argv += ["--input", *map(str, files), "--json", "--workers", str(workers)]
    m = measure(argv)
    _check(m, label, allowed=(0, 1))  # 1: some input partly unreadable; matches still printed
    hits = [orjson.loads(line) for line in m.stdout.splitlines() if line.strip()]
    return m, label, hits


def run_streaming(
    rule_args: list[Path], files: list[Path], replay: int | None, out: Path
) -> tuple[Measured, dict[str, Any]]:
    argv = [PYTHON, str(HERE / "streaming.py"), "--json-out", str(out)]
    for p in rule_args:
        argv += ["--rules", str(p)]
    for f in files:
        argv += ["--evtx", str(f)]
    if replay is not None:
        argv += ["--replay", str(replay)]
    m = measure(argv)
    _check(m, "streaming")
    return m, orjson.loads(out.read_bytes())


# ---------------------------------------------------------------------------------------------
# Comparing the matches


def socmon_keys(
    hits: Sequence[dict[str, Any]],
) -> tuple[set[Key], dict[str, str], dict[tuple[str, int], str]]:
    """Match keys, rule titles, and a short description of each matched event."""
    keys: set[Key] = set()
    titles: dict[str, str] = {}
    events: dict[tuple[str, int], str] = {}
    for hit in hits:
        rule = hit.get("rule", {})
        key = (str(rule.get("id")), str(hit.get("log.file.path")), int(hit.get("record", -1)))
        keys.add(key)
        titles.setdefault(key[0], str(rule.get("title", "")))
        channel = hit.get("winlog.channel", "?")
        code = hit.get("event.code", "?")
        events[key[1], key[2]] = f"{channel} {code}"
    return keys, titles, events


@dataclass
class Difference:
    rule_id: str
    title: str
    only_peer: list[Key] = field(default_factory=list)
    only_socmon: list[Key] = field(default_factory=list)


def compare(peer: set[Key], socmon: set[Key], titles: dict[str, str]) -> list[Difference]:
    by_rule: dict[str, Difference] = {}
    for key in peer - socmon:
        d = by_rule.setdefault(key[0], Difference(key[0], titles.get(key[0], "")))
        d.only_peer.append(key)
    for key in socmon - peer:
        d = by_rule.setdefault(key[0], Difference(key[0], titles.get(key[0], "")))
        d.only_socmon.append(key)
    for d in by_rule.values():
        d.only_peer.sort()
        d.only_socmon.sort()
    return sorted(
        by_rule.values(), key=lambda d: (-len(d.only_peer), -len(d.only_socmon), d.rule_id)
    )


def print_differences(
    diffs: Sequence[Difference],
    events: dict[tuple[str, int], str],
    examples: int,
) -> None:
    if not diffs:
        print("\nMatches: identical sets.")
        return
    print("\nDifferences by rule (only-peer = the peer matched, socmon did not):")
    for d in diffs:
        print(
            f"- {d.rule_id} {d.title[:70]!r}: only-peer {len(d.only_peer)}, "
            f"only-socmon {len(d.only_socmon)}"
        )
        for side, keys in (("peer", d.only_peer), ("socmon", d.only_socmon)):
            for _, file, record in keys[:examples]:
                what = events.get((file, record), "")
                print(f"    only-{side}: {Path(file).name}#{record} {what}")


# ---------------------------------------------------------------------------------------------


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rules", type=Path, help="Sigma rule folder (default: SigmaHQ windows)")
    parser.add_argument("--evtx", type=Path, help="EVTX folder (default: the corpus's evtx)")
    parser.add_argument("--replay", type=int, help="streaming: repeat the corpus N times")
    parser.add_argument("--skip-peer", action="store_true", help="do not run the peer")
    parser.add_argument("--quick", action="store_true", help="150 rule files, 40 EVTX files")
    parser.add_argument("--workers", type=int, default=2, help="socmon match processes")
    parser.add_argument("--examples", type=int, default=3, help="examples per differing rule")
    parser.add_argument("--out", type=Path, help="keep the raw results (JSON) in this folder")
    args = parser.parse_args(argv)

    rules_dir = args.rules or default_rules()
    files = evtx_files([args.evtx or default_evtx()])
    rule_args: list[Path] = [rules_dir]
    if args.quick:
        rule_args = quick_subset(rule_files([rules_dir]), 150)
        files = quick_subset(files, 40)
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="bench-sigma-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}; git {git_rev()}")
    print(
        f"rules: {rules_dir} ({len(rule_files(rule_args))} files); events: {len(files)} EVTX files"
    )

    peer: dict[str, Any] | None = None
    peer_m: Measured | None = None
    if not args.skip_peer:
        print("(a) peer: converting rules, loading SQLite, querying ...", flush=True)
        peer_m, peer = run_peer(rule_args, files, out_dir / "peer.json")
    print("(b) socmon match ...", flush=True)
    match_m, match_label, hits = run_socmon_match(rule_args, files, args.workers)
    (out_dir / "socmon-match.jsonl").write_bytes(match_m.stdout)
    print("(c) streaming ...", flush=True)
    stream_m, stream = run_streaming(rule_args, files, args.replay, out_dir / "streaming.json")

    s_keys, s_titles, s_events = socmon_keys(hits)
    summary = match_m.stderr.decode(errors="replace").strip().splitlines()
    events = stream["corpus_events"]

    rows: list[list[object]] = []
    if peer is not None and peer_m is not None:
        rows += [
            [
                "peer (Zircolite approach), wall incl. start-up (s)",
                _fmt(peer_m.wall_s),
                f"CPU {_fmt(peer_m.cpu_s)}; convert {_fmt(peer['convert_s'])} + read/flatten "
                f"{_fmt(peer['read_flatten_s'])} + load {_fmt(peer['load_s'])} + queries "
                f"{_fmt(peer['query_s'])}; 1 process; load avg {peer_m.load}",
                "",
            ],
            [
                "peer, without rule conversion (s)",
                _fmt(peer_m.wall_s - peer["convert_s"]),
                f"CPU {_fmt(peer_m.cpu_s - peer['convert_cpu_s'])}; Zircolite ships its "
                "rules converted",
                "",
            ],
            [
                "peer, peak RSS (MB)",
                _fmt(peer_m.maxrss_mb, 0),
                f"{peer['rules_converted']} queries for {peer['rule_ids']} rule ids, "
                f"{peer['columns']} columns",
                "",
            ],
        ]
    if peer is not None and peer_m is not None:
        speedup = peer_m.wall_s / match_m.wall_s
        speedup_pre = (peer_m.wall_s - peer["convert_s"]) / match_m.wall_s
        cpu_ratio = peer_m.cpu_s / match_m.cpu_s
        cpu_ratio_pre = (peer_m.cpu_s - peer["convert_cpu_s"]) / match_m.cpu_s
        goal = (
            f">= {OFFLINE_SPEEDUP_GOAL:.0f}x faster (wall): {speedup:.2f}x "
            f"({'met' if speedup >= OFFLINE_SPEEDUP_GOAL else 'NOT met'}); "
            f"vs peer without conversion {speedup_pre:.2f}x; by CPU time {cpu_ratio:.2f}x "
            f"({cpu_ratio_pre:.2f}x without conversion)"
        )
    else:
        goal = "peer skipped"
    rows += [
        [
            f"{match_label}, wall incl. start-up (s)",
            _fmt(match_m.wall_s),
            f"CPU {_fmt(match_m.cpu_s)} (all processes); {args.workers} workers; "
            f"{events:,} events, {_fmt(events / match_m.wall_s, 0)} events/s; "
            f"load avg {match_m.load}",
            goal,
        ],
        [
            f"{match_label}, peak RSS (MB)",
            _fmt(match_m.maxrss_mb, 0),
            f"largest process; whole tree {_fmt(match_m.tree_rss_mb, 0)}",
            "",
        ],
        [
            "streaming, load + compile all rules (s)",
            _fmt(stream["load_s"] + stream["compile_s"]),
            f"CPU {_fmt(stream['compile_cpu_s'])}; load {_fmt(stream['load_s'])} + compile "
            f"{_fmt(stream['compile_s'])}; {stream['rules_loaded']} rules -> "
            f"{stream['rules_compiled']} compiled routes, {stream['rules_unsupported']} "
            "unsupported",
            "",
        ],
        [
            "streaming steady state, 1 core (events/s, CPU)",
            _fmt(stream["events_per_s_cpu"], 0),
            f"{stream['events']:,} events ({stream['replay']}x corpus); wall "
            f"{_fmt(stream['events_per_s_wall'], 0)} events/s; load avg {stream_m.load}",
            f">= {STREAMING_GOAL:,}: "
            f"{'met' if stream['events_per_s_cpu'] >= STREAMING_GOAL else 'NOT met'}",
        ],
        ["streaming, peak RSS (MB)", _fmt(stream_m.maxrss_mb, 0), "rules + events in memory", ""],
    ]

    diffs: list[Difference] = []
    if peer is not None:
        p_keys: set[Key] = {(str(r), str(f), int(n)) for r, f, n in peer["matches"]}
        for file, record, what in peer["matched_events"]:
            s_events.setdefault((str(file), int(record)), what)
        diffs = compare(p_keys, s_keys, s_titles)
        missing = sum(len(d.only_peer) for d in diffs)
        extra = sum(len(d.only_socmon) for d in diffs)
        rows.append(
            [
                "matches (rule, file, record): peer / socmon / both",
                f"{len(p_keys):,} / {len(s_keys):,} / {len(p_keys & s_keys):,}",
                f"peer-only {missing} in {sum(1 for d in diffs if d.only_peer)} rules; "
                f"socmon-only {extra} in {sum(1 for d in diffs if d.only_socmon)} rules",
                f"every peer match found: {'met' if missing == 0 else 'NOT met (see below)'}",
            ]
        )
    print()
    print(table(["measure", "value", "detail", "goal"], rows))
    print()
    for line in summary[-3:]:
        print(line)
    if peer is not None:
        print(
            f"peer: {peer['conversion_failures']} rule conversions failed, "
            f"{peer['query_errors']} query errors, Channel/EventID pre-filter "
            f"{'on' if peer['prefilter'] else 'off (some rules name neither)'}"
        )
        print_differences(diffs, s_events, args.examples)
    print(f"\nraw results: {out_dir}")


if __name__ == "__main__":
    main()
