"""Smoke tests of the benchmark scripts in ``benchmarks/``.

Each script exposes ``main(argv=None)`` and a ``--quick`` flag that runs a
tiny configuration (a few hundred samples, one epoch per phase).  These tests
run that configuration into ``tmp_path`` and check the CSV files it writes.
They check that the scripts run, not the numbers.  torch runs on one thread
here (restored afterwards): on a small shared CPU, OpenMP's thread team makes
tiny steps much slower.
"""

import csv
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from noisyclf import ContrastiveNoisyClassifier
from noisyclf._phases import resolve_pretrain_epochs
from noisyclf.modules import make_encoder

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"

pytest.importorskip("matplotlib")


def _load(name):
    path = BENCH_DIR / f"{name}.py"
    if not path.exists():
        pytest.skip(f"{path} not found (benchmarks are not part of an installed package)")
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_bench_memory_cache_quick(tmp_path):
    module = _load("bench_memory_cache")
    module.main(["--quick", "--out", str(tmp_path)])
    columns, rows = _read(tmp_path / "memory_cache.csv")
    assert columns[:4] == ["setting", "wall_s", "ratio", "identical"]
    assert {"lr_grid", "cv", "pretrain_epochs", "max_epochs", "torch_threads"} <= set(columns)
    assert [r["setting"] for r in rows] == ["uncached", "cached (cold)", "cached (warm)"]
    # Caching the label-free pre-training must not change the model.
    assert all(r["identical"] == "True" for r in rows)
    assert (tmp_path / "memory_cache.png").stat().st_size > 0


def test_bench_tabular_quick(tmp_path):
    module = _load("bench_tabular")
    module.main(["--quick", "--out", str(tmp_path)])
    columns, rows = _read(tmp_path / "tabular.csv")
    assert columns[:6] == ["dataset", "noise_rate", "method", "accuracy_mean", "accuracy_std",
                           "n_seeds"]
    assert {r["method"] for r in rows} == {"logreg", "hgb", "baseline", "pretrain", "full"}
    assert all(0.0 <= float(r["accuracy_mean"]) <= 1.0 for r in rows)
    assert (tmp_path / "tabular_runs.csv").exists()
    assert (tmp_path / "tabular.png").stat().st_size > 0


def test_bench_lr_sensitivity_quick(tmp_path):
    module = _load("bench_lr_sensitivity")
    module.main(["--quick", "--out", str(tmp_path)])
    columns, rows = _read(tmp_path / "lr_sensitivity.csv")
    assert columns[:5] == ["loss", "phases", "lr", "test_accuracy_mean", "test_accuracy_std"]
    assert {r["phases"] for r in rows} == {"baseline", "pretrain"}
    columns, gs_rows = _read(tmp_path / "lr_sensitivity_gridsearch.csv")
    assert "mean_test_score_noisy_folds" in columns
    # GridSearchCV got through the whole grid (error_score="raise"), and the
    # lr=1000 point diverged, emitted DivergenceWarning and was still scored.
    assert [float(r["lr"]) for r in gs_rows] == module.QUICK["gs_lrs"]
    assert all(0.0 <= float(r["mean_test_score_noisy_folds"]) <= 1.0 for r in gs_rows)
    assert int(gs_rows[-1]["n_fits_diverged"]) > 0
    assert int(gs_rows[-1]["divergence_warnings_total"]) > 0
    assert (tmp_path / "lr_sensitivity_runs.csv").exists()
    assert (tmp_path / "lr_sensitivity.png").stat().st_size > 0


def test_bench_digits_quick_passes_params_and_resumes(tmp_path, capsys):
    module = _load("bench_digits")
    args = ["--quick", "--out", str(tmp_path), "--modes", "pretrain", "full",
            "--params", "supcon_weighting=authors", "finetune_temperature=0.2"]
    module.main(args)
    columns, rows = _read(tmp_path / "digits.csv")
    assert {"accuracy", "auc", "auc_pseudo", "pseudo_accuracy", "settings"} <= set(columns)
    assert [r["method"] for r in rows] == ["kNN", "logreg", "pretrain", "full", "auto"]
    assert "'supcon_weighting': 'authors'" in rows[-1]["settings"]
    assert "'finetune_temperature': 0.2" in rows[-1]["settings"]
    # A rerun skips the (loss, seed) already written and keeps the rows.
    module.main(args)
    assert "skipping loss=elr seed=0" in capsys.readouterr().out
    assert len(_read(tmp_path / "digits.csv")[1]) == 5
    _, summary = _read(tmp_path / "digits_summary.csv")
    assert {"auc_pseudo_mean", "pseudo_accuracy_mean"} <= set(summary[0])
    assert (tmp_path / "digits.png").stat().st_size > 0


def test_bench_phase_b_quick_appends_each_cell_and_resumes(tmp_path, capsys):
    module = _load("bench_phase_b")
    args = ["--quick", "--out", str(tmp_path), "--temperatures", "0.1", "0.5"]
    module.main(args)
    columns, rows = _read(tmp_path / "phase_b.csv")
    assert {"seed", "setting", "supcon_weighting", "finetune_temperature", "accuracy",
            "torch_threads", "noisyclf"} <= set(columns)
    assert [(r["supcon_weighting"], float(r["finetune_temperature"])) for r in rows] == [
        ("paper", 0.1), ("paper", 0.5), ("authors", 0.1), ("authors", 0.5)]
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)
    capsys.readouterr()
    module.main(args)  # everything done: nothing refitted
    assert "accuracy" not in capsys.readouterr().out.split("setting")[0]
    assert len(_read(tmp_path / "phase_b.csv")[1]) == 4
    assert (tmp_path / "phase_b.png").stat().st_size > 0


