#!/usr/bin/env bash
# Quality table of a model folder (default: the shipped dfdnet/pretrained/default) on the held-out FFHQ
# faces: bicubic upsampling, the model without its dictionaries ("0 DFT") and the full model, for
# the settings of dfdnet/cli/make_testset.py (x4, x8, Eq. 11, clean x2 and two mixes outside Eq. 11),
# and the full model against its 0-DFT ablation face by face (per setting and pooled).
# See docs/default_model.md.
#   bash scripts/evaluate_default_model.sh [MODEL_DIR] [OUT_DIR]
#   SETTINGS="x4 clean_x2" bash scripts/evaluate_default_model.sh ...   # a subset
#   PRECISION=auto bash scripts/evaluate_default_model.sh ...   # as restored by default (bf16 on AMX CPUs)
# The tables are float32 (PRECISION=fp32), the same on every machine.
set -euo pipefail
MODEL=${1:-dfdnet/pretrained/default}
OUT=${2:-experiments/eval_default_model}
SETTINGS=${SETTINGS:-"x4 x8 eq11 clean_x2 x4_noise_jpeg x4_blur_noise_jpeg"}
PRECISION=${PRECISION:-fp32}
TESTSET=experiments/testset_ffhq
[ -f "$TESTSET/manifest.json" ] || python -m dfdnet.cli.make_testset --out "$TESTSET"
for setting in $SETTINGS; do
  for variant in full 0dft; do
    extra=(); [ "$variant" = 0dft ] && extra=(--dft_levels)
    python test_FaceDict.py --aligned --test_path "$TESTSET/$setting/lq" --results_dir "$OUT/$setting/$variant" \
      --gpu_ids -1 --no_html --precision "$PRECISION" --checkpoint "$MODEL/net_g.pth" --dict_dir "$MODEL/dictionaries" "${extra[@]}"
  done
  python -m dfdnet.cli.evaluate --gt "$TESTSET/gt" --lq "$TESTSET/$setting/lq_small" --baseline bicubic \
    --restored "0DFT=$OUT/$setting/0dft/Step3_RestoreCropFace" "DFDNet=$OUT/$setting/full/Step3_RestoreCropFace" \
    --resize-restored --paired 0DFT DFDNet --csv "$OUT/$setting/metrics.csv" | tee "$OUT/$setting/table.md"
done
# The dictionaries' effect over every setting at once, face by face (full model vs its 0-DFT ablation).
csvs=(); for setting in $SETTINGS; do csvs+=("$OUT/$setting/metrics.csv"); done
python -m dfdnet.cli.evaluate --from-csv "${csvs[@]}" --paired 0DFT DFDNet | tee "$OUT/pooled.md"
