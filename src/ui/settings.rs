//! The settings screen (F4): general settings on the left, the provider accounts on the
//! right (add, edit, remove, test connection), "save and apply" at the bottom.
//!
//! Invariant: a merchant-key field is always masked and starts empty; a stored key is only
//! said to be set ("leave empty to keep it"), never shown.

use egui::RichText;

use super::history::small_key_button;
use crate::app::state::TillState;
use crate::config::{Language, Theme};
use crate::settings::Draft;

pub(super) fn show(ui: &mut egui::Ui, state: &mut TillState) {
    let en = state.language == Language::En;
    let t = |zh: &'static str, e: &'static str| if en { e } else { zh };
    ui.horizontal(|ui| {
        ui.heading(t("设置", "Settings"));
        ui.add_space(16.0);
        let saving = state.settings.saving;
        if ui
            .add_enabled(
                !saving && state.settings.draft.is_some(),
                small_key_button(t("保存并应用", "Save and apply"), "Ctrl+S"),
            )
            .clicked()
        {
            state.settings.save();
        }
        if saving {
            ui.spinner();
        }
        if ui
            .add(small_key_button(t("返回收银", "Back to the till"), "Esc"))
            .clicked()
        {
            state.open_view(crate::app::history::View::Till);
        }
    });
    if let Some(message) = &state.settings.message {
        let (text, color) = match message {
            Ok(text) => (text.as_str(), ui.visuals().text_color()),
            Err(text) => (text.as_str(), ui.visuals().error_fg_color),
        };
        ui.label(RichText::new(text).color(color).strong());
    }
    ui.separator();
    let Some(mut draft) = state.settings.draft.take() else {
        ui.label(t(
            "设置在此窗口不可用 (没有配置文件位置)。",
            "Settings are not available in this window (no config file location).",
        ));
        return;
    };
    egui::Panel::left("settings_general")
        .resizable(true)
        .default_size(430.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| general(ui, state, &mut draft, en));
        });
    egui::ScrollArea::vertical()
        .id_salt("settings_accounts")
        .show(ui, |ui| accounts(ui, state, &mut draft, en));
    state.settings.draft = Some(draft);
}

/// A labelled single-line field.
fn field(ui: &mut egui::Ui, label: &str, text: &mut String, hint: &str) -> egui::Response {
    ui.label(label);
    let response = ui.add(
        egui::TextEdit::singleline(text)
            .hint_text(hint)
            .desired_width(f32::INFINITY),
    );
    ui.end_row();
    response
}

fn general(ui: &mut egui::Ui, state: &mut TillState, draft: &mut Draft, en: bool) {
    let t = |zh: &'static str, e: &'static str| if en { e } else { zh };
    egui::Grid::new("settings_grid")
        .num_columns(2)
        .spacing([12.0, 10.0])
        .show(ui, |ui| {
            let first = field(ui, t("收银员", "Operator"), &mut draft.operator, "张三");
            if std::mem::take(&mut state.settings.focus_first) {
                first.request_focus();
            }
            field(
                ui,
                t("全部收银员 (逗号分隔)", "All operators (commas)"),
                &mut state.settings.operators_text,
                "张三, 李四",
            );
            ui.label(t("语言", "Language"));
            ui.horizontal(|ui| {
                ui.radio_value(&mut draft.language, Language::Zh, "中文");
                ui.radio_value(&mut draft.language, Language::En, "English");
            });
            ui.end_row();
            ui.label(t("主题", "Theme"));
            ui.horizontal(|ui| {
                ui.radio_value(&mut draft.theme, Theme::Dark, t("深色", "Dark"));
                ui.radio_value(&mut draft.theme, Theme::Light, t("浅色", "Light"));
            });
            ui.end_row();
            field(
                ui,
                t("营业日开始 (时:分)", "Business day starts (HH:MM)"),
                &mut draft.day_start,
                "00:00",
            );
            ui.label(t("默认支付平台", "Default provider"));
            egui::ComboBox::new("default_provider", "")
                .selected_text(draft.default_provider.clone())
                .show_ui(ui, |ui| {
                    for p in &draft.providers {
                        ui.selectable_value(&mut draft.default_provider, p.id.clone(), &p.id);
                    }
                });
            ui.end_row();
            ui.label(t("收款提示音", "Paid sound"));
            ui.horizontal(|ui| {
                ui.checkbox(&mut draft.sound.enabled, t("开启", "on"));
                ui.add(
                    egui::Slider::new(&mut draft.sound.volume, 0..=crate::sound::MAX_VOLUME)
                        .text(t("音量", "volume")),
                );
            });
            ui.end_row();
            ui.label(t("顾客显示屏", "Customer display"));
            ui.horizontal(|ui| {
                ui.checkbox(&mut draft.display.enabled, t("开启", "on"));
                ui.checkbox(&mut draft.display.fullscreen, t("全屏", "full screen"));
            });
            ui.end_row();
            field(
                ui,
                t("店名 (空闲时显示)", "Shop name (shown when idle)"),
                &mut draft.display.shop_name,
                "老王小卖部",
            );
            field(
                ui,
                t(
                    "显示屏位置 x,y (顾客显示器上的一点)",
                    "Display position x,y (a point on the customer's monitor)",
                ),
                &mut draft.display_position,
                "1920,0",
            );
            ui.label(t("回调监听", "Callback listener"));
            ui.checkbox(&mut draft.listener_enabled, t("开启", "on"));
            ui.end_row();
            field(
                ui,
                t("监听地址", "Listen address"),
                &mut draft.listen,
                crate::config::DEFAULT_LISTEN,
            );
            field(
                ui,
                t("公网地址 (可空)", "Public URL (optional)"),
                &mut draft.public_url,
                "https://shop.example.com",
            );
        });
}

