//! Encryption at rest for personal data the backend must keep but never show (ID numbers, credit
//! codes, real names): AES-256-GCM through `ring::aead`.
//!
//! - Each value gets a fresh random 96-bit nonce from the system RNG.
//! - The associated data names the member and the field, so a ciphertext copied onto another
//!   member or into another field no longer opens.
//! - Keys carry ids (`RENJI_PII_KEYS[_ARN]` = `kid:base64(32 bytes),…`); the active one (the
//!   first entry, or `RENJI_PII_ACTIVE_KEY` when set) seals, every listed one opens, so keys
//!   rotate by adding a new key, making it active, and dropping the old one once nothing sealed
//!   with it is left.
//!
//! Stored as `{"kid", "nonce", "ct"}` (standard base64; `ct` includes the GCM tag).
//!
//! For lookups by value without storing it (one identity claimed by few accounts), [`KeyRing::tag`]
//! gives an HMAC-SHA256 of the value under a key derived from one PII key (never the AES key
//! itself): the same value and key always give the same tag, and the tag reveals nothing of
//! the value to whoever lacks the key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::UserId;

/// One sealed value as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub kid: String,
    pub nonce: String,
    pub ct: String,
}

/// Why a value could not be sealed or opened. Carries no key material and no plaintext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PiiError {
    /// The value names a key id this process does not have.
    UnknownKey(String),
    /// The stored value is not well-formed base64 / nonce.
    Malformed,
    /// Authentication failed: tampered, or sealed for another member, field or key.
    Rejected,
    /// The system RNG or the cipher failed.
    Crypto,
}

impl std::fmt::Display for PiiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PiiError::UnknownKey(kid) => write!(f, "no PII key with id {kid}"),
            PiiError::Malformed => f.write_str("sealed value is malformed"),
            PiiError::Rejected => f.write_str("sealed value does not authenticate"),
            PiiError::Crypto => f.write_str("encryption failed"),
        }
    }
}

impl From<PiiError> for Error {
    fn from(e: PiiError) -> Self {
        Error::Internal(e.to_string())
    }
}

