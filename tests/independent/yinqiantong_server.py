#!/usr/bin/env python3
"""Independent reference implementation (test double) of the yinqiantong (银钱通) v1
payment-provider HTTP protocol.

Written only from the protocol documents:
  * the original Chinese API doc (seed 003, which is v1), and
  * PROVIDERS.md section "4. yinqiantong.com", subsection 4a (v1); 4b (v2) only as
    background (numeric codes, length limits, error codes, pay_body table).
It deliberately shares no code with the client under test.

Usage:
    python3 yinqiantong_server.py --appid ID --appkey KEY --app-secret SECRET \
        [--port 0] [--requests-log FILE] [--numeric-fields] [--order-ttl 7200] \
        [--no-v2-limits]

Binds 127.0.0.1:PORT (0 = random) and prints exactly one line
    LISTENING http://127.0.0.1:PORT
to stdout once ready, then serves until killed.  Diagnostics go to stderr.

Protocol endpoints
------------------
POST /order        create an order.  Headers appid, appkey, ts, sign; JSON body.
GET  /order?client_out_trade_no=...   or   GET /order?out_trade_no=...
                   query an order.  Same four headers; sign over the empty set.
GET  /wx/checkmweb?prepay_id=...      stand-in for wx.tenpay.com's H5 page (browser route)
GET|POST /alipay/gateway.do           stand-in for openapi.alipay.com's gateway (browser route)

v1 sign (PROVIDERS.md 4a, doc/sign.md @089561b):
    md5( k1=v1&k2=v2...  (all NON-EMPTY body fields, sorted by name, case-sensitive
         ASCII, raw values)  + "&ts=<ts>&app_secret=<secret>" )
    - when no body field is non-empty (the query), the string is "ts=<ts>&app_secret=<secret>"
      (no leading "&").
    - values: strings raw; integers (and integral floats) without decimals ("1", not "1.0");
      booleans "true"/"false"; objects/arrays as compact JSON (CHOICE: undocumented).
      null and "" are "empty" and skipped.
    - EVERY body field counts, including fields this double does not know (the client
      signs what it sends).
    - the sign is compared exactly: 32 lowercase hex digits (CHOICE: md5() in PROVIDERS.md
      conventions means lowercase hex).
    Published vector (checked at start-up):
      channel=wx&client_ip=127.0.0.1&money=1&platform=app&ts=1536053843&app_secret=your_app_secret
      -> 1917abc8b8908f9bef5cc86559c26edc

Answers are JSON {"msg": ..., "code": ..., "data": {...}} (key order as the seed's example);
errors carry no "data".  Codes (PROVIDERS.md 4b list, also used for v1):
    200   ok
    4414  参数错误 (missing / malformed header, field, JSON, Content-Type, ts out of window)
    4403  签名错误 (bad sign) / appid 或 appkey 错误
    4409  订单已存在 (duplicate client_out_trade_no)
    4404  订单不存在 (query of an unknown order)
    4500  服务器内部错误 (unexpected exception; HTTP 500)
All protocol answers other than 4500 use HTTP 200 (CHOICE: the docs show no HTTP status).

Order "data" (same shape for create and query): app_id, channel, platform, out_trade_no,
client_out_trade_no, status, money, client_ip, open_id, subject, description, notify_url,
return_url, success_url, extra, pay_body, pay_time, expire_time, create_time.
  - status strings: unpaid | paid | expired | refunding | refunded (api.md 5e45197).
  - --numeric-fields answers channel/platform/status as numbers like the seed's example:
      channel  alipay=1, wx=2   (seed: alipay -> 1; matches the final v2 table)
      platform pc=1, app=2, h5=3, mp=4, mini_app=5, scan=6   (seed: h5 -> 3; v2 table)
      status   unpaid=0, paid=1, failed=2, expired=3 (v2 notify table);
               refunding=4, refunded=5 (CHOICE: no number is documented for these).
    The same style is used in the notify body.
  - expire_time = create_time + 7200 s (CHOICE: the seed's example has
    1536221198 - 1536213998 = 7200).  An unpaid order becomes "expired" once now >= expire_time.
  - out_trade_no mimics the seed's "0000000013153621399830c1a3e" = appid + channel code +
    platform code + create_time + 7 random hex digits (INFERRED from the example).
  - success_url: the seed's example has it with no description; this double fills it with
    return_url (CHOICE).

pay_body (PROVIDERS.md 4b table; only partly documented):
  scan + wx      -> "weixin://wxpay/bizpayurl?pr=<id>"     (INFERRED in PROVIDERS.md)
  scan + alipay  -> "https://qr.alipay.com/<id>"           (INFERRED in PROVIDERS.md)
  wx + mp / mini_app -> JSON string for WeixinJSBridge getBrandWCPayRequest (documented for mp;
                    mini_app UNKNOWN, same used)
  wx + other     -> "http://127.0.0.1:PORT/wx/checkmweb?prepay_id=<id>&package=<n>&redirect_url="
                    (stand-in for wx.tenpay.com; documented for h5, used for app/pc too)
  alipay + app   -> an Alipay app "order string" (UNKNOWN; CHOICE)
  alipay + other -> auto-submitting HTML form like the seed's, action
                    'http://127.0.0.1:PORT/alipay/gateway.do?charset=utf-8' method='post'

Create validation (all 4414 unless said):
  - headers appid, appkey, ts, sign present and non-empty; appid/appkey equal to the
    configured ones (else 4403); ts exactly 10 digits and |now - ts| <= 86400
    (CHOICE: 4414, the docs name no code for a stale ts); sign 32 lowercase hex (else 4403).
  - Content-Type must be application/json (charset parameter allowed); body a UTF-8 JSON
    object without duplicate keys.  (The seed and the brief say JSON; the Java SDK's form
    posting is v2 and is not accepted here.)
  - the sign is checked before the fields are validated (so a bad sign is 4403 even if a
    field is also bad).
  - channel: "wx" | "alipay";  platform: "app"|"mp"|"mini_app"|"h5"|"pc"|"scan".
  - money: a JSON integer > 0 (not a string, not a float — not even 1.0, not a boolean).
  - client_ip: dotted IPv4.
  - notify_url: required (the seed's table says 必填 although its curl example omits it);
    absolute http(s) URL.
  - open_id: required (non-empty) when platform is mp or mini_app.
  - subject, description, extra, open_id, return_url, client_out_trade_no: strings or
    null if present.
  - client_out_trade_no (optional in v1; added later): a duplicate is 4409.
  - INFERRED from v2 (disable with --no-v2-limits): client_out_trade_no <= 32 chars of
    [0-9A-Za-z]; notify_url <= 128; return_url <= 128, http(s), no query string;
    subject <= 32; description <= 128; extra <= 512 (characters).
  - unknown body fields are accepted, count in the sign, and are listed as
    "unknown_fields" in the requests log and in the order record.

Query (GET /order):
  - same four headers and checks; sign = md5("ts=<ts>&app_secret=<secret>") — query-string
    parameters are NOT signed (Java SDK 56d5b4a signs the empty set).
  - exactly one of client_out_trade_no / out_trade_no is expected; if both are given they
    must name the same order (else 4404).  Neither -> 4414.  Other query parameters are
    ignored but logged as "unknown_fields".
  - unknown order -> 4404.

Notify (server -> merchant), v1:
  POST {notify_url}, Content-Type application/json, headers appid, appkey, ts (now), sign.
  Body: out_trade_no, client_out_trade_no, channel, platform, status, money, client_ip,
  open_id, subject, description, extra, pay_time  (open_id added by CHOICE: "the order
  fields").  Empty values are sent (as "") but, as in the v1 scheme, left out of the sign:
  sign = md5(sorted non-empty body k=v joined + "&ts=<ts>&app_secret=<secret>").
  Expected answer: JSON {"code":200}; any HTTP 200 counts as delivered; the status and
  body are recorded ("ack_code_200" says whether the body was JSON with code 200).
  Sent once per trigger (no automatic retries; v2 retries each minute up to 3 times — a
  test can re-trigger with /control/notify).  Only to 127.0.0.1 / localhost / ::1;
  2 s timeout; errors are recorded and otherwise ignored.

Test-control endpoints (NOT part of the protocol).  {no} is the merchant's
client_out_trade_no (falls back to the provider's out_trade_no):
  POST /control/pay/{no}                 status -> paid, pay_time = now, send the notify
                                         (again on every call, to mimic a retry).
  POST /control/expire/{no}              status -> expired (no notify).
  POST /control/status/{no}?status=S     set any status (unpaid|paid|expired|refunding|
                                         refunded), no notify.
  POST /control/notify/{no}[?forged=1]   send the notify for the current state; forged=1
                                         signs with a wrong secret.
  GET  /control/orders                   JSON list: every field, create headers and raw
                                         body, status, notify attempts, query count.
Control answers: "ok" (text) or 404 "unknown order".

Requests log (--requests-log FILE): one JSON line per request:
  {"event":"request","method","path","query","headers","content_type","body","status",
   "result"} plus "expected_sign" and "signed_string" (secret shown as "<app_secret>")
  when a sign was wrong, and "unknown_fields" when there were any.
One line per notify attempt: {"event":"notify", ...}.
"""

