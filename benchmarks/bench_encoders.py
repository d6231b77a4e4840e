"""Encoders for colour images: accuracy against CPU time on CIFAR-10, and their speed.

Sections (``--sections``):

``speed``
    For each candidate encoder: forward FLOPs per 32x32 image, a1 (SimCLR,
    bf16, channels-last, the estimator's net) seconds per epoch on ``--n-speed``
    CIFAR-10 images, images per second, and the GFLOP/s that makes, beside
    the bf16 matmul rate of this machine (a 2048 x 2048 product on the same
    threads).  Written to ``results/encoders_speed.csv``.
``accuracy``
    The clean-label ceiling: ``phases="pretrain"`` with ``loss="ce"`` on
    clean labels (a1, then a2), test accuracy on the 10,000 CIFAR-10 test
    images, wall and CPU seconds of the fit, for each candidate, training
    size (``--n-train``) and a1 length (``--pretrain-epochs``).  One row per
    cell, appended to ``results/encoders.csv`` as it finishes; cells already
    there are skipped, so the grid resumes after a stop.
``plot``
    ``results/encoders.png`` from the accuracy CSV: test accuracy against the
    fit's CPU time, one line per encoder through its a1 lengths, one panel per
    training size (the Pareto curve).
``a2``
    a2's length with the default encoder (``encoder="auto"``, the default
    a1 cached under ``--a1-cache``; its length ``--a2-pretrain-epochs``, by
    default the estimator's): ``phases="pretrain"`` with the default loss on
    ``--n-train`` images (the first size) with clean labels and the label
    settings of ``--a2-settings`` (noise seeds ``--a2-noise-seeds``, drawn as in
    ``bench_cifar10.py``; the clean labels once),
    for each ``--a2-epochs``.  Besides the test
    accuracy, the accuracy of the softmax averaged over each test image and its
    mirror (test-time flips, as airbench94 predicts).  One row per cell,
    appended to ``results/encoders_a2.csv``; cells already there are skipped.
``custom``
    A user's own encoder: the same module class passed as ``encoder=``, once
    as it is (the dry run finds that it runs channels-last) and once with a
    forward that reshapes its input with ``.view()`` (which runs as it is), a1
    seconds per epoch of each, for a 2x SmallCNN and torchvision's
    ResNet-18.  Written to ``results/encoders_custom.csv``.

Every row records the CPU model: the ratios differ between CPUs with and
without AMX.  A rerun of ``speed`` or ``custom`` replaces the rows of this
CPU and keeps those of other CPUs.
"""

import csv
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from _common import (  # noqa: E402
    add_data_argument, append_row, environment, make_parser, other_cpus_rows, parse_args,
    pyplot, run_main, save_figure, simclr_net, write_csv,
)
from noisyclf import ContrastiveNoisyClassifier  # noqa: E402
from noisyclf.datasets import load_cifar10  # noqa: E402
from noisyclf.modules import AirbenchCNN, CifarResNet18, SmallCNN  # noqa: E402

SECTIONS = ["speed", "accuracy", "custom", "plot", "a2"]

#: name -> (module class, keyword arguments): the candidates, all on 3x32x32 input.
CANDIDATES = {
    "cnn": (SmallCNN, dict(in_channels=3, widths=(32, 64, 128))),
    "cnn2x": (SmallCNN, dict(in_channels=3, widths=(64, 128, 256))),
    "cnn4x": (SmallCNN, dict(in_channels=3, widths=(128, 256, 512))),
    "airbench-half": (AirbenchCNN, dict(in_channels=3, widths=(32, 128, 128))),
    "airbench": (AirbenchCNN, dict(in_channels=3, widths=(64, 256, 256))),
    "resnet18": (CifarResNet18, dict(in_channels=3)),
}
ACCURACY_COLUMNS = [
    "encoder", "n_train", "pretrain_epochs", "max_epochs", "seed", "n_test", "test_accuracy",
    "wall_s", "cpu_s", "a1_s", "a2_s", "fwd_mflops", "params", "channels_last", "cpu_model",
    "torch_threads", "torch", "noisyclf", "finished",
]


def encoder_params(name):
    """The estimator's ``encoder`` and ``encoder__*`` parameters of candidate ``name``."""
    cls, kwargs = CANDIDATES[name]
    return dict(encoder=cls, **{f"encoder__{k}": v for k, v in kwargs.items()})


def forward_mflops(cls, kwargs):
    """Forward MFLOPs of one 3x32x32 image (``torch.utils.flop_counter``)."""
    from torch.utils.flop_counter import FlopCounterMode
    module = cls(**kwargs).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(torch.zeros(1, 3, 32, 32))
    return counter.get_total_flops() / 1e6


