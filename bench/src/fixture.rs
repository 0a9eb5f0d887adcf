//! What a benchmark run sets up before measuring: an application over a given store (the
//! functions' own state, built as `App::from_env` would), a logged-in member and fresh sessions.

use std::collections::HashMap;

use bytes::Bytes;
use renji_shared::config::Config;
use renji_shared::ids::UserId;
use renji_shared::store::DynStore;
use renji_shared::App;
use serde_json::Value;

use crate::events::{self, Ids, RouteEvent};

/// The session secret of every benchmark run (the functions are given the same one).
pub const SECRET: &str = "renji-bench-session-secret-0123456789abcdef";

/// The variables a function of `template.yaml` gets in the benchmark, by name.
pub fn function_env(table: &str, wechat_base: &str) -> HashMap<&'static str, String> {
    HashMap::from([
        ("RENJI_TABLE", table.to_owned()),
        ("RENJI_SESSION_SECRET", SECRET.to_owned()),
        ("RUST_LOG", "info".to_owned()),
        (
            "WECHAT_APPID",
            renji_local::sandbox::wechat::APPID.to_owned(),
        ),
        (
            "WECHAT_SECRET",
            renji_local::sandbox::wechat::SECRET.to_owned(),
        ),
        ("WECHAT_API_BASE", wechat_base.to_owned()),
    ])
}

/// The functions' state over `store`, configured as the benchmarked functions are.
pub fn app(store: DynStore, table: &str, wechat_base: &str) -> Result<App, String> {
    let env = function_env(table, wechat_base);
    let config = Config::from_lookup(|name| env.get(name).cloned()).map_err(|e| e.to_string())?;
    App::new(config, store).map_err(|e| e.to_string())
}

/// A logged-in member: their token and the ids events need.
pub struct Member {
    pub user_id: UserId,
    pub token: String,
    pub ids: Ids,
}

/// Runs the handler of `route`'s function on `event`; the status and JSON body.
pub async fn invoke(app: &App, route: &RouteEvent, event: &Value) -> Result<(u16, Value), String> {
    let req = lambda_http::request::from_str(&event.to_string())
        .map_err(|e| format!("{}: not an API Gateway event: {e}", route.name))?;
    let response = renji_local::functions::invoke(&route.function, app, req)
        .await
        .ok_or_else(|| format!("no function {} in renji-local", route.function))?;
    Ok(events::status_and_body(&response))
}

/// Logs in through the login route's handler with its sample event (a sandbox member).
pub async fn login(app: &App, routes: &[RouteEvent]) -> Result<Member, String> {
    let login = routes
        .iter()
        .find(|r| r.route == "POST /v1/auth/wechat")
        .ok_or("template.yaml has no POST /v1/auth/wechat")?;
    let (status, body) = invoke(app, login, &login.event).await?;
    if status != 200 {
        return Err(format!("login answered {status}: {body}"));
    }
    let token = body["token"]
        .as_str()
        .ok_or("login without token")?
        .to_owned();
    let id = body["user"]["id"].as_str().ok_or("login without user id")?;
    let user_id = UserId::parse(id).ok_or("login returned a bad user id")?;
    let ids = Ids::from([("users".to_owned(), id.to_owned())]);
    let mut member = Member {
        user_id,
        token,
        ids,
    };
    member.create_objects(app, routes).await?;
    Ok(member)
}

impl Member {
    /// For every path like `/v1/listings/{id}` naming a collection the run has no object of, one
    /// object made through the collection's `POST /v1/listings` route with its sample event.
    async fn create_objects(&mut self, app: &App, routes: &[RouteEvent]) -> Result<(), String> {
        for route in routes {
            let path = route.route.split_once(' ').map(|(_, p)| p).unwrap_or("");
            let Some((collection_path, _)) = path.split_once("/{") else {
                continue;
            };
            let collection = collection_path.rsplit('/').next().unwrap_or("").to_owned();
            if self.ids.contains_key(&collection) {
                continue;
            }
            let create_key = format!("POST {collection_path}");
            let create = routes.iter().find(|r| r.route == create_key).ok_or_else(|| {
                format!(
                    "{} needs a {collection} object, and template.yaml has no {create_key} to make one \
                     (teach bench/src/fixture.rs how)",
                    route.route
                )
            })?;
            let event = events::prepare(create, Some(&self.token), &self.ids)?;
            let (status, body) = invoke(app, create, &event).await?;
            let id = body["id"].as_str().filter(|_| (200..300).contains(&status));
            let id = id.ok_or_else(|| {
                format!("{create_key} (to make a {collection} object) answered {status}: {body}")
            })?;
            self.ids.insert(collection, id.to_owned());
        }
        Ok(())
    }

    /// A new session of this member, recorded in `app`'s store.
    pub async fn fresh_token(&self, app: &App) -> Result<String, String> {
        let (token, _) = renji_shared::session::start(&app.store, &app.tokens, &self.user_id, 3600)
            .await
            .map_err(|e| e.to_string())?;
        Ok(token)
    }

    /// `route`'s event for this member, with a fresh session when the route consumes it.
    pub async fn event(&self, app: &App, route: &RouteEvent) -> Result<Value, String> {
        let token = if route.consumes_session() {
            self.fresh_token(app).await?
        } else {
            self.token.clone()
        };
        events::prepare(route, Some(&token), &self.ids)
    }

    pub async fn event_bytes(&self, app: &App, route: &RouteEvent) -> Result<Bytes, String> {
        Ok(Bytes::from(self.event(app, route).await?.to_string()))
    }
}
