//! Scope: the end-of-day commands as separate processes. A day of sales is made with
//! `qrtill charge --json` against `qrtill sandbox` (paid on three channels, one expired, one
//! cancelled), all in one data folder with `day_start = "04:00"`; then the same sales must
//! show up identically in `history --json`, `report --json`, `close --json`, `closes --json`
//! and the CSV of `export --from/--to` and `export --close`, and in the till's history screen
//! (egui_kittest) on the same ledger. Bad dates, a reversed range and
//! an unknown close exit 2; a bad `day_start` in the config exits 2 naming the key.
//!
//! Every child is killed when its guard drops, every wait is bounded by the test's budget,
//! and only 127.0.0.1 is used.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(
    dead_code,
    reason = "the sale helpers of `common` start one data folder per sale"
)]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use common::{
    Finished, Proc, assert_no_key, expect_done, http, qrtill, qrtill_with, run, start_budget,
};

/// The sandbox's merchant key: it must appear in no report, close or export.
const SANDBOX_KEY: &str = "qrtill-sandbox-ispay-key";

/// A running `qrtill sandbox` and the config it printed (with `day_start = "04:00"` and a
/// Chinese operator added), in a temporary folder.
struct Setup {
    _sandbox: Proc,
    base: String,
    config: PathBuf,
    data: PathBuf,
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
        while !sandbox
            .line(Duration::from_secs(10))
            .starts_with("# A config for it")
        {}
        // The config is printed all at once: a quiet spell after a provider section ends it.
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
        let text = config
            .join("\n")
            .replace("operator = \"demo\"", "operator = \"收银员A\"");
        assert!(
            text.contains("收银员A"),
            "no operator line to replace:\n{text}"
        );
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, format!("day_start = \"04:00\"\n{text}\n"))
            .expect("write config");
        let data = dir.path().join("data");
        Setup {
            _sandbox: sandbox,
            base: base.unwrap_or_default(),
            config: config_path,
            data,
            dir,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        qrtill_with(&self.config, &self.data, args)
    }

    /// One sale to its end: `charge --json`, then `action` on the sandbox's control API.
    /// Returns the `done` event.
    fn sale(&self, amount: &str, channel: &str, action: &str) -> Value {
        let mut charge = Proc::spawn(
            "qrtill charge",
            self.cmd(&["charge", "--amount", amount, "--channel", channel, "--json"]),
        );
        let qr = charge.event_of("qr", Duration::from_secs(20));
        let order_no = qr["order_no"].as_str().expect("order_no").to_string();
        let url = format!("{}/_sandbox/orders/{order_no}/{action}", self.base);
        let (status, body) = http("POST", &url);
        assert_eq!(status, 200, "POST {url}: {body}");
        let done = expect_done(&mut charge, &order_no);
        let code = charge.wait();
        assert_eq!(
            code,
            if action == "pay" { 0 } else { 3 },
            "charge exit: {done}"
        );
        done
    }

    fn run(&self, args: &[&str]) -> Finished {
        run("qrtill", self.cmd(args))
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert_eq!(
            out.code, 0,
            "{args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        assert_no_key("stdout", &out.stdout, SANDBOX_KEY);
        serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|err| panic!("{args:?} is not one JSON value ({err}): {}", out.stdout))
    }
}

/// Reads an export as a spreadsheet shows it: BOM checked and stripped, `="…"` unwrapped.
fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let bytes = std::fs::read(path).expect("export written");
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "BOM first");
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let headers: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    reader
        .records()
        .map(|record| {
            let record = record.expect("a row");
            headers
                .iter()
                .cloned()
                .zip(record.iter().map(|cell| {
                    cell.strip_prefix("=\"")
                        .and_then(|c| c.strip_suffix('"'))
                        .map_or_else(|| cell.to_string(), |c| c.replace("\"\"", "\""))
                }))
                .collect()
        })
        .collect()
}

