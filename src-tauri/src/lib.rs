//! The Tauri shell: window, commands, the `thumb:` protocol. Every command is a few lines that
//! call [`attache_service::Attache`]; all behaviour lives in the core crates.

// Before the modules, so `with_commands!` is in scope below.
#[macro_use]
mod command_list;
mod commands;
mod core;
mod desktop;
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
        // First: a second launch hands its arguments to this instance and exits before
        // anything else starts (D-Bus name `app.attache.desktop.SingleInstance`).
        .plugin(tauri_plugin_single_instance::init(|app, args, cwd| {
            desktop::on_second_launch(app, args, cwd)
        }))
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(
            tauri_plugin_autostart::Builder::new()
                // An ASCII file name (~/.config/autostart/attache.desktop), starting hidden.
                .app_name("attache")
                .arg("--hidden")
                .build(),
        )
        .manage(core::Core::default())
        .manage(desktop::Desktop::default())
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                desktop::on_close_requested(window, api);
            }
        })
        .register_asynchronous_uri_scheme_protocol("thumb", thumbs::handle)
        .invoke_handler(with_commands!(handler))
        .setup(|app| {
            // Start the core (and the Demo site) while the webview loads; commands await it.
            let handle = app.handle().clone();
            handle.state::<core::Core>().attach(handle.clone());
            desktop::setup(&handle);
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
