//! Contact search while the user types, over an in-memory index of the cached contacts.
//!
//! SQLite keeps the cache durable; typing is served from memory because every keystroke must
//! answer within a frame even for 50,000 contacts, and a scan of precomputed, folded strings
//! does that where SQL (FTS or `LIKE`) plus row decoding does not (see `make bench`).
//! Results are paged so the virtualized list only ever fetches the rows it shows.

use attache_core::normalize::{digits, fold, looks_like_phone};
use attache_core::{Contact, ContactPage};

/// Below this many characters a query matches prefixes only: a 1- or 2-letter substring
/// matches nearly everyone, which helps nobody.
const SUBSTRING_MIN_CHARS: usize = 3;
/// Phone queries need this many digits before they filter anything.
const PHONE_MIN_DIGITS: usize = 3;

struct Entry {
    contact: Contact,
    /// Folded display name, first name, last name and e-mail, for prefix matches.
    full: String,
    first: String,
    last: String,
    email: String,
    /// Everything searchable as one folded string, for substring matches.
    haystack: String,
    phone_digits: String,
}

#[derive(Default)]
pub struct ContactIndex {
    /// In list order: by folded display name, then id (stable across refreshes).
    entries: Vec<Entry>,
}

impl ContactIndex {
    pub fn new(contacts: Vec<Contact>) -> Self {
        let mut entries: Vec<Entry> = contacts
            .into_iter()
            .map(|c| {
                let full = fold(&c.display_name);
                let email = fold(c.email.as_deref().unwrap_or(""));
                let mut haystack = format!("{full} {email}");
                if let Some(company) = &c.company {
                    haystack.push(' ');
                    haystack.push_str(&fold(company));
                }
                Entry {
                    first: fold(c.first_name.as_deref().unwrap_or("")),
                    last: fold(c.last_name.as_deref().unwrap_or("")),
                    phone_digits: digits(c.phone.as_deref().unwrap_or("")),
                    full,
                    email,
                    haystack,
                    contact: c,
                }
            })
            .collect();
        entries.sort_by(|a, b| {
            a.full
                .cmp(&b.full)
                .then_with(|| a.contact.id.cmp(&b.contact.id))
        });
        Self { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Contacts matching `query` in list order, `limit` of them from `offset`, with the number
    /// of matches. An empty query matches everyone. A query of phone characters matches phone
    /// digits; otherwise a name/e-mail prefix, or (from 3 characters) any part of the name,
    /// e-mail or company, case- and accent-insensitively.
    pub fn search(&self, query: &str, offset: usize, limit: usize) -> ContactPage {
        let matcher = Matcher::new(query);
        let mut matched = 0usize;
        let mut contacts = Vec::with_capacity(limit.min(256));
        for entry in &self.entries {
            if matcher.matches(entry) {
                if matched >= offset && contacts.len() < limit {
                    contacts.push(entry.contact.clone());
                }
                matched += 1;
            }
        }
        ContactPage {
            contacts,
            offset: offset as u64,
            matched: matched as u64,
            cached_total: self.entries.len() as u64,
        }
    }
}

enum Matcher {
    All,
    Phone(String),
    Prefix(String),
    Substring(String),
}

impl Matcher {
    fn new(query: &str) -> Self {
        let query = query.trim();
        if query.is_empty() {
            return Matcher::All;
        }
        let phone = digits(query);
        if looks_like_phone(query) && phone.len() >= PHONE_MIN_DIGITS {
            return Matcher::Phone(phone);
        }
        let needle = fold(query);
        if needle.is_empty() {
            Matcher::All
        } else if needle.chars().count() < SUBSTRING_MIN_CHARS {
            Matcher::Prefix(needle)
        } else {
            Matcher::Substring(needle)
        }
    }

    fn matches(&self, e: &Entry) -> bool {
        match self {
            Matcher::All => true,
            Matcher::Phone(d) => e.phone_digits.contains(d.as_str()),
            Matcher::Prefix(p) => {
                e.full.starts_with(p.as_str())
                    || e.first.starts_with(p.as_str())
                    || e.last.starts_with(p.as_str())
                    || e.email.starts_with(p.as_str())
            }
            Matcher::Substring(s) => e.haystack.contains(s.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(id: &str, first: &str, last: &str, email: &str, phone: &str) -> Contact {
        Contact {
            id: id.into(),
            display_name: format!("{first} {last}"),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            email: Some(email.into()),
            phone: Some(phone.into()),
            company: None,
            address: None,
            created_at: None,
        }
    }

    fn sample() -> ContactIndex {
        ContactIndex::new(vec![
            contact(
                "1",
                "Ana",
                "Silva",
                "ana.silva@example.com",
                "+1 (207) 555-0142",
            ),
            contact(
                "2",
                "José",
                "Álvarez",
                "jalvarez@example.org",
                "207-555-0199",
            ),
            contact("3", "Anton", "Berg", "anton@berg.example", "(415) 555-2671"),
        ])
    }

    fn ids(index: &ContactIndex, q: &str) -> Vec<String> {
        index
            .search(q, 0, 10)
            .contacts
            .into_iter()
            .map(|c| c.id)
            .collect()
    }

    #[test]
    fn empty_query_lists_everything_in_name_order() {
        let page = sample().search("", 0, 10);
        let got: Vec<_> = page.contacts.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(got, ["1", "3", "2"]);
        assert_eq!((page.matched, page.cached_total), (3, 3));
    }

    #[test]
    fn short_queries_match_name_and_email_prefixes_only() {
        let index = sample();
        assert_eq!(ids(&index, "an"), ["1", "3"]);
        assert_eq!(ids(&index, "b"), ["3"]);
        assert_eq!(ids(&index, "ja"), ["2"], "e-mail prefix");
        assert!(ids(&index, "va").is_empty(), "no 2-letter substrings");
    }

    #[test]
    fn longer_queries_match_anywhere_accent_and_case_free() {
        let index = sample();
        assert_eq!(ids(&index, "example.org"), ["2"]);
        assert_eq!(ids(&index, "alvarez"), ["2"]);
        assert_eq!(ids(&index, "ÁLVAREZ"), ["2"]);
        assert_eq!(ids(&index, "jose\u{301} al"), ["2"], "NFD input");
        assert_eq!(ids(&index, "ana silva"), ["1"]);
        assert_eq!(ids(&index, "ilva"), ["1"]);
        assert!(ids(&index, "zzz").is_empty());
        assert!(ids(&index, "\"a\" OR b*").is_empty(), "no query syntax");
    }

    #[test]
    fn phone_queries_match_digits_whatever_the_punctuation() {
        let index = sample();
        assert_eq!(ids(&index, "555-0142"), ["1"]);
        assert_eq!(ids(&index, "5552671"), ["3"]);
        assert_eq!(ids(&index, "(207)"), ["1", "2"]);
    }

    #[test]
    fn pages_report_the_match_count() {
        let index = sample();
        let page = index.search("", 1, 1);
        assert_eq!(page.contacts[0].id, "3");
        assert_eq!((page.offset, page.matched), (1, 3));
        assert!(index.search("", 5, 10).contacts.is_empty());
    }
}
