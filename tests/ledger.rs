//! The ledger on its own: schema and migrations, the order row written before anything else,
//! status changes as single transactions with their event rows, paid never going back, and
//! the append-only event log enforced by the database itself.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // Tests fail loudly.

use qrtill::ledger::{Ledger, LedgerError, NewOrder, Update};
use qrtill::model::{Channel, Fen, OrderNo, PaymentStatus, ProviderState};

fn order(no: &str, amount: i64) -> NewOrder {
    NewOrder {
        order_no: OrderNo::new(no).expect("valid order number"),
        provider_id: "main".into(),
        provider_kind: "ispay".into(),
        channel: Channel::Alipay,
        amount: Fen(amount),
        subject: String::new(),
        operator: "A01".into(),
        demo: false,
        created_at: 1_000,
        expires_at: 301_000,
    }
}

fn report(state: ProviderState, at: i64) -> Update {
    Update::new("query", state, "test", at)
}

fn file_ledger() -> (tempfile::TempDir, std::path::PathBuf, Ledger) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.sqlite3");
    let ledger = Ledger::open(&path).expect("open ledger");
    (dir, path, ledger)
}

#[test]
fn insert_is_committed_and_visible_to_another_connection() {
    let (_dir, path, mut ledger) = file_ledger();
    let row = ledger.insert_order(&order("A1", 1230)).expect("insert");
    assert_eq!(row.status, PaymentStatus::Creating);
    assert_eq!(row.amount, Fen(1230));
    assert_eq!(row.operator, "A01");
    // A second connection (as after a crash and restart) sees the committed row.
    let other = Ledger::open(&path).expect("second connection");
    let seen = other.get(&row.order_no).expect("read").expect("row exists");
    assert_eq!(seen.status, PaymentStatus::Creating);
    let events = other.events(&row.order_no).expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "created");
}

#[test]
fn duplicate_order_number_is_refused() {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    ledger.insert_order(&order("A1", 100)).expect("first");
    match ledger.insert_order(&order("A1", 200)) {
        Err(LedgerError::Duplicate(no)) => assert_eq!(no, "A1"),
        other => panic!("expected Duplicate, got {other:?}"),
    }
}

#[test]
fn migrations_run_once_and_reopen_cleanly() {
    let (_dir, path, ledger) = file_ledger();
    assert_eq!(ledger.schema_version().expect("version"), 2);
    drop(ledger);
    let again = Ledger::open(&path).expect("reopen");
    assert_eq!(again.schema_version().expect("version"), 2);
    assert!(again.integrity_ok().expect("integrity"));
}

#[test]
fn a_status_change_and_its_event_come_together() {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    let no = ledger
        .insert_order(&order("A1", 1230))
        .expect("insert")
        .order_no;
    let mut update = report(ProviderState::Pending, 2_000);
    update.raw = Some(r#"{"success":true,"state":5}"#.into());
    update.provider_order_id = Some("4248".into());
    let applied = ledger.apply(&no, &update).expect("apply");
    assert_eq!(applied.changed_from, Some(PaymentStatus::Creating));
    assert_eq!(applied.order.status, PaymentStatus::Pending);
    assert_eq!(applied.order.provider_order_id.as_deref(), Some("4248"));
    let events = ledger.events(&no).expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].from.as_deref(), Some("creating"));
    assert_eq!(events[1].to.as_deref(), Some("pending"));
    assert_eq!(
        events[1].raw.as_deref(),
        Some(r#"{"success":true,"state":5}"#)
    );
}

#[test]
fn a_failed_event_write_rolls_the_status_back() {
    let (_dir, path, mut ledger) = file_ledger();
    let no = ledger
        .insert_order(&order("A1", 1230))
        .expect("insert")
        .order_no;
    // Make every later event insert fail, from another connection.
    let sabotage = rusqlite::Connection::open(&path).expect("raw connection");
    sabotage
        .execute_batch(
            "CREATE TRIGGER fail_events BEFORE INSERT ON order_events WHEN NEW.kind = 'query' \
             BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
        )
        .expect("trigger");
    let result = ledger.apply(&no, &report(ProviderState::Paid, 2_000));
    assert!(result.is_err(), "the apply must fail");
    let row = ledger.get(&no).expect("read").expect("row");
    assert_eq!(
        row.status,
        PaymentStatus::Creating,
        "status must roll back with its event"
    );
    assert_eq!(row.paid, None);
    assert_eq!(ledger.events(&no).expect("events").len(), 1);
}

#[test]
fn paid_never_goes_back() {
    let (_dir, path, mut ledger) = file_ledger();
    let no = ledger
        .insert_order(&order("A1", 1230))
        .expect("insert")
        .order_no;
    ledger
        .apply(&no, &report(ProviderState::Paid, 2_000))
        .expect("paid");
    for state in [
        ProviderState::Pending,
        ProviderState::Confirming,
        ProviderState::Expired,
        ProviderState::Cancelled,
        ProviderState::Failed,
        ProviderState::Unknown("42".into()),
    ] {
        let applied = ledger
            .apply(&no, &report(state.clone(), 3_000))
            .expect("apply");
        assert_eq!(
            applied.changed_from, None,
            "{state:?} must not move a paid order"
        );
        assert_eq!(applied.order.status, PaymentStatus::Paid);
    }
    // Even raw SQL cannot un-pay an order or rewrite its history.
    let raw = rusqlite::Connection::open(&path).expect("raw connection");
    assert!(
        raw.execute(
            "UPDATE orders SET status = 'pending' WHERE order_no = 'A1'",
            []
        )
        .is_err()
    );
    assert!(
        raw.execute("UPDATE order_events SET detail = 'x'", [])
            .is_err()
    );
    assert!(raw.execute("DELETE FROM order_events", []).is_err());
    assert!(raw.execute("DELETE FROM orders", []).is_err());
}

