//! The shared domain: money in fen, order numbers, channels and the payment state machine.
//!
//! Invariants kept here:
//! - money is an integer number of fen (`Fen`) everywhere; text becomes `Fen` only through
//!   [`Fen::parse_input`] (what a cashier types) or [`Fen::parse_wire`] (what a provider
//!   sends), and `Fen` becomes text only through [`Fen::to_yuan`];
//! - [`PaymentStatus::apply`] is the only way a status changes: paid is terminal, an unknown
//!   provider code never moves an order, and only an explicit provider success makes it paid.

use std::fmt;
use std::str::FromStr;

// ---------------------------------------------------------------------------------------------
// Money

/// An amount of money in fen (1/100 yuan). Never negative in a valid order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fen(pub i64);

/// The default upper bound of a single sale: 50000.00 yuan.
pub const DEFAULT_MAX_AMOUNT: Fen = Fen(5_000_000);

/// Why a typed or received amount was refused. The messages are shown to staff as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Nothing was typed.
    #[error("请输入金额 / enter an amount")]
    Empty,
    /// Something other than digits and one decimal point.
    #[error(
        "金额只能包含数字和一个小数点，例如 12.30 / amount may contain only digits and one decimal point, e.g. 12.30"
    )]
    Format,
    /// More than two decimals.
    #[error("金额最多两位小数 / at most two decimals (fen)")]
    TooManyDecimals,
    /// Zero.
    #[error("金额必须大于 0 / amount must be more than 0")]
    Zero,
    /// Above the configured maximum.
    #[error("金额不能超过 {max} 元 / amount may not exceed {max}")]
    TooLarge {
        /// The configured maximum, formatted.
        max: String,
    },
}

impl Fen {
    /// Parses what a cashier typed, strictly: `12`, `12.3`, `12.30`, `0.01`.
    ///
    /// Refused: empty text, spaces, signs, exponents, thousands separators, a leading or
    /// trailing point, more than two decimals, zero and anything above `max`.
    ///
    /// # Errors
    /// An [`AmountError`] whose message says what is allowed.
    pub fn parse_input(text: &str, max: Fen) -> Result<Fen, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        let fen = parse_decimal(text)?;
        if fen == 0 {
            return Err(AmountError::Zero);
        }
        if fen > max.0 {
            return Err(AmountError::TooLarge { max: max.to_yuan() });
        }
        Ok(Fen(fen))
    }

    /// Parses an amount a provider sent in yuan (`"12.3"`, `"12.30"`, `"12"`, or a JSON
    /// number's text such as `"12.0"`). Trailing zeros beyond two decimals are accepted
    /// (`"12.300"`), anything finer than a fen is not.
    ///
    /// # Errors
    /// An [`AmountError`] when the text is not a plain non-negative decimal in fen.
    pub fn parse_wire(text: &str) -> Result<Fen, AmountError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        let frac = frac.trim_end_matches('0');
        let canonical = if frac.is_empty() {
            int.to_string()
        } else {
            format!("{int}.{frac}")
        };
        parse_decimal(&canonical).map(Fen)
    }

    /// Formats as yuan with exactly two decimals and no grouping: `1230` → `"12.30"`.
    /// This is the one formatter for the wire and for the screen.
    pub fn to_yuan(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_yuan())
    }
}

/// In JSON (`report --json`, the close snapshots) an amount is the string `"12.34"`, as in
/// every other JSON qrtill prints: exact, and read the same by a person and a program.
impl serde::Serialize for Fen {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_yuan())
    }
}

/// Reads `"12.34"` back strictly (through [`Fen::parse_wire`]); a leading `-` is allowed
/// because [`Fen::to_yuan`] writes one for a negative amount.
impl<'de> serde::Deserialize<'de> for Fen {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.as_str()),
        };
        let fen = Fen::parse_wire(digits)
            .map_err(|err| serde::de::Error::custom(format!("amount `{text}`: {err}")))?;
        Ok(if negative { Fen(-fen.0) } else { fen })
    }
}

