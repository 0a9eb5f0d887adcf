//! Per-client rate limits, one budget per client shared by every instance of every function
//! because it is kept in the store.
//!
//! Each route declares its [`Limit`] once, in its function's route table ([`Route`]), and
//! [`serve`] applies it before the handler runs. A limited request makes one conditional write:
//! the fixed-window counter `RATE#<class>#<subject>` / `<window start, epoch seconds>`
//! ([`keys::rate_counter`]), whose `n` grows by one under the condition `n < max`, with `ttl`
//! just after the window's end. The call that would go over the limit fails that condition, so
//! it writes nothing, and is answered 429 with `Retry-After` = the seconds left in the window. A store that fails, throttles or does not
//! answer within [`STORE_TIMEOUT`] lets the request through with a warning in the log: the limiter
//! never turns a request into a 5xx.
//!
//! The subject is the member for member routes (the signed token's member; a request without a
//! valid token is refused by the handler before any I/O, so it is not counted), and for routes
//! anyone may call the member when a valid token is sent, else the source IP (an IPv6 address
//! counts by its /64, which one client usually holds whole).

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use time::OffsetDateTime;

use crate::app::App;
use crate::error::Error;
use crate::http::{bearer_token, respond, route_key};
use crate::staff::StaffRole;
use crate::store::schema::TABLE;
use crate::store::{keys, Condition, StoreError, Write};

/// How long a request waits for its counter before going on without it.
pub const STORE_TIMEOUT: Duration = Duration::from_millis(500);

/// A counter outlives its window by this much, so DynamoDB's TTL removes it soon after.
const TTL_MARGIN_SECS: i64 = 60;

/// The budgets routes share; each has its own limit in `RENJI_RATE_LIMITS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// `POST /v1/auth/wechat`: each call costs a WeChat exchange.
    Login,
    /// Listing and member lists anyone may read (browse, search, nearby, a member's listings,
    /// followers): each is one or more queries.
    Browse,
    /// Verification submissions: each costs a paid check.
    Verify,
    /// Recording a share.
    Share,
    /// Every other member write.
    Write,
}

impl Class {
    pub const ALL: [Class; 5] = [
        Class::Login,
        Class::Browse,
        Class::Verify,
        Class::Share,
        Class::Write,
    ];

    /// Its name in `RENJI_RATE_LIMITS` and in counter keys.
    pub fn name(self) -> &'static str {
        match self {
            Class::Login => "login",
            Class::Browse => "browse",
            Class::Verify => "verify",
            Class::Share => "share",
            Class::Write => "write",
        }
    }

    /// The limit when `RENJI_RATE_LIMITS` does not name the class.
    pub fn default_rate(self) -> Rate {
        let (max, window_secs) = match self {
            // Mini-program clients log in silently at launch, often many behind one carrier NAT.
            Class::Login => (30, 60),
            Class::Browse => (300, 60),
            Class::Verify => (10, 3600),
            Class::Share => (60, 60),
            Class::Write => (60, 60),
        };
        Rate { max, window_secs }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// At most `max` calls per fixed window of `window_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub max: u32,
    pub window_secs: u32,
}

/// Longest window accepted (a day).
const MAX_WINDOW_SECS: u32 = 86_400;

/// The limit of each class (`None`: not limited), from `RENJI_RATE_LIMITS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimits {
    rates: [Option<Rate>; Class::ALL.len()],
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            rates: Class::ALL.map(|c| Some(c.default_rate())),
        }
    }
}

impl RateLimits {
    /// No limits (`RENJI_RATE_LIMITS=off`: load tests, benchmarks).
    pub fn off() -> Self {
        RateLimits {
            rates: [None; Class::ALL.len()],
        }
    }

