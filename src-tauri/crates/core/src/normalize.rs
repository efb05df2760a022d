//! Text folding for search and matching: case-, accent- and spacing-insensitive.

/// Lower-case ASCII transliteration with runs of whitespace collapsed: "  José  ÁLVAREZ" ->
/// "jose alvarez". NFC and NFD spellings fold to the same string.
pub fn fold(text: &str) -> String {
    let ascii = deunicode::deunicode(text).to_lowercase();
    ascii.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A file name as CRMs keep it recognisable: transliterated to lower-case ASCII (NFC and NFD
/// spellings, "é" and "e" alike) with only letters and digits kept, so "Deed #4: plan.pdf"
/// stored as "Deed _4_ plan.pdf" has the same key. A name with no letter or digit is its
/// lower-case self.
pub fn file_name_key(name: &str) -> String {
    let key: String = fold(name)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    if key.is_empty() {
        name.to_lowercase()
    } else {
        key
    }
}

/// Only the digits: "+1 (207) 555-0142" -> "12075550142".
pub fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// True when the text looks like a phone number being typed: digits and phone punctuation only.
pub fn looks_like_phone(text: &str) -> bool {
    let mut saw_digit = false;
    for c in text.chars() {
        match c {
            '0'..='9' => saw_digit = true,
            '+' | '(' | ')' | '-' | '.' | ' ' => {}
            _ => return false,
        }
    }
    saw_digit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_accents_and_spacing() {
        assert_eq!(fold("  José   ÁLVAREZ "), "jose alvarez");
        // NFD: "e" + combining acute accent.
        assert_eq!(fold("Jose\u{301}"), fold("Jos\u{e9}"));
    }

    #[test]
    fn phone_detection_and_digits() {
        assert!(looks_like_phone("(207) 555-01"));
        assert!(!looks_like_phone("555 main"));
        assert!(!looks_like_phone("--"));
        assert_eq!(digits("+1 (207) 555-0142"), "12075550142");
    }
}
