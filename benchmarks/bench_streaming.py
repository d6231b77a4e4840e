"""Streaming a folder of images from disk against holding it in memory.

``fit`` takes a torch ``Dataset`` (here torchvision's ``ImageFolder``) and
streams it: DataLoader workers decode and resize each image, uint8 batches go
to the device, and nothing of size n but the per-sample bookkeeping (labels,
ELR targets, losses) stays in memory.  This script generates two folders of
JPEG images (64x64, 10 classes, class-dependent colour plus noise) of
2,000 and 20,000 images, and fits each one short run (one epoch per phase,
``image_size=32``):

* ``in-memory``: ``noisyclf.datasets.load_image_folder(root, image_size=32)``
  loads every image into one uint8 array, then ``fit(X, y)``;
* ``streamed``: ``fit(ImageFolder(root))`` with ``num_workers`` DataLoader
  worker processes (0: decoding in the fitting process).

Each fit runs in a fresh child process (after a warm-up fit on 200 images) so
that its memory is its own.  Columns: ``peak_growth_mb`` (peak resident set
size of the process during load + fit, sampled every 20 ms, minus its size
before), ``peak_rss_mb`` (the process's lifetime peak, ``ru_maxrss``),
``worker_peak_mb`` (the largest DataLoader worker's peak), ``total_s`` (load +
fit), ``images_per_s`` (n / total_s: images of the folder turned into a model
per second) and ``identical_to_in_memory`` (same ``pseudo_labels_``,
``label_quality_`` and ``predict_proba`` as the in-memory fit of the same
folder: JPEG decoding and resizing are the same PIL calls both ways).

Run ``python benchmarks/bench_streaming.py`` (17 minutes on 2 CPU cores
shared with another job, one torch thread per process); ``--quick`` runs a
tiny configuration for smoke tests (``--workers 1``: about 40 s).  Writes
``streaming.csv`` to ``benchmarks/results/`` (or ``--out``).
"""

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path, not run as a script
    sys.path.insert(0, _HERE)
from _common import (  # noqa: E402
    PeakRSS, environment, make_parser, parse_args, run_main, write_csv,
)

FULL = dict(sizes=[2000, 20000], source_size=64, image_size=32, n_classes=10, warmup=200)
QUICK = dict(sizes=[96, 192], source_size=16, image_size=8, n_classes=3, warmup=32)
FIT = dict(pretrain_epochs=1, max_epochs=1, finetune_epochs=1, gmm_epochs=1, warmup_epochs=0,
           device="cpu", random_state=0)

COLUMNS = ["mode", "num_workers", "n", "peak_growth_mb", "peak_rss_mb", "worker_peak_mb",
           "rss_start_mb", "uint8_mb", "load_s", "fit_s", "total_s", "images_per_s",
           "identical_to_in_memory", "accuracy", "source_size", "image_size", "format",
           "torch_threads", "openmp_threads", "cpu_count", "python", "torch", "sklearn",
           "noisyclf"]


