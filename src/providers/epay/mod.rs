//! 易支付 / epay merchant protocol, MD5 version (PROVIDERS.md §6; no seed): create by form
//! `POST {base_url}/mapi.php`, state from `GET {base_url}/api.php?act=order`, and the GET
//! notify, all signed (or, for the query, authorised) with the merchant key.
//!
//! Invariant: the merchant key travels in the query's URL (`key=`), as the protocol wants it.
//! It is read only from [`Secret::expose`] when that URL is built, and the service masks it
//! (with every `key`/`sign`/`token`/`app_secret` parameter) before any URL is logged; see
//! [`crate::providers::loggable_url`].
//!
//! Choices where the document is silent (also in the README's provider table):
//! - `base_url` is required: every platform runs on its own host.
//! - `name` is the sale's subject, or `qrtill` when it has none (the platform requires one),
//!   cut to 127 bytes on a character boundary (the platform cuts longer names itself, which
//!   would break the signature).
//! - `clientip` (the payer's IP, unknown to a till) is the configured `client_ip`, default
//!   `127.0.0.1`; `device` is the configured one, default `pc`, which makes platforms answer
//!   with a QR code where they can.
//! - `return_url` is sent (and signed) only when configured; `param` is never sent.
//! - The QR is `qrcode` when the answer has one; else `payurl` (the platform's jump page)
//!   becomes the QR and the QR screen says that the payer's phone browser opens it
//!   ([`CreateOutcome::payer_browser`]); an answer with only a `urlscheme` (a mini-program) is
//!   refused with a message saying so, because a till cannot show one.
//! - `trade_no` in the create answer is kept when present, not required: the query asks by
//!   our order number.
//! - The query's `status`: `1` paid, `0` pending, anything else unknown. An answer whose `msg`
//!   says the order does not exist (`订单号不存在`, whatever its code) means "no such order";
//!   every other refusal is shown with its code and words.
//! - The notify is verified over every parameter received (`sign` and `sign_type` excepted,
//!   empty values dropped), as the platform's SDK does, so a field added by the platform is
//!   covered and a field added by someone else breaks the signature. A parameter that comes
//!   twice is refused. After the signature, `pid` must be ours. Only `TRADE_SUCCESS` is paid;
//!   other `trade_status` values leave the order as it is. `money` is signed, so it is the
//!   paid amount. A notify may also come as a POST form (some platforms do that).
//! - Answers: `success` to a notify we accept, `fail` otherwise (the platform then retries).
//! - No query limit is documented: one second.

pub mod transformers;

use std::sync::Arc;
use std::time::Duration;

use self::transformers::{
    DEFAULT_DEVICE, DEFAULT_NAME, DEVICES, MAX_NAME_BYTES, PayTarget, SignInput, cut_to_bytes,
    envelope, map_status, map_trade_status, pay_target, pay_type, says_no_such_order,
};
use super::wire::{self, Table};
use super::{
    CallContext, CallbackAck, CallbackReport, CallbackRequest, CreateOrder, CreateOutcome,
    CreateStep, Field, HttpRequest, HttpResponse, OrderRef, PollLimits, Provider, ProviderError,
    ProviderKind, QueryOutcome, StatusReport,
};
use crate::model::{Channel, Fen, OrderNo, QrPayload};
use crate::secret::{Secret, signatures_match};

/// The registry line.
pub const KIND: ProviderKind = ProviderKind {
    name: "epay",
    display_name: DISPLAY_NAME,
    fields: FIELDS,
    from_table,
};

/// The protocol's name for people.
const DISPLAY_NAME: &str = "易支付 epay";

/// The keys of this protocol's `[[provider]]` table.
const FIELDS: &[Field] = &[
    Field::required("base_url"),
    Field::required("pid"),
    Field::secret("key"),
    Field::optional("device"),
    Field::optional("client_ip"),
    Field::optional("return_url"),
];

const CHANNELS: &[Channel] = &[Channel::Alipay, Channel::Wechat, Channel::Qq];

/// One merchant account on an epay platform.
#[derive(Debug, Clone)]
pub struct Epay {
    id: String,
    base_url: String,
    pid: String,
    key: Secret,
    device: String,
    client_ip: String,
    return_url: Option<String>,
}

impl Epay {
    /// An account with the default `device` (`pc`) and client IP; `base_url` without a
    /// trailing slash.
    pub fn new(id: &str, base_url: &str, pid: &str, key: Secret) -> Self {
        Epay {
            id: id.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            pid: pid.to_string(),
            key,
            device: DEFAULT_DEVICE.to_string(),
            client_ip: "127.0.0.1".into(),
            return_url: None,
        }
    }

