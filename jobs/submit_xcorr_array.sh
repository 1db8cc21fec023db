#!/usr/bin/env bash
# Submits an array of N xcorr part jobs (xcorr_array.sbatch) and the merge job
# that depends on it (fit_merge.sbatch, afterok), and prints their job ids.
#
#   TESSERA_INPUT=pairs.h5 TESSERA_OUTPUT=peaks.h5 jobs/submit_xcorr_array.sh 16 [sbatch options...]
#
# submit_fit_array.sh with the xcorr array script and peaks.h5 as the default
# output; its options and environment variables apply.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export TESSERA_ARRAY_SCRIPT=xcorr_array.sbatch
export TESSERA_OUTPUT="${TESSERA_OUTPUT:-peaks.h5}"
exec "$here/submit_fit_array.sh" "$@"
