#!/usr/bin/env python3
"""Independent reference implementation (test double) of the V免签 (vmq) self-hosted
payment-server HTTP protocol.

Written only from PROVIDERS.md section "7. V免签 (vmq, self-hosted)" (plus its
"Conventions": md5 = 32 lowercase hex over UTF-8, "+" = plain concatenation).
It shares no code with the client under test.

Usage:
    python3 vmq_server.py --key SOMEKEY [--port 0] [--requests-log FILE]
        [--flavor php|java] [--monitor online|offline|unbound] [--timeout-minutes 5]
        [--pay-qf 1|2] [--notify-url URL] [--return-url URL] [--json-amounts number|string]

Binds 127.0.0.1:PORT (0 = random) and prints exactly one line
    LISTENING http://127.0.0.1:PORT
to stdout once ready, then serves until killed.  Diagnostics go to stderr.
At start-up the documented sign vector is checked (exit 1 if md5 disagrees):
    md5("1547129707139"+"vone666"+"2"+"0.1"+"a7cc8678193ee9c70ae3d75fd04ae6a9")
        == "2b8b5d58c51203162f14939bdbc46a54"

Flavors
-------
--flavor php (default) imitates szvone/vmqphp V1.13, --flavor java szvone/Vmq V1.6.1:
                      php                              java
  date (create/get)   10-digit seconds                 13-digit milliseconds
  price, reallyPrice  MySQL double text: 0.1, 10, 12.3 Double.toString: 0.1, 10.0, 12.3
  (responses+notify)
  checkOrder URL      2 decimals: 0.10, 10.00, 12.30   Double.toString: 0.1, 10.0, 12.3
  slot key            "<fen>-<type>"                   "<type>-<price>"
  nudge limit         10 tries, then 订单超出负荷       none; fails only when the price
                                                       would reach <= 0 (订单超出负荷)
  JSON "/"            escaped as "\\/" (PHP json_encode) not escaped
  getState lastpay/   seconds                          milliseconds   (CHOICE; the doc
  lastheart                                                            gives no unit)
The amounts in JSON are numbers by default (PHP float / Java Double); in php flavor a
whole amount is written 10, in java 10.0.  --json-amounts string sends the same text as
JSON strings instead (CHOICE: the doc does not say whether they are strings or numbers).
Amounts of 10 million yuan or more are not formatted the Java way (1.0E7) in JSON numbers.

Protocol endpoints (all accept GET and POST, like Route::any / @RequestMapping; fields
are read from the query string and from an application/x-www-form-urlencoded body,
merged; a field given in both: the body wins, and a warning is logged)
-----------------------------------------------------------------------------------
/createOrder   payId, type (1 WeChat, 2 Alipay), price, [param], [isHtml], [notifyUrl],
               [returnUrl], sign = md5(payId + param + type + price + key), over the price
               EXACTLY as sent ("" for an absent param).
               ok: {"code":1,"msg":"成功","data":{"payId","orderId","payType","price",
                    "reallyPrice","payUrl","isAuto":1,"state":0,"timeOut","date"}}
               isHtml=1 (and ok): text/html
                    <script>window.location.href = '/payPage/pay.html?orderId=<orderId>'</script>
/getOrder      orderId (unsigned).  The same data with the current state.
/checkOrder    orderId (unsigned).  state 1|2: {"code":1,"msg":"成功","data":"<returnUrl>?
               payId=..&param=..&type=..&price=..&reallyPrice=..&sign=.."}; else code -1.
/closeOrder    orderId, sign = md5(orderId + key).  Only in state 0; frees the slot.
/getState      t, sign = md5(t + key).  data: {"lastpay","lastheart","jkstate","state"}:
               jkstate is the name the PHP code uses, state the name in api.html; both are
               sent (same value): 1 online, 0 offline, -1 never bound.
/payPage/pay.html?orderId=   a minimal HTML page (what the isHtml redirect points at).
Errors: HTTP 200, {"code":-1,"msg":"<text>","data":null}.

States: -1 expired or closed, 0 waiting, 1 paid, 2 paid but the notify failed.

Messages (documented ones are marked D; the others are THIS DOUBLE'S CHOICE):
    成功                       success
  D 商户订单号已存在           duplicate payId (any earlier order, whatever its state)
  D 监控端状态异常             createOrder while the monitor is not online (jkstate != 1)
  D 订单超出负荷               no free amount slot
  D 云端订单编号不存在         unknown orderId (getOrder, checkOrder, closeOrder)
  D 订单未支付                 checkOrder, state 0
  D 订单已过期                 checkOrder, state -1 (expired OR closed: the state is shared)
    缺少参数: <name>           a required field is missing or empty
    签名校验不通过             wrong sign (create, closeOrder, getState)
    支付方式错误               type not exactly "1" or "2"
    金额格式错误               price not a positive decimal with at most 2 decimals
                               (digits, optional "." and 1-2 digits; "0.100" is refused
                               although the real server might accept it -- a sub-fen
                               amount can never be matched)
    订单状态不允许关闭         closeOrder on a state other than 0
Validation order on /createOrder (CHOICE): missing fields -> sign -> type -> price ->
monitor state -> duplicate payId -> amount slot.  Signs are compared exactly (upper-case
hex is a wrong sign).

Amount nudging: the price is taken in integer fen; the slot key must be unique among
waiting (state 0) orders of the same type; on a collision the amount moves 1 fen up
(--pay-qf 1, default) or down (--pay-qf 2).  php: 10 tries in all, counting the first
(CHOICE: "give up after 10 tries" read as 10 attempts); moving down to 0 fen also fails.
Slots are freed on payment, closeOrder and expiry.

Expiry (lazy, like closeEndOrder): an order in state 0 older than --timeout-minutes
becomes -1 and frees its slot, but only when a sweep runs.  Sweeps run on /createOrder,
on a push (/control/pay, /control/push) and on a monitor heartbeat.  CHOICE: while the
monitor is "online" a heartbeat is simulated before every request (a live app heartbeats
all the time), so expiry then shows up promptly; while offline/unbound nothing but create
and push sweeps, and getOrder can show state 0 for an overdue order, as on a real server.

Notify (server -> merchant), once, on a push that matches the order:
    GET notifyUrl?payId=..&param=..&type=..&price=..&reallyPrice=..&sign=..
    sign = md5(payId + param + type + price + reallyPrice + key)
with price / reallyPrice formatted by this server per flavor (never echoed from the
request).  Values are URL-encoded (CHOICE).  Background thread, 2 s timeout, only to an
http(s) URL on 127.0.0.1 / localhost, no proxy, no redirects, errors recorded and
otherwise ignored.  The answer body must be exactly "success" (no trimming, any HTTP
status); anything else -- including no notifyUrl at all (none given and no --notify-url)
or a non-loopback one (INFERRED: a real server's request would fail too) -- sets state
2.  No retries.  The order's notifyUrl/returnUrl override --notify-url/--return-url (the
"backend settings").  For checkOrder with no returnUrl at all the URL part is empty and
data starts with "?" (CHOICE).

Test-control endpoints (NOT part of the protocol), keyed by payId (an orderId works too)
--------------------------------------------------------------------------------------
POST /control/pay/{payId}            simulate the monitor app's push of that order's
                                     reallyPrice and type: sweep, then the waiting order
                                     with that amount+type (i.e. this one) -> state 1,
                                     slot freed, lastpay = now, notify sent once.
                                     409 if the order is not waiting (then nothing is
                                     pushed: it could match another order's slot).
POST /control/push?type=N&price=P    a raw push of any amount (matched by amount+type
                                     like the real server; unmatched -> 无订单转账).
POST /control/notify/{payId}[?forged=1]   (re)send the notify for the order as it is
                                     now (like the backend's 补单); non-forged: "success"
                                     sets a paid order to 1, anything else to 2; forged=1
                                     sends a wrong sign and changes nothing.
POST /control/monitor/online|offline|unbound   switch the monitor state (online also
                                     counts as a heartbeat).
POST /control/heartbeat              one heartbeat (lastheart = now, sweep).
POST /control/expire/{payId}         state 0 -> -1 now, slot freed (409 otherwise).
GET  /control/orders                 JSON list of every order: all fields, state, slot,
                                     notify attempts, query counts, warnings.
GET  /control/state                  monitor state, lastpay/lastheart, slots, unmatched
                                     pushes.
Control answers are JSON {"ok": true|false, ...}.

Requests log (--requests-log FILE): one JSON line per request
    {"event":"request","method","path","query","headers","content_type","body","status",
     "result","unknown_fields", ...}
plus "expected_sign" and "sign_string" (the exact string md5'd, key shown as "<key>")
when a sign was wrong, "reason" for refusals and "warnings".  One "event":"notify"
line per notify attempt.
"""

