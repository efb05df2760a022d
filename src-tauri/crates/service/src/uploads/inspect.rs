//! Everything checked about a file before any network call: that it is there, readable,
//! non-empty and under the CRM's limit; what it really is (sniffed from its bytes with `infer`,
//! then checked against its extension); and whether the CRM accepts that type. The content hash
//! computed here keys the upload job, so the same file to the same contact is noticed.

use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use attache_core::upload::{
    open_plain, stat, ConvertTarget, InspectedFile, Rejection, RejectionKind, UploadRules,
};

/// How much of the head `infer` sees: enough for the OOXML markers inside a zip's first entries.
const SNIFF_BYTES: usize = 64 * 1024;

fn reject(path: &Path, kind: RejectionKind, message: String) -> Rejection {
    Rejection {
        path: path.display().to_string(),
        kind,
        message,
        convert_to: None,
    }
}

pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn io_rejection(path: &Path, e: &std::io::Error) -> Rejection {
    let name = display_name(path);
    if e.kind() == ErrorKind::NotFound {
        reject(
            path,
            RejectionKind::Vanished,
            format!("{name} is no longer there (moved or deleted?)"),
        )
    } else {
        reject(
            path,
            RejectionKind::Unreadable,
            format!("{name} cannot be read: {e}"),
        )
    }
}

/// Checks one regular file (blocking: run it off the async threads).
pub fn inspect(path: &Path, rules: &dyn UploadRules) -> Result<InspectedFile, Rejection> {
    let name = display_name(path);
    // The path itself: a link is refused by `open_plain` below, not followed.
    let meta = std::fs::symlink_metadata(path).map_err(|e| io_rejection(path, &e))?;
    if meta.is_dir() {
        return Err(reject(
            path,
            RejectionKind::Unreadable,
            format!("{name} is a folder"),
        ));
    }
    let (size, modified_ns) = stat(path).map_err(|e| io_rejection(path, &e))?;
    if size == 0 {
        return Err(reject(
            path,
            RejectionKind::Empty,
            format!("{name} is empty (0 bytes)"),
        ));
    }
    let limit = rules.max_upload_bytes();
    if size > limit {
        return Err(reject(
            path,
            RejectionKind::TooLarge,
            format!(
                "{name} is {}, over the {} {} accepts",
                human_size(size),
                human_size(limit),
                rules.crm_name()
            ),
        ));
    }
    let mut file = open_plain(path).map_err(|e| io_rejection(path, &e))?;
    let mut head = vec![0u8; SNIFF_BYTES.min(size as usize)];
    file.read_exact(&mut head)
        .map_err(|e| io_rejection(path, &e))?;
    let mime_type = content_type(path, &name, &head)?;
    if !rules.accepts_mime(&mime_type) {
        let mut r = reject(
            path,
            RejectionKind::Unsupported,
            format!(
                "{} does not accept {} files ({name})",
                rules.crm_name(),
                describe_mime(&mime_type)
            ),
        );
        r.convert_to = convertible(&mime_type);
        if let Some(to) = r.convert_to {
            r.message.push_str(&format!(
                "; it can be converted to {} first",
                to.extension().to_uppercase()
            ));
        }
        return Err(r);
    }
    let content_hash = hash_file(path).map_err(|e| io_rejection(path, &e))?;
    // Still the same file after reading it all? If not it is being written: try again later.
    let after = stat(path).map_err(|e| io_rejection(path, &e))?;
    if after != (size, modified_ns) {
        return Err(reject(
            path,
            RejectionKind::Changing,
            format!("{name} changed while being read; is it still being written?"),
        ));
    }
    Ok(InspectedFile {
        path: path.to_path_buf(),
        file_name: name,
        mime_type,
        size,
        modified_ns,
        content_hash,
        as_document: false,
    })
}

