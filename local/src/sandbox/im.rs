//! Tencent IM in the sandbox: no stand-in is served (the backend only signs UserSigs; the IM
//! REST client comes with account deletion), only the application the local server signs for
//! when `TENCENT_IM_SDKAPPID` and `TENCENT_IM_SECRET` are not set outside.

/// The sandbox application: Tencent's documentation's sample id, no real application.
pub const SDKAPPID: &str = "1400000000";

/// The variables that, set outside (process environment or a test's configuration), replace
/// the sandbox application as a whole: a real application id with the sandbox secret would sign
/// UserSigs IM refuses.
pub const VARIABLES: &[&str] = &[
    "TENCENT_IM_SDKAPPID",
    "TENCENT_IM_SECRET",
    "TENCENT_IM_SECRET_ARN",
];

/// The sandbox IM secret, derived from the local session secret so it persists exactly as that
/// does (in the data folder): 64 hex digits, the form of the console's keys.
pub fn secret(session_secret: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, session_secret.as_bytes());
    ring::hmac::sign(&key, b"renji-local-tencent-im-secret-v1")
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
