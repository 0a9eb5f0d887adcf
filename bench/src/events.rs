//! The sample events of `events/` (one per route), made real for a benchmark run: the bearer
//! token of a logged-in member and the ids of the objects the path names are put in, as
//! `tests/handlers.rs` does.

use std::collections::BTreeMap;
use std::path::Path;

use renji_local::template::Template;
use serde_json::{json, Value};

/// A route of `template.yaml` with its sample event.
#[derive(Clone, Debug)]
pub struct RouteEvent {
    /// `GET /v1/users/{id}`.
    pub route: String,
    /// The function's logical id, e.g. `UsersFunction`.
    pub function: String,
    /// The file name without `.json`.
    pub name: String,
    pub event: Value,
}

impl RouteEvent {
    pub fn method(&self) -> &str {
        self.route.split(' ').next().unwrap_or("")
    }

    pub fn needs_token(&self) -> bool {
        self.event["headers"].get("authorization").is_some()
    }

    /// A scheduled function's run (`SCHEDULE <binary>`), not an HTTP route.
    pub fn is_scheduled(&self) -> bool {
        self.method() == SCHEDULE
    }

    /// Logout revokes the session it is called with: every call needs a fresh one.
    pub fn consumes_session(&self) -> bool {
        self.route.ends_with("/logout")
    }
}

/// The "method" of a scheduled function's run: `SCHEDULE order-jobs`.
pub const SCHEDULE: &str = "SCHEDULE";

/// Every template route with its event, sorted by route, then each scheduled function's run
/// (`SCHEDULE <binary>`, with its `events/<binary>-schedule.json`); routes without an event are
/// an error (the drift tests require one per route).
pub fn load(root: &Path) -> Result<Vec<RouteEvent>, String> {
    let mut by_route: BTreeMap<String, (String, Value)> = BTreeMap::new();
    let dir = root.join("events");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let event: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if event["detail-type"] == "Scheduled Event" {
            // A scheduled function's event: no route.
            continue;
        }
        let route = event["routeKey"]
            .as_str()
            .ok_or_else(|| format!("{}: no routeKey", path.display()))?
            .to_owned();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        by_route.insert(route, (name, event));
    }
    let template = Template::load()?;
    let mut routes = template
        .routes()
        .into_iter()
        .map(|r| {
            let (name, event) = by_route
                .get(&r.key())
                .cloned()
                .ok_or_else(|| format!("no sample event in events/ for {}", r.key()))?;
            Ok(RouteEvent {
                route: r.key(),
                function: r.function,
                name,
                event,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let binaries = template.function_binaries();
    for (function, _) in template.schedules() {
        let binary = binaries
            .get(&function)
            .ok_or_else(|| format!("{function} has no binary"))?;
        let name = format!("{binary}-schedule");
        let path = dir.join(format!("{name}.json"));
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let event = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        routes.push(RouteEvent {
            route: format!("{SCHEDULE} {binary}"),
            function,
            name,
            event,
        });
    }
    Ok(routes)
}

/// The ids a run has created, by the path segment that names their collection (`users` → a
/// member id), to fill in path parameters such as `/v1/users/{id}`.
pub type Ids = BTreeMap<String, String>;

/// `event` with `token` as its bearer token (if it carries one) and its path parameters filled
/// in from `ids`; an error names a parameter the run has no object for.
pub fn prepare(route: &RouteEvent, token: Option<&str>, ids: &Ids) -> Result<Value, String> {
    let mut event = route.event.clone();
    if let (Some(token), Some(_)) = (token, event["headers"].get("authorization")) {
        event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    }
    let template_path = route.route.split_once(' ').map(|(_, p)| p).unwrap_or("");
    if !template_path.contains('{') {
        return Ok(event);
    }
    let mut path = Vec::new();
    let mut collection = "";
    for segment in template_path.split('/') {
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => {
                // `{listing_id}` names a listing, `{user_id}` another member to follow; `{id}`
                // an object of the collection before it.
                let kind = match param {
                    "listing_id" => "listings",
                    "user_id" => "others",
                    _ => collection,
                };
                let id = ids.get(kind).ok_or_else(|| {
                    format!(
                        "{}: the benchmark has no {kind} object for {{{param}}}",
                        route.route
                    )
                })?;
                event["pathParameters"][param] = json!(id);
                path.push(id.as_str());
            }
            None => {
                collection = segment;
                path.push(segment);
            }
        }
    }
    let path = path.join("/");
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    Ok(event)
}

/// The login event's body with another sandbox member's code: a first login.
pub fn with_login_code(event: &Value, code: &str) -> Value {
    let mut event = event.clone();
    let body = json!({ "code": code }).to_string();
    event["headers"]["content-length"] = json!(body.len().to_string());
    event["body"] = json!(body);
    event
}

/// The HTTP status and JSON body of a handler's response.
pub fn status_and_body(response: &lambda_http::Response<lambda_http::Body>) -> (u16, Value) {
    let body = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (response.status().as_u16(), body)
}
