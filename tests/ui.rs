//! The till window driven headless through egui_kittest, by label and role: type an amount,
//! pick a channel, see the QR screen, simulate the payment, see the paid screen and the paid
//! ledger row; plus the keyboard-only path and a refused amount.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // Tests fail loudly.

mod till_window;

use egui::Key;
use egui_kittest::kittest::Queryable as _;
use qrtill::ledger::OrderRow;
use qrtill::model::{Fen, PaymentStatus};
use till_window::Till;

/// The till over the sandbox's demo accounts, the first one current, operator A01.
fn rig() -> Till {
    till_window::start(
        |sandbox| sandbox.demo_providers(),
        |state| state.operator = "A01".into(),
    )
}

fn paid_rows(till: &Till) -> Vec<OrderRow> {
    till.orders()
        .into_iter()
        .filter(|o| o.status == PaymentStatus::Paid)
        .collect()
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
    // Offered once the provider has the order (the create's answer).
    rig.wait_for("模拟顾客付款");
    rig.harness.get_by_label_contains("模拟顾客付款").click();
    rig.wait_for("支付成功");
    rig.harness.get_by_label("¥12.30");
    let paid = paid_rows(&rig);
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
    rig.typed("8.8");
    rig.key(Key::Backspace);
    rig.typed("5");
    rig.harness.get_by_label("¥ 8.5");
    rig.key(Key::Enter);
    rig.wait_for("选择支付方式");
    rig.typed("1");
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
    assert_eq!(paid_rows(&rig).len(), 1);
}

#[test]
fn escape_cancels_the_order_on_screen() {
    let mut rig = rig();
    rig.harness.step();
    rig.typed("3");
    rig.key(Key::Enter);
    rig.typed("2");
    rig.wait_for("请扫码支付");
    rig.key(Key::Escape);
    rig.wait_for("订单已取消");
    assert!(paid_rows(&rig).is_empty());
}

#[test]
fn a_refused_amount_says_why_and_makes_no_order() {
    let mut rig = rig();
    rig.harness.step();
    rig.typed("0");
    rig.key(Key::Enter);
    rig.harness.get_by_label_contains("金额必须大于 0");
    rig.key(Key::Escape);
    rig.typed("60000");
    rig.key(Key::Enter);
    rig.harness.get_by_label_contains("50000.00");
    let rows = rig
        .runtime
        .block_on(rig.service.with_ledger(|l| l.orders_between(0, i64::MAX)))
        .expect("ledger");
    assert!(rows.is_empty());
}
