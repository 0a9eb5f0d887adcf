//! Staff of the console: their roles, their sessions, and the request edge of staff routes.
//!
//! Sign-in: the console shows WeCom's QR login; WeCom hands it a `code`, which
//! `POST /admin/v1/auth/wecom` exchanges (`wecom.rs`) for the company member's userid. The role
//! comes from `RENJI_STAFF_ROLES` ([`RoleMap`]); nobody without one gets a session (403
//! `not_staff`). A session is a record ([`StaffSession`], `STAFF#<userid> / SESSION#<sid>`) and a
//! token naming it, signed with sub-keys of the session keys ([`STAFF_TOKEN_LABEL`]), so a
//! member's token is never a staff token, nor the reverse. Every staff request reads the record:
//! signing out deletes it, and the token dies with it; it lasts `RENJI_STAFF_SESSION_SECS`.
//!
//! A staff route is declared `Route::staff(key, roles)`: [`guard`] authenticates the caller before
//! the handler runs (401 without a live staff session), refuses a role the route does not list
//! (403 `forbidden_role`), puts the caller in the request ([`caller`]), and writes the audit
//! record of the action whatever its outcome.

use std::collections::BTreeMap;
use std::future::Future;

use lambda_http::http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::app::App;
use crate::domain::audit::{self, AuditRecord};
use crate::error::Error;
use crate::http::{bearer_token, body_bytes};
use crate::ids::{random_token, StaffId};
use crate::session::TokenSigner;
use crate::store::{keys, Condition, Record, Records, Write};
use crate::wecom::not_staff;

/// What the session keys are derived with for staff tokens.
pub const STAFF_TOKEN_LABEL: &[u8] = b"renji staff token v1";

/// A staff member's role. Roles are distinct grants, not a ladder: each route lists the roles it
/// allows (the README's table). The order only ranks them for [`RoleMap::resolve`], where a
/// member of several departments gets the highest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    Support,
    Moderator,
    Admin,
}

impl StaffRole {
    pub const ALL: [StaffRole; 3] = [StaffRole::Support, StaffRole::Moderator, StaffRole::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Support => "support",
            StaffRole::Moderator => "moderator",
            StaffRole::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// `RENJI_STAFF_ROLES`: `user:<userid>=<role>` and `dept:<department id>=<role>` entries,
/// comma-separated. A user's own entry wins over their departments'; among departments, the
/// highest role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleMap {
    users: BTreeMap<StaffId, StaffRole>,
    departments: BTreeMap<u64, StaffRole>,
}

impl RoleMap {
    /// Unset or empty: nobody is staff. Errors name the entry (never a secret: this is not one).
    pub fn parse(text: Option<&str>) -> Result<Self, String> {
        let mut map = RoleMap::default();
        for entry in text
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let bad = |why: &str| format!("{entry}: {why}");
            let (who, role) = entry
                .split_once('=')
                .ok_or_else(|| bad("each entry is user:<userid>=<role> or dept:<id>=<role>"))?;
            let role = StaffRole::parse(role.trim())
                .ok_or_else(|| bad("the role is support, moderator or admin"))?;
            let (kind, id) = who
                .trim()
                .split_once(':')
                .ok_or_else(|| bad("each entry is user:<userid>=<role> or dept:<id>=<role>"))?;
            let duplicate = match kind {
                "user" => {
                    let id = StaffId::parse(id)
                        .ok_or_else(|| bad("not a WeCom userid (1-64 of A-Z a-z 0-9 _ - @ .)"))?;
                    map.users.insert(id, role).is_some()
                }
                "dept" => {
                    let id: u64 = id
                        .parse()
                        .map_err(|_| bad("a department id is a whole number"))?;
                    map.departments.insert(id, role).is_some()
                }
                _ => return Err(bad("each entry starts with user: or dept:")),
            };
            if duplicate {
                return Err(bad("named twice"));
            }
        }
        Ok(map)
    }

    /// Whether the role of `userid` depends on their departments (so WeCom must be asked).
    pub fn needs_departments(&self, userid: &StaffId) -> bool {
        !self.users.contains_key(userid) && !self.departments.is_empty()
    }

