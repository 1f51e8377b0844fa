//! The customer display: a second window (an egui viewport) for a monitor that faces the
//! customer. Idle it shows the shop's name; during a sale the QR as large as it fits, the
//! amount to pay and the channel; then "支付成功 / Paid" until the till returns.
//!
//! Invariants: it shows only what the staff screen shows (it reads the same view model and
//! reuses the staff QR screen's texture, so the QR is encoded once); it never keeps a key
//! typed into it from the staff screen (such keys are handed back to the app); it asks for
//! no repaint of its own (an immediate viewport is drawn with the staff window, so an idle
//! till draws nothing); closing it from the window manager hides it until the next start
//! or until the display settings change.

use egui::{Color32, RichText, ViewportClass, ViewportId, pos2, vec2};

use super::QrTextures;
use super::done::PAID_GREEN;
use super::till::{channel_color, channel_name};
use crate::app::state::{Screen, TillState};
use crate::config::DisplaySettings;
use crate::model::PaymentStatus;

/// The window's title.
pub const TITLE: &str = "qrtill 顾客显示屏";

/// The window's size when it is not full screen, in points.
const WINDOW_SIZE: [f32; 2] = [1024.0, 768.0];

/// The size it takes inside the staff window where the platform (or a test harness) has
/// no second window.
const EMBEDDED_SIZE: [f32; 2] = [560.0, 520.0];

/// The customer window's state across frames.
#[derive(Default)]
pub struct CustomerDisplay {
    /// Closed from the window manager with these settings: hidden while they stay so.
    closed_with: Option<DisplaySettings>,
    /// Whether the window was drawn last frame (it exists, at its position).
    open: bool,
}

impl CustomerDisplay {
    /// The customer window's viewport id.
    pub fn viewport_id() -> ViewportId {
        ViewportId::from_hash_of("qrtill-customer-display")
    }

    /// Shows the window for this frame when `state.display` enables it. Returns the input
    /// events typed into it, for the app to handle as the staff window's (a click on the
    /// customer monitor must not swallow the next key).
    pub fn show(
        &mut self,
        ctx: &egui::Context,
        state: &TillState,
        textures: &mut QrTextures,
    ) -> Vec<egui::Event> {
        let settings = &state.display;
        if self
            .closed_with
            .as_ref()
            .is_some_and(|closed| closed != settings)
        {
            // The settings changed (e.g. re-enabled): it may show again.
            self.closed_with = None;
        }
        if !settings.enabled || self.closed_with.is_some() {
            self.open = false;
            return Vec::new();
        }
        let [x, y] = settings.position;
        // Where to open it and whether it covers its monitor; passed every frame, so a
        // changed setting moves the open window (egui sends only what changed).
        #[expect(clippy::cast_precision_loss)] // Positions are within ±100000.
        let position = pos2(x as f32, y as f32);
        let builder = egui::ViewportBuilder::default()
            .with_title(TITLE)
            .with_app_id("qrtill-customer")
            .with_position(position)
            .with_inner_size(WINDOW_SIZE)
            // Full screen covers the monitor the window is on: asked for once the window
            // exists at its position (at creation it would take the main monitor).
            .with_fullscreen(settings.fullscreen && self.open)
            // Opening it must not take the focus from the staff window (where supported).
            .with_active(false);
        let (events, closed) =
            ctx.show_viewport_immediate(Self::viewport_id(), builder, |ui, class| {
                let embedded = class == ViewportClass::EmbeddedWindow;
                let size = if embedded {
                    vec2(EMBEDDED_SIZE[0], EMBEDDED_SIZE[1])
                } else {
                    ui.available_size()
                };
                draw(ui, state, textures, size);
                if embedded {
                    // Embedded, its input is the staff window's own: nothing to hand back.
                    return (Vec::new(), false);
                }
                ui.input(|i| {
                    let keys = i
                        .events
                        .iter()
                        .filter(|e| matches!(e, egui::Event::Key { .. } | egui::Event::Text(_)))
                        .cloned()
                        .collect();
                    (keys, i.viewport().close_requested())
                })
            });
        if !self.open && !closed && settings.fullscreen {
            // One more frame, to ask for full screen now that the window exists.
            ctx.request_repaint();
        }
        self.open = !closed;
        if closed {
            tracing::info!("customer display closed from the window manager: hidden");
            self.closed_with = Some(settings.clone());
        }
        events
    }
}