def matmul_gflops(size=2048, repeats=10):
    """bf16 matmul rate of this machine on torch's threads, GFLOP/s (best of ``repeats``)."""
    a = torch.randn(size, size).bfloat16()
    b = torch.randn(size, size).bfloat16()
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def cifar_train(args, n, seed=0):
    return load_cifar10(args.data, n_samples=n, random_state=seed, memory=args.cache)


def cifar_test(args):
    return load_cifar10(args.data, subset="test", memory=args.cache)


# ------------------------------------------------------------- speed
def section_speed(args, env):
    X, _ = cifar_train(args, args.n_speed)
    X = np.ascontiguousarray(X.transpose(0, 3, 1, 2))
    matmul = matmul_gflops()
    print(f"  bf16 matmul: {matmul:.0f} GFLOP/s", flush=True)
    rows = []
    for name in args.encoders:
        cls, kwargs = CANDIDATES[name]
        mflops = forward_mflops(cls, kwargs)
        net = simclr_net(X, precision="bf16", channels_last=True, epochs=10,
                         encoder=cls, encoder_kwargs=kwargs)
        net.initialize()
        data = {"x": torch.from_numpy(X)}
        net.partial_fit(data, None, epochs=1)  # warm-up
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            net.partial_fit(data, None, epochs=1)
            times.append(time.perf_counter() - start)
        sec = float(np.median(times))
        images_per_s = len(X) / sec
        # One a1 step per image: 2 views, forward + backward ~ 3 forwards each.
        gflops = images_per_s * 6 * mflops / 1e3
        rows.append(dict(encoder=name, fwd_mflops=mflops,
                         params=sum(p.numel() for p in net.module_.encoder.parameters()),
                         n=len(X), sec_per_epoch=sec, images_per_s=images_per_s,
                         a1_gflops=gflops, matmul_gflops=matmul,
                         matmul_fraction=gflops / matmul, rounds=args.rounds))
        print(_fmt(rows[-1]), flush=True)
    return rows


# ------------------------------------------------------------- accuracy
def _done(path, key=lambda r: (r["encoder"], int(r["n_train"]), int(r["pretrain_epochs"]),
                                int(r["seed"]))):
    """The ``key`` of every row already in the CSV at ``path``."""
    if not path.exists():
        return set()
    with open(path, newline="") as fh:
        return {key(r) for r in csv.DictReader(fh)}


def _append(row, path, columns=ACCURACY_COLUMNS):
    """``row``'s ``columns`` appended to the CSV at ``path`` (:func:`append_row`)."""
    append_row(path, {k: row.get(k, "") for k in columns})


def section_accuracy(args, env):
    path = args.out / f"{args.name}.csv"
    Xte, yte = cifar_test(args)
    if args.n_test < len(Xte):
        Xte, yte = Xte[:args.n_test], yte[:args.n_test]
    for n_train in args.n_train:
        X, y = cifar_train(args, n_train)
        for pretrain_epochs in args.pretrain_epochs:
            for name in args.encoders:
                for seed in args.seeds:
                    if (name, n_train, pretrain_epochs, seed) in _done(path):
                        continue
                    clf = ContrastiveNoisyClassifier(
                        phases="pretrain", loss="ce", pretrain_epochs=pretrain_epochs,
                        max_epochs=args.max_epochs, random_state=seed, **encoder_params(name))
                    wall, cpu = time.perf_counter(), time.process_time()
                    clf.fit(X, y)
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    cls, kwargs = CANDIDATES[name]
                    row = dict(
                        encoder=name, n_train=n_train, pretrain_epochs=pretrain_epochs,
                        max_epochs=args.max_epochs, seed=seed, n_test=len(Xte),
                        test_accuracy=clf.score(Xte, yte), wall_s=wall, cpu_s=cpu,
                        a1_s=sum(r["dur"] for r in clf.pretrain_history_),
                        a2_s=sum(r["dur"] for r in clf.history_["a2"]),
                        fwd_mflops=forward_mflops(cls, kwargs),
                        params=sum(p.numel() for p in clf.classifier_net_.module_.encoder
                                   .parameters()),
                        channels_last=clf.channels_last_,
                        finished=time.strftime("%Y-%m-%d %H:%M:%S"), **env)
                    _append(row, path)
                    print(_fmt(row), flush=True)
    return None


# ------------------------------------------------------------- a2
A2_COLUMNS = [
    "labels", "n_train", "pretrain_epochs", "max_epochs", "loss", "seed", "n_test",
    "given_accuracy", "pseudo_accuracy", "test_accuracy", "flip_tta_accuracy", "encoder",
    "a2_s", "wall_s", "cpu_s", "cpu_model", "torch_threads", "torch", "noisyclf", "finished",
]


