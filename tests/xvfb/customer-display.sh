#!/usr/bin/env bash
# Real-window check of the customer display under Xvfb: a wide screen stands for two
# monitors side by side (staff 0..1100, customer 1100..2200). qrtill runs with a config
# whose [display] opens the customer window at 1100,0; a sale is made with the keyboard
# alone in the staff window (xdotool); the customer window's region of a whole-screen
# screenshot must hold the same QR as the staff window (zbarimg), then turn to "paid"
# (its green), then back to the shop's name; a second sale is typed with the customer window
# focused (its keys must reach the till); finally the idle CPU is measured with both windows
# open.
#
# The customer window is not full screen here: Xvfb has a single screen, and full screen
# would cover the staff window too. On a real desktop, `fullscreen = true` (the default)
# covers the monitor that holds `position`.
#
# usage: tests/xvfb/customer-display.sh [BINARY] [OUTDIR] [IDLE_SECONDS]
#   BINARY        default target/debug/qrtill
#   OUTDIR        where the screenshots go (default: a temp folder)
#   IDLE_SECONDS  how long to measure idle CPU (default 20)
# Needs: apt-get install -y --no-install-recommends xvfb xauth xdotool imagemagick zbar-tools
#        python3, curl
# Exit 0 when both windows showed the same QR, the customer window turned green when paid
# and back after, keys typed with the customer window focused made a sale and cancelled it,
# a window manager's close hid it and left the till running, and idle CPU stayed under 1 %
# of a core.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-target/debug/qrtill}
OUT=${2:-$(mktemp -d)}
IDLE=${3:-20}
mkdir -p "$OUT"
DATA=$(mktemp -d)
DISPLAY_NUM=${DISPLAY_NUM:-171}
export DISPLAY=":$DISPLAY_NUM"
export XDG_RUNTIME_DIR=$(mktemp -d)
chmod 700 "$XDG_RUNTIME_DIR"
# The customer window's region on the screen.
CX=1100 CY=0 CW=1024 CH=768

# Another X server on that display would get our windows: refuse rather than share it.
if xdpyinfo >/dev/null 2>&1; then
  echo "FAIL: display $DISPLAY is in use; set DISPLAY_NUM to a free one"; exit 1
fi
Xvfb "$DISPLAY" -screen 0 2200x800x24 -nolisten tcp >/dev/null 2>&1 &
XVFB=$!
APP=
SANDBOX=
cleanup() {
  [ -n "$APP" ] && kill "$APP" 2>/dev/null || true
  [ -n "$SANDBOX" ] && kill "$SANDBOX" 2>/dev/null || true
  kill "$XVFB" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT
for _ in $(seq 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done 2>/dev/null || sleep 1

# The provider simulators in their own process; their config, plus the customer display.
"$BIN" sandbox --listen 127.0.0.1:0 > "$OUT/sandbox.log" 2>&1 &
SANDBOX=$!
for _ in $(seq 100); do grep -q '^\[listener\]' "$OUT/sandbox.log" 2>/dev/null && sleep 0.2 && break; sleep 0.1; done
CONTROL=$(grep -o 'curl -X POST [^ ]*/orders/ORDER_NO/pay' "$OUT/sandbox.log" | head -1 |
  sed -e 's/^curl -X POST //' -e 's|/orders/ORDER_NO/pay$||')
[ -n "$CONTROL" ] || { echo "FAIL: the sandbox did not start"; cat "$OUT/sandbox.log"; exit 1; }
CONFIG="$DATA/config.toml"
sed -n '/^# qrtill config for the sandbox/,$p' "$OUT/sandbox.log" > "$CONFIG"
cat >> "$CONFIG" <<'EOF'

[display]
enabled = true
shop_name = "老王小卖部"
position = "1100,0"
fullscreen = false
EOF
chmod 600 "$CONFIG"

QRTILL_DATA_DIR="$DATA" HOME="$DATA" RUST_LOG=qrtill=info \
  "$BIN" --config "$CONFIG" > "$OUT/app.log" 2>&1 &
APP=$!
# Window titles are matched on their UTF-8 name (xdotool's --name sees only the ASCII one).
window() {
  for _ in $(seq 100); do
    for id in $(xdotool search --name qrtill 2>/dev/null || true); do
      [ "$(xdotool getwindowname "$id")" = "$1" ] && { echo "$id"; return 0; }
    done
    sleep 0.1
  done
  echo "FAIL: no window named $1" >&2
  return 1
}
STAFF=$(window "qrtill 收银台")
CUSTOMER=$(window "qrtill 顾客显示屏")
sleep 1
eval "$(xdotool getwindowgeometry --shell "$CUSTOMER")"
echo "customer window at $X,$Y size ${WIDTH}x$HEIGHT"
[ "$X" -ge 1100 ] || { echo "FAIL: the customer window is not at x >= 1100"; exit 1; }
shot() { import -window root "$OUT/$1.png"; }
customer() { convert "$OUT/$1.png" -crop "${CW}x${CH}+${CX}+${CY}" +repage "$OUT/$1-customer.png"; }
staff() { convert "$OUT/$1.png" -crop "1100x800+0+0" +repage "$OUT/$1-staff.png"; }
# The colour in the customer window's top-left area, away from any text.
tint() { convert "$OUT/$1-customer.png" -format '%[pixel:p{20,20}]' info:; }

shot 01-idle
customer 01-idle
echo "idle customer window colour: $(tint 01-idle)"

xdotool windowfocus "$STAFF"; sleep 0.2
xdotool type --delay 60 "12.3"
xdotool key Return; sleep 0.4
xdotool type "2"
# Wait until both windows show a readable QR.
QR_CUSTOMER= QR_STAFF=
for _ in $(seq 60); do
  sleep 0.25
  shot 02-qr
  customer 02-qr
  staff 02-qr
  QR_CUSTOMER=$(zbarimg -q --raw "$OUT/02-qr-customer.png" 2>/dev/null || true)
  QR_STAFF=$(zbarimg -q --raw "$OUT/02-qr-staff.png" 2>/dev/null || true)
  [ -n "$QR_CUSTOMER" ] && [ -n "$QR_STAFF" ] && break
done
echo "QR read off the customer window: ${QR_CUSTOMER:-<none>}"
echo "QR read off the staff window:    ${QR_STAFF:-<none>}"
[ -n "$QR_CUSTOMER" ] || { echo "FAIL: no QR on the customer window"; exit 1; }
[ "$QR_CUSTOMER" = "$QR_STAFF" ] || { echo "FAIL: the two windows show different QRs"; exit 1; }

# The customer pays (the sandbox's control API, as the provider would see it).
ORDER=$(curl -s "$CONTROL/orders" | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["order_no"])')
echo "order: $ORDER"
curl -s -X POST "$CONTROL/orders/$ORDER/pay" > /dev/null
PAID=no
for _ in $(seq 60); do
  sleep 0.25
  grep -q "to=paid" "$OUT/app.log" && { PAID=yes; break; }
done
sleep 0.5
shot 03-paid
customer 03-paid
echo "paid: $PAID; paid customer window colour: $(tint 03-paid)"
[ "$PAID" = yes ] || { echo "FAIL: the sale did not end paid"; exit 1; }
case "$(tint 03-paid)" in
  srgb\(10,143,60\)*) ;;
  *) echo "FAIL: the customer window did not turn green when paid"; exit 1 ;;