/// `D+` or `D+.D{1,2}` into fen; the shared core of both parsers.
fn parse_decimal(text: &str) -> Result<i64, AmountError> {
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (text, None),
    };
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(int) {
        return Err(AmountError::Format);
    }
    let frac_fen = match frac {
        None => 0,
        Some(frac) => {
            if !digits_only(frac) {
                return Err(AmountError::Format);
            }
            if frac.len() > 2 {
                return Err(AmountError::TooManyDecimals);
            }
            let value: i64 = frac.parse().map_err(|_| AmountError::Format)?;
            if frac.len() == 1 { value * 10 } else { value }
        }
    };
    // Eighteen digits of yuan overflow i64 fen; no till needs more than twelve.
    if int.len() > 12 {
        return Err(AmountError::TooLarge {
            max: "999999999999.99".into(),
        });
    }
    let yuan: i64 = int.parse().map_err(|_| AmountError::Format)?;
    Ok(yuan * 100 + frac_fen)
}

// ---------------------------------------------------------------------------------------------
// Channels

/// A wallet the customer pays with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// 支付宝
    Alipay,
    /// 微信支付
    Wechat,
    /// 云闪付 (UnionPay QuickPass)
    Unionpay,
    /// QQ 钱包
    Qq,
}

impl Channel {
    /// Every channel, in the order of the till's keys 1–4.
    pub const ALL: [Channel; 4] = [
        Channel::Alipay,
        Channel::Wechat,
        Channel::Unionpay,
        Channel::Qq,
    ];

    /// The stable spelling used in the CLI, the config and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Alipay => "alipay",
            Channel::Wechat => "wechat",
            Channel::Unionpay => "unionpay",
            Channel::Qq => "qq",
        }
    }

    /// The Chinese name shown to staff and customers.
    pub fn name_zh(self) -> &'static str {
        match self {
            Channel::Alipay => "支付宝",
            Channel::Wechat => "微信支付",
            Channel::Unionpay => "云闪付",
            Channel::Qq => "QQ钱包",
        }
    }

    /// The English name.
    pub fn name_en(self) -> &'static str {
        match self {
            Channel::Alipay => "Alipay",
            Channel::Wechat => "WeChat Pay",
            Channel::Unionpay => "UnionPay",
            Channel::Qq => "QQ Wallet",
        }
    }

    /// The brand colour as RGB, used for the channel buttons and the QR screen.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Channel::Alipay => [0x16, 0x77, 0xFF],
            Channel::Wechat => [0x07, 0xC1, 0x60],
            Channel::Unionpay => [0xD7, 0x00, 0x0F],
            Channel::Qq => [0x12, 0xB7, 0xF5],
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown channel name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel `{0}`: allowed are alipay, wechat, unionpay, qq")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "alipay" => Ok(Channel::Alipay),
            "wechat" => Ok(Channel::Wechat),
            "unionpay" => Ok(Channel::Unionpay),
            "qq" => Ok(Channel::Qq),
            other => Err(UnknownChannel(other.to_string())),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Order numbers

/// Our own order number: 1–32 characters of `[0-9A-Za-z_-]`, unique in the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderNo(String);

/// An order number that breaks the rules above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("order number `{0}` is not 1–32 characters of 0-9, A-Z, a-z, _ or -")]
pub struct BadOrderNo(pub String);

