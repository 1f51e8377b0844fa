//! Payment-provider protocols, sans IO: each provider builds request descriptions and parses
//! responses and callbacks; it never sends, sleeps, reads the clock or touches the ledger.
//!
//! Invariants kept here:
//! - a provider reports [`ProviderState::Paid`] only for an explicit success code, and only
//!   after the message's signature (where it has one) was checked in constant time;
//! - an unknown code becomes [`ProviderState::Unknown`], which leaves an order as it is;
//! - adding a protocol is one folder below this one plus one line in [`KINDS`].

pub mod epay;
pub mod gatepay;
pub mod health;
pub mod igepay;
pub mod ispay;
pub mod jings;
pub mod sign;
pub mod vmq;
pub mod wire;
pub mod yinqiantong;

use std::sync::Arc;
use std::time::Duration;

use crate::model::{Channel, Fen, OrderNo, ProviderState, QrPayload};

/// HTTP method of a request description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
}

/// A request for `service` to send: everything that goes on the wire, byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// GET or POST.
    pub method: Method,
    /// The absolute URL, query string included.
    pub url: String,
    /// Extra headers (the content type included when there is a body).
    pub headers: Vec<(String, String)>,
    /// The body, when there is one.
    pub body: Option<Vec<u8>>,
}

impl HttpRequest {
    /// The URL as it may be logged: see [`loggable_url`].
    pub fn loggable_url(&self) -> String {
        loggable_url(&self.url)
    }

    /// A GET of `url`.
    pub fn get(url: String) -> Self {
        HttpRequest {
            method: Method::Get,
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    /// A POST of `fields` as `application/x-www-form-urlencoded`, in the order given.
    pub fn post_form(url: String, fields: &[(&str, &str)]) -> Self {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            body.append_pair(name, value);
        }
        HttpRequest {
            method: Method::Post,
            url,
            headers: vec![(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: Some(body.finish().into_bytes()),
        }
    }
}

/// Query parameters whose values are credentials or signatures: masked in every URL that is
/// logged (some protocols, e.g. epay's `api.php?…&key=…`, carry the merchant key in the URL).
pub const MASKED_QUERY_PARAMS: &[&str] = &[
    "key",
    "sign",
    "token",
    "secret",
    "app_secret",
    "appsecret",
    "appkey",
    "password",
];

/// `url` with the values of [`MASKED_QUERY_PARAMS`] (any case) replaced by `***`, for logs.
/// A URL that cannot be parsed loses its whole query and fragment, so nothing in them can
/// leak.
pub fn loggable_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        let end = url.find(['?', '#']).unwrap_or(url.len());
        let head = url.get(..end).unwrap_or_default();
        return if end < url.len() {
            format!("{head}?***")
        } else {
            head.to_string()
        };
    };
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let masked = MASKED_QUERY_PARAMS
                    .iter()
                    .any(|secret| name.eq_ignore_ascii_case(secret));
                let value = if masked {
                    "***".to_string()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if parsed.fragment().is_some() {
        parsed.set_fragment(Some("***"));
    }
    parsed.to_string()
}

/// How an order is created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateStep {
    /// The till sends this request to the provider and reads the answer.
    Server(HttpRequest),
    /// The payer's own browser must submit this form (the provider reads the payer's IP or
    /// shows its own page), so the QR leads the payer's phone to it.
    PayerForm(PayerForm),
}

/// A signed form for the payer's browser to submit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayerForm {
    /// Where the form goes (the provider's page).
    pub action: String,
    /// The fields, in order, unencoded.
    pub fields: Vec<(String, String)>,
}

