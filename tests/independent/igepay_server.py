#!/usr/bin/env python3
"""Independent reference implementation (test double) of the igepay.com payment-provider
HTTP protocol.

Written only from the protocol documents:
  * the original Chinese API doc (seed 001), and
  * PROVIDERS.md section "2. igepay.com", subsection 2a (2b, PaysApi, only as background
    for the parts 2a marks UNKNOWN / INFERRED).
It deliberately shares no code with the client under test.

Usage:
    python3 igepay_server.py --uid 10001 --token SOMETOKEN [--port 0] [--requests-log FILE]

Binds 127.0.0.1:PORT (0 = random) and prints exactly one line
    LISTENING http://127.0.0.1:PORT
to stdout once ready, then serves until killed.  Diagnostics go to stderr.

Protocol endpoint
-----------------
POST /Home/Pay/payFor     create an order ("跳转支付页接口").  The payer's browser posts an
                          application/x-www-form-urlencoded form; the answer is an HTML pay
                          page showing the QR, the amount and the order.
GET  /Home/Pay/payFor?... TOLERANCE, NOT IN THE DOC: the same fields as a query string (a
                          client that can only hand the payer's browser a link).  Validated
                          exactly like the POST form.
igepay documents NO status/query endpoint, so this double has none.

Request fields (seed 001):
    uid         required, int(10), must equal --uid (compared as the exact string)
    price       required, yuan, exactly 2 decimals ("12.30"), > 0
    type        required, "1" = WeChat, "2" = Alipay
    notify_url  required, string(255), absolute http(s) URL, not URL-encoded
    return_url  required, string(255), absolute http(s) URL, not URL-encoded
    order_id    required, string(50); a repeated order_id is refused
    order_uid   optional, string(100)
    order_name  optional, string(100)
    key         required, md5 (32 lowercase hex) of the VALUES of all parameters used,
                token included, concatenated in ascending order of parameter NAME (the
                token sorts as "token"); values raw (not URL-encoded); optional parameters
                that were not sent are left out.  For the full set:
        notify_url + order_id + order_name + order_uid + price + return_url + token + type + uid

Notify (server -> merchant), POST application/x-www-form-urlencoded to notify_url:
    pay_num, transaction_id, order_id, price, [order_uid], code=0000, key, sign
    sign = md5(order_id + price + token)
The merchant must answer the lowercase text "success".

Test-control endpoints (NOT part of the protocol), keyed by the merchant's order_id
(the platform pay_num is accepted too):
POST /control/pay/{order_id}[?wait=1]              mark paid and send the notify.
                                                   Answers text "ok"; 404 "unknown order";
                                                   409 "already paid" (use /control/notify
                                                   to resend).
POST /control/notify/{order_id}[?forged=1][&wait=1] send the notify again (forged=1: a
                                                   well-formed but wrong sign).  Allowed in
                                                   any state.  Answers "ok" / 404.
     wait=1 makes either call block until the notify attempt has finished (<= ~2 s).
GET  /control/orders                               JSON list of all orders: every received
                                                   field, state, pay_num, transaction_id,
                                                   notify attempts.

Error answers (the doc only shows the JSON shape {"msg": "错误信息", "code": }; everything
else here is this double's choice).  Always HTTP 200, as a PHP gateway would answer.
Form mode (default): an HTML page "<h1>支付请求错误</h1>" with the message in
    <p id="error" data-code="NNNN">msg</p>
JSON mode (query ?format=json, or an Accept header that asks for application/json and not
text/html; either switch also makes a success answer JSON, see below):
    {"msg": "<message>", "code": NNNN}
    1001  缺少必填参数 (missing or empty required field)
    1002  商户uid错误 (uid not an int(10) or not equal to --uid)
    1003  支付渠道错误 (type not 1/2)
    1004  价格格式错误 (price not "N.NN" with exactly two decimals, or not > 0)
    1005  网址格式错误 (notify_url/return_url not an absolute http(s) URL, URL-encoded, >255)
    1006  参数长度错误 (order_id > 50, order_uid > 100, order_name > 100 characters)
    1007  key错误 (key not 32 lowercase hex, or not the expected md5)
    1008  订单号重复 (order_id already used)
    1009  请求格式错误 (wrong Content-Type, undecodable body, a field sent twice)
Unknown paths: 404 text.  Other methods on /Home/Pay/payFor: 405 text.

Ambiguities and the choices made (also repeated at the relevant code):
  * Key and order_uid: the seed's "full set" example string omits order_uid, but its rule
    ("all parameters used, sorted by name") includes it, between order_name and price.
    The rule wins.  When a key is wrong the log says if it matches the example-string
    variant without order_uid (and a few other common mistakes) under "key_hints".
  * Optional parameter sent with an empty value: it is "sent", but an empty value adds
    nothing to a separator-less concatenation, so both readings give the same key.
  * Unknown fields are ignored (not part of the key, which uses only the documented
    parameters), listed under "unknown_fields" in the log and the order record.
  * JSON mode is UNKNOWN in the doc; PROVIDERS.md 2a suggests (INFERRED) the same URL plus
    a JSON switch, answering like PaysApi.  Chosen: "?format=json" in the query string
    (never part of the key; also honoured in the GET tolerance), or an Accept header asking
    for application/json without text/html, answers {"msg", "code": 1, "url": return_url,
    "data": {"qrcode", "istype": type, "realprice": <number>}}.  This double never nudges
    the amount, so realprice == price.
  * "我们会据此判别是同一笔订单还是新订单" could mean a repeated order_id re-shows the same
    order; per the brief a repeated order_id is refused (code 1008), even if identical.
    The log records "identical_resubmission" in that case.
  * order_uid in the notify "if given": sent whenever the create request contained the
    field, even with an empty value ("原封不动传回").
  * price in the notify is echoed exactly as received (already validated as N.NN).
  * No automatic notify retries (the doc names none); /control/notify resends.
  * The notify is only ever sent to http://127.0.0.1 / http://localhost URLs (never
    elsewhere; no proxies, no redirects followed); 2 s timeout; errors recorded, ignored.
  * The pay page does not redirect the payer to return_url after payment: that would need
    an undocumented status endpoint.  return_url is shown as a data attribute only.
  * Path matched exactly ("/Home/Pay/payFor"); a case-insensitive match gets a 404 that
    names the right path.  Form bodies must be application/x-www-form-urlencoded in UTF-8
    (multipart/form-data refused with 1009).
  * On POST only the body is read; query-string fields other than "format" are listed as
    unknown fields and ignored.
"""

