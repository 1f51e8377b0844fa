//! Helpers shared by the process-level tests (`cli_sandbox`, `independent_ispay`,
//! `independent_igepay`), which run `qrtill` and the provider doubles as separate processes.
//!
//! It offers: a per-test time budget ([`start_budget`], [`bounded`]) that every wait draws
//! on; [`Proc`], a child-process guard that kills its child on drop, with stdout lines on a
//! channel (and readers for `charge --json` events) and stderr collected as it comes;
//! [`qrtill`]/[`qrtill_with`] command builders and [`run`] for a whole run; sales under way
//! ([`start_charge`], [`expect_done`], [`expect_paid`]); a raw HTTP/1.1 client over
//! `TcpStream` for loopback only ([`http`], [`http_with`]), with chunked decoding; named
//! threads ([`spawn_named`]); in [`sandbox`], `qrtill sandbox` as its own process with its
//! control API; and, in [`independent`], the Python servers of
//! `tests/independent/` with their JSON-lines requests log; in [`page`], the form of a page
//! as the payer's browser reads it.
//!
//! Use it with `mod common;` from a test file.

use std::cell::Cell;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Time budget: every wait in a test draws on one deadline, so no test runs past 60 s.

const TEST_BUDGET: Duration = Duration::from_secs(55);

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Starts the calling test's budget.
pub fn start_budget() {
    DEADLINE.with(|d| d.set(Some(Instant::now() + TEST_BUDGET)));
}

/// `step`, cut to what is left of the test's budget.
pub fn bounded(step: Duration) -> Duration {
    let deadline = DEADLINE.with(|d| {
        d.get().unwrap_or_else(|| {
            let deadline = Instant::now() + TEST_BUDGET;
            d.set(Some(deadline));
            deadline
        })
    });
    step.min(deadline.saturating_duration_since(Instant::now()))
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// A running child: stdout lines arrive on a channel, stderr is collected on a thread and can
/// be read while the child runs. Dropping it kills the child and waits for it.
pub struct Proc {
    name: String,
    /// The child itself.
    pub child: Child,
    lines: Receiver<String>,
    /// The stdout lines read so far.
    pub seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    stderr_end: Receiver<()>,
    stderr_complete: bool,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `qrtill` with the given arguments; the environment variables that would override
/// `--config`/`--data-dir` are removed, and info logs are on (stderr) so that a failure
/// explains itself.
pub fn qrtill(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qrtill"));
    cmd.args(args)
        .env_remove("QRTILL_CONFIG")
        .env_remove("QRTILL_DATA_DIR")
        .env("RUST_LOG", "qrtill=info");
    cmd
}

/// `qrtill --config CONFIG --data-dir DATA ARGS…`.
pub fn qrtill_with(config: &Path, data: &Path, args: &[&str]) -> Command {
    let mut cmd = qrtill(&[]);
    cmd.arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(args);
    cmd
}

/// `std::thread::spawn` with a name.
pub fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .expect("spawn a thread");
}

impl Proc {
    /// Starts `cmd` (stdin closed, stdout and stderr piped); `name` labels its failures.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name}: {err}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        spawn_named("child stdout", move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let text = Arc::new(Mutex::new(String::new()));
        let (end_tx, stderr_end) = mpsc::channel();
        let sink = text.clone();
        spawn_named("child stderr", move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let mut all = sink.lock().unwrap_or_else(PoisonError::into_inner);
                all.push_str(&String::from_utf8_lossy(&line));
                line.clear();
            }
            let _ = end_tx.send(());
        });
        Proc {
            name: name.to_string(),
            child,
            lines,
            seen: Vec::new(),
            stderr: text,
            stderr_end,
            stderr_complete: false,
        }
    }

    /// The next stdout line: `Ok(None)` at end of output, `Err(())` when none came in time.
    pub fn try_line(&mut self, within: Duration) -> Result<Option<String>, ()> {
        match self.lines.recv_timeout(bounded(within)) {
            Ok(line) => {
                self.seen.push(line.clone());
                Ok(Some(line))
            }
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => Err(()),
        }
    }

    /// The next stdout line, or `None` at end of output. Fails when none comes in time.
    pub fn next_line(&mut self, within: Duration) -> Option<String> {
        self.try_line(within)
            .unwrap_or_else(|()| self.die(&format!("no stdout line within {within:?}")))
    }

    /// The next stdout line; fails at end of output.
    pub fn line(&mut self, within: Duration) -> String {
        match self.next_line(within) {
            Some(line) => line,
            None => {
                let code = self.wait();
                self.die(&format!("stdout ended (exit {code})"))
            }
        }
    }

    /// Reads JSON events (`charge --json`) until one has `"event": kind`; `None` when none
    /// came in time.
    pub fn try_event_of(&mut self, kind: &str, within: Duration) -> Option<Value> {
        let until = Instant::now() + within;
        loop {
            let line = match self.try_line(until.saturating_duration_since(Instant::now())) {
                Ok(Some(line)) => line,
                Ok(None) => {
                    let code = self.wait();
                    self.die(&format!(
                        "stdout ended (exit {code}) before a `{kind}` event"
                    ))
                }
                Err(()) => return None,
            };
            let event: Value = serde_json::from_str(&line).unwrap_or_else(|err| {
                self.die(&format!("stdout line is not JSON ({err}): {line}"))
            });
            if event["event"] == kind {
                return Some(event);
            }
            if event["event"] == "done" {
                self.die(&format!("ended before a `{kind}` event: {event}"));
            }
        }
    }

    /// Reads JSON events until one has `"event": kind`; fails when none comes in time.
    pub fn event_of(&mut self, kind: &str, within: Duration) -> Value {
        self.try_event_of(kind, within)
            .unwrap_or_else(|| self.die(&format!("no `{kind}` event within {within:?}")))
    }

    /// Waits (bounded) for the exit code.
    pub fn wait(&mut self) -> i32 {
        let until = Instant::now() + bounded(Duration::from_secs(20));
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    return status.code().unwrap_or_else(|| {
                        self.die(&format!("ended without an exit code: {status}"))
                    });
                }
                Ok(None) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => self.die("did not exit in time"),
                Err(err) => panic!("{}: cannot wait: {err}", self.name),
            }
        }
    }

    /// Fails the test with what the child printed.
    pub fn die(&mut self, what: &str) -> ! {
        // Stop it first so that its stderr is complete.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self.stderr_text();
        panic!(
            "{}: {what}\n--- stdout:\n{}\n--- stderr:\n{stderr}",
            self.name,
            self.seen.join("\n")
        )
    }

    /// Reads stdout to its end (bounded).
    pub fn drain(&mut self) {
        while self.next_line(Duration::from_secs(20)).is_some() {}
    }

    /// What the child wrote to stderr so far.
    pub fn stderr_now(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The whole stderr, once the child has exited (the wait is bounded).
    pub fn stderr_text(&mut self) -> String {
        if !self.stderr_complete {
            self.stderr_complete = self
                .stderr_end
                .recv_timeout(bounded(Duration::from_secs(10)))
                .is_ok();
        }
        self.stderr_now()
    }
}

