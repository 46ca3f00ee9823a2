#!/usr/bin/env bash
# Base model v3 on a lent GPU machine (no network, its own python3 with torch): one run of the whole recipe.
# Carried beside the tree (ignored in git): .carry/ with the captcha and rapidfuzz wheels for that python and
# fonts-wide.tar.xz, the `wide` pack's 415 alphanumeric fonts (apt is not there; the three CJK-sized files
# subset to the alphanumeric glyphs and space with pyftsubset, so the carry stays under its limit).
#   device run: bash experiments/base_model_v3_device.sh MINUTES   (copies runs and logs to $OUT)
set -euo pipefail
minutes=${1:-6}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .carry/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
mkdir -p /tmp/fonts && tar xJf .carry/fonts-wide.tar.xz -C /tmp/fonts
# Not installed: the bundled fonts' package (setup.cfg maps captchagen.fontdata to fonts/) by a link.
[ -e captchagen/fontdata ] || ln -s ../fonts captchagen/fontdata
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c 'import torch, sys; print("torch", torch.__version__, "python", sys.version.split()[0], "cuda", torch.cuda.is_available())'
w=/tmp/basev3
start=$(date +%s)
python3 -m experiments.base_model_v3 --work $w --stage make --fonts /tmp/fonts --workers 16 2>&1 \
  | grep -v '^[│┃┏┗┡└├┌]' | tee $OUT/make.log | grep -E '^\+|img/s\)' || true
echo "made in $(( $(date +%s) - start )) s"
python3 -m experiments.base_model_v3 --work $w --stage train --minutes "$minutes" --device cuda --workers 8 2>&1 \
  | tee $OUT/train.log | grep -E '^\+|^epoch|^Best|^run|^input|^started' || true
echo "trained by $(( $(date +%s) - start )) s"
for arch in crnn resnet; do
  run=$w/runs/base-v3-$arch
  mkdir -p $OUT/$arch
  cp $run/best.pt $run/last.pt $run/metrics.jsonl $OUT/$arch/ 2>/dev/null || echo "no $arch run"
done
