//! The Tauri shell: window, commands, the `thumb:` protocol. Every command is a few lines that
//! call [`attache_service::Attache`]; all behaviour lives in the core crates.

mod commands;
mod core;
mod thumbs;

use tauri::Manager;

pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ATTACHE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let result = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .manage(core::Core::default())
        .register_asynchronous_uri_scheme_protocol("thumb", thumbs::handle)
        .invoke_handler(tauri::generate_handler![
            commands::app_status,
            commands::search_contacts,
            commands::refresh_contacts,
            commands::list_attachments,
            commands::open_attachment,
            commands::save_attachment_as,
            commands::list_accounts,
            commands::connect_wix,
            commands::connect_espo,
            commands::connect_wix_app,
            commands::use_account,
            commands::sign_out,
            commands::queue_files,
            commands::convert_and_queue,
            commands::pick_files,
            commands::list_uploads,
            commands::cancel_upload,
            commands::cancel_all_uploads,
            commands::retry_upload,
            commands::clear_finished_uploads,
            commands::inbox_state,
            commands::save_inbox_settings,
            commands::add_inbox_folder,
            commands::file_inbox_item,
            commands::retry_inbox_item,
        ])
        .setup(|app| {
            // Start the core (and the Demo site) while the webview loads; commands await it.
            let handle = app.handle().clone();
            handle.state::<core::Core>().attach(handle.clone());
            tauri::async_runtime::spawn(async move {
                if let Err(e) = handle.state::<core::Core>().get().await {
                    tracing::error!("Attaché could not start: {}", e.message);
                }
            });
            Ok(())
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("Attaché could not open its window: {e}");
        std::process::exit(1);
    }
}
