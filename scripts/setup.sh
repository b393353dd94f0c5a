#!/usr/bin/env bash
# Set up a machine to build and run sharpsweep, then build it (release).
#
#   bash scripts/setup.sh             # system packages (if missing) + cargo build --release
#   bash scripts/setup.sh --python    # also the Python packages of the tests and the reader
#   bash scripts/setup.sh --no-build  # packages only
#
# Idempotent: packages are installed only when `dpkg -s` says they are missing, and the
# build is incremental. Written for Debian 12 (run as root, or as a user with sudo);
# elsewhere it checks for cargo and builds, and you install the equivalent packages
# yourself (the PACKAGES list below: one MPI implementation with its headers and launcher,
# the serial HDF5 library with its high-level library and tools, libclang, pkg-config; the
# README's "Quick start" says the same).
#
# Environment: CARGO_TARGET_DIR is honoured by cargo as usual.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WITH_PYTHON=0
BUILD=1
for arg in "$@"; do
  case "$arg" in
    --python) WITH_PYTHON=1 ;;
    --no-build) BUILD=0 ;;
    -h | --help)
      sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "setup.sh: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

say() { printf '==> setup: %s\n' "$*"; }
die() {
  printf 'setup.sh: error: %s\n' "$*" >&2
  exit 1
}

# Root, or sudo when we are not root.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  fi
fi
as_root() {
  if [ "$(id -u)" -ne 0 ] && [ ${#SUDO[@]} -eq 0 ]; then
    die "need root to run: $* (run this script as root or install sudo)"
  fi
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive "$@"
}

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

# ---------------------------------------------------------------------------------------
# System packages (Debian)
# ---------------------------------------------------------------------------------------
PACKAGES=(libopenmpi-dev openmpi-bin libclang-dev libhdf5-dev hdf5-tools pkg-config
  dataset-fashion-mnist)

if command -v dpkg >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  # The parallel HDF5 build silently replaces the serial one the crate links against.
  if is_installed libhdf5-openmpi-dev; then
    if [ -n "${HDF5_DIR:-}" ]; then
      echo "setup.sh: warning: libhdf5-openmpi-dev is installed; building against HDF5_DIR=$HDF5_DIR as you set it" >&2
    else
      die "libhdf5-openmpi-dev is installed. It makes the build pick the parallel HDF5
  library instead of the serial one sharpsweep is written for. Either remove it
  (apt-get remove libhdf5-openmpi-dev) or pin the serial library and rerun:
  export HDF5_DIR=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)/hdf5/serial"
    fi
  fi
  # Two MPI implementations: a binary built against one and started by the other's
  # launcher runs as N separate one-rank copies (sharpsweep detects and refuses that).
  if is_installed libmpich-dev; then
    echo "setup.sh: warning: libmpich-dev is installed beside OpenMPI; make sure the mpirun you use belongs to the MPI the binary is linked against" >&2
  fi

  missing=()
  for p in "${PACKAGES[@]}"; do
    is_installed "$p" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    as_root apt-get update
    as_root apt-get install -y --no-install-recommends "${missing[@]}"
  else
    say "system packages present (${PACKAGES[*]})"
  fi
else
  say "not a Debian system: skipping package installation; you need OpenMPI (or another"
  say "MPI) with its headers, serial HDF5 >= 1.10 with the high-level library, libclang and"
  say "pkg-config. Fashion-MNIST: scripts/fetch_datasets.sh DIR fashion-mnist"
fi

# ---------------------------------------------------------------------------------------
# Python packages of the tests and scripts/read_results.py (on request)
# ---------------------------------------------------------------------------------------
if [ "$WITH_PYTHON" -eq 1 ]; then
  command -v python3 >/dev/null 2>&1 || die "python3 not found (apt-get install python3)"
  if python3 -c 'import h5py, xarray, h5netcdf, pandas' 2>/dev/null; then
    say "Python packages present (h5py xarray h5netcdf pandas)"
  else
    say "installing Python packages h5py xarray h5netcdf pandas"
    if ! python3 -m pip install --quiet h5py xarray h5netcdf pandas; then
      # Debian's own python3 refuses pip installs (PEP 668) or has no pip: use its packages.
      if command -v apt-get >/dev/null 2>&1 && [ "$(command -v python3)" = /usr/bin/python3 ]; then
        say "pip failed; installing the Debian packages instead"
        as_root apt-get update
        as_root apt-get install -y --no-install-recommends python3-h5py python3-xarray \
          python3-h5netcdf python3-pandas
      else
        die "could not install h5py xarray h5netcdf pandas with pip"
      fi
    fi
    python3 -c 'import h5py, xarray, h5netcdf, pandas' ||
      die "h5py xarray h5netcdf pandas are still not importable by $(command -v python3)"
  fi
fi

# ---------------------------------------------------------------------------------------
# Rust toolchain and the build
# ---------------------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
  die "cargo not found. Install the Rust toolchain (>= 1.85.1) with rustup:
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y
  . \"\$HOME/.cargo/env\"
then rerun this script."
fi
say "$(cargo --version)"

if [ "$BUILD" -eq 1 ]; then
  say "cargo build --release --locked"
  cargo build --release --locked
  say "built ${CARGO_TARGET_DIR:-target}/release/sharpsweep"
fi
