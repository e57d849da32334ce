"""``agent-monitor replay FILE``: replay a recording headless and print its findings.

FILE is a recording (``.sqlite``, as the monitor writes them) or a JSON Lines file of frames
(an export, or a browser's WebSocket log: see ``monitor.services.recording.jsonl``). Its frames
go through the same session and validator as live, on the recording's own clock, so the
findings are those the live monitor showed — at any ``--speed``.

Exit status:

- 0 — replayed (without ``--check``: whatever was found; findings are the report);
- 1 — with ``--check``: an error-severity finding, or part of the input could not be read
  (bad JSON Lines lines, a damaged recording): a check that could not read everything
  does not pass. This makes a recording a regression test;
- 2 — nothing could be replayed: no such file, not a recording, a newer format.

Qt-free: this runs in CI without a display.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson

from monitor.model.session import FROM_START_VALIDATOR, LIVE_VALIDATOR
from monitor.services.recording import (
    FutureFormatError,
    RecordingError,
    Replay,
    open_any,
    parse_speed,
    speed_label,
)
from runtime.protocol import Finding, Severity

EXIT_OK, EXIT_FINDINGS, EXIT_UNREADABLE = 0, 1, 2
#: how often a paced replay (finite --speed) wakes up to feed what is due (s)
PACE_STEP = 0.02


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent-monitor replay",
        description=(
            "Replay a recording (or a JSON Lines file of frames) through the validator and "
            "print the findings. With --check, exit 1 on any error-severity finding."
        ),
    )
    parser.add_argument(
        "file", metavar="FILE", help="a .sqlite recording, a .jsonl file or a browser's .har"
    )
    parser.add_argument(
        "--speed",
        type=_speed,
        default=math.inf,
        metavar="X",
        help="replay speed: 1, 10, 100 … or max (default: max); findings are the same "
        "at every speed",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if any error-severity finding (or unreadable input) — a regression check",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of text"
    )
    parser.add_argument(
        "--end-of-stream",
        action="store_true",
        help="treat the recording's end as the end of the streams: also report runs that "
        "never completed (AEM016). Without it a run still open at the end is not a finding, "
        "as in the live window (it may complete after the recording); seq gaps still "
        "pending at the end are reported either way",
    )
    joined = parser.add_mutually_exclusive_group()
    joined.add_argument(
        "--from-start",
        action="store_true",
        help="expect every stream to start at seq 1 (default: as recorded)",
    )
    joined.add_argument(
        "--late-join",
        action="store_true",
        help="streams may start mid-way (default: as recorded; imports join late)",
    )
    return parser


def _speed(text: str) -> float:
    try:
        return parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def finding_line(f: Finding) -> str:
    """``AEM009 error    user=bob run=run_… seq=12  seq 12 of bob never arrived``."""
    where = " ".join(
        f"{name}={value}"
        for name, value in (("user", f.user_id), ("run", f.run_id), ("seq", f.seq))
        if value is not None
    )
    return f"{f.rule_id} {f.severity.value:<7} {where:<40} {f.message}"


def finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "rule": f.rule.name,
        "severity": f.severity.value,
        "user_id": f.user_id,
        "run_id": f.run_id,
        "seq": f.seq,
        "event_id": f.event_id,
        "at": f.at,
        "message": f.message,
    }


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    err = sys.stderr
    try:
        opened = open_any(Path(args.file).expanduser())
    except FutureFormatError as exc:
        print(f"agent-monitor replay: {exc}", file=err)
        return EXIT_UNREADABLE
    except RecordingError as exc:
        print(f"agent-monitor replay: cannot replay: {exc}", file=err)
        return EXIT_UNREADABLE
    findings: list[Finding] = []
    try:
        recording = opened.recording
        config = None
        if args.from_start:
            config = FROM_START_VALIDATOR
        elif args.late_join:
            config = LIVE_VALIDATOR

        def on_finding(f: Finding) -> None:
            findings.append(f)
            if not args.json:
                print(finding_line(f), file=out, flush=True)

        replay = Replay(recording, validator_config=config, on_finding=on_finding)
        if not args.json:
            meta = recording.meta
            print(
                f"Replaying {Path(args.file).name}: {recording.frame_count:,} frames over "
                f"{replay.duration:,.1f} s recorded from {meta.target or '?'} "
                f"({meta.kind or 'unknown'}, format {meta.format_version}) "
                f"at {speed_label(args.speed)} speed",
                file=out,
            )
        began = time.monotonic()
        try:
            _play(replay, args.speed, args.end_of_stream)
        except RecordingError as exc:  # damage found mid-way that could not be recovered
            opened.recording.problems.append(str(exc))
        problems = opened.problems
        for problem in problems:
            print(f"warning: {problem}", file=err)
        errors = sum(f.severity is Severity.ERROR for f in findings)
        outcome = Outcome(
            replay, findings, problems, time.monotonic() - began, not errors and not problems
        )
        if args.json:
            _print_json(out, args, outcome)
        else:
            _print_summary(out, outcome, check=args.check)
        return EXIT_FINDINGS if args.check and not outcome.passed else EXIT_OK
    finally:
        opened.close()


def _play(replay: Replay, speed: float, end_of_stream: bool) -> None:
    if math.isinf(speed):
        replay.run_to_end(end_of_stream=end_of_stream)
        return
    replay.set_speed(speed)
    replay.play()
    while replay.playing:
        replay.pump(time.monotonic(), budget=None)
        time.sleep(PACE_STEP)
    replay.run_to_end(end_of_stream=end_of_stream)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a replay found and how it went."""

    replay: Replay
    findings: list[Finding]
    problems: list[str]  # input that could not be read
    elapsed: float
    passed: bool  # no error-severity finding and nothing unreadable


def _print_summary(out: TextIO, outcome: Outcome, *, check: bool) -> None:
    findings, replay = outcome.findings, outcome.replay
    by_severity = Counter(f.severity.value for f in findings)
    by_rule = Counter(f.rule_id for f in findings)
    print(
        f"\n{replay.frames_fed:,} frames, {replay.session.store.total:,} events replayed in "
        f"{outcome.elapsed:.2f} s; {len(findings):,} findings: "
        f"{by_severity.get('error', 0):,} errors, {by_severity.get('warning', 0):,} warnings, "
        f"{by_severity.get('info', 0):,} info",
        file=out,
    )
    for rule_id, count in sorted(by_rule.items()):
        sample = next(f for f in findings if f.rule_id == rule_id)
        print(f"  {rule_id} {sample.rule.name:<24} {sample.severity.value:<7} ×{count}", file=out)
    if outcome.problems:
        print(f"{len(outcome.problems)} input problem(s), listed on stderr", file=out)
    if check:
        verdict = "passed" if outcome.passed else "FAILED"
        print(f"check {verdict}: {by_severity.get('error', 0):,} error-severity findings", file=out)


def _print_json(out: TextIO, args: argparse.Namespace, outcome: Outcome) -> None:
    replay, findings = outcome.replay, outcome.findings
    recording = replay.recording
    document = {
        "file": str(args.file),
        "format_version": recording.meta.format_version,
        "target": recording.meta.target,
        "frames": replay.frames_fed,
        "events": replay.session.store.total,
        "recorded_s": replay.duration,
        "replay_s": outcome.elapsed,
        "speed": "max" if math.isinf(args.speed) else args.speed,
        "counts": dict(sorted(Counter(f.rule_id for f in findings).items())),
        "severities": dict(Counter(f.severity.value for f in findings)),
        "findings": [finding_dict(f) for f in findings],
        "problems": outcome.problems,
        "passed": outcome.passed,
    }
    out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    sys.exit(main())
