//! The `stad` command-line tool.
//!
//! Not built yet: the train / eval / predict / report / demo commands are the next step of
//! the project. Until then the library's examples (`cargo run --release --example stfpm`,
//! `ensemble`, `simple_student`, `teacher`) are the way to run stad.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "stad {}: the command-line tool is not built yet; run the examples instead, e.g.\n  \
         cargo run --release --example stfpm -- [MVTEC_CATEGORY_DIR] [EPOCHS] [IMAGE_SIZE]",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
