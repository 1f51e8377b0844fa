//! `cargo bench --bench till`: the till's speed as a cashier feels it, in process, against
//! the sandbox (`qrtill sandbox`, started as its own process so that its memory and CPU are
//! not counted) on loopback.
//!
//! - Enter → QR drawn: from the charge (what Enter + the channel key do) until a frame has
//!   drawn the QR (egui frame run headless and tessellated; the GPU upload of the real window
//!   is measured by `tests/xvfb/bench.sh`), minus the sandbox's own time for the requests made
//!   in between (`GET /_sandbox/handling`). Target p99 ≤ 5 ms.
//! - Provider marks paid → paid screen, by callback: from the sandbox's "pay" control call
//!   (which marks the order paid and sends the notify to the till's listener) until a frame
//!   shows the paid screen. Target p99 ≤ 50 ms.
//! - The same by polling (notifies cannot reach this till): ispay.in and gatepay, the
//!   customer paying at a random moment up to 2 s after the QR appeared. Target median
//!   ≤ 0.7 s.
//! - Resident memory growth over 1,000 sales in one run (after 50 warm-up sales). Target
//!   ≤ 5 MB.
//! - Verified callbacks per second through the listener: signed notifies sent 64 at a time
//!   to open orders (each pays one: a ledger transaction), then the same again (repeats: each
//!   verified and found already paid); several rounds, each on its own orders, median and
//!   slowest round. Target ≥ 5,000 a second.
//!
//! The sales figures are taken over several runs, each on a fresh till: the median run
//! (and the worst) is reported, as with the callback rounds.
//!
//! Modes: `cargo bench` passes `--bench`: the full run, exit 1 when a target is missed.
//! `--short` (CI): fewer samples, exit 1 only when a figure is more than twice its target in
//! each of three attempts (a part over the limit is measured again on a fresh till; every
//! attempt is printed with the host's CPU steal over it, read from `/proc/stat`).
//! Neither (as `cargo test --benches` runs it): a smoke run of a few samples, no verdict.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // A benchmark fails loudly.

#[path = "../tests/listener_rig/mod.rs"]
mod listener_rig;

use std::io::BufRead as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qrtill::app::state::{Screen, TillState};
use qrtill::config::Config;
use qrtill::ledger::Ledger;
use qrtill::model::{Channel, Fen, OrderNo, PaymentStatus};
use qrtill::service::{self, ChargeRequest, EventReceiver, ServiceHandle};
use qrtill::ui::QrTextures;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Smoke,
    Short,
    Full,
}

