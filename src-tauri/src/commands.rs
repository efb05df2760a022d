//! IPC commands. Errors cross as `{code, message}` ([`ErrorPayload`]).

use attache_core::desktop::{DesktopSettings, DesktopState, OpenedFiles};
use attache_core::inbox::{
    InboxFolder, InboxItem, InboxOverview, InboxRule, InboxSettings, RuleKind,
};
use attache_core::upload::{QueueReport, UploadView};
use attache_core::{
    AccountInfo, AccountList, AppStatus, Attachment, ContactPage, ErrorCode, ErrorPayload,
    Sensitive,
};
use attache_service::accounts;
use attache_vault::Vault;
use tauri::{AppHandle, Emitter, State};
use tauri_plugin_dialog::DialogExt;
use tauri_plugin_opener::OpenerExt;

use crate::core::{home, Core, Session};
use crate::desktop::{self, Desktop, Pausable};

type Reply<T> = Result<T, ErrorPayload>;

/// Most rows one call returns; the list fetches the pages it shows, so this only bounds a reply.
const MAX_PAGE: usize = 1000;

#[tauri::command]
pub async fn app_status(core: State<'_, Core>) -> Reply<AppStatus> {
    let app = core.get().await?;
    Ok(AppStatus {
        account: app.account().clone(),
        capabilities: app.capabilities(),
        contacts_cached: app.contacts().cached()?,
    })
}

#[tauri::command]
pub async fn search_contacts(
    core: State<'_, Core>,
    query: String,
    offset: usize,
    limit: usize,
) -> Reply<ContactPage> {
    let app = core.get().await?;
    Ok(app.contacts().search(&query, offset, limit.min(MAX_PAGE)))
}

/// Refreshes the contact cache from the CRM. Also emits `contacts-refreshed` so every view
/// (not only the caller) repaints.
#[tauri::command]
pub async fn refresh_contacts(core: State<'_, Core>, handle: AppHandle) -> Reply<usize> {
    let app = core.get().await?;
    let count = app.contacts().refresh().await?;
    let _ = handle.emit("contacts-refreshed", count);
    Ok(count)
}

