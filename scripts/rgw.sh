#!/usr/bin/env bash
# A single-node Ceph RADOS Gateway for tests and benchmarks: one mon, one mgr, one bluestore OSD on a
# sparse file and radosgw (beast) on 127.0.0.1, all in the foreground of their own processes under
# one state directory, tracked by pid files (never found or killed by name). Debian's packages;
# settings from ../shared/reference/ceph-rgw.md (small machine, one OSD, short RGW GC wait).
#
#   scripts/rgw.sh start    install what is missing, start the cluster (or reuse the running one),
#                           create the S3 user; prints `export EPOCH_TEST_RGW_…=…` lines on stdout
#                           (everything else goes to stderr), so: eval "$(scripts/rgw.sh start)"
#   scripts/rgw.sh env      the same export lines for a running cluster
#   scripts/rgw.sh status   exit 0 when every daemon runs and RGW answers
#   scripts/rgw.sh stop     stop the daemons by pid (rgw, osd, mgr, mon), keeping the data
#   scripts/rgw.sh purge    stop, then delete the state directory
#
# Settings (environment): EPOCH_RGW_DIR (state directory, default ${TMPDIR:-/tmp}/epoch-rgw),
# EPOCH_RGW_PORT (S3 port, default 7480), EPOCH_RGW_BLOCK_GIB (size of the OSD's sparse file,
# default 32; read when the cluster is created). Bluestore does not give freed space back to the
# file system, so the file's allocation grows towards that size as data is written and deleted
# over time; `purge` frees it.
# The mon listens on 127.0.0.1:3300 (msgr2) and :6789 (msgr1).
#
# Output variables: EPOCH_TEST_RGW_URL, EPOCH_TEST_RGW_ACCESS_KEY, EPOCH_TEST_RGW_SECRET_KEY,
# EPOCH_TEST_RGW_REGION (us-east-1), and EPOCH_RGW_STARTED (1 when this call started a daemon,
# 0 when everything was already running), which a caller can use to stop only what it started.
set -euo pipefail

DIR="${EPOCH_RGW_DIR:-${TMPDIR:-/tmp}/epoch-rgw}"
PORT="${EPOCH_RGW_PORT:-7480}"
BLOCK_GIB="${EPOCH_RGW_BLOCK_GIB:-32}"
CONF="$DIR/ceph.conf"
RGW_NAME="client.rgw.epoch"
USER_ID="epoch-test"
PACKAGES=(ceph-mon ceph-osd ceph-mgr radosgw ceph-common)
# Daemons in start order; stop goes the other way.
DAEMONS=(mon mgr osd rgw)

log() { printf 'rgw: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

ceph_() { timeout 30 ceph --connect-timeout 10 -c "$CONF" "$@"; }

pidfile() { echo "$DIR/pids/$1.pid"; }

# The program a daemon runs as, to tell our process from another that reused its pid.
binary() {
  case "$1" in
  mon) echo ceph-mon ;;
  mgr) echo ceph-mgr ;;
  osd) echo ceph-osd ;;
  rgw) echo radosgw ;;
  esac
}

# Prints the daemon's pid when it is running (its pid file names a live process of that program).
running_pid() {
  local file pid exe
  file="$(pidfile "$1")"
  [ -f "$file" ] || return 1
  pid="$(cat "$file")"
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  exe="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | awk '{print $1}')"
  [ "$(basename "$exe")" = "$(binary "$1")" ] || return 1
  echo "$pid"
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  ((${#missing[@]} == 0)) && return 0
  [ "$(id -u)" = 0 ] || die "missing packages ${missing[*]}; install them (as root): apt-get install ${missing[*]}"
  log "installing ${missing[*]}"
  # shellcheck source=lib/apt.sh
  source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
  apt_install "${missing[@]}" >&2
}

write_config() {
  local fsid="$1"
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $DIR/keyring
run dir = $DIR/run
admin socket = $DIR/run/\$cluster-\$name.asok
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = true
# One OSD: pools of size 1, few placement groups, no redundancy warnings.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $DIR/mon/\$cluster-\$id

[mgr]
mgr data = $DIR/mgr/\$cluster-\$id

[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = bluestore
bluestore block create = true
bluestore block size = $((BLOCK_GIB * 1024 * 1024 * 1024))
# Small machine: 1 GiB memory target, two op shards with one thread each.
osd memory target = 1073741824
osd op num shards = 2
osd op num threads per shard = 1

[$RGW_NAME]
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw data = $DIR/rgw
# Deleted and overwritten objects' data is freed within about 4 minutes, not 2 hours.
rgw gc obj min wait = 120
rgw gc processor period = 120
EOF
}

bootstrap() {
  log "creating a new cluster in $DIR"
  rm -rf "$DIR"
  mkdir -p "$DIR"/{run,log,pids,mon,mgr/ceph-x,osd/ceph-0,rgw}
  local fsid uuid
  fsid="$(cat /proc/sys/kernel/random/uuid)"
  write_config "$fsid"
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n osd.0 \
    --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n mgr.x \
    --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n "$RGW_NAME" \
    --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' \
    "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" >&2
  launch mon
  wait_mon
  uuid="$(cat /proc/sys/kernel/random/uuid)"
  local id
  id="$(ceph_ osd new "$uuid")"
  [ "$id" = 0 ] || die "expected osd id 0, got $id"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" >>"$DIR/log/osd-mkfs.log" 2>&1 ||
    die "ceph-osd --mkfs failed (see $DIR/log/osd-mkfs.log)"
  # The S3 user's secret: random, kept with the cluster.
  printf 'epoch-test-%s\n' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$DIR/secret"
}

# Starts one daemon in the foreground of its own session and records its pid.
launch() {
  local what="$1" cmd
  case "$what" in
  mon) cmd=(ceph-mon -f -c "$CONF" -i a) ;;
  mgr) cmd=(ceph-mgr -f -c "$CONF" -i x) ;;
  osd) cmd=(ceph-osd -f -c "$CONF" -i 0) ;;
  rgw) cmd=(radosgw -f -c "$CONF" -n "$RGW_NAME") ;;
  esac
  # Without the lock's descriptor: a daemon holding it would block every later start.
  setsid "${cmd[@]}" </dev/null >>"$DIR/log/$what.out" 2>&1 9>&- &
  echo $! >"$(pidfile "$what")"
  STARTED=1
  log "started $what (pid $!)"
}

