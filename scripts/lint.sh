#!/usr/bin/env bash
# House lint (docs: CONTRIBUTING in README): banned functions, raw allocation outside
# src/common/alloc.c, and include guards derived from the path.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
files=$(git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 2>/dev/null)
for f in $files; do
  # banned: unbounded or unsafe C library calls
  if grep -nE '\b(sprintf|vsprintf|strcpy|strcat|atoi|atol|gets|strtok)\s*\(' "$f" | grep -v '^\s*[0-9]*:\s*/\?\*' ; then
    echo "lint: $f uses a banned function (use snprintf, memcpy with lengths, strtol, strtok_r)"
    fail=1
  fi
  if [ "$f" != "src/common/alloc.c" ] && grep -nE '(^|[^_a-z])(malloc|calloc|realloc|free|strdup|strndup)\s*\(' "$f" \
       | grep -vE '^[0-9]+:\s*(/\*|\*)' | grep -vE 'json_decref|_free\(|\bfree_fn' >/dev/null; then
    grep -nE '(^|[^_a-z])(malloc|calloc|realloc|free|strdup|strndup)\s*\(' "$f" | grep -vE '^[0-9]+:\s*(/\*|\*)' | head -3
    echo "lint: $f allocates with the C library directly; use clew__malloc and friends (src/common/alloc.h)"
    fail=1
  fi
  case "$f" in
    *.h)
      guard=$(grep -m1 -E '^#ifndef CLEW_' "$f" | awk '{print $2}')
      if [ -z "$guard" ]; then
        echo "lint: $f has no CLEW_ include guard"
        fail=1
      fi
      ;;
  esac
done
if [ $fail -ne 0 ]; then
  exit 1
fi
echo "lint: clean"
