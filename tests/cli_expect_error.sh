#!/usr/bin/env bash
# Usage: cli_expect_error.sh SUBSTRING -- COMMAND...
# Passes when COMMAND exits non-zero without a signal, prints exactly one line
# on stderr, starting "sparta: error:" and containing SUBSTRING.
set -u
want=$1; shift; [ "$1" = "--" ] && shift
err=$("$@" 2>&1 >/dev/null); rc=$?
lines=$(printf '%s\n' "$err" | grep -c .)
fail() { echo "FAIL: $*"; echo "command: $*"; echo "rc=$rc stderr:"; printf '%s\n' "$err"; exit 1; }
[ $rc -ne 0 ] || fail "exit code 0"
[ $rc -lt 128 ] || fail "killed by a signal"
[ "$lines" -eq 1 ] || fail "expected one line on stderr, got $lines"
case "$err" in "sparta: error:"*) ;; *) fail "line does not start with 'sparta: error:'" ;; esac
case "$err" in *"$want"*) ;; *) fail "message does not mention '$want'" ;; esac
echo "ok: $err"
