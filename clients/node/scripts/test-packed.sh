#!/usr/bin/env bash
# Proves the package as a user gets it: `npm pack` here (its prepack builds it), then in
# an empty project in a temp dir outside the checkout `npm install` of the tarball, and
# there examples/quickstart.ts and the suite in test/ compiled against the installed
# package (by its name, through node_modules) and run against $SESSIOND_ADDR.
# Needs `npm ci` done here first. Registry packages come from npm's cache when it has
# them (--prefer-offline). The temp dir is removed unless KEEP_CONSUMER=1.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${SESSIOND_ADDR:?set SESSIOND_ADDR to the server under test (host:port)}"
npm_flags=(--no-audit --no-fund --no-update-notifier --prefer-offline)

consumer="$(mktemp -d "${TMPDIR:-/tmp}/sessiond-node-consumer.XXXXXX")"
[[ "${KEEP_CONSUMER:-}" == 1 ]] || trap 'rm -rf "$consumer"' EXIT

# The tarball, with what `files` lets in and nothing else.
tarball="$(cd "$here" && npm pack "${npm_flags[@]}" --silent --pack-destination "$consumer")"
echo "packed $tarball: $(tar -tzf "$consumer/$tarball" | wc -l) files"
tar -tzf "$consumer/$tarball" | grep -x 'package/dist/gen/session/v1/session_pb.js' >/dev/null || {
  echo "test-packed.sh: the tarball lacks the generated stubs" >&2
  exit 1
}

# What the suite itself imports beside the package, at the versions this repo pins.
wanted() { node -e 'const p = require(process.argv[1]); const all = {...p.dependencies, ...p.devDependencies};
  console.log(process.argv.slice(2).map(n => `${n}@${all[n]}`).join(" "))' "$here/package.json" "$@"; }
cd "$consumer"
echo '{ "name": "sessiond-consumer", "private": true, "type": "module" }' >package.json
# shellcheck disable=SC2046 # one word per package
npm install "${npm_flags[@]}" --silent "./$tarball" $(wanted typescript @types/node jose)
cp -r "$here/test" "$here/examples" .
npx --no-install tsc -p test
node -e 'console.log("sessiond-client from", require.resolve("sessiond-client/package.json"))'
node build-test/examples/quickstart.js
node --test build-test/test/*.test.js
