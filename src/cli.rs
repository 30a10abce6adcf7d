//! The command line: `sluis run`, and the admin tools beside it.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

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
    /// Validate the policy files and print a summary. Exit 0: valid; 2: errors (each names
    /// file, line and key).
    Check {
        /// Policy directory.
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
    /// Show what the policy decides for a request, and why the rules above the deciding one did
    /// not match. Exit 0: it goes through; 1: it is blocked; 2: error.
    Explain {
        #[arg(long, default_value = "GET")]
        method: String,
        #[arg(long)]
        url: String,
        /// Files to inspect as if they were uploaded with the request (multipart).
        #[arg(long = "file")]
        files: Vec<PathBuf>,
        /// The client address the rules see.
        #[arg(long, default_value = "127.0.0.1")]
        client: IpAddr,
        #[arg(long, default_value = "policies")]
        policy: PathBuf,
    },
    /// Inspect files (or stdin as `-`) with the proxy's engine and print one report per file.
    Scan {
        /// One JSON object per line (schema in docs/scan.md).
        #[arg(long)]
        json: bool,
        /// Policy directory whose markings and label tables to use (built-in ones when absent).
        #[arg(long, default_value = "policies")]
        policy: PathBuf,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// The interception CA.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Audit log tools.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
enum CaCommand {
    /// Create a CA (ca.pem + ca.key, key mode 0600) in DIR; refuses to overwrite one.
    Init {
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
    },
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
        Command::Check { dir } => {
            let status = crate::policy::cli::check(&dir, &mut std::io::stdout().lock());
            exit(status)
        }
        Command::Explain {
            method,
            url,
            files,
            client,
            policy,
        } => {
            let mut out = std::io::stdout().lock();
            match crate::policy::cli::explain(&policy, &method, &url, &files, client, &mut out) {
                Ok(status) => exit(status),
                Err(e) => fail(&e),
            }
        }
        Command::Scan {
            json,
            policy,
            paths,
        } => scan(&paths, json, &policy),
        Command::Ca(CaCommand::Init { dir }) => {
            match crate::tls::init_command(&dir, &crate::tls::CaOptions::default()) {
                Ok(message) => {
                    let _ = writeln!(std::io::stdout().lock(), "{message}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Audit(cmd) => audit(cmd),
    }
}

/// `sluis scan` uses the policy's markings and label tables when there is a policy to read.
fn scan(paths: &[PathBuf], json: bool, policy_dir: &Path) -> ExitCode {
    let engine = if policy_dir.is_dir() {
        match crate::policy::Policy::load(policy_dir) {
            Ok(p) => p.engine().clone(),
            Err(e) => return fail(&e),
        }
    } else {
        match crate::inspect::Engine::new(crate::inspect::EngineConfig::default()) {
            Ok(e) => Arc::new(e),
            Err(e) => return fail(&e),
        }
    };
    match crate::scan::run(paths, json, engine, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn exit(status: i32) -> ExitCode {
    ExitCode::from(u8::try_from(status).unwrap_or(2))
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("sluis: {e}");
    ExitCode::from(2)
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
    // Connections are accepted and served on threads of their own (`proxy::Shards`); this one
    // runs the admin listener, signals and reloads, which one thread keeps up with.
    let runtime = match tokio::runtime::Builder::new_current_thread()
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
            ExitCode::from(e.exit_code())
        }
    }
}
