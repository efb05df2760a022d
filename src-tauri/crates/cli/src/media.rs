//! `attache media ls|upload|rm|restore|link`: the site's Media Manager (Wix accounts).

use std::path::PathBuf;

use attache_core::ErrorPayload;
use attache_service::media::listing;
use attache_wix::media::FileDescriptor;
use clap::Subcommand;

use crate::{human_size, open, print_json};

#[derive(Subcommand)]
pub enum MediaCommand {
    /// List the Media Manager's files (all pages), by name.
    Ls {
        /// Only files whose name contains this text (Wix's search).
        #[arg(long)]
        search: Option<String>,
        /// The trash bin instead of the media root.
        #[arg(long)]
        trash: bool,
        /// A folder id (default: the media root).
        #[arg(long)]
        folder: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Upload files. Over 10 MB they go through the resumable (tus) upload: an interrupted
    /// run continues from where the server stopped when run again.
    Upload {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        folder: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Move files to the trash bin, or delete them for good with `--permanent`.
    Rm {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        permanent: bool,
        #[arg(long)]
        json: bool,
    },
    /// Bring files back from the trash bin.
    Restore {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print download links: one per file, or with `--zip` one link to a zip of them all.
    Link {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        zip: bool,
        /// How long the links work.
        #[arg(long, default_value_t = 600)]
        minutes: u32,
        #[arg(long)]
        json: bool,
    },
}

fn backend(e: attache_wix::WixError) -> ErrorPayload {
    attache_core::BackendError::from(e).into()
}

pub async fn run(command: MediaCommand) -> Result<(), ErrorPayload> {
    let app = open().await?;
    match command {
        MediaCommand::Ls {
            search,
            trash,
            folder,
            json,
        } => {
            let files = app.media()?.files(&listing(search, trash, folder)).await?;
            if json {
                return print_json(&files);
            }
            print_files(&files);
            Ok(())
        }
        MediaCommand::Upload {
            files,
            folder,
            json,
        } => {
            let outcomes = app.media()?.upload(&files, folder.as_deref()).await?;
            let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
            if json {
                print_json(&outcomes)?;
            } else {
                for o in &outcomes {
                    match (&o.file, &o.error) {
                        (Some(f), _) => println!(
                            "uploaded {}{} → {}",
                            o.path,
                            if o.resumed { " (resumed)" } else { "" },
                            f.id
                        ),
                        (None, Some(e)) => eprintln!("not uploaded: {e}"),
                        _ => {}
                    }
                }
            }
            if failed > 0 {
                return Err(ErrorPayload::new(
                    attache_core::ErrorCode::InvalidInput,
                    format!("{failed} of {} file(s) not uploaded", outcomes.len()),
                ));
            }
            Ok(())
        }
        MediaCommand::Rm {
            ids,
            permanent,
            json,
        } => {
            app.media()?
                .client()
                .delete_files(&ids, permanent)
                .await
                .map_err(backend)?;
            if json {
                return print_json(&serde_json::json!({"deleted": ids, "permanent": permanent}));
            }
            let where_to = if permanent {
                "deleted for good"
            } else {
                "moved to the trash bin"
            };
            println!("{} file(s) {where_to}", ids.len());
            Ok(())
        }
        MediaCommand::Restore { ids, json } => {
            app.media()?
                .client()
                .restore_files(&ids)
                .await
                .map_err(backend)?;
            if json {
                return print_json(&serde_json::json!({ "restored": ids }));
            }
            println!("{} file(s) restored", ids.len());
            Ok(())
        }
        MediaCommand::Link {
            ids,
            zip,
            minutes,
            json,
        } => {
            let client = app.media()?.client();
            let links: Vec<(String, String)> = if zip {
                vec![(
                    "zip".into(),
                    client.zip_download_url(&ids).await.map_err(backend)?,
                )]
            } else {
                let mut links = Vec::new();
                for id in &ids {
                    for u in client
                        .file_download_urls(id, None, Some(minutes))
                        .await
                        .map_err(backend)?
                    {
                        links.push((id.clone(), u.url));
                    }
                }
                links
            };
            if json {
                let v: Vec<_> = links
                    .iter()
                    .map(|(id, url)| serde_json::json!({"id": id, "url": url}))
                    .collect();
                return print_json(&v);
            }
            for (id, url) in links {
                println!("{id}  {url}");
            }
            Ok(())
        }
    }
}

fn print_files(files: &[FileDescriptor]) {
    let width = files
        .iter()
        .map(|f| f.display_name.as_deref().unwrap_or("").chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<width$}  {:<8}  {:>9}  {:<7}  ID",
        "NAME", "TYPE", "SIZE", "STATUS"
    );
    for f in files {
        println!(
            "{:<width$}  {:<8}  {:>9}  {:<7}  {}",
            f.display_name.as_deref().unwrap_or("-"),
            f.media_type.as_deref().unwrap_or("-"),
            f.size().map(human_size).unwrap_or_else(|| "?".into()),
            f.operation_status.as_deref().unwrap_or("-"),
            f.id
        );
    }
}
