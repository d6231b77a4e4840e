"""Speed of the training phases: precision, memory format, SmallCNN block layout, memory.

Every number here is a ratio or a rate measured inside one run on the same
machine (timings on shared machines drift; a ratio of two timings taken side
by side does not), written with the settings beside it.  Sections
(``--sections``, default all but the slow ``fit4000`` and ``gpu``):

``a1``
    Seconds per SimCLR epoch (phase a1) through the package's skorch
    :class:`~noisyclf.nets.ContrastiveNet` on 32x32 RGB images (CIFAR-10
    from ``--data`` when the file exists, else random uint8 images) and on
    8x8 digits, for fp32/bf16 x NCHW/channels-last, plus a hand-written loop
    over the same module (skorch's overhead) and the a2 step
    (:class:`~noisyclf.nets.NoisyLabelNet`) in fp32/bf16.  The variants
    train round-robin, one epoch each per round (``--rounds``, after a
    warm-up round), and the median epoch counts, so that a slow spell of the
    shared machine hits every variant alike.  ``speedup`` is against the
    first row of its image size and phase (NCHW fp32).
``layout``
    The SmallCNN's pooled blocks as conv-BN-pool-ReLU with global average
    pooling over the channels-last view (the package's SmallCNN) against
    conv-BN-ReLU-pool with ``adaptive_avg_pool2d`` (the same function) and
    conv-pool-BN-ReLU (BatchNorm on the pooled map: another function): a1
    and a2 seconds per epoch in bf16 and fp32, channels-last, round-robin,
    on 28x28 single-channel and 32x32 RGB images, and whether one a1 epoch
    (bf16) from the same weights ends with the package layout's weights.
``predict``
    ``predict_proba`` images/s of a fitted model at batch 1, 64 and 1,024.
``scaling``
    a1 seconds per epoch at 1k, 5k and 20k samples and the fitted slope.
``memory``
    Peak resident memory growth of ``fit`` on uint8 images against the
    images' own size (one epoch per phase), sampled every 20 ms.
``demo``
    Wall time of ``python -m noisyclf`` with ``precision`` fp32 and auto.
``fit4000``
    Default-settings ``fit`` on 4,000 28x28 single-channel images for each
    of ``--precisions`` and ``--layouts`` (the SmallCNN layout, see
    ``layout``; a layout other than the package's is passed as the
    ``encoder`` class), ``--repeats`` times, alternating; slow (about 5
    minutes per fit).  A rerun replaces the rows of this CPU and keeps those
    of other CPUs.
``gpu``
    The CIFAR ResNet-18's a1 epoch on a CUDA GPU, skorch against the
    hand-written loop, fp32 / bf16 / fp16, at batch 128 and 512
    (``benchmarks/gpu_check.sh``).

Writes ``benchmarks/results/speed_<section>.csv``.  Usage::

    python benchmarks/bench_speed.py                       # all but fit4000 and gpu
    python benchmarks/bench_speed.py --sections a1 layout
    python benchmarks/bench_speed.py --quick               # smoke test (seconds)
"""

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from noisyclf import ContrastiveNoisyClassifier
from noisyclf.datasets import load_cifar10
from noisyclf.modules import ClassifierHead, ClassifierModule, make_encoder
from noisyclf.nets import NoisyLabelNet, make_criterion, resolve_precision

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path, not run as a script
    sys.path.insert(0, _HERE)
from _common import (  # noqa: E402
    PeakRSS, add_data_argument, channel_stats, environment, make_parser, parse_args,
    other_cpus_rows, simclr_net, write_csv,
)

