//! How the inbox explains where a file went: the user's rules, the reason a file was filed
//! onto a contact, and the contacts suggested for a file it could not file by itself. The
//! matcher that produces them lives in the service crate's inbox room.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The folder filed files are moved to, inside each inbox; never matched or watched.
pub const FILED_FOLDER: &str = "Filed";

/// A user's rule: files whose path inside the inbox matches go to this contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct InboxRule {
    pub pattern: String,
    pub kind: RuleKind,
    pub contact_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum RuleKind {
    /// `*`, `?`, `[...]`, `**`; case-insensitive; matched against the path inside the inbox
    /// with `/` separators (`scans/*Harbor*.pdf`), or against the file name alone when the
    /// pattern has no `/`.
    Glob,
    /// A regular expression searched in the path inside the inbox (`/` separators).
    Regex,
}

/// Why a file was filed onto a contact; stored with the file and shown in the Inbox panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[ts(export)]
pub enum MatchReason {
    /// It sits in a folder named after the contact.
    Folder { folder: String },
    /// Its name holds the contact's e-mail address.
    Email { email: String },
    /// A user rule matched it.
    Rule { pattern: String },
    /// Its name holds the contact's full name.
    Name { name: String },
    /// The user chose the contact.
    Chosen,
}

impl MatchReason {
    /// One line for the Inbox panel and the CLI.
    pub fn explain(&self) -> String {
        match self {
            MatchReason::Folder { folder } => format!("in the folder \u{201c}{folder}\u{201d}"),
            MatchReason::Email { email } => format!("the name holds {email}"),
            MatchReason::Rule { pattern } => format!("rule \u{201c}{pattern}\u{201d}"),
            MatchReason::Name { name } => format!("the name holds \u{201c}{name}\u{201d}"),
            MatchReason::Chosen => "chosen by you".into(),
        }
    }
}

/// A contact offered for a file that could not be filed by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct Suggestion {
    pub contact_id: String,
    pub contact_name: String,
    /// Why it is offered, e.g. "the name holds \u{201c}Silva\u{201d}".
    pub why: String,
}
