#!/usr/bin/env bash
# Real-window check of the history screen with a busy day: fills a demo ledger with ORDERS
# orders on yesterday's business day (examples/busy_day.rs), opens qrtill under Xvfb, goes
# to the history (F2, then ← to yesterday), and scrolls the day's table: about 1,000 rows
# with the mouse wheel, then 400 rows one by one with ↓ held. The till's frame log (QRTILL_FRAME_LOG)
# gives every frame's time; the script prints the frames drawn while scrolling, their
# median / p99 / worst time and the frames per second, and screenshots the table.
#
# usage: tests/xvfb/history-scroll.sh [BINARY] [SEEDER] [OUTDIR] [ORDERS]
#   BINARY  default target/release/qrtill
#   SEEDER  default target/release/examples/busy_day
#           (cargo build --release --bin qrtill --example busy_day)
#   OUTDIR  screenshots and frame log (default: a temp folder)
#   ORDERS  default 20000
# Needs: apt-get install -y --no-install-recommends xvfb xauth xdotool imagemagick
# Exit 0 when the p99 frame time while scrolling is under 16.7 ms (60 frames a second).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-target/release/qrtill}
SEEDER=${2:-target/release/examples/busy_day}
OUT=${3:-$(mktemp -d)}
ORDERS=${4:-20000}
mkdir -p "$OUT"
DATA=$(mktemp -d)
DISPLAY_NUM=${DISPLAY_NUM:-96}
export DISPLAY=":$DISPLAY_NUM"
export XDG_RUNTIME_DIR=$(mktemp -d)
chmod 700 "$XDG_RUNTIME_DIR"

"$SEEDER" "$DATA/ledger-demo.sqlite3" "$ORDERS" 1

Xvfb "$DISPLAY" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
XVFB=$!
APP=
cleanup() {
  [ -n "$APP" ] && kill "$APP" 2>/dev/null || true
  kill "$XVFB" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT
for _ in $(seq 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done 2>/dev/null || sleep 1

FRAMES="$OUT/frames.csv"
env -u QRTILL_CONFIG QRTILL_DATA_DIR="$DATA" HOME="$DATA" QRTILL_FRAME_LOG="$FRAMES" \
  "$BIN" > "$OUT/app.log" 2>&1 &
APP=$!
WIN=$(xdotool search --sync --name qrtill | head -1)
sleep 1
xdotool windowfocus "$WIN"; sleep 0.2
xdotool key F2; sleep 0.5
xdotool key Left; sleep 1.5
import -window root "$OUT/history-top.png"
# Let the X server finish the screenshot before measuring (it stalls the window's buffer swap).
sleep 1

# Mouse wheel over the table: 300 notches, 20 ms apart (a fast flick, repeated).
eval "$(xdotool getwindowgeometry --shell "$WIN")"
xdotool mousemove --window "$WIN" 300 300
mark() { wc -l < "$FRAMES"; }
W0=$(mark)
xdotool click --repeat 300 --delay 20 5
sleep 0.5
W1=$(mark)
import -window root "$OUT/history-wheel.png"
sleep 1
# ↓ held: 400 rows at the keyboard's repeat rate (about 30 a second).
xdotool key --repeat 400 --delay 33 Down
sleep 0.5
W2=$(mark)
sleep 0.5
import -window root "$OUT/history-keys.png"

python3 - "$FRAMES" "$W0" "$W1" "$W2" "$ORDERS" <<'PY'
import sys
path, w0, w1, w2, orders = sys.argv[1], *map(int, sys.argv[2:])
rows = [l.strip().split(",") for l in open(path)]
fail = False
def report(name, part):
    global fail
    part = [r for r in part if r[1]]
    cpu = sorted(float(r[1]) for r in part)
    wall = [float(r[0]) for r in part]
    if len(cpu) < 10:
        print(f"{name}: only {len(cpu)} frames"); fail = True; return
    med = cpu[len(cpu) // 2]
    p99 = cpu[min(len(cpu) - 1, int(len(cpu) * 0.99))]
    secs = (wall[-1] - wall[0]) / 1000
    print(f"{name}: {len(cpu)} frames in {secs:.1f} s ({len(cpu)/secs:.0f}/s); "
          f"frame time median {med:.2f} ms, p99 {p99:.2f} ms, worst {cpu[-1]:.2f} ms "
          f"(60 fps budget 16.7 ms)")
    fail |= p99 > 16.7
print(f"history of {orders} orders in one day")
report("mouse wheel", rows[w0:w1])
report("arrow keys", rows[w1:w2])
sys.exit(1 if fail else 0)
PY
echo "screenshots and frames.csv in $OUT"