/// A finished run.
pub struct Finished {
    /// Its exit code.
    pub code: i32,
    /// Its stdout lines, joined.
    pub stdout: String,
    /// Its whole stderr.
    pub stderr: String,
}

/// Runs a command to its end (bounded) and collects its output.
pub fn run(name: &str, cmd: Command) -> Finished {
    let mut proc = Proc::spawn(name, cmd);
    proc.drain();
    let code = proc.wait();
    let stderr = proc.stderr_text();
    Finished {
        code,
        stdout: proc.seen.join("\n"),
        stderr,
    }
}

// ---------------------------------------------------------------------------------------------
// Sale helpers

/// What qrtill logs when it resumes an order found unfinished at start. In a fresh data
/// folder there is no such order, so this line would mean that the new sale itself was taken
/// for a leftover and watched twice (a race fixed in ef76d39: the two watches stopped each
/// other and `charge` hung).
pub const FRESH_SALE_RESUMED: &str = "resuming an order that had not ended";

/// A sale under way: `charge --json` has shown its QR.
pub struct Sale {
    /// The `charge` process.
    pub charge: Proc,
    /// Its order number.
    pub order_no: String,
    /// Its `qr` event.
    pub qr: Value,
    /// The data folder it runs in.
    pub data: PathBuf,
}

/// A data folder under `dir` not used yet.
fn new_data_dir(dir: &Path) -> PathBuf {
    let data = (1..)
        .map(|n| dir.join(format!("data-{n}")))
        .find(|d| !d.exists())
        .expect("a free folder name");
    std::fs::create_dir_all(&data).expect("create data folder");
    data
}