import argparse
import base64
import hashlib
import html
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

PAY_PATH = "/Home/Pay/payFor"
REQUIRED_FIELDS = ("uid", "price", "type", "notify_url", "return_url", "order_id", "key")
OPTIONAL_FIELDS = ("order_uid", "order_name")
KNOWN_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
TYPES = {"1": "微信支付", "2": "支付宝"}          # 1 = WeChat, 2 = Alipay
MAX_LEN = {"notify_url": 255, "return_url": 255, "order_id": 50,
           "order_uid": 100, "order_name": 100}
NOTIFY_TIMEOUT = 2.0
LOCAL_HOSTS = ("127.0.0.1", "localhost")

PRICE_RE = re.compile(r"^(0|[1-9][0-9]*)\.[0-9]{2}$")
UID_RE = re.compile(r"^[0-9]{1,10}$")
KEY_RE = re.compile(r"^[0-9a-f]{32}$")

E_MISSING = 1001
E_UID = 1002
E_TYPE = 1003
E_PRICE = 1004
E_URL = 1005
E_LENGTH = 1006
E_KEY = 1007
E_DUPLICATE = 1008
E_FORMAT = 1009


def md5_hex(s: str) -> str:
    return hashlib.md5(s.encode("utf-8")).hexdigest()


def key_string(fields: dict, token: str, names=None) -> str:
    """Values of the documented parameters that were sent (minus key), plus the token,
    concatenated in ascending order of parameter name."""
    items = {k: v for k, v in fields.items()
             if k in KNOWN_FIELDS and k != "key" and (names is None or k in names)}
    items["token"] = token
    return "".join(items[k] for k in sorted(items))


