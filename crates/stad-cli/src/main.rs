//! The `stad` command-line tool: `stad --help`.

use std::error::Error;
use std::process::ExitCode;

use clap::Parser;

/// Large activations are freed and allocated again every step: mimalloc, told to keep freed
/// memory (stad-alloc), reuses it, where the system allocator returns it to the kernel and
/// page-faults it back in.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: stad_alloc::StadAllocator = stad_alloc::StadAllocator;

fn main() -> ExitCode {
    let cli = stad_cli::Cli::parse();
    match stad_cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = e.to_string();
            eprintln!("error: {message}");
            let mut source = e.source();
            while let Some(s) = source {
                let text = s.to_string();
                if !message.contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                source = s.source();
            }
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}
