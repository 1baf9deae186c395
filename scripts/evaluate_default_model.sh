#!/usr/bin/env bash
# Quality table of a model folder (default: the shipped dfdnet/pretrained/default) on the held-out FFHQ
# faces: bicubic upsampling, the model at its default fidelity without its dictionaries ("0DFT") and
# with them ("DFDNet"), and, when the folder has a sharp counterpart (net_g_sharp.pth), the model at
# fidelity 1 ("fidelity1") and at each of FIDELITIES; for the settings of dfdnet/cli/make_testset.py
# (x4, x8, Eq. 11, clean x2 and two mixes outside Eq. 11), with NIQE and the detail ratio, and the
# full model against its 0-DFT ablation face by face (per setting and pooled). See docs/default_model.md.
#   bash scripts/evaluate_default_model.sh [MODEL_DIR] [OUT_DIR]
#   SETTINGS="x4 clean_x2" bash scripts/evaluate_default_model.sh ...   # a subset
#   FIDELITIES="0 0.5" bash scripts/evaluate_default_model.sh ...      # more fidelity columns
#   TESTSET=experiments/testset_val bash scripts/evaluate_default_model.sh ...   # another test set
#   PRECISION=auto bash scripts/evaluate_default_model.sh ...   # as restored by default (bf16 on AMX CPUs)
# The tables are float32 (PRECISION=fp32), the same on every machine.
set -euo pipefail
MODEL=${1:-dfdnet/pretrained/default}
OUT=${2:-experiments/eval_default_model}
SETTINGS=${SETTINGS:-"x4 x8 eq11 clean_x2 x4_noise_jpeg x4_blur_noise_jpeg"}
PRECISION=${PRECISION:-fp32}
TESTSET=${TESTSET:-experiments/testset_ffhq}
NIQE=${NIQE:-../shared/data/metrics/niqe_pris_params.npz}
FIDELITIES=${FIDELITIES:-}
ABLATION=${ABLATION:-1}   # 0: no 0-DFT run (and no paired table)
[ -f "$TESTSET/manifest.json" ] || python -m dfdnet.cli.make_testset --out_dir "$TESTSET"
variants=("DFDNet:"); [ "$ABLATION" = 1 ] && variants+=("0DFT:--dft_levels")
paired=(); [ "$ABLATION" = 1 ] && paired=(--paired 0DFT DFDNet)
if [ -f "$MODEL/net_g_sharp.pth" ]; then
  variants+=("fidelity1:--fidelity 1")
  for w in $FIDELITIES; do variants+=("fidelity$w:--fidelity $w"); done
fi
niqe=(); [ -f "$NIQE" ] && niqe=(--niqe_params "$NIQE")
for setting in $SETTINGS; do
  restored=()
  for variant in "${variants[@]}"; do
    name=${variant%%:*}; read -r -a extra <<< "${variant#*:}"
    python test_FaceDict.py --aligned --test_path "$TESTSET/$setting/lq" --results_dir "$OUT/$setting/$name" \
      --device cpu --no_html --precision "$PRECISION" --checkpoint "$MODEL/net_g.pth" --dict_dir "$MODEL/dictionaries" \
      "${extra[@]}"
    restored+=("$name=$OUT/$setting/$name/Step3_RestoreCropFace")
  done
  python -m dfdnet.cli.evaluate --gt_dir "$TESTSET/gt" --lq_dir "$TESTSET/$setting/lq_small" --baseline_bicubic \
    --restored "${restored[@]}" "${niqe[@]}" --resize_restored "${paired[@]}" --csv "$OUT/$setting/metrics.csv" \
    | tee "$OUT/$setting/table.md"
done
# The dictionaries' effect over every setting at once, face by face (full model vs its 0-DFT ablation).
[ "$ABLATION" = 1 ] || exit 0
csvs=(); for setting in $SETTINGS; do csvs+=("$OUT/$setting/metrics.csv"); done
python -m dfdnet.cli.evaluate --from_csv "${csvs[@]}" --paired 0DFT DFDNet | tee "$OUT/pooled.md"