    /// `off`, or comma-separated `class=max/window_secs` or `class=off`; classes not named keep
    /// their default. Unset or empty: every default.
    pub fn parse(text: Option<&str>) -> Result<Self, String> {
        let text = text.map(str::trim).unwrap_or_default();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self::off());
        }
        let mut limits = Self::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, value) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry}: each entry is class=max/seconds or class=off"))?;
            let class = Class::ALL
                .into_iter()
                .find(|c| c.name() == name.trim())
                .ok_or_else(|| {
                    let names: Vec<&str> = Class::ALL.iter().map(|c| c.name()).collect();
                    format!("{name}: not a class (one of {})", names.join(", "))
                })?;
            let value = value.trim();
            limits.rates[class.index()] = if value.eq_ignore_ascii_case("off") {
                None
            } else {
                let bad = || format!("{entry}: the limit is max/seconds, e.g. 60/60");
                let (max, secs) = value.split_once('/').ok_or_else(bad)?;
                let max: u32 = max.trim().parse().map_err(|_| bad())?;
                let window_secs: u32 = secs.trim().parse().map_err(|_| bad())?;
                if max == 0 || !(1..=MAX_WINDOW_SECS).contains(&window_secs) {
                    return Err(format!(
                        "{entry}: max is at least 1 and the window 1 to {MAX_WINDOW_SECS} seconds"
                    ));
                }
                Some(Rate { max, window_secs })
            };
        }
        Ok(limits)
    }

    pub fn rate(&self, class: Class) -> Option<Rate> {
        self.rates[class.index()]
    }
}

/// How one route is limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Counted per member (the signed token's).
    Member(Class),
    /// Counted per member when a valid token is sent, else per source IP.
    Anyone(Class),
    /// Not limited: member reads and single-item reads, which are one read each (the counter's
    /// write would cost more than they do; API Gateway's stage throttle bounds them), and
    /// provider webhooks, whose signatures are the gate.
    Unlimited,
}

/// Who may call a route, checked at the edge before the handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Nothing is checked here: a member route's handler authenticates the member (as every
    /// member route has from the start), a route anyone may call reads an optional token.
    Public,
    /// A staff route ([`crate::staff::guard`]): a live staff session whose role is one of
    /// `roles`, and an audit record of the call (`audited: false` only for reading one's own
    /// session).
    Staff {
        roles: &'static [StaffRole],
        audited: bool,
    },
}

/// One row of a function's route table: the API Gateway route key, how it is limited and who may
/// call it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub key: &'static str,
    pub limit: Limit,
    pub access: Access,
    /// A write that takes query parameters: a provider's push whose signature is in its query
    /// (WeChat's message push). Every other write takes none.
    pub query_on_write: bool,
}

impl Route {
    pub const fn member(key: &'static str, class: Class) -> Self {
        Route {
            key,
            limit: Limit::Member(class),
            access: Access::Public,
            query_on_write: false,
        }
    }

    pub const fn anyone(key: &'static str, class: Class) -> Self {
        Route {
            key,
            limit: Limit::Anyone(class),
            access: Access::Public,
            query_on_write: false,
        }
    }

    pub const fn unlimited(key: &'static str) -> Self {
        Route {
            key,
            limit: Limit::Unlimited,
            access: Access::Public,
            query_on_write: false,
        }
    }

    /// A staff route for `roles`, audited. Not rate limited: only signed-in staff get past the
    /// edge, and each call is on the audit trail.
    pub const fn staff(key: &'static str, roles: &'static [StaffRole]) -> Self {
        Route {
            key,
            limit: Limit::Unlimited,
            access: Access::Staff {
                roles,
                audited: true,
            },
            query_on_write: false,
        }
    }

    pub fn is_staff(&self) -> bool {
        matches!(self.access, Access::Staff { .. })
    }

    /// A staff route any role may call that reads only the caller's own session
    /// (`GET /admin/v1/me`, which the console calls on every page): not audited.
    pub const fn own_staff_session(key: &'static str) -> Self {
        Route {
            key,
            limit: Limit::Unlimited,
            access: Access::Staff {
                roles: &StaffRole::ALL,
                audited: false,
            },
            query_on_write: false,
        }
    }

    /// A provider's push whose signature comes in the query string (WeChat's message push):
    /// unlimited, public, its query read by its handler.
    pub const fn push(key: &'static str) -> Self {
        Route {
            key,
            limit: Limit::Unlimited,
            access: Access::Public,
            query_on_write: true,
        }
    }
}

