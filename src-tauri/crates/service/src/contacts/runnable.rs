//! Files a click must not run. "Open" hands a CRM's file to the desktop's opener, which runs
//! programs, scripts and launchers as readily as it shows a PDF; a file from the CRM is only as
//! trustworthy as whoever attached it. Judged by the name (the last extension, after bidi
//! controls are gone) and by the first bytes (a program or script renamed `.pdf`).

use std::io::Read;
use std::path::Path;

/// Extensions a desktop runs, installs or interprets when opened, on any of the three OSes.
const RUNNABLE: &[&str] = &[
    "app",
    "appimage",
    "apk",
    "application",
    "bash",
    "bat",
    "bin",
    "cmd",
    "com",
    "command",
    "cpl",
    "csh",
    "deb",
    "desktop",
    "dmg",
    "elf",
    "exe",
    "gadget",
    "hta",
    "inf",
    "ins",
    "isp",
    "jar",
    "js",
    "jse",
    "ksh",
    "lnk",
    "msc",
    "msi",
    "msp",
    "mst",
    "pif",
    "pkg",
    "pl",
    "ps1",
    "ps1xml",
    "ps2",
    "psc1",
    "psm1",
    "py",
    "pyw",
    "rb",
    "reg",
    "rpm",
    "run",
    "scf",
    "scr",
    "sct",
    "sh",
    "shb",
    "url",
    "vb",
    "vbe",
    "vbs",
    "webloc",
    "workflow",
    "ws",
    "wsc",
    "wsf",
    "wsh",
    "xpi",
    "zsh",
];

/// Why a file will not be opened by a click, or `None` when it may be.
pub fn refuses_to_open(path: &Path, file_name: &str) -> Option<String> {
    let shown = crate::names::display_name(file_name);
    let extension = Path::new(&shown)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if RUNNABLE.contains(&extension.as_str()) {
        return Some(format!(
            "{shown} is a program or script (.{extension}): Attaché does not open those; use “Save as…” if you trust whoever attached it"
        ));
    }
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..n];
    let kind = if head.starts_with(b"\x7fELF") {
        Some("a Linux program")
    } else if head.starts_with(b"MZ") {
        Some("a Windows program")
    } else if head.starts_with(b"#!") {
        Some("a script")
    } else if head.starts_with(b"[Desktop Entry]") {
        Some("a desktop launcher")
    } else if head.starts_with(&[0xCF, 0xFA, 0xED, 0xFE])
        || head.starts_with(&[0xCA, 0xFE, 0xBA, 0xBE])
    {
        Some("a macOS program")
    } else {
        None
    };
    kind.map(|kind| {
        format!(
            "{shown} is {kind}, whatever its name says: Attaché does not open those; use “Save as…” if you trust whoever attached it"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_bytes(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        f
    }

    #[test]
    fn programs_scripts_and_launchers_are_not_opened_whatever_their_name() {
        let pdf = with_bytes(b"%PDF-1.4\n");
        assert_eq!(refuses_to_open(pdf.path(), "Contract.pdf"), None);
        assert_eq!(refuses_to_open(pdf.path(), "photo.JPG"), None);
        // A name that displays as "...exe.pdf" but ends in .exe.
        let why = refuses_to_open(pdf.path(), "Invoice\u{202E}fdp.exe").unwrap();
        assert!(
            why.starts_with("Invoicefdp.exe is a program or script (.exe)"),
            "{why}"
        );
        for name in [
            "setup.MSI",
            "run.sh",
            "x.desktop",
            "link.lnk",
            "page.hta",
            "a.ps1",
        ] {
            assert!(refuses_to_open(pdf.path(), name).is_some(), "{name}");
        }
        for (bytes, kind) in [
            (&b"\x7fELF\x02\x01"[..], "a Linux program"),
            (b"MZ\x90\x00", "a Windows program"),
            (b"#!/bin/sh\nrm -rf ~\n", "a script"),
            (b"[Desktop Entry]\nExec=sh\n", "a desktop launcher"),
        ] {
            let f = with_bytes(bytes);
            let why = refuses_to_open(f.path(), "Scan.pdf").unwrap();
            assert!(why.contains(kind), "{why}");
        }
    }
}
