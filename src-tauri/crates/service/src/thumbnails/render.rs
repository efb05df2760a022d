//! Thumbnails of photos and of PDF first pages, from bytes on disk, with no window and no
//! network: used for the grid, the larger preview, files waiting in the upload tray, and
//! `attache thumbnail`.
//!
//! - JPEG is decoded at reduced scale (DCT scaling: 1/2, 1/4 or 1/8 of the size, whichever
//!   still covers the thumbnail), the way libvips's shrink-on-load does, so a 24-megapixel photo
//!   never exists in memory at full size; EXIF orientation is applied. libjpeg-turbo (through
//!   `turbojpeg`) decodes, as in libvips; what it refuses (CMYK, odd sampling) goes to the pure
//!   Rust `jpeg-decoder`.
//! - Other images (PNG, GIF, WebP, BMP, TIFF) are decoded by `image` under dimension and memory
//!   limits (decompression bombs are refused before decoding).
//! - PDF first pages are rasterised by `hayro` (pure Rust) straight at the thumbnail's scale.
//! - Downscaling is `fast_image_resize` (SIMD, Lanczos3). Photos are written as JPEG, pages and
//!   images with transparency as PNG.
//!
//! Every failure is a [`ThumbError`] with a reason; callers show the type icon instead. A time
//! limit per render belongs to the caller (a render runs on a blocking thread).

use std::io::Cursor;
use std::path::Path;

use fast_image_resize::images::Image;
use fast_image_resize::{PixelType, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};

/// The grid's size (long side, pixels).
pub const GRID_SIZE: u32 = 256;
/// The larger preview's size.
pub const PREVIEW_SIZE: u32 = 1024;

/// Images with more pixels than this are not decoded (a 24 MP photo is 24 M; a decompression
/// bomb claims billions).
const MAX_PIXELS: u64 = 120_000_000;
/// Memory `image` may allocate while decoding one picture.
const MAX_DECODE_BYTES: u64 = 512 << 20;
/// Images inside a PDF with more pixels than this are refused before the page is drawn: a
/// 600 dpi A4 scan is 35 M; a PDF bomb declares billions in a few kilobytes of zeros.
const MAX_PDF_IMAGE_PIXELS: u64 = 64_000_000;
/// Files larger than this are not read for a thumbnail (the type icon shows instead).
pub const MAX_SOURCE_BYTES: u64 = 256 << 20;
/// PDF pages larger than this (points, either side) are refused: no real document is.
const MAX_PAGE_POINTS: f32 = 20_000.0;
/// JPEG quality of photo thumbnails.
const JPEG_QUALITY: u8 = 82;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// `image/jpeg` or `image/png`.
    pub mime: &'static str,
}

impl Thumbnail {
    pub fn extension(&self) -> &'static str {
        if self.mime == "image/png" {
            "png"
        } else {
            "jpg"
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThumbError {
    #[error("the file is empty")]
    Empty,
    #[error("no preview for {0} files")]
    Unsupported(String),
    #[error("the picture claims {width}×{height} pixels, more than Attaché decodes")]
    TooLarge { width: u64, height: u64 },
    #[error("the file is {} MB, too large to preview", bytes / 1_000_000)]
    FileTooLarge { bytes: u64 },
    #[error("the PDF is password-protected")]
    Encrypted,
    #[error("the PDF has no pages")]
    NoPages,
    #[error("the file is damaged or truncated: {0}")]
    Corrupt(String),
    #[error("the file could not be read: {0}")]
    Io(String),
}

/// What a file is, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Jpeg,
    Raster(ImageFormat),
    Pdf,
}

fn kind_of(bytes: &[u8]) -> Result<Kind, ThumbError> {
    if bytes.is_empty() {
        return Err(ThumbError::Empty);
    }
    if bytes.starts_with(b"%PDF-")
        || bytes
            .get(..1024)
            .is_some_and(|head| head.windows(5).any(|w| w == b"%PDF-"))
    {
        return Ok(Kind::Pdf);
    }
    match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => Ok(Kind::Jpeg),
        Ok(
            f @ (ImageFormat::Png
            | ImageFormat::Gif
            | ImageFormat::WebP
            | ImageFormat::Bmp
            | ImageFormat::Tiff),
        ) => Ok(Kind::Raster(f)),
        Ok(other) => Err(ThumbError::Unsupported(format!("{other:?}").to_uppercase())),
        Err(_) => Err(ThumbError::Unsupported(
            infer::get(bytes)
                .map(|t| t.extension().to_uppercase())
                .unwrap_or_else(|| "this kind of".into()),
        )),
    }
}

