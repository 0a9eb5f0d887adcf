//! RSA keys as both providers use them: SHA256withRSA (RSASSA-PKCS1-v1_5 with SHA-256) over
//! `ring`, keys from PEM.
//!
//! - Private keys: PKCS#8 `PRIVATE KEY` (WeChat Pay's `apiclient_key.pem`, Alipay's tool's
//!   default) and PKCS#1 `RSA PRIVATE KEY`; `ring` parses both DER forms itself.
//! - Public keys: SPKI `PUBLIC KEY` (WeChat Pay public keys, Alipay's public key) and PKCS#1
//!   `RSA PUBLIC KEY`; X.509 `CERTIFICATE`s (WeChat Pay platform certificates) give their serial
//!   and public key.
//!
//! `ring` verifies PKCS#1 `RSAPublicKey` DER only, so SPKI and certificates are unwrapped here by
//! a small DER reader (definite lengths, the few tags needed). A certificate parser crate
//! (`x509-cert` and its `der`/`spki`/`const-oid` stack) would be several crates in every binary
//! holding a provider key for three fields of one structure; the reader is 60 lines and is tested
//! against certificates and keys made by other libraries.
//!
//! A PEM value may hold `\n` escapes (an environment variable). `Debug` shows the key size only.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};

/// Why a key or certificate could not be used. Never holds key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError(pub String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

fn bad(why: &str) -> KeyError {
    KeyError(why.to_owned())
}

/// An RSA private key that signs SHA256withRSA.
pub struct PrivateKey {
    pair: RsaKeyPair,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PrivateKey(RSA {} bits)",
            self.pair.public().modulus_len() * 8
        )
    }
}

impl PrivateKey {
    /// The first private key of `pem`: `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let blocks = pem_blocks(pem)?;
        let (label, der) = blocks
            .iter()
            .find(|(label, _)| label == "PRIVATE KEY" || label == "RSA PRIVATE KEY")
            .ok_or_else(|| bad("no PRIVATE KEY or RSA PRIVATE KEY in the PEM"))?;
        let pair = match label.as_str() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(der),
            _ => RsaKeyPair::from_der(der),
        }
        .map_err(|e| KeyError(format!("not a usable RSA private key ({e})")))?;
        Ok(PrivateKey { pair })
    }

    /// The SHA256withRSA (PKCS#1 v1.5) signature of `msg`.
    pub fn sign_sha256(&self, msg: &[u8]) -> Vec<u8> {
        let mut sig = vec![0; self.pair.public().modulus_len()];
        // Fails only when the buffer's length is not the modulus's (it is) or the system's
        // random source fails (blinding); an empty signature then simply does not verify.
        match self.pair.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            msg,
            &mut sig,
        ) {
            Ok(()) => sig,
            Err(_) => Vec::new(),
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        let der = self.pair.public().as_ref().to_vec();
        PublicKey {
            bits: self.pair.public().modulus_len() * 8,
            der,
        }
    }
}

/// An RSA public key that verifies SHA256withRSA signatures (2048 to 8192 bits).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// PKCS#1 `RSAPublicKey` DER, what `ring` verifies with.
    der: Vec<u8>,
    bits: usize,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(RSA {} bits)", self.bits)
    }
}

