//! The till window driven headless through egui_kittest, by label and role: type an amount,
//! pick a channel, see the QR screen, simulate the payment, see the paid screen and the paid
//! ledger row; plus the keyboard-only path and a refused amount.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // Tests fail loudly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::Key;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use qrtill::app::TillApp;
use qrtill::app::state::TillState;
use qrtill::ledger::Ledger;
use qrtill::model::{Fen, PaymentStatus};
use qrtill::sandbox::{Sandbox, SandboxOptions};
use qrtill::service::{self, ServiceConfig, ServiceHandle};

struct Rig {
    runtime: tokio::runtime::Runtime,
    service: ServiceHandle,
    harness: Harness<'static, TillApp>,
    _dir: tempfile::TempDir,
}

fn rig() -> Rig {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite3")).expect("ledger");
    let (service, events, provider) = runtime.block_on(async {
        let sandbox = Sandbox::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SandboxOptions::default(),
        )
        .await
        .expect("sandbox");
        let providers = sandbox.demo_providers();
        let provider = providers[0].clone();
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
        // Keep the sandbox's server task alive with the runtime.
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
    let app_service = service.clone();
    let harness = Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        .build_eframe(move |cc| TillApp::new(&cc.egui_ctx, state, app_service, events));
    Rig {
        runtime,
        service,
        harness,
        _dir: dir,
    }
}

impl Rig {
    /// Steps frames until a widget with this label appears (the service answers on other
    /// threads, so this waits in real time, bounded).
    fn wait_for(&mut self, label: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.harness.step();
            if self
                .harness
                .query_all_by_label_contains(label)
                .next()
                .is_some()
            {
                return;
            }
            assert!(Instant::now() < deadline, "`{label}` never appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_text(&mut self, text: &str) {
        self.harness.event(egui::Event::Text(text.into()));
        self.harness.step();
        self.harness.step();
    }

    fn key(&mut self, key: Key) {
        self.harness.key_press(key);
        self.harness.step();
        self.harness.step();
    }

    fn paid_rows(&self) -> Vec<qrtill::ledger::OrderRow> {
        self.runtime
            .block_on(self.service.with_ledger(|l| l.orders_between(0, i64::MAX)))
            .expect("ledger")
            .into_iter()
            .filter(|o| o.status == PaymentStatus::Paid)
            .collect()
    }
}

#[test]
fn a_whole_sale_with_the_mouse() {
    let mut rig = rig();
    rig.harness.step();
    for digit in ["1", "2", ".", "3"] {
        rig.harness.get_by_label(digit).click();
        rig.harness.step();
    }
    // A click changes the state while drawing; the next frame shows it.
    rig.harness.step();
    rig.harness.get_by_label("¥ 12.3");
    rig.harness.get_by_label_contains("微信支付").click();
    rig.wait_for("请扫码支付");
    rig.harness.get_by_label("¥12.30");
    rig.harness.get_by_label_contains("剩余时间");
    rig.harness.get_by_label_contains("模拟顾客付款").click();
    rig.wait_for("支付成功");
    rig.harness.get_by_label("¥12.30");
    let paid = rig.paid_rows();
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0].paid, Some(Fen(1230)));
    assert_eq!(paid[0].channel, qrtill::model::Channel::Wechat);
    assert_eq!(paid[0].operator, "A01");
    assert!(paid[0].demo, "a demo sale is marked as such");
    // The status bar counts it.
    rig.wait_for("今日收款 1 笔 · ¥12.30");
}

#[test]
fn a_whole_sale_with_the_keyboard_alone() {
    let mut rig = rig();
    rig.harness.step();
    rig.type_text("8.8");
    rig.key(Key::Backspace);
    rig.type_text("5");
    rig.harness.get_by_label("¥ 8.5");
    rig.key(Key::Enter);
    rig.wait_for("选择支付方式");
    rig.type_text("1");
    rig.wait_for("请扫码支付");
    rig.harness.get_by_label("支付宝");
    // F9 acts on the QR screen, which follows the create's answer ("请扫码支付" shows from
    // the order's first row on).
    rig.wait_for("等待顾客付款");
    rig.key(Key::F9);
    rig.wait_for("支付成功");
    rig.key(Key::Enter);
    rig.wait_for("输入金额");
    rig.harness.get_by_label("¥ 0");
    assert_eq!(rig.paid_rows().len(), 1);
}

#[test]
fn escape_cancels_the_order_on_screen() {
    let mut rig = rig();
    rig.harness.step();
    rig.type_text("3");
    rig.key(Key::Enter);
    rig.type_text("2");
    rig.wait_for("请扫码支付");
    rig.key(Key::Escape);
    rig.wait_for("订单已取消");
    assert!(rig.paid_rows().is_empty());
}

#[test]
fn a_refused_amount_says_why_and_makes_no_order() {
    let mut rig = rig();
    rig.harness.step();
    rig.type_text("0");
    rig.key(Key::Enter);
    rig.harness.get_by_label_contains("金额必须大于 0");
    rig.key(Key::Escape);
    rig.type_text("60000");
    rig.key(Key::Enter);
    rig.harness.get_by_label_contains("50000.00");
    let rows = rig
        .runtime
        .block_on(rig.service.with_ledger(|l| l.orders_between(0, i64::MAX)))
        .expect("ledger");
    assert!(rows.is_empty());
}
