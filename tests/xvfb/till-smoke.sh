#!/usr/bin/env bash
# Real-window check of the till under Xvfb: opens qrtill in demo mode, makes a sale with the
# keyboard alone (xdotool), reads the QR off a screenshot (zbarimg), waits for the paid
# screen, then measures the CPU the idle till uses.
#
# usage: tests/xvfb/till-smoke.sh [BINARY] [OUTDIR] [IDLE_SECONDS]
#   BINARY        default target/debug/qrtill
#   OUTDIR        where the screenshots go (default: a temp folder)
#   IDLE_SECONDS  how long to measure idle CPU (default 30)
# Needs: apt-get install -y --no-install-recommends xvfb xauth xdotool imagemagick zbar-tools
# Exit 0 when the sale ended paid, the QR decoded and idle CPU was under 1 % of a core.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-target/debug/qrtill}
OUT=${2:-$(mktemp -d)}
IDLE=${3:-30}
mkdir -p "$OUT"
DATA=$(mktemp -d)
DISPLAY_NUM=${DISPLAY_NUM:-97}
export DISPLAY=":$DISPLAY_NUM"
export XDG_RUNTIME_DIR=$(mktemp -d)
chmod 700 "$XDG_RUNTIME_DIR"

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

# No config file: demo mode against the built-in sandbox.
env -u QRTILL_CONFIG QRTILL_DATA_DIR="$DATA" \
  HOME="$DATA" "$BIN" > "$OUT/app.log" 2>&1 &
APP=$!
WIN=$(xdotool search --sync --name qrtill | head -1)
sleep 1
shot() { import -window root "$OUT/$1.png"; }
shot 01-till
xdotool windowfocus "$WIN"; sleep 0.2
xdotool type --delay 60 "12.3"
xdotool key Return; sleep 0.4
shot 02-pick-channel
xdotool type "2"
# Wait for the QR to be drawn and readable.
QR=
for _ in $(seq 40); do
  sleep 0.25
  shot 03-qr
  QR=$(zbarimg -q --raw "$OUT/03-qr.png" 2>/dev/null || true)
  [ -n "$QR" ] && break
done
echo "QR read off the screen: ${QR:-<none>}"
[ -n "$QR" ] || { echo "FAIL: no QR on screen"; exit 1; }
xdotool key F9
PAID=no
for _ in $(seq 40); do
  sleep 0.25
  grep -q "to=paid" "$OUT/app.log" && { PAID=yes; break; }
done
shot 04-paid
echo "paid: $PAID"
[ "$PAID" = yes ] || { echo "FAIL: sale did not end paid"; exit 1; }
# The paid screen returns to the till by itself after 5 s.
sleep 6
shot 05-back-to-till

ticks() { awk '{print $14 + $15}' "/proc/$APP/stat"; }
HZ=$(getconf CLK_TCK)
T0=$(ticks); sleep "$IDLE"; T1=$(ticks)
CPU=$(python3 -c "print(round(($T1 - $T0) / $HZ / $IDLE * 100, 3))")
echo "idle CPU over ${IDLE}s: ${CPU}% of one core"
python3 -c "import sys; sys.exit(0 if $CPU < 1.0 else 1)" || { echo "FAIL: idle CPU too high"; exit 1; }
echo "screenshots in $OUT"