esac
# Back to the shop's name when the till returns by itself (5 s).
sleep 6
shot 04-back-to-idle
customer 04-back-to-idle
[ "$(tint 04-back-to-idle)" = "$(tint 01-idle)" ] || { echo "FAIL: not back to idle"; exit 1; }
# Keys typed while the customer window has the focus still make a sale (and cancel it).
xdotool mousemove $((CX + 300)) $((CY + 300)) click 1
xdotool windowfocus "$CUSTOMER"; sleep 0.3
xdotool type --delay 60 "5"
xdotool key Return; sleep 0.4
xdotool type "1"
SECOND=
for _ in $(seq 40); do
  sleep 0.25
  SECOND=$(curl -s "$CONTROL/orders" | python3 -c 'import json,sys; o=json.load(sys.stdin); print(o[-1]["amount"] if len(o) > 1 else "")')
  [ -n "$SECOND" ] && break
done
sleep 1
shot 05-sale-typed-into-customer-window
xdotool key Escape
echo "sale typed with the customer window focused: ${SECOND:-<none>}"
[ "$SECOND" = "5.00" ] || { echo "FAIL: keys typed into the customer window were lost"; exit 1; }
for _ in $(seq 40); do
  sleep 0.25
  grep -q "to=cancelled" "$OUT/app.log" && break
done
grep -q "to=cancelled" "$OUT/app.log" || { echo "FAIL: Esc in the customer window did not cancel"; exit 1; }
sleep 3

ticks() { awk '{print $14 + $15}' "/proc/$APP/stat"; }
HZ=$(getconf CLK_TCK)
T0=$(ticks); sleep "$IDLE"; T1=$(ticks)
CPU=$(python3 -c "print(round(($T1 - $T0) / $HZ / $IDLE * 100, 3))")
echo "idle CPU over ${IDLE}s with both windows: ${CPU}% of one core"
python3 -c "import sys; sys.exit(0 if $CPU < 1.0 else 1)" || { echo "FAIL: idle CPU too high"; exit 1; }

# Closing the customer window as a window manager asks (WM_DELETE_WINDOW) hides it; the
# till goes on.
python3 - "$CUSTOMER" <<'PY'
import ctypes, sys
x11 = ctypes.cdll.LoadLibrary("libX11.so.6")
x11.XOpenDisplay.restype = ctypes.c_void_p
x11.XInternAtom.restype = ctypes.c_ulong
x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
x11.XFlush.argtypes = [ctypes.c_void_p]
class ClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong),
                ("message_type", ctypes.c_ulong), ("format", ctypes.c_int),
                ("data", ctypes.c_long * 5), ("rest", ctypes.c_char * 96)]
display = x11.XOpenDisplay(None)
event = ClientMessage(type=33, window=int(sys.argv[1]), format=32,
                      message_type=x11.XInternAtom(display, b"WM_PROTOCOLS", 0))
event.data[0] = x11.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
x11.XSendEvent(display, int(sys.argv[1]), 0, 0, ctypes.byref(event))
x11.XFlush(display)
PY
GONE=no
for _ in $(seq 40); do
  sleep 0.25
  xdotool getwindowname "$CUSTOMER" >/dev/null 2>&1 || { GONE=yes; break; }
done
echo "customer window closed by the window manager's request: $GONE"
[ "$GONE" = yes ] || { echo "FAIL: the customer window did not close"; exit 1; }
kill -0 "$APP" 2>/dev/null || { echo "FAIL: the till stopped with it"; exit 1; }
xdotool getwindowname "$STAFF" >/dev/null || { echo "FAIL: the staff window is gone"; exit 1; }
sleep 1
shot 06-customer-closed

echo "screenshots in $OUT"
