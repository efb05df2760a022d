//! The Tauri shell: window, commands, the `thumb:` protocol. Every command is a few lines that
//! call [`attache_service::Attache`]; all behaviour lives in the core crates.

// Before the modules, so `with_commands!` is in scope below.
#[macro_use]
mod command_list;
mod commands;
mod core;
mod thumbs;

use tauri::Manager;

/// Registers every command of the one list (`command_list.rs`).
macro_rules! handler {
    ($($command:ident),* $(,)?) => {
        tauri::generate_handler![$(commands::$command),*]
    };
}

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
        .invoke_handler(with_commands!(handler))
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
