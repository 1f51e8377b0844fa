#!/usr/bin/env python3
"""Independent reference implementation (test double) of the 易支付 / epay / 彩虹易支付
merchant protocol, MD5 version.

Written only from PROVIDERS.md section "6. 易支付 / epay / 彩虹易支付" (plus its
"Conventions": md5() = 32 lowercase hex over UTF-8; "k=v joined" = k1=v1&k2=v2 with raw,
not URL-encoded, values).  The only outside look-up was the test vector's two URLs (see
"Published vector" below).  It shares no code with the client under test.

Usage:
    python3 epay_server.py --pid 1001 --key SOMEKEY [--port 0] [--requests-log FILE]
        [--answer mixed|qrcode|payurl|urlscheme] [--order-timeout S]
        [--notify-retries N] [--notify-retry-interval S] [--truncate-long-name]
        [--numbers-as-strings]

Binds 127.0.0.1:PORT (0 = random) and prints exactly one line
    LISTENING http://127.0.0.1:PORT
to stdout once ready, then serves until killed.  Diagnostics go to stderr.

Sign (MD5)
----------
    1. every parameter except sign and sign_type; parameters whose value is the EMPTY
       string are dropped (CHOICE: only "" counts as empty; "0" is kept);
    2. sorted by name, ASCII ascending (byte order of the names);
    3. joined k=v with "&", raw decoded values (UTF-8 Chinese as-is, no URL encoding);
    4. the merchant key appended DIRECTLY (no "&key=");
    5. md5, lowercase hex.  The received sign is compared exactly (upper-case hex = wrong).
Unknown (undocumented) parameters ARE part of the signed string (step 1 says "every
parameter"); they are otherwise ignored and listed as "unknown_fields".

Published vector (checked at start-up; the server refuses to start if it fails):
    pid=1001 type=alipay out_trade_no=20160806151343349 name=VIP会员 money=1.00
    clientip=192.168.1.100 device=pc key=123456 -> 4a0d8e5a6499e5de11878b87fa9ac8ba
    PROVIDERS.md only says "notify/return urls".  The http:// guesses
    http://www.pay.com/notify_url.php + http://www.pay.com/return_url.php give
    48b406957cc853b51152f9f0b4f60b12 (NO match); the HTTPS ones
    https://www.pay.com/notify_url.php + https://www.pay.com/return_url.php reproduce it
    (the Go client's utils_test.go uses exactly these, plus param="" which is dropped as
    empty, and sign_type "md5").

Protocol endpoints
------------------
POST /mapi.php    API pay (server-to-server), application/x-www-form-urlencoded body.
                  TOLERANCE: a GET with the fields as a query string is accepted too (with
                  a warning in the log); on a POST, query-string fields are merged with
                  the body fields (PHP $_REQUEST-like); a field given twice is refused.
    fields: pid, type, out_trade_no, notify_url, return_url (optional), name, money,
            clientip, device (optional, default "pc"), param (optional), sitename
            (optional, older docs), sign, sign_type.
    success: {"code":1,"msg":"下单成功","trade_no":"<19 digits>", plus ONE of
              "qrcode" (wallet-like QR text), "payurl" (http://127.0.0.1:PORT/pay/<trade_no>)
              or "urlscheme" (only with --answer urlscheme)}
      --answer mixed (default): alipay -> qrcode "https://qr.alipay.com/bax0…",
                                qqpay  -> qrcode "https://qpay.qq.com/qr/…",
                                wxpay  -> payurl
      --answer qrcode: always qrcode (wxpay: "weixin://wxpay/bizpayurl?pr=…")
      --answer payurl: always payurl
      --answer urlscheme: always urlscheme "weixin://dl/business/?t=…" (a mini-program
                          scheme; the doc names the field, the value format is a CHOICE)
GET  /api.php?act=order&pid=<pid>&key=<merchant key>&out_trade_no=<no>
                  (trade_no=<platform no> accepted instead; if both are given they must
                  name the same order).  TOLERANCE: POST accepted (query + form body).
    success: {"code":1,"msg":"查询订单号成功","trade_no","out_trade_no","type","pid",
              "addtime","endtime","name","money","status"}
      pid and status are JSON integers (--numbers-as-strings sends them as strings, as a
      PHP/MySQL platform often does); status 1 = paid, 0 = unpaid (also for an expired
      order: the protocol has no "expired" status); addtime/endtime "YYYY-MM-DD HH:MM:SS"
      local time, endtime null while unpaid (CHOICE); money with 2 decimals ("1.00",
      like a DECIMAL(10,2) column, CHOICE), name as stored.
    other act values (orders, query, settle) are NOT implemented: code -1.
GET  /pay/<trade_no>   the minimal HTML page payurl points at.

All protocol answers are HTTP 200, Content-Type application/json; charset=utf-8, JSON
encoded like PHP's plain json_encode() (CHOICE, the real flags are UNKNOWN): compact,
non-ASCII as \\uXXXX, "/" as "\\/".

Error answers: {"code":-1,"msg":"<Chinese text>"}.  Messages (all THIS DOUBLE'S CHOICE;
the docs quote none).  Validation order for /mapi.php, first failure wins:
    请求格式错误:Content-Type必须为application/x-www-form-urlencoded  (POST body of another type)
    请求编码错误:参数必须为UTF-8                                   (undecodable request)
    参数重复:<field>                                              (field given twice)
    商户ID(pid)不能为空 / 商户不存在                                (pid empty / != --pid)
    签名(sign)不能为空
    签名类型(sign_type)不能为空 / 签名类型(sign_type)不支持:<v>,仅支持MD5
    <field>(<中文名>)不能为空      required field missing/empty: type 支付方式,
                                   out_trade_no 商户订单号, notify_url 异步通知地址,
                                   name 商品名称, money 商品金额, clientip 用户IP地址
    签名校验失败                                                   (sign mismatch)
    支付方式(type)不支持:<v>                                       (not alipay|wxpay|qqpay)
    金额(money)格式错误:<v>         (not digits with at most 2 decimals, leading zeros,
                                   sign, spaces) / 金额(money)必须大于0
    商品名称(name)过长:<n>字节,最多127字节   (unless --truncate-long-name: then the stored
                                   name is cut to 127 bytes on a UTF-8 boundary, and the
                                   sign is still checked over the name as sent)
    异步通知地址(notify_url)格式错误 / 跳转通知地址(return_url)格式错误  (not absolute http(s))
    用户IP地址(clientip)格式错误                                   (not an IPv4/IPv6 address)
    商户订单号(out_trade_no)已存在                                 (duplicate)
  device: any non-empty value is accepted; values other than pc/mobile/wechat only get a
  warning (the list of valid devices is UNKNOWN).  sign_type: "MD5" compared
  case-insensitively (the Go test sends "md5"); anything but exactly "MD5" gets a warning.
/api.php:
    act参数不能为空 / 不支持的act:<v>(仅实现act=order)
    商户ID(pid)不能为空 / 商户不存在
    商户密钥(key)不能为空 / 商户密钥错误
    订单号(out_trade_no或trade_no)不能为空
    订单号不存在                        (unknown order; the doc quotes no text: CHOICE)
  (plus the three request-format messages above).

Notify (server -> merchant)
---------------------------
GET {notify_url}?pid&trade_no&out_trade_no&type&name&money&trade_status[&param]&sign&sign_type=MD5
  signed with the same MD5 scheme.  param is sent only when the order was created with a
  non-empty param (CHOICE: an empty param is dropped from the sign anyway).  money is the
  order's money with 2 decimals (or /control/pay's money=).  Only to 127.0.0.1 /
  localhost, no proxy, no redirects, 2 s timeout, in a background thread, errors recorded
  and otherwise ignored.  The merchant must answer the text "success": "acknowledged" is
  status 200 and body.strip() == "success"; "body_exact" says whether it was exactly
  "success".  Retries: UNKNOWN in the doc; by default one attempt (--notify-retries N
  more attempts, --notify-retry-interval S apart, while not acknowledged).
  The browser return_url redirect is not simulated.

Test-control endpoints (NOT part of the protocol), keyed by out_trade_no (trade_no works too)
-----------------------------------------------------------------------------------------
POST /control/pay/{no}[?money=12.34][&force=1][&wait=1]
        mark paid (status 1, endtime now) and send the notify (trade_status=TRADE_SUCCESS).
        409 if already paid (use /control/notify), or expired unless force=1.
POST /control/notify/{no}[?forged=1][&status=TRADE_CLOSED][&wait=1]
        (re)send the notify for the order as it is; forged=1 = a well-formed but wrong
        sign; status= sets trade_status (default TRADE_SUCCESS).  Any order state.
POST /control/expire/{no}     unpaid -> expired (409 if paid).
GET  /control/orders          JSON list of every order: fields, status, notify attempts,
                              query_count / query_times (successful api.php look-ups),
                              bad_key_queries.
wait=1 makes the call block until the notify attempts have finished.
Control answers are JSON {"ok": true|false, ...}.

Requests log (--requests-log FILE): one JSON line per request
    {"event":"request","method","path","query","headers","content_type","body","status",
     "result","unknown_fields","warnings",...}
plus "reason" for refusals and, when a sign was wrong, "expected_sign" and "sign_string"
(the exact string hashed, with the key shown as "<key>").  Every "key" parameter value in
the logged query / body is replaced by "<key>" ("key_matched" says whether it was right),
and any other occurrence of the merchant key (raw or URL-encoded, keys of 4+ characters)
in the logged path / query / body / headers is masked as well.  One line per notify
attempt with "event":"notify".
"""

