//! qrtill's entry point: parse the command line, start logging and one tokio runtime, then
//! open the till window or run a subcommand.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::sync::{Arc, OnceLock};

use clap::Parser as _;
use qrtill::app::TillApp;
use qrtill::app::state::TillState;
use qrtill::cli::{self, Cli, CliError, Command, RepaintSlot};
use qrtill::config::Paths;

fn main() {
    let args = Cli::parse();
    let gui = args.command.is_none();
    let paths = Paths::resolve(args.config.clone(), args.data_dir.clone());
    // The simulator keeps no books: it writes nothing into a data folder.
    let log_dir = (!matches!(args.command, Some(Command::Sandbox { .. })))
        .then(|| paths.data_dir.join("logs"));
    // Held until the process ends: dropping it flushes the log file.
    let log_guard = init_logging(gui, log_dir.as_deref());
    let code = match run(args, &paths) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("qrtill: {err}");
            err.exit_code()
        }
    };
    // `exit` runs no destructors: flush the log file first.
    drop(log_guard);
    std::process::exit(code);
}

/// How many daily log files are kept in `<data dir>/logs`.
const LOG_FILES_KEPT: usize = 14;

/// Logs to stderr (so that `--json` output on stdout stays clean) and, when `log_dir` is
/// given, to a daily file there (`qrtill.YYYY-MM-DD.log`, the newest [`LOG_FILES_KEPT`]
/// kept) written by a background thread so a slow disk never stalls the till. `RUST_LOG`
/// sets both; otherwise the file records info for the till and the commands alike, while the
/// commands keep stderr to warnings. Nothing logged carries a secret (see `secret.rs`).
fn init_logging(
    gui: bool,
    log_dir: Option<&std::path::Path>,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = |default: &str| {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter(if gui {
            "qrtill=info,warn"
        } else {
            "qrtill=warn,warn"
        }));
    let mut trouble = None;
    let file = log_dir.and_then(|dir| {
        let appender = tracing_appender::rolling::RollingFileAppender::builder()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("qrtill")
            .filename_suffix("log")
            .max_log_files(LOG_FILES_KEPT)
            .build(dir);
        match appender {
            Ok(appender) => Some(tracing_appender::non_blocking(appender)),
            Err(err) => {
                trouble = Some(format!(
                    "cannot write the log file in {}: {err}; logging to stderr only",
                    dir.display()
                ));
                None
            }
        }
    });
    let (file_layer, guard) = match file {
        Some((writer, guard)) => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(false)
                    .with_filter(filter("qrtill=info,warn")),
            ),
            Some(guard),
        ),
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .init();
    if let Some(trouble) = trouble {
        tracing::warn!("{trouble}");
    }
    guard
}

fn run(args: Cli, paths: &Paths) -> Result<i32, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("qrtill-io")
        .enable_all()
        .build()
        .map_err(|err| CliError::Other(format!("cannot start the async runtime: {err}")))?;
    match args.command {
        None => run_window(&runtime, paths),
        Some(Command::Charge(charge)) => runtime.block_on(cli::charge(paths, charge)),
        Some(Command::Resume { json }) => runtime.block_on(cli::resume(paths, json)),
        Some(Command::Status { order_no, json }) => cli::status(paths, &order_no, json),
        Some(Command::History { date, json }) => cli::history(paths, date.as_deref(), json),
        Some(Command::Report { date, json }) => cli::report(paths, date.as_deref(), json),
        Some(Command::Close { json }) => cli::close(paths, json),
        Some(Command::Closes { json }) => cli::closes(paths, json),
        Some(Command::Export {
            from,
            to,
            close,
            out,
        }) => {
            let what = match (from, to, close) {
                (_, _, Some(number)) => cli::ExportWhat::Close(number),
                (Some(from), Some(to), None) => cli::ExportWhat::Days { from, to },
                // clap requires --from with --to, or --close.
                _ => return Err(CliError::Usage("give --from and --to, or --close".into())),
            };
            cli::export(paths, &what, &out)
        }
        Some(Command::Sandbox {
            listen,
            auto_pay_after,
            order_timeout,
            qr_delay_ms,
        }) => runtime.block_on(cli::sandbox(
            listen,
            auto_pay_after,
            order_timeout,
            qr_delay_ms,
        )),
    }
}