/// A thumbnail of the file at `path`, at most `max_side` pixels on its long side (never
/// enlarged).
pub fn render_file(path: &Path, max_side: u32) -> Result<Thumbnail, ThumbError> {
    use std::io::Read;
    let io = |e: std::io::Error| ThumbError::Io(e.to_string());
    let file = std::fs::File::open(path).map_err(io)?;
    let announced = file.metadata().map_err(io)?.len();
    if announced > MAX_SOURCE_BYTES {
        return Err(ThumbError::FileTooLarge { bytes: announced });
    }
    // Read once, never past the limit, even if the file grows meanwhile.
    let mut bytes = Vec::with_capacity(announced as usize);
    file.take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(ThumbError::FileTooLarge {
            bytes: bytes.len() as u64,
        });
    }
    render_bytes(std::borrow::Cow::Owned(bytes), max_side)
}

/// A thumbnail of `bytes` (see [`render_file`]).
pub fn render(bytes: &[u8], max_side: u32) -> Result<Thumbnail, ThumbError> {
    render_bytes(std::borrow::Cow::Borrowed(bytes), max_side)
}

/// Bytes read for the purpose are parsed in place; a PDF is copied only from borrowed bytes.
fn render_bytes(bytes: std::borrow::Cow<'_, [u8]>, max_side: u32) -> Result<Thumbnail, ThumbError> {
    let max_side = max_side.clamp(16, 4096);
    match kind_of(&bytes)? {
        Kind::Jpeg => encode_photo(jpeg(&bytes, max_side)?, max_side),
        Kind::Raster(format) => {
            let image = raster(&bytes, format)?;
            if image.color().has_alpha() {
                encode_png(shrink_rgba(image.to_rgba8(), max_side)?)
            } else {
                encode_photo(image.to_rgb8(), max_side)
            }
        }
        Kind::Pdf => encode_png(shrink_rgba(
            pdf_first_page(bytes.into_owned(), max_side)?,
            max_side,
        )?),
    }
}

/// Fits `width × height` into `max_side`, keeping the aspect ratio (at least 1 pixel).
fn fit(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    if width <= max_side && height <= max_side {
        return (width.max(1), height.max(1));
    }
    let scale = max_side as f64 / width.max(height) as f64;
    (
        ((width as f64 * scale).round() as u32).max(1),
        ((height as f64 * scale).round() as u32).max(1),
    )
}

