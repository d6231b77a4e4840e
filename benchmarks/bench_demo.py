"""The README's demo output: ``python -m noisyclf`` run as a new user runs it.

The demo runs in a fresh Python process with its own defaults (two worker
processes, one torch thread each); what it prints is saved to
``results/demo_output.txt`` and its rows (through the demo's ``--csv``) to
``results/demo.csv``, with the machine of the run and its wall time.
``report.py`` copies the output into the README, so the README shows what the
command printed, never a typed copy.  ``--quick`` runs the demo's ``--quick``
smoke configuration in one process (``--jobs 1``).  Run it on a quiet machine:
the output ends with the demo's total time.

Usage::

    python benchmarks/bench_demo.py
"""

import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from _common import environment, make_parser, parse_args, run_main, write_csv  # noqa: E402

#: What a user types, as the README shows it.
COMMAND = "python -m noisyclf"


def main(argv=None):
    args = parse_args(make_parser(__doc__), argv)
    extra = ["--quick", "--jobs", "1"] if args.quick else []
    with tempfile.TemporaryDirectory() as tmp:
        rows_csv = Path(tmp) / "rows.csv"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "noisyclf", *extra, "--csv", str(rows_csv)],
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"{COMMAND} failed ({done.returncode}):\n{done.stderr}")
        with open(rows_csv, newline="") as fh:
            rows = list(csv.DictReader(fh))
    output = "\n".join(["$ " + " ".join([COMMAND, *extra]), done.stdout.rstrip("\n")]) + "\n"
    (args.out / "demo_output.txt").write_text(output, encoding="utf-8")
    rows = [dict(r, command=" ".join([COMMAND, *extra]), wall_s=round(wall, 1), **environment())
            for r in rows]
    write_csv(rows, list(dict.fromkeys(k for r in rows for k in r)), args.out / "demo.csv")
    print(output, end="")
    return rows


if __name__ == "__main__":
    run_main(main)
