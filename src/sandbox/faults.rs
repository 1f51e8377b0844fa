//! Fault injection: the ways a real provider (or the network in front of it) misbehaves, set
//! per protocol or per order through the control API and applied in one place for every
//! protocol, so the till's answer to each can be tested and demonstrated.
//!
//! Three kinds of fault, by where they act:
//! - on an answer: [`inject`] is a middleware in front of every protocol's routes; it delays,
//!   drops or spoils the answer (a gateway fault answers without reaching the provider);
//! - on a notify: [`super::Shared::send_notify`] forges, repeats, delays or re-addresses it;
//! - on the state shown: a paid order is reported as still waiting ([`Fault::Backwards`]).
//!
//! Invariant: a fault never changes what the simulated provider knows (its orders and their
//! states), only what it says; clearing the faults brings the honest answers back.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::Shared;

/// How long [`Fault::Timeout`] holds an answer: longer than the till's 15 s request timeout.
pub const TIMEOUT_HOLD: Duration = Duration::from_secs(20);

/// The largest request body the middleware reads to find which order a request is about.
const MAX_REQUEST: usize = 1024 * 1024;

/// One way to misbehave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The answer comes this much later.
    Latency(Duration),
    /// The answer is held for [`TIMEOUT_HOLD`], past the client's timeout.
    Timeout,
    /// The connection drops in the middle of the answer (the headers promise more bytes
    /// than come): the client sees an I/O error, not an answer.
    Reset,
    /// A gateway in front of the provider answers with this status (5xx) and a short text;
    /// the request never reaches the provider.
    ServerError(u16),
    /// A gateway answers with an HTML error page under this status (200 or 502); the request
    /// never reaches the provider.
    HtmlPage(u16),
    /// The provider's answer, cut in half (sent as a complete body).
    Truncated,
    /// A text that is not JSON instead of the provider's answer.
    NotJson,
    /// Notifies carry a wrong signature.
    WrongSignature,
    /// A paid order is reported as still waiting for payment (the state goes backwards).
    Backwards,
    /// Each notify is sent twice.
    RepeatNotify,
    /// Each notify is sent this much later.
    LateNotify(Duration),
    /// Notifies name an order number nobody has (correctly signed).
    UnknownOrderNotify,
}

/// Where a fault acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// On the HTTP answer to the till's request.
    Answer,
    /// On a notify the sandbox sends.
    Notify,
    /// On the order state the protocol handlers see.
    State,
}

impl Fault {
    /// The fault named in the control API: `latency`, `timeout`, `reset`, `status`,
    /// `html`, `truncate`, `not_json`, `wrong_sign`, `backwards`, `repeat`, `late`,
    /// `unknown_order`; `ms` for `latency` and `late`, `code` for `status` and `html`.
    ///
    /// # Errors
    /// What is wrong with the spec, in words for whoever wrote it.
    pub fn parse(name: &str, ms: Option<u64>, code: Option<u16>) -> Result<Fault, String> {
        let ms = |default: u64| Duration::from_millis(ms.unwrap_or(default));
        Ok(match name {
            "latency" => Fault::Latency(ms(1000)),
            "timeout" => Fault::Timeout,
            "reset" => Fault::Reset,
            "status" => match code.unwrap_or(500) {
                code @ 500..=599 => Fault::ServerError(code),
                other => return Err(format!("status: code must be 500-599, not {other}")),
            },
            "html" => match code.unwrap_or(502) {
                code @ (200 | 500..=599) => Fault::HtmlPage(code),
                other => return Err(format!("html: code must be 200 or 500-599, not {other}")),
            },
            "truncate" => Fault::Truncated,
            "not_json" => Fault::NotJson,
            "wrong_sign" => Fault::WrongSignature,
            "backwards" => Fault::Backwards,
            "repeat" => Fault::RepeatNotify,
            "late" => Fault::LateNotify(ms(5000)),
            "unknown_order" => Fault::UnknownOrderNotify,
            other => {
                return Err(format!(
                    "unknown fault `{other}`: latency[&ms=], timeout, reset, status[&code=5xx], \
                     html[&code=200|502], truncate, not_json, wrong_sign, backwards, repeat, \
                     late[&ms=], unknown_order"
                ));
            }
        })
    }

