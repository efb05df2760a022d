//! `attache`: the local sandbox server, and the same core the desktop app uses, for scripts.
//!
//! Exit status: 0 on success, 1 on an error (printed to stderr as `error [CODE]: message`),
//! 2 on a usage error (clap's convention).

mod media;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use attache_core::upload::{JobState, UploadView};
use attache_core::{AppHome, Attachment, Contact, ErrorPayload, Sensitive};
use attache_sandbox::{Sandbox, SandboxConfig, DEMO_API_KEY, DEMO_SITE_ID};
use std::sync::Arc;

use attache_service::{accounts, Attache, WebhookReceiver, Work};
use attache_vault::Vault;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "attache",
    version,
    about = "File clients' documents into your CRM"
)]
struct Cli {
    /// Work on this account ("demo", "demo-espo" or a saved one) instead of the current one.
    #[arg(long, global = true, env = "ATTACHE_ACCOUNT")]
    account: Option<String>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the sandbox's many flags make one variant large, which costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve a local site that speaks the Wix API (the Demo site), until killed.
    Sandbox {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
        /// Folder the site persists in (seeded with demo data when empty).
        #[arg(long)]
        data: PathBuf,
        /// API key the site accepts: Wix's `Authorization`, EspoCRM's `X-Api-Key`.
        #[arg(long, default_value = DEMO_API_KEY)]
        api_key: String,
        /// Also accept EspoCRM HMAC logins (`X-Hmac-Authorization`) for the API key, signed
        /// with this secret.
        #[arg(long)]
        hmac_secret: Option<String>,
        /// Install a Wix app: `POST /oauth2/token` mints tokens for this app ID (with
        /// `--app-secret` and `--instance-id`).
        #[arg(long, requires_all = ["app_secret", "instance_id"])]
        app_id: Option<String>,
        #[arg(long)]
        app_secret: Option<String>,
        #[arg(long)]
        instance_id: Option<String>,
        /// How long the app's tokens live (e.g. `4h`, `2s`).
        #[arg(long, default_value = "4h", value_parser = humantime::parse_duration)]
        app_token_ttl: std::time::Duration,
        /// Site id the site accepts in `wix-site-id`.
        #[arg(long, default_value = DEMO_SITE_ID)]
        site_id: String,
        /// Failures to inject, e.g. `5xx=0.1,429=0.05,reset=0.1,lost=0.05,url-ttl=2s,latency=20ms,rate=200`.
        #[arg(long, default_value = "", value_parser = attache_sandbox::faults::Faults::parse)]
        faults: attache_sandbox::faults::Faults,
        /// POST signed attachment webhooks (RS256 JWTs, as Wix sends them) to this URL; the
        /// public key is at `/_admin/webhooks/public-key`.
        #[arg(long)]
        webhook_url: Option<String>,
        /// Require `Authorization: Bearer TOKEN` on `/_admin/*` (open without it).
        #[arg(long)]
        admin_token: Option<String>,
    },
    /// List the current account's contacts (fresh from the CRM), optionally filtered.
    Contacts {
        /// Name prefix, e-mail fragment or phone digits.
        #[arg(long)]
        search: Option<String>,
        /// At most this many contacts.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// List a contact's attachments. CONTACT is a contact id or e-mail address.
    Attachments {
        contact: String,
        #[arg(long)]
        json: bool,
    },
    /// Attach files to a contact (CONTACT is an id or e-mail address). Folders are walked.
    /// Each file is checked, queued durably, sent and verified; an interrupted run resumes with
    /// `attache uploads --resume` (or this command again) and never attaches a file twice.
    Upload {
        contact: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Attach even when the same content is already attached to this contact.
        #[arg(long)]
        force: bool,
        /// File each one as a Document linked to the contact (EspoCRM), not in its stream.
        #[arg(long)]
        as_document: bool,
        #[arg(long)]
        json: bool,
    },
    /// The upload queue of the current account: recent jobs, or `--resume` to run every
    /// pending job to its end.
    Uploads {
        #[arg(long)]
        resume: bool,
        #[arg(long)]
        json: bool,
    },
    /// Watch inbox folders: each complete file is attached to the contact it names (a folder
    /// named after the contact, an e-mail or full name in the file name, or a saved rule) and
    /// then moved to `DIR/Filed/<contact>/`; files with no confident match wait for review in
    /// the app. With no DIR, the folders saved in the app's settings.
    Watch {
        dirs: Vec<PathBuf>,
        /// File what is there now and exit (status 1 if any file failed).
        #[arg(long)]
        once: bool,
        /// What to do with a file once its upload is verified.
        #[arg(long, value_enum)]
        after: Option<AfterArg>,
        /// Poll the folders instead of waiting for file-system events (network shares are
        /// polled anyway).
        #[arg(long)]
        poll: bool,
        #[arg(long)]
        json: bool,
    },
    /// Write a thumbnail of each image or PDF (first page) into DIR: JPEG for photos, PNG for
    /// pages and transparent images. Exit status 1 if any input could not be rendered (each
    /// with its reason on stderr).
    Thumbnail {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Long side in pixels.
        #[arg(long, default_value_t = 256)]
        size: u32,
        #[arg(long)]
        out: PathBuf,
    },
    /// Connect a CRM account. The secret is read from stdin (prompted, hidden, on a terminal),
    /// never from the command line, and stored only in the OS keyring.
    Login {
        #[command(subcommand)]
        kind: LoginKind,
    },
    /// List the saved accounts; `*` marks the current one.
    Accounts {
        #[arg(long)]
        json: bool,
    },
    /// Make NAME the current account ("demo" for the built-in Demo site as Wix, "demo-espo"
    /// for it as EspoCRM).
    Use { name: String },
    /// Sign out of NAME: its secret leaves the keyring and its cached data is deleted.
    Logout { name: String },
    /// The site's Media Manager (Wix accounts): list, upload (resumable over 10 MB), trash,
    /// restore, download links.
    Media {
        #[command(subcommand)]
        command: media::MediaCommand,
    },
    /// Receive Wix webhooks: `webhooks listen` verifies attachment created/deleted events and
    /// refreshes the contact they concern (one JSON line per delivery).
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCommand,
    },
}