/// Runs one request of a function whose routes are `routes`: the route's limit, the staff check
/// of a staff route, then `handler`, with the logging and error mapping of [`respond`].
pub async fn serve<F, Fut>(app: &App, routes: &[Route], req: Request, handler: F) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, Error>>,
{
    respond(req, |req| async move {
        let route = route_key(&req).and_then(|key| routes.iter().find(|r| r.key == key));
        let limit = route.map_or(Limit::Unlimited, |r| r.limit);
        let query = query_rules(&req, route.is_some_and(|r| r.query_on_write));
        if let (Err(e), false) = (&query, route.is_some_and(Route::is_staff)) {
            // Who is calling is answered first, as on every route: a member route without a
            // good session is 401 whatever its query says.
            // (Only its 401: a function without session keys, a webhook's, has no session to
            // check, and an outage is not this request's answer.)
            if matches!(limit, Limit::Member(_)) || bearer_token(&req).is_some() {
                if let Err(refused @ Error::Unauthorized(_)) = app.authenticate(&req).await {
                    return Err(refused);
                }
            }
            return Err(e.clone());
        }
        check(app, limit, &req).await?;
        match route {
            // A staff route's query is judged after its session and role, inside the guard, so
            // the refusal is audited like any other.
            Some(Route {
                key,
                access: Access::Staff { roles, audited },
                ..
            }) => {
                let handler = |req| async move {
                    query?;
                    handler(req).await
                };
                crate::staff::guard(app, key, roles, *audited, req, handler).await
            }
            _ => {
                // A read judges its query in its handler, first; a caller whose session is no
                // good is still answered 401 whatever the query, as a write's is above (the
                // session read only when the handler refused the request).
                let read_by = match *req.method() {
                    lambda_http::http::Method::GET => req
                        .headers()
                        .get(lambda_http::http::header::AUTHORIZATION)
                        .cloned(),
                    _ => None,
                };
                match (handler(req).await, read_by) {
                    (Err(refused @ Error::Invalid { .. }), Some(authorization)) => {
                        let mut caller = Request::new(Body::Empty);
                        caller
                            .headers_mut()
                            .insert(lambda_http::http::header::AUTHORIZATION, authorization);
                        match app.authenticate(&caller).await {
                            Err(unauthorized @ Error::Unauthorized(_)) => Err(unauthorized),
                            _ => Err(refused),
                        }
                    }
                    (answer, _) => answer,
                }
            }
        }
    })
    .await
}

/// What holds for every route's query string, before its handler reads it: a parameter is given
/// at most once (`?limit=1&limit=2` is ambiguous), and a write (POST, PUT, PATCH, DELETE) takes
/// none — no write of the API has one, so `POST /v1/tickets?kind=privacy` is a client's mistake
/// to name, not to ignore. Each read route names the parameters it knows itself
/// ([`only_params`](crate::http::only_params)).
fn query_rules(req: &Request, query_on_write: bool) -> Result<(), Error> {
    let Some(query) = req.query_string_parameters_ref() else {
        return Ok(());
    };
    let mut names: Vec<&str> = query.iter().map(|(k, _)| k).collect();
    if let Some(name) = names
        .iter()
        .find(|n| query.all(n).is_some_and(|v| v.len() > 1))
    {
        return Err(Error::invalid(name, "is given more than once"));
    }
    let write = !query_on_write
        && !matches!(
            *req.method(),
            lambda_http::http::Method::GET | lambda_http::http::Method::HEAD
        );
    names.sort_unstable();
    match names.first() {
        Some(name) if write => Err(Error::invalid(
            name,
            "is not a parameter of this route (a write takes its input in the body)",
        )),
        _ => Ok(()),
    }
}