SECTIONS = ["a1", "layout", "predict", "scaling", "memory", "demo", "fit4000", "gpu"]
DEFAULT_SECTIONS = SECTIONS[:-2]
#: (precision, channels_last) of the a1 variants; the first is the reference
#: of the ``speedup`` column.
A1_VARIANTS = [("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)]

#: SmallCNN block layouts (section ``layout``): the package's, conv-BN-ReLU-pool
#: (the same function) and BatchNorm after the pooling (another function).
LAYOUTS = ["conv-BN-pool-ReLU", "conv-BN-ReLU-pool", "conv-pool-BN-ReLU"]


class ConvBNReLUPoolCNN(nn.Module):
    """:class:`~noisyclf.modules.SmallCNN` with each pooled block conv-BN-ReLU
    then max-pooling and ``adaptive_avg_pool2d`` at the end: the same
    function with the same state-dict keys.  ``pool_first=True`` pools right
    after the convolution instead (conv-pool-BN-ReLU): BatchNorm then
    normalises the pooled map, another function.

    Weights and activations are channels-last (the input is converted in
    ``forward``), as the estimator runs its built-in conv encoders, so that
    as the estimator's ``encoder`` class it is timed like SmallCNN."""

    def __init__(self, in_channels, widths=(32, 64, 128), image_size=32, pool_first=False):
        super().__init__()
        layers, ch, size = [], in_channels, image_size
        for i, w in enumerate(widths):
            block = nn.Sequential(nn.Conv2d(ch, w, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(w), nn.ReLU(inplace=True))
            layers.append(block)
            if i < len(widths) - 1 and size >= 4:
                if pool_first:
                    block.insert(1, nn.MaxPool2d(2))
                else:
                    layers.append(nn.MaxPool2d(2))
                size //= 2
            ch = w
        self.features = nn.Sequential(*layers)
        self.out_features = ch
        self.to(memory_format=torch.channels_last)

    def forward(self, x):
        x = x.contiguous(memory_format=torch.channels_last)
        return torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)


def layout_encoder(layout, input_shape):
    """``(encoder, encoder_kwargs)`` for :func:`~noisyclf.modules.make_encoder` (the
    estimator's ``encoder`` and ``encoder__*``): a SmallCNN in ``layout`` (one of
    :data:`LAYOUTS`) for images of ``input_shape`` (C, H, W)."""
    if layout == LAYOUTS[0]:
        return "cnn", {}
    return ConvBNReLUPoolCNN, dict(in_channels=input_shape[0], image_size=min(input_shape[1:]),
                                   pool_first=layout == LAYOUTS[2])


# ----------------------------------------------------------------- data
def cifar_images(path, n, seed=0):
    """``n`` CIFAR-10 training images from the npz file ``path`` as uint8
    (n, 3, 32, 32), or random ones when the file is not there."""
    try:
        X, _ = load_cifar10(path, n_samples=n, random_state=seed)
        source = "CIFAR-10"
    except (FileNotFoundError, OSError, ValueError):
        X = np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        source = "random uint8"
    return np.ascontiguousarray(X.transpose(0, 3, 1, 2)), source


def digits_images():
    from sklearn.datasets import load_digits
    X = load_digits().data.astype(np.float32).reshape(-1, 1, 8, 8)
    return X, "digits"


# ------------------------------------------------------------- the nets
def epoch_runner(net, data, y=None):
    """A callable that trains ``net`` one more epoch and returns its seconds."""
    net.initialize()

    def one_epoch():
        start = time.perf_counter()
        net.partial_fit(data, y, epochs=1)
        return time.perf_counter() - start
    return one_epoch


def simclr_runner(X, **kwargs):
    return epoch_runner(simclr_net(X, epochs=100, **kwargs), {"x": torch.from_numpy(X)})


def _sync(run, device):
    if torch.device(device).type != "cuda":
        return run

    def synced():
        seconds = run()
        torch.cuda.synchronize()
        return seconds
    return synced


def hand_loop_runner(X, *, precision, batch_size=128, encoder="cnn", device="cpu"):
    """a1 written by hand (no skorch) with the same module, augmenter and loss,
    channels-last, one pass per view (as the nets), pinned batches and
    non-blocking copies on CUDA, a gradient scaler for fp16: what skorch's
    loop adds, if anything."""
    net = simclr_net(X, precision=precision, channels_last=True, epochs=1, encoder=encoder,
                     device=device)
    net.initialize()
    module, aug, crit = net.module_, net.augmenter_, net.criterion_
    params = net.get_params()
    opt = torch.optim.SGD(module.parameters(), lr=params["lr"],
                          momentum=params["optimizer__momentum"],
                          weight_decay=params["optimizer__weight_decay"])
    cuda = torch.device(device).type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and precision == "fp16")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.bfloat16)
    xt = torch.from_numpy(X)

    def one_epoch():
        start = time.perf_counter()
        order = torch.randperm(len(xt))
        for b in range(0, len(xt), batch_size):
            x = xt[order[b:b + batch_size]]
            if cuda:
                x = x.pin_memory()
            x = x.to(device, non_blocking=cuda)
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x
            v1 = aug(x).contiguous(memory_format=torch.channels_last)
            v2 = aug(x).contiguous(memory_format=torch.channels_last)
            with torch.autocast(torch.device(device).type, dtype=dtype,
                                enabled=precision != "fp32"):
                z1, z2 = module(v1).float(), module(v2).float()
            loss = crit(z1, z2).mean()
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            loss.item()  # as skorch, which logs every batch's loss
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start
    return one_epoch


