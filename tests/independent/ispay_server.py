#!/usr/bin/env python3
"""Independent reference implementation (test double) of the ispay.in (就付) v1
payment-provider HTTP protocol.

Written only from the protocol documents:
  * the original Chinese API doc (seed 000), and
  * PROVIDERS.md section "1. ispay.in", subsection 1a (v1 protocol).
It deliberately shares no code with the client under test.

Usage:
    python3 ispay_server.py --userid 10001 --key SOMEKEY [--port 0] [--requests-log FILE]

Binds 127.0.0.1:PORT (0 = random) and prints exactly one line
    LISTENING http://127.0.0.1:PORT
to stdout once ready, then serves until killed.  Diagnostics go to stderr.

Protocol endpoints
------------------
POST /gateway                         create an order (form-urlencoded body)
GET  /query/{order_id}                poll an order (unsigned)
GET  /qrcode/{order_id}               QR info, state inside "order"
GET  /order/{userid}/{order_no}/{md5(userid+order_no+key)}   lookup by merchant order no.
GET  /transfer/{order_id}             minimal HTML QR page (browser route)

Notify (server -> merchant), sent when an order's state is set to 9:
    GET {notify_url}?order_no=...&amount=...&state=9&sign=md5(userid+order_no+key)
(The seed's "回调接口 {return_url}" heading is a doc error; per PROVIDERS.md the notify
goes to notify_url.)

Test-control endpoints (NOT part of the protocol)
------------------------------------------------
POST /control/state/{order_no}?state=N   set the order's state; answers text "ok".
                                         {order_no} may also be the provider order_id.
                                         Setting 5 issues a QR if none yet; setting 9
                                         sends the notify (every time 9 is set, so a
                                         test can simulate a provider retry).
GET  /control/orders                     JSON list of all orders (all fields, state,
                                         notify attempts, state history).

Error codes used on /gateway and /order (the docs only show 1004 "订单创建失败!"; the
rest are this double's choice).  All are answered with HTTP 200 and
{"success": false, "errorCode": <code>, "errorMsg": "<Chinese message>"}:
    1001  缺少必填参数 (missing / empty required field)
    1002  商户ID错误 (userid not an integer or not equal to --userid)
    1003  订单类型错误 (order_type not P901/P902/P904)
    1004  订单创建失败!订单号重复 (duplicate order_no — the seed's own code)
    1005  金额格式错误 (amount not "N.NN" with exactly two decimals, or not > 0)
    1006  签名错误 (sign mismatch; also bad md5 on /order/...)
    1007  请求格式错误 (wrong Content-Type, undecodable/malformed body, repeated field)
    1008  通知地址/回调地址格式错误 (notify_url / return_url not an absolute http(s) URL)
    1009  IP地址格式错误 (ip not a valid IPv4/IPv6 address)
Unknown order on /query, /qrcode, /order: {"success": false, "errorCode": 0, "errorMsg": "订单不存在"}
(as the seed shows).

Unknown form fields on /gateway are ignored (but listed under "unknown_fields" in the
requests log, in the order record, and on stderr).
"""

import argparse
import base64
import hashlib
import ipaddress
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# ---------------------------------------------------------------------------
# constants from the documents

REQUIRED_FIELDS = ("userid", "order_no", "order_type", "amount",
                   "notify_url", "return_url", "ip", "sign")
OPTIONAL_FIELDS = ("subject", "order_time")
ORDER_TYPES = ("P901", "P902", "P904")   # Alipay, WeChat, UnionPay QuickPass
ORDER_TIMEOUT_DEFAULT = 900              # seconds ("timeout": 900)
QR_DELAY_DEFAULT = 0.3                   # state 1 -> 5 after this many seconds
NOTIFY_TIMEOUT = 2.0
ID_EPOCH_MS = 1546300800000           # 2019-01-01T00:00:00Z

