//! The identity verifier port (privacy policy §二(一)2: names and numbers are checked with an
//! authoritative identity service) and its production adapter over HTTP.
//!
//! The HTTP contract, one call per check:
//!
//! ```text
//! POST $RENJI_VERIFIER_URL
//! Authorization: Bearer $RENJI_VERIFIER_TOKEN
//! Content-Type: application/json
//! {"request_id": "<attempt id>", "kind": "person"|"enterprise", "name": "…", "number": "…"}
//!
//! 200 {"result": "verified"|"rejected"|"pending", "reason": "…"}   (reason: for rejected)
//! ```
//!
//! `request_id` is the attempt's id: asking again with the same id must not start (or bill) a new
//! check, so a pending attempt is polled with it. A timeout (5 s), a non-2xx answer or an
//! unreadable one is [`VerifierError::Unavailable`]. The name and number go into the request
//! body only: never into a URL, an error message or a log line.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use crate::config::{Redacted, VerifierConfig};
use crate::domain::identity::{CompanyName, CreditCode, RealName, ResidentId};
use crate::domain::members::VerifiedAs;
use crate::error::Error;
use crate::secrets::{Cached, SecretError, Secrets};

/// Who is to be verified. `Debug` shows the kind only.
#[derive(Clone, PartialEq, Eq)]
pub enum Subject {
    Person {
        name: RealName,
        number: ResidentId,
    },
    Enterprise {
        name: CompanyName,
        number: CreditCode,
    },
}

impl Subject {
    pub fn kind(&self) -> VerifiedAs {
        match self {
            Subject::Person { .. } => VerifiedAs::Person,
            Subject::Enterprise { .. } => VerifiedAs::Enterprise,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Subject::Person { name, .. } => name.expose(),
            Subject::Enterprise { name, .. } => name.expose(),
        }
    }

    pub fn number(&self) -> &str {
        match self {
            Subject::Person { number, .. } => number.expose(),
            Subject::Enterprise { number, .. } => number.expose(),
        }
    }
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Subject({:?}, ..)", self.kind())
    }
}

/// The verifier's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Verified,
    Rejected {
        reason: String,
    },
    /// Not decided yet: ask again later with the same attempt id.
    Pending,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifierError {
    /// Down, slow, or answering nonsense; the attempt stays pending.
    Unavailable(String),
}

impl From<VerifierError> for Error {
    fn from(e: VerifierError) -> Self {
        match e {
            VerifierError::Unavailable(detail) => Error::Unavailable(detail),
        }
    }
}

#[async_trait]
pub trait Verifier: Send + Sync {
    /// Whether a check could be asked now: an adapter's credentials can be read. Called before
    /// an attempt is recorded, so a missing credential is a 503, not a pending attempt.
    async fn ready(&self) -> Result<(), SecretError> {
        Ok(())
    }

    /// Checks `subject`; `attempt_id` makes repeated calls for one attempt idempotent.
    async fn verify(&self, subject: &Subject, attempt_id: &str) -> Result<Decision, VerifierError>;
}

/// The longest rejection reason kept (it is shown to the member).
const MAX_REASON_CHARS: usize = 200;

#[derive(Deserialize)]
struct Reply {
    result: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The production adapter: the contract above over reqwest (rustls on ring).
pub struct HttpVerifier {
    /// Built on the first check (`outbound::client`).
    http: std::sync::OnceLock<reqwest::Client>,
    config: VerifierConfig,
    /// The bearer token, read on first need (from Secrets Manager in Lambda).
    token: Cached<Redacted>,
}

impl HttpVerifier {
    /// Refuses (at start-up) a verifier URL that is not https: the request carries names and ID
    /// numbers. Plain http is accepted only for a loopback host, where the local server runs its
    /// sandbox verifier (and where nothing leaves the machine).
    pub fn new(config: VerifierConfig, secrets: &Secrets) -> Result<Self, Error> {
        check_url(&config.url)?;
        let token = secrets.cached(
            "RENJI_VERIFIER_TOKEN",
            &config.token,
            crate::wechat::credential,
        )?;
        Ok(HttpVerifier {
            http: std::sync::OnceLock::new(),
            config,
            token,
        })
    }
}

#[async_trait]
impl Verifier for HttpVerifier {
    async fn ready(&self) -> Result<(), SecretError> {
        self.token.get().await.map(|_| ())
    }

