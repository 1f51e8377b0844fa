//! A bare eframe window, the baseline tests/xvfb/bench.sh measures the till against: the same
//! renderer (glow), window size and fonts as `qrtill`, and an empty panel. What the till costs
//! beyond this (start-up time, memory) is the till's own; the rest is eframe, the GL driver and
//! the fonts, which any egui app pays.
//!
//! usage: `cargo run --release --example bare_window [-- --repaint-every-ms N]` (close the
//! window to quit); `QRTILL_FIRST_FRAME=FILE` writes when the first frame was presented, as in
//! the till, and `QRTILL_FRAME_LOG=FILE` logs every frame (src/frames.rs). `--repaint-every-ms 1000` redraws the empty window once a second, as the till's
//! QR screen does for its countdown: what that costs the renderer alone.

use qrtill::app::fonts;
use qrtill::frames::{FirstFrame, FrameLog};

struct Bare {
    first_frame: FirstFrame,
    frames: Option<FrameLog>,
    repaint_every: Option<std::time::Duration>,
}

impl eframe::App for Bare {
    fn logic(&mut self, ctx: &egui::Context, frame: &mut eframe::Frame) {
        self.first_frame.observe(frame.info());
        if let Some(every) = self.repaint_every {
            ctx.request_repaint_after(every);
        }
    }

    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        fonts::limit_atlas(raw_input);
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if let Some(log) = &mut self.frames
            && !log.record(frame.info().cpu_usage, "bare")
        {
            self.frames = None;
        }
        egui::CentralPanel::default_margins().show(ui, |_ui| {});
    }
}

fn main() -> eframe::Result {
    let mut args = std::env::args().skip(1);
    let repaint_every = match (args.next().as_deref(), args.next()) {
        (None, _) => None,
        (Some("--repaint-every-ms"), Some(ms)) => match ms.parse::<u64>() {
            Ok(ms) if ms > 0 => Some(std::time::Duration::from_millis(ms)),
            _ => usage(&format!(
                "--repaint-every-ms takes milliseconds above 0, not {ms:?}"
            )),
        },
        (Some(other), _) => usage(&format!("unknown argument {other:?}")),
    };
    // The till's window options (src/main.rs), so both windows are drawn at the same size.
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Glow,
        viewport: egui::ViewportBuilder::default()
            .with_title("bare eframe window")
            .with_app_id("bare_window")
            .with_inner_size([1100.0, 760.0])
            .with_min_inner_size([800.0, 600.0]),
        ..Default::default()
    };
    eframe::run_native(
        "bare_window",
        options,
        Box::new(|cc| {
            fonts::install(&cc.egui_ctx);
            fonts::style(&cc.egui_ctx);
            Ok(Box::new(Bare {
                first_frame: FirstFrame::from_env(),
                frames: FrameLog::from_env(),
                repaint_every,
            }))
        }),
    )
}

fn usage(problem: &str) -> ! {
    eprintln!("bare_window: {problem}\nusage: bare_window [--repaint-every-ms N]");
    std::process::exit(2)
}
