//! The local server's static pages, beside the API: the staff console at `/console/` and the API
//! reference at `/docs/` (Swagger UI over `openapi.yaml`). Both are the files `console/build.mjs`
//! writes into `console/dist/` (`scripts/local` and `scripts/test` build them); `openapi.yaml` is
//! the one compiled into this binary, so the page documents exactly the server that serves it.
//! `RENJI_CONSOLE_DIST` names another build folder.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::Full;

use crate::http_server::{HttpRequest, HttpResponse};

pub const OPENAPI: &str = include_str!("../../openapi.yaml");

/// The two prefixes served here; every other path is the API's.
pub fn is_static(path: &str) -> bool {
    ["/console", "/docs"].iter().any(|p| {
        path == *p
            || path
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// `console/dist` of this checkout, unless `RENJI_CONSOLE_DIST` says otherwise.
pub fn dist_dir() -> PathBuf {
    std::env::var_os("RENJI_CONSOLE_DIST")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../console/dist"))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "json" => "application/json; charset=utf-8",
        "yaml" => "application/yaml; charset=utf-8",
        "map" => "application/json; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn response(status: u16, content_type: &str, body: Bytes) -> HttpResponse {
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-cache")
        .header("x-content-type-options", "nosniff")
        .body(Full::new(body))
        .unwrap_or_default()
}

fn text(status: u16, message: &str) -> HttpResponse {
    response(
        status,
        "text/plain; charset=utf-8",
        Bytes::from(format!("{message}\n")),
    )
}

/// A GET (or HEAD) of `/console/…` or `/docs/…`.
pub fn serve(dist: &Path, req: &HttpRequest) -> HttpResponse {
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        let mut r = text(405, "only GET");
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    let path = req.uri().path();
    // `/console` → `/console/`: the pages' relative links need the slash.
    if path == "/console" || path == "/docs" {
        let mut r = text(308, "moved");
        if let Ok(location) = hyper::header::HeaderValue::from_str(&format!("{path}/")) {
            r.headers_mut().insert(hyper::header::LOCATION, location);
        }
        return r;
    }
    if path == "/docs/openapi.yaml" {
        return response(
            200,
            content_type("openapi.yaml"),
            Bytes::from_static(OPENAPI.as_bytes()),
        );
    }
    let relative = path.trim_start_matches('/');
    let relative = if relative.ends_with('/') {
        format!("{relative}index.html")
    } else {
        relative.to_owned()
    };
    // Plain names only: no `..`, no hidden files, nothing a browser would not ask for.
    let safe = relative.split('/').all(|segment| {
        !segment.is_empty()
            && !segment.starts_with('.')
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    });
    if !safe {
        return text(404, "not found");
    }
    let file = dist.join(&relative);
    match std::fs::read(&file) {
        Ok(bytes) => {
            let mut r = response(200, content_type(&relative), Bytes::from(bytes));
            if relative.starts_with("console/") {
                // The console runs only its own script and talks only to this origin.
                r.headers_mut().insert(
                    "content-security-policy",
                    hyper::header::HeaderValue::from_static(
                        "default-src 'none'; script-src 'self'; style-src 'self'; \
                         img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                         base-uri 'none'; frame-ancestors 'none'",
                    ),
                );
            }
            r
        }
        Err(_) if !dist.join("console/index.html").exists() => text(
            404,
            &format!(
                "the console is not built in {}: run `npm --prefix console ci && npm --prefix console run build` (scripts/local does)",
                dist.display()
            ),
        ),
        Err(_) => text(404, "not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_prefixes_are_static() {
        assert!(is_static("/console"));
        assert!(is_static("/console/app.js"));
        assert!(is_static("/docs/"));
        assert!(!is_static("/consoles"));
        assert!(!is_static("/v1/me"));
        assert!(!is_static("/admin/v1/me"));
    }

    #[test]
    fn the_spec_served_is_the_repositorys() {
        assert!(OPENAPI.starts_with("openapi: 3"), "{}", &OPENAPI[..40]);
    }
}
