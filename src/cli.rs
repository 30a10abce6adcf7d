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
    /// Audit log tools.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain of audit files (rotated files oldest first, the active file last).
    /// Exit 0: intact; 1: broken (the line and why are printed); 2: unreadable.
    Verify {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Find events whose fingerprints match a value (a BSN, IBAN or card number), without the
    /// log holding the value. Exit 0: found; 1: not found; 2: error.
    Find {
        /// The value as you have it; spaces, dots and dashes do not matter.
        #[arg(long)]
        value: String,
        /// bsn, iban or card; every kind is tried when left out.
        #[arg(long)]
        kind: Option<String>,
        /// The fingerprint key (`audit.fingerprint_key_file`).
        #[arg(long, default_value = "secrets/fingerprint.key")]
        key_file: PathBuf,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Parses arguments and runs the command; returns the process exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => run(config),
        Command::Audit(cmd) => audit(cmd),
    }
}

fn audit(cmd: AuditCommand) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let status = match cmd {
        AuditCommand::Verify { files } => crate::audit::cli::verify(&files, &mut out),
        AuditCommand::Find {
            value,
            kind,
            key_file,
            files,
        } => crate::audit::cli::find(&value, kind.as_deref(), &key_file, &files, &mut out),
    };
    ExitCode::from(u8::try_from(status).unwrap_or(2))
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
