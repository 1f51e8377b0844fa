#!/usr/bin/env bash
# Measured speed of the real window (release build, glow renderer, Xvfb + Mesa llvmpipe, demo
# mode: no config, so the till runs against its built-in sandbox on loopback). Each run:
#
# 1. A bare eframe window (examples/bare_window.rs: same renderer, window size and fonts, an
#    empty panel): start -> first frame and resident memory. It is the baseline that keeps
#    the software renderer's own cost under Xvfb from being counted against the till. Then
#    the same window redrawn once a second (--repaint-every-ms 1000), as the QR screen's
#    countdown does: the idle CPU the renderer alone costs at that rate.
# 2. qrtill: start -> first frame, resident memory, then CPU while idle on the till screen,
#    then a sale up to the QR (type 12.30, Enter, channel 1) and CPU while idle on the QR
#    screen, whose countdown repaints once a second. The QR is read back off the screen
#    (zbarimg) before and after the window, so the figure is the QR screen's.
# 3. The comparison (when Chromium is there): `qrtill sandbox` plays ispay.in, an order is
#    created on its gateway, and its hosted pay page /ispay/transfer/{id} (amount, QR, countdown,
#    status polling every 5 s) is opened in headless Chromium: start -> first paint and the
#    resident memory of all its processes.
#
# How each figure is taken:
# - Start: the launching subshell reads bash's $EPOCHREALTIME (wall clock, µs, no extra
#   process) just before it execs the program. That is more accurate than the process's own
#   start time in /proc/PID/stat (starttime counts clock ticks, 10 ms, since a boot time that
#   /proc/stat gives in whole seconds). The exec itself (loading the binary) is counted.
# - First frame: QRTILL_FIRST_FRAME=FILE makes the till and the bare window write the wall
#   clock in µs at the start of their second frame, i.e. once eframe has painted and swapped
#   the first one (src/frames.rs); egui draws its first frames back to back.
# - First paint (Chromium): the page, opened with #timing, logs its Paint Timing entries
#   (performance.timeOrigin + startTime, wall clock ms) to the console, which
#   --enable-logging=stderr prints; first-paint is compared with the till's first frame.
# - Memory: VmRSS from /proc/PID/status 3 s after the first frame (Chromium: the sum over the
#   browser and all its descendants, 3 s after the first paint). qrtill's own share = qrtill's
#   RSS - the bare window's RSS in the same run. /usr/bin/time gives each program's peak RSS.
#   Summed RSS counts pages shared between Chromium's processes once per process, so the
#   proportional set size (Pss in /proc/PID/smaps_rollup) is compared as well.
# - Idle CPU: utime + stime of the process (all threads) from /proc/PID/stat over the window,
#   as % of one core; the frame log (QRTILL_FRAME_LOG) counts the frames drawn in it.
#
# usage: tests/xvfb/bench.sh [--runs N] [--short] [--out FILE] [--idle SECONDS]
#                            [--bin BINARY] [--bare BINARY] [--keep DIR]
#   --runs N    runs (default 5; --short: 3)
#   --short     CI mode: 3 runs, 10 s idle windows, Chromium only if already installed
#   --out FILE  also write the table (markdown) to FILE
#   --idle S    idle window in seconds (default 60; --short: 10)
#   --bin       default target/release/qrtill; --bare default target/release/examples/bare_window
#               (cargo build --release --bin qrtill --example bare_window)
#   --keep DIR  keep logs and screenshots in DIR (default: a temp folder, removed)
# Installs what it needs when missing (apt-get; sudo when not root): xvfb xauth xdotool
# imagemagick zbar-tools libgl1-mesa-dri time procps curl, and chromium unless --short.
# Exit 1 when the median of any figure with a target is more than 2x its target (named).
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=
SHORT=no
OUT_FILE=
IDLE=
BIN=target/release/qrtill
BARE=target/release/examples/bare_window
KEEP=
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --short) SHORT=yes; shift ;;
    --out) OUT_FILE=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --bare) BARE=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$SHORT" = yes ]; then RUNS=${RUNS:-3}; IDLE=${IDLE:-10}; else RUNS=${RUNS:-5}; IDLE=${IDLE:-60}; fi