impl OrderNo {
    /// Validates an order number.
    ///
    /// # Errors
    /// [`BadOrderNo`] when it is empty, too long or has other characters.
    pub fn new(text: &str) -> Result<Self, BadOrderNo> {
        let ok = !text.is_empty()
            && text.len() <= 32
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(OrderNo(text.to_string()))
        } else {
            Err(BadOrderNo(text.to_string()))
        }
    }

    /// A fresh order number from the local time and eight random digits, e.g.
    /// `20261121153012` + `04718263`; demo orders start with `DEMO` so that no one can take
    /// them for a real sale.
    pub fn generate(now: chrono::DateTime<chrono::Local>, demo: bool) -> Self {
        let prefix = if demo { "DEMO" } else { "" };
        // A per-process sequence from a random start: numbers made in the same second by
        // this till never collide (random ones did, 1 in 50 for 2,000 sales in a second),
        // and another run's numbers are unlikely to meet them.
        static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU32> = std::sync::OnceLock::new();
        let next = NEXT.get_or_init(|| fastrand::u32(0..100_000_000).into());
        let seq = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100_000_000;
        OrderNo(format!("{prefix}{}{seq:08}", now.format("%Y%m%d%H%M%S")))
    }

    /// The order number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Status

/// Where an order is in its life. Stored in the ledger as [`PaymentStatus::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Written to the ledger; the create request is on its way or its answer is not known.
    Creating,
    /// The provider accepted the order; waiting for the customer.
    Pending,
    /// The customer paid but the provider has not confirmed it yet (ispay.in state 8).
    Confirming,
    /// The provider confirmed the payment. Terminal: nothing moves an order out of it.
    Paid,
    /// The order ran out of time unpaid. A later verified payment still makes it paid (late).
    Expired,
    /// Staff cancelled the order. A later verified payment still makes it paid (late).
    Cancelled,
    /// The provider refused or closed the order. A later verified payment still makes it
    /// paid, because the money is what counts.
    Failed,
}

impl PaymentStatus {
    /// The stable snake_case spelling used in the ledger, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Creating => "creating",
            PaymentStatus::Pending => "pending",
            PaymentStatus::Confirming => "confirming",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Expired => "expired",
            PaymentStatus::Cancelled => "cancelled",
            PaymentStatus::Failed => "failed",
        }
    }

    /// Whether the sale has ended from the till's point of view (paid or given up).
    /// Ended-unpaid orders are still watched for a grace period to catch late payments.
    pub fn is_final(self) -> bool {
        match self {
            PaymentStatus::Paid
            | PaymentStatus::Expired
            | PaymentStatus::Cancelled
            | PaymentStatus::Failed => true,
            PaymentStatus::Creating | PaymentStatus::Pending | PaymentStatus::Confirming => false,
        }
    }

    /// The next status after a provider or staff report, or `None` when the report changes
    /// nothing (the same status again, an unknown code, a paid order, or a step backwards).
    pub fn apply(self, report: &ProviderState) -> Option<PaymentStatus> {
        use PaymentStatus as S;
        let target = match report {
            // An unknown code is never evidence of anything.
            ProviderState::Unknown(_) => return None,
            ProviderState::Pending => S::Pending,
            ProviderState::Confirming => S::Confirming,
            ProviderState::Paid => S::Paid,
            ProviderState::Expired => S::Expired,
            ProviderState::Cancelled => S::Cancelled,
            ProviderState::Failed => S::Failed,
        };
        let allowed = match (self, target) {
            (S::Paid, _) => false,
            (from, to) if from == to => false,
            // Money received always wins, even after the till gave up on the order.
            (_, S::Paid) => true,
            (S::Creating, _) => true,
            (S::Pending, S::Creating | S::Pending) => false,
            (S::Pending, _) => true,
            // A confirming order only moves forward: to paid (above) or to an end.
            (S::Confirming, S::Expired | S::Cancelled | S::Failed) => true,
            (S::Confirming, _) => false,
            // An ended unpaid order stays ended unless it is paid.
            (S::Expired | S::Cancelled | S::Failed, _) => false,
        };
        allowed.then_some(target)
    }
}

impl PaymentStatus {
    /// Every status, in the order of an order's life.
    pub const ALL: [PaymentStatus; 7] = [
        PaymentStatus::Creating,
        PaymentStatus::Pending,
        PaymentStatus::Confirming,
        PaymentStatus::Paid,
        PaymentStatus::Expired,
        PaymentStatus::Cancelled,
        PaymentStatus::Failed,
    ];