def key_hints(fields: dict, token: str, unknown: dict) -> list:
    """Which common mistake (if any) the received key matches.  Diagnostics only."""
    got = fields.get("key", "")
    hints = []

    def check(label, s):
        h = md5_hex(s)
        if got == h:
            hints.append(label)
        elif got == h.upper():
            hints.append(label + " (uppercase hex)")

    if got == md5_hex(key_string(fields, token)).upper():
        hints.append("uppercase hex (the doc asks for lowercase)")
    if "order_uid" in fields:
        check("order_uid left out (the doc's example order)",
              key_string(fields, token, set(KNOWN_FIELDS) - {"order_uid"}))
    if unknown:
        merged = dict(fields)
        items = {k: v for k, v in merged.items() if k != "key" and k in KNOWN_FIELDS}
        items.update(unknown)
        items["token"] = token
        check("unknown fields included", "".join(items[k] for k in sorted(items)))
    for which in (("notify_url",), ("return_url",), ("notify_url", "return_url")):
        for safe in ("", "/"):
            enc = {k: (urllib.parse.quote(v, safe=safe) if k in which else v)
                   for k, v in fields.items()}
            check("URL-encoded values signed: " + "+".join(which), key_string(enc, token))
    no_tok = {k: v for k, v in fields.items() if k in KNOWN_FIELDS and k != "key"}
    check("token left out", "".join(no_tok[k] for k in sorted(no_tok)))
    check("token appended at the end instead of sorted in",
          "".join(no_tok[k] for k in sorted(no_tok)) + token)
    check("values in the doc table order, not sorted",
          "".join(fields[k] for k in KNOWN_FIELDS if k in fields and k != "key") + token)
    return hints


# ---------------------------------------------------------------------------
# tiny PNG generator (no third-party libs): a QR-looking, NOT scannable, image

def _chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def fake_qr_png(seed: str, n: int = 25, scale: int = 4, border: int = 2) -> bytes:
    digest = b""
    i = 0
    while len(digest) * 8 < n * n:
        digest += hashlib.sha256(f"{seed}/{i}".encode()).digest()
        i += 1
    bits = [(digest[j // 8] >> (j % 8)) & 1 for j in range(n * n)]
    grid = [bits[r * n:(r + 1) * n] for r in range(n)]
    for r0, c0 in ((0, 0), (0, n - 7), (n - 7, 0)):
        for r in range(7):
            for c in range(7):
                ring = r in (0, 6) or c in (0, 6)
                core = 2 <= r <= 4 and 2 <= c <= 4
                grid[r0 + r][c0 + c] = 1 if ring or core else 0
    size = (n + 2 * border) * scale
    raw = bytearray()
    for y in range(size):
        raw.append(0)
        gy = y // scale - border
        for x in range(size):
            gx = x // scale - border
            dark = 0 <= gy < n and 0 <= gx < n and grid[gy][gx]
            raw.append(0 if dark else 255)
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(bytes(raw), 9))
            + _chunk(b"IEND", b""))


def make_qrcode_text(type_: str) -> str:
    alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
    if type_ == "1":  # WeChat
        return "wxp://f2f0" + "".join(secrets.choice(alnum + alnum.upper()[:26])
                                      for _ in range(11))
    return "https://qr.alipay.com/fkx" + "".join(secrets.choice(alnum) for _ in range(22))


def make_transaction_id(type_: str) -> str:
    digits = "".join(secrets.choice("0123456789") for _ in range(18))
    if type_ == "1":  # WeChat-style serial, 28 digits
        return "4200000" + time.strftime("%y%m") + digits[:17]
    return time.strftime("%Y%m%d") + "2200" + digits[:16]  # Alipay-style, 28 digits


# ---------------------------------------------------------------------------
# server state

class Store:
    def __init__(self, uid: str, token: str, log_path):
        self.uid = uid
        self.token = token
        self.lock = threading.RLock()
        self.orders = {}        # merchant order_id -> order
        self.by_pay_num = {}
        self.order_list = []
        self.counter = 0
        self.log_path = log_path
        self.log_lock = threading.Lock()

    def log(self, entry: dict):
        if not self.log_path:
            return
        line = json.dumps(entry, ensure_ascii=False)
        with self.log_lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()

    def new_pay_num(self) -> str:
        with self.lock:
            self.counter += 1
            return "IGE" + time.strftime("%Y%m%d%H%M%S") + f"{self.counter:06d}"

    def find(self, ref: str):
        with self.lock:
            return self.orders.get(ref) or self.by_pay_num.get(ref)

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.order_list, ensure_ascii=False))