/// Starts `charge --amount AMOUNT --channel CHANNEL --json` with `config` in a new data
/// folder under `dir` and reads up to its QR, which must carry `amount` as payable.
pub fn start_charge(config: &Path, dir: &Path, amount: &str, channel: &str) -> Sale {
    let data = new_data_dir(dir);
    let mut charge = Proc::spawn(
        "qrtill charge",
        qrtill_with(
            config,
            &data,
            &["charge", "--amount", amount, "--channel", channel, "--json"],
        ),
    );
    let qr = charge.event_of("qr", Duration::from_secs(20));
    if charge.stderr_now().contains(FRESH_SALE_RESUMED) {
        charge.die("a fresh sale was resumed as a leftover order");
    }
    assert!(
        qr["qr"].as_str().is_some_and(|s| !s.is_empty()),
        "qr event has no QR text: {qr}"
    );
    assert_eq!(qr["payable"], amount, "qr event: {qr}");
    let order_no = qr["order_no"].as_str().unwrap_or_default().to_string();
    assert!(!order_no.is_empty(), "qr event has no order_no: {qr}");
    Sale {
        charge,
        order_no,
        qr,
        data,
    }
}

/// Reads the events up to `done`, checks that it is the last line, and returns it.
pub fn expect_done(charge: &mut Proc, order_no: &str) -> Value {
    let done = charge.event_of("done", Duration::from_secs(20));
    assert_eq!(done["order_no"], order_no, "done event: {done}");
    charge.drain();
    let last: Value = serde_json::from_str(charge.seen.last().expect("a line")).expect("JSON");
    assert_eq!(last, done, "`done` must be the last line");
    done
}

/// `text` (what `what` printed) must not contain the merchant key `key`.
pub fn assert_no_key(what: &str, text: &str, key: &str) {
    assert!(
        !text.contains(key),
        "{what} shows the merchant key:\n{text}"
    );
}

/// Ends a paid sale: `done` paid with `amount`, exit 0, the merchant key `key` printed
/// neither on stdout nor on stderr.
pub fn expect_paid(sale: &mut Sale, amount: &str, key: &str) {
    let done = expect_done(&mut sale.charge, &sale.order_no);
    assert_eq!(done["status"], "paid", "{done}");
    assert_eq!(done["paid"], amount, "{done}");
    assert_eq!(sale.charge.wait(), 0, "exit code of a paid charge");
    let stdout = sale.charge.seen.join("\n");
    let stderr = sale.charge.stderr_text();
    assert_no_key("charge stdout", &stdout, key);
    assert_no_key("charge stderr", &stderr, key);
}

/// `status ORDER_NO --json` of a sale (with its config and data folder): exit 0, one JSON
/// object, the merchant key `key` not shown.
pub fn status_json(config: &Path, sale: &Sale, key: &str) -> Value {
    let out = run(
        "qrtill status",
        qrtill_with(config, &sale.data, &["status", &sale.order_no, "--json"]),
    );
    assert_eq!(
        out.code, 0,
        "status failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    assert!(
        !out.stdout.contains(key),
        "status shows the key: {}",
        out.stdout
    );
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|err| panic!("status --json is not JSON ({err}): {}", out.stdout))
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 client (loopback only)

/// Sends `METHOD url` with an empty body; returns the status and the body.
pub fn http(method: &str, url: &str) -> (u16, String) {
    http_with(method, url, None, "")
}

/// Sends `METHOD url` with `body` (of `content_type`, when given); returns the status and
/// the body of the answer.
pub fn http_with(method: &str, url: &str, content_type: Option<&str>, body: &str) -> (u16, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http URL: {url}"));
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    assert!(
        host.starts_with("127.0.0.1:"),
        "only loopback is ever contacted, not {host}"
    );
    let addr = host.parse().expect("host is an IPv4 address and port");
    let mut stream = TcpStream::connect_timeout(&addr, bounded(Duration::from_secs(5)))
        .unwrap_or_else(|err| panic!("cannot connect to {url}: {err}"));
    let io = Some(bounded(Duration::from_secs(10)).max(Duration::from_millis(1)));
    stream.set_read_timeout(io).expect("read timeout");
    stream.set_write_timeout(io).expect("write timeout");
    let content_type = content_type
        .map(|t| format!("Content-Type: {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{content_type}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap_or_else(|err| panic!("cannot send {method} {url}: {err}"));
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|err| panic!("no answer to {method} {url}: {err}"));
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("malformed answer to {method} {url}: {text}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in the answer to {method} {url}: {head}"));
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size =
            usize::from_str_radix(size.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// `qrtill sandbox` as its own process

/// `qrtill sandbox` run as its own process, so that the provider's state outlives a till
/// that is killed and started again.
#[allow(
    dead_code,
    reason = "only some tests run the sandbox through this helper"
)]
pub mod sandbox {
    use std::time::Duration;

