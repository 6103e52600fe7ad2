#!/usr/bin/env bash
# A directory on a file system that clones files (XFS with reflink, the default of mkfs.xfs),
# for the puller's copying update, which clones a cached version instead of copying it where it
# can: an XFS image on a sparse file, loop-mounted. Needs root and loop devices.
#
#   scripts/reflink-dir.sh start   install xfsprogs if missing, make and mount the file system
#                                  (or reuse the mounted one); prints
#                                  `export EPOCH_TEST_REFLINK_DIR=…` on stdout, so:
#                                  eval "$(scripts/reflink-dir.sh start)"
#   scripts/reflink-dir.sh status  exit 0 when it is mounted
#   scripts/reflink-dir.sh stop    unmount it and delete the image
#
# Settings (environment): EPOCH_REFLINK_DIR (mount point, default ${TMPDIR:-/tmp}/epoch-reflink),
# EPOCH_REFLINK_GIB (size of the sparse image, default 4; it takes room only as it is written).
set -euo pipefail

DIR="${EPOCH_REFLINK_DIR:-${TMPDIR:-/tmp}/epoch-reflink}"
IMAGE="$DIR.img"
GIB="${EPOCH_REFLINK_GIB:-4}"

log() { printf 'reflink-dir: %s\n' "$*" >&2; }

start() {
  if ! mountpoint -q "$DIR"; then
    if ! command -v mkfs.xfs >/dev/null 2>&1; then
      log "installing xfsprogs"
      source "$(dirname "$0")/lib/apt.sh"
      apt_install xfsprogs
    fi
    mkdir -p "$DIR"
    rm -f "$IMAGE"
    truncate -s "${GIB}G" "$IMAGE"
    if ! mkfs.xfs -q -m reflink=1 "$IMAGE" >&2 || ! mount -o loop "$IMAGE" "$DIR"; then
      rm -f "$IMAGE"
      log "cannot make or mount an XFS file system here (root and loop devices are needed)"
      exit 1
    fi
    chmod 1777 "$DIR"
    log "mounted an XFS file system with reflink at $DIR"
  fi
  printf 'export EPOCH_TEST_REFLINK_DIR=%q\n' "$DIR"
}

stop() {
  if mountpoint -q "$DIR"; then umount "$DIR"; fi
  rm -f "$IMAGE"
}

case "${1:-}" in
  start) start ;;
  status) mountpoint -q "$DIR" ;;
  stop) stop ;;
  *)
    echo "usage: $0 start|status|stop" >&2
    exit 64
    ;;
esac
