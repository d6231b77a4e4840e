"""What ``checkpoint_dir`` costs and what it saves.

Two sections (``--sections``):

* ``cost``: the time one save of a phase's net takes (the net pickled with
  torch's RNG state and written with fsync, as ``fit`` does at the end of an
  epoch) against the time of one SimCLR epoch (a1, the second of two) of the
  same net on 32x32 RGB images (CIFAR-10 from ``--data``, else random
  images), for the small CNN and the CIFAR ResNet-18, measured on a subset
  and scaled to an epoch of 50,000 images (epoch time is linear in the number of images; a save is
  not).  ``fit`` saves when the time since its last save is at least 50
  times the last save's duration, so its overhead is at most 2 %;
  ``save_over_epoch_50k`` is what saving after every epoch would cost.
* ``resume``: a default-settings fit (digits, 1,797 8x8 images, noisy labels)
  run in a subprocess, then the same fit with ``checkpoint_dir`` killed with
  SIGKILL at ``--kill-at`` (0.8) of the uninterrupted fit's time and started
  again: the second run's time as a fraction of the uninterrupted one, and
  whether it predicts the same.

Writes ``results/checkpoint_cost.csv`` and ``results/checkpoint_resume.csv``::

    python benchmarks/bench_checkpoint.py
"""

import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from noisyclf.nets import resolve_precision

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path, not run as a script
    sys.path.insert(0, _HERE)
from _common import (  # noqa: E402
    add_data_argument, environment, make_parser, parse_args, simclr_net, write_csv,
)

CHILD = """
import json, sys, time
import numpy as np, torch
from sklearn.datasets import load_digits
from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels
torch.set_num_threads(int(sys.argv[3]))
X, y = load_digits(return_X_y=True)
y = make_noisy_labels(y, "symmetric", 0.4, random_state=0)
clf = ContrastiveNoisyClassifier(image_shape=(1, 8, 8), random_state=0,
                                 checkpoint_dir=sys.argv[1] or None, **json.loads(sys.argv[4]))
start = time.perf_counter()
clf.fit(X, y)
seconds = time.perf_counter() - start
np.save(sys.argv[2], clf.predict_proba(X))
print(json.dumps({"fit_s": seconds}))
"""


#: Shorter schedules of ``--quick`` (smoke test).
QUICK = dict(pretrain_epochs=4, max_epochs=4, finetune_epochs=4, gmm_epochs=2, warmup_epochs=1)


def _images(args, n):
    if Path(args.data).is_file():
        from noisyclf.datasets import load_cifar10
        X, _ = load_cifar10(args.data, n_samples=n, random_state=0)
        return np.ascontiguousarray(X.transpose(0, 3, 1, 2)), "CIFAR-10"
    rng = np.random.RandomState(0)
    return rng.randint(0, 256, (n, 3, 32, 32), dtype=np.uint8), "random"


def _save_seconds(net, repeats=3):
    times, size = [], 0
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "net.pkl")
        for _ in range(repeats):
            start = time.perf_counter()
            with open(path, "wb") as fh:
                pickle.dump({"net": net, "rng": torch.get_rng_state()}, fh,
                            protocol=pickle.HIGHEST_PROTOCOL)
                fh.flush()
                os.fsync(fh.fileno())
            times.append(time.perf_counter() - start)
            size = os.path.getsize(path)
    return float(np.median(times)), size


def section_cost(args):
    precision = resolve_precision("auto", "cpu")
    rows = []
    for encoder, n in (("cnn", args.n_cnn), ("resnet18", args.n_resnet)):
        X, images = _images(args, n)
        # Two epochs: the second, after the first's warm-up, is the one timed.
        net = simclr_net(X, precision=precision, channels_last=True, epochs=2, encoder=encoder)
        net.fit({"x": torch.from_numpy(X)}, None)
        epoch_s = float(net.history[-1, "dur"])
        save_s, size = _save_seconds(net)
        epoch_50k = epoch_s / n * 50_000
        row = dict(encoder=encoder, images=images, n=n, precision=precision, epoch_s=epoch_s,
                   epoch_s_50k=epoch_50k, save_s=save_s, size_mb=size / 2**20,
                   save_over_epoch=save_s / epoch_s, save_over_epoch_50k=save_s / epoch_50k)
        print(row, flush=True)
        rows.append(row)
    return rows


def _child(script, directory, out, args):
    params = QUICK if args.quick else {}
    return [sys.executable, str(script), directory, str(out), str(args.threads or 2),
            json.dumps(params)]


def section_resume(args):
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        script = folder / "fit.py"
        script.write_text(CHILD)
        start = time.perf_counter()
        done = subprocess.run(_child(script, "", folder / "ref.npy", args),
                              capture_output=True, text=True, check=True)
        reference_wall = time.perf_counter() - start
        reference_fit = json.loads(done.stdout.splitlines()[-1])["fit_s"]
        ckpt = str(folder / "ckpt")
        start = time.perf_counter()
        proc = subprocess.Popen(_child(script, ckpt, folder / "killed.npy", args),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(max(0.0, args.kill_at * reference_wall - (time.perf_counter() - start)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        saved = sorted(p.name for p in Path(ckpt).glob("*/*.pkl"))
        start = time.perf_counter()
        done = subprocess.run(_child(script, ckpt, folder / "resumed.npy", args),
                              capture_output=True, text=True, check=True)
        resumed_wall = time.perf_counter() - start
        resumed_fit = json.loads(done.stdout.splitlines()[-1])["fit_s"]
        same = bool(np.array_equal(np.load(folder / "ref.npy"),
                                   np.load(folder / "resumed.npy")))
    row = dict(data="digits", schedule="quick" if args.quick else "default",
               kill_at=args.kill_at, reference_fit_s=reference_fit,
               reference_wall_s=reference_wall, resumed_fit_s=resumed_fit,
               resumed_wall_s=resumed_wall, resumed_over_reference=resumed_wall / reference_wall,
               saved_files=" ".join(saved), same_predictions=same)
    print(row, flush=True)
    return [row]


def main(argv=None):
    parser = make_parser(__doc__)
    add_data_argument(parser)
    parser.add_argument("--sections", nargs="+", default=["cost", "resume"],
                        choices=["cost", "resume"])
    parser.add_argument("--n-cnn", type=int, default=2048,
                        help="images of the small CNN's timed epoch")
    parser.add_argument("--n-resnet", type=int, default=256,
                        help="images of the ResNet-18's timed epoch")
    parser.add_argument("--kill-at", type=float, default=0.8,
                        help="fraction of the uninterrupted fit's time at which to kill")
    args = parse_args(parser, argv)
    if args.quick:
        args.n_cnn, args.n_resnet = 64, 8
    env = environment()
    written = []
    for name in args.sections:
        rows = [dict(r, **env) for r in globals()[f"section_{name}"](args)]
        path = args.out / f"checkpoint_{name}.csv"
        write_csv(rows, list(dict.fromkeys(k for r in rows for k in r)), path)
        written.append(path)
    return written


if __name__ == "__main__":
    main()
