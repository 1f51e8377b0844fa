//! A provider call's failure in plain words for staff: which kind of trouble it is (the
//! merchant's credentials, a quota or balance, the provider being down, an answer the till
//! does not understand, or something else the provider said) and a short text in both
//! languages, for the status bar's provider health.
//!
//! Sans IO like the rest of `providers`: the service hands in what went wrong ([`describe`]
//! for an answer, [`Failure::unreachable`] for no answer). Documented codes are read per
//! protocol ([`super::Provider::refusal_kind`]); any other refusal is sorted by the words the
//! provider used, and keeps those words, so staff always see what the provider said.

use super::{Provider, ProviderError};

/// What kind of trouble a failed call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The provider refused the merchant's credentials: a wrong key or signature, an unknown
    /// merchant id, a disabled account. Nothing works until the config is fixed.
    Authorization,
    /// A quota, balance or plan limit ran out.
    Quota,
    /// No answer (timeout, unreachable) or the provider's server failed (HTTP 5xx).
    ProviderDown,
    /// The provider answered something the till cannot read.
    NotUnderstood,
    /// The provider refused for another reason, in its own words.
    Other,
}

impl FailureKind {
    /// The kind in plain words: (中文, English).
    pub fn words(self) -> (&'static str, &'static str) {
        match self {
            FailureKind::Authorization => (
                "商户密钥或签名不对（或商户号无效、已停用）",
                "merchant key or signature refused (or the merchant id is unknown or disabled)",
            ),
            FailureKind::Quota => (
                "额度、余额或套餐已用完",
                "quota, balance or plan limit reached",
            ),
            FailureKind::ProviderDown => (
                "支付平台无响应或服务器出错",
                "provider not answering or its server failed",
            ),
            FailureKind::NotUnderstood => (
                "支付平台的回答无法识别",
                "the provider's answer was not understood",
            ),
            FailureKind::Other => ("支付平台拒绝", "provider refused"),
        }
    }
}

/// One failed call, sorted, with the details behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The kind of trouble.
    pub kind: FailureKind,
    /// The provider's own code, when it gave one.
    pub code: Option<String>,
    /// What exactly happened: the provider's words, the HTTP status, the network error.
    /// Never holds a secret (providers' messages and transport errors carry no keys).
    pub detail: String,
}

impl Failure {
    /// A call that got no answer at all (timeout, refused connection, broken-off answer).
    pub fn unreachable(detail: impl Into<String>) -> Self {
        Failure {
            kind: FailureKind::ProviderDown,
            code: None,
            detail: detail.into(),
        }
    }

    /// The staff text in Chinese: the kind's words, and for [`FailureKind::Other`] the
    /// provider's own words after them.
    pub fn zh(&self) -> String {
        self.text(self.kind.words().0)
    }

    /// The staff text in English (see [`Failure::zh`]).
    pub fn en(&self) -> String {
        self.text(self.kind.words().1)
    }

    fn text(&self, words: &str) -> String {
        match self.kind {
            FailureKind::Other => format!("{words}: {}", super::wire::excerpt(&self.detail)),
            _ => words.to_string(),
        }
    }
}

/// Sorts a provider's failed answer (`err`, as `parse_*` returned it) for staff.
pub fn describe(provider: &dyn Provider, err: &ProviderError) -> Failure {
    let (kind, code) = match err {
        ProviderError::Rejected { code, message } => (
            provider
                .refusal_kind(code, message)
                .or_else(|| kind_by_words(message))
                .unwrap_or(FailureKind::Other),
            Some(code.clone()),
        ),
        ProviderError::HttpStatus { status } => (
            match status {
                500..=599 => FailureKind::ProviderDown,
                401 | 403 => FailureKind::Authorization,
                402 | 429 => FailureKind::Quota,
                _ => FailureKind::Other,
            },
            None,
        ),
        ProviderError::Decode { .. } => (FailureKind::NotUnderstood, None),
        // The provider signs its answers with the merchant key: an answer that does not
        // check out most often means the key in the config is not the provider's.
        ProviderError::BadSignature => (FailureKind::Authorization, None),
        ProviderError::NotSupported(_) => (FailureKind::Other, None),
    };
    Failure {
        kind,
        code,
        detail: err.to_string(),
    }
}

/// Words that name the merchant's credentials or account being refused.
const AUTHORIZATION_WORDS: &[&str] = &[
    "签名",
    "验签",
    "秘钥",
    "密钥",
    "商户不存在",
    "商户id",
    "商户号",
    "pid不存在",
    "未授权",
    "禁用",
    "冻结",
    "封禁",
    "signature",
    "unauthori",
    "forbidden",
    "merchant key",
    "invalid key",
    "wrong key",
    "unknown merchant",
];

/// Words that name a quota, a balance or a limit.
const QUOTA_WORDS: &[&str] = &[
    "余额",
    "额度",
    "超额",
    "套餐",
    "限额",
    "上限",
    "频繁",
    "quota",
    "balance",
    "insufficient",
    "limit",
    "too many",
    "too frequent",
];