def test_bench_speed_quick(tmp_path):
    module = _load("bench_speed")
    written = module.main(["--quick", "--out", str(tmp_path), "--sections", "a1", "predict",
                           "scaling", "memory", "gpu"])
    assert [p.name for p in written] == ["speed_a1.csv", "speed_predict.csv",
                                         "speed_scaling.csv", "speed_memory.csv",
                                         "speed_gpu.csv"]
    columns, rows = _read(tmp_path / "speed_a1.csv")
    assert {"phase", "precision", "channels_last", "loop", "sec_per_epoch",
            "speedup", "torch_threads", "cpu_bf16"} <= set(columns)
    # Two image sizes: 4 SimCLR variants, 2 hand-written loops, 3 supervised variants each.
    assert len(rows) == 2 * (len(module.A1_VARIANTS) + 2 + 3)
    assert all(float(r["sec_per_epoch"]) > 0 for r in rows)
    assert {r["loop"] for r in rows} == {"skorch", "hand-written"}
    _, rows = _read(tmp_path / "speed_predict.csv")
    assert [int(r["batch"]) for r in rows] == [1, 64, 1024]
    _, rows = _read(tmp_path / "speed_scaling.csv")
    assert len(rows) == 3 and len({r["slope_ms_per_image"] for r in rows}) == 1
    _, (row,) = _read(tmp_path / "speed_memory.csv")
    assert float(row["peak_growth_mb"]) >= 0 and float(row["uint8_mb"]) > 0
    _, rows = _read(tmp_path / "speed_gpu.csv")
    assert rows and "gpu" in rows[0]


def test_bench_speed_layout_and_fit4000_quick(tmp_path):
    module = _load("bench_speed")
    module.main(["--quick", "--out", str(tmp_path), "--sections", "layout", "fit4000",
                 "--precisions", "auto", "--layouts", *module.LAYOUTS[:2]])
    _, rows = _read(tmp_path / "speed_layout.csv")
    # a1 and a2, bf16 and fp32, two image sizes, every layout; the first two
    # are the same function, pooling before BatchNorm is not.
    assert len(rows) == 2 * 2 * 2 * len(module.LAYOUTS)
    same = {r["layout"]: r["same_weights_as_package_layout"] for r in rows}
    assert same == {"conv-BN-pool-ReLU": "True", "conv-BN-ReLU-pool": "True",
                    "conv-pool-BN-ReLU": "False"}
    _, rows = _read(tmp_path / "speed_fit4000.csv")
    assert [r["layout"] for r in rows] == module.LAYOUTS[:2]
    # Each layout builds the block order it names.
    built = {}
    for layout in module.LAYOUTS:
        encoder, kwargs = module.layout_encoder(layout, (3, 8, 8))
        body = make_encoder(encoder, (3, 8, 8), 0.0, 1.0, **kwargs)[1]
        built[layout] = [type(m).__name__ for m in body.features]
        if layout != "conv-BN-pool-ReLU":  # channels-last as the estimator's own encoders
            assert body.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert built["conv-BN-ReLU-pool"][1] == "MaxPool2d"
    assert built["conv-pool-BN-ReLU"][1] == "Sequential"
    assert built["conv-BN-pool-ReLU"][1] == "ReLU"


