# Installs Debian packages for .ci/run and scripts/rgw.sh (sourced by both; needs root).
# Another apt-get (an earlier aborted run, the system's own) may hold apt's locks: install waits
# for the dpkg lock (DPkg::Lock::Timeout), and update, which that option does not cover (its
# lists lock fails at once), is tried again while the lock is the reason. Any other failure stops.

# apt_install PACKAGE...: update the package lists, then install the packages quietly.
apt_install() {
  local tries err=''
  for ((tries = 0; tries < 60; tries++)); do
    if err="$(apt-get update -qq 2>&1)"; then
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "$@" >/dev/null
      return
    fi
    [[ $err == *'Could not get lock'* ]] || break
    echo "apt: the package lists are locked by another apt-get; waiting" >&2
    sleep 10
  done
  printf '%s\n' "$err" >&2
  return 1
}
