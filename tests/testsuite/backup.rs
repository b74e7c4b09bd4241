//! Online backup and restore (sled): `Backup` streamed while Start/Refresh/Logout run,
//! `sessiond restore` into a new dir, and a server on it that knows every session
//! acknowledged before the backup began, with its state, its tokens and its signing
//! keys. Damaged files and occupied dirs are refused with nothing written.

use crate::common;
use crate::support;

use std::path::Path;
use std::process::Command;

use common::{backend, Backend, TestServer};
use futures::StreamExt;
use sessiond::clock::Clock;
use sessiond::proto::session::v1::BackupRequest;
use sessiond::session::binding::DeviceSigner;
use support::*;
use tonic::Code;

/// Access tokens on, so the restored signing keys can be checked through GetJwks.
const CONFIG: &str = "[groups.default]\naccess_token_ttl = \"5m\"\n";

/// The whole backup file, as `Backup` streams it.
async fn backup_bytes(client: &mut Client) -> Result<Vec<u8>, tonic::Status> {
    let mut chunks = client.backup(BackupRequest {}).await?.into_inner();
    let mut file = Vec::new();
    while let Some(chunk) = chunks.next().await {
        file.extend(chunk?.data);
    }
    Ok(file)
}

/// Runs `sessiond restore FILE --data-dir DIR` and returns its exit success and stderr.
fn restore_with_binary(file: &Path, data_dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .arg("restore")
        .arg(file)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("sessiond runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A stopped server whose data dir is empty: a restore target it can boot on.
async fn empty_target() -> TestServer {
    let mut target = TestServer::with_config(CONFIG).await;
    target.stop().await;
    for entry in std::fs::read_dir(target.data_dir.path()).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            std::fs::remove_dir_all(path).expect("clear dir");
        } else {
            std::fs::remove_file(path).expect("clear file");
        }
    }
    target
}

/// A server on a fresh data dir restored from backup `file` with `sessiond restore`, its
/// clock at `source`'s.
async fn restored_from(file: &[u8], source: &TestServer) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sessions.backup");
    std::fs::write(&path, file).expect("write the backup");
    let mut target = empty_target().await;
    target.clock.set_ms(source.clock.now_ms());
    let (restored, stderr) = restore_with_binary(&path, target.data_dir.path());
    assert!(restored, "restore failed: {stderr}");
    target.restart().await;
    target
}