def test_bench_cifar10_quick_every_column_and_resumes(tmp_path, capsys):
    module = _load("bench_cifar10")
    argv = ["--quick", "--workers", "1", "--out", str(tmp_path)]
    module.main(argv)
    columns, rows = _read(tmp_path / "cifar10_quick.csv")
    assert columns == module.COLUMNS
    methods = {r["method"] for r in rows}
    assert {"baseline", "pretrain", "full", "cleanlab CleanLearning", "SimCLR + logreg",
            "pretrain (clean labels)"} <= methods
    assert {r["setting"] for r in rows} >= {"sym0.4", "worse_label"}
    for r in rows:
        assert 0.0 <= float(r["test_accuracy"]) <= 1.0
        assert r["params"] and r["seed"] == "0" and r["n_train"] == "200"
    framework = [r for r in rows if r["method"] in ("baseline", "full", "cleanlab CleanLearning")]
    assert all(r["issues_f1"] != "" for r in framework)
    # The full fit's a2 is the pretrain fit's: the same pseudo-labels and label issues.
    cells = {(r["setting"], r["loss"], r["method"]): r for r in rows}
    for (setting, loss, method), r in cells.items():
        if method == "full":
            pre = cells[(setting, loss, "pretrain")]
            assert [pre[k] for k in ("pseudo_accuracy", "issues_f1", "issues_auc")] == \
                [r[k] for k in ("pseudo_accuracy", "issues_f1", "issues_auc")]
    for png in ("cifar10_quick.png", "cifar10_quick_finetune_gain.png",
                "cifar10_quick_pseudo_labels.png", "cifar10_quick_gmm.png"):
        assert (tmp_path / png).stat().st_size > 0
    # Each run name keeps its own GMM inputs (another --name cannot overwrite them).
    saved = sorted((tmp_path / "cifar10_quick_losses").glob("*.npz"))
    assert saved
    assert not (tmp_path / "cifar10_losses").exists()
    # What the phase-b decision reads is saved beside the GMM inputs, consistently.
    for path in saved:
        a = np.load(path)
        np.testing.assert_array_equal(a["flipped"], a["given_label"] != a["true_label"])
        np.testing.assert_array_equal(a["pseudo_correct"], a["pseudo_label"] == a["true_label"])
        assert a["out_of_fold_proba"].shape == (len(a["given_label"]), 10)
        np.testing.assert_allclose(a["out_of_fold_proba"].sum(1), 1.0, atol=1e-4)
    # Resuming runs nothing that is already in the CSV.
    capsys.readouterr()
    module.main(argv)
    assert " ..." not in capsys.readouterr().out
    assert len(_read(tmp_path / "cifar10_quick.csv")[1]) == len(rows)
    # A second noise seed: synthetic settings only (the human labels do not
    # depend on it), with its own logistic-regression probes; a1 is cached.
    module.main(argv + ["--seeds", "0", "1"])
    rows1 = [r for r in _read(tmp_path / "cifar10_quick.csv")[1] if r["seed"] == "1"]
    assert {r["setting"] for r in rows1} == {"sym0.4"}
    assert {r["method"] for r in rows1} == {
        "baseline", "pretrain", "full", "cleanlab CleanLearning", "SimCLR + logreg"}
    # report.py's CIFAR-10 section renders from it.
    report = _load("report")
    report.RESULTS = tmp_path / "report"
    report.RESULTS.mkdir()
    (report.RESULTS / "cifar10.csv").write_text((tmp_path / "cifar10_quick.csv").read_text())
    text = report.cifar10_section()
    assert "sym0.4 (0.400)" in text and "cleanlab" in text
    assert " ± " in text  # sym0.4: mean ± std of 2 seeds
    assert "pretrain >= baseline" in text and "pseudo-labels" in text


def test_bench_cifar10_default_job_reads_one_fit_three_ways_and_takes_over_stale_locks(
        tmp_path, capsys):
    """``--jobs default``: one phases="full" fit gives the pretrain, full and default
    rows; a1 goes to ``--a1-cache``, the fit checkpoints into ``--checkpoint-dir``
    (emptied when it finishes), and a lock left by a stopped run is taken over
    while a live one is respected."""
    import fcntl
    import json
    module = _load("bench_cifar10")
    cache = tmp_path / "cache"
    argv = ["--quick", "--workers", "1", "--out", str(tmp_path), "--cache", str(cache),
            "--settings", "sym0.5", "asy0.4", "--jobs", "default", "--no-probe", "--no-cleanlab",
            "--a1-cache", str(tmp_path / "a1"), "--checkpoint-dir", str(tmp_path / "ck")]
    locks = cache / "locks_cifar10_quick"
    locks.mkdir(parents=True)
    # A stopped run's lock file (nobody holds it) and one a running worker holds.
    stale = locks / f"{module.cell_id(('symmetric', 0.5, 'elr', 'default', 0))}.lock"
    stale.write_text("12345\n")
    live = open(locks / f"{module.cell_id(('asymmetric', 0.4, 'elr', 'default', 0))}.lock",
                "a+")
    fcntl.flock(live, fcntl.LOCK_EX | fcntl.LOCK_NB)
    module.main(argv)
    out = capsys.readouterr().out
    assert "sym0.5__elr__default__s0 ..." in out and "asy0.4" not in out
    live.close()
    columns, rows = _read(tmp_path / "cifar10_quick.csv")
    assert columns == module.COLUMNS
    assert [r["method"] for r in rows] == module.DEFAULT_JOB_METHODS
    by = {r["method"]: r for r in rows}
    note = json.loads(by["default"]["params"])
    assert note["phase_b_ran_in_default"] is (
        note["expected_pseudo_accuracy"] > note["expected_given_accuracy"])
    chosen = "full" if note["phase_b_ran_in_default"] else "pretrain"
    assert by["default"]["test_accuracy"] == by[chosen]["test_accuracy"]
    assert 0 <= note["expected_pseudo_accuracy"] <= 1 and "checkpoint_dir" not in note
    for key in ("pseudo_accuracy", "given_accuracy", "issues_f1", "wall_s"):
        assert len({r[key] for r in rows}) == 1, key
    assert rows[0]["setting"] == "sym0.5" and rows[0]["noise"] == "0.5"
    assert list((tmp_path / "a1").rglob("output.pkl"))  # a1 cached where it was told
    assert (tmp_path / "ck").is_dir()  # the fit checkpointed there ...
    assert not list((tmp_path / "ck").rglob("*.pkl"))  # ... and, finished, left nothing
    assert (tmp_path / "cifar10_quick_clean_subset.png").stat().st_size > 0
    assert (locks / f"{stale.stem}.done").exists()
    assert not (locks / f"{Path(live.name).stem}.done").exists()
    with pytest.raises(SystemExit):
        module.parse(["--settings", "sym1.5"])
    assert module.parse(["--settings", "random_label1", "sym0.3"]).settings == [
        ("cifar10n", "random_label1"), ("symmetric", 0.3)]
    # report.py's 50,000-image section renders from such rows, grid in progress.
    report = _load("report")
    report.RESULTS = tmp_path / "report"
    report.RESULTS.mkdir()
    (report.RESULTS / "cifar10_n50000.csv").write_text(
        (tmp_path / "cifar10_quick.csv").read_text())
    text = " ".join(report.cifar10_50k_section().split())
    planned = len(report.cifar10_50k.planned_cells())
    assert f"1 of the {planned} planned cells are in" in text
    assert "sym0.5 (0.500)" in text and "Co-teaching" in text and " M parameters" in text
    assert "default - cleanlab on the same network – (not measured yet)" in text
    # A cell where phase b gains: the section says whether the default kept the gain.
    import pandas as pd
    runs = pd.read_csv(report.RESULTS / "cifar10_n50000.csv")
    pretrain = float(runs.loc[runs["method"] == "pretrain", "test_accuracy"].iloc[0])
    runs.loc[runs["method"] == "full", "test_accuracy"] = pretrain + 0.1
    for ran, expected in ((True, "keeps the gain in 1 of 1 cells."),
                          (False, "keeps the gain in 0 of 1 cells; it skips phase b at sym0.5 "
                                  "(elr) full - pretrain +0.100: the fit expected")):
        note = dict(note, phase_b_ran_in_default=ran)
        runs.loc[runs["method"] == "default", "params"] = json.dumps(note)
        runs.to_csv(report.RESULTS / "cifar10_n50000.csv", index=False)
        assert expected in " ".join(report.cifar10_50k_section().split())