def section_a2(args, env):
    from bench_cifar10 import noisy_labels, parse_setting

    from noisyclf.datasets import CIFAR10N_LABEL_KEYS
    path = args.out / f"{args.name}_a2.csv"
    n_train = args.n_train[0]
    Xte, yte = cifar_test(args)
    if args.n_test < len(Xte):
        Xte, yte = Xte[:args.n_test], yte[:args.n_test]
    mirrored = np.ascontiguousarray(Xte[:, :, ::-1])  # channels-last: width is axis 2
    X, y = cifar_train(args, n_train)
    pretrain_epochs = args.a2_pretrain_epochs or (
        1 if args.quick else ContrastiveNoisyClassifier().pretrain_epochs)
    done = _done(path, key=lambda r: (r["labels"], int(r["n_train"]), int(r["pretrain_epochs"]),
                                      int(r["max_epochs"]), int(r["seed"])))
    human = {key: load_cifar10(args.data, n_samples=n_train, random_state=0, label_noise=key,
                               memory=args.cache)[1]
             for key in CIFAR10N_LABEL_KEYS if key in args.a2_settings}
    cells = [("clean", 0)] + [  # human labels are the same for every seed
        (labels, seed) for labels in args.a2_settings
        for seed in (args.a2_noise_seeds[:1] if labels in human else args.a2_noise_seeds)]
    for labels, seed in cells:
        given = y if labels == "clean" else noisy_labels(*parse_setting(labels), y, human, seed)
        for epochs in args.a2_epochs:
            if (labels, n_train, pretrain_epochs, epochs, seed) in done:
                continue
            clf = ContrastiveNoisyClassifier(
                phases="pretrain", pretrain_epochs=pretrain_epochs, max_epochs=epochs,
                random_state=0, memory=str(Path(args.a1_cache) / f"cifar10_n{n_train}_s0"),
                **({"warmup_epochs": 1} if args.quick else {}))
            wall, cpu = time.perf_counter(), time.process_time()
            clf.fit(X, given)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            proba = clf.predict_proba(Xte)
            both = proba + clf.predict_proba(mirrored)
            row = dict(
                labels=labels, n_train=n_train, pretrain_epochs=clf.pretrain_epochs,
                max_epochs=epochs, loss=clf.loss, seed=seed, n_test=len(Xte),
                given_accuracy=float(np.mean(given == y)),
                pseudo_accuracy=float(np.mean(clf.pseudo_labels_ == y)),
                test_accuracy=float(np.mean(clf.classes_[proba.argmax(1)] == yte)),
                flip_tta_accuracy=float(np.mean(clf.classes_[both.argmax(1)] == yte)),
                encoder=clf.encoder_kind_, a2_s=sum(r["dur"] for r in clf.history_["a2"]),
                wall_s=wall, cpu_s=cpu, finished=time.strftime("%Y-%m-%d %H:%M:%S"), **env)
            _append(row, path, A2_COLUMNS)
            print(_fmt({k: row[k] for k in A2_COLUMNS[:11]}), flush=True)
    return None


