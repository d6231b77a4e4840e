"""The main job (python -m noisyclf) on a tiny schedule."""

import subprocess
import sys

from noisyclf.demo import format_table, run


def test_demo_rows_and_table():
    rows = run([("symmetric", 0.4)], random_state=0,
               params=dict(pretrain_epochs=1, max_epochs=2, finetune_epochs=1, warmup_epochs=1))
    methods = [r["method"] for r in rows]
    assert methods == ["kNN", "logreg", "baseline", "pretrain", "full"]
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    full = rows[-1]
    assert {"precision", "recall", "auc", "seconds"} <= set(full)
    table = format_table(rows)
    for m in methods:
        assert f"| {m} " in table or f" {m} |" in table
    assert "precision" in table


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "noisyclf", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--defaults" in out and "--loss" in out