def test_cifar10_50k_script_runs_the_planned_cells_on_one_a1():
    """``cifar10_50k.py --dry-run``: each planned cell of the report once, each step with
    the estimator's a1 length and the a1 cache where bench_unlabeled.py keeps it, the
    probes once, the informative cells first."""
    import shlex
    import subprocess
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "cifar10_50k.py"),
                          "--dry-run", "--out", "/o"],
                         env=dict(os.environ, CACHE="/c"), capture_output=True,
                         text=True, check=True).stdout
    module, plan = _load("bench_cifar10"), _load("cifar10_50k")
    methods = {"default": "default", "baseline": "baseline",
               "cleanlab": "cleanlab CleanLearning"}
    cells, probes = [], 0
    for line in out.splitlines():
        args = module.parse(shlex.split(line)[1:])
        assert args.n_train == 50000 and args.workers == 1 and args.name == "cifar10_n50000"
        assert args.pretrain_epochs == resolve_pretrain_epochs(
            ContrastiveNoisyClassifier().pretrain_epochs, (3, 32, 32), 50000)
        assert args.a1_cache == "/c/a1/cifar10_n50000_s0" and args.checkpoint_dir
        assert str(args.out) == "/o"
        for kind, value, loss, job, seed in module.cells(args):
            if job == "probe":
                probes += 1
            else:
                cells.append((module.setting_name(kind, value), loss, methods[job]))
    assert probes == 1 and len(cells) == len(set(cells)) == 19
    assert cells == plan.planned_cells()
    assert cells[:2] == [("sym0.8", "elr", "default"), ("sym0.8", "ce", "baseline")]
    # A failed step is reported, the others still run, and the exit status says so.
    calls = []

    def fake_run(command, env):
        calls.append(command)
        return subprocess.CompletedProcess(command, 1 if len(calls) == 2 else 0)

    import unittest.mock
    with unittest.mock.patch.object(plan.subprocess, "run", fake_run):
        assert plan.main(["--out", "/o"]) == 1
    assert len(calls) == len(plan.steps())


def test_cifar10_50k_a1_store_seeds_the_cache_and_keeps_what_the_steps_trained(
        tmp_path, monkeypatch):
    """``--a1-store FILE``: the tar FILE is extracted into the a1 cache before the first
    step, and the a1 cache (without joblib's ``.gitignore``) written to FILE after a step
    that added to it."""
    import subprocess
    import tarfile
    import unittest.mock
    plan = _load("cifar10_50k")
    monkeypatch.setenv("CACHE", str(tmp_path / "cache"))
    cache, store = Path(plan.a1_cache()), tmp_path / "store" / "a1.tar"
    old = tmp_path / "old"
    (old / "joblib" / "old").mkdir(parents=True)
    (old / "joblib" / "old" / "output.pkl").write_bytes(b"stored a1")
    (old / ".gitignore").write_text("*\n")
    common = _load("_common")
    assert common.store_cache(old, store) and not common.store_cache(old, store)
    seen = []

    def fake_run(command, env):
        seen.append(sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*")
                           if p.is_file()))
        if len(seen) == 1:  # the first step trains an a1
            (cache / "joblib" / "new").mkdir(parents=True)
            (cache / "joblib" / "new" / "output.pkl").write_bytes(b"new a1")
            (cache / ".gitignore").write_text("*\n")
        return subprocess.CompletedProcess(command, 0)

    with unittest.mock.patch.object(plan.subprocess, "run", fake_run):
        assert plan.main(["--out", str(tmp_path / "o"), "--a1-store", str(store)]) == 0
    assert seen[0] == ["joblib/old/output.pkl"]  # the stored a1, before any step ran
    assert len(seen) == len(plan.steps())
    with tarfile.open(store) as tar:
        assert sorted(tar.getnames()) == ["joblib/new/output.pkl", "joblib/old/output.pkl"]
        assert tar.extractfile("joblib/new/output.pkl").read() == b"new a1"
    # A cache file the machine already has is kept as it is.
    (cache / "joblib" / "old" / "output.pkl").write_bytes(b"local")
    assert common.restore_cache(store, cache) == 0
    assert common.restore_cache(tmp_path / "absent.tar", cache) == 0
    with pytest.raises(SystemExit, match="--a1-store needs a file"):
        plan.main(["--a1-store"])


