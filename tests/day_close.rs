//! Scope: the end-of-day back end on the ledger: the business day's boundaries, the day
//! summary against a hand count, the history pages and filters, and the day closes
//! (disjoint windows, every payment counted exactly once, append-only, snapshots that never
//! change), plus the `day_start` config key.
//!
//! Orders are written through the till's own path (`insert_order`, then `apply`), and the
//! expected figures are counted by the test from what it did, never read back from the
//! ledger. Times are built in a fixed UTC+8 zone, so the tests mean the same in any TZ.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // Tests fail loudly.

use std::collections::BTreeMap;

use chrono::{FixedOffset, NaiveDate, NaiveTime, TimeZone as _};
use qrtill::config::Config;
use qrtill::day;
use qrtill::ledger::{HistoryFilter, Ledger, LedgerError, NewOrder, Update};
use qrtill::model::{Channel, Fen, OrderNo, PaymentStatus, ProviderState};

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;

fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

fn four() -> NaiveTime {
    NaiveTime::from_hms_opt(4, 0, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Unix ms of a local time in UTC+8.
fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    china()
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .unwrap()
        .timestamp_millis()
}

struct Sale<'a> {
    no: &'a str,
    channel: Channel,
    provider: &'a str,
    operator: &'a str,
    amount: i64,
    created_at: i64,
}

fn new_order(sale: &Sale<'_>) -> NewOrder {
    NewOrder {
        order_no: OrderNo::new(sale.no).unwrap(),
        provider_id: sale.provider.into(),
        provider_kind: "ispay".into(),
        channel: sale.channel,
        amount: Fen(sale.amount),
        subject: String::new(),
        operator: sale.operator.into(),
        demo: false,
        created_at: sale.created_at,
        expires_at: sale.created_at + 5 * MINUTE,
    }
}

fn put(ledger: &mut Ledger, sale: &Sale<'_>) -> OrderNo {
    ledger.insert_order(&new_order(sale)).unwrap().order_no
}

fn move_to(ledger: &mut Ledger, no: &OrderNo, state: ProviderState, at: i64) {
    ledger
        .apply(no, &Update::new("query", state, "test", at))
        .unwrap();
}

fn pay(ledger: &mut Ledger, no: &OrderNo, paid: Option<i64>, at: i64) {
    let mut update = Update::new("query", ProviderState::Paid, "test", at);
    update.paid_amount = paid.map(Fen);
    let applied = ledger.apply(no, &update).unwrap();
    assert_eq!(applied.order.status, PaymentStatus::Paid);
}

/// A sale made and paid in one go.
fn paid_sale(ledger: &mut Ledger, sale: &Sale<'_>, paid_at: i64) -> OrderNo {
    let no = put(ledger, sale);
    pay(ledger, &no, None, paid_at);
    no
}

// ---------------------------------------------------------------------------------------------
// The summary against a hand count

#[derive(Default, Debug, PartialEq, Eq)]
struct Hand {
    orders: i64,
    paid_count: i64,
    paid_total: i64,
    by_channel: BTreeMap<String, (i64, i64)>,
    by_provider: BTreeMap<String, (i64, i64)>,
    by_operator: BTreeMap<String, (i64, i64)>,
    unpaid: i64,
    expired: i64,
    cancelled: i64,
    failed: i64,
    flagged: Vec<String>,
    hourly: BTreeMap<i64, (i64, i64)>,
}

fn groups(list: &[qrtill::ledger::GroupTotals]) -> BTreeMap<String, (i64, i64)> {
    list.iter()
        .map(|g| (g.key.clone(), (g.count, g.total.0)))
        .collect()
}

