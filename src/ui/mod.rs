//! Drawing: the top bar (with the demo banner), the status bar, and one screen at a time.
//! Screens read the view model and return [`Action`]s; they never call the service.

mod closes;
mod customer;
mod done;
mod history;
mod qr;
mod settings;
mod till;

use egui::{Color32, RichText};

use crate::app::history::View;
use crate::app::state::{Action, Screen, TillState};
use crate::config::Language;

pub use self::customer::CustomerDisplay;
pub use self::qr::QrTextures;

/// The demo banner's colour: loud, so no demo sale passes for a real one.
pub const DEMO_COLOR: Color32 = Color32::from_rgb(0xE6, 0x7E, 0x00);

/// Draws the whole window; returns what staff asked for.
pub fn draw(ui: &mut egui::Ui, state: &mut TillState, textures: &mut QrTextures) -> Vec<Action> {
    let mut actions = Vec::new();
    top_bar(ui, state);
    status_bar(ui, state);
    egui::CentralPanel::default_margins().show(ui, |ui| match (state.view, state.screen.clone()) {
        (View::History, _) => history::show(ui, state, &mut actions),
        (View::Closes, _) => closes::show(ui, state),
        (View::Settings, _) => settings::show(ui, state),
        (View::Till, Screen::Till | Screen::PickChannel) if state.picking_operator => {
            operator_list(ui, state);
        }
        (View::Till, Screen::Till | Screen::PickChannel) => till::show(ui, state, &mut actions),
        (View::Till, Screen::Creating(_) | Screen::Qr(_)) => {
            qr::show(ui, state, textures, &mut actions);
        }
        (View::Till, Screen::Done(..)) => done::show(ui, state, &mut actions),
    });
    actions
}

fn top_bar(ui: &mut egui::Ui, state: &mut TillState) {
    egui::Panel::top("top").show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.heading(state.t("qrtill 收银台", "qrtill till"));
            view_switch(ui, state);
            if state.demo {
                ui.add_space(16.0);
                egui::Frame::new()
                    .fill(DEMO_COLOR)
                    .inner_margin(egui::Margin::symmetric(10, 4))
                    .show(ui, |ui| {
                        ui.label(
                            RichText::new(
                                state.t("演示模式 DEMO · 非真实收款", "DEMO MODE · no real money"),
                            )
                            .color(Color32::WHITE)
                            .strong()
                            .size(22.0),
                        );
                    });
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                provider_switch(ui, state);
                let other = match state.language {
                    Language::Zh => "English",
                    Language::En => "中文",
                };
                if ui.button(other).clicked() {
                    state.language = match state.language {
                        Language::Zh => Language::En,
                        Language::En => Language::Zh,
                    };
                }
            });
        });
    });
}

/// The screen buttons; leaving the till is refused while a sale is on screen.
fn view_switch(ui: &mut egui::Ui, state: &mut TillState) {
    let free = matches!(state.screen, Screen::Till | Screen::PickChannel);
    let views = [
        (View::Till, state.t("收银", "Till"), "F1"),
        (View::History, state.t("历史", "History"), "F2"),
        (View::Closes, state.t("交班", "Closes"), "F3"),
        (View::Settings, state.t("设置", "Settings"), "F4"),
    ];
    let mut chosen = None;
    for (view, name, key) in views {
        let button = egui::Button::selectable(state.view == view, format!("{name} [{key}]"));
        if ui.add_enabled(free || view == View::Till, button).clicked() {
            chosen = Some(view);
        }
    }
    if let Some(view) = chosen {
        state.open_view(view);
    }
}

