#!/bin/sh
# Install or upgrade monitor as a systemd service. Run it again to upgrade: it is
# idempotent, and it never overwrites an edited config or the secrets file.
#
#   sudo deploy/install.sh              install, enable and (re)start the service
#   deploy/install.sh --root DIR        install under DIR instead of / (a dry run, or
#                                       staging an image); enables the unit offline
#
# What goes where:
#   /opt/monitor/                 a virtualenv with monitor and its dependencies
#   /etc/monitor/config.yaml      the config (created once; yours from then on)
#   /etc/monitor/config.yaml.dist the shipped config of this version, for comparison
#   /etc/monitor/monitor.env      secrets for ${VAR} in the config (mode 0600, root)
#   /etc/systemd/system/monitor.service
#   /usr/local/bin/monitor        the command, with the service's config and secrets
#   /var/lib/monitor/             the SQLite database (created by systemd: StateDirectory)
set -eu

PREFIX=/opt/monitor
CONF_DIR=/etc/monitor
UNIT_DIR=/etc/systemd/system
BIN_DIR=/usr/local/bin
STATE_DIR=/var/lib/monitor
DATABASE="sqlite:///$STATE_DIR/monitor.db"

ROOT=""
START=yes
PYTHON=${PYTHON:-python3}

usage() {
    sed -n '2,18s/^# \{0,1\}//p' "$0"
    echo
    echo "Options: --root DIR, --no-start (install and enable, but do not (re)start)."
    echo "Environment: PYTHON (default python3, 3.11 or newer) builds the virtualenv."
}

while [ $# -gt 0 ]; do
    case $1 in
        --root) [ $# -ge 2 ] || { echo "install.sh: --root needs a directory" >&2; exit 2; }
                ROOT=$2; shift 2 ;;
        --root=*) ROOT=${1#--root=}; shift ;;
        --no-start) START=no; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT=$(cd "$ROOT" && pwd)
    [ "$ROOT" != / ] || ROOT=""
fi
SRC=$(cd "$(dirname "$0")/.." && pwd)

say() { printf 'install.sh: %s\n' "$*"; }

# 1. The virtualenv, with this checkout installed into it (an upgrade replaces it).
if [ ! -x "$ROOT$PREFIX/bin/python" ]; then
    say "creating the virtualenv $ROOT$PREFIX"
    "$PYTHON" -m venv "$ROOT$PREFIX"
fi
# A config kept from an earlier install that names PostgreSQL (or a secrets file that
# carries its URL) needs the driver too: the `postgres` extra.
PACKAGE=$SRC
for file in "$ROOT$CONF_DIR/config.yaml" "$ROOT$CONF_DIR/monitor.env"; do
    if [ -e "$file" ] && grep -v '^[[:space:]]*#' "$file" | grep -Eq 'postgres(ql)?(\+[a-z0-9]+)?://'; then
        PACKAGE="$SRC[postgres]"
    fi
done
say "installing monitor from $SRC${PACKAGE#"$SRC"}"
"$ROOT$PREFIX/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$PACKAGE"

# 2. The config: created once, never overwritten. The shipped database path is relative
# to the config file; under systemd the database lives in the state directory.
install -d -m 0755 "$ROOT$CONF_DIR"
sed "s|^database: .*|database: $DATABASE   # systemd's StateDirectory; see README|" \
    "$SRC/config.yaml" > "$ROOT$CONF_DIR/config.yaml.dist.tmp"
chmod 0644 "$ROOT$CONF_DIR/config.yaml.dist.tmp"
mv -f "$ROOT$CONF_DIR/config.yaml.dist.tmp" "$ROOT$CONF_DIR/config.yaml.dist"
if [ -e "$ROOT$CONF_DIR/config.yaml" ]; then
    say "kept $CONF_DIR/config.yaml (this version's default: config.yaml.dist)"
else
    cp "$ROOT$CONF_DIR/config.yaml.dist" "$ROOT$CONF_DIR/config.yaml"
    chmod 0644 "$ROOT$CONF_DIR/config.yaml"
    say "created $CONF_DIR/config.yaml"
fi

# 3. The secrets file: a template once; always private to root.
if [ ! -e "$ROOT$CONF_DIR/monitor.env" ]; then
    (umask 077 && cp "$SRC/deploy/monitor.env.example" "$ROOT$CONF_DIR/monitor.env")
    say "created $CONF_DIR/monitor.env (mode 0600): put secrets there"
fi
chmod 0600 "$ROOT$CONF_DIR/monitor.env"
if [ "$(id -u)" = 0 ]; then
    chown 0:0 "$ROOT$CONF_DIR/monitor.env"
fi

# 4. The command for people, and the unit for systemd (both replaced on upgrade; local
# changes to the unit belong in a drop-in: systemctl edit monitor).
install -d -m 0755 "$ROOT$BIN_DIR" "$ROOT$UNIT_DIR"
install -m 0755 "$SRC/deploy/monitor-command.sh" "$ROOT$BIN_DIR/monitor"
install -m 0644 "$SRC/deploy/monitor.service" "$ROOT$UNIT_DIR/monitor.service"

# 5. Refuse to (re)start on a config that does not load.
say "checking the config"
MONITOR_CONFIG="$ROOT$CONF_DIR/config.yaml" MONITOR_ENV_FILE="$ROOT$CONF_DIR/monitor.env" \
    MONITOR_BIN="$ROOT$PREFIX/bin/monitor" "$ROOT$BIN_DIR/monitor" check-config

# 6. Enable (and start or restart) the service.
if [ -n "$ROOT" ]; then
    if command -v systemctl >/dev/null 2>&1; then
        systemctl --root="$ROOT" --quiet enable monitor.service
        say "enabled monitor.service under $ROOT"
    else
        say "systemctl not found: monitor.service is installed but not enabled"
    fi
elif [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl --quiet enable monitor.service
    if [ "$START" = yes ]; then
        systemctl restart monitor.service
        say "monitor is running: journalctl -u monitor -f"
    else
        say "enabled; start it with: systemctl start monitor"
    fi
else
    say "systemd is not running here: monitor.service is installed but not enabled"
fi
