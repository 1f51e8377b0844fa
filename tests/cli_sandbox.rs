//! Scope: `qrtill charge --json` against `qrtill sandbox`, run as separate processes.
//!
//! One `qrtill sandbox` process per test plays the provider; the test reads the base URL and
//! the config it prints, drives orders through its control API (`/_sandbox/orders/…`) with a
//! raw HTTP/1.1 request, and checks what `charge --json`, `status --json` and
//! `history --json` print and their exit codes (0 paid, 3 ended unpaid, 2 bad input or
//! config). Bad input and bad config files must be refused with exit 2, naming the
//! offending option or key, without ever printing the merchant key. Fifty sales started at
//! once guard against a fresh sale being resumed as a leftover order (fixed in ef76d39).
//!
//! Every child is killed when its guard drops (also when a test fails), every wait is
//! bounded by the test's budget, and only 127.0.0.1 is ever used.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::Cell;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The merchant key of the sandbox (printed by `qrtill sandbox` itself, demo only).
const SANDBOX_KEY: &str = "qrtill-sandbox-ispay-key";

/// A distinctive merchant key for the bad-config files.
const SECRET_KEY: &str = "Zq7-merchant-secret-4711-do-not-print";

// ---------------------------------------------------------------------------------------------
// Time budget: every wait in a test draws on one deadline, so no test runs past 60 s.

const TEST_BUDGET: Duration = Duration::from_secs(55);

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Starts the calling test's budget.
fn start_budget() {
    DEADLINE.with(|d| d.set(Some(Instant::now() + TEST_BUDGET)));
}

