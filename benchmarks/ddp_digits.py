"""One fit on several processes: data-parallel training of every phase (docs/scaling_out_ddp.md).

Two CPU processes (gloo backend), started by ``torchrun``, which ships with torch::

    torchrun --standalone --nproc_per_node 2 benchmarks/ddp_digits.py

The same script as one process prints the same per-epoch losses (up to float32 rounding,
see docs/scaling_out_ddp.md)::

    python benchmarks/ddp_digits.py

``batch_size`` is the *global* batch: with 2 processes each encodes half of every batch.
Every process passes the same data and hyperparameters; rank 0's seed is used by all.
"""

import os

import torch.distributed as dist
from sklearn.datasets import load_digits

from noisyclf import ContrastiveNoisyClassifier, make_noisy_labels


def main():
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:  # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
        dist.init_process_group("gloo")  # "nccl" for one GPU per process
    rank = dist.get_rank() if distributed else 0

    X, y = load_digits(return_X_y=True)
    X_train, y_train, X_test, y_test = X[:600], y[:600], X[600:], y[600:]
    y_noisy = make_noisy_labels(y_train, "symmetric", 0.4, random_state=0)
    clf = ContrastiveNoisyClassifier(
        image_shape=(1, 8, 8), batch_size=64, pretrain_epochs=5, max_epochs=5,
        warmup_epochs=1, gmm_epochs=2, finetune_epochs=2, device="cpu", precision="fp32",
        random_state=0)
    clf.fit(X_train, y_noisy)

    if rank == 0:  # every process holds the same fitted estimator
        processes = dist.get_world_size() if distributed else 1
        print(f"{processes} process(es), global batch {clf.batch_size}")
        for phase, rows in clf.history_.items():
            print(f"  {phase} train_loss:", " ".join(f"{row['train_loss']:.4f}" for row in rows))
        print(f"  label issues flagged: {int(clf.label_issues_.sum())} of {len(y_noisy)}")
        print(f"  test accuracy: {clf.score(X_test, y_test):.3f}")
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
