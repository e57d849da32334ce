#!/usr/bin/env bash
# Install the Agent Event Monitor menu entry and its icon (every hicolor size) for this user,
# or system-wide with --data-dir /usr/local/share (as root). Run it from the built app
# folder (dist/agent-event-monitor/), where build.sh puts it.
#
#   install-desktop-entry.sh [--data-dir DIR] [--exec PATH] [--uninstall]
#
#   --data-dir DIR   where applications/ and icons/ go (default: $XDG_DATA_HOME or
#                    ~/.local/share)
#   --exec PATH      the program the entry starts (default: agent-event-monitor beside this
#                    script)
#   --uninstall      remove what an install put there
set -euo pipefail

APP=agent-event-monitor
here=$(cd "$(dirname "$0")" && pwd)
data_dir=${XDG_DATA_HOME:-$HOME/.local/share}
exec_path=$here/$APP
uninstall=0

while (($#)); do
    case $1 in
        --data-dir) data_dir=${2:?--data-dir needs a folder}; shift 2 ;;
        --exec) exec_path=${2:?--exec needs a program}; shift 2 ;;
        --uninstall) uninstall=1; shift ;;
        -h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

# the icons: inside the bundle, or in a checkout (packaging/linux/ -> resources/)
icons=$here/_internal/resources/icons
[[ -d $icons ]] || icons=$here/../../resources/icons
[[ -d $icons/hicolor ]] || { echo "no icons found beside $here" >&2; exit 1; }
applications=$data_dir/applications
hicolor=$data_dir/icons/hicolor

refresh_caches() {
    # desktops also notice on their own, later; these make the change show at once
    if command -v update-desktop-database >/dev/null; then
        update-desktop-database -q "$applications" || true
    fi
    if command -v gtk-update-icon-cache >/dev/null && [[ -f $hicolor/index.theme ]]; then
        gtk-update-icon-cache -q -t "$hicolor" || true
    fi
}

if ((uninstall)); then
    rm -f "$applications/$APP.desktop" "$hicolor/scalable/apps/$APP.svg" \
        "$hicolor"/*/apps/"$APP".png
    refresh_caches
    echo "removed $APP from $data_dir"
    exit 0
fi

[[ -x $exec_path ]] || { echo "not an executable: $exec_path (use --exec)" >&2; exit 1; }
exec_path=$(cd "$(dirname "$exec_path")" && pwd)/$(basename "$exec_path")
# Exec= has its own quoting rules; rather than escape every special character, accept the
# characters install paths use and quote the path when it has a space.
if [[ ! $exec_path =~ ^[A-Za-z0-9._/+\ -]+$ ]]; then
    echo "unsupported characters in $exec_path: move the app to a plainer path" >&2
    exit 1
fi
exec_field=$exec_path
[[ $exec_path == *" "* ]] && exec_field="\"$exec_path\""

for png in "$icons"/hicolor/*/apps/"$APP".png; do
    size=$(basename "$(dirname "$(dirname "$png")")")
    install -D -m 644 "$png" "$hicolor/$size/apps/$APP.png"
done
install -D -m 644 "$icons/$APP.svg" "$hicolor/scalable/apps/$APP.svg"
mkdir -p "$applications"
sed -e "s|^Exec=.*|Exec=$exec_field|" "$here/$APP.desktop" >"$applications/$APP.desktop"
chmod 644 "$applications/$APP.desktop"
refresh_caches
echo "installed $applications/$APP.desktop (Exec=$exec_field) and icons in $hicolor"