/// The provider for the next sale: a menu, and F6 cycles. Only on the till screens.
fn provider_switch(ui: &mut egui::Ui, state: &mut TillState) {
    if state.providers.len() < 2 {
        return;
    }
    let enabled = matches!(state.screen, Screen::Till | Screen::PickChannel);
    let mut chosen = None;
    ui.add_enabled_ui(enabled, |ui| {
        egui::ComboBox::new("provider", state.t("下一笔", "Next sale"))
            .selected_text(format!("{} [F6]", state.provider_name))
            .show_ui(ui, |ui| {
                for info in &state.providers {
                    if ui
                        .selectable_label(
                            info.id == state.provider_id,
                            format!("{} ({})", info.name, info.id),
                        )
                        .clicked()
                    {
                        chosen = Some(info.id.clone());
                    }
                }
            });
    });
    if let Some(id) = chosen {
        state.switch_provider(&id);
    }
}

/// Who works the till now: keys 1–9 pick, Esc keeps the current one.
fn operator_list(ui: &mut egui::Ui, state: &mut TillState) {
    ui.vertical_centered(|ui| {
        ui.add_space(40.0);
        ui.heading(RichText::new(state.t("谁在收银?", "Who is at the till?")).size(40.0));
        ui.add_space(20.0);
        let mut chosen = None;
        for (index, name) in state.operators.iter().enumerate() {
            let button = key_button(name, &(index + 1).to_string(), egui::vec2(360.0, 64.0))
                .selected(*name == state.operator);
            if ui.add(button).clicked() {
                chosen = Some(index + 1);
            }
            ui.add_space(8.0);
        }
        if let Some(n) = chosen {
            state.pick_operator(n);
        }
        ui.add_space(12.0);
        ui.label(
            RichText::new(state.t("Esc 保持当前收银员", "Esc keeps the current operator")).weak(),
        );
    });
}

fn status_bar(ui: &mut egui::Ui, state: &mut TillState) {
    egui::Panel::bottom("status").show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            ui.label(format!(
                "{} {} ({})",
                state.t("支付平台:", "Provider:"),
                state.provider_name,
                state.provider_id
            ));
            if let Some(account) = state.account_text() {
                ui.label(RichText::new(format!("· {account}")).weak());
            }
            health(ui, state);
            ui.separator();
            let operator = if state.operator.is_empty() {
                state.t("未设置", "not set").to_string()
            } else {
                state.operator.clone()
            };
            let text = format!("{} {operator}", state.t("收银员:", "Operator:"));
            if state.operators.len() > 1 {
                if ui.button(format!("{text} [F10]")).clicked() {
                    state.picking_operator = true;
                }
            } else {
                ui.label(text);
            }
            ui.separator();
            ui.label(
                RichText::new(format!(
                    "{} {} {} · ¥{}",
                    state.t("今日收款", "Paid today"),
                    state.totals.count,
                    state.t("笔", "sales"),
                    state.totals.total
                ))
                .strong(),
            );
            if let Some(recovered) = state.recovered_text() {
                // Orders from before a restart, still being followed: staff must know they
                // are open even though the till shows no QR for them.
                ui.separator();
                ui.label(
                    RichText::new(recovered)
                        .strong()
                        .color(ui.visuals().warn_fg_color),
                );
            }
            if let Some(notice) = state.notices.last() {
                ui.separator();
                ui.label(RichText::new(notice).color(ui.visuals().warn_fg_color));
            }
        });
    });
}

/// The current provider's health: when it last answered, and while its calls fail, how
/// many in a row, why in plain words, and the key that switches to another account.
fn health(ui: &mut egui::Ui, state: &TillState) {
    if let Some(success) = state.health_success_text() {
        ui.label(RichText::new(format!("· {success}")).weak());
    }
    if let Some((failure, detail)) = state.health_failure_text() {
        ui.label(
            RichText::new(format!("· {failure}"))
                .strong()
                .color(ui.visuals().error_fg_color),
        )
        .on_hover_text(detail);
    }
}

/// A button with its key shown, e.g. `收款 [Enter]`.
fn key_button(text: &str, key: &str, size: egui::Vec2) -> egui::Button<'static> {
    egui::Button::new(RichText::new(format!("{text}  [{key}]")).size(22.0)).min_size(size)
}
