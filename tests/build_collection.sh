#!/usr/bin/env bash
# Build the collection tarball and check what it carries: the collection's content,
# and none of the lab, tests or molecule scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."

dist=.build/dist
rm -rf "$dist" && mkdir -p "$dist"
ansible-galaxy collection build --force --output-path "$dist" . >/dev/null
tarball="$(ls "$dist"/sysgenpro-odoo_migration-*.tar.gz)"
listing="$(tar -tzf "$tarball")"

for required in MANIFEST.json FILES.json README.md meta/runtime.yml plugins/module_utils/audit/journal.py plugins/module_utils/postgres/cutover.py; do
  grep -qx "$required" <<<"$listing" || { echo "build: $tarball lacks $required" >&2; exit 1; }
done
if leaked="$(grep -E '^(tests|lab|molecule|benchmarks|\.venv|\.build|migration-state)/' <<<"$listing")"; then
  echo "build: $tarball carries what it must leave out:" >&2
  head -n 20 <<<"$leaked" >&2
  exit 1
fi
echo "build: $tarball ($(du -h "$tarball" | cut -f1), $(wc -l <<<"$listing") entries)"
