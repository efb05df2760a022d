//! Which contact an inbox file belongs to, and why.
//!
//! The tests run in a fixed order and the first that names exactly one contact wins: a folder
//! named after the contact, an e-mail address in the file name, the user's rules, the contact's
//! full name in the file name. When a test names two or more contacts the file is ambiguous and
//! goes to review with those contacts as suggestions: the matcher never guesses.

use std::path::{Component, Path};

use attache_core::inbox::{InboxRule, MatchReason, RuleKind, Suggestion};
use attache_core::normalize::fold;
use attache_core::Contact;
use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;

/// How many suggestions a file waiting for review carries.
const MAX_SUGGESTIONS: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMatch {
    Contact {
        contact_id: String,
        contact_name: String,
        reason: MatchReason,
    },
    /// No test named exactly one contact: the user decides, helped by these.
    NeedsFiling { suggestions: Vec<Suggestion> },
}

/// A rule that failed to compile, with the reason.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("the rule {pattern:?} is not a valid {kind}: {reason}")]
pub struct BadRule {
    pub pattern: String,
    pub kind: &'static str,
    pub reason: String,
}

enum CompiledPattern {
    Glob {
        matcher: GlobMatcher,
        whole_path: bool,
    },
    Regex(Regex),
}

struct CompiledRule {
    rule: InboxRule,
    pattern: CompiledPattern,
}

/// Checks a rule's pattern compiles; the Settings form calls this before saving a rule.
pub fn validate(rule: &InboxRule) -> Result<(), BadRule> {
    compile(rule).map(|_| ())
}

fn compile(rule: &InboxRule) -> Result<CompiledRule, BadRule> {
    let pattern = match rule.kind {
        RuleKind::Glob => {
            let glob = GlobBuilder::new(&rule.pattern)
                .case_insensitive(true)
                .literal_separator(true)
                .build()
                .map_err(|e| BadRule {
                    pattern: rule.pattern.clone(),
                    kind: "glob",
                    reason: e.kind().to_string(),
                })?;
            CompiledPattern::Glob {
                matcher: glob.compile_matcher(),
                whole_path: rule.pattern.contains('/'),
            }
        }
        RuleKind::Regex => {
            CompiledPattern::Regex(Regex::new(&rule.pattern).map_err(|e| BadRule {
                pattern: rule.pattern.clone(),
                kind: "regular expression",
                reason: e.to_string(),
            })?)
        }
    };
    Ok(CompiledRule {
        rule: rule.clone(),
        pattern,
    })
}

/// Contacts and rules prepared once for many files.
pub struct Matcher {
    contacts: Vec<Known>,
    rules: Vec<CompiledRule>,
    email_pattern: Regex,
}

struct Known {
    id: String,
    display_name: String,
    /// Folded e-mail, when the contact has one.
    email: Option<String>,
    /// Folded "first last", when the contact has a name of at least two words' worth.
    full_name: Option<String>,
    /// Folded last name (or first, when that is all there is), for suggestions.
    surname: Option<String>,
}

impl Matcher {
    /// Rules that do not compile are reported, never silently skipped.
    pub fn new(contacts: &[Contact], rules: &[InboxRule]) -> Result<Self, BadRule> {
        let contacts = contacts
            .iter()
            .map(|c| {
                let first = c.first_name.as_deref().map(fold).filter(|s| !s.is_empty());
                let last = c.last_name.as_deref().map(fold).filter(|s| !s.is_empty());
                let full_name = match (&first, &last) {
                    (Some(f), Some(l)) => Some(format!("{f} {l}")),
                    // One long name ("Bayview Realty" in a single field) still identifies.
                    (Some(n), None) | (None, Some(n)) if n.contains(' ') => Some(n.clone()),
                    _ => None,
                };
                Known {
                    id: c.id.clone(),
                    display_name: c.display_name.clone(),
                    email: c
                        .email
                        .as_deref()
                        .map(|e| e.trim().to_lowercase())
                        .filter(|e| e.contains('@')),
                    full_name,
                    surname: last.or(first).filter(|s| s.chars().count() >= 3),
                }
            })
            .collect();
        let rules = rules.iter().map(compile).collect::<Result<_, _>>()?;
        let email_pattern = Regex::new(r"(?i)[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+")
            .expect("a valid pattern");
        Ok(Self {
            contacts,
            rules,
            email_pattern,
        })
    }

