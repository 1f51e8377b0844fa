//! Money text at the edges of the till: the cashier's amount parser
//! (`Fen::parse_input`), the provider-side parser (`Fen::parse_wire`) and the one
//! formatter (`Fen::to_yuan`), checked as tables plus a parse/format round trip.
//! Pure functions only; no I/O.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use qrtill::model::{AmountError, DEFAULT_MAX_AMOUNT, Fen};

#[test]
fn default_max_is_fifty_thousand_yuan() {
    assert_eq!(DEFAULT_MAX_AMOUNT, Fen(5_000_000));
}

#[test]
fn parse_input_accepts() {
    let table: &[(&str, i64)] = &[
        ("12.3", 1230),
        ("0.01", 1),
        ("12", 1200),
        ("12.30", 1230),
        ("50000.00", 5_000_000),
    ];
    for &(text, fen) in table {
        assert_eq!(
            Fen::parse_input(text, DEFAULT_MAX_AMOUNT),
            Ok(Fen(fen)),
            "input {text:?}"
        );
    }
}

#[test]
fn parse_input_rejects() {
    let too_large = AmountError::TooLarge {
        max: "50000.00".into(),
    };
    let table: &[(&str, AmountError)] = &[
        ("", AmountError::Empty),
        ("0", AmountError::Zero),
        ("0.00", AmountError::Zero),
        ("-1", AmountError::Format),
        ("12.345", AmountError::TooManyDecimals),
        ("1e3", AmountError::Format),
        ("1,000.00", AmountError::Format),
        (" 12", AmountError::Format),
        ("12 ", AmountError::Format),
        ("abc", AmountError::Format),
        ("12.", AmountError::Format),
        (".5", AmountError::Format),
        ("+5", AmountError::Format),
        ("50000.01", too_large.clone()),
        ("１２", AmountError::Format),
    ];
    for (text, expected) in table {
        let err = Fen::parse_input(text, DEFAULT_MAX_AMOUNT)
            .expect_err(&format!("input {text:?} must be refused"));
        assert_eq!(&err, expected, "input {text:?}");
        let message = err.to_string();
        assert!(
            !message.trim().is_empty(),
            "empty message for input {text:?}"
        );
        if matches!(err, AmountError::TooLarge { .. }) {
            assert!(message.contains("50000.00"), "message: {message}");
        }
    }
}

#[test]
fn to_yuan_table() {
    let table: &[(i64, &str)] = &[
        (1, "0.01"),
        (100, "1.00"),
        (1000, "10.00"),
        (100_000, "1000.00"),
        (9_999_999, "99999.99"),
        (1230, "12.30"),
        (0, "0.00"),
    ];
    for &(fen, text) in table {
        assert_eq!(Fen(fen).to_yuan(), text, "fen {fen}");
        assert_eq!(Fen(fen).to_string(), text, "Display of fen {fen}");
        assert!(!Fen(fen).to_yuan().contains(','), "no grouping for {fen}");
    }
    assert!(!Fen(123_456_789_012).to_yuan().contains(','));
}

#[test]
fn parse_wire_accepts() {
    let table: &[(&str, i64)] = &[
        ("12.3", 1230),
        ("12.30", 1230),
        ("12", 1200),
        ("12.0", 1200),
        ("12.300", 1230),
        ("2000.00", 200_000),
        ("500", 50_000),
    ];
    for &(text, fen) in table {
        assert_eq!(Fen::parse_wire(text), Ok(Fen(fen)), "wire {text:?}");
    }
}

#[test]
fn parse_wire_refuses() {
    for text in ["12.345", "abc", "-1", ""] {
        assert!(
            Fen::parse_wire(text).is_err(),
            "wire {text:?} must be refused, got {:?}",
            Fen::parse_wire(text)
        );
    }
}

#[test]
fn round_trip_format_then_parse() {
    let big = [
        4_999_999,
        5_000_000,
        123_456_789,
        1_000_000_000_000,
        99_999_999_999_999,
    ];
    for n in (1..=200_000_i64).step_by(7).chain(big) {
        let text = Fen(n).to_yuan();
        assert_eq!(
            Fen::parse_input(&text, Fen(i64::MAX)),
            Ok(Fen(n)),
            "round trip of {n} via {text:?}"
        );
        assert_eq!(Fen::parse_wire(&text), Ok(Fen(n)), "wire round trip of {n}");
    }
}
