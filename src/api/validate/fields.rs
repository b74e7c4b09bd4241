//! The request rules that need no configured limit: tokens, session ids, seconds,
//! moments, pages, the logout target and the reason of a bulk revoke.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::printable;
use crate::session::binding::DeviceKey;
use crate::session::manager::LogoutTarget;
use crate::session::token::{Token, TokenError, TokenKind};
use crate::session::SessionError;
use crate::store::SessionId;

/// Longest keep-alive or TTL a request may carry before it is checked against the
/// group's policy: a hundred years, so the arithmetic cannot overflow.
const MAX_SECONDS: i64 = 100 * 365 * 24 * 3600;

/// A required moment, as milliseconds since the epoch (before 1970: refused).
pub fn moment(
    field: &'static str,
    value: Option<prost_types::Timestamp>,
) -> Result<u64, SessionError> {
    let value = value.ok_or_else(|| SessionError::invalid(field, "must be set"))?;
    let seconds = u64::try_from(value.seconds)
        .map_err(|_| SessionError::invalid(field, "must not be before 1970"))?;
    let nanos = u64::try_from(value.nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000)
        .ok_or_else(|| SessionError::invalid(field, "has nanos outside 0..1e9"))?;
    Ok(seconds
        .saturating_mul(1000)
        .saturating_add(nanos / 1_000_000))
}

/// The reason text of a RevokeSessions: required, printable, 1..256 bytes.
pub fn revoke_reason(value: String) -> Result<String, SessionError> {
    if value.trim().is_empty() {
        return Err(SessionError::invalid("reason", "must not be empty"));
    }
    printable("reason", value, MAX_REASON_BYTES)
}

/// Longest reason text of a RevokeSessions, in bytes.
const MAX_REASON_BYTES: usize = 256;

/// An optional positive number of seconds.
pub fn seconds(field: &'static str, value: Option<i64>) -> Result<Option<Duration>, SessionError> {
    match value {
        None => Ok(None),
        Some(seconds) if (1..=MAX_SECONDS).contains(&seconds) => {
            Ok(Some(Duration::from_secs(seconds.unsigned_abs())))
        }
        Some(_) => Err(SessionError::invalid(
            field,
            "must be a positive number of seconds",
        )),
    }
}

/// A session id in UUID text form.
pub fn session_id(field: &'static str, value: &str) -> Result<SessionId, SessionError> {
    if value.is_empty() {
        return Err(SessionError::invalid(field, "must not be empty"));
    }
    SessionId::try_parse(value)
        .map_err(|_| SessionError::invalid(field, "is not a session id (a UUID)"))
}

/// Default and greatest page size of a list call.
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 500;

/// A page size: 0 means the default, above the maximum means the maximum.
pub fn page_size(value: i32) -> Result<usize, SessionError> {
    match usize::try_from(value) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) => Ok(size.min(MAX_PAGE_SIZE)),
        Err(_) => Err(SessionError::invalid("page_size", "must not be negative")),
    }
}

/// A page token: where the previous page ended (empty: the first page).
pub fn page_token(value: &str) -> Result<Option<SessionId>, SessionError> {
    if value.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(value)
        .ok()
        .and_then(|bytes| SessionId::from_slice(&bytes).ok())
        .map(Some)
        .ok_or_else(|| SessionError::invalid("page_token", "is not a next_page_token of this call"))
}

/// The page token that continues after `last`.
pub fn encode_page_token(last: SessionId) -> String {
    URL_SAFE_NO_PAD.encode(last.as_bytes())
}

/// Longest authenticator assurance level, in bytes.
pub(super) const MAX_AAL_BYTES: usize = 32;

/// An authenticator assurance level such as "aal2" (empty: none).
pub fn aal(value: String) -> Result<String, SessionError> {
    if value.len() > MAX_AAL_BYTES || value.chars().any(char::is_control) {
        return Err(SessionError::invalid(
            "aal",
            format!("must be at most {MAX_AAL_BYTES} printable bytes"),
        ));
    }
    Ok(value)
}

/// A device public key (a JWK as JSON text); empty: none.
pub fn device_key(value: &str) -> Result<Option<DeviceKey>, SessionError> {
    if value.is_empty() {
        return Ok(None);
    }
    DeviceKey::from_json(value)
        .map(Some)
        .map_err(|problem| SessionError::invalid("device_key", problem.to_string()))
}