    use serde_json::Value;

    use super::{Proc, http, qrtill};

    /// A running `qrtill sandbox`: its base URL and the config it printed.
    pub struct Sandbox {
        /// The process.
        pub proc: Proc,
        /// `http://127.0.0.1:PORT`.
        pub base: String,
        /// The config it printed for itself, ending with a newline.
        pub config: String,
    }

    impl Sandbox {
        /// Starts `qrtill sandbox --listen 127.0.0.1:0 ARGS…` and reads its URL and config.
        pub fn start(args: &[&str]) -> Sandbox {
            let mut cmd = qrtill(&["sandbox", "--listen", "127.0.0.1:0"]);
            cmd.args(args);
            let mut proc = Proc::spawn("qrtill sandbox", cmd);
            let base = loop {
                let line = proc.line(Duration::from_secs(20));
                if let Some(rest) = line.split("listening on ").nth(1) {
                    break rest.trim().trim_end_matches('/').to_string();
                }
            };
            assert!(
                base.starts_with("http://127.0.0.1:"),
                "sandbox URL not on loopback: {base}"
            );
            while !proc
                .line(Duration::from_secs(10))
                .starts_with("# A config for it")
            {}
            // The config is printed at once: a quiet spell after its first provider ends it.
            let mut lines: Vec<String> = Vec::new();
            loop {
                let seen_provider = lines.iter().any(|l| l.trim() == "[[provider]]");
                let wait = Duration::from_millis(if seen_provider { 500 } else { 10_000 });
                match proc.try_line(wait) {
                    Ok(Some(line)) => lines.push(line),
                    Err(()) if seen_provider => break,
                    _ => proc.die("no complete config printed"),
                }
            }
            Sandbox {
                proc,
                base,
                config: lines.join("\n") + "\n",
            }
        }

        /// `POST {base}/_sandbox/orders/{order_no}/{action}` must answer 200.
        pub fn control(&self, order_no: &str, action: &str) {
            let url = format!("{}/_sandbox/orders/{order_no}/{action}", self.base);
            let (status, body) = http("POST", &url);
            assert_eq!(status, 200, "POST {url}: {body}");
        }

        /// The sandbox's records of orders with our number `order_no` (`GET
        /// /_sandbox/orders`): one per protocol that was sent a create for it.
        pub fn orders_named(&self, order_no: &str) -> Vec<Value> {
            let (status, body) = http("GET", &format!("{}/_sandbox/orders", self.base));
            assert_eq!(status, 200, "GET /_sandbox/orders: {body}");
            let orders: Value = serde_json::from_str(&body).expect("/_sandbox/orders is JSON");
            orders
                .as_array()
                .expect("/_sandbox/orders is a list")
                .iter()
                .filter(|o| o["order_no"] == order_no)
                .cloned()
                .collect()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The independent servers

/// The independent provider servers of `tests/independent/` (Python, written from the seed
/// alone) and their requests logs.
#[allow(dead_code, reason = "`cli_sandbox` starts no independent server")]
pub mod independent {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use serde_json::Value;

    use super::{Proc, bounded, http};

    /// Whether `python3` can be started (bounded).
    fn python3_available() -> bool {
        let Ok(mut child) = Command::new("python3")
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return false;
        };
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }

    /// A running independent server (killed when dropped) and its requests log.
    pub struct Server {
        /// The server process.
        pub proc: Proc,
        /// `http://127.0.0.1:PORT` of the server.
        pub url: String,
        /// Its requests log (JSON lines).
        pub log: PathBuf,
    }

    impl Server {
        /// Starts `python3 tests/independent/SCRIPT ARGS… --port 0 --requests-log LOG` and
        /// reads its `LISTENING URL` line. `None` (after saying so) when `python3` is
        /// missing.
        pub fn start(script: &str, args: &[&str], log: &Path) -> Option<Server> {
            if !python3_available() {
                eprintln!(
                    "SKIPPED: python3 is not on PATH; the independent server {script} needs it"
                );
                return None;
            }
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/independent")
                .join(script);
            let mut cmd = Command::new("python3");
            cmd.arg(&path)
                .args(args)
                .args(["--port", "0", "--requests-log"])
                .arg(log)
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            let mut proc = Proc::spawn(script, cmd);
            let first = proc.line(Duration::from_secs(20));
            let url = first
                .strip_prefix("LISTENING ")
                .unwrap_or_else(|| proc.die(&format!("first line is not `LISTENING URL`: {first}")))
                .trim()
                .trim_end_matches('/')
                .to_string();
            assert!(
                url.starts_with("http://127.0.0.1:"),
                "server not on loopback: {url}"
            );
            Some(Server {
                proc,
                url,
                log: log.to_path_buf(),
            })
        }

        /// `METHOD {url}{path}` of a control endpoint must answer 200 `ok`.
        pub fn control(&mut self, method: &str, path: &str) {
            let url = format!("{}{path}", self.url);
            let (status, body) = http(method, &url);
            if status != 200 || body.trim() != "ok" {
                self.proc
                    .die(&format!("{method} {url} answered {status}: {body}"));
            }
        }

        /// The server's record of the order whose `field` is `value` (`GET /control/orders`).
        pub fn order(&self, field: &str, value: &str) -> Value {
            let (status, body) = http("GET", &format!("{}/control/orders", self.url));
            assert_eq!(status, 200, "GET /control/orders: {body}");
            let orders: Value = serde_json::from_str(&body).expect("/control/orders is JSON");
            orders
                .as_array()
                .expect("/control/orders is a list")
                .iter()
                .find(|o| o[field] == value)
                .cloned()
                .unwrap_or_else(|| panic!("the server has no order {value}: {body}"))
        }

        /// Every line of the requests log.
        pub fn log(&self) -> Vec<Value> {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    serde_json::from_str(l).unwrap_or_else(|err| panic!("log line ({err}): {l}"))
                })
                .collect()
        }