fn jpeg(bytes: &[u8], max_side: u32) -> Result<RgbImage, ThumbError> {
    let corrupt = |e: jpeg_decoder::Error| ThumbError::Corrupt(e.to_string());
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    // Headers only (dimensions, EXIF): cheap, and the same checks whichever decoder runs.
    decoder.read_info().map_err(corrupt)?;
    let info = decoder
        .info()
        .ok_or_else(|| ThumbError::Corrupt("no JPEG header".into()))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    check_pixels(width as u64, height as u64)?;
    let (want_w, want_h) = fit(width, height, max_side);
    let orientation = decoder.exif_data().and_then(Orientation::from_exif_chunk);
    if let Some(rgb) = turbo_jpeg(bytes, want_w, want_h) {
        let mut image = DynamicImage::ImageRgb8(rgb);
        if let Some(o) = orientation {
            image.apply_orientation(o);
        }
        return Ok(image.to_rgb8());
    }
    // The decoder picks the smallest DCT scale whose output still covers the request.
    let (w, h) = decoder
        .scale(want_w as u16, want_h as u16)
        .map_err(corrupt)?;
    let pixels = decoder.decode().map_err(corrupt)?;
    let (w, h) = (u32::from(w), u32::from(h));
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => RgbImage::from_raw(w, h, pixels),
        jpeg_decoder::PixelFormat::L8 => {
            image::GrayImage::from_raw(w, h, pixels).map(|g| DynamicImage::ImageLuma8(g).to_rgb8())
        }
        jpeg_decoder::PixelFormat::CMYK32 => {
            // Adobe CMYK JPEGs are stored inverted.
            let rgb: Vec<u8> = pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = u16::from(p[3]);
                    [0, 1, 2].map(|i| ((u16::from(p[i]) * k) / 255) as u8)
                })
                .collect();
            RgbImage::from_raw(w, h, rgb)
        }
        jpeg_decoder::PixelFormat::L16 => {
            let gray: Vec<u8> = pixels.chunks_exact(2).map(|p| p[0]).collect();
            image::GrayImage::from_raw(w, h, gray).map(|g| DynamicImage::ImageLuma8(g).to_rgb8())
        }
    }
    .ok_or_else(|| ThumbError::Corrupt("the JPEG decoded to fewer pixels than it claims".into()))?;
    let mut image = DynamicImage::ImageRgb8(rgb);
    if let Some(o) = orientation {
        image.apply_orientation(o);
    }
    Ok(image.to_rgb8())
}

/// libjpeg-turbo at the smallest DCT scale that still covers `want_w` × `want_h`; `None` when it
/// cannot (the caller falls back to `jpeg-decoder`, which also gives the error's reason).
fn turbo_jpeg(bytes: &[u8], want_w: u32, want_h: u32) -> Option<RgbImage> {
    use turbojpeg::{Decompressor, Image as TjImage, PixelFormat, ScalingFactor};
    let mut d = Decompressor::new().ok()?;
    let header = d.read_header(bytes).ok()?;
    let scale = [
        ScalingFactor::ONE_EIGHTH,
        ScalingFactor::ONE_QUARTER,
        ScalingFactor::ONE_HALF,
        ScalingFactor::ONE,
    ]
    .into_iter()
    .find(|s| {
        let out = header.scaled(*s);
        out.width as u32 >= want_w && out.height as u32 >= want_h
    })?;
    let out = header.scaled(scale);
    d.set_scaling_factor(scale).ok()?;
    let mut image = TjImage {
        pixels: vec![0u8; 3 * out.width * out.height],
        width: out.width,
        pitch: 3 * out.width,
        height: out.height,
        format: PixelFormat::RGB,
    };
    d.decompress(bytes, image.as_deref_mut()).ok()?;
    RgbImage::from_raw(out.width as u32, out.height as u32, image.pixels)
}

fn check_pixels(width: u64, height: u64) -> Result<(), ThumbError> {
    if width * height > MAX_PIXELS || width == 0 || height == 0 {
        return Err(ThumbError::TooLarge { width, height });
    }
    Ok(())
}

fn raster(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage, ThumbError> {
    let (width, height) = image::ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| ThumbError::Corrupt(e.to_string()))?;
    check_pixels(u64::from(width), u64::from(height))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => ThumbError::TooLarge {
            width: width.into(),
            height: height.into(),
        },
        other => ThumbError::Corrupt(other.to_string()),
    })
}