def test_bench_encoders_quick_appends_each_cell_and_resumes(tmp_path, capsys, shared_data):
    module = _load("bench_encoders")
    argv = ["--quick", "--data", str(shared_data), "--out", str(tmp_path),
            "--cache", str(tmp_path / "cache"), "--encoders", "cnn", "airbench-half"]
    # The speed rows of another CPU stay beside this one's.
    (tmp_path / "encoders_speed.csv").write_text(
        "encoder,fwd_mflops,params,n,sec_per_epoch,images_per_s,a1_gflops,matmul_gflops,"
        "matmul_fraction,rounds,cpu_model\ncnn,20.6,93472,64,9.5,6.7,0.8,900,0.001,1,Other CPU\n")
    module.main(argv + ["--sections", "speed", "accuracy", "custom", "plot"])
    columns, rows = _read(tmp_path / "encoders.csv")
    assert columns == module.ACCURACY_COLUMNS
    assert [r["encoder"] for r in rows] == ["cnn", "airbench-half"]
    for r in rows:
        assert 0.0 <= float(r["test_accuracy"]) <= 1.0 and float(r["cpu_s"]) > 0
        assert r["channels_last"] == "True" and r["cpu_model"]
    _, speed = _read(tmp_path / "encoders_speed.csv")
    assert [(r["encoder"], r["sec_per_epoch"]) for r in speed[:1]] == [("cnn", "9.5")]
    assert speed[0]["cpu_model"] == "Other CPU" != speed[1]["cpu_model"]
    speed = speed[1:]
    assert [r["encoder"] for r in speed] == ["cnn", "airbench-half"]
    assert float(speed[1]["fwd_mflops"]) > 3 * float(speed[0]["fwd_mflops"])
    assert all(0 < float(r["matmul_fraction"]) for r in speed)
    _, custom = _read(tmp_path / "encoders_custom.csv")
    # The module as it is runs channels-last; behind a .view() of its input it cannot.
    assert {(r["variant"], r["channels_last"]) for r in custom} >= {
        ("as it is", "True"), (".view() input", "False")}
    assert (tmp_path / "encoders.png").stat().st_size > 0
    # Resuming runs nothing that is already in the CSV.
    capsys.readouterr()
    module.main(argv + ["--sections", "accuracy"])
    assert "encoder=" not in capsys.readouterr().out
    assert len(_read(tmp_path / "encoders.csv")[1]) == len(rows)
    # report.py's section renders from the three files.
    report = _load("report")
    report.RESULTS = tmp_path
    text = report.encoders_section()
    assert "airbench-half" in text and "picks ``airbench``" in text
    assert "Speed of a1 on Other CPU" in text and text.count("Speed of a1 on") == 2
    # a2's length: one row per (labels, epochs), resumed, and a table on the page.
    module.main(argv + ["--sections", "a2", "--a1-cache", str(tmp_path / "a1")])
    columns, a2 = _read(tmp_path / "encoders_a2.csv")
    assert columns == module.A2_COLUMNS
    assert [(r["labels"], r["max_epochs"]) for r in a2] == [
        ("clean", "1"), ("clean", "2"), ("sym0.6", "1"), ("sym0.6", "2")]
    assert float(a2[0]["given_accuracy"]) == 1.0 and float(a2[2]["given_accuracy"]) < 0.6
    assert all(0.0 <= float(r["flip_tta_accuracy"]) <= 1.0 for r in a2)
    capsys.readouterr()
    module.main(argv + ["--sections", "a2", "--a1-cache", str(tmp_path / "a1")])
    assert "labels=" not in capsys.readouterr().out
    assert "a2 for 2 epochs" in report.encoders_section()
    # Another a1 length: rows of its own, and a row per (labels, a1 length) in the table.
    before = _read(tmp_path / "encoders_a2.csv")[1]
    module.main(argv + ["--sections", "a2", "--a1-cache", str(tmp_path / "a1"),
                        "--a2-pretrain-epochs", "2"])
    a2 = _read(tmp_path / "encoders_a2.csv")[1]
    assert [(r["labels"], r["pretrain_epochs"]) for r in a2[4:]] == [
        ("clean", "2"), ("clean", "2"), ("sym0.6", "2"), ("sym0.6", "2")]
    assert a2[:4] == before
    text = report.encoders_section()
    assert text.count("* - clean") == 2 and "a1 epochs" in text
    # Another noise seed: new rows for the noisy labels only, each row of the table
    # naming its seed.
    module.main(argv + ["--sections", "a2", "--a1-cache", str(tmp_path / "a1"),
                        "--a2-pretrain-epochs", "2", "--a2-noise-seeds", "0", "1"])
    a2 = _read(tmp_path / "encoders_a2.csv")[1]
    assert [(r["labels"], r["seed"]) for r in a2[8:]] == [("sym0.6", "1"), ("sym0.6", "1")]
    assert "noise seed" in report.encoders_section()


