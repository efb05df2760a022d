//! Procedurally drawn "property photos" for the Demo site: a sky, a lawn, a house with a roof,
//! windows and a door, in colours picked from a seed. Drawn at start-up instead of shipping JPEGs
//! so the repository stays small.

use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};

pub struct Style {
    pub seed: u64,
    pub wall: [u8; 3],
    pub roof: [u8; 3],
    pub dusk: bool,
}

pub fn property_photo(width: u32, height: u32, style: &Style) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(style.seed);
    let mut img = RgbImage::new(width, height);
    let horizon = height * 62 / 100;
    let (sky_top, sky_low) = if style.dusk {
        ([38.0, 52.0, 110.0], [244.0, 164.0, 96.0])
    } else {
        ([70.0, 130.0, 200.0], [190.0, 220.0, 245.0])
    };
    for y in 0..height {
        for x in 0..width {
            let px = if y < horizon {
                let t = y as f32 / horizon as f32;
                mix(sky_top, sky_low, t)
            } else {
                // Lawn with a little deterministic texture so JPEG has something real to encode.
                let n = ((x.wrapping_mul(73856093) ^ y.wrapping_mul(19349663)) % 23) as f32;
                [60.0 + n, 130.0 + n * 1.5, 55.0 + n * 0.5]
            };
            img.put_pixel(x, y, rgb(px));
        }
    }
    // Sun or moon.
    let (cx, cy, r) = (width as i32 * 8 / 10, height as i32 / 6, height as i32 / 14);
    disc(
        &mut img,
        cx,
        cy,
        r,
        if style.dusk {
            [250, 220, 150]
        } else {
            [255, 244, 200]
        },
    );
    // Trees on both sides.
    for i in 0..4 {
        let tx = if i % 2 == 0 {
            rng.i32(0..width as i32 / 5)
        } else {
            rng.i32(width as i32 * 4 / 5..width as i32)
        };
        let tr = height as i32 / 10 + rng.i32(0..height as i32 / 20);
        rect(
            &mut img,
            tx - tr / 8,
            horizon as i32 - tr,
            tr / 4,
            tr * 3 / 2,
            [90, 60, 40],
        );
        disc(
            &mut img,
            tx,
            horizon as i32 - tr * 3 / 2,
            tr,
            [40, 100 + rng.u8(0..40), 45],
        );
    }
    // The house.
    let (hx, hw) = (width as i32 * 27 / 100, width as i32 * 46 / 100);
    let (hy, hh) = (
        horizon as i32 - height as i32 * 30 / 100,
        height as i32 * 30 / 100 + 20,
    );
    rect(&mut img, hx, hy, hw, hh, style.wall);
    roof(
        &mut img,
        hx - 20,
        hy,
        hw + 40,
        height as i32 * 18 / 100,
        style.roof,
    );
    let window = if style.dusk {
        [255, 214, 120]
    } else {
        [170, 205, 230]
    };
    for i in 0..3 {
        let wx = hx + hw * (1 + i * 3) / 10;
        rect(&mut img, wx, hy + hh / 5, hw / 8, hh / 4, window);
        rect(
            &mut img,
            wx + hw / 16 - 1,
            hy + hh / 5,
            3,
            hh / 4,
            [250, 250, 250],
        );
    }
    rect(
        &mut img,
        hx + hw * 45 / 100,
        hy + hh / 2,
        hw / 10,
        hh / 2,
        [110, 62, 40],
    );
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .expect("encoding an in-memory RGB image cannot fail");
    out
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn rgb(c: [f32; 3]) -> Rgb<u8> {
    Rgb([
        c[0].clamp(0.0, 255.0) as u8,
        c[1].clamp(0.0, 255.0) as u8,
        c[2].clamp(0.0, 255.0) as u8,
    ])
}

fn put(img: &mut RgbImage, x: i32, y: i32, c: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, Rgb(c));
    }
}

fn rect(img: &mut RgbImage, x: i32, y: i32, w: i32, h: i32, c: [u8; 3]) {
    for yy in y..y + h {
        for xx in x..x + w {
            put(img, xx, yy, c);
        }
    }
}

fn disc(img: &mut RgbImage, cx: i32, cy: i32, r: i32, c: [u8; 3]) {
    for y in -r..=r {
        for x in -r..=r {
            if x * x + y * y <= r * r {
                put(img, cx + x, cy + y, c);
            }
        }
    }
}

/// A triangle standing on (x, base_y) with the given width and height.
fn roof(img: &mut RgbImage, x: i32, base_y: i32, w: i32, h: i32, c: [u8; 3]) {
    for dy in 0..h {
        let half = w / 2 * (h - dy) / h;
        let mid = x + w / 2;
        for xx in mid - half..mid + half {
            put(img, xx, base_y - dy, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photo_decodes_as_jpeg_of_the_asked_size() {
        let bytes = property_photo(
            320,
            200,
            &Style {
                seed: 1,
                wall: [200, 190, 170],
                roof: [120, 40, 30],
                dusk: false,
            },
        );
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((img.width(), img.height()), (320, 200));
    }
}