import argparse
import hashlib
import html
import ipaddress
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# ---------------------------------------------------------------------------
# constants

PAY_TYPES = ("alipay", "wxpay", "qqpay")
KNOWN_DEVICES = ("pc", "mobile", "wechat")
MAPI_REQUIRED = ("type", "out_trade_no", "notify_url", "name", "money", "clientip")
MAPI_KNOWN = ("pid", "type", "out_trade_no", "notify_url", "return_url", "name", "money",
              "clientip", "device", "param", "sitename", "sign", "sign_type")
API_KNOWN = ("act", "pid", "key", "out_trade_no", "trade_no")
FIELD_CN = {
    "type": "支付方式", "out_trade_no": "商户订单号", "notify_url": "异步通知地址",
    "name": "商品名称", "money": "商品金额", "clientip": "用户IP地址",
}
NAME_MAX_BYTES = 127
MONEY_RE = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$")
PID_RE = re.compile(r"^[0-9]+$")
NOTIFY_HOSTS = ("127.0.0.1", "localhost")
NOTIFY_TIMEOUT = 2.0

STATUS_UNPAID, STATUS_PAID, STATUS_EXPIRED = "unpaid", "paid", "expired"

MSG_CREATED = "下单成功"
MSG_QUERY_OK = "查询订单号成功"
MSG_NOT_FOUND = "订单号不存在"