wait_until() {
  local what="$1" seconds="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    running_pid "$what" >/dev/null || die "$what exited while starting (see $DIR/log/$what.out and $DIR/log/)"
    ((SECONDS < deadline)) || die "$what not ready after ${seconds}s (see $DIR/log/)"
    sleep 0.5
  done
}

wait_mon() { wait_until mon 60 ceph_ mon stat; }

# osd.0 is up in the osdmap with the address of the running process (the nonce is its pid: with one
# OSD the mon may still list a killed predecessor as up for many minutes).
osd_ready() {
  local pid
  pid="$(running_pid osd)" || return 1
  ceph_ osd dump -f json | grep -Eq "\"osd\":0,\"uuid\":\"[^\"]*\",\"up\":1,.*\"nonce\":$pid[,}]"
}

pgs_active() {
  local stat
  stat="$(ceph_ pg stat -f json)" || return 1
  # Every placement group active (or none yet).
  node -e '
    const s = JSON.parse(process.argv[1]);
    const m = s.pg_summary || s;
    const total = m.num_pgs ?? 0;
    const active = (m.num_pg_by_state || []).filter((x) => x.name.split("+").includes("active"))
      .reduce((n, x) => n + x.num, 0);
    process.exit(total === active ? 0 : 1);
  ' "$stat"
}

rgw_answers() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; }

ensure_user() {
  local secret
  secret="$(cat "$DIR/secret")"
  if ! radosgw-admin -c "$CONF" user info --uid="$USER_ID" >/dev/null 2>&1; then
    radosgw-admin -c "$CONF" user create --uid="$USER_ID" --display-name="Epoch tests" \
      --access-key="EPOCHTESTACCESSKEY" --secret="$secret" >/dev/null ||
      die "radosgw-admin user create failed"
    log "created S3 user $USER_ID"
  fi
}

print_env() {
  local secret
  secret="$(cat "$DIR/secret")"
  cat <<EOF
export EPOCH_TEST_RGW_URL=http://127.0.0.1:$PORT
export EPOCH_TEST_RGW_ACCESS_KEY=EPOCHTESTACCESSKEY
export EPOCH_TEST_RGW_SECRET_KEY=$secret
export EPOCH_TEST_RGW_REGION=us-east-1
EOF
}

cmd_start() {
  install_packages
  mkdir -p "$(dirname "$DIR")"
  exec 9>"$DIR.lock"
  flock 9
  STARTED=0
  local t0=$SECONDS
  [ -f "$CONF" ] && [ -f "$DIR/secret" ] && [ -d "$DIR/osd/ceph-0" ] || bootstrap
  running_pid mon >/dev/null || launch mon
  wait_mon
  running_pid mgr >/dev/null || launch mgr
  running_pid osd >/dev/null || launch osd
  wait_until osd 120 osd_ready
  wait_until osd 120 pgs_active
  running_pid rgw >/dev/null || launch rgw
  wait_until rgw 180 rgw_answers
  ensure_user
  print_env >"$DIR/rgw.env"
  if ((STARTED)); then
    log "ready in $((SECONDS - t0))s: http://127.0.0.1:$PORT ($(radosgw --version | awk '{print $3}'))"
  else
    log "already running: http://127.0.0.1:$PORT"
  fi
  print_env
  echo "export EPOCH_RGW_STARTED=$STARTED"
}

cmd_env() {
  cmd_status >/dev/null 2>&1 || die "not running (scripts/rgw.sh start)"
  print_env
}

cmd_status() {
  local what ok=0 pid
  for what in "${DAEMONS[@]}"; do
    if pid="$(running_pid "$what")"; then
      log "$what running (pid $pid)"
    else
      log "$what not running"
      ok=1
    fi
  done
  if rgw_answers; then log "S3 answers on http://127.0.0.1:$PORT"; else
    log "S3 does not answer on http://127.0.0.1:$PORT"
    ok=1
  fi
  return $ok
}

# Stops one daemon by its recorded pid: SIGTERM, then SIGKILL after 30 s.
stop_one() {
  local what="$1" pid i
  pid="$(running_pid "$what")" || {
    rm -f "$(pidfile "$what")"
    return 0
  }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  if [ -d "/proc/$pid" ]; then
    log "$what (pid $pid) did not stop in 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(pidfile "$what")"
  log "stopped $what (pid $pid)"
}

cmd_stop() {
  [ -d "$DIR" ] || return 0
  local i
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do stop_one "${DAEMONS[$i]}"; done
}

cmd_purge() {
  cmd_stop
  rm -rf "$DIR" "$DIR.lock"
  log "removed $DIR"
}

case "${1:-}" in
start) cmd_start ;;
env) cmd_env ;;
status) cmd_status ;;
stop) cmd_stop ;;
purge) cmd_purge ;;
*)
  echo "usage: $0 start|env|status|stop|purge" >&2
  exit 2
  ;;
esac
