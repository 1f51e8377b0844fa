//! The history and closes screens driven headless through egui_kittest, by label and role:
//! open the history (F2), see today's orders, move a day back and find yesterday's, filter by
//! status, open an order's detail with its event log; on the closes screen (F3) close the day
//! behind its confirmation, see close no. 1 listed and export it as a CSV with a BOM.
//!
//! The ledger is seeded before the service starts, with orders created inside today's and
//! yesterday's business windows (day start 00:00, local time).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // Tests fail loudly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::Key;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use qrtill::app::TillApp;
use qrtill::app::state::TillState;
use qrtill::ledger::{Ledger, NewOrder, Update};
use qrtill::model::{Channel, Fen, OrderNo, ProviderState};
use qrtill::sandbox::{Sandbox, SandboxOptions};
use qrtill::service::{self, ServiceConfig};

struct Rig {
    _runtime: tokio::runtime::Runtime,
    harness: Harness<'static, TillApp>,
    exports: PathBuf,
    _dir: tempfile::TempDir,
}

/// The orders seeded: (order number, business day offset from today, paid?).
const SEEDED: [(&str, i64, bool); 4] = [
    ("T0000000000000000000001", 0, true),
    ("T0000000000000000000002", 0, false),
    ("Y0000000000000000000001", -1, true),
    ("Y0000000000000000000002", -1, false),
];

/// When an order `days` business days from today was created: today's a minute ago (or at
/// the day's start), an earlier day's at its noon.
fn created_at(days: i64) -> i64 {
    let now = chrono::Utc::now().timestamp_millis();
    let today = qrtill::day::business_date(&chrono::Local, now, qrtill::day::MIDNIGHT);
    let date = today + chrono::TimeDelta::days(days);
    let (from, to) = qrtill::day::window(&chrono::Local, date, qrtill::day::MIDNIGHT);
    if days == 0 {
        (now - 60_000).max(from)
    } else {
        from + (to - from) / 2
    }
}

fn seed(ledger: &mut Ledger, provider_id: &str) {
    for (number, days, paid) in SEEDED {
        let at = created_at(days);
        let order_no = OrderNo::new(number).unwrap();
        ledger
            .insert_order(&NewOrder {
                order_no: order_no.clone(),
                provider_id: provider_id.to_string(),
                provider_kind: "ispay".into(),
                channel: if paid {
                    Channel::Wechat
                } else {
                    Channel::Alipay
                },
                amount: Fen(1230),
                subject: String::new(),
                operator: "A01".into(),
                demo: true,
                created_at: at,
                expires_at: at + 300_000,
            })
            .unwrap();
        let (state, detail) = if paid {
            (ProviderState::Paid, "the provider says paid")
        } else {
            (ProviderState::Expired, "the QR expired")
        };
        let mut update = Update::new("query", state, detail, at + 1_000);
        update.raw = Some(format!("{{\"code\":1,\"order\":\"{number}\"}}"));
        ledger.apply(&order_no, &update).unwrap();
    }
}

fn rig() -> Rig {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ledger = Ledger::open(&dir.path().join("ledger.sqlite3")).expect("ledger");
    let (service, events, provider) = runtime.block_on(async {
        let sandbox = Sandbox::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SandboxOptions::default(),
        )
        .await
        .expect("sandbox");
        let providers = sandbox.demo_providers();
        let provider = providers[0].clone();
        seed(&mut ledger, provider.id());
        let config = ServiceConfig {
            providers,
            order_timeout: Duration::from_secs(300),
            late_grace: Duration::from_secs(60),
            demo: true,
            sandbox_control: Some(sandbox.control_url()),
            notify_base: "http://127.0.0.1:9".into(),
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
        std::mem::forget(sandbox);
        (service, events, provider)
    });
    let mut state = TillState::new(
        provider.id(),
        provider.display_name(),
        provider.channels().to_vec(),
        true,
    );
    state.demo = true;
    state.operator = "A01".into();
    let exports = dir.path().join("exports");
    state.history.export_dir = exports.clone();
    let harness = Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        .build_eframe(move |cc| TillApp::new(&cc.egui_ctx, state, service, events));
    Rig {
        _runtime: runtime,
        harness,
        exports,
        _dir: dir,
    }
}

