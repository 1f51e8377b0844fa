#!/usr/bin/env python3
"""Independent reference implementation (test double) of the gatepay.io
payment-provider HTTP protocol.

Written only from the protocol documents:
  * the original Chinese API doc (seed 002, gatepay-io/docs api.md), and
  * PROVIDERS.md section "3. gatepay.io" (plus its "Conventions").
It shares no code with the client under test.

Usage:
    python3 gatepay_server.py --appkey KEY --appsecret SECRET [--port 0] [--requests-log FILE]
        [--notify-method POST|GET] [--notify-appkey] [--notify-retries N]
        [--notify-retry-interval S] [--order-timeout S] [--reject-unknown-fields]
        [--require-custom]

Binds 127.0.0.1:PORT (0 = random) and prints exactly one line
    LISTENING http://127.0.0.1:PORT
to stdout once ready, then serves until killed.  Diagnostics go to stderr.

Sign (Conventions: md5 = 32 lowercase hex over UTF-8; "+" = plain concatenation):
    create  sign = md5(md5(appkey + price + type + out_order_id + custom) + appsecret)
    check   sign = md5(md5(appkey + out_order_id) + appsecret)
    notify  sign = md5(md5(appkey + order_id + out_order_id + price + realprice + type
                           + paytime + extend) + appsecret)
notify_url / return_url / _t are NOT in the create sign.  Signs are compared exactly
(an upper-case hex sign is a wrong sign).

Protocol endpoints
------------------
POST /api/anypay/create     create an any-amount order.  Fields: appkey, price, type,
                            out_order_id, custom, sign, [notify_url], [return_url].
                            Read from a form-urlencoded body.  The same fields are also
                            accepted as a GET query string, because the PHP SDK's make()
                            helper builds GET URLs (`...create?<params>&appkey&sign&_t=`).
                            On a POST, query-string fields are merged with body fields
                            (PHP/ThinkPHP-style "param" input); a field given twice is
                            rejected (see 106 below).
POST /api/cloudpay/create   the cloud variant (cloud.gatepay.io): same fields and sign,
                            alipay only, the answer has no qrcode_body.  GET accepted too.
GET  /api/order/check       appkey, out_order_id, sign (query string).  GET only (the doc
                            says GET); any other method gets HTTP 405.
GET  /pay/api?id=&type=     the gatepay-hosted payment page pay_url points at (a minimal
                            HTML page; the `format=json` variant's fields are UNKNOWN, so
                            it is not implemented and the HTML page is served regardless).
GET  /qrcode/build?size=&text=   the QR-image generator qrcode_url points at (PNG).

Success (create):
    {"code":100,"msg":"请求成功","time":"<unix>","data":{
        "pay_url":"http://127.0.0.1:PORT/pay/api?id=<id>&type=<type>",
        "qrcode_url":"http://127.0.0.1:PORT/qrcode/build?size=130&text=<urlencoded pay_url>",
        "qrcode_body":"data:image/png;base64,<PNG>",            (anypay only)
        "params":{...the request's parameters, as received...}}}
Success (check):
    {"code":100,"msg":"请求成功","time":"<unix>","data":{"order_id":<int>,
        "order_name":"任意金额支付:<price>元","order_price":"<price>",
        "order_type":"wechat|alipay","order_status":"unpaid|paid|expired"}}
Errors: HTTP 200, {"code":<n>,"msg":"<the seed's Chinese text>","time":"<unix>","data":null}
The JSON is compact, keeps Chinese unescaped and escapes "/" as "\\/" -- what PHP's
json_encode(..., JSON_UNESCAPED_UNICODE) produces and what the seed's examples show
("https:\\/\\/gatepay.io" next to raw "请求成功").  Content-Type application/json; charset=utf-8.

Codes used (all texts are the seed's):
    100 请求成功
    101 秘钥必须          appkey missing or empty
    102 无效的秘钥        appkey != --appkey
    103 签名必须          sign missing or empty
    104 无效的签名        sign mismatch
    105 参数缺失          another required field missing (empty counts as missing,
                          except custom -- see below)
    106 存在禁止传递的参数  CHOICE: a field given more than once (e.g. in both query and
                          body); with --reject-unknown-fields also any unknown field.
                          The real list of "forbidden" parameters is UNKNOWN.
    199 未知错误          CHOICE: duplicate out_order_id on create (the docs define no
                          code for it); also an undecodable (non-UTF-8) request.
    201 价格无效          (create) price not exactly "N.NN" (2 decimals, no sign, no
                          leading zeros) or not > 0
    201 订单不存在        (check) unknown out_order_id
    202 无效的支付方式    type not exactly "wechat" or "alipay"
    203 当前支付方式已关闭 CHOICE: cloudpay with type=wechat (cloud.md: alipay only)
Validation order (CHOICE; the doc gives none): repeated field (106) -> unknown fields
(106, only with --reject-unknown-fields) -> appkey (101, 102) -> sign present (103) ->
other required fields (105) -> sign value (104) -> price (201) -> type (202, 203) ->
duplicate out_order_id (199).  The sign is checked before the values' formats.

Decisions on ambiguities
------------------------
* custom: the seed's "必选" column lost its marks, so whether custom is required is not
  readable.  CHOICE: the field must be present (else 105) but may be empty (it is just
  concatenated into the sign, so "" is well defined).  --require-custom makes an empty
  custom a 105 too.
* notify_url / return_url: optional, not in the sign.  If notify_url is absent the order
  can never be notified (this double has no backend-configured URL); a notify_url that is
  not an absolute http(s) URL is accepted but recorded as a warning.  The cloud doc's
  field table lists neither, but PROVIDERS.md says cloud's fields are the same, so both
  are accepted on cloudpay too (with a warning in the log).
* Unknown fields are ignored (listed as "unknown_fields" in the log and the order).
  `_t` (added by the SDK's make()) is known and ignored.
* "params" in the answer echoes the request's parameters exactly as received (the doc:
  "请求的参数"), including notify_url/return_url/_t when sent.
* qrcode_body: the seed labels it "data:image/jpeg;base64," although its bytes are a PNG
  (iVBORw0KGgo...).  This double sends "data:image/png;base64," with a real PNG.  The PNG
  is a QR-looking pattern derived from pay_url, NOT a decodable QR code.
* qrcode_url uses the later revision's "/qrcode/build?size=130&text=..." (the first example's
  "buildsize=130" is a typo).
* id in pay_url: 13 hex chars like PHP uniqid() (the doc's "5cc75a6a0b418").
  order_id: an integer, counting up from 1001.
* order_name: "任意金额支付:<price>元" as in the doc example, for cloud orders too (the cloud
  order name is UNKNOWN).
* order_status: the docs only show "expired".  "unpaid" (waiting) and "paid" are THIS
  DOUBLE'S CHOICE (PROVIDERS.md: real values UNKNOWN).  An unpaid order becomes "expired"
  after --order-timeout seconds (default 600; the real timeout is UNKNOWN) or via
  /control/expire.  A paid order stays "paid".
* Async notify: POST form-urlencoded (current doc) to the order's notify_url, fields in doc
  order order_id, out_order_id, price, realprice, type, paytime (unix int), extend, sign.
  --notify-method GET sends them as a query string instead (earliest doc revision).
  extend ("联系方式") = the order's custom.  appkey is NOT sent (the current doc does not
  list it); --notify-appkey adds it as the first field (the earliest doc / SDK examples).
  The merchant must answer the text "success"; anything else counts as not acknowledged.
  Retries: the FAQ says 3 retries 1 minute apart; by default this double makes one attempt
  (--notify-retries / --notify-retry-interval to simulate retries).  Notifies go only to
  127.0.0.1 / localhost, never through a proxy and never following redirects; a 2 s
  timeout; errors are recorded and otherwise ignored.
* No Hprose RPC transport (what the official SDKs use); plain HTTP only, as the doc
  describes (PROVIDERS.md: INFERRED that this works).
* Not implemented: grouppay, stablepay, the sync return redirect, /pay/any, api_url.

Test-control endpoints (NOT part of the protocol), keyed by the merchant's out_order_id
------------------------------------------------------------------------------------
POST /control/pay/{out_order_id}[?realprice=12.34][&force=1]
        mark paid (realprice defaults to price; must be N.NN), set paytime = now, send the
        notify in a background thread.  409 if already paid, or if expired unless force=1
        (simulating the backend's "我已收款" button).
POST /control/expire/{out_order_id}     unpaid -> expired (409 if paid).
POST /control/notify/{out_order_id}[?forged=1]
        (re)send the notify for the order in its current state (for an unpaid order
        realprice = price and paytime = now); forged=1 sends a wrong sign.
GET  /control/orders                    JSON list of every order: all fields, status,
                                        notify attempts, query count.
Control answers are JSON {"ok": true|false, ...}.

Requests log (--requests-log FILE): one JSON line per request
    {"event":"request","method","path","query","headers","content_type","body","status",
     "result", "unknown_fields", ...}
plus "expected_sign", "sign_inner" (the string md5'd first) and "sign_outer" (the string
md5'd second, with the secret shown as "<appsecret>") when a sign was wrong, "reason" for
rejections and "warnings".  One line per notify attempt with "event":"notify".
"""

