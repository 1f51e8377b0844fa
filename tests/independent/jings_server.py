#!/usr/bin/env python3
"""Independent reference implementation (test double) of the sun.jings.wang (阳光支付)
v1 payment-provider HTTP protocol.

Written only from the protocol documents:
  * the original Chinese API doc (seed 004), and
  * PROVIDERS.md section "5. sun.jings.wang", subsection 5a (v1, Sep 2018).
It deliberately shares no code with the client under test.  Its job is to check that a
client speaks the protocol *exactly*, so it is strict and records everything.

Usage:
    python3 jings_server.py --uid 10000001400000 --token SOMETOKEN [--port 0]
                            [--requests-log FILE] [--paytype 11]
                            [--query-interval 60] [--balance-interval 180]
                            [--order-timeout 0] [--notify-retries 0]
                            [--notify-retry-interval 60]
                            [--beijing-now "YYYY-MM-DD HH:MM:SS"]

Binds 127.0.0.1:PORT (0 = random) and prints exactly one line
    LISTENING http://127.0.0.1:PORT
to stdout once ready, then serves until killed.  Diagnostics go to stderr.

Protocol endpoints (the real paths)
-----------------------------------
POST /pay.action                  payer's browser form post (form-urlencoded) -> HTML pay
                                  page, or an HTML error page.
GET  /pay.action?<same fields>    TOLERANCE (not in the doc): the same fields as a query
                                  string, for clients that can only hand the payer a link.
                                  Validated identically; the order records "method":"GET".
GET  /requstOrderStatus.action?orderid&uid&key      (sic "requst")  -> JSON
GET  /requstBalance.action?uid&reqtime&key                          -> JSON

Helper pages (not in the doc, used only by the HTML pay page):
GET  /paypage/{payid}     the pay page again (meta-refreshes every 3 s; once paid it
                          redirects to returnurl after 2 s, as the doc's 1.3 describes)
GET  /qr/{payid}.png      a placeholder QR-looking PNG (NOT a real QR code)

Keys (md5, 32 lowercase hex over UTF-8; values raw, not URL-encoded; empty fields keep
their "name="; the token is used exactly as given on the command line):
  pay     uid=..&orderid=..&ordername=..&paymoney=..&orderuid=..&paytype=..&notifyurl=..
          &returnurl=..&orderinfo=..&token=<token>
  notify  payid=..&orderid=..&orderuid=..&paymoney=..&realpay=..&token=<token>
  query   orderid=..&uid=..&token=<token>
          (PROVIDERS.md: UNKNOWN, the seed's example is a copy-paste of the pay one;
           INFERRED table order + "&token=" -- that is what this double uses)
  balance uid=..&reqtime=..&token=<token>   (raw space inside reqtime; seed vector
          uid=10000001400000, reqtime=2018-09-02 12:35:06,
          token=10665CF54E90822951FE80330E9CF715 -> c9b922d7dde2c8ad614b998f8d183e84,
          asserted at start-up)
  A key must match exactly: an upper-case hex key is refused (the doc says "取字符串小写");
  the log then carries "key_case_only": true.

Notify (server -> merchant), sent by /control/pay and /control/notify:
    POST {notifyurl}  Content-Type: application/x-www-form-urlencoded
    payid=..&orderid=..&orderuid=..&paymoney=..&realpay=..&key=..   (in that order)
  * background thread, 2 s timeout, no proxies, redirects NOT followed;
  * only sent when notifyurl's host is 127.0.0.1 or localhost -- otherwise the attempt is
    recorded with error "refused: notifyurl is not local" and nothing is sent;
  * any HTTP 2xx answer counts as acknowledged (doc: "返回 http 状态即可");
  * the doc says the platform retries 3 times 1 minute apart after a 400/404/500.
    CHOICE: by default no automatic retry (a test drives repeats with /control/notify);
    --notify-retries N / --notify-retry-interval S turn the doc's retries on.

Order states: "waiting" (query status -1), "paid" (0), "expired" (1).  Query status -2
is "query error" (any refused query).  --order-timeout S > 0 expires waiting orders after
S seconds; default 0 = never (the doc gives no timeout; use /control/expire).

Error answers
-------------
pay.action: always HTTP 200 (CHOICE: the real platform's error behaviour is UNKNOWN; it
  answers a browser, so an HTML page) with an HTML page
      <title>支付请求错误</title> ... <p id="error" data-code="CODE">MESSAGE</p>
  and response header "X-Test-Double-Error: CODE".  Codes, checked in this order:
      FORMAT     POST without Content-Type application/x-www-form-urlencoded, body not
                 UTF-8 / not parseable, or a field given twice        (请求格式错误)
      MISSING    a required field (uid orderid paymoney paytype notifyurl returnurl key)
                 absent or empty; all missing names are listed        (缺少必填参数)
      UID        uid != --uid                                         (商户不存在)
      PAYTYPE    paytype != --paytype                                 (支付方式错误)
      LENGTH     a field over its byte limit (UTF-8 bytes): orderid 40, ordername 100,
                 paymoney 14, orderuid 40, notifyurl 80, returnurl 80, orderinfo 500
                                                                      (字段超长)
      PAYMONEY   paymoney not "N.NN" (exactly 2 decimals, no sign/leading zeros) or not
                 > 0   (doc: "保留2位有效数字" read as 2 decimals, per PROVIDERS.md)
                                                                      (支付金额格式错误)
      URL        notifyurl / returnurl not an absolute http(s) URL (CHOICE: the doc only
                 says "地址")                                         (地址格式错误)
      KEY        key mismatch                                         (校验秘钥(key)错误)
      DUPLICATE  orderid already used (in any state, also via a GET replay or a browser
                 reload)                                             (订单号重复)
  Unknown fields are ignored (listed in the log's "unknown_fields" and in the order).
  Optional fields (ordername, orderuid, orderinfo) may be absent or empty: both hash as
  "name=".
requstOrderStatus.action: HTTP 200 JSON, status "-2", msg one of
      缺少参数: <names> / 请求格式错误... / 请使用GET请求 / 商户不存在 / 校验秘钥(key)错误 /
      订单不存在 / 查询过于频繁,一个订单号一分钟只能查询一次 (CHOICE of wording)
  with orderid echoed and payid/paymoney/realpay "".
requstBalance.action: HTTP 200 JSON, status "1", balance "", msg one of
      缺少参数: <names> / 请求格式错误... / 请使用GET请求 / 商户不存在 /
      reqtime格式错误(应为yyyy-MM-dd HH:mm:ss) / 请求时间与服务器时间误差超过10分钟 /
      校验秘钥(key)错误 / 查询过于频繁,三分钟只能查询一次 (CHOICE of wording)

Rate limits (CHOICES):
  * query: per orderid string (known or unknown order), counted only for queries that
    passed uid + key checks.  A query within --query-interval (60 s) of the last
    *answered* query for that orderid is refused (-2) and logged "rate_limited": true; a
    refused query does not restart the window.  Every query of a known order (answered
    or refused) is listed in the order's "query_times".
  * balance: per uid, same rules with --balance-interval (180 s), refusal status "1".
  * reqtime must be exactly "YYYY-MM-DD HH:MM:SS", Beijing time (UTC+8), within ±600 s
    inclusive of the server's clock.  --beijing-now sets that clock (it then advances in
    real time), e.g. to replay the seed's 2018 vector.

Balance = sum of realpay over paid orders, "N.NN" (starts at "0.00").

Test-control endpoints (NOT part of the protocol); {orderid} is the merchant's orderid
(the payid is accepted too when no order has that orderid):
POST /control/pay/{orderid}[?realpay=12.34]  waiting/expired -> paid, realpay defaults
                                   to paymoney (must be N.NN > 0), sends the notify.
                                   409 if already paid.  Answers text "ok".
POST /control/expire/{orderid}     waiting -> expired.  409 otherwise.  "ok".
POST /control/notify/{orderid}[?forged=1]  (re)send the notify.  Genuine: order must be
                                   paid (409 otherwise).  forged=1: key computed with a
                                   wrong token (allowed in any state; realpay then is the
                                   order's realpay or, if unpaid, its paymoney).  "ok".
GET  /control/orders               JSON list of every order: all fields, state, status
                                   code, notify attempts, query times.
Unknown order: 404 text "unknown order".  Anything else: 404 text "404 Not Found".

Requests log (--requests-log FILE): one JSON line per HTTP request:
  {"event":"request","at","method","path","query","headers","content_type","body",
   "status","result","rate_limited","unknown_fields", ...}
  + "expected_key" and "hashed_string" (the exact md5 input with the token replaced by
    "<token>") whenever a key was wrong; + "error_code"/"error_msg" on pay.action errors.
  "result" is the JSON answer, or the HTML/text answer.
and one line per notify attempt:
  {"event":"notify","method":"POST","url","orderid","payid","forged","body",
   "hashed_string","status","response_body","ok","error","attempt","started_at",
   "finished_at"}
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# ---------------------------------------------------------------------------
# constants from the documents

PAY_FIELDS = ("uid", "orderid", "ordername", "paymoney", "orderuid", "paytype",
              "notifyurl", "returnurl", "orderinfo")          # key order (seed 1.1)
PAY_REQUIRED = ("uid", "orderid", "paymoney", "paytype", "notifyurl", "returnurl", "key")
PAY_KNOWN = PAY_FIELDS + ("key",)
# byte limits from the seed table ("40 字节内" etc.)
PAY_LIMITS = {"orderid": 40, "ordername": 100, "paymoney": 14, "orderuid": 40,
              "notifyurl": 80, "returnurl": 80, "orderinfo": 500}

QUERY_FIELDS = ("orderid", "uid", "key")
BALANCE_FIELDS = ("uid", "reqtime", "key")

QUERY_INTERVAL_DEFAULT = 60       # "一个订单号一分钟只能查询一次"
BALANCE_INTERVAL_DEFAULT = 180    # "三分钟只能查询一次"
REQTIME_SKEW = 600                # "误差不能超过 10 分钟"
NOTIFY_TIMEOUT = 2.0
LOCAL_HOSTS = ("127.0.0.1", "localhost")

BEIJING = dt.timezone(dt.timedelta(hours=8))

MONEY_RE = re.compile(r"^(0|[1-9][0-9]*)\.[0-9]{2}$")
REQTIME_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$")

STATUS_OF_STATE = {"waiting": "-1", "paid": "0", "expired": "1"}

# pay.action error codes -> message prefix
E_FORMAT = ("FORMAT", "请求格式错误")
E_MISSING = ("MISSING", "缺少必填参数")
E_UID = ("UID", "商户不存在")
E_PAYTYPE = ("PAYTYPE", "支付方式错误")
E_LENGTH = ("LENGTH", "字段超长")
E_PAYMONEY = ("PAYMONEY", "支付金额格式错误")
E_URL = ("URL", "地址格式错误")
E_KEY = ("KEY", "校验秘钥(key)错误")
E_DUPLICATE = ("DUPLICATE", "订单号重复")

MSG_MISSING = "缺少参数"
MSG_FORMAT = "请求格式错误"
MSG_METHOD = "请使用GET请求"
MSG_UID = "商户不存在"
MSG_KEY = "校验秘钥(key)错误"
MSG_NO_ORDER = "订单不存在"
MSG_QUERY_RATE = "查询过于频繁,一个订单号一分钟只能查询一次"
MSG_BALANCE_RATE = "查询过于频繁,三分钟只能查询一次"
MSG_REQTIME_FMT = "reqtime格式错误(应为yyyy-MM-dd HH:mm:ss)"
MSG_REQTIME_SKEW = "请求时间与服务器时间误差超过10分钟"


def md5_hex(s: str) -> str:
    return hashlib.md5(s.encode("utf-8")).hexdigest()


def kv_string(pairs, token: str) -> str:
    """Fixed-order k=v joined with '&', raw values, then '&token=<token>'."""
    return "&".join(f"{k}={v}" for k, v in pairs) + "&token=" + token


def money_cents(s: str) -> int:
    whole, frac = s.split(".")
    return int(whole) * 100 + int(frac)


def cents_str(c: int) -> str:
    return f"{c // 100}.{c % 100:02d}"


# the seed's balance vector, checked once at start-up
assert md5_hex(kv_string([("uid", "10000001400000"), ("reqtime", "2018-09-02 12:35:06")],
                         "10665CF54E90822951FE80330E9CF715")) \
    == "c9b922d7dde2c8ad614b998f8d183e84", "seed balance key vector does not verify"


# ---------------------------------------------------------------------------
# placeholder QR PNG (not a real QR code)

def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def placeholder_png(seed: str, modules: int = 21, scale: int = 4, border: int = 2) -> bytes:
    bits = []
    n = 0
    while len(bits) < modules * modules:
        for byte in hashlib.sha256(f"{seed}/{n}".encode()).digest():
            bits.extend((byte >> i) & 1 for i in range(8))
        n += 1
    grid = [bits[r * modules:(r + 1) * modules] for r in range(modules)]
    for r0, c0 in ((0, 0), (0, modules - 7), (modules - 7, 0)):
        for r in range(7):
            for c in range(7):
                ring = r in (0, 6) or c in (0, 6)
                core = 2 <= r <= 4 and 2 <= c <= 4
                grid[r0 + r][c0 + c] = 1 if ring or core else 0
    size = (modules + 2 * border) * scale
    raw = bytearray()
    for y in range(size):
        raw.append(0)
        my = y // scale - border
        for x in range(size):
            mx = x // scale - border
            dark = 0 <= my < modules and 0 <= mx < modules and grid[my][mx]
            raw.append(0 if dark else 255)
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + _png_chunk(b"IEND", b""))


# ---------------------------------------------------------------------------
# server state

class Store:
    def __init__(self, args, log_path):
        self.uid = args.uid
        self.token = args.token
        self.paytype = args.paytype
        self.query_interval = args.query_interval
        self.balance_interval = args.balance_interval
        self.order_timeout = args.order_timeout
        self.notify_retries = args.notify_retries
        self.notify_retry_interval = args.notify_retry_interval
        self.clock_offset = 0.0
        if args.beijing_now:
            want = dt.datetime.strptime(args.beijing_now, "%Y-%m-%d %H:%M:%S") \
                .replace(tzinfo=BEIJING).timestamp()
            self.clock_offset = want - time.time()
        self.lock = threading.RLock()
        self.by_orderid = {}
        self.by_payid = {}
        self.orders = []
        self.query_last = {}        # orderid -> time of last answered query
        self.balance_last = None    # time of last answered balance query
        self.balance_times = []
        self._next_payid = 10000000000000 + secrets.randbelow(10 ** 8) * 10
        self.log_path = log_path
        self.log_lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self.clock_offset

    def beijing(self, t=None) -> str:
        t = self.now() if t is None else t
        return dt.datetime.fromtimestamp(t, BEIJING).strftime("%Y-%m-%d %H:%M:%S")

    def log(self, entry: dict):
        if not self.log_path:
            return
        line = json.dumps(entry, ensure_ascii=False)
        with self.log_lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def new_payid(self) -> str:
        # 14 digits like the seed's "10000000480012"; strictly increasing
        with self.lock:
            self._next_payid += 1 + secrets.randbelow(7)
            return str(self._next_payid)

    def refresh(self, o: dict):
        if (self.order_timeout > 0 and o["state"] == "waiting"
                and self.now() >= o["created_at"] + self.order_timeout):
            self.set_state(o, "expired", "auto: order timeout")

    def set_state(self, o: dict, state: str, why: str):
        o["state"] = state
        o["status"] = STATUS_OF_STATE[state]
        o["state_history"].append({"state": state, "at": self.now(), "why": why})

    def find(self, ref: str):
        with self.lock:
            o = self.by_orderid.get(ref) or self.by_payid.get(ref)
            if o is not None:
                self.refresh(o)
            return o

    def balance_cents(self) -> int:
        with self.lock:
            return sum(money_cents(o["realpay"]) for o in self.orders if o["state"] == "paid")

    def snapshot(self):
        with self.lock:
            for o in self.orders:
                self.refresh(o)
            return json.loads(json.dumps(self.orders))


# ---------------------------------------------------------------------------
# notify

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None   # a 3xx is reported as-is (not 2xx -> not acknowledged)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def send_notify(store: Store, o: dict, forged: bool):
    with store.lock:
        realpay = o["realpay"] or o["paymoney"]
        pairs = [("payid", o["payid"]), ("orderid", o["orderid"]),
                 ("orderuid", o["orderuid"]), ("paymoney", o["paymoney"]),
                 ("realpay", realpay)]
        token = store.token + "-forged" if forged else store.token
        hashed = kv_string(pairs, token)
        key = md5_hex(hashed)
        body = urllib.parse.urlencode(pairs + [("key", key)]).encode("utf-8")
        url = o["notifyurl"]
        shown = kv_string(pairs, "<token>-forged" if forged else "<token>")

    def one_attempt(n: int) -> dict:
        a = {"event": "notify", "method": "POST", "url": url, "orderid": o["orderid"],
             "payid": o["payid"], "forged": forged, "attempt": n,
             "body": body.decode("utf-8"), "hashed_string": shown,
             "started_at": time.time(), "status": None, "response_body": None,
             "ok": False, "error": None}
        host = (urllib.parse.urlsplit(url).hostname or "").lower()
        if host not in LOCAL_HOSTS:
            a["error"] = "refused: notifyurl is not local (test double only notifies " \
                         "127.0.0.1/localhost)"
        else:
            req = urllib.request.Request(url, data=body, method="POST", headers={
                "Content-Type": "application/x-www-form-urlencoded"})
            try:
                with _OPENER.open(req, timeout=NOTIFY_TIMEOUT) as resp:
                    a["status"] = resp.status
                    a["response_body"] = resp.read(65536).decode("utf-8", "replace")
            except urllib.error.HTTPError as e:
                a["status"] = e.code
                try:
                    a["response_body"] = e.read(65536).decode("utf-8", "replace")
                except Exception:  # noqa: BLE001
                    pass
                a["error"] = f"HTTP {e.code}"
            except Exception as e:  # noqa: BLE001 - errors are ignored
                a["error"] = f"{type(e).__name__}: {e}"
            a["ok"] = a["status"] is not None and 200 <= a["status"] < 300
        a["finished_at"] = time.time()
        with store.lock:
            o["notify_attempts"].append(a)
        store.log(a)
        print(f"[jings] notify #{n} {url} forged={forged} -> status={a['status']} "
              f"body={a['response_body']!r} error={a['error']}", file=sys.stderr, flush=True)
        return a

    def worker():
        n = 1
        a = one_attempt(n)
        # doc: retry 3 times, 1 minute apart, after 400/404/500 (off unless enabled)
        while (not a["ok"] and n <= store.notify_retries
               and not (a["error"] or "").startswith("refused")):
            time.sleep(store.notify_retry_interval)
            n += 1
            a = one_attempt(n)

    threading.Thread(target=worker, daemon=True).start()


# ---------------------------------------------------------------------------
# HTML

def html_page(title: str, body: str, head_extra: str = "") -> str:
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title>{head_extra}</head><body>{body}</body></html>")


def error_page(code: str, msg: str) -> str:
    return html_page("支付请求错误",
                     "<h1>支付请求错误</h1>"
                     f"<p id=\"error\" data-code=\"{escape(code)}\">{escape(msg)}</p>")


def pay_page(store: Store, o: dict) -> str:
    state = o["state"]
    if state == "paid":
        head = (f"<meta http-equiv=\"refresh\" content=\"2;url={escape(o['returnurl'])}\">")
        info = "<p id=\"state\" data-state=\"paid\">支付成功,正在跳转...</p>"
    elif state == "expired":
        head = ""
        info = "<p id=\"state\" data-state=\"expired\">订单已超时</p>"
    else:
        head = f"<meta http-equiv=\"refresh\" content=\"3;url=/paypage/{o['payid']}\">"
        info = ("<p id=\"state\" data-state=\"waiting\">请使用支付宝扫码支付</p>"
                f"<img id=\"qr\" alt=\"placeholder QR (not a real QR code)\" "
                f"src=\"/qr/{o['payid']}.png\">")
    body = ("<h1>阳光支付</h1>"
            f"<p>订单号: <span id=\"orderid\">{escape(o['orderid'])}</span></p>"
            f"<p>支付ID: <span id=\"payid\">{escape(o['payid'])}</span></p>"
            f"<p>订单名称: <span id=\"ordername\">{escape(o['ordername'])}</span></p>"
            f"<p>支付金额: ¥<span id=\"amount\">{escape(o['paymoney'])}</span></p>"
            + info)
    return html_page("阳光支付 - 收银台", body, head)


# ---------------------------------------------------------------------------
# HTTP handler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "jings-test-double/1.0"
    store: Store = None

    def log_message(self, fmt, *args):
        sys.stderr.write("[jings] %s - %s\n" % (self.address_string(), fmt % args))

    # -- helpers ----------------------------------------------------------------
    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            data = bytearray()
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                data += self.rfile.read(size)
                self.rfile.readline(65537)
            return bytes(data)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _headers_dict(self) -> dict:
        out = {}
        for k, v in self.headers.items():
            out[k] = out[k] + ", " + v if k in out else v
        return out

    def _finish(self, status: int, result, extra=None, kind="json", headers=None,
                log_result=None):
        if kind == "json":
            body = json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode()
            ctype = "application/json;charset=UTF-8"
        elif kind == "html":
            body = result.encode("utf-8")
            ctype = "text/html;charset=UTF-8"
        elif kind == "png":
            body = result
            ctype = "image/png"
        else:
            body = result.encode("utf-8")
            ctype = "text/plain;charset=UTF-8"
        entry = {
            "event": "request",
            "at": time.time(),
            "method": self.command,
            "path": self._path,
            "query": self._query,
            "headers": self._headers_dict(),
            "content_type": self.headers.get("Content-Type"),
            "body": self._raw.decode("utf-8", "replace"),
            "status": status,
            "result": log_result if log_result is not None else (
                "<png>" if kind == "png" else result),
            "rate_limited": False,
            "unknown_fields": [],
        }
        if extra:
            entry.update(extra)
        self.store.log(entry)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _text(self, status, text, extra=None):
        return self._finish(status, text, extra, kind="text")

    @staticmethod
    def _parse_pairs(text: str):
        """Strict form/query parsing. Returns (dict, error-or-None)."""
        try:
            pairs = urllib.parse.parse_qsl(text, keep_blank_values=True,
                                           strict_parsing=bool(text),
                                           encoding="utf-8", errors="strict")
        except (ValueError, UnicodeDecodeError) as e:
            return None, f"无法解析参数 ({e})"
        form = {}
        for k, v in pairs:
            if k in form:
                return None, f"参数 {k} 重复"
            form[k] = v
        return form, None

    def _key_check(self, given: str, pairs, extra: dict) -> bool:
        st = self.store
        expected = md5_hex(kv_string(pairs, st.token))
        if given == expected:
            return True
        extra["expected_key"] = expected
        extra["hashed_string"] = kv_string(pairs, "<token>")
        if given.lower() == expected:
            extra["key_case_only"] = True
        return False

    # -- dispatch -----------------------------------------------------------------
    def _dispatch(self):
        split = urllib.parse.urlsplit(self.path)
        self._path = split.path
        self._query = split.query
        self._raw = b""
        try:
            self._raw = self._read_body()
        except Exception as e:  # noqa: BLE001
            return self._text(400, f"bad body: {e}")
        segs = [urllib.parse.unquote(s) for s in split.path.split("/")[1:]]
        m = self.command
        try:
            if segs == ["pay.action"] and m in ("POST", "GET"):
                return self.h_pay()
            if segs == ["requstOrderStatus.action"]:
                return self.h_query()
            if segs == ["requstBalance.action"]:
                return self.h_balance()
            if m == "GET" and len(segs) == 2 and segs[0] == "paypage":
                return self.h_paypage(segs[1])
            if m == "GET" and len(segs) == 2 and segs[0] == "qr" and segs[1].endswith(".png"):
                return self.h_qr(segs[1][:-4])
            if len(segs) == 3 and segs[0] == "control" and m == "POST":
                if segs[1] == "pay":
                    return self.h_control_pay(segs[2])
                if segs[1] == "expire":
                    return self.h_control_expire(segs[2])
                if segs[1] == "notify":
                    return self.h_control_notify(segs[2])
            if m == "GET" and segs == ["control", "orders"]:
                return self._finish(200, self.store.snapshot())
        except Exception as e:  # noqa: BLE001
            print(f"[jings] internal error: {type(e).__name__}: {e}", file=sys.stderr,
                  flush=True)
            return self._text(500, f"internal error: {e}")
        return self._text(404, "404 Not Found")

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_DELETE = _dispatch
    do_PATCH = _dispatch

    # -- /pay.action --------------------------------------------------------------------
    def h_pay(self):
        st = self.store
        extra = {}

        def reject(err, detail=""):
            code, msg = err
            full = msg + (": " + detail if detail else "")
            extra["error_code"] = code
            extra["error_msg"] = full
            print(f"[jings] pay.action refused: {code} {full}", file=sys.stderr, flush=True)
            return self._finish(200, error_page(code, full), extra, kind="html",
                                headers={"X-Test-Double-Error": code})

        if self.command == "POST":
            ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if ctype != "application/x-www-form-urlencoded":
                return reject(E_FORMAT, "Content-Type 必须为 application/x-www-form-urlencoded"
                                        f" (收到 {self.headers.get('Content-Type')!r})")
            try:
                text = self._raw.decode("utf-8")
            except UnicodeDecodeError:
                return reject(E_FORMAT, "请求体不是有效的 UTF-8")
        else:
            # GET tolerance: the same fields as a query string
            text = self._query
        form, err = self._parse_pairs(text)
        if err:
            return reject(E_FORMAT, err)

        unknown = sorted(k for k in form if k not in PAY_KNOWN)
        extra["unknown_fields"] = unknown
        if unknown:
            print(f"[jings] pay.action: ignoring unknown fields {unknown}", file=sys.stderr,
                  flush=True)

        missing = [f for f in PAY_REQUIRED if form.get(f, "") == ""]
        if missing:
            return reject(E_MISSING, ", ".join(missing))
        v = {f: form.get(f, "") for f in PAY_FIELDS}

        if v["uid"] != st.uid:
            return reject(E_UID, f"uid={v['uid']}")
        if v["paytype"] != st.paytype:
            return reject(E_PAYTYPE, f"paytype={v['paytype']} (本商户只支持 {st.paytype})")
        for f, limit in PAY_LIMITS.items():
            n = len(v[f].encode("utf-8"))
            if n > limit:
                return reject(E_LENGTH, f"{f} 为 {n} 字节, 最多 {limit} 字节")
        if not MONEY_RE.match(v["paymoney"]):
            return reject(E_PAYMONEY, f"paymoney={v['paymoney']} (单位元, 保留2位小数, 如 0.05)")
        if money_cents(v["paymoney"]) <= 0:
            return reject(E_PAYMONEY, f"paymoney={v['paymoney']} (必须大于0)")
        for f in ("notifyurl", "returnurl"):
            u = urllib.parse.urlsplit(v[f])
            if u.scheme not in ("http", "https") or not u.netloc:
                return reject(E_URL, f"{f}={v[f]}")
        if not self._key_check(form["key"], [(f, v[f]) for f in PAY_FIELDS], extra):
            return reject(E_KEY)

        with st.lock:
            if v["orderid"] in st.by_orderid:
                return reject(E_DUPLICATE, f"orderid={v['orderid']}")
            now = st.now()
            o = dict(v)
            o.update({
                "payid": st.new_payid(),
                "key": form["key"],
                "method": self.command,
                "absent_fields": [f for f in PAY_FIELDS if f not in form],
                "unknown_fields": {k: form[k] for k in unknown},
                "client_ip": self.client_address[0],
                "user_agent": self.headers.get("User-Agent"),
                "state": "waiting",
                "status": STATUS_OF_STATE["waiting"],
                "realpay": "",
                "created_at": now,
                "created_beijing": st.beijing(now),
                "paid_at": None,
                "notify_attempts": [],
                "query_times": [],
                "state_history": [{"state": "waiting", "at": now, "why": "created"}],
            })
            st.by_orderid[o["orderid"]] = o
            st.by_payid[o["payid"]] = o
            st.orders.append(o)
            page = pay_page(st, o)
        extra["payid"] = o["payid"]
        return self._finish(200, page, extra, kind="html")

    def h_paypage(self, payid: str):
        st = self.store
        with st.lock:
            o = st.by_payid.get(payid)
            if o is None:
                return self._finish(404, error_page("NOT_FOUND", MSG_NO_ORDER), kind="html")
            st.refresh(o)
            page = pay_page(st, o)
        return self._finish(200, page, kind="html")

    def h_qr(self, payid: str):
        if self.store.by_payid.get(payid) is None:
            return self._text(404, "404 Not Found")
        return self._finish(200, placeholder_png("jings:" + payid), kind="png")

    # -- shared parsing for the two GET queries --------------------------------------------
    def _get_params(self, fields, fail):
        """Returns (form, extra) or (None, None) after answering with fail(msg, extra)."""
        extra = {}
        if self.command != "GET":
            fail(MSG_METHOD + f" (收到 {self.command})", extra, {})
            return None, None
        form, err = self._parse_pairs(self._query)
        if err:
            fail(MSG_FORMAT + ": " + err, extra, {})
            return None, None
        extra["unknown_fields"] = sorted(k for k in form if k not in fields)
        missing = [f for f in fields if form.get(f, "") == ""]
        if missing:
            fail(MSG_MISSING + ": " + ", ".join(missing), extra, form)
            return None, None
        return form, extra

    # -- /requstOrderStatus.action -------------------------------------------------------
    def h_query(self):
        st = self.store

        def fail(msg, extra, form, rate_limited=False):
            extra["rate_limited"] = rate_limited
            res = {"msg": msg, "orderid": form.get("orderid", ""), "payid": "",
                   "paymoney": "", "realpay": "", "status": "-2"}
            return self._finish(200, res, extra)

        form, extra = self._get_params(QUERY_FIELDS, fail)
        if form is None:
            return None
        if form["uid"] != st.uid:
            return fail(MSG_UID, extra, form)
        pairs = [("orderid", form["orderid"]), ("uid", form["uid"])]
        if not self._key_check(form["key"], pairs, extra):
            return fail(MSG_KEY, extra, form)
        with st.lock:
            now = st.now()
            oid = form["orderid"]
            o = st.by_orderid.get(oid)
            if o is not None:
                st.refresh(o)
            last = st.query_last.get(oid)
            limited = last is not None and now - last < st.query_interval
            if o is not None:
                o["query_times"].append({"at": now, "beijing": st.beijing(now),
                                         "rate_limited": limited})
            if limited:
                extra["seconds_since_last_answered"] = round(now - last, 3)
                return fail(MSG_QUERY_RATE, extra, form, rate_limited=True)
            st.query_last[oid] = now
            if o is None:
                return fail(MSG_NO_ORDER, extra, form)
            res = {"msg": "", "orderid": o["orderid"], "payid": o["payid"],
                   "paymoney": o["paymoney"],
                   "realpay": o["realpay"] if o["state"] == "paid" else "",
                   "status": o["status"]}
        return self._finish(200, res, extra)

    # -- /requstBalance.action -----------------------------------------------------------
    def h_balance(self):
        st = self.store

        def fail(msg, extra, form, rate_limited=False):
            extra["rate_limited"] = rate_limited
            res = {"balance": "", "msg": msg, "reqtime": form.get("reqtime", ""),
                   "status": "1", "uid": form.get("uid", "")}
            return self._finish(200, res, extra)

        form, extra = self._get_params(BALANCE_FIELDS, fail)
        if form is None:
            return None
        if form["uid"] != st.uid:
            return fail(MSG_UID, extra, form)
        reqtime = form["reqtime"]
        if not REQTIME_RE.match(reqtime):
            return fail(MSG_REQTIME_FMT, extra, form)
        try:
            t = dt.datetime.strptime(reqtime, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
        except ValueError:
            return fail(MSG_REQTIME_FMT, extra, form)
        skew = t.timestamp() - st.now()
        if abs(skew) > REQTIME_SKEW:
            extra["reqtime_skew_seconds"] = round(skew, 3)
            extra["server_beijing_time"] = st.beijing()
            return fail(MSG_REQTIME_SKEW, extra, form)
        pairs = [("uid", form["uid"]), ("reqtime", reqtime)]
        if not self._key_check(form["key"], pairs, extra):
            return fail(MSG_KEY, extra, form)
        with st.lock:
            now = st.now()
            last = st.balance_last
            limited = last is not None and now - last < st.balance_interval
            st.balance_times.append({"at": now, "rate_limited": limited})
            if limited:
                extra["seconds_since_last_answered"] = round(now - last, 3)
                return fail(MSG_BALANCE_RATE, extra, form, rate_limited=True)
            st.balance_last = now
            res = {"balance": cents_str(st.balance_cents()), "msg": "", "reqtime": reqtime,
                   "status": "0", "uid": form["uid"]}
        return self._finish(200, res, extra)

    # -- controls -------------------------------------------------------------------------
    def h_control_pay(self, ref: str):
        st = self.store
        q, err = self._parse_pairs(self._query)
        if err:
            return self._text(400, "bad query: " + err)
        with st.lock:
            o = st.find(ref)
            if o is None:
                return self._text(404, "unknown order")
            if o["state"] == "paid":
                return self._text(409, "already paid (use /control/notify to resend)")
            realpay = q.get("realpay", o["paymoney"])
            if not MONEY_RE.match(realpay) or money_cents(realpay) <= 0:
                return self._text(400, "bad realpay (want N.NN > 0)")
            o["realpay"] = realpay
            o["paid_at"] = st.now()
            st.set_state(o, "paid", f"control: paid realpay={realpay}")
        send_notify(st, o, forged=False)
        return self._text(200, "ok")

    def h_control_expire(self, ref: str):
        st = self.store
        with st.lock:
            o = st.find(ref)
            if o is None:
                return self._text(404, "unknown order")
            if o["state"] != "waiting":
                return self._text(409, f"order is {o['state']}, not waiting")
            st.set_state(o, "expired", "control: expired")
        return self._text(200, "ok")

    def h_control_notify(self, ref: str):
        st = self.store
        q, err = self._parse_pairs(self._query)
        if err:
            return self._text(400, "bad query: " + err)
        forged = q.get("forged", "") not in ("", "0", "false")
        with st.lock:
            o = st.find(ref)
            if o is None:
                return self._text(404, "unknown order")
            if not forged and o["state"] != "paid":
                return self._text(409, f"order is {o['state']}, not paid (use forged=1)")
        send_notify(st, o, forged=forged)
        return self._text(200, "ok")


# ---------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description="sun.jings.wang v1 protocol test double")
    p.add_argument("--uid", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--requests-log", default=None)
    p.add_argument("--paytype", default="11", help="accepted paytype (default 11 = Alipay)")
    p.add_argument("--query-interval", type=float, default=QUERY_INTERVAL_DEFAULT,
                   help="min seconds between answered queries of one orderid (default 60)")
    p.add_argument("--balance-interval", type=float, default=BALANCE_INTERVAL_DEFAULT,
                   help="min seconds between answered balance queries (default 180)")
    p.add_argument("--order-timeout", type=float, default=0,
                   help="seconds until a waiting order expires; 0 = never (default)")
    p.add_argument("--notify-retries", type=int, default=0,
                   help="extra notify attempts after a non-2xx/failed one (doc: 3; default 0)")
    p.add_argument("--notify-retry-interval", type=float, default=60.0)
    p.add_argument("--beijing-now", default=None,
                   help='pretend the Beijing clock reads "YYYY-MM-DD HH:MM:SS" at start')
    args = p.parse_args(argv)
    if args.beijing_now:
        try:
            dt.datetime.strptime(args.beijing_now, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            p.error('--beijing-now must look like "2018-09-02 12:35:06"')

    log_path = os.path.abspath(args.requests_log) if args.requests_log else None
    Handler.store = Store(args, log_path)

    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    sys.stdout.write(f"LISTENING http://127.0.0.1:{port}\n")
    sys.stdout.flush()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
