#!/usr/bin/env bash
# PostgreSQL for the MLflow-server tests (tests/mlflow_server/conftest.py): install Debian's
# `postgresql` package when initdb is missing. The tests start their own private cluster on a
# free loopback port (as the `postgres` user when run as root) and create/drop their database,
# so nothing is started or configured here.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null; then
    echo "postgresql: $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | head -n1 || command -v initdb)"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "postgresql is missing and this is not root: install Debian's postgresql package" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The package's post-install script would create and start a system cluster; the tests do
# not use it, so keep it from starting (policy-rc.d exit 101 = "do not start services").
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
fi
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
if [[ $created_policy -eq 1 ]]; then
    rm -f "$policy"
fi
echo "postgresql installed: $(ls -d /usr/lib/postgresql/*/bin | head -n1)"