import argparse
import decimal
import hashlib
import html
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

MSG_OK = "成功"
MSG_DUP = "商户订单号已存在"
MSG_MONITOR = "监控端状态异常"
MSG_OVERLOAD = "订单超出负荷"
MSG_NOT_FOUND = "云端订单编号不存在"
MSG_UNPAID = "订单未支付"
MSG_EXPIRED = "订单已过期"
MSG_MISSING = "缺少参数: "            # CHOICE
MSG_SIGN = "签名校验不通过"            # CHOICE
MSG_TYPE = "支付方式错误"              # CHOICE
MSG_PRICE = "金额格式错误"             # CHOICE
MSG_CLOSE_STATE = "订单状态不允许关闭"  # CHOICE

CREATE_FIELDS = ("payId", "type", "price", "param", "isHtml", "notifyUrl", "returnUrl",
                 "sign")
ORDER_FIELDS = ("orderId",)
CLOSE_FIELDS = ("orderId", "sign")
STATE_FIELDS = ("t", "sign")

PRICE_RE = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$")
PHP_TRIES = 10
NOTIFY_TIMEOUT = 2.0
NOTIFY_HOSTS = ("127.0.0.1", "localhost")

VECTOR = ("1547129707139", "vone666", "2", "0.1", "a7cc8678193ee9c70ae3d75fd04ae6a9",
          "2b8b5d58c51203162f14939bdbc46a54")

