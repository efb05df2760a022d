//! What the sandbox does with stored bytes: image dimensions and the preview rendition Wix
//! generates for image attachments, and a minimal DOCX for the demo data.

use std::io::{Cursor, Write};
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::ImageReader;

/// Longest side of the preview rendition (Wix's previews are small web images).
const PREVIEW_SIDE: u32 = 400;

pub struct ImageFacts {
    pub width: u32,
    pub height: u32,
    pub preview: (u32, u32),
}

/// Reads the image at `src` and writes its JPEG preview to `dest`. `None` when the bytes are not
/// a decodable image (the attachment is then kept, without a preview).
pub fn make_preview(src: &Path, dest: &Path) -> Option<ImageFacts> {
    let img = ImageReader::open(src)
        .ok()?
        .with_guessed_format()
        .ok()?
        .decode()
        .ok()?;
    let (width, height) = (img.width(), img.height());
    let thumb = img.thumbnail(PREVIEW_SIDE, PREVIEW_SIDE).to_rgb8();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 82)
        .encode_image(&thumb)
        .ok()?;
    std::fs::write(dest, out).ok()?;
    Some(ImageFacts {
        width,
        height,
        preview: (thumb.width(), thumb.height()),
    })
}

/// A minimal but valid Word document (the parts Word and LibreOffice require).
pub fn docx(paragraphs: &[&str]) -> Vec<u8> {
    let body: String = paragraphs
        .iter()
        .map(|p| {
            format!(
                "<w:p><w:r><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>",
                xml_escape(p)
            )
        })
        .collect();
    let parts: [(&str, String); 3] = [
        (
            "[Content_Types].xml",
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
                r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">"#,
                r#"<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>"#,
                r#"<Default Extension="xml" ContentType="application/xml"/>"#,
                r#"<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>"#,
                r#"</Types>"#
            )
            .to_string(),
        ),
        (
            "_rels/.rels",
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
                r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
                r#"<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>"#,
                r#"</Relationships>"#
            )
            .to_string(),
        ),
        (
            "word/document.xml",
            format!(
                "{}{}<w:body>{body}</w:body></w:document>",
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
                r#"<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">"#
            ),
        ),
    ];
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in parts {
        zip.start_file(name, options).expect("in-memory zip");
        zip.write_all(text.as_bytes()).expect("in-memory zip");
    }
    zip.finish().expect("in-memory zip").into_inner()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docx_is_a_zip_with_the_document_part() {
        let bytes = docx(&["Hello & welcome"]);
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut doc = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("word/document.xml").unwrap(), &mut doc)
            .unwrap();
        assert!(doc.contains("Hello &amp; welcome"));
    }
}
