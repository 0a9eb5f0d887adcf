//! The S3 adapter of the export archive (`renji_shared::archive::S3Archive`) against a stand-in
//! speaking S3's REST protocol (path style, as `AWS_ENDPOINT_URL_S3` selects): a multipart
//! upload written through the export writer, completed, read back by its presigned link,
//! aborted, deleted. The signatures themselves are checked against AWS's published examples in
//! `shared/src/archive.rs`; here, that every request carries one, for the region and service, with
//! the payload hash S3 requires, and that objects are written with SSE-KMS.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use renji_local::http_server::{HttpRequest, HttpResponse};
use renji_shared::archive::{Archive, S3Archive};
use renji_shared::domain::exports::document::PartWriter;

#[path = "s3_stand_in.rs"]
mod s3_stand_in;
use s3_stand_in::{object, reply};

#[derive(Default)]
struct Bucket {
    uploads: HashMap<String, (String, BTreeMap<u32, Vec<u8>>)>,
    objects: HashMap<String, Vec<u8>>,
    /// Requests refused for a missing or wrong signature or encryption.
    refused: Vec<String>,
}

async fn serve(bucket: Arc<Mutex<Bucket>>, req: HttpRequest) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let Some(key) = parts.uri.path().strip_prefix("/exports-bucket/") else {
        return reply(404, "<Error><Code>NoSuchBucket</Code></Error>");
    };
    let key = key.to_owned();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let mut bucket = bucket.lock().unwrap();
    let method = parts.method.as_str();
    if method == "GET" {
        // A presigned link: the signature is in the query.
        let ok = query.get("X-Amz-Algorithm").map(String::as_str) == Some("AWS4-HMAC-SHA256")
            && query.get("X-Amz-Credential").is_some_and(|c| {
                c.starts_with("AKIDEXAMPLE/") && c.ends_with("/cn-north-1/s3/aws4_request")
            })
            && query.get("X-Amz-Expires").map(String::as_str) == Some("900")
            && query.contains_key("X-Amz-Signature");
        if !ok {
            bucket.refused.push(format!("GET {key}"));
            return reply(403, "<Error><Code>AccessDenied</Code></Error>");
        }
        return object(bucket.objects.get(&key));
    }
    let signed = header("authorization").is_some_and(|a| {
        a.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            && a.contains("/cn-north-1/s3/aws4_request")
            && a.contains("x-amz-content-sha256")
    }) && header("x-amz-content-sha256").is_some_and(|h| h.len() == 64);
    if !signed {
        bucket.refused.push(format!("{method} {key}"));
        return reply(403, "<Error><Code>SignatureDoesNotMatch</Code></Error>");
    }
    match (method, query.get("uploadId"), query.contains_key("uploads")) {
        ("POST", None, true) => {
            if header("x-amz-server-side-encryption") != Some("aws:kms") {
                bucket.refused.push(format!("unencrypted {key}"));
                return reply(403, "<Error><Code>AccessDenied</Code></Error>");
            }
            let id = format!("up.{}-x_y", bucket.uploads.len());
            bucket.uploads.insert(id.clone(), (key, BTreeMap::new()));
            reply(
                200,
                &format!("<InitiateMultipartUploadResult><UploadId>{id}</UploadId></InitiateMultipartUploadResult>"),
            )
        }
        ("PUT", Some(id), _) => {
            let number: u32 = query["partNumber"].parse().unwrap();
            let Some((_, parts)) = bucket.uploads.get_mut(id) else {
                return reply(404, "<Error><Code>NoSuchUpload</Code></Error>");
            };
            parts.insert(number, body);
            hyper::Response::builder()
                .status(200)
                .header("etag", format!("\"etag-{number}\""))
                .body(Full::new(Bytes::new()))
                .unwrap()
        }
        ("POST", Some(id), _) => {
            let xml = String::from_utf8(body).unwrap();
            let Some((key, parts)) = bucket.uploads.remove(id) else {
                return reply(404, "<Error><Code>NoSuchUpload</Code></Error>");
            };
            let mut object = Vec::new();
            for (number, bytes) in parts {
                let listed = format!(
                    "<Part><PartNumber>{number}</PartNumber><ETag>\"etag-{number}\"</ETag></Part>"
                );
                if !xml.contains(&listed) {
                    // As S3 does: a 200 whose body is an error.
                    return reply(200, "<Error><Code>InvalidPart</Code></Error>");
                }
                object.extend(bytes);
            }
            bucket.objects.insert(key, object);
            reply(200, "<CompleteMultipartUploadResult/>")
        }
        ("DELETE", Some(id), _) => {
            bucket.uploads.remove(id);
            reply(204, "")
        }
        ("DELETE", None, false) => {
            bucket.objects.remove(&key);
            reply(204, "")
        }
        _ => reply(400, "<Error><Code>InvalidRequest</Code></Error>"),
    }
}

#[tokio::test]
async fn an_export_is_uploaded_in_parts_read_by_its_link_and_deleted() {
    let bucket = Arc::new(Mutex::new(Bucket::default()));
    let (endpoint, _server) = s3_stand_in::spawn(&bucket, serve).await;
    let archive = S3Archive::new(
        "exports-bucket",
        "cn-north-1",
        Some(&endpoint),
        Some(s3_stand_in::credentials()),
    )
    .unwrap();
    let key = "exports/u_01/01J.json";

    // Three parts of 4 bytes and a last one of 2, through the export writer.
    let mut writer = PartWriter::begin(&archive, key, 4).await.unwrap();
    writer.write(b"{\"a\":[1,2,").await.unwrap();
    writer.write(b"3,4]}").await.unwrap();
    let (bytes, held) = writer.finish().await.unwrap();
    assert_eq!((bytes, held), (15, 4));
    let link = archive
        .link(key, std::time::Duration::from_secs(900))
        .await
        .unwrap();
    assert!(
        link.starts_with(&format!("{endpoint}/exports-bucket/{key}?")),
        "{link}"
    );
    assert!(link.contains("X-Amz-Security-Token="), "{link}");
    let got = reqwest::get(&link).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.text().await.unwrap(), "{\"a\":[1,2,3,4]}");

    // An aborted upload leaves nothing; a deleted object is gone.
    let upload = archive.begin("exports/u_01/01K.json").await.unwrap();
    archive
        .put_part("exports/u_01/01K.json", &upload, 1, b"x".to_vec())
        .await
        .unwrap();
    archive
        .abort("exports/u_01/01K.json", &upload)
        .await
        .unwrap();
    archive.delete(key).await.unwrap();
    assert_eq!(reqwest::get(&link).await.unwrap().status(), 404);
    {
        let state = bucket.lock().unwrap();
        assert!(state.uploads.is_empty() && state.objects.is_empty());
        assert!(state.refused.is_empty(), "{:?}", state.refused);
    }

    // A completion S3 refuses in its body (200 with an error) is an error here.
    let upload = archive.begin(key).await.unwrap();
    let part = archive
        .put_part(key, &upload, 1, b"y".to_vec())
        .await
        .unwrap();
    let wrong = renji_shared::archive::Part {
        etag: "\"other\"".into(),
        ..part
    };
    assert!(archive.complete(key, &upload, &[wrong]).await.is_err());
}
