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

/// The widest font atlas the till lets egui make, in texels. egui makes its atlas as wide as
/// the renderer allows, and every row it adds is that wide: under Mesa's software renderer
/// (16,384) the till's first screen made a 16,384 × 128 atlas, 8 MB, held once by egui and
/// once more by the renderer. 2,048 is egui's own portable default and holds the same glyphs
/// in far fewer texels.
pub const ATLAS_SIDE: usize = 2048;

/// Caps the texture side egui is told of (and so the font atlas's width) at [`ATLAS_SIDE`]:
/// for `eframe::App::raw_input_hook`, in the till and in the bare window it is measured
/// against.
pub fn limit_atlas(raw_input: &mut egui::RawInput) {
    raw_input.max_texture_side = Some(
        raw_input
            .max_texture_side
            .map_or(ATLAS_SIDE, |side| side.min(ATLAS_SIDE)),
    );
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
