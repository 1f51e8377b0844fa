//! Opt-in frame measurements of the real window, read by the Xvfb scripts; unset, they cost
//! nothing.
//! - `QRTILL_FRAME_LOG=FILE`: every frame appends one line `wall_ms,cpu_ms,view` (time since
//!   start; eframe's CPU time of the previous frame, drawing and painting included, vsync wait
//!   excluded), for frame rates and times.
//! - `QRTILL_FIRST_FRAME=FILE`: the wall-clock Unix time in µs at which the first frame had
//!   been presented, for start-up time. The till and the bare eframe window it is compared
//!   with (examples/bare_window.rs) both use [`FirstFrame`], so both are timed the same way.
//!
//! It lives outside `app` because it writes a file: one small write per frame, only when
//! asked for, which a measurement run accepts and a till in a shop never pays for.
//!
//! Invariant: a failing log never disturbs the till: the first write error turns it off.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The frame log, when asked for by the environment.
pub struct FrameLog {
    out: BufWriter<File>,
    start: Instant,
}

impl FrameLog {
    /// Opens the file named by `QRTILL_FRAME_LOG`, if set; a file that cannot be created is
    /// reported in the log and the till runs without it.
    pub fn from_env() -> Option<FrameLog> {
        let path = std::env::var_os("QRTILL_FRAME_LOG")?;
        match File::create(&path) {
            Ok(file) => Some(FrameLog {
                out: BufWriter::new(file),
                start: Instant::now(),
            }),
            Err(err) => {
                tracing::warn!("frame log {}: {err}", std::path::Path::new(&path).display());
                None
            }
        }
    }

    /// Records one frame; returns false when the log should be dropped (a write failed).
    pub fn record(&mut self, cpu_seconds: Option<f32>, view: &str) -> bool {
        let wall = self.start.elapsed().as_secs_f64() * 1000.0;
        let cpu = cpu_seconds.map_or(String::new(), |s| format!("{:.3}", f64::from(s) * 1000.0));
        // Flushed per frame so a killed till still leaves its frames behind.
        writeln!(self.out, "{wall:.3},{cpu},{view}")
            .and_then(|()| self.out.flush())
            .is_ok()
    }
}

/// The first-frame clock, when asked for by `QRTILL_FIRST_FRAME`.
///
/// eframe has no hook after a frame's buffer swap, but it hands each frame the CPU time of
/// the previous one only once that one has been painted and swapped: the first call of
/// [`FirstFrame::observe`] that sees it marks the first presented frame. egui draws several
/// frames in a row at start-up, so the second one begins within a millisecond or so.
pub struct FirstFrame {
    path: Option<PathBuf>,
}

impl FirstFrame {
    /// Reads `QRTILL_FIRST_FRAME`; unset, [`FirstFrame::observe`] does nothing.
    pub fn from_env() -> FirstFrame {
        FirstFrame {
            path: std::env::var_os("QRTILL_FIRST_FRAME").map(PathBuf::from),
        }
    }

    /// Call at the start of every frame with eframe's frame info; writes the time once, on the
    /// first frame that follows a presented one. A failed write is logged and not retried.
    pub fn observe(&mut self, info: &eframe::IntegrationInfo) {
        if info.cpu_usage.is_none() {
            return;
        }
        let Some(path) = self.path.take() else {
            return;
        };
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_micros());
        if let Err(err) = std::fs::write(&path, format!("{micros}\n")) {
            tracing::warn!("first-frame file {}: {err}", path.display());
        }
    }
}