VECTOR = {
    "pid": "1001", "type": "alipay", "out_trade_no": "20160806151343349",
    "notify_url": "https://www.pay.com/notify_url.php",
    "return_url": "https://www.pay.com/return_url.php",
    "name": "VIP会员", "money": "1.00", "clientip": "192.168.1.100", "device": "pc",
    "param": "", "sign_type": "MD5",
}
VECTOR_KEY = "123456"
VECTOR_SIGN = "4a0d8e5a6499e5de11878b87fa9ac8ba"


def md5_hex(s: str) -> str:
    return hashlib.md5(s.encode("utf-8")).hexdigest()


def sign_string(params: dict) -> str:
    """The signed string WITHOUT the key: sorted k=v joined, empties and sign* dropped."""
    items = [(k, v) for k, v in params.items()
             if k not in ("sign", "sign_type") and v != ""]
    items.sort(key=lambda kv: kv[0].encode("utf-8"))
    return "&".join(f"{k}={v}" for k, v in items)


def make_sign(params: dict, key: str) -> str:
    return md5_hex(sign_string(params) + key)


def money_ok(m: str) -> bool:
    return bool(MONEY_RE.match(m))


def money_2dp(m: str) -> str:
    whole, _, frac = m.partition(".")
    return f"{whole}.{(frac + '00')[:2]}"


def money_cents(m: str) -> int:
    return int(money_2dp(m).replace(".", ""))


def truncate_utf8(s: str, n: int) -> str:
    b = s.encode("utf-8")[:n]
    return b.decode("utf-8", "ignore")


def php_json(obj) -> bytes:
    """Like PHP json_encode($x) with default flags: compact, \\uXXXX, "\\/"."""
    s = json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    return s.replace("/", "\\/").encode("ascii")  # "/" only occurs inside JSON strings


def fmt_time(t):
    return None if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


# ---------------------------------------------------------------------------
# state

