//! `make bench`: thumbnails against the common tools, in the same run, process for process
//! (this binary re-runs itself to render one file, so both sides pay a process start).
//!
//! 1. A 24-megapixel JPEG to 256 px: Attaché against `vipsthumbnail` (libvips, shrink-on-load)
//!    and ImageMagick `convert -thumbnail`. Targets: at least as fast as vipsthumbnail, ≥ 3×
//!    faster than convert.
//! 2. A multi-page contract's first page to 256 px: p50 ≤ 150 ms; `pdftoppm -r 30 -f 1 -l 1`
//!    (poppler) beside it.
//! 3. A grid of 200 image attachments from a cold cache, the sandbox on loopback: every
//!    thumbnail ready (downloaded, rendered, cached) in ≤ 2 s, asked for all at once as the
//!    webview does.
//!
//! The peers come from Debian (`libvips-tools`, `imagemagick`, `poppler-utils`); `make bench`
//! installs them. `ATTACHE_BENCH_QUICK=1` runs fewer rounds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use attache_core::{thumbnail, AppHome};
use attache_sandbox::{Sandbox, SandboxConfig};
use attache_service::Attache;

/// Set when this binary is re-run to render one file: `path:size:outdir`.
const RENDER_ONE: &str = "ATTACHE_BENCH_RENDER_ONE";

fn main() {
    if let Ok(job) = std::env::var(RENDER_ONE) {
        let mut parts = job.splitn(3, ':');
        let (file, size, out) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let thumb = thumbnail::render_file(Path::new(file), size.parse().unwrap()).unwrap();
        std::fs::write(
            Path::new(out).join(format!("attache.{}", thumb.extension())),
            &thumb.bytes,
        )
        .unwrap();
        return;
    }
    let quick = std::env::var("ATTACHE_BENCH_QUICK").is_ok();
    let rounds = if quick { 3 } else { 9 };
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    std::fs::create_dir_all(&out).unwrap();

    // 1. The 24 MP photo.
    let photo = work.path().join("photo-24mp.jpg");
    write_photo(&photo, 6000, 4000, 0);
    let ours = median(rounds, || {
        run(Command::new(std::env::current_exe().unwrap()).env(
            RENDER_ONE,
            format!("{}:256:{}", photo.display(), out.display()),
        ))
    });
    let vips = median(rounds, || {
        run(Command::new("vipsthumbnail")
            .arg(&photo)
            .args(["-s", "256", "-o"])
            .arg(out.join("vips.jpg")))
    });
    let convert = median(rounds, || {
        run(Command::new(imagemagick())
            .arg(&photo)
            .args(["-thumbnail", "256x256"])
            .arg(out.join("im.jpg")))
    });
    println!(
        "thumbnail 24 MP JPEG -> 256 px (median of {rounds}, whole process): attache {:.0} ms, vipsthumbnail {:.0} ms, \
         convert -thumbnail {:.0} ms: {:.2}x vips's speed (target >= 1.0), {:.1}x convert's (target >= 3)",
        ms(ours),
        ms(vips),
        ms(convert),
        vips.as_secs_f64() / ours.as_secs_f64(),
        convert.as_secs_f64() / ours.as_secs_f64()
    );

    // 2. A contract's first page.
    let contract = work.path().join("contract.pdf");
    let paragraphs: Vec<String> = (0..60)
        .map(|i| {
            if i % 8 == 0 {
                format!("# Section {}", i / 8 + 1)
            } else {
                "The Buyer agrees to purchase and the Seller agrees to sell the Property on the terms below, \
                 including fixtures, appliances listed in Addendum A, and all improvements thereon."
                    .to_string()
            }
        })
        .collect();
    let refs: Vec<&str> = paragraphs.iter().map(String::as_str).collect();
    std::fs::write(
        &contract,
        attache_sandbox::pdf::document(
            "Residential Purchase Agreement",
            "12 Harbor Lane",
            &refs,
            &["Buyer", "Seller"],
        ),
    )
    .unwrap();
    let mut in_process: Vec<Duration> = (0..rounds.max(9))
        .map(|_| {
            let started = Instant::now();
            thumbnail::render_file(&contract, 256).unwrap();
            started.elapsed()
        })
        .collect();
    in_process.sort();
    let ours_pdf = median(rounds, || {
        run(Command::new(std::env::current_exe().unwrap()).env(
            RENDER_ONE,
            format!("{}:256:{}", contract.display(), out.display()),
        ))
    });
    let poppler = median(rounds, || {
        run(Command::new("pdftoppm")
            .args(["-r", "30", "-f", "1", "-l", "1", "-png"])
            .arg(&contract)
            .arg(out.join("poppler")))
    });
    println!(
        "thumbnail PDF first page -> 256 px ({} pages): attache p50 {:.0} ms in the app (target <= 150), \
         {:.0} ms as a process; pdftoppm -r 30 -f 1 -l 1 {:.0} ms",
        page_count(&contract),
        ms(in_process[in_process.len() / 2]),
        ms(ours_pdf),
        ms(poppler)
    );

    // 3. A grid of 200 images, cold.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(grid(work.path(), if quick { 50 } else { 200 }));
}

