#!/usr/bin/env bash
# The kit's GPU checks as one command for a lent GPU machine (the workplace's `device` tool, about
# 15 device-minutes a session): the gpu-marked tests, then the CUDA + AMP cases of the throughput
# benchmark (`train_throughput.py --cuda-only`). That machine has torch but no network and no gensim,
# and its copy of the repository has no .git and no data/. Two steps:
#
#   here:   bash benchmarks/device_gpu.sh fetch
#           (gensim + smart_open wheels for the machine's Python 3.12 into .whl/, git-ignored)
#   there:  XMREC_COMMIT=<git rev-parse HEAD here> bash benchmarks/device_gpu.sh run
#           with carry [".whl", "data/raw"] (data/raw: the ML-100K files any ML-100K run fetches);
#           writes to $OUT (default data/device-out): nvidia_smi.txt, gpu_tests.log, throughput.log,
#           train_throughput_cuda.{md,json}. PYTHON (default python3) picks the interpreter.
#
# Every step runs even if one before it failed; the exit status is the worst of them.
set -u -o pipefail
cd "$(dirname "$0")/.."
WHEELS=(gensim==4.4.0 smart_open==9.0.2)
DEVICE_PYTHON=${DEVICE_PYTHON:-3.12}  # the GPU machine's Python, for the wheels
PYTHON=${PYTHON:-python3}

fetch() {
    local platforms=()
    for p in manylinux_2_28_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
        platforms+=(--platform "$p")
    done
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$DEVICE_PYTHON" --implementation cp \
        "${platforms[@]}" -d .whl "${WHEELS[@]}"
}

run() {
    local out=${OUT:-data/device-out} worst=0 rc
    mkdir -p "$out"
    [ -n "${XMREC_COMMIT:-}" ] || echo "warning: XMREC_COMMIT unset: the results will say 'no git checkout'" >&2
    if [ -d .whl ]; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
        export PYTHONPATH=/tmp/site
    fi
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    nvidia-smi > "$out/nvidia_smi.txt" 2>&1
    step() {  # step NAME COMMAND...: run, log to $out/NAME.log, keep the worst exit status
        echo "== $(date -u +%T) $1: ${*:2}"
        "${@:2}" 2>&1 | tee "$out/$1.log"
        rc=$?
        echo "== $(date -u +%T) $1 exit $rc"
        [ "$rc" -gt "$worst" ] && worst=$rc
    }
    step gpu_tests "$PYTHON" -m pytest -m gpu -p no:cacheprovider -q -rs tests/test_gpu.py
    step throughput "$PYTHON" benchmarks/train_throughput.py --cuda-only
    cp benchmarks/results/train_throughput_cuda.{md,json} "$out/" 2>/dev/null
    return "$worst"
}

case "${1:-}" in
    fetch) fetch ;;
    run) run ;;
    *) echo "usage: bash benchmarks/device_gpu.sh fetch|run (see the header)" >&2; exit 2 ;;
esac
