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
            "queue_files",
            "convert_and_queue",
            "pick_files",
            "list_uploads",
            "cancel_upload",
            "cancel_all_uploads",
            "retry_upload",
            "clear_finished_uploads",
            "inbox_state",
            "save_inbox_settings",
            "add_inbox_folder",
            "file_inbox_item",
            "retry_inbox_item",
        ]),
    ))
    .expect("tauri build script");
}
