#!/usr/bin/env python3
"""Write the character list used to subset NotoSansSC-GB2312.otf.

Usage: python3 make_charset.py OUT_PATH
Contents: every GB2312 character (rows 0xA1-0xF7, cells 0xA1-0xFE, undecodable
pairs skipped), printable ASCII, Latin-1 U+00A0-U+00FF, full-width forms
U+FF01-U+FF5E, and a few extra CJK punctuation/currency symbols.
"""
import sys

chars = set()
for hi in range(0xA1, 0xF8):
    for lo in range(0xA1, 0xFF):
        try:
            chars.update(bytes([hi, lo]).decode("gb2312"))
        except UnicodeDecodeError:
            pass
chars.update(chr(c) for c in range(0x20, 0x7F))     # printable ASCII
chars.update(chr(c) for c in range(0xA0, 0x100))    # Latin-1 supplement
chars.update(chr(c) for c in range(0xFF01, 0xFF5F)) # full-width ASCII forms
chars.update("¥￥，。！？、；：“”‘’（）【】《》…—·「」『』〈〉～－＋×÷℃°№\u3000")

with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write("".join(sorted(chars)))
print(f"{len(chars)} characters written to {sys.argv[1]}")