import argparse
import base64
import hashlib
import json
import os
import re
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

MSG = {
    100: "请求成功",
    101: "秘钥必须",
    102: "无效的秘钥",
    103: "签名必须",
    104: "无效的签名",
    105: "参数缺失",
    106: "存在禁止传递的参数",
    199: "未知错误",
}
CREATE_MSG = {201: "价格无效", 202: "无效的支付方式", 203: "当前支付方式已关闭"}
CHECK_MSG = {201: "订单不存在"}

PAY_TYPES = ("wechat", "alipay")
CLOUD_PAY_TYPES = ("alipay",)

CREATE_REQUIRED = ("appkey", "price", "type", "out_order_id", "custom", "sign")
CREATE_OPTIONAL = ("notify_url", "return_url", "_t")
CHECK_REQUIRED = ("appkey", "out_order_id", "sign")
CHECK_OPTIONAL = ("_t",)

PRICE_RE = re.compile(r"^(0|[1-9][0-9]*)\.[0-9]{2}$")

STATUS_UNPAID = "unpaid"    # this double's choice (real value UNKNOWN)
STATUS_PAID = "paid"        # this double's choice (real value UNKNOWN)
STATUS_EXPIRED = "expired"  # from the doc

ORDER_TIMEOUT_DEFAULT = 600
NOTIFY_TIMEOUT = 2.0
NOTIFY_HOSTS = ("127.0.0.1", "localhost")
FIRST_ORDER_ID = 1001