/// The session a call names: exactly one of its token and its id.
pub fn session_target(session_token: &str, session_id: &str) -> Result<LogoutTarget, SessionError> {
    match (session_token.is_empty(), session_id.is_empty()) {
        (false, true) => Ok(LogoutTarget::Token(token(
            "session_token",
            TokenKind::Session,
            session_token,
        )?)),
        (true, false) => Ok(LogoutTarget::Id(self::session_id(
            "session_id",
            session_id,
        )?)),
        _ => Err(SessionError::invalid(
            "session_token",
            "or session_id: give exactly one of the two",
        )),
    }
}

/// A Logout by user names no session: neither a token nor an id.
pub fn logout_by_user(session_token: &str, session_id: &str) -> Result<(), SessionError> {
    if session_token.is_empty() && session_id.is_empty() {
        Ok(())
    } else {
        Err(SessionError::invalid(
            "user_id",
            "(or external_user_id) goes without session_token and session_id",
        ))
    }
}

/// The session a Logout of all a user's sessions spares (empty: none); only with
/// `all_for_user`.
pub fn except_session_id(
    value: &str,
    all_for_user: bool,
) -> Result<Option<SessionId>, SessionError> {
    match value {
        "" => Ok(None),
        _ if !all_for_user => Err(SessionError::invalid(
            "except_session_id",
            "goes only with all_for_user = true",
        )),
        id => session_id("except_session_id", id).map(Some),
    }
}

