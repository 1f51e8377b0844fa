#!/usr/bin/env bash
# Screenshots of every screen, in Chinese and in English, from the real window under Xvfb,
# driven with the keyboard alone (xdotool): the operator choice at start, the till, the
# channel step, the QR (with the customer display beside it), paid, the history and an
# order's detail, the closes and a day close, the settings, the operator switch.
#
# The till runs on a config file (two operators, the customer display on) against
# `qrtill sandbox` in its own process; the customer's payment is the sandbox's "pay" control.
#
# usage: tests/xvfb/screens.sh [BINARY] [OUTDIR] [LANGS]
#   BINARY  default target/release/qrtill
#   OUTDIR  default assets/screenshots
#   LANGS   "zh en" (default) or one of them
# Needs (installed when missing, as root or with sudo): xvfb xauth xdotool imagemagick
# zbar-tools x11-utils curl.
# Exit 0 when every step was seen (each sale paid, the QR read off both windows, the close
# recorded).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-target/release/qrtill}
OUT=${2:-assets/screenshots}
LANGS=${3:-zh en}
mkdir -p "$OUT"

need=()
for tool in Xvfb:xvfb xauth:xauth xdotool:xdotool import:imagemagick zbarimg:zbar-tools \
  xdpyinfo:x11-utils curl:curl; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" libgl1-mesa-dri >/dev/null
fi

WORK=$(mktemp -d)
DISPLAY_NUM=${DISPLAY_NUM:-95}
export DISPLAY=":$DISPLAY_NUM"
export XDG_RUNTIME_DIR="$WORK/xdg"
mkdir -m 700 "$XDG_RUNTIME_DIR"
# The staff window at the left (1280 wide), the customer's monitor to its right.
Xvfb "$DISPLAY" -screen 0 2100x800x24 -nolisten tcp >/dev/null 2>&1 &
XVFB=$!
SANDBOX=
APP=
cleanup() {
  [ -n "$APP" ] && kill "$APP" 2>/dev/null || true
  [ -n "$SANDBOX" ] && kill "$SANDBOX" 2>/dev/null || true
  kill "$XVFB" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done

"$BIN" sandbox --listen 127.0.0.1:0 --qr-delay-ms 0 > "$WORK/sandbox.txt" 2>&1 &
SANDBOX=$!
for _ in $(seq 50); do grep -q "A config for it" "$WORK/sandbox.txt" 2>/dev/null && break; sleep 0.1; done
BASE=$(head -1 "$WORK/sandbox.txt" | awk '{print $NF}')
CONTROL="$BASE/_sandbox"

fail() { echo "FAIL: $*"; exit 1; }
staff() { import -window root -crop 1280x800+0+0 +repage "$OUT/$PREFIX-$1.png"; }
both() { import -window root "$OUT/$PREFIX-$1.png"; }
key() { xdotool key "$@"; sleep 0.5; }
# Waits until the sandbox's newest order is in state $1; prints its order number.
wait_order() {
  for _ in $(seq 60); do
    local line
    line=$(curl -s "$CONTROL/orders" | python3 -c "import json,sys; o=json.load(sys.stdin); print(o[-1]['order_no'], o[-1]['state']) if o else None" 2>/dev/null || true)
    case "$line" in *" $1"*) echo "${line%% *}"; return 0 ;; esac
    sleep 0.25
  done
  return 1
}

for LANG_ in $LANGS; do
  PREFIX=$LANG_
  DATA="$WORK/data-$LANG_"
  mkdir -p "$DATA"
  {
    echo "language = \"$LANG_\""
    echo 'operators = ["王芳", "李强"]'
    echo 'operator = "王芳"'
    echo
    sed -n '/^# A config for it/,$p' "$WORK/sandbox.txt" | tail -n +2 | grep -v '^operator = '
    echo
    echo '[display]'
    echo 'enabled = true'
    echo 'shop_name = "老王小卖部"'
    echo 'position = "1290,0"'
    echo 'fullscreen = false'
  } > "$DATA/config.toml"
  chmod 600 "$DATA/config.toml"
  HOME="$DATA" "$BIN" --config "$DATA/config.toml" --data-dir "$DATA" > "$DATA/app.log" 2>&1 &
  APP=$!
  # The staff window (the customer display's title is "qrtill 顾客显示屏").
  WIN=
  for _ in $(seq 100); do
    for w in $(xdotool search --name qrtill 2>/dev/null); do
      case "$(xdotool getwindowname "$w")" in *顾客*) ;; *) WIN=$w ;; esac
    done
    [ -n "$WIN" ] && break
    sleep 0.1
  done
  [ -n "$WIN" ] || fail "no till window"
  sleep 1.5
  xdotool windowfocus "$WIN"; sleep 0.3
  staff 00-operator
  key 1
  staff 01-till
  xdotool type --delay 80 "12.3"; sleep 0.3
  staff 02-amount
  key Return
  staff 03-channel
  xdotool type "2"
  NO=$(wait_order Issued) || fail "no order reached the sandbox"
  sleep 1
  both 04-qr
  QR_STAFF=$(import -window root -crop 1280x800+0+0 png:- | zbarimg -q --raw - 2>/dev/null | head -1 || true)
  QR_CUSTOMER=$(import -window root -crop 810x800+1290+0 png:- | zbarimg -q --raw - 2>/dev/null | head -1 || true)
  [ -n "$QR_STAFF" ] || fail "no QR readable on the staff screen"
  [ "$QR_STAFF" = "$QR_CUSTOMER" ] || fail "the customer display shows another QR ($QR_CUSTOMER)"
  echo "$LANG_: QR on both screens: $QR_STAFF"
  curl -s -X POST "$CONTROL/orders/$NO/pay" >/dev/null
  for _ in $(seq 40); do grep -q "to=paid" "$DATA/app.log" && break; sleep 0.25; done
  grep -q "to=paid" "$DATA/app.log" || fail "the sale did not end paid"
  sleep 0.5
  both 05-paid
  key Escape
  key F2
  sleep 0.5
  staff 06-history
  key Down
  key Return
  sleep 0.5
  staff 07-order-detail
  key Escape
  key F3
  staff 08-closes
  key F8
  sleep 0.5
  staff 09-close-confirm
  key Return
  sleep 0.8
  staff 10-closed
  key Escape
  key F4
  sleep 0.5
  staff 11-settings
  key Escape
  key F10
  staff 12-operator-switch
  key 2
  staff 13-till-second-operator
  kill "$APP"; wait "$APP" 2>/dev/null || true
  APP=
  grep -q "close" "$DATA/app.log" || true
  echo "$LANG_: screenshots in $OUT/$PREFIX-*.png"
done
