//! ispay.in (就付) v1: create by form POST to `/gateway`, QR and state from `/query/{id}`,
//! look-up by our order number at `/order/{userid}/{order_no}/{md5}`, and the GET notify.
//!
//! Choices where the seed is silent (also in the README's provider table):
//! - `notify_url` and `return_url` are required by the seed. Without a configured
//!   `notify_url` we send the listener's URL; without a `return_url` we send the notify URL
//!   too, because the seed's own heading says the callback goes to `return_url` (PROVIDERS.md
//!   calls that a doc error) and this way the notify reaches us either way.
//! - `ip` (the payer's IP) is unknown to a till: we send `client_ip` from the config, default
//!   `127.0.0.1`.
//! - `order_time` is optional: we send Unix seconds, as the provider's demo does.
//! - `timeout` in answers is taken as seconds (900 in the seed).

pub mod transformers;

use std::sync::Arc;
use std::time::Duration;

use self::transformers::{SignInput, envelope, order_type, status_report};
use super::wire::{self, Table};
use super::{
    CallContext, CallbackAck, CallbackReport, CallbackRequest, CreateOrder, CreateOutcome,
    CreateStep, Field, HttpRequest, HttpResponse, OrderRef, PollLimits, Provider, ProviderError,
    ProviderKind, QueryOutcome,
};
use crate::model::{Channel, Fen, OrderNo};
use crate::secret::{Secret, signatures_match};

/// The registry line.
pub const KIND: ProviderKind = ProviderKind {
    name: "ispay",
    display_name: DISPLAY_NAME,
    fields: FIELDS,
    from_table,
};

/// The protocol's name for people.
const DISPLAY_NAME: &str = "ispay.in 就付";

/// The keys of this protocol's `[[provider]]` table.
const FIELDS: &[Field] = &[
    Field::optional("base_url"),
    Field::required("userid"),
    Field::secret("key"),
    Field::optional("notify_url"),
    Field::optional("return_url"),
    Field::optional("client_ip"),
];

/// The production host from the seed.
pub const DEFAULT_BASE_URL: &str = "https://pay.ispay.in";

const CHANNELS: &[Channel] = &[Channel::Alipay, Channel::Wechat, Channel::Unionpay];

/// One ispay.in merchant account.
#[derive(Debug, Clone)]
pub struct Ispay {
    id: String,
    base_url: String,
    userid: String,
    key: Secret,
    notify_url: Option<String>,
    return_url: Option<String>,
    client_ip: String,
}

impl Ispay {
    /// An account; `base_url` without a trailing slash.
    pub fn new(id: &str, base_url: &str, userid: &str, key: Secret) -> Self {
        Ispay {
            id: id.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            userid: userid.to_string(),
            key,
            notify_url: None,
            return_url: None,
            client_ip: "127.0.0.1".into(),
        }
    }

    /// Sets the notify and return URLs from the config.
    pub fn with_urls(mut self, notify_url: Option<String>, return_url: Option<String>) -> Self {
        self.notify_url = notify_url;
        self.return_url = return_url;
        self
    }
}

fn from_table(id: &str, raw: &toml::Table) -> Result<Arc<dyn Provider>, String> {
    let table = Table::new(raw, FIELDS)?;
    // A merchant may write the id as a number or in quotes; the seed types it as int.
    let userid = match raw.get("userid") {
        Some(toml::Value::String(s)) => s.trim().to_string(),
        Some(toml::Value::Integer(n)) => n.to_string(),
        Some(other) => {
            return Err(format!(
                "key `userid` must be the merchant id (商户ID), e.g. \"10001\", found {}",
                other.type_str()
            ));
        }
        None => return Err("missing key `userid` (the merchant id, 商户ID)".into()),
    };
    if userid.is_empty() || !userid.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "key `userid` must be the numeric merchant id (商户ID), found `{userid}`"
        ));
    }
    let base_url = match table.opt_url("base_url")? {
        Some(url) => url,
        None => DEFAULT_BASE_URL.to_string(),
    };
    let mut account = Ispay::new(id, &base_url, &userid, Secret::new(table.str("key")?))
        .with_urls(table.opt_url("notify_url")?, table.opt_url("return_url")?);
    if let Some(ip) = table.opt_str("client_ip")? {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!(
                "key `client_ip` must be an IP address, found `{ip}`"
            ));
        }
        account.client_ip = ip;
    }
    Ok(Arc::new(account))
}

