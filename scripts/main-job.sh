#!/usr/bin/env bash
# The main job: start the berth daemon on its defaults (data root /var/lib/berth, SQLite at
# /var/lib/berth/berth.db, socket /var/lib/berth/berth.sock) and run a real busybox container
# through it with the berth CLI, then show what the journal says about it. Run as root.
set -euo pipefail
export BERTH_ROOT="${BERTH_ROOT:-/var/lib/berth}"
rootfs="$(mktemp -d)/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/proc" "$rootfs/dev" "$rootfs/sys" "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$rootfs/etc/passwd"

berth daemon > "${TMPDIR:-/tmp}/berth-daemon.log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$BERTH_ROOT/berth.sock" ] && break; sleep 0.1; done

berth version
berth import "$rootfs" busybox:latest
berth rm -f hello >/dev/null 2>&1 || true
echo "--- berth run --name hello busybox ..."
status=0
berth run --name hello busybox sh -c 'echo "hello from a berth container: $(hostname), pid $$"; exit 7' || status=$?
echo "--- exit status: $status (the container's own)"
berth ps -a
echo "--- berth history hello"
berth history hello
berth rm hello
echo "--- the same history, from plain SQL (read-only)"
sqlite3 -readonly -box "$BERTH_ROOT/berth.db" \
  "SELECT seq, event, to_state, outcome, actor, at FROM container_history
   WHERE container_id = (SELECT id FROM containers WHERE name = 'hello'
                         ORDER BY created_at DESC LIMIT 1)
     AND event NOT LIKE '%.step' ORDER BY seq"