# States: 1/2 accepted, no QR; 3 cancelled by user; 4 system-cancelled (no taker);
# 5 QR issued / awaiting payment; 6 not paid in time; 7 restricted/closed;
# 8 paid, awaiting confirmation; 9 confirmed paid.
VALID_STATES = (1, 2, 3, 4, 5, 6, 7, 8, 9)
EXPIRABLE_STATES = (1, 2, 5)

AMOUNT_RE = re.compile(r"^(0|[1-9][0-9]*)\.[0-9]{2}$")
USERID_RE = re.compile(r"^[0-9]+$")

E_MISSING = 1001
E_USERID = 1002
E_ORDER_TYPE = 1003
E_CREATE_FAILED = 1004
E_AMOUNT = 1005
E_SIGN = 1006
E_FORMAT = 1007
E_URL = 1008
E_IP = 1009

NOT_FOUND_MSG = "订单不存在"


def md5_hex(s: str) -> str:
    return hashlib.md5(s.encode("utf-8")).hexdigest()


def amount_number(amount_str: str):
    """Amount as a JSON number in yuan: 500 for "500.00", 12.3 for "12.30"."""
    cents = int(amount_str.replace(".", ""))
    if cents % 100 == 0:
        return cents // 100
    return cents / 100


# ---------------------------------------------------------------------------
# tiny PNG generator (no third-party libs)

def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def make_png(seed: str, modules: int = 21, scale: int = 4, border: int = 2) -> bytes:
    """A small black/white 8-bit greyscale PNG that looks vaguely QR-like.

    Not a real QR code; the pattern is derived from `seed` so each order differs.
    """
    bits = []
    h = b""
    counter = 0
    while len(bits) < modules * modules:
        h = hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
        for byte in h:
            for i in range(8):
                bits.append((byte >> i) & 1)
    grid = [[bits[r * modules + c] for c in range(modules)] for r in range(modules)]

    def finder(r0, c0):
        for r in range(7):
            for c in range(7):
                edge = r in (0, 6) or c in (0, 6)
                core = 2 <= r <= 4 and 2 <= c <= 4
                grid[r0 + r][c0 + c] = 1 if (edge or core) else 0

    finder(0, 0)
    finder(0, modules - 7)
    finder(modules - 7, 0)

    size = (modules + 2 * border) * scale
    raw = bytearray()
    for y in range(size):
        raw.append(0)  # filter type: None
        my = y // scale - border
        for x in range(size):
            mx = x // scale - border
            dark = 0 <= my < modules and 0 <= mx < modules and grid[my][mx]
            raw.append(0 if dark else 255)
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(bytes(raw), 9))
            + _png_chunk(b"IEND", b""))


