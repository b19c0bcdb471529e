#!/usr/bin/env bash
# Re-run the experiments under experiments/ and regenerate their committed tables and plots.
#
#   scripts/run_experiments.sh                      # the short ones, one after another (measured 6 + 10-19 + 24 + 41 min on 2 cores)
#   scripts/run_experiments.sh smoothing_study      # just one
#   scripts/run_experiments.sh fidelity_budget      # nine 20-minute runs (about 3.5 hours)
#
# Each experiment is `rtnt-train -m +experiment=NAME` (runs logged to the MLflow store: $MLFLOW_TRACKING_URI,
# else mlruns/mlflow.db), then `rtnt-compare --experiment NAME --loss-curves --out experiments/NAME/results`.
# rtnt-compare keeps the latest run of each configuration, so a re-run replaces the previous rows.
# Experiments run one at a time on purpose: they are sized for a 2-core machine with nothing else running.
set -euo pipefail

cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
if [ "$#" -gt 0 ]; then
  names=("$@")
else
  names=(smoothing_study capture_length architecture_comparison training_recipe)
fi

for name in "${names[@]}"; do
  if [ ! -f "conf/experiment/${name}.yaml" ]; then
    echo "error: no experiment config conf/experiment/${name}.yaml; pick one of: $(cd conf/experiment && ls *.yaml | sed 's/\.yaml$//' | tr '\n' ' ')" >&2
    exit 2
  fi
  start=$(date +%s)
  echo "== ${name}: training (rtnt-train -m +experiment=${name})"
  "$PY" -m rtnt.cli.train -m "+experiment=${name}"
  echo "== ${name}: comparing (rtnt-compare --experiment ${name} --loss-curves --out experiments/${name}/results)"
  "$PY" -m rtnt.cli.compare --experiment "${name}" --loss-curves --out "experiments/${name}/results"
  echo "== ${name}: done in $(( $(date +%s) - start )) s"
done
