//! Fonts and style: the bundled CJK subset (GB2312, Noto Sans SC, OFL) behind egui's own
//! Latin fonts, and the till's large, high-contrast type.
//!
//! Invariant: every string the till shows in Chinese is covered by the bundled font, so the
//! screen never depends on what the shop's PC has installed (eframe's system-font fallback
//! still covers rarer characters, such as in a merchant's name).

use egui::epaint::text::{FontInsert, FontPriority, InsertFontFamily};
use egui::{FontData, FontFamily, FontId, TextStyle};

/// Noto Sans CJK SC, subset to GB2312 + ASCII/Latin-1 + CJK punctuation (assets/README.md).
pub const CJK_FONT: &[u8] = include_bytes!("../../assets/fonts/NotoSansSC-GB2312.otf");

/// Adds the CJK font after egui's fonts for both families.
pub fn install(ctx: &egui::Context) {
    ctx.add_font(FontInsert::new(
        "NotoSansSC-GB2312",
        FontData::from_static(CJK_FONT),
        vec![
            InsertFontFamily {
                family: FontFamily::Proportional,
                priority: FontPriority::Lowest,
            },
            InsertFontFamily {
                family: FontFamily::Monospace,
                priority: FontPriority::Lowest,
            },
        ],
    ));
}

/// Larger default type, a still cursor (a blinking one repaints twice a second), and calm
/// visuals.
pub fn style(ctx: &egui::Context) {
    ctx.all_styles_mut(|style| {
        style.text_styles = [
            (TextStyle::Small, FontId::proportional(14.0)),
            (TextStyle::Body, FontId::proportional(18.0)),
            (TextStyle::Button, FontId::proportional(20.0)),
            (TextStyle::Heading, FontId::proportional(28.0)),
            (TextStyle::Monospace, FontId::monospace(16.0)),
        ]
        .into();
        style.spacing.button_padding = egui::vec2(12.0, 8.0);
        style.visuals.text_cursor.blink = false;
        style.animation_time = 0.0;
    });
}
