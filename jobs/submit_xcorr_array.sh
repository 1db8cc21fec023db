#!/usr/bin/env bash
# Submits an array of N xcorr part jobs (xcorr_array.sbatch) and the merge job
# that depends on it (fit_merge.sbatch, afterok), and prints their job ids.
#
#   TESSERA_INPUT=pairs.h5 TESSERA_OUTPUT=peaks.h5 jobs/submit_xcorr_array.sh 16 [sbatch options...]
#
# As submit_fit_array.sh: N defaults to TESSERA_PARTS or 4, the sbatch options go
# to the array tasks, TESSERA_MERGE_SBATCH_ARGS to the merge job,
# TESSERA_ARRAY_LIMIT caps the tasks running at once; running the same command
# again skips the complete parts and merges again.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
n="${1:-${TESSERA_PARTS:-4}}"
shift || true
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
  echo "submit_xcorr_array.sh: the number of parts must be a positive integer, got '$n'" >&2
  exit 2
fi
export TESSERA_PARTS="$n"
export TESSERA_OUTPUT="${TESSERA_OUTPUT:-peaks.h5}"
read -r -a merge_args <<<"${TESSERA_MERGE_SBATCH_ARGS:-}"

limit="${TESSERA_ARRAY_LIMIT:+%$TESSERA_ARRAY_LIMIT}"
array=$(sbatch --parsable --array="1-$n$limit" "$@" "$here/xcorr_array.sbatch")
array="${array%%;*}"
merge=$(sbatch --parsable --dependency="afterok:$array" --kill-on-invalid-dep=yes \
  "${merge_args[@]}" "$here/fit_merge.sbatch")
merge="${merge%%;*}"
echo "array $array ($n parts), merge $merge"