class Store:
    def __init__(self, args, log_path):
        self.pid = args.pid
        self.key = args.key
        self.answer = args.answer
        self.order_timeout = args.order_timeout
        self.notify_retries = args.notify_retries
        self.notify_retry_interval = args.notify_retry_interval
        self.truncate_long_name = args.truncate_long_name
        self.numbers_as_strings = args.numbers_as_strings
        self.base_url = None
        self.lock = threading.RLock()
        self.by_out = {}
        self.by_trade = {}
        self.orders = []
        self._seq = 0
        self.log_path = log_path
        self.log_lock = threading.Lock()

    # -- logging (masks the merchant key) -----------------------------------------
    def mask(self, line: str) -> str:
        k = self.key
        if len(k) >= 4:
            for form in {k, urllib.parse.quote(k, safe=""), urllib.parse.quote_plus(k)}:
                line = line.replace(form, "<key>")
        return line

    def log(self, entry: dict):
        if not self.log_path:
            return
        if entry.get("event") == "request":
            # client-supplied text only (masking md5 hex or trade numbers elsewhere could
            # corrupt them when the key is short)
            for f in ("path", "query", "body"):
                if isinstance(entry.get(f), str):
                    entry[f] = self.mask(entry[f])
            entry["headers"] = {h: self.mask(v) for h, v in entry.get("headers", {}).items()}
        line = json.dumps(entry, ensure_ascii=False)
        with self.log_lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    # -- orders -----------------------------------------------------------------------
    def new_trade_no(self) -> str:
        with self.lock:
            self._seq += 1
            return time.strftime("%Y%m%d%H%M%S") + "%05d" % (self._seq % 100000)

    def refresh(self, o):
        if (o["status"] == STATUS_UNPAID and self.order_timeout > 0
                and time.time() >= o["created_at"] + self.order_timeout):
            self.set_status(o, STATUS_EXPIRED, "auto: order timeout")

    @staticmethod
    def set_status(o, status, why):
        o["status"] = status
        o["status_history"].append({"status": status, "at": time.time(), "why": why})

    def find(self, no: str):
        with self.lock:
            o = self.by_out.get(no) or self.by_trade.get(no)
            if o is not None:
                self.refresh(o)
            return o

    def snapshot(self):
        with self.lock:
            for o in self.orders:
                self.refresh(o)
            return json.loads(json.dumps(self.orders))


