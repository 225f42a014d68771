#!/usr/bin/env bash
# Runs the Test::Nginx tests with CPAN's Test::Nginx when it is installed,
# otherwise with the compatible runner in t/lib-compat.
set -euo pipefail
cd "$(dirname "$0")/.."

if perl -MTest::Nginx::Socket -e1 2>/dev/null; then
    echo "t/run-prove.sh: using the installed Test::Nginx"
    exec prove -r "$@"
fi

echo "t/run-prove.sh: Test::Nginx not installed, using t/lib-compat/Test/Nginx/Socket.pm"
exec prove -I t/lib-compat "$@"