/// The `qrtill sandbox` process, stopped on drop.
struct SandboxProcess {
    child: std::process::Child,
    base_url: String,
    _stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sandbox() -> SandboxProcess {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_qrtill"))
        .args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--qr-delay-ms",
            "0",
            "--order-timeout",
            "3600",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("qrtill sandbox");
    let mut first = String::new();
    // The rest of its output stays unread in the pipe, which stays open: a closed pipe would
    // end the sandbox at its next line.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    let base_url = first
        .trim()
        .rsplit(' ')
        .next()
        .expect("the sandbox prints its URL")
        .to_string();
    assert!(base_url.starts_with("http://"), "{first}");
    SandboxProcess {
        child,
        base_url,
        _stdout: stdout,
    }
}

/// One till: a service over a fresh ledger, its view model and a headless egui context.
struct Till {
    service: ServiceHandle,
    events: EventReceiver,
    state: TillState,
    ctx: egui::Context,
    textures: QrTextures,
    _listener: Option<service::listener::Listener>,
    _dir: tempfile::TempDir,
}

impl Till {
    /// `callbacks`: the listener runs and the sandbox is told its address; otherwise the
    /// notify address is a closed port and payments are found by polling.
    fn start(runtime: &tokio::runtime::Runtime, base_url: &str, callbacks: bool) -> Till {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(&qrtill::sandbox::demo_config_at(base_url)).unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger.sqlite3")).unwrap();
        let (service, events, listener) = runtime.block_on(async {
            let socket = service::listener::bind("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            let addr = socket.local_addr().unwrap();
            let bound = callbacks.then_some(addr);
            let mut service_config = qrtill::settings::service_config(&config, bound);
            if !callbacks {
                service_config.notify_base = "http://127.0.0.1:9".into();
            }
            let (service, events) = service::start(
                tokio::runtime::Handle::current(),
                ledger,
                service_config,
                Arc::new(|| {}),
            )
            .unwrap();
            let listener =
                callbacks.then(|| service::listener::serve(socket, service.clone()).unwrap());
            (service, events, listener)
        });
        let mut state = TillState::with_providers(Vec::new());
        state.apply_config(&config);
        let ctx = egui::Context::default();
        qrtill::app::fonts::install(&ctx);
        qrtill::app::fonts::style(&ctx);
        Till {
            service,
            events,
            state,
            ctx,
            textures: QrTextures::default(),
            _listener: listener,
            _dir: dir,
        }
    }

    /// One frame of the window, as eframe runs it before painting: the UI and tessellation.
    fn frame(&mut self) {
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(1100.0, 760.0),
            )),
            ..Default::default()
        };
        let (state, textures) = (&mut self.state, &mut self.textures);
        let mut output = self.ctx.run_ui(input, |ui| {
            let _ = qrtill::ui::draw(ui, state, textures);
        });
        // No GPU here to upload the font atlas and QR images to; egui asserts (in debug
        // builds, as `cargo test --benches` runs this) that they are not dropped unread.
        output.textures_delta.clear();
        let _ = self.ctx.tessellate(output.shapes, output.pixels_per_point);
    }

    /// Takes service events and draws a frame after each, until `done` holds after a frame.
    fn until(&mut self, runtime: &tokio::runtime::Runtime, done: impl Fn(&TillState) -> bool) {
        self.frame();
        while !done(&self.state) {
            let events = &mut self.events;
            let event = runtime
                .block_on(async {
                    tokio::time::timeout(Duration::from_secs(10), events.recv()).await
                })
                .expect("the till heard nothing for 10 s")
                .expect("the service stopped");
            self.state.apply(event, Instant::now());
            while let Ok(event) = self.events.try_recv() {
                self.state.apply(event, Instant::now());
            }
            self.frame();
        }
    }

    fn switch(&mut self, kind: &str) {
        let id = self
            .state
            .providers
            .iter()
            .find(|p| p.id.contains(kind))
            .map(|p| p.id.clone())
            .unwrap();
        self.state.switch_provider(&id);
    }

    /// Enter + channel: the order is started; returns its number.
    fn charge(&mut self, fen: i64) -> OrderNo {
        let order_no = self.service.charge(ChargeRequest {
            amount: Fen(fen),
            channel: self
                .state
                .channels
                .first()
                .copied()
                .unwrap_or(Channel::Alipay),
            provider_id: self.state.provider_id.clone(),
            subject: String::new(),
            operator: "bench".into(),
        });
        self.state.charging(order_no.clone());
        order_no
    }
}

fn qr_shown(state: &TillState) -> bool {
    matches!(state.screen, Screen::Qr(_)) && state.qr.is_some()
}

fn paid_shown(state: &TillState) -> bool {
    matches!(state.screen, Screen::Done(..))
        && state
            .order
            .as_ref()
            .is_some_and(|o| o.status == PaymentStatus::Paid)
}

