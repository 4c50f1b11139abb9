//! The `faultline` command line.
//!
//! Subcommands live in their own modules; this file only parses arguments
//! and maps results to exit codes.

mod check;
mod count;
mod list;

use faultline::{replay, watch};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// faultline reads Kubernetes log streams and recognises failure signatures
/// in them: read-only volumes, pg_controldata failures, Loki WAL and push
/// errors, iSCSI and ext4 I/O errors, probe-kill restart loops.
#[derive(Debug, Parser)]
#[command(
    name = "faultline",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("FAULTLINE_COMMIT"), ")"),
    about,
    long_about = None,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate signature files, compile them, and run every example.
    ///
    /// Checks the built-in library plus every directory given with
    /// --signatures. Prints a summary; on any problem prints every problem
    /// as FILE:LINE: FIELD: message and exits 1.
    Check(SignatureArgs),
    /// List the loaded signatures: id, class, severity and source file.
    Signatures {
        #[command(flatten)]
        library: SignatureArgs,
        /// Print one JSON object per signature instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Count the lines that match any of a file of patterns (grep mode).
    ///
    /// One regular expression per line of --patterns (ripgrep -f
    /// semantics: Rust regex syntax, an empty line matches every line).
    /// Prints PATH:COUNT for each input when there are several, then the
    /// total number of matching lines as the last line of stdout. The
    /// counts equal `rg -c -f FILE`. Use - to read standard input.
    Count(count::CountArgs),
    /// Read log archives offline and report every failure signature found.
    ///
    /// Reads files, directories (recursively) and gzip-compressed files,
    /// detects each file's format, matches every line against the signature
    /// library and prints the hits in event-time order. Exit code: 0 nothing
    /// found, 1 hits found, 2 some input could not be read (the others are
    /// still reported).
    Replay(replay::ReplayArgs),
    /// Follow live logs and report failures as they are written.
    ///
    /// Follows files (--files GLOB: new files picked up, rotation and
    /// copytruncate followed, checkpoints in --state-dir) and/or standard
    /// input (-), matches every line as replay does, and prints each hit
    /// and every incident that fires or resolves, as it happens. Runs until
    /// its inputs end or SIGINT/SIGTERM.
    Watch(Box<watch::WatchArgs>),
    /// Check a `watch` config file: every problem as FILE:LINE: FIELD:
    /// message, exit 1; or ok.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Report every problem of a config file, without starting anything.
    Check {
        /// The config file.
        file: PathBuf,
    },
}

/// Where signatures come from: the built-in library plus the user's.
#[derive(Debug, Args)]
struct SignatureArgs {
    /// A directory of *.yaml signature files (or one file) to add to the
    /// built-in library; a signature with a built-in id replaces it.
    /// Repeatable.
    #[arg(long = "signatures", value_name = "DIR")]
    dirs: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    let result = match cli.command {
        Command::Check(args) => check::run(&args.dirs),
        Command::Signatures { library, json } => list::run(&library.dirs, json),
        Command::Count(args) => count::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Watch(args) => watch::run(&args, matches.subcommand_matches("watch")),
        Command::Config(ConfigCommand::Check { file }) => watch::check_config(&file),
    };
    match result {
        Ok(code) => code,
        // The reader went away (`faultline replay … | head`): stop quietly.
        Err(err)
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("faultline: {err:#}");
            ExitCode::from(2)
        }
    }
}
