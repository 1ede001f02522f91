#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for runjobs' Slurm tests and for trying
# `--executor slurm` (Debian 12's slurmctld, slurmd, slurm-client and munge, started
# without systemd; needs root).
#
#   scripts/slurm-local.sh start [--clean]   install if needed, start, wait until the node is idle
#   scripts/slurm-local.sh stop [--no-cancel] cancel its jobs, stop the daemons it started
#   scripts/slurm-local.sh status            the node and the queue
#
# See scripts/slurm/start.sh and scripts/slurm/stop.sh for the details and the environment
# they read (LOCAL_SLURM_DIR, LOCAL_SLURM_PARTITION, ...).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  start) exec bash "$here/slurm/start.sh" "$@" ;;
  stop) exec bash "$here/slurm/stop.sh" "$@" ;;
  status)
    sinfo -N -l
    squeue
    ;;
  *)
    echo "usage: $0 start [--clean] | stop [--no-cancel] | status" >&2
    exit 2
    ;;
esac
