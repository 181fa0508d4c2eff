#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or explain what to install and exit 1.
# Order: $PYTHON, python3.12..python3.14 and python3 on PATH, then any pyenv-managed 3.12+.
set -u
ok() { "$1" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }
for cand in ${PYTHON:-} python3.12 python3.13 python3.14 python3; do
    path=$(command -v "$cand" 2>/dev/null) || continue
    # pyenv shims exist for versions that are not selected; ok() rejects those.
    if ok "$path"; then echo "$path"; exit 0; fi
done
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for dir in $(ls -d "$root"/versions/3.1[2-9]* 2>/dev/null | sort -V); do
    if ok "$dir/bin/python3"; then echo "$dir/bin/python3"; exit 0; fi
done
cat >&2 <<'MSG'
sigmalab needs Python >= 3.12 and none was found.
Install one, e.g. `pyenv install 3.12`, `apt-get install python3.12 python3.12-venv`,
or `uv python install 3.12`, or point PYTHON at it: `make demo PYTHON=/path/to/python3.12`.
MSG
exit 1
