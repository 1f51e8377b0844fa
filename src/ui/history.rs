//! The history screen (F2): one business day at a time, a virtual table of its orders (only
//! the visible rows are drawn, their pages fetched on demand), filters, the detail panel with
//! the order's event log, and the day summary with an hourly bar chart of the takings.
//!
//! Invariants: nothing here reads the ledger; rows come from the page cache in
//! [`crate::app::history::HistoryState`] and a missing page shows "…" until it arrives.

use chrono::Local;
use egui::{Color32, RichText};
use egui_extras::{Column, TableBuilder};

use crate::app::state::{Action, TillState};
use crate::day::{clock_label, local_time};
use crate::ledger::{Figures, GroupTotals, HistoryFilter, OrderRow};
use crate::model::{Channel, Fen, PaymentStatus};

/// The table's row height.
const ROW_HEIGHT: f32 = 22.0;

const PAID_GREEN: Color32 = Color32::from_rgb(0x0A, 0x8F, 0x3C);

/// A small button with its key shown, e.g. `前一天 [←]`.
pub(super) fn small_key_button(text: &str, key: &str) -> egui::Button<'static> {
    egui::Button::new(format!("{text} [{key}]"))
}

pub(super) fn show(ui: &mut egui::Ui, state: &mut TillState, actions: &mut Vec<Action>) {
    // The screen's keys (arrows, Enter) belong to the table: a button or menu clicked with the
    // mouse must not keep the focus, or egui would move it with the arrows and press it with
    // Enter. Only a text field keeps it, while staff type in it.
    if !ui.ctx().egui_wants_keyboard_input() {
        ui.memory_mut(|m| {
            if let Some(id) = m.focused() {
                m.surrender_focus(id);
            }
        });
    }
    day_bar(ui, state);
    filter_bar(ui, state);
    if let Some(message) = &state.history.export_message {
        export_line(ui, message);
    }
    ui.separator();
    if state.history.detail_open {
        egui::Panel::right("order_detail")
            .resizable(true)
            .default_size(420.0)
            .max_size(520.0)
            .show(ui, |ui| detail(ui, state, actions));
    }
    egui::Panel::bottom("day_summary")
        .resizable(true)
        .min_size(200.0)
        .default_size(250.0)
        .show(ui, |ui| summary(ui, state));
    // Narrower than its columns (the detail panel open): scroll sideways, never overlap.
    egui::ScrollArea::horizontal()
        .id_salt("history_table_x")
        .show(ui, |ui| table(ui, state));
}

/// The export's outcome, in the warning colour when it failed.
pub(super) fn export_line(ui: &mut egui::Ui, message: &Result<String, String>) {
    match message {
        Ok(text) => ui.label(RichText::new(text).color(PAID_GREEN)),
        Err(text) => ui.label(RichText::new(text).color(ui.visuals().error_fg_color)),
    };
}

fn day_bar(ui: &mut egui::Ui, state: &mut TillState) {
    let today = state.today();
    ui.horizontal(|ui| {
        if ui
            .add(small_key_button(state.t("前一天", "Previous day"), "←"))
            .clicked()
        {
            state.move_day(-1);
        }
        let date = state.history.date.unwrap_or(today);
        let mut text = format!("{}  {date}", state.t("营业日", "Business day"));
        if date == today {
            text.push_str(state.t(" (今天)", " (today)"));
        }
        ui.label(RichText::new(text).size(20.0).strong());
        if ui
            .add_enabled(
                date < today,
                small_key_button(state.t("后一天", "Next day"), "→"),
            )
            .clicked()
        {
            state.move_day(1);
        }
        if ui
            .add(small_key_button(state.t("今天", "Today"), "Home"))
            .clicked()
        {
            state.history.show_day(today);
        }
        date_picker(ui, state);
        ui.separator();
        if ui
            .add(small_key_button(
                state.t("导出当天 CSV", "Export day CSV"),
                "F7",
            ))
            .clicked()
        {
            state.history.export_days(date, date);
        }
    });
}

