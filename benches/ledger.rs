//! `cargo bench`: how fast the end-of-day screens are on a shop's years-old ledger.
//!
//! Generates (once, then reuses from `target/qrtill-bench/`) a ledger of 2,000,000 orders over
//! three years of business days (04:00 day start, UTC+8): about 1,825 a day with a weekly
//! rhythm, sold between 08:00 and 02:00 with lunch and dinner peaks, 45 % WeChat Pay, 40 %
//! Alipay, 10 % UnionPay, 5 % QQ; three provider accounts, four operators; 86 % paid, the rest
//! expired, cancelled or failed, with a few late and mismatched payments. Then, for 50 random
//! business days, it times one `day_summary` and the first `history_page` (offset 0, limit
//! 100) plus the `history_count` a virtual table needs, each on a day the query has not
//! touched before, and prints the median and the worst. Target: under 20 ms each.
//!
//! `cargo bench` passes `--bench`; without it (as `cargo test --benches` runs it) a small
//! smoke run checks the same code paths in a moment. `QRTILL_BENCH_LEDGER=FILE` uses another
//! file for the large ledger. Exits 1 when a target is missed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // A benchmark fails loudly.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{FixedOffset, NaiveDate, NaiveTime};
use qrtill::day;
use qrtill::ledger::{HistoryFilter, Ledger};

#[path = "support/generator.rs"]
mod generator;
use generator::day_orders;

const ORDERS: usize = 2_000_000;
const DAYS: u64 = 1096;
const SAMPLES: usize = 50;
const TARGET: Duration = Duration::from_millis(20);

fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

fn day_start() -> NaiveTime {
    NaiveTime::from_hms_opt(4, 0, 0).unwrap()
}

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 11, 22).unwrap()
}

/// How many orders each business day gets: a weekly rhythm around the mean, summing to
/// exactly `total`.
fn orders_per_day(days: u64, total: usize) -> Vec<usize> {
    let days_usize = usize::try_from(days).unwrap();
    let base = i64::try_from(total / days_usize).unwrap();
    let rhythm = [-150_i64, -100, -50, 0, 50, 100, 150];
    let mut counts: Vec<i64> = (0..days_usize)
        .map(|i| (base + rhythm[i % 7]).max(1))
        .collect();
    let sum: i64 = counts.iter().sum();
    let last = counts.len() - 1;
    counts[last] += i64::try_from(total).unwrap() - sum;
    counts
        .into_iter()
        .map(|c| usize::try_from(c).unwrap())
        .collect()
}

