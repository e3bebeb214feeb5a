#!/usr/bin/env bash
# slurm-array.sh — a prunelab sweep as a Slurm job array, then one report.
#
#   scripts/slurm-array.sh EXPERIMENT.yaml OUT_DIR [TASKS] [THREADS]
#
# submits TASKS (default 50) array tasks, task I running
#   prunelab run EXPERIMENT.yaml --shard I/TASKS --out OUT_DIR --threads THREADS
# and a last job, started when every task has ended (afterany: a failed or
# cancelled task must not block the report of the others), running
#   prunelab report OUT_DIR
# OUT_DIR must be on a filesystem every node sees (NFS, Lustre, ...): the
# tasks share its baseline cache and claim runs and baselines there, so a
# baseline several shards need is trained once and the others wait for it.
# Resubmitting the same command resumes: finished runs are kept.
#
# The pattern is the same for any batch system (PBS/Torque: qsub -J 1-N and
# $PBS_ARRAY_INDEX; LSF: bsub -J "x[1-N]" and $LSB_JOBINDEX; SGE: qsub -t
# 1-N and $SGE_TASK_ID; HTCondor: queue N and $(Process)+1): N independent
# `run --shard I/N` processes sharing OUT_DIR, then `prunelab report OUT_DIR`.
#
# Environment: PRUNELAB (default: build/prunelab beside this script),
# SBATCH_EXTRA (more sbatch options, e.g. "--partition=cpu --time=02:00:00"),
# DRY_RUN=1 prints the two sbatch commands instead of submitting them.
set -euo pipefail

if (($# < 2)); then
    sed -n '2,22p' "$0" >&2
    exit 2
fi
EXP=$1
OUT=$2
TASKS=${3:-50}
THREADS=${4:-2}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRUNELAB=${PRUNELAB:-$ROOT/build/prunelab}
[[ $TASKS =~ ^[1-9][0-9]*$ ]] || { echo "slurm-array.sh: TASKS must be a positive integer, got '$TASKS'" >&2; exit 2; }
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || { echo "slurm-array.sh: THREADS must be a positive integer, got '$THREADS'" >&2; exit 2; }
[[ -x $PRUNELAB ]] || { echo "slurm-array.sh: $PRUNELAB is not executable (build first, or set PRUNELAB)" >&2; exit 2; }
# fail here, not in 50 tasks: the experiment must be valid
"$PRUNELAB" validate "$EXP" >/dev/null
mkdir -p "$OUT/slurm"

q() { printf '%q ' "$@"; }
task_cmd="$(q "$PRUNELAB" run "$EXP" --out "$OUT" --threads "$THREADS" --quiet) --shard \${SLURM_ARRAY_TASK_ID}/$TASKS"
report_cmd="$(q "$PRUNELAB" report "$OUT")"
# shellcheck disable=SC2206
extra=(${SBATCH_EXTRA:-})

array=(sbatch --parsable --job-name=prunelab-sweep --array="1-$TASKS" --cpus-per-task="$THREADS"
       --output="$OUT/slurm/task-%a.log" "${extra[@]}" --wrap="$task_cmd")
if [[ ${DRY_RUN:-0} == 1 ]]; then
    q "${array[@]}"; echo
    q sbatch --dependency=afterany:JOBID --job-name=prunelab-report --output="$OUT/slurm/report.log" \
        "${extra[@]}" --wrap="$report_cmd"; echo
    exit 0
fi
jobid=$("${array[@]}")
jobid=${jobid%%;*}
rep=$(sbatch --parsable --dependency="afterany:$jobid" --job-name=prunelab-report \
    --output="$OUT/slurm/report.log" "${extra[@]}" --wrap="$report_cmd")
echo "submitted array job $jobid ($TASKS tasks) and report job ${rep%%;*}; logs in $OUT/slurm/"