    /// The role of `userid` in `departments`, if any.
    pub fn resolve(&self, userid: &StaffId, departments: &[u64]) -> Option<StaffRole> {
        if let Some(role) = self.users.get(userid) {
            return Some(*role);
        }
        departments
            .iter()
            .filter_map(|d| self.departments.get(d))
            .max()
            .copied()
    }
}

/// What a staff token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaffClaims {
    #[serde(rename = "st")]
    staff_id: StaffId,
    #[serde(rename = "s")]
    session_id: String,
    /// Expiry, epoch seconds.
    #[serde(rename = "e")]
    expires_at: i64,
}

/// A staff session as stored ([`keys::staff_session`]): the role granted at sign-in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffSession {
    pub role: StaffRole,
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds.
    pub expires_at: i64,
    /// DynamoDB's TTL removes it some time after expiry; the checks here do not wait.
    pub ttl: i64,
}

impl Record for StaffSession {
    const KIND: &'static str = "staff session";
}

/// The authenticated caller of a staff route, as [`guard`] puts it in the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffCaller {
    pub id: StaffId,
    pub role: StaffRole,
    pub session_id: String,
    /// Epoch seconds.
    pub expires_at: i64,
}

/// The caller of a staff route. Only [`guard`] puts one in; a handler of a route not declared
/// `staff` that asks is a bug (500), never a way in.
pub fn caller(req: &Request) -> Result<&StaffCaller, Error> {
    req.extensions()
        .get::<StaffCaller>()
        .ok_or_else(|| Error::Internal("staff::caller on a route not declared staff".into()))
}

/// The staff token signer: sub-keys of the session keys.
async fn signer(app: &App) -> Result<TokenSigner, Error> {
    Ok(app.tokens().await?.for_domain(STAFF_TOKEN_LABEL))
}

/// What sign-in answers.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub token: String,
    pub caller: StaffCaller,
}

impl SignedIn {
    pub fn view(&self) -> Value {
        json!({
            "token": self.token,
            "expires_at": crate::domain::members::rfc3339(
                OffsetDateTime::from_unix_timestamp(self.caller.expires_at)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            ),
            "staff": {"id": self.caller.id, "role": self.caller.role},
        })
    }
}

/// `POST /admin/v1/auth/wecom`: a WeCom web-login code → a staff session. 401 for a bad code,
/// 403 `not_staff` for someone with no role (or outside the company). The session and the
/// sign-in's audit record are written in one transaction.
pub async fn sign_in(app: &App, code: &str, now: OffsetDateTime) -> Result<SignedIn, Error> {
    let config = app.config.staff.as_ref().ok_or_else(|| {
        Error::Config("WECOM_CORP_ID is not set for this function: staff sign-in is off".into())
    })?;
    let directory = app
        .wecom
        .as_ref()
        .ok_or_else(|| Error::Config("no WeCom directory".into()))?;
    let userid = directory.identify(code).await?;
    let departments = match config.roles.needs_departments(&userid) {
        true => directory.departments(&userid).await?,
        false => Vec::new(),
    };
    let Some(role) = config.roles.resolve(&userid, &departments) else {
        // Not audited (no staff identity to file it under); logged with the userid, an employee
        // id, for whoever maintains the mapping.
        tracing::warn!(userid = %userid, "WeCom sign-in without a staff role");
        return Err(not_staff());
    };
    let at = now.unix_timestamp();
    let caller = StaffCaller {
        id: userid,
        role,
        session_id: random_token(),
        expires_at: at + i64::from(config.session_secs),
    };
    let session = StaffSession {
        role,
        created_at: at,
        expires_at: caller.expires_at,
        ttl: caller.expires_at,
    };
    let token = signer(app).await?.sign_payload(&StaffClaims {
        staff_id: caller.id.clone(),
        session_id: caller.session_id.clone(),
        expires_at: caller.expires_at,
    });
    let mut writes = vec![Write::put_if(
        session.to_item(keys::staff_session(&caller.id, &caller.session_id), None)?,
        Condition::Absent,
        "staff_session_new",
    )];
    let record = AuditRecord::new(
        now,
        &caller,
        "POST /admin/v1/auth/wecom",
        audit::Target::staff(&caller.id),
        None,
        "ok",
    );
    writes.extend(audit::writes(&record, app.config.audit_keep)?);
    app.store.transact(writes).await?;
    Ok(SignedIn { token, caller })
}

