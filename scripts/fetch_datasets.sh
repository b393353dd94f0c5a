#!/usr/bin/env bash
# Download the datasets sharpsweep reads, with checksums (needs internet):
#
#   bash scripts/fetch_datasets.sh [DIR] [cifar10] [mnist] [fashion-mnist]
#
# DIR defaults to data/; with no dataset named, cifar10 and mnist are fetched
# (Fashion-MNIST comes with the Debian package dataset-fashion-mnist, which
# scripts/setup.sh installs). What ends up where, and the config to use:
#
#   DIR/cifar-10-batches-bin/data_batch_{1..5}.bin   data.dataset = "cifar10"
#                                                    data.dir = "DIR/cifar-10-batches-bin"
#   DIR/mnist/train-{images-idx3,labels-idx1}-ubyte.gz        data.dataset = "mnist"
#                                                    data.dir = "DIR/mnist"
#   DIR/fashion-mnist/train-{images-idx3,labels-idx1}-ubyte.gz  data.dataset = "fashion-mnist"
#                                                    data.dir = "DIR/fashion-mnist"
#
# Only the training split is fetched for the IDX sets: sharpsweep reads nothing else.
#
# Checksums:
# - every file is checked against the MD5 its publisher lists (CIFAR-10: the dataset page,
#   https://www.cs.toronto.edu/~kriz/cifar.html; Fashion-MNIST: the README of
#   zalandoresearch/fashion-mnist; MNIST: the original site publishes none, so the MD5s
#   are the ones torchvision uses for these files);
# - the CIFAR-10 tarball is also checked against a known SHA-256;
# - every file's SHA-256 is recorded in DIR/SHA256SUMS the first time it is seen and
#   verified against that record on every later run (trust on first use: the record is
#   only as good as that first download, which the MD5 check vouches for).
# A file that fails a check is deleted and the script exits 1.
set -euo pipefail

case "${1:-}" in
  -h | --help)
    sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
DIR=data
if [ $# -gt 0 ] && [[ "$1" != cifar10 && "$1" != mnist && "$1" != fashion-mnist ]]; then
  DIR="$1"
  shift
fi
SETS=("$@")
[ ${#SETS[@]} -gt 0 ] || SETS=(cifar10 mnist)

CIFAR_URL="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR_MD5="c32a1d4ab5d03f1284b67883e8d87530"
CIFAR_SHA256="c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"

# Mirrors tried in order (the original yann.lecun.com site often refuses downloads).
MNIST_MIRRORS=(
  "https://ossci-datasets.s3.amazonaws.com/mnist"
  "https://storage.googleapis.com/cvdf-datasets/mnist"
  "http://yann.lecun.com/exdb/mnist"
)
declare -A MNIST_MD5=(
  [train-images-idx3-ubyte.gz]=f68b3c2dcbeaaa9fbdd348bbdeb94873
  [train-labels-idx1-ubyte.gz]=d53e105ee54ea40749a09fcbcd1e9432
)
FASHION_MIRRORS=(
  "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
  "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion"
)
declare -A FASHION_MD5=(
  [train-images-idx3-ubyte.gz]=8d4fb7e6c68d591d4c3dfef9ec88bf0d
  [train-labels-idx1-ubyte.gz]=25c81989df183df01b3e8a0aad5dffbe
)

say() { printf '==> fetch: %s\n' "$*"; }
die() {
  printf 'fetch_datasets.sh: error: %s\n' "$*" >&2
  exit 1
}

if command -v curl >/dev/null 2>&1; then
  download() { curl -fL --retry 3 --connect-timeout 30 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  download() { wget -q --tries=3 --timeout=30 -O "$2" "$1"; }
else
  die "neither curl nor wget is installed (apt-get install curl)"
fi
for tool in md5sum sha256sum tar; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done

mkdir -p "$DIR"
SUMS="$DIR/SHA256SUMS"
touch "$SUMS"

# The SHA-256 recorded for a path relative to DIR ("" when none).
recorded_sha() { awk -v f="$1" '$2 == f { print $1; exit }' "$SUMS"; }

# check REL MD5 [SHA256]: the file DIR/REL against its MD5, a known SHA-256 and the record.
check() {
  local rel="$1" md5="$2" known_sha="${3:-}" file="$DIR/$1" got rec
  got=$(md5sum "$file" | cut -d' ' -f1)
  if [ "$got" != "$md5" ]; then
    rm -f "$file"
    die "$file: MD5 $got, expected $md5 (file deleted; rerun to download again)"
  fi
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ -n "$known_sha" ] && [ "$got" != "$known_sha" ]; then
    rm -f "$file"
    die "$file: SHA-256 $got, expected $known_sha (file deleted)"
  fi
  rec=$(recorded_sha "$rel")
  if [ -z "$rec" ]; then
    printf '%s  %s\n' "$got" "$rel" >>"$SUMS"
    say "$rel: MD5 ok; SHA-256 $got recorded in $SUMS (trust on first use)"
  elif [ "$rec" != "$got" ]; then
    rm -f "$file"
    die "$file: SHA-256 $got differs from $rec recorded in $SUMS (file deleted)"
  else
    say "$rel: MD5 and SHA-256 ok"
  fi
}

# fetch REL MD5 SHA256 URL...: download DIR/REL from the first URL that works, then check it.
fetch() {
  local rel="$1" md5="$2" sha="$3" file="$DIR/$1" url
  shift 3
  if [ -f "$file" ]; then
    check "$rel" "$md5" "$sha"
    return
  fi
  mkdir -p "$(dirname "$file")"
  for url in "$@"; do
    say "downloading $url"
    if download "$url" "$file.part"; then
      mv "$file.part" "$file"
      check "$rel" "$md5" "$sha"
      return
    fi
    rm -f "$file.part"
    echo "fetch_datasets.sh: warning: $url failed" >&2
  done
  die "could not download $rel from any of: $*"
}

for set in "${SETS[@]}"; do
  case "$set" in
    cifar10)
      fetch cifar-10-binary.tar.gz "$CIFAR_MD5" "$CIFAR_SHA256" "$CIFAR_URL"
      need=0
      for k in 1 2 3 4 5; do
        [ -f "$DIR/cifar-10-batches-bin/data_batch_$k.bin" ] || need=1
      done
      if [ "$need" -eq 1 ]; then
        say "extracting cifar-10-binary.tar.gz into $DIR/cifar-10-batches-bin/"
        tar -xzf "$DIR/cifar-10-binary.tar.gz" -C "$DIR"
      fi
      say "CIFAR-10: data.dataset = \"cifar10\", data.dir = \"$DIR/cifar-10-batches-bin\""
      ;;
    mnist)
      for f in "${!MNIST_MD5[@]}"; do
        urls=()
        for m in "${MNIST_MIRRORS[@]}"; do urls+=("$m/$f"); done
        fetch "mnist/$f" "${MNIST_MD5[$f]}" "" "${urls[@]}"
      done
      say "MNIST: data.dataset = \"mnist\", data.dir = \"$DIR/mnist\""
      ;;
    fashion-mnist)
      for f in "${!FASHION_MD5[@]}"; do
        urls=()
        for m in "${FASHION_MIRRORS[@]}"; do urls+=("$m/$f"); done
        fetch "fashion-mnist/$f" "${FASHION_MD5[$f]}" "" "${urls[@]}"
      done
      say "Fashion-MNIST: data.dataset = \"fashion-mnist\", data.dir = \"$DIR/fashion-mnist\""
      ;;
    *) die "unknown dataset '$set' (cifar10, mnist or fashion-mnist)" ;;
  esac
done