def interleaved(runners, rounds):
    """Median seconds per epoch of each runner, run round-robin for ``rounds``
    rounds after one warm-up round, so that a slow spell of the machine hits
    every variant alike."""
    for run in runners.values():
        run()
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            times[name].append(run())
    return {name: float(np.median(t)) for name, t in times.items()}


def supervised_net(X, y, *, precision, channels_last, epochs, encoder="cnn",
                   encoder_kwargs=None, seed=0):
    """The skorch net of phase a2 (ELR, the estimator's default learning rate and
    batch size) for images ``X`` of shape (n, C, H, W)."""
    torch.manual_seed(seed)
    mean, scale = channel_stats(X)
    enc = make_encoder(encoder, X.shape[1:], mean, scale, **(encoder_kwargs or {}))
    module = ClassifierModule(enc, ClassifierHead(enc.out_features, 10))
    return NoisyLabelNet(
        module, make_criterion("elr", n_samples=len(X), n_classes=10), augmenter="weak",
        augmenter__hflip_prob=0.5 if X.shape[1] == 3 else 0.0, n_samples=len(X),
        record_epochs=0, precision=precision, channels_last=channels_last,
        optimizer=torch.optim.SGD, optimizer__momentum=0.9, lr=0.02, max_epochs=epochs,
        batch_size=128, train_split=None, iterator_train__shuffle=True, device="cpu",
        verbose=0)


def supervised_runner(X, **kwargs):
    """:func:`epoch_runner` of a :func:`supervised_net` on ``X`` (labels ``i % 10``)."""
    y = torch.as_tensor(np.arange(len(X)) % 10)
    data = {"x": torch.from_numpy(X), "index": torch.arange(len(X)),
            "sample_weight": torch.ones(len(X))}
    return epoch_runner(supervised_net(X, y, epochs=100, **kwargs), data, y)


# ------------------------------------------------------------- sections
def section_a1(args, env):
    rows = []
    n = 256 if args.quick else 4096
    rounds = 1 if args.quick else args.rounds
    for X, source in [cifar_images(args.data, n), digits_images()]:
        X = X[:n]
        shape = "x".join(map(str, X.shape[1:]))
        runners = {}
        for precision, cl in A1_VARIANTS:
            runners[("a1", precision, cl, "skorch")] = simclr_runner(
                X, precision=precision, channels_last=cl)
        for precision in ["fp32", "bf16"]:
            runners[("a1", precision, True, "hand-written")] = hand_loop_runner(
                X, precision=precision)
        for precision, cl in [("fp32", False), ("fp32", True), ("bf16", True)]:
            runners[("a2", precision, cl, "skorch")] = supervised_runner(
                X, precision=precision, channels_last=cl)
        seconds = interleaved(runners, rounds)
        base = {}
        for (phase, precision, cl, loop), sec in seconds.items():
            base.setdefault(phase, sec)
            rows.append(dict(phase=phase, images=source, shape=shape, n=len(X),
                             precision=precision, channels_last=cl, loop=loop,
                             sec_per_epoch=sec, images_per_s=len(X) / sec,
                             speedup=base[phase] / sec, rounds=rounds))
            print(_fmt(rows[-1]), flush=True)
    return rows


