#!/usr/bin/env bash
# Submits an array of N part jobs (fit_array.sbatch) and the merge job that
# depends on it (fit_merge.sbatch, afterok), and prints their job ids.
#
#   TESSERA_INPUT=cube.h5 TESSERA_OUTPUT=fit.h5 jobs/submit_fit_array.sh 16 [sbatch options...]
#
# N defaults to TESSERA_PARTS or 4. The sbatch options go to the array tasks
# (e.g. -n 4 for four ranks per task, --gpus-per-task=1, --partition=...);
# TESSERA_MERGE_SBATCH_ARGS holds options for the merge job, TESSERA_ARRAY_LIMIT
# the most tasks that run at once (--array=1-N%LIMIT). The environment
# variables of fit_array.sbatch apply (they travel with the jobs). Running the
# same command again after a failure or cancellation skips the parts that are
# complete and merges again. TESSERA_ARRAY_SCRIPT names the array script
# (default fit_array.sbatch; submit_xcorr_array.sh sets xcorr_array.sbatch).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
n="${1:-${TESSERA_PARTS:-4}}"
shift || true
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
  echo "$(basename "$0"): the number of parts must be a positive integer, got '$n'" >&2
  exit 2
fi
export TESSERA_PARTS="$n"
read -r -a merge_args <<<"${TESSERA_MERGE_SBATCH_ARGS:-}"

limit="${TESSERA_ARRAY_LIMIT:+%$TESSERA_ARRAY_LIMIT}"
array=$(sbatch --parsable --array="1-$n$limit" "$@" "$here/${TESSERA_ARRAY_SCRIPT:-fit_array.sbatch}")
array="${array%%;*}"
merge=$(sbatch --parsable --dependency="afterok:$array" --kill-on-invalid-dep=yes \
  "${merge_args[@]}" "$here/fit_merge.sbatch")
merge="${merge%%;*}"
echo "array $array ($n parts), merge $merge"