/// A date typed as `YYYY-MM-DD` (Enter jumps there); keyboard focus stays in the field while
/// typing, so the screen's keys do not fire.
fn date_picker(ui: &mut egui::Ui, state: &mut TillState) {
    let id = ui.scope_id().with("pick_date");
    let mut text: String = ui.data_mut(|d| d.get_temp(id)).unwrap_or_default();
    let response = ui.add(
        egui::TextEdit::singleline(&mut text)
            .hint_text(state.t("跳到日期 YYYY-MM-DD", "go to YYYY-MM-DD"))
            .desired_width(150.0),
    );
    if response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
        match crate::day::parse_date(text.trim()) {
            Ok(date) => {
                state.history.show_day(date.min(state.today()));
                text.clear();
            }
            Err(err) => state.history.export_message = Some(Err(err)),
        }
    }
    ui.data_mut(|d| d.insert_temp(id, text));
}

fn filter_bar(ui: &mut egui::Ui, state: &mut TillState) {
    let mut filter = state.history.filter.clone();
    let any = state.t("全部", "all").to_string();
    ui.horizontal(|ui| {
        ui.label(state.t("状态:", "Status:"));
        egui::ComboBox::from_id_salt("filter_status")
            .selected_text(filter.status.map_or(any.clone(), |s| status_name(state, s)))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut filter.status, None, any.clone());
                for status in PaymentStatus::ALL {
                    ui.selectable_value(
                        &mut filter.status,
                        Some(status),
                        status_name(state, status),
                    );
                }
            });
        ui.label(state.t("渠道:", "Channel:"));
        egui::ComboBox::from_id_salt("filter_channel")
            .selected_text(
                filter
                    .channel
                    .map_or(any.clone(), |c| channel_name(state, c)),
            )
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut filter.channel, None, any.clone());
                for channel in Channel::ALL {
                    ui.selectable_value(
                        &mut filter.channel,
                        Some(channel),
                        channel_name(state, channel),
                    );
                }
            });
        ui.label(state.t("平台:", "Provider:"));
        text_choice(
            ui,
            "filter_provider",
            &mut filter.provider_id,
            &state.history.choices.providers,
            &any,
        );
        ui.label(state.t("收银员:", "Operator:"));
        text_choice(
            ui,
            "filter_operator",
            &mut filter.operator,
            &state.history.choices.operators,
            &any,
        );
        ui.checkbox(
            &mut filter.flagged_only,
            state.t("只看异常", "flagged only"),
        );
        if filter != HistoryFilter::default()
            && ui.button(state.t("清除筛选", "Clear filters")).clicked()
        {
            filter = HistoryFilter::default();
        }
    });
    if filter != state.history.filter {
        // A choice made by keyboard or screen reader closes its menu too, as a click does;
        // an open menu would keep the screen's keys.
        egui::Popup::close_all(ui.ctx());
    }
    state.history.set_filter(filter);
}

fn text_choice(
    ui: &mut egui::Ui,
    id: &str,
    value: &mut Option<String>,
    choices: &[String],
    any: &str,
) {
    egui::ComboBox::from_id_salt(id)
        .selected_text(value.clone().unwrap_or_else(|| any.to_string()))
        .show_ui(ui, |ui| {
            ui.selectable_value(value, None, any);
            for choice in choices {
                let shown = if choice.is_empty() { "-" } else { choice };
                ui.selectable_value(value, Some(choice.clone()), shown);
            }
        });
}

/// The status in the UI language.
pub(super) fn status_name(state: &TillState, status: PaymentStatus) -> String {
    state.t(status.name_zh(), status.name_en()).to_string()
}

fn channel_name(state: &TillState, channel: Channel) -> String {
    state.t(channel.name_zh(), channel.name_en()).to_string()
}

fn time_of_day(ms: i64) -> String {
    let full = local_time(&Local, ms);
    full.split_once(' ')
        .map_or(full.clone(), |(_, time)| time.to_string())
}

fn flags(state: &TillState, order: &OrderRow) -> String {
    let mut out = Vec::new();
    if order.late_paid {
        out.push(state.t("迟付", "late"));
    }
    if order.amount_mismatch {
        out.push(state.t("金额不符", "mismatch"));
    }
    if order.demo {
        out.push(state.t("演示", "demo"));
    }
    out.join(" ")
}