impl PayerForm {
    /// The same request as a GET link with the fields as query parameters, for a QR when no
    /// bridge page can be reached from the payer's phone.
    pub fn to_get_url(&self) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.fields.iter())
            .finish();
        let separator = if self.action.contains('?') { '&' } else { '?' };
        format!("{}{separator}{query}", self.action)
    }

    /// A page that submits the form by itself (POST), with a button for browsers without
    /// scripts.
    pub fn to_html(&self) -> String {
        let inputs: String = self
            .fields
            .iter()
            .map(|(name, value)| {
                format!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                    html_escape(name),
                    html_escape(value)
                )
            })
            .collect();
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
             <title>正在跳转支付…</title></head><body onload=\"document.forms[0].submit()\">\
             <form method=\"post\" action=\"{}\">{inputs}<button type=\"submit\">继续支付 / Continue to pay</button></form>\
             </body></html>",
            html_escape(&self.action)
        )
    }
}

/// Escapes text for an HTML attribute or element.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A response as `service` received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The raw body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as text, lossily, for the event log.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What `service` knows when it asks a provider to build a request. Injected so that
/// providers stay deterministic and testable.
#[derive(Clone, Debug)]
pub struct CallContext {
    /// The current time as Unix seconds.
    pub now_unix: i64,
    /// Where the provider should send its notify for this order.
    pub notify_url: String,
}

/// A new order to create.
#[derive(Clone, Debug)]
pub struct CreateOrder {
    /// Our order number.
    pub order_no: OrderNo,
    /// The amount the customer should pay.
    pub amount: Fen,
    /// The wallet.
    pub channel: Channel,
    /// A title for the order (may be empty).
    pub subject: String,
}

/// What we know of an order when asking about it.
#[derive(Clone, Debug)]
pub struct OrderRef {
    /// Our order number.
    pub order_no: OrderNo,
    /// The provider's own order id, once its create answer arrived.
    pub provider_order_id: Option<String>,
}

/// The provider's answer to a create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateOutcome {
    /// The provider's own id for the order.
    pub provider_order_id: Option<String>,
    /// The QR, when the create answer carries it.
    pub qr: Option<QrPayload>,
    /// The amount the customer must pay, when the provider adjusts it.
    pub payable: Option<Fen>,
    /// A page for the payer's browser (e.g. a provider's HTML pay form), served by the
    /// listener's bridge page; the QR then leads to the bridge.
    pub payer_page: Option<String>,
    /// The order's lifetime in seconds, when the answer states it.
    pub timeout_secs: Option<u64>,
    /// Whether this order's QR leads the payer to a web page that needs the payer's phone
    /// browser (a provider's jump page) rather than straight into the wallet; for protocols
    /// whose answer decides it per order (the QR screen then says so).
    pub payer_browser: bool,
}

/// The provider's answer to a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusReport {
    /// The state, mapped from the provider's code.
    pub state: ProviderState,
    /// The provider's own code, as sent.
    pub raw_code: String,
    /// The provider's id for the order, when the answer names it.
    pub provider_order_id: Option<String>,
    /// The QR, when the answer carries it.
    pub qr: Option<QrPayload>,
    /// The amount the provider says it received or expects.
    pub amount: Option<Fen>,
    /// The order's lifetime in seconds, as the provider states it.
    pub timeout_secs: Option<u64>,
}

/// A query's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryOutcome {
    /// The provider described the order.
    Report(StatusReport),
    /// The provider says it has no such order (it was never created).
    NotFound {
        /// The provider's words.
        message: String,
    },
}

/// A callback (notify) as the listener received it.
#[derive(Clone, Debug, Default)]
pub struct CallbackRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The decoded query-string pairs, in order.
    pub query: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The request's headers (names in lowercase), for protocols that sign in headers.
    pub headers: Vec<(String, String)>,
}

impl CallbackRequest {
    /// A header's value, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The decoded query and form-body pairs together (query first).
    pub fn params(&self) -> Vec<(String, String)> {
        let mut pairs = self.query.clone();
        let is_form = self
            .content_type
            .as_deref()
            .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if is_form && !self.body.is_empty() {
            pairs.extend(url::form_urlencoded::parse(&self.body).into_owned());
        }
        pairs
    }
}

