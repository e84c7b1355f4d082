//! `stad report`: Markdown tables in the thesis' shape and PNG plots from evaluation JSONs.

use crate::args::ReportArgs;
use crate::error::Result;
use crate::progress::Console;

/// Runs `stad report`.
pub fn run(args: &ReportArgs, console: Console) -> Result<stad_viz::ReportFiles> {
    let records = stad_viz::read_records(&args.json)?;
    let files = stad_viz::write_report(&records, &args.out)?;
    console.info(format!(
        "report: {} ({} plots in {})",
        files.markdown.display(),
        files.plots.len(),
        args.out.display()
    ));
    Ok(files)
}
