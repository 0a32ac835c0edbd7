#!/usr/bin/env bash
# Prepares this machine for the lab: a running Docker engine and the project's Python
# environment. Safe to run again: it only does what is missing.
#   bootstrap.sh engine   Docker engine (installs Debian's docker.io when missing, starts dockerd)
#   bootstrap.sh python   .venv with requirements.txt
#   bootstrap.sh bench    the peers the benchmarks measure against (rsync)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 2; }

can_install_debian_packages() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1
}

apt_install() {
  can_install_debian_packages || die "$1 is missing and cannot be installed here (needs root on Debian): install $2 yourself, then re-run"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${@:2}" >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${@:2}" >/dev/null; } \
    || die "apt-get install ${*:2} failed: check that Debian's mirror is reachable, then re-run"
}

engine() {
  if docker info >/dev/null 2>&1; then
    say "Docker engine is running"
  else
    if ! command -v dockerd >/dev/null 2>&1; then
      say "installing Debian's docker.io"
      apt_install dockerd docker.io
    fi
    [ "$(id -u)" = 0 ] || die "the Docker engine is stopped and only root can start it: start dockerd (or ask for access to /var/run/docker.sock), then re-run"
    say "starting dockerd (log: /var/log/odoo-mig-dockerd.log)"
    nohup dockerd >/var/log/odoo-mig-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && break
      sleep 1
    done
    docker info >/dev/null 2>&1 || {
      tail -n 20 /var/log/odoo-mig-dockerd.log >&2 || true
      die "dockerd did not come up within 60 s (log above, full log in /var/log/odoo-mig-dockerd.log)"
    }
    say "Docker engine started"
  fi
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap debootstrap
  command -v ssh >/dev/null 2>&1 || apt_install ssh openssh-client
}

python_env() {
  local venv="$repo/.venv" stamp="$repo/.venv/.requirements.sha256" want
  want="$(sha256sum "$repo/requirements.txt" | cut -d' ' -f1)"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    say "Python environment is up to date"
    return
  fi
  command -v python3 >/dev/null 2>&1 || die "python3 is missing: install Python 3.11 or later, then re-run"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python $(python3 -V 2>&1) is too old: ansible-core 2.19 needs 3.11 or later"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" \
    || die "python3 -m venv failed: install the venv module (apt-get install python3-venv), then re-run"
  say "installing Python dependencies into .venv"
  "$venv/bin/pip" install -q --upgrade pip >/dev/null
  "$venv/bin/pip" install -q -r "$repo/requirements.txt"
  echo "$want" >"$stamp"
}

# promtool checks and unit-tests the alert rules (make unit). Debian ships it in its own package since
# trixie and inside `prometheus` before; the binary is kept in a cache outside the checkout.
promtool_binary() {
  local venv="$repo/.venv" cache="${XDG_CACHE_HOME:-$HOME/.cache}/odoo-migration/promtool" work package
  [ -x "$venv/bin/promtool" ] && return
  if [ ! -x "$cache/promtool" ]; then
    can_install_debian_packages || die "promtool is missing and cannot be fetched here (needs root on Debian): put it in $venv/bin"
    work="$(mktemp -d)"
    for package in promtool prometheus; do
      (cd "$work" && { apt-get download -q "$package" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get download -q "$package" >/dev/null 2>&1; }; }) && break
    done
    ls "$work"/*.deb >/dev/null 2>&1 || die "apt-get download promtool (or prometheus) failed: check that Debian's mirror is reachable"
    dpkg-deb -x "$work"/*.deb "$work/root"
    mkdir -p "$cache" && install -m 0755 "$work/root/usr/bin/promtool" "$cache/promtool"
    rm -rf "$work"
    say "promtool $("$cache/promtool" --version 2>&1 | head -n 1 | cut -d' ' -f3) cached in $cache"
  fi
  ln -sfn "$cache/promtool" "$venv/bin/promtool"
}

bench() {
  command -v rsync >/dev/null 2>&1 || apt_install rsync rsync
  say "benchmark peers are installed"
}

case "${1:-}" in
  engine) engine ;;
  python) python_env && promtool_binary ;;
  bench) bench ;;
  *) die "usage: bootstrap.sh engine|python|bench" ;;
esac