fn table(ui: &mut egui::Ui, state: &mut TillState) {
    let total = state.history.total.unwrap_or(0);
    if state.history.total == Some(0) {
        ui.label(
            RichText::new(state.t("这一天没有订单", "No orders on this day"))
                .size(18.0)
                .weak(),
        );
        return;
    }
    let headers = [
        state.t("时间", "Time"),
        state.t("订单号", "Order no"),
        state.t("渠道", "Channel"),
        state.t("平台", "Provider"),
        state.t("金额", "Amount"),
        state.t("应付", "To pay"),
        state.t("实付", "Paid"),
        state.t("状态", "Status"),
        state.t("收银员", "Operator"),
        state.t("标记", "Flags"),
    ];
    let mut builder = TableBuilder::new(ui)
        .id_salt("history_table")
        .striped(true)
        .sense(egui::Sense::click())
        .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
        .column(Column::exact(70.0))
        .column(Column::initial(270.0).at_least(120.0).clip(true))
        .column(Column::exact(80.0))
        .column(Column::initial(100.0).clip(true))
        .columns(Column::exact(70.0), 3)
        .column(Column::exact(60.0))
        .column(Column::initial(60.0).clip(true))
        .column(Column::remainder().at_least(60.0));
    if let Some(row) = state.history.scroll_to.take() {
        builder = builder.scroll_to_row(row, None);
    }
    let mut clicked = None;
    let mut double_clicked = false;
    builder
        .header(ROW_HEIGHT, |mut header| {
            for title in headers {
                header.col(|ui| {
                    ui.strong(title);
                });
            }
        })
        .body(|body| {
            body.rows(ROW_HEIGHT, total, |mut row| {
                let index = row.index();
                row.set_selected(state.history.selected == Some(index));
                let order = state.history.row(index).cloned();
                match order {
                    Some(order) => order_cells(&mut row, state, &order),
                    None => {
                        row.col(|ui| {
                            ui.label("…");
                        });
                    }
                }
                let response = row.response();
                if response.clicked() {
                    clicked = Some(index);
                }
                if response.double_clicked() {
                    clicked = Some(index);
                    double_clicked = true;
                }
            });
        });
    if let Some(index) = clicked {
        state.history.selected = Some(index);
        if double_clicked || state.history.detail_open {
            state.history.open_detail();
        }
    }
}

fn order_cells(row: &mut egui_extras::TableRow<'_, '_>, state: &TillState, order: &OrderRow) {
    let paid = order.paid.map(|f| format!("¥{f}")).unwrap_or_default();
    let status = status_name(state, order.status);
    let cells = [
        time_of_day(order.created_at),
        order.order_no.to_string(),
        channel_name(state, order.channel),
        order.provider_id.clone(),
        format!("¥{}", order.amount),
        format!("¥{}", order.payable_or_amount()),
        paid,
    ];
    for cell in cells {
        row.col(|ui| {
            ui.label(cell);
        });
    }
    row.col(|ui| {
        let text = RichText::new(status);
        ui.label(if order.status == PaymentStatus::Paid {
            text.color(PAID_GREEN)
        } else {
            text
        });
    });
    row.col(|ui| {
        ui.label(order.operator.clone());
    });
    row.col(|ui| {
        let flags = flags(state, order);
        if order.late_paid || order.amount_mismatch {
            ui.label(RichText::new(flags).color(ui.visuals().warn_fg_color));
        } else {
            ui.label(flags);
        }
    });
}

fn detail(ui: &mut egui::Ui, state: &mut TillState, actions: &mut Vec<Action>) {
    let Some((order, events)) = state.history.detail.clone() else {
        ui.label(state.t("正在读取…", "Loading…"));
        return;
    };
    ui.horizontal(|ui| {
        ui.heading(state.t("订单详情", "Order detail"));
        if ui
            .add(small_key_button(state.t("关闭", "Close"), "Esc"))
            .clicked()
        {
            state.history.close_detail();
        }
    });
    // Fields and the event log scroll together: a long log stays reachable.
    egui::ScrollArea::vertical()
        .id_salt("order_detail_scroll")
        .auto_shrink([false, false])
        .show(ui, |ui| detail_body(ui, state, actions, &order, &events));
}