# ------------------------------------------------------------- custom
class _ViewInput(nn.Module):
    """``module`` after a round trip of its input through ``x.view(len(x), -1)``, which
    a channels-last batch refuses, so the estimator's dry run keeps it as it is."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x.view(len(x), -1).view(x.shape))


def _torchvision_resnet18():
    import torchvision
    module = torchvision.models.resnet18(num_classes=10)
    module.fc = nn.Identity()
    return module


def section_custom(args, env):
    X, _ = cifar_train(args, args.n_custom)
    y = np.arange(len(X)) % 10
    modules = {"SmallCNN 2x": lambda: SmallCNN(3, widths=(64, 128, 256))}
    if importlib.util.find_spec("torchvision") is not None:
        modules["torchvision ResNet-18"] = _torchvision_resnet18
    else:
        print("  torchvision is not installed: its ResNet-18 is left out", flush=True)
    rows = []
    for name, build in modules.items():
        times = {}
        for variant in ["as it is", ".view() input"] * args.rounds:
            torch.manual_seed(0)
            module = build() if variant == "as it is" else _ViewInput(build())
            clf = ContrastiveNoisyClassifier(
                phases="pretrain", encoder=module, pretrain_epochs=args.custom_epochs,
                max_epochs=1, warmup_epochs=0, random_state=0)
            clf.fit(X, y)
            durations = [r["dur"] for r in clf.pretrain_history_[1:]]  # first: warm-up
            times.setdefault((variant, clf.channels_last_), []).extend(durations)
        (_, cl_sec), = [(k, np.median(v)) for k, v in times.items() if k[1]]
        for (variant, cl), sec in times.items():
            sec = float(np.median(sec))
            rows.append(dict(module=name, variant=variant, channels_last=cl, n=len(X),
                             sec_per_epoch=sec, images_per_s=len(X) / sec,
                             time_vs_channels_last=sec / cl_sec))
            print(_fmt(rows[-1]), flush=True)
    return rows


# ------------------------------------------------------------- plot
def section_plot(args, env):
    import pandas as pd
    path = args.out / f"{args.name}.csv"
    if not path.exists():
        print(f"  no {path}: nothing to plot", flush=True)
        return None
    runs = pd.read_csv(path)
    sizes = sorted(runs["n_train"].unique())
    plt = pyplot()
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes), 4.2), squeeze=False)
    markers = dict(zip(CANDIDATES, "osD^vP"))
    for ax, n in zip(axes[0], sizes):
        part = runs[runs["n_train"] == n]
        for name, g in part.groupby("encoder", sort=False):
            g = g.groupby("pretrain_epochs")[["cpu_s", "test_accuracy"]].mean().reset_index()
            ax.plot(g["cpu_s"] / 3600, g["test_accuracy"], marker=markers.get(name, "o"),
                    label=name)
            for _, r in g.iterrows():
                ax.annotate(f"{int(r['pretrain_epochs'])}", (r["cpu_s"] / 3600,
                                                             r["test_accuracy"]),
                            textcoords="offset points", xytext=(4, -10), fontsize=7)
        ax.set(title=f"CIFAR-10, {n:,} training images, clean labels",
               xlabel="CPU hours of the fit (a1 + a2)", ylabel="test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"a1 epochs beside each point; CPU {runs['cpu_model'].iloc[0]}, "
                 f"{int(runs['torch_threads'].iloc[0])} threads", fontsize=9)
    save_figure(fig, args.out / f"{args.name}.png")
    return None


def _fmt(row):
    return "  " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in row.items() if k not in ("python", "sklearn"))


def main(argv=None):
    parser = make_parser(__doc__)
    add_data_argument(parser)
    parser.add_argument("--sections", nargs="+", default=SECTIONS, choices=SECTIONS)
    parser.add_argument("--encoders", nargs="+", default=list(CANDIDATES),
                        choices=list(CANDIDATES))
    parser.add_argument("--n-train", type=int, nargs="+", default=[4000, 20000])
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--pretrain-epochs", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--max-epochs", type=int, default=40, help="a2's epochs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n-speed", type=int, default=2048)
    parser.add_argument("--n-custom", type=int, default=512)
    parser.add_argument("--custom-epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default="encoders", help="accuracy CSV's name")
    parser.add_argument("--cache", default=str(_HERE.parent / ".noisyclf_cache" / "decoded"),
                        help="joblib cache of the decoded images")
    parser.add_argument("--a1-cache", default=str(_HERE.parent / ".noisyclf_cache" / "a1"),
                        help="section a2: a1 caches, one folder per training set "
                             "(cifar10_n<N>_s0, as bench_auto_mode.py names them)")
    parser.add_argument("--a2-epochs", type=int, nargs="+", default=[40, 80],
                        help="section a2: a2's lengths")
    parser.add_argument("--a2-pretrain-epochs", type=int, default=None,
                        help="section a2: a1's length (default: the estimator's)")
    parser.add_argument("--a2-settings", nargs="*",
                        default=["sym0.2", "sym0.6", "asy0.4", "worse_label"],
                        help="section a2: label settings beside the clean labels")
    parser.add_argument("--a2-noise-seeds", type=int, nargs="+", default=[0],
                        help="section a2: the noise seeds of each label setting")
    args = parse_args(parser, argv)
    if args.quick:
        args.n_train, args.n_test, args.pretrain_epochs = [64], 64, [1]
        args.max_epochs, args.n_speed, args.n_custom, args.custom_epochs = 1, 64, 32, 2
        args.rounds, args.seeds = 1, [0]
        args.encoders = [e for e in args.encoders if e != "resnet18"]
        args.a2_epochs, args.a2_settings = [1, 2], ["sym0.6"]
    env = environment()
    for name in args.sections:
        print(f"[{name}]", flush=True)
        rows = globals()[f"section_{name}"](args, env)
        if rows is not None:
            path = args.out / f"encoders_{name}.csv"
            rows = other_cpus_rows(path, env["cpu_model"]) + [dict(r, **env) for r in rows]
            columns = list(dict.fromkeys(k for r in rows for k in r))
            write_csv(rows, columns, path)


if __name__ == "__main__":
    run_main(main)