def section_layout(args, env):
    rows = []
    n = 256 if args.quick else 4096
    rounds = 1 if args.quick else args.rounds
    gray = (np.random.default_rng(0).random((n, 1, 28, 28)) * 255).astype(np.uint8)
    for X, source in [(gray, "random uint8"), cifar_images(args.data, n)]:
        X = X[:n]
        shape = "x".join(map(str, X.shape[1:]))
        runners, weights = {}, {}
        for layout in LAYOUTS:
            encoder, encoder_kwargs = layout_encoder(layout, X.shape[1:])
            nets = dict(channels_last=True, encoder=encoder, encoder_kwargs=encoder_kwargs)
            for precision in ("bf16", "fp32"):
                runners[("a1", precision, layout)] = simclr_runner(
                    X, precision=precision, **nets)
                runners[("a2", precision, layout)] = supervised_runner(
                    X, precision=precision, **nets)
            # One a1 epoch on 256 images from the same weights and RNG.
            net = simclr_net(X[:256], precision="bf16", epochs=1, **nets)
            torch.manual_seed(1)
            net.fit({"x": torch.from_numpy(X[:256])})
            weights[layout] = [p.detach().clone() for p in net.module_.parameters()]
        seconds = interleaved(runners, rounds)
        for (phase, precision, layout), sec in seconds.items():
            same = all(torch.equal(p, q) for p, q in zip(weights[layout], weights[LAYOUTS[0]]))
            rows.append(dict(phase=phase, images=source, shape=shape, n=len(X),
                             precision=precision, channels_last=True, layout=layout,
                             sec_per_epoch=sec, images_per_s=len(X) / sec,
                             speedup=seconds[(phase, precision, LAYOUTS[1])] / sec,
                             same_weights_as_package_layout=same, rounds=rounds))
            print(_fmt(rows[-1]), flush=True)
    return rows


