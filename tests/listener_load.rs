//! A bounded load test of the callback listener, on loopback only: 1,500 open sales and 100
//! decoys, then 2,000 notifies sent 50 at a time — 1,500 genuine (one per sale), 250 repeats
//! of genuine ones and 250 forged (a wrong key, a price changed under a genuine signature,
//! or a genuine-looking notify for a decoy). Every real payment must be applied exactly
//! once (one `paid` event per sale), the decoys must stay open with no `paid` event, and the
//! whole run must end within its time limit by itself.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // Tests fail loudly.

mod listener_rig;

use std::time::{Duration, Instant};

use listener_rig::{TOKEN, notify_body};
use qrtill::model::PaymentStatus;
use qrtill::service::listener::Limits;

const SALES: usize = 1_500;
const DECOYS: usize = 100;
const REPEATS: usize = 250;
const FORGED: usize = 250;
const IN_FLIGHT: usize = 50;
/// The whole run, orders included, must finish within this.
const TIME_LIMIT: Duration = Duration::from_secs(180);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Genuine,
    Repeat,
    Forged,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_notifies_pay_each_sale_exactly_once() {
    tokio::time::timeout(TIME_LIMIT, run())
        .await
        .expect("the load test did not finish within its time limit");
}

async fn run() {
    let started = Instant::now();
    let rig = listener_rig::start(Limits::default()).await;
    // Amounts differ per order so that a notify for one order cannot pay another.
    let orders = rig
        .open_orders(SALES + DECOYS, |i| 100 + i64::try_from(i).unwrap())
        .await;
    let (sales, decoys) = orders.split_at(SALES);
    let opened = started.elapsed();

    let mut callbacks: Vec<(Kind, String)> = Vec::with_capacity(SALES + REPEATS + FORGED);
    for (order_no, amount) in sales {
        callbacks.push((
            Kind::Genuine,
            notify_body(order_no.as_str(), &amount.to_yuan(), TOKEN),
        ));
    }
    for _ in 0..REPEATS {
        let (order_no, amount) = &sales[fastrand::usize(..SALES)];
        callbacks.push((
            Kind::Repeat,
            notify_body(order_no.as_str(), &amount.to_yuan(), TOKEN),
        ));
    }
    for i in 0..FORGED {
        let body = match i % 3 {
            // Signed with a key that is not the merchant's.
            0 => {
                let (order_no, amount) = &decoys[fastrand::usize(..DECOYS)];
                notify_body(order_no.as_str(), &amount.to_yuan(), "guessed-token")
            }
            // A genuine signature for one price, sent with another.
            1 => {
                let (order_no, amount) = &decoys[fastrand::usize(..DECOYS)];
                notify_body(order_no.as_str(), &amount.to_yuan(), TOKEN)
                    .replace(&format!("price={}", amount.to_yuan()), "price=0.01")
            }
            // A sale's genuine notify with its signature's last digit changed.
            _ => {
                let (order_no, amount) = &sales[fastrand::usize(..SALES)];
                let body = notify_body(order_no.as_str(), &amount.to_yuan(), TOKEN);
                let last = if body.ends_with('0') { "1" } else { "0" };
                format!("{}{last}", &body[..body.len() - 1])
            }
        };
        callbacks.push((Kind::Forged, body));
    }
    fastrand::shuffle(&mut callbacks);
    assert_eq!(callbacks.len(), 2_000);

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let answers =
        listener_rig::send_notifies(&client, &rig.notify_url(), callbacks, IN_FLIGHT).await;
    let sent = started.elapsed() - opened;
    assert_eq!(answers.len(), 2_000);
    for (kind, status, text) in &answers {
        assert_eq!(*status, 200, "{kind:?}: {text}");
        let expected = if *kind == Kind::Forged {
            "fail"
        } else {
            "success"
        };
        assert_eq!(text, expected, "{kind:?}");
    }

    let (paid_events, _) = rig.ledger_counts();
    for (order_no, _) in sales {
        assert_eq!(
            paid_events.get(order_no.as_str()),
            Some(&1),
            "sale {order_no}"
        );
    }
    for (order_no, _) in decoys {
        assert_eq!(paid_events.get(order_no.as_str()), None, "decoy {order_no}");
    }
    assert_eq!(paid_events.len(), SALES);
    let open = rig
        .service
        .with_ledger(|ledger| ledger.open_orders())
        .await
        .unwrap();
    assert_eq!(open.len(), DECOYS, "only the decoys are still open");
    assert!(open.iter().all(|row| row.status == PaymentStatus::Pending));
    let totals = rig
        .service
        .with_ledger(|ledger| ledger.paid_totals(0, i64::MAX))
        .await
        .unwrap();
    let expected: i64 = sales.iter().map(|(_, amount)| amount.0).sum();
    println!(
        "{} orders opened in {opened:?}; 2,000 notifies answered in {sent:?}; {totals:?} (expected {expected} fen)",
        SALES + DECOYS
    );
    assert_eq!(totals.count, i64::try_from(SALES).unwrap());
    assert_eq!(
        totals.total.0, expected,
        "each sale counted once, at its own amount"
    );
    assert!(
        rig.service
            .with_ledger(|ledger| ledger.integrity_ok())
            .await
            .unwrap()
    );
}
