fn main() {
    // Only these commands get permissions generated, and capabilities/default.json grants exactly
    // them: the webview can call nothing else.
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "app_status",
            "search_contacts",
            "refresh_contacts",
            "list_attachments",
            "open_attachment",
            "save_attachment_as",
            "list_accounts",
            "connect_wix",
            "use_account",
            "sign_out",
        ]),
    ))
    .expect("tauri build script");
}
