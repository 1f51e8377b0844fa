//! Scope: no file qrtill writes holds a merchant key.
//!
//! Real sales run as separate processes: `qrtill charge` (with `RUST_LOG=trace`, so every
//! debug and trace line reaches the log file) against `qrtill sandbox`, one through ispay.in
//! (the key signs the request) and one through 易支付 epay (whose query carries the key in
//! its URL, the riskiest case). Each is paid through the sandbox's control API; then
//! `status`, `history`, `report`, `close`, `closes` and `export` run on the same data folder.
//! Every file under the test's folder except the config files themselves (ledger, its
//! -wal/-shm, lock file, backups, log files, the CSV export) is then searched, as bytes,
//! for each key as written and in its hex, base64 and URL-encoded forms; and so are the
//! processes' stdout and stderr.
//!
//! Every child is killed when its guard drops, every wait is bounded by the test's budget,
//! and only 127.0.0.1 is ever used.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(
    dead_code,
    reason = "this file uses part of the shared process helpers"
)]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Proc, assert_no_key, expect_done, http, qrtill, qrtill_with, run, start_budget};
use qrtill::sandbox::{epay, ispay};

/// Starts `qrtill sandbox` and returns it with its base URL.
fn sandbox() -> (Proc, String) {
    let mut sandbox = Proc::spawn(
        "qrtill sandbox",
        qrtill(&["sandbox", "--listen", "127.0.0.1:0"]),
    );
    loop {
        let line = sandbox.line(Duration::from_secs(20));
        if let Some(rest) = line.split("listening on ").nth(1) {
            let base = rest.trim().trim_end_matches('/').to_string();
            assert!(base.starts_with("http://127.0.0.1:"), "{base}");
            return (sandbox, base);
        }
    }
}

/// The forms a key could take in a file: as written, hex (either case), base64, URL-encoded.
fn forms(key: &str) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    let encoded: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
    vec![
        key.as_bytes().to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(key)
            .into_bytes(),
        encoded.into_bytes(),
    ]
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read folder") {
        let path = entry.expect("folder entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Runs one paid sale with `--provider provider` in `data` and returns the `charge` output.
fn paid_sale(config: &Path, data: &Path, base: &str, provider: &str, amount: &str) -> String {
    let mut cmd = qrtill_with(
        config,
        data,
        &[
            "charge",
            "--amount",
            amount,
            "--channel",
            "alipay",
            "--provider",
            provider,
            "--json",
        ],
    );
    cmd.env("RUST_LOG", "trace");
    let mut charge = Proc::spawn("qrtill charge", cmd);
    let qr = charge.event_of("qr", Duration::from_secs(20));
    let order_no = qr["order_no"].as_str().expect("order_no").to_string();
    // Let the till query the unpaid order at least once (every second at the counter), so
    // the query request, and for epay the key in its URL, is on the logged path.
    std::thread::sleep(Duration::from_millis(1500));
    let url = format!("{base}/_sandbox/orders/{order_no}/pay");
    let (status, body) = http("POST", &url);
    assert_eq!(status, 200, "POST {url}: {body}");
    let done = expect_done(&mut charge, &order_no);
    assert_eq!(done["status"], "paid", "{done}");
    assert_eq!(charge.wait(), 0, "exit code of a paid charge");
    let stderr = charge.stderr_text();
    format!("{}\n{stderr}", charge.seen.join("\n"))
}

#[test]
fn no_file_written_holds_the_merchant_key() {
    start_budget();
    let (_sandbox, base) = sandbox();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "default_provider = \"demo-ispay\"\noperator = \"kim\"\n\n[listener]\nlisten = \"127.0.0.1:0\"\n\n{}\n{}",
            ispay::demo_config(&format!("{base}/{}", ispay::KIND)),
            epay::demo_config(&format!("{base}/{}", epay::KIND)),
        ),
    )
    .expect("write config");
    let keys = [ispay::DEMO_KEY, epay::DEMO_KEY];
    let data = dir.path().join("data");
    let exports = dir.path().join("exports");
    std::fs::create_dir_all(&exports).expect("exports folder");

    let mut printed = paid_sale(&config, &data, &base, "demo-ispay", "12.34");
    printed += &paid_sale(&config, &data, &base, "demo-epay", "5.00");

    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let csv = exports.join("orders.csv");
    let csv_arg = csv.to_str().expect("UTF-8 path");
    let commands: [&[&str]; 6] = [
        &["history", "--json"],
        &["report", "--json"],
        &["report"],
        &["close", "--json"],
        &["closes"],
        &["export", "--from", &today, "--to", &today, "--out", csv_arg],
    ];
    for args in commands {
        let mut cmd = qrtill_with(&config, &data, args);
        cmd.env("RUST_LOG", "trace");
        let out = run(&format!("qrtill {}", args.join(" ")), cmd);
        assert_eq!(out.code, 0, "{args:?}:\n{}\n{}", out.stdout, out.stderr);
        printed += &out.stdout;
        printed += &out.stderr;
    }
    let exported = std::fs::read_to_string(&csv).expect("the export was written");
    assert_eq!(
        exported.lines().count(),
        3,
        "a header and two orders:\n{exported}"
    );

    let mut files = Vec::new();
    files_under(dir.path(), &mut files);
    files.retain(|f| f != &config);
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| Some(f.strip_prefix(dir.path()).ok()?.display().to_string()))
        .collect();
    // What the sales and commands must have written, so the search below covers them.
    for expected in [
        "data/ledger.sqlite3",
        "data/logs/qrtill.",
        "data/backups/ledger-",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(expected)),
            "no {expected}… among {names:?}"
        );
    }
    let logged: String = files
        .iter()
        .filter(|f| f.starts_with(data.join("logs")))
        .map(|f| std::fs::read_to_string(f).expect("log file"))
        .collect();
    // The trace level was on: the requests to the provider are in the log, masked.
    assert!(logged.contains("TRACE"), "no trace lines in the log");
    assert!(
        logged.contains("/epay/api.php") && logged.contains("key=***"),
        "the epay query URL is not logged masked"
    );
    for file in &files {
        let bytes = std::fs::read(file).expect("read file");
        for key in keys {
            for form in forms(key) {
                assert!(
                    !bytes.windows(form.len()).any(|w| w == form.as_slice()),
                    "{} holds the merchant key {key} (as {})",
                    file.display(),
                    String::from_utf8_lossy(&form)
                );
            }
        }
    }
    for key in keys {
        assert_no_key("qrtill's stdout and stderr", &printed, key);
    }
}