/// Counts one call of `req` against `limit`: `Err(TooManyRequests)` over the limit, `Ok`
/// otherwise, including when the store fails.
pub async fn check(app: &App, limit: Limit, req: &Request) -> Result<(), Error> {
    let (class, members_only) = match limit {
        Limit::Unlimited => return Ok(()),
        Limit::Member(class) => (class, true),
        Limit::Anyone(class) => (class, false),
    };
    let Some(rate) = app.config.rate_limits.rate(class) else {
        return Ok(());
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let Some(subject) = subject(app, req, members_only, now).await else {
        return Ok(());
    };
    let window = i64::from(rate.window_secs);
    let start = now - now.rem_euclid(window);
    let end = start + window;
    let count = Write::update(keys::rate_counter(class.name(), &subject, start))
        .add("n", 1)
        .set(TABLE.ttl_attribute, json!(end + TTL_MARGIN_SECS))
        .condition(
            Condition::Under("n".into(), i64::from(rate.max)),
            "rate_limit",
        )
        .build();
    match tokio::time::timeout(STORE_TIMEOUT, app.store.write(count)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(StoreError::ConditionFailed { .. })) => {
            tracing::info!(class = class.name(), "rate limited");
            Err(Error::TooManyRequests {
                retry_after_secs: (end - now).unsigned_abs().max(1),
            })
        }
        Ok(Err(e)) => {
            tracing::warn!(class = class.name(), error = %e, "rate limiter unavailable; request let through");
            Ok(())
        }
        Err(_) => {
            tracing::warn!(
                class = class.name(),
                "rate limiter timed out; request let through"
            );
            Ok(())
        }
    }
}

/// Whom a call counts against; `None` when nobody can be named (the call is not counted).
async fn subject(app: &App, req: &Request, members_only: bool, now: i64) -> Option<String> {
    // Session keys that cannot be read name nobody here; the handler answers 503 for them.
    let member = match bearer_token(req) {
        Some(token) => app
            .tokens()
            .await
            .ok()
            .and_then(|keys| keys.verify(token, now).ok()),
        None => None,
    };
    match (member, members_only) {
        (Some(claims), _) => Some(claims.user_id.to_string()),
        (None, true) => None,
        (None, false) => {
            let ip = source_ip(req);
            if ip.is_none() {
                tracing::warn!("request without a source IP; not rate limited");
            }
            ip.map(|ip| format!("ip:{}", client_prefix(ip)))
        }
    }
}

/// The caller's address as API Gateway saw it (`requestContext.http.sourceIp`).
pub fn source_ip(req: &Request) -> Option<IpAddr> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref()?.parse().ok(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// What one client holds: an IPv4 address, or an IPv6 /64 (an IPv4-mapped IPv6 address counts as
/// its IPv4 address).
pub fn client_prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_defaults_and_off() {
        let defaults = RateLimits::parse(None).unwrap();
        assert_eq!(defaults, RateLimits::default());
        assert_eq!(RateLimits::parse(Some(" ")).unwrap(), defaults);
        for class in Class::ALL {
            assert_eq!(defaults.rate(class), Some(class.default_rate()));
        }
        let off = RateLimits::parse(Some("OFF")).unwrap();
        assert!(Class::ALL.iter().all(|c| off.rate(*c).is_none()));

        let custom = RateLimits::parse(Some("login=5/10, share=off,write = 2/3600")).unwrap();
        assert_eq!(
            custom.rate(Class::Login),
            Some(Rate {
                max: 5,
                window_secs: 10
            })
        );
        assert_eq!(custom.rate(Class::Share), None);
        assert_eq!(
            custom.rate(Class::Write),
            Some(Rate {
                max: 2,
                window_secs: 3600
            })
        );
        assert_eq!(
            custom.rate(Class::Browse),
            Some(Class::Browse.default_rate())
        );

        for bad in [
            "login",
            "login=5",
            "login=0/60",
            "login=5/0",
            "login=5/86401",
            "login=-1/60",
            "login=a/b",
            "webhook=5/60",
        ] {
            assert!(RateLimits::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_prefix(a), "2001:db8:1:2::/64");
        assert_eq!(client_prefix(a), client_prefix(b));
        assert_ne!(client_prefix(a), client_prefix(other));
        assert_eq!(client_prefix("203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(
            client_prefix("::ffff:203.0.113.7".parse().unwrap()),
            "203.0.113.7"
        );
    }
}