    async fn verify(&self, subject: &Subject, attempt_id: &str) -> Result<Decision, VerifierError> {
        let unavailable =
            |e: reqwest::Error| VerifierError::Unavailable(e.without_url().to_string());
        let token = (self.token.get().await)
            .map_err(|e| VerifierError::Unavailable(format!("token: {e}")))?;
        let response = crate::outbound::client(&self.http)
            .map_err(VerifierError::Unavailable)?
            .post(&self.config.url)
            .bearer_auth(&token.0)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(
                json!({
                    "request_id": attempt_id,
                    "kind": subject.kind(),
                    "name": subject.name(),
                    "number": subject.number(),
                })
                .to_string(),
            )
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        if !status.is_success() {
            return Err(VerifierError::Unavailable(format!("HTTP {status}")));
        }
        let body = crate::outbound::read_capped(response, crate::outbound::MAX_ANSWER_BYTES)
            .await
            .map_err(|e| VerifierError::Unavailable(format!("verifier: {e}")))?;
        let reply: Reply = serde_json::from_slice(&body)
            .map_err(|_| VerifierError::Unavailable("unreadable verifier reply".into()))?;
        match reply.result.as_str() {
            "verified" => Ok(Decision::Verified),
            "pending" => Ok(Decision::Pending),
            "rejected" => Ok(Decision::Rejected {
                reason: clean_reason(reply.reason.as_deref()),
            }),
            _ => Err(VerifierError::Unavailable(
                "verifier reply with an unknown result".into(),
            )),
        }
    }
}

/// `RENJI_VERIFIER_URL`: https with a host and no credentials, or http to a loopback host.
pub fn check_url(text: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::Config(format!("RENJI_VERIFIER_URL {why}")));
    let Ok(url) = url::Url::parse(text) else {
        return bad("is not a URL");
    };
    if !url.username().is_empty() || url.password().is_some() {
        return bad("must not carry credentials (the token is RENJI_VERIFIER_TOKEN)");
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => return bad("has no host"),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => bad("must be an https URL (http only to a loopback host, for local runs)"),
    }
}

/// A reason fit to store and show: printable, bounded, never empty.
fn clean_reason(reason: Option<&str>) -> String {
    let text: String = reason
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON_CHARS)
        .collect();
    match text.trim() {
        "" => "the identity service did not verify these details".into(),
        t => t.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_never_show_their_details() {
        let subject = Subject::Person {
            name: RealName::parse("张三").unwrap(),
            number: ResidentId::parse("11010519491231002X").unwrap(),
        };
        assert_eq!(format!("{subject:?}"), "Subject(Person, ..)");
        assert_eq!(subject.number(), "11010519491231002X");
    }

    #[test]
    fn reasons_are_cleaned() {
        assert_eq!(clean_reason(Some(" 不一致\n ")), "不一致");
        assert_eq!(clean_reason(Some(&"x".repeat(500))).len(), MAX_REASON_CHARS);
        assert!(!clean_reason(None).is_empty());
    }

    #[test]
    fn verifier_urls_must_be_https_except_on_loopback() {
        for good in [
            "https://verifier.example/v1/verify",
            "https://10.0.0.8:8443/verify",
            "http://127.0.0.1:4000/v1/verify",
            "http://[::1]:4000/v1/verify",
            "http://localhost:4000/v1/verify",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
            assert!(verifier(good).is_ok(), "{good}");
        }
        for bad in [
            "http://verifier.example/v1/verify",
            "http://10.0.0.8/verify",
            "http://localhost.example.com/verify",
            "ftp://verifier.example/",
            "https://user:pw@verifier.example/v1/verify",
            "verifier.example/v1/verify",
            "",
        ] {
            assert!(matches!(verifier(bad), Err(Error::Config(_))), "{bad}");
        }
    }

    fn config(url: &str) -> VerifierConfig {
        VerifierConfig {
            url: url.into(),
            token: crate::config::SecretSetting::Value(Redacted("t".into())),
        }
    }

    fn verifier(url: &str) -> Result<HttpVerifier, Error> {
        HttpVerifier::new(
            config(url),
            &Secrets::from_env(std::time::Duration::from_secs(1)),
        )
    }

    #[tokio::test]
    async fn answers_are_read_with_a_cap() {
        let subject = Subject::Person {
            name: RealName::parse("张三").unwrap(),
            number: ResidentId::parse("11010519491231002X").unwrap(),
        };
        for chunked in [false, true] {
            let base = crate::outbound::tests::serve(crate::outbound::tests::padded(
                r#"{"result":"verified","#,
                200_000,
                chunked,
            ))
            .await;
            let verifier = verifier(&format!("{base}/verify")).unwrap();
            match verifier.verify(&subject, "va_1").await {
                Err(VerifierError::Unavailable(m)) => assert!(m.contains("over"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn an_unreachable_verifier_is_unavailable() {
        // A port that was just free and is closed again: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let verifier = HttpVerifier::new(
            VerifierConfig {
                url: format!("http://127.0.0.1:{port}/verify"),
                token: crate::config::SecretSetting::Value(Redacted("t".into())),
            },
            &Secrets::from_env(std::time::Duration::from_secs(1)),
        )
        .unwrap();
        let subject = Subject::Enterprise {
            name: CompanyName::parse("北京风郎影业有限公司").unwrap(),
            number: CreditCode::parse("91350100M000100Y43").unwrap(),
        };
        match verifier.verify(&subject, "va_1").await {
            Err(VerifierError::Unavailable(m)) => {
                assert!(!m.contains("91350100") && !m.contains("风郎"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }
}
