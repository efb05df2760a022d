// The one list of the commands the window may call. `lib.rs` registers exactly these handlers,
// and `build.rs` generates from it both the app manifest (one permission per command) and the
// window's capability (`capabilities/default.json`), so a command can no longer be registered
// but refused (as `connect_espo` and `connect_wix_app` were). Add a command here and nowhere
// else. Plain `macro_rules!` text, because `build.rs` includes this file too.
macro_rules! with_commands {
    ($then:ident) => {
        $then! {
            app_status,
            search_contacts,
            refresh_contacts,
            list_attachments,
            open_attachment,
            save_attachment_as,
            list_accounts,
            connect_wix,
            connect_espo,
            connect_wix_app,
            use_account,
            sign_out,
            queue_files,
            convert_and_queue,
            pick_files,
            list_uploads,
            cancel_upload,
            cancel_all_uploads,
            retry_upload,
            clear_finished_uploads,
            inbox_state,
            save_inbox_settings,
            add_inbox_folder,
            file_inbox_item,
            retry_inbox_item,
            desktop_state,
            save_desktop_settings,
            pause_uploads,
            pause_watching,
            take_opened_files,
        }
    };
}