def make_qrcode_text(order_type: str) -> str:
    alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
    if order_type == "P902":
        token = "".join(secrets.choice(alnum + "ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(11))
        return "wxp://f2f0" + token
    if order_type == "P904":
        digits = "".join(secrets.choice("0123456789") for _ in range(24))
        return "https://qr.95516.com/00010000/" + digits
    token = "".join(secrets.choice(alnum) for _ in range(22))
    return "https://qr.alipay.com/fkx" + token


# ---------------------------------------------------------------------------
# server state

class Store:
    def __init__(self, userid: str, key: str, qr_delay: float, order_timeout: int,
                 log_path):
        self.userid = userid
        self.key = key
        self.qr_delay = qr_delay
        self.order_timeout = order_timeout
        self.lock = threading.RLock()
        self.by_id = {}      # order_id -> order dict
        self.by_no = {}      # order_no -> order dict
        self.order_list = []
        self._last_id = 0
        self.log_path = log_path
        self.log_lock = threading.Lock()

    # -- logging ------------------------------------------------------------
    def log(self, entry: dict):
        if not self.log_path:
            return
        line = json.dumps(entry, ensure_ascii=False)
        with self.log_lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()

    # -- ids ----------------------------------------------------------------
    def new_order_id(self) -> str:
        # Snowflake-like, like the seed's "424843497502158848": (ms since 2019-01-01) << 22
        # plus a random low part; 18-19 decimal digits, fits i64/u64, strictly increasing
        # (hence unique).
        with self.lock:
            ms = int(time.time() * 1000) - ID_EPOCH_MS
            candidate = (ms << 22) | secrets.randbelow(1 << 12)
            if candidate <= self._last_id:
                candidate = self._last_id + 1
            self._last_id = candidate
            return str(candidate)

    # -- state handling -------------------------------------------------------
    def _set_state(self, order: dict, state: int, why: str):
        order["state"] = state
        order["state_history"].append({"state": state, "at": time.time(), "why": why})
        if state == 5 and not order["qrcode"]:
            self._issue_qr(order)

    def _issue_qr(self, order: dict):
        order["qrcode"] = make_qrcode_text(order["order_type"])
        png = make_png(order["qrcode"])
        order["imgtext"] = "data:image/png;base64," + base64.b64encode(png).decode("ascii")

    def refresh(self, order: dict):
        """Apply time-driven transitions (call with lock held)."""
        now = time.time()
        if (not order["auto_qr_done"] and order["state"] == 1
                and now >= order["created_at"] + self.qr_delay):
            order["auto_qr_done"] = True
            self._set_state(order, 5, "auto: QR issued")
        if (order["state"] in EXPIRABLE_STATES
                and now >= order["created_at"] + self.order_timeout):
            self._set_state(order, 6, "auto: expired")

    def get_by_id(self, order_id: str):
        with self.lock:
            o = self.by_id.get(order_id)
            if o is not None:
                self.refresh(o)
            return o

    def get_by_no(self, order_no: str):
        with self.lock:
            o = self.by_no.get(order_no)
            if o is not None:
                self.refresh(o)
            return o

    def snapshot(self):
        with self.lock:
            out = []
            for o in self.order_list:
                self.refresh(o)
                out.append(json.loads(json.dumps(o)))
            return out


# ---------------------------------------------------------------------------
# notify

def send_notify(store: Store, order: dict):
    with store.lock:
        params = [
            ("order_no", order["order_no"]),
            ("amount", order["amount"]),
            ("state", "9"),
            ("sign", md5_hex(store.userid + order["order_no"] + store.key)),
        ]
        base = order["notify_url"]
    sep = "&" if "?" in base else "?"
    url = base + sep + urllib.parse.urlencode(params)

    def worker():
        attempt = {"event": "notify", "method": "GET", "url": url, "order_no": params[0][1],
                   "started_at": time.time(), "status": None, "body": None, "error": None}
        try:
            req = urllib.request.Request(url, method="GET")
            with urllib.request.urlopen(req, timeout=NOTIFY_TIMEOUT) as resp:
                attempt["status"] = resp.status
                attempt["body"] = resp.read(65536).decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            attempt["status"] = e.code
            try:
                attempt["body"] = e.read(65536).decode("utf-8", "replace")
            except Exception:  # noqa: BLE001
                attempt["body"] = None
            attempt["error"] = f"HTTPError {e.code}"
        except Exception as e:  # noqa: BLE001 - the notify_url may point nowhere
            attempt["error"] = f"{type(e).__name__}: {e}"
        attempt["finished_at"] = time.time()
        with store.lock:
            order["notify_attempts"].append(attempt)
            if attempt["status"] == 200 and (attempt["body"] or "").strip() == "success":
                order["returning"] = True
        store.log(attempt)
        print(f"[ispay] notify {url} -> status={attempt['status']} "
              f"body={attempt['body']!r} error={attempt['error']}", file=sys.stderr, flush=True)

    threading.Thread(target=worker, daemon=True).start()


# ---------------------------------------------------------------------------
# HTTP handler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ispay-test-double/1.0"
    store: Store = None  # set in main()

    # quieter default logging, to stderr
    def log_message(self, fmt, *args):
        sys.stderr.write("[ispay] %s - %s\n" % (self.address_string(), fmt % args))

    # -- helpers --------------------------------------------------------------
    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            data = bytearray()
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # consume trailers
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

    def _send(self, status: int, body: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _finish(self, status: int, result, raw_body: bytes, extra=None, text=False,
                content_type=None):
        if text:
            body = result.encode("utf-8")
            ctype = content_type or "text/plain; charset=utf-8"
        else:
            body = json.dumps(result, ensure_ascii=False).encode("utf-8")
            ctype = "application/json; charset=utf-8"
        entry = {
            "event": "request",
            "method": self.command,
            "path": self._path,
            "query": self._query,
            "content_type": self.headers.get("Content-Type"),
            "body": raw_body.decode("utf-8", "replace"),
            "status": status,
            "result": result if not text or len(result) < 2000 else result[:2000],
        }
        if extra:
            entry.update(extra)
        self.store.log(entry)
        self._send(status, body, ctype)

    @staticmethod
    def fail(code: int, msg: str) -> dict:
        return {"success": False, "errorCode": code, "errorMsg": msg}

    # -- dispatch -------------------------------------------------------------
    def _dispatch(self):
        split = urllib.parse.urlsplit(self.path)
        self._path = split.path
        self._query = split.query
        raw = self._read_body()
        segs = [urllib.parse.unquote(s) for s in split.path.split("/")[1:]]
        m = self.command

        try:
            if m == "POST" and segs == ["gateway"]:
                return self.h_gateway(raw)
            if m == "GET" and len(segs) == 2 and segs[0] == "query":
                return self.h_query(raw, segs[1])
            if m == "GET" and len(segs) == 2 and segs[0] == "qrcode":
                return self.h_qrcode(raw, segs[1])
            if m == "GET" and len(segs) == 4 and segs[0] == "order":
                return self.h_order(raw, segs[1], segs[2], segs[3])
            if m == "GET" and len(segs) == 2 and segs[0] == "transfer":
                return self.h_transfer(raw, segs[1])
            if m == "POST" and len(segs) == 3 and segs[:2] == ["control", "state"]:
                return self.h_control_state(raw, segs[2])
            if m == "GET" and segs == ["control", "orders"]:
                return self._finish(200, self.store.snapshot(), raw)
        except Exception as e:  # noqa: BLE001
            print(f"[ispay] internal error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            return self._finish(500, f"internal error: {e}", raw, text=True)
        return self._finish(404, "404 page not found", raw, text=True)

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_DELETE = _dispatch
    do_PATCH = _dispatch

    # -- /gateway ---------------------------------------------------------------
    def h_gateway(self, raw: bytes):
        st = self.store
        extra = {}

        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return self._finish(200, self.fail(
                E_FORMAT, f"请求格式错误: Content-Type 必须为 application/x-www-form-urlencoded"
                          f" (收到 {self.headers.get('Content-Type')!r})"), raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self._finish(200, self.fail(E_FORMAT, "请求格式错误: 请求体不是有效的 UTF-8"), raw)
        try:
            pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                                           encoding="utf-8", errors="strict")
        except (ValueError, UnicodeDecodeError) as e:
            return self._finish(200, self.fail(E_FORMAT, f"请求格式错误: 无法解析表单 ({e})"), raw)

        form = {}
        for k, v in pairs:
            if k in form:
                return self._finish(200, self.fail(E_FORMAT, f"请求格式错误: 参数 {k} 重复"), raw)
            form[k] = v

        unknown = sorted(k for k in form if k not in REQUIRED_FIELDS + OPTIONAL_FIELDS)
        if unknown:
            extra["unknown_fields"] = unknown
            print(f"[ispay] /gateway: ignoring unknown fields {unknown}", file=sys.stderr, flush=True)

        def reject(code, msg):
            return self._finish(200, self.fail(code, msg), raw, extra)

        for f in REQUIRED_FIELDS:
            if form.get(f, "") == "":
                return reject(E_MISSING, f"缺少必填参数: {f}")

        userid = form["userid"]
        if not USERID_RE.match(userid):
            return reject(E_USERID, "商户ID错误: userid 必须为整数")
        if userid != st.userid:
            return reject(E_USERID, "商户ID错误: 商户不存在")

        if form["order_type"] not in ORDER_TYPES:
            return reject(E_ORDER_TYPE, f"订单类型错误: {form['order_type']} (支持 P901/P902/P904)")

        amount = form["amount"]
        if not AMOUNT_RE.match(amount):
            return reject(E_AMOUNT, f"金额格式错误: {amount} (必须保留2位小数, 如 300.00)")
        if int(amount.replace(".", "")) <= 0:
            return reject(E_AMOUNT, f"金额格式错误: {amount} (金额必须大于0)")

        for f in ("notify_url", "return_url"):
            u = urllib.parse.urlsplit(form[f])
            if u.scheme not in ("http", "https") or not u.netloc:
                name = "通知地址" if f == "notify_url" else "回调地址"
                return reject(E_URL, f"{name}格式错误: {f}={form[f]}")

        try:
            ipaddress.ip_address(form["ip"])
        except ValueError:
            return reject(E_IP, f"IP地址格式错误: {form['ip']}")

        expected = md5_hex(userid + form["order_no"] + form["order_type"] + amount
                           + form["return_url"] + st.key)
        if form["sign"] != expected:
            extra["expected_sign"] = expected
            return reject(E_SIGN, "签名错误")

        with st.lock:
            if form["order_no"] in st.by_no:
                return reject(E_CREATE_FAILED, f"订单创建失败!订单号重复: {form['order_no']}")
            order_id = st.new_order_id()
            now = time.time()
            order = {
                "order_id": order_id,
                "userid": userid,
                "order_no": form["order_no"],
                "order_type": form["order_type"],
                "amount": amount,
                "subject": form.get("subject"),
                "order_time": form.get("order_time"),
                "notify_url": form["notify_url"],
                "return_url": form["return_url"],
                "ip": form["ip"],
                "sign": form["sign"],
                "unknown_fields": {k: form[k] for k in unknown},
                "state": 1,
                "qrcode": "",
                "imgtext": "",
                "created_at": now,
                "create_time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
                "timeout": st.order_timeout,
                "auto_qr_done": False,
                "returning": False,
                "notify_attempts": [],
                "state_history": [{"state": 1, "at": now, "why": "created"}],
            }
            st.by_id[order_id] = order
            st.by_no[order["order_no"]] = order
            st.order_list.append(order)
        return self._finish(200, {"success": True, "errorCode": 0, "errorMsg": None,
                                  "order_id": order_id}, raw, extra)

    # -- /query/{order_id} ---------------------------------------------------------
    def h_query(self, raw: bytes, order_id: str):
        st = self.store
        with st.lock:
            o = st.get_by_id(order_id)
            if o is None:
                return self._finish(200, self.fail(0, NOT_FOUND_MSG), raw)
            result = {
                "success": True, "errorCode": 0, "errorMsg": None,
                "state": o["state"],
                "order": {
                    "qrcode": o["qrcode"],
                    "imgtext": o["imgtext"],
                    "alipayuid": "",
                    "amount": amount_number(o["amount"]),
                    "sn": o["order_id"],
                    "timeout": o["timeout"],
                },
            }
        return self._finish(200, result, raw)

    # -- /qrcode/{order_id} ---------------------------------------------------------
    def h_qrcode(self, raw: bytes, order_id: str):
        st = self.store
        with st.lock:
            o = st.get_by_id(order_id)
            if o is None:
                return self._finish(200, self.fail(0, NOT_FOUND_MSG), raw)
            result = {
                "success": True, "errorCode": 0, "errorMsg": None,
                "order": {
                    "state": o["state"],
                    "qrcode": o["qrcode"],
                    "imgtext": o["imgtext"],
                    "amount": amount_number(o["amount"]),
                    "sn": o["order_id"],
                    "timeout": o["timeout"],
                },
            }
        return self._finish(200, result, raw)

    # -- /order/{userid}/{order_no}/{md5} ------------------------------------------
    def h_order(self, raw: bytes, userid: str, order_no: str, sig: str):
        st = self.store
        if userid != st.userid:
            return self._finish(200, self.fail(E_USERID, "商户ID错误: 商户不存在"), raw)
        expected = md5_hex(userid + order_no + st.key)
        if sig != expected:
            return self._finish(200, self.fail(E_SIGN, "签名错误"), raw,
                                {"expected_sign": expected})
        with st.lock:
            o = st.get_by_no(order_no)
            if o is None:
                return self._finish(200, self.fail(0, NOT_FOUND_MSG), raw)
            result = {
                "success": True, "errorCode": 0, "errorMsg": None,
                "order": {
                    "sn": o["order_no"],
                    "state": o["state"],
                    "qrcode": o["qrcode"],
                    "imgtext": o["imgtext"],
                    "returnURL": o["return_url"],
                    "returning": o["returning"],
                    "amount": amount_number(o["amount"]),
                    "ip": o["ip"],
                    "paytype": o["order_type"],
                    "create_time": o["create_time"],
                },
            }
        return self._finish(200, result, raw)

    # -- /transfer/{order_id} (browser route; minimal page) --------------------------
    def h_transfer(self, raw: bytes, order_id: str):
        o = self.store.get_by_id(order_id)
        if o is None:
            return self._finish(200, "<html><body>订单不存在</body></html>", raw, text=True,
                                content_type="text/html; charset=utf-8")
        page = ("<!doctype html><html><head><meta charset='utf-8'><title>ispay</title></head>"
                f"<body><p>订单 {o['order_id']} 金额 {o['amount']} 状态 {o['state']}</p>"
                + (f"<img src='{o['imgtext']}'>" if o["imgtext"] else "<p>正在出码...</p>")
                + "</body></html>")
        return self._finish(200, page, raw, text=True, content_type="text/html; charset=utf-8")

    # -- /control/state/{order_no}?state=N -------------------------------------------
    def h_control_state(self, raw: bytes, ref: str):
        st = self.store
        q = urllib.parse.parse_qs(self._query)
        try:
            state = int(q.get("state", [""])[0])
        except ValueError:
            return self._finish(400, "bad state", raw, text=True)
        if state not in VALID_STATES:
            return self._finish(400, "bad state", raw, text=True)
        with st.lock:
            o = st.by_no.get(ref) or st.by_id.get(ref)
            if o is None:
                return self._finish(404, "unknown order", raw, text=True)
            st.refresh(o)
            o["auto_qr_done"] = True  # an explicit state wins over the auto 1 -> 5 step
            st._set_state(o, state, "control")
        if state == 9:
            send_notify(st, o)
        return self._finish(200, "ok", raw, text=True)


# ---------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description="ispay.in v1 protocol test double")
    p.add_argument("--userid", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--requests-log", default=None)
    p.add_argument("--qr-delay", type=float, default=QR_DELAY_DEFAULT,
                   help="seconds before a new order goes 1 -> 5 (default 0.3)")
    p.add_argument("--order-timeout", type=int, default=ORDER_TIMEOUT_DEFAULT,
                   help="seconds before an unpaid order expires -> 6 (default 900)")
    args = p.parse_args(argv)
    if not USERID_RE.match(args.userid):
        p.error("--userid must be an integer")

    log_path = os.path.abspath(args.requests_log) if args.requests_log else None
    Handler.store = Store(args.userid, args.key, args.qr_delay, args.order_timeout, log_path)

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
