#!/usr/bin/env bash
# The Debian packages the test suite needs that pip cannot bring: Redis (broker and cache),
# Dovecot (reply-detection tests run a real IMAP server) and python3-venv. PostgreSQL is not
# among them: without a local server `make test` runs the embedded one from requirements-dev.txt.
# Used by .ci/run, `make test` and `make bench`: installs what is missing (as root) or names the
# one command to run.
set -euo pipefail

packages=()
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
command -v dovecot >/dev/null 2>&1 || packages+=(dovecot-imapd)
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || packages+=(python3-venv)
command -v make >/dev/null 2>&1 || packages+=(make)
[ ${#packages[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=sudo
  else
    echo "Missing system packages. Install them once with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
fi
echo "Installing ${packages[*]} (apt-get)…" >&2
export DEBIAN_FRONTEND=noninteractive
${SUDO:-} apt-get update -qq
${SUDO:-} apt-get install -y -qq "${packages[@]}" >&2
