//! The command line: the arguments, the start-up shared by the window and the headless
//! subcommands (config or demo mode, ledger, listener, service), and the subcommands
//! `charge`, `status`, `history` and `sandbox`.
//!
//! Exit codes: 0 paid (or success), 3 ended unpaid, 2 bad input or config, 1 anything else.

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
    /// Show one order and its event log.
    Status {
        /// Our order number.
        order_no: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List one day's orders (local time).
    History {
        /// The day, YYYY-MM-DD (default: today).
        #[arg(long)]
        date: Option<String>,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
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
    let ledger = Ledger::open(&ledger_path)?;
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
    let notify_base = match (&config.listener.public_url, bound) {
        (Some(url), _) => url.clone(),
        (None, Some(addr)) => format!("http://{addr}"),
        (None, None) => format!("http://{}", config.listener.listen),
    };
    let service_config = ServiceConfig {
        providers: config.providers.clone(),
        order_timeout: config.order_timeout,
        late_grace: config.late_grace,
        demo,
        sandbox_control: sandbox.as_ref().map(Sandbox::control_url),
        notify_base,
        public_url: config.listener.public_url.clone(),
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
    let warnings = reachability_warnings(&config, listener, demo);
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
    let mut qr_shown = false;
    let mut last_status = None;
    while let Some(event) = till.events.recv().await {
        match event {
            Event::ChargeFailed {
                order_no: no,
                message,
            } if no == order_no => {
                out.line(
                    json!({"event": "error", "order_no": no.as_str(), "message": message}),
                    &format!("cannot charge: {message}"),
                );
                return Err(CliError::Other(message));
            }
            Event::Order(update) if update.order.order_no == order_no => {
                let order = &update.order;
                if last_status != Some(order.status) {
                    last_status = Some(order.status);
                    out.status(order);
                }
                if !qr_shown && let Some(qr) = &update.qr {
                    qr_shown = true;
                    out.qr(order, qr);
                }
                if order.status.is_final() {
                    out.done(order);
                    // The notify that ended the sale may still be waiting for its answer.
                    till.close().await;
                    return Ok(if order.status == PaymentStatus::Paid {
                        0
                    } else {
                        3
                    });
                }
            }
            Event::Notice(message) => tracing::warn!("{message}"),
            _ => {}
        }
    }
    Err(CliError::Other(
        "the service stopped before the order ended".into(),
    ))
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

    fn qr(&mut self, order: &OrderRow, qr: &QrPayload) {
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
        });
        let picture = qr
            .text()
            .map(|text| crate::qr::to_terminal(text).unwrap_or_else(|err| err.to_string()))
            .unwrap_or_else(|| "(the provider sent the QR only as a picture)".into());
        let text = format!(
            "{picture}\n请用{}扫码支付 ¥{} / scan with {} to pay ¥{}\n{}",
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

fn open_ledger(paths: &Paths) -> Result<Ledger, CliError> {
    let demo = !paths.config_explicit && !paths.config.exists();
    if !demo {
        // Validate the config so that a broken one is reported, not silently ignored.
        Config::load(&paths.config)?;
    }
    Ok(Ledger::open(&paths.ledger(demo))?)
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

/// `qrtill history [--date]`.
///
/// # Errors
/// [`CliError::Usage`] for a malformed date.
pub fn history(paths: &Paths, date: Option<&str>, as_json: bool) -> Result<i32, CliError> {
    let day = match date {
        Some(text) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| CliError::Usage(format!("--date `{text}` must be YYYY-MM-DD")))?,
        None => chrono::Local::now().date_naive(),
    };
    let start = day
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
        .ok_or_else(|| CliError::Usage(format!("--date {day}: no such local time")))?
        .timestamp_millis();
    let end = (day + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
        .map_or(start + 86_400_000, |t| t.timestamp_millis());
    let ledger = open_ledger(paths)?;
    let orders = ledger.orders_between(start, end)?;
    let totals = ledger.paid_totals(start, end)?;
    if as_json {
        println!(
            "{}",
            json!({
                "date": day.to_string(),
                "paid_count": totals.count,
                "paid_total": totals.total.to_yuan(),
                "orders": orders.iter().map(order_json).collect::<Vec<_>>(),
            })
        );
    } else {
        println!("{day}: {} paid, ¥{}", totals.count, totals.total);
        for o in orders {
            println!(
                "  {}  {}  {:>10}  {:<8} {:<10} {}",
                iso_time(o.created_at),
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
// sandbox

/// `qrtill sandbox`: runs until interrupted.
///
/// # Errors
/// [`CliError::Other`] when the address cannot be bound.
pub async fn sandbox(
    listen: SocketAddr,
    auto_pay_after: Option<u64>,
    order_timeout: u64,
) -> Result<i32, CliError> {
    let options = SandboxOptions {
        auto_pay_after: auto_pay_after.map(Duration::from_secs),
        order_timeout: Duration::from_secs(order_timeout.max(1)),
        ..SandboxOptions::default()
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
