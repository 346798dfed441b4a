#!/usr/bin/env bash
# Downloads one of the recommended first models into models/ and checks it.
#   models/download.sh qwen2.5-0.5b | llama-3.2-1b | smollm2-360m
# The size (and the sha256, where models.tsv records one) must match; on the first
# download of a model whose sha256 is not recorded yet, the script prints it so you
# can compare it with the one Hugging Face shows on the file's page.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:-}
line=$(grep -v '^#' "$here/models.tsv" | awk -F'\t' -v n="$name" '$1 == n')
if [ -z "$name" ] || [ -z "$line" ]; then
  echo "usage: $0 NAME   (one of: $(grep -v '^#' "$here/models.tsv" | cut -f1 | tr '\n' ' '))" >&2
  exit 2
fi
IFS=$'\t' read -r _ file url bytes sha <<< "$line"
out="$here/$file"
if [ ! -f "$out" ]; then
  echo "downloading $url"
  curl -fL --progress-bar -o "$out.part" "$url"
  mv "$out.part" "$out"
fi
actual_bytes=$(stat -c %s "$out")
if [ "$bytes" != "-" ] && [ "$actual_bytes" != "$bytes" ]; then
  echo "error: $file is $actual_bytes bytes, expected $bytes (delete it and download again)" >&2
  exit 1
fi
actual_sha=$(sha256sum "$out" | cut -d' ' -f1)
if [ "$sha" != "-" ] && [ "$actual_sha" != "$sha" ]; then
  echo "error: $file has sha256 $actual_sha, expected $sha (delete it and download again)" >&2
  exit 1
fi
echo "$out: $actual_bytes bytes, sha256 $actual_sha"
