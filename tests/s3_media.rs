//! The S3 adapter of the media bucket (`renji_shared::media_bucket::S3MediaBucket`) against a
//! stand-in speaking S3's REST protocol (path style, as `AWS_ENDPOINT_URL_S3` selects): HEAD of a
//! present and an absent object, the public tag written with `PutObjectTagging` (with the
//! integrity checksum S3 requires), a presigned link carrying the session token, DELETE, and the
//! upload form aimed at the bucket with the session token among its fields. The POST policy's
//! signature itself is checked against AWS's worked example in `shared/src/media_bucket.rs`, and
//! enforced end to end by the local stand-in (`tests/uploads.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use renji_local::http_server::{HttpRequest, HttpResponse};
use renji_shared::media_bucket::{MediaBucket, ObjectHead, S3MediaBucket, UploadPolicy};

#[path = "s3_stand_in.rs"]
mod s3_stand_in;
use s3_stand_in::{object, reply};

#[derive(Default)]
struct Bucket {
    objects: HashMap<String, (Vec<u8>, String)>,
    tags: HashMap<String, String>,
    refused: Vec<String>,
}

async fn serve(bucket: Arc<Mutex<Bucket>>, req: HttpRequest) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    let Some(key) = parts.uri.path().strip_prefix("/media-bucket/") else {
        return reply(404, "<Error><Code>NoSuchBucket</Code></Error>");
    };
    let key = key.to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let mut bucket = bucket.lock().unwrap();
    let method = parts.method.as_str();
    if method == "GET" {
        let ok = query.contains("X-Amz-Credential=AKIDEXAMPLE")
            && query.contains("X-Amz-Security-Token=session-token")
            && query.contains("X-Amz-Signature=");
        if !ok {
            bucket.refused.push(format!("GET {key}"));
            return reply(403, "<Error><Code>AccessDenied</Code></Error>");
        }
        return object(bucket.objects.get(&key).map(|(bytes, _)| bytes));
    }
    let signed = header("authorization").is_some_and(|a| {
        a.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            && a.contains("/cn-north-1/s3/aws4_request")
    }) && header("x-amz-security-token") == Some("session-token");
    if !signed {
        bucket.refused.push(format!("{method} {key}"));
        return reply(403, "<Error><Code>SignatureDoesNotMatch</Code></Error>");
    }
    match (method, query.as_str()) {
        ("HEAD", "") => match bucket.objects.get(&key) {
            Some((bytes, content_type)) => hyper::Response::builder()
                .status(200)
                .header("content-length", bytes.len())
                .header("content-type", content_type.as_str())
                .body(Full::new(Bytes::new()))
                .unwrap(),
            None => reply(404, ""),
        },
        ("PUT", "tagging") => {
            // S3 requires an integrity checksum of the tagging document.
            let sum = STANDARD.encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
            if header("x-amz-checksum-sha256") != Some(sum.as_str()) {
                bucket
                    .refused
                    .push(format!("tagging without checksum {key}"));
                return reply(400, "<Error><Code>InvalidRequest</Code></Error>");
            }
            if !bucket.objects.contains_key(&key) {
                return reply(404, "<Error><Code>NoSuchKey</Code></Error>");
            }
            bucket.tags.insert(key, String::from_utf8(body).unwrap());
            reply(200, "")
        }
        ("DELETE", "") => {
            bucket.objects.remove(&key);
            bucket.tags.remove(&key);
            reply(204, "")
        }
        _ => reply(400, "<Error><Code>InvalidRequest</Code></Error>"),
    }
}

#[tokio::test]
async fn objects_are_looked_at_published_linked_and_deleted() {
    let bucket = Arc::new(Mutex::new(Bucket::default()));
    let (endpoint, _server) = s3_stand_in::spawn(&bucket, serve).await;
    let media = S3MediaBucket::new(
        "media-bucket",
        "cn-north-1",
        Some(&endpoint),
        Some(s3_stand_in::credentials()),
    )
    .unwrap();
    let key = "u/u_01/listing_image/m_01.jpg";
    assert_eq!(media.head(key).await.unwrap(), None);
    bucket
        .lock()
        .unwrap()
        .objects
        .insert(key.into(), (b"jpeg bytes".to_vec(), "image/jpeg".into()));
    assert_eq!(
        media.head(key).await.unwrap(),
        Some(ObjectHead {
            size: 10,
            content_type: "image/jpeg".into()
        })
    );

    media.set_public(key, true).await.unwrap();
    assert!(bucket.lock().unwrap().tags[key].contains("<Key>public</Key><Value>true</Value>"));
    media.set_public(key, false).await.unwrap();
    assert!(bucket.lock().unwrap().tags[key].contains("<Value>false</Value>"));

    let link = media.link(key, Duration::from_secs(3600)).await.unwrap();
    assert!(
        link.url
            .starts_with(&format!("{endpoint}/media-bucket/{key}?")),
        "{}",
        link.url
    );
    assert!(link.url.contains("X-Amz-Expires=3600"), "{}", link.url);
    let got = reqwest::get(&link.url).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.text().await.unwrap(), "jpeg bytes");

    let form = media
        .post_form(&UploadPolicy {
            key: key.into(),
            content_type: "image/jpeg".into(),
            max_bytes: 10,
            expires_in: Duration::from_secs(300),
        })
        .await
        .unwrap();
    assert_eq!(form.url, format!("{endpoint}/media-bucket"));
    assert_eq!(form.fields["x-amz-security-token"], "session-token");
    assert!(form.fields["x-amz-credential"].ends_with("/cn-north-1/s3/aws4_request"));

    media.delete(key).await.unwrap();
    assert_eq!(media.head(key).await.unwrap(), None);
    assert_eq!(reqwest::get(&link.url).await.unwrap().status(), 404);
    // A key that is not one of ours is refused before any request.
    assert!(media.head("u/../x?y").await.is_err());
    let state = bucket.lock().unwrap();
    assert!(state.refused.is_empty(), "{:?}", state.refused);
}