/// `step`, cut to what is left of the test's budget.
fn bounded(step: Duration) -> Duration {
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
struct Proc {
    name: String,
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
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
fn qrtill(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qrtill"));
    cmd.args(args)
        .env_remove("QRTILL_CONFIG")
        .env_remove("QRTILL_DATA_DIR")
        .env("RUST_LOG", "qrtill=info");
    cmd
}

/// `qrtill --config CONFIG --data-dir DATA ARGS…`.
fn qrtill_with(config: &Path, data: &Path, args: &[&str]) -> Command {
    let mut cmd = qrtill(&[]);
    cmd.arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(args);
    cmd
}

/// `std::thread::spawn` with a name.
fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .expect("spawn a thread");
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command) -> Proc {
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
    fn try_line(&mut self, within: Duration) -> Result<Option<String>, ()> {
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
    fn next_line(&mut self, within: Duration) -> Option<String> {
        self.try_line(within)
            .unwrap_or_else(|()| self.die(&format!("no stdout line within {within:?}")))
    }

    /// The next stdout line; fails at end of output.
    fn line(&mut self, within: Duration) -> String {
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
    fn try_event_of(&mut self, kind: &str, within: Duration) -> Option<Value> {
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
    fn event_of(&mut self, kind: &str, within: Duration) -> Value {
        self.try_event_of(kind, within)
            .unwrap_or_else(|| self.die(&format!("no `{kind}` event within {within:?}")))
    }

    /// Waits (bounded) for the exit code.
    fn wait(&mut self) -> i32 {
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
    fn die(&mut self, what: &str) -> ! {
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
    fn drain(&mut self) {
        while self.next_line(Duration::from_secs(20)).is_some() {}
    }

    /// What the child wrote to stderr so far.
    fn stderr_now(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The whole stderr, once the child has exited (the wait is bounded).
    fn stderr_text(&mut self) -> String {
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
struct Finished {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs a command to its end (bounded) and collects its output.
fn run(name: &str, cmd: Command) -> Finished {
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
const FRESH_SALE_RESUMED: &str = "resuming an order that had not ended";

/// A sale under way: `charge --json` has shown its QR.
struct Sale {
    charge: Proc,
    order_no: String,
    /// Its `qr` event.
    qr: Value,
    /// The data folder it runs in.
    data: PathBuf,
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

/// Starts `charge` (built by `make` for a data folder) in a new data folder under `dir` and
/// reads up to its QR, which must carry `payable`.
fn start_sale(dir: &Path, payable: &str, make: impl Fn(&Path) -> Command) -> Sale {
    let data = new_data_dir(dir);
    let mut charge = Proc::spawn("qrtill charge", make(&data));
    let qr = charge.event_of("qr", Duration::from_secs(20));
    if charge.stderr_now().contains(FRESH_SALE_RESUMED) {
        charge.die("a fresh sale was resumed as a leftover order");
    }
    assert!(
        qr["qr"].as_str().is_some_and(|s| !s.is_empty()),
        "qr event has no QR text: {qr}"
    );
    assert_eq!(qr["payable"], payable, "qr event: {qr}");
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
fn expect_done(charge: &mut Proc, order_no: &str) -> Value {
    let done = charge.event_of("done", Duration::from_secs(20));
    assert_eq!(done["order_no"], order_no, "done event: {done}");
    charge.drain();
    let last: Value = serde_json::from_str(charge.seen.last().expect("a line")).expect("JSON");
    assert_eq!(last, done, "`done` must be the last line");
    done
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 client for the sandbox's control API (loopback only)

/// Sends `METHOD url` with an empty body; returns the status and the body.
fn http(method: &str, url: &str) -> (u16, String) {
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
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
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
// The sandbox

/// A running `qrtill sandbox` and the config it printed, saved in a temporary folder.
struct Setup {
    _sandbox: Proc,
    base: String,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Setup {
    fn start() -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sandbox = Proc::spawn(
            "qrtill sandbox",
            qrtill(&["sandbox", "--listen", "127.0.0.1:0"]),
        );
        let mut base = None;
        while base.is_none() {
            let line = sandbox.line(Duration::from_secs(20));
            if let Some(rest) = line.split("listening on ").nth(1) {
                base = Some(rest.trim().trim_end_matches('/').to_string());
            }
        }
        let base = base.unwrap_or_default();
        assert!(
            base.starts_with("http://127.0.0.1:"),
            "sandbox URL not on loopback: {base}"
        );
        while !sandbox
            .line(Duration::from_secs(10))
            .starts_with("# A config for it")
        {}
        // The config follows, printed all at once: a short quiet spell once a provider
        // section has begun ends it.
        let mut config = Vec::new();
        let mut seen_provider = false;
        loop {
            let wait = if seen_provider {
                Duration::from_millis(500)
            } else {
                Duration::from_secs(10)
            };
            match sandbox.try_line(wait) {
                Ok(Some(line)) => {
                    seen_provider |= line.trim() == "[[provider]]";
                    config.push(line);
                }
                Err(()) if seen_provider => break,
                Err(()) => sandbox.die("no [[provider]] in the config it prints"),
                Ok(None) => sandbox.die("stdout ended inside the config it prints"),
            }
        }
        let config_text = config.join("\n") + "\n";
        assert!(
            config_text.contains("[listener]") && config_text.contains("listen = \"127.0.0.1:0\""),
            "the sandbox's config has no loopback listener:\n{config_text}"
        );
        assert!(
            config_text.contains("[[provider]]"),
            "no provider in:\n{config_text}"
        );
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, &config_text).expect("write config");
        Setup {
            _sandbox: sandbox,
            base,
            config: config_path,
            dir,
        }
    }

    /// `qrtill --config … --data-dir DATA ARGS…`.
    fn cmd(&self, data: &Path, args: &[&str]) -> Command {
        qrtill_with(&self.config, data, args)
    }

    /// Starts `charge --json` and reads up to its QR.
    fn sale(&self, amount: &str, channel: &str) -> Sale {
        start_sale(self.dir.path(), amount, |data| {
            self.cmd(
                data,
                &["charge", "--amount", amount, "--channel", channel, "--json"],
            )
        })
    }

    /// `POST {base}/_sandbox/orders/{order_no}/{action}` must answer 200.
    fn control(&self, order_no: &str, action: &str) {
        let url = format!("{}/_sandbox/orders/{order_no}/{action}", self.base);
        let (status, body) = http("POST", &url);
        assert_eq!(status, 200, "POST {url}: {body}");
    }
}

fn assert_no_key(what: &str, text: &str, key: &str) {
    assert!(
        !text.contains(key),
        "{what} shows the merchant key:\n{text}"
    );
}

/// Parses the one JSON object `status --json` or `history --json` printed.
fn json_of(what: &str, out: &Finished) -> Value {
    assert_eq!(
        out.code, 0,
        "{what} failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|err| panic!("{what} is not one JSON object ({err}): {}", out.stdout))
}

// ---------------------------------------------------------------------------------------------
// Sales

#[test]
fn paid_by_the_control_api() {
    start_budget();
    let setup = Setup::start();
    let mut sale = setup.sale("12.34", "alipay");
    assert_eq!(sale.qr["amount"], "12.34", "{}", sale.qr);
    assert_eq!(sale.qr["channel"], "alipay", "{}", sale.qr);
    setup.control(&sale.order_no, "pay");
    let done = expect_done(&mut sale.charge, &sale.order_no);
    assert_eq!(done["status"], "paid", "{done}");
    assert_eq!(done["paid"], "12.34", "{done}");
    assert_eq!(sale.charge.wait(), 0, "exit code of a paid charge");
    let stdout = sale.charge.seen.join("\n");
    let stderr = sale.charge.stderr_text();
    assert_no_key("charge stdout", &stdout, SANDBOX_KEY);
    assert_no_key("charge stderr", &stderr, SANDBOX_KEY);

    let out = run(
        "qrtill status",
        setup.cmd(&sale.data, &["status", &sale.order_no, "--json"]),
    );
    let status = json_of("status --json", &out);
    assert_eq!(status["order_no"], sale.order_no.as_str(), "{status}");
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["paid"], "12.34", "{status}");
    assert_no_key("status stdout", &out.stdout, SANDBOX_KEY);

    let out = run(
        "qrtill history",
        setup.cmd(&sale.data, &["history", "--json"]),
    );
    let history = json_of("history --json", &out);
    let orders = history["orders"].as_array().expect("history has `orders`");
    assert_eq!(orders.len(), 1, "exactly one order: {history}");
    assert_eq!(orders[0]["order_no"], sale.order_no.as_str(), "{history}");
    assert_eq!(orders[0]["status"], "paid", "{history}");
}

#[test]
fn confirming_state_8_then_paid_state_9() {
    start_budget();
    let setup = Setup::start();
    let mut sale = setup.sale("3.00", "wechat");
    setup.control(&sale.order_no, "confirm");
    loop {
        let status = sale.charge.event_of("status", Duration::from_secs(20));
        assert_eq!(status["order_no"], sale.order_no.as_str(), "{status}");
        assert_ne!(
            status["status"], "paid",
            "state 8 alone must never count as paid: {status}"
        );
        if status["status"] == "confirming" {
            break;
        }
    }
    setup.control(&sale.order_no, "pay");
    let done = expect_done(&mut sale.charge, &sale.order_no);
    assert_eq!(done["status"], "paid", "{done}");
    assert_eq!(done["paid"], "3.00", "{done}");
    assert_eq!(sale.charge.wait(), 0, "exit code of a paid charge");
}

#[test]
fn expired_ends_unpaid_with_exit_3() {
    start_budget();
    let setup = Setup::start();
    let mut sale = setup.sale("5.20", "unionpay");
    setup.control(&sale.order_no, "expire");
    let done = expect_done(&mut sale.charge, &sale.order_no);
    assert_eq!(done["status"], "expired", "{done}");
    assert!(done["paid"].is_null(), "nothing was paid: {done}");
    assert_eq!(
        sale.charge.wait(),
        3,
        "exit code of an order that ended unpaid"
    );
}

/// Regression: a sale started right at launch must not be taken for a leftover order. Before
/// ef76d39 `service::start` read the open orders on a spawned task; when `charge` inserted
/// its order first, the new sale was resumed too, watched twice, and the two watches ended
/// each other: no query, no expiry, `charge` never ended (about one sale in 30). This runs
/// 50 sales, ten at a time, each in a fresh data folder.
#[test]
fn sales_started_at_launch_are_not_resumed_as_leftovers() {
    start_budget();
    let setup = Setup::start();
    let mut failures = Vec::new();
    for wave in 0..5 {
        let mut charges: Vec<(PathBuf, Proc)> = (0..10)
            .map(|i| {
                let data = setup.dir.path().join(format!("wave-{wave}-{i}"));
                let charge = Proc::spawn(
                    "qrtill charge",
                    setup.cmd(
                        &data,
                        &[
                            "charge",
                            "--amount",
                            "1.00",
                            "--channel",
                            "alipay",
                            "--json",
                        ],
                    ),
                );
                (data, charge)
            })
            .collect();
        for (data, charge) in &mut charges {
            let qr = charge.try_event_of("qr", Duration::from_secs(8));
            let _ = charge.child.kill();
            let stderr = charge.stderr_text();
            if qr.is_none() || stderr.contains(FRESH_SALE_RESUMED) {
                failures.push(format!(
                    "{}: qr {}; stdout:\n{}\nstderr:\n{stderr}",
                    data.display(),
                    if qr.is_some() { "shown" } else { "never shown" },
                    charge.seen.join("\n")
                ));
            }
        }
        if !failures.is_empty() {
            break;
        }
    }
    assert!(
        failures.is_empty(),
        "a fresh sale was resumed as a leftover order:\n{}",
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals

#[test]
fn bad_input_exits_2() {
    start_budget();
    let setup = Setup::start();
    let data = setup.dir.path().join("data");
    let cases: &[(&[&str], &str)] = &[
        (&["--amount", "12.345", "--channel", "alipay"], "--amount"),
        (&["--amount", "1.00", "--channel", "bitcoin"], "--channel"),
        // ispay.in has no QQ Wallet code.
        (&["--amount", "1.00", "--channel", "qq"], "--channel"),
        (
            &[
                "--amount",
                "1.00",
                "--channel",
                "alipay",
                "--provider",
                "nope",
            ],
            "--provider",
        ),
    ];
    for (args, names) in cases {
        let mut all = vec!["charge"];
        all.extend_from_slice(args);
        all.push("--json");
        let out = run("qrtill charge", setup.cmd(&data, &all));
        assert_eq!(
            out.code, 2,
            "{args:?} must exit 2; stdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        assert!(
            out.stderr.contains(names),
            "{args:?}: stderr should name {names}: {}",
            out.stderr
        );
        assert!(
            !out.stdout.contains("\"event\":\"qr\""),
            "{args:?}: no QR may be shown: {}",
            out.stdout
        );
        assert_no_key("stdout", &out.stdout, SANDBOX_KEY);
        assert_no_key("stderr", &out.stderr, SANDBOX_KEY);
    }
    // Nothing was charged.
    let out = run("qrtill history", setup.cmd(&data, &["history", "--json"]));
    let history = json_of("history --json", &out);
    assert_eq!(
        history["orders"].as_array().map(Vec::len),
        Some(0),
        "refused input must create no order: {history}"
    );
}

/// A config with `top` added before its keys and `provider` as its provider's keys.
fn config_text(top: &str, provider: &str) -> String {
    format!(
        "{top}default_provider = \"main\"\n\n[listener]\nlisten = \"127.0.0.1:0\"\n\n\
         [[provider]]\nid = \"main\"\n{provider}"
    )
}

#[test]
fn bad_config_exits_2_naming_the_problem() {
    start_budget();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let provider = |kind: &str, key: bool| {
        let mut text = format!(
            "kind = \"{kind}\"\nbase_url = \"http://127.0.0.1:9/ispay\"\nuserid = \"10001\"\n"
        );
        if key {
            text.push_str(&format!("key = \"{SECRET_KEY}\"\n"));
        }
        text
    };
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "unknown-key.toml",
            config_text("colour = \"red\"\n", &provider("ispay", true)),
            &["`colour`"],
        ),
        (
            "unknown-kind.toml",
            config_text("", &provider("nope", true)),
            &["`nope`", "kind"],
        ),
        (
            "missing-key.toml",
            config_text("", &provider("ispay", false)),
            &["`key`"],
        ),
    ];
    for (file, text, names) in &cases {
        let path = dir.path().join(file);
        std::fs::write(&path, text).expect("write config");
        let path_text = path.display().to_string();
        for args in [
            &[
                "charge",
                "--amount",
                "1.00",
                "--channel",
                "alipay",
                "--json",
            ][..],
            &["history", "--json"][..],
        ] {
            let out = run("qrtill", qrtill_with(&path, &data, args));
            assert_eq!(
                out.code, 2,
                "{file} with {args:?} must exit 2; stdout: {}\nstderr: {}",
                out.stdout, out.stderr
            );
            for name in *names {
                assert!(
                    out.stderr.contains(name),
                    "{file}: stderr should name {name}: {}",
                    out.stderr
                );
            }
            assert!(
                out.stderr.contains(&path_text),
                "{file}: stderr should name the file {path_text}: {}",
                out.stderr
            );
            assert!(
                !out.stdout.contains("\"event\""),
                "{file}: no sale may start: {}",
                out.stdout
            );
            assert_no_key("stdout", &out.stdout, SECRET_KEY);
            assert_no_key("stderr", &out.stderr, SECRET_KEY);
        }
    }

    // An explicit --config that does not exist is an error, not demo mode.
    let missing = dir.path().join("does-not-exist.toml");
    let out = run(
        "qrtill",
        qrtill_with(
            &missing,
            &data,
            &[
                "charge",
                "--amount",
                "1.00",
                "--channel",
                "alipay",
                "--json",
            ],
        ),
    );
    assert_eq!(
        out.code, 2,
        "a missing --config must exit 2; stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert!(
        out.stderr.contains(&missing.display().to_string()),
        "stderr should name the missing file: {}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("\"event\""),
        "no sale may start: {}",
        out.stdout
    );
}