/// A verified callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackReport {
    /// Our order number, as the provider sent it.
    pub order_no: OrderNo,
    /// The state it reports.
    pub state: ProviderState,
    /// The provider's own code, as sent.
    pub raw_code: String,
    /// The amount it says was paid.
    pub amount: Option<Fen>,
    /// Whether the signature covers that amount (if not, the amount is checked with a query
    /// before it is believed).
    pub amount_signed: bool,
}

/// The HTTP answer a provider expects to a callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackAck {
    /// Status code.
    pub status: u16,
    /// Body text.
    pub body: String,
}

/// Why a provider call did not give a usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered, and refused at business level.
    #[error("provider refused (code {code}): {message}")]
    Rejected {
        /// The provider's error code.
        code: String,
        /// The provider's message.
        message: String,
    },
    /// The HTTP status was not a success.
    #[error("provider answered HTTP {status}")]
    HttpStatus {
        /// The status code.
        status: u16,
    },
    /// The body could not be understood.
    #[error("provider answer not understood: {reason}")]
    Decode {
        /// What was wrong.
        reason: String,
    },
    /// A signature did not match.
    #[error("signature does not match")]
    BadSignature,
    /// The protocol has no such operation.
    #[error("{0} is not part of this provider's protocol")]
    NotSupported(&'static str),
}

/// What a provider says about the merchant account (balance, quota, the state of its
/// payment monitor).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountStatus {
    /// The balance, when the provider reports one.
    pub balance: Option<Fen>,
    /// The provider's words, when it reports a problem (or a state worth showing).
    pub message: Option<String>,
    /// Why no sale may start now, in words for staff, when the account cannot take payments
    /// (e.g. the phone that watches the wallet is offline, so a payment would never be
    /// seen). The service remembers the latest answer per account and refuses a charge
    /// while it is set.
    pub refuse_charges: Option<String>,
}

/// How often a provider may be asked about one order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollLimits {
    /// Never query one order more often than this.
    pub min_interval: Duration,
}

/// One configured provider account speaking one protocol.
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The account id from the config (`[[provider]] id`).
    fn id(&self) -> &str;

    /// The protocol's name in the config (`kind`).
    fn kind(&self) -> &'static str;

    /// A name for people, e.g. `ispay.in 就付`.
    fn display_name(&self) -> &'static str;

    /// The channels this account can take, in key order.
    fn channels(&self) -> &[Channel];

    /// How often an order may be queried.
    fn poll_limits(&self) -> PollLimits;

    /// Whether the protocol has a status query (otherwise payment is known only by notify).
    fn can_query(&self) -> bool;

    /// How to create an order: a request for the till to send, or a form for the payer.
    ///
    /// # Errors
    /// [`ProviderError::NotSupported`] when the channel is not offered.
    fn build_create(
        &self,
        order: &CreateOrder,
        ctx: &CallContext,
    ) -> Result<CreateStep, ProviderError>;

    /// Reads the create answer.
    ///
    /// # Errors
    /// A [`ProviderError`] for an HTTP error, an unreadable body or a refusal.
    fn parse_create(&self, response: &HttpResponse) -> Result<CreateOutcome, ProviderError>;

    /// The status query for an order (by the provider's id when known, else by ours).
    ///
    /// # Errors
    /// [`ProviderError::NotSupported`] when the protocol has no query.
    fn build_query(
        &self,
        order: &OrderRef,
        ctx: &CallContext,
    ) -> Result<HttpRequest, ProviderError>;

    /// Reads a query answer.
    ///
    /// # Errors
    /// A [`ProviderError`] for an HTTP error, an unreadable body or a refusal.
    fn parse_query(&self, response: &HttpResponse) -> Result<QueryOutcome, ProviderError>;

    /// Verifies and reads a callback.
    ///
    /// # Errors
    /// [`ProviderError::BadSignature`] for a forged callback, [`ProviderError::Decode`] for a
    /// malformed one.
    fn verify_callback(&self, request: &CallbackRequest) -> Result<CallbackReport, ProviderError>;

    /// The answer the provider expects to a callback we accepted (`ok`) or refused.
    fn callback_ack(&self, ok: bool) -> CallbackAck;

    /// A request about the merchant account (balance, quota) and how often it may be sent;
    /// `None` when the protocol has none.
    fn build_account_check(&self, _ctx: &CallContext) -> Option<(HttpRequest, Duration)> {
        None
    }

    /// Reads the account answer.
    ///
    /// # Errors
    /// A [`ProviderError`] for an HTTP error, an unreadable body or a refusal.
    fn parse_account_check(
        &self,
        _response: &HttpResponse,
    ) -> Result<AccountStatus, ProviderError> {
        Err(ProviderError::NotSupported("an account check"))
    }

    /// The request that closes an order at the provider when staff cancel it, so that it
    /// can no longer be paid (and, where payments are matched by amount, its amount is free
    /// again); `None` when the protocol has no close or the order cannot be named yet.
    fn build_close(&self, _order: &OrderRef, _ctx: &CallContext) -> Option<HttpRequest> {
        None
    }

    /// Reads the close answer: `Ok` when the provider closed the order.
    ///
    /// # Errors
    /// A [`ProviderError`] for an HTTP error, an unreadable body or a refusal (e.g. the
    /// order was paid meanwhile).
    fn parse_close(&self, _response: &HttpResponse) -> Result<(), ProviderError> {
        Err(ProviderError::NotSupported("closing an order"))
    }

    /// Whether a QR for this provider leads the payer to a page that needs the payer's
    /// browser (said on the QR screen).
    fn payer_browser_needed(&self) -> bool {
        false
    }

    /// What kind of trouble a refusal with this code is, where the protocol's documents say
    /// (e.g. a code for a bad signature); `None` leaves it to the refusal's words
    /// ([`health::describe`]).
    fn refusal_kind(&self, _code: &str, _message: &str) -> Option<health::FailureKind> {
        None
    }
}