    pub(super) fn target(&self) -> Target {
        match self {
            Fault::Latency(_)
            | Fault::Timeout
            | Fault::Reset
            | Fault::ServerError(_)
            | Fault::HtmlPage(_)
            | Fault::Truncated
            | Fault::NotJson => Target::Answer,
            Fault::WrongSignature
            | Fault::RepeatNotify
            | Fault::LateNotify(_)
            | Fault::UnknownOrderNotify => Target::Notify,
            Fault::Backwards => Target::State,
        }
    }
}

/// A fault and how many more times it acts (`None`: until cleared).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    /// The fault.
    pub fault: Fault,
    /// How many more answers or notifies it spoils; `None` until cleared.
    pub left: Option<u32>,
}

/// The faults in force, by protocol and by (our) order number.
#[derive(Default, Debug)]
pub(super) struct Faults {
    pub(super) by_kind: HashMap<String, Vec<FaultRule>>,
    pub(super) by_order: HashMap<String, Vec<FaultRule>>,
}

impl Faults {
    /// Takes the faults of `target` that apply to a request of protocol `kind` about orders
    /// for which `about` holds, counting one use of each.
    pub(super) fn take(
        &mut self,
        kind: &str,
        about: impl Fn(&str) -> bool,
        target: Target,
    ) -> Vec<Fault> {
        let mut taken = Vec::new();
        let lists = self
            .by_kind
            .iter_mut()
            .filter(|(k, _)| k.as_str() == kind)
            .chain(self.by_order.iter_mut().filter(|(no, _)| about(no)));
        for (_, rules) in lists {
            for rule in rules.iter_mut().filter(|r| r.fault.target() == target) {
                taken.push(rule.fault.clone());
                if let Some(left) = &mut rule.left {
                    *left = left.saturating_sub(1);
                }
            }
            rules.retain(|r| r.left != Some(0));
        }
        self.by_kind.retain(|_, rules| !rules.is_empty());
        self.by_order.retain(|_, rules| !rules.is_empty());
        taken
    }
}

/// The middleware in front of every protocol's routes: finds the faults for the protocol
/// and the orders the request names (by our order number or the provider's id, anywhere in
/// its URL or body) and applies them.
pub(super) async fn inject(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let kind = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    if !shared.has_faults() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REQUEST).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response();
    };
    let haystack = format!("{} {}", parts.uri, String::from_utf8_lossy(&bytes));
    let faults = shared.take_faults(&kind, &haystack, Target::Answer);
    let request = Request::from_parts(parts, Body::from(bytes));
    if faults.is_empty() {
        return next.run(request).await;
    }
    tracing::info!(kind, ?faults, "sandbox: fault injected into an answer");
    apply(&faults, request, next).await
}

/// Applies answer faults: a gateway fault answers at once; the others let the provider
/// answer, then delay, drop or spoil it.
async fn apply(faults: &[Fault], request: Request, next: Next) -> Response {
    for fault in faults {
        match fault {
            Fault::ServerError(code) => {
                let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY);
                return (status, format!("{code} Internal Server Error")).into_response();
            }
            Fault::HtmlPage(code) => {
                let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY);
                return (
                    status,
                    Html(format!(
                        "<html><head><title>{code} Bad Gateway</title></head><body>\
                         <center><h1>{code} Bad Gateway</h1></center><hr><center>nginx</center>\
                         </body></html>"
                    )),
                )
                    .into_response();
            }
            _ => {}
        }
    }
    let response = next.run(request).await;
    let delay: Duration = faults
        .iter()
        .map(|fault| match fault {
            Fault::Latency(delay) => *delay,
            Fault::Timeout => TIMEOUT_HOLD,
            _ => Duration::ZERO,
        })
        .sum();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let spoil = faults
        .iter()
        .find(|f| matches!(f, Fault::Truncated | Fault::NotJson | Fault::Reset));
    let Some(spoil) = spoil else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = match spoil {
        Fault::Truncated => bytes.slice(..bytes.len() / 2),
        Fault::NotJson => {
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Bytes::from_static(
                "系统繁忙，请稍后再试 (MySQL error 1040: Too many connections)".as_bytes(),
            )
        }
        _ => {
            // Promise more than is sent: the server closes the connection mid-answer.
            let promised = (bytes.len() + 512).to_string();
            if let Ok(value) = HeaderValue::from_str(&promised) {
                parts.headers.insert(header::CONTENT_LENGTH, value);
            }
            bytes.slice(..bytes.len() / 2)
        }
    };
    Response::from_parts(parts, Body::from(body))
}
