//! The command line: the arguments, the start-up shared by the window and the headless
//! subcommands (config or demo mode, ledger, listener, service), and the subcommands
//! `charge`, `resume`, `status`, `history`, `report`, `close`, `closes`, `export` and
//! `sandbox`.
//!
//! Exit codes: 0 paid (or success), 3 ended unpaid, 2 bad input or config, 1 anything else.
//!
//! Dates on the command line are business days (config `day_start`, see [`crate::day`]):
//! with `day_start = "04:00"`, `--date 2026-11-21` covers 21 Nov 04:00 to 22 Nov 04:00.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::config::{Config, ConfigError, Paths};
use crate::ledger::{Ledger, LedgerError, OrderRow};
use crate::model::{Channel, Fen, OrderNo, PaymentStatus, QrPayload};
use crate::sandbox::{Sandbox, SandboxOptions};
use crate::service::{self, ChargeRequest, Event, EventReceiver, ServiceConfig, ServiceHandle};

/// qrtill: a QR-payment till. With no subcommand, opens the till window.
#[derive(Debug, Parser)]
#[command(name = "qrtill", version, about)]
pub struct Cli {
    /// The config file (default: the platform's config folder, e.g. ~/.config/qrtill/config.toml).
    /// Without one the till runs in demo mode against the built-in sandbox.
    #[arg(long, env = "QRTILL_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// The data folder for the ledger (default: e.g. ~/.local/share/qrtill).
    #[arg(long, env = "QRTILL_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an order, show its QR in the terminal, and wait until it ends.
    Charge(ChargeArgs),
    /// Follow every order a previous run left unfinished (the till stopped or crashed) until
    /// each ends: asked about by query where the provider has one, watched for its notify
    /// where it has not; a create whose answer never came is looked up by our order number,
    /// never sent again. Exit 0 when every one ended paid (or none was left), 3 otherwise.
    Resume {
        /// One JSON object per line on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one order and its event log.
    Status {
        /// Our order number.
        order_no: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List one business day's orders (local time, from the config's day_start).
    History {
        /// The business day, YYYY-MM-DD (default: the current one).
        #[arg(long)]
        date: Option<String>,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The day summary: paid per channel, provider and operator, unpaid/expired/cancelled
    /// counts, flagged orders and hourly takings of one business day.
    Report {
        /// The business day, YYYY-MM-DD (default: the current one).
        #[arg(long)]
        date: Option<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Close the till (交班/日结): record a numbered close from the end of the last one until
    /// now, with the config's operator and the totals. A close never changes afterwards.
    Close {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the closes, newest first.
    Closes {
        /// One JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write every order of a range of business days, or of a close, to a CSV file for Excel
    /// or WPS (UTF-8 with BOM).
    #[command(group(clap::ArgGroup::new("what").required(true).args(["from", "close"])))]
    Export {
        /// The first business day, YYYY-MM-DD (with --to).
        #[arg(long, requires = "to", conflicts_with = "close")]
        from: Option<String>,
        /// The last business day, YYYY-MM-DD, included.
        #[arg(long, requires = "from", conflicts_with = "close")]
        to: Option<String>,
        /// A close number (see `qrtill closes`): the orders paid or created in its window.
        #[arg(long)]
        close: Option<i64>,
        /// The CSV file to write (replaced if it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the provider simulator alone and print its URL, credentials and a config for it.
    Sandbox {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Pay every order by itself after this many seconds (unattended demos).
        #[arg(long)]
        auto_pay_after: Option<u64>,
        /// Order lifetime in seconds.
        #[arg(long, default_value_t = 300)]
        order_timeout: u64,
        /// Milliseconds from create until the QR is issued (as a real provider may take).
        #[arg(long, default_value_t = 300)]
        qr_delay_ms: u64,
    },
}

/// `qrtill charge` arguments.
#[derive(Debug, Args)]
pub struct ChargeArgs {
    /// The amount in yuan, e.g. 12.34.
    #[arg(long)]
    pub amount: String,
    /// alipay, wechat, unionpay or qq.
    #[arg(long)]
    pub channel: String,
    /// The provider account id (default: the config's default_provider).
    #[arg(long)]
    pub provider: Option<String>,
    /// A title for the order.
    #[arg(long, default_value = "")]
    pub subject: String,
    /// One JSON object per line on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A failure with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input or config: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Anything else: exit 1.
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Other(_) => 1,
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(err: ConfigError) -> Self {
        CliError::Usage(err.to_string())
    }
}

impl From<LedgerError> for CliError {
    fn from(err: LedgerError) -> Self {
        CliError::Other(err.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Start-up shared by the window and the subcommands

/// Everything a running till needs.
pub struct Till {
    /// The validated config (in demo mode: the sandbox's accounts).
    pub config: Config,
    /// Demo mode: no config file, the built-in sandbox.
    pub demo: bool,
    /// The sandbox, in demo mode.
    pub sandbox: Option<Sandbox>,
    /// The service.
    pub service: ServiceHandle,
    /// Its events.
    pub events: EventReceiver,
    /// The ledger file.
    pub ledger_path: PathBuf,
    /// The listener's address, when it runs.
    pub listener: Option<SocketAddr>,
    /// The running listener, for an orderly stop.
    pub listener_handle: Option<service::listener::Listener>,
    /// Problems staff should see at start (e.g. a notify-only provider nobody can reach).
    pub warnings: Vec<String>,
}

/// The repaint hook, filled in once the window exists.
pub type RepaintSlot = Arc<OnceLock<Arc<dyn Fn() + Send + Sync>>>;

/// Loads the config (or starts demo mode), opens the ledger, binds the listener and starts
/// the service on the current runtime.
///
/// # Errors
/// [`CliError::Usage`] for a bad config, [`CliError::Other`] for a ledger or network fault.
pub async fn start_till(paths: &Paths, repaint: RepaintSlot) -> Result<Till, CliError> {
    let demo = !paths.config_explicit && !paths.config.exists();
    let (config, sandbox) = if demo {
        let sandbox = Sandbox::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SandboxOptions::default(),
        )
        .await
        .map_err(|err| CliError::Other(format!("cannot start the demo sandbox: {err}")))?;
        let mut config = Config::parse(&sandbox.demo_config()).map_err(CliError::Other)?;
        config.operator = "demo".into();
        (config, Some(sandbox))
    } else {
        (Config::load(&paths.config)?, None)
    };
    let ledger_path = paths.ledger(demo);
    let ledger = Ledger::open_for_till(&ledger_path)?;
    let mut warnings = config.warnings.clone();
    warnings.extend(keep_backups(&ledger_path, config.day_start).await);
    let socket = if config.listener.enabled {
        match service::listener::bind(config.listener.listen).await {
            Ok(socket) => Some(socket),
            Err(err) => {
                tracing::warn!(
                    "callback listener cannot bind {}: {err}; payments are still found by query",
                    config.listener.listen
                );
                None
            }
        }
    } else {
        None
    };
    let bound = socket.as_ref().and_then(|s| s.local_addr().ok());
    let service_config = ServiceConfig {
        demo,
        sandbox_control: sandbox.as_ref().map(Sandbox::control_url),
        ..crate::settings::service_config(&config, bound)
    };
    let hook: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        if let Some(repaint) = repaint.get() {
            repaint();
        }
    });
    let (service, events) = service::start(
        tokio::runtime::Handle::current(),
        ledger,
        service_config,
        hook,
    )
    .map_err(|err| CliError::Other(err.to_string()))?;
    let listener_handle = match socket {
        Some(socket) => Some(
            service::listener::serve(socket, service.clone())
                .map_err(|err| CliError::Other(format!("callback listener: {err}")))?,
        ),
        None => None,
    };
    let listener = listener_handle.as_ref().map(|l| l.addr);
    warnings.extend(reachability_warnings(&config, listener, demo));
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    Ok(Till {
        config,
        demo,
        sandbox,
        service,
        events,
        ledger_path,
        listener,
        listener_handle,
        warnings,
    })
}

impl Till {
    /// Lets the listener finish answering callbacks in flight before the process ends.
    pub async fn close(&mut self) {
        if let Some(listener) = self.listener_handle.take() {
            listener.shutdown(Duration::from_secs(3)).await;
        }
    }
}

/// Makes the current business day's backup of the ledger now (a failure is a warning for
/// staff, not a stop), then checks hourly for as long as the runtime runs, so a till left on
/// overnight still gets one a day. The copy runs off the async threads.
async fn keep_backups(ledger: &std::path::Path, day_start: chrono::NaiveTime) -> Option<String> {
    let backup = move |ledger: PathBuf| async move {
        let day = crate::day::business_date(&chrono::Local, service::now_ms(), day_start);
        tokio::task::spawn_blocking(move || crate::ledger::survive::daily_backup(&ledger, day))
            .await
            .map_err(|err| format!("the ledger backup stopped: {err}"))
            .and_then(|done| done.map_err(|err| err.to_string()))
    };
    let first = match backup(ledger.to_path_buf()).await {
        Ok(made) => {
            if let Some(file) = made {
                tracing::info!(file = %file.display(), "ledger backed up");
            }
            None
        }
        Err(err) => Some(format!("账本备份失败 / {err}")),
    };
    let ledger = ledger.to_path_buf();
    tokio::spawn(async move {
        let mut hourly = tokio::time::interval(Duration::from_secs(3600));
        hourly.tick().await;
        loop {
            hourly.tick().await;
            match backup(ledger.clone()).await {
                Ok(Some(file)) => tracing::info!(file = %file.display(), "ledger backed up"),
                Ok(None) => {}
                Err(err) => tracing::warn!("{err}"),
            }
        }
    });
    first
}

/// Providers that report payment only by notify need a listener the provider can reach.
fn reachability_warnings(config: &Config, listener: Option<SocketAddr>, demo: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    for provider in config.providers.iter().filter(|p| !p.can_query()) {
        let name = format!("{} ({})", provider.display_name(), provider.id());
        if listener.is_none() {
            warnings.push(format!(
                "{name} 只能通过回调确认付款，但回调监听未运行 / reports payments only by notify, and the callback listener is not running: no sale with it can be confirmed"
            ));
        } else if config.listener.public_url.is_none() && !demo {
            warnings.push(format!(
                "{name} 只能通过回调确认付款：请在 [listener] 设置 public_url / reports payments only by notify: set [listener] public_url to an address the provider can reach"
            ));
        }
    }
    warnings
}

// ---------------------------------------------------------------------------------------------
// charge

/// `qrtill charge`: returns the exit code (0 paid, 3 ended unpaid).
///
/// # Errors
/// [`CliError::Usage`] for bad arguments, [`CliError::Other`] when the sale cannot start.
pub async fn charge(paths: &Paths, args: ChargeArgs) -> Result<i32, CliError> {
    let channel: Channel = args
        .channel
        .parse()
        .map_err(|err: crate::model::UnknownChannel| {
            CliError::Usage(format!("--channel: {err}"))
        })?;
    let mut till = start_till(paths, Arc::new(OnceLock::new())).await?;
    let amount = Fen::parse_input(&args.amount, till.config.max_amount)
        .map_err(|err| CliError::Usage(format!("--amount `{}`: {err}", args.amount)))?;
    let provider_id = args
        .provider
        .clone()
        .unwrap_or_else(|| till.config.default_provider.clone());
    let Some(provider) = till.config.provider(&provider_id) else {
        let ids: Vec<&str> = till.config.providers.iter().map(|p| p.id()).collect();
        return Err(CliError::Usage(format!(
            "--provider: no provider `{provider_id}` in the config (configured: {})",
            ids.join(", ")
        )));
    };
    if !provider.channels().contains(&channel) {
        let offered: Vec<&str> = provider.channels().iter().map(|c| c.as_str()).collect();
        return Err(CliError::Usage(format!(
            "--channel: provider `{provider_id}` ({}) does not offer {channel}; it offers {}",
            provider.display_name(),
            offered.join(", ")
        )));
    }
    for warning in &till.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(sandbox) = &till.sandbox {
        eprintln!(
            "演示模式 DEMO: no config file, using the built-in sandbox at {}.\nMark the order paid with: curl -X POST {}/orders/ORDER_NO/pay",
            sandbox.base_url,
            sandbox.control_url()
        );
    }
    let order_no = till.service.charge(ChargeRequest {
        amount,
        channel,
        provider_id: provider_id.clone(),
        subject: args.subject.clone(),
        operator: till.config.operator.clone(),
    });
    let mut out = Output { json: args.json };
    follow(&mut till, &mut out, vec![order_no]).await
}

// ---------------------------------------------------------------------------------------------
// resume

/// `qrtill resume`: follows the orders a previous run left unfinished until each ends;
/// returns the exit code (0 all paid or none left, 3 one or more ended unpaid). An order
/// whose provider is no longer configured cannot be followed: it is named on stderr.
///
/// # Errors
/// [`CliError::Usage`] for a bad config, [`CliError::Other`] for a ledger fault or when the
/// service stops.
pub async fn resume(paths: &Paths, as_json: bool) -> Result<i32, CliError> {
    let mut till = start_till(paths, Arc::new(OnceLock::new())).await?;
    for warning in &till.warnings {
        eprintln!("warning: {warning}");
    }
    let resumed = till.service.resumed().to_vec();
    let rows = till
        .service
        .with_ledger(move |l| {
            resumed
                .iter()
                .map(|no| l.get(no))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    // An order whose provider left the config cannot be followed: it would never end here.
    let (followed, orphans): (Vec<OrderRow>, Vec<OrderRow>) = rows
        .into_iter()
        .flatten()
        .partition(|row| till.config.provider(&row.provider_id).is_some());
    for orphan in &orphans {
        eprintln!(
            "warning: 订单 {} 的支付平台 `{}` 已不在配置中 / order {}: its provider `{}` is no longer in the config, so it cannot be followed; check it with the provider",
            orphan.order_no, orphan.provider_id, orphan.order_no, orphan.provider_id
        );
    }
    let orders: Vec<OrderNo> = followed.into_iter().map(|o| o.order_no).collect();
    let mut out = Output { json: as_json };
    let listed: Vec<&str> = orders.iter().map(OrderNo::as_str).collect();
    out.line(
        json!({"event": "resumed", "orders": listed}),
        &if orders.is_empty() {
            "没有未完成的订单 / no unfinished orders".to_string()
        } else {
            format!(
                "恢复 {} 笔未完成的订单 / resuming {} unfinished order(s): {}",
                orders.len(),
                orders.len(),
                listed.join(", ")
            )
        },
    );
    follow(&mut till, &mut out, orders).await
}

/// How far an order followed on the command line has been shown.
#[derive(Default)]
struct Shown {
    status: Option<PaymentStatus>,
    qr: bool,
}

/// Prints the events of `orders` (status changes, the QR, the end) until every one has
/// ended, then lets the listener finish its answers. Returns 0 when all ended paid (or there
/// were none), 3 otherwise.
async fn follow(till: &mut Till, out: &mut Output, orders: Vec<OrderNo>) -> Result<i32, CliError> {
    let mut waiting: HashMap<OrderNo, Shown> = orders
        .into_iter()
        .map(|no| (no, Shown::default()))
        .collect();
    let mut all_paid = true;
    while !waiting.is_empty() {
        let Some(event) = till.events.recv().await else {
            return Err(CliError::Other(
                "the service stopped before the order ended".into(),
            ));
        };
        match event {
            Event::ChargeFailed { order_no, message } if waiting.contains_key(&order_no) => {
                out.line(
                    json!({"event": "error", "order_no": order_no.as_str(), "message": message}),
                    &format!("cannot charge: {message}"),
                );
                return Err(CliError::Other(message));
            }
            Event::Order(update) => {
                let order = &update.order;
                let Some(shown) = waiting.get_mut(&order.order_no) else {
                    continue;
                };
                if shown.status != Some(order.status) {
                    shown.status = Some(order.status);
                    out.status(order);
                }
                if !shown.qr
                    && let Some(qr) = &update.qr
                {
                    shown.qr = true;
                    let browser_needed = update.browser_needed
                        || till
                            .config
                            .provider(&order.provider_id)
                            .is_some_and(|p| p.payer_browser_needed());
                    out.qr(order, &qr.payload, browser_needed);
                }
                if order.status.is_final() {
                    out.done(order);
                    all_paid &= order.status == PaymentStatus::Paid;
                    waiting.remove(&order.order_no);
                }
            }
            Event::Notice(message) => tracing::warn!("{message}"),
            _ => {}
        }
    }
    // The notify that ended the sale may still be waiting for its answer.
    till.close().await;
    Ok(if all_paid { 0 } else { 3 })
}

struct Output {
    json: bool,
}

impl Output {
    fn line(&mut self, value: serde_json::Value, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = if self.json {
            writeln!(stdout, "{value}")
        } else {
            writeln!(stdout, "{text}")
        };
        let _ = stdout.flush();
    }

    fn status(&mut self, order: &OrderRow) {
        let value = json!({
            "event": "status",
            "order_no": order.order_no.as_str(),
            "status": order.status.as_str(),
            "message": order.message,
        });
        let text = format!(
            "order {} {}{}",
            order.order_no,
            order.status,
            order
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
        self.line(value, &text);
    }

    /// The QR event; `browser_needed` when it opens a web page in the payer's browser.
    fn qr(&mut self, order: &OrderRow, qr: &QrPayload, browser_needed: bool) {
        let image = match qr {
            QrPayload::Image(bytes) => {
                use base64::Engine as _;
                Some(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            QrPayload::Text(_) => None,
        };
        let value = json!({
            "event": "qr",
            "order_no": order.order_no.as_str(),
            "qr": qr.text(),
            "qr_image_base64": image,
            "amount": order.amount.to_yuan(),
            "payable": order.payable_or_amount().to_yuan(),
            "channel": order.channel.as_str(),
            "provider": order.provider_id,
            "expires_at": order.expires_at.map(iso_time),
            "browser_needed": browser_needed,
        });
        let picture = qr
            .text()
            .map(|text| crate::qr::to_terminal(text).unwrap_or_else(|err| err.to_string()))
            .unwrap_or_else(|| "(the provider sent the QR only as a picture)".into());
        let browser = if browser_needed {
            "\n顾客扫码后在手机浏览器中完成支付 / the customer's phone opens the provider's page to pay"
        } else {
            ""
        };
        let text = format!(
            "{picture}\n请用{}扫码支付 ¥{} / scan with {} to pay ¥{}{browser}\n{}",
            order.channel.name_zh(),
            order.payable_or_amount(),
            order.channel.name_en(),
            order.payable_or_amount(),
            qr.text().unwrap_or_default()
        );
        self.line(value, &text);
    }

    fn done(&mut self, order: &OrderRow) {
        let value = json!({
            "event": "done",
            "order_no": order.order_no.as_str(),
            "status": order.status.as_str(),
            "amount": order.amount.to_yuan(),
            "payable": order.payable_or_amount().to_yuan(),
            "paid": order.paid.map(Fen::to_yuan),
            "late_paid": order.late_paid,
            "amount_mismatch": order.amount_mismatch,
            "message": order.message,
        });
        let text = match order.status {
            PaymentStatus::Paid => format!(
                "支付成功 / paid ¥{} (order {})",
                order.paid.unwrap_or(order.amount),
                order.order_no
            ),
            other => format!(
                "ended {other}: {} (order {})",
                order.message.as_deref().unwrap_or(""),
                order.order_no
            ),
        };
        self.line(value, &text);
    }
}

fn iso_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&chrono::Local).to_rfc3339())
        .unwrap_or_default()
}

/// An order as JSON for `status` and `history`.
pub fn order_json(order: &OrderRow) -> serde_json::Value {
    json!({
        "order_no": order.order_no.as_str(),
        "provider": order.provider_id,
        "provider_kind": order.provider_kind,
        "channel": order.channel.as_str(),
        "amount": order.amount.to_yuan(),
        "payable": order.payable_or_amount().to_yuan(),
        "paid": order.paid.map(Fen::to_yuan),
        "status": order.status.as_str(),
        "provider_order_id": order.provider_order_id,
        "operator": order.operator,
        "demo": order.demo,
        "created_at": iso_time(order.created_at),
        "expires_at": order.expires_at.map(iso_time),
        "paid_at": order.paid_at.map(iso_time),
        "late_paid": order.late_paid,
        "amount_mismatch": order.amount_mismatch,
        "message": order.message,
    })
}

// ---------------------------------------------------------------------------------------------
// status, history

/// The ledger of the current mode and the settings the review commands need.
struct Books {
    ledger: Ledger,
    day_start: chrono::NaiveTime,
    operator: String,
}

fn open_ledger(paths: &Paths) -> Result<Ledger, CliError> {
    Ok(open_books(paths)?.ledger)
}

fn open_books(paths: &Paths) -> Result<Books, CliError> {
    let demo = !paths.config_explicit && !paths.config.exists();
    // Validate the config so that a broken one is reported, not silently ignored.
    let (day_start, operator) = if demo {
        (crate::day::MIDNIGHT, "demo".to_string())
    } else {
        let config = Config::load(&paths.config)?;
        for warning in &config.warnings {
            eprintln!("warning: {warning}");
        }
        (config.day_start, config.operator)
    };
    Ok(Books {
        ledger: Ledger::open(&paths.ledger(demo))?,
        day_start,
        operator,
    })
}

/// `qrtill status ORDER_NO`.
///
/// # Errors
/// [`CliError::Usage`] for a malformed or unknown order number.
pub fn status(paths: &Paths, order_no: &str, as_json: bool) -> Result<i32, CliError> {
    let order_no = OrderNo::new(order_no).map_err(|err| CliError::Usage(err.to_string()))?;
    let ledger = open_ledger(paths)?;
    let order = ledger
        .get(&order_no)?
        .ok_or_else(|| CliError::Usage(format!("no order {order_no} in the ledger")))?;
    let events = ledger.events(&order_no)?;
    if as_json {
        let mut value = order_json(&order);
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "events".into(),
                events
                    .iter()
                    .map(|e| json!({"at": iso_time(e.at), "kind": e.kind, "from": e.from, "to": e.to, "detail": e.detail, "raw": e.raw}))
                    .collect(),
            );
        }
        println!("{value}");
    } else {
        println!(
            "order {}  {}  ¥{}  {} via {}  status {}",
            order.order_no,
            iso_time(order.created_at),
            order.amount,
            order.channel,
            order.provider_id,
            order.status
        );
        for e in events {
            let change = match (&e.from, &e.to) {
                (Some(from), Some(to)) => format!("{from} → {to}"),
                (None, Some(to)) => format!("→ {to}"),
                _ => String::new(),
            };
            println!(
                "  {}  {:<9} {:<22} {}",
                iso_time(e.at),
                e.kind,
                change,
                e.detail
            );
        }
    }
    Ok(0)
}

/// The business day `--date` names, or the current one.
fn business_day(
    option: &str,
    date: Option<&str>,
    day_start: chrono::NaiveTime,
) -> Result<chrono::NaiveDate, CliError> {
    match date {
        Some(text) => {
            crate::day::parse_date(text).map_err(|err| CliError::Usage(format!("{option} {err}")))
        }
        None => Ok(crate::day::business_date(
            &chrono::Local,
            service::now_ms(),
            day_start,
        )),
    }
}

/// `YYYY-MM-DD HH:MM:SS`, local.
fn local(ms: i64) -> String {
    crate::day::local_time(&chrono::Local, ms)
}

/// `qrtill history [--date]`: the orders created in one business day, oldest first.
///
/// # Errors
/// [`CliError::Usage`] for a malformed date.
pub fn history(paths: &Paths, date: Option<&str>, as_json: bool) -> Result<i32, CliError> {
    let books = open_books(paths)?;
    let day = business_day("--date", date, books.day_start)?;
    let (start, end) = crate::day::window(&chrono::Local, day, books.day_start);
    let orders = books.ledger.orders_between(start, end)?;
    let totals = books.ledger.paid_totals(start, end)?;
    if as_json {
        println!(
            "{}",
            json!({
                "date": day.to_string(),
                "day_start": crate::day::format_day_start(books.day_start),
                "from": iso_time(start),
                "to": iso_time(end),
                "paid_count": totals.count,
                "paid_total": totals.total.to_yuan(),
                "orders": orders.iter().map(order_json).collect::<Vec<_>>(),
            })
        );
    } else {
        println!(
            "{day} ({} – {}): {} paid, ¥{}",
            local(start),
            local(end),
            totals.count,
            totals.total
        );
        for o in orders {
            println!(
                "  {}  {}  {:>10}  {:<8} {:<10} {}",
                local(o.created_at),
                o.order_no,
                o.amount.to_yuan(),
                o.channel,
                o.status,
                o.provider_id
            );
        }
    }
    Ok(0)
}

// ---------------------------------------------------------------------------------------------
// report, close, closes, export

/// `value` (a serialized summary or close) with readable local times added beside the ms.
fn with_times(
    mut value: serde_json::Value,
    extra: &[(&str, serde_json::Value)],
) -> serde_json::Value {
    if let Some(map) = value.as_object_mut() {
        for (key, item) in extra {
            map.insert((*key).to_string(), item.clone());
        }
    }
    value
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, CliError> {
    serde_json::to_value(value).map_err(|err| CliError::Other(format!("cannot print JSON: {err}")))
}

/// Prints the figures of a day or a close as text.
fn print_figures(figures: &crate::ledger::Figures, paid_basis: &str) {
    println!(
        "已收款 paid{paid_basis}: {} 笔 orders, ¥{}",
        figures.paid.count, figures.paid.total
    );
    let groups: [(&str, &[crate::ledger::GroupTotals]); 3] = [
        ("按渠道 by channel", &figures.by_channel),
        ("按支付平台 by provider", &figures.by_provider),
        ("按收银员 by operator", &figures.by_operator),
    ];
    for (title, list) in groups {
        println!("{title}:");
        if list.is_empty() {
            println!("  —");
        }
        for g in list {
            let name = match g.key.parse::<Channel>() {
                Ok(channel) if title.contains("channel") => {
                    format!("{} {}", channel.name_zh(), channel.as_str())
                }
                _ if g.key.is_empty() => "(未设置 not set)".to_string(),
                _ => g.key.clone(),
            };
            println!("  {name:<20} {:>6}  ¥{:>12}", g.count, g.total.to_yuan());
        }
    }
    println!(
        "订单 orders {} · 未完成 unpaid {} · 已过期 expired {} · 已取消 cancelled {} · 失败 failed {}",
        figures.orders, figures.unpaid, figures.expired, figures.cancelled, figures.failed
    );
    if !figures.flagged.is_empty() {
        println!("需核对 flagged:");
        for o in &figures.flagged {
            let mut flags = Vec::new();
            if o.late_paid {
                flags.push("迟付 late");
            }
            if o.amount_mismatch {
                flags.push("金额不符 mismatch");
            }
            println!(
                "  {}  {}  应付 payable ¥{}  实付 paid ¥{}  {}",
                local(o.created_at),
                o.order_no,
                o.payable,
                o.paid.map(Fen::to_yuan).unwrap_or_default(),
                flags.join(", ")
            );
        }
    }
}

/// `qrtill report [--date] [--json]`: one business day's summary.
///
/// # Errors
/// [`CliError::Usage`] for a malformed date.
pub fn report(paths: &Paths, date: Option<&str>, as_json: bool) -> Result<i32, CliError> {
    let books = open_books(paths)?;
    let day = business_day("--date", date, books.day_start)?;
    let (from, to) = crate::day::window(&chrono::Local, day, books.day_start);
    let summary = books.ledger.day_summary(from, to)?;
    if as_json {
        let value = with_times(
            to_json(&summary)?,
            &[
                ("date", json!(day.to_string())),
                (
                    "day_start",
                    json!(crate::day::format_day_start(books.day_start)),
                ),
                ("from", json!(iso_time(from))),
                ("to", json!(iso_time(to))),
            ],
        );
        println!("{value}");
        return Ok(0);
    }
    println!("营业日 business day {day}: {} – {}", local(from), local(to));
    print_figures(&summary.figures, "");
    println!("每小时收款 hourly takings:");
    let peak = summary
        .hourly
        .iter()
        .map(|h| h.total.0)
        .max()
        .unwrap_or(0)
        .max(1);
    for hour in &summary.hourly {
        let bar = usize::try_from(hour.total.0.saturating_mul(40) / peak).unwrap_or(0);
        println!(
            "  {}  {:<40} {:>4}  ¥{}",
            crate::day::clock_label(&chrono::Local, hour.start_ms),
            "█".repeat(bar),
            hour.count,
            hour.total
        );
    }
    Ok(0)
}

fn close_json(close: &crate::ledger::Close) -> Result<serde_json::Value, CliError> {
    Ok(with_times(
        to_json(close)?,
        &[
            ("from", json!(iso_time(close.from_ms))),
            ("to", json!(iso_time(close.to_ms))),
        ],
    ))
}

fn print_close(close: &crate::ledger::Close) {
    let from = if close.from_ms == 0 {
        "账本开始 the start of the ledger".to_string()
    } else {
        local(close.from_ms)
    };
    let operator = if close.operator.is_empty() {
        "(未设置 not set)"
    } else {
        close.operator.as_str()
    };
    println!(
        "交班 close no. {}: {from} – {}, 收银员 operator {operator}",
        close.number,
        local(close.to_ms)
    );
    print_figures(&close.figures, " (按付款时间 by payment time)");
}

/// `qrtill close [--json]`: records a close until now with the config's operator.
///
/// # Errors
/// [`CliError::Other`] when the ledger refuses (e.g. the clock is behind the last close).
pub fn close(paths: &Paths, as_json: bool) -> Result<i32, CliError> {
    let mut books = open_books(paths)?;
    let close = books
        .ledger
        .record_close(&books.operator, service::now_ms())?;
    if as_json {
        println!("{}", close_json(&close)?);
    } else {
        print_close(&close);
    }
    Ok(0)
}

/// `qrtill closes [--json]`: every close, newest first.
///
/// # Errors
/// On a ledger error.
pub fn closes(paths: &Paths, as_json: bool) -> Result<i32, CliError> {
    let books = open_books(paths)?;
    let closes = books.ledger.list_closes()?;
    if as_json {
        let list = closes
            .iter()
            .map(close_json)
            .collect::<Result<Vec<_>, _>>()?;
        println!("{}", serde_json::Value::Array(list));
    } else if closes.is_empty() {
        println!("还没有交班记录 / no closes yet");
    } else {
        for c in &closes {
            println!(
                "no. {:>4}  {} – {}  {:<10} {:>6} 笔 paid  ¥{}",
                c.number,
                if c.from_ms == 0 {
                    "(start)            ".to_string()
                } else {
                    local(c.from_ms)
                },
                local(c.to_ms),
                c.operator,
                c.figures.paid.count,
                c.figures.paid.total
            );
        }
    }
    Ok(0)
}

/// What `qrtill export` writes.
#[derive(Clone, Debug)]
pub enum ExportWhat {
    /// Business days `from` to `to`, both included (YYYY-MM-DD as typed).
    Days {
        /// The first day.
        from: String,
        /// The last day.
        to: String,
    },
    /// A close by number.
    Close(i64),
}

/// `qrtill export (--from D --to D | --close N) --out FILE`.
///
/// # Errors
/// [`CliError::Usage`] for malformed or reversed dates or an unknown close,
/// [`CliError::Other`] when the file cannot be written.
pub fn export(paths: &Paths, what: &ExportWhat, out: &std::path::Path) -> Result<i32, CliError> {
    let books = open_books(paths)?;
    let (orders, described) = match what {
        ExportWhat::Days { from, to } => {
            let first = business_day("--from", Some(from), books.day_start)?;
            let last = business_day("--to", Some(to), books.day_start)?;
            if last < first {
                return Err(CliError::Usage(format!(
                    "--to {last} is before --from {first}: give the first day first"
                )));
            }
            let (start, end) =
                crate::day::range_window(&chrono::Local, first, last, books.day_start);
            (
                books.ledger.orders_between(start, end)?,
                format!("business days {first} to {last}"),
            )
        }
        ExportWhat::Close(number) => {
            if books.ledger.close(*number)?.is_none() {
                return Err(CliError::Usage(format!(
                    "--close {number}: no such close (see `qrtill closes`)"
                )));
            }
            (
                books.ledger.close_orders(*number)?,
                format!("close no. {number}"),
            )
        }
    };
    let count =
        crate::export::export_file(out, &orders).map_err(|err| CliError::Other(err.to_string()))?;
    println!(
        "已导出 {count} 笔订单 / exported {count} orders ({described}) to {}",
        out.display()
    );
    Ok(0)
}

// ---------------------------------------------------------------------------------------------
// sandbox

/// `qrtill sandbox`: runs until interrupted.
///
/// # Errors
/// [`CliError::Other`] when the address cannot be bound.
pub async fn sandbox(
    listen: SocketAddr,
    auto_pay_after: Option<u64>,
    order_timeout: u64,
    qr_delay_ms: u64,
) -> Result<i32, CliError> {
    let options = SandboxOptions {
        auto_pay_after: auto_pay_after.map(Duration::from_secs),
        order_timeout: Duration::from_secs(order_timeout.max(1)),
        qr_delay: Duration::from_millis(qr_delay_ms),
    };
    let sandbox = Sandbox::start(listen, options)
        .await
        .map_err(|err| CliError::Other(format!("cannot listen on {listen}: {err}")))?;
    println!("qrtill sandbox listening on {}", sandbox.base_url);
    for provider in sandbox.demo_providers() {
        println!(
            "{:<14} {}  (account `{}`, credentials in the config below)",
            provider.display_name(),
            sandbox.url_for(provider.kind()),
            provider.id()
        );
    }
    println!(
        "银钱通 yinqiantong simulator: {}  appid {}  appkey {}  app_secret {}",
        sandbox.url_for(crate::sandbox::yinqiantong::KIND),
        crate::sandbox::yinqiantong::DEMO_APPID,
        crate::sandbox::yinqiantong::DEMO_APPKEY,
        crate::sandbox::yinqiantong::DEMO_APP_SECRET
    );
    println!(
        "Mark an order paid:   curl -X POST {}/orders/ORDER_NO/pay",
        sandbox.control_url()
    );
    println!(
        "Other controls:       …/orders/ORDER_NO/pay?amount=12.30 (underpay), …/confirm, …/expire, …/cancel, …/close, …/state/CODE, …/notify[?forged=true]; GET {}/orders",
        sandbox.control_url()
    );
    println!(
        "V免签 monitor phone:  curl -X POST {}/vmq/monitor/offline (or online, unbound)",
        sandbox.control_url()
    );
    println!(
        "\n# A config for it (save as a file and pass --config FILE):\n{}",
        sandbox.demo_config()
    );
    let _ = std::io::stdout().flush();
    tokio::signal::ctrl_c()
        .await
        .map_err(|err| CliError::Other(format!("cannot wait for Ctrl-C: {err}")))?;
    Ok(0)
}
