//! The `stad` command-line tool, as a library: every command is a function here, so the
//! binary (`src/main.rs`) only parses arguments and prints errors, and `stad demo` runs the
//! same code as the commands it chains.
//!
//! | command | does |
//! |---|---|
//! | `stad train` | trains a method, calibrates the threshold on held-out good images, writes a run folder ([`run_dir`]) |
//! | `stad eval` | image/pixel AUROC, AU-PRO, F1, Dice, IoU, per-defect AUROC of a run on a test set, as JSON ([`stad_viz::EvalRecord`]) |
//! | `stad predict` | per image a JSON line, a heat-map overlay and a mask at the original size ([`render`]) |
//! | `stad report` | Markdown tables and PNG plots from evaluation JSONs ([`stad_viz`]) |
//! | `stad demo` | all of the above on synthetic data ([`commands::demo`]) |
//! | `stad benchmark` | train and evaluate every method on every MVTec AD category of a root, resumably, beside the thesis' published table ([`commands::benchmark`]) |
//! | `stad selftest` | a backend checked against the CPU reference, and its speed ([`commands::selftest`]) |
//!
//! Errors are [`CliError`]s: the library's typed errors plus the tool's own checks, each with
//! a [`hint`](CliError::hint) on how to fix it.

pub mod args;
pub mod backend;
pub mod commands;
pub mod data;
pub mod error;
pub mod paths;
pub mod progress;
pub mod render;
pub mod run_dir;

pub use args::Cli;
pub use error::{CliError, Result};

use args::Command;
use progress::Console;

/// Runs the command `cli` names.
pub fn run(cli: Cli) -> Result<()> {
    let console = Console { quiet: cli.quiet };
    match &cli.command {
        Command::Train(args) => commands::train::run(args, console).map(drop),
        Command::Eval(args) => commands::eval::run(args, console).map(drop),
        Command::Predict(args) => {
            let stdout = std::io::stdout();
            commands::predict::run(args, console, &mut stdout.lock()).map(drop)
        }
        Command::Report(args) => commands::report::run(args, console).map(drop),
        Command::Demo(args) => commands::demo::run(args, console).map(drop),
        Command::Selftest(args) => commands::selftest::run(args, console).map(drop),
        Command::Benchmark(args) => commands::benchmark::run(args, console).map(drop),
    }
}
