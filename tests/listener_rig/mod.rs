//! A till service with one igepay account and its callback listener on loopback, for the
//! hostile-client and load tests. igepay suits them: its create is a form for the payer's
//! browser and it has no status query, so an order is paid by its signed notify and by
//! nothing else, and no request ever leaves the machine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use md5::{Digest as _, Md5};
use qrtill::ledger::Ledger;
use qrtill::model::{Channel, Fen, OrderNo};
use qrtill::providers::igepay::Igepay;
use qrtill::secret::Secret;
use qrtill::service::listener::{self, Limits, Listener};
use qrtill::service::{self, ChargeRequest, EventReceiver, ServiceConfig, ServiceHandle};

/// The account's id in the till (the listener's path is `/notify/{PROVIDER}`).
pub const PROVIDER: &str = "till";
/// The merchant token the notifies are signed with.
pub const TOKEN: &str = "listener-test-token";

pub struct Rig {
    pub service: ServiceHandle,
    pub addr: SocketAddr,
    pub ledger_path: PathBuf,
    _events: EventReceiver,
    _listener: Listener,
    _dir: tempfile::TempDir,
}

pub async fn start(limits: Limits) -> Rig {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger_path = dir.path().join("ledger.sqlite3");
    let ledger = Ledger::open(&ledger_path).expect("ledger");
    let socket = listener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("listener socket");
    let addr = socket.local_addr().expect("addr");
    // Nothing listens on port 9: no request may leave, and none does for igepay.
    let account = Igepay::new(PROVIDER, "http://127.0.0.1:9", "20001", Secret::new(TOKEN));
    let config = ServiceConfig {
        providers: vec![Arc::new(account)],
        order_timeout: Duration::from_secs(600),
        late_grace: Duration::from_secs(60),
        demo: false,
        sandbox_control: None,
        notify_base: format!("http://{addr}"),
        public_url: None,
        day_start: qrtill::day::MIDNIGHT,
    };
    let (service, events) = service::start(
        tokio::runtime::Handle::current(),
        ledger,
        config,
        Arc::new(|| {}),
    )
    .expect("service");
    let listener = listener::serve_with(socket, service.clone(), limits).expect("listener");
    Rig {
        service,
        addr,
        ledger_path,
        _events: events,
        _listener: listener,
        _dir: dir,
    }
}

impl Rig {
    /// Starts `count` sales of `fen(i)` fen and waits until all are open in the ledger.
    pub async fn open_orders(
        &self,
        count: usize,
        fen: impl Fn(usize) -> i64,
    ) -> Vec<(OrderNo, Fen)> {
        let mut sales = Vec::with_capacity(count);
        for i in 0..count {
            let amount = Fen(fen(i));
            let order_no = self.service.charge(ChargeRequest {
                amount,
                channel: Channel::Alipay,
                provider_id: PROVIDER.into(),
                subject: String::new(),
                operator: "A01".into(),
            });
            sales.push((order_no, amount));
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let open = self
                .service
                .with_ledger(|ledger| ledger.open_orders())
                .await
                .expect("ledger");
            if open.len() == count && open.iter().all(|row| row.status.as_str() == "pending") {
                return sales;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {count} orders opened",
                open.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many `paid` events each order has, and how many events there are in all.
    pub fn ledger_counts(&self) -> (HashMap<String, usize>, usize) {
        let conn = rusqlite::Connection::open(&self.ledger_path).expect("ledger file");
        let mut stmt = conn
            .prepare(
                "SELECT o.order_no, COUNT(*) FROM order_events e JOIN orders o ON o.id = e.order_id \
                 WHERE e.to_status = 'paid' GROUP BY o.order_no",
            )
            .expect("query");
        let paid = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .expect("rows")
            .map(|row| {
                let (order_no, count) = row.expect("row");
                (order_no, usize::try_from(count).expect("count"))
            })
            .collect();
        let all: i64 = conn
            .query_row("SELECT COUNT(*) FROM order_events", [], |row| row.get(0))
            .expect("count");
        (paid, usize::try_from(all).expect("count"))
    }

    pub fn notify_url(&self) -> String {
        format!("http://{}/notify/{PROVIDER}", self.addr)
    }
}

/// Sends each `(tag, body)` to `url` as a form-encoded notify, `in_flight` at a time (each
/// sender sends its next when its last is answered); every answer, with its tag, status and
/// text, in no particular order.
#[allow(
    dead_code,
    reason = "the hostile-client tests write their own raw requests"
)]
pub async fn send_notifies<T: Send + 'static>(
    client: &reqwest::Client,
    url: &str,
    notifies: Vec<(T, String)>,
    in_flight: usize,
) -> Vec<(T, u16, String)> {
    let queue = Arc::new(std::sync::Mutex::new(notifies));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (queue, client, url) = (queue.clone(), client.clone(), url.to_string());
        senders.spawn(async move {
            let mut answers = Vec::new();
            loop {
                let Some((tag, body)) = queue.lock().expect("queue").pop() else {
                    return answers;
                };
                let answer = client
                    .post(&url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .expect("the listener answers");
                let status = answer.status().as_u16();
                answers.push((tag, status, answer.text().await.expect("answer text")));
            }
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = senders.join_next().await {
        answers.extend(done.expect("sender"));
    }
    answers
}

/// igepay's paid notify as a form body: `sign` is `md5(order_id + price + token)` (seed 001).
pub fn notify_body(order_no: &str, price: &str, token: &str) -> String {
    let mut hasher = Md5::new();
    hasher.update(format!("{order_no}{price}{token}").as_bytes());
    let sign: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("order_id", order_no)
        .append_pair("price", price)
        .append_pair("code", "0000")
        .append_pair("sign", &sign)
        .finish()
}
