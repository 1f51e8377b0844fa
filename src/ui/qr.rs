//! The QR screen: the QR as large as the window allows (quiet zone included, on white), the
//! amount the customer must pay in huge type, the channel's name and colour, the countdown,
//! and Cancel. The QR's texture is built once per order.

use egui::{Color32, RichText, TextureHandle, TextureOptions, vec2};

use super::key_button;
use super::till::{channel_color, channel_name};
use crate::app::state::{Action, Screen, TillState};
use crate::model::{OrderNo, PaymentStatus};
use crate::qr::ShownQr;

/// The QR texture of the order on screen, built once.
#[derive(Default)]
pub struct QrTextures {
    current: Option<(OrderNo, Result<TextureHandle, String>)>,
}

impl QrTextures {
    /// The order's QR texture, uploaded on first use from the picture the service made (the
    /// staff QR screen and the customer display share it).
    pub(super) fn get(
        &mut self,
        ctx: &egui::Context,
        order_no: &OrderNo,
        qr: &ShownQr,
    ) -> Result<TextureHandle, String> {
        if let Some((no, texture)) = &self.current
            && no == order_no
        {
            return texture.clone();
        }
        let texture = qr.picture.as_ref().map_err(Clone::clone).map(|picture| {
            let image = egui::ColorImage::from_rgba_unmultiplied(picture.size(), picture.rgba());
            ctx.load_texture(format!("qr-{order_no}"), image, TextureOptions::NEAREST)
        });
        self.current = Some((order_no.clone(), texture.clone()));
        texture
    }
}

pub(super) fn show(
    ui: &mut egui::Ui,
    state: &TillState,
    textures: &mut QrTextures,
    actions: &mut Vec<Action>,
) {
    let order_no = match &state.screen {
        Screen::Creating(no) | Screen::Qr(no) => no.clone(),
        _ => return,
    };
    let available = ui.available_size();
    let qr_side = (available.y - 8.0).min(available.x * 0.55).max(120.0);
    ui.horizontal(|ui| {
        let (rect, _) = ui.allocate_exact_size(vec2(qr_side, qr_side), egui::Sense::hover());
        ui.painter().rect_filled(rect, 0.0, Color32::WHITE);
        match &state.qr {
            Some(qr) => match textures.get(ui.ctx(), &order_no, qr) {
                Ok(texture) => {
                    let uv = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
                    ui.painter()
                        .image(texture.id(), rect.shrink(4.0), uv, Color32::WHITE);
                }
                Err(err) => {
                    ui.painter().text(
                        rect.center(),
                        egui::Align2::CENTER_CENTER,
                        err,
                        egui::FontId::proportional(18.0),
                        Color32::RED,
                    );
                }
            },
            None => {
                let text = state.t("正在获取二维码…", "Getting the QR…");
                ui.painter().text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    text,
                    egui::FontId::proportional(28.0),
                    Color32::DARK_GRAY,
                );
            }
        }
        ui.add_space(24.0);
        ui.vertical(|ui| details(ui, state, &order_no, actions));
    });
}

fn details(ui: &mut egui::Ui, state: &TillState, order_no: &OrderNo, actions: &mut Vec<Action>) {
    let Some(order) = &state.order else {
        ui.label(RichText::new(state.t("正在下单…", "Creating the order…")).size(32.0));
        if ui
            .add(key_button(
                state.t("取消", "Cancel"),
                "Esc",
                vec2(240.0, 64.0),
            ))
            .clicked()
        {
            actions.push(Action::Cancel(order_no.clone()));
        }
        return;
    };
    let color = channel_color(order.channel);
    ui.label(RichText::new(state.t("请扫码支付", "Scan to pay")).size(32.0));
    ui.label(
        RichText::new(format!("¥{}", order.payable_or_amount()))
            .size(96.0)
            .strong(),
    );
    if order.payable.is_some_and(|p| p != order.amount) {
        ui.label(
            RichText::new(
                format!(
                    "{} ¥{} {} ¥{}",
                    state.t("请付", "Pay exactly"),
                    order.payable_or_amount(),
                    state.t("(订单金额", "(order amount"),
                    order.amount
                ) + ")",
            )
            .size(22.0)
            .color(ui.visuals().warn_fg_color),
        );
    }
    ui.label(
        RichText::new(channel_name(state, order.channel))
            .size(40.0)
            .color(color)
            .strong(),
    );
    ui.add_space(8.0);
    let remaining = order.expires_at.map_or(0, |at| {
        crate::app::state::countdown(at, crate::service::now_ms()).0
    });
    ui.label(
        RichText::new(format!(
            "{} {:02}:{:02}",
            state.t("剩余时间", "Time left"),
            remaining / 60,
            remaining % 60
        ))
        .size(28.0)
        .monospace(),
    );
    let status = match order.status {
        PaymentStatus::Creating => state.t("正在下单…", "Creating the order…"),
        PaymentStatus::Confirming => state.t(
            "顾客已付款，等待平台确认…",
            "Customer paid, awaiting the provider's confirmation…",
        ),
        _ if !state.provider_can_query => state.t(
            "等待支付平台通知…",
            "Waiting for the provider's notification…",
        ),
        _ => state.t("等待顾客付款…", "Waiting for the customer…"),
    };
    ui.label(RichText::new(status).size(24.0));
    if state.provider_browser_needed || state.qr_browser_needed {
        ui.label(
            RichText::new(state.t(
                "顾客扫码后在手机浏览器中完成支付",
                "The customer's phone opens the provider's page to pay",
            ))
            .size(18.0)
            .weak(),
        );
    }
    if let Some(message) = &order.message
        && order.status != PaymentStatus::Confirming
        && (message.contains("失败") || message.contains("不明") || message.contains("failed"))
    {
        ui.label(
            RichText::new(message)
                .size(18.0)
                .color(ui.visuals().warn_fg_color),
        );
    }
    ui.label(
        RichText::new(format!("{} {}", state.t("订单号", "Order"), order.order_no))
            .size(16.0)
            .weak(),
    );
    ui.add_space(16.0);
    if ui
        .add(key_button(
            state.t("取消订单", "Cancel order"),
            "Esc",
            vec2(260.0, 64.0),
        ))
        .clicked()
    {
        actions.push(Action::Cancel(order_no.clone()));
    }
    // Asking the provider, or paying in demo mode, needs the order to exist there: while the
    // create request is out only Cancel is offered, as the keys F5 and F9 act only then.
    let created = matches!(state.screen, Screen::Qr(_));
    if created
        && state.provider_can_query
        && ui
            .add(key_button(
                state.t("立即查询", "Query now"),
                "F5",
                vec2(260.0, 56.0),
            ))
            .clicked()
    {
        actions.push(Action::QueryNow(order_no.clone()));
    }
    if created && state.demo {
        let simulate = key_button(
            state.t("模拟顾客付款", "Simulate customer payment"),
            "F9",
            vec2(260.0, 56.0),
        )
        .fill(super::DEMO_COLOR);
        if ui.add(simulate).clicked() {
            actions.push(Action::SimulatePayment(order_no.clone()));
        }
    }
}