/// The sandbox's own time in the protocol requests it has answered so far (a running total).
fn sandbox_time(runtime: &tokio::runtime::Runtime, http: &reqwest::Client, base: &str) -> Duration {
    let text = runtime.block_on(async {
        http.get(format!("{base}/_sandbox/handling"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    // A running total, not a list: reading it costs the same (and leaves the same garbage
    // in this process) after the thousandth sale as after the first.
    let totals: serde_json::Value = serde_json::from_str(&text).unwrap();
    Duration::from_micros(totals["micros"].as_u64().unwrap())
}

fn pay(runtime: &tokio::runtime::Runtime, http: &reqwest::Client, base: &str, order: &OrderNo) {
    let status = runtime.block_on(async {
        http.post(format!("{base}/_sandbox/orders/{order}/pay"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert!(status.is_success(), "pay control answered {status}");
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Median, p99 and worst of samples.
fn stats(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort();
    let n = samples.len();
    let at = |q: f64| {
        let rank = (q * n as f64).ceil() as usize;
        samples[rank.clamp(1, n) - 1]
    };
    (at(0.5), at(0.99), samples[n - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Row {
    figure: String,
    median: String,
    p99: String,
    worst: String,
    target: &'static str,
    /// How far from the target: measured / target (≤ 1 meets it).
    ratio: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = if args.iter().any(|a| a == "--short") {
        Mode::Short
    } else if args.iter().any(|a| a == "--bench") {
        Mode::Full
    } else {
        Mode::Smoke
    };
    let (warmup, sales, sale_runs, polled, callbacks, rounds) = match mode {
        Mode::Smoke => (2, 5, 1, 1, 64, 1),
        Mode::Short => (20, 200, 3, 6, 2_000, 3),
        Mode::Full => (50, 1_000, 3, 20, 5_000, 5),
    };
    let runtime = runtime_of_two_workers();
    // The build that came just before (cargo bench compiles first) leaves hundreds of MB of
    // dirty pages; flushed now, so that the ledger's own fsyncs are timed, not the build's
    // writeback.
    let _ = std::process::Command::new("sync").status();
    let sandbox = start_sandbox();
    let base = sandbox.base_url.clone();
    let http = reqwest::Client::new();
    let mut rows: Vec<Row> = Vec::new();
    // `--only sales|polling|callbacks` runs one part (while working on it).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let part = |name: &str| only.as_deref().is_none_or(|o| o == name);

    // Sales by callback: Enter → QR, paid → paid screen, and the memory over them; several
    // runs, each a fresh till: a figure is its median run (and its worst).
    let sales_part = || {
        let mut rows = Vec::new();
        // ispay.in answers a create with its order id only (the QR comes with the first
        // status query: two round trips); gatepay's create answer carries the QR (one).
        let kinds = ["ispay", "gatepay"];
        let mut runs = Vec::new();
        for _ in 0..sale_runs {
            // Its own runtime and client: dropping them ends the run's service tasks, so one
            // run's till does not go on working (or holding memory) under the next.
            let runtime = runtime_of_two_workers();
            let http = reqwest::Client::new();
            runs.push(sales_run(&runtime, &http, &base, &kinds, warmup, sales));
        }
        let pick = |f: &dyn Fn(&SalesRun) -> Duration| spread(runs.iter().map(f).collect());
        for (k, kind) in kinds.iter().enumerate() {
            let median = pick(&|r| r.enter_to_qr[k].0).median;
            let p99 = pick(&|r| r.enter_to_qr[k].1);
            let worst = pick(&|r| r.enter_to_qr[k].2).highest;
            rows.push(Row {
                figure: format!(
                    "Enter → QR drawn, own share ({sale_runs} runs of {} sales, {kind}; worst p99 {})",
                    sales / kinds.len(),
                    ms(p99.highest)
                ),
                median: ms(median),
                p99: ms(p99.median),
                worst: ms(worst),
                target: "p99 ≤ 5 ms",
                ratio: p99.median.as_secs_f64() / 0.005,
            });
        }
        let median = pick(&|r| r.paid_by_callback.0).median;
        let p99 = pick(&|r| r.paid_by_callback.1);
        let worst = pick(&|r| r.paid_by_callback.2).highest;
        rows.push(Row {
            figure: format!(
                "Provider marks paid → paid screen, by callback ({sale_runs} runs of {sales} sales; worst p99 {})",
                ms(p99.highest)
            ),
            median: ms(median),
            p99: ms(p99.median),
            worst: ms(worst),
            target: "p99 ≤ 50 ms",
            ratio: p99.median.as_secs_f64() / 0.050,
        });
        let growth = spread(runs.iter().map(|r| r.growth_mb).collect());
        let growth_mb = growth.median;
        rows.push(Row {
            figure: format!("Resident memory growth over {sales} sales ({sale_runs} runs)"),
            median: format!("{growth_mb:.2} MB"),
            p99: String::new(),
            worst: format!("{:.2} MB", growth.highest),
            target: "≤ 5 MB (over 1,000)",
            ratio: growth_mb / 5.0,
        });
        rows
    };

    // Sales found by polling.
    let polling_part = || {
        let mut rows = Vec::new();
        let mut till = Till::start(&runtime, &base, false);
        for kind in ["ispay", "gatepay"] {
            till.switch(kind);
            let mut found = Vec::new();
            for i in 0..polled {
                let order = till.charge(2_000 + i64::from(i));
                till.until(&runtime, qr_shown);
                // The customer takes a while to scan and pay: a random moment within 2 s, so
                // the payment falls anywhere between two polls, as it does at a real till.
                std::thread::sleep(Duration::from_millis(fastrand::u64(0..2_000)));
                let marked = Instant::now();
                pay(&runtime, &http, &base, &order);
                till.until(&runtime, paid_shown);
                found.push(marked.elapsed());
                till.state.escape();
            }
            let (median, p99, worst) = stats(&mut found);
            rows.push(Row {
                figure: format!(
                    "Provider marks paid → paid screen, by polling, {kind} ({polled} sales)"
                ),
                median: ms(median),
                p99: ms(p99),
                worst: ms(worst),
                target: "median ≤ 0.7 s",
                ratio: median.as_secs_f64() / 0.7,
            });
        }
        drop(till);
        rows
    };

    // Callbacks through the listener.
    let callbacks_part = || {
        let mut rows = Vec::new();
        let (paying, repeats) = runtime.block_on(callback_rate(callbacks, rounds));
        for (what, rates) in [
            ("each paying an order", paying),
            ("repeats of paid orders", repeats),
        ] {
            // The median round; the worst is the slowest.
            let rates = spread(rates);
            let median = rates.median;
            rows.push(Row {
                figure: format!(
                    "Verified callbacks per second, {what} ({rounds} rounds of {callbacks})"
                ),
                median: format!("{median:.0}/s"),
                p99: String::new(),
                worst: format!("{:.0}/s", rates.lowest),
                target: "≥ 5,000/s",
                ratio: 5_000.0 / median.max(1.0),
            });
        }
        rows
    };

    // A figure over the limit in short mode is measured again (at most twice more, each
    // time on a fresh till): a shared build machine's host steals CPU time and stalls the
    // disk in bursts (this 2-core VM measured Enter → QR p99 between 5 and 65 ms on the
    // same code within an hour), and CI should fail on a slow till, not on a noisy hour.
    // Only a figure over the limit in every attempt fails the run. Every attempt is printed
    // with the host's steal over it.
    let limit = match mode {
        Mode::Smoke => f64::INFINITY,
        Mode::Short => 2.0,
        Mode::Full => 1.0,
    };
    let attempts = if mode == Mode::Short { 3 } else { 1 };
    let parts: [(&str, &dyn Fn() -> Vec<Row>); 3] = [
        ("sales", &sales_part),
        ("polling", &polling_part),
        ("callbacks", &callbacks_part),
    ];
    let mut steal_notes = Vec::new();
    for (name, measure) in parts {
        if !part(name) {
            continue;
        }
        for attempt in 1..=attempts {
            let steal = Steal::start();
            let got = measure();
            let stolen = steal.percent();
            let over: Vec<&Row> = got.iter().filter(|r| r.ratio > limit).collect();
            if !over.is_empty() && attempt < attempts {
                for row in over {
                    eprintln!(
                        "{name}, attempt {attempt} (host steal {stolen:.1} %): {} at ×{:.2} of its target, over the limit ×{limit}; measuring again",
                        row.figure, row.ratio
                    );
                }
                continue;
            }
            steal_notes.push(format!(
                "{name}: attempt {attempt} of {attempts}, host steal {stolen:.1} % of CPU time"
            ));
            rows.extend(got);
            break;
        }
    }

    println!("| figure | median | p99 | worst | target | verdict |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut failed = Vec::new();
    for row in &rows {
        let verdict = if row.ratio <= 1.0 {
            "met".to_string()
        } else {
            format!("missed ×{:.2}", row.ratio)
        };
        println!(
            "| {} | {} | {} | {} | {} | {verdict} |",
            row.figure, row.median, row.p99, row.worst, row.target
        );
        if row.ratio > limit {
            failed.push(row.figure.clone());
        }
    }
    println!();
    for note in &steal_notes {
        println!("- {note}");
    }
    // `exit` skips destructors: the sandbox process is stopped first.
    drop(sandbox);
    if !failed.is_empty() {
        eprintln!("over the limit: {}", failed.join("; "));
        std::process::exit(1);
    }
}

/// The host's steal over a stretch of the run, from `/proc/stat`: the share of all CPU time
/// that the hypervisor gave to other guests while this one wanted to run.
struct Steal {
    start: Option<(u64, u64)>,
}

impl Steal {
    fn start() -> Steal {
        Steal {
            start: Self::read(),
        }
    }

    /// (steal, total) jiffies of all CPUs: the first line of `/proc/stat`.
    fn read() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        Some((*fields.get(7)?, fields.iter().take(8).sum()))
    }

    /// The steal since `start`, in percent of all CPU time (0 where `/proc/stat` is missing).
    fn percent(&self) -> f64 {
        match (self.start, Self::read()) {
            (Some((steal0, total0)), Some((steal1, total1))) if total1 > total0 => {
                100.0 * steal1.saturating_sub(steal0) as f64 / (total1 - total0) as f64
            }
            _ => 0.0,
        }
    }
}

/// The median and both ends of a figure taken once per run (or round).
struct Spread<T> {
    lowest: T,
    median: T,
    highest: T,
}

/// The [`Spread`] of `values` (at least one; the median of an even count is the upper one).
fn spread<T: Copy + PartialOrd>(mut values: Vec<T>) -> Spread<T> {
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN among the figures"));
    Spread {
        lowest: values[0],
        median: values[values.len() / 2],
        highest: values[values.len() - 1],
    }
}

/// The till's runtime: two workers, as the app has on this machine.
fn runtime_of_two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One run of sales on a fresh till: Enter → QR per kind and paid → paid screen by callback
/// (median, p99, worst each), and the resident memory growth over the measured sales.
struct SalesRun {
    enter_to_qr: [(Duration, Duration, Duration); 2],
    paid_by_callback: (Duration, Duration, Duration),
    growth_mb: f64,
}

fn sales_run(
    runtime: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    base: &str,
    kinds: &[&str; 2],
    warmup: usize,
    sales: usize,
) -> SalesRun {
    let mut till = Till::start(runtime, base, true);
    let mut enter_to_qr = [Vec::new(), Vec::new()];
    let mut paid_by_callback = Vec::new();
    let mut rss_start = 0;
    for i in 0..(warmup + sales) {
        if i == warmup {
            rss_start = rss_kib();
        }
        let kind = i % kinds.len();
        till.switch(kinds[kind]);
        let before = sandbox_time(runtime, http, base);
        let started = Instant::now();
        let order = till.charge(1_000 + i64::try_from(i % 5_000).unwrap());
        till.until(runtime, qr_shown);
        let total = started.elapsed();
        let sandbox_share = sandbox_time(runtime, http, base).saturating_sub(before);
        let marked = Instant::now();
        pay(runtime, http, base, &order);
        till.until(runtime, paid_shown);
        let to_paid = marked.elapsed();
        till.state.escape();
        if i >= warmup {
            enter_to_qr[kind].push(total.saturating_sub(sandbox_share));
            paid_by_callback.push(to_paid);
        }
    }
    let growth_kib = rss_kib().saturating_sub(rss_start);
    let [ispay, gatepay] = &mut enter_to_qr;
    SalesRun {
        enter_to_qr: [stats(ispay), stats(gatepay)],
        paid_by_callback: stats(&mut paid_by_callback),
        growth_mb: growth_kib as f64 / 1024.0,
    }
}

/// Opens `count` orders per round, then in each round sends that round's orders their signed
/// notifies (64 in flight), then all of them again: the rates of paying and of repeated
/// callbacks, one per round.
async fn callback_rate(count: usize, rounds: usize) -> (Vec<f64>, Vec<f64>) {
    let rig = listener_rig::start(service::listener::Limits::default()).await;
    let orders = rig
        .open_orders(count * rounds, |i| 100 + i64::try_from(i).unwrap())
        .await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let (mut paying, mut repeats) = (Vec::new(), Vec::new());
    for round in orders.chunks(count) {
        let bodies: Vec<((), String)> = round
            .iter()
            .map(|(order_no, amount)| {
                (
                    (),
                    listener_rig::notify_body(
                        order_no.as_str(),
                        &amount.to_yuan(),
                        listener_rig::TOKEN,
                    ),
                )
            })
            .collect();
        for rates in [&mut paying, &mut repeats] {
            let started = Instant::now();
            let answers =
                listener_rig::send_notifies(&client, &rig.notify_url(), bodies.clone(), 64).await;
            let elapsed = started.elapsed();
            assert!(
                answers.iter().all(|(_, status, _)| *status == 200),
                "every notify answered 200"
            );
            rates.push(round.len() as f64 / elapsed.as_secs_f64());
        }
    }
    let (paid, _) = rig.ledger_counts();
    assert_eq!(
        paid.values().filter(|&&n| n == 1).count(),
        count * rounds,
        "every order paid exactly once"
    );
    (paying, repeats)
}
