//! The sound of a payment: a chime, then "收款成功" and the amount read aloud in Mandarin
//! ("收款成功，十二点三元"), put together from short recorded clips embedded in the binary
//! (`assets/sounds/`, made by `assets/sounds/make.sh`).
//!
//! Owns the reading of an amount ([`announcement`], pure, exact to the fen) and its playback
//! ([`Sound`]). Invariants: an amount is read the way payment speakers say it (no "一" before
//! a leading 十, one 零 for a run of zeros, nothing for trailing zeros); amounts up to
//! [`MAX_SPOKEN`] are read in full, larger or non-positive ones get the chime and 收款成功
//! only, never a wrong number. Playback never blocks the caller on audio and never panics;
//! without an audio device the till stays silent and says so once in the log.

mod player;

pub use player::{Playback, Sound};

use crate::model::Fen;

/// The largest amount read aloud in full: 99,999,999.99 yuan (below 一亿).
pub const MAX_SPOKEN: Fen = Fen(9_999_999_999);

/// The loudest volume setting.
pub const MAX_VOLUME: u8 = 100;

/// Whether the till plays the paid sound, and how loud (config `[sound]`, settings screen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoundSettings {
    /// Play the chime and the announcement when a sale is paid.
    pub enabled: bool,
    /// 0 (silent) to [`MAX_VOLUME`]; larger values count as [`MAX_VOLUME`].
    pub volume: u8,
}

impl Default for SoundSettings {
    /// On, at 80.
    fn default() -> Self {
        SoundSettings {
            enabled: true,
            volume: 80,
        }
    }
}

/// One recorded clip of the announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Clip {
    /// The two-tone chime that opens every announcement.
    Chime,
    /// 收款成功
    Success,
    /// 零 一 二 三 四 五 六 七 八 九 (0–9; any other value has no clip and is skipped).
    Digit(u8),
    /// 十
    Ten,
    /// 百
    Hundred,
    /// 千
    Thousand,
    /// 万
    Wan,
    /// 点
    Point,
    /// 元
    Yuan,
}

const DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];

const DIGIT_WAVS: [&[u8]; 10] = [
    include_bytes!("../../assets/sounds/digit0.wav"),
    include_bytes!("../../assets/sounds/digit1.wav"),
    include_bytes!("../../assets/sounds/digit2.wav"),
    include_bytes!("../../assets/sounds/digit3.wav"),
    include_bytes!("../../assets/sounds/digit4.wav"),
    include_bytes!("../../assets/sounds/digit5.wav"),
    include_bytes!("../../assets/sounds/digit6.wav"),
    include_bytes!("../../assets/sounds/digit7.wav"),
    include_bytes!("../../assets/sounds/digit8.wav"),
    include_bytes!("../../assets/sounds/digit9.wav"),
];

impl Clip {
    /// What the clip says, as text ("♪" for the chime): for logs and tests.
    pub fn text(self) -> &'static str {
        match self {
            Clip::Chime => "♪",
            Clip::Success => "收款成功",
            Clip::Digit(d) => DIGITS.get(usize::from(d)).copied().unwrap_or(""),
            Clip::Ten => "十",
            Clip::Hundred => "百",
            Clip::Thousand => "千",
            Clip::Wan => "万",
            Clip::Point => "点",
            Clip::Yuan => "元",
        }
    }

    /// The clip's WAV file (mono, 16-bit); `None` for a digit above 9.
    pub fn wav(self) -> Option<&'static [u8]> {
        Some(match self {
            Clip::Chime => include_bytes!("../../assets/sounds/chime.wav"),
            Clip::Success => include_bytes!("../../assets/sounds/success.wav"),
            Clip::Digit(d) => return DIGIT_WAVS.get(usize::from(d)).copied(),
            Clip::Ten => include_bytes!("../../assets/sounds/ten.wav"),
            Clip::Hundred => include_bytes!("../../assets/sounds/hundred.wav"),
            Clip::Thousand => include_bytes!("../../assets/sounds/thousand.wav"),
            Clip::Wan => include_bytes!("../../assets/sounds/wan.wav"),
            Clip::Point => include_bytes!("../../assets/sounds/point.wav"),
            Clip::Yuan => include_bytes!("../../assets/sounds/yuan.wav"),
        })
    }
}

