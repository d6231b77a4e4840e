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
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
from skorch.callbacks import LRScheduler
from threadpoolctl import threadpool_info, threadpool_limits

import noisyclf
from noisyclf import ContrastiveNoisyClassifier
from noisyclf.losses import NTXentLoss
from noisyclf.modules import ContrastiveModule, ProjectionHead, make_encoder
from noisyclf.nets import ContrastiveNet

RESULTS = Path(__file__).resolve().parent / "results"
#: The ``method`` of a cleanlab ``CleanLearning`` row in the CIFAR-10 CSV files.
CLEANLAB_METHOD = "cleanlab CleanLearning"
#: The packed CIFAR-10 file, ``../shared/data/cifar10_jpeg.npz`` relative to the repository.
CIFAR10_NPZ = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10_jpeg.npz"


# ------------------------------------------------------------- a1 across machines
def restore_cache(archive, folder):
    """Extract the files of the tar ``archive`` (written by :func:`store_cache`) that
    ``folder`` lacks; returns how many (0 when ``archive`` does not exist).

    a1 on many images takes hours; a joblib cache of it, stored in the
    repository, lets a fresh machine load it instead.
    """
    archive, folder = Path(archive), Path(folder)
    if not archive.exists():
        return 0
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers()
                   if m.isfile() and not (folder / m.name).exists()]
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(folder, members=members, **kwargs)
    return len(members)


def store_cache(folder, archive):
    """Write the files of the joblib cache ``folder`` (not joblib's ``.gitignore``, which
    ignores the whole cache) to the tar ``archive`` when it lacks any of them; returns
    whether it wrote."""
    folder, archive = Path(folder), Path(archive)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and p.name != ".gitignore") if folder.is_dir() else []
    if archive.exists():
        with tarfile.open(archive) as tar:
            if set(files) <= set(tar.getnames()):
                return False
    if not files:
        return False
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".part")
    with tarfile.open(partial, "w") as tar:
        for name in files:
            tar.add(folder / name, arcname=name)
    os.replace(partial, archive)
    return True


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


def add_data_argument(parser):
    """``--data``: the CIFAR-10 npz file (default :data:`CIFAR10_NPZ`)."""
    parser.add_argument("--data", default=str(CIFAR10_NPZ),
                        help="CIFAR-10 npz file; the CIFAR-10N labels are read from "
                             "cifar10n_labels.npz next to it (default: %(default)s)")


def parse_args(parser, argv):
    """Add ``--threads``, parse ``argv``, apply the thread limit if one is given and
    create the output folder (``args.out`` becomes a :class:`~pathlib.Path`)."""
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and OpenMP/BLAS threads (default: leave as is)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        limit_threads(args.threads)
    args.out = Path(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def run_main(main):
    """Entry point of a script: one thread each, then ``main()``.

    Small shared CPU: one thread each for torch and OpenMP/BLAS avoids
    oversubscription and makes timings steadier; ``--threads`` overrides.
    """
    limit_threads(1)
    return main()


def cpu_model():
    """The CPU's model name (``/proc/cpuinfo``'s, else ``platform.processor()``), with
    " with AMX-BF16" where the CPU has AMX tiles (their bf16 matmuls are several times
    faster, which changes every speed ratio)."""
    name, flags = None, []
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and name is None:
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    name = name or platform.processor() or platform.machine()
    return f"{name} with AMX-BF16" if "amx_bf16" in flags else name


def environment():
    """CPU model, threads, CPU count and versions, recorded in every CSV row."""
    return {
        "cpu_model": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "openmp_threads": max((i["num_threads"] for i in threadpool_info()
                               if i["user_api"] == "openmp"), default=""),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "noisyclf": noisyclf.__version__,
    }


def epochs_label(config, unit="epochs"):
    """``"a1 P epochs, a2 M epochs"`` from ``config["pretrain_epochs"]`` and
    ``config["max_epochs"]`` (a configuration or a CSV row), for titles and logs."""
    return f"a1 {config['pretrain_epochs']} {unit}, a2 {config['max_epochs']} {unit}"


def pretrain_and_full_proba(clf, X):
    """Class probabilities of ``X`` from both classifiers of a ``phases="full"`` fit.

    Returns ``{"a2": ..., "b3": ...}``: a2's classifier (``pseudo_label_net_``, what
    ``phases="pretrain"`` predicts with: every phase is seeded on its own) and b3's
    (``classifier_net_``, what ``phases="full"`` predicts with).  The default mode
    predicts as b3 where ``phase_b_decision_["auto_runs_phase_b"]``, else as a2.
    """
    a2, b3 = clf.pseudo_label_net_, clf.classifier_net_
    out = {}
    try:
        for name, net in [("a2", a2), ("b3", b3)]:
            clf.classifier_net_ = net
            out[name] = clf.predict_proba(X)
    finally:
        clf.classifier_net_ = b3
    return out


def pretrain_and_full_accuracy(clf, X, y):
    """``{"a2": ..., "b3": ...}``: the accuracy on ``(X, y)`` of both classifiers of a
    ``phases="full"`` fit (:func:`pretrain_and_full_proba`)."""
    return {name: float(np.mean(clf.classes_[p.argmax(1)] == y))
            for name, p in pretrain_and_full_proba(clf, X).items()}


def write_csv(rows, columns, path):
    """Write ``rows`` (dicts) with exactly ``columns``; missing values are empty."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, "") for k in columns})


def append_row(path, row):
    """Append ``row`` (a dict) to the CSV at ``path`` (written with a header if new), in
    the file's column order; a row with columns the file lacks rewrites the file with
    them added (empty in the earlier rows), so a grid that gains a column resumes."""
    import pandas as pd
    path = Path(path)
    new = pd.DataFrame([row])
    if path.exists():
        columns = pd.read_csv(path, nrows=0).columns
        if set(new.columns) - set(columns):
            old = pd.read_csv(path, dtype=str, keep_default_na=False)  # values as written
            added = [c for c in new.columns if c not in columns]
            old = old.reindex(columns=[*columns, *added], fill_value="")
            pd.concat([old, new], ignore_index=True).to_csv(path, index=False)
            return
        new = new.reindex(columns=columns)
    new.to_csv(path, mode="a", header=not path.exists(), index=False)


def other_cpus_rows(path, cpu):
    """The rows of the CSV at ``path`` measured on another CPU than ``cpu`` (or on one
    not recorded): a rerun replaces this CPU's figures and keeps the others beside them."""
    if not Path(path).exists():
        return []
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if r.get("cpu_model") != cpu]


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


