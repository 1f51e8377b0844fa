//! Provider health as the service reports it ([`Event::Health`]): failures in a row counted
//! and reset by the next valid answer, and a provider's refusal of the merchant's key told in
//! plain words, against the sandbox (faults injected through its control API, and accounts
//! configured with a wrong key). Then the till's status bar, driven headless through
//! egui_kittest: the failure in plain words with the key that switches the next sale to
//! another account; F6 does, and the next sale goes through that account.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // Tests fail loudly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod till_window;

use egui::Key;
use egui_kittest::kittest::Queryable as _;
use qrtill::config::Config;
use qrtill::ledger::Ledger;
use qrtill::model::{Channel, Fen, OrderNo, PaymentStatus};
use qrtill::providers::Provider;
use qrtill::providers::health::FailureKind;
use qrtill::sandbox::{self, Sandbox, SandboxOptions};
use qrtill::service::{
    self, ChargeRequest, Event, EventReceiver, ProviderHealth, ServiceConfig, ServiceHandle,
};

const S: fn(u64) -> Duration = Duration::from_secs;

struct Rig {
    service: ServiceHandle,
    events: EventReceiver,
    sandbox: Sandbox,
    _dir: tempfile::TempDir,
}

/// The sandbox's gatepay and ispay accounts configured with a wrong app secret / merchant
/// key, as `bad-gatepay` and `bad-ispay`.
fn wrong_key_accounts(sandbox: &Sandbox) -> Vec<Arc<dyn Provider>> {
    let text = format!(
        "{}\n{}",
        sandbox::gatepay::demo_config(&sandbox.url_for("gatepay"))
            .replace(sandbox::gatepay::DEMO_APPSECRET, "not-the-app-secret")
            .replace("demo-gatepay", "bad-gatepay"),
        sandbox::ispay::demo_config(&sandbox.url_for("ispay"))
            .replace(sandbox::ispay::DEMO_KEY, "not-the-merchant-key")
            .replace("demo-ispay", "bad-ispay"),
    );
    Config::parse(&text).expect("config").providers
}

/// The service over `providers` of `sandbox`, with a fresh ledger in `dir`.
fn start_service(
    sandbox: &Sandbox,
    providers: Vec<Arc<dyn Provider>>,
    dir: &tempfile::TempDir,
) -> (ServiceHandle, EventReceiver) {
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite3")).expect("ledger");
    let config = ServiceConfig {
        providers,
        order_timeout: S(300),
        late_grace: S(60),
        demo: true,
        sandbox_control: Some(sandbox.control_url()),
        notify_base: "http://127.0.0.1:9".into(),
        public_url: None,
        day_start: qrtill::day::MIDNIGHT,
    };
    service::start(
        tokio::runtime::Handle::current(),
        ledger,
        config,
        Arc::new(|| {}),
    )
    .expect("service")
}

async fn start_sandbox() -> Sandbox {
    Sandbox::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SandboxOptions::default(),
    )
    .await
    .expect("sandbox")
}

async fn rig() -> Rig {
    let sandbox = start_sandbox().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut providers = sandbox.demo_providers();
    providers.extend(wrong_key_accounts(&sandbox));
    let (service, events) = start_service(&sandbox, providers, &dir);
    Rig {
        service,
        events,
        sandbox,
        _dir: dir,
    }
}

fn sale(amount: i64, provider: &str) -> ChargeRequest {
    ChargeRequest {
        amount: Fen(amount),
        channel: Channel::Alipay,
        provider_id: provider.into(),
        subject: "test".into(),
        operator: "A01".into(),
    }
}

impl Rig {
    async fn control(&self, path: &str) {
        let url = format!("{}{path}", self.sandbox.control_url());
        let answer = reqwest::Client::new()
            .post(&url)
            .send()
            .await
            .expect("control API");
        assert!(answer.status().is_success(), "{url}: {}", answer.status());
    }