impl PublicKey {
    /// The first public key of `pem`: `PUBLIC KEY` (SPKI) or `RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let blocks = pem_blocks(pem)?;
        let (label, der) = blocks
            .iter()
            .find(|(label, _)| label == "PUBLIC KEY" || label == "RSA PUBLIC KEY")
            .ok_or_else(|| bad("no PUBLIC KEY or RSA PUBLIC KEY in the PEM"))?;
        match label.as_str() {
            "PUBLIC KEY" => PublicKey::from_spki_der(der),
            _ => PublicKey::from_pkcs1_der(der),
        }
    }

    /// A PKCS#1 `RSAPublicKey`: `SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        let not_rsa = || bad("not an RSA public key");
        let mut outer = Der::new(der);
        let mut seq = outer.nested(SEQUENCE).ok_or_else(not_rsa)?;
        let n = seq.expect(INTEGER).ok_or_else(not_rsa)?;
        let e = seq.expect(INTEGER).ok_or_else(not_rsa)?;
        if !seq.is_empty() || !outer.is_empty() {
            return Err(not_rsa());
        }
        let n = unsigned(n).ok_or_else(not_rsa)?;
        let e = unsigned(e).ok_or_else(not_rsa)?;
        let bits = bit_length(n);
        if !(2048..=8192).contains(&bits) {
            return Err(KeyError(format!(
                "an RSA key of {bits} bits (2048 to 8192 are accepted)"
            )));
        }
        if e.len() > 4 || e.last().is_none_or(|b| b & 1 == 0) || bit_length(e) < 2 {
            return Err(bad("an RSA public exponent that is not usable"));
        }
        Ok(PublicKey {
            der: der.to_vec(),
            bits,
        })
    }

    /// An X.509 `SubjectPublicKeyInfo` holding an `rsaEncryption` key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let mut outer = Der::new(der);
        let spki = outer
            .nested(SEQUENCE)
            .filter(|_| outer.is_empty())
            .ok_or_else(|| bad("not a SubjectPublicKeyInfo"))?;
        spki_key(spki)
    }

    /// Whether `sig` is a SHA256withRSA (PKCS#1 v1.5) signature of `msg` by this key.
    pub fn verify_sha256(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.der)
            .verify(msg, sig)
            .is_ok()
    }

    pub fn bits(&self) -> usize {
        self.bits
    }

    /// RSAES-OAEP (RFC 8017 §7.1.1) of `msg` with SHA-1 as hash and MGF1 hash and an empty label,
    /// as WeChat Pay wants sensitive fields (wechatpay-go `utils.EncryptOAEPWithPublicKey`:
    /// `rsa.EncryptOAEP(sha1.New(), …)`). Randomized: the same text encrypts differently each
    /// time. The padding is ours (ring's SHA-1); the big-integer arithmetic is the `rsa` crate's.
    pub fn encrypt_oaep_sha1(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        use ::rsa::pkcs1::DecodeRsaPublicKey;
        use ::rsa::traits::PublicKeyParts;
        use ring::rand::SecureRandom;
        const H: usize = 20;
        let key = ::rsa::RsaPublicKey::from_pkcs1_der(&self.der)
            .map_err(|_| bad("not an RSA public key"))?;
        let k = key.size();
        if msg.len() + 2 * H + 2 > k {
            return Err(bad("the text is too long for RSA-OAEP with this key"));
        }
        let sha1 = |data: &[u8]| {
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
                .as_ref()
                .to_vec()
        };
        let mgf1 = |seed: &[u8], len: usize| {
            let mut out = Vec::with_capacity(len + H);
            let mut counter: u32 = 0;
            while out.len() < len {
                let mut block = seed.to_vec();
                block.extend_from_slice(&counter.to_be_bytes());
                out.extend_from_slice(&sha1(&block));
                counter += 1;
            }
            out.truncate(len);
            out
        };
        // DB = lHash || PS || 0x01 || M
        let mut db = sha1(b"");
        db.resize(k - msg.len() - H - 2, 0);
        db.push(1);
        db.extend_from_slice(msg);
        let mut seed = [0u8; H];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| bad("no random source"))?;
        for (b, m) in db.iter_mut().zip(mgf1(&seed, k - H - 1)) {
            *b ^= m;
        }
        for (b, m) in seed.iter_mut().zip(mgf1(&db, H)) {
            *b ^= m;
        }
        let mut em = Vec::with_capacity(k);
        em.push(0);
        em.extend_from_slice(&seed);
        em.extend_from_slice(&db);
        let c = ::rsa::BigUint::from_bytes_be(&em)
            .modpow(key.e(), key.n())
            .to_bytes_be();
        let mut out = vec![0u8; k - c.len()];
        out.extend_from_slice(&c);
        Ok(out)
    }
}

/// The certificates of `pem` (`CERTIFICATE` blocks; other blocks are ignored), each as its serial
/// the way WeChat Pay writes it (`Wechatpay-Serial`: uppercase hex of the serial's bytes, no
/// leading zero byte) and its RSA public key. No certificate at all is an error.
pub fn certificates(pem: &str) -> Result<Vec<(String, PublicKey)>, KeyError> {
    let certs: Vec<_> = pem_blocks(pem)?
        .into_iter()
        .filter(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| certificate(&der))
        .collect::<Result<_, _>>()?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE in the PEM"));
    }
    Ok(certs)
}