# ---------------------------------------------------------------------------
# notify

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # never follow: a redirect could lead off localhost


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def is_local_url(url: str) -> bool:
    try:
        u = urllib.parse.urlsplit(url)
        return u.scheme == "http" and (u.hostname or "").lower() in LOCAL_HOSTS
    except ValueError:
        return False


def send_notify(store: Store, order: dict, forged: bool, why: str) -> threading.Thread:
    with store.lock:
        sign = md5_hex(order["order_id"] + order["price"] + store.token)
        if forged:
            # well-formed (32 lowercase hex) but wrong
            sign = md5_hex(order["order_id"] + order["price"] + store.token + "#forged")
        params = [("pay_num", order["pay_num"]),
                  ("transaction_id", order["transaction_id"] or ""),
                  ("order_id", order["order_id"]),
                  ("price", order["price"])]
        if "order_uid" in order["fields"]:
            params.append(("order_uid", order["fields"]["order_uid"]))
        params += [("code", "0000"), ("key", order["fields"]["key"]), ("sign", sign)]
        url = order["fields"]["notify_url"]
        state = order["state"]
    body = urllib.parse.urlencode(params)

    def worker():
        attempt = {"event": "notify", "why": why, "method": "POST", "url": url,
                   "order_id": order["order_id"], "order_state": state, "forged": forged,
                   "content_type": "application/x-www-form-urlencoded",
                   "fields": dict(params), "body": body, "started_at": time.time(),
                   "status": None, "response_body": None, "error": None,
                   "acknowledged": False, "ack_exact": False}
        if not is_local_url(url):
            attempt["error"] = "not sent: notify_url is not an http://127.0.0.1 or " \
                               "http://localhost URL (this double never sends elsewhere)"
        else:
            req = urllib.request.Request(
                url, data=body.encode("utf-8"), method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded",
                         "User-Agent": "igepay-test-double/1.0"})
            try:
                with _OPENER.open(req, timeout=NOTIFY_TIMEOUT) as resp:
                    attempt["status"] = resp.status
                    attempt["response_body"] = resp.read(65536).decode("utf-8", "replace")
            except urllib.error.HTTPError as e:
                attempt["status"] = e.code
                try:
                    attempt["response_body"] = e.read(65536).decode("utf-8", "replace")
                except Exception:  # noqa: BLE001
                    pass
                attempt["error"] = f"HTTPError {e.code}"
            except Exception as e:  # noqa: BLE001 - connection errors are ignored
                attempt["error"] = f"{type(e).__name__}: {e}"
        rb = attempt["response_body"]
        attempt["ack_exact"] = attempt["status"] == 200 and rb == "success"
        attempt["acknowledged"] = attempt["status"] == 200 and (rb or "").strip() == "success"
        attempt["finished_at"] = time.time()
        with store.lock:
            order["notify_attempts"].append(attempt)
        store.log(attempt)
        print(f"[igepay] notify {url} forged={forged} -> status={attempt['status']} "
              f"body={rb!r} error={attempt['error']}", file=sys.stderr, flush=True)

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    return t