MONITOR_STATES = {"online": 1, "offline": 0, "unbound": -1}


def md5_hex(s: str) -> str:
    return hashlib.md5(s.encode("utf-8")).hexdigest()


def create_sign_string(pay_id, param, type_, price, key):
    return pay_id + param + type_ + price + key


def check_vector():
    pay_id, param, type_, price, key, want = VECTOR
    got = md5_hex(create_sign_string(pay_id, param, type_, price, key))
    if got != want:
        print(f"[vmq] FATAL: published sign vector mismatch: {got} != {want}",
              file=sys.stderr, flush=True)
        sys.exit(1)


# ---------------------------------------------------------------------------
# amount formatting (all amounts are kept as integer fen)

def fen_of(price: str) -> int:
    whole, _, frac = price.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def php_double_text(fen: int) -> str:
    """What PHP shows for a MySQL double column: 0.1, 10, 12.3, 12.34."""
    if fen % 100 == 0:
        return str(fen // 100)
    return repr(fen / 100)


def java_double_text(fen: int) -> str:
    """Java Double.toString: 0.1, 10.0, 12.3; scientific from 1e7 on (1.0E7)."""
    x = fen / 100
    if abs(x) < 1e7:
        return repr(x)
    sign, digits, exp = decimal.Decimal(repr(x)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    e = len(ds) - 1 + exp
    return ("-" if sign else "") + ds[0] + "." + (ds[1:] or "0") + "E" + str(e)


def two_decimals(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


# ---------------------------------------------------------------------------
# state

class Store:
    def __init__(self, args, log_path):
        self.key = args.key
        self.flavor = args.flavor
        self.monitor = MONITOR_STATES[args.monitor]
        self.timeout_minutes = args.timeout_minutes
        self.pay_qf = args.pay_qf
        self.default_notify_url = args.notify_url or ""
        self.default_return_url = args.return_url or ""
        self.json_amounts = args.json_amounts
        self.lock = threading.RLock()
        self.orders = []
        self.by_pay_id = {}
        self.by_order_id = {}
        self.slots = {}              # slot key -> orderId (waiting orders only)
        self.unmatched = []          # pushes with no waiting order (无订单转账)
        now = time.time()
        self.lastheart = now if self.monitor == 1 else 0.0
        self.lastpay = 0.0
        self.log_path = log_path
        self.log_lock = threading.Lock()
        self.base_url = None

    # -- logging --------------------------------------------------------------
    def log(self, entry: dict):
        if not self.log_path:
            return
        line = json.dumps(entry, ensure_ascii=False)
        with self.log_lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    # -- formatting per flavor -------------------------------------------------
    def amount_text(self, fen: int) -> str:
        return php_double_text(fen) if self.flavor == "php" else java_double_text(fen)

    def amount_json(self, fen: int):
        if self.json_amounts == "string":
            return self.amount_text(fen)
        if self.flavor == "php" and fen % 100 == 0:
            return fen // 100
        return fen / 100

    def check_amount_text(self, fen: int) -> str:
        return two_decimals(fen) if self.flavor == "php" else java_double_text(fen)

    def stamp(self, t: float) -> int:
        if not t:
            return 0
        return int(t) if self.flavor == "php" else int(t * 1000)

    def slot_key(self, fen: int, type_: str) -> str:
        if self.flavor == "php":
            return f"{fen}-{type_}"
        return f"{type_}-{java_double_text(fen)}"

    # -- ids --------------------------------------------------------------------
    def new_order_id(self) -> str:
        # CHOICE: "YYYYmmddHHMMSS" + 4 random digits (a date-based id like vmq's).
        while True:
            oid = time.strftime("%Y%m%d%H%M%S") + "%04d" % secrets.randbelow(10000)
            if oid not in self.by_order_id:
                return oid

    # -- state changes (call with the lock held) ---------------------------------
    def set_state(self, o: dict, state: int, why: str):
        o["state"] = state
        o["state_history"].append({"state": state, "at": time.time(), "why": why})

    def free_slot(self, o: dict):
        if o["slot"] is not None and self.slots.get(o["slot"]) == o["orderId"]:
            del self.slots[o["slot"]]
        o["slot_freed_at"] = time.time()

    def sweep(self, why: str):
        """closeEndOrder: expire overdue waiting orders, freeing their slots."""
        now = time.time()
        for o in self.orders:
            if o["state"] == 0 and now >= o["created_at"] + self.timeout_minutes * 60:
                self.set_state(o, -1, f"expired (sweep on {why})")
                self.free_slot(o)

    def heartbeat(self, why: str):
        self.lastheart = time.time()
        self.sweep(f"heartbeat: {why}")

    def find(self, ref: str):
        return self.by_pay_id.get(ref) or self.by_order_id.get(ref)

    def order_data(self, o: dict) -> dict:
        return {
            "payId": o["payId"],
            "orderId": o["orderId"],
            "payType": int(o["type"]),
            "price": self.amount_json(o["price_fen"]),
            "reallyPrice": self.amount_json(o["really_fen"]),
            "payUrl": o["payUrl"],
            "isAuto": o["isAuto"],
            "state": o["state"],
            "timeOut": o["timeOut"],
            "date": self.stamp(o["created_at"]),
        }

    def callback_fields(self, o: dict, amount_fmt, forged=False):
        """(fields, sign string with the key shown as <key>)."""
        price = amount_fmt(o["price_fen"])
        really = amount_fmt(o["really_fen"])
        base = o["payId"] + o["param"] + o["type"] + price + really
        sign = md5_hex(base + self.key)
        if forged:
            sign = md5_hex(base + self.key + "-forged")  # well-formed but wrong
        fields = [("payId", o["payId"]), ("param", o["param"]), ("type", o["type"]),
                  ("price", price), ("reallyPrice", really), ("sign", sign)]
        return fields, base + "<key>"

    def push(self, type_: str, fen: int, why: str):
        """The monitor app's appPush: returns the matched order or None."""
        self.sweep(f"push: {why}")
        self.lastpay = time.time()
        for o in self.orders:
            if o["state"] == 0 and o["type"] == type_ and o["really_fen"] == fen:
                self.set_state(o, 1, f"paid ({why})")
                o["pay_date"] = time.time()
                self.free_slot(o)
                return o
        self.unmatched.append({"type": type_, "price": self.amount_text(fen),
                               "at": time.time(), "why": why, "note": "无订单转账"})
        return None

    def snapshot_orders(self):
        with self.lock:
            return json.loads(json.dumps(self.orders))

    def snapshot_state(self):
        with self.lock:
            return json.loads(json.dumps({
                "flavor": self.flavor, "jkstate": self.monitor,
                "lastheart": self.lastheart, "lastpay": self.lastpay,
                "timeout_minutes": self.timeout_minutes, "pay_qf": self.pay_qf,
                "slots": self.slots, "unmatched_pushes": self.unmatched}))


# ---------------------------------------------------------------------------
# notify (server -> merchant)

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def send_notify(store: Store, o: dict, trigger: str, forged=False, update_state=True):
    """Send the notify once in a background thread.  update_state: a failed answer sets a
    paid order to 2 (and, for a control resend, "success" sets it back to 1)."""
    with store.lock:
        url = o["notifyUrl"] or store.default_notify_url
        fields, sign_string = store.callback_fields(o, store.amount_text, forged)
        pay_id = o["payId"]
    base = {"event": "notify", "trigger": trigger, "payId": pay_id, "orderId": o["orderId"],
            "forged": forged, "fields": dict(fields), "sign_string": sign_string,
            "method": "GET", "url": url}

    def record(att):
        with store.lock:
            o["notify_attempts"].append(att)
            if update_state and not forged and o["state"] in (1, 2):
                if att["acknowledged"]:
                    if o["state"] == 2:
                        store.set_state(o, 1, f"notify acknowledged ({trigger})")
                elif o["state"] == 1:
                    store.set_state(o, 2, f"notify not acknowledged ({trigger})")
        store.log(att)
        print(f"[vmq] notify {att.get('url')} -> status={att.get('status')} "
              f"body={att.get('response_body')!r} error={att.get('error')}",
              file=sys.stderr, flush=True)

    def not_sent(reason):
        record(dict(base, sent=False, status=None, response_body=None, acknowledged=False,
                    at=time.time(), error=reason))

    if not url:
        return not_sent("no notify could be sent: the order has no notifyUrl and no "
                        "--notify-url backend setting is configured")
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or (u.hostname or "").lower() not in NOTIFY_HOSTS:
        return not_sent("not sent: notifyUrl is not an http(s) URL on 127.0.0.1/localhost")
    full_url = url + ("&" if "?" in url else "?") + urllib.parse.urlencode(fields)

    def worker():
        att = dict(base, sent=True, url=full_url, started_at=time.time(), status=None,
                   response_body=None, error=None)
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
        except Exception as e:  # noqa: BLE001 - the merchant may be down
            att["error"] = f"{type(e).__name__}: {e}"
        att["finished_at"] = time.time()
        att["acknowledged"] = att["response_body"] == "success"
        record(att)

    threading.Thread(target=worker, daemon=True).start()


# ---------------------------------------------------------------------------
# HTTP

class Reject(Exception):
    def __init__(self, msg, reason, extra=None):
        super().__init__(reason)
        self.msg, self.reason, self.extra = msg, reason, extra or {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vmq-test-double/1.0"
    store: Store = None

    def log_message(self, fmt, *args):
        sys.stderr.write("[vmq] %s - %s\n" % (self.address_string(), fmt % args))

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

    def _json_bytes(self, obj) -> bytes:
        s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        if self.store.flavor == "php":
            s = s.replace("/", "\\/")  # PHP json_encode; "/" only occurs inside strings
        return s.encode("utf-8")

    def _api(self, result: dict, extra=None):
        self._respond(200, self._json_bytes(result), "application/json;charset=utf-8",
                      result, extra)

    def _text(self, status, text, extra=None, ctype="text/plain; charset=utf-8"):
        self._respond(status, text.encode("utf-8"), ctype, text[:2000], extra)

    def _control(self, status, obj):
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self._respond(status, body, "application/json; charset=utf-8", obj)

    @staticmethod
    def ok(data) -> dict:
        return {"code": 1, "msg": MSG_OK, "data": data}

    @staticmethod
    def err(msg) -> dict:
        return {"code": -1, "msg": msg, "data": None}

    def _reject(self, r: Reject):
        extra = dict(r.extra)
        extra["reason"] = r.reason
        self._api(self.err(r.msg), extra)

    def _params(self, known):
        """Merge query-string and form-body fields (body wins).  -> (dict, extra)."""
        extra = {"warnings": [], "unknown_fields": []}
        try:
            q_pairs = urllib.parse.parse_qsl(self._query, keep_blank_values=True,
                                             encoding="utf-8", errors="strict")
            b_pairs = []
            if self._raw:
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if ctype == "application/x-www-form-urlencoded":
                    b_pairs = urllib.parse.parse_qsl(self._raw.decode("utf-8"),
                                                     keep_blank_values=True,
                                                     encoding="utf-8", errors="strict")
                else:
                    extra["warnings"].append(
                        f"request body ignored: Content-Type "
                        f"{self.headers.get('Content-Type')!r} (only an "
                        "application/x-www-form-urlencoded body is read)")
        except UnicodeDecodeError as e:
            extra["warnings"].append(f"request is not valid UTF-8: {e}")
            return {}, extra
        form = {}
        seen_q = set()
        for k, v in q_pairs:
            if k in seen_q:
                extra["warnings"].append(f"field {k!r} repeated in the query; last one used")
            seen_q.add(k)
            form[k] = v
        seen_b = set()
        for k, v in b_pairs:
            if k in seen_b:
                extra["warnings"].append(f"field {k!r} repeated in the body; last one used")
            elif k in seen_q:
                extra["warnings"].append(f"field {k!r} in both query and body; body used")
            seen_b.add(k)
            form[k] = v
        extra["unknown_fields"] = [k for k in form if k not in known]
        if extra["unknown_fields"]:
            print(f"[vmq] {self._path}: unknown fields {extra['unknown_fields']}",
                  file=sys.stderr, flush=True)
        return form, extra

    def _require(self, form, names, extra):
        for n in names:
            if form.get(n, "") == "":
                raise Reject(MSG_MISSING + n, f"{n} missing or empty", extra)

    def _check_sign(self, form, sign_base, extra):
        expected = md5_hex(sign_base + self.store.key)
        if form["sign"] != expected:
            extra.update({"expected_sign": expected, "sign_string": sign_base + "<key>"})
            raise Reject(MSG_SIGN, "sign mismatch", extra)

    def _dispatch(self):
        sp = urllib.parse.urlsplit(self.path)
        self._path, self._query = sp.path, sp.query
        self._raw = self._read_body()
        m = self.command
        segs = [urllib.parse.unquote(s) for s in sp.path.split("/")[1:]]
        st = self.store
        try:
            if segs and segs[0] != "control" and st.monitor == 1:
                with st.lock:
                    st.heartbeat(f"{m} {self._path}")   # a live monitor heartbeats all along
            if len(segs) == 1 and segs[0] in ("createOrder", "getOrder", "checkOrder",
                                               "closeOrder", "getState"):
                if m not in ("GET", "POST"):
                    extra = {"warnings": [f"method {m}: the doc says GET or POST"]}
                else:
                    extra = {}
                return getattr(self, "h_" + segs[0])(extra)
            if segs == ["payPage", "pay.html"]:
                return self.h_pay_page()
            if segs and segs[0] == "control":
                return self.h_control(m, segs[1:])
        except Exception as e:  # noqa: BLE001
            print(f"[vmq] internal error: {type(e).__name__}: {e}", file=sys.stderr,
                  flush=True)
            return self._text(500, f"internal error: {e}")
        return self._text(404, "404 Not Found")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch

    # -- /createOrder --------------------------------------------------------------------
    def h_createOrder(self, pre):
        st = self.store
        extra = {}
        try:
            form, extra = self._params(CREATE_FIELDS)
            extra["warnings"] = pre.get("warnings", []) + extra["warnings"]
            self._require(form, ("payId", "type", "price", "sign"), extra)
            param = form.get("param", "")
            sign_base = create_sign_string(form["payId"], param, form["type"], form["price"], "")
            self._check_sign(form, sign_base, extra)
            type_ = form["type"]
            if type_ not in ("1", "2"):
                raise Reject(MSG_TYPE, f"type {type_!r} is not 1 or 2", extra)
            price = form["price"]
            if not PRICE_RE.match(price) or fen_of(price) <= 0:
                raise Reject(MSG_PRICE, f"price {price!r} is not a positive decimal with "
                                        "at most 2 decimals", extra)
            is_html = form.get("isHtml", "")
            if is_html not in ("", "0", "1"):
                extra["warnings"].append(f"isHtml={is_html!r}: not 1, so JSON is answered")
            notify_url = form.get("notifyUrl", "")
            return_url = form.get("returnUrl", "")
            for name, v in (("notifyUrl", notify_url), ("returnUrl", return_url)):
                if v:
                    u = urllib.parse.urlsplit(v)
                    if u.scheme not in ("http", "https") or not u.netloc:
                        extra["warnings"].append(f"{name} is not an absolute http(s) URL: {v!r}")
                    elif name == "notifyUrl" and (u.hostname or "").lower() not in NOTIFY_HOSTS:
                        extra["warnings"].append("notifyUrl is not on 127.0.0.1/localhost: "
                                                 "this double will never send to it")
            if not notify_url and not st.default_notify_url:
                extra["warnings"].append("no notifyUrl (and no --notify-url backend "
                                         "setting): this order can never be notified")
            with st.lock:
                st.sweep("createOrder")
                if st.monitor != 1:
                    raise Reject(MSG_MONITOR, f"monitor jkstate={st.monitor} (not online)",
                                 extra)
                if form["payId"] in st.by_pay_id:
                    raise Reject(MSG_DUP, f"duplicate payId {form['payId']!r}", extra)
                fen = fen_of(price)
                really, slot, tries = fen, None, []
                step = 1 if st.pay_qf == 1 else -1
                limit = PHP_TRIES if st.flavor == "php" else 1_000_000
                for _ in range(limit):
                    if really <= 0:
                        break
                    k = st.slot_key(really, type_)
                    tries.append(k)
                    if k not in st.slots:
                        slot = k
                        break
                    really += step
                if slot is None:
                    extra["slot_tries"] = tries
                    raise Reject(MSG_OVERLOAD, f"no free amount slot after {len(tries)} "
                                               "tries", extra)
                order_id = st.new_order_id()
                pay_url = (f"wxp://vmq/{order_id}" if type_ == "1"
                           else f"https://qr.alipay.com/vmq{order_id}")
                now = time.time()
                o = {
                    "payId": form["payId"],
                    "orderId": order_id,
                    "type": type_,
                    "price_sent": price,
                    "price_fen": fen,
                    "really_fen": really,
                    "price": st.amount_text(fen),
                    "reallyPrice": st.amount_text(really),
                    "param": param,
                    "param_sent": "param" in form,
                    "isHtml": is_html,
                    "notifyUrl": notify_url,
                    "returnUrl": return_url,
                    "sign": form["sign"],
                    "payUrl": pay_url,
                    "isAuto": 1,
                    "timeOut": st.timeout_minutes,
                    "created_at": now,
                    "date": st.stamp(now),
                    "state": 0,
                    "slot": slot,
                    "slot_tries": tries,
                    "slot_freed_at": None,
                    "pay_date": None,
                    "unknown_fields": {k: form[k] for k in extra["unknown_fields"]},
                    "warnings": list(extra["warnings"]),
                    "getOrder_count": 0,
                    "checkOrder_count": 0,
                    "closeOrder_count": 0,
                    "last_query_at": None,
                    "notify_attempts": [],
                    "state_history": [{"state": 0, "at": now, "why": "created"}],
                }
                st.slots[slot] = order_id
                st.orders.append(o)
                st.by_pay_id[o["payId"]] = o
                st.by_order_id[order_id] = o
                data = st.order_data(o)
        except Reject as r:
            return self._reject(r)
        if is_html == "1":
            # CHOICE: a script redirect for both flavors, path relative to this server.
            script = ("<script>window.location.href = '/payPage/pay.html?orderId="
                      f"{order_id}'</script>")
            return self._text(200, script, extra, ctype="text/html; charset=utf-8")
        return self._api(self.ok(data), extra)

    # -- /getOrder, /checkOrder -----------------------------------------------------------
    def _lookup(self, pre, counter):
        form, extra = self._params(ORDER_FIELDS)
        extra["warnings"] = pre.get("warnings", []) + extra["warnings"]
        self._require(form, ("orderId",), extra)
        o = self.store.by_order_id.get(form["orderId"])
        if o is None:
            raise Reject(MSG_NOT_FOUND, f"unknown orderId {form['orderId']!r}", extra)
        o[counter] += 1
        o["last_query_at"] = time.time()
        return o, extra

    def h_getOrder(self, pre):
        st = self.store
        try:
            with st.lock:
                o, extra = self._lookup(pre, "getOrder_count")
                data = st.order_data(o)
        except Reject as r:
            return self._reject(r)
        return self._api(self.ok(data), extra)

    def h_checkOrder(self, pre):
        st = self.store
        try:
            with st.lock:
                o, extra = self._lookup(pre, "checkOrder_count")
                if o["state"] == 0:
                    raise Reject(MSG_UNPAID, "state 0", extra)
                if o["state"] == -1:
                    raise Reject(MSG_EXPIRED, "state -1 (expired or closed)", extra)
                fields, sign_string = st.callback_fields(o, st.check_amount_text)
                base = o["returnUrl"] or st.default_return_url
                url = base + ("&" if "?" in base else "?") + urllib.parse.urlencode(fields)
                extra["callback_sign_string"] = sign_string
        except Reject as r:
            return self._reject(r)
        return self._api(self.ok(url), extra)

    # -- /closeOrder ----------------------------------------------------------------------
    def h_closeOrder(self, pre):
        st = self.store
        try:
            form, extra = self._params(CLOSE_FIELDS)
            extra["warnings"] = pre.get("warnings", []) + extra["warnings"]
            self._require(form, ("orderId", "sign"), extra)
            self._check_sign(form, form["orderId"], extra)
            with st.lock:
                o = st.by_order_id.get(form["orderId"])
                if o is None:
                    raise Reject(MSG_NOT_FOUND, f"unknown orderId {form['orderId']!r}", extra)
                o["closeOrder_count"] += 1
                if o["state"] != 0:
                    raise Reject(MSG_CLOSE_STATE, f"state {o['state']} is not 0", extra)
                st.set_state(o, -1, "closeOrder")
                st.free_slot(o)
        except Reject as r:
            return self._reject(r)
        return self._api(self.ok(None), extra)

    # -- /getState ------------------------------------------------------------------------
    def h_getState(self, pre):
        st = self.store
        try:
            form, extra = self._params(STATE_FIELDS)
            extra["warnings"] = pre.get("warnings", []) + extra["warnings"]
            self._require(form, ("t", "sign"), extra)
            self._check_sign(form, form["t"], extra)
            with st.lock:
                data = {"lastpay": st.stamp(st.lastpay), "lastheart": st.stamp(st.lastheart),
                        "jkstate": st.monitor, "state": st.monitor}
        except Reject as r:
            return self._reject(r)
        return self._api(self.ok(data), extra)

    # -- /payPage/pay.html ----------------------------------------------------------------
    def h_pay_page(self):
        q = dict(urllib.parse.parse_qsl(self._query))
        with self.store.lock:
            o = self.store.by_order_id.get(q.get("orderId", ""))
            if o is None:
                return self._text(404, f"<html><body>{MSG_NOT_FOUND}</body></html>",
                                  ctype="text/html; charset=utf-8")
            page = ("<!doctype html><html><head><meta charset='utf-8'><title>vmq</title>"
                    f"</head><body><p>订单 {html.escape(o['orderId'])} 请支付 "
                    f"{o['reallyPrice']} 元 (状态 {o['state']})</p>"
                    f"<p>{html.escape(o['payUrl'])}</p></body></html>")
        return self._text(200, page, ctype="text/html; charset=utf-8")

    # -- control --------------------------------------------------------------------------
    def h_control(self, m, segs):
        st = self.store
        q = dict(urllib.parse.parse_qsl(self._query, keep_blank_values=True))
        if m == "GET" and segs == ["orders"]:
            return self._control(200, st.snapshot_orders())
        if m == "GET" and segs == ["state"]:
            return self._control(200, st.snapshot_state())
        if m != "POST":
            return self._text(404, "404 Not Found")
        if len(segs) == 2 and segs[0] == "monitor" and segs[1] in MONITOR_STATES:
            with st.lock:
                st.monitor = MONITOR_STATES[segs[1]]
                if st.monitor == 1:
                    st.heartbeat("control/monitor/online")
            return self._control(200, {"ok": True, "jkstate": st.monitor})
        if segs == ["heartbeat"]:
            with st.lock:
                st.heartbeat("control/heartbeat")
            return self._control(200, {"ok": True, "lastheart": st.lastheart})
        if segs == ["push"]:
            type_, price = q.get("type", ""), q.get("price", "")
            if type_ not in ("1", "2") or not PRICE_RE.match(price) or fen_of(price) <= 0:
                return self._control(400, {"ok": False, "error": "need type=1|2 and price"})
            with st.lock:
                o = st.push(type_, fen_of(price), "control/push")
            if o is None:
                return self._control(200, {"ok": True, "matched": False, "note": "无订单转账"})
            send_notify(st, o, "push")
            return self._control(200, {"ok": True, "matched": True, "payId": o["payId"],
                                       "orderId": o["orderId"], "state": 1})
        if len(segs) != 2:
            return self._text(404, "404 Not Found")
        action, ref = segs
        with st.lock:
            o = st.find(ref)
        if o is None:
            return self._control(404, {"ok": False, "error": "unknown payId/orderId"})
        if action == "pay":
            with st.lock:
                st.sweep("push: control/pay")
                if o["state"] != 0:
                    # No push is made: it could match another waiting order that now holds
                    # the same amount slot.  Use /control/push for a raw push.
                    return self._control(409, {"ok": False, "state": o["state"],
                                               "error": "order is not waiting (expired, "
                                                        "closed or paid); nothing pushed"})
                matched = st.push(o["type"], o["really_fen"], f"control/pay {ref}")
            assert matched is o
            notify_to = o["notifyUrl"] or st.default_notify_url
            send_notify(st, o, "control/pay")
            return self._control(200, {"ok": True, "payId": o["payId"],
                                       "orderId": o["orderId"], "state": 1,
                                       "reallyPrice": o["reallyPrice"],
                                       "notify": "sending" if notify_to else
                                       "not sent: no notifyUrl (state becomes 2)"})
        if action == "notify":
            forged = q.get("forged") == "1"
            send_notify(st, o, "control/notify", forged=forged)
            return self._control(200, {"ok": True, "payId": o["payId"], "forged": forged,
                                       "state": o["state"]})
        if action == "expire":
            with st.lock:
                if o["state"] != 0:
                    return self._control(409, {"ok": False, "state": o["state"],
                                               "error": "only a waiting order can expire"})
                st.set_state(o, -1, "control/expire")
                st.free_slot(o)
            return self._control(200, {"ok": True, "payId": o["payId"], "state": -1})
        return self._text(404, "404 Not Found")


# ---------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description="V免签 (vmq) protocol test double")
    p.add_argument("--key", required=True, help="通讯密钥")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--requests-log", default=None)
    p.add_argument("--flavor", choices=("php", "java"), default="php")
    p.add_argument("--monitor", choices=tuple(MONITOR_STATES), default="online",
                   help="monitor app state: online (jkstate 1), offline (0), unbound (-1)")
    p.add_argument("--timeout-minutes", type=int, default=5)
    p.add_argument("--pay-qf", type=int, choices=(1, 2), default=1,
                   help="nudge direction on an amount collision: 1 up (default), 2 down")
    p.add_argument("--notify-url", default="", help="backend default notify URL")
    p.add_argument("--return-url", default="", help="backend default return URL")
    p.add_argument("--json-amounts", choices=("number", "string"), default="number",
                   help="price/reallyPrice in JSON answers as numbers (default) or strings")
    args = p.parse_args(argv)
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