fn detail_body(
    ui: &mut egui::Ui,
    state: &TillState,
    actions: &mut Vec<Action>,
    order: &OrderRow,
    events: &[crate::ledger::EventRow],
) {
    let fields: Vec<(&str, String)> = vec![
        (state.t("订单号", "Order no"), order.order_no.to_string()),
        (
            state.t("创建时间", "Created"),
            local_time(&Local, order.created_at),
        ),
        (
            state.t("渠道", "Channel"),
            channel_name(state, order.channel),
        ),
        (
            state.t("平台", "Provider"),
            format!("{} ({})", order.provider_id, order.provider_kind),
        ),
        (state.t("金额", "Amount"), format!("¥{}", order.amount)),
        (
            state.t("应付", "To pay"),
            format!("¥{}", order.payable_or_amount()),
        ),
        (
            state.t("实付", "Paid"),
            order.paid.map(|f| format!("¥{f}")).unwrap_or_default(),
        ),
        (state.t("状态", "Status"), status_name(state, order.status)),
        (state.t("收银员", "Operator"), order.operator.clone()),
        (
            state.t("平台单号", "Provider order"),
            order.provider_order_id.clone().unwrap_or_default(),
        ),
        (
            state.t("付款时间", "Paid at"),
            order
                .paid_at
                .map(|ms| local_time(&Local, ms))
                .unwrap_or_default(),
        ),
        (state.t("标记", "Flags"), flags(state, order)),
        (state.t("备注", "Subject"), order.subject.clone()),
        (
            state.t("消息", "Message"),
            order.message.clone().unwrap_or_default(),
        ),
    ];
    egui::Grid::new("detail_fields")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            for (name, value) in fields {
                if value.is_empty() {
                    continue;
                }
                ui.label(RichText::new(name).weak());
                ui.add(egui::Label::new(value).wrap());
                ui.end_row();
            }
        });
    let open = matches!(
        order.status,
        PaymentStatus::Creating | PaymentStatus::Pending | PaymentStatus::Confirming
    );
    if ui
        .add_enabled(
            open,
            small_key_button(state.t("再次查询", "Query again"), "F5"),
        )
        .clicked()
    {
        actions.push(Action::QueryNow(order.order_no.clone()));
    }
    ui.separator();
    ui.strong(state.t("事件记录", "Event log"));
    ui.vertical(|ui| {
        for (index, event) in events.iter().enumerate() {
            let change = match (&event.from, &event.to) {
                (Some(from), Some(to)) => format!("  {from} → {to}"),
                (None, Some(to)) => format!("  → {to}"),
                _ => String::new(),
            };
            ui.label(
                RichText::new(format!("{}  {}{change}", time_of_day(event.at), event.kind))
                    .strong(),
            );
            ui.label(event.detail.as_str());
            if let Some(raw) = &event.raw {
                egui::CollapsingHeader::new(state.t("平台原始应答", "Provider's raw answer"))
                    .id_salt(("raw", index))
                    .show(ui, |ui| {
                        ui.add(egui::Label::new(RichText::new(raw).monospace().size(12.0)).wrap());
                    });
            }
            ui.separator();
        }
    });
}

fn summary(ui: &mut egui::Ui, state: &TillState) {
    let Some(summary) = &state.history.summary else {
        ui.label(state.t("正在读取…", "Loading…"));
        return;
    };
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.set_width(520.0);
            egui::ScrollArea::vertical()
                .id_salt("summary_figures")
                .auto_shrink([false, false])
                .show(ui, |ui| figures(ui, state, &summary.figures));
        });
        ui.separator();
        ui.vertical(|ui| hourly_chart(ui, state, summary));
    });
}

