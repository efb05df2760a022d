use attache_core::inbox::Suggestion;
use attache_core::upload::{BatchSummary, UploadView};
use attache_core::ErrorPayload;

use super::*;

fn job(id: i64, contact: &str, name: &str, state: JobState) -> UploadView {
    UploadView {
        id,
        contact_id: format!("c-{contact}"),
        contact_name: contact.into(),
        file_name: name.into(),
        path: format!("/tmp/{name}"),
        mime_type: "application/pdf".into(),
        size: 10,
        state,
        sent: 0,
        bytes_per_second: None,
        seconds_left: None,
        attachment_id: None,
        error: None,
        attempts: 1,
    }
}

fn failed(id: i64, name: &str, code: ErrorCode, why: &str) -> UploadView {
    UploadView {
        error: Some(ErrorPayload::new(code, why)),
        ..job(id, "Ana Silva", name, JobState::Failed)
    }
}

fn event(jobs: Vec<UploadView>, active: u32, batch: Option<BatchSummary>) -> UploadEvent {
    UploadEvent {
        jobs,
        active,
        waiting: 0,
        finished_batch: batch,
        paused: false,
    }
}

fn item(id: i64, name: &str, state: InboxState, suggested: Option<&str>) -> InboxItem {
    InboxItem {
        id,
        account: String::new(),
        inbox: "/inbox".into(),
        path: format!("/inbox/{name}").into(),
        file_name: name.into(),
        size: 1,
        modified_ns: 0,
        state,
        contact_id: None,
        contact_name: None,
        reason: None,
        reason_text: None,
        suggestions: suggested
            .map(|s| Suggestion {
                contact_id: "c1".into(),
                contact_name: s.into(),
                why: "its name".into(),
            })
            .into_iter()
            .collect(),
        job_id: None,
        filed_path: None,
        error: None,
        failures: 0,
        retry_at: None,
        updated_at: 0,
    }
}

fn inbox_event(items: Vec<InboxItem>) -> InboxEvent {
    InboxEvent {
        items,
        settling: 0,
        problems: vec![],
    }
}

#[test]
fn a_thousand_files_make_one_notice() {
    let mut digest = Digest::new(NotifySettings::default());
    for chunk in 0..100 {
        let jobs = (0..10)
            .map(|i| job(chunk * 10 + i, "Ana Silva", "scan.pdf", JobState::Done))
            .collect();
        assert!(digest.uploads(&event(jobs, 3, None)).is_empty());
        assert_eq!(digest.status().uploading, 3);
    }
    let done = BatchSummary {
        attached: 1000,
        failed: 0,
        cancelled: 0,
    };
    let notices = digest.uploads(&event(vec![], 0, Some(done)));
    assert_eq!(
        notices,
        vec![Notice {
            kind: NoticeKind::Batch,
            title: "1000 files attached".into(),
            body: "To Ana Silva, each one verified on the CRM.".into(),
            target: NoticeTarget::Uploads,
        }]
    );
    assert_eq!(digest.status().headline(), "Idle: everything is filed");
}

#[test]
fn failures_are_summed_up_with_their_reasons() {
    let mut digest = Digest::new(NotifySettings::default());
    let jobs = vec![
        job(1, "Ana Silva", "deed.pdf", JobState::Done),
        failed(2, "a.exe", ErrorCode::InvalidInput, "type refused"),
        failed(3, "b.pdf", ErrorCode::Unavailable, "the CRM did not answer"),
    ];
    digest.uploads(&event(jobs, 1, None));
    // The same failed row again (a later event) is not counted twice.
    digest.uploads(&event(
        vec![failed(2, "a.exe", ErrorCode::InvalidInput, "x")],
        0,
        None,
    ));
    let summary = BatchSummary {
        attached: 1,
        failed: 2,
        cancelled: 0,
    };
    let notices = digest.uploads(&event(vec![], 0, Some(summary)));
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].kind, NoticeKind::Failed);
    assert_eq!(notices[0].title, "2 uploads failed, 1 attached");
    assert_eq!(
        notices[0].body,
        "a.exe: type refused\nb.pdf: the CRM did not answer"
    );

    // b.pdf retried (by the inbox) fails again: not told again; the batch's success is.
    digest.uploads(&event(
        vec![
            failed(3, "b.pdf", ErrorCode::Unavailable, "again"),
            job(4, "Ana Silva", "c.pdf", JobState::Done),
        ],
        0,
        None,
    ));
    let again = BatchSummary {
        attached: 1,
        failed: 1,
        cancelled: 0,
    };
    let notices = digest.uploads(&event(vec![], 0, Some(again)));
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].kind, NoticeKind::Batch);
    assert_eq!(notices[0].title, "1 file attached");
}

#[test]
fn a_refused_login_is_told_once_and_shown_as_the_problem() {
    let mut digest = Digest::new(NotifySettings::default());
    let refused = |id| failed(id, "x.pdf", ErrorCode::Unauthenticated, "401");
    let first = digest.uploads(&event(vec![refused(1), refused(2)], 0, None));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].kind, NoticeKind::LoginRefused);
    assert_eq!(first[0].target, NoticeTarget::Accounts);
    assert!(digest.uploads(&event(vec![refused(3)], 0, None)).is_empty());
    assert_eq!(
        digest.status().headline(),
        "Problem: the CRM refused the login"
    );
    // Working again clears it; refused again is told again.
    digest.uploads(&event(vec![job(4, "A", "y.pdf", JobState::Done)], 0, None));
    assert_eq!(digest.status().problem, None);
    assert_eq!(digest.uploads(&event(vec![refused(5)], 0, None)).len(), 1);
}

