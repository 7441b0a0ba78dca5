#!/usr/bin/env bash
# Debian's Chromium for the browser tests in tests/ui/ (driven by Python Playwright with
# executable_path=/usr/bin/chromium; Playwright's own browser download is never used).
# Installs it with apt when it is missing; does nothing when it is there.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then
    echo "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo unknown version)"
    exit 0
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium
/usr/bin/chromium --version