/// The contact's attachments: from the cache, or fresh from the CRM when `refresh` is set.
#[tauri::command]
pub async fn list_attachments(
    core: State<'_, Core>,
    contact_id: String,
    refresh: bool,
) -> Reply<Vec<Attachment>> {
    let app = core.get().await?;
    if refresh {
        Ok(app.contacts().refresh_attachments(&contact_id).await?)
    } else {
        Ok(app.contacts().cached_attachments(&contact_id)?)
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
    let path = app
        .contacts()
        .copy_to_open(&contact_id, &attachment_id)
        .await?;
    let shown = path.to_string_lossy().into_owned();
    handle
        .opener()
        .open_path(shown.clone(), None::<&str>)
        .map_err(|e| {
            tracing::warn!("opening {shown}: {e}");
            ErrorPayload::new(
                ErrorCode::NoApplication,
                format!("no application opens {shown}"),
            )
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
    let chosen = handle
        .dialog()
        .file()
        .set_file_name(&suggested)
        .blocking_save_file();
    let Some(target) = chosen else {
        return Ok(None);
    };
    let target = target.into_path().map_err(|e| {
        ErrorPayload::new(ErrorCode::InvalidInput, format!("cannot save there: {e}"))
    })?;
    app.contacts()
        .save_as(&contact_id, &attachment_id, &target)
        .await?;
    Ok(Some(target.to_string_lossy().into_owned()))
}

#[tauri::command]
pub async fn list_accounts() -> Reply<AccountList> {
    let config = accounts::Config::load(&home()?)?;
    Ok(AccountList {
        current: config
            .current
            .clone()
            .unwrap_or_else(|| accounts::DEMO.to_string()),
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
    let login = accounts::WixLogin {
        name,
        base_url,
        site_id,
        api_key: Sensitive::new(api_key),
    };
    connect(&core, accounts::Login::Wix(login)).await
}

/// Connects a Wix site as an installed Wix app (client-credentials OAuth; checked with a real
/// token and call; the app secret goes to the OS keyring only).
#[tauri::command]
pub async fn connect_wix_app(
    core: State<'_, Core>,
    name: String,
    app_id: String,
    instance_id: String,
    app_secret: String,
    base_url: String,
) -> Reply<AccountInfo> {
    let login = accounts::WixAppLogin {
        name,
        base_url,
        app_id,
        instance_id,
        app_secret: Sensitive::new(app_secret),
    };
    connect(&core, accounts::Login::WixApp(login)).await
}

/// Connects an EspoCRM server by API key, or API key + HMAC secret (checked with real calls;
/// the secrets go to the OS keyring only), makes it current and reopens the window on it.
#[tauri::command]
pub async fn connect_espo(
    core: State<'_, Core>,
    name: String,
    site_url: String,
    api_key: String,
    hmac_secret: Option<String>,
) -> Reply<AccountInfo> {
    let login = accounts::EspoLogin {
        name,
        site_url,
        api_key: Sensitive::new(api_key),
        hmac_secret: hmac_secret.filter(|s| !s.is_empty()).map(Sensitive::new),
    };
    connect(&core, accounts::Login::Espo(login)).await
}

/// Checks and saves a login, then reopens the window's data on the new account.
async fn connect(core: &Core, login: accounts::Login) -> Reply<AccountInfo> {
    let info = accounts::login(&home()?, login).await?;
    core.reopen().await?;
    Ok(info)
}

/// Switches to a saved account, or to the Demo site with "demo" ("demo-espo" for it as EspoCRM).
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

/// Checks and queues dropped or picked files (folders are walked) for a contact. Nothing goes
/// over the network here; the report says what was queued and why anything was refused.
#[tauri::command]
pub async fn queue_files(
    core: State<'_, Core>,
    contact_id: String,
    paths: Vec<String>,
    force: bool,
) -> Reply<QueueReport> {
    let app = core.get().await?;
    let contact = app.contacts().resolve(&contact_id).await?;
    Ok(app
        .uploads()
        .queue_files(&contact, paths.into_iter().map(Into::into).collect(), force)
        .await?)
}

/// The one-click conversion offered for refused images: convert, then queue the copies.
#[tauri::command]
pub async fn convert_and_queue(
    core: State<'_, Core>,
    contact_id: String,
    paths: Vec<String>,
) -> Reply<QueueReport> {
    let app = core.get().await?;
    let contact = app.contacts().resolve(&contact_id).await?;
    Ok(app
        .uploads()
        .convert_and_queue(&contact, paths.into_iter().map(Into::into).collect())
        .await?)
}

/// "Attach files…": the native picker (from Rust: the webview never chooses paths itself),
/// then the same path as a drop. `None` when the user cancels.
#[tauri::command]
pub async fn pick_files(
    core: State<'_, Core>,
    handle: AppHandle,
    contact_id: String,
    as_document: Option<bool>,
) -> Reply<Option<QueueReport>> {
    let app = core.get().await?;
    let contact = app.contacts().resolve(&contact_id).await?;
    let as_document = as_document.unwrap_or(false);
    let title = if as_document {
        format!("Attach as Documents to {}", contact.display_name)
    } else {
        format!("Attach files to {}", contact.display_name)
    };
    let Some(picked) = handle
        .dialog()
        .file()
        .set_title(&title)
        .blocking_pick_files()
    else {
        return Ok(None);
    };
    let paths = picked
        .into_iter()
        .filter_map(|p| p.into_path().ok())
        .collect();
    Ok(Some(
        app.uploads()
            .queue_files_as(&contact, paths, false, as_document)
            .await?,
    ))
}

/// The upload tray's rows: the most recent jobs, newest first.
#[tauri::command]
pub async fn list_uploads(core: State<'_, Core>) -> Reply<Vec<UploadView>> {
    Ok(core.get().await?.uploads().recent(UPLOAD_TRAY_ROWS)?)
}

#[tauri::command]
pub async fn cancel_upload(core: State<'_, Core>, id: i64) -> Reply<bool> {
    core.get()
        .await?
        .uploads()
        .cancel(id)
        .map_err(ErrorPayload::from)
}

/// Cancels every job that has not finished; returns how many.
#[tauri::command]
pub async fn cancel_all_uploads(core: State<'_, Core>) -> Reply<usize> {
    Ok(core.get().await?.uploads().cancel_all()?)
}

#[tauri::command]
pub async fn retry_upload(core: State<'_, Core>, id: i64) -> Reply<bool> {
    core.get()
        .await?
        .uploads()
        .retry(id)
        .map_err(ErrorPayload::from)
}

#[tauri::command]
pub async fn clear_finished_uploads(core: State<'_, Core>) -> Reply<usize> {
    Ok(core.get().await?.uploads().clear_finished()?)
}

/// How many jobs the tray lists.
const UPLOAD_TRAY_ROWS: usize = 200;

/// Rows the Inbox panel shows.
const INBOX_ROWS: usize = 500;

async fn inbox_overview(session: &Session) -> Reply<InboxOverview> {
    let (watching, problem) = session.background.inbox_status().await;
    Ok(InboxOverview {
        settings: session.inbox().settings()?,
        items: session.inbox().items(INBOX_ROWS)?,
        watching,
        problem,
    })
}

/// Saves this account's inbox settings and watches the folders they now name.
async fn save_and_watch(session: &Session, settings: &InboxSettings) -> Reply<()> {
    session.inbox().save_settings(settings)?;
    session.background.restart_inbox(settings.clone()).await;
    Ok(())
}

#[tauri::command]
pub async fn inbox_state(core: State<'_, Core>) -> Reply<InboxOverview> {
    inbox_overview(&*core.get().await?).await
}

/// Saves the inbox settings (folders, what happens after filing, rules) and restarts watching.
#[tauri::command]
pub async fn save_inbox_settings(
    core: State<'_, Core>,
    settings: InboxSettings,
) -> Reply<InboxOverview> {
    let session = core.get().await?;
    save_and_watch(&session, &settings).await?;
    inbox_overview(&session).await
}

/// The native folder picker; adds the chosen folder to the inbox and starts watching it.
#[tauri::command]
pub async fn add_inbox_folder(core: State<'_, Core>, handle: AppHandle) -> Reply<InboxOverview> {
    let session = core.get().await?;
    let picked = handle
        .dialog()
        .file()
        .set_title("Choose a folder to file from")
        .blocking_pick_folder()
        .and_then(|p| p.into_path().ok());
    if let Some(path) = picked {
        let mut settings = session.inbox().settings()?;
        if !settings.folders.iter().any(|f| f.path == path) {
            settings.folders.push(InboxFolder { path, poll: None });
        }
        save_and_watch(&session, &settings).await?;
    }
    inbox_overview(&session).await
}

/// Files a file waiting for review onto a contact; `rule` (a glob) also files future ones.
#[tauri::command]
pub async fn file_inbox_item(
    core: State<'_, Core>,
    id: i64,
    contact_id: String,
    rule: Option<String>,
) -> Reply<InboxItem> {
    let session = core.get().await?;
    let remember = rule
        .filter(|r| !r.trim().is_empty())
        .map(|pattern| InboxRule {
            pattern: pattern.trim().to_owned(),
            kind: RuleKind::Glob,
            contact_id: contact_id.clone(),
        });
    let saves_rule = remember.is_some();
    let item = session.inbox().file_item(id, &contact_id, remember).await?;
    if saves_rule {
        // The running watcher reads rules when it starts.
        session
            .background
            .restart_inbox(session.inbox().settings()?)
            .await;
    }
    Ok(item)
}

#[tauri::command]
pub async fn retry_inbox_item(core: State<'_, Core>, id: i64) -> Reply<()> {
    Ok(core.get().await?.inbox().retry_item(id)?)
}

// ---- the installed app: settings, pauses, files handed over ----

#[tauri::command]
pub async fn desktop_state(desktop: State<'_, Desktop>) -> Reply<DesktopState> {
    Ok(DesktopState {
        settings: desktop.settings(),
        status: desktop.status(),
    })
}

/// Saves the desktop settings (close to the tray, start at login, notifications).
#[tauri::command]
pub async fn save_desktop_settings(
    desktop: State<'_, Desktop>,
    handle: AppHandle,
    settings: DesktopSettings,
) -> Reply<DesktopState> {
    Ok(DesktopState {
        settings: desktop.save(&handle, settings)?,
        status: desktop.status(),
    })
}

#[tauri::command]
pub async fn pause_uploads(handle: AppHandle, paused: bool) -> Reply<()> {
    desktop::set_paused(&handle, Pausable::Uploads, paused).await
}

#[tauri::command]
pub async fn pause_watching(handle: AppHandle, paused: bool) -> Reply<()> {
    desktop::set_paused(&handle, Pausable::Watching, paused).await
}

/// The files handed over ("Open With", a second launch) since the last call, and the clients
/// they may belong to, best first.
#[tauri::command]
pub async fn take_opened_files(
    core: State<'_, Core>,
    desktop: State<'_, Desktop>,
) -> Reply<OpenedFiles> {
    let files = desktop.take_opened();
    if files.is_empty() {
        return Ok(OpenedFiles::default());
    }
    let app = core.get().await?;
    let suggestions = app.inbox().suggest_for(&files).unwrap_or_else(|e| {
        tracing::warn!("no suggestions for opened files: {e}");
        Vec::new()
    });
    Ok(OpenedFiles {
        files: files.iter().map(|p| p.display().to_string()).collect(),
        suggestions,
    })
}