# ---------------------------------------------------------------------------
# HTTP handler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "igepay-test-double/1.0"
    store: Store = None  # set in main()

    def log_message(self, fmt, *args):
        sys.stderr.write("[igepay] %s - %s\n" % (self.address_string(), fmt % args))

    # -- helpers --------------------------------------------------------------
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

    def _finish(self, status: int, body: bytes, ctype: str, raw: bytes, result, extra=None):
        entry = {
            "event": "request",
            "method": self.command,
            "path": self._path,
            "query": self._query,
            "headers": self._headers_dict(),
            "content_type": self.headers.get("Content-Type"),
            "body": raw.decode("utf-8", "replace"),
            "status": status,
            "result": result,
            "response_content_type": ctype,
        }
        if extra:
            entry.update(extra)
        self.store.log(entry)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _text(self, status: int, text: str, raw: bytes, extra=None):
        return self._finish(status, text.encode("utf-8"), "text/plain; charset=utf-8", raw,
                            text, extra)

    def _json(self, status: int, obj, raw: bytes, extra=None, result=None):
        return self._finish(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"),
                            "application/json; charset=utf-8", raw,
                            obj if result is None else result, extra)

    def _html(self, status: int, page: str, raw: bytes, result, extra=None):
        return self._finish(status, page.encode("utf-8"), "text/html; charset=utf-8", raw,
                            result, extra)

    # -- dispatch -------------------------------------------------------------
    def _dispatch(self):
        split = urllib.parse.urlsplit(self.path)
        self._path = split.path
        self._query = split.query
        raw = self._read_body()
        m = self.command
        p = split.path
        segs = [urllib.parse.unquote(s) for s in p.split("/")[1:]]
        try:
            if p == PAY_PATH:
                if m in ("POST", "GET"):
                    return self.h_pay_for(raw)
                return self._text(405, "405 method not allowed (POST form, or GET query)",
                                  raw)
            if m == "POST" and len(segs) == 3 and segs[:2] == ["control", "pay"]:
                return self.h_control_pay(raw, segs[2])
            if m == "POST" and len(segs) == 3 and segs[:2] == ["control", "notify"]:
                return self.h_control_notify(raw, segs[2])
            if m == "GET" and segs == ["control", "orders"]:
                return self._json(200, self.store.snapshot(), raw, result="(orders list)")
            if p.rstrip("/").lower() == PAY_PATH.lower():
                return self._text(404, f"404 page not found (the path is exactly {PAY_PATH})",
                                  raw)
        except Exception as e:  # noqa: BLE001
            print(f"[igepay] internal error: {type(e).__name__}: {e}", file=sys.stderr,
                  flush=True)
            return self._text(500, f"internal error: {e}", raw)
        return self._text(404, "404 page not found", raw)

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_DELETE = _dispatch
    do_PATCH = _dispatch
    do_HEAD = _dispatch

    # -- /Home/Pay/payFor ------------------------------------------------------
    def _wants_json(self, query_pairs) -> bool:
        # JSON mode switch: "?format=json" (INFERRED from PaysApi, see module doc), or an
        # Accept header that asks for JSON and not HTML.  Selects JSON for both the error
        # and the success answer.
        if any(k == "format" and v.lower() == "json" for k, v in query_pairs):
            return True
        accept = (self.headers.get("Accept") or "").lower()
        return "application/json" in accept and "text/html" not in accept

    def _error(self, raw, json_mode, code, msg, extra):
        result = {"msg": msg, "code": code}
        if json_mode:
            return self._json(200, result, raw, extra)
        page = ("<!doctype html><html><head><meta charset='utf-8'><title>支付请求错误</title>"
                "</head><body><h1>支付请求错误</h1>"
                f"<p id='error' data-code='{code}'>{html.escape(msg)}</p>"
                "</body></html>")
        return self._html(200, page, raw, result, extra)

    def h_pay_for(self, raw: bytes):
        st = self.store
        extra = {}
        try:
            query_pairs = urllib.parse.parse_qsl(self._query, keep_blank_values=True,
                                                 encoding="utf-8", errors="strict")
        except (ValueError, UnicodeDecodeError):
            query_pairs = []
        json_mode = self._wants_json(query_pairs)

        def reject(code, msg):
            return self._error(raw, json_mode, code, msg, extra)

        # --- where the fields come from
        if self.command == "POST":
            ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if ctype != "application/x-www-form-urlencoded":
                return reject(E_FORMAT, "请求格式错误: Content-Type 必须为 "
                                        "application/x-www-form-urlencoded (收到 "
                                        f"{self.headers.get('Content-Type')!r})")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return reject(E_FORMAT, "请求格式错误: 表单不是有效的 UTF-8")
            # On POST only the body counts; query fields other than "format" are unknown.
            stray = {k: v for k, v in query_pairs if k != "format"}
        else:
            # GET: TOLERANCE, not in the doc (the doc says Post) -- same fields as a query.
            text = self._query
            stray = {}
        try:
            pairs = urllib.parse.parse_qsl(text, keep_blank_values=True,
                                           strict_parsing=bool(text),
                                           encoding="utf-8", errors="strict")
        except (ValueError, UnicodeDecodeError) as e:
            return reject(E_FORMAT, f"请求格式错误: 无法解析参数 ({e})")
        if self.command == "GET":
            pairs = [(k, v) for k, v in pairs if k != "format"]  # the JSON switch

        fields = {}
        for k, v in pairs:
            if k in fields:
                return reject(E_FORMAT, f"请求格式错误: 参数 {k} 重复")
            fields[k] = v
        unknown = {k: v for k, v in fields.items() if k not in KNOWN_FIELDS}
        unknown.update({k: v for k, v in stray.items() if k not in unknown})
        if unknown:
            extra["unknown_fields"] = sorted(unknown)
            print(f"[igepay] {PAY_PATH}: ignoring unknown fields {sorted(unknown)}",
                  file=sys.stderr, flush=True)

        # --- key diagnostics (computed whenever possible, logged when wrong)
        if "key" in fields:
            s = key_string(fields, st.token)
            expected = md5_hex(s)
            key_ok = fields["key"] == expected
            if not key_ok:
                extra["expected_key"] = expected
                extra["key_string"] = key_string(fields, "<token>")
                hints = key_hints(fields, st.token, unknown)
                if hints:
                    extra["key_hints"] = hints
        else:
            key_ok = False

        # --- validation, in this order
        for f in REQUIRED_FIELDS:
            if fields.get(f, "") == "":
                return reject(E_MISSING, f"缺少必填参数: {f}")

        uid = fields["uid"]
        if not UID_RE.match(uid):
            return reject(E_UID, f"商户uid错误: uid 必须为整数 (收到 {uid!r})")
        if uid != st.uid:
            return reject(E_UID, f"商户uid错误: 商户不存在 (uid={uid})")

        price = fields["price"]
        if not PRICE_RE.match(price):
            return reject(E_PRICE, f"价格格式错误: {price!r} (单位元, 精确到小数点后2位, 如 12.30)")
        if int(price.replace(".", "")) <= 0:
            return reject(E_PRICE, f"价格格式错误: {price} (价格必须大于0)")

        if fields["type"] not in TYPES:
            return reject(E_TYPE, f"支付渠道错误: type={fields['type']!r} (1: 微信支付; 2: 支付宝)")

        for f in ("notify_url", "return_url"):
            v = fields[f]
            if re.match(r"^https?%3a", v, re.I):
                return reject(E_URL, f"网址格式错误: {f} 不要 urlencode (收到 {v})")
            u = urllib.parse.urlsplit(v)
            if u.scheme not in ("http", "https") or not u.netloc:
                return reject(E_URL, f"网址格式错误: {f}={v} (必须为完整的 http(s) 网址)")

        for f, n in MAX_LEN.items():
            if f in fields and len(fields[f]) > n:
                if f in ("notify_url", "return_url"):
                    return reject(E_URL, f"网址格式错误: {f} 超过 {n} 个字符")
                return reject(E_LENGTH, f"参数长度错误: {f} 超过 {n} 个字符 "
                                        f"(收到 {len(fields[f])})")

        if not KEY_RE.match(fields["key"]):
            return reject(E_KEY, "key错误: 必须为32位小写md5")
        if not key_ok:
            return reject(E_KEY, "key错误")

        with st.lock:
            old = st.orders.get(fields["order_id"])
            if old is not None:
                extra["identical_resubmission"] = old["fields"] == fields
                return reject(E_DUPLICATE, f"订单号重复: {fields['order_id']}")
            qrcode = make_qrcode_text(fields["type"])
            order = {
                "order_id": fields["order_id"],
                "pay_num": st.new_pay_num(),
                "price": price,
                "type": fields["type"],
                "fields": fields,               # every received field, as received
                "unknown_fields": unknown,
                "via": self.command,
                "json_mode": json_mode,
                "state": "unpaid",
                "qrcode": qrcode,
                "transaction_id": None,
                "created_at": time.time(),
                "paid_at": None,
                "notify_attempts": [],
            }
            st.orders[order["order_id"]] = order
            st.by_pay_num[order["pay_num"]] = order
            st.order_list.append(order)

        result = {"code": 1, "msg": "ok", "order_id": order["order_id"],
                  "pay_num": order["pay_num"], "qrcode": qrcode, "price": price,
                  "type": fields["type"]}
        if json_mode:
            # INFERRED shape (PaysApi analogy, PROVIDERS.md 2a/2b); realprice == price here.
            answer = {"msg": "下单成功", "code": 1, "url": fields["return_url"],
                      "data": {"qrcode": qrcode, "istype": fields["type"],
                               "realprice": float(price)}}
            return self._json(200, answer, raw, extra, result=result)

        img = "data:image/png;base64," + base64.b64encode(fake_qr_png(qrcode)).decode()
        e = html.escape
        page = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>igepay 收银台 - {e(TYPES[fields['type']])}</title></head><body>"
            f"<div id='igepay-order' data-order-id='{e(order['order_id'], True)}' "
            f"data-pay-num='{e(order['pay_num'], True)}' data-price='{e(price, True)}' "
            f"data-type='{e(fields['type'], True)}' data-qrcode='{e(qrcode, True)}' "
            f"data-return-url='{e(fields['return_url'], True)}'>"
            f"<h1>{e(TYPES[fields['type']])}</h1>"
            f"<p class='amount'>¥ <span id='price'>{e(price)}</span></p>"
            f"<p>商品: {e(fields.get('order_name', ''))}</p>"
            f"<p>订单号: {e(order['order_id'])} / 平台单号: {e(order['pay_num'])}</p>"
            f"<img id='qrcode' alt='{e(qrcode, True)}' src='{img}'>"
            f"<p>请使用{e(TYPES[fields['type']])}扫码支付</p>"
            "</div></body></html>")
        return self._html(200, page, raw, result, extra)

    # -- control ---------------------------------------------------------------
    def _query_flag(self, name: str) -> bool:
        q = urllib.parse.parse_qs(self._query)
        return q.get(name, [""])[0] not in ("", "0", "false")

    def h_control_pay(self, raw: bytes, ref: str):
        st = self.store
        with st.lock:
            o = st.find(ref)
            if o is None:
                return self._text(404, "unknown order", raw)
            if o["state"] == "paid":
                return self._text(409, "already paid", raw)
            o["state"] = "paid"
            o["paid_at"] = time.time()
            o["transaction_id"] = make_transaction_id(o["type"])
        t = send_notify(st, o, forged=False, why="pay")
        if self._query_flag("wait"):
            t.join(NOTIFY_TIMEOUT + 3)
        return self._text(200, "ok", raw)

    def h_control_notify(self, raw: bytes, ref: str):
        st = self.store
        o = st.find(ref)
        if o is None:
            return self._text(404, "unknown order", raw)
        t = send_notify(st, o, forged=self._query_flag("forged"), why="resend")
        if self._query_flag("wait"):
            t.join(NOTIFY_TIMEOUT + 3)
        return self._text(200, "ok", raw)


# ---------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description="igepay.com protocol test double")
    p.add_argument("--uid", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--requests-log", default=None)
    args = p.parse_args(argv)
    if not UID_RE.match(args.uid):
        p.error("--uid must be an integer of at most 10 digits")

    log_path = os.path.abspath(args.requests_log) if args.requests_log else None
    Handler.store = Store(args.uid, args.token, log_path)

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
