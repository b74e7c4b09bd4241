//! The request rules that need no configured limit: tokens, session ids, seconds,
//! moments, pages, the logout target and the reason of a bulk revoke.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::printable;
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

