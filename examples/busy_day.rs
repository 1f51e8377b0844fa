//! Fills a ledger with one busy business day, for looking at the history screen in a real
//! window (tests/xvfb/history-scroll.sh) the way a shop with tens of thousands of sales a day
//! would see it.
//!
//! usage: `cargo run --release --example busy_day -- LEDGER_FILE [ORDERS] [DAYS_BACK]`
//! (default 20,000 orders on yesterday's business day, local time zone, day start 00:00,
//! marked as demo orders so they sit beside the demo till's own).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // A tool fails loudly.

use chrono::{Local, Offset as _};
use qrtill::ledger::Ledger;

#[path = "../benches/support/generator.rs"]
mod generator;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: busy_day LEDGER_FILE [ORDERS] [DAYS_BACK]");
    let count: usize = args.next().map_or(20_000, |a| a.parse().expect("ORDERS"));
    let back: i64 = args.next().map_or(1, |a| a.parse().expect("DAYS_BACK"));
    let zone = Local::now().offset().fix();
    let start = qrtill::day::MIDNIGHT;
    let today = qrtill::day::business_date(&Local, chrono::Utc::now().timestamp_millis(), start);
    let date = today - chrono::TimeDelta::days(back);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut seq = 0;
    let mut rows = generator::day_orders(&mut rng, &zone, start, date, count, &mut seq);
    for row in &mut rows {
        row.demo = true;
    }
    let mut ledger = Ledger::open(std::path::Path::new(&path)).expect("ledger");
    ledger.insert_rows_for_generators(&rows).expect("insert");
    println!("{count} orders on {date} in {path}");
}