    /// Waits for a health event of `provider` that satisfies `done`; returns it and every
    /// health of that provider seen on the way.
    async fn health(
        &mut self,
        provider: &str,
        within: Duration,
        done: impl Fn(&ProviderHealth) -> bool,
    ) -> (ProviderHealth, Vec<ProviderHealth>) {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(Event::Health {
                    provider_id,
                    health,
                })) if provider_id == provider => {
                    seen.push(health.clone());
                    if done(&health) {
                        return (health, seen);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => panic!("service stopped"),
                Err(_) => panic!("{provider}: no such health within {within:?}; saw {seen:?}"),
            }
        }
    }

    async fn order_status(&self, order_no: &OrderNo) -> Option<PaymentStatus> {
        let key = order_no.clone();
        self.service
            .with_ledger(move |l| l.get(&key))
            .await
            .expect("ledger")
            .map(|o| o.status)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_server_errors_count_three_then_an_answer_resets() {
    let mut rig = rig().await;
    let no = rig.service.charge(sale(1230, "demo-ispay"));
    // The create's valid answer sets the time, with no failure.
    let (created, _) = rig
        .health("demo-ispay", S(10), |h| h.last_success_ms.is_some())
        .await;
    assert_eq!(created.consecutive_failures, 0);
    assert_eq!(created.last_failure, None);
    // The next three answers are a gateway's HTTP 500.
    rig.control("/faults/ispay?fault=status&code=500&times=3")
        .await;
    let (failing, seen) = rig
        .health("demo-ispay", S(20), |h| h.consecutive_failures == 3)
        .await;
    let counts: Vec<u32> = seen
        .iter()
        .map(|h| h.consecutive_failures)
        .filter(|n| *n > 0)
        .collect();
    assert_eq!(counts, [1, 2, 3], "one event per failure: {seen:?}");
    let failure = failing.last_failure.clone().expect("the failure");
    assert_eq!(failure.kind, FailureKind::ProviderDown);
    assert!(failure.detail.contains("500"), "{failure:?}");
    assert_eq!(failure.zh(), "支付平台无响应或服务器出错");
    // The time of the last success (the create, or the query right after it that fetched
    // the QR) is kept while failing.
    assert!(failing.last_success_ms >= created.last_success_ms);
    assert!(
        seen.iter()
            .filter(|h| h.consecutive_failures > 0)
            .all(|h| h.last_success_ms == failing.last_success_ms),
        "{seen:?}"
    );
    // The next query gets the provider's own answer: back to 0, with a later time.
    let (back, _) = rig
        .health("demo-ispay", S(20), |h| h.consecutive_failures == 0)
        .await;
    assert_eq!(back.last_failure, None);
    assert!(back.last_success_ms > failing.last_success_ms, "{back:?}");
    assert_eq!(rig.order_status(&no).await, Some(PaymentStatus::Pending));
    // The snapshot agrees with the events.
    let snapshot = rig.service.health();
    let now = snapshot
        .iter()
        .find(|(id, _)| id == "demo-ispay")
        .map(|(_, h)| h.clone())
        .expect("demo-ispay");
    assert_eq!(now.consecutive_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_said_in_plain_words() {
    let mut rig = rig().await;
    // ispay refuses a bad sign with its own words ("签名错误"): sorted by them.
    let no = rig.service.charge(sale(500, "bad-ispay"));
    let (health, _) = rig
        .health("bad-ispay", S(10), |h| h.consecutive_failures == 1)
        .await;
    let failure = health.last_failure.expect("the failure");
    assert_eq!(failure.kind, FailureKind::Authorization, "{failure:?}");
    assert!(
        failure.zh().contains("商户密钥或签名不对"),
        "{}",
        failure.zh()
    );
    assert!(failure.en().contains("merchant key"), "{}", failure.en());
    assert!(failure.detail.contains("签名错误"), "{failure:?}");
    assert!(
        !failure.detail.contains("not-the-merchant-key"),
        "no key in the words"
    );
    assert_eq!(health.last_success_ms, None);
    // The refusal is recorded on the order right after (health is told first).
    let deadline = Instant::now() + S(5);
    while rig.order_status(&no).await != Some(PaymentStatus::Failed) {
        assert!(Instant::now() < deadline, "the refused order never failed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // gatepay answers a wrong app secret with its documented code 104 (无效的签名).
    rig.service.charge(sale(600, "bad-gatepay"));
    let (health, _) = rig
        .health("bad-gatepay", S(10), |h| h.consecutive_failures == 1)
        .await;
    let failure = health.last_failure.expect("the failure");
    assert_eq!(failure.kind, FailureKind::Authorization, "{failure:?}");
    assert_eq!(failure.code.as_deref(), Some("104"));
    // A second refused sale counts two in a row.
    rig.service.charge(sale(700, "bad-gatepay"));
    rig.health("bad-gatepay", S(10), |h| h.consecutive_failures == 2)
        .await;
}

#[test]
fn a_refused_key_shows_on_the_status_bar_and_f6_switches_the_next_sale() {
    // The wrong-key gatepay first, then the sandbox's own ispay.
    let mut till = till_window::start(
        |sandbox| {
            let mut accounts = wrong_key_accounts(sandbox);
            accounts.truncate(1);
            accounts.push(sandbox.demo_providers()[0].clone());
            accounts
        },
        |state| state.operator = "A01".into(),
    );
    till.harness.step();
    assert_eq!(till.harness.state().state.provider_id, "bad-gatepay");
    till.typed("9.9");
    till.key(Key::Enter);
    till.typed("1");
    // gatepay refuses the sign (code 104): the bar says so in plain words and names the
    // account F6 switches to.
    till.wait_for("连续失败 1 次: 商户密钥或签名不对");
    till.harness.get_by_label_contains("F6 换到 ispay.in 就付");
    // The same in English.
    till.harness.state_mut().state.language = qrtill::config::Language::En;
    till.wait_for("1 failure in a row: merchant key or signature refused");
    till.harness
        .get_by_label_contains("F6 switch to ispay.in 就付");
    till.harness.state_mut().state.language = qrtill::config::Language::Zh;
    till.harness.step();
    // Esc leaves the failed sale (its amount kept for a retry), Esc again clears it.
    till.key(Key::Escape);
    till.key(Key::Escape);
    // F6: the next sale goes to ispay; its health has no failure to show yet.
    till.key(Key::F6);
    assert_eq!(till.harness.state().state.provider_id, "demo-ispay");
    assert!(
        till.harness
            .query_all_by_label_contains("连续失败")
            .next()
            .is_none(),
        "the new account has no failure"
    );
    till.typed("9.9");
    till.key(Key::Enter);
    till.typed("1");
    till.wait_for("请扫码支付");
    // Its create answered: the bar shows when.
    till.wait_for("最近成功");
    // F9 acts on the QR screen, which follows the create's answer.
    till.wait_for("等待顾客付款");
    till.key(Key::F9);
    till.wait_for("支付成功");
    let rows = till.orders();
    let paid: Vec<_> = rows
        .iter()
        .filter(|o| o.status == PaymentStatus::Paid)
        .collect();
    assert_eq!(paid.len(), 1, "{rows:?}");
    assert_eq!(paid[0].provider_id, "demo-ispay");
    assert!(
        rows.iter()
            .any(|o| o.provider_id == "bad-gatepay" && o.status == PaymentStatus::Failed),
        "{rows:?}"
    );
}
