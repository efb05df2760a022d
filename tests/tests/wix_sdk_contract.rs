//! Contract tests: the official Wix JS SDK from npm (`@wix/sdk` with an API-key strategy,
//! `@wix/crm`, `@wix/media`; tests/peers) and the Rust client perform the same operations
//! against the sandbox, which records every request; operation by operation, the two must send
//! the same method, path, query and JSON body. The SDK also parses the sandbox's answers, so an
//! answer shaped unlike Wix's makes it fail.

use std::net::SocketAddr;
use std::path::Path;

use attache_core::Sensitive;
use attache_sandbox::{Sandbox, SandboxConfig, DEMO_API_KEY, DEMO_SITE_ID};
use attache_tests::upload_source as source;
use attache_wix::media::{
    FileFilter, FileListing, GenerateFileUploadUrlRequest, ImportFileRequest,
};
use attache_wix::wire::{ContactQuery, Paging, QueryContactsRequest, Sorting};
use attache_wix::{WixAuth, WixClient};
use serde_json::{json, Value};

/// What the contract compares: method, path, the query pairs (sorted) and the JSON body.
fn essentials(requests: &Value) -> Vec<Value> {
    requests
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut query: Vec<Value> = r["query"].as_array().cloned().unwrap_or_default();
            query.sort_by_key(|p| p.to_string());
            json!({
                "method": r["method"],
                "path": r["path"],
                "query": query,
                "body": r["body"],
                "authorization": r["authorization"],
                "siteId": r["siteId"],
            })
        })
        .collect()
}