impl Rig {
    /// Steps frames until `found` holds (the service answers on other threads, so this waits
    /// in real time, bounded).
    fn wait_until(&mut self, what: &str, found: impl Fn(&Harness<'static, TillApp>) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.harness.step();
            if found(&self.harness) {
                return;
            }
            assert!(Instant::now() < deadline, "{what} never happened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_for(&mut self, label: &str) {
        self.wait_until(&format!("`{label}` appearing"), |h| {
            h.query_all_by_label_contains(label).next().is_some()
        });
    }

    fn wait_gone(&mut self, label: &str) {
        self.wait_until(&format!("`{label}` leaving"), |h| {
            h.query_all_by_label_contains(label).next().is_none()
        });
    }

    fn key(&mut self, key: Key) {
        self.harness.key_press(key);
        self.harness.step();
        self.harness.step();
    }
}

#[test]
fn history_moves_a_day_back_and_finds_the_orders() {
    let mut rig = rig();
    rig.harness.step();
    rig.key(Key::F2);
    rig.wait_for("T0000000000000000000001");
    rig.wait_for("T0000000000000000000002");
    assert!(
        rig.harness
            .query_all_by_label_contains("Y0000000000000000000001")
            .next()
            .is_none(),
        "yesterday's orders are not today's"
    );
    rig.harness.get_by_label_contains("(今天)");
    rig.key(Key::ArrowLeft);
    rig.wait_for("Y0000000000000000000001");
    rig.wait_for("Y0000000000000000000002");
    rig.wait_gone("T0000000000000000000001");
    // The day summary of yesterday: one paid at ¥12.30, one expired.
    rig.wait_for("已付 1 笔 · ¥12.30");
    rig.harness.get_by_label_contains("过期 1");
    // Home goes back to today.
    rig.key(Key::Home);
    rig.wait_for("T0000000000000000000001");
}

#[test]
fn history_filters_by_status_and_shows_an_orders_event_log() {
    let mut rig = rig();
    rig.harness.step();
    rig.key(Key::F2);
    rig.wait_for("T0000000000000000000002");
    // Filter: status = expired.
    rig.harness.get_by_label("状态:");
    let combo = rig
        .harness
        .query_all_by_role(egui::accesskit::Role::ComboBox)
        .next()
        .expect("the status filter");
    combo.click();
    rig.harness.step();
    rig.harness.step();
    // The menu's entry, not the table's status cell of the same name.
    rig.harness
        .query_all_by_label("已过期")
        .find(|n| n.accesskit_node().role() == egui::accesskit::Role::Button)
        .expect("the menu entry")
        // A pointer click on a combo box's menu does not reach it under kittest; the
        // accessibility action is what a screen reader would do.
        .click_accesskit();
    rig.harness.step();
    // The expired order comes back alone under the filter.
    rig.wait_until("the filtered page", |h| {
        h.state().state.history.total == Some(1)
    });
    rig.wait_for("T0000000000000000000002");
    assert!(
        rig.harness
            .query_all_by_label_contains("T0000000000000000000001")
            .next()
            .is_none(),
        "the paid order is filtered out"
    );
    // Down selects the first row, Enter opens its detail with the event log.
    rig.key(Key::ArrowDown);
    rig.key(Key::Enter);
    rig.wait_for("事件记录");
    rig.wait_for("the QR expired");
    // The log is below the fields: scroll it into view (the scroll animates over frames).
    rig.harness
        .get_by_label_contains("平台原始应答")
        .scroll_to_me();
    for _ in 0..20 {
        rig.harness.step();
    }
    rig.harness.get_by_label_contains("平台原始应答").click();
    rig.harness.step();
    rig.wait_for("\"code\":1");
    // An expired order cannot be queried again.
    assert!(
        rig.harness
            .get_by_label_contains("再次查询")
            .accesskit_node()
            .is_disabled()
    );
    // Esc closes the detail, Esc again returns to the till.
    rig.key(Key::Escape);
    rig.wait_gone("事件记录");
    rig.key(Key::Escape);
    rig.wait_for("输入金额");
}

#[test]
fn closes_the_day_behind_a_confirmation_and_exports_the_close() {
    let mut rig = rig();
    rig.harness.step();
    rig.key(Key::F3);
    rig.wait_for("还没有交班记录");
    rig.key(Key::F8);
    rig.wait_for("确认交班日结: 第 1 号");
    // Both paid orders are in the first close (its window starts at the beginning).
    rig.harness.get_by_label_contains("已付 2 笔 · ¥24.60");
    rig.harness.get_by_label("确认交班 [Enter]").click();
    rig.harness.step();
    rig.wait_for("No.1 ");
    rig.wait_for("第 1 号交班");
    rig.key(Key::F7);
    rig.wait_for("已导出 4 笔订单到");
    let file = rig.exports.join("qrtill-close-1.csv");
    let bytes = std::fs::read(&file).expect("the export file");
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM first");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("Y0000000000000000000001"));
}

#[test]
fn the_history_is_not_opened_over_a_sale() {
    let mut rig = rig();
    rig.harness.step();
    rig.harness.event(egui::Event::Text("3".into()));
    rig.harness.step();
    rig.key(Key::Enter);
    rig.harness.event(egui::Event::Text("2".into()));
    rig.harness.step();
    rig.wait_for("请扫码支付");
    rig.key(Key::F2);
    rig.harness.get_by_label_contains("请扫码支付");
    assert!(
        rig.harness
            .query_all_by_label_contains("营业日")
            .next()
            .is_none()
    );
}

#[test]
fn the_closes_screen_exports_a_typed_date_range_and_names_a_bad_field() {
    let mut rig = rig();
    rig.harness.step();
    rig.key(Key::F3);
    rig.wait_for("导出日期范围 从");
    let today = qrtill::day::business_date(
        &chrono::Local,
        chrono::Utc::now().timestamp_millis(),
        qrtill::day::MIDNIGHT,
    );
    let yesterday = today - chrono::TimeDelta::days(1);
    let field = |rig: &Rig, index: usize| {
        rig.harness
            .query_all_by_role(egui::accesskit::Role::TextInput)
            .nth(index)
            .expect("the range fields")
            .focus();
    };
    // A first day that is not a date is refused, naming the field; nothing is written.
    field(&rig, 0);
    rig.harness.step();
    rig.harness
        .query_all_by_role(egui::accesskit::Role::TextInput)
        .next()
        .unwrap()
        .type_text("2026/11/01");
    rig.harness.step();
    rig.harness.get_by_label("导出 CSV").click();
    rig.harness.step();
    rig.wait_for("起始日期 `2026/11/01` 不是日期");
    assert!(!rig.exports.exists(), "nothing written for a refused range");
    // Yesterday to today, typed, Enter in the last field: both days' four orders.
    rig.harness.state_mut().state.history.range_from = yesterday.to_string();
    field(&rig, 1);
    rig.harness.step();
    rig.harness
        .query_all_by_role(egui::accesskit::Role::TextInput)
        .nth(1)
        .unwrap()
        .type_text(&today.to_string());
    rig.harness.step();
    rig.key(Key::Enter);
    rig.wait_for("已导出 4 笔订单到");
    let file = rig.exports.join(format!("qrtill-{yesterday}-{today}.csv"));
    let text = String::from_utf8(std::fs::read(&file).expect("the export file")).unwrap();
    for (number, _, _) in SEEDED {
        assert!(text.contains(number), "{number} in the range export");
    }
}
