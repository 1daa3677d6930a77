#!/usr/bin/env bash
# Runs every native Go fuzz target of the module for $FUZZTIME each.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-5s}
status=0
while IFS= read -r file; do
  pkg=./$(dirname "$file")
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
    echo "fuzz: $pkg $target ($FUZZTIME)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" >/tmp/rtpkit-fuzz.$$ 2>&1; then
      # Go's fuzzer sometimes ends a clean run with "context deadline
      # exceeded" when time runs out mid-input; a real finding always
      # writes its failing input.
      if grep -q "context deadline exceeded" /tmp/rtpkit-fuzz.$$ && ! grep -q "Failing input written" /tmp/rtpkit-fuzz.$$; then
        echo "fuzz: $target stopped at its deadline without a finding"
      else
        cat /tmp/rtpkit-fuzz.$$
        status=1
      fi
    fi
  done
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | sort)
rm -f /tmp/rtpkit-fuzz.$$
exit $status
