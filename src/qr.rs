//! QR encoding (the `qrcode` crate) into the forms the till needs: a module matrix for the
//! screen, the picture the screen uploads ([`ShownQr`], made once per order off the UI
//! thread), Unicode blocks for the terminal, and a PNG for the sandbox's `imgtext`.
//!
//! Invariant: every QR carries a quiet zone of four modules, which scanners need.

use qrcode::render::unicode::Dense1x2;
use qrcode::{Color, QrCode};

use crate::model::QrPayload;

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

/// A QR's picture as RGBA pixels, ready to upload as a texture. Only this module makes one,
/// so its bytes always fit its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrPicture {
    size: [usize; 2],
    /// `size[0] * size[1] * 4` bytes, row by row, not premultiplied.
    rgba: Vec<u8>,
}

impl QrPicture {
    /// Width and height in pixels.
    pub fn size(&self) -> [usize; 2] {
        self.size
    }

    /// The pixels, 4 bytes each (RGBA, not premultiplied), row by row.
    pub fn rgba(&self) -> &[u8] {
        &self.rgba
    }
}

/// A QR as the till shows it: the provider's payload and its picture (or why there is none).
///
/// Made by the service on a blocking thread when the QR becomes known: encoding picks the
/// best of eight masks and takes about a millisecond, which must not be spent in a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShownQr {
    /// What the provider gave.
    pub payload: QrPayload,
    /// The picture: one pixel per module for text (scaled up sharp by the GPU), or the
    /// provider's decoded image; else why it cannot be shown, for staff.
    pub picture: Result<QrPicture, String>,
}

impl ShownQr {
    /// Encodes (text) or decodes (image) the payload.
    pub fn new(payload: QrPayload) -> ShownQr {
        let picture = picture_of(&payload);
        ShownQr { payload, picture }
    }
}

fn picture_of(payload: &QrPayload) -> Result<QrPicture, String> {
    match payload {
        QrPayload::Text(text) => {
            let matrix = encode(text).map_err(|err| err.to_string())?;
            let rgba = matrix
                .dark
                .iter()
                .flat_map(|&dark| {
                    let v = if dark { 0 } else { 255 };
                    [v, v, v, 255]
                })
                .collect();
            Ok(QrPicture {
                size: [matrix.size, matrix.size],
                rgba,
            })
        }
        QrPayload::Image(bytes) => {
            let decoded = image::load_from_memory(bytes)
                .map_err(|err| format!("QR picture unreadable: {err}"))?;
            let rgba = decoded.to_rgba8();
            Ok(QrPicture {
                size: [rgba.width() as usize, rgba.height() as usize],
                rgba: rgba.into_raw(),
            })
        }
    }
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

    #[test]
    fn shown_qr_pictures_text_and_images_alike() {
        let text = ShownQr::new(QrPayload::Text("https://qr.alipay.com/abc".into()));
        let matrix = encode("https://qr.alipay.com/abc").unwrap_or(QrMatrix {
            size: 0,
            dark: vec![],
        });
        let picture = text.picture.clone().unwrap_or(QrPicture {
            size: [0, 0],
            rgba: vec![],
        });
        assert_eq!(picture.size, [matrix.size, matrix.size]);
        assert_eq!(picture.rgba.len(), matrix.size * matrix.size * 4);
        // The finder pattern's dark corner is black, the quiet zone white, both opaque.
        let corner = (QUIET_ZONE * matrix.size + QUIET_ZONE) * 4;
        assert_eq!(
            picture.rgba.get(corner..corner + 4),
            Some(&[0, 0, 0, 255][..])
        );
        assert_eq!(picture.rgba.get(0..4), Some(&[255, 255, 255, 255][..]));

        // The provider's picture of the same QR, scaled 3×: decoded to the same modules.
        let png = to_png("https://qr.alipay.com/abc", 3).unwrap_or_default();
        let image = ShownQr::new(QrPayload::Image(png));
        let decoded = image.picture.unwrap_or(QrPicture {
            size: [0, 0],
            rgba: vec![],
        });
        assert_eq!(decoded.size, [matrix.size * 3, matrix.size * 3]);
        let pixel = |x: usize, y: usize| {
            let at = (y * decoded.size[0] + x) * 4;
            decoded.rgba.get(at).copied()
        };
        assert_eq!(pixel(QUIET_ZONE * 3 + 1, QUIET_ZONE * 3 + 1), Some(0));
        assert_eq!(pixel(1, 1), Some(255));

        let broken = ShownQr::new(QrPayload::Image(b"not a picture".to_vec()));
        assert!(
            broken
                .picture
                .is_err_and(|why| why.starts_with("QR picture unreadable"))
        );
    }
}
