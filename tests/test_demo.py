"""The main job (python -m noisyclf) on a tiny schedule."""

import csv
import io
import subprocess
import sys

import joblib
import numpy as np
import torch

import noisyclf.demo as demo
from noisyclf.demo import format_table, run

# Pinned: the tests rely on tiny epochs, not on the tuned defaults.
TINY = dict(pretrain_epochs=1, max_epochs=2, finetune_epochs=1, warmup_epochs=1,
            batch_size=128, device="cpu")



def test_demo_rows_and_table():
    rows = run([("symmetric", 0.4)], random_state=0, params=TINY, out=io.StringIO())
    methods = [r["method"] for r in rows]
    assert methods == ["kNN", "logreg", "baseline", "pretrain", "full", "auto"]
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    full, auto = rows[-2:]
    # auto predicts exactly as the fit its decision picks (tested in test_phase_b_choice)
    picked = full if full["auto_runs_phase_b"] else rows[-3]
    assert auto["accuracy"] == picked["accuracy"]
    assert {"precision", "recall", "auc", "pseudo_accuracy", "auc_pseudo", "seconds"} <= set(full)
    table = format_table(rows)
    for m in methods:
        assert f"| {m} " in table or f" {m} |" in table
    assert "precision" in table


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "noisyclf", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--defaults" in out and "--loss" in out


def test_run_reports_progress_and_pretrains_once_per_fold(tmp_path):
    out = io.StringIO()
    memory = joblib.Memory(tmp_path, verbose=0)
    rows = run([("asymmetric", 0.4)], ["pretrain", "full"], loss="ce", memory=memory,
               params=TINY, out=out)
    assert [r["method"] for r in rows] == ["kNN", "logreg", "pretrain", "full", "auto"]
    assert {r["setting"] for r in rows} == {"asym 0.4"}
    for r in rows[2:4]:
        assert {"setting", "method", "accuracy", "precision", "recall", "auc",
                "pseudo_accuracy", "auc_pseudo", "seconds", "auto_runs_phase_b"} == set(r)
        assert all(0.0 <= r[k] <= 1.0 for k in ("accuracy", "precision", "recall", "auc",
                                                "pseudo_accuracy"))
        assert np.isnan(r["auc_pseudo"]) or 0.0 <= r["auc_pseudo"] <= 1.0
        assert r["seconds"] > 0
    picked = rows[3] if rows[3]["auto_runs_phase_b"] else rows[2]
    assert rows[4] == dict(picked, method="auto", seconds=rows[4]["seconds"])
    assert np.isnan(rows[4]["seconds"])  # not a fit of its own
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "pretrain" in lines[0] and "full" in lines[1]
    # SimCLR is label-free: both modes share one cached a1 run.
    cached = [p for p in tmp_path.rglob("output.pkl") if "run_simclr" in str(p)]
    assert len(cached) == 1


def test_format_table_layout():
    rows = [dict(setting="symm 0.2", method="kNN", accuracy=0.5),
            dict(setting="symm 0.2", method="full", accuracy=0.875, precision=0.25,
                 recall=0.5, auc=0.75, pseudo_accuracy=0.9, auc_pseudo=0.8,
                 auto_runs_phase_b=True),
            dict(setting="asym 0.4", method="kNN", accuracy=0.125),
            dict(setting="asym 0.4", method="full", accuracy=1.0, precision=1.0,
                 recall=0.0, auc=0.5, pseudo_accuracy=1.0, auc_pseudo=float("nan"),
                 auto_runs_phase_b=False)]
    lines = format_table(rows).splitlines()
    assert "| noise | kNN | full |" in lines
    assert "| symm 0.2 | 0.500 | 0.875 |" in lines
    assert "| asym 0.4 | 0.125 | 1.000 |" in lines
    assert "| symm 0.2 | 0.250 | 0.500 | 0.750 | 0.900 | 0.800 | ran |" in lines
    assert "| asym 0.4 | 1.000 | 0.000 | 0.500 | 1.000 | nan | skipped |" in lines


def test_main_passes_the_schedule_writes_csv_and_restores_threads(monkeypatch, tmp_path,
                                                                  capsys):
    calls = []
    rows = [dict(setting="symm 0.4", method="kNN", accuracy=0.5),
            dict(setting="symm 0.4", method="full", accuracy=0.75, precision=0.5,
                 recall=0.25, auc=0.625, pseudo_accuracy=0.8, auc_pseudo=0.7, seconds=1.0,
                 auto_runs_phase_b=True)]

    def fake_run(**kwargs):
        calls.append(dict(kwargs, threads=torch.get_num_threads()))
        return rows

    monkeypatch.setattr(demo, "run", fake_run)
    threads = torch.get_num_threads()
    path = tmp_path / "rows.csv"
    assert demo.main(["--loss", "ce", "--seed", "3", "--csv", str(path)]) == rows
    assert demo.main(["--defaults", "--threads", "2"]) == rows
    assert torch.get_num_threads() == threads
    assert calls[0]["params"] == dict(demo.DEMO_PARAMS, precision="auto")
    assert calls[1]["params"] == {"precision": "auto"}
    assert calls[0]["settings"] == demo.SETTINGS and calls[0]["n_jobs"] >= 1
    assert (calls[0]["loss"], calls[0]["random_state"]) == ("ce", 3)
    assert calls[0]["threads"] == 1 and calls[1]["threads"] == 2
    with open(path, newline="") as fh:
        written = list(csv.DictReader(fh))
    assert [r["method"] for r in written] == ["kNN", "full"]
    assert written[0]["auc"] == "" and float(written[1]["auc"]) == 0.625
    assert "| symm 0.4 | 0.500 | 0.750 |" in capsys.readouterr().out


def test_main_quick_jobs_and_precision(monkeypatch):
    calls = []
    monkeypatch.setattr(demo, "run", lambda **kwargs: calls.append(kwargs) or [])
    monkeypatch.setattr(demo, "format_table", lambda rows: "")
    demo.main(["--quick", "--jobs", "1", "--precision", "fp32"])
    (call,) = calls
    assert call["n_jobs"] == 1 and call["params"]["precision"] == "fp32"
    assert len(call["settings"]) == 1 and call["params"]["pretrain_epochs"] == 2


def test_parallel_fits_give_the_same_rows_as_sequential(tmp_path):
    settings = [("symmetric", 0.4)]
    one = run(settings, ["baseline", "pretrain"], params=TINY, n_jobs=1, out=io.StringIO(),
              memory=str(tmp_path / "one"))
    two = run(settings, ["baseline", "pretrain"], params=TINY, n_jobs=2, out=io.StringIO(),
              memory=str(tmp_path / "two"))
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in one]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in two]
    # The pre-training ran once, in this process, before the fan-out.
    cached = [p for p in (tmp_path / "two").rglob("output.pkl") if "run_simclr" in str(p)]
    assert len(cached) == 1
