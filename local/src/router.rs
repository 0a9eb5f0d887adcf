//! Matches a request's method and path to a template route, as API Gateway does: literal
//! segments must match, `{name}` captures one non-empty segment.

use std::collections::HashMap;

use crate::template::Route;

pub enum Match<'a> {
    Found(&'a Route, HashMap<String, String>),
    /// The path exists for other methods: these (for the `Allow` header of the 405).
    WrongMethod(Vec<String>),
    NotFound,
}

pub fn find<'a>(routes: &'a [Route], method: &str, path: &str) -> Match<'a> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut allowed = Vec::new();
    for route in routes {
        let Some(params) = match_path(&route.path, &segments) else {
            continue;
        };
        if route.method == method {
            return Match::Found(route, params);
        }
        allowed.push(route.method.clone());
    }
    if allowed.is_empty() {
        Match::NotFound
    } else {
        allowed.sort();
        allowed.dedup();
        Match::WrongMethod(allowed)
    }
}

fn match_path(template: &str, segments: &[&str]) -> Option<HashMap<String, String>> {
    let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = HashMap::new();
    for (part, segment) in parts.iter().zip(segments) {
        match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) if !segment.is_empty() => {
                let decoded = percent_decode(segment)?;
                params.insert(name.to_owned(), decoded);
            }
            Some(_) => return None,
            None if part == segment => {}
            None => return None,
        }
    }
    Some(params)
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> Route {
        Route {
            method: method.into(),
            path: path.into(),
            function: "F".into(),
        }
    }

    #[test]
    fn matches_literals_and_parameters() {
        let routes = vec![
            route("GET", "/v1/me"),
            route("PATCH", "/v1/me"),
            route("GET", "/v1/users/{id}"),
        ];
        match find(&routes, "GET", "/v1/users/u_1%20x") {
            Match::Found(r, p) => {
                assert_eq!(r.path, "/v1/users/{id}");
                assert_eq!(p["id"], "u_1 x");
            }
            _ => panic!("no match"),
        }
        assert!(matches!(find(&routes, "GET", "/v1/me"), Match::Found(..)));
        match find(&routes, "POST", "/v1/me") {
            Match::WrongMethod(allowed) => assert_eq!(allowed, ["GET", "PATCH"]),
            _ => panic!("not a wrong method"),
        }
        assert!(matches!(
            find(&routes, "GET", "/v1/users/"),
            Match::NotFound
        ));
        assert!(matches!(
            find(&routes, "GET", "/v1/users/a/b"),
            Match::NotFound
        ));
        assert!(matches!(find(&routes, "GET", "/v1/mee"), Match::NotFound));
    }
}
