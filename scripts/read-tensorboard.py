#!/usr/bin/env python3
"""Reads a run's TensorBoard event files with TensorBoard's own loader and compares them with
its metrics.csv.

Usage: read-tensorboard.py RUN_DIR
Needs the `tensorboard` package (`python3 -m venv /tmp/tbvenv && /tmp/tbvenv/bin/pip install
tensorboard`, then run this with /tmp/tbvenv/bin/python).

RUN_DIR is a run folder, `<out>/<experiment>/<run-id>/`, holding metrics.csv and the
`events.out.tfevents.*` files runner writes. They are loaded with
`tensorboard.backend.event_processing.event_accumulator.EventAccumulator`, which applies
TensorBoard's purge of the points a resumed run replaces (`session_log` START). Then:

* every column of metrics.csv is a scalar series, tagged as runner tags it (the column's first
  `_` becomes `/`: `train_loss` -> `train/loss`), with one point per row, equal to the cell read
  as a 32-bit float, at the same step in every series (the global step that ended the epoch);
* the `batch/*` series have strictly increasing steps (no point twice after a resume).

Prints one line per series and exits 0 when all agree, 1 on any mismatch, 2 when the folder
cannot be read.
"""
import csv
import os
import struct
import sys


def f32(x):
    """`x` rounded to a 32-bit float, as an event file stores a scalar."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def epoch_tag(column):
    return column.replace("_", "/", 1)


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    run_dir = argv[1]
    metrics_path = os.path.join(run_dir, "metrics.csv")
    try:
        with open(metrics_path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            rows = list(reader)
    except (OSError, StopIteration) as e:
        print(f"error: cannot read {metrics_path}: {e}", file=sys.stderr)
        return 2
    if not any("tfevents" in n for n in os.listdir(run_dir)):
        print(f"error: {run_dir} holds no event files (events.out.tfevents.*)", file=sys.stderr)
        return 2

    from tensorboard.backend.event_processing import event_accumulator as ea

    # Size 0 keeps every point (the default keeps a sample of 10,000 per tag).
    acc = ea.EventAccumulator(run_dir, size_guidance={ea.SCALARS: 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    files = sorted(n for n in os.listdir(run_dir) if "tfevents" in n)
    print(f"{run_dir}: {len(files)} event file(s), {len(rows)} epoch(s) in metrics.csv, "
          f"{len(tags)} scalar series")

    problems = []
    epoch_steps = None
    for i, column in enumerate(header):
        tag = epoch_tag(column)
        # A column may be empty in some rows or in all (val_* without a split, ema_* without
        # an EMA): runner writes a point only for a cell that holds a value.
        filled = [j for j, row in enumerate(rows) if i < len(row) and row[i] != ""]
        if not filled:
            if tag in tags:
                problems.append(f"{tag}: a series, but metrics.csv column {column} is empty")
            else:
                print(f"  {tag:<22} no points: metrics.csv {column} is empty in every row")
            continue
        if tag not in tags:
            problems.append(f"{tag}: no such series (metrics.csv column {column})")
            continue
        events = acc.Scalars(tag)
        steps = [e.step for e in events]
        got = [e.value for e in events]
        want = [f32(float(rows[j][i])) for j in filled]
        if epoch_steps is None and len(filled) == len(rows):
            epoch_steps = steps
        want_steps = None if epoch_steps is None else [epoch_steps[j] for j in filled]
        if got != want:
            problems.append(f"{tag}: {got} in the event files, {want} in metrics.csv")
        elif want_steps is not None and steps != want_steps:
            problems.append(f"{tag}: at steps {steps}, other epoch series at {want_steps}")
        else:
            print(f"  {tag:<22} {len(got)} points = metrics.csv {column}, at steps {steps}")

    for tag in sorted(t for t in tags if t.startswith("batch/")):
        steps = [e.step for e in acc.Scalars(tag)]
        if any(b <= a for a, b in zip(steps, steps[1:])):
            problems.append(f"{tag}: steps not strictly increasing: {steps}")
        else:
            span = f"steps {steps[0]}..{steps[-1]}" if steps else "no steps"
            print(f"  {tag:<22} {len(steps)} points, {span}, increasing")

    for p in problems:
        print(f"MISMATCH {p}")
    print("ok: the event files agree with metrics.csv" if not problems
          else f"{len(problems)} mismatch(es)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