case "$RUNS$IDLE" in *[!0-9]*) echo "bench.sh: --runs and --idle take whole numbers" >&2; exit 2 ;; esac
for exe in "$BIN" "$BARE"; do
  [ -x "$exe" ] || { echo "bench.sh: $exe missing: cargo build --release --bin qrtill --example bare_window" >&2; exit 2; }
done

# --- what the script needs -------------------------------------------------------------------
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
MISSING=()
need() { command -v "$1" >/dev/null 2>&1 || MISSING+=("$2"); }
need Xvfb xvfb; need xauth xauth; need xdotool xdotool; need import imagemagick
need zbarimg zbar-tools; need python3 python3; need ps procps; need curl curl
[ -x /usr/bin/time ] || MISSING+=(time)
dpkg -s libgl1-mesa-dri >/dev/null 2>&1 || MISSING+=(libgl1-mesa-dri)
CHROMIUM=$(command -v chromium || true)
[ -n "$CHROMIUM" ] || [ "$SHORT" = yes ] || MISSING+=(chromium)
if [ ${#MISSING[@]} -gt 0 ]; then
  echo "installing ${MISSING[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${MISSING[@]}" >/dev/null
fi
CHROMIUM=$(command -v chromium || true)

WORK=${KEEP:-$(mktemp -d)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
DISPLAY_NUM=${DISPLAY_NUM:-95}
export DISPLAY=":$DISPLAY_NUM"
export XDG_RUNTIME_DIR=$(mktemp -d)
chmod 700 "$XDG_RUNTIME_DIR"
RESULTS="$WORK/results.tsv"
: > "$RESULTS"

# Every process started here, killed (with its descendants) on the way out.
PIDS=()
descendants() { # PID -> PID and all its descendants, from the processes' parent links
  ps -e -o pid= -o ppid= | awk -v root="$1" '
    { parent[$1] = $2 }
    END {
      print root; found[root] = 1
      do { more = 0; for (p in parent) if (!(p in found) && (parent[p] in found)) { found[p] = 1; print p; more = 1 } } while (more)
    }' | tr '\n' ' '
}
stop() { # PID...: TERM the trees, then KILL what is left
  local tree=()
  for pid in "$@"; do [ -n "$pid" ] && tree+=($(descendants "$pid")); done
  [ ${#tree[@]} -gt 0 ] || return 0
  kill "${tree[@]}" 2>/dev/null || true
  for _ in $(seq 30); do
    kill -0 "${tree[@]}" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "${tree[@]}" 2>/dev/null || true
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
cleanup() {
  stop "${PIDS[@]}"
  rm -rf "$XDG_RUNTIME_DIR"
  [ -n "$KEEP" ] || rm -rf "$WORK"
}
trap cleanup EXIT

Xvfb "$DISPLAY" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done 2>/dev/null || sleep 1

record() { printf '%s\t%s\t%s\n' "$RUN" "$1" "$2" >> "$RESULTS"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# Proportional set size: shared pages divided among the processes that map them.
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# The program's PID under /usr/bin/time (its only child).
child_of() {
  for _ in $(seq 100); do
    local c
    c=$(ps -o pid= --ppid "$1" | awk 'NR == 1 {print $1}')
    [ -n "$c" ] && { echo "$c"; return; }
    sleep 0.01
  done
  echo "bench.sh: $1 started no program" >&2; return 1
}
wait_file() { # FILE SECONDS
  for _ in $(seq $(($2 * 20))); do [ -s "$1" ] && return 0; sleep 0.05; done
  return 1
}

# Starts a window program: "$@" under /usr/bin/time with QRTILL_FIRST_FRAME; sets APP (the
# program's PID), TIMER (time's PID) and records NAME_start_ms and NAME_rss_kb.
launch() { # NAME DIR command...
  local name=$1 dir=$2; shift 2
  mkdir -p "$dir"
  (
    echo "${EPOCHREALTIME/./}" > "$dir/launch_us"
    exec env QRTILL_FIRST_FRAME="$dir/first_frame_us" /usr/bin/time -f '%M' -o "$dir/peak_kb" "$@"
  ) > "$dir/out.log" 2>&1 &
  TIMER=$!
  PIDS+=($TIMER)
  APP=$(child_of "$TIMER")
  wait_file "$dir/first_frame_us" 30 || { echo "FAIL: $name drew no frame; log:"; tail -20 "$dir/out.log"; exit 1; }
  record "${name}_start_ms" "$(( ($(cat "$dir/first_frame_us") - $(cat "$dir/launch_us")) ))e-3"
  sleep 3
  record "${name}_rss_kb" "$(rss_kb "$APP")"
  record "${name}_pss_kb" "$(pss_kb "$APP")"
}
finish() { # NAME DIR: stop the program, record its peak RSS
  stop "$TIMER"
  [ -s "$2/peak_kb" ] && record "$1_peak_kb" "$(tail -1 "$2/peak_kb")"
  return 0
}
idle_cpu() { # NAME FRAME_LOG: CPU % of one core and frames/s over the idle window
  local f0 f1 t0 t1
  f0=$(wc -l < "$2"); t0=$(ticks "$APP")
  sleep "$IDLE"
  t1=$(ticks "$APP"); f1=$(wc -l < "$2")
  record "$1_cpu_pct" "$(python3 -c "print(($t1 - $t0) / $HZ / $IDLE * 100)")"
  record "$1_fps" "$(python3 -c "print(($f1 - $f0) / $IDLE)")"
}
qr_on_screen() { # SHOT: the QR's text, read off a screenshot
  import -window root "$1"
  zbarimg -q --raw "$1" 2>/dev/null || true
}

# The first client of a fresh X server pays for its keymap and more: one untimed start.
RUN=0
launch warmup "$WORK/warmup" "$BARE"
finish warmup "$WORK/warmup"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

for RUN in $(seq "$RUNS"); do
  echo "run $RUN of $RUNS"
  R="$WORK/run$RUN"

  # 1. The bare eframe window; then, redrawing once a second like the QR screen's countdown,
  #    what that costs the renderer alone.
  launch bare "$R/bare" "$BARE"
  finish bare "$R/bare"
  launch bare1fps "$R/bare1fps" env QRTILL_FRAME_LOG="$R/bare1fps/frames.csv" "$BARE" --repaint-every-ms 1000
  idle_cpu bare1fps "$R/bare1fps/frames.csv"
  finish bare1fps "$R/bare1fps"

  # 2. The till, demo mode, a fresh data folder.
  DATA="$R/qrtill/data"
  mkdir -p "$DATA"
  FRAMES="$R/qrtill/frames.csv"
  launch qrtill "$R/qrtill" env -u QRTILL_CONFIG QRTILL_DATA_DIR="$DATA" HOME="$DATA" \
    QRTILL_FRAME_LOG="$FRAMES" "$BIN"
  WIN=$(xdotool search --sync --name qrtill | head -1)
  idle_cpu till "$FRAMES"
  # No window manager: the window gets the keyboard only when told to.
  xdotool windowfocus "$WIN"; sleep 0.2
  xdotool type --delay 60 "12.3"
  xdotool key Return; sleep 0.4
  xdotool type "1"
  QR=
  for _ in $(seq 40); do
    sleep 0.25
    QR=$(qr_on_screen "$R/qrtill/qr-before.png")
    [ -n "$QR" ] && break
  done
  [ -n "$QR" ] || { echo "FAIL: no QR on the till's screen"; exit 1; }
  # A screenshot stalls the window's next buffer swap: let it settle before measuring.
  sleep 1
  idle_cpu qr "$FRAMES"
  [ "$(qr_on_screen "$R/qrtill/qr-after.png")" = "$QR" ] || { echo "FAIL: the QR screen did not stay up through the window"; exit 1; }
  finish qrtill "$R/qrtill"

  # 3. The provider's hosted pay page in headless Chromium.
  if [ -n "$CHROMIUM" ]; then
    C="$R/chromium"
    mkdir -p "$C"
    env -u QRTILL_CONFIG QRTILL_DATA_DIR="$C" HOME="$C" "$BIN" sandbox --listen 127.0.0.1:0 > "$C/sandbox.log" 2>&1 &
    SANDBOX=$!
    PIDS+=($SANDBOX)
    BASE=
    for _ in $(seq 100); do
      BASE=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$C/sandbox.log" | head -1)
      [ -n "$BASE" ] && break
      sleep 0.05
    done
    [ -n "$BASE" ] || { echo "FAIL: qrtill sandbox did not start"; cat "$C/sandbox.log"; exit 1; }
    BASE=${BASE%/}
    # An ispay.in order, signed as its gateway wants: md5(userid order_no order_type amount
    # return_url key), the sandbox's demo merchant.
    NO="BENCH$RUN$$"
    RET="http://127.0.0.1:9/return"
    SIGN=$(printf '%s' "10001${NO}P90112.30${RET}qrtill-sandbox-ispay-key" | md5sum | cut -d' ' -f1)
    ID=$(curl -sS --max-time 10 "$BASE/ispay/gateway" \
      --data-urlencode userid=10001 --data-urlencode "order_no=$NO" \
      --data-urlencode order_type=P901 --data-urlencode amount=12.30 \
      --data-urlencode notify_url=http://127.0.0.1:9/notify --data-urlencode "return_url=$RET" \
      --data-urlencode ip=127.0.0.1 --data-urlencode "sign=$SIGN" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["order_id"])')
    sleep 0.5 # the QR is issued 0.3 s after the order
    (
      echo "${EPOCHREALTIME/./}" > "$C/launch_us"
      exec "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$C/profile" --enable-logging=stderr --v=0 \
        "$BASE/ispay/transfer/$ID#timing"
    ) > "$C/out.log" 2> "$C/err.log" &
    BROWSER=$!
    PIDS+=($BROWSER)
    PAINT=
    for _ in $(seq 600); do
      PAINT=$(sed -n 's/.*"qrtill-paint first-paint \([0-9.]*\) .*/\1/p' "$C/err.log" | head -1)
      [ -n "$PAINT" ] && break
      sleep 0.05
    done
    [ -n "$PAINT" ] || { echo "FAIL: no first paint from Chromium"; tail -20 "$C/err.log"; exit 1; }
    FCP=$(sed -n 's/.*"qrtill-paint first-contentful-paint \([0-9.]*\) .*/\1/p' "$C/err.log" | head -1)
    record chromium_start_ms "$(python3 -c "print($PAINT - $(cat "$C/launch_us") / 1000)")"
    [ -n "$FCP" ] && record chromium_fcp_ms "$(python3 -c "print($FCP - $(cat "$C/launch_us") / 1000)")"
    sleep 3
    TOTAL=0
    PSS=0
    for pid in $(descendants "$BROWSER"); do
      kb=$(rss_kb "$pid" 2>/dev/null || true)
      TOTAL=$((TOTAL + ${kb:-0}))
      kb=$(pss_kb "$pid" 2>/dev/null || true)
      PSS=$((PSS + ${kb:-0}))
    done
    record chromium_rss_kb "$TOTAL"
    record chromium_pss_kb "$PSS"
    record chromium_procs "$(descendants "$BROWSER" | wc -w)"
    stop "$BROWSER" "$SANDBOX"
  fi
done

# --- the table -------------------------------------------------------------------------------
echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
TABLE="$WORK/table.md"
STATUS=0
python3 - "$RESULTS" "$RUNS" "$IDLE" "$TABLE" <<'PY' || STATUS=$?
import statistics, sys
from collections import defaultdict
path, runs, idle, table = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
by_run = defaultdict(dict)
for line in open(path):
    run, name, value = line.rstrip("\n").split("\t")
    if int(run) > 0:
        by_run[int(run)][name] = float(value)
def series(f):
    out = []
    for r in sorted(by_run):
        try:
            out.append(f(by_run[r]))
        except KeyError:
            pass
    return out
MB = 1024.0
rows, failures = [], []
# (label, target text, target value or None, per-run function, unit, worst is max or min)
specs = [
    (f"CPU idle on the till screen ({idle} s)", "≤ 0.5 % of one core", 0.5, lambda r: r["till_cpu_pct"], "%", max, 2),
    (f"CPU idle on the QR screen, countdown running ({idle} s)", "≤ 0.5 % of one core", 0.5, lambda r: r["qr_cpu_pct"], "%", max, 2),
    (f"CPU of the bare eframe window redrawn once a second ({idle} s): the renderer alone", "", None, lambda r: r["bare1fps_cpu_pct"], "%", max, 2),
    ("frames drawn per second, till screen idle", "", None, lambda r: r["till_fps"], "/s", max, 2),
    ("frames drawn per second, QR screen", "", None, lambda r: r["qr_fps"], "/s", max, 2),
    ("start → first frame, qrtill", "≤ 150 ms", 150, lambda r: r["qrtill_start_ms"], "ms", max, 0),
    ("start → first frame, bare eframe window", "", None, lambda r: r["bare_start_ms"], "ms", max, 0),
    ("start → first frame, qrtill ÷ bare window", "≤ 1.5 ×", 1.5, lambda r: r["qrtill_start_ms"] / r["bare_start_ms"], "×", max, 2),
    ("resident memory 3 s after the first frame, qrtill", "", None, lambda r: r["qrtill_rss_kb"] / MB, "MB", max, 1),
    ("resident memory, bare eframe window", "", None, lambda r: r["bare_rss_kb"] / MB, "MB", max, 1),
    ("resident memory, qrtill's own share (qrtill − bare)", "≤ 30 MB", 30, lambda r: (r["qrtill_rss_kb"] - r["bare_rss_kb"]) / MB, "MB", max, 1),
    ("peak resident memory over the run (/usr/bin/time), qrtill", "", None, lambda r: r["qrtill_peak_kb"] / MB, "MB", max, 1),
    ("Chromium, hosted pay page: start → first paint", "", None, lambda r: r["chromium_start_ms"], "ms", max, 0),
    ("Chromium, hosted pay page: resident memory, all processes", "", None, lambda r: r["chromium_rss_kb"] / MB, "MB", max, 1),
    ("Chromium, hosted pay page: proportional memory (PSS), all processes", "", None, lambda r: r["chromium_pss_kb"] / MB, "MB", max, 1),
    ("Chromium ÷ qrtill, start → first paint / first frame", "", None, lambda r: r["chromium_start_ms"] / r["qrtill_start_ms"], "×", min, 1),
    ("Chromium ÷ qrtill, resident memory (whole qrtill)", "", None, lambda r: r["chromium_rss_kb"] / r["qrtill_rss_kb"], "×", min, 1),
    ("Chromium ÷ qrtill, resident memory (qrtill's own share)", "", None, lambda r: r["chromium_rss_kb"] / (r["qrtill_rss_kb"] - r["bare_rss_kb"]), "×", min, 1),
    ("Chromium ÷ qrtill, proportional memory (PSS)", "", None, lambda r: r["chromium_pss_kb"] / r["qrtill_pss_kb"], "×", min, 1),
]
def fmt(v, unit, digits):
    text = f"{v:.{digits}f}"
    return f"{text} {unit}" if unit not in ("%", "×", "/s") else f"{text}{' ' if unit == '×' else ''}{unit}"
lines = ["| figure | target | median | worst | runs |", "|---|---|---|---|---|"]
for label, target_text, target, f, unit, worst_of, digits in specs:
    values = series(f)
    if not values:
        continue
    med = statistics.median(values)
    worst = worst_of(values)
    verdict = ""
    if target is not None:
        verdict = " ✓" if med <= target else (" ✗" if med > 2 * target else " (missed)")
        if med > 2 * target:
            failures.append(f"{label}: median {fmt(med, unit, digits)}, more than 2 × the target ({target_text})")
    lines.append(f"| {label} | {target_text} | {fmt(med, unit, digits)}{verdict} | {fmt(worst, unit, digits)} | {len(values)} |")
text = "\n".join(lines) + "\n"
open(table, "w").write(text)
print(text)
print("worst = the highest value over the runs (for the Chromium ÷ qrtill ratios: the lowest).")
for failure in failures:
    print("FAIL:", failure)
sys.exit(1 if failures else 0)
PY
[ -z "$OUT_FILE" ] || cp "$TABLE" "$OUT_FILE"
exit $STATUS