def section_predict(args, env):
    n = 256 if args.quick else 2000
    X, source = cifar_images(args.data, n)
    y = np.arange(n) % 10
    clf = ContrastiveNoisyClassifier(pretrain_epochs=0, max_epochs=1, warmup_epochs=0,
                                     gmm_epochs=1, phases="pretrain", random_state=0)
    clf.fit(X.transpose(0, 2, 3, 1), y)
    rows = []
    Xp = X.transpose(0, 2, 3, 1)
    for batch in [1, 64, 1024]:
        reps = max(1, (64 if args.quick else 512) // batch) if batch < 1024 else 2
        xb = np.ascontiguousarray(Xp[:batch])
        clf.predict_proba(xb)  # warm-up
        start = time.perf_counter()
        for _ in range(reps):
            clf.predict_proba(xb)
        sec = (time.perf_counter() - start) / reps
        rows.append(dict(images=source, batch=batch, seconds_per_call=sec,
                         images_per_s=batch / sec))
        print(_fmt(rows[-1]), flush=True)
    return rows


def section_scaling(args, env):
    sizes = [128, 256, 512] if args.quick else [1000, 5000, 20000]
    X_all, source = cifar_images(args.data, max(sizes))
    precision = resolve_precision("auto", "cpu")
    runners = {n: simclr_runner(X_all[:n], precision=precision, channels_last=True)
               for n in sizes}
    seconds = interleaved(runners, 1 if args.quick else 2)
    rows = [dict(images=source, n=n, precision=precision, sec_per_epoch=sec,
                 ms_per_image=1000 * sec / n) for n, sec in seconds.items()]
    slope, intercept = np.polyfit([r["n"] for r in rows], [r["sec_per_epoch"] for r in rows], 1)
    for r in rows:
        r["slope_ms_per_image"] = 1000 * slope
        r["intercept_s"] = intercept
        print(_fmt(r), flush=True)
    print(f"a1 epoch = {intercept:.2f} s + {1000 * slope:.3f} ms x n", flush=True)
    return rows


def section_memory(args, env):
    n = 2000 if args.quick else 50000
    X, source = cifar_images(args.data, n)
    X = np.ascontiguousarray(X.transpose(0, 2, 3, 1))  # as users hold them: (n, 32, 32, 3)
    y = np.arange(n) % 10
    params = dict(pretrain_epochs=1, max_epochs=1, finetune_epochs=1, gmm_epochs=1,
                  warmup_epochs=0, random_state=0)
    # Warm up torch's allocator and kernels on a few images first.
    ContrastiveNoisyClassifier(**params).fit(X[:300], y[:300])
    with PeakRSS() as peak:
        start = time.perf_counter()
        ContrastiveNoisyClassifier(**params).fit(X, y)
        seconds = time.perf_counter() - start
    growth = peak.peak - peak.start
    row = dict(images=source, n=n, uint8_mb=X.nbytes / 2**20, peak_growth_mb=growth / 2**20,
               growth_over_uint8=growth / X.nbytes, float32_copy_mb=4 * X.nbytes / 2**20,
               fit_seconds=seconds)
    print(_fmt(row), flush=True)
    return [row]


def _timed(cmd, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed:\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout


def section_demo(args, env):
    rows = []
    for precision in args.precisions:
        cmd = [sys.executable, "-m", "noisyclf", "--precision", precision]
        if args.quick:
            cmd += ["--quick"]
        seconds, out = _timed(cmd)
        rows.append(dict(job="python -m noisyclf", precision=precision, wall_s=seconds,
                         resolved=resolve_precision(precision, "cpu")))
        print(_fmt(rows[-1]), flush=True)
    return rows


def section_fit4000(args, env):
    n = 200 if args.quick else 4000
    rng = np.random.default_rng(0)
    X = (rng.random((n, 28, 28)) * 255).astype(np.uint8)
    y = rng.integers(0, 10, n)
    rows = []
    runs = itertools.product(range(args.repeats), args.precisions, args.layouts)
    for repeat, precision, layout in runs:
        encoder, encoder_kwargs = layout_encoder(layout, (1, 28, 28))
        params = dict(random_state=0, precision=precision, encoder=encoder,
                      **{f"encoder__{k}": v for k, v in encoder_kwargs.items()})
        if args.quick:
            params.update(pretrain_epochs=1, max_epochs=1, finetune_epochs=1,
                          gmm_epochs=1, warmup_epochs=0)
        start = time.perf_counter()
        clf = ContrastiveNoisyClassifier(**params).fit(X, y)
        rows.append(dict(job=f"fit {n} 28x28 uint8, defaults", precision=precision,
                         resolved=clf.precision_, layout=layout, repeat=repeat,
                         wall_s=time.perf_counter() - start))
        print(_fmt(rows[-1]), flush=True)
    return rows


def section_gpu(args, env):
    """The CIFAR ResNet-18's a1 on a CUDA GPU: skorch against the hand-written loop,
    fp32 / bf16 / fp16 (``benchmarks/gpu_check.sh``)."""
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure", flush=True)
        return [dict(gpu="none", note="no CUDA device")]
    device = "cuda"
    name = torch.cuda.get_device_name(0)
    n = 512 if args.quick else 8192
    X, source = cifar_images(args.data, n)
    rows = []
    for batch_size in args.gpu_batch_sizes:
        runners = {}
        for precision in ["fp32", "bf16", "fp16"]:
            runners[(precision, "skorch")] = _sync(simclr_runner(
                X, precision=precision, channels_last=True, encoder="resnet18",
                device=device, batch_size=batch_size), device)
            runners[(precision, "hand-written")] = hand_loop_runner(
                X, precision=precision, encoder="resnet18", device=device,
                batch_size=batch_size)
        seconds = interleaved(runners, 1 if args.quick else args.rounds)
        for (precision, loop), sec in seconds.items():
            rows.append(dict(gpu=name, encoder="resnet18", images=source, n=n,
                             batch_size=batch_size, precision=precision, loop=loop,
                             sec_per_epoch=sec, images_per_s=n / sec,
                             vs_fp32=seconds[("fp32", loop)] / sec,
                             skorch_over_hand=(seconds[(precision, "hand-written")]
                                               / seconds[(precision, "skorch")])))
            print(_fmt(rows[-1]), flush=True)
    return rows


def _fmt(row):
    return "  " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in row.items())


def main(argv=None):
    parser = make_parser(__doc__)
    add_data_argument(parser)
    parser.add_argument("--sections", nargs="+", default=DEFAULT_SECTIONS, choices=SECTIONS)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "auto"],
                        choices=["fp32", "bf16", "auto"],
                        help="precisions of the demo and fit4000 sections")
    parser.add_argument("--layouts", nargs="+", default=LAYOUTS[:1], choices=LAYOUTS[:2],
                        help="SmallCNN layouts of the fit4000 section (see the layout section)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="fits per precision and layout in the fit4000 section, alternating")
    parser.add_argument("--gpu-batch-sizes", type=int, nargs="+", default=[128, 512],
                        help="batch sizes of the gpu section")
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed epochs per variant, run round-robin (after a warm-up)")
    args = parse_args(parser, argv)
    env = environment()
    env["cpu_bf16"] = resolve_precision("auto", "cpu") == "bf16"
    written = []
    for name in args.sections:
        print(f"[{name}]", flush=True)
        rows = globals()[f"section_{name}"](args, env)
        rows = [dict(r, **env) for r in rows]
        path = args.out / f"speed_{name}.csv"
        if name == "fit4000":  # slow: the fits of other CPUs stay beside this one's
            rows = other_cpus_rows(path, env["cpu_model"]) + rows
        columns = list(dict.fromkeys(k for r in rows for k in r))
        write_csv(rows, columns, path)
        written.append(path)
    return written


if __name__ == "__main__":
    main()
