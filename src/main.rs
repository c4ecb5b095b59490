//! The `runner` command line: parse, dispatch, map the result to an exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use runner::cli::{self, check::CheckArgs, exit};

/// Run deep-learning experiments declared in TOML.
#[derive(Parser, Debug)]
#[command(
    name = "runner",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check experiment files: infer every shape, report every mistake, print layer tables.
    Check(CheckArgs),
    /// Print the JSON Schema for experiment files.
    Schema,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Check(args)) => cli::check::run(&args),
        Some(Command::Schema) => {
            print!("{}", cli::schema::schema_json());
            Ok(exit::OK)
        }
        None => {
            eprintln!("usage: runner check FILE...   (see `runner --help`)");
            Ok(exit::ERROR)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::ERROR as u8)
        }
    }
}
