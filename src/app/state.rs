//! The till's view model: what the screens show and what keys do, in plain Rust with no egui
//! types, so it is tested without a window.
//!
//! Invariants: one sale at a time (the charge action is refused while an order is being
//! created or shown, so a double press never makes two orders); the amount text can only
//! hold what [`Fen::parse_input`] may accept, plus the moment between "12" and "12.3".

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::history::{HistoryState, View};
use super::settings::{SettingsState, verdict_words};
use crate::config::{Config, DisplaySettings, Language, Theme};
use crate::ledger::{OrderRow, Totals};
use crate::model::{Channel, Fen, OrderNo, PaymentStatus};
use crate::qr::ShownQr;
use crate::service::{Command, Event, OrderUpdate, ProviderHealth};

/// How long the paid screen stays before the till comes back by itself.
pub const PAID_SCREEN: Duration = Duration::from_secs(5);
/// How long the cancelled screen stays.
pub const CANCELLED_SCREEN: Duration = Duration::from_secs(2);

/// The longest amount text (`50000.00` and a little more).
const MAX_AMOUNT_CHARS: usize = 10;

/// What is on screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Screen {
    /// Typing an amount.
    Till,
    /// The amount is valid; staff pick the channel (keys 1–4, Enter for the highlighted one).
    PickChannel,
    /// The order is written and being created at the provider.
    Creating(OrderNo),
    /// The QR is shown; the order is watched.
    Qr(OrderNo),
    /// The sale ended (paid, expired, cancelled, failed); shown since the instant.
    Done(OrderNo, Instant),
}

/// A keypad key, from the on-screen pad or the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadKey {
    /// 0–9.
    Digit(u8),
    /// The decimal point.
    Dot,
    /// ⌫
    Backspace,
    /// C
    Clear,
}

/// What the app must ask of the service after a UI action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a sale.
    Charge {
        /// The amount.
        amount: Fen,
        /// The wallet.
        channel: Channel,
    },
    /// Cancel this order.
    Cancel(OrderNo),
    /// Demo: the customer pays.
    SimulatePayment(OrderNo),
    /// Ask the provider now.
    QueryNow(OrderNo),
}

/// A provider account as the till shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderInfo {
    /// The account id.
    pub id: String,
    /// Its name for people.
    pub name: String,
    /// Its channels in key order.
    pub channels: Vec<Channel>,
    /// Whether it can be queried.
    pub can_query: bool,
    /// Whether its QR opens a page in the payer's browser (not the wallet directly).
    pub browser_needed: bool,
    /// What it last said about the account (balance, quota), for the status bar.
    pub account: Option<String>,
}

/// The till's whole view state.
#[derive(Debug)]
pub struct TillState {
    /// The typed amount, as shown.
    pub amount_text: String,
    /// A message about the amount or the last charge attempt.
    pub error: Option<String>,
    /// The highlighted channel (the last one used).
    pub channel: Channel,
    /// The channels the current provider offers, in key order.
    pub channels: Vec<Channel>,
    /// The current provider account.
    pub provider_id: String,
    /// Its name for people.
    pub provider_name: String,
    /// Whether the current provider can be queried (else the QR screen says it waits for the
    /// provider's notification).
    pub provider_can_query: bool,
    /// Whether the current provider's QR opens a page in the payer's browser.
    pub provider_browser_needed: bool,
    /// Every configured provider account (the till switches between them).
    pub providers: Vec<ProviderInfo>,
    /// The operator recorded on sales.
    pub operator: String,
    /// Everyone who may work the till (the operator switch, F10).
    pub operators: Vec<String>,
    /// The operator list is up (at start when several may work the till, or F10).
    pub picking_operator: bool,
    /// Colours.
    pub theme: Theme,
    /// The settings screen.
    pub settings: SettingsState,
    /// The largest amount allowed.
    pub max_amount: Fen,
    /// UI language.
    pub language: Language,
    /// Demo mode.
    pub demo: bool,
    /// What is on screen.
    pub screen: Screen,
    /// The order on screen, as last reported.
    pub order: Option<OrderRow>,
    /// Its QR, once known, with its picture.
    pub qr: Option<Arc<ShownQr>>,
    /// Whether the provider said that this order's QR opens a page in the payer's browser.
    pub qr_browser_needed: bool,
    /// Today's paid sales.
    pub totals: Totals,
    /// Messages for staff that belong to no screen (latest last).
    pub notices: Vec<String>,
    /// Which screen is up: till, history or closes.
    pub view: View,
    /// The history and closes screens.
    pub history: HistoryState,
    /// When the business day starts (config `day_start`).
    pub day_start: chrono::NaiveTime,
    /// Orders found unfinished at start and still watched, as last reported (shown as
    /// "recovered" until they end).
    pub recovered: Vec<OrderRow>,
    /// Each provider account's health, by account id, as the service last reported it
    /// (absent until its first call).
    pub health: std::collections::HashMap<String, ProviderHealth>,
    /// The customer display's settings (`[display]`), read every frame: a settings screen
    /// may change them at any time.
    pub display: DisplaySettings,
    /// Paid amounts to announce (chime and voice), one per sale; the app plays and empties it.
    pub announce: Vec<Fen>,
    /// The last sale announced, so a repeated paid report is not announced twice.
    announced: Option<OrderNo>,
}

