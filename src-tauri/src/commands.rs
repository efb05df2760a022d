//! IPC commands. Errors cross as `{code, message}` ([`ErrorPayload`]).

use attache_core::{AccountInfo, AccountList, AppStatus, Attachment, ContactPage, ErrorCode, ErrorPayload, Sensitive};
use attache_service::accounts;
use attache_vault::Vault;
use tauri::{AppHandle, Emitter, State};
use tauri_plugin_dialog::DialogExt;
use tauri_plugin_opener::OpenerExt;

use crate::core::{home, Core};

type Reply<T> = Result<T, ErrorPayload>;

/// Most rows one call returns; the list fetches the pages it shows, so this only bounds a reply.
const MAX_PAGE: usize = 1000;

#[tauri::command]
pub async fn app_status(core: State<'_, Core>) -> Reply<AppStatus> {
    let app = core.get().await?;
    Ok(AppStatus { account: app.account().clone(), contacts_cached: app.contacts_cached()? })
}

#[tauri::command]
pub async fn search_contacts(
    core: State<'_, Core>,
    query: String,
    offset: usize,
    limit: usize,
) -> Reply<ContactPage> {
    let app = core.get().await?;
    Ok(app.search_contacts(&query, offset, limit.min(MAX_PAGE)))
}

/// Refreshes the contact cache from the CRM. Also emits `contacts-refreshed` so every view
/// (not only the caller) repaints.
#[tauri::command]
pub async fn refresh_contacts(core: State<'_, Core>, handle: AppHandle) -> Reply<usize> {
    let app = core.get().await?;
    let count = app.refresh_contacts().await?;
    let _ = handle.emit("contacts-refreshed", count);
    Ok(count)
}

/// The contact's attachments: from the cache, or fresh from the CRM when `refresh` is set.
#[tauri::command]
pub async fn list_attachments(core: State<'_, Core>, contact_id: String, refresh: bool) -> Reply<Vec<Attachment>> {
    let app = core.get().await?;
    if refresh {
        Ok(app.refresh_attachments(&contact_id).await?)
    } else {
        Ok(app.cached_attachments(&contact_id)?)
    }
}

/// Downloads the attachment to the cache (once) and opens it with the system's default app.
#[tauri::command]
pub async fn open_attachment(
    core: State<'_, Core>,
    handle: AppHandle,
    contact_id: String,
    attachment_id: String,
) -> Reply<String> {
    let app = core.get().await?;
    let path = app.download(&contact_id, &attachment_id).await?;
    let shown = path.to_string_lossy().into_owned();
    handle
        .opener()
        .open_path(shown.clone(), None::<&str>)
        .map_err(|e| {
            tracing::warn!("opening {shown}: {e}");
            ErrorPayload::new(ErrorCode::NoApplication, format!("no application opens {shown}"))
        })?;
    Ok(shown)
}

/// Asks where to save (native dialog, from Rust so the webview never picks paths) and copies
/// the attachment there. `None` when the user cancels.
#[tauri::command]
pub async fn save_attachment_as(
    core: State<'_, Core>,
    handle: AppHandle,
    contact_id: String,
    attachment_id: String,
    file_name: String,
) -> Reply<Option<String>> {
    let app = core.get().await?;
    let suggested = attache_service::safe_file_name(&file_name);
    let chosen = handle.dialog().file().set_file_name(&suggested).blocking_save_file();
    let Some(target) = chosen else { return Ok(None) };
    let target = target
        .into_path()
        .map_err(|e| ErrorPayload::new(ErrorCode::InvalidInput, format!("cannot save there: {e}")))?;
    app.save_as(&contact_id, &attachment_id, &target).await?;
    Ok(Some(target.to_string_lossy().into_owned()))
}

#[tauri::command]
pub async fn list_accounts() -> Reply<AccountList> {
    let config = accounts::Config::load(&home()?)?;
    Ok(AccountList {
        current: config.current.clone().unwrap_or_else(|| accounts::DEMO.to_string()),
        accounts: config.accounts.iter().map(|a| a.info()).collect(),
    })
}

/// Connects a Wix site (checked with real calls; the key goes to the OS keyring only), makes it
/// current and reopens the window's data on it.
#[tauri::command]
pub async fn connect_wix(
    core: State<'_, Core>,
    name: String,
    site_id: String,
    api_key: String,
    base_url: String,
) -> Reply<AccountInfo> {
    let vault = Vault::system().await?;
    let login = accounts::WixLogin { name, base_url, site_id, api_key: Sensitive::new(api_key) };
    let info = accounts::login_wix(&home()?, &vault, login).await?;
    core.reopen().await?;
    Ok(info)
}

/// Switches to a saved account, or to the Demo site with "demo".
#[tauri::command]
pub async fn use_account(core: State<'_, Core>, name: String) -> Reply<()> {
    accounts::use_account(&home()?, &name)?;
    core.reopen().await?;
    Ok(())
}

/// Signs out: the secret leaves the keyring, the account and its cached data are deleted.
#[tauri::command]
pub async fn sign_out(core: State<'_, Core>, name: String) -> Reply<()> {
    let vault = Vault::system().await?;
    accounts::logout(&home()?, &vault, &name).await?;
    core.reopen().await?;
    Ok(())
}
