#!/usr/bin/env bash
# CIFAR-10 at the paper's size: all 50,000 training images, the estimator's defaults,
# one worker on both cores.  Many hours on 2 cores: run it in the background from a
# tree you do not edit; every finished cell is appended to <out>/cifar10_n50000.csv,
# every fit is checkpointed, and a rerun resumes where the last one stopped (inside
# the fit it was in).  Most informative cells first: the claims at symmetric 0.8 and
# on worse_label, then the others.  a1 is cached where bench_unlabeled.py caches it
# for the same 50,000 images, so the two benchmarks pre-train once.
#   bash benchmarks/cifar10_50k.sh [bench_cifar10.py options, e.g. --out DIR --data FILE]
# Environment: CACHE (default .noisyclf_cache), THREADS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${CACHE:-.noisyclf_cache}"  # bench_unlabeled.py's --cache, to share its a1
# The estimator's default a1 length (bench_unlabeled.py uses the defaults): same a1 key.
epochs=$(python -c "from noisyclf import ContrastiveNoisyClassifier as C; print(C().pretrain_epochs)")
common=(--n-train 50000 --pretrain-epochs "$epochs" --workers 1 --threads "${THREADS:-2}"
        --name cifar10_n50000 --cache "$cache" --a1-cache "$cache/a1/cifar10_n50000_s0"
        --checkpoint-dir "$cache/checkpoints_cifar10_n50000")
# A failed step is reported and the grid goes on (a rerun tries it again).  DRY_RUN=1
# prints the steps instead of running them.
bench() {
    if [ -n "${DRY_RUN:-}" ]; then echo "bench_cifar10.py ${common[*]} $*"; return; fi
    PYTHONUNBUFFERED=1 python benchmarks/bench_cifar10.py "${common[@]}" "$@" ||
        echo "cifar10_50k.sh: FAILED: $*" >&2
}
run() { bench --no-probe "$@"; }
# The cells, in order (benchmarks/report.py's CIFAR10_50K_PLAN lists the same).
# Per setting: the default (ELR; its pretrain and full columns come from the same fit)
# and CE from scratch; cleanlab's CleanLearning on the CE network where the targets
# name it (3-fold cross-validation, then a refit: about four CE fits).
for setting in sym0.8 worse_label sym0.5 asy0.4 aggre_label random_label1 sym0.2; do
    run "$@" --settings "$setting" --losses elr --jobs default --no-cleanlab
    run "$@" --settings "$setting" --losses ce --jobs baseline --no-cleanlab
    case "$setting" in
        worse_label|sym0.5)
            run "$@" --settings "$setting" --jobs cleanlab --cleanlab-settings "$setting" ;;
    esac
done
# NFL+RCE where the paper's claims are sharpest.
run "$@" --settings sym0.8 worse_label --losses nfl+rce --jobs default --no-cleanlab
# Symmetric 0.4 with every label, beside bench_unlabeled.py's 4,000 labels + 46,000 unlabeled.
run "$@" --settings sym0.4 --losses elr --jobs default --no-cleanlab
# a1's probes and the clean ceiling.
bench "$@" --probe-only \
    --settings sym0.8 worse_label sym0.5 asy0.4 aggre_label random_label1 sym0.2
