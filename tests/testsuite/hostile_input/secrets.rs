//! A wrong secret answers exactly like an unknown session, for any caller and group:
//! nothing tells a guesser that a session exists.

use super::*;

/// Everything a caller can observe of a failed answer but its request id.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    code: Code,
    message: String,
    details: Vec<u8>,
    metadata_keys: BTreeSet<String>,
}

impl Answer {
    fn of<T: std::fmt::Debug>(result: Result<T, Status>) -> Answer {
        let status = result.expect_err("a bad token fails");
        Answer {
            code: status.code(),
            message: status.message().to_owned(),
            details: status.details().to_vec(),
            metadata_keys: status
                .metadata()
                .clone()
                .into_headers()
                .keys()
                .map(|key| key.as_str().to_owned())
                .filter(|key| key != "x-request-id" && key != "date")
                .collect(),
        }
    }
}

/// The answers of Whoami, Refresh, Logout and Logout of all for one token's session
/// id and secret, sent with `api_key` if given.
async fn answers(
    client: &mut Client,
    api_key: Option<&str>,
    id: &[u8; 16],
    secret: &[u8; 32],
) -> Vec<Answer> {
    let session_token = token_for("st_", id, secret);
    let whoami_request = WhoamiRequest {
        session_token: session_token.clone(),
        client: None,
    };
    let refresh_request = RefreshRequest {
        refresh_token: token_for("rt_", id, secret),
        ..Default::default()
    };
    let logout_request = |all_for_user| LogoutRequest {
        session_token: session_token.clone(),
        all_for_user,
        ..Default::default()
    };
    vec![
        Answer::of(client.whoami(with_key(whoami_request, api_key)).await),
        Answer::of(client.refresh(with_key(refresh_request, api_key)).await),
        Answer::of(
            client
                .logout(with_key(logout_request(false), api_key))
                .await,
        ),
        Answer::of(client.logout(with_key(logout_request(true), api_key)).await),
    ]
}

/// Checks that, to a caller with `api_key`, a token of the live session of `h` with a
/// random secret gets exactly the answers of a token of an unknown session.
fn wrong_secret_answers_like_an_unknown_session(h: &Harness, api_key: Option<&str>) {
    let live_id: [u8; 16] = *uuid::Uuid::parse_str(&h.live_id())
        .expect("session id is a UUID")
        .as_bytes();
    h.check(
        (any::<[u8; 16]>(), any::<[u8; 32]>()),
        |(unknown_id, secret)| {
            let mut client = h.client();
            let (wrong_secret, unknown) = h.block_on(async {
                (
                    answers(&mut client, api_key, &live_id, &secret).await,
                    answers(&mut client, api_key, &unknown_id, &secret).await,
                )
            });
            prop_assert_eq!(&wrong_secret, &unknown);
            prop_assert!(wrong_secret.iter().all(|a| a.code == Code::Unauthenticated));
            Ok(())
        },
    );
}

on_backends!(a_wrong_secret_answers_exactly_like_an_unknown_session: sled, cluster; sync);
fn a_wrong_secret_answers_exactly_like_an_unknown_session() {
    wrong_secret_answers_like_an_unknown_session(&Harness::new(), None);
}

/// An admin caller and a caller limited to the group `partner`.
const ADMIN_KEY: &str = "hostile-admin-key";
const PARTNER_KEY: &str = "hostile-partner-key";

fn callers_toml() -> String {
    format!(
        r#"
[groups.partner]
lifespan = "1h"

[[callers]]
name = "admin"
api_key_sha256 = "{}"
calls = ["*"]

[[callers]]
name = "partner"
api_key_sha256 = "{}"
calls = ["Start", "Refresh", "Whoami", "Logout", "LogoutAll"]
groups = ["partner"]
"#,
        sha256_hex(ADMIN_KEY),
        sha256_hex(PARTNER_KEY)
    )
}

on_backends!(a_wrong_secret_for_another_groups_session_answers_like_an_unknown_session: sled, cluster; sync);
/// A caller limited to some groups learns nothing about sessions of other groups from
/// a token it cannot prove: no sign that the session exists, nor its group.
fn a_wrong_secret_for_another_groups_session_answers_like_an_unknown_session() {
    // The live session is in the default group; the partner may only use `partner`.
    let h = Harness::with_config(&callers_toml(), Some(ADMIN_KEY));
    wrong_secret_answers_like_an_unknown_session(&h, Some(PARTNER_KEY));
}
