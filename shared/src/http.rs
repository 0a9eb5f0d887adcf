//! Request and response helpers shared by every handler: JSON bodies with a size limit and
//! unknown-field rejection, path and query parameters, page requests, and the request wrapper
//! that logs each call and turns errors into responses.

use std::future::Future;
use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use ring::hmac;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;

use crate::domain::idempotency::{self, IdempotencyKey};
use crate::error::Error;
use crate::store::PageCursor;

pub const DEFAULT_PAGE_LIMIT: usize = 20;
pub const MAX_PAGE_LIMIT: usize = 100;

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

pub fn ok(value: &impl Serialize) -> Result<Response<Body>, Error> {
    Ok(json_response(StatusCode::OK, value))
}

pub fn created(value: &impl Serialize) -> Result<Response<Body>, Error> {
    Ok(json_response(StatusCode::CREATED, value))
}

pub fn no_content() -> Result<Response<Body>, Error> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// The API Gateway route key (`"GET /v1/users/{id}"`) the request matched.
pub fn route_key(req: &Request) -> Option<&str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.route_key.as_deref(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The request id API Gateway assigned, for logs.
pub fn request_id(req: &Request) -> Option<&str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.request_id.as_deref(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Runs one request: a span with the request id and route, one log line with status and time,
/// and errors mapped to responses in [`Error::to_response`].
pub async fn respond<F, Fut>(req: Request, handler: F) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, Error>>,
{
    let route = route_key(&req).unwrap_or("unmatched").to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = request_id(&req).unwrap_or("-"),
        route = %route
    );
    async move {
        let started = Instant::now();
        let response = match handler(req).await {
            Ok(response) => response,
            Err(e) => e.to_response(),
        };
        tracing::info!(
            status = response.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "request done"
        );
        response
    }
    .instrument(span)
    .await
}

/// The raw body bytes, refused with 413 above `limit`.
pub fn body_bytes(req: &Request, limit: usize) -> Result<&[u8], Error> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        #[allow(unreachable_patterns)]
        _ => &[],
    };
    if bytes.len() > limit {
        return Err(Error::PayloadTooLarge { limit });
    }
    Ok(bytes)
}

/// Reads a JSON body into `T` (whose fields should `deny_unknown_fields`), naming the offending
/// field on failure.
pub fn json_body<T: DeserializeOwned>(req: &Request, limit: usize) -> Result<T, Error> {
    let bytes = body_bytes(req, limit)?;
    if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
        // The media type itself, parameters (`; charset=utf-8`) aside: `application/json` and
        // nothing else (not `application/json-patch+json`, whose meaning is another).
        // JSON is UTF-8 (RFC 8259 §8.1): a body declared in another charset is not read as if
        // it were.
        let json = content_type
            .to_str()
            .map(|c| {
                let mut parts = c.split(';');
                let essence = parts.next().unwrap_or_default();
                let utf8 = parts.all(|param| match param.split_once('=') {
                    Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
                        let value = value.trim().trim_matches('"');
                        value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
                    }
                    _ => true,
                });
                essence.trim().eq_ignore_ascii_case("application/json") && utf8
            })
            .unwrap_or(false);
        if !json {
            return Err(Error::UnsupportedMediaType);
        }
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::BadRequest {
            code: "missing_body",
            message: "a JSON object body is required".into(),
        });
    }
    // serde reads a struct from a JSON array too, field by field in order (`[null]` would be a
    // PATCH clearing the first field): only an object is a request body.
    // Syntax first: a body that is not JSON is a 400 whatever its fields would have said (serde
    // reports an unknown field before it reaches a `NaN` further on). JSON text is UTF-8
    // (RFC 8259 §8.1): bytes that are not are no JSON, though the syntax check skips over a
    // string's bytes without decoding them and serde then names the field's type as wrong.
    if std::str::from_utf8(bytes).is_err() {
        return Err(malformed("body is not valid JSON: it is not UTF-8"));
    }
    if !is_json(bytes) {
        return Err(malformed("body is not valid JSON"));
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(Error::invalid("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = strip_position(&inner.to_string());
        let field = field_named(&path, &message);
        let field = field.as_str();
        match inner.classify() {
            serde_json::error::Category::Data => Error::invalid(field, message),
            // serde_json reports a wrong type for an enum (`"gender": 5`) as a syntax error;
            // the body is valid JSON (checked above), so it is the field's type that is wrong.
            serde_json::error::Category::Syntax => Error::invalid(field, "has the wrong type"),
            _ => malformed(&format!("body is not valid JSON: {inner}")),
        }
    })?;
    de.end()
        .map_err(|_| malformed("body has trailing characters after the JSON value"))?;
    Ok(value)
}

