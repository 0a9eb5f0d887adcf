//! WeChat's message push (消息推送) in safe mode with JSON: the handshake signature, the
//! message signature, and the AES-256-CBC envelope. `wechat-platform.md` §4; the official
//! vectors are in the tests.
//!
//! Strict where the SDKs are lenient: the key must be 43 characters of base64, the padding byte
//! 1..=32 and consistent, the length field within the plaintext, the trailing appid ours.

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::config::Redacted;

type Decryptor = cbc::Decryptor<aes::Aes256>;
type Encryptor = cbc::Encryptor<aes::Aes256>;

/// WeChat pads to a multiple of 32 bytes, not of the AES block.
const PAD_TO: usize = 32;

/// The push configuration's secrets, parsed: the Token and the AES key.
#[derive(Clone)]
pub struct PushKeys {
    token: Redacted,
    aes_key: [u8; 32],
}

impl std::fmt::Debug for PushKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushKeys(…)")
    }
}

/// Why a push was refused. Nothing more specific leaves this module: a caller answers 401 / 400.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushError {
    BadSignature,
    /// Not base64, not whole blocks, bad padding or length, another app's message.
    BadEnvelope(&'static str),
}

impl PushKeys {
    /// `token`: the 消息推送 Token (3–32 letters/digits); `encoding_aes_key`: the 43-character
    /// EncodingAESKey.
    pub fn new(token: &str, encoding_aes_key: &str) -> Result<Self, String> {
        let token = token.trim();
        if token.is_empty() {
            return Err("the push Token is empty".into());
        }
        let key = encoding_aes_key.trim();
        if key.len() != 43 {
            return Err("the EncodingAESKey must be 43 characters".into());
        }
        let bytes = STANDARD
            .decode(format!("{key}="))
            .map_err(|_| "the EncodingAESKey is not base64".to_owned())?;
        let aes_key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the EncodingAESKey does not decode to 32 bytes".to_owned())?;
        Ok(PushKeys {
            token: Redacted(token.to_owned()),
            aes_key,
        })
    }

    /// `signature` of the handshake and of every push: SHA-1 of the sorted token, timestamp and
    /// nonce.
    pub fn verify_signature(&self, signature: &str, timestamp: &str, nonce: &str) -> bool {
        same(signature, &self.signature(&[timestamp, nonce]))
    }

    /// `msg_signature` of a safe-mode push: SHA-1 of the sorted token, timestamp, nonce and the
    /// `Encrypt` value (WeChat: do not use `signature` for this).
    pub fn verify_msg_signature(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> bool {
        same(msg_signature, &self.signature(&[timestamp, nonce, encrypt]))
    }

    /// The signature over the token and `parts` (what the stand-in signs its pushes with).
    pub fn signature(&self, parts: &[&str]) -> String {
        let mut all: Vec<&str> = parts.to_vec();
        all.push(&self.token.0);
        all.sort_unstable();
        let digest = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            all.concat().as_bytes(),
        );
        hex(digest.as_ref())
    }

    /// The message inside `encrypt` (base64 of AES-256-CBC, IV = key[..16], K=32 PKCS#7 padding,
    /// `random(16) ‖ len(4, big-endian) ‖ msg ‖ appid`); the appid must be `appid`.
    pub fn decrypt(&self, encrypt: &str, appid: &str) -> Result<Vec<u8>, PushError> {
        let mut data = STANDARD
            .decode(encrypt.trim())
            .map_err(|_| PushError::BadEnvelope("Encrypt is not base64"))?;
        if data.is_empty() || data.len() % PAD_TO != 0 {
            return Err(PushError::BadEnvelope("Encrypt is not whole blocks"));
        }
        let plain = Decryptor::new(self.aes_key.as_slice().into(), self.aes_key[..16].into())
            .decrypt_padded_mut::<NoPadding>(&mut data)
            .map_err(|_| PushError::BadEnvelope("Encrypt does not decrypt"))?;
        let pad = usize::from(*plain.last().unwrap_or(&0));
        if !(1..=PAD_TO).contains(&pad)
            || pad > plain.len()
            || plain[plain.len() - pad..]
                .iter()
                .any(|b| usize::from(*b) != pad)
        {
            return Err(PushError::BadEnvelope("bad padding"));
        }
        let body = &plain[..plain.len() - pad];
        let len_bytes: [u8; 4] = body
            .get(16..20)
            .and_then(|b| b.try_into().ok())
            .ok_or(PushError::BadEnvelope("too short"))?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let msg = body
            .get(20..20 + len)
            .ok_or(PushError::BadEnvelope("length out of range"))?;
        if &body[20 + len..] != appid.as_bytes() {
            return Err(PushError::BadEnvelope("another app's message"));
        }
        Ok(msg.to_vec())
    }