    /// The Chinese word staff see in the history and the export.
    pub fn name_zh(self) -> &'static str {
        match self {
            PaymentStatus::Creating => "创建中",
            PaymentStatus::Pending => "待支付",
            PaymentStatus::Confirming => "待确认",
            PaymentStatus::Paid => "已支付",
            PaymentStatus::Expired => "已过期",
            PaymentStatus::Cancelled => "已取消",
            PaymentStatus::Failed => "失败",
        }
    }

    /// The English word.
    pub fn name_en(self) -> &'static str {
        match self {
            PaymentStatus::Creating => "creating",
            PaymentStatus::Pending => "awaiting payment",
            PaymentStatus::Confirming => "awaiting confirmation",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Expired => "expired",
            PaymentStatus::Cancelled => "cancelled",
            PaymentStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name the ledger does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status `{0}`")]
pub struct UnknownStatus(pub String);

impl FromStr for PaymentStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "creating" => PaymentStatus::Creating,
            "pending" => PaymentStatus::Pending,
            "confirming" => PaymentStatus::Confirming,
            "paid" => PaymentStatus::Paid,
            "expired" => PaymentStatus::Expired,
            "cancelled" => PaymentStatus::Cancelled,
            "failed" => PaymentStatus::Failed,
            other => return Err(UnknownStatus(other.to_string())),
        })
    }
}

/// What a provider said about an order, mapped from its own codes. `Paid` may only come from
/// a verified, explicit success code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderState {
    /// Accepted, not paid yet.
    Pending,
    /// Paid by the customer, not yet confirmed by the provider.
    Confirming,
    /// Confirmed paid.
    Paid,
    /// Timed out unpaid.
    Expired,
    /// Cancelled (by the payer, staff or the provider).
    Cancelled,
    /// Refused, restricted or closed by the provider.
    Failed,
    /// A code this version does not know; the order stays as it is.
    Unknown(String),
}

/// The QR a customer scans: the wallet payload text (preferred: rendered locally, sharp at any
/// size) or, when a provider only sends a picture, the image bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QrPayload {
    /// Text to encode as a QR, e.g. `https://qr.alipay.com/…`.
    Text(String),
    /// An encoded image (PNG, JPEG or GIF) of the QR.
    Image(Vec<u8>),
}

impl QrPayload {
    /// The payload text, when there is one.
    pub fn text(&self) -> Option<&str> {
        match self {
            QrPayload::Text(text) => Some(text),
            QrPayload::Image(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_table() {
        use PaymentStatus as S;
        use ProviderState as P;
        let all = [
            S::Creating,
            S::Pending,
            S::Confirming,
            S::Paid,
            S::Expired,
            S::Cancelled,
            S::Failed,
        ];
        for from in all {
            assert_eq!(from.apply(&P::Unknown("42".into())), None, "{from}");
            if from != S::Paid {
                assert_eq!(from.apply(&P::Paid), Some(S::Paid), "{from}");
            }
        }
        for report in [
            P::Pending,
            P::Confirming,
            P::Paid,
            P::Expired,
            P::Cancelled,
            P::Failed,
        ] {
            assert_eq!(S::Paid.apply(&report), None);
        }
        assert_eq!(S::Confirming.apply(&P::Pending), None);
        assert_eq!(S::Expired.apply(&P::Pending), None);
        assert_eq!(S::Pending.apply(&P::Confirming), Some(S::Confirming));
        assert_eq!(S::Creating.apply(&P::Pending), Some(S::Pending));
    }

    #[test]
    fn order_numbers() {
        assert!(OrderNo::new("20191118123424").is_ok());
        assert!(OrderNo::new("").is_err());
        assert!(OrderNo::new("a b").is_err());
        assert!(OrderNo::new(&"1".repeat(33)).is_err());
        let generated = OrderNo::generate(chrono::Local::now(), true);
        assert!(generated.as_str().starts_with("DEMO"));
        assert!(OrderNo::new(generated.as_str()).is_ok());
    }
}