/// The body of a route that takes none: nothing, or an empty JSON object (anything else is
/// refused as any body is: 400 malformed, 422 an unknown field or not an object).
pub fn no_body(req: &Request, limit: usize) -> Result<(), Error> {
    if body_bytes(req, limit)?.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Empty {}
    json_body::<Empty>(req, limit).map(|_| ())
}

fn malformed(message: &str) -> Error {
    Error::BadRequest {
        code: "malformed_json",
        message: message.to_owned(),
    }
}

/// The field an error is about: serde names a missing or unknown field only in its message
/// (`missing field `kind``), at the path of the object that lacks or holds it.
fn field_named(path: &str, message: &str) -> String {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next())
        .filter(|name| !name.is_empty());
    match (path, named) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        // An unknown field's path already ends with its name.
        (path, Some(name)) if path.rsplit('.').next() != Some(name) => format!("{path}.{name}"),
        (path, _) => path.to_owned(),
    }
}

/// Whether `bytes` is one well-formed JSON value.
fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// serde's data errors end with " at line L column C", which means nothing to a client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A path parameter that the route template guarantees; its absence is a routing bug.
pub fn path_param(req: &Request, name: &str) -> Result<String, Error> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
        .ok_or_else(|| Error::Internal(format!("route has no path parameter {name}")))
}

/// An id path parameter; one that is not of our id shape names nothing, so 404.
pub fn id_param<T>(
    req: &Request,
    name: &str,
    parse: fn(&str) -> Option<T>,
    what: &'static str,
) -> Result<T, Error> {
    parse(&path_param(req, name)?).ok_or(Error::NotFound(what))
}

/// Refuses query parameters the route does not know, naming the first.
pub fn only_params(req: &Request, allowed: &[&str]) -> Result<(), Error> {
    let unknown = req
        .query_string_parameters_ref()
        .and_then(|q| q.iter().map(|(k, _)| k).find(|k| !allowed.contains(k)));
    match unknown {
        Some(name) => Err(Error::invalid(name, "is not a parameter of this route")),
        None => Ok(()),
    }
}

pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_owned)
}

/// Seals page cursors for clients and opens what clients send back: `base64url(bytes ‖ tag)`,
/// the tag an HMAC-SHA256 under a key derived from a session key, so every instance of every
/// function shares it and no client can edit, craft or truncate a cursor. The domain never sees a
/// key: it reads and writes [`PageCursor`] bytes. Like the session keys it is a ring (one
/// sub-key per session key): the active one seals, every one opens, so rotating the session keys
/// breaks no cursor in flight.
pub struct CursorKey {
    keys: Vec<hmac::Key>,
}

const TAG_LEN: usize = 32;
/// The longest cursor text opened: the bytes the domain reads at most (a nearby search's frontier,
/// `domain::listings::nearby::MAX_CURSOR_BYTES`, 4 KB), sealed.
const MAX_SEALED_LEN: usize = 5600;

impl CursorKey {
    /// The cursor key of this secret (tests).
    pub fn derive(secret: &[u8]) -> Self {
        Self::from_session_keys([&hmac::Key::new(hmac::HMAC_SHA256, secret)])
    }