impl Provider for Ispay {
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
        // No limit is documented; the provider's own demo page polls every 5 s. One second
        // keeps "paid" prompt at the till without hammering the provider.
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
        let order_type =
            order_type(order.channel).ok_or(ProviderError::NotSupported("this channel"))?;
        let amount = order.amount.to_yuan();
        let notify_url = self.notify_url.as_deref().unwrap_or(&ctx.notify_url);
        let return_url = self.return_url.as_deref().unwrap_or(notify_url);
        let sign = SignInput::Create {
            userid: &self.userid,
            order_no: order.order_no.as_str(),
            order_type,
            amount: &amount,
            return_url,
        }
        .sign(&self.key);
        let order_time = ctx.now_unix.to_string();
        let mut fields: Vec<(&str, &str)> = vec![("userid", &self.userid)];
        if !order.subject.is_empty() {
            fields.push(("subject", &order.subject));
        }
        fields.extend([
            ("order_no", order.order_no.as_str()),
            ("order_type", order_type),
            ("amount", &amount),
            ("notify_url", notify_url),
            ("return_url", return_url),
            ("ip", &self.client_ip),
            ("order_time", &order_time),
            ("sign", &sign),
        ]);
        Ok(CreateStep::Server(HttpRequest::post_form(
            format!("{}/gateway", self.base_url),
            &fields,
        )))
    }

    fn parse_create(&self, response: &HttpResponse) -> Result<CreateOutcome, ProviderError> {
        let value = envelope(response.status, &response.body)?;
        let id = value
            .get("order_id")
            .and_then(wire::as_text)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| ProviderError::Decode {
                reason: "create answer has no `order_id`".into(),
            })?;
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ProviderError::Decode {
                reason: format!(
                    "`order_id` has unexpected characters: {}",
                    wire::excerpt(&id)
                ),
            });
        }
        Ok(CreateOutcome {
            provider_order_id: Some(id),
            ..CreateOutcome::default()
        })
    }

    fn build_query(
        &self,
        order: &OrderRef,
        _ctx: &CallContext,
    ) -> Result<HttpRequest, ProviderError> {
        Ok(match &order.provider_order_id {
            Some(id) => HttpRequest::get(format!("{}/query/{id}", self.base_url)),
            // Without the provider's id (its create answer never came) ask by our number.
            None => {
                let sign = SignInput::OrderNo {
                    userid: &self.userid,
                    order_no: order.order_no.as_str(),
                }
                .sign(&self.key);
                HttpRequest::get(format!(
                    "{}/order/{}/{}/{sign}",
                    self.base_url, self.userid, order.order_no
                ))
            }
        })
    }

    fn parse_query(&self, response: &HttpResponse) -> Result<QueryOutcome, ProviderError> {
        match envelope(response.status, &response.body) {
            Ok(value) => status_report(&value).map(QueryOutcome::Report),
            // The seed's only not-found answer: success false, errorMsg "订单不存在".
            Err(ProviderError::Rejected { message, .. }) if message.contains("不存在") => {
                Ok(QueryOutcome::NotFound { message })
            }
            Err(err) => Err(err),
        }
    }

    fn verify_callback(&self, request: &CallbackRequest) -> Result<CallbackReport, ProviderError> {
        let params = request.params();
        let get = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
                .ok_or_else(|| ProviderError::Decode {
                    reason: format!("notify has no `{name}`"),
                })
        };
        let order_no = get("order_no")?;
        let expected = SignInput::OrderNo {
            userid: &self.userid,
            order_no,
        }
        .sign(&self.key);
        if !signatures_match(get("sign")?, &expected) {
            return Err(ProviderError::BadSignature);
        }
        let order_no = OrderNo::new(order_no).map_err(|err| ProviderError::Decode {
            reason: err.to_string(),
        })?;
        let state_text = get("state")?;
        let state = state_text
            .trim()
            .parse::<i64>()
            .map(transformers::map_state)
            .map_err(|_| ProviderError::Decode {
                reason: format!(
                    "notify `state` is not a number: `{}`",
                    wire::excerpt(state_text)
                ),
            })?;
        // The amount is not covered by the signature; it is checked against the order.
        let amount = match get("amount") {
            Ok(text) => Some(Fen::parse_wire(text).map_err(|err| ProviderError::Decode {
                reason: format!("notify `amount` `{}`: {err}", wire::excerpt(text)),
            })?),
            Err(_) => None,
        };
        Ok(CallbackReport {
            order_no,
            state,
            raw_code: state_text.to_string(),
            amount,
            // md5(userid + order_no + key) does not cover the amount.
            amount_signed: false,
        })
    }

    fn callback_ack(&self, ok: bool) -> CallbackAck {
        CallbackAck {
            status: 200,
            body: if ok { "success" } else { "fail" }.into(),
        }
    }
}