/// The PII keys of this process. `Debug` shows the key ids only.
pub struct KeyRing {
    keys: Vec<(String, LessSafeKey)>,
    /// Per kid, the HMAC key derived from its key for [`KeyRing::tag`].
    tag_keys: Vec<hmac::Key>,
    active: usize,
    rng: SystemRandom,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(kid, _)| kid.as_str()).collect();
        f.debug_struct("KeyRing")
            .field("kids", &kids)
            .field("active", &self.keys[self.active].0)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Parses `kid:base64,kid:base64` and picks the active key: `active`, or else the first
    /// entry. Errors name kids, never keys.
    pub fn new(list: &str, active: Option<&str>) -> Result<Self, String> {
        let mut keys: Vec<(String, LessSafeKey)> = Vec::new();
        let mut tag_keys = Vec::new();
        for (kid, bytes) in crate::secrets::key_entries(list, 32, 32)? {
            let derived = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, &bytes),
                b"renji-pii/v1/tag-key",
            );
            tag_keys.push(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()));
            let key = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| format!("key {kid} is unusable"))?;
            keys.push((kid, LessSafeKey::new(key)));
        }
        let active = match active {
            None => 0,
            Some(active) => keys
                .iter()
                .position(|(kid, _)| kid == active)
                .ok_or_else(|| format!("the active key {active} is not in the list"))?,
        };
        Ok(KeyRing {
            keys,
            tag_keys,
            active,
            rng: SystemRandom::new(),
        })
    }

    /// The kid that seals.
    pub fn active_kid(&self) -> &str {
        &self.keys[self.active].0
    }

    /// Whether the ring holds a key with this id.
    pub fn has(&self, kid: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == kid)
    }

    /// A keyed hash (lowercase hex) of `value` in `context`, under the key derived from `kid`.
    pub fn tag(&self, kid: &str, context: &str, value: &str) -> Result<String, PiiError> {
        let index = self
            .keys
            .iter()
            .position(|(k, _)| k == kid)
            .ok_or_else(|| PiiError::UnknownKey(kid.to_owned()))?;
        let mut ctx = hmac::Context::with_key(&self.tag_keys[index]);
        // Length-prefixed, so no (context, value) pair reads as another.
        ctx.update(&(context.len() as u64).to_be_bytes());
        ctx.update(context.as_bytes());
        ctx.update(value.as_bytes());
        Ok(ctx
            .sign()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    /// Binds a ciphertext to its member and field. Member ids never contain `/`.
    fn aad(member: &UserId, field: &str) -> Vec<u8> {
        format!("renji-pii/v1/{member}/{field}").into_bytes()
    }

    /// Encrypts `plaintext` for `field` of `member` with the active key.
    pub fn seal(&self, member: &UserId, field: &str, plaintext: &str) -> Result<Sealed, PiiError> {
        let (kid, key) = &self.keys[self.active];
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| PiiError::Crypto)?;
        let mut data = plaintext.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(Self::aad(member, field)),
            &mut data,
        )
        .map_err(|_| PiiError::Crypto)?;
        Ok(Sealed {
            kid: kid.clone(),
            nonce: STANDARD.encode(nonce),
            ct: STANDARD.encode(data),
        })
    }

    /// Decrypts a value sealed for `field` of `member` with any key of the ring.
    pub fn open(&self, member: &UserId, field: &str, sealed: &Sealed) -> Result<String, PiiError> {
        let (_, key) = self
            .keys
            .iter()
            .find(|(kid, _)| *kid == sealed.kid)
            .ok_or_else(|| PiiError::UnknownKey(sealed.kid.clone()))?;
        let nonce: [u8; NONCE_LEN] = STANDARD
            .decode(&sealed.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or(PiiError::Malformed)?;
        let mut data = STANDARD
            .decode(&sealed.ct)
            .map_err(|_| PiiError::Malformed)?;
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(member, field)),
                &mut data,
            )
            .map_err(|_| PiiError::Rejected)?;
        String::from_utf8(plain.to_vec()).map_err(|_| PiiError::Rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    fn ring(keys: &str, active: &str) -> Result<KeyRing, String> {
        KeyRing::new(keys, Some(active))
    }

    #[test]
    fn values_round_trip_with_fresh_nonces() {
        let ring = ring(&format!("k1:{}", key(1)), "k1").unwrap();
        let me = UserId::generate();
        let a = ring.seal(&me, "number", "11010519491231002X").unwrap();
        let b = ring.seal(&me, "number", "11010519491231002X").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ct, b.ct);
        assert!(!a.ct.contains("1101"));
        assert_eq!(ring.open(&me, "number", &a).unwrap(), "11010519491231002X");
        assert_eq!(ring.open(&me, "number", &b).unwrap(), "11010519491231002X");
        assert_eq!(
            ring.open(&me, "name", &ring.seal(&me, "name", "张三").unwrap()),
            Ok("张三".into())
        );
    }

    #[test]
    fn tampering_and_moving_are_detected() {
        let ring = ring(&format!("k1:{}", key(1)), "k1").unwrap();
        let me = UserId::generate();
        let sealed = ring.seal(&me, "number", "11010519491231002X").unwrap();
        let mut ct = STANDARD.decode(&sealed.ct).unwrap();
        ct[0] ^= 1;
        let tampered = Sealed {
            ct: STANDARD.encode(&ct),
            ..sealed.clone()
        };
        assert_eq!(ring.open(&me, "number", &tampered), Err(PiiError::Rejected));
        // Another member's record, or another field: the associated data differs.
        assert_eq!(
            ring.open(&UserId::generate(), "number", &sealed),
            Err(PiiError::Rejected)
        );
        assert_eq!(ring.open(&me, "name", &sealed), Err(PiiError::Rejected));
        let other_nonce = Sealed {
            nonce: ring.seal(&me, "number", "x").unwrap().nonce,
            ..sealed.clone()
        };
        assert_eq!(
            ring.open(&me, "number", &other_nonce),
            Err(PiiError::Rejected)
        );
        let junk = Sealed {
            nonce: "not base64!".into(),
            ..sealed
        };
        assert_eq!(ring.open(&me, "number", &junk), Err(PiiError::Malformed));
    }

    #[test]
    fn keys_rotate_and_unknown_kids_fail() {
        let me = UserId::generate();
        let old = ring(&format!("k1:{}", key(1)), "k1").unwrap();
        let sealed_old = old.seal(&me, "number", "91350100M000100Y43").unwrap();
        assert_eq!(sealed_old.kid, "k1");
        let rotated = ring(&format!("k1:{},k2:{}", key(1), key(2)), "k2").unwrap();
        assert_eq!(
            rotated.open(&me, "number", &sealed_old).unwrap(),
            "91350100M000100Y43"
        );
        let sealed_new = rotated.seal(&me, "number", "91350100M000100Y43").unwrap();
        assert_eq!(sealed_new.kid, "k2");
        assert_eq!(
            old.open(&me, "number", &sealed_new),
            Err(PiiError::UnknownKey("k2".into()))
        );
        // A kid reused for different key bytes does not open the old values.
        let swapped = ring(&format!("k1:{}", key(9)), "k1").unwrap();
        assert_eq!(
            swapped.open(&me, "number", &sealed_old),
            Err(PiiError::Rejected)
        );
    }

    #[test]
    fn tags_are_stable_keyed_and_opaque() {
        let ring = ring(&format!("k1:{},k2:{}", key(1), key(2)), "k2").unwrap();
        assert_eq!(ring.active_kid(), "k2");
        assert!(ring.has("k1") && !ring.has("k3"));
        let t = ring.tag("k1", "person", "11010519491231002X").unwrap();
        assert_eq!(t.len(), 64);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(t, ring.tag("k1", "person", "11010519491231002X").unwrap());
        for other in [
            ring.tag("k2", "person", "11010519491231002X").unwrap(),
            ring.tag("k1", "enterprise", "11010519491231002X").unwrap(),
            ring.tag("k1", "person", "11010519491231003X").unwrap(),
            ring.tag("k1", "person1", "1010519491231002X").unwrap(),
        ] {
            assert_ne!(t, other);
        }
        assert!(!t.contains("1101"));
        // Same key bytes under another kid: the same tag (the tag depends on the key, not its name).
        let renamed = ring_of(&format!("other:{}", key(1)), "other");
        assert_eq!(
            t,
            renamed
                .tag("other", "person", "11010519491231002X")
                .unwrap()
        );
        assert_eq!(
            ring.tag("k3", "person", "x"),
            Err(PiiError::UnknownKey("k3".into()))
        );
    }

    fn ring_of(keys: &str, active: &str) -> KeyRing {
        ring(keys, active).unwrap()
    }

    #[test]
    fn bad_configuration_is_refused_without_showing_keys() {
        let k = key(7);
        for (keys, active) in [
            ("", "k1"),
            ("k1", "k1"),
            (&format!("k1:{}", STANDARD.encode([1u8; 16])) as &str, "k1"),
            (&format!("k1:{k}"), "k2"),
            (&format!("k1:{k},k1:{k}"), "k1"),
            (&format!("bad kid:{k}"), "bad kid"),
        ] {
            let e = ring(keys, active).unwrap_err();
            assert!(!e.contains(&k), "{e}");
        }
        let ok = ring(&format!("k1:{k}, k2:{}", key(8)), "k1").unwrap();
        let shown = format!("{ok:?}");
        assert!(shown.contains("k2") && !shown.contains(&k), "{shown}");
        // Without a named active key, the first entry seals.
        let first = KeyRing::new(&format!("k2:{}, k1:{k}", key(8)), None).unwrap();
        assert_eq!(
            first.seal(&UserId::generate(), "name", "x").unwrap().kid,
            "k2"
        );
    }
}