fn pdf_first_page(bytes: Vec<u8>, max_side: u32) -> Result<RgbaImage, ThumbError> {
    use hayro::hayro_interpret::InterpreterSettings;
    use hayro::hayro_syntax::{LoadPdfError, Pdf};
    use hayro::vello_cpu::color::palette::css::WHITE;

    let pdf = Pdf::new(bytes).map_err(|e| match e {
        LoadPdfError::Decryption(_) => ThumbError::Encrypted,
        LoadPdfError::Invalid => ThumbError::Corrupt("not a readable PDF".into()),
    })?;
    let pages = pdf.pages();
    let page = pages.first().ok_or(ThumbError::NoPages)?;
    pdf_images_within_limits(&pdf, page)?;
    let (width, height) = page.render_dimensions();
    if !(width.is_finite() && height.is_finite())
        || width < 1.0
        || height < 1.0
        || width.max(height) > MAX_PAGE_POINTS
    {
        return Err(ThumbError::Corrupt(format!(
            "a first page of {width}×{height} points"
        )));
    }
    // hayro truncates the pixel size; aim a hair above so the long side comes out whole.
    let scale = (max_side as f32 + 0.99) / width.max(height);
    let cache = hayro::RenderCache::new();
    let pixmap = hayro::render(
        page,
        &cache,
        &InterpreterSettings::default(),
        &hayro::RenderSettings::default(),
        &hayro::PixmapSettings {
            x_scale: scale,
            y_scale: scale,
            bg_color: WHITE,
        },
    );
    let (w, h) = (u32::from(pixmap.width()), u32::from(pixmap.height()));
    // The white background makes every pixel opaque, so premultiplied equals straight alpha.
    RgbaImage::from_raw(w, h, pixmap.data_as_u8_slice().to_vec())
        .ok_or_else(|| ThumbError::Corrupt("the page rendered to an empty picture".into()))
}

/// hayro decodes an image at its full size whatever scale it is drawn at, so every image the
/// file defines (XObjects, their soft masks) and every inline image on the first page is
/// measured first; one past [`MAX_PDF_IMAGE_PIXELS`] refuses the render before any is decoded.
/// (Inline images inside form XObjects are not reached by this look; they are rare and
/// limited by the file size.)
fn pdf_images_within_limits(
    pdf: &hayro::hayro_syntax::Pdf,
    page: &hayro::hayro_syntax::page::Page<'_>,
) -> Result<(), ThumbError> {
    use hayro::hayro_syntax::content::ops::TypedInstruction;
    use hayro::hayro_syntax::object::dict::keys::{H, HEIGHT, IMAGE, SUBTYPE, W, WIDTH};
    use hayro::hayro_syntax::object::{Dict, Name, Object};

    let check = |dict: &Dict<'_>| -> Result<(), ThumbError> {
        let side = |short: &[u8], long: &[u8]| {
            dict.get::<f64>(long)
                .or_else(|| dict.get::<f64>(short))
                .unwrap_or(0.0)
                .max(0.0) as u64
        };
        let (width, height) = (side(W, WIDTH), side(H, HEIGHT));
        if width.saturating_mul(height) > MAX_PDF_IMAGE_PIXELS {
            return Err(ThumbError::TooLarge { width, height });
        }
        Ok(())
    };
    for object in pdf.objects() {
        if let Object::Stream(stream) = object {
            let dict = stream.dict();
            if dict
                .get::<Name<'_>>(SUBTYPE)
                .is_some_and(|n| n.as_ref() == IMAGE)
            {
                check(dict)?;
            }
        }
    }
    let mut ops = page.typed_operations();
    while let Some(op) = ops.next() {
        if let TypedInstruction::InlineImage(image) = op {
            check(image.0.dict())?;
        }
    }
    Ok(())
}

fn resize(src: Image<'_>, max_side: u32, pixel_type: PixelType) -> Result<Vec<u8>, ThumbError> {
    let (w, h) = fit(src.width(), src.height(), max_side);
    let mut dst = Image::new(w, h, pixel_type);
    Resizer::new()
        .resize(&src, &mut dst, &ResizeOptions::new())
        .map_err(|e| ThumbError::Corrupt(format!("resizing: {e}")))?;
    Ok(dst.into_vec())
}

fn shrink_rgb(image: RgbImage, max_side: u32) -> Result<RgbImage, ThumbError> {
    let (w, h) = image.dimensions();
    if w <= max_side && h <= max_side {
        return Ok(image);
    }
    let src = Image::from_vec_u8(w, h, image.into_raw(), PixelType::U8x3)
        .map_err(|e| ThumbError::Corrupt(e.to_string()))?;
    let (tw, th) = fit(w, h, max_side);
    RgbImage::from_raw(tw, th, resize(src, max_side, PixelType::U8x3)?)
        .ok_or_else(|| ThumbError::Corrupt("resize".into()))
}