async fn recorded(http: &reqwest::Client, base: &str) -> Value {
    let v: Value = http
        .get(format!("{base}/_admin/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["requests"].clone()
}

#[tokio::test]
async fn the_rust_client_sends_what_the_wix_sdk_sends() {
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers");
    assert!(
        peers.join("node_modules/@wix/sdk").is_dir(),
        "tests/peers is not installed: run ./.ci/deps.sh (make test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        app: Some(attache_sandbox::AppCredentials {
            app_id: "app-7".into(),
            app_secret: "app-secret-7".into(),
            instance_id: "instance-7".into(),
            token_ttl: std::time::Duration::from_secs(3600),
        }),
        ..SandboxConfig::demo(dir.path().join("site"))
    };
    let sb = Sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let base = sb.base_url();
    let wix = WixClient::new(
        &base,
        WixAuth::ApiKey {
            key: Sensitive::new(DEMO_API_KEY.into()),
            site_id: DEMO_SITE_ID.into(),
        },
    )
    .unwrap();
    let http = reqwest::Client::new();

    // Targets both sides use: a contact with attachments, two media files.
    let contacts = wix.all_contacts().await.unwrap();
    let ana = contacts
        .iter()
        .find(|c| {
            c.info
                .as_ref()
                .and_then(|i| i.name.as_ref())
                .and_then(|n| n.first.as_deref())
                == Some("Ana")
        })
        .expect("Ana")
        .id
        .clone();
    let attachments = wix.all_attachments(&ana).await.unwrap();
    assert!(attachments.len() >= 2);
    let (att_get, att_del) = (attachments[0].id.clone(), attachments[1].id.clone());
    let pdf = dir.path().join("contract.pdf");
    std::fs::write(&pdf, b"%PDF-1.4\n%contract\n").unwrap();
    let f1 = wix
        .upload_media(&source(&pdf, "application/pdf"), None)
        .await
        .unwrap();
    let f2 = wix
        .upload_media(&source(&pdf, "application/pdf"), None)
        .await
        .unwrap();
    let (id1, id2) = (f1.id.clone(), f2.id.clone());
    let file_url = f1.url.clone().unwrap();

    let plan = json!([
        {"op": "listContacts", "args": {"options": {"paging": {"limit": 1000, "offset": 0}, "sort": {"fieldName": "createdDate", "order": "ASC"}}}},
        {"op": "getContact", "args": {"id": ana}},
        {"op": "appGetContact", "args": {"id": ana, "appId": "app-7", "appSecret": "app-secret-7", "instanceId": "instance-7"}},
        {"op": "queryContacts", "args": {"startsWith": ["info.name.first", "An"], "ascending": "createdDate", "limit": 10}},
        {"op": "generateAttachmentUploadUrl", "args": {"contactId": ana, "fileName": "offer.pdf", "mimeType": "application/pdf"}},
        {"op": "listAttachments", "args": {"contactId": ana, "options": {"paging": {"limit": 100, "offset": 0}}}},
        {"op": "getAttachment", "args": {"contactId": ana, "attachmentId": att_get}},
        {"op": "deleteAttachment", "args": {"contactId": ana, "attachmentId": att_del}},
        {"op": "generateFileUploadUrl", "args": {"mimeType": "application/pdf", "options": {"fileName": "deed.pdf", "sizeInBytes": "2048"}}},
        {"op": "generateFileResumableUploadUrl", "args": {"mimeType": "video/mp4", "options": {"fileName": "tour.mp4", "sizeInBytes": "50000000", "uploadProtocol": "TUS"}}},
        {"op": "importFile", "args": {"url": file_url, "options": {"displayName": "copy.pdf", "mimeType": "application/pdf"}}},
        {"op": "getFileDescriptor", "args": {"fileId": id1}},
        {"op": "getFileDescriptors", "args": {"fileIds": [id1, id2]}},
        {"op": "listFiles", "args": {"options": {"sort": {"fieldName": "displayName", "order": "ASC"}, "paging": {"limit": 50}}}},
        {"op": "searchFiles", "args": {"options": {"search": "contract", "rootFolder": "MEDIA_ROOT", "paging": {"limit": 50}}}},
        {"op": "listDeletedFiles", "args": {"options": {"paging": {"limit": 50}}}},
        {"op": "updateFileDescriptor", "args": {"file": {"_id": id1, "displayName": "Contract (signed).pdf"}}},
        {"op": "generateFileDownloadUrl", "args": {"fileId": id1, "options": {"downloadFileName": "c.pdf", "expirationInMinutes": 30}}},
        {"op": "generateFilesDownloadUrl", "args": {"fileIds": [id1, id2]}},
        {"op": "bulkDeleteFiles", "args": {"fileIds": [id2], "options": {"permanent": false}}},
        {"op": "bulkRestoreFilesFromTrashBin", "args": {"fileIds": [id2]}},
    ]);

    let mut node = tokio::process::Command::new("node");
    node.arg(peers.join("wix-sdk-contract.mjs"))
        .args([&base, DEMO_API_KEY, DEMO_SITE_ID])
        .current_dir(&peers)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = node.spawn().expect("node (Node.js 20.19+) is needed");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(plan.to_string().as_bytes()).await.unwrap();
    }
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "the SDK run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sdk: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();

    // The same operations with the Rust client, one at a time, recorded the same way.
    let mut ours = Vec::new();
    for step in plan.as_array().unwrap() {
        http.delete(format!("{base}/_admin/requests"))
            .send()
            .await
            .unwrap();
        let a = &step["args"];
        let s = |k: &str| a[k].as_str().unwrap().to_owned();
        let ids = |k: &str| -> Vec<String> {
            a[k].as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        let result: Result<(), attache_wix::WixError> = match step["op"].as_str().unwrap() {
            "listContacts" => wix
                .list_contacts(
                    Paging {
                        limit: Some(1000),
                        offset: Some(0),
                    },
                    Some(&Sorting {
                        field_name: "createdDate".into(),
                        order: Some("ASC".into()),
                    }),
                )
                .await
                .map(drop),
            "getContact" => wix.get_contact(&s("id")).await.map(drop),
            "appGetContact" => {
                let app = WixClient::new(
                    &base,
                    WixAuth::App {
                        app_id: s("appId"),
                        app_secret: Sensitive::new(s("appSecret")),
                        instance_id: s("instanceId"),
                    },
                )
                .unwrap();
                app.get_contact(&s("id")).await.map(drop)
            }
            "queryContacts" => wix
                .query_contacts(&QueryContactsRequest {
                    search: None,
                    query: Some(ContactQuery {
                        filter: Some(json!({"info.name.first": {"$startsWith": "An"}})),
                        sort: vec![Sorting {
                            field_name: "createdDate".into(),
                            order: Some("ASC".into()),
                        }],
                        paging: Some(Paging {
                            limit: Some(10),
                            offset: Some(0),
                        }),
                    }),
                })
                .await
                .map(drop),
            "generateAttachmentUploadUrl" => wix
                .generate_attachment_upload_url(&s("contactId"), &s("fileName"), &s("mimeType"))
                .await
                .map(drop),
            "listAttachments" => wix
                .list_attachments(
                    &s("contactId"),
                    Paging {
                        limit: Some(100),
                        offset: Some(0),
                    },
                )
                .await
                .map(drop),
            "getAttachment" => wix
                .get_attachment(&s("contactId"), &s("attachmentId"))
                .await
                .map(drop),
            // The SDK deleted it already: the request still counts, the 404 does not matter.
            "deleteAttachment" => {
                let _ = wix
                    .delete_attachment(&s("contactId"), &s("attachmentId"))
                    .await;
                Ok(())
            }
            "generateFileUploadUrl" => wix
                .generate_file_upload_url(&GenerateFileUploadUrlRequest {
                    mime_type: "application/pdf".into(),
                    file_name: Some("deed.pdf".into()),
                    size_in_bytes: Some("2048".into()),
                    ..Default::default()
                })
                .await
                .map(drop),
            "generateFileResumableUploadUrl" => wix
                .generate_resumable_upload_url(&GenerateFileUploadUrlRequest {
                    mime_type: "video/mp4".into(),
                    file_name: Some("tour.mp4".into()),
                    size_in_bytes: Some("50000000".into()),
                    ..Default::default()
                })
                .await
                .map(drop),
            "importFile" => wix
                .import_file(&ImportFileRequest {
                    url: s("url"),
                    display_name: Some("copy.pdf".into()),
                    mime_type: Some("application/pdf".into()),
                    ..Default::default()
                })
                .await
                .map(drop),
            "getFileDescriptor" => wix.get_file(&s("fileId")).await.map(drop),
            "getFileDescriptors" => wix.get_files(&ids("fileIds")).await.map(drop),
            "listFiles" => wix
                .list_files_page(
                    &FileListing::Files(FileFilter {
                        sort_field: Some("displayName".into()),
                        sort_order: Some("ASC".into()),
                        ..Default::default()
                    }),
                    50,
                    None,
                )
                .await
                .map(drop),
            "searchFiles" => wix
                .list_files_page(
                    &FileListing::Search {
                        text: "contract".into(),
                        trash: false,
                        filter: FileFilter::default(),
                    },
                    50,
                    None,
                )
                .await
                .map(drop),
            "listDeletedFiles" => wix
                .list_files_page(&FileListing::Trash(FileFilter::default()), 50, None)
                .await
                .map(drop),
            "updateFileDescriptor" => wix
                .update_file(&id1, Some("Contract (signed).pdf"), None, None)
                .await
                .map(drop),
            "generateFileDownloadUrl" => wix
                .file_download_urls(&s("fileId"), Some("c.pdf"), Some(30))
                .await
                .map(drop),
            "generateFilesDownloadUrl" => wix.zip_download_url(&ids("fileIds")).await.map(drop),
            // The SDK trashed the file and restored it; ours does the same, in the same order.
            "bulkDeleteFiles" => wix.delete_files(&ids("fileIds"), false).await.map(drop),
            "bulkRestoreFilesFromTrashBin" => wix.restore_files(&ids("fileIds")).await.map(drop),
            other => panic!("no Rust equivalent for {other}"),
        };
        if let Err(e) = result {
            panic!("{}: the Rust client failed: {e}", step["op"]);
        }
        ours.push(recorded(&http, &base).await);
    }

    let mut differences = Vec::new();
    for (theirs, mine) in sdk.iter().zip(&ours) {
        let op = theirs["op"].as_str().unwrap();
        if let Some(e) = theirs.get("error").filter(|e| !e.is_null()) {
            differences.push(format!("{op}: the SDK failed on the sandbox's answer: {e}"));
        }
        let (t, m) = (essentials(&theirs["requests"]), essentials(mine));
        // Bodies were really recorded (a comparison of two missing bodies would prove nothing).
        for r in t.iter().chain(&m) {
            if matches!(r["method"].as_str(), Some("POST") | Some("PATCH")) {
                assert!(r["body"].is_object(), "{op}: no body recorded in {r}");
            }
        }
        if t != m {
            differences.push(format!(
                "{op}:\n  SDK : {}\n  Rust: {}",
                serde_json::to_string(&t).unwrap(),
                serde_json::to_string(&m).unwrap()
            ));
        }
    }
    assert_eq!(sdk.len(), ours.len());
    assert!(
        differences.is_empty(),
        "{} operation(s) differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
