//! The font of the plots: DejaVu Sans, compiled into the crate (no system font is used).

use std::sync::OnceLock;

use plotters::style::FontStyle;

use crate::error::{Result, VizError};

/// DejaVu Sans (licence: `fonts/DejaVu-LICENSE.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// The font families the plots may ask for; all of them get DejaVu Sans.
const FAMILIES: [&str; 3] = ["sans-serif", "serif", "monospace"];

/// Registers the embedded DejaVu Sans with plotters (its `ab_glyph` font table, which is
/// process-wide) as the `sans-serif`, `serif` and `monospace` families, once per process.
///
/// Every plotting function of this crate calls it first; calling it again is free. It is
/// thread-safe (a [`OnceLock`]; plotters guards its table with a lock).
///
/// # Errors
/// [`VizError::Plot`] if the embedded font cannot be parsed (it always can).
pub fn register_fonts() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            for family in FAMILIES {
                plotters::style::register_font(family, FontStyle::Normal, DEJAVU_SANS)
                    .map_err(|_| format!("the embedded font cannot be used as {family}"))?;
            }
            Ok(())
        })
        .clone()
        .map_err(VizError::Plot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::style::IntoFont;

    #[test]
    fn registered_families_lay_out_text() {
        register_fonts().unwrap();
        register_fonts().unwrap();
        for family in FAMILIES {
            let font = (family, 20).into_font();
            let (w, h) = font.box_size("threshold").unwrap();
            assert!(w > 40 && h > 5, "{family}: {w}x{h}");
            // Other styles fall back to the normal face.
            let bold = (family, 20, FontStyle::Bold).into_font();
            assert_eq!(bold.box_size("threshold").unwrap(), (w, h));
        }
    }
}