/// The staff session a request's bearer token names: well-signed, unexpired and not revoked.
pub async fn authenticate(app: &App, req: &Request, now: i64) -> Result<StaffCaller, Error> {
    let token = bearer_token(req).ok_or(Error::Unauthorized("a staff bearer token is required"))?;
    let claims: StaffClaims = signer(app)
        .await?
        .verify_payload(token)
        .map_err(|_| Error::Unauthorized("invalid staff token"))?;
    if claims.expires_at <= now {
        return Err(Error::Unauthorized("staff session expired"));
    }
    let session: StaffSession = app
        .store
        .get_record(&keys::staff_session(&claims.staff_id, &claims.session_id))
        .await?
        .ok_or(Error::Unauthorized("staff session revoked"))?;
    if session.expires_at <= now {
        return Err(Error::Unauthorized("staff session expired"));
    }
    Ok(StaffCaller {
        id: claims.staff_id,
        role: session.role,
        session_id: claims.session_id,
        expires_at: session.expires_at,
    })
}

/// `POST /admin/v1/auth/logout`: the session's record is deleted; its token is refused from now
/// on. Idempotent.
pub async fn sign_out(app: &App, caller: &StaffCaller) -> Result<(), Error> {
    app.store
        .write(Write::delete(keys::staff_session(
            &caller.id,
            &caller.session_id,
        )))
        .await?;
    Ok(())
}

/// `GET /admin/v1/me`: who the console is signed in as.
pub fn me_view(caller: &StaffCaller) -> Value {
    json!({
        "id": caller.id,
        "role": caller.role,
        "expires_at": crate::domain::members::rfc3339(
            OffsetDateTime::from_unix_timestamp(caller.expires_at)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        ),
    })
}

/// 403 `forbidden_role`.
pub fn forbidden_role(role: StaffRole, allowed: &[StaffRole]) -> Error {
    let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
    Error::Denied {
        code: "forbidden_role",
        message: format!(
            "the {} role may not do this (allowed: {})",
            role.as_str(),
            names.join(", ")
        ),
    }
}

/// Runs a staff route: authenticates the caller (401 before anything else), checks the role,
/// runs `handler` with the caller in the request, and audits the action — its outcome `ok` or
/// the error code, a refused role included. `audited: false` (reading one's own session) skips
/// the record unless the role is refused.
///
/// When the record cannot be written, a read answers 503 (nothing is shown unaudited); a change
/// has happened already, so its answer stands and the failure is logged as an error.
pub async fn guard<F, Fut>(
    app: &App,
    key: &str,
    roles: &[StaffRole],
    audited: bool,
    mut req: Request,
    handler: F,
) -> Result<Response<Body>, Error>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, Error>>,
{
    let now = OffsetDateTime::now_utc();
    let caller = authenticate(app, &req, now.unix_timestamp()).await?;
    let target = audit::Target::of_request(&req, key, &caller);
    let reason = stated_reason(&req, app.config.max_body_bytes);
    let read = req.method() == Method::GET;
    let allowed = roles.contains(&caller.role);
    let result = match allowed {
        false => Err(forbidden_role(caller.role, roles)),
        true => {
            req.extensions_mut().insert(caller.clone());
            handler(req).await
        }
    };
    if !audited && allowed {
        return result;
    }
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    let record = AuditRecord::new(now, &caller, key, target, reason, outcome);
    match audit::record(&app.store, &record, app.config.audit_keep).await {
        Ok(()) => result,
        Err(e) if read && result.is_ok() => Err(e),
        Err(e) => {
            tracing::error!(error = %e, action = key, "audit record not written");
            result
        }
    }
}