fn accounts(ui: &mut egui::Ui, state: &mut TillState, draft: &mut Draft, en: bool) {
    let t = |zh: &'static str, e: &'static str| if en { e } else { zh };
    ui.horizontal(|ui| {
        ui.label(RichText::new(t("支付平台账户", "Provider accounts")).strong());
        ui.label(RichText::new(t("[PgUp/PgDn 选择]", "[PgUp/PgDn to choose]")).weak());
    });
    ui.horizontal_wrapped(|ui| {
        for (index, p) in draft.providers.iter().enumerate() {
            let mark = if p.id == draft.default_provider {
                " ★"
            } else {
                ""
            };
            let label = format!("{} · {}{mark}", p.id, p.kind_name());
            if ui
                .selectable_label(state.settings.selected == index, label)
                .clicked()
            {
                state.settings.selected = index;
            }
        }
    });
    ui.horizontal(|ui| {
        let kind = if state.settings.new_kind.is_empty() {
            "ispay"
        } else {
            state.settings.new_kind
        };
        egui::ComboBox::new("new_kind", t("新账户的平台", "New account's provider"))
            .selected_text(kind)
            .show_ui(ui, |ui| {
                for (name, display_name) in crate::settings::kinds() {
                    ui.selectable_value(
                        &mut state.settings.new_kind,
                        name,
                        format!("{display_name} ({name})"),
                    );
                }
            });
        if ui
            .add(small_key_button(t("添加账户", "Add account"), "F7"))
            .clicked()
        {
            state.settings.draft = Some(draft.clone());
            state.settings.add_account();
            if let Some(d) = state.settings.draft.take() {
                *draft = d;
            }
        }
    });
    ui.separator();
    let selected = state.settings.selected;
    let Some(account) = draft.providers.get_mut(selected) else {
        ui.label(t(
            "还没有账户: 选一个平台, 点 添加账户",
            "No account yet: pick a provider and press Add account",
        ));
        return;
    };
    ui.heading(format!("{} · {}", account.id, account.kind_name()));
    if account.demo {
        ui.label(t(
            "演示模式的内置沙箱账户, 不可修改, 不写入配置文件。",
            "The built-in sandbox's demo account: not editable, not written to the config file.",
        ));
    }
    let id = account.id.clone();
    ui.add_enabled_ui(!account.demo, |ui| {
        egui::Grid::new(("account_grid", selected))
            .num_columns(2)
            .spacing([12.0, 10.0])
            .show(ui, |ui| {
                field(ui, "id", &mut account.id, "main");
                for f in &mut account.fields {
                    let name = if f.field.required {
                        format!("{} *", f.field.name)
                    } else {
                        f.field.name.to_string()
                    };
                    ui.label(name);
                    let hint = match (f.field.secret, f.stored) {
                        (true, true) => t("已设置 (留空则不变)", "set (leave empty to keep it)"),
                        (true, false) => t("请输入密钥", "type the key"),
                        (false, _) if f.field.required => t("必填", "required"),
                        (false, _) => t("可空, 用默认值", "optional"),
                    };
                    ui.add(
                        egui::TextEdit::singleline(&mut f.text)
                            .password(f.field.secret)
                            .hint_text(hint)
                            .desired_width(f32::INFINITY),
                    );
                    ui.end_row();
                }
            });
    });
    ui.add_space(8.0);
    let mut test = false;
    let mut remove = false;
    ui.horizontal(|ui| {
        test = ui
            .add(small_key_button(t("测试连接", "Test connection"), "F5"))
            .clicked();
        remove = ui
            .add_enabled(
                !account.demo,
                small_key_button(t("删除账户", "Remove account"), "F8"),
            )
            .clicked();
    });
    if let Some(verdict) = state.settings.test_of(&id) {
        let (text, color) = match verdict {
            Ok(text) => (text.as_str(), egui::Color32::from_rgb(0x2E, 0xA0, 0x43)),
            Err(text) => (text.as_str(), ui.visuals().error_fg_color),
        };
        ui.label(RichText::new(text).color(color).strong());
    }
    if test || remove {
        state.settings.draft = Some(draft.clone());
        if test {
            state.settings.test_selected();
        } else {
            state.settings.remove_selected();
        }
        if let Some(d) = state.settings.draft.take() {
            *draft = d;
        }
    }
}