    /// The `Encrypt` value for `msg` (the stand-in's pushes, encrypted replies), with the given
    /// 16 random bytes.
    pub fn encrypt(&self, msg: &[u8], appid: &str, random: [u8; 16]) -> String {
        let mut plain = Vec::with_capacity(20 + msg.len() + appid.len() + PAD_TO);
        plain.extend_from_slice(&random);
        plain.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        plain.extend_from_slice(msg);
        plain.extend_from_slice(appid.as_bytes());
        let pad = PAD_TO - plain.len() % PAD_TO;
        plain.extend(std::iter::repeat_n(pad as u8, pad));
        let len = plain.len();
        let cipher = Encryptor::new(self.aes_key.as_slice().into(), self.aes_key[..16].into())
            .encrypt_padded_mut::<NoPadding>(&mut plain, len)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        STANDARD.encode(cipher)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two signatures without an early exit.
fn same(given: &str, expected: &str) -> bool {
    let given = given.trim().to_ascii_lowercase();
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENCRYPT: &str = "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04=";
    const MSG: &str = r#"{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}"#;
    const APPID: &str = "wxba5fad812f8e6fb9";

    /// The official safe-mode vector: EncodingAESKey "A"×43; its Token is the handshake
    /// example's `AAAAA`.
    fn keys() -> PushKeys {
        PushKeys::new("AAAAA", &"A".repeat(43)).unwrap()
    }

    #[test]
    fn handshake_vector() {
        let keys = keys();
        assert!(keys.verify_signature(
            "f464b24fc39322e44b38aa78f5edd27bd1441696",
            "1714036504",
            "1514711492"
        ));
        assert!(!keys.verify_signature(
            "f464b24fc39322e44b38aa78f5edd27bd1441697",
            "1714036504",
            "1514711492"
        ));
        assert!(!keys.verify_signature("", "1714036504", "1514711492"));
    }

    #[test]
    fn safe_mode_vector() {
        let keys = keys();
        assert!(keys.verify_msg_signature(
            "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3",
            "1714112445",
            "415670741",
            ENCRYPT
        ));
        assert!(keys.verify_signature(
            "6c5c811b55cc85e0e1b54100749188c20beb3f5d",
            "1714112445",
            "415670741"
        ));
        // The query `signature` is not the message signature.
        assert!(!keys.verify_msg_signature(
            "6c5c811b55cc85e0e1b54100749188c20beb3f5d",
            "1714112445",
            "415670741",
            ENCRYPT
        ));
        assert_eq!(keys.decrypt(ENCRYPT, APPID).unwrap(), MSG.as_bytes());
        assert_eq!(
            keys.decrypt(ENCRYPT, "wx-other"),
            Err(PushError::BadEnvelope("another app's message"))
        );
        // One bit changed in the last block breaks the padding or the appid.
        let mut tampered = STANDARD.decode(ENCRYPT).unwrap();
        let n = tampered.len();
        tampered[n - 20] ^= 1;
        assert!(keys.decrypt(&STANDARD.encode(tampered), APPID).is_err());
        assert!(keys.decrypt("not base64!", APPID).is_err());
        assert!(keys.decrypt(&STANDARD.encode([0u8; 16]), APPID).is_err());
    }

    #[test]
    fn reply_vector_and_round_trip() {
        let keys = keys();
        let random: [u8; 16] = *b"707722b803182950";
        let encrypt = keys.encrypt(br#"{"demo_resp":"good luck"}"#, APPID, random);
        assert_eq!(
            encrypt,
            "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ=="
        );
        assert_eq!(
            keys.signature(&["1713424427", "415670741", &encrypt]),
            "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1"
        );
        for len in [0, 1, 11, 12, 13, 43, 44, 500] {
            let msg = vec![b'x'; len];
            let encrypt = keys.encrypt(&msg, APPID, [7; 16]);
            assert_eq!(keys.decrypt(&encrypt, APPID).unwrap(), msg, "{len}");
        }
    }

    #[test]
    fn keys_are_checked() {
        assert!(PushKeys::new("t", &"A".repeat(42)).is_err());
        assert!(PushKeys::new("t", &"*".repeat(43)).is_err());
        assert!(PushKeys::new(" ", &"A".repeat(43)).is_err());
        assert!(!format!("{:?}", keys()).contains("AAAAA"));
    }
}
