//! The customer display driven headless through egui_kittest (which shows a second viewport
//! as a window inside the first): the shop's name when idle, the QR and the amount during a
//! sale, then "支付成功"; back to the shop's name after; off when the settings say so, and
//! a change of settings takes effect on the next frame.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // Tests fail loudly.

#[allow(dead_code, reason = "these tests read the window, not the ledger")]
mod till_window;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use qrtill::app::TillApp;
use qrtill::config::DisplaySettings;

const TITLE: &str = "qrtill 顾客显示屏";

/// A till over the sandbox's ispay account with these display settings.
fn till(display: DisplaySettings) -> till_window::Till {
    till_window::start(
        |sandbox| vec![sandbox.demo_providers()[0].clone()],
        |state| state.display = display,
    )
}

/// Whether the customer window shows a widget whose label contains `text`.
fn customer_shows(harness: &Harness<'static, TillApp>, text: &str) -> bool {
    harness
        .query_by_role_and_label(Role::Window, TITLE)
        .is_some_and(|window| window.query_all_by_label_contains(text).next().is_some())
}

fn customer_window(harness: &Harness<'static, TillApp>) -> bool {
    harness
        .query_by_role_and_label(Role::Window, TITLE)
        .is_some()
}

fn wait_for(till: &mut till_window::Till, text: &str) {
    till.wait_until(&format!("the customer window showing `{text}`"), |h| {
        customer_shows(h, text)
    });
}

#[test]
fn idle_then_the_qr_and_amount_then_paid_then_idle_again() {
    let mut till = till(DisplaySettings {
        enabled: true,
        shop_name: "老王小卖部".into(),
        ..DisplaySettings::default()
    });
    wait_for(&mut till, "老王小卖部");
    till.typed("12.3");
    till.key(egui::Key::Enter);
    till.typed("1");
    wait_for(&mut till, "请支付 ¥12.30");
    assert!(
        customer_shows(&till.harness, "支付宝"),
        "the channel is named"
    );
    assert!(!customer_shows(&till.harness, "老王小卖部"));
    // The QR is drawn once the provider gave it (the staff screen's texture, named for
    // screen readers), as large as the window allows.
    let has_qr = |h: &Harness<'static, TillApp>| {
        h.query_by_role_and_label(Role::Window, TITLE)
            .and_then(|w| w.query_by_role_and_label(Role::Image, "QR").map(|_| ()))
            .is_some()
    };
    till.wait_until("a QR on the customer window", has_qr);
    let window = till.harness.get_by_role_and_label(Role::Window, TITLE);
    let qr = window.get_by_role_and_label(Role::Image, "QR");
    let bounds = qr.accesskit_node().raw_bounds().expect("QR bounds");
    assert!(
        bounds.width() > 200.0,
        "the QR fills the window: {bounds:?}"
    );
    till.key(egui::Key::F9);
    wait_for(&mut till, "支付成功");
    assert!(customer_shows(&till.harness, "¥12.30"));
    // Staff close the paid screen: the customer window is idle again.
    till.key(egui::Key::Enter);
    wait_for(&mut till, "老王小卖部");
    assert!(!customer_shows(&till.harness, "支付成功"));
}

#[test]
fn off_by_default_and_settings_apply_at_once() {
    let mut till = till(DisplaySettings::default());
    till.harness.step();
    assert!(
        !customer_window(&till.harness),
        "no customer window unless enabled"
    );
    // A settings screen turns it on: the next frame shows it, with the welcome.
    till.harness.state_mut().state.display.enabled = true;
    wait_for(&mut till, "欢迎光临");
    till.harness.state_mut().state.display.shop_name = "Corner Shop".into();
    wait_for(&mut till, "Corner Shop");
    till.harness.state_mut().state.display.enabled = false;
    till.harness.step();
    till.harness.step();
    assert!(!customer_window(&till.harness));
}
