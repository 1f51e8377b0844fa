//! QR encoding (the `qrcode` crate) into the forms the till needs: a module matrix for the
//! screen, Unicode blocks for the terminal, and a PNG for the sandbox's `imgtext`.
//!
//! Invariant: every QR carries a quiet zone of four modules, which scanners need.

use qrcode::render::unicode::Dense1x2;
use qrcode::{Color, QrCode};

/// The quiet zone, in modules, on each side.
pub const QUIET_ZONE: usize = 4;

/// A QR's dark/light modules, quiet zone included, row by row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrMatrix {
    /// Modules per side, quiet zone included.
    pub size: usize,
    /// `true` = dark, `size * size` entries.
    pub dark: Vec<bool>,
}

/// Text that cannot be a QR (too long).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot make a QR of this payload: {0}")]
pub struct QrError(String);

/// Encodes text as a QR matrix with its quiet zone.
///
/// # Errors
/// [`QrError`] when the text is too long for a QR.
pub fn encode(text: &str) -> Result<QrMatrix, QrError> {
    let code = QrCode::new(text.as_bytes()).map_err(|err| QrError(err.to_string()))?;
    let width = code.width();
    let size = width + 2 * QUIET_ZONE;
    let mut dark = vec![false; size * size];
    for (index, color) in code.to_colors().into_iter().enumerate() {
        let (y, x) = (index / width + QUIET_ZONE, index % width + QUIET_ZONE);
        if let Some(cell) = dark.get_mut(y * size + x) {
            *cell = color == Color::Dark;
        }
    }
    Ok(QrMatrix { size, dark })
}

/// The QR drawn with Unicode half blocks for a terminal (dark on light).
///
/// # Errors
/// [`QrError`] when the text is too long for a QR.
pub fn to_terminal(text: &str) -> Result<String, QrError> {
    let code = QrCode::new(text.as_bytes()).map_err(|err| QrError(err.to_string()))?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// A PNG of the QR, `scale` pixels per module.
///
/// # Errors
/// [`QrError`] when the text is too long or the PNG cannot be written.
pub fn to_png(text: &str, scale: u32) -> Result<Vec<u8>, QrError> {
    let matrix = encode(text)?;
    let side = u32::try_from(matrix.size).map_err(|err| QrError(err.to_string()))? * scale;
    let image = image::GrayImage::from_fn(side, side, |x, y| {
        let index = (y / scale) as usize * matrix.size + (x / scale) as usize;
        let dark = matrix.dark.get(index).copied().unwrap_or(false);
        image::Luma([if dark { 0 } else { 255 }])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .map_err(|err| QrError(err.to_string()))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_zone_is_light() {
        let m = encode("https://qr.alipay.com/abc").unwrap_or(QrMatrix {
            size: 0,
            dark: vec![],
        });
        assert!(m.size > 2 * QUIET_ZONE);
        assert!(m.dark.iter().take(m.size * QUIET_ZONE).all(|d| !d));
        // The finder pattern's corner is dark.
        assert_eq!(m.dark.get(QUIET_ZONE * m.size + QUIET_ZONE), Some(&true));
        assert!(to_png("x", 2).is_ok_and(|png| png.starts_with(b"\x89PNG")));
    }
}