def test_bench_cifar10_probe_reads_the_simclr_encoder_not_a2s():
    """The SimCLR + logreg peer must see a1's features, never an encoder that a2
    went on to train on the labels (which would leak them into the probe): two
    fits that differ only in a2 give the probe the same features."""
    module = _load("bench_cifar10")
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (64, 8, 8, 3), dtype=np.uint8)
    y = np.arange(64) % 4

    def fit(phases="pretrain", **a2):
        return ContrastiveNoisyClassifier(phases=phases, pretrain_epochs=1, warmup_epochs=0,
                                          gmm_epochs=1, finetune_epochs=1, random_state=0,
                                          **a2).fit(X, y)

    short, long = fit(max_epochs=1), fit(max_epochs=3, lr=0.1)
    np.testing.assert_array_equal(module.simclr_features(short, X),
                                  module.simclr_features(long, X))
    a2 = [clf.classifier_net_.module_.encoder.state_dict() for clf in (short, long)]
    assert not all(torch.equal(a2[0][k], a2[1][k]) for k in a2[0])
    with pytest.raises(ValueError, match="phases='pretrain'"):
        module.simclr_features(fit("full", max_epochs=1), X)


def test_bench_checkpoint_quick(tmp_path):
    module = _load("bench_checkpoint")
    module.main(["--quick", "--out", str(tmp_path), "--data", str(tmp_path / "none.npz")])
    _, cost = _read(tmp_path / "checkpoint_cost.csv")
    assert [r["encoder"] for r in cost] == ["cnn", "resnet18"]
    for r in cost:
        assert r["images"] == "random" and r["cpu_model"]
        assert 0 < float(r["save_s"]) and 0 < float(r["epoch_s"]) < float(r["epoch_s_50k"])
        assert float(r["size_mb"]) > 0
    _, (resume,) = _read(tmp_path / "checkpoint_resume.csv")
    # Killed, started again: the same model as the uninterrupted fit.
    assert resume["same_predictions"] == "True" and resume["schedule"] == "quick"
    assert float(resume["resumed_wall_s"]) > 0 and float(resume["reference_wall_s"]) > 0


def test_bench_streaming_quick(tmp_path):
    pytest.importorskip("torchvision")
    module = _load("bench_streaming")
    module.main(["--quick", "--workers", "1", "--out", str(tmp_path)])
    columns, rows = _read(tmp_path / "streaming.csv")
    assert columns == module.COLUMNS
    assert [(r["mode"], r["n"]) for r in rows] == [
        ("in-memory", "96"), ("streamed", "96"), ("in-memory", "192"), ("streamed", "192")]
    # A streamed fit is the in-memory fit of the same images.
    assert all(r["identical_to_in_memory"] == "True" for r in rows)
    for r in rows:
        assert float(r["peak_growth_mb"]) >= 0 and float(r["images_per_s"]) > 0
    assert all(float(r["worker_peak_mb"]) > 0 for r in rows if r["mode"] == "streamed")


# One dask or Ray cluster at a time: in the worker that runs test_scale_out.py.
@pytest.mark.xdist_group("test_scale_out")
def test_bench_scale_out_quick(tmp_path):
    pytest.importorskip("dask.distributed")
    module = _load("bench_scale_out")
    has_ray = importlib.util.find_spec("ray") is not None
    engines = ["dask", "ray"] if has_ray else ["dask"]
    module.main(["--quick", "--out", str(tmp_path), "--engines", *engines])
    columns, rows = _read(tmp_path / "scale_out.csv")
    assert columns == module.COLUMNS
    expected = ["sequential", "dask, 1 worker", "dask, 2 workers"]
    if has_ray:
        expected += ["ray, 1 worker", "ray, 2 workers"]
    assert [r["setting"] for r in rows] == expected
    for r in rows:
        # The same CV scores on every engine, one a1 pre-training per fold on a
        # shared memory= folder, one torch thread per fit.
        assert r["identical"] == "True"
        assert int(r["a1_pretrainings"]) == int(r["cv"]) == module.QUICK["cv"]
        assert r["worker_torch_threads"] == "1"
        assert float(r["wall_s"]) > 0 and r["loadavg_1min_before"] != ""
        assert (r["speedup"] != "") == (r["workers"] == "2")


