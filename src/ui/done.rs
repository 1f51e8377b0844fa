//! The end of a sale: an unmistakable paid screen (amount, order number), or a clear message
//! for expired, cancelled and failed orders. Enter or Esc returns to the till.

use egui::{Color32, RichText, vec2};

use super::key_button;
use crate::app::state::{Action, TillState};
use crate::model::PaymentStatus;

/// The paid screen's green (the customer display's too).
pub(super) const PAID_GREEN: Color32 = Color32::from_rgb(0x0A, 0x8F, 0x3C);
const WARN_ORANGE: Color32 = Color32::from_rgb(0xC2, 0x5A, 0x00);
const FAIL_RED: Color32 = Color32::from_rgb(0xB0, 0x1E, 0x1E);
const ENDED_GREY: Color32 = Color32::from_rgb(0x55, 0x5B, 0x66);

pub(super) fn show(ui: &mut egui::Ui, state: &mut TillState, actions: &mut Vec<Action>) {
    let Some(order) = state.order.clone() else {
        return;
    };
    let (fill, title) = match order.status {
        PaymentStatus::Paid if order.amount_mismatch => (
            WARN_ORANGE,
            state.t("已付款，但金额不符", "Paid, but the amount differs"),
        ),
        PaymentStatus::Paid => (PAID_GREEN, state.t("支付成功", "Paid")),
        PaymentStatus::Expired => (
            ENDED_GREY,
            state.t("二维码已过期，未收款", "QR expired, not paid"),
        ),
        PaymentStatus::Cancelled => (ENDED_GREY, state.t("订单已取消", "Order cancelled")),
        PaymentStatus::Failed => (FAIL_RED, state.t("收款失败", "Payment failed")),
        PaymentStatus::Creating | PaymentStatus::Pending | PaymentStatus::Confirming => return,
    };
    let size = ui.available_size();
    egui::Frame::new()
        .fill(fill)
        .inner_margin(24)
        .show(ui, |ui| {
            ui.set_min_size(size - vec2(48.0, 48.0));
            ui.vertical_centered(|ui| {
                ui.add_space(size.y * 0.08);
                ui.label(
                    RichText::new(title)
                        .size(88.0)
                        .color(Color32::WHITE)
                        .strong(),
                );
                let shown = order.paid.unwrap_or_else(|| order.payable_or_amount());
                ui.label(
                    RichText::new(format!("¥{shown}"))
                        .size(120.0)
                        .color(Color32::WHITE)
                        .strong(),
                );
                if order.amount_mismatch {
                    ui.label(
                        RichText::new(format!(
                            "{} ¥{} · {} ¥{}",
                            state.t("收到", "received"),
                            shown,
                            state.t("应收", "asked"),
                            order.payable_or_amount()
                        ))
                        .size(32.0)
                        .color(Color32::WHITE),
                    );
                }
                if order.status != PaymentStatus::Paid
                    && let Some(message) = &order.message
                {
                    ui.label(RichText::new(message).size(22.0).color(Color32::WHITE));
                }
                ui.label(
                    RichText::new(format!("{} {}", state.t("订单号", "Order"), order.order_no))
                        .size(22.0)
                        .color(Color32::WHITE),
                );
                ui.add_space(24.0);
                if ui
                    .add(key_button(
                        state.t("返回收银", "Back to till"),
                        "Enter",
                        vec2(320.0, 72.0),
                    ))
                    .clicked()
                {
                    actions.extend(state.enter());
                }
            });
        });
}
