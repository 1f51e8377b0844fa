//! The closes screen (F3): the numbered day closes (交班/日结), newest first; the selected
//! close's figures as they were handed over; "close the day now" behind a confirmation that
//! shows what would be recorded; and the CSV export of a close.
//!
//! Invariant: a close is recorded only from the confirmation, which shows the service's
//! preview of exactly that close.

use chrono::Local;
use egui::RichText;

use super::history::{export_line, figures, small_key_button};
use crate::app::history::{RangeError, month_start};
use crate::app::state::TillState;
use crate::day::local_time;
use crate::ledger::Close;
use crate::service::Command;

pub(super) fn show(ui: &mut egui::Ui, state: &mut TillState) {
    ui.horizontal(|ui| {
        ui.heading(state.t("交班 / 日结", "Day closes"));
        ui.add_space(16.0);
        if ui
            .add(small_key_button(
                state.t("现在交班日结", "Close the day now"),
                "F8",
            ))
            .clicked()
        {
            let operator = state.operator.clone();
            state
                .history
                .outbox
                .push(Command::PreviewClose { operator });
        }
        ui.separator();
        range_export(ui, state);
    });
    if let Some(message) = &state.history.export_message {
        export_line(ui, message);
    }
    ui.separator();
    if let Some(preview) = state.history.preview.clone() {
        confirmation(ui, state, &preview);
        return;
    }
    egui::Panel::left("close_list")
        .resizable(true)
        .default_size(380.0)
        .show(ui, |ui| list(ui, state));
    match state.history.shown_close().cloned() {
        Some(close) => {
            ui.horizontal(|ui| {
                ui.heading(format!(
                    "{} {} {}",
                    state.t("第", "Close no."),
                    close.number,
                    state.t("号交班", "")
                ));
                if ui
                    .add(small_key_button(
                        state.t("导出此交班 CSV", "Export this close CSV"),
                        "F7",
                    ))
                    .clicked()
                {
                    state.history.export_close(close.number);
                }
            });
            close_figures(ui, state, &close);
        }
        None => {
            ui.label(
                RichText::new(state.t("还没有交班记录", "No closes yet"))
                    .size(18.0)
                    .weak(),
            );
        }
    }
}

fn list(ui: &mut egui::Ui, state: &mut TillState) {
    let shown = state.history.shown_close().map(|c| c.number);
    let mut chosen = None;
    egui::ScrollArea::vertical()
        .id_salt("closes_scroll")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for close in &state.history.closes {
                let text = format!(
                    "No.{}  {}  {}  ¥{}",
                    close.number,
                    local_time(&Local, close.closed_at),
                    close.operator,
                    close.figures.paid.total
                );
                if ui
                    .selectable_label(shown == Some(close.number), text)
                    .clicked()
                {
                    chosen = Some(close.number);
                }
            }
        });
    if chosen.is_some() {
        state.history.selected_close = chosen;
    }
}

fn close_figures(ui: &mut egui::Ui, state: &TillState, close: &Close) {
    let from = if close.from_ms == 0 {
        state.t("开业起", "the beginning").to_string()
    } else {
        local_time(&Local, close.from_ms)
    };
    ui.label(format!(
        "{} {from} {} {}",
        state.t("时段", "From"),
        state.t("至", "to"),
        local_time(&Local, close.to_ms)
    ));
    ui.label(format!(
        "{} {}",
        state.t("交班人:", "Closed by:"),
        close.operator
    ));
    ui.add_space(6.0);
    egui::ScrollArea::vertical()
        .id_salt("close_figures")
        .show(ui, |ui| figures(ui, state, &close.figures));
}

fn confirmation(ui: &mut egui::Ui, state: &mut TillState, preview: &Close) {
    egui::Frame::group(ui.style())
        .inner_margin(16)
        .show(ui, |ui| {
            ui.heading(format!(
                "{} {} {}?",
                state.t("确认交班日结: 第", "Record close no."),
                preview.number,
                state.t("号", "")
            ));
            close_figures(ui, state, preview);
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                if ui
                    .add(small_key_button(
                        state.t("确认交班", "Confirm close"),
                        "Enter",
                    ))
                    .clicked()
                {
                    let operator = state.operator.clone();
                    state.history.outbox.push(Command::CloseDay { operator });
                }
                if ui
                    .add(small_key_button(state.t("取消", "Cancel"), "Esc"))
                    .clicked()
                {
                    state.history.preview = None;
                }
            });
        });
}

/// The date-range export: two `YYYY-MM-DD` fields (empty: this month's first day, today) and
/// a button; Enter in either field exports too. A refused field is named in the message line.
fn range_export(ui: &mut egui::Ui, state: &mut TillState) {
    let today = state.today();
    ui.label(state.t("导出日期范围 从", "Export days from"));
    let mut enter = date_field(ui, &mut state.history.range_from, month_start(today));
    ui.label(state.t("到", "to"));
    enter |= date_field(ui, &mut state.history.range_to, today);
    let clicked = ui.button(state.t("导出 CSV", "Export CSV")).clicked();
    if !(enter || clicked) {
        return;
    }
    if let Err(err) = state.history.export_range(today) {
        let not_a_date = |field: &str, text: &str, empty: &str| {
            format!(
                "{field} `{text}` {} ({}{empty})",
                state.t(
                    "不是日期, 请按 YYYY-MM-DD 输入",
                    "is not a date: type YYYY-MM-DD"
                ),
                state.t("留空为", "empty: "),
            )
        };
        let message = match err {
            RangeError::From(text) => not_a_date(
                state.t("起始日期", "The first day"),
                &text,
                state.t("本月 1 日", "the month's first day"),
            ),
            RangeError::To(text) => not_a_date(
                state.t("结束日期", "The last day"),
                &text,
                state.t("今天", "today"),
            ),
            RangeError::Backwards(from, to) => format!(
                "{} {to} {} {from}",
                state.t("结束日期", "The last day"),
                state.t("早于起始日期", "is before the first day")
            ),
        };
        state.history.export_message = Some(Err(message));
    }
}

/// A `YYYY-MM-DD` field whose hint is the date an empty field stands for; true when Enter
/// was pressed in it.
fn date_field(ui: &mut egui::Ui, text: &mut String, empty: chrono::NaiveDate) -> bool {
    let field = ui.add(
        egui::TextEdit::singleline(text)
            .hint_text(empty.to_string())
            .desired_width(140.0),
    );
    field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter))
}
