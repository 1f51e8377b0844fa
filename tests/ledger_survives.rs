//! Scope: the ledger survives. One till per ledger (a second is refused with the other's
//! pid, while the review commands still read), the integrity check at start (a damaged file
//! is refused with words naming it and the backups), the daily backup through SQLite's online
//! backup API (complete, made once a day, the newest 14 kept), and a full disk or a locked
//! database reported as such: never a panic, and never an order sent to a provider when its
//! row could not be written.
//!
//! Why `quick_check` and not `integrity_check` at start: on a ledger of 300,000 orders and
//! 900,000 events (198 MB), `integrity_check` took 16 s and `quick_check` 5 s (a loaded
//! 2-core machine). Both read every page and record and check every constraint;
//! `quick_check` only skips matching each index entry to its row, which a damaged file
//! almost always also fails elsewhere, and the start of a till should not take a minute.

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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use qrtill::ledger::survive::{BACKUPS_KEPT, backup_path, backups_dir, daily_backup};
use qrtill::ledger::{Ledger, LedgerError, NewOrder};
use qrtill::model::{Channel, Fen, OrderNo};
use qrtill::sandbox::{Sandbox, SandboxOptions};
use qrtill::service::{self, ChargeRequest, Event, ServiceConfig};

use common::{Proc, run, start_budget};

fn new_order(no: &str) -> NewOrder {
    NewOrder {
        order_no: OrderNo::new(no).unwrap(),
        provider_id: "main".into(),
        provider_kind: "ispay".into(),
        channel: Channel::Alipay,
        amount: Fen(1234),
        subject: String::new(),
        operator: "kim".into(),
        demo: false,
        created_at: 1_700_000_000_000,
        expires_at: 1_700_000_300_000,
    }
}

fn day(text: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

#[test]
fn a_second_till_is_refused_and_readers_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    let mut first = Ledger::open_for_till(&path).unwrap();
    first.insert_order(&new_order("QT0001")).unwrap();
    match Ledger::open_for_till(&path) {
        Err(err @ LedgerError::InUse { .. }) => {
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            let pid = format!("pid {}", std::process::id());
            assert!(message.contains(&pid), "{message}");
        }
        Err(other) => panic!("expected InUse, got {other}"),
        Ok(_) => panic!("a second till opened the same ledger"),
    }
    // The review commands' way in takes no lock.
    let reader = Ledger::open(&path).unwrap();
    assert!(
        reader
            .get(&OrderNo::new("QT0001").unwrap())
            .unwrap()
            .is_some()
    );
    drop(first);
    // The claim ends with the till.
    Ledger::open_for_till(&path).unwrap();
}

#[test]
fn a_damaged_ledger_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    std::fs::write(&path, vec![0x5a_u8; 8192]).unwrap();
    let err = match Ledger::open_for_till(&path) {
        Err(err) => err,
        Ok(_) => panic!("a file of garbage opened as a ledger"),
    };
    assert!(matches!(err, LedgerError::Damaged { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&backups_dir(&path).display().to_string()),
        "{message}"
    );

    // A real ledger with a page overwritten in the middle.
    let path = dir.path().join("ledger2.sqlite3");
    {
        let mut ledger = Ledger::open(&path).unwrap();
        for n in 0..400 {
            ledger
                .insert_order(&new_order(&format!("QT{n:04}")))
                .unwrap();
        }
    }
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 40_000, "{}", bytes.len());
    for byte in &mut bytes[4096 * 3..4096 * 5] {
        *byte = 0xa5;
    }
    std::fs::write(&path, bytes).unwrap();
    match Ledger::open_for_till(&path) {
        Err(LedgerError::Damaged { path: named, .. }) => {
            assert_eq!(named, path.display().to_string());
        }
        Err(other) => panic!("expected Damaged, got {other}"),
        Ok(_) => panic!("a damaged ledger passed its check"),
    }
}