    /// Matches a file by its path inside the inbox (`Ana Silva/offer.pdf`).
    pub fn match_file(&self, inside_inbox: &Path) -> FileMatch {
        let folders: Vec<String> = match inside_inbox.parent() {
            Some(parent) => parent
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect(),
            None => Vec::new(),
        };
        let file_name = inside_inbox
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = Path::new(&file_name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();

        // 1. The innermost folder named after a contact.
        for folder in folders.iter().rev() {
            let folded = fold(folder);
            let hits = self.find(|k| {
                k.full_name.as_deref() == Some(folded.as_str())
                    || k.email.as_deref() == Some(folded.as_str())
            });
            if let Some(found) = self.decide(hits, |_| MatchReason::Folder {
                folder: folder.clone(),
            }) {
                return found;
            }
        }

        // 2. An e-mail address in the file name.
        let emails: Vec<String> = self
            .email_pattern
            .find_iter(&stem)
            .map(|m| m.as_str().to_lowercase())
            .collect();
        if !emails.is_empty() {
            let hits = self.find(|k| k.email.as_ref().is_some_and(|e| emails.contains(e)));
            if let Some(found) = self.decide(hits, |k| MatchReason::Email {
                email: k.email.clone().unwrap_or_default(),
            }) {
                return found;
            }
        }

        // 3. The user's rules, in the order they were written; the first that matches decides.
        let slashed = folders
            .iter()
            .map(String::as_str)
            .chain([file_name.as_str()])
            .collect::<Vec<_>>()
            .join("/");
        for compiled in &self.rules {
            let hit = match &compiled.pattern {
                CompiledPattern::Glob {
                    matcher,
                    whole_path: true,
                } => matcher.is_match(&slashed),
                CompiledPattern::Glob {
                    matcher,
                    whole_path: false,
                } => matcher.is_match(&file_name),
                CompiledPattern::Regex(re) => re.is_match(&slashed),
            };
            if hit {
                if let Some(k) = self
                    .contacts
                    .iter()
                    .find(|k| k.id == compiled.rule.contact_id)
                {
                    return FileMatch::Contact {
                        contact_id: k.id.clone(),
                        contact_name: k.display_name.clone(),
                        reason: MatchReason::Rule {
                            pattern: compiled.rule.pattern.clone(),
                        },
                    };
                }
            }
        }

        // 4. A full name in the file name, as whole words ("Offer - Ana Silva (signed)").
        let words = name_words(&stem);
        let hits = self.find(|k| {
            k.full_name
                .as_deref()
                .is_some_and(|n| contains_words(&words, n))
        });
        if let Some(found) = self.decide(hits, |k| MatchReason::Name {
            name: k.display_name.clone(),
        }) {
            return found;
        }

        // Nothing decisive: offer the contacts whose surname or e-mail user part appears.
        let suggestions = self
            .contacts
            .iter()
            .filter_map(|k| {
                let surname = k.surname.as_deref()?;
                contains_words(&words, surname).then(|| Suggestion {
                    contact_id: k.id.clone(),
                    contact_name: k.display_name.clone(),
                    why: format!("the name holds \u{201c}{surname}\u{201d}"),
                })
            })
            .take(MAX_SUGGESTIONS)
            .collect();
        FileMatch::NeedsFiling { suggestions }
    }

    fn find(&self, test: impl Fn(&Known) -> bool) -> Vec<&Known> {
        self.contacts.iter().filter(|k| test(k)).collect()
    }

    /// One hit decides; several make the file ambiguous (review, with them as suggestions);
    /// none lets the next test try.
    fn decide(
        &self,
        hits: Vec<&Known>,
        reason: impl Fn(&Known) -> MatchReason,
    ) -> Option<FileMatch> {
        match hits.as_slice() {
            [] => None,
            [one] => Some(FileMatch::Contact {
                contact_id: one.id.clone(),
                contact_name: one.display_name.clone(),
                reason: reason(one),
            }),
            several => Some(FileMatch::NeedsFiling {
                suggestions: several
                    .iter()
                    .take(MAX_SUGGESTIONS)
                    .map(|k| Suggestion {
                        contact_id: k.id.clone(),
                        contact_name: k.display_name.clone(),
                        why: format!(
                            "{} (and {} other contacts)",
                            reason(k).explain(),
                            several.len() - 1
                        ),
                    })
                    .collect(),
            }),
        }
    }
}

/// The file name's words, folded: separators such as `_`, `-`, `.` and brackets split words.
fn name_words(stem: &str) -> Vec<String> {
    fold(stem)
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// True when the folded `name`'s words appear consecutively among `words`.
fn contains_words(words: &[String], name: &str) -> bool {
    let wanted: Vec<&str> = name
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    !wanted.is_empty()
        && words
            .windows(wanted.len())
            .any(|window| window.iter().zip(&wanted).all(|(a, b)| a == b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(id: &str, first: &str, last: &str, email: &str) -> Contact {
        Contact {
            id: id.into(),
            display_name: format!("{first} {last}"),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            email: Some(email.into()),
            phone: None,
            company: None,
            address: None,
            created_at: None,
        }
    }

    fn people() -> Vec<Contact> {
        vec![
            contact("ana", "Ana", "Silva", "ana.silva@example.com"),
            contact("jose", "José", "Álvarez", "jose@example.com"),
            contact("noah", "Noah", "Silva", "noah@example.com"),
            contact("ana2", "Ana", "Silva", "ana.s@other.com"),
        ]
    }

    fn filed(m: &Matcher, path: &str) -> Option<(String, MatchReason)> {
        match m.match_file(Path::new(path)) {
            FileMatch::Contact {
                contact_id, reason, ..
            } => Some((contact_id, reason)),
            FileMatch::NeedsFiling { .. } => None,
        }
    }

    #[test]
    fn a_folder_named_after_a_contact_wins_first() {
        let m = Matcher::new(&people(), &[]).unwrap();
        // Accent-, case- and spacing-insensitive, NFC and NFD alike.
        for folder in [
            "José Álvarez",
            "jose  alvarez",
            "Jose\u{301} A\u{301}lvarez",
            "JOSE@example.com",
        ] {
            let (id, reason) = filed(&m, &format!("{folder}/contract.pdf")).unwrap();
            assert_eq!(id, "jose", "{folder}");
            assert!(matches!(reason, MatchReason::Folder { .. }));
        }
        // The innermost named folder decides, even when the file name says otherwise.
        assert_eq!(
            filed(&m, "José Álvarez/noah@example.com.pdf").unwrap().0,
            "jose"
        );
    }

    #[test]
    fn an_email_in_the_name_then_rules_then_a_full_name() {
        let rules = [InboxRule {
            pattern: "*harbor*".into(),
            kind: RuleKind::Glob,
            contact_id: "noah".into(),
        }];
        let m = Matcher::new(&people(), &rules).unwrap();
        assert_eq!(
            filed(&m, "scan ana.silva@example.com 2026.pdf").unwrap(),
            (
                "ana".into(),
                MatchReason::Email {
                    email: "ana.silva@example.com".into()
                }
            )
        );
        assert_eq!(
            filed(&m, "12 Harbor Lane inspection.pdf").unwrap(),
            (
                "noah".into(),
                MatchReason::Rule {
                    pattern: "*harbor*".into()
                }
            )
        );
        let (id, reason) = filed(&m, "Offer_jose-alvarez_signed.pdf").unwrap();
        assert_eq!(
            (id.as_str(), reason),
            (
                "jose",
                MatchReason::Name {
                    name: "José Álvarez".into()
                }
            )
        );
        // Words, not substrings: "Noah Silvana" is nobody here.
        assert!(filed(&m, "noah silvana.pdf").is_none());
    }

    #[test]
    fn two_contacts_matching_means_review_never_a_guess() {
        let m = Matcher::new(&people(), &[]).unwrap();
        match m.match_file(Path::new("Ana Silva - deed.pdf")) {
            FileMatch::NeedsFiling { suggestions } => {
                let ids: Vec<_> = suggestions.iter().map(|s| s.contact_id.as_str()).collect();
                assert_eq!(ids, ["ana", "ana2"]);
            }
            other => panic!("{other:?}"),
        }
        // Nothing decisive: contacts whose surname appears are suggested.
        match m.match_file(Path::new("silva inspection.pdf")) {
            FileMatch::NeedsFiling { suggestions } => assert_eq!(suggestions.len(), 3),
            other => panic!("{other:?}"),
        }
        match m.match_file(Path::new("IMG_0042.jpg")) {
            FileMatch::NeedsFiling { suggestions } => assert!(suggestions.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rules_match_paths_or_names_and_bad_patterns_are_reported() {
        let rules = [
            InboxRule {
                pattern: "scanner/**/*.pdf".into(),
                kind: RuleKind::Glob,
                contact_id: "ana".into(),
            },
            InboxRule {
                pattern: r"^deeds/\d+".into(),
                kind: RuleKind::Regex,
                contact_id: "jose".into(),
            },
        ];
        let m = Matcher::new(&people(), &rules).unwrap();
        assert_eq!(filed(&m, "scanner/2026/11/a.pdf").unwrap().0, "ana");
        assert!(filed(&m, "other/a.pdf").is_none());
        assert_eq!(filed(&m, "deeds/123 lot.pdf").unwrap().0, "jose");
        let bad = InboxRule {
            pattern: "[".into(),
            kind: RuleKind::Regex,
            contact_id: "ana".into(),
        };
        assert!(validate(&bad)
            .unwrap_err()
            .to_string()
            .contains("regular expression"));
        assert!(Matcher::new(&people(), &[bad]).is_err());
    }
}
