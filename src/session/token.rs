//! Opaque bearer tokens: `<prefix>_<base64url(session_id ‖ 32 random bytes)>`. The
//! store keeps only SHA-256 of the random part; lookups go by the embedded id, so no
//! token index exists to leak.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::SessionId;

const SECRET_LEN: usize = 32;
const ID_LEN: usize = 16;
/// Base64url of 48 bytes, unpadded.
const ENCODED_LEN: usize = 64;

/// Which kind of token: each has its own prefix, so one is never taken for the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    Refresh,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Session => "st_",
            TokenKind::Refresh => "rt_",
        }
    }
}

/// Why a string is not a token of the expected kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("is empty")]
    Empty,
    #[error("is malformed")]
    Malformed,
}

/// The random part of a token. Never printed: `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Secret([u8; SECRET_LEN]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// 256 fresh bits from the operating system's CSPRNG.
    pub fn generate() -> Result<Secret, getrandom::Error> {
        let mut bytes = [0u8; SECRET_LEN];
        getrandom::fill(&mut bytes)?;
        Ok(Secret(bytes))
    }

    /// SHA-256 of the secret: what the store keeps.
    pub fn hash(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.0).into())
    }
}

/// Bytes of an AEAD nonce.
const NONCE_LEN: usize = 12;
/// What the sealing key is for, bound into its derivation.
const SEAL_INFO: &[u8] = b"sessiond refresh-grace successor v1";

impl Secret {
    /// Seals `pair` (a session and a refresh secret) under a key derived from this
    /// secret with HKDF-SHA256, with ChaCha20-Poly1305 bound to `session_id`: only a
    /// holder of this secret can open it. Returns nonce ‖ ciphertext.
    pub fn seal_pair(
        &self,
        session_id: SessionId,
        pair: (&Secret, &Secret),
        nonce: [u8; NONCE_LEN],
    ) -> Vec<u8> {
        let mut plain = [0u8; 2 * SECRET_LEN];
        plain[..SECRET_LEN].copy_from_slice(&pair.0 .0);
        plain[SECRET_LEN..].copy_from_slice(&pair.1 .0);
        let sealed = self.cipher(session_id).encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: session_id.as_bytes(),
            },
        );
        // Encryption with a valid key and nonce cannot fail; an empty seal only means
        // no grace replay, never a wrong answer.
        sealed.map_or_else(|_| Vec::new(), |cipher| [&nonce[..], &cipher].concat())
    }

    /// Opens what `seal_pair` sealed under this secret; None if it is not ours.
    pub fn unseal_pair(&self, session_id: SessionId, sealed: &[u8]) -> Option<(Secret, Secret)> {
        let (nonce, cipher) = sealed.split_first_chunk::<NONCE_LEN>()?;
        let plain = self
            .cipher(session_id)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: cipher,
                    aad: session_id.as_bytes(),
                },
            )
            .ok()?;
        let (session, refresh) = plain.split_at_checked(SECRET_LEN)?;
        Some((
            Secret(session.try_into().ok()?),
            Secret(refresh.try_into().ok()?),
        ))
    }

    fn cipher(&self, session_id: SessionId) -> ChaCha20Poly1305 {
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
        let _ =
            Hkdf::<Sha256>::new(Some(session_id.as_bytes()), &self.0).expand(SEAL_INFO, &mut key);
        ChaCha20Poly1305::new(Key::from_slice(&key))
    }
}

/// A fresh random nonce for `Secret::seal_pair`.
pub fn new_nonce() -> Result<[u8; NONCE_LEN], getrandom::Error> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)?;
    Ok(nonce)
}

/// SHA-256 of a secret. Never printed either.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

impl SecretHash {
    /// Whether this is the hash `stored`, compared in constant time.
    pub fn matches(&self, stored: &[u8]) -> bool {
        bool::from(self.0.as_slice().ct_eq(stored))
    }

    /// The bytes the store keeps.
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    /// The short form kept for retired secrets: 128 bits, still beyond guessing.
    pub fn digest(&self) -> &[u8] {
        // A constant range inside a 32-byte array: cannot panic.
        &self.0[..RETIRED_DIGEST_LEN]
    }

    /// Whether this hash's digest is one of the packed `digests`, in constant time
    /// per entry.
    pub fn among(&self, digests: &[u8]) -> bool {
        digests
            .chunks_exact(RETIRED_DIGEST_LEN)
            .fold(subtle::Choice::from(0), |found, digest| {
                found | self.digest().ct_eq(digest)
            })
            .into()
    }
}

