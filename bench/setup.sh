#!/usr/bin/env bash
# Makes PyTorch (CPU) available to bench/, the only place that uses it: the product and its
# tests never depend on it.
#
#   bash bench/setup.sh          PyPI's torch in bench/.venv, else Debian's python3-torch
#   bash bench/setup.sh pypi     PyPI's torch only  (current release; ~5.3 GiB, ~1-2 min)
#   bash bench/setup.sh debian   Debian's python3-torch only (1.13, /usr/bin/python3; root)
#
# PyPI's Linux wheel is built with CUDA and imports only with its nvidia-* wheels present,
# so they come along (~3 GiB) although the bench runs on the CPU. bench/run.mjs picks the first
# of bench/.venv/bin/python, python3, /usr/bin/python3 that can import torch.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
# Pinned so results stay comparable across runs; override with TORCH_SPEC=torch==X.Y.Z.
torch_spec="${TORCH_SPEC:-torch==2.15.0}"
want="${1:-auto}"

has_torch() { "$1" -c 'import torch' >/dev/null 2>&1; }

setup_pypi() {
  if [[ -x "$venv/bin/python" ]] && has_torch "$venv/bin/python"; then
    echo "bench/.venv already has torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)')"
    # Added after the first venvs were made: goldpan checkpoints for pytorch/hessian.py.
    "$venv/bin/python" -c 'import safetensors' >/dev/null 2>&1 || "$venv/bin/pip" install safetensors
    return 0
  fi
  local free_kib
  free_kib="$(df -Pk "$here" | awk 'NR == 2 { print $4 }')"
  if ((free_kib < 8 * 1024 * 1024)); then
    echo "setup: under 8 GiB free next to bench/; PyPI's torch needs ~5.3 GiB installed" >&2
    return 1
  fi
  local py="${PYTHON:-python3}"
  echo "installing $torch_spec from PyPI into bench/.venv (with $("$py" --version))"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --upgrade pip >/dev/null
  # numpy only silences torch's "Failed to initialize NumPy" warning; safetensors reads goldpan
  # checkpoints (pytorch/hessian.py --checkpoint; it has a small built-in reader otherwise).
  "$venv/bin/pip" install "$torch_spec" numpy safetensors
  has_torch "$venv/bin/python"
}

setup_debian() {
  if has_torch /usr/bin/python3; then
    echo "/usr/bin/python3 already has torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')"
    return 0
  fi
  local sudo=""
  if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
  echo "installing Debian's python3-torch"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y python3-torch
  has_torch /usr/bin/python3
}

case "$want" in
  pypi) setup_pypi ;;
  debian) setup_debian ;;
  auto)
    if ! setup_pypi; then
      echo "setup: PyPI's torch did not install; falling back to Debian's python3-torch" >&2
      rm -rf "$venv"
      setup_debian
    fi
    ;;
  *)
    echo "usage: bash bench/setup.sh [auto|pypi|debian]" >&2
    exit 2
    ;;
esac
echo "PyTorch ready: node bench/run.mjs (or npm run bench -w @goldpan/bench)"
