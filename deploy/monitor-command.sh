#!/bin/sh
# monitor, the way the service runs it: its config and its secrets. Installed by
# deploy/install.sh as /usr/local/bin/monitor. Run it with sudo: the secrets file is
# readable by root only. Examples: sudo monitor status; sudo monitor test-notify.
set -eu
: "${MONITOR_CONFIG:=/etc/monitor/config.yaml}"
: "${MONITOR_ENV_FILE:=/etc/monitor/monitor.env}"
: "${MONITOR_BIN:=/opt/monitor/bin/monitor}"
export MONITOR_CONFIG

# KEY=value lines, read as systemd's EnvironmentFile= reads them: no shell expansion,
# comments (#, ;) and blank lines skipped, one pair of surrounding quotes removed.
if [ -r "$MONITOR_ENV_FILE" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in '' | '#'* | ';'*) continue ;; esac
        key=${line%%=*}
        value=${line#*=}
        case $key in
            '' | *[!A-Za-z0-9_]* | [0-9]*)
                echo "monitor: $MONITOR_ENV_FILE: ignoring a line that is not KEY=value" >&2
                continue ;;
        esac
        case $value in
            \"*\") value=${value#\"}; value=${value%\"} ;;
            \'*\') value=${value#\'}; value=${value%\'} ;;
        esac
        export "$key=$value"
    done < "$MONITOR_ENV_FILE"
elif [ -e "$MONITOR_ENV_FILE" ]; then
    echo "monitor: cannot read $MONITOR_ENV_FILE (secrets): run with sudo" >&2
fi
exec "$MONITOR_BIN" "$@"
