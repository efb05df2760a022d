//! The MIME types Contact Attachments v4 accepts (Wix docs, "supported mime types").
//!
//! The docs list has typos (a trailing slash on `application/vnd.ms-excel/`, non-ASCII hyphens
//! in `x‑portable‑*`, a stray quote after `pcx`); [`normalize`] cleans those before comparing.

/// Document types accepted as attachments.
pub const DOCUMENT_TYPES: &[&str] = &[
    "text/csv",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.openxmlformats-officedocument.presentationml.template",
    "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
    "application/pdf",
];

/// `image/*` types that are *not* accepted.
pub const REJECTED_IMAGE_TYPES: &[&str] = &[
    "image/tiff",
    "image/svg+xml",
    "image/bmp",
    "image/x-bmp",
    "image/vnd.zbrush.pcx",
    "image/x-pcx",
    "image/x-xcf",
    "image/x-icon",
    "image/ico",
    "image/icon",
    "image/vnd.microsoft.icon",
    "image/x-pict",
    "image/x-portable-bitmap",
    "image/x-portable-graymap",
    "image/x-portable-pixmap",
    "image/x-portable-anymap",
    "image/sgi",
    "image/webp",
];

/// Lower-cases, trims, maps Unicode hyphens to '-', and drops stray quotes, trailing slashes and
/// parameters (`; charset=...`).
pub fn normalize(mime: &str) -> String {
    let base = mime.split(';').next().unwrap_or("");
    base.trim()
        .chars()
        .map(|c| match c {
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2212}' => '-',
            c => c.to_ascii_lowercase(),
        })
        .filter(|c| *c != '"' && *c != '\'')
        .collect::<String>()
        .trim_end_matches('/')
        .to_owned()
}

/// Whether Contact Attachments accept this type.
pub fn is_supported_attachment_type(mime: &str) -> bool {
    let mime = normalize(mime);
    if DOCUMENT_TYPES.contains(&mime.as_str()) {
        return true;
    }
    match mime.strip_prefix("image/") {
        Some(sub) if !sub.is_empty() => !REJECTED_IMAGE_TYPES.contains(&mime.as_str()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_typos_are_normalised() {
        assert_eq!(
            normalize("application/vnd.ms-excel/"),
            "application/vnd.ms-excel"
        );
        assert_eq!(
            normalize("image/x\u{2011}portable\u{2011}bitmap"),
            "image/x-portable-bitmap"
        );
        assert_eq!(normalize("image/x-pcx\""), "image/x-pcx");
        assert_eq!(normalize("Text/CSV; charset=utf-8"), "text/csv");
    }

    #[test]
    fn accepts_documents_and_most_images() {
        for ok in [
            "application/pdf",
            "image/jpeg",
            "image/png",
            "image/heic",
            "text/csv",
            "application/vnd.ms-excel/",
        ] {
            assert!(is_supported_attachment_type(ok), "{ok}");
        }
        for bad in [
            "image/webp",
            "image/tiff",
            "image/svg+xml",
            "text/plain",
            "application/zip",
            "image/",
            "",
            "image/x\u{2011}portable\u{2011}pixmap",
        ] {
            assert!(!is_supported_attachment_type(bad), "{bad}");
        }
    }
}