#[test]
fn the_day_summary_equals_a_hand_count() {
    let mut ledger = Ledger::open_in_memory().unwrap();
    let day = date(2026, 11, 21);
    let (from, to) = day::window(&china(), day, four());
    assert_eq!(from, at(2026, 11, 21, 4, 0));

    let channels = Channel::ALL;
    let providers = ["main", "backup", "igepay-1"];
    let operators = ["A01", "B02", "收银员王"];
    let mut rng = fastrand::Rng::with_seed(20261121);
    let mut hand = Hand::default();
    // Every status, every channel, provider and operator, at every hour of the business day
    // (also after midnight, which is still the 21st with a 04:00 start).
    for i in 0..400_i64 {
        let created_at = from + rng.i64(0..to - from - 10 * MINUTE);
        let channel = channels[rng.usize(0..channels.len())];
        let provider = providers[rng.usize(0..providers.len())];
        let operator = operators[rng.usize(0..operators.len())];
        let amount = rng.i64(1..200_000);
        let no = format!("D{i:05}");
        let sale = Sale {
            no: &no,
            channel,
            provider,
            operator,
            amount,
            created_at,
        };
        let no = put(&mut ledger, &sale);
        hand.orders += 1;
        let mut paid_fen = None;
        let mut flagged = false;
        match i % 10 {
            // Still being created, waiting, or paid-but-unconfirmed: unpaid.
            0 => hand.unpaid += 1,
            1 => {
                move_to(&mut ledger, &no, ProviderState::Pending, created_at + 1);
                hand.unpaid += 1;
            }
            2 => {
                move_to(&mut ledger, &no, ProviderState::Confirming, created_at + 1);
                hand.unpaid += 1;
            }
            3 => {
                move_to(&mut ledger, &no, ProviderState::Expired, created_at + 1);
                hand.expired += 1;
            }
            4 => {
                move_to(&mut ledger, &no, ProviderState::Cancelled, created_at + 1);
                hand.cancelled += 1;
            }
            5 => {
                move_to(&mut ledger, &no, ProviderState::Failed, created_at + 1);
                hand.failed += 1;
            }
            // Paid after expiring: late.
            6 => {
                move_to(&mut ledger, &no, ProviderState::Expired, created_at + 1);
                pay(&mut ledger, &no, None, created_at + 6 * MINUTE);
                paid_fen = Some(amount);
                flagged = true;
            }
            // Paid a different amount: mismatch, and what was paid is what counts.
            7 => {
                let short = (amount - 1).max(1) + i64::from(amount == 1);
                pay(&mut ledger, &no, Some(short), created_at + MINUTE);
                paid_fen = Some(short);
                flagged = true;
            }
            // The provider nudged the amount; paid exactly what it asked.
            8 => {
                let mut pending = Update::new("create", ProviderState::Pending, "t", created_at);
                pending.payable = Some(Fen(amount + 1));
                ledger.apply(&no, &pending).unwrap();
                pay(&mut ledger, &no, Some(amount + 1), created_at + MINUTE);
                paid_fen = Some(amount + 1);
            }
            _ => {
                pay(&mut ledger, &no, None, created_at + MINUTE);
                paid_fen = Some(amount);
            }
        }
        if let Some(fen) = paid_fen {
            hand.paid_count += 1;
            hand.paid_total += fen;
            for (map, key) in [
                (&mut hand.by_channel, channel.as_str()),
                (&mut hand.by_provider, provider),
                (&mut hand.by_operator, operator),
            ] {
                let entry = map.entry(key.to_string()).or_default();
                entry.0 += 1;
                entry.1 += fen;
            }
            let hour = (created_at - from) / HOUR;
            let entry = hand.hourly.entry(hour).or_default();
            entry.0 += 1;
            entry.1 += fen;
            if flagged {
                hand.flagged.push(no.to_string());
            }
        }
    }
    // Outside the window on both sides: 03:59 that morning and 04:00 the next.
    for (no, created_at) in [
        ("OUT-BEFORE", from - MINUTE),
        ("OUT-AFTER", to),
        ("OUT-EDGE", from - 1),
    ] {
        let sale = Sale {
            no,
            channel: Channel::Alipay,
            provider: "main",
            operator: "A01",
            amount: 999,
            created_at,
        };
        paid_sale(&mut ledger, &sale, created_at + MINUTE);
    }

    assert!(
        hand.paid_count >= 100 && !hand.flagged.is_empty(),
        "{hand:?}"
    );
    let after_midnight = at(2026, 11, 22, 0, 0);
    assert!(
        hand.hourly
            .keys()
            .any(|h| from + h * HOUR >= after_midnight),
        "sales after midnight belong to the 21st"
    );

    let summary = ledger.day_summary(from, to).unwrap();
    let f = &summary.figures;
    assert_eq!((summary.from_ms, summary.to_ms), (from, to));
    assert_eq!(f.orders, hand.orders);
    assert_eq!(f.paid.count, hand.paid_count);
    assert_eq!(f.paid.total, Fen(hand.paid_total));
    assert_eq!(groups(&f.by_channel), hand.by_channel);
    assert_eq!(groups(&f.by_provider), hand.by_provider);
    assert_eq!(groups(&f.by_operator), hand.by_operator);
    assert_eq!(hand.by_channel.len(), 4, "every channel took money");
    assert_eq!(hand.by_operator.len(), 3, "every operator took money");
    assert_eq!(
        (f.unpaid, f.expired, f.cancelled, f.failed),
        (hand.unpaid, hand.expired, hand.cancelled, hand.failed)
    );
    // Flagged: late and mismatched, oldest first.
    let times: Vec<i64> = f.flagged.iter().map(|o| o.created_at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    let mut listed: Vec<String> = f.flagged.iter().map(|o| o.order_no.clone()).collect();
    listed.sort();
    hand.flagged.sort();
    assert_eq!(listed, hand.flagged);
    assert!(
        f.flagged
            .iter()
            .all(|o| o.late_paid != o.amount_mismatch && o.paid.is_some())
    );
    // 24 hourly buckets from 04:00, every one present, matching the hand count.
    assert_eq!(summary.hourly.len(), 24);
    assert_eq!(
        day::clock_label(&china(), summary.hourly[0].start_ms),
        "04:00"
    );
    assert_eq!(
        day::clock_label(&china(), summary.hourly[23].start_ms),
        "03:00"
    );
    for (index, bucket) in summary.hourly.iter().enumerate() {
        let expected = hand
            .hourly
            .get(&i64::try_from(index).unwrap())
            .copied()
            .unwrap_or_default();
        assert_eq!((bucket.count, bucket.total.0), expected, "hour {index}");
        assert_eq!(bucket.start_ms, from + i64::try_from(index).unwrap() * HOUR);
    }
    // The status bar's figure is the same day's paid.
    assert_eq!(ledger.paid_totals(from, to).unwrap(), f.paid);
    // JSON amounts are exact yuan strings and the snapshot reads back.
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["paid"]["total"], Fen(hand.paid_total).to_yuan());
    assert_eq!(json["hourly"].as_array().unwrap().len(), 24);
    let back: qrtill::ledger::DaySummary = serde_json::from_value(json).unwrap();
    assert_eq!(back, summary);
}