/// Sorts a refusal by the provider's words when its code is not documented.
pub fn kind_by_words(message: &str) -> Option<FailureKind> {
    let lower = message.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if has(AUTHORIZATION_WORDS) {
        Some(FailureKind::Authorization)
    } else if has(QUOTA_WORDS) {
        Some(FailureKind::Quota)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An account of a protocol (its keys as a config holds them, at a URL nothing answers).
    fn account(kind: &str) -> std::sync::Arc<dyn Provider> {
        let keys = match kind {
            "ispay" => "userid = \"10001\"\nkey = \"k\"",
            "gatepay" => "appkey = \"a\"\nappsecret = \"s\"",
            "yinqiantong" => "appid = \"10000001\"\nappkey = \"a\"\napp_secret = \"s\"",
            "jings" => "uid = \"10000001400000\"\ntoken = \"t\"",
            "epay" => "pid = \"1001\"\nkey = \"k\"",
            _ => "key = \"k\"",
        };
        let text = format!("base_url = \"http://127.0.0.1:9/{kind}\"\n{keys}");
        let table: toml::Table = text.parse().expect("table");
        let protocol = super::super::kind(kind).expect("a protocol");
        (protocol.from_table)("test", &table).expect("an account")
    }

    fn refusal(kind: &str, code: &str, message: &str) -> FailureKind {
        let err = ProviderError::Rejected {
            code: code.into(),
            message: message.into(),
        };
        describe(account(kind).as_ref(), &err).kind
    }

    #[test]
    fn documented_codes_per_protocol() {
        use FailureKind::{Authorization, Other, ProviderDown, Quota};
        // gatepay (seed 002's table): the appkey and sign codes, the API switched off, the
        // plan's quota; a price refusal is the provider's own business.
        for code in ["101", "102", "103", "104", "107", "209"] {
            assert_eq!(
                refusal("gatepay", code, "x"),
                Authorization,
                "gatepay {code}"
            );
        }
        assert_eq!(refusal("gatepay", "110", "套餐已超额"), Quota);
        assert_eq!(refusal("gatepay", "201", "价格无效 / invalid price"), Other);
        // yinqiantong (PROVIDERS.md §4b): 4403 bad sign, 4500 server error, 4414 bad params.
        assert_eq!(refusal("yinqiantong", "4403", "签名错误"), Authorization);
        assert_eq!(refusal("yinqiantong", "4500", "服务器错误"), ProviderDown);
        assert_eq!(
            refusal("yinqiantong", "4414", "参数错误 / bad parameters"),
            Other
        );
        // epay: -2 the key, -3 the merchant id; -1 is any refusal, sorted by its words.
        assert_eq!(refusal("epay", "-2", "x"), Authorization);
        assert_eq!(refusal("epay", "-3", "x"), Authorization);
        assert_eq!(
            refusal("epay", "-1", "签名校验失败，请返回重试！"),
            Authorization
        );
        assert_eq!(refusal("epay", "-1", "PID不存在"), Authorization);
        assert_eq!(refusal("epay", "-1", "订单号已存在"), Other);
        // ispay: the seed documents only 1004 (the create failed), the provider's business.
        assert_eq!(refusal("ispay", "1004", "订单创建失败!"), Other);
        assert_eq!(refusal("ispay", "1006", "签名错误"), Authorization);
        // jings: a failed query or balance check says why in `msg` only.
        assert_eq!(
            refusal("jings", "-2", "查询异常: 校验秘钥错误"),
            Authorization
        );
        assert_eq!(
            refusal("jings", "-2", "查询异常: 商户不存在"),
            Authorization
        );
        assert_eq!(refusal("jings", "1", "余额不足"), Quota);
        // vmq: `-1` with words; the monitor phone being offline is not the merchant's key.
        assert_eq!(refusal("vmq", "-1", "签名错误"), Authorization);
        assert_eq!(refusal("vmq", "-1", "监控端状态异常，请检查"), Other);
    }

    #[test]
    fn answers_that_are_not_refusals() {
        let ispay = account("ispay");
        let kind = |err: ProviderError| describe(ispay.as_ref(), &err).kind;
        assert_eq!(
            kind(ProviderError::HttpStatus { status: 502 }),
            FailureKind::ProviderDown
        );
        assert_eq!(
            kind(ProviderError::HttpStatus { status: 403 }),
            FailureKind::Authorization
        );
        assert_eq!(
            kind(ProviderError::HttpStatus { status: 404 }),
            FailureKind::Other
        );
        assert_eq!(
            kind(ProviderError::Decode {
                reason: "not JSON".into()
            }),
            FailureKind::NotUnderstood
        );
        assert_eq!(
            kind(ProviderError::BadSignature),
            FailureKind::Authorization
        );
    }

    #[test]
    fn words_sort_undocumented_refusals() {
        // The refusals the protocols' own servers send (seeds, sandbox and public code).
        for message in [
            "签名错误",
            "签名校验失败，请返回重试！",
            "校验秘钥错误: key 不正确",
            "商户ID错误",
            "PID不存在",
            "查询异常: 商户不存在",
            "商户已被禁用",
        ] {
            assert_eq!(
                kind_by_words(message),
                Some(FailureKind::Authorization),
                "{message}"
            );
        }
        for message in ["余额不足", "套餐已超额", "今日额度已用完", "请求过于频繁"]
        {
            assert_eq!(
                kind_by_words(message),
                Some(FailureKind::Quota),
                "{message}"
            );
        }
        for message in ["订单创建失败!", "监控端状态异常，请检查", "订单号重复"]
        {
            assert_eq!(kind_by_words(message), None, "{message}");
        }
    }

    #[test]
    fn other_keeps_the_providers_words_and_the_rest_do_not_need_them() {
        let other = Failure {
            kind: FailureKind::Other,
            code: Some("1004".into()),
            detail: "订单创建失败!".into(),
        };
        assert_eq!(other.zh(), "支付平台拒绝: 订单创建失败!");
        assert_eq!(other.en(), "provider refused: 订单创建失败!");
        let down = Failure::unreachable("no answer in time (timeout)");
        assert_eq!(down.kind, FailureKind::ProviderDown);
        assert_eq!(down.zh(), "支付平台无响应或服务器出错");
        assert_eq!(down.en(), "provider not answering or its server failed");
    }
}