/// The QR screen's countdown as shown, in whole seconds, and the milliseconds until the shown
/// value next changes. While more than a minute is left it moves in 10-second steps (`04:50`,
/// `04:40` …), then by the second: the screen is redrawn only when the shown value changes,
/// six times a minute instead of sixty, which is most of what a till showing a QR costs when
/// nothing else happens (a software-rendered frame redraws the whole window).
pub fn countdown(expires_at_ms: i64, now_ms: i64) -> (i64, i64) {
    let left = (expires_at_ms - now_ms).max(0);
    if left == 0 {
        return (0, 0);
    }
    let step = if left > 60_000 { 10_000 } else { 1_000 };
    let shown = (left + step - 1) / step * step;
    (shown / 1000, left - (shown - step))
}

impl TillState {
    /// A till over these provider accounts, starting with the first.
    pub fn with_providers(providers: Vec<ProviderInfo>) -> Self {
        let first = providers.first().cloned().unwrap_or(ProviderInfo {
            id: String::new(),
            name: String::new(),
            channels: Vec::new(),
            can_query: false,
            browser_needed: false,
            account: None,
        });
        let mut state = TillState::new(&first.id, &first.name, first.channels, first.can_query);
        state.provider_browser_needed = first.browser_needed;
        state.providers = providers;
        state
    }

    /// Switches the next sale to another provider account; only on the till screen.
    pub fn switch_provider(&mut self, id: &str) {
        if !matches!(self.screen, Screen::Till | Screen::PickChannel) {
            return;
        }
        let Some(info) = self.providers.iter().find(|p| p.id == id).cloned() else {
            return;
        };
        self.provider_id = info.id;
        self.provider_name = info.name;
        self.provider_can_query = info.can_query;
        self.provider_browser_needed = info.browser_needed;
        if !info.channels.contains(&self.channel) {
            self.channel = info.channels.first().copied().unwrap_or(Channel::Alipay);
        }
        self.channels = info.channels;
        self.screen = Screen::Till;
    }

    /// The next provider account after the current one (F6).
    pub fn next_provider(&mut self) {
        if let Some(next) = self.next_provider_info() {
            let id = next.id.clone();
            self.switch_provider(&id);
        }
    }

    /// The account F6 switches to, when there is another one.
    pub fn next_provider_info(&self) -> Option<&ProviderInfo> {
        let count = self.providers.len().max(1);
        let at = self.providers.iter().position(|p| p.id == self.provider_id);
        at.map(|i| (i + 1) % count)
            .and_then(|i| self.providers.get(i))
            .filter(|next| next.id != self.provider_id)
    }