def qr_text(pay_type: str) -> str:
    alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
    if pay_type == "alipay":
        return "https://qr.alipay.com/bax0" + "".join(secrets.choice(alnum) for _ in range(20))
    if pay_type == "qqpay":
        return "https://qpay.qq.com/qr/" + secrets.token_hex(4)
    return ("weixin://wxpay/bizpayurl?pr="
            + "".join(secrets.choice(alnum + "ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(7)))


# ---------------------------------------------------------------------------
# notify (server -> merchant)

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def notify_fields(store: Store, o: dict, trade_status: str, forged: bool):
    """(ordered field list, signed string with "<key>").  Call with the lock held."""
    fields = [
        ("pid", store.pid),
        ("trade_no", o["trade_no"]),
        ("out_trade_no", o["out_trade_no"]),
        ("type", o["type"]),
        ("name", o["name"]),
        ("money", o["paid_money"] or o["money"]),
        ("trade_status", trade_status),
    ]
    if o["param"]:
        fields.append(("param", o["param"]))
    signed = sign_string(dict(fields))
    sign = md5_hex(signed + store.key)
    if forged:
        sign = md5_hex(signed + store.key + "-forged")   # well-formed, wrong
    fields += [("sign", sign), ("sign_type", "MD5")]
    return fields, signed + "<key>"


def send_notify(store: Store, o: dict, trigger: str, trade_status="TRADE_SUCCESS",
                forged=False) -> threading.Thread | None:
    with store.lock:
        url = o["notify_url"]
        fields, signed = notify_fields(store, o, trade_status, forged)
        out_no = o["out_trade_no"]

    def record(att):
        with store.lock:
            o["notify_attempts"].append(att)
            if att.get("acknowledged") and not forged and trade_status == "TRADE_SUCCESS":
                o["notify_acknowledged"] = True
        store.log(att)
        print(f"[epay] notify {att.get('url')} -> status={att.get('status')} "
              f"body={att.get('response_body')!r} error={att.get('error')}",
              file=sys.stderr, flush=True)

    base = {"event": "notify", "trigger": trigger, "out_trade_no": out_no, "forged": forged,
            "trade_status": trade_status, "fields": dict(fields), "sign_string": signed,
            "method": "GET", "url": url}
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or (u.hostname or "").lower() not in NOTIFY_HOSTS:
        record(dict(base, attempt=0, sent=False, status=None, response_body=None,
                    acknowledged=False, at=time.time(),
                    error="not sent: notify_url is not an http(s) URL on 127.0.0.1/localhost"))
        return None
    full_url = url + ("&" if "?" in url else "?") + urllib.parse.urlencode(fields)

    def worker():
        for n in range(1, store.notify_retries + 2):
            att = dict(base, attempt=n, sent=True, url=full_url, started_at=time.time(),
                       status=None, response_body=None, error=None)
            try:
                req = urllib.request.Request(full_url, method="GET")
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
            except Exception as e:  # noqa: BLE001 - merchant may be down
                att["error"] = f"{type(e).__name__}: {e}"
            att["finished_at"] = time.time()
            body = att["response_body"] or ""
            att["acknowledged"] = att["status"] == 200 and body.strip() == "success"
            att["body_exact"] = body == "success"
            record(att)
            if att["acknowledged"] or n > store.notify_retries:
                break
            time.sleep(store.notify_retry_interval)

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    return t


# ---------------------------------------------------------------------------
# HTTP

class Reject(Exception):
    def __init__(self, msg, reason, extra=None):
        super().__init__(reason)
        self.msg, self.reason, self.extra = msg, reason, extra if extra is not None else {}


def mask_key_params(qs: str) -> str:
    """Replace the value of every `key` parameter in a raw query/form string by <key>."""
    if not qs:
        return qs
    out = []
    for part in qs.split("&"):
        name = part.split("=", 1)[0]
        try:
            dec = urllib.parse.unquote_plus(name)
        except Exception:  # noqa: BLE001
            dec = name
        out.append(name + "=<key>" if dec == "key" else part)
    return "&".join(out)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "epay-test-double/1.0"
    store: Store = None

    def log_message(self, fmt, *args):
        # the default line contains the request path, i.e. maybe the key: mask it
        line = self.store.mask(mask_key_params_in_line(fmt % args))
        sys.stderr.write("[epay] %s - %s\n" % (self.address_string(), line))

    # -- plumbing -------------------------------------------------------------------
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
            "query": mask_key_params(self._query),
            "headers": dict(self.headers.items()),
            "content_type": self.headers.get("Content-Type"),
            "body": mask_key_params(self._raw.decode("utf-8", "replace")),
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

    def _reject(self, r: Reject):
        extra = dict(r.extra)
        extra["reason"] = r.reason
        self._api({"code": -1, "msg": r.msg}, extra)

    def _dispatch(self):
        sp = urllib.parse.urlsplit(self.path)
        self._path, self._query = sp.path, sp.query
        self._raw = self._read_body()
        m = self.command
        segs = [urllib.parse.unquote(s) for s in sp.path.split("/")[1:]]
        try:
            if segs == ["mapi.php"]:
                if m not in ("GET", "POST"):
                    return self._text(405, "method not allowed")
                return self.h_mapi()
            if segs == ["api.php"]:
                if m not in ("GET", "POST"):
                    return self._text(405, "method not allowed")
                return self.h_api()
            if m in ("GET", "HEAD") and len(segs) == 2 and segs[0] == "pay":
                return self.h_pay_page(segs[1])
            if m == "POST" and len(segs) == 3 and segs[0] == "control":
                if segs[1] == "pay":
                    return self.c_pay(segs[2])
                if segs[1] == "notify":
                    return self.c_notify(segs[2])
                if segs[1] == "expire":
                    return self.c_expire(segs[2])
            if m == "GET" and segs == ["control", "orders"]:
                return self._control(200, self.store.snapshot())
        except Exception as e:  # noqa: BLE001
            print(f"[epay] internal error: {type(e).__name__}: {e}", file=sys.stderr,
                  flush=True)
            return self._text(500, f"internal error: {e}")
        return self._text(404, "404 Not Found")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch

    # -- parameters -------------------------------------------------------------------
    def _params(self, known, expected_method):
        extra = {"warnings": []}
        if self.command != expected_method:
            extra["warnings"].append(f"{self.command} used; the doc says {expected_method}")
        try:
            pairs = urllib.parse.parse_qsl(self._query, keep_blank_values=True,
                                           encoding="utf-8", errors="strict")
            if self.command == "POST":
                if pairs:
                    extra["warnings"].append("query-string parameters on a POST "
                                             "(merged with the body)")
                if self._raw:
                    ctype = (self.headers.get("Content-Type") or "").split(";")[0]
                    if ctype.strip().lower() != "application/x-www-form-urlencoded":
                        raise Reject("请求格式错误:Content-Type必须为"
                                     "application/x-www-form-urlencoded",
                                     f"POST body with Content-Type "
                                     f"{self.headers.get('Content-Type')!r}", extra)
                    pairs += urllib.parse.parse_qsl(self._raw.decode("utf-8"),
                                                    keep_blank_values=True,
                                                    encoding="utf-8", errors="strict")
                elif expected_method == "POST":
                    extra["warnings"].append("POST with an empty body")
            elif self._raw:
                extra["warnings"].append(f"{self.command} body ignored")
        except UnicodeDecodeError as e:
            raise Reject("请求编码错误:参数必须为UTF-8", f"not UTF-8: {e}", extra)
        form = {}
        for k, v in pairs:
            if k in form:
                raise Reject(f"参数重复:{k}", f"field {k!r} given more than once", extra)
            form[k] = v
        extra["unknown_fields"] = [k for k in form if k not in known]
        if extra["unknown_fields"]:
            print(f"[epay] {self._path}: unknown fields {extra['unknown_fields']}",
                  file=sys.stderr, flush=True)
        return form, extra

    def _check_pid(self, form, extra):
        if form.get("pid", "") == "":
            raise Reject("商户ID(pid)不能为空", "pid missing or empty", extra)
        if form["pid"] != self.store.pid:
            raise Reject("商户不存在", f"pid {form['pid']!r} != {self.store.pid!r}", extra)

    # -- /mapi.php ----------------------------------------------------------------------
    def h_mapi(self):
        st = self.store
        extra = {}
        try:
            form, extra = self._params(MAPI_KNOWN, "POST")
            warn = extra["warnings"]
            self._check_pid(form, extra)
            if form.get("sign", "") == "":
                raise Reject("签名(sign)不能为空", "sign missing or empty", extra)
            stype = form.get("sign_type", "")
            if stype == "":
                raise Reject("签名类型(sign_type)不能为空", "sign_type missing or empty", extra)
            if stype.upper() != "MD5":
                raise Reject(f"签名类型(sign_type)不支持:{stype},仅支持MD5",
                             f"sign_type {stype!r}", extra)
            if stype != "MD5":
                warn.append(f"sign_type {stype!r} accepted, the doc sends 'MD5'")
            for f in MAPI_REQUIRED:
                if form.get(f, "") == "":
                    raise Reject(f"{f}({FIELD_CN[f]})不能为空", f"{f} missing or empty", extra)
            signed = sign_string(form)
            expected = md5_hex(signed + st.key)
            if form["sign"] != expected:
                extra.update({"expected_sign": expected, "sign_string": signed + "<key>"})
                raise Reject("签名校验失败", "sign mismatch", extra)
            if form["type"] not in PAY_TYPES:
                raise Reject(f"支付方式(type)不支持:{form['type']}",
                             f"type {form['type']!r} not in {PAY_TYPES}", extra)
            money = form["money"]
            if not money_ok(money):
                raise Reject(f"金额(money)格式错误:{money}",
                             "money is not digits with at most 2 decimals", extra)
            if money_cents(money) <= 0:
                raise Reject("金额(money)必须大于0", "money <= 0", extra)
            name = form["name"]
            nbytes = len(name.encode("utf-8"))
            if nbytes > NAME_MAX_BYTES:
                if not st.truncate_long_name:
                    raise Reject(f"商品名称(name)过长:{nbytes}字节,最多{NAME_MAX_BYTES}字节",
                                 f"name is {nbytes} bytes", extra)
                name = truncate_utf8(name, NAME_MAX_BYTES)
                warn.append(f"name truncated from {nbytes} bytes to 127")
            for f, cn in (("notify_url", "异步通知地址"), ("return_url", "跳转通知地址")):
                v = form.get(f, "")
                if v:
                    u = urllib.parse.urlsplit(v)
                    if u.scheme not in ("http", "https") or not u.netloc:
                        raise Reject(f"{cn}({f})格式错误", f"{f} not absolute http(s)", extra)
            if urllib.parse.urlsplit(form["notify_url"]).query:
                warn.append("notify_url has its own query string: the notify appends its "
                            "fields to it, so a merchant that verifies every GET parameter "
                            "will include these in the sign")
            if (urllib.parse.urlsplit(form["notify_url"]).hostname or "").lower() \
                    not in NOTIFY_HOSTS:
                warn.append("notify_url is not on 127.0.0.1/localhost: "
                            "this double will never send to it")
            try:
                ipaddress.ip_address(form["clientip"])
            except ValueError:
                raise Reject("用户IP地址(clientip)格式错误",
                             f"clientip {form['clientip']!r} is not an IP address", extra)
            device = form.get("device", "") or "pc"
            if device not in KNOWN_DEVICES:
                warn.append(f"device {device!r} is not one of {KNOWN_DEVICES}")
            with st.lock:
                if form["out_trade_no"] in st.by_out:
                    raise Reject("商户订单号(out_trade_no)已存在",
                                 f"duplicate out_trade_no {form['out_trade_no']!r}", extra)
                trade_no = st.new_trade_no()
                kind = st.answer
                if kind == "mixed":
                    kind = "payurl" if form["type"] == "wxpay" else "qrcode"
                if kind == "qrcode":
                    value = qr_text(form["type"])
                elif kind == "payurl":
                    value = f"{st.base_url}/pay/{trade_no}"
                else:
                    value = "weixin://dl/business/?t=" + secrets.token_hex(6)
                now = time.time()
                order = {
                    "trade_no": trade_no,
                    "out_trade_no": form["out_trade_no"],
                    "pid": form["pid"],
                    "type": form["type"],
                    "name": name,
                    "name_sent": form["name"],
                    "money": money_2dp(money),
                    "money_sent": money,
                    "paid_money": None,
                    "notify_url": form["notify_url"],
                    "return_url": form.get("return_url") or None,
                    "clientip": form["clientip"],
                    "device": device,
                    "device_sent": "device" in form,
                    "param": form.get("param", ""),
                    "sitename": form.get("sitename"),
                    "sign_type": stype,
                    "transport": self.command,
                    "params": dict(form),
                    "unknown_fields": {k: form[k] for k in extra["unknown_fields"]},
                    "warnings": list(warn),
                    "answer": {kind: value},
                    "status": STATUS_UNPAID,
                    "created_at": now,
                    "addtime": fmt_time(now),
                    "endtime": None,
                    "query_count": 0,
                    "query_times": [],
                    "bad_key_queries": 0,
                    "notify_acknowledged": False,
                    "notify_attempts": [],
                    "status_history": [{"status": STATUS_UNPAID, "at": now,
                                        "why": "created"}],
                }
                st.by_out[order["out_trade_no"]] = order
                st.by_trade[trade_no] = order
                st.orders.append(order)
        except Reject as r:
            return self._reject(r)
        return self._api({"code": 1, "msg": MSG_CREATED, "trade_no": trade_no, kind: value},
                         extra)

    # -- /api.php -------------------------------------------------------------------------
    def h_api(self):
        st = self.store
        extra = {}
        try:
            form, extra = self._params(API_KNOWN, "GET")
            act = form.get("act", "")
            if act == "":
                raise Reject("act参数不能为空", "act missing", extra)
            if act != "order":
                raise Reject(f"不支持的act:{act}(仅实现act=order)",
                             f"act {act!r} not implemented", extra)
            self._check_pid(form, extra)
            key = form.get("key", "")
            if key == "":
                raise Reject("商户密钥(key)不能为空", "key missing or empty", extra)
            out_no, trade_no = form.get("out_trade_no", ""), form.get("trade_no", "")
            extra["key_matched"] = key == st.key
            if key != st.key:
                with st.lock:
                    o = st.by_out.get(out_no) or st.by_trade.get(trade_no)
                    if o is not None:
                        o["bad_key_queries"] += 1
                raise Reject("商户密钥错误", "wrong key", extra)
            if out_no == "" and trade_no == "":
                raise Reject("订单号(out_trade_no或trade_no)不能为空",
                             "neither out_trade_no nor trade_no", extra)
            with st.lock:
                o = None
                if out_no:
                    o = st.by_out.get(out_no)
                if trade_no:
                    o2 = st.by_trade.get(trade_no)
                    o = o2 if not out_no else (o if o is o2 else None)
                if o is None:
                    raise Reject(MSG_NOT_FOUND, "unknown order", extra)
                st.refresh(o)
                now = time.time()
                o["query_count"] += 1
                o["query_times"].append(now)
                paid = o["status"] == STATUS_PAID
                num = str if st.numbers_as_strings else int
                result = {
                    "code": 1, "msg": MSG_QUERY_OK,
                    "trade_no": o["trade_no"], "out_trade_no": o["out_trade_no"],
                    "type": o["type"], "pid": num(o["pid"]),
                    "addtime": o["addtime"], "endtime": o["endtime"],
                    "name": o["name"], "money": o["money"],
                    "status": num(1 if paid else 0),
                }
        except Reject as r:
            return self._reject(r)
        return self._api(result, extra)

    # -- /pay/<trade_no> -----------------------------------------------------------------
    def h_pay_page(self, trade_no):
        o = self.store.by_trade.get(trade_no)
        if o is None:
            return self._text(404, "<html><body>订单不存在</body></html>",
                              ctype="text/html; charset=utf-8")
        with self.store.lock:
            self.store.refresh(o)
        page = ("<!doctype html><html><head><meta charset='utf-8'><title>epay</title></head>"
                f"<body><p>{html.escape(o['name'])} ¥{o['money']} ({o['type']}) "
                f"状态 {o['status']}</p></body></html>")
        return self._text(200, page, ctype="text/html; charset=utf-8")

    # -- control ---------------------------------------------------------------------------
    def _q(self):
        return dict(urllib.parse.parse_qsl(self._query, keep_blank_values=True))

    def c_pay(self, no):
        st = self.store
        q = self._q()
        with st.lock:
            o = st.find(no)
            if o is None:
                return self._control(404, {"ok": False, "error": "unknown order"})
            money = q.get("money") or o["money"]
            if not money_ok(money) or money_cents(money) <= 0:
                return self._control(400, {"ok": False, "error": "money must be > 0 with "
                                           "at most 2 decimals"})
            if o["status"] == STATUS_PAID:
                return self._control(409, {"ok": False, "error": "already paid; use "
                                           "/control/notify to resend"})
            if o["status"] == STATUS_EXPIRED and q.get("force") != "1":
                return self._control(409, {"ok": False, "error": "order expired; add "
                                           "force=1 to pay it anyway"})
            o["paid_money"] = money_2dp(money) if q.get("money") else None
            now = time.time()
            o["endtime"] = fmt_time(now)
            st.set_status(o, STATUS_PAID, "control: pay")
        t = send_notify(st, o, "control/pay")
        if t is not None and q.get("wait") == "1":
            t.join()
        return self._control(200, {"ok": True, "out_trade_no": o["out_trade_no"],
                                   "trade_no": o["trade_no"], "status": STATUS_PAID,
                                   "money": o["paid_money"] or o["money"],
                                   "notify": "sending" if t else "not sent"})

    def c_notify(self, no):
        st = self.store
        q = self._q()
        o = st.find(no)
        if o is None:
            return self._control(404, {"ok": False, "error": "unknown order"})
        forged = q.get("forged") == "1"
        status = q.get("status") or "TRADE_SUCCESS"
        t = send_notify(st, o, "control/notify", trade_status=status, forged=forged)
        if t is not None and q.get("wait") == "1":
            t.join()
        return self._control(200, {"ok": True, "out_trade_no": o["out_trade_no"],
                                   "forged": forged, "trade_status": status,
                                   "status": o["status"],
                                   "notify": "sending" if t else "not sent"})

    def c_expire(self, no):
        st = self.store
        with st.lock:
            o = st.find(no)
            if o is None:
                return self._control(404, {"ok": False, "error": "unknown order"})
            if o["status"] == STATUS_PAID:
                return self._control(409, {"ok": False, "error": "already paid"})
            if o["status"] != STATUS_EXPIRED:
                st.set_status(o, STATUS_EXPIRED, "control: expire")
        return self._control(200, {"ok": True, "out_trade_no": o["out_trade_no"],
                                   "status": STATUS_EXPIRED})


_KEY_IN_LINE = re.compile(r"([?&]key=)[^&\s\"]*")


def mask_key_params_in_line(line: str) -> str:
    return _KEY_IN_LINE.sub(r"\1<key>", line)


# ---------------------------------------------------------------------------

def check_vector():
    got = make_sign(VECTOR, VECTOR_KEY)
    if got != VECTOR_SIGN:
        sys.stderr.write(f"[epay] published vector FAILED: got {got}, want {VECTOR_SIGN}\n")
        sys.exit(2)
    sys.stderr.write(f"[epay] published vector OK ({VECTOR_SIGN})\n")


def main(argv=None):
    p = argparse.ArgumentParser(description="易支付 / epay MD5 merchant protocol test double")
    p.add_argument("--pid", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--requests-log", default=None)
    p.add_argument("--answer", choices=("mixed", "qrcode", "payurl", "urlscheme"),
                   default="mixed",
                   help="mixed (default): qrcode for alipay/qqpay, payurl for wxpay")
    p.add_argument("--order-timeout", type=float, default=0,
                   help="seconds before an unpaid order expires (default 0 = never; "
                        "the real timeout is UNKNOWN)")
    p.add_argument("--notify-retries", type=int, default=0,
                   help="extra notify attempts while not acknowledged (real schedule UNKNOWN)")
    p.add_argument("--notify-retry-interval", type=float, default=5.0)
    p.add_argument("--truncate-long-name", action="store_true",
                   help="truncate a name above 127 bytes instead of refusing the order")
    p.add_argument("--numbers-as-strings", action="store_true",
                   help="send pid and status as JSON strings in the api.php answer")
    args = p.parse_args(argv)
    if not PID_RE.match(args.pid):
        p.error("--pid must be an integer")
    if args.key == "":
        p.error("--key must not be empty")
    check_vector()

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
