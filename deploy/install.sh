#!/usr/bin/env bash
# Install gitops-edge on a device as a systemd service, idempotently:
#   a venv in /opt/gitops-edge with the package (pip), /usr/local/bin/gitops-edge,
#   the hardened unit deploy/gitops-edge.service, /etc/gitops-edge/config.yaml
#   from config/agent.example.yaml (only when there is none: never overwritten)
#   and the state directory /var/lib/gitops-edge. Running it again upgrades the
#   package and changes nothing else that is already in place.
#
#   deploy/install.sh [--dry-run] [--enable] [--from PIP-SPEC] [--root DIR]
#
#   --dry-run        print what would be done, change nothing
#   --enable         systemctl enable --now gitops-edge (edit the config first)
#   --from SPEC      what pip installs (default: this checkout; e.g. a wheel file,
#                    or `gitops-edge==0.1.0` from an index)
#   --root DIR       install under DIR instead of / (images, tests); no systemctl
#
# Needs root, python3 >= 3.11 with venv, git, and Docker's engine on the device.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
DRY=0 ENABLE=0 ROOT="" FROM=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --enable) ENABLE=1 ;;
    --from) FROM=$2; shift ;;
    --root) ROOT=$(realpath -m "$2"); shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$FROM" ] || FROM=$here
PREFIX=$ROOT/opt/gitops-edge
BIN=$ROOT/usr/local/bin/gitops-edge
UNIT=$ROOT/etc/systemd/system/gitops-edge.service
CONF_DIR=$ROOT/etc/gitops-edge
STATE=$ROOT/var/lib/gitops-edge
PY=${PYTHON:-python3}
changed=0 pkg_changed=0

say() { echo "install.sh: $*"; }
do_() {  # run a command, or only show it under --dry-run
  changed=1
  if [ "$DRY" = 1 ]; then echo "would run: $*"; else echo "+ $*"; "$@"; fi
}

[ "$DRY" = 1 ] || [ -n "$ROOT" ] || [ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (or --dry-run)" >&2; exit 1; }
"$PY" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
  { echo "install.sh: needs $PY >= 3.11 with the venv module (Debian: apt-get install python3-venv)" >&2; exit 1; }
command -v git >/dev/null || { echo "install.sh: needs git (apt-get install git)" >&2; exit 1; }
command -v docker >/dev/null || [ -S /var/run/docker.sock ] || say "warning: no Docker engine found; the agent needs one to run"

# 1. the venv and the package
[ -x "$PREFIX/bin/python" ] || do_ "$PY" -m venv "$PREFIX"
before=$( [ -x "$PREFIX/bin/pip" ] && "$PREFIX/bin/pip" show gitops-edge 2>/dev/null | sed -n 's/^Version: //p' || true)
if [ "$DRY" = 1 ]; then
  echo "would run: $PREFIX/bin/pip install --upgrade $FROM   (installed now: ${before:-none})"
else
  echo "+ $PREFIX/bin/pip install --upgrade $FROM"
  "$PREFIX/bin/pip" install -q --disable-pip-version-check --upgrade "$FROM"
  after=$("$PREFIX/bin/pip" show gitops-edge | sed -n 's/^Version: //p')
  [ "$before" = "$after" ] || { changed=1; pkg_changed=1; say "gitops-edge ${before:-none} -> $after"; }
fi

# 2. the command on PATH (the unit runs /usr/local/bin/gitops-edge)
if [ "$(readlink "$BIN" 2>/dev/null)" != "$PREFIX/bin/gitops-edge" ]; then
  do_ mkdir -p "$(dirname "$BIN")"
  do_ ln -sfn "$PREFIX/bin/gitops-edge" "$BIN"
fi

# 3. the unit, replaced only when it differs
unit_changed=0
if ! cmp -s "$here/deploy/gitops-edge.service" "$UNIT"; then
  do_ install -D -m 0644 "$here/deploy/gitops-edge.service" "$UNIT"
  unit_changed=1
fi

# 4. config skeleton (never overwritten) and the state directory
[ -d "$CONF_DIR" ] || do_ install -d -m 0750 "$CONF_DIR"
if [ ! -e "$CONF_DIR/config.yaml" ]; then
  do_ install -m 0640 "$here/config/agent.example.yaml" "$CONF_DIR/config.yaml"
  say "edit $CONF_DIR/config.yaml (device.id, source.url/path, credentials) before enabling"
fi
[ -d "$STATE" ] || do_ install -d -m 0750 "$STATE"

# 5. systemd (only on the real root, only when it runs)
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
  [ "$unit_changed" = 0 ] || do_ systemctl daemon-reload
  if [ "$ENABLE" = 1 ]; then
    do_ systemctl enable --now gitops-edge.service
  elif [ "$unit_changed$pkg_changed" != 00 ] && systemctl -q is-active gitops-edge.service 2>/dev/null; then
    do_ systemctl restart gitops-edge.service
  fi
elif [ "$ENABLE" = 1 ]; then
  say "systemd is not running here (or --root was given): not enabling"
fi

if [ "$changed" = 0 ]; then say "already installed, nothing changed"
elif [ "$DRY" = 1 ]; then say "dry run: nothing was changed"
else say "done: $("$BIN" --version 2>/dev/null || echo "$BIN")"; fi
