//! The one-click conversion offered for images a CRM refuses (WebP, BMP, TIFF): decoded with
//! `image` and written as PNG, which keeps every pixel. Only ever run when the user asks.

use std::path::{Path, PathBuf};

use attache_core::upload::ConvertTarget;

use super::inspect::{display_name, hash_file};

/// Decoded images larger than this many pixels are refused (a decompression bomb, or a scan no
/// one meant to attach at that size).
const MAX_PIXELS: u64 = 200_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{name} could not be read: {reason}")]
    Unreadable { name: String, reason: String },
    #[error("{name} is too large to convert ({width}×{height} pixels)")]
    TooLarge {
        name: String,
        width: u32,
        height: u32,
    },
    #[error("the converted copy of {name} could not be written: {reason}")]
    Write { name: String, reason: String },
}

/// Converts `source` to `target` in a folder of its own under `out_dir` (keyed by the content
/// hash, so two files of the same name never collide and converting twice reuses the copy);
/// the copy keeps the original's name with the new extension.
pub fn convert_image(
    source: &Path,
    target: ConvertTarget,
    out_dir: &Path,
) -> Result<PathBuf, ConvertError> {
    let name = display_name(source);
    let unreadable = |reason: String| ConvertError::Unreadable {
        name: name.clone(),
        reason,
    };
    let hash = hash_file(source).map_err(|e| unreadable(e.to_string()))?;
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let folder = out_dir.join(&hash[..16]);
    let output = folder.join(format!("{stem}.{}", target.extension()));
    if output.is_file() {
        return Ok(output);
    }

    let reader = image::ImageReader::open(source)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| unreadable(e.to_string()))?;
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| unreadable(e.to_string()))?;
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ConvertError::TooLarge {
            name,
            width,
            height,
        });
    }
    let image = image::ImageReader::open(source)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| unreadable(e.to_string()))?
        .decode()
        .map_err(|e| unreadable(e.to_string()))?;

    let write = |reason: String| ConvertError::Write {
        name: name.clone(),
        reason,
    };
    std::fs::create_dir_all(&folder).map_err(|e| write(e.to_string()))?;
    // Written beside and renamed into place: a half-written copy is never picked up.
    let partial = folder.join(format!(".{stem}.partial"));
    let format = match target {
        ConvertTarget::Png => image::ImageFormat::Png,
        ConvertTarget::Jpeg => image::ImageFormat::Jpeg,
    };
    let result = match target {
        // JPEG has no alpha channel.
        ConvertTarget::Jpeg => {
            image::DynamicImage::ImageRgb8(image.to_rgb8()).save_with_format(&partial, format)
        }
        ConvertTarget::Png => image.save_with_format(&partial, format),
    };
    result.map_err(|e| write(e.to_string()))?;
    std::fs::rename(&partial, &output).map_err(|e| write(e.to_string()))?;
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> image::RgbImage {
        image::RgbImage::from_fn(37, 21, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 11) as u8, ((x + y) * 3) as u8])
        })
    }

    #[test]
    fn bmp_and_tiff_become_png_with_every_pixel_kept() {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["bmp", "tiff", "webp"] {
            let source = dir.path().join(format!("scan.{ext}"));
            sample().save(&source).unwrap();
            let png = convert_image(&source, ConvertTarget::Png, &dir.path().join("out")).unwrap();
            assert_eq!(png.file_name().unwrap(), "scan.png");
            assert_eq!(image::open(&png).unwrap().to_rgb8(), sample(), "{ext}");
            // Converting again reuses the copy.
            assert_eq!(
                convert_image(&source, ConvertTarget::Png, &dir.path().join("out")).unwrap(),
                png
            );
        }
    }

    #[test]
    fn broken_images_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("broken.bmp");
        std::fs::write(&source, b"BM not really").unwrap();
        let err = convert_image(&source, ConvertTarget::Png, dir.path()).unwrap_err();
        assert!(matches!(err, ConvertError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("broken.bmp"));
    }
}
