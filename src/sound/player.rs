//! Plays announcements on the default audio output (rodio), from the UI thread.
//!
//! Invariants: the caller is never blocked by playback (clips are queued on a rodio
//! `Player`, which the audio thread drains; stopping drops the player instead of waiting for
//! it); the device is opened on the first announcement, not at start, and a failure to open
//! it is logged once and then remembered, so a till without speakers stays silent and quiet
//! in the log instead of retrying every sale. Nothing here panics.

use std::io::Cursor;

use rodio::{Decoder, DeviceSinkBuilder, MixerDeviceSink, Player};

use super::{Clip, MAX_VOLUME, SoundSettings, announcement};
use crate::model::Fen;

/// What became of a request to play.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Playback {
    /// Queued on the audio device; it plays after whatever is still playing.
    Queued,
    /// Sound is off (disabled, or volume 0).
    Off,
    /// There is no usable audio device: nothing plays.
    Unavailable,
}

/// An open output: the device's stream and the queue announcements play from.
struct Device {
    // Declared first so it is dropped (and stops) before the stream it feeds.
    player: Player,
    sink: MixerDeviceSink,
}

enum Output {
    /// Not tried yet.
    Closed,
    Open(Device),
    /// Tried and failed; not tried again until sound is switched back on.
    Unavailable,
}

type Opener = Box<dyn FnMut() -> Result<Device, String>>;

/// The till's sound: plays the paid announcement with the current [`SoundSettings`].
pub struct Sound {
    settings: SoundSettings,
    output: Output,
    open: Opener,
}

impl std::fmt::Debug for Sound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let output = match self.output {
            Output::Closed => "closed",
            Output::Open(_) => "open",
            Output::Unavailable => "unavailable",
        };
        f.debug_struct("Sound")
            .field("settings", &self.settings)
            .field("output", &output)
            .finish()
    }
}

impl Sound {
    /// Sound on the system's default output device, opened when first needed.
    pub fn new(settings: SoundSettings) -> Sound {
        Sound::with_opener(settings, Box::new(open_default))
    }

