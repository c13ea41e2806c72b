#!/usr/bin/env bash
# Idempotent install of code-server 4.100.3 (VS Code 1.100.3) for the e2e test.
# Cached outside the clone (default ~/.cache/conductor-e2e/code-server); reused when
# `entry.js --version` works. Recipe: /work/shared/REAL-CLIENTS.md.
#   CODE_SERVER_DIR   cache folder (default: ~/.cache/conductor-e2e/code-server)
#   SKIP_APT=1        do not apt-get install the build/runtime packages
set -euo pipefail

VERSION=4.100.3
DIR="${CODE_SERVER_DIR:-${HOME}/.cache/conductor-e2e/code-server}"
ENTRY="$DIR/node_modules/code-server/out/node/entry.js"
# `entry.js --version` writes a default config into $XDG_CONFIG_HOME: keep it out of $HOME.
export XDG_CONFIG_HOME="${XDG_CONFIG_HOME_FOR_CODE_SERVER:-$(dirname "$DIR")/xdg-config}"

if [ -f "$ENTRY" ] && node "$ENTRY" --version 2>/dev/null | grep -q "^$VERSION"; then
  echo "code-server $VERSION cached at $DIR"
  exit 0
fi

APT_PKGS="libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config ripgrep build-essential python3"
if [ "${SKIP_APT:-0}" != "1" ]; then
  missing=""
  for p in $APT_PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y $missing
  fi
fi
command -v rg >/dev/null || { echo "ripgrep (rg) is required" >&2; exit 1; }

rm -rf "$DIR"
mkdir -p "$DIR"
cd "$DIR"
npm init -y >/dev/null
npm_config_unsafe_perm=true npm install --ignore-scripts "code-server@$VERSION"
cd node_modules/code-server/lib/vscode
npm_config_unsafe_perm=true npm install --unsafe-perm --omit=dev --ignore-scripts
mkdir -p node_modules/@vscode/ripgrep/bin
cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
npm_config_yes=true npm_config_unsafe_perm=true npm rebuild --unsafe-perm
cd "$DIR"
npm_config_yes=true npm_config_unsafe_perm=true npm rebuild --unsafe-perm
ln -sfn node_modules node_modules/code-server/lib/vscode/node_modules.asar
node "$ENTRY" --version