import argparse
import hashlib
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
# constants from the documents

CHANNELS = ("wx", "alipay")
PLATFORMS = ("app", "mp", "mini_app", "h5", "pc", "scan")
OPENID_PLATFORMS = ("mp", "mini_app")
STATUSES = ("unpaid", "paid", "expired", "refunding", "refunded")

CHANNEL_NUM = {"alipay": 1, "wx": 2}
PLATFORM_NUM = {"pc": 1, "app": 2, "h5": 3, "mp": 4, "mini_app": 5, "scan": 6}
STATUS_NUM = {"unpaid": 0, "paid": 1, "failed": 2, "expired": 3,
              "refunding": 4, "refunded": 5}   # 4, 5: CHOICE (undocumented)

KNOWN_FIELDS = ("channel", "platform", "money", "client_ip", "notify_url", "open_id",
                "subject", "description", "extra", "client_out_trade_no", "return_url")
STRING_FIELDS = ("channel", "platform", "client_ip", "notify_url", "open_id", "subject",
                 "description", "extra", "client_out_trade_no", "return_url")
REQUIRED_FIELDS = ("channel", "platform", "money", "client_ip", "notify_url")
AUTH_HEADERS = ("appid", "appkey", "ts", "sign")

TS_WINDOW = 86400
ORDER_TTL_DEFAULT = 7200
NOTIFY_TIMEOUT = 2.0