/// A token of the given kind, taken apart (not yet checked against the store).
pub fn token(field: &'static str, kind: TokenKind, value: &str) -> Result<Token, SessionError> {
    Token::parse(kind, value).map_err(|error| match error {
        TokenError::Empty => SessionError::invalid(field, "must not be empty"),
        TokenError::Malformed => SessionError::invalid(
            field,
            match kind {
                TokenKind::Session => "is not a session token (st_…)",
                TokenKind::Refresh => "is not a refresh token (rt_…)",
            },
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::invalid_field;
    use super::*;

    fn token_text(kind: TokenKind) -> String {
        Token {
            session_id: uuid::Uuid::now_v7(),
            secret: crate::session::token::Secret::generate().expect("randomness"),
        }
        .encode(kind)
    }

    #[test]
    fn seconds_are_positive_and_at_most_a_hundred_years() {
        let cases = [
            (None, Ok(None)),
            (Some(1), Ok(Some(Duration::from_secs(1)))),
            (
                Some(MAX_SECONDS),
                Ok(Some(Duration::from_secs(MAX_SECONDS as u64))),
            ),
            (Some(0), Err("ttl_seconds")),
            (Some(-1), Err("ttl_seconds")),
            (Some(MAX_SECONDS + 1), Err("ttl_seconds")),
            (Some(i64::MIN), Err("ttl_seconds")),
        ];
        for (value, expected) in cases {
            let result = seconds("ttl_seconds", value);
            match expected {
                Ok(duration) => assert_eq!(result.ok(), Some(duration), "{value:?}"),
                Err(field) => assert_eq!(invalid_field(result), field, "{value:?}"),
            }
        }
    }

    #[test]
    fn session_ids_are_uuids() {
        let id = uuid::Uuid::now_v7();
        assert_eq!(session_id("session_id", &id.to_string()).ok(), Some(id));
        for bad in ["", "not-a-uuid", "0190e8c2-0000-7000-8000", "\u{0}"] {
            assert_eq!(
                invalid_field(session_id("session_id", bad)),
                "session_id",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn moments_are_set_since_1970_with_nanos_below_a_second() {
        let at = |seconds, nanos| Some(prost_types::Timestamp { seconds, nanos });
        assert_eq!(moment("not_before", at(1, 500_000_000)).ok(), Some(1500));
        assert_eq!(moment("not_before", at(0, 0)).ok(), Some(0));
        for bad in [None, at(-1, 0), at(1, -1), at(1, 1_000_000_000)] {
            assert_eq!(
                invalid_field(moment("not_before", bad)),
                "not_before",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn page_sizes_default_and_cap() {
        let cases = [
            (0, Ok(DEFAULT_PAGE_SIZE)),
            (1, Ok(1)),
            (500, Ok(MAX_PAGE_SIZE)),
            (501, Ok(MAX_PAGE_SIZE)),
            (i32::MAX, Ok(MAX_PAGE_SIZE)),
            (-1, Err("page_size")),
        ];
        for (value, expected) in cases {
            match expected {
                Ok(size) => assert_eq!(page_size(value).ok(), Some(size), "{value}"),
                Err(field) => assert_eq!(invalid_field(page_size(value)), field),
            }
        }
    }

    #[test]
    fn page_tokens_round_trip_and_nothing_else_parses() {
        let last = uuid::Uuid::now_v7();
        assert_eq!(page_token("").ok(), Some(None));
        assert_eq!(page_token(&encode_page_token(last)).ok(), Some(Some(last)));
        for bad in ["!!", "AAAA", &URL_SAFE_NO_PAD.encode([0u8; 17])] {
            assert_eq!(invalid_field(page_token(bad)), "page_token", "{bad:?}");
        }
    }

    #[test]
    fn aals_are_short_and_printable() {
        assert_eq!(aal(String::new()).ok().as_deref(), Some(""));
        assert_eq!(
            aal("a".repeat(MAX_AAL_BYTES)).ok(),
            Some("a".repeat(MAX_AAL_BYTES))
        );
        assert_eq!(invalid_field(aal("a".repeat(MAX_AAL_BYTES + 1))), "aal");
        assert_eq!(invalid_field(aal("aal\n2".into())), "aal");
    }

    #[test]
    fn a_bulk_revoke_reason_is_required_and_printable() {
        assert_eq!(
            revoke_reason("breach".into()).ok().as_deref(),
            Some("breach")
        );
        let long = "r".repeat(MAX_REASON_BYTES + 1);
        for bad in ["", "  ", "a\u{1b}b", &long] {
            assert_eq!(
                invalid_field(revoke_reason(bad.into())),
                "reason",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn tokens_of_the_wrong_kind_or_shape_name_their_field() {
        let session = token_text(TokenKind::Session);
        let refresh = token_text(TokenKind::Refresh);
        assert!(token("session_token", TokenKind::Session, &session).is_ok());
        assert!(token("refresh_token", TokenKind::Refresh, &refresh).is_ok());
        let cases = [
            ("", TokenKind::Session, "must not be empty"),
            (
                "xx_abc",
                TokenKind::Session,
                "is not a session token (st_…)",
            ),
            (
                &*refresh,
                TokenKind::Session,
                "is not a session token (st_…)",
            ),
            (
                &*session,
                TokenKind::Refresh,
                "is not a refresh token (rt_…)",
            ),
            (
                &session[..session.len() - 1],
                TokenKind::Session,
                "is not a session",
            ),
            (
                &*format!("{session}A"),
                TokenKind::Session,
                "is not a session",
            ),
            (
                &*session.replace('_', "_!"),
                TokenKind::Session,
                "is not a session",
            ),
        ];
        for (text, kind, reason) in cases {
            let field = match kind {
                TokenKind::Session => "session_token",
                TokenKind::Refresh => "refresh_token",
            };
            assert_eq!(invalid_field(token(field, kind, text)), field, "{text:?}");
            let message = token(field, kind, text).map(|_| ()).expect_err("malformed");
            assert!(message.to_string().contains(reason), "{text:?}: {message}");
        }
    }

    #[test]
    fn a_target_is_exactly_one_of_token_and_id() {
        let session = token_text(TokenKind::Session);
        let id = uuid::Uuid::now_v7().to_string();
        assert!(matches!(
            session_target(&session, ""),
            Ok(LogoutTarget::Token(_))
        ));
        assert!(matches!(session_target("", &id), Ok(LogoutTarget::Id(_))));
        let cases = [
            (&*session, &*id, "session_token"),
            ("", "", "session_token"),
            ("", "nope", "session_id"),
            ("st_nope", "", "session_token"),
        ];
        for (token, id, field) in cases {
            assert_eq!(
                invalid_field(session_target(token, id)),
                field,
                "{token:?} {id:?}"
            );
        }
    }

    #[test]
    fn logout_by_user_and_its_exception_go_with_the_right_fields() {
        let id = uuid::Uuid::now_v7();
        assert!(logout_by_user("", "").is_ok());
        assert_eq!(invalid_field(logout_by_user("st_x", "")), "user_id");
        assert_eq!(invalid_field(logout_by_user("", "id")), "user_id");
        assert_eq!(except_session_id("", false).ok(), Some(None));
        assert_eq!(
            except_session_id(&id.to_string(), true).ok(),
            Some(Some(id))
        );
        let cases = [(&*id.to_string(), false), ("nope", true)];
        for (value, all_for_user) in cases {
            let result = except_session_id(value, all_for_user);
            assert_eq!(invalid_field(result), "except_session_id", "{value:?}");
        }
    }
}
