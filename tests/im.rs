//! The Tencent IM UserSig, checked by an implementation of the published algorithm (TLSSigAPIv2)
//! other than the signer's: IM's base64 decoded by hand here, the zlib stream inflated by
//! miniz_oxide (the signer frames it itself), the HMAC-SHA256 recomputed with RustCrypto (the
//! signer uses ring). Then a published UserSig, and the route on both stores.

use hmac::{Hmac, Mac};
use renji_shared::config::{Redacted, SecretSetting};
use renji_shared::im::UserSigner;
use renji_tests::{keys, on_both_stores, Backend, LocalServer};
use serde_json::{json, Value};
use sha2::Sha256;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Tencent's sample application and key, as the official TLSSigAPIv2 SDKs' READMEs and tests
/// publish them (e.g. github.com/tencentyun/tls-sig-api-v2-golang, TLSSigAPITest.go).
const SAMPLE_APP: u64 = 1_400_000_000;
const SAMPLE_KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";

/// A published UserSig for the sample application and key, identifier "0": the vector of
/// github.com/huangjj27/TLSSigAPI, src/lib.rs (commit 08b0a4c2, test
/// `test_fix_time_sign_generation_no_buf`), "generated from python version", i.e. Tencent's
/// tls-sig-api-v2-python. Its time and expiry are in milliseconds (that crate's choice; the
/// algorithm signs whatever numbers the document carries).
const PUBLISHED: &str = "eJyrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwjDB4pTsxIKCzBQlK0MTAyiAyKRWFGQWpQLFTU1NjZAlSjJzwcJmlpaGBkZIEsWZ6UCTk1yzzF0DvFP93TP0XaK0fVLLnP0isoKLfErSs7K0c5wtXFMMSjOLvCIiQ22VagHjLDB3";