def md5_hex(s: str) -> str:
    return hashlib.md5(s.encode("utf-8")).hexdigest()


def double_md5(inner: str, secret: str) -> str:
    return md5_hex(md5_hex(inner) + secret)


def price_ok(p: str) -> bool:
    return bool(PRICE_RE.match(p)) and int(p.replace(".", "")) > 0


def php_json(obj) -> bytes:
    """Like PHP json_encode($x, JSON_UNESCAPED_UNICODE): compact, raw UTF-8, "\\/"."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return s.replace("/", "\\/").encode("utf-8")  # "/" only occurs inside JSON strings


# ---------------------------------------------------------------------------
# small PNG (QR-looking; not a decodable QR code)

def _chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def make_png(text: str, size_px: int = 130) -> bytes:
    n = 25                                       # modules
    bits = []
    i = 0
    while len(bits) < n * n:
        for b in hashlib.sha256(f"{i}|{text}".encode("utf-8")).digest():
            bits.extend((b >> k) & 1 for k in range(8))
        i += 1
    grid = [bits[r * n:(r + 1) * n] for r in range(n)]
    for r0, c0 in ((0, 0), (0, n - 7), (n - 7, 0)):   # finder patterns
        for r in range(7):
            for c in range(7):
                ring = r in (0, 6) or c in (0, 6)
                eye = 2 <= r <= 4 and 2 <= c <= 4
                grid[r0 + r][c0 + c] = 1 if ring or eye else 0
    size_px = max(n + 4, min(size_px, 1000))
    quiet = 2
    scale = size_px / (n + 2 * quiet)
    rows = bytearray()
    for y in range(size_px):
        rows.append(0)
        my = int(y / scale) - quiet
        for x in range(size_px):
            mx = int(x / scale) - quiet
            dark = 0 <= my < n and 0 <= mx < n and grid[my][mx]
            rows.append(0 if dark else 255)
    ihdr = struct.pack(">IIBBBBB", size_px, size_px, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + _chunk(b"IEND", b""))


# ---------------------------------------------------------------------------
# state

class Store:
    def __init__(self, args, log_path):
        self.appkey = args.appkey
        self.appsecret = args.appsecret
        self.notify_method = args.notify_method
        self.notify_appkey = args.notify_appkey
        self.notify_retries = args.notify_retries
        self.notify_retry_interval = args.notify_retry_interval
        self.order_timeout = args.order_timeout
        self.reject_unknown = args.reject_unknown_fields
        self.require_custom = args.require_custom
        self.base_url = None             # set once the port is known
        self.lock = threading.RLock()
        self.by_out = {}                 # out_order_id -> order
        self.by_payid = {}               # pay id -> order
        self.orders = []
        self.next_order_id = FIRST_ORDER_ID
        self._last_uniq = 0
        self.log_path = log_path
        self.log_lock = threading.Lock()

    def log(self, entry: dict):
        if not self.log_path:
            return
        line = json.dumps(entry, ensure_ascii=False)
        with self.log_lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def uniqid(self) -> str:
        """PHP uniqid(): 8 hex of seconds + 5 hex of microseconds; made unique."""
        with self.lock:
            us = int(time.time() * 1_000_000)
            if us <= self._last_uniq:
                us = self._last_uniq + 1
            self._last_uniq = us
            return "%08x%05x" % (us // 1_000_000, us % 1_000_000)

    def refresh(self, o: dict):
        if o["order_status"] == STATUS_UNPAID and time.time() >= o["expires_at"]:
            self.set_status(o, STATUS_EXPIRED, "auto: order timeout")

    @staticmethod
    def set_status(o: dict, status: str, why: str):
        o["order_status"] = status
        o["status_history"].append({"status": status, "at": time.time(), "why": why})

    def get(self, out_order_id: str):
        with self.lock:
            o = self.by_out.get(out_order_id)
            if o is not None:
                self.refresh(o)
            return o

    def snapshot(self):
        with self.lock:
            for o in self.orders:
                self.refresh(o)
            return json.loads(json.dumps(self.orders))


# ---------------------------------------------------------------------------
# notify (server -> merchant)

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # never follow a redirect (it could lead off-host)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def notify_fields(store: Store, o: dict, forged: bool):
    """(fields list, inner sign string).  Call with the lock held."""
    paytime = o["paytime"] if o["paytime"] is not None else int(time.time())
    realprice = o["realprice"] if o["realprice"] is not None else o["price"]
    fields = [
        ("order_id", str(o["order_id"])),
        ("out_order_id", o["out_order_id"]),
        ("price", o["price"]),
        ("realprice", realprice),
        ("type", o["type"]),
        ("paytime", str(paytime)),
        ("extend", o["custom"]),     # "联系方式": this double sends the order's custom
    ]
    inner = store.appkey + "".join(v for _, v in fields)
    sign = double_md5(inner, store.appsecret)
    if forged:
        sign = double_md5(inner, store.appsecret + "-forged")  # well-formed but wrong
    if store.notify_appkey:
        fields.insert(0, ("appkey", store.appkey))
    fields.append(("sign", sign))
    return fields, inner


def send_notify(store: Store, o: dict, trigger: str, forged: bool = False):
    with store.lock:
        url = o["notify_url"]
        fields, inner = notify_fields(store, o, forged)
        out_order_id = o["out_order_id"]

    def record(attempt):
        with store.lock:
            o["notify_attempts"].append(attempt)
            if attempt.get("acknowledged") and not forged:
                o["notify_acknowledged"] = True
        store.log(attempt)
        print(f"[gatepay] notify {attempt.get('method')} {attempt.get('url')} -> "
              f"status={attempt.get('status')} body={attempt.get('response_body')!r} "
              f"error={attempt.get('error')}", file=sys.stderr, flush=True)

    base = {"event": "notify", "trigger": trigger, "out_order_id": out_order_id,
            "forged": forged, "fields": dict(fields), "sign_inner": inner,
            "method": store.notify_method, "url": url}

    if not url:
        record(dict(base, attempt=0, sent=False, status=None, response_body=None,
                    acknowledged=False, at=time.time(),
                    error="no notify could be sent: the order has no notify_url and this "
                          "double has no backend-configured callback URL"))
        return
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or (u.hostname or "").lower() not in NOTIFY_HOSTS:
        record(dict(base, attempt=0, sent=False, status=None, response_body=None,
                    acknowledged=False, at=time.time(),
                    error="not sent: notify_url is not an http(s) URL on 127.0.0.1/localhost"))
        return

    form = urllib.parse.urlencode(fields)
    if store.notify_method == "GET":
        full_url = url + ("&" if "?" in url else "?") + form
        data = None
    else:
        full_url = url
        data = form.encode("utf-8")

    def worker():
        for n in range(1, store.notify_retries + 2):
            att = dict(base, attempt=n, sent=True, url=full_url,
                       request_body=form if data is not None else "",
                       started_at=time.time(), status=None, response_body=None, error=None)
            try:
                req = urllib.request.Request(full_url, data=data, method=store.notify_method)
                if data is not None:
                    req.add_header("Content-Type", "application/x-www-form-urlencoded")
                with _OPENER.open(req, timeout=NOTIFY_TIMEOUT) as resp:
                    att["status"] = resp.status
                    att["response_body"] = resp.read(65536).decode("utf-8", "replace")
            except urllib.error.HTTPError as e:
                att["status"] = e.code
                try:
                    att["response_body"] = e.read(65536).decode("utf-8", "replace")
                except Exception:  # noqa: BLE001
                    pass
                att["error"] = f"HTTPError {e.code}"
            except Exception as e:  # noqa: BLE001 - the merchant may be down
                att["error"] = f"{type(e).__name__}: {e}"
            att["finished_at"] = time.time()
            att["acknowledged"] = (att["status"] == 200
                                   and (att["response_body"] or "").strip() == "success")
            record(att)
            if att["acknowledged"] or n > store.notify_retries:
                break
            time.sleep(store.notify_retry_interval)

    threading.Thread(target=worker, daemon=True).start()


# ---------------------------------------------------------------------------
# HTTP

class Reject(Exception):
    def __init__(self, code, msg, reason, extra=None):
        super().__init__(reason)
        self.code, self.msg, self.reason, self.extra = code, msg, reason, extra or {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gatepay-test-double/1.0"
    store: Store = None

    def log_message(self, fmt, *args):
        sys.stderr.write("[gatepay] %s - %s\n" % (self.address_string(), fmt % args))

    # -- plumbing -------------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = bytearray()
            while True:
                size = int(self.rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _respond(self, status, body: bytes, ctype: str, result, extra=None):
        entry = {
            "event": "request",
            "method": self.command,
            "path": self._path,
            "query": self._query,
            "headers": dict(self.headers.items()),
            "content_type": self.headers.get("Content-Type"),
            "body": self._raw.decode("utf-8", "replace"),
            "status": status,
            "result": result,
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

    def _api(self, result: dict, extra=None):
        self._respond(200, php_json(result), "application/json; charset=utf-8", result, extra)

    def _text(self, status, text, extra=None, ctype="text/plain; charset=utf-8"):
        self._respond(status, text.encode("utf-8"), ctype, text[:2000], extra)

    def _control(self, status, obj):
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self._respond(status, body, "application/json; charset=utf-8", obj)

    @staticmethod
    def ok(data) -> dict:
        return {"code": 100, "msg": MSG[100], "time": str(int(time.time())), "data": data}

    @staticmethod
    def err(code, msg) -> dict:
        return {"code": code, "msg": msg, "time": str(int(time.time())), "data": None}

    def _dispatch(self):
        sp = urllib.parse.urlsplit(self.path)
        self._path, self._query = sp.path, sp.query
        self._raw = self._read_body()
        m = self.command
        segs = [urllib.parse.unquote(s) for s in sp.path.split("/")[1:]]
        try:
            if segs in (["api", "anypay", "create"], ["api", "cloudpay", "create"]):
                if m not in ("GET", "POST"):
                    return self._text(405, "method not allowed")
                return self.h_create(cloud=(segs[1] == "cloudpay"))
            if segs == ["api", "order", "check"]:
                if m != "GET":
                    return self._text(405, "method not allowed (order/check is GET)")
                return self.h_check()
            if m == "GET" and segs == ["pay", "api"]:
                return self.h_pay_page()
            if m == "GET" and segs == ["qrcode", "build"]:
                return self.h_qrcode()
            if len(segs) == 3 and segs[0] == "control" and m == "POST":
                if segs[1] == "pay":
                    return self.c_pay(segs[2])
                if segs[1] == "expire":
                    return self.c_expire(segs[2])
                if segs[1] == "notify":
                    return self.c_notify(segs[2])
            if m == "GET" and segs == ["control", "orders"]:
                return self._control(200, self.store.snapshot())
        except Exception as e:  # noqa: BLE001
            print(f"[gatepay] internal error: {type(e).__name__}: {e}", file=sys.stderr,
                  flush=True)
            return self._text(500, f"internal error: {e}")
        return self._text(404, "404 Not Found")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch

    # -- parameters -----------------------------------------------------------
    def _params(self, known):
        """Merge query-string and (form) body fields.  Returns (dict, pairs, extra)."""
        extra = {"warnings": []}
        try:
            pairs = urllib.parse.parse_qsl(self._query, keep_blank_values=True,
                                           encoding="utf-8", errors="strict")
            if self._raw:
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if self.command == "POST" and ctype == "application/x-www-form-urlencoded":
                    pairs += urllib.parse.parse_qsl(self._raw.decode("utf-8"),
                                                    keep_blank_values=True,
                                                    encoding="utf-8", errors="strict")
                else:
                    extra["warnings"].append(
                        f"request body ignored: {self.command} with Content-Type "
                        f"{self.headers.get('Content-Type')!r} (only a POST "
                        "application/x-www-form-urlencoded body is read)")
        except UnicodeDecodeError as e:
            raise Reject(199, MSG[199], f"request is not valid UTF-8: {e}", extra)
        form = {}
        for k, v in pairs:
            if k in form:
                raise Reject(106, MSG[106], f"field {k!r} given more than once", extra)
            form[k] = v
        extra["unknown_fields"] = [k for k in form if k not in known]
        if extra["unknown_fields"]:
            print(f"[gatepay] {self._path}: unknown fields {extra['unknown_fields']}",
                  file=sys.stderr, flush=True)
            if self.store.reject_unknown:
                raise Reject(106, MSG[106],
                             f"unknown fields {extra['unknown_fields']}", extra)
        return form, pairs, extra

    def _check_key_and_sign_present(self, form, extra):
        if form.get("appkey", "") == "":
            raise Reject(101, MSG[101], "appkey missing or empty", extra)
        if form["appkey"] != self.store.appkey:
            raise Reject(102, MSG[102], "appkey does not match", extra)
        if form.get("sign", "") == "":
            raise Reject(103, MSG[103], "sign missing or empty", extra)

    def _check_sign(self, form, inner, extra):
        expected = double_md5(inner, self.store.appsecret)
        if form["sign"] != expected:
            extra.update({"expected_sign": expected, "sign_inner": inner,
                          "sign_outer": md5_hex(inner) + "<appsecret>"})
            raise Reject(104, MSG[104], "sign mismatch", extra)

    def _reject(self, r: Reject):
        extra = dict(r.extra)
        extra["reason"] = r.reason
        self._api(self.err(r.code, r.msg), extra)

    # -- /api/{anypay,cloudpay}/create -----------------------------------------------
    def h_create(self, cloud: bool):
        st = self.store
        extra = {}
        try:
            form, pairs, extra = self._params(CREATE_REQUIRED + CREATE_OPTIONAL)
            self._check_key_and_sign_present(form, extra)
            for f in ("price", "type", "out_order_id"):
                if form.get(f, "") == "":
                    raise Reject(105, MSG[105], f"{f} missing or empty", extra)
            if "custom" not in form:
                raise Reject(105, MSG[105], "custom missing", extra)
            if form["custom"] == "" and st.require_custom:
                raise Reject(105, MSG[105], "custom empty (--require-custom)", extra)
            inner = (form["appkey"] + form["price"] + form["type"] + form["out_order_id"]
                     + form["custom"])
            self._check_sign(form, inner, extra)
            if not price_ok(form["price"]):
                raise Reject(201, CREATE_MSG[201],
                             f"price {form['price']!r} is not N.NN with 2 decimals and > 0",
                             extra)
            if form["type"] not in PAY_TYPES:
                raise Reject(202, CREATE_MSG[202], f"type {form['type']!r} invalid", extra)
            if cloud and form["type"] not in CLOUD_PAY_TYPES:
                raise Reject(203, CREATE_MSG[203], "cloudpay supports alipay only", extra)
            notify_url = form.get("notify_url") or None
            for f in ("notify_url", "return_url"):
                v = form.get(f)
                if v:
                    u = urllib.parse.urlsplit(v)
                    if u.scheme not in ("http", "https") or not u.netloc:
                        extra["warnings"].append(f"{f} is not an absolute http(s) URL: {v!r}")
                    elif f == "notify_url" and (u.hostname or "").lower() not in NOTIFY_HOSTS:
                        extra["warnings"].append("notify_url is not on 127.0.0.1/localhost: "
                                                 "this double will never send to it")
                    if cloud:
                        extra["warnings"].append(f"{f} is not in cloud.md's field table")
            if not notify_url:
                extra["warnings"].append("no notify_url: this order can never be notified")
            with st.lock:
                if form["out_order_id"] in st.by_out:
                    raise Reject(199, MSG[199],
                                 f"duplicate out_order_id {form['out_order_id']!r}", extra)
                pay_id = st.uniqid()
                pay_url = f"{st.base_url}/pay/api?id={pay_id}&type={form['type']}"
                qrcode_url = (f"{st.base_url}/qrcode/build?size=130&text="
                              + urllib.parse.quote(pay_url, safe=""))
                now = time.time()
                order = {
                    "order_id": st.next_order_id,
                    "id": pay_id,
                    "variant": "cloudpay" if cloud else "anypay",
                    "transport": self.command,
                    "appkey": form["appkey"],
                    "price": form["price"],
                    "type": form["type"],
                    "out_order_id": form["out_order_id"],
                    "custom": form["custom"],
                    "sign": form["sign"],
                    "notify_url": notify_url,
                    "return_url": form.get("return_url") or None,
                    "params": dict(pairs),
                    "unknown_fields": {k: form[k] for k in extra["unknown_fields"]},
                    "warnings": list(extra["warnings"]),
                    "order_name": f"任意金额支付:{form['price']}元",
                    "order_status": STATUS_UNPAID,
                    "created_at": now,
                    "expires_at": now + st.order_timeout,
                    "paytime": None,
                    "realprice": None,
                    "pay_url": pay_url,
                    "qrcode_url": qrcode_url,
                    "query_count": 0,
                    "last_query_at": None,
                    "notify_acknowledged": False,
                    "notify_attempts": [],
                    "status_history": [{"status": STATUS_UNPAID, "at": now,
                                        "why": "created"}],
                }
                st.next_order_id += 1
                st.by_out[order["out_order_id"]] = order
                st.by_payid[pay_id] = order
                st.orders.append(order)
        except Reject as r:
            return self._reject(r)
        data = {"pay_url": pay_url, "qrcode_url": qrcode_url}
        if not cloud:
            data["qrcode_body"] = ("data:image/png;base64,"
                                   + base64.b64encode(make_png(pay_url)).decode("ascii"))
        data["params"] = dict(pairs)
        return self._api(self.ok(data), extra)

    # -- /api/order/check ---------------------------------------------------------------
    def h_check(self):
        st = self.store
        extra = {}
        try:
            form, _pairs, extra = self._params(CHECK_REQUIRED + CHECK_OPTIONAL)
            self._check_key_and_sign_present(form, extra)
            if form.get("out_order_id", "") == "":
                raise Reject(105, MSG[105], "out_order_id missing or empty", extra)
            self._check_sign(form, form["appkey"] + form["out_order_id"], extra)
            with st.lock:
                o = st.get(form["out_order_id"])
                if o is None:
                    raise Reject(201, CHECK_MSG[201], "unknown out_order_id", extra)
                o["query_count"] += 1
                o["last_query_at"] = time.time()
                data = {
                    "order_id": o["order_id"],
                    "order_name": o["order_name"],
                    "order_price": o["price"],
                    "order_type": o["type"],
                    "order_status": o["order_status"],
                }
        except Reject as r:
            return self._reject(r)
        return self._api(self.ok(data), extra)

    # -- browser-ish routes --------------------------------------------------------------
    def h_pay_page(self):
        q = dict(urllib.parse.parse_qsl(self._query))
        o = self.store.by_payid.get(q.get("id", ""))
        if o is None:
            return self._text(404, "<html><body>订单不存在</body></html>",
                              ctype="text/html; charset=utf-8")
        with self.store.lock:
            self.store.refresh(o)
        png = base64.b64encode(make_png(o["pay_url"])).decode("ascii")
        page = ("<!doctype html><html><head><meta charset='utf-8'><title>gatepay</title>"
                f"</head><body><p>{o['order_name']} ({o['type']}) 状态 {o['order_status']}</p>"
                f"<img src='data:image/png;base64,{png}'></body></html>")
        return self._text(200, page, ctype="text/html; charset=utf-8")

    def h_qrcode(self):
        q = dict(urllib.parse.parse_qsl(self._query))
        try:
            size = int(q.get("size", "130"))
        except ValueError:
            size = 130
        png = make_png(q.get("text", ""), size)
        return self._respond(200, png, "image/png", f"<png {len(png)} bytes>")

    # -- control -------------------------------------------------------------------------
    def c_pay(self, out_order_id):
        st = self.store
        q = dict(urllib.parse.parse_qsl(self._query, keep_blank_values=True))
        with st.lock:
            o = st.get(out_order_id)
            if o is None:
                return self._control(404, {"ok": False, "error": "unknown out_order_id"})
            realprice = q.get("realprice") or o["price"]
            if not price_ok(realprice):
                return self._control(400, {"ok": False, "error": "realprice must be N.NN > 0"})
            if o["order_status"] == STATUS_PAID:
                return self._control(409, {"ok": False, "error": "already paid; use "
                                           "/control/notify to resend the notify"})
            if o["order_status"] == STATUS_EXPIRED and q.get("force") != "1":
                return self._control(409, {"ok": False, "error": "order expired (the FAQ: "
                                           "payments after expiry send no notify); "
                                           "add force=1 to simulate 我已收款"})
            o["realprice"] = realprice
            o["paytime"] = int(time.time())
            st.set_status(o, STATUS_PAID, "control: pay")
            notify_url = o["notify_url"]
        send_notify(st, o, "control/pay")
        return self._control(200, {"ok": True, "out_order_id": out_order_id,
                                   "order_id": o["order_id"], "order_status": STATUS_PAID,
                                   "realprice": realprice,
                                   "notify": "sending" if notify_url else
                                   "not sent: order has no notify_url"})

    def c_expire(self, out_order_id):
        st = self.store
        with st.lock:
            o = st.get(out_order_id)
            if o is None:
                return self._control(404, {"ok": False, "error": "unknown out_order_id"})
            if o["order_status"] == STATUS_PAID:
                return self._control(409, {"ok": False, "error": "already paid"})
            if o["order_status"] != STATUS_EXPIRED:
                st.set_status(o, STATUS_EXPIRED, "control: expire")
        return self._control(200, {"ok": True, "out_order_id": out_order_id,
                                   "order_status": STATUS_EXPIRED})

    def c_notify(self, out_order_id):
        st = self.store
        q = dict(urllib.parse.parse_qsl(self._query, keep_blank_values=True))
        forged = q.get("forged") == "1"
        o = st.get(out_order_id)
        if o is None:
            return self._control(404, {"ok": False, "error": "unknown out_order_id"})
        send_notify(st, o, "control/notify", forged=forged)
        return self._control(200, {"ok": True, "out_order_id": out_order_id,
                                   "forged": forged, "order_status": o["order_status"],
                                   "notify": "sending" if o["notify_url"] else
                                   "not sent: order has no notify_url"})


# ---------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description="gatepay.io protocol test double")
    p.add_argument("--appkey", required=True)
    p.add_argument("--appsecret", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--requests-log", default=None)
    p.add_argument("--notify-method", choices=("POST", "GET"), default="POST",
                   help="POST form (current doc, default) or GET query (earliest revision)")
    p.add_argument("--notify-appkey", action="store_true",
                   help="also send appkey in the notify (earliest doc / SDK examples)")
    p.add_argument("--notify-retries", type=int, default=0,
                   help="extra attempts when the merchant does not answer 'success'")
    p.add_argument("--notify-retry-interval", type=float, default=60.0)
    p.add_argument("--order-timeout", type=float, default=ORDER_TIMEOUT_DEFAULT,
                   help="seconds before an unpaid order becomes 'expired' (default 600)")
    p.add_argument("--reject-unknown-fields", action="store_true",
                   help="answer 106 to unknown fields instead of ignoring them")
    p.add_argument("--require-custom", action="store_true",
                   help="answer 105 to an empty custom (default: empty allowed)")
    args = p.parse_args(argv)

    log_path = os.path.abspath(args.requests_log) if args.requests_log else None
    store = Store(args, log_path)
    Handler.store = store
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    store.base_url = f"http://127.0.0.1:{port}"
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