fn run_window(runtime: &tokio::runtime::Runtime, paths: &Paths) -> Result<i32, CliError> {
    let slot: RepaintSlot = Arc::new(OnceLock::new());
    // The till starts (config, ledger and its backup, listener, service; in demo mode the
    // sandbox) while eframe opens the window and its GL context: each takes a good part of the
    // start-up and neither needs the other before the first frame.
    let starting = {
        let paths = paths.clone();
        let slot = slot.clone();
        let task = runtime.spawn(async move { cli::start_till(&paths, slot).await });
        std::rc::Rc::new(std::cell::RefCell::new(Some(task)))
    };
    let wait_started = {
        let starting = starting.clone();
        move || {
            let task = starting.borrow_mut().take()?;
            Some(
                runtime
                    .block_on(task)
                    .unwrap_or_else(|err| Err(CliError::Other(format!("start-up failed: {err}")))),
            )
        }
    };
    let demo = !paths.config_explicit && !paths.config.exists();
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Glow,
        viewport: egui::ViewportBuilder::default()
            .with_title(if demo {
                "qrtill 收银台 (演示模式 DEMO)"
            } else {
                "qrtill 收银台"
            })
            .with_app_id("qrtill")
            .with_inner_size([1100.0, 760.0])
            .with_min_inner_size([800.0, 600.0]),
        ..Default::default()
    };
    let _guard = runtime.enter();
    // Why the till could not start, when it could not: shown in the window, then the exit code.
    let failed: std::rc::Rc<std::cell::RefCell<Option<CliError>>> = std::rc::Rc::default();
    let failure = failed.clone();
    // The demo sandbox, kept as long as the window is open, as before the window had a till.
    let sandbox: std::rc::Rc<std::cell::RefCell<Option<qrtill::sandbox::Sandbox>>> =
        std::rc::Rc::default();
    let keep = sandbox.clone();
    let shown = eframe::run_native(
        "qrtill",
        options,
        Box::new(move |cc| {
            let started = wait_started()
                .unwrap_or_else(|| Err(CliError::Other("the till was started twice".into())))
                .and_then(|till| {
                    if till.config.providers.is_empty() {
                        Err(CliError::Usage("no provider configured".into()))
                    } else {
                        Ok(till)
                    }
                });
            let app: Box<dyn eframe::App> = match started {
                Ok(till) => {
                    let (app, demo_sandbox) = till_app(cc, till, paths, slot);
                    *keep.borrow_mut() = demo_sandbox;
                    Box::new(app)
                }
                Err(err) => {
                    // Started from a desktop icon nobody sees stderr: say it in the window.
                    qrtill::app::fonts::install(&cc.egui_ctx);
                    let app = StartError(err.to_string());
                    *failure.borrow_mut() = Some(err);
                    Box::new(app)
                }
            };
            Ok(app)
        }),
    );
    if let Err(err) = shown {
        // No window (no display, no GL): a till that could not start either says why first.
        let starting = std::mem::take(&mut *starting.borrow_mut());
        if let Some(Ok(Err(start_err))) = starting.map(|task| runtime.block_on(task)) {
            return Err(start_err);
        }
        return Err(CliError::Other(format!("cannot open the window: {err}")));
    }
    drop(sandbox);
    match failed.borrow_mut().take() {
        Some(err) => Err(err),
        None => Ok(0),
    }
}

/// The till's app on a started till: the view model from its config, the settings screen,
/// the repaint hook the service wakes the window with; and the demo sandbox, if any.
fn till_app(
    cc: &eframe::CreationContext<'_>,
    mut till: cli::Till,
    paths: &Paths,
    slot: RepaintSlot,
) -> (TillApp, Option<qrtill::sandbox::Sandbox>) {
    let ctx = cc.egui_ctx.clone();
    let _ = slot.set(Arc::new(move || ctx.request_repaint()));
    let mut state = TillState::with_providers(Vec::new());
    state.apply_config(&till.config);
    // Several people work this till: ask who is at it before the first sale.
    state.picking_operator = till.config.operators.len() > 1;
    state.demo = till.demo;
    state.notices.extend(till.warnings.iter().cloned());
    state.history.export_dir = paths.data_dir.join("exports");
    let repaint: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        if let Some(repaint) = slot.get() {
            repaint();
        }
    });
    let demo_text = till.sandbox.as_ref().map(|s| s.demo_config());
    let listener = till
        .listener_handle
        .take()
        .map(|l| (till.config.listener.clone(), l));
    let settings = qrtill::settings::SettingsHost::new(
        &paths.config,
        demo_text.as_deref().map(|text| (&till.config, text)),
        till.service.clone(),
        listener,
        repaint,
    );
    let app =
        TillApp::new(&cc.egui_ctx, state, till.service, till.events).with_sound(till.config.sound);
    let app = match settings {
        Ok(host) => app.with_settings(host),
        Err(err) => {
            tracing::warn!("settings screen unavailable: {err}");
            app
        }
    };
    (app, till.sandbox)
}

/// The till could not start (ledger in use by another till, damaged, disk full, bad config):
/// the message and a close button in the window.
struct StartError(String);

impl eframe::App for StartError {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default_margins().show(ui, |ui| {
            ui.heading("qrtill 无法启动 / qrtill cannot start");
            ui.add_space(12.0);
            ui.label(egui::RichText::new(&self.0).size(18.0));
            ui.add_space(16.0);
            if ui.button("关闭 / Close").clicked() {
                ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
            }
        });
    }
}