def test_bench_auto_mode_quick_appends_each_cell_resumes_and_analyses(tmp_path, capsys):
    module = _load("bench_auto_mode")
    args = ["--quick", "--dataset", "digits", "--out", str(tmp_path),
            "--cache", str(tmp_path / "cache")]
    module.main(args)
    columns, rows = _read(tmp_path / "auto_mode_digits.csv")
    assert {"setting", "loss", "seed", "pretrain_accuracy", "full_accuracy", "given_accuracy",
            "pseudo_accuracy", "encoder", "cpu_model"} <= set(columns)
    assert [r["setting"] for r in rows] == ["sym0.2", "sym0.4", "sym0.6", "sym0.8", "asy0.2",
                                            "asy0.4"]
    arrays = tmp_path / "auto_mode_digits_arrays"
    assert len(list(arrays.glob("*.npz"))) == len(rows) + 1  # + a1's features
    capsys.readouterr()
    module.main(args)  # everything done: nothing refitted
    assert capsys.readouterr().out == ""
    table = module.main(args + ["--analyse"])
    assert len(table) == len(rows)
    for r in table.to_dict("records"):
        picked = r["full_accuracy"] if r["auto_runs_phase_b"] else r["pretrain_accuracy"]
        assert r["auto_accuracy"] == picked
        assert r["auto_runs_phase_b"] == (r["expected_pseudo_accuracy"]
                                          > r["expected_given_accuracy"])
        assert 0.0 <= r["est_noise_rate"] <= 1.0
        assert r["est_noise_rate"] == pytest.approx(r["fit_noise_rate"])  # the fit's estimate
    analysis = tmp_path / "auto_mode_digits_analysis.csv"
    assert analysis.exists()
    # A cell whose arrays are gone (it ran on another machine) keeps its earlier row.
    marked = table.copy()
    marked.loc[0, "est_noise_rate"] = -1.0
    marked.to_csv(analysis, index=False)
    first = module.cell_name("digits_s0", "symmetric", 0.2, "elr", 0)
    (arrays / f"{first}.npz").unlink()
    again = module.main(args + ["--analyse"])
    assert again.loc[0, "est_noise_rate"] == -1.0
    assert list(again["est_noise_rate"][1:]) == pytest.approx(list(table["est_noise_rate"][1:]))
    analysis.unlink()
    with pytest.raises(FileNotFoundError, match=first):
        module.main(args + ["--analyse"])


def test_bench_auto_mode_settings_runs_only_the_named_cells(tmp_path):
    module = _load("bench_auto_mode")
    args = ["--quick", "--dataset", "digits", "--out", str(tmp_path),
            "--cache", str(tmp_path / "cache")]
    module.main(args + ["--settings", "asy0.4", "sym0.6"])
    _, rows = _read(tmp_path / "auto_mode_digits.csv")
    assert [r["setting"] for r in rows] == ["sym0.6", "asy0.4"]  # in the grid's order
    with pytest.raises(SystemExit, match=r"unknown settings \['sym0.9'\]"):
        module.main(args + ["--settings", "sym0.9"])


def test_bench_auto_mode_a1_store_lets_a_fresh_cache_load_a1(tmp_path, capsys):
    """``--a1-store DIR``: the first run writes its a1 cache to ``DIR/<training set>.tar``;
    a run with an empty cache extracts it and loads a1 instead of training one."""
    import tarfile
    module = _load("bench_auto_mode")
    store = tmp_path / "store"

    def run(name):
        module.main(["--quick", "--dataset", "digits", "--settings", "sym0.2", "--out",
                     str(tmp_path / name), "--cache", str(tmp_path / name / "cache"),
                     "--a1-store", str(store)])
        return sorted(p.relative_to(tmp_path / name / "cache" / "a1").as_posix()
                      for p in (tmp_path / name / "cache" / "a1").rglob("output.pkl"))

    first = run("first")
    assert [p.name for p in store.iterdir()] == ["digits_s0.tar"]
    assert "stored in" in capsys.readouterr().out
    assert run("second") == first and len(first) == 1  # loaded: no second a1 in the cache
    out = capsys.readouterr().out
    with tarfile.open(store / "digits_s0.tar") as tar:
        assert f"{len(tar.getnames())} a1 cache files from" in out and "stored in" not in out
    rows = [_read(tmp_path / name / "auto_mode_digits.csv")[1][0] for name in ("first", "second")]
    assert rows[0]["pretrain_accuracy"] == rows[1]["pretrain_accuracy"]


def test_bench_auto_mode_noise_cv_and_cleanlab_quick(tmp_path):
    module = _load("bench_auto_mode")
    args = ["--quick", "--dataset", "digits", "--out", str(tmp_path),
            "--cache", str(tmp_path / "cache"), "--noise-cv", "2"]
    module.main(args)
    _, rows = _read(tmp_path / "auto_mode_digits_cv2.csv")
    assert len(rows) == 6 and all('"noise_cv": 2' in r["params"] for r in rows)
    table = module.main(args + ["--analyse"])
    np.testing.assert_allclose(table["est_noise_rate"], table["fit_noise_rate"])
    module.main(args[:-2] + ["--cleanlab", "asy0.4"])
    columns, rows = _read(tmp_path / "auto_mode_digits_cleanlab.csv")
    assert [r["setting"] for r in rows] == ["asy0.4"]
    assert {"cleanlab_rmse", "cleanlab_diag_mae", "cleanlab_flips_found"} <= set(columns)
    module.main(args[:-2] + ["--baseline", "sym0.2", "asy0.4"])
    columns, rows = _read(tmp_path / "auto_mode_digits_baseline.csv")
    assert [r["setting"] for r in rows] == ["sym0.2", "asy0.4"]
    assert all('"phases": "baseline"' in r["params"] for r in rows)
    assert all(0.0 <= float(r["baseline_accuracy"]) <= 1.0 for r in rows)
    module.main(args[:-2] + ["--baseline", "sym0.2"])  # already there: no new row
    assert len(_read(tmp_path / "auto_mode_digits_baseline.csv")[1]) == 2
    with pytest.raises(SystemExit, match="unknown settings"):
        module.main(args[:-2] + ["--baseline", "sym0.9"])


