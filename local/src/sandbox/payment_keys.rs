//! The sandbox payment keys: the merchant's (WeChat Pay merchant key and serial, APIv3 key,
//! Alipay app key) and the providers' own (the WeChat Pay public-key-mode key, Alipay's key).
//!
//! Generated once per process with RustCrypto (not our ring-based code) and kept in the data
//! folder (`payment-keys`, mode 0600, like `session-secret`) so payments started before a restart
//! still verify after it; in memory only on a DynamoDB endpoint.

use std::path::Path;

use rand_core::{OsRng, RngCore as _};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

/// The sandbox merchant number (`WECHATPAY_MCHID`).
pub const MCHID: &str = "1900000109";
/// The sandbox Alipay app (`ALIPAY_APP_ID`) and merchant user id (`ALIPAY_SELLER_ID`).
pub const ALIPAY_APP_ID: &str = "9021000100000001";
pub const ALIPAY_SELLER_ID: &str = "2088000000000001";

/// The configuration variables the local server sets from these keys and its stand-ins. The
/// process environment (and a test's `Options::config`) wins for each: an outside test brings
/// its own keys. `WECHATPAY_PUBLIC_KEY_ID`/`_KEY` and `ALIPAY_PUBLIC_KEY` are the outside
/// test's own provider keys when set; the stand-ins' keys are added to the configuration besides.
pub const VARIABLES: &[&str] = &[
    "WECHATPAY_MCHID",
    "WECHATPAY_MERCHANT_SERIAL",
    "WECHATPAY_MERCHANT_KEY",
    "WECHATPAY_APIV3_KEY",
    "WECHATPAY_PUBLIC_KEY_ID",
    "WECHATPAY_PUBLIC_KEY",
    "WECHATPAY_API_BASE",
    "ALIPAY_APP_ID",
    "ALIPAY_APP_PRIVATE_KEY",
    "ALIPAY_PUBLIC_KEY",
    "ALIPAY_SELLER_ID",
    "ALIPAY_GATEWAY",
    "RENJI_PUBLIC_BASE_URL",
];

/// The secret variables among them: a deployed-style `<NAME>_ARN` set outside means the local
/// server must not also give `<NAME>` (the configuration refuses both).
pub const SECRET_VARIABLES: &[&str] = &[
    "WECHATPAY_MERCHANT_KEY",
    "WECHATPAY_APIV3_KEY",
    "ALIPAY_APP_PRIVATE_KEY",
];

const FILE: &str = "payment-keys";

/// The keys as kept in the file: PEM text and identifiers.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentKeys {
    /// The merchant API certificate's serial (40 hex digits, as WeChat Pay's are).
    pub merchant_serial: String,
    /// The merchant private key, PKCS#8 PEM.
    pub merchant_key: String,
    /// The APIv3 key: 32 characters.
    pub apiv3_key: String,
    /// WeChat Pay's public key id, `PUB_KEY_ID_` + 32 digits.
    pub wechatpay_key_id: String,
    /// WeChat Pay's (the stand-in's) private key, PKCS#8 PEM.
    pub wechatpay_key: String,
    /// The Alipay app private key, PKCS#1 PEM (as Alipay's key tool writes it for non-Java).
    pub alipay_app_key: String,
    /// Alipay's (the stand-in's) private key, PKCS#8 PEM.
    pub alipay_key: String,
}

impl std::fmt::Debug for PaymentKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentKeys")
            .field("merchant_serial", &self.merchant_serial)
            .field("wechatpay_key_id", &self.wechatpay_key_id)
            .finish_non_exhaustive()
    }
}

/// The parsed keys the stand-ins sign and check with.
pub struct Parsed {
    pub merchant: RsaPrivateKey,
    pub wechatpay: RsaPrivateKey,
    pub alipay_app: RsaPrivateKey,
    pub alipay: RsaPrivateKey,
}

impl PaymentKeys {
    pub fn parse(&self) -> Result<Parsed, String> {
        let merchant =
            private_key_pem(&self.merchant_key).map_err(|e| format!("merchant key: {e}"))?;
        let wechatpay =
            private_key_pem(&self.wechatpay_key).map_err(|e| format!("WeChat Pay key: {e}"))?;
        let alipay_app =
            private_key_pem(&self.alipay_app_key).map_err(|e| format!("Alipay app key: {e}"))?;
        let alipay = private_key_pem(&self.alipay_key).map_err(|e| format!("Alipay key: {e}"))?;
        if self.apiv3_key.len() != 32 {
            return Err("the APIv3 key is not 32 characters".into());
        }
        Ok(Parsed {
            merchant,
            wechatpay,
            alipay_app,
            alipay,
        })
    }

    /// WeChat Pay's public key, SPKI PEM (`WECHATPAY_PUBLIC_KEY`).
    pub fn wechatpay_public_pem(&self) -> Result<String, String> {
        public_pem(&private_key_pem(&self.wechatpay_key)?)
    }

    /// Alipay's public key, SPKI PEM (`ALIPAY_PUBLIC_KEY`).
    pub fn alipay_public_pem(&self) -> Result<String, String> {
        public_pem(&private_key_pem(&self.alipay_key)?)
    }

