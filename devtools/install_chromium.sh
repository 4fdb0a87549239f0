#!/usr/bin/env bash
# Install Debian's chromium for the browser test (tests/server/test_ui_workflows_browser.py).
# Idempotent: does nothing when /usr/bin/chromium exists. Needs root (or sudo) and apt.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: apt-get not found; install chromium yourself (the browser test is skipped without it)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "install_chromium.sh: not root and no sudo; the browser test is skipped without chromium" >&2
        exit 0
    fi
fi
echo "installing Debian's chromium (apt-get) for the browser test"
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# output only when something fails
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_chromium.sh: apt-get failed; the browser test is skipped without chromium" >&2
    exit 0
fi
test -x /usr/bin/chromium