/// IM's base64 (`*` `-` `_` for `+` `/` `=`), decoded by hand.
fn im_base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'*' => 62,
            b'-' => 63,
            other => panic!("{:?} is not in IM's base64 alphabet", other as char),
        }
    };
    let body = text.trim_end_matches('_');
    assert!(
        text.len() - body.len() <= 2 && text.len().is_multiple_of(4),
        "{text}"
    );
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in body.bytes() {
        acc = (acc << 6) | value(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn std_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The document a UserSig carries.
fn decode(user_sig: &str) -> Value {
    let zlib = im_base64_decode(user_sig);
    let json = miniz_oxide::inflate::decompress_to_vec_zlib(&zlib).expect("a zlib stream");
    serde_json::from_slice(&json).expect("a JSON document")
}

/// `TLS.sig` as the algorithm defines it, from the document's own fields.
fn expected_sig(key: &str, doc: &Value) -> String {
    let content = format!(
        "TLS.identifier:{}\nTLS.sdkappid:{}\nTLS.time:{}\nTLS.expire:{}\n",
        doc["TLS.identifier"].as_str().unwrap(),
        doc["TLS.sdkappid"].as_u64().unwrap(),
        doc["TLS.time"].as_i64().unwrap(),
        doc["TLS.expire"].as_i64().unwrap(),
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(content.as_bytes());
    std_base64(&mac.finalize().into_bytes())
}

/// Checks `user_sig` as IM would: its document, and its signature under `key`.
fn verify(user_sig: &str, key: &str) -> Value {
    let doc = decode(user_sig);
    assert_eq!(
        keys(&doc),
        [
            "TLS.expire",
            "TLS.identifier",
            "TLS.sdkappid",
            "TLS.sig",
            "TLS.time",
            "TLS.ver"
        ]
    );
    assert_eq!(doc["TLS.ver"], json!("2.0"));
    assert_eq!(doc["TLS.sig"], json!(expected_sig(key, &doc)), "signature");
    doc
}

#[test]
fn the_published_usersig_verifies_and_the_signer_signs_it_alike() {
    let published = verify(PUBLISHED, SAMPLE_KEY);
    assert_eq!(
        published,
        json!({
            "TLS.ver": "2.0",
            "TLS.identifier": "0",
            "TLS.sdkappid": 1_400_000_000u64,
            "TLS.expire": 15_552_000_000i64,
            "TLS.time": 1_569_910_200_000i64,
            "TLS.sig": "bEj7EPKeOGh/DZ+LevCNXjSrLtgjj+lC8Ed0uirJXYU=",
        })
    );
    // Our signer, given the same inputs, signs the same document (compared decoded: the
    // compression differs, which IM does not mind).
    let ours = UserSigner::new(SAMPLE_APP, SAMPLE_KEY).unwrap().sign(
        "0",
        1_569_910_200_000,
        15_552_000_000,
    );
    assert_eq!(decode(&ours), published);
}

#[test]
fn signatures_verify_independently_and_only_under_their_key() {
    let signer = UserSigner::new(1_400_123_456, "my-im-secret").unwrap();
    for (id, time, expire) in [
        (
            "u_01m8jsg6njf1pg15cd7be868vz",
            1_795_924_800i64,
            7 * 86_400i64,
        ),
        ("administrator", 1_700_000_000, 86_400),
        // Long enough for the base64 to need padding both ways across these cases.
        ("u_0", 1, 180 * 86_400),
        ("u_00", 1, 1),
    ] {
        let sig = signer.sign(id, time, expire);
        assert!(
            sig.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"*-_".contains(&b)),
            "{sig}"
        );
        let doc = verify(&sig, "my-im-secret");
        assert_eq!(
            (
                &doc["TLS.identifier"],
                &doc["TLS.sdkappid"],
                &doc["TLS.time"],
                &doc["TLS.expire"]
            ),
            (
                &json!(id),
                &json!(1_400_123_456u64),
                &json!(time),
                &json!(expire)
            )
        );
        assert_ne!(doc["TLS.sig"], json!(expected_sig("another-secret", &doc)));
    }
}

async fn get_usersig(server: &LocalServer, token: Option<&str>) -> renji_tests::Reply {
    server.api.call("GET", "/v1/im/usersig", token, None).await
}

/// The route's answer, checked: the member, the application, the signature under `key`, and an
/// expiry `days` after the signing time (which is now).
async fn assert_issued(server: &LocalServer, app: u64, key: &str, days: i64) {
    let member = server.member("im-user", false).await;
    let before = OffsetDateTime::now_utc().unix_timestamp();
    let reply = get_usersig(server, Some(&member.token)).await;
    let after = OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = &reply.body;
    assert_eq!(
        keys(body),
        ["expires_at", "sdk_app_id", "user_id", "user_sig"]
    );
    assert_eq!(
        (&body["sdk_app_id"], &body["user_id"]),
        (&json!(app), &json!(member.id))
    );
    let doc = verify(body["user_sig"].as_str().unwrap(), key);
    assert_eq!(doc["TLS.identifier"], json!(member.id));
    assert_eq!(doc["TLS.sdkappid"], json!(app));
    assert_eq!(doc["TLS.expire"], json!(days * 86_400));
    let time = doc["TLS.time"].as_i64().unwrap();
    assert!(
        (before..=after).contains(&time),
        "{time} not in {before}..={after}"
    );
    let expires = OffsetDateTime::parse(body["expires_at"].as_str().unwrap(), &Rfc3339).unwrap();
    assert_eq!(expires.unix_timestamp(), time + days * 86_400);
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));

    // Without a session, or with a parameter the route does not take: refused.
    let anonymous = get_usersig(server, None).await;
    assert_eq!(
        (anonymous.status, anonymous.error_code()),
        (401, "unauthorized")
    );
    let extra = server
        .api
        .call("GET", "/v1/im/usersig?days=180", Some(&member.token), None)
        .await;
    assert_eq!(extra.status, 422, "{extra:?}");
    assert_eq!(extra.body["error"]["field"], json!("days"));
}

async fn the_route_signs_with_the_configured_application(backend: Backend) {
    let server = LocalServer::start_with(
        backend,
        &[
            ("TENCENT_IM_SDKAPPID", "1400654321"),
            ("TENCENT_IM_SECRET", "configured-im-secret"),
            ("TENCENT_IM_USERSIG_DAYS", "30"),
        ],
    )
    .await;
    assert_issued(&server, 1_400_654_321, "configured-im-secret", 30).await;
}

async fn the_local_server_signs_with_its_sandbox_application(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let im = server
        .app()
        .config
        .im
        .clone()
        .expect("the sandbox IM application");
    let SecretSetting::Value(Redacted(key)) = im.secret else {
        panic!("the sandbox secret is a value");
    };
    assert_eq!(key.len(), 64, "hex, as the console's keys");
    assert_issued(&server, SAMPLE_APP, &key, 7).await;
}

/// Account deletion through the IM REST client (`App::im_accounts`, the adapter signing the
/// administrator's UserSig) against the local server's stand-in: the account is deleted once, and a
/// repeat, for an account IM no longer knows, is success too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn im_accounts_are_deleted_through_the_rest_api_idempotently() {
    let server = LocalServer::start(Backend::Embedded).await;
    let member = renji_shared::ids::UserId::generate();
    let accounts = server.app().im_accounts().unwrap();
    accounts.delete_account(&member).await.unwrap();
    accounts.delete_account(&member).await.unwrap();
    let deleted: Value = reqwest::get(format!("{}/sandbox/im/deleted", server.running.im_base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deleted["deleted"], json!([member]));
}

on_both_stores!(
    the_route_signs_with_the_configured_application,
    the_local_server_signs_with_its_sandbox_application,
);
