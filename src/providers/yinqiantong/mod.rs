//! yinqiantong (银钱通) v1: create by JSON `POST /order` with the `appid`, `appkey`, `ts` and
//! `sign` headers, state from `GET /order?client_out_trade_no=…` (signed over no fields), and
//! a JSON notify signed the same way. Amounts are integer fen on the wire.
//!
//! Choices where the seed and PROVIDERS.md §4a are silent (change them here):
//! - `platform` is `h5` unless the config says `pc` or `scan`. `h5` is the one the seed's
//!   example uses and the only one whose `pay_body` is documented for both wallets: Alipay
//!   answers with an HTML form (served to the payer's phone by the listener's bridge page, so
//!   the till needs `[listener] public_url` reachable from phones), WeChat with a
//!   `wx.tenpay.com` link that only works in a phone browser other than WeChat. `scan` (a
//!   native code, if the account has it) suits a till best but is undocumented; `app`, `mp`
//!   and `mini_app` need an app or an `open_id`, so they are refused.
//! - `client_ip` (the payer's IPv4 address, unknown to a till) is the configured one, default
//!   `127.0.0.1` as in the document's example.
//! - `client_out_trade_no` (a later v1 field) is always sent, so that an order whose create
//!   answer was lost can be looked up by our number; the query always asks by our number.
//! - `subject` is left out when empty (as every empty optional field), so it is not signed.
//! - The lifetime is `expire_time - create_time` of the answer.
//! - Status codes: `unpaid`/`0` pending, `paid`/`1` (and the JS SDK's `pay_success`) paid,
//!   `2` failed, `expired`/`3` expired; `refunding`/`refunded` leave an order as it is (see
//!   [`transformers::map_status`]).
//! - The notify's signature covers every non-empty body field (a `sign` field excepted) and
//!   the `ts` header; non-string values are signed as [`transformers::field_text`] renders
//!   them. Its `ts` is not checked for age: a provider has no clock here, and a replayed
//!   genuine notify can only repeat a verified fact (paid is terminal).
//! - The order number in a notify is `client_out_trade_no`, or v2's `cient_out_trade_no`.
//! - A refused notify is answered HTTP 400 so that the provider retries; an accepted one
//!   HTTP 200 `{"code":200}`.
//! - No query limit is documented (the JS SDK polls every second): one second.

pub mod transformers;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use self::transformers::{
    CreateBody, PayBody, SignInput, TILL_PLATFORMS, channel_name, data, envelope, lifetime_secs,
    map_status, pay_body, text_of,
};
use super::wire::{self, Table};
use super::{
    CallContext, CallbackAck, CallbackReport, CallbackRequest, CreateOrder, CreateOutcome,
    CreateStep, Field, HttpRequest, HttpResponse, Method, OrderRef, PollLimits, Provider,
    ProviderError, ProviderKind, QueryOutcome, StatusReport,
};
use crate::model::{Channel, Fen, OrderNo, QrPayload};
use crate::secret::{Secret, signatures_match};

/// The registry line.
pub const KIND: ProviderKind = ProviderKind {
    name: "yinqiantong",
    display_name: DISPLAY_NAME,
    fields: FIELDS,
    from_table,
};

/// The protocol's name for people.
const DISPLAY_NAME: &str = "银钱通 yinqiantong";

/// The keys of this protocol's `[[provider]]` table.
const FIELDS: &[Field] = &[
    Field::optional("base_url"),
    Field::required("appid"),
    Field::secret("appkey"),
    Field::secret("app_secret"),
    Field::optional("platform"),
    Field::optional("client_ip"),
];

/// The v1 host from the seed (it moved to `https://yqtapi.com` on 2018-10-25; set `base_url`).
pub const DEFAULT_BASE_URL: &str = "https://yinqiantong.com";

const CHANNELS: &[Channel] = &[Channel::Alipay, Channel::Wechat];

/// One yinqiantong app.
#[derive(Debug, Clone)]
pub struct Yinqiantong {
    id: String,
    base_url: String,
    appid: String,
    appkey: Secret,
    app_secret: Secret,
    platform: String,
    client_ip: String,
}

impl Yinqiantong {
    /// An app with the default platform (`h5`) and client IP; `base_url` without a trailing
    /// slash.
    pub fn new(id: &str, base_url: &str, appid: &str, appkey: Secret, app_secret: Secret) -> Self {
        Yinqiantong {
            id: id.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            appid: appid.to_string(),
            appkey,
            app_secret,
            platform: transformers::DEFAULT_PLATFORM.to_string(),
            client_ip: "127.0.0.1".into(),
        }
    }