    /// The current provider's health for the status bar: when it last answered
    /// ("最近成功 12:03:04"), or `None` before its first answer.
    pub fn health_success_text(&self) -> Option<String> {
        let at = self.health.get(&self.provider_id)?.last_success_ms?;
        let time = chrono::TimeZone::timestamp_millis_opt(&chrono::Local, at)
            .single()?
            .format("%H:%M:%S");
        Some(format!("{} {time}", self.t("最近成功", "last success")))
    }

    /// The current provider's failures in a row and the last one in plain words, with the
    /// key that switches the next sale to another account ("连续失败 3 次: 商户密钥或签名不对
    /// · F6 换到 epay 易支付"); `None` while its last call succeeded. The second text is the
    /// failure's full detail (the provider's words, the HTTP status or network error).
    pub fn health_failure_text(&self) -> Option<(String, String)> {
        let health = self.health.get(&self.provider_id)?;
        let failure = health.last_failure.as_ref()?;
        if health.consecutive_failures == 0 {
            return None;
        }
        let words = match self.language {
            Language::Zh => failure.zh(),
            Language::En => failure.en(),
        };
        let mut text = match self.language {
            Language::Zh => format!("连续失败 {} 次: {words}", health.consecutive_failures),
            Language::En => format!(
                "{} failure{} in a row: {words}",
                health.consecutive_failures,
                if health.consecutive_failures == 1 {
                    ""
                } else {
                    "s"
                }
            ),
        };
        if let Some(next) = self.next_provider_info() {
            text.push_str(&format!(
                " · F6 {} {}",
                self.t("换到", "switch to"),
                next.name
            ));
        }
        Some((text, failure.detail.clone()))
    }

    /// What the current provider last said about the account.
    pub fn account_text(&self) -> Option<&str> {
        self.providers
            .iter()
            .find(|p| p.id == self.provider_id)
            .and_then(|p| p.account.as_deref())
    }

    /// A fresh till on `provider` with `channels`.
    pub fn new(
        provider_id: &str,
        provider_name: &str,
        channels: Vec<Channel>,
        can_query: bool,
    ) -> Self {
        TillState {
            providers: Vec::new(),
            provider_browser_needed: false,
            amount_text: String::new(),
            error: None,
            channel: channels.first().copied().unwrap_or(Channel::Alipay),
            channels,
            provider_id: provider_id.to_string(),
            provider_name: provider_name.to_string(),
            provider_can_query: can_query,
            operator: String::new(),
            operators: Vec::new(),
            picking_operator: false,
            theme: Theme::Dark,
            settings: SettingsState::default(),
            max_amount: crate::model::DEFAULT_MAX_AMOUNT,
            language: Language::Zh,
            demo: false,
            screen: Screen::Till,
            order: None,
            qr: None,
            qr_browser_needed: false,
            totals: Totals::default(),
            notices: Vec::new(),
            view: View::Till,
            history: HistoryState::default(),
            day_start: crate::day::MIDNIGHT,
            recovered: Vec::new(),
            health: std::collections::HashMap::new(),
            display: DisplaySettings::default(),
            announce: Vec::new(),
            announced: None,
        }
    }

    /// Takes the settings of a config (at start, and after the settings screen saved): the
    /// accounts, operators, language, colours, business day and largest amount. The provider
    /// for the next sale becomes the default one unless the current one is still configured.
    pub fn apply_config(&mut self, config: &Config) {
        self.providers = config
            .providers
            .iter()
            .map(|p| crate::settings::provider_info(p.as_ref()))
            .collect();
        let keep =
            self.providers.iter().any(|p| p.id == self.provider_id) && !self.provider_id.is_empty();
        let id = if keep {
            self.provider_id.clone()
        } else {
            config.default_provider.clone()
        };
        let free = matches!(self.screen, Screen::Till | Screen::PickChannel);
        if free {
            self.switch_provider(&id);
        }
        self.operators = config.operators.clone();
        // The operator of the settings is who works the till now (F10 switches later).
        self.operator = config.operator.clone();
        self.language = config.language;
        self.theme = config.theme;
        self.day_start = config.day_start;
        self.max_amount = config.max_amount;
        self.display = config.display.clone();
    }

