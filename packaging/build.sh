#!/usr/bin/env bash
# Build the standalone Linux app folder dist/agent-event-monitor/ from this checkout.
#
#   bash packaging/build.sh
#
# Creates its own virtual environment (build/packaging-venv, recreated every time so nothing
# from a development environment leaks into the bundle), installs the project with the
# pinned bundler (the `packaging` extra in pyproject.toml), runs PyInstaller on
# packaging/agent-event-monitor.spec, and smoke-tests the result. See packaging/README.md.
#
# Environment: PYTHON (default python3, 3.11 or newer), AEM_BUILD_VENV (default
# build/packaging-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${AEM_BUILD_VENV:-build/packaging-venv}
SPEC=packaging/agent-event-monitor.spec
APP=agent-event-monitor
DIST=dist
WORK=build/pyinstaller
BUNDLE=$DIST/$APP
started=$SECONDS

step() { printf '\n==> %s\n' "$*"; }

step "build environment: $VENV ($("$PYTHON" --version 2>&1))"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "Python 3.11 or newer is needed (set PYTHON=...)" >&2; exit 2; }
"$PYTHON" -m venv --clear "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# a regular (not editable) install: the bundle gets exactly what the wheel ships
"$VENV/bin/python" -m pip install --quiet '.[packaging]'
"$VENV/bin/python" -m pip list --format=freeze \
    | grep -iE '^(agent-event-monitor|pyinstaller|pyinstaller-hooks-contrib|pyside6[-_]essentials|pyqtgraph|numpy)==' \
    || true

step "PyInstaller: $SPEC -> $BUNDLE"
rm -rf "$BUNDLE" "$WORK"
"$VENV/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" "$SPEC"

# An interpreter built from source (pyenv) keeps its debug info: ~23 MB in libpython and the
# stdlib's extension modules. Strip only those; the wheels' libraries are already stripped,
# and stripping their patched (auditwheel) ELF files again can break them.
if command -v strip >/dev/null; then
    shopt -s nullglob
    strip --strip-debug "$BUNDLE"/_internal/libpython3*.so* \
        "$BUNDLE"/_internal/python3*/lib-dynload/*.so
    shopt -u nullglob
fi

# the desktop entry and its installer sit beside the executables (packaging/README.md)
install -m 644 packaging/linux/$APP.desktop "$BUNDLE/$APP.desktop"
install -m 755 packaging/linux/install-desktop-entry.sh "$BUNDLE/install-desktop-entry.sh"

step "smoke test"
# outside the checkout and without this shell's environment, like on a user's machine
bundle_path="$PWD/$BUNDLE"
(cd / && env -i HOME="$HOME" PATH=/usr/bin:/bin "$bundle_path/$APP" --version)
(cd / && env -i HOME="$HOME" PATH=/usr/bin:/bin "$bundle_path/agent-runtime" --version)

step "done in $((SECONDS - started)) s: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"
echo "run it:  $BUNDLE/$APP"
echo "install the menu entry and icon:  $BUNDLE/install-desktop-entry.sh"
