#!/bin/sh
# npm run coverage: `npm test` under c8, which measures every Node process the tests start (the
# scripts they run as a user would included), prints the coverage of lib/ and fails below the
# floor. Its raw files (hundreds of MB) go to a temp directory, outside the checkout, removed after.
set -u
raw=$(mktemp -d "${TMPDIR:-/tmp}/gre-coverage-XXXXXX") || exit 1
trap 'rm -rf "$raw"' EXIT
npx c8 --temp-directory "$raw" --reporter=text-summary --include 'lib/**' --all \
  --check-coverage --lines 94 --branches 85 --functions 95 \
  npm test "$@"
