#!/usr/bin/env bash
# Regenerates the till's sound clips (see assets/README.md, "Sound clips").
# Needs espeak-ng and sox: apt-get install -y --no-install-recommends espeak-ng sox
# Every clip: mono, 22,050 Hz, 16-bit WAV, silence trimmed at both ends.
set -euo pipefail
cd "$(dirname "$0")"

# The pinyin voice: with the plain `cmn` voice espeak-ng 1.51 reads the pinyin of each
# character with English letter sounds.
VOICE=cmn-latn-pinyin
FORMAT=(-r 22050 -c 1 -b 16 -e signed-integer)
# `sox -D`: no dither, so the output is the same on every run.

# One spoken clip: $1 file name, $2 the Chinese text.
speak() {
    espeak-ng -v "$VOICE" -s 180 -a 120 -w "/tmp/qrtill-clip-$1" "$2"
    # Cut the silence before the first and after the last sound (above 0.5 % of full
    # scale), bring every clip to the same peak (-3 dBFS, so no clip is clipped and none
    # is much quieter), then leave 30 ms so clips played back to back do not run together.
    sox -D "/tmp/qrtill-clip-$1" "${FORMAT[@]}" "$1" \
        silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse gain -n -3 pad 0 0.03
    rm -f "/tmp/qrtill-clip-$1"
}

speak success.wav "收款成功"
digits=(零 一 二 三 四 五 六 七 八 九)
for d in 0 1 2 3 4 5 6 7 8 9; do
    speak "digit$d.wav" "${digits[$d]}"
done
speak ten.wav "十"
speak hundred.wav "百"
speak thousand.wav "千"
speak wan.wav "万"
speak point.wav "点"
speak yuan.wav "元"

# The chime: a two-tone "ding-dong" (E6 then C6), each a sine with a soft attack and a
# bell-like logarithmic decay; 0.42 s in all.
sox -D -n "${FORMAT[@]}" /tmp/qrtill-ding.wav synth 0.18 sine 1318.51 fade l 0.005 0.18 0.16 vol 0.6
sox -D -n "${FORMAT[@]}" /tmp/qrtill-dong.wav synth 0.24 sine 1046.50 fade l 0.005 0.24 0.22 vol 0.6
sox -D /tmp/qrtill-ding.wav /tmp/qrtill-dong.wav "${FORMAT[@]}" chime.wav
rm -f /tmp/qrtill-ding.wav /tmp/qrtill-dong.wav

ls -l ./*.wav