    /// Picks operator N (1-based) of the list and closes it.
    pub fn pick_operator(&mut self, n: usize) {
        if let Some(name) = n.checked_sub(1).and_then(|i| self.operators.get(i)) {
            self.operator = name.clone();
            self.picking_operator = false;
        }
    }

    /// Picks the text for the UI language.
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        match self.language {
            Language::Zh => zh,
            Language::En => en,
        }
    }

    /// A keypad key on the till screen. Ignored elsewhere.
    pub fn press(&mut self, key: PadKey) {
        if self.screen != Screen::Till {
            return;
        }
        self.error = None;
        let text = &mut self.amount_text;
        match key {
            PadKey::Digit(d) if d <= 9 => {
                let decimals = text.split_once('.').map(|(_, f)| f.len());
                if decimals.is_some_and(|n| n >= 2) || text.len() >= MAX_AMOUNT_CHARS {
                    return;
                }
                // "0" followed by a digit becomes that digit: no leading zeros.
                if text == "0" {
                    text.clear();
                }
                text.push(char::from(b'0' + d));
            }
            PadKey::Digit(_) => {}
            PadKey::Dot => {
                if text.contains('.') || text.len() >= MAX_AMOUNT_CHARS {
                    return;
                }
                if text.is_empty() {
                    text.push('0');
                }
                text.push('.');
            }
            PadKey::Backspace => {
                text.pop();
            }
            PadKey::Clear => text.clear(),
        }
    }

    /// Enter on the till screen: checks the amount; with one channel, charges at once; with
    /// several, moves to the channel step.
    pub fn enter(&mut self) -> Option<Action> {
        match &self.screen {
            Screen::Till => {
                let amount = self.checked_amount()?;
                if self.channels.len() == 1 {
                    return self.charge_with(amount, self.channel);
                }
                self.screen = Screen::PickChannel;
                None
            }
            Screen::PickChannel => self.pick_channel(self.channel),
            Screen::Done(..) => {
                self.back_to_till();
                None
            }
            Screen::Creating(_) | Screen::Qr(_) => None,
        }
    }

    /// A channel chosen (key 1–4 in the channel step, or its button on the till screen):
    /// charges the typed amount with it.
    pub fn pick_channel(&mut self, channel: Channel) -> Option<Action> {
        if !matches!(self.screen, Screen::Till | Screen::PickChannel) {
            return None;
        }
        if !self.channels.contains(&channel) {
            self.error = Some(format!(
                "{} {}",
                self.provider_name,
                self.t("不支持此支付方式", "does not offer this channel")
            ));
            return None;
        }
        let amount = self.checked_amount()?;
        self.charge_with(amount, channel)
    }

    /// The channel behind key `n` (1-based), in the provider's order.
    pub fn channel_key(&self, n: usize) -> Option<Channel> {
        n.checked_sub(1).and_then(|i| self.channels.get(i)).copied()
    }

    fn checked_amount(&mut self) -> Option<Fen> {
        match Fen::parse_input(&self.amount_text, self.max_amount) {
            Ok(amount) => Some(amount),
            Err(err) => {
                self.error = Some(err.to_string());
                self.screen = Screen::Till;
                None
            }
        }
    }

    fn charge_with(&mut self, amount: Fen, channel: Channel) -> Option<Action> {
        self.channel = channel;
        self.error = None;
        // The screen moves to Creating when the app has the order number; until then a
        // second press finds the screen unchanged but `awaiting_order` set.
        Some(Action::Charge { amount, channel })
    }

    /// The app got the order number for a charge it sent.
    pub fn charging(&mut self, order_no: OrderNo) {
        self.screen = Screen::Creating(order_no);
        self.order = None;
        self.qr = None;
        self.qr_browser_needed = false;
    }

    /// Esc: clears the amount, leaves the channel step, cancels the order on screen, or
    /// closes the result screen.
    pub fn escape(&mut self) -> Option<Action> {
        match &self.screen {
            Screen::Till => {
                self.amount_text.clear();
                self.error = None;
                None
            }
            Screen::PickChannel => {
                self.screen = Screen::Till;
                None
            }
            Screen::Creating(order_no) | Screen::Qr(order_no) => {
                Some(Action::Cancel(order_no.clone()))
            }
            Screen::Done(..) => {
                self.back_to_till();
                None
            }
        }
    }

    fn back_to_till(&mut self) {
        let keep_amount = self
            .order
            .as_ref()
            .is_some_and(|o| matches!(o.status, PaymentStatus::Failed | PaymentStatus::Expired));
        self.screen = Screen::Till;
        if !keep_amount {
            // A paid or cancelled sale is over; a failed or expired one is likely retried.
            self.amount_text.clear();
        }
        self.order = None;
        self.qr = None;
        self.qr_browser_needed = false;
    }

    /// The order number on screen, if any.
    pub fn current_order_no(&self) -> Option<&OrderNo> {
        match &self.screen {
            Screen::Creating(no) | Screen::Qr(no) | Screen::Done(no, _) => Some(no),
            Screen::Till | Screen::PickChannel => None,
        }
    }

    /// The current business day.
    pub fn today(&self) -> chrono::NaiveDate {
        crate::day::business_date(&chrono::Local, crate::service::now_ms(), self.day_start)
    }

    /// Switches to another screen (F1/F2/F3). Leaving the till is refused while a sale is on
    /// screen, so an order being paid is never hidden.
    pub fn open_view(&mut self, view: View) {
        if view != View::Till && !matches!(self.screen, Screen::Till | Screen::PickChannel) {
            return;
        }
        match view {
            View::Till => {}
            View::History => {
                let date = self.history.date.unwrap_or_else(|| self.today());
                self.history.show_day(date);
            }
            View::Closes => self.history.outbox.push(Command::ListCloses),
            View::Settings => {}
        }
        self.view = view;
    }

    /// The history's day moved by `days` (negative: back), never past today.
    pub fn move_day(&mut self, days: i64) {
        let today = self.today();
        let shown = self.history.date.unwrap_or(today);
        let next = shown
            .checked_add_signed(chrono::TimeDelta::days(days))
            .unwrap_or(shown)
            .min(today);
        self.history.show_day(next);
    }

    /// Takes one service event.
    pub fn apply(&mut self, event: Event, now: Instant) {
        match event {
            Event::Order(update) => {
                self.history.order_changed(&update.order);
                if update.recovered {
                    self.recovered_changed(&update.order);
                }
                self.apply_order(*update, now);
            }
            Event::History(page) => self.history.apply_page(*page),
            Event::Summary(date, summary, choices) => {
                self.history.apply_summary(date, *summary, choices);
            }
            Event::OrderDetail(order, events) => self.history.apply_detail(*order, events),
            Event::Closes(closes) => self.history.closes = closes,
            Event::ClosePreview(close) => self.history.preview = Some(*close),
            Event::DayClosed(close) => {
                self.history.preview = None;
                self.history.selected_close = Some(close.number);
            }
            Event::Exported(result) => {
                self.history.export_message = Some(match result {
                    Ok((path, count)) => Ok(format!(
                        "{} {count} {} {}",
                        self.t("已导出", "Exported"),
                        self.t("笔订单到", "orders to"),
                        path.display()
                    )),
                    Err(err) => Err(format!("{} {err}", self.t("导出失败:", "Export failed:"))),
                });
            }
            Event::ChargeFailed { order_no, message } => {
                if self.current_order_no() == Some(&order_no) {
                    self.screen = Screen::Till;
                    self.error = Some(message);
                } else {
                    self.notices.push(message);
                }
            }
            Event::Totals(totals) => self.totals = totals,
            Event::ConnectionTested {
                provider_id,
                verdict,
            } => {
                let words = verdict_words(&verdict, self.language == Language::En);
                self.settings.tested(&provider_id, words);
            }
            Event::Notice(message) => self.notices.push(message),
            Event::Account {
                provider_id,
                status,
            } => {
                let text = match status {
                    Ok(account) => match (account.balance, account.message) {
                        (Some(balance), _) => format!("{} ¥{balance}", self.t("余额", "balance")),
                        (None, Some(message)) => message,
                        (None, None) => self.t("账户正常", "account OK").to_string(),
                    },
                    Err(err) => {
                        format!("{} {err}", self.t("账户查询失败:", "account check failed:"))
                    }
                };
                if let Some(info) = self.providers.iter_mut().find(|p| p.id == provider_id) {
                    info.account = Some(text);
                }
            }
            Event::Health {
                provider_id,
                health,
            } => {
                self.health.insert(provider_id, health);
            }
        }
    }

    /// Keeps the list of recovered orders: in it until it ends.
    fn recovered_changed(&mut self, order: &OrderRow) {
        self.recovered.retain(|o| o.order_no != order.order_no);
        if !order.status.is_final() {
            self.recovered.push(order.clone());
        }
    }

    /// The status bar's line about recovered orders, while any is still open.
    pub fn recovered_text(&self) -> Option<String> {
        if self.recovered.is_empty() {
            return None;
        }
        let orders: Vec<String> = self
            .recovered
            .iter()
            .map(|o| format!("{} ¥{}", o.order_no, o.payable_or_amount()))
            .collect();
        Some(format!(
            "{} {}: {}",
            self.t("恢复的订单", "Recovered orders"),
            self.recovered.len(),
            orders.join(", ")
        ))
    }

    fn apply_order(&mut self, update: OrderUpdate, now: Instant) {
        if self.current_order_no() != Some(&update.order.order_no) {
            return;
        }
        if update.qr.is_some() {
            self.qr = update.qr;
            self.qr_browser_needed = update.browser_needed;
        }
        let status = update.order.status;
        let order_no = update.order.order_no.clone();
        // The sale on screen became paid (also late, after it expired): announce what was
        // paid, once per order however often the service reports it.
        if status == PaymentStatus::Paid && self.announced.as_ref() != Some(&order_no) {
            let order = &update.order;
            self.announce
                .push(order.paid.unwrap_or_else(|| order.payable_or_amount()));
            self.announced = Some(order_no.clone());
        }
        self.order = Some(update.order);
        match status {
            PaymentStatus::Creating => {}
            PaymentStatus::Pending | PaymentStatus::Confirming => {
                if matches!(self.screen, Screen::Creating(_)) {
                    self.screen = Screen::Qr(order_no);
                }
            }
            PaymentStatus::Paid
            | PaymentStatus::Expired
            | PaymentStatus::Cancelled
            | PaymentStatus::Failed => {
                if !matches!(self.screen, Screen::Done(..)) {
                    self.screen = Screen::Done(order_no, now);
                }
            }
        }
    }

    /// Time passing on the result screen: back to the till after a paid or cancelled sale.
    /// Returns how long until that happens, for a repaint.
    pub fn tick(&mut self, now: Instant) -> Option<Duration> {
        let Screen::Done(_, since) = &self.screen else {
            return None;
        };
        let stay = match self.order.as_ref().map(|o| o.status) {
            Some(PaymentStatus::Paid) => PAID_SCREEN,
            Some(PaymentStatus::Cancelled) => CANCELLED_SCREEN,
            // Expired and failed stay until staff have read them.
            _ => return None,
        };
        let shown = now.duration_since(*since);
        if shown >= stay {
            self.back_to_till();
            None
        } else {
            Some(stay - shown)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_countdown_moves_in_ten_second_steps_until_its_last_minute() {
        use super::countdown;
        // 5:00 left: shows 300 s, next change in 10 s (at 4:50).
        assert_eq!(countdown(300_000, 0), (300, 10_000));
        // 4:55 left: still 300 shown (rounded up to the step), changes in 5 s.
        assert_eq!(countdown(300_000, 5_000), (300, 5_000));
        assert_eq!(countdown(300_000, 10_000), (290, 10_000));
        // Just above a minute: 70 shown until the minute, then by the second.
        assert_eq!(countdown(60_500, 0), (70, 500));
        assert_eq!(countdown(60_000, 0), (60, 1_000));
        assert_eq!(countdown(59_400, 0), (60, 400));
        assert_eq!(countdown(999, 0), (1, 999));
        assert_eq!(countdown(0, 5), (0, 0));
    }

    use super::*;

    fn till() -> TillState {
        TillState::new(
            "main",
            "ispay.in",
            vec![Channel::Alipay, Channel::Wechat, Channel::Unionpay],
            true,
        )
    }

    fn typed(keys: &str) -> TillState {
        let mut t = till();
        for c in keys.chars() {
            match c {
                '.' => t.press(PadKey::Dot),
                '<' => t.press(PadKey::Backspace),
                d => t.press(PadKey::Digit(
                    d.to_digit(10)
                        .and_then(|d| u8::try_from(d).ok())
                        .unwrap_or(0),
                )),
            }
        }
        t
    }

    #[test]
    fn keypad_keeps_the_amount_well_formed() {
        assert_eq!(typed("12.345").amount_text, "12.34");
        assert_eq!(typed(".5").amount_text, "0.5");
        assert_eq!(typed("007").amount_text, "7");
        assert_eq!(typed("1..2").amount_text, "1.2");
        assert_eq!(typed("12<3").amount_text, "13");
        assert_eq!(typed("12345678901234").amount_text.len(), MAX_AMOUNT_CHARS);
    }

    #[test]
    fn enter_then_channel_key_charges_once() {
        let mut t = typed("12.3");
        assert_eq!(t.enter(), None);
        assert_eq!(t.screen, Screen::PickChannel);
        let action = t.pick_channel(Channel::Wechat);
        assert_eq!(
            action,
            Some(Action::Charge {
                amount: Fen(1230),
                channel: Channel::Wechat
            })
        );
        let order_no =
            OrderNo::new("A1").unwrap_or_else(|_| OrderNo::generate(chrono::Local::now(), true));
        t.charging(order_no);
        // A second Enter while the order is being created does nothing.
        assert_eq!(t.enter(), None);
        assert_eq!(t.pick_channel(Channel::Wechat), None);
    }

    fn row(order_no: &str, status: PaymentStatus) -> OrderRow {
        OrderRow {
            order_no: OrderNo::new(order_no)
                .unwrap_or_else(|_| OrderNo::generate(chrono::Local::now(), true)),
            provider_id: "main".into(),
            provider_kind: "ispay".into(),
            channel: Channel::Alipay,
            amount: Fen(1230),
            payable: None,
            paid: None,
            status,
            provider_order_id: None,
            subject: String::new(),
            operator: String::new(),
            demo: true,
            created_at: 0,
            expires_at: None,
            paid_at: None,
            late_paid: false,
            amount_mismatch: false,
            message: None,
        }
    }

    fn update(order: OrderRow, recovered: bool) -> Event {
        Event::Order(Box::new(OrderUpdate {
            order,
            qr: None,
            browser_needed: false,
            status_changed: true,
            recovered,
        }))
    }

    #[test]
    fn recovered_orders_are_marked_until_they_end() {
        let mut t = till();
        let now = Instant::now();
        assert_eq!(t.recovered_text(), None);
        t.apply(update(row("R1", PaymentStatus::Pending), true), now);
        t.apply(update(row("N1", PaymentStatus::Pending), false), now);
        let text = t.recovered_text().unwrap_or_default();
        assert!(text.starts_with("恢复的订单 1"), "{text}");
        assert!(text.contains("R1 ¥12.30") && !text.contains("N1"), "{text}");
        // Still open: still marked; ended: gone.
        t.apply(update(row("R1", PaymentStatus::Confirming), true), now);
        assert!(t.recovered_text().is_some());
        t.apply(update(row("R1", PaymentStatus::Paid), true), now);
        assert_eq!(t.recovered_text(), None);
        t.language = Language::En;
        t.apply(update(row("R2", PaymentStatus::Creating), true), now);
        assert!(
            t.recovered_text()
                .is_some_and(|s| s.starts_with("Recovered orders 1: R2"))
        );
    }

    #[test]
    fn health_says_failures_and_the_switch_key_only_with_another_account() {
        use crate::service::{Failure, FailureKind};
        let info = |id: &str, name: &str| ProviderInfo {
            id: id.into(),
            name: name.into(),
            channels: vec![Channel::Alipay],
            can_query: true,
            browser_needed: false,
            account: None,
        };
        let mut t = TillState::with_providers(vec![info("main", "ispay.in 就付")]);
        assert_eq!(t.health_success_text(), None);
        let failing = ProviderHealth {
            last_success_ms: Some(0),
            consecutive_failures: 3,
            last_failure: Some(Failure {
                kind: FailureKind::Authorization,
                code: Some("1006".into()),
                detail: "provider refused (code 1006): 签名错误".into(),
            }),
        };
        t.apply(
            Event::Health {
                provider_id: "main".into(),
                health: failing.clone(),
            },
            Instant::now(),
        );
        assert!(
            t.health_success_text()
                .is_some_and(|s| s.starts_with("最近成功 "))
        );
        let (text, detail) = t.health_failure_text().unwrap_or_default();
        assert_eq!(
            text,
            "连续失败 3 次: 商户密钥或签名不对（或商户号无效、已停用）"
        );
        assert!(detail.contains("签名错误"), "{detail}");
        // With a second account, F6 and its name.
        let mut t = TillState::with_providers(vec![
            info("main", "ispay.in 就付"),
            info("spare", "epay 易支付"),
        ]);
        t.language = Language::En;
        t.health.insert("main".into(), failing);
        let (text, _) = t.health_failure_text().unwrap_or_default();
        assert!(
            text.starts_with("3 failures in a row: merchant key"),
            "{text}"
        );
        assert!(text.ends_with(" · F6 switch to epay 易支付"), "{text}");
        // Another account's failures are not the current one's.
        t.next_provider();
        assert_eq!(t.health_failure_text(), None);
    }

    #[test]
    fn a_paid_sale_is_announced_once() {
        let now = Instant::now();
        let sale = |t: &mut TillState, no: &str| {
            let order_no = OrderNo::new(no).unwrap();
            t.charging(order_no);
        };
        let mut t = till();
        sale(&mut t, "P1");
        t.apply(update(row("P1", PaymentStatus::Pending), false), now);
        assert!(t.announce.is_empty());
        let mut paid = row("P1", PaymentStatus::Paid);
        paid.paid = Some(Fen(1200));
        t.apply(update(paid.clone(), false), now);
        // The callback and the next poll both report it paid: one announcement.
        t.apply(update(paid.clone(), false), now);
        assert_eq!(t.announce, vec![Fen(1200)], "what was paid is announced");
        t.announce.clear();
        // Back on the till, a late report for the old sale is not announced again.
        t.escape();
        t.apply(update(paid, false), now);
        assert!(t.announce.is_empty());

        // Paid without a paid amount: the amount asked for; another order on screen: none.
        sale(&mut t, "P2");
        t.apply(update(row("OTHER", PaymentStatus::Paid), false), now);
        assert!(t.announce.is_empty());
        t.apply(update(row("P2", PaymentStatus::Paid), false), now);
        assert_eq!(t.announce, vec![Fen(1230)]);
        t.announce.clear();

        // A late payment after the sale expired on screen is announced.
        t.escape();
        sale(&mut t, "P3");
        t.apply(update(row("P3", PaymentStatus::Expired), false), now);
        assert!(t.announce.is_empty());
        let mut late = row("P3", PaymentStatus::Paid);
        late.late_paid = true;
        t.apply(update(late, false), now);
        assert_eq!(t.announce, vec![Fen(1230)]);
    }

    #[test]
    fn bad_amounts_say_why() {
        let mut t = typed("0");
        assert_eq!(t.enter(), None);
        assert_eq!(t.screen, Screen::Till);
        assert!(t.error.as_deref().is_some_and(|e| e.contains("大于 0")));
        let mut t = typed("60000");
        assert_eq!(t.enter(), None);
        assert!(t.error.as_deref().is_some_and(|e| e.contains("50000.00")));
        let mut t = typed("5");
        assert_eq!(t.pick_channel(Channel::Qq), None);
        assert!(t.error.is_some());
    }
}
