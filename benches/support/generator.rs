//! The generator of realistic shop days shared by the ledger benchmark and the `busy_day`
//! example: orders sold between 08:00 and 02:00 (hours counted from the business day's start)
//! with lunch and dinner peaks, 45 % WeChat Pay, 40 % Alipay, 10 % UnionPay, 5 % QQ; three
//! provider accounts, four operators; 86 % paid, the rest expired, cancelled or failed, with a
//! few late and mismatched payments.

#![allow(dead_code)] // Each including target uses its own part.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // A generator for benchmarks fails loudly.

use chrono::{FixedOffset, NaiveDate, NaiveTime};
use qrtill::day;
use qrtill::ledger::OrderRow;
use qrtill::model::{Channel, Fen, OrderNo, PaymentStatus};

/// Relative takings per hour, counted from the business day's start (with a 04:00 start:
/// closed 04:00–08:00 and 02:00–04:00, peaks at lunch and dinner).
const HOUR_WEIGHTS: [u32; 24] = [
    0, 0, 0, 0, 2, 3, 4, 8, 10, 7, 4, 3, 3, 6, 9, 10, 8, 6, 5, 4, 3, 2, 0, 0,
];

/// A value from a weighted table.
pub fn pick<T: Copy>(rng: &mut fastrand::Rng, table: &[(u32, T)]) -> T {
    let total: u32 = table.iter().map(|(w, _)| w).sum();
    let mut roll = rng.u32(0..total);
    for (weight, value) in table {
        if roll < *weight {
            return *value;
        }
        roll -= weight;
    }
    table[table.len() - 1].1
}

/// One business day's `count` orders, in time order; `seq` numbers them across days.
pub fn day_orders(
    rng: &mut fastrand::Rng,
    zone: &FixedOffset,
    day_start: NaiveTime,
    date: NaiveDate,
    count: usize,
    seq: &mut u64,
) -> Vec<OrderRow> {
    let (from, _) = day::window(zone, date, day_start);
    let hours: Vec<(u32, i64)> = HOUR_WEIGHTS
        .iter()
        .enumerate()
        .map(|(h, w)| (*w, i64::try_from(h).unwrap()))
        .collect();
    let mut times: Vec<i64> = (0..count)
        .map(|_| from + pick(rng, &hours) * day::HOUR_MS + rng.i64(0..day::HOUR_MS))
        .collect();
    times.sort_unstable();
    let channels = [
        (45, Channel::Wechat),
        (40, Channel::Alipay),
        (10, Channel::Unionpay),
        (5, Channel::Qq),
    ];
    let providers = [(70, "main"), (25, "backup"), (5, "igepay-1")];
    let operators = [(40, "A01"), (30, "B02"), (20, "收银员王"), (10, "店长")];
    let statuses = [
        (86, PaymentStatus::Paid),
        (8, PaymentStatus::Expired),
        (4, PaymentStatus::Cancelled),
        (2, PaymentStatus::Failed),
    ];
    times
        .into_iter()
        .map(|created_at| {
            *seq += 1;
            let stamp = day::local_time(zone, created_at).replace(['-', ' ', ':'], "");
            let amount = match rng.u32(0..100) {
                0..60 => rng.i64(100..3_000),
                60..90 => rng.i64(3_000..15_000),
                _ => rng.i64(15_000..80_000),
            };
            let provider = pick(rng, &providers);
            let payable = (provider == "igepay-1").then(|| Fen(amount + rng.i64(0..10)));
            let status = pick(rng, &statuses);
            let mut row = OrderRow {
                order_no: OrderNo::new(&format!("{stamp}{:08}", *seq)).unwrap(),
                provider_id: provider.to_string(),
                provider_kind: if provider == "igepay-1" {
                    "igepay"
                } else {
                    "ispay"
                }
                .to_string(),
                channel: pick(rng, &channels),
                amount: Fen(amount),
                payable,
                paid: None,
                status,
                provider_order_id: Some(format!("42000{:014}", *seq)),
                subject: String::new(),
                operator: pick(rng, &operators).to_string(),
                demo: false,
                created_at,
                expires_at: Some(created_at + 300_000),
                paid_at: None,
                late_paid: false,
                amount_mismatch: false,
                message: None,
            };
            if status == PaymentStatus::Paid {
                let asked = payable.unwrap_or(Fen(amount));
                row.paid = Some(asked);
                row.paid_at = Some(created_at + rng.i64(5_000..120_000));
                match rng.u32(0..1000) {
                    0..5 => {
                        row.late_paid = true;
                        row.paid_at = Some(created_at + rng.i64(300_000..600_000));
                    }
                    5..7 => {
                        row.amount_mismatch = true;
                        row.paid = Some(Fen(asked.0 - 1));
                    }
                    _ => {}
                }
            }
            row
        })
        .collect()
}