/// What the customer sees now.
enum Shown {
    Idle,
    Pay,
    Paid,
    /// Paid, but not the amount asked: staff sort it out, the customer is not told "paid".
    Wait,
}

fn shown(state: &TillState) -> Shown {
    let order = state.order.as_ref();
    match (&state.screen, order.map(|o| o.status)) {
        (Screen::Creating(_) | Screen::Qr(_), Some(status)) if !status.is_final() => Shown::Pay,
        (Screen::Done(..), Some(PaymentStatus::Paid)) => {
            if order.is_some_and(|o| o.amount_mismatch) {
                Shown::Wait
            } else {
                Shown::Paid
            }
        }
        _ => Shown::Idle,
    }
}

fn draw(ui: &mut egui::Ui, state: &TillState, textures: &mut QrTextures, size: egui::Vec2) {
    let (fill, text) = match shown(state) {
        Shown::Paid => (PAID_GREEN, Color32::WHITE),
        _ => (Color32::WHITE, Color32::BLACK),
    };
    egui::Frame::new().fill(fill).show(ui, |ui| {
        ui.set_min_size(size);
        ui.set_max_size(size);
        // Type scales with the window: the same layout fills a small and a big monitor.
        let big = (size.y * 0.09).clamp(28.0, 120.0);
        ui.vertical_centered(|ui| match shown(state) {
            Shown::Idle => {
                ui.add_space(size.y * 0.38);
                let name = if state.display.shop_name.is_empty() {
                    state.t("欢迎光临", "Welcome")
                } else {
                    state.display.shop_name.as_str()
                };
                ui.label(RichText::new(name).size(big).strong().color(text));
            }
            Shown::Pay => pay(ui, state, textures, size, big),
            Shown::Paid => {
                ui.add_space(size.y * 0.3);
                ui.label(
                    RichText::new(state.t("支付成功", "Paid"))
                        .size(big * 1.2)
                        .strong()
                        .color(text),
                );
                if let Some(order) = &state.order {
                    let paid = order.paid.unwrap_or(order.payable_or_amount());
                    ui.label(
                        RichText::new(format!("¥{paid}"))
                            .size(big)
                            .strong()
                            .color(text),
                    );
                }
                ui.label(
                    RichText::new(state.t("谢谢惠顾", "Thank you"))
                        .size(big * 0.5)
                        .color(text),
                );
            }
            Shown::Wait => {
                ui.add_space(size.y * 0.4);
                ui.label(
                    RichText::new(state.t("请稍候", "One moment, please"))
                        .size(big)
                        .color(text),
                );
            }
        });
    });
}

/// The QR as large as fits above the amount and the channel.
fn pay(
    ui: &mut egui::Ui,
    state: &TillState,
    textures: &mut QrTextures,
    size: egui::Vec2,
    big: f32,
) {
    let Some(order) = &state.order else {
        return;
    };
    let margin = size.y * 0.03;
    let text_height = big * 2.6 + margin * 3.0;
    let side = (size.y - text_height).min(size.x - 2.0 * margin).max(80.0);
    ui.add_space(margin);
    let (rect, response) = ui.allocate_exact_size(vec2(side, side), egui::Sense::hover());
    let qr = state
        .qr
        .as_ref()
        .and_then(|qr| textures.get(ui.ctx(), &order.order_no, qr).ok());
    match qr {
        Some(texture) => {
            ui.painter().rect_filled(rect, 0.0, Color32::WHITE);
            let uv = egui::Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0));
            // The texture has no quiet zone of its own: keep a white margin round it.
            ui.painter()
                .image(texture.id(), rect.shrink(side * 0.04), uv, Color32::WHITE);
            response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "QR"));
        }
        None => {
            ui.painter().text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                state.t("正在生成二维码…", "Getting the QR…"),
                egui::FontId::proportional(big * 0.5),
                Color32::DARK_GRAY,
            );
        }
    }
    ui.add_space(margin);
    ui.label(
        RichText::new(format!(
            "{} ¥{}",
            state.t("请支付", "Please pay"),
            order.payable_or_amount()
        ))
        .size(big)
        .strong()
        .color(Color32::BLACK),
    );
    ui.label(
        RichText::new(channel_name(state, order.channel))
            .size(big * 0.6)
            .strong()
            .color(channel_color(order.channel)),
    );
}