/// The `reason` (or a ticket's `resolution`) a request body states, for the audit record (the
/// handler validates it): a string, trimmed, at most [`audit::MAX_REASON_CHARS`] characters;
/// anything else is none. A message's text is not a reason and is not recorded.
fn stated_reason(req: &Request, limit: usize) -> Option<String> {
    let bytes = body_bytes(req, limit).ok()?;
    let body: Value = serde_json::from_slice(bytes).ok()?;
    let reason = ["reason", "resolution"]
        .iter()
        .find_map(|field| body.get(*field)?.as_str())?
        .trim();
    (!reason.is_empty()).then(|| reason.chars().take(audit::MAX_REASON_CHARS).collect())
}

/// Routes whose path names the caller's own session (`/admin/v1/auth/…`, `/admin/v1/me`).
pub(crate) fn is_own_session(key: &str) -> bool {
    let path = key.split_once(' ').map_or(key, |(_, p)| p);
    path.starts_with("/admin/v1/auth/") || path == "/admin/v1/me"
}

/// The path parameter `id` of a request, if any.
pub(crate) fn path_id(req: &Request) -> Option<String> {
    req.path_parameters_ref()
        .and_then(|p| p.first("id"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> StaffId {
        StaffId::parse(text).unwrap()
    }

    #[test]
    fn the_role_map_parses_and_a_user_entry_wins_over_departments() {
        let map = RoleMap::parse(Some(
            " user:alice=support, dept:1=moderator,dept:2=admin ,dept:3=support",
        ))
        .unwrap();
        assert_eq!(map.resolve(&id("alice"), &[2]), Some(StaffRole::Support));
        assert!(!map.needs_departments(&id("alice")));
        assert!(map.needs_departments(&id("bob")));
        assert_eq!(map.resolve(&id("bob"), &[3, 1]), Some(StaffRole::Moderator));
        assert_eq!(map.resolve(&id("bob"), &[1, 2, 3]), Some(StaffRole::Admin));
        assert_eq!(map.resolve(&id("bob"), &[9]), None);
        assert_eq!(map.resolve(&id("bob"), &[]), None);

        let users_only = RoleMap::parse(Some("user:alice=admin")).unwrap();
        assert!(!users_only.needs_departments(&id("bob")));
        assert_eq!(RoleMap::parse(None).unwrap(), RoleMap::default());
        assert_eq!(RoleMap::parse(Some(" , ")).unwrap(), RoleMap::default());

        for bad in [
            "alice=admin",
            "user:alice",
            "user:alice=root",
            "user:a b=admin",
            "dept:x=admin",
            "dept:-1=admin",
            "team:1=admin",
            "user:alice=admin,user:alice=support",
            "dept:1=admin,dept:1=admin",
        ] {
            let e = RoleMap::parse(Some(bad)).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
    }

    #[test]
    fn staff_and_member_tokens_never_stand_for_each_other() {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let member_signer = TokenSigner::new(&format!("k1:{key}")).unwrap();
        let staff_signer = member_signer.for_domain(STAFF_TOKEN_LABEL);
        let claims = StaffClaims {
            staff_id: id("alice"),
            session_id: "s1".into(),
            expires_at: 2_000,
        };
        let staff_token = staff_signer.sign_payload(&claims);
        assert_eq!(
            staff_signer
                .verify_payload::<StaffClaims>(&staff_token)
                .unwrap(),
            claims
        );
        // A staff token is not a member token…
        assert!(member_signer.verify(&staff_token, 1_000).is_err());
        assert!(member_signer
            .verify_payload::<StaffClaims>(&staff_token)
            .is_err());
        // …and a member token is not a staff token, even carrying staff-shaped claims.
        let member_token = member_signer.sign(&crate::session::Claims {
            user_id: crate::ids::UserId::generate(),
            session_id: "s1".into(),
            expires_at: 2_000,
        });
        assert!(staff_signer
            .verify_payload::<StaffClaims>(&member_token)
            .is_err());
        let forged = member_signer.sign_payload(&claims);
        assert!(staff_signer.verify_payload::<StaffClaims>(&forged).is_err());
    }
}
