//! A till day done with the keyboard alone, through egui_kittest: the operator picked at
//! start, a sale, the history, the day close; and the settings screen changed and saved by
//! keys, written 0600 and applied without a restart, with the merchant key never on screen.
//! Also the connection test: the right key is accepted, a wrong one refused in words.

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

use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use qrtill::app::TillApp;
use qrtill::app::state::TillState;
use qrtill::config::Config;
use qrtill::ledger::Ledger;
use qrtill::model::PaymentStatus;
use qrtill::sandbox::{Sandbox, SandboxOptions};
use qrtill::service::{self, ServiceHandle};
use qrtill::settings::SettingsHost;

struct Rig {
    runtime: tokio::runtime::Runtime,
    service: ServiceHandle,
    harness: Harness<'static, TillApp>,
    config_path: PathBuf,
    /// The merchant keys of the config file, which no screen may show.
    keys: Vec<String>,
    _dir: tempfile::TempDir,
}

/// A till on a config file of the sandbox's accounts, with two operators.
fn rig() -> Rig {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.toml");
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite3")).unwrap();
    let (service, events, config, host) = runtime.block_on(async {
        let sandbox = Sandbox::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SandboxOptions::default(),
        )
        .await
        .unwrap();
        let text = format!(
            "operators = [\"甲\", \"乙\"]\n{}",
            sandbox
                .demo_config()
                .lines()
                .filter(|l| !l.starts_with("operator"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        qrtill::config::write_private(&config_path, &text).unwrap();
        let config = Config::load(&config_path).unwrap();
        let service_config = service::ServiceConfig {
            demo: true,
            sandbox_control: Some(sandbox.control_url()),
            ..qrtill::settings::service_config(&config, None)
        };
        let (service, events) = service::start(
            tokio::runtime::Handle::current(),
            ledger,
            service_config,
            Arc::new(|| {}),
        )
        .unwrap();
        let host =
            SettingsHost::new(&config_path, None, service.clone(), None, Arc::new(|| {})).unwrap();
        std::mem::forget(sandbox);
        (service, events, config, host)
    });
    let doc: toml::Table = std::fs::read_to_string(&config_path)
        .unwrap()
        .parse()
        .unwrap();
    let keys = doc["provider"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            let p = p.as_table().unwrap();
            ["key", "token", "appsecret", "app_secret", "appkey"]
                .iter()
                .filter_map(|k| p.get(*k).and_then(|v| v.as_str()).map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut state = TillState::with_providers(Vec::new());
    state.apply_config(&config);
    state.picking_operator = true;
    state.demo = true;
    let app_service = service.clone();
    let harness = Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
        .build_eframe(move |cc| {
            TillApp::new(&cc.egui_ctx, state, app_service, events).with_settings(host)
        });
    Rig {
        runtime,
        service,
        harness,
        config_path,
        keys,
        _dir: dir,
    }
}

impl Rig {
    fn wait_for(&mut self, label: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
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

    /// No text on screen, nor any widget's value, holds a merchant key.
    fn assert_no_key_on_screen(&self) {
        for key in &self.keys {
            let key = key.as_str();
            let shown = self
                .harness
                .query_all(egui_kittest::kittest::By::new().predicate(move |node| {
                    node.label().is_some_and(|l| l.contains(key))
                        || node.value().is_some_and(|v| v.contains(key))
                }))
                .count();
            assert_eq!(shown, 0, "a merchant key is on screen");
        }
    }
}

#[test]
fn a_day_at_the_till_with_the_keyboard_alone() {
    let mut rig = rig();
    // At start: who is at the till? Key 2.
    rig.wait_for("谁在收银");
    rig.key(Key::Num2);
    rig.type_text("2");
    rig.wait_for("收银员: 乙");
    // A sale: amount, Enter, channel 1, the QR, the customer pays (demo key F9).
    rig.type_text("12.3");
    rig.key(Key::Enter);
    rig.type_text("1");
    rig.wait_for("F9");
    rig.key(Key::F9);
    rig.wait_for("支付成功");
    rig.key(Key::Escape);
    rig.wait_for("今日收款 1 笔 · ¥12.30");
    let rows = rig
        .runtime
        .block_on(rig.service.with_ledger(|l| l.orders_between(0, i64::MAX)))
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, PaymentStatus::Paid);
    assert_eq!(rows[0].operator, "乙", "the sale records who took it");
    let order_no = rows[0].order_no.to_string();
    // The history: the sale is there; Enter opens its detail, Esc closes it, Esc leaves.
    rig.key(Key::F2);
    rig.wait_for(&order_no);
    rig.key(Key::ArrowDown);
    rig.key(Key::Enter);
    rig.wait_for("事件");
    rig.key(Key::Escape);
    rig.key(Key::Escape);
    rig.wait_for("今日收款");
    // The day close: F3, F8 shows what would be recorded, Enter records it.
    rig.key(Key::F3);
    rig.key(Key::F8);
    rig.wait_for("确认交班");
    rig.key(Key::Enter);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        rig.harness.step();
        let closes = rig
            .runtime
            .block_on(rig.service.with_ledger(|l| l.list_closes()))
            .unwrap();
        if let Some(close) = closes.first() {
            assert_eq!(close.figures.paid.count, 1);
            assert_eq!(close.operator, "乙");
            break;
        }
        assert!(Instant::now() < deadline, "the close was never recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    rig.wait_for("第 1 号交班");
}

#[test]
fn settings_changed_by_keys_are_saved_owner_only_and_applied_without_a_restart() {
    let mut rig = rig();
    rig.key(Key::Escape); // keep the operator chosen at start
    rig.key(Key::F4);
    rig.wait_for("保存并应用");
    rig.assert_no_key_on_screen();
    // The operator field has the focus: replace the name, Tab to the list, add the name.
    rig.harness.key_press_modifiers(Modifiers::COMMAND, Key::A);
    rig.type_text("丙");
    rig.key(Key::Tab);
    rig.harness.key_press(Key::End);
    rig.type_text(", 丙");
    // The first account: test its connection (F5), then save (Ctrl+S).
    rig.key(Key::F5);
    rig.wait_for("连接正常");
    rig.harness.key_press_modifiers(Modifiers::COMMAND, Key::S);
    rig.wait_for("已保存并生效");
    // Applied at once: the status bar names the new operator, who is in the switch list.
    rig.wait_for("收银员: 丙");
    rig.assert_no_key_on_screen();
    let config = Config::load(&rig.config_path).unwrap();
    assert_eq!(config.operator, "丙");
    assert_eq!(config.operators, ["甲", "乙", "丙"]);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&rig.config_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The merchant keys were kept as they were: every key of the old file is in the new one.
    let text = std::fs::read_to_string(&rig.config_path).unwrap();
    for key in &rig.keys {
        assert!(text.contains(key.as_str()), "a merchant key was lost");
    }
    // Saved again unchanged, the file reads back to the same document.
    let before: toml::Table = text.parse().unwrap();
    rig.harness.key_press_modifiers(Modifiers::COMMAND, Key::S);
    rig.harness.step();
    rig.wait_for("已保存并生效");
    let after: toml::Table = std::fs::read_to_string(&rig.config_path)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn a_wrong_merchant_key_is_refused_in_words_by_the_connection_test() {
    let mut rig = rig();
    let text = std::fs::read_to_string(&rig.config_path).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    let mut draft = qrtill::settings::Draft::from_document(&doc, &[]);
    // A new key typed for the first account (ispay: its key is the third field).
    let key = draft.providers[0]
        .fields
        .iter_mut()
        .find(|f| f.field.secret)
        .unwrap();
    key.text = "wrong-key-0000".into();
    let account = draft.account(0, &doc).unwrap();
    let mut events = rig.runtime.block_on(async {
        // A fresh service's events, to read the verdict here.
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite3")).unwrap();
        let config = Config::load(&rig.config_path).unwrap();
        let (service, events) = service::start(
            tokio::runtime::Handle::current(),
            ledger,
            qrtill::settings::service_config(&config, None),
            Arc::new(|| {}),
        )
        .unwrap();
        service.test_connection(account);
        std::mem::forget(dir);
        events
    });
    let verdict = rig.runtime.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .unwrap()
                .unwrap()
            {
                service::Event::ConnectionTested { verdict, .. } => return verdict,
                _ => continue,
            }
        }
    });
    assert!(
        matches!(verdict, service::ConnectionVerdict::Refused(_)),
        "{verdict:?}"
    );
    rig.harness.step();
}
