//! File names from a CRM are untrusted: they become local paths only through here.

/// Names Windows refuses whatever the extension; refused everywhere so a cache copied between
/// machines stays valid.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A single path component safe on every desktop OS: no separators or control characters, no
/// `.`/`..`, no reserved device names, at most 200 bytes (extension kept).
pub fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let cleaned = cleaned
        .trim()
        .trim_end_matches(['.', ' '])
        .trim_start_matches('.')
        .to_string();
    let stem = cleaned.split('.').next().unwrap_or("").to_ascii_uppercase();
    let mut out = if cleaned.is_empty() {
        "file".to_string()
    } else if RESERVED.contains(&stem.as_str()) {
        format!("_{cleaned}")
    } else {
        cleaned
    };
    if out.len() > 200 {
        let ext = std::path::Path::new(&out)
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.len() <= 16)
            .map(|e| format!(".{e}"))
            .unwrap_or_default();
        let mut cut = 200 - ext.len();
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out = format!("{}{ext}", &out[..cut]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::safe_file_name;

    #[test]
    fn strips_separators_and_traversal() {
        assert_eq!(safe_file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_file_name("a\\b:c.pdf"), "a_b_c.pdf");
        assert_eq!(safe_file_name(".."), "file");
        assert_eq!(safe_file_name(""), "file");
        assert_eq!(safe_file_name(".hidden"), "hidden");
    }

    #[test]
    fn refuses_reserved_device_names() {
        assert_eq!(safe_file_name("CON.txt"), "_CON.txt");
        assert_eq!(safe_file_name("nul"), "_nul");
        assert_eq!(safe_file_name("Contract.pdf"), "Contract.pdf");
    }

    #[test]
    fn keeps_unicode_and_the_extension_when_shortening() {
        assert_eq!(safe_file_name("Chloé Dubois.pdf"), "Chloé Dubois.pdf");
        let long = format!("{}.pdf", "é".repeat(300));
        let short = safe_file_name(&long);
        assert!(short.len() <= 200 && short.ends_with(".pdf"));
    }
}