fn shrink_rgba(image: RgbaImage, max_side: u32) -> Result<RgbaImage, ThumbError> {
    let (w, h) = image.dimensions();
    if w <= max_side && h <= max_side {
        return Ok(image);
    }
    let src = Image::from_vec_u8(w, h, image.into_raw(), PixelType::U8x4)
        .map_err(|e| ThumbError::Corrupt(e.to_string()))?;
    let (tw, th) = fit(w, h, max_side);
    RgbaImage::from_raw(tw, th, resize(src, max_side, PixelType::U8x4)?)
        .ok_or_else(|| ThumbError::Corrupt("resize".into()))
}

fn encode_photo(image: RgbImage, max_side: u32) -> Result<Thumbnail, ThumbError> {
    let image = shrink_rgb(image, max_side)?;
    let (width, height) = image.dimensions();
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
        .encode_image(&image)
        .map_err(|e| ThumbError::Io(e.to_string()))?;
    Ok(Thumbnail {
        bytes,
        width,
        height,
        mime: "image/jpeg",
    })
}

fn encode_png(image: RgbaImage) -> Result<Thumbnail, ThumbError> {
    let (width, height) = image.dimensions();
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|e| ThumbError::Io(e.to_string()))?;
    Ok(Thumbnail {
        bytes,
        width,
        height,
        mime: "image/png",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    #[test]
    fn a_photo_shrinks_to_the_long_side_and_stays_a_jpeg() {
        let thumb = render(&photo(1200, 800), 256).unwrap();
        assert_eq!(
            (thumb.width, thumb.height, thumb.mime),
            (256, 171, "image/jpeg")
        );
        let back = image::load_from_memory(&thumb.bytes).unwrap();
        assert_eq!((back.width(), back.height()), (256, 171));
        // Never enlarged.
        let small = render(&photo(100, 50), 256).unwrap();
        assert_eq!((small.width, small.height), (100, 50));
    }

    #[test]
    fn libjpeg_turbo_decodes_at_the_smallest_scale_that_covers_the_thumbnail() {
        let bytes = photo(1600, 1200);
        let small = turbo_jpeg(&bytes, 200, 150).expect("libjpeg-turbo decodes a baseline JPEG");
        assert_eq!(small.dimensions(), (200, 150), "1/8 covers 200 x 150");
        let half = turbo_jpeg(&bytes, 700, 525).unwrap();
        assert_eq!(
            half.dimensions(),
            (800, 600),
            "1/2 is the smallest that covers 700"
        );
        assert!(
            turbo_jpeg(b"\xff\xd8 not a jpeg", 10, 10).is_none(),
            "left to the fallback"
        );
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A landscape photo tagged "rotate 90° clockwise" (orientation 6) shows as portrait.
        let img = RgbImage::from_fn(400, 200, |x, _| {
            image::Rgb([if x < 200 { 255 } else { 0 }, 0, 0])
        });
        let mut out = Vec::new();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
        use image::ImageEncoder;
        let exif = [
            b"II*\0".as_slice(),
            &8u32.to_le_bytes(),
            &1u16.to_le_bytes(),
            &0x0112u16.to_le_bytes(),
            &3u16.to_le_bytes(),
            &1u32.to_le_bytes(),
            &6u32.to_le_bytes(),
            &0u32.to_le_bytes(),
        ]
        .concat();
        encoder.set_exif_metadata(exif).unwrap();
        encoder
            .write_image(img.as_raw(), 400, 200, image::ExtendedColorType::Rgb8)
            .unwrap();
        let thumb = render(&out, 100).unwrap();
        assert_eq!((thumb.width, thumb.height), (50, 100));
        // Turned clockwise, the photo's left (red) half is now on top, its right (black) half
        // below: a rotation the wrong way, or a mirror, would put red at the bottom.
        let shown = image::load_from_memory(&thumb.bytes).unwrap().to_rgb8();
        let [r, g, b] = shown.get_pixel(25, 20).0;
        assert!(r > 200 && g < 50 && b < 50, "top is red: {:?}", [r, g, b]);
        let [r, g, b] = shown.get_pixel(25, 80).0;
        assert!(
            r < 50 && g < 50 && b < 50,
            "bottom is black: {:?}",
            [r, g, b]
        );
    }

    #[test]
    fn transparent_images_keep_their_alpha_as_png() {
        let img = RgbaImage::from_fn(600, 300, |x, _| image::Rgba([0, 0, 255, (x % 256) as u8]));
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let thumb = render(&png, 256).unwrap();
        assert_eq!(
            (thumb.width, thumb.height, thumb.mime),
            (256, 128, "image/png")
        );
    }

    #[test]
    fn a_pdf_first_page_renders() {
        let pdf = sample_pdf();
        let thumb = render(&pdf, 256).unwrap();
        assert_eq!(thumb.mime, "image/png");
        assert_eq!(thumb.height, 256, "a portrait page fills the long side");
        let page = image::load_from_memory(&thumb.bytes).unwrap().to_rgb8();
        // Not blank: the drawn rectangle is there, on white.
        assert!(page.pixels().any(|p| p.0 == [0, 0, 0]) || page.pixels().any(|p| p.0[0] < 64));
        assert!(page.pixels().any(|p| p.0 == [255, 255, 255]));
    }

    /// A one-page PDF (US Letter) with a filled black rectangle, with a correct xref table.
    pub(super) fn sample_pdf() -> Vec<u8> {
        pdf_with(&[], "")
    }

    /// The sample PDF with `extra` objects (numbered from 5) and `trailer_extra` in its trailer.
    fn pdf_with(extra: &[&str], trailer_extra: &str) -> Vec<u8> {
        pdf_page("0 0 0 rg 100 500 300 200 re f", "", extra, trailer_extra)
    }

    /// A one-page PDF drawing `content` with `resources`, `extra` objects numbered from 5.
    fn pdf_page(content: &str, resources: &str, extra: &[&str], trailer_extra: &str) -> Vec<u8> {
        let mut objects = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
            format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << {resources} >> >>"),
            format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        ];
        objects.extend(extra.iter().map(|o| o.to_string()));
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for o in offsets {
            out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R {trailer_extra} >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    #[test]
    fn bad_inputs_get_a_reason_not_a_crash() {
        assert_eq!(render(b"", 256), Err(ThumbError::Empty));
        assert!(matches!(
            render(b"PK\x03\x04 a docx really", 256),
            Err(ThumbError::Unsupported(_))
        ));
        let truncated = &photo(800, 600)[..500];
        assert!(matches!(
            render(truncated, 256),
            Err(ThumbError::Corrupt(_))
        ));
        assert!(matches!(
            render(b"%PDF-1.4\n garbage", 256),
            Err(ThumbError::Corrupt(_) | ThumbError::NoPages)
        ));
        let mut pdf = sample_pdf();
        pdf.truncate(pdf.len() / 2);
        assert!(
            render(&pdf, 256).is_err() || render(&pdf, 256).is_ok(),
            "a truncated PDF neither panics nor hangs"
        );
        // Encrypted with a user password (Standard security handler, RC4 128-bit): the empty
        // password does not open it, so there is nothing to draw without asking the user.
        let locked = pdf_with(
            &[&format!(
                "<< /Filter /Standard /V 2 /R 3 /Length 128 /P -3904 /O <{}> /U <{}> >>",
                "7a".repeat(32),
                "c4".repeat(32)
            )],
            "/Encrypt 5 0 R /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>]",
        );
        assert_eq!(render(&locked, 256), Err(ThumbError::Encrypted));
        // A page that claims to be a kilometre wide is refused, not rasterised.
        let huge = String::from_utf8(sample_pdf())
            .unwrap()
            .replace("[0 0 612 792]", "[0 0 3000000 792]")
            .into_bytes();
        assert!(matches!(render(&huge, 256), Err(ThumbError::Corrupt(_))));
        // A BMP header claiming 60,000 × 60,000 pixels: refused before decoding.
        let mut bomb = Vec::new();
        RgbImage::new(1, 1)
            .write_to(&mut Cursor::new(&mut bomb), ImageFormat::Bmp)
            .unwrap();
        bomb[18..22].copy_from_slice(&60_000i32.to_le_bytes());
        bomb[22..26].copy_from_slice(&60_000i32.to_le_bytes());
        assert_eq!(
            render(&bomb, 256),
            Err(ThumbError::TooLarge {
                width: 60_000,
                height: 60_000
            })
        );
    }

    #[test]
    fn a_pdf_bomb_is_refused_before_any_image_is_decoded() {
        let image = |w: u32, h: u32| {
            format!("<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceGray /BitsPerComponent 8 /Length 0 >>\nstream\n\nendstream")
        };
        let draw = "q 612 0 0 792 0 0 cm /Im1 Do Q";
        let uses_it = "/XObject << /Im1 5 0 R >>";
        // 9,000 × 9,000 declared in a few bytes: hayro would decode all 81 M pixels.
        let bomb = pdf_page(draw, uses_it, &[&image(9000, 9000)], "");
        assert_eq!(
            render(&bomb, 256),
            Err(ThumbError::TooLarge {
                width: 9000,
                height: 9000
            })
        );
        // Not even drawn: defined anywhere in the file is enough.
        let unused = pdf_page("0 0 0 rg 0 0 10 10 re f", "", &[&image(60000, 60000)], "");
        assert!(matches!(
            render(&unused, 256),
            Err(ThumbError::TooLarge { .. })
        ));
        // An inline image on the page, abbreviated keys.
        let inline = pdf_page(
            "q 100 0 0 100 0 0 cm BI /W 20000 /H 20000 /CS /G /BPC 8 ID \x00 EI Q",
            "",
            &[],
            "",
        );
        assert_eq!(
            render(&inline, 256),
            Err(ThumbError::TooLarge {
                width: 20000,
                height: 20000
            })
        );
        // A scan-sized image is drawn.
        let scan = pdf_page(draw, uses_it, &[&image(2480, 3508)], "");
        assert!(render(&scan, 256).is_ok(), "{:?}", render(&scan, 256));
    }

    #[test]
    fn a_file_past_the_size_limit_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.pdf");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_SOURCE_BYTES + 1).unwrap(); // sparse: no disk used
        assert_eq!(
            render_file(&path, 256),
            Err(ThumbError::FileTooLarge {
                bytes: MAX_SOURCE_BYTES + 1
            })
        );
    }

    // Fuzzing by property: damaged pictures and PDFs (a real one cut or with bytes flipped, or
    // a signature followed by noise) give a thumbnail or a reason, never a panic.
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

        #[test]
        fn damaged_files_give_a_thumbnail_or_a_reason(
            which in 0usize..3,
            cut in 0.0f64..1.0,
            flips in proptest::collection::vec((0.0f64..1.0, proptest::num::u8::ANY), 0..8),
            noise in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            let mut bytes = match which {
                0 => photo(64, 48),
                1 => sample_pdf(),
                _ => {
                    let mut png = Vec::new();
                    RgbaImage::new(20, 10).write_to(&mut Cursor::new(&mut png), ImageFormat::Png).unwrap();
                    png
                }
            };
            for (at, value) in flips {
                let i = ((bytes.len() - 1) as f64 * at) as usize;
                bytes[i] = value;
            }
            bytes.truncate(((bytes.len() as f64) * cut) as usize + 1);
            let _ = render(&bytes, 128);
            let mut noisy = bytes[..bytes.len().min(16)].to_vec();
            noisy.extend_from_slice(&noise);
            let _ = render(&noisy, 128);
        }
    }
}
