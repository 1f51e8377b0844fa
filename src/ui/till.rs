//! The till screen: the amount in very large digits, the on-screen keypad, the channel
//! buttons (only the provider's channels), and the channel step after Enter.

use egui::{Color32, RichText, vec2};

use super::key_button;
use crate::app::state::{Action, PadKey, Screen, TillState};
use crate::model::Channel;

/// The channel's brand colour.
pub fn channel_color(channel: Channel) -> Color32 {
    let [r, g, b] = channel.rgb();
    Color32::from_rgb(r, g, b)
}

/// The channel's name in the UI language.
pub fn channel_name(state: &TillState, channel: Channel) -> &'static str {
    state.t(channel.name_zh(), channel.name_en())
}

pub(super) fn show(ui: &mut egui::Ui, state: &mut TillState, actions: &mut Vec<Action>) {
    ui.vertical_centered(|ui| {
        ui.add_space(8.0);
        let shown = if state.amount_text.is_empty() {
            "0"
        } else {
            &state.amount_text
        };
        ui.label(
            RichText::new(format!("¥ {shown}"))
                .size(110.0)
                .strong()
                .monospace(),
        );
        match &state.error {
            Some(error) => {
                ui.label(
                    RichText::new(error)
                        .size(22.0)
                        .color(ui.visuals().error_fg_color),
                );
            }
            None => {
                ui.label(
                    RichText::new(state.t(
                        "输入金额，按 Enter 选择支付方式",
                        "Type the amount, press Enter to pick the channel",
                    ))
                    .size(20.0)
                    .weak(),
                );
            }
        }
        ui.add_space(12.0);
    });
    if state.screen == Screen::PickChannel {
        pick_channel(ui, state, actions);
        return;
    }
    ui.columns(2, |columns| {
        if let [left, right] = columns {
            keypad(left, state);
            channels(right, state, actions);
        }
    });
}

fn keypad(ui: &mut egui::Ui, state: &mut TillState) {
    let size = vec2(96.0, 72.0);
    let rows: [[(&str, PadKey); 3]; 4] = [
        [
            ("7", PadKey::Digit(7)),
            ("8", PadKey::Digit(8)),
            ("9", PadKey::Digit(9)),
        ],
        [
            ("4", PadKey::Digit(4)),
            ("5", PadKey::Digit(5)),
            ("6", PadKey::Digit(6)),
        ],
        [
            ("1", PadKey::Digit(1)),
            ("2", PadKey::Digit(2)),
            ("3", PadKey::Digit(3)),
        ],
        [
            (".", PadKey::Dot),
            ("0", PadKey::Digit(0)),
            ("←", PadKey::Backspace),
        ],
    ];
    // Centre the pad in its column: a grid lays out from the left edge.
    let pad_width = size.x * 3.0 + 16.0;
    let margin = ((ui.available_width() - pad_width) / 2.0).max(0.0);
    ui.horizontal(|ui| {
        ui.add_space(margin);
        ui.vertical(|ui| keypad_grid(ui, state, rows, size));
    });
}

fn keypad_grid(
    ui: &mut egui::Ui,
    state: &mut TillState,
    rows: [[(&str, PadKey); 3]; 4],
    size: egui::Vec2,
) {
    ui.vertical(|ui| {
        egui::Grid::new("keypad")
            .spacing(vec2(8.0, 8.0))
            .show(ui, |ui| {
                for row in rows {
                    for (label, key) in row {
                        let button =
                            egui::Button::new(RichText::new(label).size(36.0)).min_size(size);
                        if ui.add(button).clicked() {
                            state.press(key);
                        }
                    }
                    ui.end_row();
                }
            });
        ui.add_space(8.0);
        let clear =
            egui::Button::new(RichText::new(state.t("清除 C [Esc]", "Clear C [Esc]")).size(24.0))
                .min_size(vec2(size.x * 3.0 + 16.0, 56.0));
        let width = size.x * 3.0 + 16.0;
        let clicked = ui
            .allocate_ui_with_layout(
                vec2(width, 56.0),
                egui::Layout::centered_and_justified(egui::Direction::TopDown),
                |ui| ui.add(clear).clicked(),
            )
            .inner;
        if clicked {
            state.press(PadKey::Clear);
        }
    });
}

fn channels(ui: &mut egui::Ui, state: &mut TillState, actions: &mut Vec<Action>) {
    ui.vertical_centered(|ui| {
        ui.label(
            RichText::new(state.t("点击支付方式直接收款", "Click a channel to charge")).size(20.0),
        );
        ui.add_space(8.0);
        for (index, channel) in state.channels.clone().into_iter().enumerate() {
            let selected = channel == state.channel;
            let text = format!("{}  {}", index + 1, channel_name(state, channel));
            let button = egui::Button::new(
                RichText::new(text)
                    .size(30.0)
                    .color(Color32::WHITE)
                    .strong(),
            )
            .fill(channel_color(channel))
            .stroke(if selected {
                egui::Stroke::new(4.0, ui.visuals().strong_text_color())
            } else {
                egui::Stroke::NONE
            })
            .min_size(vec2(320.0, 72.0));
            if ui.add(button).clicked() {
                actions.extend(state.pick_channel(channel));
            }
            ui.add_space(6.0);
        }
        ui.add_space(12.0);
        let charge = key_button(state.t("收款", "Charge"), "Enter", vec2(320.0, 72.0));
        if ui.add(charge).clicked() {
            actions.extend(state.enter());
        }
    });
}

fn pick_channel(ui: &mut egui::Ui, state: &mut TillState, actions: &mut Vec<Action>) {
    ui.vertical_centered(|ui| {
        ui.label(
            RichText::new(state.t(
                "选择支付方式 (按 1-4，Enter 用高亮的)",
                "Pick the channel (keys 1-4, Enter for the highlighted one)",
            ))
            .size(24.0),
        );
        ui.add_space(12.0);
        for (index, channel) in state.channels.clone().into_iter().enumerate() {
            let selected = channel == state.channel;
            let button = egui::Button::new(
                RichText::new(format!("{}  {}", index + 1, channel_name(state, channel)))
                    .size(40.0)
                    .color(Color32::WHITE)
                    .strong(),
            )
            .fill(channel_color(channel))
            .stroke(if selected {
                egui::Stroke::new(6.0, ui.visuals().strong_text_color())
            } else {
                egui::Stroke::NONE
            })
            .min_size(vec2(480.0, 88.0));
            if ui.add(button).clicked() {
                actions.extend(state.pick_channel(channel));
            }
            ui.add_space(8.0);
        }
        ui.add_space(8.0);
        if ui
            .add(key_button(
                state.t("返回", "Back"),
                "Esc",
                vec2(240.0, 56.0),
            ))
            .clicked()
        {
            actions.extend(state.escape());
        }
    });
}