    /// The cursor keys of session keys (the first seals): each a sub-key (HMAC of a fixed
    /// label), so a cursor tag is never also a valid session signature.
    pub fn from_session_keys<'a>(parents: impl IntoIterator<Item = &'a hmac::Key>) -> Self {
        let keys = parents
            .into_iter()
            .map(|parent| {
                let sub = hmac::sign(parent, b"renji cursor v1");
                hmac::Key::new(hmac::HMAC_SHA256, sub.as_ref())
            })
            .collect();
        CursorKey { keys }
    }

    /// The text a client gets.
    pub fn seal(&self, cursor: &PageCursor) -> String {
        let bytes = cursor.as_bytes();
        let tag = hmac::sign(&self.keys[0], bytes);
        let mut sealed = Vec::with_capacity(bytes.len() + TAG_LEN);
        sealed.extend_from_slice(bytes);
        sealed.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// A client's cursor, if this key sealed it; anything else is a 422 naming `cursor`.
    pub fn open(&self, text: &str) -> Result<PageCursor, Error> {
        let bad = || Error::invalid("cursor", "is not a cursor of this list");
        if text.len() > MAX_SEALED_LEN {
            return Err(bad());
        }
        let sealed = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let split = sealed.len().checked_sub(TAG_LEN).ok_or_else(bad)?;
        let (bytes, tag) = sealed.split_at(split);
        self.keys
            .iter()
            .find(|key| hmac::verify(key, bytes, tag).is_ok())
            .ok_or_else(bad)?;
        Ok(PageCursor::new(bytes.to_vec()))
    }
}

/// `?limit=&cursor=` of a list call, its cursor opened (its seal checked) with the function's
/// key; [`PageRequest::list`] seals the next one.
pub struct PageRequest<'k> {
    pub limit: usize,
    pub cursor: Option<PageCursor>,
    key: &'k CursorKey,
}

impl<'k> PageRequest<'k> {
    /// The page of a list route that takes no other parameters.
    pub fn only(req: &Request, key: &'k CursorKey) -> Result<Self, Error> {
        only_params(req, &["limit", "cursor"])?;
        Self::from_request(req, key)
    }

    pub fn from_request(req: &Request, key: &'k CursorKey) -> Result<Self, Error> {
        let limit = match query_param(req, "limit") {
            None => DEFAULT_PAGE_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => n,
                _ => {
                    return Err(Error::invalid(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_PAGE_LIMIT}"),
                    ))
                }
            },
        };
        let cursor = query_param(req, "cursor")
            .filter(|c| !c.is_empty())
            .map(|c| key.open(&c))
            .transpose()?;
        Ok(PageRequest { limit, cursor, key })
    }

    /// The list answer, with the domain's next cursor sealed.
    pub fn list<T: Serialize>(
        &self,
        items: Vec<T>,
        next: Option<PageCursor>,
    ) -> Result<Response<Body>, Error> {
        ok(&ListResponse {
            items,
            next_cursor: next.map(|c| self.key.seal(&c)),
        })
    }
}

impl PageRequest<'_> {
    /// The list shape with fields of the list's own beside `items` and `next_cursor` (an
    /// object's, e.g. the earnings' `totals`).
    pub fn list_with<T: Serialize>(
        &self,
        head: serde_json::Value,
        items: Vec<T>,
        next: Option<PageCursor>,
    ) -> Result<Response<Body>, Error> {
        let mut body = head;
        body["items"] = serde_json::to_value(items).map_err(|e| Error::Internal(e.to_string()))?;
        body["next_cursor"] = serde_json::json!(next.map(|c| self.key.seal(&c)));
        ok(&body)
    }
}

/// The list shape of api.md: `{"items": [...], "next_cursor": "…" | null}`.
#[derive(Serialize)]
pub struct ListResponse<T: Serialize> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The request's `Idempotency-Key`, if it sent one; a malformed one is a 422 naming the header.
pub fn idempotency_key(req: &Request) -> Result<Option<IdempotencyKey>, Error> {
    req.headers()
        .get(idempotency::HEADER)
        .map(|value| IdempotencyKey::parse(value.as_bytes()))
        .transpose()
}