/// `(key, count, total)` of a list of group totals in JSON.
fn groups(value: &Value) -> Vec<(String, i64, String)> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap().to_string(),
                g["count"].as_i64().unwrap(),
                g["total"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Opens the till's history screen (egui_kittest, F2) on the ledger the sales were written
/// to, and finds every order number, each outcome's count and the day's paid figures as the
/// report gave them.
fn history_screen_shows(data: &Path, by_no: &BTreeMap<String, &Value>) {
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable as _;
    use qrtill::app::TillApp;
    use qrtill::app::state::TillState;
    use qrtill::service::{self, ServiceConfig};
    use std::time::Instant;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ledger = qrtill::ledger::Ledger::open(&data.join("ledger.sqlite3")).unwrap();
    let (service, events) = runtime.block_on(async {
        let config = ServiceConfig {
            providers: Vec::new(),
            order_timeout: Duration::from_secs(300),
            late_grace: Duration::from_secs(60),
            demo: false,
            sandbox_control: None,
            notify_base: "http://127.0.0.1:9".into(),
            public_url: None,
            day_start: qrtill::day::parse_day_start("04:00").unwrap(),
        };
        service::start(
            tokio::runtime::Handle::current(),
            ledger,
            config,
            std::sync::Arc::new(|| {}),
        )
        .unwrap()
    });
    let state = TillState::new(
        "demo-ispay",
        "demo",
        qrtill::model::Channel::ALL.to_vec(),
        true,
    );
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        .build_eframe(move |cc| TillApp::new(&cc.egui_ctx, state, service, events));
    harness.step();
    harness.key_press(egui::Key::F2);
    let mut wanted: Vec<String> = by_no.keys().cloned().collect();
    wanted.extend(
        ["已付 3 笔 · ¥15.35", "过期 1", "已取消 1", "未付 0"]
            .iter()
            .map(ToString::to_string),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        harness.step();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|w| harness.query_all_by_label_contains(w).next().is_none())
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the history screen never showed {missing:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_day_of_sales_shows_up_identically_everywhere() {
    start_budget();
    let setup = Setup::start();
    let sales = [
        setup.sale("12.34", "alipay", "pay"),
        setup.sale("3.00", "wechat", "pay"),
        setup.sale("0.01", "unionpay", "pay"),
        setup.sale("5.20", "wechat", "expire"),
        setup.sale("8.88", "alipay", "cancel"),
    ];
    let by_no: BTreeMap<String, &Value> = sales
        .iter()
        .map(|d| (d["order_no"].as_str().unwrap().to_string(), d))
        .collect();

    // The report of the current business day.
    let report = setup.json(&["report", "--json"]);
    assert_eq!(report["day_start"], "04:00", "{report}");
    let date = report["date"].as_str().expect("date").to_string();
    assert_eq!(report["orders"], 5, "{report}");
    assert_eq!(report["paid"]["count"], 3, "{report}");
    assert_eq!(report["paid"]["total"], "15.35", "{report}");
    assert_eq!(
        groups(&report["by_channel"]),
        vec![
            ("alipay".to_string(), 1, "12.34".to_string()),
            ("unionpay".to_string(), 1, "0.01".to_string()),
            ("wechat".to_string(), 1, "3.00".to_string()),
        ]
    );
    assert_eq!(
        groups(&report["by_operator"]),
        vec![("收银员A".to_string(), 3, "15.35".to_string())]
    );
    assert_eq!(
        groups(&report["by_provider"]),
        vec![("demo-ispay".to_string(), 3, "15.35".to_string())]
    );
    assert_eq!(
        (&report["unpaid"], &report["expired"], &report["cancelled"]),
        (&Value::from(0), &Value::from(1), &Value::from(1)),
        "{report}"
    );
    let hourly = report["hourly"].as_array().expect("hourly");
    assert!((23..=25).contains(&hourly.len()), "{report}");
    let hourly_fen: i64 = hourly
        .iter()
        .map(|h| {
            let total = h["total"].as_str().unwrap().replace('.', "");
            total.parse::<i64>().unwrap()
        })
        .sum();
    assert_eq!(hourly_fen, 1535);

    // The history of that business day holds the same orders with the same outcome.
    let history = setup.json(&["history", "--date", &date, "--json"]);
    let orders = history["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 5, "{history}");
    for order in orders {
        let done = by_no[order["order_no"].as_str().unwrap()];
        assert_eq!(order["status"], done["status"], "{order}");
        assert_eq!(order["paid"], done["paid"], "{order}");
    }
    assert_eq!(history["paid_total"], "15.35");
    // … and so does the history screen of the till on the same ledger.
    history_screen_shows(&setup.data, &by_no);

    // The close holds the same money, counted by payment time.
    let close = setup.json(&["close", "--json"]);
    assert_eq!(close["number"], 1, "{close}");
    assert_eq!(close["from_ms"], 0, "{close}");
    assert_eq!(close["operator"], "收银员A", "{close}");
    for key in ["paid", "by_channel", "by_provider", "by_operator", "orders"] {
        assert_eq!(close[key], report[key], "{key}: {close}");
    }
    assert_eq!(
        (&close["expired"], &close["cancelled"]),
        (&Value::from(1), &Value::from(1))
    );
    let listed = setup.json(&["closes", "--json"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0], close);
    // A second close right after covers nothing new.
    let second = setup.json(&["close", "--json"]);
    assert_eq!(second["number"], 2);
    assert_eq!(second["from_ms"], close["to_ms"]);
    assert_eq!(second["paid"]["count"], 0);

    // The CSV of the day and of the close: every order, as charged.
    for (name, args) in [
        ("day.csv", vec!["export", "--from", &date, "--to", &date]),
        ("close.csv", vec!["export", "--close", "1"]),
    ] {
        let path = setup.dir.path().join(name);
        let mut all = args.clone();
        all.extend(["--out", path.to_str().unwrap()]);
        let out = setup.run(&all);
        assert_eq!(out.code, 0, "{all:?}: {}\n{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("5"), "{}", out.stdout);
        let raw = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        assert_no_key(name, &raw, SANDBOX_KEY);
        let rows = read_csv(&path);
        assert_eq!(rows.len(), 5, "{name}");
        let mut paid_fen = 0;
        for row in &rows {
            let done = by_no
                .get(&row["订单号(order no)"])
                .unwrap_or_else(|| panic!("{name}: unknown order {row:?}"));
            assert_eq!(row["收银员(operator)"], "收银员A");
            assert_eq!(row["支付平台(provider)"], "demo-ispay");
            assert_eq!(
                row["实付(paid)"],
                done["paid"].as_str().unwrap_or(""),
                "{row:?}"
            );
            assert_eq!(row["应付(payable)"], done["payable"].as_str().unwrap());
            let status_zh = match done["status"].as_str().unwrap() {
                "paid" => "已支付",
                "expired" => "已过期",
                "cancelled" => "已取消",
                other => panic!("unexpected status {other}"),
            };
            assert_eq!(row["状态(status)"], status_zh);
            if let Some(paid) = done["paid"].as_str() {
                paid_fen += paid.replace('.', "").parse::<i64>().unwrap();
            }
        }
        assert_eq!(paid_fen, 1535, "{name}");
    }
}

#[test]
fn bad_dates_and_unknown_closes_exit_2() {
    start_budget();
    let dir = tempfile::tempdir().expect("temp dir");
    // Demo mode (no config file): nothing needs a sandbox.
    let data = dir.path().join("data");
    let missing_config = dir.path().join("none");
    let demo = |args: &[&str]| {
        let mut cmd = qrtill(&[]);
        cmd.env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", &missing_config)
            .arg("--data-dir")
            .arg(&data)
            .args(args);
        run("qrtill", cmd)
    };
    let out = dir.path().join("x.csv");
    let out = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["report", "--date", "2026-02-30"], "--date"),
        (vec!["report", "--date", "21.11.2026"], "YYYY-MM-DD"),
        (vec!["history", "--date", "tomorrow"], "--date"),
        (
            vec![
                "export",
                "--from",
                "2026-11-xx",
                "--to",
                "2026-11-21",
                "--out",
                out,
            ],
            "--from",
        ),
        (
            vec![
                "export",
                "--from",
                "2026-11-22",
                "--to",
                "2026-11-21",
                "--out",
                out,
            ],
            "--to",
        ),
        (vec!["export", "--close", "3", "--out", out], "--close"),
        (vec!["export", "--out", out], "--from"),
    ];
    for (args, names) in cases {
        let result = demo(&args);
        assert_eq!(
            result.code, 2,
            "{args:?} must exit 2: {}\n{}",
            result.stdout, result.stderr
        );
        assert!(
            result.stderr.contains(names),
            "{args:?}: stderr should name {names}: {}",
            result.stderr
        );
    }
    assert!(!Path::new(out).exists(), "no file for a refused export");
    // In demo mode the report works on the demo ledger.
    let ok = demo(&["report", "--json", "--date", "2026-11-21"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let report: Value = serde_json::from_str(ok.stdout.trim()).unwrap();
    assert_eq!(report["day_start"], "00:00");
    assert_eq!(report["hourly"].as_array().map(Vec::len), Some(24));

    // A bad day_start in a config file exits 2 naming the key and the file.
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "day_start = \"4am\"\n[[provider]]\nid = \"main\"\nkind = \"ispay\"\nuserid = \"1\"\nkey = \"k\"\n",
    )
    .unwrap();
    let result = run("qrtill", qrtill_with(&config, &data, &["report"]));
    assert_eq!(result.code, 2, "{}", result.stderr);
    assert!(
        result.stderr.contains("`day_start`") && result.stderr.contains("config.toml"),
        "{}",
        result.stderr
    );
}
