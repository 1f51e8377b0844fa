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

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use common::{
    FRESH_SALE_RESUMED, Finished, Proc, Sale, assert_no_key, expect_done, expect_paid, http,
    qrtill, qrtill_with, run, start_budget, start_charge, status_json,
};

/// The merchant key of the sandbox (printed by `qrtill sandbox` itself, demo only).
const SANDBOX_KEY: &str = "qrtill-sandbox-ispay-key";

/// A distinctive merchant key for the bad-config files.
const SECRET_KEY: &str = "Zq7-merchant-secret-4711-do-not-print";

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
        start_charge(&self.config, self.dir.path(), amount, channel)
    }

    /// `POST {base}/_sandbox/orders/{order_no}/{action}` must answer 200.
    fn control(&self, order_no: &str, action: &str) {
        let url = format!("{}/_sandbox/orders/{order_no}/{action}", self.base);
        let (status, body) = http("POST", &url);
        assert_eq!(status, 200, "POST {url}: {body}");
    }

    /// `GET {base}/_sandbox/handling`: protocol requests answered and the sandbox's own time
    /// in them (µs), running totals.
    fn handling(&self) -> (u64, u64) {
        let url = format!("{}/_sandbox/handling", self.base);
        let (status, body) = http("GET", &url);
        assert_eq!(status, 200, "GET {url}: {body}");
        let totals: Value = serde_json::from_str(&body).expect("handling is JSON");
        let field = |name: &str| {
            totals[name]
                .as_u64()
                .unwrap_or_else(|| panic!("no `{name}` count in {totals}"))
        };
        (field("requests"), field("micros"))
    }
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
    assert_eq!(
        setup.handling(),
        (0, 0),
        "no protocol request answered before the sale"
    );
    let mut sale = setup.sale("12.34", "alipay");
    assert_eq!(sale.qr["amount"], "12.34", "{}", sale.qr);
    assert_eq!(sale.qr["channel"], "alipay", "{}", sale.qr);
    setup.control(&sale.order_no, "pay");
    expect_paid(&mut sale, "12.34", SANDBOX_KEY);

    // The sandbox's own time in the sale's protocol requests (what the benchmark subtracts):
    // counted, and neither the control API nor reading the totals adds to them.
    let (requests, micros) = setup.handling();
    assert!(
        requests >= 2 && micros > 0,
        "a create and a status query at least: {requests} requests, {micros} µs"
    );
    let (status, _) = http("GET", &format!("{}/_sandbox/orders", setup.base));
    assert_eq!(status, 200);
    assert_eq!(setup.handling(), (requests, micros));

    // Exit 0, one JSON object, no key shown.
    let status = status_json(&setup.config, &sale, SANDBOX_KEY);
    assert_eq!(status["order_no"], sale.order_no.as_str(), "{status}");
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["paid"], "12.34", "{status}");

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