// ---------------------------------------------------------------------------------------------
// The business day's boundary

#[test]
fn the_boundary_with_a_04_00_start() {
    let mut ledger = Ledger::open_in_memory().unwrap();
    let cases = [
        ("B0359", at(2026, 11, 21, 3, 59), date(2026, 11, 20)),
        ("B0400", at(2026, 11, 21, 4, 0), date(2026, 11, 21)),
        ("B2359", at(2026, 11, 21, 23, 59), date(2026, 11, 21)),
        ("B0000", at(2026, 11, 22, 0, 0), date(2026, 11, 21)),
        ("B0359N", at(2026, 11, 22, 3, 59), date(2026, 11, 21)),
        ("B0400N", at(2026, 11, 22, 4, 0), date(2026, 11, 22)),
    ];
    for (i, (no, created_at, expected)) in cases.iter().enumerate() {
        assert_eq!(
            day::business_date(&china(), *created_at, four()),
            *expected,
            "{no}"
        );
        let sale = Sale {
            no,
            channel: Channel::Wechat,
            provider: "main",
            operator: "A01",
            amount: 100 * (i64::try_from(i).unwrap() + 1),
            created_at: *created_at,
        };
        paid_sale(&mut ledger, &sale, created_at + 1_000);
    }
    let day_of = |d: NaiveDate| {
        let (from, to) = day::window(&china(), d, four());
        let mut nos: Vec<String> = ledger
            .history_page(from, to, &HistoryFilter::default(), 0, 100)
            .unwrap()
            .into_iter()
            .map(|o| o.order_no.to_string())
            .collect();
        nos.sort();
        let summary = ledger.day_summary(from, to).unwrap();
        (nos, summary.figures.paid.count, summary.figures.paid.total)
    };
    assert_eq!(
        day_of(date(2026, 11, 20)),
        (vec!["B0359".to_string()], 1, Fen(100))
    );
    assert_eq!(
        day_of(date(2026, 11, 21)),
        (
            vec!["B0000", "B0359N", "B0400", "B2359"]
                .into_iter()
                .map(String::from)
                .collect(),
            4,
            Fen(200 + 300 + 400 + 500)
        )
    );
    assert_eq!(
        day_of(date(2026, 11, 22)),
        (vec!["B0400N".to_string()], 1, Fen(600))
    );
    // With the default midnight start, 23:59 and 00:00 are different days.
    let (from, to) = day::window(&china(), date(2026, 11, 21), day::MIDNIGHT);
    let summary = ledger.day_summary(from, to).unwrap();
    assert_eq!(summary.figures.paid.count, 3, "03:59, 04:00 and 23:59");
}