    fn with_opener(settings: SoundSettings, open: Opener) -> Sound {
        Sound {
            settings: clamped(settings),
            output: Output::Closed,
            open,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> SoundSettings {
        self.settings
    }

    /// Applies new settings at once: a new volume reaches what is playing; switching off
    /// stops it. Switching sound back on after the device was found missing tries the device
    /// again at the next announcement (staff may have plugged in speakers).
    pub fn set(&mut self, settings: SoundSettings) {
        let settings = clamped(settings);
        let was_on = self.settings.enabled;
        self.settings = settings;
        match &mut self.output {
            Output::Open(device) if !settings.enabled => {
                // Dropping the old player stops it without waiting for the audio thread.
                device.player = Player::connect_new(device.sink.mixer());
                device.player.set_volume(gain(settings.volume));
            }
            Output::Open(device) => device.player.set_volume(gain(settings.volume)),
            Output::Unavailable if settings.enabled && !was_on => self.output = Output::Closed,
            Output::Closed | Output::Unavailable => {}
        }
    }

    /// Queues the chime and the announcement of `amount` (see [`announcement`]) and returns
    /// at once.
    pub fn play_paid(&mut self, amount: Fen) -> Playback {
        self.play(&announcement(amount))
    }

    /// Queues these clips, after anything still playing, and returns at once.
    pub fn play(&mut self, clips: &[Clip]) -> Playback {
        if !self.settings.enabled || self.settings.volume == 0 {
            return Playback::Off;
        }
        if let Output::Closed = self.output {
            self.output = match (self.open)() {
                Ok(device) => {
                    device.player.set_volume(gain(self.settings.volume));
                    Output::Open(device)
                }
                Err(reason) => {
                    tracing::warn!(
                        "no audio device: {reason}; payments are announced on screen only"
                    );
                    Output::Unavailable
                }
            };
        }
        let Output::Open(device) = &self.output else {
            return Playback::Unavailable;
        };
        for &clip in clips {
            match clip.wav().map(|wav| Decoder::new_wav(Cursor::new(wav))) {
                Some(Ok(source)) => device.player.append(source),
                Some(Err(err)) => tracing::warn!(?clip, "sound clip cannot be decoded: {err}"),
                None => tracing::warn!(?clip, "no sound clip for this"),
            }
        }
        Playback::Queued
    }
}

fn clamped(settings: SoundSettings) -> SoundSettings {
    SoundSettings {
        volume: settings.volume.min(MAX_VOLUME),
        ..settings
    }
}

/// The volume setting as an amplitude factor. Squared, because loudness is heard on a
/// logarithmic scale: 50 is then clearly quieter than 100 (−12 dB), not barely (−6 dB).
fn gain(volume: u8) -> f32 {
    let v = f32::from(volume.min(MAX_VOLUME)) / f32::from(MAX_VOLUME);
    v * v
}

/// Opens the default output device (or, failing that, any working one).
fn open_default() -> Result<Device, String> {
    // The audio stack is foreign code: a panic in it must cost the sound, not the till.
    let opened = std::panic::catch_unwind(DeviceSinkBuilder::open_default_sink)
        .map_err(|_| "the audio library failed while opening the device".to_string())?;
    let mut sink = opened.map_err(|err| {
        // rodio's own message is general ("Failed to get the config…"): add the causes.
        let mut text = err.to_string();
        let mut cause = std::error::Error::source(&err);
        while let Some(inner) = cause {
            text = format!("{text}: {inner}");
            cause = inner.source();
        }
        text.trim_end_matches('.').to_string()
    })?;
    // Dropping the stream at exit is expected: no message about it.
    sink.log_on_drop(false);
    let player = Player::connect_new(sink.mixer());
    Ok(Device { player, sink })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::cell::Cell;
    use std::io::Write;
    use std::rc::Rc;
    use std::sync::{Arc, Mutex};

    use rodio::Source as _;

    use super::*;

    /// Log lines written while `f` runs, on this thread.
    fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let out = tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        (out, text)
    }

    fn on() -> SoundSettings {
        SoundSettings {
            enabled: true,
            volume: 80,
        }
    }

    /// A sound whose device never opens, counting the attempts.
    fn without_device(settings: SoundSettings) -> (Sound, Rc<Cell<u32>>) {
        let attempts = Rc::new(Cell::new(0));
        let counter = attempts.clone();
        let sound = Sound::with_opener(
            settings,
            Box::new(move || {
                counter.set(counter.get() + 1);
                Err("no card".into())
            }),
        );
        (sound, attempts)
    }

    #[test]
    fn without_a_device_it_warns_once_and_stays_silent() {
        let (mut sound, attempts) = without_device(on());
        let (results, log) =
            logged(|| [Fen(1230), Fen(1), Fen(5_000_000)].map(|amount| sound.play_paid(amount)));
        assert_eq!(results, [Playback::Unavailable; 3]);
        assert_eq!(
            attempts.get(),
            1,
            "the device is tried once, not every sale"
        );
        assert_eq!(log.matches("no audio device").count(), 1, "{log}");
        assert!(
            log.contains("WARN") && log.contains("no card; payments are announced on screen only"),
            "{log}"
        );
    }

    #[test]
    fn switched_off_it_does_not_touch_the_device() {
        let (mut sound, attempts) = without_device(SoundSettings {
            enabled: false,
            volume: 80,
        });
        assert_eq!(sound.play_paid(Fen(1230)), Playback::Off);
        sound.set(SoundSettings {
            enabled: true,
            volume: 0,
        });
        assert_eq!(sound.play_paid(Fen(1230)), Playback::Off);
        assert_eq!(attempts.get(), 0);
    }

    #[test]
    fn switching_sound_back_on_tries_the_device_again_once() {
        let (mut sound, attempts) = without_device(on());
        let (_, log) = logged(|| {
            sound.play_paid(Fen(100));
            // A volume change alone does not retry.
            sound.set(SoundSettings {
                enabled: true,
                volume: 30,
            });
            sound.play_paid(Fen(100));
            sound.set(SoundSettings {
                enabled: false,
                volume: 30,
            });
            sound.set(on());
            sound.play_paid(Fen(100));
            sound.play_paid(Fen(100));
        });
        assert_eq!(attempts.get(), 2);
        assert_eq!(log.matches("no audio device").count(), 2, "{log}");
    }

    #[test]
    fn settings_are_kept_within_range() {
        let (mut sound, _) = without_device(SoundSettings {
            enabled: true,
            volume: 250,
        });
        assert_eq!(sound.settings().volume, MAX_VOLUME);
        sound.set(SoundSettings {
            enabled: false,
            volume: 40,
        });
        assert_eq!(
            sound.settings(),
            SoundSettings {
                enabled: false,
                volume: 40
            }
        );
        assert_eq!(gain(0), 0.0);
        assert_eq!(gain(100), 1.0);
        assert_eq!(gain(50), 0.25);
        assert_eq!(gain(255), 1.0);
    }

    /// The real device, whatever this machine has: no panic, and the same answer twice. At
    /// volume 1 the gain is 1e-4 (−80 dB), and sound is switched off at once, so a machine
    /// with speakers stays quiet.
    #[test]
    fn the_real_device_never_panics() {
        let mut sound = Sound::new(SoundSettings {
            enabled: true,
            volume: 1,
        });
        let (results, log) = logged(|| {
            let first = sound.play_paid(Fen(1230));
            let second = sound.play_paid(Fen(1));
            sound.set(SoundSettings {
                enabled: false,
                volume: 1,
            });
            (first, second)
        });
        match results {
            (Playback::Queued, Playback::Queued) => {
                assert!(!log.contains("no audio device"), "{log}");
            }
            (Playback::Unavailable, Playback::Unavailable) => {
                assert_eq!(log.matches("no audio device").count(), 1, "{log}");
            }
            other => panic!("unexpected {other:?}: {log}"),
        }
    }

    #[test]
    fn every_clip_decodes_to_mono_sound_of_a_sensible_length() {
        let mut clips = vec![Clip::Chime, Clip::Success, Clip::Point, Clip::Yuan];
        clips.extend([Clip::Ten, Clip::Hundred, Clip::Thousand, Clip::Wan]);
        clips.extend((0..=9).map(Clip::Digit));
        for clip in clips {
            let decoder = Decoder::new_wav(Cursor::new(clip.wav().unwrap())).unwrap();
            assert_eq!(decoder.channels().get(), 1, "{clip:?}");
            let rate = decoder.sample_rate().get();
            let samples: Vec<f32> = decoder.collect();
            let seconds = samples.len() as f64 / f64::from(rate);
            assert!((0.15..=1.6).contains(&seconds), "{clip:?}: {seconds} s");
            let rms = (samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>()
                / samples.len() as f64)
                .sqrt();
            assert!(rms > 0.05, "{clip:?} is near silent: rms {rms}");
        }
    }
}