/// BLAKE3 of the whole file, read in 8 MiB blocks (bounded memory, unlike a memory map whose
/// pages count against the app) with each block hashed on all cores: for big files this pass
/// comes before the upload starts, so it must keep well ahead of the network.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    const BLOCK: usize = 8 << 20;
    let mut file = open_plain(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut block = vec![0u8; BLOCK];
    loop {
        let mut filled = 0;
        while filled < BLOCK {
            match file.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            break;
        }
        hasher.update_rayon(&block[..filled]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// The type from the content, checked against the extension. The extension refines what the
/// bytes cannot tell apart (a zip that is a .docx, an OLE file that is a .xls); a contradiction
/// is refused rather than guessed.
fn content_type(path: &Path, name: &str, head: &[u8]) -> Result<String, Rejection> {
    let by_name = mime_guess::from_path(name)
        .first()
        .map(|m| m.essence_str().to_owned());
    let sniffed = infer::get(head).map(|t| t.mime_type().to_owned());
    match (sniffed, by_name) {
        // A name that claims no particular type (`.exe`, `.bin`): the content says what it is.
        (Some(s), Some(n)) if n == "application/octet-stream" => Ok(s),
        (Some(s), Some(n)) if same_kind(&s, &n) => Ok(n),
        (Some(s), Some(n)) => Err(reject(
            path,
            RejectionKind::TypeMismatch,
            format!(
                "{name} is named like {} but its content is {}",
                describe_mime(&n),
                describe_mime(&s)
            ),
        )),
        (Some(s), None) => Ok(s),
        (None, Some(n)) if n.starts_with("text/") => {
            if looks_like_text(head) {
                Ok(n)
            } else {
                Err(reject(
                    path,
                    RejectionKind::TypeMismatch,
                    format!("{name} is named like text but holds binary data"),
                ))
            }
        }
        (None, Some(n)) if has_signature(&n) => Err(reject(
            path,
            RejectionKind::TypeMismatch,
            format!(
                "{name} is named like {} but its content is not (damaged or mislabelled?)",
                describe_mime(&n)
            ),
        )),
        (None, Some(n)) => Ok(n),
        (None, None) if looks_like_text(head) => Ok("text/plain".into()),
        (None, None) => Ok("application/octet-stream".into()),
    }
}

/// Types whose files always start with a signature `infer` knows: no signature means damage.
fn has_signature(mime: &str) -> bool {
    matches!(
        mime,
        "application/pdf"
            | "image/jpeg"
            | "image/png"
            | "image/gif"
            | "image/webp"
            | "image/bmp"
            | "image/tiff"
    ) || is_ooxml(mime)
        || is_ole(mime)
}

fn is_ooxml(mime: &str) -> bool {
    mime.starts_with("application/vnd.openxmlformats-officedocument.")
}

fn is_ole(mime: &str) -> bool {
    matches!(
        mime,
        "application/msword"
            | "application/vnd.ms-excel"
            | "application/vnd.ms-powerpoint"
            | "application/x-ole-storage"
    )
}

fn same_kind(sniffed: &str, named: &str) -> bool {
    sniffed == named
        // A zip whose office marker lies past the sniffed head, or an OOXML flavour infer
        // names differently (template vs document).
        || ((sniffed == "application/zip" || is_ooxml(sniffed)) && is_ooxml(named))
        || (is_ole(sniffed) && is_ole(named))
        || (sniffed == "image/heif" && named == "image/heic")
        || (sniffed == "image/heic" && named == "image/heif")
        // One kind under the names different registries give it.
        || ALIASES
            .iter()
            .any(|names| names.contains(&sniffed) && names.contains(&named))
}

/// Names `infer` and `mime_guess` give the same kind of file.
const ALIASES: &[&[&str]] = &[
    &[
        "text/x-shellscript",
        "application/x-sh",
        "application/x-shellscript",
    ],
    &[
        "application/vnd.microsoft.portable-executable",
        "application/x-msdownload",
        "application/x-msdos-program",
        "application/x-dosexec",
    ],
];

fn looks_like_text(head: &[u8]) -> bool {
    !head.contains(&0) && (std::str::from_utf8(head).is_ok() || head.iter().all(|b| *b >= 0x09))
}

fn convertible(mime: &str) -> Option<ConvertTarget> {
    match mime {
        // Photos keep their look as JPEG; screenshots and scans keep sharp edges as PNG.
        "image/webp" | "image/bmp" | "image/tiff" => Some(ConvertTarget::Png),
        _ => None,
    }
}

/// "a PDF", "a JPEG image", "an Excel spreadsheet": how people name types.
pub fn describe_mime(mime: &str) -> String {
    let known = match mime {
        "application/pdf" => "PDF",
        "image/jpeg" => "JPEG image",
        "image/png" => "PNG image",
        "image/gif" => "GIF image",
        "image/webp" => "WebP image",
        "image/bmp" => "BMP image",
        "image/tiff" => "TIFF image",
        "image/svg+xml" => "SVG drawing",
        "application/zip" => "zip archive",
        "text/plain" => "plain text",
        "text/csv" => "CSV",
        "application/msword" => "Word document",
        "application/vnd.ms-excel" => "Excel spreadsheet",
        "application/vnd.ms-powerpoint" => "PowerPoint presentation",
        "application/octet-stream" => "unrecognised",
        m if m.contains("wordprocessingml") => "Word document",
        m if m.contains("spreadsheetml") => "Excel spreadsheet",
        m if m.contains("presentationml") => "PowerPoint presentation",
        m => return m.to_owned(),
    };
    known.to_owned()
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A file the user chose, as a link: the file it points to now, which is what they meant (the
/// engine never follows links itself, so one swapped in later is refused, not read).
fn resolved(path: &Path) -> PathBuf {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    } else {
        path.to_path_buf()
    }
}

/// Expands what the user dropped or named: files as they are, folders walked (links followed,
/// loops reported, hidden and temporary files skipped: `.DS_Store`, `~$draft.docx`, `x.part`),
/// each link resolved to its file.
pub fn expand(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Rejection>) {
    let mut files = Vec::new();
    let mut rejected = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Err(e) => rejected.push(io_rejection(path, &e)),
            Ok(m) if !m.is_dir() => files.push(resolved(path)),
            Ok(_) => {
                let walk = walkdir::WalkDir::new(path)
                    .follow_links(true)
                    .sort_by_file_name();
                for entry in walk
                    .into_iter()
                    .filter_entry(|e| e.depth() == 0 || !is_ignored_name(e.file_name()))
                {
                    match entry {
                        Ok(e) if e.file_type().is_file() => files.push(resolved(e.path())),
                        Ok(_) => {}
                        Err(e) if e.loop_ancestor().is_some() => {
                            let at = e.path().unwrap_or(path).to_path_buf();
                            rejected.push(reject(
                                &at,
                                RejectionKind::FolderLoop,
                                format!(
                                    "{} links back to a folder that contains it; skipped",
                                    at.display()
                                ),
                            ));
                        }
                        Err(e) => {
                            let at = e.path().unwrap_or(path).to_path_buf();
                            let io = e
                                .into_io_error()
                                .unwrap_or_else(|| std::io::Error::other("unreadable"));
                            rejected.push(io_rejection(&at, &io));
                        }
                    }
                }
            }
        }
    }
    (files, rejected)
}

/// Hidden files, system litter, office lock files and in-progress downloads.
pub fn is_ignored_name(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.starts_with("~$")
        || lower == "thumbs.db"
        || lower == "desktop.ini"
        || [".part", ".crdownload", ".tmp", ".partial", ".download"]
            .iter()
            .any(|s| lower.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rules;
    impl UploadRules for Rules {
        fn crm_name(&self) -> &str {
            "Wix"
        }
        fn accepts_mime(&self, mime: &str) -> bool {
            mime == "application/pdf"
                || mime == "image/png"
                || mime == "image/jpeg"
                || mime == "text/csv"
        }
        fn max_upload_bytes(&self) -> u64 {
            1000
        }
    }

    const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
    const PNG: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
    ];

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn accepts_a_pdf_and_keys_it_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let a = inspect(&write(dir.path(), "deed.pdf", PDF), &Rules).unwrap();
        let b = inspect(&write(dir.path(), "copy of deed.pdf", PDF), &Rules).unwrap();
        assert_eq!(a.mime_type, "application/pdf");
        assert_eq!(a.size, PDF.len() as u64);
        assert_eq!(a.content_hash, b.content_hash, "same bytes, same key");
    }

    #[test]
    fn each_bad_input_gets_its_own_reason() {
        let dir = tempfile::tempdir().unwrap();
        let kind = |p: PathBuf| inspect(&p, &Rules).unwrap_err().kind;
        assert_eq!(kind(dir.path().join("gone.pdf")), RejectionKind::Vanished);
        assert_eq!(
            kind(write(dir.path(), "empty.pdf", b"")),
            RejectionKind::Empty
        );
        assert_eq!(
            kind(write(dir.path(), "big.pdf", &[b'%'; 1001])),
            RejectionKind::TooLarge
        );
        assert_eq!(
            kind(write(dir.path(), "photo.pdf", PNG)),
            RejectionKind::TypeMismatch
        );
        assert_eq!(
            kind(write(dir.path(), "broken.pdf", b"not a pdf at all")),
            RejectionKind::TypeMismatch
        );
        assert_eq!(
            kind(write(dir.path(), "list.csv", b"a,b\0c")),
            RejectionKind::TypeMismatch
        );
        assert_eq!(
            kind(write(dir.path(), "notes.txt", b"hello")),
            RejectionKind::Unsupported
        );
        assert_eq!(kind(dir.path().to_path_buf()), RejectionKind::Unreadable);
        let msg = inspect(&write(dir.path(), "photo.pdf", PNG), &Rules)
            .unwrap_err()
            .message;
        assert!(
            msg.contains("named like PDF") && msg.contains("PNG image"),
            "{msg}"
        );
    }

    #[test]
    fn a_script_or_program_named_for_what_it_is_is_no_mismatch() {
        // EspoCRM takes any type: a shell script named .sh, or a program named .exe, is what
        // it says it is (whether Open will run it is another question: it will not).
        let dir = tempfile::tempdir().unwrap();
        let sh = write(dir.path(), "setup.sh", b"#!/bin/sh\necho hi\n");
        let head = std::fs::read(&sh).unwrap();
        assert_eq!(
            content_type(&sh, "setup.sh", &head).unwrap(),
            "application/x-sh"
        );
        let exe = write(dir.path(), "setup.exe", b"MZ\x90\x00\x03\x00\x00\x00");
        let head = std::fs::read(&exe).unwrap();
        assert_eq!(
            content_type(&exe, "setup.exe", &head).unwrap(),
            "application/vnd.microsoft.portable-executable"
        );
        let fake = write(dir.path(), "setup.pdf", b"MZ\x90\x00\x03\x00\x00\x00");
        let head = std::fs::read(&fake).unwrap();
        assert_eq!(
            content_type(&fake, "setup.pdf", &head).unwrap_err().kind,
            RejectionKind::TypeMismatch
        );
    }

    #[test]
    fn webp_is_offered_a_conversion_never_converted_silently() {
        let dir = tempfile::tempdir().unwrap();
        let mut webp = b"RIFF\x24\0\0\0WEBPVP8 ".to_vec();
        webp.extend_from_slice(&[0; 24]);
        let r = inspect(&write(dir.path(), "kitchen.webp", &webp), &Rules).unwrap_err();
        assert_eq!(r.kind, RejectionKind::Unsupported);
        assert_eq!(r.convert_to, Some(ConvertTarget::Png));
        assert!(r.message.contains("WebP"), "{}", r.message);
    }

    #[test]
    fn folders_expand_skipping_litter_and_reporting_loops() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("Smith");
        std::fs::create_dir(&sub).unwrap();
        write(&sub, "deed.pdf", PDF);
        write(&sub, ".DS_Store", b"x");
        write(&sub, "~$deed.docx", b"x");
        write(&sub, "scan.pdf.part", b"x");
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path(), sub.join("loop")).unwrap();
        let (files, rejected) = expand(&[dir.path().to_path_buf(), dir.path().join("missing.pdf")]);
        assert_eq!(files, vec![sub.join("deed.pdf")]);
        let kinds: Vec<_> = rejected.iter().map(|r| r.kind).collect();
        assert!(kinds.contains(&RejectionKind::Vanished), "{rejected:?}");
        #[cfg(unix)]
        assert!(kinds.contains(&RejectionKind::FolderLoop), "{rejected:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_dropped_link_means_its_file_and_a_link_is_never_read_through() {
        let dir = tempfile::tempdir().unwrap();
        let real = write(dir.path(), "contract.pdf", PDF);
        let link = dir.path().join("link to contract.pdf");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        // Dropped (or found in a dropped folder): the file it points to is what is queued.
        let (files, rejected) = expand(std::slice::from_ref(&link));
        assert!(rejected.is_empty());
        assert_eq!(files, vec![real.canonicalize().unwrap()]);
        let (files, _) = expand(&[dir.path().to_path_buf()]);
        assert_eq!(files.len(), 2);
        assert!(files.iter().all(|f| f == &real.canonicalize().unwrap()));
        // Checked directly (what the engine does before sending): refused, not followed.
        let r = inspect(&link, &Rules).unwrap_err();
        assert_eq!(r.kind, RejectionKind::Unreadable);
        assert!(r.message.contains("is a link"), "{}", r.message);
        // Nor a FIFO, which would block the reader.
        let fifo = dir.path().join("pipe.pdf");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert!(inspect(&fifo, &Rules).is_err());
        let e = open_plain(&fifo).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    // Fuzzing by property: the sniffing takes any name and any first bytes, and answers a type
    // or a refusal with a reason; a PDF by content and by name is always a PDF.
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn any_name_and_content_get_a_type_or_a_reason(
            stem in "\\PC{0,16}",
            ext in "(pdf|PDF|jpg|png|heic|docx|xlsx|txt|csv|exe|sh|zip|bin|\\PC{0,5})",
            magic in proptest::sample::select(vec![
                &b""[..], b"%PDF-1.7\n", b"\xFF\xD8\xFF\xE0", b"\x89PNG\r\n\x1a\n",
                b"PK\x03\x04", b"MZ", b"#!/bin/sh\n", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
            ]),
            rest in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let name = format!("{stem}.{ext}");
            let head = [magic, &rest[..]].concat();
            match content_type(Path::new(&name), &name, &head) {
                Ok(mime) => {
                    proptest::prop_assert!(mime.contains('/'), "{:?}", mime);
                    if magic.starts_with(b"%PDF") && ext.eq_ignore_ascii_case("pdf") {
                        proptest::prop_assert_eq!(mime, "application/pdf");
                    }
                }
                Err(rejection) => proptest::prop_assert!(!rejection.message.is_empty()),
            }
        }
    }
}