// ---------------------------------------------------------------------------------------------
// History pages and filters

#[test]
fn history_pages_newest_first_with_filters() {
    let mut ledger = Ledger::open_in_memory().unwrap();
    let (from, to) = day::window(&china(), date(2026, 11, 21), four());
    for i in 0..250_i64 {
        let no = format!("H{i:04}");
        let sale = Sale {
            no: &no,
            channel: if i % 2 == 0 {
                Channel::Alipay
            } else {
                Channel::Wechat
            },
            provider: if i % 5 == 0 { "backup" } else { "main" },
            operator: if i % 3 == 0 { "B02" } else { "A01" },
            amount: 100 + i,
            // Two orders share each minute, so ties are ordered too.
            created_at: from + (i / 2) * MINUTE,
        };
        let no = put(&mut ledger, &sale);
        if i % 4 == 0 {
            pay(&mut ledger, &no, None, sale.created_at + 1);
        }
        if i == 40 {
            move_to(
                &mut ledger,
                &no,
                ProviderState::Expired,
                sale.created_at + 2,
            );
        }
    }
    let all = HistoryFilter::default();
    assert_eq!(ledger.history_count(from, to, &all).unwrap(), 250);
    let mut seen = Vec::new();
    for page in 0..3 {
        let rows = ledger
            .history_page(from, to, &all, page * 100, 100)
            .unwrap();
        assert_eq!(rows.len(), [100, 100, 50][page]);
        seen.extend(rows.into_iter().map(|o| o.order_no.to_string()));
    }
    let newest_first: Vec<String> = (0..250).rev().map(|i| format!("H{i:04}")).collect();
    assert_eq!(seen, newest_first);
    assert!(
        ledger
            .history_page(from, to, &all, 250, 100)
            .unwrap()
            .is_empty()
    );

    let filter = HistoryFilter {
        status: Some(PaymentStatus::Paid),
        channel: Some(Channel::Alipay),
        provider_id: Some("main".into()),
        operator: Some("A01".into()),
        flagged_only: false,
    };
    let expected: Vec<String> = (0..250_i64)
        .rev()
        .filter(|i| i % 4 == 0 && i % 2 == 0 && i % 5 != 0 && i % 3 != 0)
        .map(|i| format!("H{i:04}"))
        .collect();
    assert_eq!(
        ledger.history_count(from, to, &filter).unwrap(),
        expected.len()
    );
    let rows = ledger.history_page(from, to, &filter, 0, 1000).unwrap();
    assert_eq!(
        rows.iter()
            .map(|o| o.order_no.to_string())
            .collect::<Vec<_>>(),
        expected
    );
    // Only the late payment is flagged.
    let flagged = HistoryFilter {
        flagged_only: true,
        ..HistoryFilter::default()
    };
    assert_eq!(ledger.history_count(from, to, &flagged).unwrap(), 0);
    let choices = ledger.history_choices(from, to).unwrap();
    assert_eq!(choices.providers, vec!["backup", "main"]);
    assert_eq!(choices.operators, vec!["A01", "B02"]);
    let (next_from, next_to) = day::window(&china(), date(2026, 11, 22), four());
    assert_eq!(ledger.history_count(next_from, next_to, &all).unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// Day closes

fn sale<'a>(no: &'a str, operator: &'a str, amount: i64, created_at: i64) -> Sale<'a> {
    Sale {
        no,
        channel: Channel::Alipay,
        provider: "main",
        operator,
        amount,
        created_at,
    }
}

#[test]
fn two_closes_in_one_day_are_disjoint_and_count_every_payment_once() {
    let mut ledger = Ledger::open_in_memory().unwrap();
    let d = |h, m| at(2026, 11, 21, h, m);
    // Before the first close.
    paid_sale(&mut ledger, &sale("P1", "A01", 1000, d(9, 0)), d(9, 1));
    let late = put(&mut ledger, &sale("LATE", "A01", 2000, d(11, 58)));
    move_to(&mut ledger, &late, ProviderState::Expired, d(11, 59));
    let straddle = put(&mut ledger, &sale("STRADDLE", "A01", 3000, d(11, 59)));
    move_to(&mut ledger, &straddle, ProviderState::Pending, d(11, 59));
    let gone = put(&mut ledger, &sale("GONE", "A01", 50, d(10, 0)));
    move_to(&mut ledger, &gone, ProviderState::Cancelled, d(10, 1));

    let first = ledger.record_close("A01", d(12, 0)).unwrap();
    assert_eq!(first.number, 1);
    assert_eq!((first.from_ms, first.to_ms), (0, d(12, 0)));
    assert_eq!(first.closed_at, d(12, 0));
    assert_eq!(first.figures.paid.count, 1);
    assert_eq!(first.figures.paid.total, Fen(1000));
    assert_eq!(first.figures.orders, 4);
    assert_eq!(
        (
            first.figures.unpaid,
            first.figures.expired,
            first.figures.cancelled
        ),
        (1, 1, 1)
    );

    // After the first close: the order created before it is paid, the late one too.
    pay(&mut ledger, &straddle, None, d(12, 30));
    pay(&mut ledger, &late, None, d(12, 31));
    paid_sale(&mut ledger, &sale("P2", "B02", 4000, d(15, 0)), d(15, 1));
    // A payment whose answer was timed before the first close but recorded after it lands
    // in the next close instead of in none.
    let raced = put(&mut ledger, &sale("RACED", "B02", 700, d(11, 0)));
    pay(&mut ledger, &raced, None, d(11, 59));
    assert_eq!(
        ledger.get(&raced).unwrap().unwrap().paid_at,
        Some(d(12, 0)),
        "paid_at is never inside a closed window"
    );
    let open = put(&mut ledger, &sale("OPEN", "B02", 10, d(19, 0)));

    let second = ledger.record_close("B02", d(20, 0)).unwrap();
    assert_eq!(second.number, 2);
    assert_eq!(
        second.from_ms, first.to_ms,
        "a close starts where the last ended"
    );
    assert_eq!(second.to_ms, d(20, 0));
    assert_eq!(second.operator, "B02");
    assert_eq!(second.figures.paid.count, 4);
    assert_eq!(second.figures.paid.total, Fen(3000 + 2000 + 4000 + 700));
    assert_eq!(
        second
            .figures
            .flagged
            .iter()
            .map(|o| o.order_no.as_str())
            .collect::<Vec<_>>(),
        vec!["LATE"]
    );
    assert_eq!(second.figures.unpaid, 1, "OPEN");
    assert_eq!(
        second.figures.orders, 3,
        "P2, RACED (clamped to 12:00), OPEN"
    );

    // Every payment in the ledger falls in exactly one close.
    let closes = ledger.list_closes().unwrap();
    assert_eq!(
        closes.iter().map(|c| c.number).collect::<Vec<_>>(),
        vec![2, 1]
    );
    let all_paid: Vec<_> = ledger
        .orders_between(0, i64::MAX)
        .unwrap()
        .into_iter()
        .filter(|o| o.status == PaymentStatus::Paid)
        .collect();
    for order in &all_paid {
        let paid_at = order.paid_at.unwrap();
        let holders = closes
            .iter()
            .filter(|c| c.from_ms <= paid_at && paid_at < c.to_ms)
            .count();
        assert_eq!(holders, 1, "{} is in {holders} closes", order.order_no);
    }
    let sum: i64 = closes.iter().map(|c| c.figures.paid.total.0).sum();
    let paid_sum: i64 = all_paid.iter().map(|o| o.paid.unwrap().0).sum();
    assert_eq!(sum, paid_sum);
    assert_eq!(
        closes.iter().map(|c| c.figures.paid.count).sum::<i64>(),
        i64::try_from(all_paid.len()).unwrap()
    );

    // A close reopened later shows what was handed over, though its orders moved on.
    move_to(&mut ledger, &open, ProviderState::Expired, d(21, 0));
    assert_eq!(ledger.close(1).unwrap().unwrap(), first);
    assert_eq!(ledger.close(2).unwrap().unwrap(), second);
    assert_eq!(ledger.close(3).unwrap(), None);

    // The orders of a close: paid in it or created in it.
    let nos = |n| -> Vec<String> {
        let mut v: Vec<String> = ledger
            .close_orders(n)
            .unwrap()
            .into_iter()
            .map(|o| o.order_no.to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(nos(1), vec!["GONE", "LATE", "P1", "STRADDLE"]);
    assert_eq!(nos(2), vec!["LATE", "OPEN", "P2", "RACED", "STRADDLE"]);
    assert!(matches!(
        ledger.close_orders(9),
        Err(LedgerError::NotFound(_))
    ));

    // A third close right away covers an empty window; one in the past is refused.
    let third = ledger.record_close("A01", d(20, 0)).unwrap();
    assert_eq!((third.from_ms, third.to_ms), (d(20, 0), d(20, 0)));
    assert_eq!(third.figures.paid.count, 0);
    match ledger.record_close("A01", d(19, 0)) {
        Err(LedgerError::ClockBehindLastClose { number: 3, .. }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(ledger.list_closes().unwrap().len(), 3);
    // The preview is what a close would record, and records nothing.
    let preview = ledger.preview_close("A01", d(22, 0)).unwrap();
    assert_eq!((preview.number, preview.from_ms), (4, d(20, 0)));
    assert_eq!(ledger.list_closes().unwrap().len(), 3);
}

#[test]
fn closes_cannot_be_changed_or_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    let mut ledger = Ledger::open(&path).unwrap();
    paid_sale(&mut ledger, &sale("P1", "A01", 1234, 1_000), 2_000);
    let close = ledger.record_close("A01", 10_000).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    for sql in [
        "UPDATE closes SET to_ms = 5000",
        "UPDATE closes SET summary = '{}'",
        "UPDATE closes SET operator = 'X'",
        "DELETE FROM closes",
    ] {
        let err = raw.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("close"), "{sql}: {err}");
    }
    // A second close can only follow the first, never overlap it.
    assert!(
        raw.execute(
            "INSERT INTO closes (id, closed_at, from_ms, to_ms, summary) VALUES (2, 1, 5, 1, '{}')",
            []
        )
        .is_err(),
        "a window that ends before it starts is refused"
    );
    drop(raw);
    let again = Ledger::open(&path).unwrap();
    assert_eq!(again.close(1).unwrap().unwrap(), close);
}

// ---------------------------------------------------------------------------------------------
// Config

#[test]
fn day_start_in_the_config() {
    let provider = "[[provider]]\nid = \"main\"\nkind = \"ispay\"\nuserid = \"1\"\nkey = \"k\"\n";
    let config = Config::parse(provider).unwrap();
    assert_eq!(config.day_start, day::MIDNIGHT);
    let config = Config::parse(&format!("day_start = \"04:00\"\n{provider}")).unwrap();
    assert_eq!(config.day_start, four());
    for bad in ["\"4\"", "\"25:00\"", "\"04:00:00\"", "4"] {
        let err = Config::parse(&format!("day_start = {bad}\n{provider}")).unwrap_err();
        assert!(err.contains("`day_start`"), "{bad}: {err}");
        assert!(
            err.contains("HH:MM") || err.contains("string"),
            "{bad}: {err}"
        );
    }
}
