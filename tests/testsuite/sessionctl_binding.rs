//! `sessionctl --device-key`: `start` creates the key file and binds the session to it,
//! `refresh` and `whoami` sign proofs with it (and take a server nonce in one retry).

use crate::common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::TestServer;
use sessiond::session::binding::DeviceSigner;

use crate::sessionctl_admin::ctl_json;

/// `nonce` wants server nonces and a proof on every Whoami.
const GROUPS: &str = r#"
[groups.nonce]
require_nonce = true
proof_on_use = "every_call"
"#;

fn text(value: &serde_json::Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {value}"))
        .to_owned()
}

on_backends!(sessionctl_binds_and_proves_with_a_device_key_file: sled);
async fn sessionctl_binds_and_proves_with_a_device_key_file() {
    let test = TestServer::with_config(GROUPS).await;
    // sessionctl signs with the wall clock; the server's test clock must agree.
    let wall_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .expect("after 1970");
    test.clock.set_ms(wall_ms);
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("device.pem");
    let key_arg = key.to_str().expect("utf-8 path").to_owned();
    let url = test.url();

    let started = ctl_json(
        &url,
        &[
            "start",
            "alice",
            "--group",
            "nonce",
            "--device-key",
            &key_arg,
        ],
    )
    .await;
    let pem = std::fs::read_to_string(&key).expect("start wrote the key file");
    let signer = DeviceSigner::from_pkcs8_pem(&pem).expect("a PKCS#8 key");
    assert_eq!(
        text(&started, "/session/device_key_thumbprint"),
        signer.thumbprint()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key is the owner's only");
    }

    let refresh_token = text(&started, "/refresh_token");
    let refreshed = ctl_json(&url, &["refresh", &refresh_token, "--device-key", &key_arg]).await;
    let session_token = text(&refreshed, "/session_token");
    let who = ctl_json(&url, &["whoami", &session_token, "--device-key", &key_arg]).await;
    assert_eq!(text(&who, "/session/user_id"), "alice");
}