        /// Waits (bounded) until a log line satisfies `pred`; returns it.
        pub fn log_line(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
            let until = Instant::now() + bounded(Duration::from_secs(10));
            loop {
                if let Some(line) = self.log().into_iter().find(|l| pred(l)) {
                    return line;
                }
                assert!(
                    Instant::now() < until,
                    "no {what} in the requests log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        /// Protocol requests (not the test's control calls) in the log.
        pub fn protocol_requests(&self) -> Vec<Value> {
            self.log()
                .into_iter()
                .filter(|l| l["event"] == "request" && !path_of(l).starts_with("/control/"))
                .collect()
        }
    }

    /// The path of a logged request.
    pub fn path_of(request: &Value) -> &str {
        request["path"].as_str().unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Pages, as the payer's browser reads them

/// The signed form of a bridge page (or a provider's page), read as a browser would.
#[allow(
    dead_code,
    reason = "only the tests that act as the payer's browser read forms"
)]
pub mod page {
    /// The HTML entities qrtill and the doubles write, `&amp;` last.
    const ENTITIES: [(&str, &str); 5] = [
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&amp;", "&"),
    ];

    /// The page's one form, which must be posted: its `action` and its hidden fields
    /// (name, value) in page order, unescaped.
    pub fn form_of(html: &str) -> (String, Vec<(String, String)>) {
        let forms = opening_tags(html, "form");
        let [form] = forms.as_slice() else {
            panic!("not exactly one form on the page:\n{html}");
        };
        let method = attribute(form, "method").unwrap_or_default();
        assert!(
            method.eq_ignore_ascii_case("post"),
            "the form is not posted: {form}"
        );
        let action =
            attribute(form, "action").unwrap_or_else(|| panic!("the form has no action: {form}"));
        let mut fields = Vec::new();
        for input in opening_tags(html, "input") {
            if attribute(input, "type").as_deref() != Some("hidden") {
                continue;
            }
            let name = attribute(input, "name")
                .unwrap_or_else(|| panic!("a hidden input without a name: {input}"));
            fields.push((name, attribute(input, "value").unwrap_or_default()));
        }
        (action, fields)
    }

    /// Each `<name …>` of `html`, up to its `>`.
    fn opening_tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
        let open = format!("<{name} ");
        html.match_indices(&open)
            .filter_map(|(at, _)| html.get(at..))
            .map(|tag| tag.split_once('>').map_or(tag, |(inside, _)| inside))
            .collect()
    }

    /// The unescaped value of the double-quoted attribute `name` of `tag`.
    fn attribute(tag: &str, name: &str) -> Option<String> {
        let (_, after) = tag.split_once(&format!(" {name}=\""))?;
        let (raw, _) = after.split_once('"')?;
        Some(
            ENTITIES
                .iter()
                .fold(raw.to_string(), |text, (entity, plain)| {
                    text.replace(entity, plain)
                }),
        )
    }
}