def make_folder(root, n, *, size, n_classes, seed=0):
    """``n`` JPEG images ``size`` x ``size`` under ``root/class<k>/``: a colour per class
    plus pixel noise (learnable, not trivial)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    colours = rng.integers(40, 216, size=(n_classes, 3))
    for k in range(n_classes):
        (root / f"class{k}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        k = i % n_classes
        pixels = rng.normal(colours[k], 50, size=(size, size, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            root / f"class{k}" / f"{i:06d}.jpg", quality=90)
    return root


def child(cfg):
    """One fit in this (fresh) process; returns its row as a dict."""
    import torch
    from torch.utils.data import Subset
    from torchvision.datasets import ImageFolder

    from noisyclf import ContrastiveNoisyClassifier
    from noisyclf.datasets import load_image_folder

    torch.set_num_threads(cfg["threads"])
    root, mode, workers = cfg["root"], cfg["mode"], cfg["num_workers"]
    params = dict(FIT, image_size=cfg["image_size"], num_workers=workers)
    # Warm-up (allocator, kernels, imports) on a few images, not measured.
    folder = ImageFolder(root)
    warm = Subset(folder, range(0, len(folder), len(folder) // cfg["warmup"]))
    ContrastiveNoisyClassifier(**params).fit(warm)
    with PeakRSS() as peak:
        start = time.perf_counter()
        if mode == "in-memory":
            X, y, _ = load_image_folder(root, image_size=cfg["image_size"])
            data, uint8_mb = (X, y), X.nbytes / 2**20
            params["image_size"] = None  # already resized
        else:
            data, uint8_mb = (ImageFolder(root),), ""
        load_s = time.perf_counter() - start
        clf = ContrastiveNoisyClassifier(**params).fit(*data)
        total_s = time.perf_counter() - start
    proba = clf.predict_proba(data[0])
    labels = np.asarray(ImageFolder(root).targets)
    fingerprint = hashlib.sha1(b"".join(np.ascontiguousarray(a).tobytes() for a in (
        clf.pseudo_labels_, clf.label_quality_, proba))).hexdigest()
    kib = 1024  # ru_maxrss is in KiB on Linux
    return dict(
        mode=mode, num_workers=workers if mode == "streamed" else "", n=cfg["n"],
        peak_growth_mb=(peak.peak - peak.start) / 2**20,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib / 2**20,
        worker_peak_mb=(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib / 2**20
                        if mode == "streamed" and workers else ""),
        rss_start_mb=peak.start / 2**20, uint8_mb=uint8_mb, load_s=load_s,
        fit_s=total_s - load_s, total_s=total_s, images_per_s=cfg["n"] / total_s,
        accuracy=float(np.mean(proba.argmax(1) == labels)), fingerprint=fingerprint)


def _run_child(cfg):
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(cfg)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"child {cfg['mode']} n={cfg['n']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(row):
    return "  " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in row.items() if k in COLUMNS[:14])


def main(argv=None):
    parser = make_parser(__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1],
                        help="num_workers of the streamed fits")
    parser.add_argument("--data-dir", default=None,
                        help="where to write the image folders (default: a temporary "
                             "folder, removed at the end)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parse_args(parser, argv)
    if args.child is not None:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return None
    cfg = QUICK if args.quick else FULL
    out = args.out
    env = environment()
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="bench_streaming_"))
    rows = []
    start = time.perf_counter()
    try:
        for n in cfg["sizes"]:
            root = data_dir / f"jpeg{cfg['source_size']}_{n}"
            if not root.is_dir():
                t = time.perf_counter()
                make_folder(root, n, size=cfg["source_size"], n_classes=cfg["n_classes"])
                print(f"wrote {n} JPEGs to {root} in {time.perf_counter() - t:.1f} s",
                      flush=True)
            fingerprint = None
            for mode, workers in [("in-memory", 0)] + [("streamed", w) for w in args.workers]:
                row = _run_child(dict(root=str(root), n=n, mode=mode, num_workers=workers,
                                      image_size=cfg["image_size"], warmup=cfg["warmup"],
                                      threads=env["torch_threads"]))
                if mode == "in-memory":
                    fingerprint = row["fingerprint"]
                row["identical_to_in_memory"] = row.pop("fingerprint") == fingerprint
                row.update(source_size=cfg["source_size"], image_size=cfg["image_size"],
                           format="jpeg", **env)
                rows.append(row)
                print(_fmt(row), flush=True)
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    write_csv(rows, COLUMNS, out / "streaming.csv")
    small, large = cfg["sizes"]
    print(f"\n| mode | workers | peak growth n={small} (MB) | n={large} (MB) "
          f"| images/s n={large} | identical |")
    print("|---|---|---|---|---|---|")
    for r_small, r_large in zip([r for r in rows if r["n"] == small],
                                [r for r in rows if r["n"] == large]):
        print(f"| {r_large['mode']} | {r_large['num_workers']} | "
              f"{r_small['peak_growth_mb']:.0f} | {r_large['peak_growth_mb']:.0f} | "
              f"{r_large['images_per_s']:.0f} | {r_large['identical_to_in_memory']} |")
    print(f"\nTotal time: {time.perf_counter() - start:.0f} s; wrote {out / 'streaming.csv'}")
    return rows


if __name__ == "__main__":
    run_main(main)