    /// Sets the `device` (one of [`DEVICES`]; checked by the config reader).
    pub fn with_device(mut self, device: &str) -> Self {
        self.device = device.to_string();
        self
    }

    /// Sets the `clientip` sent with every order.
    pub fn with_client_ip(mut self, client_ip: &str) -> Self {
        self.client_ip = client_ip.to_string();
        self
    }

    /// Sets the `return_url` sent with every order.
    pub fn with_return_url(mut self, return_url: Option<String>) -> Self {
        self.return_url = return_url;
        self
    }
}

fn from_table(id: &str, raw: &toml::Table) -> Result<Arc<dyn Provider>, String> {
    let table = Table::new(raw, FIELDS)?;
    let base_url = match raw.get("base_url") {
        None => {
            return Err(
                "missing key `base_url` (the epay platform's address, e.g. \"https://pay.example.com\": every platform has its own)"
                    .into(),
            );
        }
        Some(_) => table.url("base_url")?,
    };
    // A merchant may write the id as a number or in quotes; the document types it as Int.
    let pid = match raw.get("pid") {
        Some(toml::Value::String(s)) => s.trim().to_string(),
        Some(toml::Value::Integer(n)) => n.to_string(),
        Some(other) => {
            return Err(format!(
                "key `pid` must be the merchant id (商户ID), e.g. \"1001\", found {}",
                other.type_str()
            ));
        }
        None => return Err("missing key `pid` (the merchant id, 商户ID)".into()),
    };
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "key `pid` must be the numeric merchant id (商户ID), found `{pid}`"
        ));
    }
    let mut account = Epay::new(id, &base_url, &pid, Secret::new(table.str("key")?))
        .with_return_url(table.opt_url("return_url")?);
    if let Some(device) = table.opt_str("device")? {
        if !DEVICES.contains(&device.as_str()) {
            return Err(format!(
                "key `device` must be one of {} (pc asks the platform for a QR code), found `{device}`",
                DEVICES.join(", ")
            ));
        }
        account = account.with_device(&device);
    }
    if let Some(ip) = table.opt_str("client_ip")? {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!(
                "key `client_ip` must be an IP address such as \"127.0.0.1\", found `{ip}`"
            ));
        }
        account = account.with_client_ip(&ip);
    }
    Ok(Arc::new(account))
}