V2_LIMITS = {"notify_url": 128, "return_url": 128, "subject": 32, "description": 128,
             "extra": 512, "client_out_trade_no": 32}
CLIENT_NO_RE = re.compile(r"^[0-9A-Za-z]+$")
TS_RE = re.compile(r"^[0-9]{10}$")
SIGN_RE = re.compile(r"^[0-9a-f]{32}$")

C_OK = 200
C_PARAM = 4414
C_EXISTS = 4409
C_SIGN = 4403
C_NOT_FOUND = 4404
C_SERVER = 4500

PUBLISHED_VECTOR = ({"channel": "wx", "client_ip": "127.0.0.1", "money": 1, "platform": "app"},
                    "1536053843", "your_app_secret", "1917abc8b8908f9bef5cc86559c26edc")


def md5_hex(s: str) -> str:
    return hashlib.md5(s.encode("utf-8")).hexdigest()


def render_value(v):
    """Value as it appears in the signed string; None means "empty, skip"."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer():
            return str(int(v))
        return repr(v)
    if isinstance(v, str):
        return v if v != "" else None
    if isinstance(v, (dict, list)):
        if not v:
            return None
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    return str(v)


def sign_string(fields: dict, ts: str, secret: str) -> str:
    parts = []
    for k in sorted(fields):            # str sort = code-point order = case-sensitive ASCII
        r = render_value(fields[k])
        if r is None:
            continue
        parts.append(f"{k}={r}")
    parts.append(f"ts={ts}")
    parts.append(f"app_secret={secret}")
    return "&".join(parts)


def v1_sign(fields: dict, ts: str, secret: str) -> str:
    return md5_hex(sign_string(fields, ts, secret))


def _self_check():
    fields, ts, secret, want = PUBLISHED_VECTOR
    s = sign_string(fields, ts, secret)
    assert s == ("channel=wx&client_ip=127.0.0.1&money=1&platform=app"
                 "&ts=1536053843&app_secret=your_app_secret"), s
    assert md5_hex(s) == want, md5_hex(s)
    assert v1_sign({}, "1", "x") == md5_hex("ts=1&app_secret=x")


# ---------------------------------------------------------------------------
# server state

class Store:
    def __init__(self, args, log_path):
        self.appid = args.appid
        self.appkey = args.appkey
        self.secret = args.app_secret
        self.numeric = args.numeric_fields
        self.order_ttl = args.order_ttl
        self.v2_limits = not args.no_v2_limits
        self.port = None
        self.lock = threading.RLock()
        self.by_out = {}       # out_trade_no -> order
        self.by_client = {}    # client_out_trade_no -> order
        self.order_list = []
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

    def refresh(self, order: dict):
        if order["status"] == "unpaid" and time.time() >= order["expire_time"]:
            order["status"] = "expired"
            order["status_history"].append({"status": "expired", "at": time.time(),
                                            "why": "auto: expire_time reached"})

    def find(self, ref: str):
        with self.lock:
            o = self.by_client.get(ref) or self.by_out.get(ref)
            if o is not None:
                self.refresh(o)
            return o

    def set_status(self, order: dict, status: str, why: str):
        order["status"] = status
        order["status_history"].append({"status": status, "at": time.time(), "why": why})

    def snapshot(self):
        with self.lock:
            out = []
            for o in self.order_list:
                self.refresh(o)
                out.append(json.loads(json.dumps(o, ensure_ascii=False)))
            return out

    # -- field style --------------------------------------------------------
    def ch(self, v):
        return CHANNEL_NUM[v] if self.numeric else v

    def pl(self, v):
        return PLATFORM_NUM[v] if self.numeric else v

    def stt(self, v):
        return STATUS_NUM[v] if self.numeric else v

    def order_data(self, o: dict) -> dict:
        # key order follows the seed's example; client_out_trade_no / return_url appended
        # where they fit.
        return {
            "app_id": self.appid,
            "channel": self.ch(o["channel"]),
            "platform": self.pl(o["platform"]),
            "out_trade_no": o["out_trade_no"],
            "client_out_trade_no": o["client_out_trade_no"],
            "status": self.stt(o["status"]),
            "money": o["money"],
            "client_ip": o["client_ip"],
            "open_id": o["open_id"],
            "subject": o["subject"],
            "description": o["description"],
            "notify_url": o["notify_url"],
            "success_url": o["return_url"],
            "return_url": o["return_url"],
            "extra": o["extra"],
            "pay_body": o["pay_body"],
            "pay_time": o["pay_time"],
            "expire_time": o["expire_time"],
            "create_time": o["create_time"],
        }


# ---------------------------------------------------------------------------
# pay_body

def _rand_token(n: int, alphabet="abcdefghijklmnopqrstuvwxyz0123456789") -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def make_pay_body(store: Store, o: dict) -> str:
    base = f"http://127.0.0.1:{store.port}"
    ch, pl = o["channel"], o["platform"]
    if pl == "scan":
        if ch == "wx":
            return "weixin://wxpay/bizpayurl?pr=" + _rand_token(7, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                  "abcdefghijklmnopqrstuvwxyz"
                                                                  "0123456789")
        return "https://qr.alipay.com/" + _rand_token(22)
    if ch == "wx":
        prepay_id = "wx" + time.strftime("%Y%m%d%H%M%S") + _rand_token(18, "0123456789abcdef")
        if pl in OPENID_PLATFORMS:
            nonce = _rand_token(16)
            ts = str(o["create_time"])
            return json.dumps({"appId": "wx0000000000000000", "timeStamp": ts,
                               "nonceStr": nonce, "package": "prepay_id=" + prepay_id,
                               "signType": "MD5",
                               "paySign": md5_hex(prepay_id + nonce + ts).upper()},
                              separators=(",", ":"))
        return (f"{base}/wx/checkmweb?prepay_id={prepay_id}"
                f"&package={secrets.randbelow(10**10):010d}&redirect_url=")
    # alipay
    biz = json.dumps({"out_trade_no": o["out_trade_no"],
                      "total_amount": o["money"] / 100 if o["money"] % 100 else o["money"] // 100,
                      "subject": o["subject"],
                      "notify_url": base + "/alipay/notify",
                      "product_code": "QUICK_MSECURITY_PAY" if pl == "app" else
                      ("FAST_INSTANT_TRADE_PAY" if pl == "pc" else "QUICK_WAP_WAY")},
                     ensure_ascii=False, separators=(",", ":"))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(o["create_time"]))
    fake_sign = md5_hex(biz + stamp) * 4
    if pl == "app":
        return urllib.parse.urlencode([
            ("app_id", "2018081661080671"), ("biz_content", biz), ("charset", "utf-8"),
            ("format", "JSON"), ("method", "alipay.trade.app.pay"),
            ("notify_url", base + "/alipay/notify"), ("sign_type", "RSA2"),
            ("timestamp", stamp), ("version", "1.0"), ("sign", fake_sign)])
    method = "alipay.trade.page.pay" if pl == "pc" else "alipay.trade.wap.pay"

    def esc(s):
        return s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;")

    inputs = [("app_id", "2018081661080671"), ("method", method), ("format", "JSON"),
              ("charset", "utf-8"), ("sign_type", "RSA2"), ("version", "1.0"),
              ("return_url", o["return_url"]), ("notify_url", base + "/alipay/notify"),
              ("timestamp", stamp), ("sign", fake_sign), ("biz_content", biz)]
    html = (f"<form id='alipaysubmit' name='alipaysubmit' "
            f"action='{base}/alipay/gateway.do?charset=utf-8' method='post'>")
    for k, v in inputs:
        html += f"<input type='hidden' name='{k}' value='{esc(v)}'/>"
    html += ("<input type='submit' value='ok' style='display:none;'></form>"
             "<script>document.forms[0].submit();</script>")
    return html


def make_out_trade_no(store: Store, channel: str, platform: str, create_time: int) -> str:
    with store.lock:
        while True:
            n = (f"{store.appid}{CHANNEL_NUM[channel]}{PLATFORM_NUM[platform]}"
                 f"{create_time}{secrets.token_hex(4)[:7]}")
            if n not in store.by_out:
                return n


# ---------------------------------------------------------------------------
# notify

def _is_local(url: str) -> bool:
    try:
        host = urllib.parse.urlsplit(url).hostname
    except ValueError:
        return False
    return host in ("127.0.0.1", "localhost", "::1")


def send_notify(store: Store, order: dict, forged: bool = False, trigger: str = "pay"):
    with store.lock:
        store.refresh(order)
        body = {
            "out_trade_no": order["out_trade_no"],
            "client_out_trade_no": order["client_out_trade_no"],
            "channel": store.ch(order["channel"]),
            "platform": store.pl(order["platform"]),
            "status": store.stt(order["status"]),
            "money": order["money"],
            "client_ip": order["client_ip"],
            "open_id": order["open_id"],
            "subject": order["subject"],
            "description": order["description"],
            "extra": order["extra"],
            "pay_time": order["pay_time"],
        }
        url = order["notify_url"]
    ts = str(int(time.time()))
    secret = store.secret if not forged else store.secret + "-forged"
    sign = v1_sign(body, ts, secret)
    headers = {"Content-Type": "application/json", "appid": store.appid,
               "appkey": store.appkey, "ts": ts, "sign": sign}
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def worker():
        attempt = {"event": "notify", "method": "POST", "url": url,
                   "client_out_trade_no": body["client_out_trade_no"],
                   "out_trade_no": body["out_trade_no"], "trigger": trigger,
                   "forged": forged, "headers": headers, "body": data.decode("utf-8"),
                   "signed_string": sign_string(body, ts, "<app_secret>"),
                   "started_at": time.time(), "status": None, "response_body": None,
                   "ack_code_200": False, "error": None}
        if not _is_local(url):
            attempt["error"] = "not sent: notify_url is not 127.0.0.1/localhost"
        else:
            try:
                req = urllib.request.Request(url, data=data, method="POST", headers=headers)
                with urllib.request.urlopen(req, timeout=NOTIFY_TIMEOUT) as resp:
                    attempt["status"] = resp.status
                    attempt["response_body"] = resp.read(65536).decode("utf-8", "replace")
            except urllib.error.HTTPError as e:
                attempt["status"] = e.code
                try:
                    attempt["response_body"] = e.read(65536).decode("utf-8", "replace")
                except Exception:  # noqa: BLE001
                    pass
                attempt["error"] = f"HTTPError {e.code}"
            except Exception as e:  # noqa: BLE001 - the notify_url may point nowhere
                attempt["error"] = f"{type(e).__name__}: {e}"
        try:
            ack = json.loads(attempt["response_body"] or "")
            attempt["ack_code_200"] = isinstance(ack, dict) and ack.get("code") in (200, "200")
        except ValueError:
            pass
        attempt["finished_at"] = time.time()
        with store.lock:
            order["notify_attempts"].append(attempt)
        store.log(attempt)
        print(f"[yinqiantong] notify {url} forged={forged} -> status={attempt['status']} "
              f"body={attempt['response_body']!r} error={attempt['error']}",
              file=sys.stderr, flush=True)

    threading.Thread(target=worker, daemon=True).start()


# ---------------------------------------------------------------------------
# HTTP handler

class Reject(Exception):
    def __init__(self, code: int, msg: str):
        super().__init__(msg)
        self.code = code
        self.msg = msg


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "yinqiantong-test-double/1.0"
    store: Store = None  # set in main()

    def log_message(self, fmt, *args):
        sys.stderr.write("[yinqiantong] %s - %s\n" % (self.address_string(), fmt % args))

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

    def _send(self, status: int, body: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _finish(self, status: int, result, raw_body: bytes, text=False, content_type=None):
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
            "headers": {k: v for k, v in self.headers.items()},
            "content_type": self.headers.get("Content-Type"),
            "body": raw_body.decode("utf-8", "replace"),
            "status": status,
            "result": result if not text or len(result) < 2000 else result[:2000],
        }
        entry.update(self._extra)
        self.store.log(entry)
        self._send(status, body, ctype)

    def _answer(self, raw: bytes, code: int, msg: str, data=None):
        result = {"msg": msg, "code": code}
        if data is not None:
            result["data"] = data
        return self._finish(200, result, raw)

    # -- dispatch -------------------------------------------------------------
    def _dispatch(self):
        split = urllib.parse.urlsplit(self.path)
        self._path = split.path
        self._query = split.query
        self._extra = {}
        raw = self._read_body()
        segs = [urllib.parse.unquote(s) for s in split.path.split("/")[1:]]
        m = self.command
        try:
            if segs == ["order"] and m == "POST":
                return self.h_create(raw)
            if segs == ["order"] and m == "GET":
                return self.h_query(raw)
            if segs == ["wx", "checkmweb"] and m == "GET":
                return self.h_page(raw, "微信支付 (测试替身)")
            if segs == ["alipay", "gateway.do"] and m in ("GET", "POST"):
                return self.h_page(raw, "支付宝 (测试替身)")
            if m == "POST" and len(segs) == 3 and segs[0] == "control":
                if segs[1] == "pay":
                    return self.h_control_pay(raw, segs[2])
                if segs[1] == "expire":
                    return self.h_control_status(raw, segs[2], "expired")
                if segs[1] == "status":
                    q = urllib.parse.parse_qs(self._query)
                    return self.h_control_status(raw, segs[2], q.get("status", [""])[0])
                if segs[1] == "notify":
                    return self.h_control_notify(raw, segs[2])
            if m == "GET" and segs == ["control", "orders"]:
                return self._finish(200, self.store.snapshot(), raw)
        except Reject as r:
            return self._answer(raw, r.code, r.msg)
        except Exception as e:  # noqa: BLE001
            print(f"[yinqiantong] internal error: {type(e).__name__}: {e}",
                  file=sys.stderr, flush=True)
            return self._finish(500, {"msg": f"服务器内部错误: {e}", "code": C_SERVER}, raw)
        return self._finish(404, "404 page not found", raw, text=True)

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_DELETE = _dispatch
    do_PATCH = _dispatch

    # -- shared header checks -------------------------------------------------
    def _check_headers(self) -> dict:
        st = self.store
        h = {}
        for name in AUTH_HEADERS:
            v = self.headers.get(name)
            if v is None or v.strip() == "":
                raise Reject(C_PARAM, f"参数错误: 缺少 header 参数 {name}")
            h[name] = v.strip()
        if h["appid"] != st.appid or h["appkey"] != st.appkey:
            raise Reject(C_SIGN, "appid 或 appkey 错误")
        if not TS_RE.match(h["ts"]):
            raise Reject(C_PARAM, f"参数错误: ts 必须为10位时间戳 (收到 {h['ts']!r})")
        if abs(time.time() - int(h["ts"])) > TS_WINDOW:
            raise Reject(C_PARAM, "参数错误: ts 与服务器时间相差超过 86400 秒")
        return h

    def _check_sign(self, fields: dict, h: dict):
        expected = v1_sign(fields, h["ts"], self.store.secret)
        if h["sign"] != expected:
            self._extra["expected_sign"] = expected
            self._extra["signed_string"] = sign_string(fields, h["ts"], "<app_secret>")
            why = "" if SIGN_RE.match(h["sign"]) else " (sign 必须为32位小写十六进制)"
            raise Reject(C_SIGN, "签名错误" + why)

    # -- POST /order ------------------------------------------------------------
    def h_create(self, raw: bytes):
        st = self.store
        h = self._check_headers()

        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            raise Reject(C_PARAM, "参数错误: Content-Type 必须为 application/json "
                                  f"(收到 {self.headers.get('Content-Type')!r})")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Reject(C_PARAM, "参数错误: 请求体不是有效的 UTF-8")

        def no_dupes(pairs):
            d = {}
            for k, v in pairs:
                if k in d:
                    raise ValueError(f"重复的键 {k}")
                d[k] = v
            return d

        try:
            body = json.loads(text, object_pairs_hook=no_dupes)
        except ValueError as e:
            raise Reject(C_PARAM, f"参数错误: 请求体不是有效的 JSON ({e})")
        if not isinstance(body, dict):
            raise Reject(C_PARAM, "参数错误: 请求体必须为 JSON 对象")

        unknown = sorted(k for k in body if k not in KNOWN_FIELDS)
        if unknown:
            self._extra["unknown_fields"] = unknown
            print(f"[yinqiantong] POST /order: unknown fields {unknown}",
                  file=sys.stderr, flush=True)

        self._check_sign(body, h)

        # -- field validation -------------------------------------------------
        for f in STRING_FIELDS:
            if f in body and body[f] is not None and not isinstance(body[f], str):
                raise Reject(C_PARAM, f"参数错误: {f} 必须为字符串")
        for f in REQUIRED_FIELDS:
            if body.get(f) in (None, ""):
                raise Reject(C_PARAM, f"参数错误: 缺少必填参数 {f}")
        if body["channel"] not in CHANNELS:
            raise Reject(C_PARAM, f"参数错误: channel 不支持 {body['channel']!r} (wx|alipay)")
        if body["platform"] not in PLATFORMS:
            raise Reject(C_PARAM, f"参数错误: platform 不支持 {body['platform']!r}")
        money = body["money"]
        if isinstance(money, bool) or not isinstance(money, int):
            raise Reject(C_PARAM, f"参数错误: money 必须为整数 (单位: 分), 收到 {json.dumps(money)}")
        if money <= 0:
            raise Reject(C_PARAM, "参数错误: money 必须大于 0")
        try:
            ipaddress.IPv4Address(body["client_ip"])
        except ValueError:
            raise Reject(C_PARAM, f"参数错误: client_ip 必须为 IPv4 地址 ({body['client_ip']!r})")
        nu = urllib.parse.urlsplit(body["notify_url"])
        if nu.scheme not in ("http", "https") or not nu.netloc:
            raise Reject(C_PARAM, f"参数错误: notify_url 格式错误 ({body['notify_url']!r})")
        if body["platform"] in OPENID_PLATFORMS and body.get("open_id") in (None, ""):
            raise Reject(C_PARAM, "参数错误: 微信公众号/小程序支付必须填写 open_id")

        def opt(f):
            v = body.get(f)
            return "" if v is None else v

        client_no = opt("client_out_trade_no")
        return_url = opt("return_url")
        if return_url:
            ru = urllib.parse.urlsplit(return_url)
            if ru.scheme not in ("http", "https") or not ru.netloc:
                raise Reject(C_PARAM, f"参数错误: return_url 格式错误 ({return_url!r})")
        if st.v2_limits:
            for f, lim in V2_LIMITS.items():
                if len(opt(f)) > lim:
                    raise Reject(C_PARAM, f"参数错误: {f} 长度不能超过 {lim}")
            if client_no and not CLIENT_NO_RE.match(client_no):
                raise Reject(C_PARAM, "参数错误: client_out_trade_no 只能包含数字和字母")
            if return_url and urllib.parse.urlsplit(return_url).query:
                raise Reject(C_PARAM, "参数错误: return_url 不能带参数")

        with st.lock:
            if client_no and client_no in st.by_client:
                raise Reject(C_EXISTS, f"订单已存在: client_out_trade_no={client_no}")
            now = int(time.time())
            order = {
                "out_trade_no": make_out_trade_no(st, body["channel"], body["platform"], now),
                "client_out_trade_no": client_no,
                "channel": body["channel"],
                "platform": body["platform"],
                "money": money,
                "client_ip": body["client_ip"],
                "notify_url": body["notify_url"],
                "open_id": opt("open_id"),
                "subject": opt("subject"),
                "description": opt("description"),
                "extra": opt("extra"),
                "return_url": return_url,
                "status": "unpaid",
                "pay_time": 0,
                "create_time": now,
                "expire_time": now + st.order_ttl,
                "pay_body": "",
                "create_headers": {k: v for k, v in self.headers.items()},
                "create_body": text,
                "unknown_fields": {k: body[k] for k in unknown},
                "query_count": 0,
                "notify_attempts": [],
                "status_history": [{"status": "unpaid", "at": time.time(), "why": "created"}],
            }
            order["pay_body"] = make_pay_body(st, order)
            st.by_out[order["out_trade_no"]] = order
            if client_no:
                st.by_client[client_no] = order
            st.order_list.append(order)
            data = st.order_data(order)
        return self._answer(raw, C_OK, "ok", data)

    # -- GET /order -------------------------------------------------------------
    def h_query(self, raw: bytes):
        st = self.store
        h = self._check_headers()
        q = urllib.parse.parse_qs(self._query, keep_blank_values=True)
        unknown = sorted(k for k in q if k not in ("client_out_trade_no", "out_trade_no"))
        if unknown:
            self._extra["unknown_fields"] = unknown
        self._check_sign({}, h)
        for k in ("client_out_trade_no", "out_trade_no"):
            if len(q.get(k, [])) > 1:
                raise Reject(C_PARAM, f"参数错误: {k} 重复")
        cno = q.get("client_out_trade_no", [""])[0]
        ono = q.get("out_trade_no", [""])[0]
        if not cno and not ono:
            raise Reject(C_PARAM, "参数错误: 缺少 client_out_trade_no 或 out_trade_no")
        with st.lock:
            o1 = st.by_client.get(cno) if cno else None
            o2 = st.by_out.get(ono) if ono else None
            if (cno and o1 is None) or (ono and o2 is None) or (o1 and o2 and o1 is not o2):
                raise Reject(C_NOT_FOUND, "订单不存在")
            o = o1 or o2
            st.refresh(o)
            o["query_count"] += 1
            data = st.order_data(o)
        return self._answer(raw, C_OK, "ok", data)

    # -- stand-in pay pages -------------------------------------------------------
    def h_page(self, raw: bytes, title: str):
        page = ("<!doctype html><html><head><meta charset='utf-8'><title>"
                f"{title}</title></head><body><p>{title}</p></body></html>")
        return self._finish(200, page, raw, text=True, content_type="text/html; charset=utf-8")

    # -- controls -------------------------------------------------------------
    def h_control_pay(self, raw: bytes, ref: str):
        st = self.store
        with st.lock:
            o = st.find(ref)
            if o is None:
                return self._finish(404, "unknown order", raw, text=True)
            st.set_status(o, "paid", "control: pay")
            o["pay_time"] = int(time.time())
        send_notify(st, o, trigger="pay")
        return self._finish(200, "ok", raw, text=True)

    def h_control_status(self, raw: bytes, ref: str, status: str):
        st = self.store
        if status not in STATUSES:
            return self._finish(400, "bad status", raw, text=True)
        with st.lock:
            o = st.find(ref)
            if o is None:
                return self._finish(404, "unknown order", raw, text=True)
            st.set_status(o, status, "control")
            if status == "paid" and not o["pay_time"]:
                o["pay_time"] = int(time.time())
        return self._finish(200, "ok", raw, text=True)

    def h_control_notify(self, raw: bytes, ref: str):
        st = self.store
        q = urllib.parse.parse_qs(self._query)
        forged = q.get("forged", ["0"])[0] not in ("", "0", "false")
        o = st.find(ref)
        if o is None:
            return self._finish(404, "unknown order", raw, text=True)
        send_notify(st, o, forged=forged, trigger="control")
        return self._finish(200, "ok", raw, text=True)


# ---------------------------------------------------------------------------

def main(argv=None):
    _self_check()
    p = argparse.ArgumentParser(description="yinqiantong (银钱通) v1 protocol test double")
    p.add_argument("--appid", required=True)
    p.add_argument("--appkey", required=True)
    p.add_argument("--app-secret", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--requests-log", default=None)
    p.add_argument("--numeric-fields", action="store_true",
                   help="answer channel/platform/status as numbers like the seed's example")
    p.add_argument("--order-ttl", type=int, default=ORDER_TTL_DEFAULT,
                   help="expire_time = create_time + this (default 7200 s)")
    p.add_argument("--no-v2-limits", action="store_true",
                   help="do not apply the v2 length/charset limits (INFERRED for v1)")
    args = p.parse_args(argv)

    log_path = os.path.abspath(args.requests_log) if args.requests_log else None
    Handler.store = Store(args, log_path)

    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    Handler.store.port = port
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
