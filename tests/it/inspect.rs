use std::io::Write;
use std::time::Duration;

use crate::support::proxy::repo_path;
use crate::support::{Lab, curl, eventually, pseudo_random, sha256_hex};

fn fixture(rel: &str) -> String {
    repo_path(&format!("tests/fixtures/{rel}"))
        .display()
        .to_string()
}

/// Runs curl through the proxy (trusting its CA) with `args`; returns the status and the body
/// of the answer.
async fn via_proxy(lab: &Lab, args: &[&str]) -> (u16, String) {
    let proxy = lab.proxy.url();
    let mut all = vec![
        "-x",
        &proxy,
        "--cacert",
        lab.sluis_ca_str(),
        "-w",
        "\n%{http_code}",
    ];
    all.extend_from_slice(args);
    let out = curl(&all).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text
        .rsplit_once('\n')
        .unwrap_or_else(|| panic!("no answer: {}", String::from_utf8_lossy(&out.stderr)));
    (code.parse().unwrap(), body.to_owned())
}

/// Uploads `file` as a form field to an external host, over HTTPS (intercepted) or plain HTTP.
async fn upload(lab: &Lab, tls: bool, file: &str) -> (u16, String) {
    let url = if tls {
        "https://partner.test/in"
    } else {
        "http://partner.test/in"
    };
    let field = format!("file=@{file}");
    via_proxy(lab, &["-F", &field, "-F", "note=quarterly figures", url]).await
}

/// PUTs `data` as a text file (curl `-T`, no `Expect`), named like the URL's last segment.
async fn put_text(lab: &Lab, data: &[u8], url: &str) -> (u16, String) {
    let name = url.rsplit('/').next().unwrap_or("upload.txt");
    let file = lab.proxy.workdir.path().join(name);
    std::fs::write(&file, data).unwrap();
    let path = file.to_str().unwrap();
    let args = [
        "-H",
        "Expect:",
        "-H",
        "Content-Type: text/plain",
        "-T",
        path,
        url,
    ];
    via_proxy(lab, &args).await
}