impl Provider for Epay {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn display_name(&self) -> &'static str {
        DISPLAY_NAME
    }

    fn channels(&self) -> &[Channel] {
        CHANNELS
    }

    fn poll_limits(&self) -> PollLimits {
        // No limit is documented; platforms differ. One second keeps "paid" prompt.
        PollLimits {
            min_interval: Duration::from_secs(1),
        }
    }

    fn can_query(&self) -> bool {
        true
    }

    fn build_create(
        &self,
        order: &CreateOrder,
        ctx: &CallContext,
    ) -> Result<CreateStep, ProviderError> {
        let pay_type =
            pay_type(order.channel).ok_or(ProviderError::NotSupported("this channel"))?;
        let money = order.amount.to_yuan();
        let subject = order.subject.trim();
        let name = cut_to_bytes(
            if subject.is_empty() {
                DEFAULT_NAME
            } else {
                subject
            },
            MAX_NAME_BYTES,
        );
        let return_url = self.return_url.as_deref().unwrap_or_default();
        let sign = SignInput::Create {
            clientip: &self.client_ip,
            device: &self.device,
            money: &money,
            name,
            notify_url: &ctx.notify_url,
            out_trade_no: order.order_no.as_str(),
            pid: &self.pid,
            return_url,
            pay_type,
        }
        .sign(&self.key);
        // The document's field order; an empty `return_url` is neither sent nor signed.
        let mut fields: Vec<(&str, &str)> = vec![
            ("pid", &self.pid),
            ("type", pay_type),
            ("out_trade_no", order.order_no.as_str()),
            ("notify_url", &ctx.notify_url),
        ];
        if !return_url.is_empty() {
            fields.push(("return_url", return_url));
        }
        fields.extend([
            ("name", name),
            ("money", &money),
            ("clientip", &self.client_ip),
            ("device", &self.device),
            ("sign", &sign),
            ("sign_type", "MD5"),
        ]);
        Ok(CreateStep::Server(HttpRequest::post_form(
            format!("{}/mapi.php", self.base_url),
            &fields,
        )))
    }

    fn parse_create(&self, response: &HttpResponse) -> Result<CreateOutcome, ProviderError> {
        let value = envelope(response.status, &response.body)?;
        let (qr, payer_browser) = match pay_target(&value)? {
            PayTarget::QrCode(text) => (QrPayload::Text(text), false),
            PayTarget::PayUrl(url) => (QrPayload::Text(url), true),
            PayTarget::UrlScheme(scheme) => {
                return Err(ProviderError::Rejected {
                    code: "urlscheme".into(),
                    message: format!(
                        "平台只给出小程序链接，收银台无法展示 / the platform answered with a mini-program scheme only (`urlscheme` {}), which a till cannot show as a QR: use another channel or `device = \"pc\"`",
                        wire::excerpt(&scheme)
                    ),
                });
            }
        };
        Ok(CreateOutcome {
            provider_order_id: wire::non_empty(&value, "trade_no"),
            qr: Some(qr),
            // The platform takes the amount as sent: nothing is nudged.
            payable: None,
            payer_page: None,
            timeout_secs: None,
            payer_browser,
        })
    }

    fn build_query(
        &self,
        order: &OrderRef,
        _ctx: &CallContext,
    ) -> Result<HttpRequest, ProviderError> {
        // The protocol authorises the query with the merchant key itself, in the URL. The
        // service never logs this URL unmasked (see `providers::loggable_url`).
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("act", "order")
            .append_pair("pid", &self.pid)
            .append_pair("key", self.key.expose())
            .append_pair("out_trade_no", order.order_no.as_str())
            .finish();
        Ok(HttpRequest::get(format!(
            "{}/api.php?{query}",
            self.base_url
        )))
    }

    fn parse_query(&self, response: &HttpResponse) -> Result<QueryOutcome, ProviderError> {
        let value = match envelope(response.status, &response.body) {
            Ok(value) => value,
            Err(ProviderError::Rejected { message, .. }) if says_no_such_order(&message) => {
                return Ok(QueryOutcome::NotFound { message });
            }
            Err(err) => return Err(err),
        };
        let raw_code = value
            .get("status")
            .and_then(wire::as_text)
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty())
            .ok_or_else(|| ProviderError::Decode {
                reason: "query answer has no `status`".into(),
            })?;
        Ok(QueryOutcome::Report(StatusReport {
            state: map_status(&raw_code),
            raw_code,
            provider_order_id: wire::non_empty(&value, "trade_no"),
            qr: None,
            amount: value.get("money").and_then(wire::as_fen),
            timeout_secs: None,
        }))
    }

    fn verify_callback(&self, request: &CallbackRequest) -> Result<CallbackReport, ProviderError> {
        let params = request.params();
        // A name sent twice would let the signed value and the read one differ.
        for (at, (name, _)) in params.iter().enumerate() {
            if params.iter().skip(at + 1).any(|(other, _)| other == name) {
                return Err(ProviderError::Decode {
                    reason: format!("notify has `{}` twice", wire::excerpt(name)),
                });
            }
        }
        let get = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let sign =
            get("sign")
                .filter(|sign| !sign.is_empty())
                .ok_or_else(|| ProviderError::Decode {
                    reason: "notify has no `sign`".into(),
                })?;
        let expected = SignInput::Received { params: &params }.sign(&self.key);
        if !signatures_match(sign, &expected) {
            return Err(ProviderError::BadSignature);
        }
        // Verified: the fields can be read now.
        let require = |name: &str| {
            get(name)
                .filter(|value| !value.is_empty())
                .ok_or_else(|| ProviderError::Decode {
                    reason: format!("notify has no `{name}`"),
                })
        };
        let pid = require("pid")?;
        if pid.trim() != self.pid {
            return Err(ProviderError::Decode {
                reason: format!("notify is for merchant `{}`, not ours", wire::excerpt(pid)),
            });
        }
        let order_no =
            OrderNo::new(require("out_trade_no")?).map_err(|err| ProviderError::Decode {
                reason: err.to_string(),
            })?;
        let trade_status = require("trade_status")?;
        let amount = match get("money").filter(|money| !money.is_empty()) {
            Some(text) => Some(Fen::parse_wire(text).map_err(|err| ProviderError::Decode {
                reason: format!("notify `money` `{}`: {err}", wire::excerpt(text)),
            })?),
            None => None,
        };
        Ok(CallbackReport {
            order_no,
            state: map_trade_status(trade_status),
            raw_code: trade_status.to_string(),
            amount,
            // A non-empty `money` is one of the signed fields.
            amount_signed: amount.is_some(),
        })
    }

    fn callback_ack(&self, ok: bool) -> CallbackAck {
        CallbackAck {
            status: 200,
            body: if ok { "success" } else { "fail" }.into(),
        }
    }

    fn refusal_kind(&self, code: &str, _message: &str) -> Option<super::health::FailureKind> {
        code.trim()
            .parse()
            .ok()
            .and_then(transformers::refusal_kind)
    }
}