#[derive(Subcommand)]
enum WebhooksCommand {
    /// Serve a webhook receiver (register `http://ADDR/` as the app's callback URL) until
    /// killed. Prints `listening on URL`, then one JSON line per delivery.
    Listen {
        #[arg(long, default_value = "127.0.0.1:8787")]
        addr: SocketAddr,
        /// The app's public key (PEM, or the bare base64 the dashboard shows).
        #[arg(long)]
        public_key: PathBuf,
    },
}

#[derive(Subcommand)]
enum LoginKind {
    /// A Wix site, with an API key (from the API Keys Manager) and the site's ID.
    Wix {
        #[arg(long)]
        site_id: String,
        /// What to call this account in Attaché.
        #[arg(long, default_value = "wix")]
        name: String,
        /// The Wix API host; a loopback sandbox for tests.
        #[arg(long, default_value = attache_wix::DEFAULT_BASE_URL)]
        base_url: String,
    },
    /// A Wix site as an installed Wix app (client-credentials OAuth): the app secret is read
    /// from stdin.
    WixApp {
        #[arg(long)]
        app_id: String,
        /// The app's installation on the site (from the App Installed webhook or dashboard).
        #[arg(long)]
        instance_id: String,
        #[arg(long, default_value = "wix-app")]
        name: String,
        #[arg(long, default_value = attache_wix::DEFAULT_BASE_URL)]
        base_url: String,
    },
    /// An EspoCRM server, with an API user's key (Administration > API Users). With `--hmac`
    /// the key and then the HMAC secret are read, one per line.
    Espo {
        /// The address EspoCRM opens at, e.g. https://crm.example.com.
        #[arg(long)]
        url: String,
        /// The API user authenticates by HMAC (API key + secret).
        #[arg(long)]
        hmac: bool,
        /// What to call this account in Attaché.
        #[arg(long, default_value = "espo")]
        name: String,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ATTACHE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error [INTERNAL]: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = ACCOUNT.set(cli.account);
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = serde_json::to_value(e.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            eprintln!("error [{code}]: {}", e.message);
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), ErrorPayload> {
    match command {
        Command::Media { command } => media::run(command).await,
        Command::Webhooks {
            command: WebhooksCommand::Listen { addr, public_key },
        } => webhooks_listen(addr, &public_key).await,
        Command::Sandbox {
            addr,
            data,
            api_key,
            site_id,
            faults,
            hmac_secret,
            app_id,
            app_secret,
            instance_id,
            app_token_ttl,
            webhook_url,
            admin_token,
        } => {
            let app = app_id.map(|app_id| attache_sandbox::AppCredentials {
                app_id,
                app_secret: app_secret.unwrap_or_default(),
                instance_id: instance_id.unwrap_or_default(),
                token_ttl: app_token_ttl,
            });
            sandbox(
                SandboxConfig {
                    data_dir: data,
                    api_key,
                    site_id,
                    faults,
                    hmac_secret,
                    app,
                    webhook_url,
                    admin_token,
                    // On loopback, only loopback host names: no web page reaches it by DNS
                    // rebinding. Served on a network address (a training day), any host.
                    loopback_only: addr.ip().is_loopback(),
                },
                addr,
            )
            .await
        }
        Command::Contacts {
            search,
            limit,
            json,
        } => {
            let app = open().await?;
            app.contacts().refresh().await?;
            let page = app
                .contacts()
                .search(search.as_deref().unwrap_or(""), 0, limit);
            if json {
                print_json(&page.contacts)
            } else {
                print_contacts(&page.contacts);
                if page.matched > page.contacts.len() as u64 {
                    eprintln!(
                        "(showing {} of {}; use --limit or --search)",
                        page.contacts.len(),
                        page.matched
                    );
                }
                Ok(())
            }
        }
        Command::Login { kind } => {
            // Secrets are read from stdin (never the command line), then checked like the
            // window's forms through the same `accounts::login`.
            let login = match kind {
                LoginKind::Wix {
                    site_id,
                    name,
                    base_url,
                } => accounts::Login::Wix(accounts::WixLogin {
                    name,
                    base_url,
                    site_id,
                    api_key: read_secret("Wix API key: ")?,
                }),
                LoginKind::WixApp {
                    app_id,
                    instance_id,
                    name,
                    base_url,
                } => accounts::Login::WixApp(accounts::WixAppLogin {
                    name,
                    base_url,
                    app_id,
                    instance_id,
                    app_secret: read_secret("Wix app secret: ")?,
                }),
                LoginKind::Espo { url, hmac, name } => {
                    let api_key = read_secret("EspoCRM API key: ")?;
                    let hmac_secret = if hmac {
                        Some(read_secret("HMAC secret: ")?)
                    } else {
                        None
                    };
                    accounts::Login::Espo(accounts::EspoLogin {
                        name,
                        site_url: url,
                        api_key,
                        hmac_secret,
                    })
                }
            };
            let info = accounts::login(&home()?, login).await?;
            println!(
                "Connected {} ({}); it is now the current account.",
                info.name, info.base_url
            );
            Ok(())
        }
        Command::Accounts { json } => {
            let config = accounts::Config::load(&home()?)?;
            if json {
                return print_json(&config);
            }
            let current = config.current.as_deref().unwrap_or(accounts::DEMO);
            let mark = |name: &str| if name == current { "*" } else { " " };
            println!("{} demo  (built-in Demo site, local)", mark(accounts::DEMO));
            println!(
                "{} demo-espo  (the Demo site through its EspoCRM API)",
                mark(accounts::DEMO_ESPO)
            );
            for a in config.accounts.iter().map(|a| a.info()) {
                println!(
                    "{} {}  {:?}  {}  site {}",
                    mark(&a.name),
                    a.name,
                    a.kind,
                    a.base_url,
                    a.site_id.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
        Command::Use { name } => {
            accounts::use_account(&home()?, &name)?;
            println!("Now using {name}.");
            Ok(())
        }
        Command::Logout { name } => {
            let vault = Vault::system().await?;
            accounts::logout(&home()?, &vault, &name).await?;
            println!("Signed out of {name}; its login and cached data are gone.");
            Ok(())
        }
        Command::Thumbnail { files, size, out } => thumbnails(files, size, out),
        Command::Watch {
            dirs,
            once,
            after,
            poll,
            json,
        } => watch(dirs, once, after, poll, json).await,
        Command::Upload {
            contact,
            files,
            force,
            as_document,
            json,
        } => upload(contact, files, force, as_document, json).await,
        Command::Uploads { resume, json } => {
            let app = open().await?;
            if resume {
                let pending: Vec<i64> = app
                    .uploads()
                    .recent(usize::MAX >> 1)?
                    .iter()
                    .filter(|v| {
                        !matches!(
                            v.state,
                            JobState::Done | JobState::Failed | JobState::Cancelled
                        )
                    })
                    .map(|v| v.id)
                    .collect();
                let ended = run_queue(&app, &pending, json).await?;
                return report_outcome(&ended, 0, json);
            }
            let jobs = app.uploads().recent(200)?;
            if json {
                return print_json(&jobs);
            }
            for j in &jobs {
                let why = j
                    .error
                    .as_ref()
                    .map(|e| format!("  ({})", e.message))
                    .unwrap_or_default();
                println!(
                    "{:>6}  {:<9}  {:<40}  {}{why}",
                    j.id,
                    format!("{:?}", j.state).to_lowercase(),
                    j.file_name,
                    j.contact_name
                );
            }
            Ok(())
        }
        Command::Attachments { contact, json } => {
            let app = open().await?;
            let contact = app.contacts().resolve(&contact).await?;
            let attachments = app.contacts().refresh_attachments(&contact.id).await?;
            if json {
                print_json(&attachments)
            } else {
                print_attachments(&contact, &attachments);
                Ok(())
            }
        }
    }
}

async fn upload(
    contact: String,
    files: Vec<PathBuf>,
    force: bool,
    as_document: bool,
    json: bool,
) -> Result<(), ErrorPayload> {
    let app = open().await?;
    let contact = app.contacts().resolve(&contact).await?;
    let report = app
        .uploads()
        .queue_files_as(&contact, files, force, as_document)
        .await?;
    for r in &report.rejected {
        eprintln!("skipped {}: {}", r.path, r.message);
    }
    for v in &report.already_attached {
        eprintln!(
            "{} is already attached to {} (use --force to attach it again)",
            v.file_name, contact.display_name
        );
    }
    let ids: Vec<i64> = report
        .queued
        .iter()
        .chain(&report.already_queued)
        .map(|v| v.id)
        .collect();
    let ended = run_queue(&app, &ids, json).await?;
    if json {
        print_json(&serde_json::json!({
            "jobs": ended,
            "alreadyAttached": report.already_attached,
            "rejected": report.rejected,
        }))?;
    }
    report_outcome(&ended, report.rejected.len(), json)
}

/// Runs (or, when the app already runs the queue, watches) the jobs until each has ended,
/// printing each file's end unless `quiet`.
fn thumbnails(files: Vec<PathBuf>, size: u32, out: PathBuf) -> Result<(), ErrorPayload> {
    use attache_service::thumbnails as thumbnail;
    let io = |e: std::io::Error| ErrorPayload::new(attache_core::ErrorCode::Io, e.to_string());
    std::fs::create_dir_all(&out).map_err(io)?;
    let mut failed = 0;
    for (index, file) in files.iter().enumerate() {
        match thumbnail::render_file(file, size) {
            Ok(thumb) => {
                let stem = file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| format!("{index}"));
                let mut target = out.join(format!("{stem}.{}", thumb.extension()));
                if files[..index]
                    .iter()
                    .any(|f| f.file_stem() == file.file_stem())
                {
                    target = out.join(format!("{stem}-{index}.{}", thumb.extension()));
                }
                std::fs::write(&target, &thumb.bytes).map_err(io)?;
                println!("{}", target.display());
            }
            Err(e) => {
                failed += 1;
                eprintln!("{}: {e}", file.display());
            }
        }
    }
    if failed > 0 {
        return Err(ErrorPayload::new(
            attache_core::ErrorCode::InvalidInput,
            format!("{failed} of {} file(s) could not be rendered", files.len()),
        ));
    }
    Ok(())
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AfterArg {
    Move,
    Keep,
    Delete,
}

async fn watch(
    dirs: Vec<PathBuf>,
    once: bool,
    after: Option<AfterArg>,
    poll: bool,
    json: bool,
) -> Result<(), ErrorPayload> {
    use attache_core::inbox::{AfterFiling, InboxFolder, InboxState};
    let app = open().await?;
    let mut settings = app.inbox().settings()?;
    if !dirs.is_empty() {
        settings.folders = dirs
            .into_iter()
            .map(|path| InboxFolder { path, poll: None })
            .collect();
    }
    if poll {
        settings
            .folders
            .iter_mut()
            .for_each(|f| f.poll = Some(true));
    }
    if let Some(after) = after {
        settings.after = match after {
            AfterArg::Move => AfterFiling::Move,
            AfterArg::Keep => AfterFiling::Keep,
            AfterArg::Delete => AfterFiling::Delete,
        };
    }
    if settings.folders.is_empty() {
        return Err(ErrorPayload::new(
            attache_core::ErrorCode::InvalidInput,
            "no inbox folder: name one (attache watch DIR) or add one in the app's Settings",
        ));
    }
    let describe = |item: &attache_core::inbox::InboxItem| match item.state {
        InboxState::Filed => format!(
            "filed {} to {} ({})",
            item.file_name,
            item.contact_name.as_deref().unwrap_or("?"),
            item.reason_text.as_deref().unwrap_or("")
        ),
        InboxState::NeedsFiling => {
            let names: Vec<&str> = item
                .suggestions
                .iter()
                .map(|s| s.contact_name.as_str())
                .collect();
            if names.is_empty() {
                format!("needs filing: {} (no suggestion)", item.file_name)
            } else {
                format!(
                    "needs filing: {} (maybe {})",
                    item.file_name,
                    names.join(", ")
                )
            }
        }
        InboxState::Failed => format!(
            "failed {}: {}",
            item.file_name,
            item.error
                .as_ref()
                .map(|e| e.message.as_str())
                .unwrap_or("unknown reason")
        ),
        InboxState::Uploading => format!(
            "uploading {} to {}",
            item.file_name,
            item.contact_name.as_deref().unwrap_or("?")
        ),
    };
    if once {
        let background = app.start(Work::default()).await;
        let summary = app.inbox().file_once(settings).await;
        background.stop().await;
        let summary = summary?;
        if json {
            print_json(&summary)?;
        } else {
            for item in summary
                .filed
                .iter()
                .chain(&summary.needs_filing)
                .chain(&summary.failed)
            {
                eprintln!("{}", describe(item));
            }
            eprintln!(
                "{} filed, {} need filing, {} failed",
                summary.filed.len(),
                summary.needs_filing.len(),
                summary.failed.len()
            );
        }
        if !summary.failed.is_empty() {
            return Err(ErrorPayload::new(
                attache_core::ErrorCode::InvalidInput,
                format!("{} file(s) could not be filed", summary.failed.len()),
            ));
        }
        return Ok(());
    }
    let folders: Vec<String> = settings
        .folders
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    let background = app
        .start(Work {
            inbox: Some(settings),
            ..Work::default()
        })
        .await;
    if let (false, Some(problem)) = background.inbox_status().await {
        return Err(ErrorPayload::new(
            attache_core::ErrorCode::InvalidInput,
            problem,
        ));
    }
    let mut events = background.subscribe_inbox();
    eprintln!("watching {} (Ctrl-C to stop)", folders.join(", "));
    let printer = async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    for item in &event.items {
                        if json {
                            // One JSON object per line, for scripts that follow the stream.
                            println!("{}", serde_json::to_string(item).unwrap_or_default());
                        } else {
                            eprintln!("{}", describe(item));
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    };
    tokio::select! {
        _ = printer => {}
        _ = shutdown_signal() => {}
    }
    background.stop().await;
    Ok(())
}

async fn run_queue(
    app: &Arc<Attache>,
    ids: &[i64],
    quiet: bool,
) -> Result<Vec<UploadView>, ErrorPayload> {
    let background = app.start(Work::default()).await;
    let mut events = background.subscribe_uploads();
    let printer = async {
        loop {
            match events.recv().await {
                Ok(event) if !quiet => {
                    for v in event.jobs.iter().filter(|v| ids.contains(&v.id)) {
                        match v.state {
                            JobState::Done => {
                                eprintln!("attached {} to {}", v.file_name, v.contact_name)
                            }
                            JobState::Failed => eprintln!(
                                "failed {}: {}",
                                v.file_name,
                                v.error
                                    .as_ref()
                                    .map(|e| e.message.as_str())
                                    .unwrap_or("unknown reason")
                            ),
                            _ => {}
                        }
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    };
    let ended = tokio::select! {
        ended = app.uploads().wait_for(ids) => ended?,
        _ = printer => Vec::new(),
    };
    Ok(ended.iter().map(UploadView::of).collect())
}

/// Success only when every job ended attached and no file was refused.
fn report_outcome(ended: &[UploadView], rejected: usize, quiet: bool) -> Result<(), ErrorPayload> {
    let failed = ended.iter().filter(|v| v.state != JobState::Done).count();
    if !quiet && !ended.is_empty() {
        eprintln!("{} attached, {failed} not attached", ended.len() - failed);
    }
    if failed + rejected > 0 {
        return Err(ErrorPayload::new(
            attache_core::ErrorCode::InvalidInput,
            format!("{} file(s) were not attached", failed + rejected),
        ));
    }
    Ok(())
}

fn read_secret(prompt: &str) -> Result<Sensitive<String>, ErrorPayload> {
    use std::io::IsTerminal;
    let io_error = |e: std::io::Error| {
        ErrorPayload::new(
            attache_core::ErrorCode::Io,
            format!("reading the secret: {e}"),
        )
    };
    let secret = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).map_err(io_error)?
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(io_error)?;
        line
    };
    Ok(Sensitive::new(secret.trim().to_string()))
}

fn home() -> Result<AppHome, ErrorPayload> {
    AppHome::discover().map_err(|e| ErrorPayload::new(attache_core::ErrorCode::Io, e.to_string()))
}

/// The account `--account` names, else the current one.
static ACCOUNT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

async fn open() -> Result<Arc<Attache>, ErrorPayload> {
    let name = ACCOUNT.get().and_then(|a| a.as_deref());
    Ok(Arc::new(Attache::open_account(home()?, name).await?))
}

async fn sandbox(config: SandboxConfig, addr: SocketAddr) -> Result<(), ErrorPayload> {
    let server = Sandbox::start(config, addr)
        .await
        .map_err(|e| ErrorPayload::new(attache_core::ErrorCode::Unavailable, e.to_string()))?;
    // The first line of stdout is the contract scripts and tests wait for.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", server.base_url());
    let _ = out.flush();
    drop(out);
    tokio::select! {
        _ = server.wait() => {}
        _ = shutdown_signal() => {}
    }
    Ok(())
}

async fn webhooks_listen(
    addr: SocketAddr,
    public_key: &std::path::Path,
) -> Result<(), ErrorPayload> {
    let key = std::fs::read_to_string(public_key).map_err(|e| {
        ErrorPayload::new(
            attache_core::ErrorCode::Io,
            format!("cannot read the public key {}: {e}", public_key.display()),
        )
    })?;
    let verifier = attache_wix::webhooks::WebhookVerifier::new(&key)
        .map_err(|e| ErrorPayload::new(attache_core::ErrorCode::InvalidInput, e.to_string()))?;
    let app = open().await?;
    // Webhooks are Wix's: say so plainly on an EspoCRM account.
    app.webhooks()?;
    let background = app
        .start(Work {
            webhooks: Some(WebhookReceiver {
                addr,
                verifier,
                report: Box::new(|outcome| {
                    if let Ok(line) = serde_json::to_string(outcome) {
                        println!("{line}");
                        let _ = std::io::stdout().flush();
                    }
                }),
            }),
            ..Work::default()
        })
        .await;
    let Some(bound) = background.webhook_addr() else {
        return Err(ErrorPayload::new(
            attache_core::ErrorCode::Unavailable,
            format!("the webhook receiver could not listen on {addr}"),
        ));
    };
    println!("listening on http://{bound}");
    std::io::stdout().flush().ok();
    tokio::select! {
        _ = background.webhooks_stopped() => {}
        _ = shutdown_signal() => {}
    }
    background.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), ErrorPayload> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| ErrorPayload::new(attache_core::ErrorCode::Internal, e.to_string()))?;
    println!("{text}");
    Ok(())
}

fn print_contacts(contacts: &[Contact]) {
    let width = contacts
        .iter()
        .map(|c| c.display_name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let email_width = contacts
        .iter()
        .map(|c| c.email.as_deref().unwrap_or("").len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{:<width$}  {:<email_width$}  {:<16}  ID",
        "NAME", "EMAIL", "PHONE"
    );
    for c in contacts {
        println!(
            "{:<width$}  {:<email_width$}  {:<16}  {}",
            c.display_name,
            c.email.as_deref().unwrap_or("-"),
            c.phone.as_deref().unwrap_or("-"),
            c.id
        );
    }
}

fn print_attachments(contact: &Contact, attachments: &[Attachment]) {
    println!(
        "{} — {} attachment(s)",
        contact.display_name,
        attachments.len()
    );
    for a in attachments {
        let size = a.size_bytes.map(human_size).unwrap_or_else(|| "?".into());
        println!(
            "  {:<48}  {:<6}  {:>9}  {}",
            a.file_name,
            a.extension.to_uppercase(),
            size,
            a.id
        );
    }
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
