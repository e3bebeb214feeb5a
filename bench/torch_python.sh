# bench/torch_python.sh — sourced by bench/pytorch_*.sh: sets `py` to a
# python3 that imports torch and numpy, or to "" when there is none.
# `python3` first; Debian installs python3-torch for /usr/bin/python3, which
# a pyenv shim on PATH may hide.
py=""
for cand in python3 /usr/bin/python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import torch, numpy' >/dev/null 2>&1; then
        py=$cand
        break
    fi
done