#[test]
fn daily_backups_are_complete_and_the_newest_14_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    let mut ledger = Ledger::open_for_till(&path).unwrap();
    ledger.insert_order(&new_order("QT0001")).unwrap();
    let backups = backups_dir(&path);
    assert_eq!(backups, dir.path().join("backups"));

    // Made while the till holds the ledger open, with the order still in its WAL.
    let made = daily_backup(&path, day("2026-03-01")).unwrap();
    assert_eq!(made, Some(backup_path(&path, day("2026-03-01"))));
    let file = backups.join("ledger-2026-03-01.sqlite3");
    assert!(file.exists());
    assert!(!backups.join("ledger-2026-03-01.sqlite3-wal").exists());
    let copy = Ledger::open(&file).unwrap();
    assert!(copy.integrity_ok().unwrap());
    let order = copy.get(&OrderNo::new("QT0001").unwrap()).unwrap().unwrap();
    assert_eq!(order.amount, Fen(1234));
    drop(copy);

    // Once a day: a later order does not replace that day's backup.
    ledger.insert_order(&new_order("QT0002")).unwrap();
    assert_eq!(daily_backup(&path, day("2026-03-01")).unwrap(), None);
    let copy = Ledger::open(&file).unwrap();
    assert!(
        copy.get(&OrderNo::new("QT0002").unwrap())
            .unwrap()
            .is_none()
    );
    drop(copy);

    // Twenty days later, only the newest 14 are left, and no other file is touched: not
    // the demo ledger's backup either.
    std::fs::write(backups.join("notes.txt"), "keep me").unwrap();
    let demo = dir.path().join("ledger-demo.sqlite3");
    drop(Ledger::open(&demo).unwrap());
    assert!(daily_backup(&demo, day("2026-03-01")).unwrap().is_some());
    for n in 2..=20 {
        let made = daily_backup(&path, day(&format!("2026-03-{n:02}"))).unwrap();
        assert!(made.is_some());
    }
    let mut names: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), BACKUPS_KEPT + 2, "{names:?}");
    assert_eq!(names[0], "ledger-2026-03-07.sqlite3", "{names:?}");
    assert_eq!(names[BACKUPS_KEPT - 1], "ledger-2026-03-20.sqlite3");
    assert_eq!(names[BACKUPS_KEPT], "ledger-demo-2026-03-01.sqlite3");
    assert_eq!(names[BACKUPS_KEPT + 1], "notes.txt");
    let newest = Ledger::open(&backups.join("ledger-2026-03-20.sqlite3")).unwrap();
    assert!(
        newest
            .get(&OrderNo::new("QT0002").unwrap())
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_full_disk_is_reported_and_nothing_is_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    let mut ledger = Ledger::open(&path).unwrap();
    ledger.insert_order(&new_order("QT0001")).unwrap();
    ledger.limit_size(ledger.page_count().unwrap()).unwrap();
    let mut refused = None;
    // Fill what is left of the last pages, then the next order has no room.
    for n in 2..2000 {
        match ledger.insert_order(&new_order(&format!("QT{n:04}"))) {
            Ok(_) => {}
            Err(err) => {
                refused = Some((n, err));
                break;
            }
        }
    }
    let (n, err) = refused.expect("the capped ledger filled up");
    assert!(matches!(err, LedgerError::DiskFull), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("disk") && message.contains("full"),
        "{message}"
    );
    let refused_no = OrderNo::new(&format!("QT{n:04}")).unwrap();
    assert!(ledger.get(&refused_no).unwrap().is_none());
    assert!(ledger.events(&refused_no).unwrap().is_empty());
    // Room again: the ledger goes on.
    ledger.limit_size(1_000_000).unwrap();
    ledger
        .insert_order(&new_order(&format!("QT{n:04}")))
        .unwrap();
    assert!(ledger.integrity_ok().unwrap());
}