/// The clips as one line of text: `♪收款成功十二点三元`.
pub fn spoken(clips: &[Clip]) -> String {
    clips.iter().map(|c| c.text()).collect()
}

/// What the till plays for a paid amount: the chime, 收款成功, then the amount in yuan as
/// payment speakers read it (`12.30` → 十二点三元, `1005.07` → 一千零五点零七元,
/// `50000.00` → 五万元). An amount of zero or less, or above [`MAX_SPOKEN`], gets the chime
/// and 收款成功 only.
pub fn announcement(amount: Fen) -> Vec<Clip> {
    let mut clips = vec![Clip::Chime, Clip::Success];
    if amount.0 <= 0 || amount > MAX_SPOKEN {
        return clips;
    }
    let (yuan, fen) = (amount.0 / 100, amount.0 % 100);
    if yuan == 0 {
        clips.push(Clip::Digit(0));
    } else {
        integer(yuan, &mut clips);
    }
    if fen != 0 {
        // 角 then 分, each a plain digit: .30 → 点三, .07 → 点零七, .01 → 点零一.
        clips.push(Clip::Point);
        clips.push(digit(fen / 10));
        if fen % 10 != 0 {
            clips.push(digit(fen % 10));
        }
    }
    clips.push(Clip::Yuan);
    clips
}

/// 1 to 9999,9999 yuan: the 万 group, then the rest. A rest below 1000 after a 万 group
/// starts with 零 (十万零五, 一万零一十), as the zeros between them are read as one 零.
fn integer(yuan: i64, out: &mut Vec<Clip>) {
    let (wan, rest) = (yuan / 10_000, yuan % 10_000);
    if wan > 0 {
        group(wan, true, out);
        out.push(Clip::Wan);
        if (1..1000).contains(&rest) {
            out.push(Clip::Digit(0));
        }
    }
    if rest > 0 {
        group(rest, wan == 0, out);
    }
}

/// 1 to 9999 with 千 百 十: zeros between digits read as one 零, trailing zeros not read.
/// When the group opens the number, a leading 一十 is said 十 (十, 十五万, but 一百一十).
fn group(n: i64, opens_number: bool, out: &mut Vec<Clip>) {
    let places = [
        (1000, Some(Clip::Thousand)),
        (100, Some(Clip::Hundred)),
        (10, Some(Clip::Ten)),
        (1, None),
    ];
    let mut started = false;
    let mut zeros = false;
    for (place, unit) in places {
        let d = n / place % 10;
        if d == 0 {
            zeros |= started;
            continue;
        }
        if zeros {
            out.push(Clip::Digit(0));
            zeros = false;
        }
        if !(opens_number && !started && place == 10 && d == 1) {
            out.push(digit(d));
        }
        out.extend(unit);
        started = true;
    }
}