def test_bench_unlabeled_quick_writes_every_method_and_resumes(tmp_path, capsys):
    module = _load("bench_unlabeled")
    module.main(["--quick", "--out", str(tmp_path)])
    columns, rows = _read(tmp_path / "unlabeled_digits.csv")
    assert [r["method"] for r in rows] == module.METHODS
    assert {"accuracy", "pretrain_accuracy", "full_accuracy", "auto_runs_phase_b",
            "n_labeled", "n_unlabeled", "cpu_model"} <= set(columns)
    by = {r["method"]: r for r in rows}
    assert int(by["noisyclf + unlabeled"]["n_unlabeled"]) == 1257 - 150
    assert int(by["noisyclf, labels only"]["n_unlabeled"]) == 0
    assert by["noisyclf + unlabeled"]["auto_runs_phase_b"] == "True"
    for r in rows:
        assert 0.0 <= float(r["accuracy"]) <= 1.0
        # symmetric 0.3, whole flips per class: 4 of each class's 15 labels
        assert float(r["given_accuracy"]) == pytest.approx(1 - 40 / 150)
    assert (tmp_path / "unlabeled_digits.png").exists()
    capsys.readouterr()
    module.main(["--quick", "--out", str(tmp_path)])
    assert capsys.readouterr().out == ""


def test_bench_unlabeled_cifar10_quick_hides_all_but_the_grid_subset(tmp_path):
    module = _load("bench_unlabeled")
    module.main(["--quick", "--dataset", "cifar10", "--out", str(tmp_path),
                 "--cache", str(tmp_path / "cache")])
    _, rows = _read(tmp_path / "unlabeled_cifar10.csv")
    assert [(r["setting"], r["method"]) for r in rows] == [
        ("sym0.4", "noisyclf + unlabeled"), ("sym0.4", "noisyclf, labels only")]
    assert [(r["n_labeled"], r["n_unlabeled"]) for r in rows] == [("100", "200"),
                                                                  ("100", "0")]
    assert all(float(r["given_accuracy"]) == pytest.approx(0.6) for r in rows)
    # a1 of every image and a1 of the labeled subset are cached apart
    assert sorted(p.name for p in (tmp_path / "cache" / "a1").iterdir()) == [
        "cifar10_n100_s0", "cifar10_n300_s0"]
    # report.py's unlabeled section gains a CIFAR-10 table from these rows.
    report = _load("report")
    report.RESULTS = tmp_path / "report"
    report.RESULTS.mkdir()
    for name in ("unlabeled_digits", "unlabeled_cifar10"):
        source = (report.RESULTS.parent / f"{name}.csv" if name.endswith("cifar10")
                  else Path(__file__).resolve().parents[1] / "benchmarks" / "results"
                  / f"{name}.csv")
        (report.RESULTS / f"{name}.csv").write_text(source.read_text())
    text = " ".join(report.unlabeled_section().split())
    gain = float(rows[0]["accuracy"]) - float(rows[1]["accuracy"])
    assert f"{gain:+.3f}" in text
    assert (f"at least +0.08 (the target) in {int(gain >= 0.08)} of 1 label settings"
            in text)
    # ... and the same setting with every training label, from the 50,000-image grid.
    (report.RESULTS / "cifar10_n50000.csv").write_text(
        "setting,method,loss,n_train,given_accuracy,test_accuracy,wall_s\n"
        "sym0.4,default,elr,50000,0.6,0.8125,3000\n")
    text = " ".join(report.unlabeled_section().split())
    assert "noisyclf, all 50,000 labeled" in text and "0.812" in text


def test_bench_demo_quick_saves_what_the_demo_prints_for_the_readme(tmp_path):
    module = _load("bench_demo")
    rows = module.main(["--quick", "--out", str(tmp_path)])
    output = (tmp_path / "demo_output.txt").read_text()
    assert output.startswith("$ python -m noisyclf --quick --jobs 1\nnoisyclf demo: sklearn digits")
    assert "| noise | kNN |" in output and "Total time:" in output
    _, saved = _read(tmp_path / "demo.csv")
    assert [r["method"] for r in saved] == [r["method"] for r in rows] != []
    assert all(r["cpu_model"] and float(r["wall_s"]) > 0 for r in saved)
    # report.py puts exactly that output into the README's demo block.
    report = _load("report")
    report.RESULTS = tmp_path
    block = report.render_demo_output()
    assert output.rstrip("\n") in block and saved[0]["cpu_model"] in block


def test_append_row_keeps_the_file_columns_and_adds_new_ones(tmp_path):
    sys.path.insert(0, str(BENCH_DIR))
    try:
        common = _load("_common")
    finally:
        sys.path.remove(str(BENCH_DIR))
    path = tmp_path / "grid.csv"
    common.append_row(path, {"a": 1, "b": 2})
    common.append_row(path, {"b": 4, "a": 3})  # another key order: the file's order
    assert _read(path) == (["a", "b"], [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}])
    common.append_row(path, {"a": 5, "c": 7, "b": 6})  # a new column: the file gains it
    columns, rows = _read(path)
    assert columns == ["a", "b", "c"]
    assert [r["c"] for r in rows] == ["", "", "7"] and rows[2]["b"] == "6"
    common.append_row(path, {"a": 8})  # a missing column is left empty
    assert _read(path)[1][3] == {"a": "8", "b": "", "c": ""}
