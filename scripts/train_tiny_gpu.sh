#!/usr/bin/env bash
# Train the bundled tiny MusicGen on a lent GPU from a packed run folder, and bring the weights back.
#
# Here (CPU): encode the clips, then pack them small enough to travel with the working tree:
#   python scripts/train_tiny.py --data DIRS... --out runs/big --steps 0 --tag-weight 1 --submixes 2
#   python -c "from smitin.tiny.travel import pack_run; pack_run('runs/big', 'runs/gpu')"
# There (the device tool, carry runs/gpu and .whl): bash scripts/train_tiny_gpu.sh MINUTES [train_tiny options]
# Back here: the weights in $OUT/weights-*.safetensors (split under 16 MiB), the log and summary;
#   python -m smitin.tiny.travel rebuilds the model folder (see the model card's Reproduce section).
set -euo pipefail
minutes=${1:-6}
shift || true
if ls .whl/*.whl >/dev/null 2>&1; then  # packages the GPU image lacks (soundfile, soxr, cffi)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1
out=${OUT:-/tmp/out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
python3 -c "from smitin.tiny.travel import unpack_run; unpack_run('runs/gpu', '/tmp/run')"
python3 scripts/train_tiny.py --data runs/gpu --out /tmp/run --device cuda --threads 8 --steps 1000000 \
    --max-minutes "$minutes" --time-schedule --keep-best "$@" 2>&1 | grep -v "Warning" | tee "$out/train.log"
python3 -c "from smitin.tiny.travel import split_weights; split_weights('/tmp/run/model', '$out')"
cp /tmp/run/train_summary.json /tmp/run/model/config.json /tmp/run/model/generation_config.json "$out"/
ls -la "$out"
