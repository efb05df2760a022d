//! File names from a CRM are untrusted: they become local paths only through here.

/// Names Windows refuses whatever the extension; refused everywhere so a cache copied between
/// machines stays valid.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Characters that reorder how text is displayed (bidirectional embeddings, overrides and
/// isolates, and the invisible direction marks): `Invoice\u{202E}fdp.exe` displays as
/// "Invoiceexe.pdf". Never part of a name we show or save.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A name from outside with its bidirectional controls removed: what the window shows.
pub fn display_name(name: &str) -> String {
    name.chars().filter(|c| !is_bidi_control(*c)).collect()
}

/// A single path component safe on every desktop OS: no separators, control or bidirectional
/// characters, no `.`/`..`, no reserved device names, at most 200 bytes (extension kept);
/// "file" when nothing is left.
pub fn safe_file_name(name: &str) -> String {
    clean_component(name).unwrap_or_else(|| "file".to_string())
}

/// A folder under `Filed/` for a contact: its name made safe, else its id made safe, else
/// "contact". Both come from the CRM; neither can make the path leave `Filed/` (an id of `/etc`
/// or a name of `.. .` is one plain component like any other).
pub fn contact_folder_name(contact_name: &str, contact_id: &str) -> String {
    clean_component(contact_name)
        .or_else(|| clean_component(contact_id))
        .unwrap_or_else(|| "contact".to_string())
}

/// The folders under the app's home that hold one account's copies of its documents
/// (downloads, previews, rendered thumbnails, converted images): sign-out deletes them all.
pub fn account_folders(home: &attache_core::AppHome, account: &str) -> [std::path::PathBuf; 4] {
    let own = safe_file_name(account);
    [
        home.files_dir().join(&own),
        home.previews_dir().join(&own),
        home.thumbs_dir().join(&own),
        home.converted_dir().join(&own),
    ]
}

/// [`safe_file_name`]'s cleaning; `None` when nothing usable is left.
fn clean_component(name: &str) -> Option<String> {
    let cleaned: String = name
        .chars()
        .filter(|c| !is_bidi_control(*c))
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let cleaned = cleaned
        .trim()
        .trim_end_matches(['.', ' '])
        .trim_start_matches(['.', ' '])
        .to_string();
    if cleaned.is_empty() {
        return None;
    }
    let stem = cleaned.split('.').next().unwrap_or("").to_ascii_uppercase();
    let mut out = if RESERVED.contains(&stem.trim_end()) {
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
        out = format!("{}{ext}", out[..cut].trim_end_matches(['.', ' ']));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    #[test]
    fn contact_folders_never_leave_filed() {
        assert_eq!(contact_folder_name("Ana Silva", "1"), "Ana Silva");
        assert_eq!(contact_folder_name("a/b\\c: d?", "1"), "a_b_c_ d_");
        assert_eq!(contact_folder_name(" .. ", "id-7"), "id-7");
        assert_eq!(contact_folder_name(".. .", "id-7"), "id-7");
        assert_eq!(contact_folder_name("", "/etc"), "_etc");
        assert_eq!(contact_folder_name("", ".."), "contact");
        assert_eq!(contact_folder_name("\u{202E}", "\u{202E}"), "contact");
    }

    #[test]
    fn bidirectional_controls_are_removed_from_names() {
        assert_eq!(safe_file_name("Invoice\u{202E}fdp.exe"), "Invoicefdp.exe");
        assert_eq!(display_name("Invoice\u{202E}fdp.exe"), "Invoicefdp.exe");
        assert_eq!(display_name("a\u{2066}b\u{2069}\u{200F}.pdf"), "ab.pdf");
    }

    proptest! {
        /// Whatever a CRM sends, the result is one plain path component, on every OS.
        #[test]
        fn any_name_becomes_one_plain_component(name in "\\PC*|[./\\\\: \u{202E}\u{2066}a-z]{0,12}") {
            for out in [safe_file_name(&name), contact_folder_name(&name, &name)] {
                let parts: Vec<_> = std::path::Path::new(&out).components().collect();
                prop_assert_eq!(parts.len(), 1, "{:?} -> {:?}", name, out);
                prop_assert!(matches!(parts[0], std::path::Component::Normal(_)), "{:?} -> {:?}", name, out);
                prop_assert!(!out.is_empty() && out.len() <= 200);
                prop_assert!(!out.chars().any(|c| c.is_control() || is_bidi_control(c) || "/\\:*?\"<>|".contains(c)), "{:?}", out);
                prop_assert!(!out.ends_with('.') && !out.ends_with(' ') && !out.starts_with('.'), "{:?}", out);
                let stem = out.split('.').next().unwrap().trim_end().to_ascii_uppercase();
                prop_assert!(!RESERVED.contains(&stem.as_str()), "{:?}", out);
            }
        }
    }
}