    /// Sets the `platform` (one of [`TILL_PLATFORMS`]; checked by the config reader).
    pub fn with_platform(mut self, platform: &str) -> Self {
        self.platform = platform.to_string();
        self
    }

    /// Sets the `client_ip` sent with every order.
    pub fn with_client_ip(mut self, client_ip: &str) -> Self {
        self.client_ip = client_ip.to_string();
        self
    }

    /// The four headers every request carries.
    fn auth_headers(&self, ts: &str, sign: String) -> Vec<(String, String)> {
        vec![
            ("appid".into(), self.appid.clone()),
            ("appkey".into(), self.appkey.expose().to_string()),
            ("ts".into(), ts.to_string()),
            ("sign".into(), sign),
        ]
    }
}

fn from_table(id: &str, raw: &toml::Table) -> Result<Arc<dyn Provider>, String> {
    let table = Table::new(raw, FIELDS)?;
    let base_url = table
        .opt_url("base_url")?
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
    let mut account = Yinqiantong::new(
        id,
        &base_url,
        table.str("appid")?.trim(),
        Secret::new(table.str("appkey")?),
        Secret::new(table.str("app_secret")?),
    );
    if let Some(platform) = table.opt_str("platform")? {
        if !TILL_PLATFORMS.contains(&platform.as_str()) {
            return Err(format!(
                "key `platform` must be one of {} (app, mp and mini_app need an app or an open_id a till does not have), found `{platform}`",
                TILL_PLATFORMS.join(", ")
            ));
        }
        account = account.with_platform(&platform);
    }
    if let Some(ip) = table.opt_str("client_ip")? {
        if ip.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(format!(
                "key `client_ip` must be an IPv4 address such as \"127.0.0.1\", found `{ip}`"
            ));
        }
        account = account.with_client_ip(&ip);
    }
    Ok(Arc::new(account))
}