async fn grid(work: &Path, count: usize) {
    let sandbox = Sandbox::start(
        SandboxConfig::demo(work.join("site")),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let seeding = Attache::open_demo_at(
        AppHome::at(work.join("seed-home")).unwrap(),
        &sandbox.base_url(),
    )
    .await
    .unwrap();
    seeding.contacts().refresh().await.unwrap();
    seeding.uploads().start();
    let contact = seeding.contacts().search("Olivia", 0, 1).contacts.remove(0);
    let photos = work.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let paths: Vec<PathBuf> = (0..count)
        .map(|i| {
            let path = photos.join(format!("photo-{i:03}.jpg"));
            write_photo(&path, 1600, 1200, i as u32 + 1);
            path
        })
        .collect();
    let report = seeding
        .uploads()
        .queue_files(&contact, paths, false)
        .await
        .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let ids: Vec<i64> = report.queued.iter().map(|v| v.id).collect();
    let ended = seeding.uploads().wait_for(&ids).await.unwrap();
    let attached = ended
        .iter()
        .filter(|j| j.state == attache_core::upload::JobState::Done)
        .count();
    assert_eq!(
        attached,
        count,
        "the grid's photos were attached: {:?}",
        ended.iter().find(|j| j.error.is_some())
    );
    drop(seeding);

    // A new home: no thumbnail, preview or listing cached.
    let app = Arc::new(
        Attache::open_demo_at(
            AppHome::at(work.join("cold-home")).unwrap(),
            &sandbox.base_url(),
        )
        .await
        .unwrap(),
    );
    app.contacts().refresh().await.unwrap();
    let started = Instant::now();
    let listed = app
        .contacts()
        .refresh_attachments(&contact.id)
        .await
        .unwrap();
    let wanted: Vec<_> = listed.into_iter().filter(|a| a.can_thumbnail()).collect();
    let tasks: Vec<_> = wanted
        .iter()
        .map(|a| {
            let (app, contact, id) = (app.clone(), a.contact_id.clone(), a.id.clone());
            tokio::spawn(async move {
                app.thumbnails()
                    .of_attachment(&contact, &id, 256)
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    let mut ready = 0;
    for task in tasks {
        if task.await.unwrap().is_ok() {
            ready += 1;
        }
    }
    println!(
        "thumbnail grid, cold cache: {ready} of {} image thumbnails ready in {:.2} s (list + download + render + cache; target <= 2 s for 200)",
        wanted.len(),
        started.elapsed().as_secs_f64()
    );
}

fn imagemagick() -> &'static str {
    // Debian's own binary, not a stand-in earlier on the PATH.
    if Path::new("/usr/bin/convert").exists() {
        "/usr/bin/convert"
    } else {
        "convert"
    }
}

fn write_photo(path: &Path, width: u32, height: u32, seed: u32) {
    // Smooth gradients with texture, like a photo: compresses and decodes like one.
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let n = ((x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503) ^ seed.wrapping_mul(97)) >> 13)
            as u8
            & 15;
        image::Rgb([
            (((x + seed * 13) * 255) / width) as u8 ^ n,
            ((y * 255) / height) as u8,
            (((x + y) * 255) / (width + height)) as u8 + n,
        ])
    });
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
}

fn run(cmd: &mut Command) -> Duration {
    let started = Instant::now();
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (make bench installs the peers)"));
    assert!(status.success(), "{cmd:?} failed");
    started.elapsed()
}

fn median(rounds: usize, mut f: impl FnMut() -> Duration) -> Duration {
    f(); // warm the page cache
    let mut times: Vec<Duration> = (0..rounds).map(|_| f()).collect();
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn page_count(pdf: &Path) -> usize {
    let bytes = std::fs::read(pdf).unwrap();
    bytes
        .windows(10)
        .filter(|w| w == b"/Type /Pag")
        .count()
        .saturating_sub(1)
}