on_backends!(backup_under_load_restores_every_acknowledged_session: sled, redis; flavor = "multi_thread", worker_threads = 2);
async fn backup_under_load_restores_every_acknowledged_session() {
    if backend() != Backend::Sled {
        return; // Redis is backed up with its own RDB/AOF files (see the next test)
    }
    let source = TestServer::with_config(CONFIG).await;
    let mut client = source.client().await;
    let mut kept = Vec::new();
    for n in 0..40 {
        kept.push(start_session(&mut client, &format!("kept-{n}")).await);
    }
    let ended = start_session(&mut client, "ended").await;
    logout_token(&mut client, &ended.session_token).await;
    let rotated = start_session(&mut client, "rotated").await;
    let rotated = refresh_ok(&mut client, &rotated.refresh_token).await;
    let jwks_before = client
        .get_jwks(sessiond::proto::session::v1::GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner()
        .jwks_json;

    // Writes keep coming while the backup streams.
    let mut load_client = source.client().await;
    let load = tokio::spawn(async move {
        for n in 0..200 {
            let started = start_session(&mut load_client, &format!("load-{n}")).await;
            let refreshed = refresh_ok(&mut load_client, &started.refresh_token).await;
            if n % 3 == 0 {
                logout_token(&mut load_client, &refreshed.session_token).await;
            }
        }
    });
    let file = backup_bytes(&mut client).await.expect("backup streams");
    load.await.expect("load ran");

    let target = restored_from(&file, &source).await;
    let mut restored_client = target.client().await;

    for session in &kept {
        let answer = whoami_ok(&mut restored_client, &session.session_token).await;
        assert_eq!(
            session_of(&answer.session).session_id,
            session_of(&session.session).session_id
        );
    }
    assert_code(
        whoami(&mut restored_client, &ended.session_token).await,
        Code::Unauthenticated,
    );
    whoami_ok(&mut restored_client, &rotated.session_token).await;
    refresh_ok(&mut restored_client, &rotated.refresh_token).await;
    let jwks_after = restored_client
        .get_jwks(sessiond::proto::session::v1::GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner()
        .jwks_json;
    assert_eq!(jwks_after, jwks_before, "the signing keys came back");
}

on_backends!(damaged_backups_and_occupied_dirs_are_refused_with_nothing_written: sled, redis; flavor = "multi_thread", worker_threads = 2);
async fn damaged_backups_and_occupied_dirs_are_refused_with_nothing_written() {
    if backend() != Backend::Sled {
        return;
    }
    let source = TestServer::with_config(CONFIG).await;
    let mut client = source.client().await;
    start_session(&mut client, "alice").await;
    let file = backup_bytes(&mut client).await.expect("backup streams");
    let dir = tempfile::tempdir().expect("temp dir");

    let truncated = dir.path().join("truncated.backup");
    std::fs::write(&truncated, &file[..file.len() - 10]).expect("write");
    let mut altered_bytes = file.clone();
    let middle = altered_bytes.len() / 2;
    altered_bytes[middle] ^= 0x40;
    let altered = dir.path().join("altered.backup");
    std::fs::write(&altered, &altered_bytes).expect("write");
    for (bad, says) in [(&truncated, "truncated"), (&altered, "checksum")] {
        let target = dir.path().join(format!("restore-{says}"));
        let (restored, stderr) = restore_with_binary(bad, &target);
        assert!(!restored, "a {says} backup was restored");
        assert!(stderr.contains(says), "{stderr}");
        assert!(
            !target.exists(),
            "a refused restore wrote {}",
            target.display()
        );
    }

    let good = dir.path().join("good.backup");
    std::fs::write(&good, &file).expect("write");
    let occupied = dir.path().join("occupied");
    std::fs::create_dir(&occupied).expect("mkdir");
    std::fs::write(occupied.join("something"), b"x").expect("write");
    let (restored, stderr) = restore_with_binary(&good, &occupied);
    assert!(!restored && stderr.contains("not empty"), "{stderr}");
}

on_backends!(backup_on_redis_is_refused_pointing_at_redis_own_files: sled, redis; flavor = "multi_thread", worker_threads = 2);
async fn backup_on_redis_is_refused_pointing_at_redis_own_files() {
    if backend() == Backend::Sled {
        return;
    }
    let source = TestServer::start().await;
    let mut client = source.client().await;
    let status = backup_bytes(&mut client).await.expect_err("refused");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("RDB"), "{}", status.message());
}

on_backends!(a_bound_session_stays_bound_through_backup_and_restore: sled);
async fn a_bound_session_stays_bound_through_backup_and_restore() {
    let source = TestServer::with_config(CONFIG).await;
    let mut client = source.client().await;
    let device = DeviceSigner::generate_ed25519().expect("random");
    let started = start_with(
        &mut client,
        sessiond::proto::session::v1::StartRequest {
            device_key: device.public_jwk_json(),
            ..start_request("alice")
        },
    )
    .await;
    let file = backup_bytes(&mut client).await.expect("backup streams");
    let target = restored_from(&file, &source).await;
    let mut restored_client = target.client().await;

    let status = assert_code(
        refresh(&mut restored_client, &started.refresh_token).await,
        Code::Unauthenticated,
    );
    assert!(status.message().contains("proof"), "{status:?}");
    let url = "http://restored/session.v1.SessionService/Refresh";
    let proof = device
        .proof(
            "POST",
            url,
            &started.refresh_token,
            None,
            target.clock.now_ms(),
        )
        .expect("signed");
    let mut request = tonic::Request::new(sessiond::proto::session::v1::RefreshRequest {
        refresh_token: started.refresh_token.clone(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("dpop", proof.parse().expect("ASCII"));
    let refreshed = restored_client
        .refresh(request)
        .await
        .expect("the device's proof passes after a restore")
        .into_inner();
    assert_eq!(
        session_of(&refreshed.session).device_key_thumbprint,
        device.thumbprint()
    );
}