# ------------------------------------------------------------ a1's net, built by hand
def channel_stats(X, chunk=4096):
    """Per-channel mean and standard deviation of images ``X`` of shape (n, C, H, W).

    The statistics the estimator gives the :class:`~noisyclf.modules.Standardize`
    layer of its encoder: uint8 pixels count as their float32 value divided
    by 255 (what the nets see), the sums run in float64 over chunks of
    ``chunk`` images (mean first, then the mean squared deviation), and a
    constant channel gets scale 1.  Both are float32 of shape (C, 1, 1).
    """
    def chunks():
        for start in range(0, len(X), chunk):
            part = X[start:start + chunk]
            if part.dtype == np.uint8:
                part = np.asarray(part, dtype=np.float32) / np.float32(255.0)
            yield part.astype(np.float64)

    n = X.shape[0] * X.shape[2] * X.shape[3]
    mean = sum(c.sum(axis=(0, 2, 3)) for c in chunks()) / n
    var = sum(((c - mean.reshape(1, -1, 1, 1)) ** 2).sum(axis=(0, 2, 3)) for c in chunks()) / n
    scale = np.sqrt(var)
    scale = np.where(scale < 1e-8, 1.0, scale)
    return (mean.astype(np.float32).reshape(-1, 1, 1),
            scale.astype(np.float32).reshape(-1, 1, 1))


def value_range(X):
    """The range the estimator clamps its colour augmentations of images ``X`` to.

    [0, 1] for uint8 pixels (scaled by 1/255) and for floats within [-0.01, 2]
    (widened to their own range), [0, 255] for other floats within
    [-0.01, 255.01] (the 0..255 scale, e.g. 8x8 digits' 0..16), else the
    floats' own (min, max).
    """
    if X.dtype == np.uint8:
        return (0.0, 1.0)
    lo, hi = float(X.min()), float(X.max())
    if lo >= -0.01 and hi <= 2.0:
        return (min(0.0, lo), max(1.0, hi))
    if lo >= -0.01 and hi <= 255.01:
        return (0.0, 255.0)
    return (lo, hi)


def simclr_net(X, *, precision, channels_last, epochs, batch_size=None, encoder="cnn",
               encoder_kwargs=None, device="cpu", seed=0, verbose=0):
    """The skorch net of the estimator's SimCLR pre-training (phase a1) for images ``X``.

    ``X`` is (n, C, H, W), uint8 or float.  Module, loss, augmentation,
    optimiser, learning-rate schedule and batching are those of
    :class:`~noisyclf.ContrastiveNoisyClassifier` with its default
    hyperparameters (``batch_size`` None: the default batch size), so a net
    built here trains as the estimator's a1 does.  ``encoder`` and
    ``encoder_kwargs`` are those of :func:`~noisyclf.modules.make_encoder`;
    torch's RNG is seeded with ``seed`` before the encoder is built.
    """
    defaults = ContrastiveNoisyClassifier().get_params()
    batch_size = batch_size or defaults["batch_size"]
    torch.manual_seed(seed)
    mean, scale = channel_stats(X)
    enc = make_encoder(encoder, X.shape[1:], mean, scale, **(encoder_kwargs or {}))
    module = ContrastiveModule(enc, ProjectionHead(enc.out_features, defaults["projection_dim"]))
    hflip = defaults["hflip_prob"]
    if hflip == "auto":
        hflip = 0.5 if X.shape[1] == 3 else 0.0
    return ContrastiveNet(
        module, NTXentLoss, criterion__temperature=defaults["temperature"],
        augmenter="simclr", augmenter__crop_scale=(defaults["min_crop_scale"], 1.0),
        augmenter__hflip_prob=hflip, augmenter__value_range=value_range(X),
        optimizer=torch.optim.SGD, optimizer__momentum=0.9,
        optimizer__weight_decay=defaults["weight_decay"], lr=defaults["pretrain_lr"],
        max_epochs=epochs, batch_size=batch_size, train_split=None,
        callbacks=[("lr_scheduler", LRScheduler(policy="CosineAnnealingLR", T_max=epochs))],
        iterator_train__shuffle=True,
        # A final batch of one sample breaks BatchNorm in training mode.
        iterator_train__drop_last=len(X) > batch_size and len(X) % batch_size == 1,
        precision=precision, channels_last=channels_last, device=device, verbose=verbose)