/// The clip of the last decimal digit of `n`.
fn digit(n: i64) -> Clip {
    // rem_euclid(10) is 0–9, so the conversion cannot fail.
    Clip::Digit(u8::try_from(n.rem_euclid(10)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// The announcement for `yuan` (as typed), as text.
    fn said(yuan: &str) -> String {
        let amount = Fen::parse_input(yuan, MAX_SPOKEN).unwrap();
        spoken(&announcement(amount))
    }

    #[test]
    fn typical_amounts_are_read_as_payment_speakers_do() {
        assert_eq!(said("0.01"), "♪收款成功零点零一元");
        assert_eq!(said("10.00"), "♪收款成功十元");
        assert_eq!(said("12.30"), "♪收款成功十二点三元");
        assert_eq!(said("1005.07"), "♪收款成功一千零五点零七元");
        assert_eq!(said("50000.00"), "♪收款成功五万元");
    }

    #[test]
    fn zeros_tens_and_wan() {
        let cases = [
            ("0.10", "零点一元"),
            ("0.99", "零点九九元"),
            ("1", "一元"),
            ("10.5", "十点五元"),
            ("11", "十一元"),
            ("19.09", "十九点零九元"),
            ("20", "二十元"),
            ("99", "九十九元"),
            ("100", "一百元"),
            ("101", "一百零一元"),
            ("110", "一百一十元"),
            ("111", "一百一十一元"),
            ("1000", "一千元"),
            ("1001", "一千零一元"),
            ("1010", "一千零一十元"),
            ("1100", "一千一百元"),
            ("2019", "二千零一十九元"),
            ("9999.99", "九千九百九十九点九九元"),
            ("10000", "一万元"),
            ("10001", "一万零一元"),
            ("10010", "一万零一十元"),
            ("10100", "一万零一百元"),
            ("11000", "一万一千元"),
            ("49999.99", "四万九千九百九十九点九九元"),
            ("100005", "十万零五元"),
            ("150000", "十五万元"),
            ("1000000", "一百万元"),
            ("1001000", "一百万一千元"),
            ("10000000", "一千万元"),
            ("10000010", "一千万零一十元"),
            ("12345678.9", "一千二百三十四万五千六百七十八点九元"),
            ("99999999.99", "九千九百九十九万九千九百九十九点九九元"),
        ];
        for (yuan, text) in cases {
            assert_eq!(said(yuan), format!("♪收款成功{text}"), "{yuan}");
        }
    }

    #[test]
    fn beyond_the_spoken_range_only_the_chime_and_success() {
        for amount in [Fen(0), Fen(-1230), Fen(MAX_SPOKEN.0 + 1), Fen(i64::MAX)] {
            assert_eq!(
                announcement(amount),
                vec![Clip::Chime, Clip::Success],
                "{amount:?}"
            );
        }
    }

    #[test]
    fn every_clip_has_a_sound_and_a_text() {
        let mut clips = vec![
            Clip::Chime,
            Clip::Success,
            Clip::Ten,
            Clip::Hundred,
            Clip::Thousand,
            Clip::Wan,
            Clip::Point,
            Clip::Yuan,
        ];
        clips.extend((0..=9).map(Clip::Digit));
        let mut total = 0;
        for clip in clips {
            let wav = clip.wav().unwrap();
            assert!(
                wav.starts_with(b"RIFF") && wav.get(8..12) == Some(b"WAVE"),
                "{clip:?}"
            );
            assert!(!clip.text().is_empty(), "{clip:?}");
            total += wav.len();
        }
        assert!(total < 1_000_000, "clips take {total} bytes");
        assert_eq!(Clip::Digit(10).wav(), None);
        assert_eq!(Clip::Digit(10).text(), "");
    }

    /// Reads an announcement's text back to fen, and checks it is written the canonical way.
    fn heard(text: &str) -> Fen {
        let body = text
            .strip_prefix("♪收款成功")
            .and_then(|t| t.strip_suffix('元'))
            .unwrap_or_else(|| panic!("not an announcement: {text}"));
        let (int, frac) = body.split_once('点').unwrap_or((body, ""));
        if int != "零" {
            assert!(!int.contains("零零") && !int.ends_with('零'), "{text}");
            for unit in ["零万", "零十", "零百", "零千"] {
                assert!(!int.contains(unit), "零 before a unit: {text}");
            }
        }
        let value = |c: char| DIGITS.iter().position(|d| d.starts_with(c));
        let (mut total, mut section, mut number) = (0_i64, 0_i64, 0_i64);
        for c in int.chars() {
            match c {
                '十' => section += number.max(1) * 10,
                '百' => section += number * 100,
                '千' => section += number * 1000,
                '万' => {
                    total += (section + number) * 10_000;
                    section = 0;
                }
                _ => {
                    number = i64::try_from(value(c).unwrap()).unwrap();
                    continue;
                }
            }
            number = 0;
        }
        total += section + number;
        assert!(frac.chars().count() <= 2 && !frac.ends_with('零'), "{text}");
        let mut fen = 0;
        for (i, c) in frac.chars().enumerate() {
            let d = i64::try_from(value(c).unwrap()).unwrap();
            fen += d * if i == 0 { 10 } else { 1 };
        }
        Fen(total * 100 + fen)
    }

    proptest::proptest! {
        #[test]
        fn the_text_reads_back_to_the_amount(fen in 1..=MAX_SPOKEN.0) {
            let text = spoken(&announcement(Fen(fen)));
            proptest::prop_assert_eq!(heard(&text), Fen(fen), "{}", text);
        }

        #[test]
        fn small_amounts_read_back_too(fen in 1_i64..=2_000_000) {
            let text = spoken(&announcement(Fen(fen)));
            proptest::prop_assert_eq!(heard(&text), Fen(fen), "{}", text);
        }
    }
}