impl Provider for Yinqiantong {
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
        // No limit is documented; the provider's JS SDK polls every second.
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
        let channel =
            channel_name(order.channel).ok_or(ProviderError::NotSupported("this channel"))?;
        let ts = ctx.now_unix.to_string();
        let body = CreateBody {
            channel,
            platform: &self.platform,
            money: order.amount.0,
            client_ip: &self.client_ip,
            notify_url: &ctx.notify_url,
            subject: &order.subject,
            client_out_trade_no: order.order_no.as_str(),
        };
        let sign = body.sign_input(&ts).sign(&self.app_secret);
        let json = serde_json::to_vec(&body).map_err(|err| ProviderError::Decode {
            reason: format!("cannot write the create body: {err}"),
        })?;
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        headers.extend(self.auth_headers(&ts, sign));
        Ok(CreateStep::Server(HttpRequest {
            method: Method::Post,
            url: format!("{}/order", self.base_url),
            headers,
            body: Some(json),
        }))
    }

    fn parse_create(&self, response: &HttpResponse) -> Result<CreateOutcome, ProviderError> {
        let value = envelope(response.status, &response.body)?;
        let data = data(&value)?;
        let id = text_of(data, "out_trade_no").ok_or_else(|| ProviderError::Decode {
            reason: "create answer has no `data.out_trade_no`".into(),
        })?;
        let body = data
            .get("pay_body")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::Decode {
                reason: "create answer has no `data.pay_body` text".into(),
            })?;
        let (qr, payer_page) = match pay_body(body)? {
            PayBody::Url(url) => (Some(QrPayload::Text(url)), None),
            PayBody::Page(html) => (None, Some(html)),
        };
        Ok(CreateOutcome {
            provider_order_id: Some(id),
            qr,
            // Official channels take the amount as sent: nothing is nudged.
            payable: None,
            payer_page,
            timeout_secs: lifetime_secs(data),
            // `payer_browser_needed` says it for the whole account (it follows `platform`).
            payer_browser: false,
        })
    }

    fn build_query(
        &self,
        order: &OrderRef,
        ctx: &CallContext,
    ) -> Result<HttpRequest, ProviderError> {
        let ts = ctx.now_unix.to_string();
        let sign = SignInput::Query { ts: &ts }.sign(&self.app_secret);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_out_trade_no", order.order_no.as_str())
            .finish();
        let mut request = HttpRequest::get(format!("{}/order?{query}", self.base_url));
        request.headers = self.auth_headers(&ts, sign);
        Ok(request)
    }

    fn parse_query(&self, response: &HttpResponse) -> Result<QueryOutcome, ProviderError> {
        let value = match envelope(response.status, &response.body) {
            Ok(value) => value,
            Err(ProviderError::Rejected { code, message }) if code == "4404" => {
                return Ok(QueryOutcome::NotFound { message });
            }
            Err(err) => return Err(err),
        };
        let data = data(&value)?;
        let raw_code = text_of(data, "status").ok_or_else(|| ProviderError::Decode {
            reason: "query answer has no `data.status`".into(),
        })?;
        // A link can stand in for a lost create answer; a form page cannot travel this way.
        let qr = data
            .get("pay_body")
            .and_then(Value::as_str)
            .and_then(|body| match pay_body(body) {
                Ok(PayBody::Url(url)) => Some(QrPayload::Text(url)),
                _ => None,
            });
        Ok(QueryOutcome::Report(StatusReport {
            state: map_status(&raw_code),
            raw_code,
            provider_order_id: text_of(data, "out_trade_no"),
            qr,
            amount: data.get("money").and_then(wire::as_int).map(Fen),
            timeout_secs: lifetime_secs(data),
        }))
    }

    fn verify_callback(&self, request: &CallbackRequest) -> Result<CallbackReport, ProviderError> {
        let header = |name: &str| {
            request.header(name).ok_or_else(|| ProviderError::Decode {
                reason: format!("notify has no `{name}` header"),
            })
        };
        let sign = header("sign")?;
        let ts = header("ts")?;
        let value = wire::parse_json(&request.body)?;
        let body = value.as_object().ok_or_else(|| ProviderError::Decode {
            reason: format!(
                "notify body is not a JSON object: {}",
                wire::excerpt(&String::from_utf8_lossy(&request.body))
            ),
        })?;
        let expected = SignInput::Body { body, ts }.sign(&self.app_secret);
        if !signatures_match(sign, &expected) {
            return Err(ProviderError::BadSignature);
        }
        // Verified: the fields can be read now.
        if let Some(appid) = request.header("appid")
            && appid.trim() != self.appid
        {
            return Err(ProviderError::Decode {
                reason: format!("notify is for appid `{}`, not ours", wire::excerpt(appid)),
            });
        }
        let order_no = text_of(body, "client_out_trade_no")
            .or_else(|| text_of(body, "cient_out_trade_no"))
            .ok_or_else(|| ProviderError::Decode {
                reason: "notify has no `client_out_trade_no`".into(),
            })?;
        let order_no = OrderNo::new(&order_no).map_err(|err| ProviderError::Decode {
            reason: err.to_string(),
        })?;
        let raw_code = text_of(body, "status").ok_or_else(|| ProviderError::Decode {
            reason: "notify has no `status`".into(),
        })?;
        let amount = match body.get("money") {
            None | Some(Value::Null) => None,
            Some(money) => {
                Some(
                    wire::as_int(money)
                        .map(Fen)
                        .ok_or_else(|| ProviderError::Decode {
                            reason: format!(
                                "notify `money` is not whole fen: `{}`",
                                wire::excerpt(&transformers::field_text(money))
                            ),
                        })?,
                )
            }
        };
        Ok(CallbackReport {
            order_no,
            state: map_status(&raw_code),
            raw_code,
            amount,
            // `money` is a body field, and the signature covers every body field.
            amount_signed: true,
        })
    }

    fn callback_ack(&self, ok: bool) -> CallbackAck {
        if ok {
            CallbackAck {
                status: 200,
                body: r#"{"code":200}"#.into(),
            }
        } else {
            CallbackAck {
                status: 400,
                body: r#"{"code":400,"msg":"refused"}"#.into(),
            }
        }
    }

    fn payer_browser_needed(&self) -> bool {
        // h5 and pc lead to a web page (an Alipay form, a WeChat H5 link); scan to a wallet.
        self.platform != "scan"
    }

    fn refusal_kind(&self, code: &str, _message: &str) -> Option<super::health::FailureKind> {
        code.trim()
            .parse()
            .ok()
            .and_then(transformers::refusal_kind)
    }
}
