//! An opt-in frame log for measuring the real window: with `QRTILL_FRAME_LOG=FILE` set, every
//! frame appends one line `wall_ms,cpu_ms,view` (time since start; eframe's CPU time of the
//! previous frame, drawing and painting included, vsync wait excluded). The Xvfb scripts read
//! it to report frame rates and times; unset, it costs nothing.
//!
//! It lives outside `app` because it writes a file: one small write per frame, only when
//! asked for, which a measurement run accepts and a till in a shop never pays for.
//!
//! Invariant: a failing log never disturbs the till: the first write error turns it off.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::time::Instant;

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