/// The figures of a day or a close: counts, paid per channel/provider/operator, flagged.
pub(super) fn figures(ui: &mut egui::Ui, state: &TillState, figures: &Figures) {
    ui.label(
        RichText::new(format!(
            "{} {} {} · ¥{}",
            state.t("已付", "Paid"),
            figures.paid.count,
            state.t("笔", "orders"),
            figures.paid.total
        ))
        .size(20.0)
        .strong()
        .color(PAID_GREEN),
    );
    ui.label(format!(
        "{} {} · {} {} · {} {} · {} {} · {} {}",
        state.t("订单", "orders"),
        figures.orders,
        state.t("未付", "unpaid"),
        figures.unpaid,
        state.t("过期", "expired"),
        figures.expired,
        state.t("已取消", "cancelled"),
        figures.cancelled,
        state.t("失败", "failed"),
        figures.failed
    ));
    ui.horizontal_top(|ui| {
        group(
            ui,
            state.t("按渠道", "By channel"),
            &figures.by_channel,
            |key| {
                key.parse::<Channel>()
                    .map_or(key.to_string(), |c| channel_name(state, c))
            },
        );
        group(
            ui,
            state.t("按平台", "By provider"),
            &figures.by_provider,
            |key| key.to_string(),
        );
        group(
            ui,
            state.t("按收银员", "By operator"),
            &figures.by_operator,
            |key| {
                if key.is_empty() {
                    "-".to_string()
                } else {
                    key.to_string()
                }
            },
        );
    });
    if !figures.flagged.is_empty() {
        ui.label(
            RichText::new(state.t("异常订单:", "Flagged orders:"))
                .color(ui.visuals().warn_fg_color)
                .strong(),
        );
        for flagged in &figures.flagged {
            let mut what = Vec::new();
            if flagged.late_paid {
                what.push(state.t("迟付", "late"));
            }
            if flagged.amount_mismatch {
                what.push(state.t("金额不符", "mismatch"));
            }
            ui.label(format!(
                "{} {} · {} ¥{} · {} ¥{} · {}",
                time_of_day(flagged.created_at),
                flagged.order_no,
                state.t("应付", "asked"),
                flagged.payable,
                state.t("实付", "paid"),
                flagged.paid.unwrap_or(Fen(0)),
                what.join(" ")
            ));
        }
    }
}

fn group(ui: &mut egui::Ui, title: &str, rows: &[GroupTotals], name: impl Fn(&str) -> String) {
    ui.vertical(|ui| {
        ui.strong(title);
        egui::Grid::new(title).show(ui, |ui| {
            for row in rows {
                ui.label(name(&row.key));
                ui.label(format!("{}", row.count));
                ui.label(format!("¥{}", row.total));
                ui.end_row();
            }
        });
    });
    ui.add_space(12.0);
}

fn hourly_chart(ui: &mut egui::Ui, state: &TillState, summary: &crate::ledger::DaySummary) {
    let labels: Vec<String> = summary
        .hourly
        .iter()
        .map(|b| clock_label(&Local, b.start_ms))
        .collect();
    let bars: Vec<egui_plot::Bar> = summary
        .hourly
        .iter()
        .zip(&labels)
        .enumerate()
        .map(|(index, (bucket, label))| {
            egui_plot::Bar::new(index as f64, bucket.total.0 as f64 / 100.0)
                .width(0.8)
                .name(format!("{label} ¥{} ({})", bucket.total, bucket.count))
        })
        .collect();
    let chart =
        egui_plot::BarChart::new(state.t("每小时收款 (元)", "Takings per hour (yuan)"), bars)
            .color(PAID_GREEN)
            .element_formatter(Box::new(|bar, _| bar.name.clone()));
    ui.vertical(|ui| {
        ui.strong(state.t("每小时收款 (元)", "Takings per hour (yuan)"));
        egui_plot::Plot::new("hourly_takings")
            .allow_zoom(false)
            .allow_drag(false)
            .allow_scroll(false)
            .allow_boxed_zoom(false)
            .allow_double_click_reset(false)
            .show_x(false)
            .show_y(false)
            .include_y(0.0)
            .include_x(-0.5)
            .include_x(labels.len() as f64 - 0.5)
            .x_axis_formatter(move |mark, _| {
                let at = mark.value.round();
                if (mark.value - at).abs() > 0.01 || at < 0.0 {
                    return String::new();
                }
                labels.get(at as usize).cloned().unwrap_or_default()
            })
            .show(ui, |plot| plot.bar_chart(chart));
    });
}