/// Writes a ledger of `total` orders over `days` business days to `path` (via a `.part` file,
/// so an interrupted run never leaves a short ledger under the real name).
fn generate(path: &Path, days: u64, total: usize) {
    let part = path.with_extension("part");
    for stale in [
        part.clone(),
        part.with_extension("part-wal"),
        part.with_extension("part-shm"),
    ] {
        let _ = std::fs::remove_file(stale);
    }
    let started = Instant::now();
    let mut ledger = Ledger::open(&part).unwrap();
    let mut rng = fastrand::Rng::with_seed(20_261_121);
    let mut seq = 0_u64;
    let mut batch = Vec::new();
    for (i, count) in orders_per_day(days, total).into_iter().enumerate() {
        let date = first_day() + chrono::Days::new(u64::try_from(i).unwrap());
        batch.extend(day_orders(
            &mut rng,
            &china(),
            day_start(),
            date,
            count,
            &mut seq,
        ));
        if batch.len() >= 50_000 {
            ledger.insert_rows_for_generators(&batch).unwrap();
            batch.clear();
            eprint!("\rgenerating: {seq} orders");
        }
    }
    ledger.insert_rows_for_generators(&batch).unwrap();
    drop(ledger);
    std::fs::rename(&part, path).unwrap();
    // The WAL was checkpointed when the last connection closed.
    eprintln!(
        "\rgenerated {seq} orders over {days} business days in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn order_count(path: &Path) -> Option<usize> {
    // Opening would create an empty ledger; a missing file simply has no orders.
    if !path.exists() {
        return None;
    }
    let ledger = Ledger::open(path).ok()?;
    let all = ledger
        .history_count(0, i64::MAX, &HistoryFilter::default())
        .ok()?;
    Some(all)
}

/// The large ledger's file: `QRTILL_BENCH_LEDGER`, else `target/qrtill-bench/`.
fn cache_path() -> PathBuf {
    if let Some(path) = std::env::var_os("QRTILL_BENCH_LEDGER") {
        return PathBuf::from(path);
    }
    // The bench runs as target/<profile>/deps/ledger-HASH.
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .ancestors()
        .nth(3)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
    target.join("qrtill-bench").join("ledger-2m-v1.sqlite3")
}

struct Timings(Vec<Duration>);

impl Timings {
    fn median(&self) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted[sorted.len() / 2]
    }

    fn worst(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Times the queries on `samples` random business days; returns whether all met the target.
fn measure(path: &Path, days: u64, samples: usize, enforce: bool) -> bool {
    let ledger = Ledger::open(path).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut dates: Vec<NaiveDate> = Vec::new();
    while dates.len() < samples.min(usize::try_from(days).unwrap()) {
        let date = first_day() + chrono::Days::new(rng.u64(0..days));
        if !dates.contains(&date) {
            dates.push(date);
        }
    }
    let mut summary = Timings(Vec::new());
    let mut page = Timings(Vec::new());
    let mut last_page = Timings(Vec::new());
    let mut count = Timings(Vec::new());
    let all = HistoryFilter::default();
    let mut orders_seen = 0;
    for date in &dates {
        let (from, to) = day::window(&china(), *date, day_start());
        let started = Instant::now();
        let result = ledger.day_summary(from, to).unwrap();
        summary.0.push(started.elapsed());
        assert!(result.figures.orders > 0, "{date} has no orders");
        assert_eq!(result.hourly.len(), 24);
        orders_seen += result.figures.orders;

        let started = Instant::now();
        let n = ledger.history_count(from, to, &all).unwrap();
        count.0.push(started.elapsed());
        assert_eq!(i64::try_from(n).unwrap(), result.figures.orders);

        let started = Instant::now();
        let rows = ledger.history_page(from, to, &all, 0, 100).unwrap();
        page.0.push(started.elapsed());
        assert_eq!(rows.len(), 100.min(n));

        // Scrolled to the bottom: the oldest 100 of the day.
        let started = Instant::now();
        let rows = ledger
            .history_page(from, to, &all, n.saturating_sub(100), 100)
            .unwrap();
        last_page.0.push(started.elapsed());
        assert_eq!(rows.len(), 100.min(n));
    }
    println!(
        "{} business days sampled, {} orders on them ({} a day on average)",
        dates.len(),
        orders_seen,
        orders_seen / i64::try_from(dates.len()).unwrap()
    );
    let mut ok = true;
    for (name, timings) in [
        ("day_summary", &summary),
        ("history_page(0, 100)", &page),
        ("history_page(last 100)", &last_page),
        ("history_count", &count),
    ] {
        let met = timings.worst() < TARGET;
        ok &= met;
        println!(
            "{name:<22} median {:>9}  worst {:>9}  {}",
            ms(timings.median()),
            ms(timings.worst()),
            if !enforce {
                ""
            } else if met {
                "(target < 20 ms: met)"
            } else {
                "(target < 20 ms: MISSED)"
            }
        );
    }
    ok
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    if !bench {
        // Smoke run: the same generator and queries on a small ledger.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smoke.sqlite3");
        generate(&path, 5, 9_000);
        assert_eq!(order_count(&path), Some(9_000));
        measure(&path, 5, 5, false);
        return;
    }
    let path = cache_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    if order_count(&path) == Some(ORDERS) {
        println!("reusing the ledger at {}", path.display());
    } else {
        println!("generating the ledger at {} (once)", path.display());
        let _ = std::fs::remove_file(&path);
        generate(&path, DAYS, ORDERS);
        assert_eq!(order_count(&path), Some(ORDERS));
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "ledger: {ORDERS} orders over {DAYS} business days (04:00 start), {:.0} MB",
        size as f64 / 1e6
    );
    let met = measure(&path, DAYS, SAMPLES, true);
    // For information: a shop's very first close covers its whole ledger (no target; later
    // closes cover a shift, the same index range as a day).
    let ledger = Ledger::open(&path).unwrap();
    let (_, end) = day::window(&china(), first_day() + chrono::Days::new(DAYS), day_start());
    let started = Instant::now();
    let close = ledger.preview_close("bench", end).unwrap();
    println!(
        "first close, whole ledger   {:>9}  ({} paid, not recorded)",
        ms(started.elapsed()),
        close.figures.paid.count
    );
    if !met {
        std::process::exit(1);
    }
}
