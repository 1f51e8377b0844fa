//! What every fuzz target checks: the parsers of hostile input (a typed or received amount,
//! a provider's answers and callbacks) never panic, never believe an unsigned callback and
//! never put the merchant secret into what they return.
//!
//! The targets under `fuzz_targets/` are one line each: they build an account and hand the
//! fuzzer's bytes to [`exercise_provider`] or [`exercise_amount`].

use qrtill::model::{DEFAULT_MAX_AMOUNT, Fen};
use qrtill::providers::{CallbackRequest, HttpResponse, Provider};

/// The merchant secret of every fuzzed account: long and unlikely, so finding it in an
/// output means it leaked.
pub const SECRET: &str = "fuzz-secret-6f1d2c9a8b7e";

/// HTTP statuses a provider answer is tried with; the first input byte picks one.
const STATUSES: [u16; 8] = [200, 200, 200, 201, 302, 400, 404, 500];

/// `Content-Type` headers a callback is tried with; the first input byte picks one.
const CONTENT_TYPES: [Option<&str>; 6] = [
    None,
    Some("application/x-www-form-urlencoded"),
    Some("application/x-www-form-urlencoded; charset=UTF-8"),
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
];

/// Feeds `data` to every parser of `provider`.
///
/// The first byte picks the HTTP status, method and content type; the rest is the body of
/// a create, query, account and close answer, and, split at the first two zero bytes, a
/// callback's query string, its header lines (`name: value`) and its body.
///
/// # Panics
/// When a parser panics, accepts a callback (nobody but the provider can sign one), or
/// returns the merchant secret in any form.
pub fn exercise_provider(provider: &dyn Provider, data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let response = HttpResponse {
        status: STATUSES[usize::from(selector) % STATUSES.len()],
        body: rest.to_vec(),
    };
    no_secret(&provider.parse_create(&response));
    no_secret(&provider.parse_query(&response));
    no_secret(&provider.parse_account_check(&response));
    no_secret(&provider.parse_close(&response));

    let request = callback(selector, rest);
    let verdict = provider.verify_callback(&request);
    no_secret(&verdict);
    if let Ok(report) = &verdict {
        panic!("an unsigned callback was accepted: {report:?} from {request:?}");
    }
}

/// The callback described by `selector` and `rest` (see [`exercise_provider`]).
fn callback(selector: u8, rest: &[u8]) -> CallbackRequest {
    let mut parts = rest.splitn(3, |byte| *byte == 0);
    let query = parts.next().unwrap_or_default();
    let headers = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    CallbackRequest {
        method: if selector & 0x80 == 0 { "POST" } else { "GET" }.to_string(),
        query: url::form_urlencoded::parse(query).into_owned().collect(),
        body: body.to_vec(),
        content_type: CONTENT_TYPES[usize::from(selector >> 3) % CONTENT_TYPES.len()]
            .map(str::to_string),
        headers: String::from_utf8_lossy(headers)
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
            .collect(),
    }
}

/// Fails when the secret shows in a result's `Debug` or an error's message.
fn no_secret<T: std::fmt::Debug, E: std::fmt::Debug + std::fmt::Display>(result: &Result<T, E>) {
    let debug = format!("{result:?}");
    assert!(!debug.contains(SECRET), "the secret leaked: {debug}");
    if let Err(err) = result {
        let shown = err.to_string();
        assert!(!shown.contains(SECRET), "the secret leaked: {shown}");
    }
}

/// Feeds `data` to the amount parsers and checks what they accept.
///
/// # Panics
/// When a parser panics, accepts an amount out of range or in a form a cashier may not
/// type, or an accepted amount does not read back the same from [`Fen::to_yuan`].
pub fn exercise_amount(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(fen) = Fen::parse_input(text, DEFAULT_MAX_AMOUNT) {
        assert!(
            fen.0 > 0 && fen <= DEFAULT_MAX_AMOUNT,
            "{text:?} gave {fen:?}"
        );
        assert!(
            text.bytes().all(|b| b.is_ascii_digit() || b == b'.'),
            "{text:?} accepted as typed input"
        );
        assert_eq!(
            Fen::parse_input(&fen.to_yuan(), DEFAULT_MAX_AMOUNT),
            Ok(fen)
        );
    }
    if let Ok(fen) = Fen::parse_wire(text) {
        assert!(fen.0 >= 0, "{text:?} gave {fen:?}");
        assert_eq!(Fen::parse_wire(&fen.to_yuan()), Ok(fen), "{text:?}");
    }
    // The JSON form reads an amount back through the same parser.
    let json = serde_json::Value::String(text.to_string()).to_string();
    if let Ok(fen) = serde_json::from_str::<Fen>(&json) {
        assert_eq!(
            serde_json::to_string(&fen).ok(),
            Some(format!("\"{}\"", fen.to_yuan()))
        );
        assert_eq!(
            serde_json::from_str::<Fen>(&format!("\"{}\"", fen.to_yuan())).ok(),
            Some(fen)
        );
    }
}