#[test]
fn a_locked_database_is_reported_as_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    let mut ledger = Ledger::open(&path).unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // The ledger waits its busy timeout (5 s), then gives up with words for staff.
    let err = ledger.insert_order(&new_order("QT0001")).unwrap_err();
    assert!(matches!(err, LedgerError::Busy), "{err:?}");
    assert!(
        err.to_string().contains("locked by another program"),
        "{err}"
    );
    other.execute_batch("ROLLBACK").unwrap();
    ledger.insert_order(&new_order("QT0001")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_order_reaches_the_provider_when_its_row_cannot_be_written() {
    let sandbox = Sandbox::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SandboxOptions::default(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("ledger.sqlite3")).unwrap();
    // Not one page more than it has, filled until an order no longer fits: the sale's order
    // finds the disk full.
    ledger.limit_size(ledger.page_count().unwrap()).unwrap();
    for n in 0.. {
        match ledger.insert_order(&new_order(&format!("QF{n:04}"))) {
            Ok(_) => assert!(n < 10_000, "the capped ledger never filled"),
            Err(LedgerError::DiskFull) => break,
            Err(err) => panic!("{err:?}"),
        }
    }
    let config = ServiceConfig {
        providers: sandbox.demo_providers(),
        order_timeout: Duration::from_secs(60),
        late_grace: Duration::from_secs(60),
        demo: true,
        sandbox_control: Some(sandbox.control_url()),
        notify_base: "http://127.0.0.1:9".into(),
        public_url: None,
        day_start: qrtill::day::MIDNIGHT,
    };
    let (service, mut events) = service::start(
        tokio::runtime::Handle::current(),
        ledger,
        config,
        Arc::new(|| {}),
    )
    .unwrap();
    let order_no = service.charge(ChargeRequest {
        amount: Fen(1234),
        channel: Channel::Alipay,
        provider_id: "demo-ispay".into(),
        subject: String::new(),
        operator: "kim".into(),
    });
    let message = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.recv().await {
                Some(Event::ChargeFailed {
                    order_no: no,
                    message,
                }) if no == order_no => return message,
                Some(Event::Order(update)) if update.order.order_no == order_no => {
                    panic!("the order went on: {:?}", update.order.status)
                }
                Some(_) => {}
                None => panic!("the service stopped"),
            }
        }
    })
    .await
    .expect("the charge failed in time");
    assert!(
        message.contains("disk") && message.contains("full"),
        "{message}"
    );
    assert!(message.contains("nothing was charged"), "{message}");
    assert!(
        sandbox.orders().is_empty(),
        "the provider got an order the ledger does not have: {:?}",
        sandbox.orders()
    );
}

/// `qrtill charge` on a data folder a till already uses.
#[test]
fn a_second_till_process_is_told_who_holds_the_ledger() {
    start_budget();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Demo mode (no config file in the default place): the built-in sandbox, the demo ledger.
    let cmd = |args: &[&str]| {
        let mut cmd = common::qrtill(&[]);
        cmd.env("XDG_CONFIG_HOME", dir.path())
            .arg("--data-dir")
            .arg(&data)
            .args(args);
        cmd
    };
    let mut till = Proc::spawn(
        "the first till",
        cmd(&[
            "charge",
            "--amount",
            "1.00",
            "--channel",
            "alipay",
            "--json",
        ]),
    );
    let qr = till.event_of("qr", Duration::from_secs(20));
    let order_no = qr["order_no"].as_str().unwrap().to_string();

    let second = run(
        "a second till",
        cmd(&[
            "charge",
            "--amount",
            "2.00",
            "--channel",
            "alipay",
            "--json",
        ]),
    );
    assert_eq!(second.code, 1, "{}\n{}", second.stdout, second.stderr);
    let pid = format!("pid {}", till.child.id());
    let ledger = data.join("ledger-demo.sqlite3").display().to_string();
    assert!(
        second.stderr.contains("in use by another qrtill")
            && second.stderr.contains(&pid)
            && second.stderr.contains(&ledger),
        "{}",
        second.stderr
    );

    // The review commands still read the ledger the till holds.
    let status = run("qrtill status", cmd(&["status", &order_no, "--json"]));
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains(&order_no), "{}", status.stdout);
    drop(till);
}