#[test]
fn files_needing_filing_are_told_once_each_and_counted() {
    let mut digest = Digest::new(NotifySettings::default());
    digest.seed(&[item(1, "old.pdf", InboxState::NeedsFiling, None)]);
    assert_eq!(digest.status().needs_filing, 1);

    let one = digest.inbox(&inbox_event(vec![item(
        2,
        "scan_0042.pdf",
        InboxState::NeedsFiling,
        Some("Ana Silva"),
    )]));
    assert_eq!(
        one,
        vec![Notice {
            kind: NoticeKind::NeedsFiling,
            title: "scan_0042.pdf needs filing".into(),
            body: "Is it Ana Silva's? Choose its client in Attaché.".into(),
            target: NoticeTarget::InboxItem { id: 2 },
        }]
    );
    // The same row again (it changed otherwise) is not told again.
    assert!(digest
        .inbox(&inbox_event(vec![item(
            2,
            "scan_0042.pdf",
            InboxState::NeedsFiling,
            None
        )]))
        .is_empty());
    let many: Vec<InboxItem> = (10..15)
        .map(|i| item(i, &format!("IMG_{i}.jpg"), InboxState::NeedsFiling, None))
        .collect();
    let told = digest.inbox(&inbox_event(many));
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].title, "5 files need filing");
    assert_eq!(
        told[0].body,
        "IMG_10.jpg, IMG_11.jpg, IMG_12.jpg, and 2 more"
    );
    assert_eq!(told[0].target, NoticeTarget::Inbox);
    assert_eq!(digest.status().needs_filing, 7);
    // Filed by the agent: no longer counted.
    digest.inbox(&inbox_event(vec![item(
        2,
        "scan_0042.pdf",
        InboxState::Filed,
        None,
    )]));
    assert_eq!(digest.status().needs_filing, 6);
}

#[test]
fn each_kind_of_notice_can_be_turned_off() {
    let off = NotifySettings {
        batches: false,
        needs_filing: false,
        failures: true,
        login_refused: false,
    };
    let mut digest = Digest::new(off);
    let done = BatchSummary {
        attached: 1,
        ..BatchSummary::default()
    };
    assert!(digest
        .uploads(&event(
            vec![job(1, "A", "a.pdf", JobState::Done)],
            0,
            Some(done)
        ))
        .is_empty());
    assert!(digest
        .inbox(&inbox_event(vec![item(
            1,
            "a.pdf",
            InboxState::NeedsFiling,
            None
        )]))
        .is_empty());
    assert!(digest
        .uploads(&event(
            vec![failed(2, "b.pdf", ErrorCode::Unauthenticated, "401")],
            0,
            None
        ))
        .is_empty());
    // Still counted and shown in the tray, only not announced.
    assert_eq!(digest.status().needs_filing, 1);
    assert!(digest.status().problem.is_some());
    let failed_batch = BatchSummary {
        failed: 1,
        ..BatchSummary::default()
    };
    assert_eq!(
        digest.uploads(&event(vec![], 0, Some(failed_batch))).len(),
        1,
        "failures are still on"
    );
}

#[test]
fn a_folder_that_cannot_be_watched_is_the_trays_problem() {
    let mut digest = Digest::default();
    let mut ev = inbox_event(vec![]);
    ev.problems = vec!["/mnt/scans: not found".into()];
    digest.inbox(&ev);
    assert_eq!(digest.status().headline(), "Problem: /mnt/scans: not found");
    digest.inbox(&inbox_event(vec![]));
    assert_eq!(digest.status().problem, None);
}

#[test]
fn launch_arguments_name_files_and_whether_to_hide() {
    let cwd = Path::new("/home/agent/Downloads");
    let launch = Launch::parse(
        [
            "--hidden",
            "offer.pdf",
            "/tmp/deed.pdf",
            "file:///tmp/Jos%C3%A9%20photo.jpg",
            "https://example.com/x.pdf",
            "--some-toolkit-flag",
        ]
        .map(String::from),
        cwd,
    );
    assert!(launch.hidden);
    assert_eq!(
        launch.files,
        vec![
            PathBuf::from("/home/agent/Downloads/offer.pdf"),
            PathBuf::from("/tmp/deed.pdf"),
            PathBuf::from("/tmp/José photo.jpg"),
        ]
    );
    assert_eq!(Launch::parse(Vec::new(), cwd), Launch::default());
}

#[test]
fn tray_icons_differ_by_look_and_idle_is_the_app_icon() {
    let mut app = image::RgbaImage::from_pixel(32, 32, image::Rgba([10, 20, 30, 255]));
    app.put_pixel(0, 0, image::Rgba([1, 2, 3, 255]));
    let mut png = Vec::new();
    app.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let idle = tray_icon(&png, TrayLook::Idle).unwrap();
    assert_eq!(idle, app);
    let corner = |look| *tray_icon(&png, look).unwrap().get_pixel(25, 25);
    assert_eq!(
        corner(TrayLook::Problem),
        image::Rgba([0xdc, 0x26, 0x26, 0xff])
    );
    assert_eq!(
        corner(TrayLook::Busy),
        image::Rgba([0x25, 0x63, 0xeb, 0xff])
    );
    assert_eq!(
        corner(TrayLook::Paused),
        image::Rgba([0x9c, 0xa3, 0xaf, 0xff])
    );
    // The top left is untouched.
    assert_eq!(
        *tray_icon(&png, TrayLook::Problem).unwrap().get_pixel(0, 0),
        image::Rgba([1, 2, 3, 255])
    );
}