fn rule_of(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["rule"].as_str().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_files_pass_and_unencrypted_ones_are_held_back_plain_and_intercepted() {
    let lab = Lab::builder(&["partner.test"]).start().await;
    for tls in [false, true] {
        let origin = if tls { &lab.origin } else { &lab.http };
        for encrypted in [
            "archives/zip-aes256.zip",
            "archives/7z-aes-headers.7z",
            "documents/pdf-user-aes256.pdf",
            "documents/docx-agile.docx",
            "documents/pgp-symmetric.gpg",
            "documents/age-scrypt.age",
        ] {
            let before = origin.received().len();
            let (code, body) = upload(&lab, tls, &fixture(encrypted)).await;
            assert_eq!(code, 200, "{encrypted} (tls {tls}): {body}");
            let got = origin.received();
            assert_eq!(got.len(), before + 1);
            let sent = std::fs::read(fixture(encrypted)).unwrap();
            assert!(
                got.last().unwrap().body_len > sent.len() as u64,
                "the form reached the origin whole"
            );
        }
        for (clear, rule) in [
            ("text/prose.txt", "ksp-1.4-unencrypted-file"),
            ("archives/zip-mixed.zip", "ksp-1.4-unencrypted-file"),
            (
                "documents/pdf-owner-only-aes256.pdf",
                "ksp-1.4-unencrypted-file",
            ),
            ("archives/docx-msip.docx", "ksp-1.2-classified-file"),
            ("text/bsn.csv", "ksp-privacy-4-bsn"),
        ] {
            let before = origin.requests_started();
            let (code, body) = upload(&lab, tls, &fixture(clear)).await;
            assert_eq!(code, 403, "{clear} (tls {tls}): {body}");
            assert_eq!(rule_of(&body), rule, "{clear}: {body}");
            assert_eq!(
                origin.requests_started(),
                before,
                "{clear}: bytes reached the origin"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_encoded_body_is_decoded_and_inspected() {
    let lab = Lab::builder(&["partner.test"]).start().await;
    let csv = std::fs::read(fixture("text/bsn.csv")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&csv).unwrap();
    let file = lab.proxy.workdir.path().join("bsn.csv.gz");
    std::fs::write(&file, gz.finish().unwrap()).unwrap();
    let data = format!("@{}", file.display());
    let (code, body) = via_proxy(
        &lab,
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Encoding: gzip",
            "-H",
            "Content-Type: text/csv",
            "--data-binary",
            &data,
            "http://partner.test/export/klanten.csv",
        ],
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(rule_of(&body), "ksp-privacy-4-bsn");
    assert_eq!(lab.http.requests_started(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_event_describes_the_files_without_their_content() {
    let lab = Lab::builder(&["partner.test"]).start().await;
    let (code, body) = upload(&lab, true, &fixture("text/bsn.csv")).await;
    assert_eq!(code, 403);
    let incident = serde_json::from_str::<serde_json::Value>(&body).unwrap()["incident"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the event", Duration::from_secs(10), || {
        lab.audit_events()
            .iter()
            .any(|e| e["event"]["id"] == incident.as_str())
    })
    .await;
    let events = lab.audit_events();
    let e = events
        .iter()
        .find(|e| e["event"]["id"] == incident.as_str())
        .unwrap();
    let file = &e["sluis"]["files"][0];
    assert_eq!(file["name"], "bsn.csv");
    assert_eq!(file["type"], "csv");
    assert_eq!(file["encrypted"], false);
    assert_eq!(
        file["hash"]["sha256"],
        sha256_hex(&std::fs::read(fixture("text/bsn.csv")).unwrap())
    );
    assert!(file["detections"]["bsn"].as_u64().unwrap() >= 10, "{file}");
    assert_eq!(
        file["fingerprints"]["bsn"].as_array().unwrap()[0]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    // Neither a BSN nor the form's text is in the log.
    let log = std::fs::read_to_string(lab.proxy.workdir.path().join("audit/audit.log")).unwrap();
    let csv = std::fs::read_to_string(fixture("text/bsn.csv")).unwrap();
    for number in csv
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| n.len() == 9)
    {
        assert!(!log.contains(number), "a BSN leaked into the audit log");
    }
    assert!(!log.contains("quarterly figures"));

    // The investigator's question: did this BSN leave? `sluis audit find` answers from the
    // fingerprints.
    let bsn = csv
        .split(|c: char| !c.is_ascii_digit())
        .find(|n| n.len() == 9)
        .unwrap();
    let spaced = format!("{} {} {}", &bsn[..3], &bsn[3..6], &bsn[6..]);
    let out = crate::support::proxy::run_cli(
        &[
            "audit",
            "find",
            "--value",
            &spaced,
            "--kind",
            "bsn",
            "--key-file",
            "secrets/fingerprint.key",
            "audit/audit.log",
        ],
        lab.proxy.workdir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&incident));
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_mode_streams_and_logs_a_would_block() {
    let dir = crate::support::lab::monitor_policy();
    let lab = Lab::builder(&["partner.test"])
        .policy(dir.path())
        .start()
        .await;
    let (code, _) = upload(&lab, true, &fixture("text/prose.txt")).await;
    assert_eq!(code, 200, "monitor mode must not block");
    assert_eq!(lab.origin.received().len(), 1);
    eventually("the would-block", Duration::from_secs(10), || {
        lab.audit_events()
            .iter()
            .any(|e| e["sluis"]["would_block"] == true)
    })
    .await;
    let e = lab
        .audit_events()
        .into_iter()
        .find(|e| e["sluis"]["would_block"] == true)
        .unwrap();
    assert_eq!(e["rule"]["id"], "ksp-1.4-unencrypted-file");
    assert_eq!(e["sluis"]["mode"], "monitor");
    assert_eq!(e["sluis"]["files"][0]["name"], "prose.txt");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_held_upload_spills_encrypted_and_memory_stays_bounded() {
    const SIZE: usize = 200 << 20;
    let (lab, spool) = spooling_lab("2MiB").await;
    let data = text_body(SIZE, 9);
    let (code, body) = put_text(&lab, &data, "https://partner.test/big.txt").await;
    assert_eq!(code, 200, "{body}");
    let got = lab.origin.received().pop().unwrap();
    assert_eq!(got.body_len, SIZE as u64);
    assert_eq!(got.body_sha256, sha256_hex(&data));
    let peak = lab.proxy.peak_rss_bytes();
    assert!(
        peak < 64 << 20,
        "peak RSS {} MiB while holding a {} MiB body",
        peak >> 20,
        SIZE >> 20
    );
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "spill files have no name"
    );
    assert!(spill_descriptors(&lab, &spool).len() <= 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_large_upload_reuses_the_kept_spill_file() {
    let (lab, spool) = spooling_lab("1MiB").await;
    let mut spilled = Vec::new();
    for (seed, size) in [(3, 24 << 20), (4, 8 << 20)] {
        let data = text_body(size, seed);
        let (code, body) = put_text(&lab, &data, "https://partner.test/big.txt").await;
        assert_eq!(code, 200, "{body}");
        let got = lab.origin.received().pop().unwrap();
        assert_eq!(got.body_sha256, sha256_hex(&data));
        // The file goes back to the proxy's keeping once its last reader lets go.
        tokio::time::sleep(Duration::from_millis(300)).await;
        // One file, opened twice (through the page cache and with direct I/O), kept open
        // between the uploads; a second file would mean the first was not reused.
        let open = spill_descriptors(&lab, &spool);
        assert_eq!(open.len(), 2, "{open:?}");
        // The first body's file, about 23 MiB past the memory it could use, in 1 MiB blocks.
        let metrics = lab.proxy.metrics().await;
        let kept = metric_value(&metrics, "sluis_spill_files_kept_bytes");
        assert!(kept >= 23 << 20 && kept.is_multiple_of(1 << 20), "{kept}");
        assert_eq!(metric_value(&metrics, "sluis_held_memory_bytes"), 0);
        let [cached, disk] = ["page_cache", "disk"].map(|through| {
            let series = format!("sluis_spilled_bytes_total{{through=\"{through}\"}}");
            metric_value(&metrics, &series)
        });
        spilled.push((kept, cached, disk));
    }
    // The first body made the file: the kept file is its blocks, all of which went to the
    // disk with direct I/O (or through the page cache, on a file system without it).
    let (first_kept, first_cached, first_disk) = spilled[0];
    assert_eq!(first_cached + first_disk, first_kept, "{spilled:?}");
    // The second body, a third of the first, went over the pages the first one left in the
    // cache, and nothing of it to the disk.
    let (_, cached, disk) = spilled[1];
    let second = cached - first_cached;
    assert_eq!(disk, first_disk, "{spilled:?}");
    assert!(
        (7 << 20..=8 << 20).contains(&second) && second.is_multiple_of(1 << 20),
        "{spilled:?}"
    );
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_serving_thread_runs_on_a_cpu_of_its_own_and_its_helpers_on_any() {
    // As many workers as CPUs this test may use, whatever the machine: the proxy inherits them.
    let cpus = cpus_allowed("/proc/thread-self/status");
    let workers = cpus.len().to_string();
    let lab = Lab::builder(&["partner.test"])
        .tweak(move |b| {
            b.set("proxy", "workers", &workers);
            b.set("inspect", "request_memory", "\"1MiB\"");
        })
        .start()
        .await;
    // Long enough to be inspected on a helper thread while it spills to the spool through
    // others; both are blocking-pool threads started by a bound serving thread.
    let data = text_body(6 << 20, 5);
    let (code, body) = put_text(&lab, &data, "https://partner.test/big.txt").await;
    assert_eq!(code, 200, "{body}");

    let threads = threads_of(lab.proxy.pid());
    let mut bound: Vec<Vec<usize>> = threads
        .iter()
        .filter(|(name, _)| name.starts_with("sluis-shard-"))
        .map(|(_, allowed)| allowed.clone())
        .collect();
    assert_eq!(bound.len(), cpus.len(), "{threads:?}");
    bound.sort();
    let one_each: Vec<Vec<usize>> = cpus.iter().map(|&c| vec![c]).collect();
    assert_eq!(bound, one_each, "{threads:?}");
    let helpers: Vec<_> = threads
        .iter()
        .filter(|(name, _)| name.starts_with("sluis-helper-"))
        .collect();
    assert!(!helpers.is_empty(), "{threads:?}");
    for (name, allowed) in helpers {
        assert_eq!(allowed, &cpus, "{name} is bound");
        // The kernel keeps 15 bytes of a name: the shard's number must be among them.
        assert!(name.ends_with(|c: char| c.is_ascii_digit()), "{name:?}");
    }

    // Off, the kernel places the serving threads.
    let proxy = crate::support::TestProxy::builder()
        .set("proxy", "workers", &cpus.len().to_string())
        .set("proxy", "pin_workers", "false")
        .spawn()
        .await;
    for (name, allowed) in threads_of(proxy.pid()) {
        assert_eq!(allowed, cpus, "{name} is bound");
    }
}

/// Each thread of process `pid`: its name and the CPUs it may run on.
fn threads_of(pid: u32) -> Vec<(String, Vec<usize>)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|t| {
            let dir = t.unwrap().path();
            let name = std::fs::read_to_string(dir.join("comm")).unwrap();
            let allowed = cpus_allowed(dir.join("status").to_str().unwrap());
            (name.trim_end().to_owned(), allowed)
        })
        .collect()
}

/// The CPUs in the `Cpus_allowed_list` line of a `/proc` status file ("0-3,6").
fn cpus_allowed(status: &str) -> Vec<usize> {
    let text = std::fs::read_to_string(status).unwrap();
    let list = text
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_else(|| panic!("no Cpus_allowed_list in {status}"));
    let mut cpus = Vec::new();
    for part in list.trim().split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        cpus.extend(first.parse::<usize>().unwrap()..=last.parse::<usize>().unwrap());
    }
    cpus
}

/// A lab whose proxy keeps `request_memory` of a held body in memory and spills the rest to
/// `spool` in its working directory.
async fn spooling_lab(request_memory: &str) -> (Lab, std::path::PathBuf) {
    let request_memory = format!("\"{request_memory}\"");
    let lab = Lab::builder(&["partner.test"])
        .tweak(move |b| {
            b.set("inspect", "request_memory", &request_memory);
            // Relative to the proxy's working directory, the test's own.
            b.set("inspect", "spool_dir", "\"spool\"");
        })
        .start()
        .await;
    let spool = lab.proxy.workdir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    (lab, spool)
}

/// Printable text, which is inspected (labels, BSNs) and held, not blocked as a file.
fn text_body(size: usize, seed: u64) -> Vec<u8> {
    pseudo_random(size, seed)
        .iter()
        .map(|b| b"abcdefghij klmnopqrstuvwxyz\n"[(*b as usize) % 28])
        .collect()
}

/// The value of an unlabelled metric in a scrape.
fn metric_value(scrape: &str, name: &str) -> u64 {
    crate::support::metric(scrape, name).unwrap_or_else(|| panic!("no {name} in\n{scrape}"))
}

/// The proxy's open descriptors of files in `dir`.
fn spill_descriptors(lab: &Lab, dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(format!("/proc/{}/fd", lab.proxy.pid()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .collect()
}

/// Uploads `head` and then `pieces` one by one, 100 ms apart, as a PUT to partner.test.
fn slow_upload(lab: &Lab, head: Vec<u8>, pieces: Vec<Vec<u8>>) -> tokio::task::JoinHandle<u16> {
    use futures_util::StreamExt;
    let client = crate::support::reqwest_via(&lab.proxy.url(), &[]);
    let chunks = std::iter::once(head).chain(pieces).map(bytes::Bytes::from);
    let stream = futures_util::stream::iter(chunks)
        .enumerate()
        .then(|(i, c)| async move {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok::<_, std::io::Error>(c)
        });
    tokio::spawn(async move {
        client
            .put("http://partner.test/out/archive.age")
            .header("content-type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_whose_header_proves_encryption_is_released_before_its_end() {
    let lab = Lab::builder(&["partner.test"]).start().await;
    let age = std::fs::read(fixture("documents/age-scrypt.age")).unwrap();
    let pieces: Vec<Vec<u8>> = (0..20).map(|i| pseudo_random(1 << 20, 100 + i)).collect();
    let mut whole = age.clone();
    pieces.iter().for_each(|p| whole.extend_from_slice(p));
    let upload = slow_upload(&lab, age, pieces);
    // The age header settles the verdict: the origin gets the request while the client is
    // still sending (about 2 s of pieces remain).
    eventually(
        "the request reaching the origin early",
        Duration::from_secs(1),
        || lab.http.requests_started() == 1,
    )
    .await;
    assert!(
        !upload.is_finished(),
        "the upload was already complete: nothing was released early"
    );
    assert_eq!(upload.await.unwrap(), 200);
    let got = lab.http.received().pop().unwrap();
    assert_eq!(got.body_sha256, sha256_hex(&whole));
    // The audit has the final report: the real size and hash, not the prefix seen at release.
    eventually("the event", Duration::from_secs(10), || {
        !lab.audit_events().is_empty()
    })
    .await;
    let e = lab.audit_events().pop().unwrap();
    assert_eq!(e["sluis"]["files"][0]["size"], whole.len());
    assert_eq!(e["sluis"]["files"][0]["encryption"], "age");
    assert_eq!(e["sluis"]["files"][0]["hash"]["sha256"], sha256_hex(&whole));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_whose_verdict_can_still_change_is_held_to_its_end() {
    let lab = Lab::builder(&["partner.test"]).start().await;
    let text = |i: u64| {
        pseudo_random(1 << 20, i)
            .iter()
            .map(|b| b"abcdefgh ijklmnop\n"[(*b as usize) % 18])
            .collect::<Vec<u8>>()
    };
    let upload = slow_upload(&lab, text(1), (2..12).map(text).collect());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        lab.http.requests_started(),
        0,
        "a body that can still change was released early"
    );
    assert_eq!(upload.await.unwrap(), 200);
    assert_eq!(lab.http.requests_started(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bsn_in_the_last_bytes_of_a_long_upload_still_blocks_it() {
    // Past its first few MiB a held body is inspected on a thread of its own; the verdict
    // must still see every byte, up to the last.
    const SIZE: usize = 24 << 20;
    let lab = Lab::builder(&["partner.test"]).start().await;
    let mut data: Vec<u8> = pseudo_random(SIZE, 12)
        .iter()
        .map(|b| b"abcdefghij klmnopqrstuvwxyz\n"[(*b as usize) % 28])
        .collect();
    data.extend_from_slice(b"\nbsn;naam\n100000009;Klant 001\n");
    let (code, body) = put_text(&lab, &data, "http://partner.test/export.txt").await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(rule_of(&body), "ksp-privacy-4-bsn");
    assert_eq!(lab.http.requests_started(), 0, "a byte of the body left");
    eventually("the event", Duration::from_secs(10), || {
        !lab.audit_events().is_empty()
    })
    .await;
    let e = lab.audit_events().pop().unwrap();
    let file = &e["sluis"]["files"][0];
    assert_eq!(file["size"], data.len());
    assert_eq!(file["hash"]["sha256"], sha256_hex(&data));
    assert_eq!(file["detections"]["bsn"], 1, "{file}");
}

#[tokio::test(flavor = "multi_thread")]
async fn more_long_uploads_at_once_than_cores_are_all_inspected_to_their_end() {
    // Past one offloaded inspection per core, long bodies are inspected in place: each one must
    // still see its last bytes, whichever way it went.
    let uploads = std::thread::available_parallelism().map_or(2, |n| n.get()) + 1;
    let lab = Lab::builder(&["partner.test"]).start().await;
    let bodies: Vec<Vec<u8>> = (0..uploads)
        .map(|i| {
            let mut data: Vec<u8> = pseudo_random(12 << 20, 40 + i as u64)
                .iter()
                .map(|b| b"abcdefghij klmnopqrstuvwxyz\n"[(*b as usize) % 28])
                .collect();
            data.extend_from_slice(b"\nbsn;naam\n100000009;Klant 001\n");
            data
        })
        .collect();
    let answers = futures_util::future::join_all(bodies.iter().enumerate().map(|(i, data)| {
        let url = format!("http://partner.test/export-{i}.txt");
        let lab = &lab;
        async move { put_text(lab, data, &url).await }
    }))
    .await;
    for (code, body) in answers {
        assert_eq!(code, 403, "{body}");
        assert_eq!(rule_of(&body), "ksp-privacy-4-bsn");
    }
    assert_eq!(lab.http.requests_started(), 0, "a byte of a body left");
}