/// Bytes of a retired secret's digest.
pub const RETIRED_DIGEST_LEN: usize = 16;

/// A token taken apart: which session it names and its secret.
#[derive(Debug, Clone)]
pub struct Token {
    pub session_id: SessionId,
    pub secret: Secret,
}

impl Token {
    /// The text form handed to callers.
    pub fn encode(&self, kind: TokenKind) -> String {
        let mut raw = [0u8; ID_LEN + SECRET_LEN];
        raw[..ID_LEN].copy_from_slice(self.session_id.as_bytes());
        raw[ID_LEN..].copy_from_slice(&self.secret.0);
        let mut text = String::with_capacity(kind.prefix().len() + ENCODED_LEN);
        text.push_str(kind.prefix());
        URL_SAFE_NO_PAD.encode_string(raw, &mut text);
        text
    }

    /// Parses the text form; says nothing about whether the token is valid.
    pub fn parse(kind: TokenKind, text: &str) -> Result<Token, TokenError> {
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        let body = text
            .strip_prefix(kind.prefix())
            .filter(|body| body.len() == ENCODED_LEN)
            .ok_or(TokenError::Malformed)?;
        let mut raw = [0u8; ID_LEN + SECRET_LEN];
        let len = URL_SAFE_NO_PAD
            .decode_slice(body, &mut raw)
            .map_err(|_| TokenError::Malformed)?;
        if len != raw.len() {
            return Err(TokenError::Malformed);
        }
        let (id, secret) = raw.split_at(ID_LEN);
        Ok(Token {
            session_id: SessionId::from_slice(id).map_err(|_| TokenError::Malformed)?,
            secret: Secret(secret.try_into().map_err(|_| TokenError::Malformed)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        Token {
            session_id: SessionId::now_v7(),
            secret: Secret::generate().expect("os randomness"),
        }
    }

    #[test]
    fn token_round_trips_through_its_text_form() {
        let token = token();
        let text = token.encode(TokenKind::Session);
        assert!(text.starts_with("st_"));
        let parsed = Token::parse(TokenKind::Session, &text).expect("parses");
        assert_eq!(parsed.session_id, token.session_id);
        assert!(parsed.secret.hash().matches(&token.secret.hash().to_vec()));
    }

    #[test]
    fn a_refresh_token_is_not_a_session_token() {
        let text = token().encode(TokenKind::Refresh);
        assert_eq!(
            Token::parse(TokenKind::Session, &text).unwrap_err(),
            TokenError::Malformed
        );
    }

    #[test]
    fn malformed_text_is_rejected() {
        for text in ["st_", "st_abc", "xx_", "st_!!!!", &"st_".repeat(30)] {
            assert!(Token::parse(TokenKind::Session, text).is_err(), "{text}");
        }
        assert_eq!(
            Token::parse(TokenKind::Session, "").unwrap_err(),
            TokenError::Empty
        );
    }

    #[test]
    fn only_the_old_secret_unseals_the_successor() {
        let (old, other, id) = (token(), token(), SessionId::now_v7());
        let (a, b) = (token().secret, token().secret);
        let sealed = old
            .secret
            .seal_pair(id, (&a, &b), new_nonce().expect("nonce"));
        let (sa, sb) = old.secret.unseal_pair(id, &sealed).expect("opens");
        assert!(sa.hash() == a.hash() && sb.hash() == b.hash());
        assert!(other.secret.unseal_pair(id, &sealed).is_none());
        assert!(old
            .secret
            .unseal_pair(SessionId::now_v7(), &sealed)
            .is_none());
        assert!(old.secret.unseal_pair(id, &sealed[..5]).is_none());
    }

    #[test]
    fn a_digest_is_found_among_packed_digests() {
        let (a, b, c) = (token(), token(), token());
        let packed = [
            a.secret.hash().digest().to_vec(),
            b.secret.hash().digest().to_vec(),
        ]
        .concat();
        assert!(b.secret.hash().among(&packed));
        assert!(!c.secret.hash().among(&packed));
    }

    #[test]
    fn a_different_secret_does_not_match() {
        let (a, b) = (token(), token());
        assert!(!a.secret.hash().matches(&b.secret.hash().to_vec()));
        assert!(!format!("{:?}", a.secret).contains(&a.encode(TokenKind::Session)[3..10]));
    }
}
