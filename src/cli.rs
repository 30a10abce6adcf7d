//! The command line: `sluis run`, and the admin tools beside it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, EXIT_CONFIG};

#[derive(Debug, Parser)]
#[command(
    name = "sluis",
    version,
    about = "Outbound data-loss-prevention forward proxy"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy (built-in defaults unless --config is given).
    Run {
        /// TOML config file; every key is optional.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// Parses arguments and runs the command; returns the process exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => run(config),
    }
}

fn run(config_path: Option<PathBuf>) -> ExitCode {
    let config = match config_path
        .as_deref()
        .map(Config::load)
        .unwrap_or_else(|| Config::parse(None, ""))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluis: config error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    crate::logging::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluis: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("sluis: {e}");
            ExitCode::FAILURE
        }
    }
}