    fn generate() -> Result<Self, String> {
        let key =
            || RsaPrivateKey::new(&mut OsRng, 2048).map_err(|e| format!("RSA key generation: {e}"));
        let pkcs8 = |k: &RsaPrivateKey| {
            k.to_pkcs8_pem(LineEnding::LF)
                .map(|pem| pem.to_string())
                .map_err(|e| format!("PKCS#8: {e}"))
        };
        let mut serial = [0u8; 20];
        OsRng.fill_bytes(&mut serial);
        let alipay_app_key = key()?
            .to_pkcs1_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| format!("PKCS#1: {e}"))?;
        Ok(PaymentKeys {
            merchant_serial: serial.iter().map(|b| format!("{b:02X}")).collect(),
            merchant_key: pkcs8(&key()?)?,
            apiv3_key: random_text(
                32,
                b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            ),
            wechatpay_key_id: format!("PUB_KEY_ID_{}", random_text(32, b"0123456789")),
            wechatpay_key: pkcs8(&key()?)?,
            alipay_app_key,
            alipay_key: pkcs8(&key()?)?,
        })
    }
}

/// `len` characters drawn uniformly from `alphabet` (fewer than 256 symbols).
pub fn random_text(len: usize, alphabet: &[u8]) -> String {
    let mut out = String::with_capacity(len);
    let limit = 256 - 256 % alphabet.len();
    while out.len() < len {
        let mut byte = [0u8; 1];
        OsRng.fill_bytes(&mut byte);
        let b = usize::from(byte[0]);
        // Rejection sampling: no bias toward the first symbols.
        if b < limit {
            if let Some(c) = alphabet.get(b % alphabet.len()) {
                out.push(char::from(*c));
            }
        }
    }
    out
}

/// A private key in PKCS#8 or PKCS#1 PEM (real newlines or `\n` escapes), or the bare base64
/// DER Alipay's key tool writes (the configuration takes it too).
pub fn private_key_pem(pem: &str) -> Result<RsaPrivateKey, String> {
    use base64::Engine as _;
    let pem = renji_shared::config::pem_text(pem);
    let refused = || "not an RSA private key in PKCS#8 or PKCS#1 (PEM or base64)".to_owned();
    if pem.starts_with("-----BEGIN") {
        return RsaPrivateKey::from_pkcs8_pem(&pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&pem))
            .map_err(|_| refused());
    }
    let compact: String = pem.split_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| refused())?;
    RsaPrivateKey::from_pkcs8_der(&der)
        .or_else(|_| RsaPrivateKey::from_pkcs1_der(&der))
        .map_err(|_| refused())
}

pub fn public_pem(key: &RsaPrivateKey) -> Result<String, String> {
    RsaPublicKey::from(key)
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| format!("SPKI: {e}"))
}

/// This process's generated keys: a test binary starting many servers generates them once.
static GENERATED: OnceCell<PaymentKeys> = OnceCell::const_new();

async fn generated() -> Result<PaymentKeys, String> {
    GENERATED
        .get_or_try_init(|| async {
            tokio::task::spawn_blocking(PaymentKeys::generate)
                .await
                .map_err(|e| format!("key generation: {e}"))?
        })
        .await
        .cloned()
}

/// The keys in `data_dir/payment-keys`, generated and written (0600) when the file is missing;
/// with no data folder, this process's generated keys.
pub async fn load(data_dir: Option<&Path>) -> Result<PaymentKeys, String> {
    let Some(data_dir) = data_dir else {
        return generated().await;
    };
    let path = data_dir.join(FILE);
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            crate::server::owner_only(&std::fs::File::open(&path).map_err(failed)?)
                .map_err(failed)?;
            let keys: PaymentKeys = serde_json::from_str(&text).map_err(|_| {
                format!(
                    "{}: not the local server's payment keys (fix it, or delete it for new ones)",
                    path.display()
                )
            })?;
            keys.parse().map_err(|e| {
                format!(
                    "{}: {e} (fix it, or delete it for new ones)",
                    path.display()
                )
            })?;
            Ok(keys)
        }
        Ok(_) => write(&path, generated().await?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write(&path, generated().await?),
        Err(e) => Err(failed(e)),
    }
}

fn write(path: &Path, keys: PaymentKeys) -> Result<PaymentKeys, String> {
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    let text = serde_json::to_string_pretty(&keys).map_err(|e| e.to_string())?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(failed)?;
    crate::server::owner_only(&file).map_err(failed)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(failed)?;
    Ok(keys)
}

/// SHA256withRSA (PKCS#1 v1.5) over `message`, base64: how both providers sign.
pub fn sign(key: &RsaPrivateKey, message: &[u8]) -> String {
    use base64::Engine as _;
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    base64::engine::general_purpose::STANDARD.encode(signer.sign(message).to_bytes())
}

/// Whether `signature` (base64) is SHA256withRSA over `message` by `key`.
pub fn verify(key: &RsaPublicKey, message: &[u8], signature: &str) -> bool {
    use base64::Engine as _;
    use rsa::signature::Verifier as _;
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(bytes.as_slice()) else {
        return false;
    };
    rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.clone())
        .verify(message, &signature)
        .is_ok()
}
