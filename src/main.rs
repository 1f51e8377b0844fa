//! qrtill's entry point: parse the command line, start logging and one tokio runtime, then
//! open the till window or run a subcommand.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::sync::{Arc, OnceLock};

use clap::Parser as _;
use qrtill::app::TillApp;
use qrtill::app::state::{ProviderInfo, TillState};
use qrtill::cli::{self, Cli, CliError, Command, RepaintSlot};
use qrtill::config::Paths;

fn main() {
    let args = Cli::parse();
    let gui = args.command.is_none();
    init_logging(gui);
    let code = match run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("qrtill: {err}");
            err.exit_code()
        }
    };
    std::process::exit(code);
}

fn init_logging(gui: bool) {
    // Logs go to stderr so that `--json` output on stdout stays clean.
    let default = if gui {
        "qrtill=info,warn"
    } else {
        "qrtill=warn,warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run(args: Cli) -> Result<i32, CliError> {
    let paths = Paths::resolve(args.config, args.data_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("qrtill-io")
        .enable_all()
        .build()
        .map_err(|err| CliError::Other(format!("cannot start the async runtime: {err}")))?;
    match args.command {
        None => run_window(&runtime, &paths),
        Some(Command::Charge(charge)) => runtime.block_on(cli::charge(&paths, charge)),
        Some(Command::Resume { json }) => runtime.block_on(cli::resume(&paths, json)),
        Some(Command::Status { order_no, json }) => cli::status(&paths, &order_no, json),
        Some(Command::History { date, json }) => cli::history(&paths, date.as_deref(), json),
        Some(Command::Report { date, json }) => cli::report(&paths, date.as_deref(), json),
        Some(Command::Close { json }) => cli::close(&paths, json),
        Some(Command::Closes { json }) => cli::closes(&paths, json),
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
            cli::export(&paths, &what, &out)
        }
        Some(Command::Sandbox {
            listen,
            auto_pay_after,
            order_timeout,
        }) => runtime.block_on(cli::sandbox(listen, auto_pay_after, order_timeout)),
    }
}

fn run_window(runtime: &tokio::runtime::Runtime, paths: &Paths) -> Result<i32, CliError> {
    let slot: RepaintSlot = Arc::new(OnceLock::new());
    let till = runtime.block_on(cli::start_till(paths, slot.clone()))?;
    let Some(provider) = till.config.provider(&till.config.default_provider).cloned() else {
        return Err(CliError::Usage("no provider configured".into()));
    };
    let providers = till
        .config
        .providers
        .iter()
        .map(|p| ProviderInfo {
            id: p.id().to_string(),
            name: p.display_name().to_string(),
            channels: p.channels().to_vec(),
            can_query: p.can_query(),
            browser_needed: p.payer_browser_needed(),
            account: None,
        })
        .collect();
    let mut state = TillState::with_providers(providers);
    state.switch_provider(provider.id());
    state.operator = till.config.operator.clone();
    state.max_amount = till.config.max_amount;
    state.language = till.config.language;
    state.demo = till.demo;
    state.notices.extend(till.warnings.iter().cloned());
    state.history.export_dir = paths.data_dir.join("exports");
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Glow,
        viewport: egui::ViewportBuilder::default()
            .with_title(if till.demo {
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
    eframe::run_native(
        "qrtill",
        options,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            let _ = slot.set(Arc::new(move || ctx.request_repaint()));
            Ok(Box::new(TillApp::new(
                &cc.egui_ctx,
                state,
                till.service,
                till.events,
            )))
        }),
    )
    .map_err(|err| CliError::Other(format!("cannot open the window: {err}")))?;
    Ok(0)
}
