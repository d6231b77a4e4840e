"""Helpers shared by the benchmark scripts in this folder (not a benchmark itself).

The scripts run as ``python benchmarks/bench_X.py`` (this folder is then on
``sys.path``) and are also loaded by path from ``tests/test_benchmarks_smoke.py``;
they put this folder on ``sys.path`` before ``from _common import ...`` so that
both ways work.
"""

import argparse
import csv
import os
import platform
import threading
import time
from pathlib import Path

import sklearn
import torch
from threadpoolctl import threadpool_info, threadpool_limits

import noisyclf

RESULTS = Path(__file__).resolve().parent / "results"


def limit_threads(n):
    """Use ``n`` threads for torch and for OpenMP/BLAS (numpy, scikit-learn)."""
    torch.set_num_threads(n)
    threadpool_limits(n)  # OpenMP/BLAS of numpy and scikit-learn


def make_parser(doc):
    """Argument parser with ``--quick`` and ``--out``, described by ``doc``'s first line."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny configuration (smoke test)")
    parser.add_argument("--out", default=str(RESULTS), help="output folder")
    return parser


def parse_args(parser, argv):
    """Add ``--threads``, parse ``argv`` and apply the thread limit if one is given."""
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and OpenMP/BLAS threads (default: leave as is)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        limit_threads(args.threads)
    return args


def run_main(main):
    """Entry point of a script: one thread each, then ``main()``.

    Small shared CPU: one thread each for torch and OpenMP/BLAS avoids
    oversubscription and makes timings steadier; ``--threads`` overrides.
    """
    limit_threads(1)
    return main()


def environment():
    """Threads, CPU count and versions, recorded in every CSV row."""
    return {
        "torch_threads": torch.get_num_threads(),
        "openmp_threads": max((i["num_threads"] for i in threadpool_info()
                               if i["user_api"] == "openmp"), default=""),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "noisyclf": noisyclf.__version__,
    }


def write_csv(rows, columns, path):
    """Write ``rows`` (dicts) with exactly ``columns``; missing values are empty."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, "") for k in columns})


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path, *, dpi=120, **tight_layout):
    """``tight_layout(**tight_layout)``, save to ``path`` and close ``fig``."""
    fig.tight_layout(**tight_layout)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)


class PeakRSS:
    """Peak resident set size of this process while the block runs (sampled)."""

    def __init__(self, interval=0.02):
        self.interval = interval

    @staticmethod
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self):
        self.start = self.peak = self.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())
