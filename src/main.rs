use std::process::ExitCode;

use clap::Parser;
use paddock::cli::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon narrates; one-shot commands speak through their output.
    let default_level = match cli.command {
        Command::Serve => "info",
        _ => "warn",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }

    // Store calls run on the blocking pool and mostly wait there, for
    // the store's one writer or a database; tokio's default of 512 threads
    // only adds memory (with 256 polls in flight at 100,000 feeds it made
    // 274 threads), so a smaller pool queues them instead.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(paddock::app::BLOCKING_THREADS)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(paddock::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Config mistakes read like a compiler's: FILE:LINE:COL: message.
            match e.downcast_ref::<paddock::config::ConfigError>() {
                Some(config) => eprintln!("{config}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}