#[test]
fn unknown_codes_leave_the_order_alone_but_are_logged() {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    let no = ledger
        .insert_order(&order("A1", 1230))
        .expect("insert")
        .order_no;
    ledger
        .apply(&no, &report(ProviderState::Pending, 2_000))
        .expect("pending");
    let applied = ledger
        .apply(&no, &report(ProviderState::Unknown("77".into()), 3_000))
        .expect("unknown");
    assert_eq!(applied.changed_from, None);
    assert_eq!(applied.order.status, PaymentStatus::Pending);
    let events = ledger.events(&no).expect("events");
    let last = events.last().expect("an event");
    assert!(
        last.detail.contains("unknown provider code 77"),
        "{}",
        last.detail
    );
}

#[test]
fn late_and_mismatched_payments_are_flagged() {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    let late = ledger
        .insert_order(&order("LATE", 1000))
        .expect("insert")
        .order_no;
    ledger
        .apply(&late, &report(ProviderState::Expired, 2_000))
        .expect("expired");
    let applied = ledger
        .apply(&late, &report(ProviderState::Paid, 3_000))
        .expect("paid");
    assert_eq!(applied.order.status, PaymentStatus::Paid);
    assert!(applied.order.late_paid);
    assert!(!applied.order.amount_mismatch);
    assert_eq!(applied.order.paid, Some(Fen(1000)));

    let short = ledger
        .insert_order(&order("SHORT", 1000))
        .expect("insert")
        .order_no;
    let mut paid = report(ProviderState::Paid, 3_000);
    paid.paid_amount = Some(Fen(990));
    let applied = ledger.apply(&short, &paid).expect("paid");
    assert!(applied.order.amount_mismatch);
    assert!(!applied.order.late_paid);
    assert_eq!(applied.order.paid, Some(Fen(990)));

    // The provider's adjusted amount is what the customer owes.
    let nudged = ledger
        .insert_order(&order("NUDGED", 1000))
        .expect("insert")
        .order_no;
    let mut created = report(ProviderState::Pending, 2_000);
    created.payable = Some(Fen(1001));
    ledger.apply(&nudged, &created).expect("pending");
    let mut paid = report(ProviderState::Paid, 3_000);
    paid.paid_amount = Some(Fen(1001));
    let applied = ledger.apply(&nudged, &paid).expect("paid");
    assert!(!applied.order.amount_mismatch);
    assert_eq!(applied.order.payable_or_amount(), Fen(1001));
}

#[test]
fn totals_and_open_orders() {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    for (no, amount) in [("P1", 100), ("P2", 250), ("X1", 999), ("O1", 5)] {
        ledger.insert_order(&order(no, amount)).expect("insert");
    }
    for no in ["P1", "P2"] {
        let no = OrderNo::new(no).expect("no");
        ledger
            .apply(&no, &report(ProviderState::Paid, 2_000))
            .expect("paid");
    }
    let x1 = OrderNo::new("X1").expect("no");
    ledger
        .apply(&x1, &report(ProviderState::Expired, 2_000))
        .expect("expired");
    let totals = ledger.paid_totals(0, 10_000).expect("totals");
    assert_eq!((totals.count, totals.total), (2, Fen(350)));
    assert_eq!(ledger.paid_totals(5_000, 10_000).expect("totals").count, 0);
    let open: Vec<String> = ledger
        .open_orders()
        .expect("open")
        .into_iter()
        .map(|o| o.order_no.to_string())
        .collect();
    assert_eq!(open, vec!["O1".to_string()]);
    assert_eq!(ledger.orders_between(0, 10_000).expect("day").len(), 4);
}

#[test]
fn applying_to_an_unknown_order_is_an_error() {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    let no = OrderNo::new("NOPE").expect("no");
    assert!(matches!(
        ledger.apply(&no, &report(ProviderState::Paid, 1)),
        Err(LedgerError::NotFound(_))
    ));
}

#[test]
fn a_signed_paid_amount_corrects_an_assumed_one() {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    let no = ledger
        .insert_order(&order("A1", 1234))
        .expect("insert")
        .order_no;
    // A query said paid without naming what was paid: the order's amount is assumed.
    let applied = ledger
        .apply(&no, &report(ProviderState::Paid, 2_000))
        .expect("paid");
    assert_eq!(applied.order.paid, Some(Fen(1234)));
    // An unsigned amount changes nothing on a paid order.
    let mut unsigned = report(ProviderState::Paid, 3_000);
    unsigned.paid_amount = Some(Fen(1000));
    let applied = ledger.apply(&no, &unsigned).expect("unsigned");
    assert_eq!(applied.order.paid, Some(Fen(1234)));
    assert!(!applied.order.amount_mismatch);
    // The provider's signed notify says 12.33 was paid: recorded and flagged, still paid.
    let mut signed = report(ProviderState::Paid, 4_000);
    signed.paid_amount = Some(Fen(1233));
    signed.paid_amount_signed = true;
    let applied = ledger.apply(&no, &signed).expect("signed");
    assert_eq!(applied.changed_from, None);
    assert_eq!(applied.order.status, PaymentStatus::Paid);
    assert_eq!(applied.order.paid, Some(Fen(1233)));
    assert!(applied.order.amount_mismatch);
    let last = ledger.events(&no).expect("events").pop().expect("event");
    assert!(
        last.detail.contains("signed paid amount 12.33"),
        "{}",
        last.detail
    );
}