/// The bearer token of the `Authorization` header, if well-formed.
pub fn bearer_token(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body1 {
        name: String,
        age: Option<u8>,
    }

    fn post(body: &str) -> Request {
        let mut req = Request::new(Body::Text(body.to_owned()));
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        req
    }

    #[test]
    fn json_body_names_the_problem() {
        let err = json_body::<Body1>(&post("{\"name\": 1}"), 1024).unwrap_err();
        assert_eq!(
            err,
            Error::invalid("name", "invalid type: integer `1`, expected a string")
        );
        let err = json_body::<Body1>(&post("{\"name\":\"a\",\"admin\":true}"), 1024).unwrap_err();
        assert!(err.message().contains("unknown field `admin`"), "{err:?}");
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "admin"),
            "{err:?}"
        );
        let err = json_body::<Body1>(&post("{}"), 1024).unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "name"),
            "{err:?}"
        );
        // Not JSON, whatever a field would have said first.
        let err = json_body::<Body1>(&post("{\"admin\":NaN}"), 1024).unwrap_err();
        assert_eq!(err.code(), "malformed_json", "{err:?}");
        let mut patch = post("{\"name\":\"a\"}");
        patch.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json-patch+json"),
        );
        assert_eq!(
            json_body::<Body1>(&patch, 1024).unwrap_err(),
            Error::UnsupportedMediaType
        );
        let mut charset = post("{\"name\":\"a\"}");
        charset.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON ; charset=utf-8"),
        );
        assert!(json_body::<Body1>(&charset, 1024).is_ok());
        for other in [
            "application/json; charset=latin1",
            "application/json;charset=\"utf-16\"",
        ] {
            charset
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(other));
            assert_eq!(
                json_body::<Body1>(&charset, 1024).unwrap_err(),
                Error::UnsupportedMediaType,
                "{other}"
            );
        }
        let err = json_body::<Body1>(&post("{\"name\":"), 1024).unwrap_err();
        assert_eq!(err.code(), "malformed_json");
        let err = json_body::<Body1>(&post("{\"name\":\"a\"} x"), 1024).unwrap_err();
        assert_eq!(err.code(), "malformed_json");
        let err = json_body::<Body1>(&post("{\"name\":\"a\",\"age\":300}"), 1024).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { ref field, .. } if field == "age"),
            "{err:?}"
        );
        let err = json_body::<Body1>(&post(&"x".repeat(2000)), 1024).unwrap_err();
        assert_eq!(err, Error::PayloadTooLarge { limit: 1024 });
        assert!(json_body::<Body1>(&post("{\"name\":\"a\"}"), 1024).is_ok());
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body2 {
        name: Option<String>,
        gender: Option<Choice>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "snake_case")]
    enum Choice {
        Yes,
    }

    #[test]
    fn only_objects_are_bodies() {
        // An array would be read as the fields in order: `[null]` sets `name` to null.
        for body in ["[null]", " [\"a\", null]", "\"a\"", "12", "null", "true"] {
            let err = json_body::<Body2>(&post(body), 1024).unwrap_err();
            assert_eq!(
                err,
                Error::invalid("body", "must be a JSON object"),
                "{body}"
            );
        }
        for body in ["[null", "nul", "'a'"] {
            let err = json_body::<Body2>(&post(body), 1024).unwrap_err();
            assert_eq!(err.code(), "malformed_json", "{body}");
        }
        assert!(json_body::<Body2>(&post(" {\"name\": null}"), 1024).is_ok());
    }

    #[test]
    fn a_body_that_is_not_utf8_is_malformed() {
        let bytes = |body: &[u8]| {
            let mut req = post("");
            *req.body_mut() = Body::Binary(body.to_vec());
            req
        };
        for body in [
            &b"{\"name\": \"\xff\"}"[..],     // a string holding a byte no UTF-8 has
            b"{\"name\": \"\xe5\xbc\"}",      // a character cut short
            b"{\"name\": \"\xed\xa0\x80\"}",  // a surrogate, encoded
            b"{\"name\": \"\xc0\xaf\"}",      // an overlong encoding
            b"{\"gender\": \"\xff\"}",        // an enum's string
            b"{\"\xff\": 1}",                 // a key
            b"\xef\xbb\xbf{\"name\": \"a\"}", // a byte-order mark
        ] {
            let err = json_body::<Body2>(&bytes(body), 1024).unwrap_err();
            assert_eq!(err.code(), "malformed_json", "{body:?}: {err:?}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        let err = no_body(&bytes(b"{\"\xff\": 1}"), 1024).unwrap_err();
        assert_eq!(err.code(), "malformed_json", "{err:?}");
        // The same text as UTF-8 is read.
        assert!(json_body::<Body2>(&bytes("{\"name\": \"张三\"}".as_bytes()), 1024).is_ok());
    }

    #[test]
    fn a_wrong_type_for_an_enum_names_the_field() {
        for body in [
            r#"{"gender": 5}"#,
            r#"{"gender": [1]}"#,
            r#"{"gender": true}"#,
        ] {
            let err = json_body::<Body2>(&post(body), 1024).unwrap_err();
            assert!(
                matches!(err, Error::Invalid { ref field, .. } if field == "gender"),
                "{body}: {err:?}"
            );
        }
        let err = json_body::<Body2>(&post(r#"{"gender": "no"}"#), 1024).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { ref field, .. } if field == "gender"),
            "{err:?}"
        );
        let err = json_body::<Body2>(&post(r#"{"gender": 5"#), 1024).unwrap_err();
        assert_eq!(err.code(), "malformed_json");
    }

    #[test]
    fn cursors_open_only_as_sealed() {
        let key = CursorKey::derive(b"a session secret of at least 32 bytes");
        let cursor = PageCursor::new(br#"{"pk":"A","sk":"B"}"#.to_vec());
        let sealed = key.seal(&cursor);
        assert_eq!(key.open(&sealed), Ok(cursor.clone()));
        assert!(!sealed.contains("pk"), "opaque: {sealed}");

        let refused = |text: &str| {
            assert_eq!(
                key.open(text),
                Err(Error::invalid("cursor", "is not a cursor of this list")),
                "{text}"
            );
        };
        // Every edited character, a truncation, an extension, garbage, and another key's seal.
        for i in 0..sealed.len() {
            let mut edited = sealed.clone().into_bytes();
            edited[i] = if edited[i] == b'A' { b'B' } else { b'A' };
            refused(&String::from_utf8(edited).unwrap());
        }
        refused(&sealed[..sealed.len() - 1]);
        refused(&sealed[..10]);
        refused(&format!("{sealed}AA"));
        refused("");
        refused("not a cursor");
        refused(&"A".repeat(10_000));
        refused(&URL_SAFE_NO_PAD.encode(cursor.as_bytes()));
        let other = CursorKey::derive(b"another session secret of 32 bytes!");
        refused(&other.seal(&cursor));
        // The cursor key is not the session-signing key.
        let session = hmac::Key::new(hmac::HMAC_SHA256, b"a session secret of at least 32 bytes");
        let forged = [
            cursor.as_bytes(),
            hmac::sign(&session, cursor.as_bytes()).as_ref(),
        ]
        .concat();
        refused(&URL_SAFE_NO_PAD.encode(forged));
    }

    #[test]
    fn idempotency_keys_are_read_from_their_header() {
        let with = |v: &[u8]| {
            let mut r = Request::new(Body::Empty);
            r.headers_mut().insert(
                idempotency::HEADER,
                HeaderValue::from_bytes(v).expect("header value"),
            );
            r
        };
        assert_eq!(idempotency_key(&Request::new(Body::Empty)), Ok(None));
        assert_eq!(
            idempotency_key(&with(b"order-1"))
                .unwrap()
                .unwrap()
                .as_str(),
            "order-1"
        );
        for bad in [&b""[..], "é".as_bytes(), &[b'k'; 65]] {
            let err = idempotency_key(&with(bad)).unwrap_err();
            assert!(
                matches!(&err, Error::Invalid { field, .. } if field == "Idempotency-Key"),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        let with = |v: &'static str| {
            let mut r = Request::new(Body::Empty);
            r.headers_mut()
                .insert(header::AUTHORIZATION, HeaderValue::from_static(v));
            r
        };
        assert_eq!(bearer_token(&with("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&with("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&with("Basic abc")), None);
        assert_eq!(bearer_token(&with("Bearer ")), None);
        assert_eq!(bearer_token(&Request::new(Body::Empty)), None);
    }
}
