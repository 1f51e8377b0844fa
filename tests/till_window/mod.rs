//! The till window over a sandbox, driven headless through egui_kittest: a service on a
//! fresh ledger with the sandbox accounts a test picks, the app in a harness, and helpers
//! that type, press keys and wait (in real time, bounded) for what the service answers on
//! other threads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::Key;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use qrtill::app::TillApp;
use qrtill::app::state::TillState;
use qrtill::ledger::Ledger;
use qrtill::providers::Provider;
use qrtill::sandbox::{Sandbox, SandboxOptions};
use qrtill::service::{self, ServiceConfig, ServiceHandle};

pub struct Till {
    pub runtime: tokio::runtime::Runtime,
    pub service: ServiceHandle,
    pub harness: Harness<'static, TillApp>,
    _dir: tempfile::TempDir,
}

/// A till in demo mode over the accounts `accounts` picks from a fresh sandbox (the first
/// one current), its view model set up by `setup`.
pub fn start(
    accounts: impl FnOnce(&Sandbox) -> Vec<Arc<dyn Provider>>,
    setup: impl FnOnce(&mut TillState),
) -> Till {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite3")).expect("ledger");
    let (service, events, providers) = runtime.block_on(async {
        let sandbox = Sandbox::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SandboxOptions::default(),
        )
        .await
        .expect("sandbox");
        let providers = accounts(&sandbox);
        let config = ServiceConfig {
            providers: providers.clone(),
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
        (service, events, providers)
    });
    let infos = providers
        .iter()
        .map(|p| qrtill::settings::provider_info(p.as_ref()))
        .collect();
    let mut state = TillState::with_providers(infos);
    state.demo = true;
    setup(&mut state);
    let app_service = service.clone();
    let harness = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_eframe(move |cc| TillApp::new(&cc.egui_ctx, state, app_service, events));
    Till {
        runtime,
        service,
        harness,
        _dir: dir,
    }
}

impl Till {
    /// Steps frames until `done` holds, at most 10 s.
    pub fn wait_until(&mut self, what: &str, done: impl Fn(&Harness<'static, TillApp>) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.harness.step();
            if done(&self.harness) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: not within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Steps frames until a widget whose label contains `label` appears.
    pub fn wait_for(&mut self, label: &str) {
        self.wait_until(&format!("`{label}`"), |h| {
            h.query_all_by_label_contains(label).next().is_some()
        });
    }

    pub fn typed(&mut self, text: &str) {
        self.harness.event(egui::Event::Text(text.into()));
        self.harness.step();
        self.harness.step();
    }

    pub fn key(&mut self, key: Key) {
        self.harness.key_press(key);
        self.harness.step();
        self.harness.step();
    }

    /// Every order in the ledger.
    pub fn orders(&self) -> Vec<qrtill::ledger::OrderRow> {
        self.runtime
            .block_on(self.service.with_ledger(|l| l.orders_between(0, i64::MAX)))
            .expect("ledger")
    }
}