/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity, subject, subjectPublicKeyInfo, … }, … }` (RFC 5280 §4.1).
fn certificate(der: &[u8]) -> Result<(String, PublicKey), KeyError> {
    let not_cert = || bad("not an X.509 certificate");
    let mut outer = Der::new(der);
    let mut cert = outer.nested(SEQUENCE).ok_or_else(not_cert)?;
    let mut tbs = cert.nested(SEQUENCE).ok_or_else(not_cert)?;
    if tbs.peek() == Some(VERSION) {
        tbs.read().ok_or_else(not_cert)?;
    }
    let serial = tbs.expect(INTEGER).ok_or_else(not_cert)?;
    for _ in 0..4 {
        // signature, issuer, validity, subject
        tbs.expect(SEQUENCE).ok_or_else(not_cert)?;
    }
    let spki = tbs.nested(SEQUENCE).ok_or_else(not_cert)?;
    let key = spki_key(spki)?;
    // Serials are positive; the DER sign byte (a leading 00) is not part of WeChat's form.
    let serial = match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        s => s,
    };
    let hex: String = serial.iter().map(|b| format!("{b:02X}")).collect();
    if hex.is_empty() {
        return Err(not_cert());
    }
    Ok((hex, key))
}

/// `SubjectPublicKeyInfo ::= SEQUENCE { algorithm SEQUENCE { rsaEncryption, NULL }, BIT STRING }`
/// (the outer SEQUENCE already entered).
fn spki_key(mut spki: Der<'_>) -> Result<PublicKey, KeyError> {
    /// 1.2.840.113549.1.1.1
    const RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
    let not_spki = || bad("not a SubjectPublicKeyInfo");
    let mut algorithm = spki.nested(SEQUENCE).ok_or_else(not_spki)?;
    if algorithm.expect(OID).ok_or_else(not_spki)? != RSA_ENCRYPTION {
        return Err(bad("not an RSA key (rsaEncryption)"));
    }
    let key = spki.expect(BIT_STRING).ok_or_else(not_spki)?;
    match key {
        [0, rsa_public_key @ ..] if spki.is_empty() => PublicKey::from_pkcs1_der(rsa_public_key),
        _ => Err(not_spki()),
    }
}

/// The blocks of a PEM text: label and decoded bytes. Text outside the blocks is ignored.
fn pem_blocks(pem: &str) -> Result<Vec<(String, Vec<u8>)>, KeyError> {
    let text = pem.replace("\\n", "\n");
    let mut blocks = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let (label, after) = after
            .split_once("-----")
            .ok_or_else(|| bad("a PEM BEGIN line without its end"))?;
        let end_line = format!("-----END {label}-----");
        let (body, after) = after
            .split_once(&end_line)
            .ok_or_else(|| KeyError(format!("a PEM {label} block without its END line")))?;
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        if b64.contains(':') {
            return Err(bad("encrypted PEM (Proc-Type headers) is not supported"));
        }
        let der = STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| KeyError(format!("the PEM {label} block is not base64")))?;
        blocks.push((label.to_owned(), der));
        rest = after;
    }
    if blocks.is_empty() {
        return Err(bad("not PEM (no BEGIN line)"));
    }
    Ok(blocks)
}

const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
/// `[0] EXPLICIT`, the certificate's version.
const VERSION: u8 = 0xA0;

/// A reader of DER TLVs with single-byte tags and definite lengths (all X.509 and PKCS#1 need).
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(der: &'a [u8]) -> Self {
        Der { rest: der }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next TLV: its tag and contents.
    fn read(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.rest.split_first()?;
        // Multi-byte (high) tags never occur in what is read here.
        if tag & 0x1F == 0x1F {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = match first {
            0..=0x7F => usize::from(first),
            0x81..=0x84 => {
                let count = usize::from(first & 0x7F);
                let (bytes, after) = rest.split_at_checked(count)?;
                rest = after;
                bytes
                    .iter()
                    .fold(0usize, |len, &b| (len << 8) | usize::from(b))
            }
            // 0x80 is BER's indefinite length; longer lengths do not occur.
            _ => return None,
        };
        let (contents, after) = rest.split_at_checked(len)?;
        self.rest = after;
        Some((tag, contents))
    }

    /// The contents of the next TLV, which must have tag `tag`.
    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.read()? {
            (t, contents) if t == tag => Some(contents),
            _ => None,
        }
    }

    fn nested(&mut self, tag: u8) -> Option<Der<'a>> {
        self.expect(tag).map(Der::new)
    }
}

/// A non-negative DER INTEGER's magnitude (without the sign byte); `None` when negative or empty.
fn unsigned(int: &[u8]) -> Option<&[u8]> {
    match int {
        [] => None,
        [first, ..] if first & 0x80 != 0 => None,
        [0, rest @ ..] => Some(rest),
        all => Some(all),
    }
}

fn bit_length(magnitude: &[u8]) -> usize {
    let magnitude = match magnitude.iter().position(|&b| b != 0) {
        Some(i) => &magnitude[i..],
        None => return 0,
    };
    magnitude.first().map_or(0, |&top| {
        (magnitude.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ::rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
    use ::rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
    use ::rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    use ::rsa::signature::{SignatureEncoding, Signer, Verifier};
    use ::rsa::{RsaPrivateKey, RsaPublicKey};
    use sha2::Sha256;
    use std::sync::OnceLock;

    /// A 2048-bit key made by the `rsa` crate (another implementation than ours), once per run.
    pub(crate) fn test_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::new(&mut rand_core(), 2048).unwrap())
    }

    /// A second, unrelated key.
    pub(crate) fn other_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::new(&mut rand_core(), 2048).unwrap())
    }

    fn rand_core() -> rand_core::OsRng {
        rand_core::OsRng
    }

    pub(crate) fn pkcs8_pem(key: &RsaPrivateKey) -> String {
        key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
    }

    pub(crate) fn spki_pem(key: &RsaPrivateKey) -> String {
        RsaPublicKey::from(key)
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    #[test]
    fn both_private_forms_sign_what_another_implementation_verifies() {
        let key = test_key();
        let verifier = VerifyingKey::<Sha256>::new(RsaPublicKey::from(key));
        let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string();
        for pem in [pkcs8_pem(key), pkcs1] {
            let ours = PrivateKey::from_pem(&pem).unwrap();
            let sig = ours.sign_sha256(b"GET\n/v3/x\n1\nn\n\n");
            let sig = Signature::try_from(sig.as_slice()).unwrap();
            verifier.verify(b"GET\n/v3/x\n1\nn\n\n", &sig).unwrap();
            assert!(verifier.verify(b"GET\n/v3/y\n1\nn\n\n", &sig).is_err());
        }
    }

    #[test]
    fn both_public_forms_verify_another_implementations_signature() {
        let key = test_key();
        let signer = SigningKey::<Sha256>::new(key.clone());
        let sig = signer.sign(b"1700000000\nnonce\n{\"a\":1}\n").to_vec();
        let pkcs1 = RsaPublicKey::from(key)
            .to_pkcs1_pem(LineEnding::LF)
            .unwrap();
        for pem in [spki_pem(key), pkcs1] {
            let ours = PublicKey::from_pem(&pem).unwrap();
            assert_eq!(ours.bits(), 2048);
            assert!(ours.verify_sha256(b"1700000000\nnonce\n{\"a\":1}\n", &sig));
            assert!(!ours.verify_sha256(b"1700000000\nnonce\n{\"a\":2}\n", &sig));
            let mut flipped = sig.clone();
            flipped[10] ^= 1;
            assert!(!ours.verify_sha256(b"1700000000\nnonce\n{\"a\":1}\n", &flipped));
            assert!(!ours.verify_sha256(b"1700000000\nnonce\n{\"a\":1}\n", b"short"));
        }
        let other = PublicKey::from_pem(&spki_pem(other_key())).unwrap();
        assert!(!other.verify_sha256(b"1700000000\nnonce\n{\"a\":1}\n", &sig));
    }

    #[test]
    fn the_public_key_of_a_private_key_verifies_its_signatures() {
        let ours = PrivateKey::from_pem(&pkcs8_pem(test_key())).unwrap();
        let sig = ours.sign_sha256(b"m");
        assert!(ours.public_key().verify_sha256(b"m", &sig));
        assert_eq!(
            ours.public_key(),
            PublicKey::from_pem(&spki_pem(test_key())).unwrap()
        );
    }

    #[test]
    fn escaped_newlines_and_surrounding_text_are_accepted() {
        let pem = spki_pem(test_key()).trim().replace('\n', "\\n");
        assert!(PublicKey::from_pem(&format!("  {pem}  ")).is_ok());
        let pem = pkcs8_pem(test_key()).replace('\n', "\r\n");
        assert!(PrivateKey::from_pem(&pem).is_ok());
    }

    #[test]
    fn bad_pem_is_an_error_that_shows_no_key() {
        let private = pkcs8_pem(test_key());
        let public = spki_pem(test_key());
        let cases = [
            String::new(),
            "not a key".to_owned(),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
            "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n".to_owned(),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n".to_owned(),
            private.replace("PRIVATE KEY", "PUBLIC KEY"),
            public.clone(),
        ];
        for case in &cases {
            let e = PrivateKey::from_pem(case).unwrap_err();
            assert!(!e.0.contains("MII"), "{e}");
        }
        for case in [
            String::new(),
            public.replace("PUBLIC KEY", "RSA PUBLIC KEY"),
            private.clone(),
            // A truncated key.
            public.replace("IDAQAB", ""),
        ] {
            assert!(PublicKey::from_pem(&case).is_err(), "{case}");
        }
        let debug = format!(
            "{:?} {:?}",
            PrivateKey::from_pem(&private).unwrap(),
            PublicKey::from_pem(&public).unwrap()
        );
        assert_eq!(debug, "PrivateKey(RSA 2048 bits) PublicKey(RSA 2048 bits)");
    }

    #[test]
    fn small_keys_are_refused() {
        let small = RsaPrivateKey::new(&mut rand_core(), 1024).unwrap();
        let e = PublicKey::from_pem(&spki_pem(&small)).unwrap_err();
        assert!(e.0.contains("1024 bits"), "{e}");
        assert!(PrivateKey::from_pem(&pkcs8_pem(&small)).is_err());
    }

    /// A self-signed certificate for `key` with `serial`, made by rcgen (another DER writer).
    pub(crate) fn certificate_pem(key: &RsaPrivateKey, serial: &[u8]) -> String {
        let key_pair =
            rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pkcs8_pem(key), &rcgen::PKCS_RSA_SHA256)
                .unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["Tenpay.com Root CA".into()]).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
        params.self_signed(&key_pair).unwrap().pem()
    }

    #[test]
    fn certificates_give_wechat_serials_and_their_keys() {
        let signer = SigningKey::<Sha256>::new(test_key().clone());
        let sig = signer.sign(b"ts\nnonce\nbody\n").to_vec();
        // A serial whose top bit is set is written with a leading 00 in DER; WeChat's form
        // drops it and keeps the uppercase hex of the rest.
        let a = certificate_pem(test_key(), &[0x5F, 0xAB, 0x01, 0x02]);
        let b = certificate_pem(other_key(), &[0x9E, 0x0C]);
        let both = format!("{a}\n{b}");
        let certs = certificates(&both).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].0, "5FAB0102");
        assert_eq!(certs[1].0, "9E0C");
        assert!(certs[0].1.verify_sha256(b"ts\nnonce\nbody\n", &sig));
        assert!(!certs[1].1.verify_sha256(b"ts\nnonce\nbody\n", &sig));
        // Escaped newlines, as in an environment variable.
        assert_eq!(certificates(&both.replace('\n', "\\n")).unwrap(), certs);
        assert!(certificates(&spki_pem(test_key())).is_err());
        let broken = a.replace("MII", "MIJ");
        assert!(certificates(&broken).is_err());
    }

    #[test]
    fn der_lengths_are_checked() {
        assert_eq!(
            Der::new(&[0x30, 0x02, 0x05, 0x00]).read(),
            Some((0x30, &[5u8, 0][..]))
        );
        assert_eq!(Der::new(&[0x30, 0x03, 0x05, 0x00]).read(), None);
        assert_eq!(Der::new(&[0x30, 0x80, 0x00, 0x00]).read(), None);
        assert_eq!(Der::new(&[0x30, 0x81]).read(), None);
        assert_eq!(Der::new(&[0x1F, 0x00]).read(), None);
        assert_eq!(
            Der::new(&[0x04, 0x81, 0x01, 0xAA]).read(),
            Some((0x04, &[0xAAu8][..]))
        );
        assert_eq!(bit_length(&[0x00, 0x01, 0x00]), 9);
        assert_eq!(bit_length(&[]), 0);
    }
}