/// Builds an account from its id and config table; the error names the key.
pub type FromTable = fn(id: &str, table: &toml::Table) -> Result<Arc<dyn Provider>, String>;

/// One key of a provider's `[[provider]]` table, as the settings screen edits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The key in the config file.
    pub name: &'static str,
    /// Whether an account cannot work without it.
    pub required: bool,
    /// Whether it is a merchant key: typed masked, kept out of every screen once saved.
    pub secret: bool,
}

impl Field {
    /// A key the account needs.
    pub const fn required(name: &'static str) -> Field {
        Field {
            name,
            required: true,
            secret: false,
        }
    }

    /// A key with a default.
    pub const fn optional(name: &'static str) -> Field {
        Field {
            name,
            required: false,
            secret: false,
        }
    }

    /// A merchant key (always required).
    pub const fn secret(name: &'static str) -> Field {
        Field {
            name,
            required: true,
            secret: true,
        }
    }
}

/// A protocol the till speaks: its config name and how to build an account from config.
pub struct ProviderKind {
    /// The `kind` value in the config.
    pub name: &'static str,
    /// A name for people, e.g. `ispay.in 就付`.
    pub display_name: &'static str,
    /// Every key its table may hold besides `id` and `kind`, in the order the settings screen
    /// shows them; [`wire::Table::new`] refuses any other.
    pub fields: &'static [Field],
    /// Builds an account from its `[[provider]]` table (the `id` and `kind` keys removed).
    ///
    /// The error names the offending key and what is allowed.
    pub from_table: FromTable,
}

/// Every protocol the till speaks: one line each.
pub const KINDS: &[ProviderKind] = &[
    ispay::KIND,
    igepay::KIND,
    gatepay::KIND,
    yinqiantong::KIND,
    jings::KIND,
    epay::KIND,
    vmq::KIND,
];

/// Looks up a protocol by its config name.
pub fn kind(name: &str) -> Option<&'static ProviderKind> {
    KINDS.iter().find(|kind| kind.name == name)
}
